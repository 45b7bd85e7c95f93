//! `temporal.target.topic` through real clients: fires go to the target topic's partition of
//! the same number, never to the source; a missing target (or one with too few partitions)
//! holds the fires back until it exists; the fired state survives restarts. Manual clock.

use std::sync::Arc;
use std::time::Duration;

use kairos::{Broker, BrokerHandle, ManualClock};
use rdkafka::admin::{AlterConfig, NewPartitions, ResourceSpecifier};
use rdkafka::message::{Headers, OwnedMessage};
use rdkafka::producer::FutureRecord;
use rdkafka::{Message, Offset};

use crate::support;

/// 2027-01-15T08:00:00Z: the tests' "now".
const T0: i64 = 1_799_999_200_000;

async fn broker_in(dir: &std::path::Path, clock: &ManualClock) -> BrokerHandle {
    Broker::builder()
        .data_dir(dir)
        .listener("127.0.0.1:0")
        .config("kairos.metrics.listener", "127.0.0.1:0")
        .clock(Arc::new(clock.clone()))
        .start()
        .await
        .unwrap()
}

async fn produce_to(bootstrap: &str, topic: &str, partition: i32, key: &str, value: &str) {
    let producer = support::producer(bootstrap, "all", &[("linger.ms", "0")]);
    producer
        .send(
            FutureRecord::to(topic)
                .partition(partition)
                .key(key)
                .payload(value),
            Duration::from_secs(10),
        )
        .await
        .unwrap();
}

/// Every record of `partitions` partitions of `topic`, waiting up to `timeout` for `count`.
async fn read_all(
    bootstrap: &str,
    topic: &str,
    partitions: i32,
    count: usize,
    timeout: Duration,
) -> Vec<OwnedMessage> {
    let consumer = support::consumer(bootstrap);
    support::assign(&consumer, topic, partitions, Offset::Beginning);
    tokio::task::spawn_blocking(move || support::consume(&consumer, count, timeout))
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

/// Waits until `/metrics` holds every line of `expected`.
async fn wait_for_metrics(broker: &BrokerHandle, expected: &[&str]) {
    let address = broker.metrics_addr().unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        let metrics = support::http_get(address, "/metrics").await;
        let missing: Vec<_> = expected.iter().filter(|e| !metrics.contains(*e)).collect();
        if missing.is_empty() {
            return;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "{missing:?} in\n{metrics}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn fires_go_to_the_target_partition_of_the_same_number_and_survive_restarts() {
    let dir = tempfile::tempdir().unwrap();
    let clock = ManualClock::new(T0);
    let broker = broker_in(dir.path(), &clock).await;
    let bootstrap = broker.bootstrap_servers();
    support::create_topic(&bootstrap, "price-events", 2, &[]).await;
    support::create_topic(
        &bootstrap,
        "prices",
        2,
        &[
            ("cleanup.policy", "compact"),
            ("temporal.fields", "/expiration_date"),
            (
                "temporal.patch",
                r#"{"/expiration_date":{"status":"inactive"}}"#,
            ),
            ("temporal.target.topic", "price-events"),
        ],
    )
    .await;
    let described = support::admin(&bootstrap)
        .describe_configs(
            [&ResourceSpecifier::Topic("prices")],
            &support::admin_options(),
        )
        .await
        .unwrap();
    let described = described.into_iter().next().unwrap().unwrap();
    assert_eq!(
        described
            .get("temporal.target.topic")
            .unwrap()
            .value
            .as_deref(),
        Some("price-events")
    );
    let expires = T0 + 60_000;
    let price = |amount: u32| {
        format!(r#"{{"id":"p1","amount":{amount},"status":"active","expiration_date":{expires}}}"#)
    };
    produce_to(&bootstrap, "prices", 1, "p1", &price(10)).await;
    clock.set_ms(expires);
    let events = read_all(&bootstrap, "price-events", 2, 2, Duration::from_secs(10)).await;
    assert_eq!(events.len(), 1, "one fire: {events:?}");
    let fire = &events[0];
    assert_eq!(fire.partition(), 1, "the source's partition number");
    assert_eq!(fire.key(), Some(&b"p1"[..]));
    let value: serde_json::Value = serde_json::from_slice(fire.payload().unwrap()).unwrap();
    assert_eq!(
        (value["status"].as_str(), value["amount"].as_u64()),
        (Some("inactive"), Some(10))
    );
    assert_eq!(fire.timestamp().to_millis(), Some(expires));
    assert_eq!(
        header(fire, "kairos.due.field").as_deref(),
        Some("/expiration_date")
    );
    assert_eq!(header(fire, "kairos.due.at"), Some(expires.to_string()));
    assert_eq!(header(fire, "kairos.source.offset").as_deref(), Some("0"));
    assert_eq!(
        header(fire, "kairos.source.topic").as_deref(),
        Some("prices")
    );
    assert_eq!(
        read_all(&bootstrap, "prices", 2, 2, Duration::from_secs(1))
            .await
            .len(),
        1,
        "nothing appended to the source"
    );
    // Updated after it expired, with the same date: no second fire, after a clean restart
    // (snapshot) nor after one whose snapshots are gone (rebuilt from `__due_state`).
    produce_to(&bootstrap, "prices", 1, "p1", &price(11)).await;
    clock.advance_ms(1_000);
    broker.shutdown().await.unwrap();
    for delete_snapshots in [false, true] {
        if delete_snapshots {
            std::fs::remove_dir_all(dir.path().join("__due_index")).unwrap();
        }
        let broker = broker_in(dir.path(), &clock).await;
        let bootstrap = broker.bootstrap_servers();
        clock.advance_ms(1_000);
        wait_for_metrics(&broker, &["kairos_due_entities 1"]).await;
        assert_eq!(
            read_all(&bootstrap, "price-events", 2, 2, Duration::from_secs(1))
                .await
                .len(),
            1,
            "no re-fire (snapshots deleted: {delete_snapshots})"
        );
        broker.shutdown().await.unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_missing_target_is_retried_and_fires_once_its_partition_exists() {
    let dir = tempfile::tempdir().unwrap();
    let clock = ManualClock::new(T0);
    let broker = broker_in(dir.path(), &clock).await;
    let bootstrap = broker.bootstrap_servers();
    support::create_topic(
        &bootstrap,
        "orders",
        2,
        &[
            ("temporal.fields", "/at"),
            ("temporal.target.topic", "order-events"),
        ],
    )
    .await;
    produce_to(&bootstrap, "orders", 0, "a", r#"{"at":"2020-01-01"}"#).await;
    produce_to(&bootstrap, "orders", 1, "b", r#"{"at":"2020-01-01"}"#).await;
    // Past due, but nowhere to go: held back and shown, not dropped nor sent elsewhere.
    wait_for_metrics(
        &broker,
        &["kairos_due_blocked_partitions 2", "kairos_due_backlog 2"],
    )
    .await;
    support::create_topic(&bootstrap, "order-events", 1, &[]).await;
    let events = read_all(&bootstrap, "order-events", 1, 1, Duration::from_secs(10)).await;
    assert_eq!(events.len(), 1);
    assert_eq!(
        (events[0].partition(), events[0].key()),
        (0, Some(&b"a"[..]))
    );
    // Partition 1 has no partition 1 to go to: it waits, never picks partition 0.
    wait_for_metrics(
        &broker,
        &["kairos_due_blocked_partitions 1", "kairos_due_backlog 1"],
    )
    .await;
    assert_eq!(
        read_all(&bootstrap, "order-events", 1, 2, Duration::from_secs(1))
            .await
            .len(),
        1
    );
    let _ = support::admin(&bootstrap)
        .create_partitions(
            [&NewPartitions::new("order-events", 2)],
            &support::admin_options(),
        )
        .await
        .unwrap();
    let events = read_all(&bootstrap, "order-events", 2, 2, Duration::from_secs(10)).await;
    assert_eq!(events.len(), 2, "{events:?}");
    let b = events.iter().find(|m| m.key() == Some(&b"b"[..])).unwrap();
    assert_eq!(b.partition(), 1);
    wait_for_metrics(
        &broker,
        &["kairos_due_blocked_partitions 0", "kairos_due_backlog 0"],
    )
    .await;
    // An internal topic is refused as a target. (The Rust binding of librdkafka reports legacy
    // AlterConfigs resource errors as success, so the proof is that nothing changed; the
    // legacy call would otherwise have replaced every config of the topic.)
    let admin = support::admin(&bootstrap);
    let bad = AlterConfig::new(ResourceSpecifier::Topic("orders"))
        .set("temporal.target.topic", "__consumer_offsets");
    let _ = admin
        .alter_configs([&bad], &support::admin_options())
        .await
        .unwrap();
    let described = admin
        .describe_configs(
            [&ResourceSpecifier::Topic("orders")],
            &support::admin_options(),
        )
        .await
        .unwrap();
    let described = described.into_iter().next().unwrap().unwrap();
    assert_eq!(
        described
            .get("temporal.target.topic")
            .unwrap()
            .value
            .as_deref(),
        Some("order-events")
    );
    assert_eq!(
        described.get("temporal.fields").unwrap().value.as_deref(),
        Some("/at")
    );
    broker.shutdown().await.unwrap();
}

/// Two topics that fire into each other (`ping` → `pong` → `ping`) and one that fires into
/// itself, all due in the same pass on several partitions. Steps into a target hold two log
/// locks, so a pass that ran two of them at once could deadlock on the cycle; every fire
/// arrives, and an entity fired back into its own topic does not fire again there (its
/// (key, field, due time) already fired).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn topics_firing_into_each_other_and_themselves_in_one_pass() {
    let dir = tempfile::tempdir().unwrap();
    let clock = ManualClock::new(T0);
    let broker = broker_in(dir.path(), &clock).await;
    let bootstrap = broker.bootstrap_servers();
    let due = T0 + 1_000;
    for (topic, target) in [
        ("ping", Some("pong")),
        ("pong", Some("ping")),
        ("solo", None),
    ] {
        let mut configs = vec![("temporal.fields", "/at")];
        if let Some(target) = target {
            configs.push(("temporal.target.topic", target));
        }
        support::create_topic(&bootstrap, topic, 2, &configs).await;
    }
    for topic in ["ping", "pong", "solo"] {
        for partition in 0..2 {
            let key = format!("{topic}-{partition}");
            produce_to(
                &bootstrap,
                topic,
                partition,
                &key,
                &format!(r#"{{"at":{due}}}"#),
            )
            .await;
        }
    }
    clock.set_ms(due);
    // ping: its 2 entities, pong's 2 fired into it, and its own 2 fired back by pong.
    for (topic, other) in [("ping", "pong"), ("pong", "ping")] {
        let records = read_all(&bootstrap, topic, 2, 6, Duration::from_secs(20)).await;
        let from = |source: &str, prefix: &str| {
            records
                .iter()
                .filter(|m| header(m, "kairos.source.topic").as_deref() == Some(source))
                .filter(|m| m.key().is_some_and(|k| k.starts_with(prefix.as_bytes())))
                .count()
        };
        assert_eq!(from(other, other), 2, "{topic}: {records:?}");
        assert_eq!(from(other, topic), 2, "{topic}: {records:?}");
        for message in &records {
            let key = std::str::from_utf8(message.key().unwrap()).unwrap();
            assert!(
                key.ends_with(&message.partition().to_string()),
                "{key} in its partition"
            );
        }
    }
    let solo = read_all(&bootstrap, "solo", 2, 4, Duration::from_secs(20)).await;
    assert_eq!(solo.len(), 4, "two entities and their fires: {solo:?}");
    wait_for_metrics(
        &broker,
        &["kairos_due_fires_total 10", "kairos_due_backlog 0"],
    )
    .await;
    broker.shutdown().await.unwrap();
}
