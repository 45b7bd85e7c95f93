//! `cleanup.policy=compact,delete`: old segments are compacted, and once `retention.ms` has
//! passed they are deleted whole, keys and all, while newer ones are compacted in turn.
//!
//! How: `min.compaction.lag.ms` holds each new segment back from the cleaner for a second, so
//! that retention (every 100 ms) deletes the expired segments before the cleaner could merge the
//! last expired segment with a new one (a merged segment carries the newer timestamps and would
//! outlive `retention.ms`, as in Kafka); `segment.ms` rolls the segment the old records end in
//! at the first new write.

use std::time::{Duration, Instant};

use rdkafka::consumer::Consumer;

use super::{eventually, fast_cleaner_broker, latest_by_key, produce_many, producer, read_to_end};
use crate::support;

const KEYS: usize = 10;
const WRITES_PER_KEY: usize = 10;
const RETENTION: Duration = Duration::from_secs(4);

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
    let broker = fast_cleaner_broker().await;
    let bootstrap = broker.bootstrap_servers();
    let topic = support::topic_name("compact-delete");
    let retention_ms = RETENTION.as_millis().to_string();
    support::create_topic(
        &bootstrap,
        &topic,
        1,
        &[
            ("cleanup.policy", "compact,delete"),
            ("retention.ms", &retention_ms),
            ("segment.bytes", "1024"),
            ("segment.ms", "500"),
            ("min.compaction.lag.ms", "1000"),
            ("min.cleanable.dirty.ratio", "0.01"),
        ],
    )
    .await;
    let producer = producer(&bootstrap);
    let old = produce_many(&producer, &topic, records("old")).await;
    let old_written = Instant::now();
    let compacted = eventually(
        "the old records are compacted",
        RETENTION - Duration::from_millis(500),
        || read_to_end(&bootstrap, &topic),
        |seen| seen.len() < old.len() / 2,
    )
    .await;
    assert!(
        old_written.elapsed() < RETENTION,
        "compaction observed before retention"
    );
    assert_eq!(
        latest_by_key(&compacted),
        latest_by_key(&old),
        "compaction keeps the latest"
    );

    tokio::time::sleep(RETENTION.saturating_sub(old_written.elapsed())).await;
    let new = produce_many(&producer, &topic, records("new")).await;
    let after = eventually(
        "retention deletes the old segments and the new ones are compacted",
        Duration::from_secs(20),
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
