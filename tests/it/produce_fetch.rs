//! Produce and fetch through librdkafka (the `rdkafka` crate): ordering, keys, values, headers,
//! offsets, compression codecs, acks levels, ListOffsets by time, long-poll wake-ups.

use std::time::{Duration, Instant};

use rdkafka::Message;
use rdkafka::Offset;
use rdkafka::consumer::Consumer;
use rdkafka::message::{Header, Headers, OwnedHeaders};
use rdkafka::producer::FutureRecord;
use rdkafka::util::Timeout;

use crate::support::{self, TestBroker};

/// Produces `count` keyed records with a header round-robin over `partitions` partitions, then
/// consumes them all and checks each partition's order, keys, values, headers and offsets.
async fn check_round_trip(
    bootstrap: &str,
    count: usize,
    partitions: i32,
    acks: &str,
    extra: &[(&str, &str)],
) {
    let topic = support::topic_name("roundtrip");
    support::create_topic(bootstrap, &topic, partitions, &[]).await;
    let producer = support::producer(bootstrap, acks, extra);
    let mut deliveries = Vec::with_capacity(count);
    for i in 0..count {
        let key = format!("key-{i}");
        let value = format!("value-{i}");
        let partition = i32::try_from(i).unwrap() % partitions;
        let headers = OwnedHeaders::new().insert(Header {
            key: "seq",
            value: Some(&i.to_string()),
        });
        let mut record = FutureRecord::to(&topic)
            .key(&key)
            .payload(&value)
            .partition(partition)
            .headers(headers);
        loop {
            match producer.send_result(record) {
                Ok(delivery) => {
                    deliveries.push(delivery);
                    break;
                }
                // Queue full: let librdkafka drain, then retry the same record.
                Err((_, returned)) => {
                    record = returned;
                    tokio::time::sleep(Duration::from_millis(5)).await;
                }
            }
        }
    }
    let mut expected_offsets = vec![0_i64; usize::try_from(partitions).unwrap()];
    for (i, delivery) in deliveries.into_iter().enumerate() {
        let delivery = delivery
            .await
            .unwrap()
            .unwrap_or_else(|(e, _)| panic!("record {i}: {e}"));
        if acks != "0" {
            let partition = usize::try_from(delivery.partition).unwrap();
            assert_eq!(delivery.offset, expected_offsets[partition], "record {i}");
            expected_offsets[partition] += 1;
        }
    }
    let consumer = support::consumer(bootstrap);
    support::assign(&consumer, &topic, partitions, Offset::Beginning);
    let messages = support::consume(&consumer, count, Duration::from_secs(60));
    assert_eq!(messages.len(), count, "consumed all records");
    let mut next = vec![(0_i64, 0_usize); usize::try_from(partitions).unwrap()];
    for (index, message) in messages.iter().enumerate() {
        let partition = usize::try_from(message.partition()).unwrap();
        let (expected_offset, seen) = next[partition];
        let i = seen * usize::try_from(partitions).unwrap() + partition;
        assert_eq!(message.offset(), expected_offset, "message {index}");
        assert_eq!(message.key(), Some(format!("key-{i}").as_bytes()));
        assert_eq!(message.payload(), Some(format!("value-{i}").as_bytes()));
        let header = message.headers().expect("headers").get(0);
        assert_eq!(header.key, "seq");
        assert_eq!(header.value, Some(i.to_string().as_bytes()));
        next[partition] = (expected_offset + 1, seen + 1);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn hundred_thousand_keyed_records_with_headers_on_three_partitions() {
    let dir = tempfile::tempdir().unwrap();
    for (kind, broker) in support::each_broker(dir.path()).await {
        let started = Instant::now();
        check_round_trip(&broker.bootstrap(), 100_000, 3, "all", &[]).await;
        eprintln!("{kind}: 100k round trip in {:?}", started.elapsed());
        broker.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn all_four_compression_codecs() {
    let broker = support::embedded().await;
    for codec in ["gzip", "snappy", "lz4", "zstd"] {
        check_round_trip(
            &broker.bootstrap_servers(),
            2_000,
            2,
            "1",
            &[("compression.codec", codec)],
        )
        .await;
    }
    broker.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn acks_zero_one_and_all() {
    let dir = tempfile::tempdir().unwrap();
    let broker = TestBroker::Binary(support::BinaryBroker::start(dir.path(), &[]));
    for acks in ["0", "1", "all"] {
        check_round_trip(&broker.bootstrap(), 1_000, 2, acks, &[]).await;
    }
    broker.stop().await;
}

/// ListOffsets by timestamp: the first offset whose timestamp is at or after the target; none
/// after the last record answers "no offset" (librdkafka shows it as the end).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn list_offsets_by_time() {
    let broker = support::embedded().await;
    let bootstrap = broker.bootstrap_servers();
    let topic = support::topic_name("by-time");
    support::create_topic(&bootstrap, &topic, 1, &[]).await;
    let producer = support::producer(&bootstrap, "all", &[]);
    for (i, timestamp) in [1_000_i64, 2_000, 2_000, 3_000].iter().enumerate() {
        let value = i.to_string();
        let _ = producer
            .send(
                FutureRecord::<(), _>::to(&topic)
                    .payload(&value)
                    .timestamp(*timestamp),
                Timeout::Never,
            )
            .await
            .unwrap();
    }
    let consumer = support::consumer(&bootstrap);
    for (target, expected) in [
        (0, Offset::Offset(0)),
        (1_500, Offset::Offset(1)),
        (2_000, Offset::Offset(1)),
        (3_000, Offset::Offset(3)),
        (3_001, Offset::End),
    ] {
        let mut list = rdkafka::TopicPartitionList::new();
        list.add_partition_offset(&topic, 0, Offset::Offset(target))
            .unwrap();
        let found = consumer
            .offsets_for_times(list, Duration::from_secs(10))
            .unwrap();
        let offset = found.find_partition(&topic, 0).unwrap().offset();
        assert_eq!(offset, expected, "timestamp {target}");
    }
    let (low, high) = consumer
        .fetch_watermarks(&topic, 0, Duration::from_secs(10))
        .unwrap();
    assert_eq!((low, high), (0, 4));
    broker.shutdown().await.unwrap();
}

/// A consumer parked in a long-poll (fetch.wait.max.ms = 10 s) gets a record produced later
/// well before its wait expires: appends wake fetches, nothing polls.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn long_poll_is_woken_by_append() {
    let broker = support::embedded().await;
    let bootstrap = broker.bootstrap_servers();
    let topic = support::topic_name("long-poll");
    support::create_topic(&bootstrap, &topic, 1, &[]).await;
    let consumer = support::client_config(&bootstrap)
        .set("group.id", "kairos-tests")
        .set("fetch.wait.max.ms", "10000")
        .set("fetch.min.bytes", "1")
        .set("enable.auto.commit", "false")
        .create::<rdkafka::consumer::BaseConsumer>()
        .unwrap();
    support::assign(&consumer, &topic, 1, Offset::Beginning);
    // Let the consumer reach its parked fetch.
    let _ = consumer.poll(Duration::from_millis(1_500));
    let producer = support::producer(&bootstrap, "1", &[]);
    let sent = Instant::now();
    let _ = producer
        .send(
            FutureRecord::<(), _>::to(&topic).payload("wake"),
            Timeout::Never,
        )
        .await
        .unwrap();
    let messages = support::consume(&consumer, 1, Duration::from_secs(9));
    assert_eq!(messages.len(), 1);
    assert!(
        sent.elapsed() < Duration::from_secs(5),
        "took {:?}",
        sent.elapsed()
    );
    // Close the clients while the broker still answers, so they do not wait on it.
    drop((producer, consumer));
    broker.shutdown().await.unwrap();
}
