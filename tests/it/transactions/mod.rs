//! Exactly-once: transactions and idempotence end to end. Real librdkafka clients commit and
//! abort (`client`), a consume-transform-produce application survives SIGKILL (`exactly_once`),
//! zombies are fenced (`fencing`), the broker is killed mid-transaction (`crash`); raw sockets
//! check idempotent sequences (`idempotence`), the transaction APIs' exact answers (`protocol`),
//! transactional offset commits (`offsets`) and transaction timeouts (`timeouts`); random
//! interleavings are checked against a model (`model`). Shared here: the broker configs, client configs, and a reader that consumes
//! a topic to its end under an isolation level.

mod client;
mod crash;
mod exactly_once;
mod fencing;
mod idempotence;
mod model;
mod offsets;
mod protocol;
pub(crate) mod raw;
mod timeouts;

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use kairos::{Broker, BrokerHandle};
use rdkafka::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::KafkaError;
use rdkafka::producer::FutureProducer;
use rdkafka::{Message, Offset, TopicPartitionList};

use crate::support;

/// Broker configs that shrink Kafka's transaction and group timers: the timed-out transaction
/// scan runs every 200 ms (not 10 s), so an abandoned transaction is aborted about its own
/// timeout after it started; groups form without the 3 s initial delay; three partitions each
/// for `__consumer_offsets` and `__transaction_state`, so coordinators share them.
pub(crate) const TXN_CONFIGS: &[(&str, &str)] = &[
    ("group.initial.rebalance.delay.ms", "0"),
    ("group.min.session.timeout.ms", "500"),
    ("offsets.topic.num.partitions", "3"),
    ("transaction.state.log.num.partitions", "3"),
    (
        "transaction.abort.timed.out.transaction.cleanup.interval.ms",
        "200",
    ),
];

/// A builder with `TXN_CONFIGS` on an ephemeral port; add a data dir (or `temp_dir`).
pub(crate) fn txn_broker_builder() -> kairos::BrokerBuilder {
    TXN_CONFIGS.iter().fold(
        Broker::builder().listener("127.0.0.1:0"),
        |builder, (name, value)| builder.config(name, value),
    )
}

/// An embedded broker with `TXN_CONFIGS` and a temporary data dir.
pub(crate) async fn txn_broker() -> BrokerHandle {
    txn_broker_builder()
        .temp_dir()
        .start()
        .await
        .expect("embedded broker starts")
}

/// `TXN_CONFIGS` as `kairos` binary flags.
pub(crate) fn txn_binary_args() -> Vec<String> {
    TXN_CONFIGS
        .iter()
        .flat_map(|(name, value)| ["-o".to_owned(), format!("{name}={value}")])
        .collect()
}

/// librdkafka's debug contexts for these tests when diagnosing:
/// `KAIROS_TEST_RDKAFKA_DEBUG=eos,protocol,cgrp` prints the transaction and group exchanges.
fn with_debug(config: &mut ClientConfig) {
    if let Ok(debug) = std::env::var("KAIROS_TEST_RDKAFKA_DEBUG") {
        let _ = config.set("debug", debug);
    }
}

/// A transactional producer config: `transactional.id`, a 10 s transaction timeout (librdkafka's
/// 60 s default would make a stuck transaction outlive the test), and `extra` on top.
pub(crate) fn txn_producer_config(
    bootstrap: &str,
    transactional_id: &str,
    extra: &[(&str, &str)],
) -> ClientConfig {
    let mut config = support::client_config(bootstrap);
    config
        .set("transactional.id", transactional_id)
        .set("transaction.timeout.ms", "10000")
        .set("message.timeout.ms", "10000")
        .set("linger.ms", "5");
    for (key, value) in extra {
        config.set(*key, *value);
    }
    with_debug(&mut config);
    config
}

/// A transactional `FutureProducer`.
pub(crate) fn txn_producer(
    bootstrap: &str,
    transactional_id: &str,
    extra: &[(&str, &str)],
) -> FutureProducer {
    txn_producer_config(bootstrap, transactional_id, extra)
        .create()
        .expect("transactional producer")
}

/// The two isolation levels, by their librdkafka names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Isolation {
    ReadCommitted,
    ReadUncommitted,
}

impl Isolation {
    fn name(self) -> &'static str {
        match self {
            Isolation::ReadCommitted => "read_committed",
            Isolation::ReadUncommitted => "read_uncommitted",
        }
    }
}

/// A record as an application receives it.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct Seen {
    pub(crate) partition: i32,
    pub(crate) offset: i64,
    pub(crate) key: String,
    pub(crate) value: String,
}

/// An assigned (group-less) consumer at `isolation` that reports partition EOF: librdkafka
/// signals EOF when its fetch position reaches the end the broker reports, which is the high
/// watermark under read_uncommitted and the LSO under read_committed.
pub(crate) fn reader(bootstrap: &str, isolation: Isolation) -> BaseConsumer {
    let mut config = support::client_config(bootstrap);
    config
        .set("group.id", support::topic_name("txn-reader"))
        .set("enable.auto.commit", "false")
        .set("fetch.wait.max.ms", "50")
        .set("enable.partition.eof", "true")
        .set("isolation.level", isolation.name())
        .set("check.crcs", "true");
    with_debug(&mut config);
    config.create().expect("reader")
}

/// Reads `topic`'s partitions `0..partitions` from the beginning until librdkafka reports EOF on
/// each: everything up to the end the broker offers at that isolation level. Panics after
/// `timeout` (an end that is never reached: a stuck LSO).
pub(crate) fn read_to_end(
    bootstrap: &str,
    topic: &str,
    partitions: i32,
    isolation: Isolation,
    timeout: Duration,
) -> Vec<Seen> {
    let consumer = reader(bootstrap, isolation);
    let mut list = TopicPartitionList::new();
    for partition in 0..partitions {
        list.add_partition_offset(topic, partition, Offset::Beginning)
            .unwrap();
    }
    consumer.assign(&list).unwrap();
    let deadline = Instant::now() + timeout;
    let mut at_end = BTreeSet::new();
    let mut seen = Vec::new();
    while at_end.len() < usize::try_from(partitions).unwrap() {
        assert!(
            Instant::now() < deadline,
            "{isolation:?} read of {topic} reached the end of only {at_end:?} within \
             {timeout:?}; {} records so far",
            seen.len()
        );
        match consumer.poll(Duration::from_millis(100)) {
            Some(Ok(message)) => seen.push(Seen {
                partition: message.partition(),
                offset: message.offset(),
                key: String::from_utf8_lossy(message.key().unwrap_or_default()).into_owned(),
                value: String::from_utf8_lossy(message.payload().unwrap_or_default()).into_owned(),
            }),
            Some(Err(KafkaError::PartitionEOF(partition))) => {
                let _ = at_end.insert(partition);
            }
            Some(Err(error)) => panic!("{isolation:?} read of {topic}: {error}"),
            None => {}
        }
    }
    seen
}

/// Waits (raw ListOffsets) until every partition of `topic` has its LSO at its high watermark:
/// every transaction's markers are written. Returns the high watermarks.
pub(crate) fn wait_stable(address: &str, topic: &str, partitions: i32) -> Vec<i64> {
    let mut wire = crate::wire::Wire::connect(address);
    (0..partitions)
        .map(|p| raw::wait_stable(&mut wire, (topic, p), Duration::from_secs(20)))
        .collect()
}

/// Waits until the high watermark of each partition of `topic` is `expected[p]` (the markers
/// of ended transactions may be written after EndTxn is answered), then until it is stable.
pub(crate) fn wait_end_offsets(address: &str, topic: &str, expected: &[i64]) {
    let mut wire = crate::wire::Wire::connect(address);
    for (partition, want) in (0_i32..).zip(expected) {
        let deadline = Instant::now() + Duration::from_secs(20);
        let high = loop {
            let high = raw::latest(&mut wire, (topic, partition), raw::READ_UNCOMMITTED);
            if high >= *want || Instant::now() > deadline {
                break high;
            }
            std::thread::sleep(Duration::from_millis(20));
        };
        assert_eq!(high, *want, "{topic}-{partition}: high watermark");
        let _ = raw::wait_stable(&mut wire, (topic, partition), Duration::from_secs(20));
    }
}
