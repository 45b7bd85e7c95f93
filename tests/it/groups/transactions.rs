//! A group member's offsets inside transactions (consume-transform-produce, KIP-447): offsets
//! sent with a committed transaction become the group's commit, those of an aborted one never
//! do, and the output of the aborted transaction stays invisible to read_committed readers.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use rdkafka::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::Message;
use rdkafka::producer::{BaseProducer, BaseRecord, Producer};
use rdkafka::{Offset, TopicPartitionList};

use super::{blocking, classic_config, consumer_protocol_config, produce_per_partition};
use crate::support;

/// Polls `consumer` until it returned `count` records; panics on an error or after 15 s.
fn read(consumer: &BaseConsumer, count: usize) -> Vec<(i64, String)> {
    let deadline = Instant::now() + Duration::from_secs(15);
    let mut records = Vec::new();
    while records.len() < count {
        assert!(
            Instant::now() < deadline,
            "read {} of {count}",
            records.len()
        );
        match consumer.poll(Duration::from_millis(50)) {
            Some(Ok(m)) => records.push((
                m.offset(),
                String::from_utf8_lossy(m.payload().unwrap_or_default()).into_owned(),
            )),
            Some(Err(error)) => panic!("poll: {error}"),
            None => {}
        }
    }
    records
}

/// How: a member of the group reads ten records, produces them to an output topic in a
/// transaction with their offsets (`send_offsets_to_transaction`, which sends
/// AddOffsetsToTxn and TxnOffsetCommit with the member's group metadata) and commits; then
/// does the same with the next ten and aborts. A new member (`auto.offset.reset=error`)
/// resumes at offset 10, and a read_committed reader of the output sees only the first ten.
fn consume_transform_produce(bootstrap: &str, config: ClientConfig, input: &str, output: &str) {
    let mut config = config;
    let _ = config.set("isolation.level", "read_committed");
    let consumer: BaseConsumer = config.create().unwrap();
    consumer.subscribe(&[input]).unwrap();
    let producer: BaseProducer = support::client_config(bootstrap)
        .set("transactional.id", support::topic_name("ctp"))
        .set("transaction.timeout.ms", "10000")
        .create()
        .unwrap();
    producer.init_transactions(Duration::from_secs(10)).unwrap();
    for commit in [true, false] {
        let records = read(&consumer, 10);
        producer.begin_transaction().unwrap();
        for (_, value) in &records {
            producer
                .send(BaseRecord::<(), _>::to(output).payload(value))
                .unwrap();
        }
        let mut offsets = TopicPartitionList::new();
        let next = records.last().unwrap().0 + 1;
        offsets
            .add_partition_offset(input, 0, Offset::Offset(next))
            .unwrap();
        let metadata = consumer.group_metadata().expect("group metadata");
        producer
            .send_offsets_to_transaction(&offsets, &metadata, Duration::from_secs(10))
            .unwrap();
        // Serve the delivery reports first: abort refuses to run with unserved ones.
        producer.flush(Duration::from_secs(10)).unwrap();
        if commit {
            producer
                .commit_transaction(Duration::from_secs(10))
                .unwrap();
        } else {
            producer.abort_transaction(Duration::from_secs(10)).unwrap();
        }
    }
    drop(consumer);

    let _ = config.set("auto.offset.reset", "error");
    let resumed: BaseConsumer = config.create().unwrap();
    resumed.subscribe(&[input]).unwrap();
    let offsets: Vec<i64> = read(&resumed, 10).into_iter().map(|(o, _)| o).collect();
    assert_eq!(
        offsets,
        (10..20).collect::<Vec<_>>(),
        "the aborted offsets were not committed"
    );
    drop(resumed);

    let mut reader_config = support::client_config(bootstrap);
    let reader: BaseConsumer = reader_config
        .set("group.id", support::topic_name("ctp-reader"))
        .set("isolation.level", "read_committed")
        .set("enable.partition.eof", "true")
        .create()
        .unwrap();
    support::assign(&reader, output, 1, Offset::Beginning);
    let deadline = Instant::now() + Duration::from_secs(15);
    let mut values = BTreeSet::new();
    loop {
        assert!(
            Instant::now() < deadline,
            "output never reached its end: {values:?}"
        );
        match reader.poll(Duration::from_millis(50)) {
            Some(Ok(m)) => {
                let _ = values
                    .insert(String::from_utf8_lossy(m.payload().unwrap_or_default()).into_owned());
            }
            Some(Err(rdkafka::error::KafkaError::PartitionEOF(_))) => break,
            Some(Err(error)) => panic!("poll: {error}"),
            None => {}
        }
    }
    let expected: BTreeSet<String> = (0..10).map(|i| format!("0-{i}")).collect();
    assert_eq!(
        values, expected,
        "read_committed sees the committed transaction only"
    );
}

async fn run(config: impl Fn(&str, &str) -> ClientConfig) {
    let broker = support::group_broker().await;
    let bootstrap = broker.bootstrap_servers();
    let (input, output) = (
        support::topic_name("ctp-in"),
        support::topic_name("ctp-out"),
    );
    support::create_topic(&bootstrap, &input, 1, &[]).await;
    support::create_topic(&bootstrap, &output, 1, &[]).await;
    produce_per_partition(&bootstrap, &input, 1, 20).await;
    let config = config(&bootstrap, &support::topic_name("ctp-group"));
    let address = bootstrap.clone();
    blocking(move || consume_transform_produce(&address, config, &input, &output)).await;
    broker.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn classic_member_offsets_commit_and_abort_with_its_transaction() {
    run(classic_config).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn kip848_member_offsets_commit_and_abort_with_its_transaction() {
    run(|bootstrap, group| consumer_protocol_config(bootstrap, group, "uniform")).await;
}
