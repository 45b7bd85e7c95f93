//! `cleanup.policy=compact,delete`: old segments are compacted, and once `retention.ms` has
//! passed they are deleted whole, keys and all, while newer ones are compacted in turn.
//!
//! How: the broker runs on a manual clock and the topic stamps `LogAppendTime`, so every age
//! the cleaner and retention look at is set by the test, never by how fast a loaded machine
//! happens to be. The clock moves past `min.compaction.lag.ms` to let the old records be
//! compacted, then past `retention.ms` before the new records are written (the first new write
//! rolls the segment the old records end in, `segment.ms`), then past the lag again but never
//! past the new records' retention.

use std::sync::Arc;
use std::time::Duration;

use kairos::ManualClock;
use rdkafka::consumer::Consumer;

use super::{eventually, fast_cleaner_builder, latest_by_key, produce_many, producer, read_to_end};
use crate::support;

const KEYS: usize = 10;
const WRITES_PER_KEY: usize = 10;
const T0: i64 = 1_700_000_000_000;
const RETENTION_MS: i64 = 60_000;
const LAG_MS: i64 = 1_000;

fn records(prefix: &str) -> Vec<(String, Option<String>)> {
    (0..KEYS * WRITES_PER_KEY)
        .map(|i| {
            let key = format!("{prefix}-{}", i % KEYS);
            (key, Some(format!("{prefix} value {i}")))
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn compact_delete_compacts_and_then_deletes_by_retention() {
    let clock = ManualClock::new(T0);
    let broker = fast_cleaner_builder()
        .clock(Arc::new(clock.clone()))
        .start()
        .await
        .unwrap();
    let bootstrap = broker.bootstrap_servers();
    let topic = support::topic_name("compact-delete");
    let retention_ms = RETENTION_MS.to_string();
    let lag_ms = LAG_MS.to_string();
    support::create_topic(
        &bootstrap,
        &topic,
        1,
        &[
            ("cleanup.policy", "compact,delete"),
            ("message.timestamp.type", "LogAppendTime"),
            ("retention.ms", &retention_ms),
            ("segment.bytes", "1024"),
            ("segment.ms", "500"),
            ("min.compaction.lag.ms", &lag_ms),
            ("min.cleanable.dirty.ratio", "0.01"),
        ],
    )
    .await;
    let producer = producer(&bootstrap);
    let old = produce_many(&producer, &topic, records("old")).await;
    clock.advance_ms(LAG_MS + 1);
    let compacted = eventually(
        "the old records are compacted",
        Duration::from_secs(30),
        || read_to_end(&bootstrap, &topic),
        |seen| seen.len() < old.len() / 2,
    )
    .await;
    assert_eq!(
        latest_by_key(&compacted),
        latest_by_key(&old),
        "compaction keeps the latest"
    );

    clock.advance_ms(RETENTION_MS);
    let new = produce_many(&producer, &topic, records("new")).await;
    clock.advance_ms(LAG_MS + 1);
    let after = eventually(
        "retention deletes the old segments and the new ones are compacted",
        Duration::from_secs(30),
        || read_to_end(&bootstrap, &topic),
        |seen| {
            !seen.iter().any(|r| r.1.starts_with("old-"))
                && seen.iter().filter(|r| r.1.starts_with("new-")).count() < new.len() / 2
        },
    )
    .await;
    assert_eq!(
        latest_by_key(&after),
        latest_by_key(&new),
        "new keys at their latest"
    );
    let consumer = support::consumer(&bootstrap);
    let (low, _) = consumer
        .fetch_watermarks(&topic, 0, Duration::from_secs(10))
        .unwrap();
    assert!(
        low > old.last().unwrap().0,
        "the log start moved past the old records: {low}"
    );
    broker.shutdown().await.unwrap();
}
