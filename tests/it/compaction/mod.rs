//! Log compaction through the broker: the latest record per key at its original offset after
//! background cleaning (`latest_per_key`), tombstones kept for `delete.retention.ms` and then
//! removed (`tombstones`), a slow consumer reading while segments are swapped under it
//! (`swap_under_reader`), `cleanup.policy=compact,delete` (`compact_delete`), and aborted
//! transactions that never come back (`aborted_txn`).
//!
//! How: brokers whose cleaner backs off 50 ms and whose retention runs every 100 ms from the
//! start, and topics with 1 KiB segments and a tiny `min.cleanable.dirty.ratio`, so that a
//! rolled segment is cleaned within a second. Producers use `acks=all`, because the cleaner
//! only rewrites fsynced segments. Shared here: the broker, producing with offsets, reading a
//! partition to its end, and bounded waits.

mod aborted_txn;
mod compact_delete;
mod latest_per_key;
mod swap_under_reader;
mod tombstones;

use std::collections::BTreeMap;
use std::future::Future;
use std::time::{Duration, Instant};

use kairos::{Broker, BrokerBuilder, BrokerHandle};
use rdkafka::Message;
use rdkafka::Offset;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::producer::{FutureProducer, FutureRecord};

use crate::support;

/// One record as the producer wrote it: offset, key, value (`None` for a tombstone).
pub(crate) type Written = (i64, String, Option<String>);

/// A broker whose cleaner and retention react within ~100 ms, with metrics.
async fn fast_cleaner_broker() -> BrokerHandle {
    fast_cleaner_builder().start().await.unwrap()
}

/// The builder of [`fast_cleaner_broker`], for brokers that need more (a manual clock).
fn fast_cleaner_builder() -> BrokerBuilder {
    Broker::builder()
        .temp_dir()
        .listener("127.0.0.1:0")
        .config("log.cleaner.backoff.ms", "50")
        .config("log.initial.task.delay.ms", "0")
        .config("log.retention.check.interval.ms", "100")
        .config("kairos.metrics.listener", "127.0.0.1:0")
}

/// A producer that waits for the fsync (`acks=all`) and sends at most four records per batch:
/// pipelined sends would otherwise fill batches larger than a whole 1 KiB segment, and the
/// cleaner never touches the active segment.
fn producer(bootstrap: &str) -> FutureProducer {
    support::producer(
        bootstrap,
        "all",
        &[("linger.ms", "0"), ("batch.num.messages", "4")],
    )
}

/// Writes `records` in order, pipelined, and returns them with their offsets.
async fn produce_many(
    producer: &FutureProducer,
    topic: &str,
    records: impl IntoIterator<Item = (String, Option<String>)>,
) -> Vec<Written> {
    let mut pending = Vec::new();
    for (key, value) in records {
        let mut record = FutureRecord::to(topic).key(&key);
        if let Some(value) = &value {
            record = record.payload(value);
        }
        let delivery = loop {
            match producer.send_result(record) {
                Ok(delivery) => break delivery,
                // Queue full: let librdkafka drain, then retry the same record.
                Err((_, returned)) => {
                    record = returned;
                    tokio::time::sleep(Duration::from_millis(5)).await;
                }
            }
        };
        pending.push((delivery, key.clone(), value.clone()));
    }
    let mut written = Vec::with_capacity(pending.len());
    for (delivery, key, value) in pending {
        let delivery = delivery
            .await
            .unwrap()
            .unwrap_or_else(|(e, _)| panic!("producing {key}: {e}"));
        written.push((delivery.offset, key, value));
    }
    written
}

/// Every record of partition 0 from the log start to the high watermark as it is when the read
/// starts, through a fresh consumer. Panics on a consumer error.
async fn read_to_end(bootstrap: &str, topic: &str) -> Vec<Written> {
    // Retention may delete the log start between the watermark query and the first fetch:
    // `earliest` then restarts from the new log start, where librdkafka's default (`latest`)
    // would skip every record there is and wait forever.
    let consumer = support::consumer_with(bootstrap, &[("auto.offset.reset", "earliest")]);
    let topic = topic.to_owned();
    tokio::task::spawn_blocking(move || {
        let (low, high) = consumer
            .fetch_watermarks(&topic, 0, Duration::from_secs(10))
            .unwrap();
        // Retention may have deleted every record: there is nothing to wait for.
        if low >= high {
            return Vec::new();
        }
        support::assign(&consumer, &topic, 1, Offset::Beginning);
        poll_until(&consumer, || high, Duration::from_secs(20), Duration::ZERO)
    })
    .await
    .unwrap()
}

/// Polls `consumer` until it has read the record before offset `end()` (the cleaner never
/// removes the last record of a log), pausing `pause` after each record. `end` is asked again
/// after every poll, so it may move while the log grows. Panics on errors and timeouts.
fn poll_until(
    consumer: &BaseConsumer,
    end: impl Fn() -> i64,
    timeout: Duration,
    pause: Duration,
) -> Vec<Written> {
    let deadline = Instant::now() + timeout;
    let mut out: Vec<Written> = Vec::new();
    while out.last().is_none_or(|(offset, _, _)| *offset + 1 < end()) {
        assert!(
            Instant::now() < deadline,
            "read up to {:?} of {} in {timeout:?}",
            out.last().map(|r| r.0),
            end()
        );
        match consumer.poll(Duration::from_millis(100)) {
            Some(Ok(message)) => {
                let text = |bytes: &[u8]| String::from_utf8(bytes.to_vec()).unwrap();
                out.push((
                    message.offset(),
                    text(message.key().unwrap()),
                    message.payload().map(text),
                ));
                std::thread::sleep(pause);
            }
            Some(Err(error)) => panic!("consume error: {error}"),
            None => {}
        }
    }
    out
}

/// The latest record of each key.
fn latest_by_key(records: &[Written]) -> BTreeMap<String, (i64, Option<String>)> {
    records
        .iter()
        .map(|(offset, key, value)| (key.clone(), (*offset, value.clone())))
        .collect()
}

/// Calls `probe` every 200 ms until `done` holds for its answer (returned), or panics with
/// `what` once `timeout` has passed.
async fn eventually<T, F: Future<Output = T>>(
    what: &str,
    timeout: Duration,
    mut probe: impl FnMut() -> F,
    done: impl Fn(&T) -> bool,
) -> T {
    let deadline = Instant::now() + timeout;
    loop {
        let answer = probe().await;
        if done(&answer) {
            return answer;
        }
        assert!(Instant::now() < deadline, "timed out waiting until {what}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// The value of counter `name` for `topic` partition 0 on the broker's `/metrics` (0 if absent).
async fn topic_counter(broker: &BrokerHandle, name: &str, topic: &str) -> f64 {
    let metrics = support::http_get(broker.metrics_addr().unwrap(), "/metrics").await;
    let prefix = format!("{name}{{topic=\"{topic}\",partition=\"0\"}} ");
    metrics
        .lines()
        .find_map(|l| l.strip_prefix(&prefix))
        .map_or(0.0, |v| v.parse().unwrap())
}

/// A consumer of small fetches that buffers little ahead: each fetch returns about one batch,
/// so a slow reader's next fetch meets whatever the cleaner swapped in meanwhile.
fn small_fetch_consumer(bootstrap: &str) -> BaseConsumer {
    let mut config = support::client_config(bootstrap);
    let _ = config
        .set("group.id", "kairos-tests")
        .set("enable.auto.commit", "false")
        .set("enable.partition.eof", "false")
        .set("check.crcs", "true")
        .set("fetch.wait.max.ms", "50")
        .set("max.partition.fetch.bytes", "256")
        .set("fetch.max.bytes", "1024")
        .set("message.max.bytes", "1000")
        .set("queued.min.messages", "1")
        .set("queued.max.messages.kbytes", "1");
    config.create().expect("consumer")
}
