//! A tombstone stays visible to a consumer from the beginning for `delete.retention.ms`, while
//! the value it deletes is cleaned away at once; after that time the next pass removes it.

use std::time::{Duration, Instant};

use super::{eventually, fast_cleaner_broker, latest_by_key, produce_many, producer, read_to_end};
use crate::support;

const DELETE_RETENTION: Duration = Duration::from_secs(4);

fn fillers(from: usize, count: usize) -> Vec<(String, Option<String>)> {
    (from..from + count)
        .map(|i| {
            (
                format!("filler-{}", i % 4),
                Some(format!("filler value {i}")),
            )
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn tombstones_disappear_after_delete_retention() {
    let broker = fast_cleaner_broker().await;
    let bootstrap = broker.bootstrap_servers();
    let topic = support::topic_name("tombstones");
    let retention_ms = DELETE_RETENTION.as_millis().to_string();
    support::create_topic(
        &bootstrap,
        &topic,
        1,
        &[
            ("cleanup.policy", "compact"),
            ("segment.bytes", "1024"),
            ("min.cleanable.dirty.ratio", "0.01"),
            ("delete.retention.ms", &retention_ms),
        ],
    )
    .await;
    let producer = producer(&bootstrap);
    let deleted_at = Instant::now();
    let written = produce_many(
        &producer,
        &topic,
        [
            ("doomed".to_owned(), Some("value".to_owned())),
            ("kept".to_owned(), Some("kept value".to_owned())),
            ("doomed".to_owned(), None),
        ],
    )
    .await;
    let tombstone_offset = written[2].0;
    // Enough records after it that the tombstone's segment rolls and is cleaned.
    let _ = produce_many(&producer, &topic, fillers(0, 40)).await;

    let before = eventually(
        "the value under the tombstone is cleaned",
        Duration::from_secs(20),
        || read_to_end(&bootstrap, &topic),
        |records| !records.iter().any(|r| r.1 == "doomed" && r.2.is_some()),
    )
    .await;
    assert!(
        deleted_at.elapsed() < DELETE_RETENTION,
        "observed before delete.retention.ms passed"
    );
    let latest = latest_by_key(&before);
    assert_eq!(
        latest.get("doomed"),
        Some(&(tombstone_offset, None)),
        "a consumer from the beginning sees the tombstone at its offset"
    );
    assert_eq!(latest["kept"].1.as_deref(), Some("kept value"));

    // Past delete.retention.ms (counted from the tombstone's timestamp, with a margin for the
    // client's clock), the next pass drops it; new dirty segments trigger that pass.
    let expired = DELETE_RETENTION + Duration::from_millis(500);
    tokio::time::sleep(expired.saturating_sub(deleted_at.elapsed())).await;
    let _ = produce_many(&producer, &topic, fillers(40, 40)).await;
    let after = eventually(
        "the tombstone is removed",
        Duration::from_secs(20),
        || read_to_end(&bootstrap, &topic),
        |records| !records.iter().any(|r| r.1 == "doomed"),
    )
    .await;
    let latest = latest_by_key(&after);
    assert_eq!(latest["kept"].1.as_deref(), Some("kept value"));
    assert!(after.windows(2).all(|w| w[0].0 < w[1].0));
    broker.shutdown().await.unwrap();
}
