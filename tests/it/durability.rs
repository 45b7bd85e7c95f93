//! Restarts: clean (SIGTERM, embedded shutdown) and kill -9 of the real binary. Topics, ids,
//! configs, cluster id and every record acknowledged at acks=all survive; fetch resumes.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use kafka_protocol::messages::MetadataRequest;
use kafka_protocol::messages::metadata_request::MetadataRequestTopic;
use rdkafka::Message;
use rdkafka::Offset;
use rdkafka::admin::ResourceSpecifier;
use rdkafka::producer::FutureRecord;
use rdkafka::util::Timeout;

use crate::support::{self, BinaryBroker};
use crate::wire::Wire;

/// `(cluster id, topic id, leader epoch of partition 0)` as Metadata v12 reports them.
fn check_identity(address: &str, topic: &str) -> (String, uuid::Uuid, i32) {
    let mut wire = Wire::connect(address);
    let request = MetadataRequest::default().with_topics(Some(vec![
        MetadataRequestTopic::default().with_name(Some(kafka_protocol::messages::TopicName(
            topic.to_owned().into(),
        ))),
    ]));
    let response = wire.call(12, &request);
    let found = &response.topics[0];
    assert_eq!(found.error_code, 0);
    (
        response.cluster_id.unwrap().to_string(),
        found.topic_id,
        found.partitions[0].leader_epoch,
    )
}

async fn produce_acked(bootstrap: &str, topic: &str, range: std::ops::Range<usize>) {
    let producer = support::producer(bootstrap, "all", &[]);
    for i in range {
        let value = format!("v{i}");
        let _ = producer
            .send(
                FutureRecord::<(), _>::to(topic)
                    .payload(&value)
                    .partition(0),
                Timeout::Never,
            )
            .await
            .unwrap();
    }
}

fn consume_values(bootstrap: &str, topic: &str, count: usize) -> Vec<(i64, String)> {
    let consumer = support::consumer(bootstrap);
    support::assign(&consumer, topic, 1, Offset::Beginning);
    support::consume(&consumer, count, Duration::from_secs(30))
        .iter()
        .map(|m| {
            (
                m.offset(),
                String::from_utf8_lossy(m.payload().unwrap()).into_owned(),
            )
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn clean_restart_of_binary_and_embedded_keeps_everything() {
    for kind in ["binary", "embedded"] {
        let dir = tempfile::tempdir().unwrap();
        let topic = support::topic_name("restart");
        let start = |dir: &std::path::Path| {
            let dir = dir.to_path_buf();
            async move {
                if kind == "binary" {
                    support::TestBroker::Binary(BinaryBroker::start(&dir, &[]))
                } else {
                    support::TestBroker::Embedded(support::embedded_in(&dir).await)
                }
            }
        };
        let broker = start(dir.path()).await;
        let bootstrap = broker.bootstrap();
        support::create_topic(&bootstrap, &topic, 1, &[("retention.ms", "123456789")]).await;
        produce_acked(&bootstrap, &topic, 0..500).await;
        let before = {
            let (address, topic) = (bootstrap.clone(), topic.clone());
            tokio::task::spawn_blocking(move || check_identity(&address, &topic))
                .await
                .unwrap()
        };
        broker.stop().await;

        let broker = start(dir.path()).await;
        let bootstrap = broker.bootstrap();
        let after = {
            let (address, topic) = (bootstrap.clone(), topic.clone());
            tokio::task::spawn_blocking(move || check_identity(&address, &topic))
                .await
                .unwrap()
        };
        assert_eq!(before.0, after.0, "{kind}: cluster id persisted");
        assert_eq!(before.1, after.1, "{kind}: topic id persisted");
        assert!(after.2 >= before.2, "{kind}: leader epoch never lower");
        let described = support::admin(&bootstrap)
            .describe_configs(
                [&ResourceSpecifier::Topic(&topic)],
                &support::admin_options(),
            )
            .await
            .unwrap();
        let resource = described.into_iter().next().unwrap().unwrap();
        assert_eq!(
            resource.get("retention.ms").unwrap().value.as_deref(),
            Some("123456789")
        );
        produce_acked(&bootstrap, &topic, 500..600).await;
        let values = consume_values(&bootstrap, &topic, 600);
        let expected: Vec<(i64, String)> = (0..600).map(|i: i64| (i, format!("v{i}"))).collect();
        assert_eq!(values, expected, "{kind}");
        broker.stop().await;
    }
}

/// A producer sends acks=all records in a loop while the binary is killed with SIGKILL. After a
/// restart, every acknowledged record is there at its acknowledged offset, and the log is a
/// gap-free prefix of what was sent.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn kill_9_loses_nothing_acknowledged_at_acks_all() {
    let dir = tempfile::tempdir().unwrap();
    let topic = support::topic_name("kill9");
    let mut broker = BinaryBroker::start(dir.path(), &[]);
    let bootstrap = broker.bootstrap.clone();
    support::create_topic(&bootstrap, &topic, 1, &[]).await;

    let producer = support::producer(
        &bootstrap,
        "all",
        &[("message.timeout.ms", "3000"), ("retries", "0")],
    );
    let stop = Arc::new(AtomicBool::new(false));
    let mut acked: BTreeMap<i64, String> = BTreeMap::new();
    let mut sent = 0_usize;
    let killer = {
        let stop = Arc::clone(&stop);
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(1_500)).await;
            stop.store(true, Ordering::SeqCst);
        })
    };
    let mut in_flight = Vec::new();
    while !stop.load(Ordering::SeqCst) {
        let value = format!("k{sent}");
        sent += 1;
        if let Ok(delivery) = producer.send_result(
            FutureRecord::<(), _>::to(&topic)
                .payload(&value)
                .partition(0),
        ) {
            in_flight.push((value, delivery));
        }
        if in_flight.len() >= 64 {
            for (value, delivery) in in_flight.drain(..) {
                if let Ok(Ok(delivery)) = delivery.await {
                    let _ = acked.insert(delivery.offset, value);
                }
            }
        }
    }
    broker.kill9();
    for (value, delivery) in in_flight.drain(..) {
        if let Ok(Ok(delivery)) = delivery.await {
            let _ = acked.insert(delivery.offset, value);
        }
    }
    killer.await.unwrap();
    drop(producer);
    assert!(
        acked.len() > 100,
        "the test acknowledged only {} records",
        acked.len()
    );

    let broker = BinaryBroker::start(dir.path(), &[]);
    let last_acked = *acked.keys().last().unwrap();
    let values = consume_values(
        &broker.bootstrap,
        &topic,
        usize::try_from(last_acked + 1).unwrap(),
    );
    for (index, (offset, _)) in values.iter().enumerate() {
        assert_eq!(*offset, i64::try_from(index).unwrap(), "gap-free prefix");
    }
    for (offset, value) in &acked {
        let found = values.get(usize::try_from(*offset).unwrap());
        assert_eq!(
            found.map(|(_, v)| v),
            Some(value),
            "acknowledged offset {offset} survived"
        );
    }
}
