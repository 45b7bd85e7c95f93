//! The due index through real clients: temporal topics created and altered with the admin
//! client, entities produced with rdkafka, fires consumed, all driven by a `ManualClock`.

use std::sync::Arc;
use std::time::Duration;

use kairos::{Broker, BrokerHandle, ManualClock};
use rdkafka::admin::{AlterConfig, NewTopic, ResourceSpecifier, TopicReplication};
use rdkafka::message::{Headers, OwnedMessage};
use rdkafka::producer::FutureRecord;
use rdkafka::types::RDKafkaErrorCode;
use rdkafka::{Message, Offset};

use crate::support;

/// 2027-01-15T08:00:00Z: the tests' "now".
const T0: i64 = 1_799_999_200_000;

async fn broker_in(dir: &std::path::Path, clock: &ManualClock) -> BrokerHandle {
    Broker::builder()
        .data_dir(dir)
        .listener("127.0.0.1:0")
        .clock(Arc::new(clock.clone()))
        .start()
        .await
        .unwrap()
}

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

/// Every record of partition 0 from the beginning, waiting up to `timeout` for `count`.
async fn read_all(
    bootstrap: &str,
    topic: &str,
    count: usize,
    timeout: Duration,
) -> Vec<OwnedMessage> {
    let consumer = support::consumer(bootstrap);
    support::assign(&consumer, topic, 1, Offset::Beginning);
    tokio::task::spawn_blocking(move || support::consume(&consumer, count, timeout))
        .await
        .unwrap()
}

fn header(message: &OwnedMessage, name: &str) -> Option<String> {
    let headers = message.headers()?;
    headers
        .iter()
        .find(|h| h.key == name)
        .and_then(|h| h.value)
        .map(|v| String::from_utf8(v.to_vec()).unwrap())
}

fn json(message: &OwnedMessage) -> serde_json::Value {
    serde_json::from_slice(message.payload().unwrap()).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_price_expires_when_its_date_comes_with_the_patch_applied() {
    let dir = tempfile::tempdir().unwrap();
    let clock = ManualClock::new(T0);
    let broker = broker_in(dir.path(), &clock).await;
    let bootstrap = broker.bootstrap_servers();
    support::create_topic(
        &bootstrap,
        "prices",
        1,
        &[
            ("cleanup.policy", "compact"),
            ("temporal.fields", "/expiration_date"),
            (
                "temporal.patch",
                r#"{"/expiration_date":{"status":"inactive"}}"#,
            ),
        ],
    )
    .await;
    let expires = T0 + 60_000;
    produce(
        &bootstrap,
        "prices",
        "p1",
        &format!(r#"{{"id":"p1","amount":10,"status":"active","expiration_date":{expires}}}"#),
    )
    .await;
    produce(
        &bootstrap,
        "prices",
        "p2",
        r#"{"id":"p2","status":"active","expiration_date":"2030-01-01"}"#,
    )
    .await;
    // Not due yet: only the two prices (the window is generous: a loaded machine can take a
    // second just to start the consumer, and a wrong third record would still show).
    assert_eq!(
        read_all(&bootstrap, "prices", 3, Duration::from_secs(3))
            .await
            .len(),
        2
    );
    clock.set_ms(expires);
    let records = read_all(&bootstrap, "prices", 3, Duration::from_secs(10)).await;
    assert_eq!(records.len(), 3, "one fire");
    let fire = &records[2];
    assert_eq!(fire.key(), Some(&b"p1"[..]));
    assert_eq!(json(fire)["status"], "inactive");
    assert_eq!(json(fire)["amount"], 10);
    assert_eq!(fire.timestamp().to_millis(), Some(expires));
    assert_eq!(
        header(fire, "kairos.due.field").as_deref(),
        Some("/expiration_date")
    );
    assert_eq!(header(fire, "kairos.due.at"), Some(expires.to_string()));
    assert_eq!(header(fire, "kairos.source.offset").as_deref(), Some("0"));
    // Updated after it expired, with the same date: no second fire, even after a restart.
    produce(
        &bootstrap,
        "prices",
        "p1",
        &format!(r#"{{"id":"p1","amount":11,"status":"active","expiration_date":{expires}}}"#),
    )
    .await;
    clock.advance_ms(1_000);
    assert_eq!(
        read_all(&bootstrap, "prices", 5, Duration::from_secs(1))
            .await
            .len(),
        4
    );
    broker.shutdown().await.unwrap();
    let broker = broker_in(dir.path(), &clock).await;
    let bootstrap = broker.bootstrap_servers();
    clock.advance_ms(1_000);
    assert_eq!(
        read_all(&bootstrap, "prices", 5, Duration::from_secs(1))
            .await
            .len(),
        4
    );
    // The other price fires when its date (midnight UTC) comes.
    clock.set_ms(1_893_456_000_000);
    let records = read_all(&bootstrap, "prices", 5, Duration::from_secs(10)).await;
    assert_eq!(records.len(), 5);
    assert_eq!(records[4].key(), Some(&b"p2"[..]));
    broker.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn temporal_configs_are_validated_and_setting_them_later_indexes_existing_data() {
    let dir = tempfile::tempdir().unwrap();
    let clock = ManualClock::new(T0);
    let broker = broker_in(dir.path(), &clock).await;
    let bootstrap = broker.bootstrap_servers();
    let admin = support::admin(&bootstrap);
    let options = support::admin_options();
    for (configs, why) in [
        (
            vec![("temporal.fields", "expiration_date")],
            "not a selector",
        ),
        (
            vec![("temporal.fields", "/a,b")],
            "a comma inside a selector",
        ),
        (vec![("temporal.format", "iso")], "unknown format"),
        (
            vec![
                ("temporal.fields", "/a"),
                ("temporal.patch", r#"{"/b":{}}"#),
            ],
            "patch for an unlisted field",
        ),
        (
            vec![
                ("temporal.fields", "/a"),
                ("temporal.target.topic", "no/such topic"),
            ],
            "an invalid target topic name",
        ),
        (
            vec![
                ("temporal.fields", "/a"),
                ("temporal.target.topic", "__due_state"),
            ],
            "an internal target topic",
        ),
    ] {
        let mut topic = NewTopic::new("bad", 1, TopicReplication::Fixed(1));
        for (name, value) in &configs {
            topic = topic.set(name, value);
        }
        let result = admin.create_topics([&topic], &options).await.unwrap();
        assert!(
            matches!(&result[0], Err((_, RDKafkaErrorCode::InvalidConfig))),
            "{why}: {result:?}"
        );
    }
    // A plain topic with entities already in it, then indexed by setting temporal.fields: the
    // past-due latest versions fire; a superseded version does not.
    support::create_topic(&bootstrap, "later", 1, &[]).await;
    produce(&bootstrap, "later", "a", r#"{"at":"2020-01-01T00:00:00Z"}"#).await;
    produce(&bootstrap, "later", "b", r#"{"at":"2020-01-01T00:00:00Z"}"#).await;
    produce(&bootstrap, "later", "b", r#"{"at":"2099-01-01T00:00:00Z"}"#).await;
    let alter = AlterConfig::new(ResourceSpecifier::Topic("later")).set("temporal.fields", "/at");
    let results = admin.alter_configs([&alter], &options).await.unwrap();
    assert!(results[0].is_ok(), "{results:?}");
    let records = read_all(&bootstrap, "later", 4, Duration::from_secs(10)).await;
    assert_eq!(records.len(), 4);
    assert_eq!(records[3].key(), Some(&b"a"[..]));
    assert_eq!(
        header(&records[3], "kairos.due.at").as_deref(),
        Some("1577836800000")
    );
    broker.shutdown().await.unwrap();
}

/// The next due entities are listed in due order with their keys, and the due metrics count
/// entities, malformed fields, fires and lateness.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn next_due_listing_and_due_metrics() {
    let clock = ManualClock::new(T0);
    let broker = Broker::builder()
        .temp_dir()
        .listener("127.0.0.1:0")
        .config("kairos.metrics.listener", "127.0.0.1:0")
        .clock(Arc::new(clock.clone()))
        .start()
        .await
        .unwrap();
    let bootstrap = broker.bootstrap_servers();
    let admin_http = broker.metrics_addr().unwrap();
    support::create_topic(&bootstrap, "listed", 1, &[("temporal.fields", "/at")]).await;
    produce(
        &bootstrap,
        "listed",
        "later",
        &format!(r#"{{"at":{}}}"#, T0 + 2_000),
    )
    .await;
    produce(
        &bootstrap,
        "listed",
        "sooner",
        &format!(r#"{{"at":{}}}"#, T0 + 1_000),
    )
    .await;
    produce(&bootstrap, "listed", "broken", r#"{"at":"someday"}"#).await;
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    let listing: serde_json::Value = loop {
        let body = support::http_get(admin_http, "/due?topic=listed&limit=5").await;
        let listing: serde_json::Value = serde_json::from_str(&body).unwrap();
        if listing.as_array().unwrap().len() == 2 || std::time::Instant::now() > deadline {
            break listing;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(listing[0]["key"], "sooner");
    assert_eq!(listing[0]["due_at"], T0 + 1_000);
    assert_eq!(listing[0]["field"], "/at");
    assert_eq!(listing[1]["key"], "later");
    clock.set_ms(T0 + 5_000);
    assert_eq!(
        read_all(&bootstrap, "listed", 5, Duration::from_secs(10))
            .await
            .len(),
        5
    );
    // Consumers see a fire as soon as it is appended; the pulse counts it once the step has
    // also recorded its fired state, a moment later.
    let expected = [
        "kairos_due_fires_total 2",
        "kairos_due_malformed 1",
        "kairos_due_backlog 0",
        "kairos_due_lateness_seconds_count 2",
    ];
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        let metrics = support::http_get(admin_http, "/metrics").await;
        let missing: Vec<_> = expected.iter().filter(|e| !metrics.contains(*e)).collect();
        if missing.is_empty() {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "{missing:?} in\n{metrics}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(
        support::http_get(admin_http, "/due?topic=listed")
            .await
            .starts_with("[]")
    );
    broker.shutdown().await.unwrap();
}

/// The real binary writes due index snapshots periodically, so one exists after a kill -9; the
/// restart loads it, and nothing fires twice.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn periodic_snapshots_survive_kill_9_and_nothing_fires_twice() {
    let dir = tempfile::tempdir().unwrap();
    let extra = ["-o", "kairos.due.snapshot.interval.ms=1000"];
    let mut broker = support::BinaryBroker::start(dir.path(), &extra);
    let bootstrap = broker.bootstrap.clone();
    support::create_topic(&bootstrap, "crashy", 1, &[("temporal.fields", "/at")]).await;
    produce(&bootstrap, "crashy", "past", r#"{"at":"2020-01-01"}"#).await;
    produce(&bootstrap, "crashy", "future", r#"{"at":"2999-01-01"}"#).await;
    assert_eq!(
        read_all(&bootstrap, "crashy", 3, Duration::from_secs(10))
            .await
            .len(),
        3
    );
    let snapshots = dir.path().join("__due_index");
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while std::fs::read_dir(&snapshots).map_or(0, |d| d.count()) == 0 {
        assert!(std::time::Instant::now() < deadline, "no periodic snapshot");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    broker.kill9();
    let broker = support::BinaryBroker::start(dir.path(), &extra);
    let records = read_all(&broker.bootstrap, "crashy", 4, Duration::from_secs(2)).await;
    assert_eq!(records.len(), 3, "the fire is not repeated after the crash");
}
