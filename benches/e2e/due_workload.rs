//! The due index workload of the end-to-end benches (`e2e_due`, `e2e_drain`): keyed JSON
//! entities of about 300 B with an `expiration_date`, produced through librdkafka, and the
//! broker's Prometheus metrics read back. Included with
//! `#[path = "e2e/due_workload.rs"] mod e2e_due_workload;`.
#![allow(
    dead_code,
    reason = "each due bench uses a different subset of these helpers"
)]

use std::time::{Duration, Instant};

use rdkafka::ClientConfig;
use rdkafka::producer::{FutureProducer, FutureRecord};

use crate::e2e_support::http_get;

/// Bytes of one entity's value.
pub(crate) const VALUE_BYTES: usize = 300;

pub(crate) fn value(i: usize, due_ms: i64) -> Vec<u8> {
    let head = format!(
        r#"{{"id":"p{i:08}","sku":"SKU-{i:08}","currency":"EUR","amount":{}.{:02},"status":"active","expiration_date":{due_ms},"description":""#,
        i % 1000,
        i % 100
    );
    let mut value = head.into_bytes();
    value.resize(VALUE_BYTES - 2, b'x');
    value.extend_from_slice(b"\"}");
    value
}

pub(crate) fn producer(bootstrap: &str) -> FutureProducer {
    ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("acks", "1")
        .set("enable.idempotence", "false")
        .set("linger.ms", "5")
        .set("batch.size", "1000000")
        .set("queue.buffering.max.messages", "1000000")
        .set("message.timeout.ms", "120000")
        .create()
        .expect("producer")
}

pub(crate) async fn produce(
    bootstrap: &str,
    topic: &str,
    n: usize,
    due: impl Fn(usize) -> i64,
) -> Duration {
    let producer = producer(bootstrap);
    let started = Instant::now();
    let mut pending = std::collections::VecDeque::new();
    for i in 0..n {
        let key = format!("p{i:08}");
        let payload = value(i, due(i));
        let mut record = FutureRecord::to(topic).key(&key).payload(&payload);
        loop {
            match producer.send_result(record) {
                Ok(delivery) => {
                    pending.push_back(delivery);
                    break;
                }
                Err((_, returned)) => {
                    record = returned;
                    // Bound memory: settle the oldest deliveries while the queue is full.
                    if let Some(delivery) = pending.pop_front() {
                        let _ = delivery.await.expect("delivered").expect("acknowledged");
                    }
                }
            }
        }
    }
    for delivery in pending {
        let _ = delivery.await.expect("delivered").expect("acknowledged");
    }
    started.elapsed()
}

/// A gauge or counter from the Prometheus text (the first sample whose name ends with `name`).
pub(crate) fn metric(metrics: &str, name: &str) -> Option<f64> {
    metrics.lines().find_map(|line| {
        let (key, value) = line.rsplit_once(' ')?;
        (!line.starts_with('#') && key.ends_with(name))
            .then(|| value.parse().ok())
            .flatten()
    })
}

pub(crate) fn wait_for_metric(
    address: &str,
    name: &str,
    at_least: f64,
    limit: Duration,
) -> Option<Duration> {
    let started = Instant::now();
    while started.elapsed() < limit {
        if metric(&http_get(address, "/metrics"), name).is_some_and(|v| v >= at_least) {
            return Some(started.elapsed());
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    None
}
