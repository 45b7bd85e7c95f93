//! The embedding API: injected clock, metrics listener, start/stop in a few lines.

use std::io::{Read, Write};
use std::sync::Arc;
use std::time::Duration;

use kairos::{Broker, ManualClock};
use rdkafka::Message;
use rdkafka::Offset;
use rdkafka::producer::FutureRecord;
use rdkafka::util::Timeout;

use crate::support;

/// LogAppendTime stamps come from the injected clock, not the system's: a ManualClock set to a
/// fixed instant is what consumers see.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn log_append_time_comes_from_the_injected_clock() {
    let clock = ManualClock::new(1_234_567_890_000);
    let broker = Broker::builder()
        .temp_dir()
        .listener("127.0.0.1:0")
        .clock(Arc::new(clock.clone()))
        .start()
        .await
        .unwrap();
    let bootstrap = broker.bootstrap_servers();
    let topic = support::topic_name("clock");
    support::create_topic(
        &bootstrap,
        &topic,
        1,
        &[("message.timestamp.type", "LogAppendTime")],
    )
    .await;
    let producer = support::producer(&bootstrap, "all", &[]);
    let delivery = producer
        .send(
            FutureRecord::<(), _>::to(&topic).payload("a").timestamp(5),
            Timeout::Never,
        )
        .await
        .unwrap();
    assert_eq!(delivery.offset, 0);
    clock.advance_ms(1_000);
    let _ = producer
        .send(
            FutureRecord::<(), _>::to(&topic).payload("b").timestamp(5),
            Timeout::Never,
        )
        .await
        .unwrap();
    let consumer = support::consumer(&bootstrap);
    support::assign(&consumer, &topic, 1, Offset::Beginning);
    let messages = support::consume(&consumer, 2, Duration::from_secs(10));
    let stamps: Vec<Option<i64>> = messages.iter().map(|m| m.timestamp().to_millis()).collect();
    assert_eq!(
        stamps,
        vec![Some(1_234_567_890_000), Some(1_234_567_891_000)]
    );
    drop((producer, consumer));
    broker.shutdown().await.unwrap();
}

/// `/metrics` in Prometheus text format: requests per API, bytes, connections, and log end
/// offset per partition.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn metrics_endpoint_reports_requests_and_partitions() {
    let broker = Broker::builder()
        .temp_dir()
        .listener("127.0.0.1:0")
        .config("kairos.metrics.listener", "127.0.0.1:0")
        .start()
        .await
        .unwrap();
    let bootstrap = broker.bootstrap_servers();
    let topic = support::topic_name("metrics");
    support::create_topic(&bootstrap, &topic, 1, &[]).await;
    let producer = support::producer(&bootstrap, "1", &[]);
    for _ in 0..3 {
        let _ = producer
            .send(
                FutureRecord::<(), _>::to(&topic).payload("m"),
                Timeout::Never,
            )
            .await
            .unwrap();
    }
    let address = broker.metrics_addr().unwrap();
    let text = tokio::task::spawn_blocking(move || {
        let mut stream = std::net::TcpStream::connect(address).unwrap();
        stream
            .write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n")
            .unwrap();
        let mut text = String::new();
        let _ = stream.read_to_string(&mut text).unwrap();
        text
    })
    .await
    .unwrap();
    assert!(text.starts_with("HTTP/1.1 200 OK"), "{text}");
    assert!(
        text.contains("kairos_requests_total{api=\"Produce\"}"),
        "{text}"
    );
    assert!(
        text.contains("kairos_request_duration_seconds_bucket{"),
        "{text}"
    );
    assert!(
        text.contains(&format!(
            "kairos_log_end_offset{{topic=\"{topic}\",partition=\"0\"}} 3"
        )),
        "{text}"
    );
    assert!(text.contains("kairos_network_bytes_in_total"), "{text}");
    assert!(text.contains("kairos_connections "), "{text}");
    drop(producer);
    broker.shutdown().await.unwrap();
}

/// A second broker on the same data directory is refused (the directory lock), and the first
/// keeps serving.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_locked_data_dir_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let first = support::embedded_in(dir.path()).await;
    let second = Broker::builder()
        .data_dir(dir.path())
        .listener("127.0.0.1:0")
        .start()
        .await;
    assert!(
        matches!(second, Err(kairos::StartError::Storage(_))),
        "{second:?}"
    );
    first.shutdown().await.unwrap();
    let again = support::embedded_in(dir.path()).await;
    again.shutdown().await.unwrap();
}
