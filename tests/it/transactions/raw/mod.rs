//! The transaction APIs on a raw socket, at fixed versions inside Apache Kafka 4.0's range, for
//! checks of exact error codes and offsets. Each helper sends one request (retrying only the
//! answers Kafka documents as "try again": a coordinator still loading, or the previous
//! transaction's markers still being written) and returns what the test asserts on. `read`
//! reads back: Fetch answers turned into records the way a consumer does.

use std::time::{Duration, Instant};

use bytes::Bytes;
use kafka_protocol::messages::add_partitions_to_txn_request::{
    AddPartitionsToTxnTopic, AddPartitionsToTxnTransaction,
};
use kafka_protocol::messages::create_topics_request::{CreatableTopic, CreatableTopicConfig};
use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
use kafka_protocol::messages::{
    AddPartitionsToTxnRequest, AddPartitionsToTxnResponse, ApiKey, ApiVersionsRequest,
    CreateTopicsRequest, EndTxnRequest, InitProducerIdRequest, ProduceRequest, ProducerId,
    TopicName, TransactionalId,
};
use kafka_protocol::protocol::StrBytes;
use kairos_storage::builder::RecordBatchBuilder;

use crate::wire::Wire;

mod read;

pub(crate) use read::*;

/// Versions used on the wire. Client versions of each API (AddPartitionsToTxn v4+ is the
/// batched form Kafka's brokers use among themselves), all inside Kafka 4.0's range.
pub(crate) const INIT_PRODUCER_ID: i16 = 4;
pub(crate) const ADD_PARTITIONS: i16 = 3;
pub(crate) const ADD_PARTITIONS_BATCHED: i16 = 4;
pub(crate) const END_TXN: i16 = 3;
/// Produce v10: below v11, so a partition the coordinator does not know is refused with
/// INVALID_TXN_STATE rather than TRANSACTION_ABORTABLE (see `protocol.rs`).
pub(crate) const PRODUCE: i16 = 10;
pub(crate) const FETCH: i16 = 12;
pub(crate) const LIST_OFFSETS: i16 = 9;
pub(crate) const DESCRIBE_TRANSACTIONS: i16 = 0;
pub(crate) const LIST_TRANSACTIONS: i16 = 1;
pub(crate) const DESCRIBE_PRODUCERS: i16 = 0;

/// Kafka error codes these tests expect.
pub(crate) mod code {
    pub(crate) const NONE: i16 = 0;
    pub(crate) const COORDINATOR_LOAD_IN_PROGRESS: i16 = 14;
    pub(crate) const COORDINATOR_NOT_AVAILABLE: i16 = 15;
    pub(crate) const OUT_OF_ORDER_SEQUENCE_NUMBER: i16 = 45;
    pub(crate) const INVALID_PRODUCER_EPOCH: i16 = 47;
    pub(crate) const INVALID_TXN_STATE: i16 = 48;
    pub(crate) const CONCURRENT_TRANSACTIONS: i16 = 51;
    pub(crate) const PRODUCER_FENCED: i16 = 90;
    pub(crate) const TRANSACTION_ABORTABLE: i16 = 120;
}

/// `isolation_level` on the wire.
pub(crate) const READ_UNCOMMITTED: i8 = 0;
pub(crate) const READ_COMMITTED: i8 = 1;

pub(crate) fn text(value: &str) -> StrBytes {
    StrBytes::from_string(value.to_owned())
}

pub(crate) fn topic_name(name: &str) -> TopicName {
    TopicName(text(name))
}

pub(crate) fn txn_id(name: &str) -> TransactionalId {
    TransactionalId(text(name))
}

/// Asserts that each `(api, version)` is advertised, so a missing API fails with its name
/// rather than as a closed connection.
pub(crate) fn require(wire: &mut Wire, wanted: &[(ApiKey, i16)]) {
    let response = wire.call(3, &ApiVersionsRequest::default());
    for (api, version) in wanted {
        let range = response
            .api_keys
            .iter()
            .find(|k| k.api_key == *api as i16)
            .map(|k| (k.min_version, k.max_version));
        assert!(
            range.is_some_and(|(min, max)| (min..=max).contains(version)),
            "{api:?} v{version} is not advertised (advertised: {range:?})"
        );
    }
}

/// Repeats `call` while it answers one of Kafka's "try again" codes, for up to 10 s.
fn retried<T>(what: &str, mut call: impl FnMut() -> (i16, T)) -> (i16, T) {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let (error, value) = call();
        let again = matches!(
            error,
            code::COORDINATOR_LOAD_IN_PROGRESS
                | code::COORDINATOR_NOT_AVAILABLE
                | code::CONCURRENT_TRANSACTIONS
        );
        if !again || Instant::now() > deadline {
            return (error, value);
        }
        eprintln!("{what}: error {error}, retrying");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Creates `topic` with `partitions` partitions.
pub(crate) fn create_topic(wire: &mut Wire, topic: &str, partitions: i32) {
    create_topic_with(wire, topic, partitions, &[]);
}

/// Creates `topic` with `partitions` partitions and topic `configs`.
pub(crate) fn create_topic_with(
    wire: &mut Wire,
    topic: &str,
    partitions: i32,
    configs: &[(&str, &str)],
) {
    let request = CreateTopicsRequest::default()
        .with_timeout_ms(10_000)
        .with_topics(vec![
            CreatableTopic::default()
                .with_name(topic_name(topic))
                .with_num_partitions(partitions)
                .with_replication_factor(1)
                .with_configs(
                    configs
                        .iter()
                        .map(|(name, value)| {
                            CreatableTopicConfig::default()
                                .with_name(text(name))
                                .with_value(Some(text(value)))
                        })
                        .collect(),
                ),
        ]);
    let response = wire.call(7, &request);
    assert_eq!(response.topics[0].error_code, 0, "create {topic}");
}

/// InitProducerId: `(error, producer id, epoch)`. `transactional_id` `None` is an idempotent
/// producer.
pub(crate) fn init_producer_id(
    wire: &mut Wire,
    transactional_id: Option<&str>,
    timeout_ms: i32,
) -> (i16, i64, i16) {
    let request = InitProducerIdRequest::default()
        .with_transactional_id(transactional_id.map(txn_id))
        .with_transaction_timeout_ms(timeout_ms)
        .with_producer_id(ProducerId(-1))
        .with_producer_epoch(-1);
    let (error, (pid, epoch)) = retried("InitProducerId", || {
        let response = wire.call(INIT_PRODUCER_ID, &request);
        (
            response.error_code,
            (response.producer_id.0, response.producer_epoch),
        )
    });
    (error, pid, epoch)
}

/// InitProducerId that must succeed: `(producer id, epoch)`.
pub(crate) fn init(wire: &mut Wire, transactional_id: &str) -> (i64, i16) {
    let (error, pid, epoch) = init_producer_id(wire, Some(transactional_id), 60_000);
    assert_eq!(error, code::NONE, "InitProducerId {transactional_id}");
    (pid, epoch)
}

fn topics_of(partitions: &[(&str, i32)]) -> Vec<AddPartitionsToTxnTopic> {
    let mut topics: Vec<AddPartitionsToTxnTopic> = Vec::new();
    for (topic, partition) in partitions {
        match topics.iter_mut().find(|t| t.name.0.as_str() == *topic) {
            Some(found) => found.partitions.push(*partition),
            None => topics.push(
                AddPartitionsToTxnTopic::default()
                    .with_name(topic_name(topic))
                    .with_partitions(vec![*partition]),
            ),
        }
    }
    topics
}

/// AddPartitionsToTxn v3 (the client form): the error of each partition, in request order.
pub(crate) fn add_partitions(
    wire: &mut Wire,
    transactional_id: &str,
    (pid, epoch): (i64, i16),
    partitions: &[(&str, i32)],
) -> Vec<i16> {
    let request = AddPartitionsToTxnRequest::default()
        .with_v3_and_below_transactional_id(txn_id(transactional_id))
        .with_v3_and_below_producer_id(ProducerId(pid))
        .with_v3_and_below_producer_epoch(epoch)
        .with_v3_and_below_topics(topics_of(partitions));
    let (_, errors) = retried("AddPartitionsToTxn", || {
        let response = wire.call(ADD_PARTITIONS, &request);
        let errors: Vec<i16> = partitions
            .iter()
            .map(|(topic, partition)| partition_error_v3(&response, topic, *partition))
            .collect();
        let first = errors.iter().copied().find(|e| *e != 0).unwrap_or(0);
        (first, errors)
    });
    errors
}

/// AddPartitionsToTxn that must succeed.
pub(crate) fn add(
    wire: &mut Wire,
    transactional_id: &str,
    producer: (i64, i16),
    partitions: &[(&str, i32)],
) {
    let errors = add_partitions(wire, transactional_id, producer, partitions);
    assert!(
        errors.iter().all(|e| *e == code::NONE),
        "AddPartitionsToTxn {transactional_id} {partitions:?}: {errors:?}"
    );
}

fn partition_error_v3(response: &AddPartitionsToTxnResponse, topic: &str, partition: i32) -> i16 {
    response
        .results_by_topic_v3_and_below
        .iter()
        .filter(|t| t.name.0.as_str() == topic)
        .flat_map(|t| &t.results_by_partition)
        .find(|p| p.partition_index == partition)
        .unwrap_or_else(|| panic!("no result for {topic}-{partition}: {response:?}"))
        .partition_error_code
}

/// One transaction of a batched (v4+) AddPartitionsToTxn.
pub(crate) struct BatchedTxn<'a> {
    pub(crate) transactional_id: &'a str,
    pub(crate) producer: (i64, i16),
    pub(crate) verify_only: bool,
    pub(crate) partitions: &'a [(&'a str, i32)],
}

/// AddPartitionsToTxn v4 with several transactions: the top-level error, and per transaction
/// the errors of its partitions in request order.
pub(crate) fn add_partitions_batched(
    wire: &mut Wire,
    transactions: &[BatchedTxn<'_>],
) -> (i16, Vec<Vec<i16>>) {
    let request = AddPartitionsToTxnRequest::default().with_transactions(
        transactions
            .iter()
            .map(|t| {
                AddPartitionsToTxnTransaction::default()
                    .with_transactional_id(txn_id(t.transactional_id))
                    .with_producer_id(ProducerId(t.producer.0))
                    .with_producer_epoch(t.producer.1)
                    .with_verify_only(t.verify_only)
                    .with_topics(topics_of(t.partitions))
            })
            .collect(),
    );
    let response = wire.call(ADD_PARTITIONS_BATCHED, &request);
    let per_transaction = transactions
        .iter()
        .map(|t| {
            let result = response
                .results_by_transaction
                .iter()
                .find(|r| r.transactional_id.0.as_str() == t.transactional_id)
                .unwrap_or_else(|| panic!("no result for {}: {response:?}", t.transactional_id));
            t.partitions
                .iter()
                .map(|(topic, partition)| {
                    result
                        .topic_results
                        .iter()
                        .filter(|r| r.name.0.as_str() == *topic)
                        .flat_map(|r| &r.results_by_partition)
                        .find(|p| p.partition_index == *partition)
                        .map_or(-1, |p| p.partition_error_code)
                })
                .collect()
        })
        .collect();
    (response.error_code, per_transaction)
}

/// EndTxn: the error code (retried while the previous transaction completes).
pub(crate) fn end_txn(
    wire: &mut Wire,
    transactional_id: &str,
    (pid, epoch): (i64, i16),
    commit: bool,
) -> i16 {
    let request = EndTxnRequest::default()
        .with_transactional_id(txn_id(transactional_id))
        .with_producer_id(ProducerId(pid))
        .with_producer_epoch(epoch)
        .with_committed(commit);
    retried("EndTxn", || (wire.call(END_TXN, &request).error_code, ())).0
}

/// The wall clock in ms: record timestamps. A fixed old timestamp would make every append roll
/// a new segment (`segment.ms` counts from the first batch's timestamp, as in Kafka).
pub(crate) fn now_ms() -> i64 {
    let since_epoch = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap();
    i64::try_from(since_epoch.as_millis()).unwrap()
}

/// A batch of `values` (keys `None`, timestamps now) from `producer` starting at `sequence`.
pub(crate) fn batch(
    producer: Option<(i64, i16)>,
    sequence: i32,
    transactional: bool,
    values: &[String],
) -> Vec<u8> {
    let mut builder = RecordBatchBuilder::new().transactional(transactional);
    if let Some((pid, epoch)) = producer {
        builder = builder.producer(pid, epoch, sequence);
    }
    let timestamp = now_ms();
    for value in values {
        builder = builder.record(None, Some(value.as_bytes()), timestamp);
    }
    builder.build()
}

/// Produce (acks=-1) of one batch to one partition at `version`: `(error, base offset)`.
pub(crate) fn produce_at(
    wire: &mut Wire,
    version: i16,
    transactional_id: Option<&str>,
    (topic, partition): (&str, i32),
    records: Vec<u8>,
) -> (i16, i64) {
    let request = ProduceRequest::default()
        .with_transactional_id(transactional_id.map(txn_id))
        .with_acks(-1)
        .with_timeout_ms(10_000)
        .with_topic_data(vec![
            TopicProduceData::default()
                .with_name(topic_name(topic))
                .with_partition_data(vec![
                    PartitionProduceData::default()
                        .with_index(partition)
                        .with_records(Some(Bytes::from(records))),
                ]),
        ]);
    let response = wire.call(version, &request);
    let answer = &response.responses[0].partition_responses[0];
    (answer.error_code, answer.base_offset)
}

/// Produce at the default version.
pub(crate) fn produce(
    wire: &mut Wire,
    transactional_id: Option<&str>,
    target: (&str, i32),
    records: Vec<u8>,
) -> (i16, i64) {
    produce_at(wire, PRODUCE, transactional_id, target, records)
}
