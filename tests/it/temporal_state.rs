//! The durable fired state of the due index (`__due_state`) through the broker: fires that
//! compaction removed still count after the snapshot is deleted and the broker restarts, and
//! DeleteTopics tombstones a topic's fired state. The cleaner really runs (small segments, fast
//! cleaner settings); due times follow a `ManualClock`.

use std::sync::Arc;
use std::time::{Duration, Instant};

use kairos::{Broker, BrokerHandle, ManualClock};
use rdkafka::consumer::Consumer;
use rdkafka::message::{Headers, OwnedMessage};
use rdkafka::producer::FutureRecord;
use rdkafka::{Message, Offset};

use crate::support;

/// 2027-01-15T08:00:00Z.
const T0: i64 = 1_799_999_200_000;

/// A broker whose cleaner runs every 50 ms and whose due index is snapshotted every second
/// (the fastest allowed): compaction of a temporal partition follows its snapshots.
async fn broker_in(dir: &std::path::Path, clock: &ManualClock) -> BrokerHandle {
    Broker::builder()
        .data_dir(dir)
        .listener("127.0.0.1:0")
        .clock(Arc::new(clock.clone()))
        .config("log.cleaner.backoff.ms", "50")
        .config("kairos.due.snapshot.interval.ms", "1000")
        .start()
        .await
        .unwrap()
}

/// Topic configs that let the cleaner remove superseded records quickly.
const COMPACTED: &[(&str, &str)] = &[
    ("cleanup.policy", "compact"),
    ("segment.bytes", "4096"),
    ("min.cleanable.dirty.ratio", "0.01"),
    ("delete.retention.ms", "0"),
];

async fn produce(bootstrap: &str, topic: &str, key: &str, value: &str) {
    let producer = support::producer(bootstrap, "all", &[("linger.ms", "0")]);
    producer
        .send(
            FutureRecord::to(topic).key(key).payload(value),
            Duration::from_secs(10),
        )
        .await
        .unwrap();
}

/// Every record of partition 0 of `topic` from the log start to the high watermark.
async fn read_to_end(bootstrap: &str, topic: &str) -> Vec<OwnedMessage> {
    let consumer = support::consumer(bootstrap);
    let topic = topic.to_owned();
    tokio::task::spawn_blocking(move || {
        let (_, high) = consumer
            .fetch_watermarks(&topic, 0, Duration::from_secs(10))
            .unwrap();
        support::assign(&consumer, &topic, 1, Offset::Beginning);
        let deadline = Instant::now() + Duration::from_secs(20);
        let mut out: Vec<OwnedMessage> = Vec::new();
        while out.last().is_none_or(|m| m.offset() + 1 < high) {
            assert!(
                Instant::now() < deadline,
                "read {} of {topic} up to {high}",
                out.len()
            );
            if let Some(message) = consumer.poll(Duration::from_millis(100)) {
                out.push(message.unwrap().detach());
            }
        }
        out
    })
    .await
    .unwrap()
}

fn header(message: &OwnedMessage, name: &str) -> Option<String> {
    message
        .headers()?
        .iter()
        .find(|h| h.key == name)
        .and_then(|h| h.value)
        .map(|v| String::from_utf8(v.to_vec()).unwrap())
}

/// (key, field, due_at) of every fire record.
fn fires(messages: &[OwnedMessage]) -> Vec<(String, String, i64)> {
    messages
        .iter()
        .filter_map(|m| {
            let field = header(m, "kairos.due.field")?;
            let due_at = header(m, "kairos.due.at")?.parse().unwrap();
            let key = String::from_utf8(m.key()?.to_vec()).unwrap();
            Some((key, field, due_at))
        })
        .collect()
}

/// Waits until the pulse appended `count` fires in total.
async fn wait_for_fires(bootstrap: &str, topic: &str, count: usize) -> Vec<OwnedMessage> {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let messages = read_to_end(bootstrap, topic).await;
        if fires(&messages).len() >= count {
            return messages;
        }
        assert!(Instant::now() < deadline, "{:?}", fires(&messages));
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The scenario both tests share. `entity` is produced and fires `fired` times once the clock
/// passes its due times; `update` (same due times) then supersedes the fire records. Filler
/// keys roll segments until the cleaner has removed every fire record. The broker stops, the
/// due index snapshots are deleted, and the restarted broker rebuilds the index from the log
/// and `__due_state`: nothing fires again, however far the clock goes.
async fn fired_state_survives_compaction_and_snapshot_loss(
    configs: &[(&str, &str)],
    entity: &str,
    update: &str,
    fired: usize,
) {
    let dir = tempfile::tempdir().unwrap();
    let clock = ManualClock::new(T0);
    let broker = broker_in(dir.path(), &clock).await;
    let bootstrap = broker.bootstrap_servers();
    let mut topic_configs = COMPACTED.to_vec();
    topic_configs.extend_from_slice(configs);
    support::create_topic(&bootstrap, "prices", 1, &topic_configs).await;
    produce(&bootstrap, "prices", "p1", entity).await;
    clock.set_ms(T0 + 10_000);
    let _ = wait_for_fires(&bootstrap, "prices", fired).await;
    // Updated after it fired, with the same due times: no fire, and the fires are superseded.
    produce(&bootstrap, "prices", "p1", update).await;
    let padding = "x".repeat(200);
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        for i in 0..20 {
            produce(&bootstrap, "prices", &format!("filler-{i}"), &padding).await;
        }
        let messages = read_to_end(&bootstrap, "prices").await;
        if fires(&messages).is_empty() {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the cleaner never removed the fires"
        );
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    broker.shutdown().await.unwrap();
    let snapshots = dir.path().join("__due_index");
    let mut deleted = 0;
    for entry in std::fs::read_dir(&snapshots).unwrap() {
        std::fs::remove_file(entry.unwrap().path()).unwrap();
        deleted += 1;
    }
    assert!(deleted > 0, "a snapshot was written at shutdown");

    let broker = broker_in(dir.path(), &clock).await;
    let bootstrap = broker.bootstrap_servers();
    for _ in 0..5 {
        clock.advance_ms(60_000);
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let after = read_to_end(&bootstrap, "prices").await;
    // A repeated fire would be p1's newest record, which compaction never removes.
    assert_eq!(fires(&after), vec![], "no fire repeated");
    let latest = after
        .iter()
        .rev()
        .find(|m| m.key() == Some(&b"p1"[..]))
        .unwrap();
    assert_eq!(latest.payload(), Some(update.as_bytes()));
    broker.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_fields_with_patches_do_not_fire_again_after_compaction_snapshot_loss_and_restart() {
    let valid_from = T0 + 1_000;
    let expires = T0 + 2_000;
    fired_state_survives_compaction_and_snapshot_loss(
        &[
            ("temporal.fields", "/valid_from,/expiration_date"),
            (
                "temporal.patch",
                r#"{"/valid_from":{"status":"active"},"/expiration_date":{"status":"inactive"}}"#,
            ),
        ],
        &format!(
            r#"{{"status":"pending","amount":10,"valid_from":{valid_from},"expiration_date":{expires}}}"#
        ),
        &format!(
            r#"{{"status":"pending","amount":11,"valid_from":{valid_from},"expiration_date":{expires}}}"#
        ),
        2,
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_price_updated_after_it_expired_does_not_fire_again_after_compaction_and_restart() {
    let expires = T0 + 1_000;
    fired_state_survives_compaction_and_snapshot_loss(
        &[("temporal.fields", "/expiration_date")],
        &format!(r#"{{"amount":10,"expiration_date":{expires}}}"#),
        &format!(r#"{{"amount":12,"expiration_date":{expires}}}"#),
        1,
    )
    .await;
}

/// How: a temporal topic fires, then is deleted. Its fired state in `__due_state` ends in a
/// tombstone, and the topic created again under the same name fires the same entity anew.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn delete_topics_tombstones_the_fired_state_and_a_new_topic_starts_afresh() {
    let dir = tempfile::tempdir().unwrap();
    let clock = ManualClock::new(T0);
    let broker = broker_in(dir.path(), &clock).await;
    let bootstrap = broker.bootstrap_servers();
    let entity = format!(r#"{{"at":{}}}"#, T0 + 1_000);
    for round in 0..2 {
        support::create_topic(&bootstrap, "doomed", 1, &[("temporal.fields", "/at")]).await;
        produce(&bootstrap, "doomed", "k", &entity).await;
        clock.set_ms(T0 + 5_000 + round);
        let fired = fires(&wait_for_fires(&bootstrap, "doomed", 1).await);
        assert_eq!(
            fired,
            vec![("k".into(), "/at".into(), T0 + 1_000)],
            "round {round}"
        );
        let admin = support::admin(&bootstrap);
        let deleted = admin
            .delete_topics(&["doomed"], &support::admin_options())
            .await
            .unwrap();
        assert!(deleted[0].is_ok(), "{deleted:?}");
    }
    // Two fires recorded (one per incarnation), both tombstoned.
    let consumer = support::consumer(&bootstrap);
    support::assign(&consumer, "__due_state", 8, Offset::Beginning);
    let records = tokio::task::spawn_blocking(move || {
        support::consume(&consumer, 4, Duration::from_secs(10))
    })
    .await
    .unwrap();
    let mut latest = std::collections::HashMap::new();
    for record in &records {
        assert!(
            record.key().unwrap().ends_with(b"/atk"),
            "key = ... field, entity key"
        );
        let _ = latest.insert(record.key().unwrap().to_vec(), record.payload().is_some());
    }
    assert_eq!(records.len(), 4, "two fired-state records, two tombstones");
    assert_eq!(latest.len(), 2, "one key per topic id");
    assert!(latest.values().all(|live| !live), "all tombstoned");
    broker.shutdown().await.unwrap();
}
