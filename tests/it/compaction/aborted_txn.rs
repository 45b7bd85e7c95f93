//! Aborted transactional records never reappear: a transaction that overwrote a key and
//! created another is aborted, the cleaner runs, and no consumer, read_committed or
//! read_uncommitted, ever sees the aborted values as a key's latest; the committed value under
//! them survives and, once cleaned, the aborted records are gone even for read_uncommitted.

use std::time::Duration;

use rdkafka::Offset;
use rdkafka::consumer::BaseConsumer;
use rdkafka::producer::{FutureRecord, Producer};

use super::{
    Written, eventually, fast_cleaner_broker, latest_by_key, poll_until, produce_many, producer,
};
use crate::support;

fn consumer(bootstrap: &str, isolation: &str) -> BaseConsumer {
    support::client_config(bootstrap)
        .set("group.id", "kairos-tests")
        .set("enable.auto.commit", "false")
        .set("enable.partition.eof", "false")
        .set("check.crcs", "true")
        .set("isolation.level", isolation)
        .create()
        .expect("consumer")
}

/// Everything a consumer at `isolation` reads from the beginning up to the high watermark.
async fn read_all(bootstrap: &str, topic: &str, isolation: &'static str) -> Vec<Written> {
    let (bootstrap, topic) = (bootstrap.to_owned(), topic.to_owned());
    tokio::task::spawn_blocking(move || {
        let consumer = consumer(&bootstrap, isolation);
        let (_, high) = rdkafka::consumer::Consumer::fetch_watermarks(
            &consumer,
            &topic,
            0,
            Duration::from_secs(10),
        )
        .unwrap();
        support::assign(&consumer, &topic, 1, Offset::Beginning);
        // The last offsets are control records (markers) or records; stop at the last data
        // record the fillers guarantee.
        poll_until(
            &consumer,
            || high - 1,
            Duration::from_secs(20),
            Duration::ZERO,
        )
    })
    .await
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn aborted_transactional_records_never_reappear_after_cleaning() {
    let broker = fast_cleaner_broker().await;
    let bootstrap = broker.bootstrap_servers();
    let topic = support::topic_name("aborted-txn");
    support::create_topic(
        &bootstrap,
        &topic,
        1,
        &[
            ("cleanup.policy", "compact"),
            ("segment.bytes", "1024"),
            ("min.cleanable.dirty.ratio", "0.01"),
            ("delete.retention.ms", "0"),
        ],
    )
    .await;
    let plain = producer(&bootstrap);
    let _ = produce_many(
        &plain,
        &topic,
        [("k".to_owned(), Some("committed".to_owned()))],
    )
    .await;

    let transactional = support::producer(
        &bootstrap,
        "all",
        &[
            ("transactional.id", "compaction-aborted"),
            ("linger.ms", "0"),
        ],
    );
    transactional
        .init_transactions(Duration::from_secs(10))
        .unwrap();
    transactional.begin_transaction().unwrap();
    for (key, value) in [("k", "aborted"), ("z", "aborted")] {
        let _ = transactional
            .send(
                FutureRecord::to(&topic).key(key).payload(value),
                Duration::from_secs(10),
            )
            .await
            .unwrap();
    }
    transactional
        .abort_transaction(Duration::from_secs(10))
        .unwrap();
    // Enough plain records after the marker that its segment rolls and is cleaned; the last
    // one is a data record, where the reads below stop.
    let fillers: Vec<_> = (0..40)
        .map(|i| (format!("filler-{}", i % 4), Some(format!("filler {i}"))))
        .collect();
    let _ = produce_many(&plain, &topic, fillers).await;

    let committed = read_all(&bootstrap, &topic, "read_committed").await;
    assert!(committed.iter().all(|r| r.2.as_deref() != Some("aborted")));
    let cleaned = eventually(
        "the aborted records are cleaned away",
        Duration::from_secs(20),
        || read_all(&bootstrap, &topic, "read_uncommitted"),
        |records| !records.iter().any(|r| r.2.as_deref() == Some("aborted")),
    )
    .await;
    for records in [
        &cleaned,
        &read_all(&bootstrap, &topic, "read_committed").await,
    ] {
        let latest = latest_by_key(records);
        assert_eq!(
            latest.get("k").and_then(|(_, value)| value.as_deref()),
            Some("committed"),
            "the committed value under the aborted one survives: {records:?}"
        );
        assert!(!latest.contains_key("z"), "{records:?}");
    }
    broker.shutdown().await.unwrap();
}
