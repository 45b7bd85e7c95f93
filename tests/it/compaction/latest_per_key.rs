//! Log compaction through the broker: a compacted topic is cleaned in the background, and a
//! consumer reading from the beginning sees the latest record per key at its original offset.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use kairos::Broker;
use rdkafka::Message;
use rdkafka::Offset;
use rdkafka::producer::FutureRecord;

use crate::support;

const KEYS: usize = 50;
const RECORDS: usize = 2_000;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_consumer_from_the_beginning_sees_the_latest_record_per_key_after_cleaning() {
    let broker = Broker::builder()
        .temp_dir()
        .listener("127.0.0.1:0")
        .config("log.cleaner.backoff.ms", "50")
        .config("kairos.metrics.listener", "127.0.0.1:0")
        .start()
        .await
        .unwrap();
    let bootstrap = broker.bootstrap_servers();
    let topic = support::topic_name("compacted");
    support::create_topic(
        &bootstrap,
        &topic,
        1,
        &[
            ("cleanup.policy", "compact"),
            ("segment.bytes", "4096"),
            ("min.cleanable.dirty.ratio", "0.01"),
            ("delete.retention.ms", "0"),
        ],
    )
    .await;
    let producer = support::producer(&bootstrap, "all", &[("linger.ms", "0")]);
    for i in 0..RECORDS {
        let key = format!("key-{}", i % KEYS);
        let value = format!("value-{i}");
        producer
            .send(
                FutureRecord::to(&topic).key(&key).payload(&value),
                Duration::from_secs(10),
            )
            .await
            .unwrap();
    }
    // The cleaner never touches the active segment, so wait until what is left is about one
    // segment's worth on top of one record per key.
    let deadline = Instant::now() + Duration::from_secs(60);
    let seen = loop {
        let consumer = support::consumer(&bootstrap);
        support::assign(&consumer, &topic, 1, Offset::Beginning);
        let messages = tokio::task::spawn_blocking(move || {
            support::consume(&consumer, RECORDS, Duration::from_secs(2))
        })
        .await
        .unwrap();
        if messages.len() < RECORDS / 4 || Instant::now() > deadline {
            break messages;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert!(
        seen.len() < RECORDS / 4,
        "cleaned: {} records left",
        seen.len()
    );
    let mut latest: BTreeMap<String, (i64, String)> = BTreeMap::new();
    let mut previous = -1;
    for message in &seen {
        let key = String::from_utf8(message.key().unwrap().to_vec()).unwrap();
        let value = String::from_utf8(message.payload().unwrap().to_vec()).unwrap();
        // Offsets are preserved: record i was written at offset i.
        assert_eq!(value, format!("value-{}", message.offset()));
        assert!(message.offset() > previous, "offsets increase");
        previous = message.offset();
        let _ = latest.insert(key, (message.offset(), value));
    }
    assert_eq!(latest.len(), KEYS, "every key survives");
    for (key, (offset, _)) in &latest {
        let k: usize = key.trim_start_matches("key-").parse().unwrap();
        let last = i64::try_from(RECORDS - KEYS + k).unwrap();
        assert_eq!(*offset, last, "{key} ends at its latest write");
    }
    // The passes show in the cleaner metrics, labelled by log.
    let metrics = support::http_get(broker.metrics_addr().unwrap(), "/metrics").await;
    let labels = format!("{{topic=\"{topic}\",partition=\"0\"}}");
    for name in [
        "kairos_cleaner_bytes_read_total",
        "kairos_cleaner_bytes_written_total",
    ] {
        let line = metrics
            .lines()
            .find(|l| l.starts_with(&format!("{name}{labels}")))
            .unwrap_or_else(|| panic!("{name} missing in\n{metrics}"));
        let value: f64 = line.rsplit(' ').next().unwrap().parse().unwrap();
        assert!(value > 0.0, "{line}");
    }
    assert!(
        metrics.contains("kairos_cleaner_pass_seconds_count"),
        "{metrics}"
    );
    assert!(metrics.contains(&format!("kairos_cleaner_dirty_ratio{labels}")));
    broker.shutdown().await.unwrap();
}
