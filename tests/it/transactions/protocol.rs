//! The transaction APIs' exact answers on a raw socket: what DescribeTransactions,
//! ListTransactions, DescribeProducers, ListOffsets and Fetch say while a transaction is open
//! and after it ends; batched AddPartitionsToTxn (v4+); and KIP-890's refusal of a
//! transactional batch for a partition that is not part of the transaction.

use std::time::Duration;

use kafka_protocol::messages::describe_producers_request::TopicRequest;
use kafka_protocol::messages::{
    ApiKey, DescribeProducersRequest, DescribeTransactionsRequest, DescribeTransactionsResponse,
    ListTransactionsRequest, ProducerId,
};

use super::raw::{self, BatchedTxn, READ_COMMITTED, READ_UNCOMMITTED, code, text, txn_id};
use super::txn_broker;
use crate::groups::blocking;
use crate::wire::Wire;

/// TRANSACTIONAL_ID_NOT_FOUND: DescribeTransactions of an id the coordinator does not know.
const TRANSACTIONAL_ID_NOT_FOUND: i16 = 105;

fn describe(wire: &mut Wire, ids: &[&str]) -> DescribeTransactionsResponse {
    let request = DescribeTransactionsRequest::default()
        .with_transactional_ids(ids.iter().map(|id| txn_id(id)).collect());
    wire.call(raw::DESCRIBE_TRANSACTIONS, &request)
}

/// `(state, partitions of the transaction)` of `id`, asserting no error.
fn describe_one(wire: &mut Wire, id: &str) -> (String, Vec<(String, i32)>) {
    let response = describe(wire, &[id]);
    let state = &response.transaction_states[0];
    assert_eq!(state.error_code, code::NONE, "describe {id}: {state:?}");
    let mut partitions: Vec<(String, i32)> = state
        .topics
        .iter()
        .flat_map(|t| t.partitions.iter().map(|p| (t.topic.0.to_string(), *p)))
        .collect();
    partitions.sort();
    (state.transaction_state.to_string(), partitions)
}

/// The `(transactional id, producer id, state)` ListTransactions v1 lists with these filters.
fn list(
    wire: &mut Wire,
    states: &[&str],
    producer_ids: &[i64],
    duration_ms: i64,
) -> (Vec<(String, i64, String)>, Vec<String>) {
    let request = ListTransactionsRequest::default()
        .with_state_filters(states.iter().map(|s| text(s)).collect())
        .with_producer_id_filters(producer_ids.iter().map(|p| ProducerId(*p)).collect())
        .with_duration_filter(duration_ms);
    let response = wire.call(raw::LIST_TRANSACTIONS, &request);
    assert_eq!(response.error_code, code::NONE);
    let listed = response
        .transaction_states
        .iter()
        .map(|t| {
            (
                t.transactional_id.0.to_string(),
                t.producer_id.0,
                t.transaction_state.to_string(),
            )
        })
        .collect();
    let unknown = response
        .unknown_state_filters
        .iter()
        .map(ToString::to_string)
        .collect();
    (listed, unknown)
}

/// `(producer id, epoch, last sequence, last timestamp, current txn start offset)` of each
/// active producer of `topic`-`partition`.
fn producers(wire: &mut Wire, topic: &str, partition: i32) -> Vec<(i64, i32, i32, i64, i64)> {
    let request = DescribeProducersRequest::default().with_topics(vec![
        TopicRequest::default()
            .with_name(raw::topic_name(topic))
            .with_partition_indexes(vec![partition]),
    ]);
    let response = wire.call(raw::DESCRIBE_PRODUCERS, &request);
    let answer = &response.topics[0].partitions[0];
    assert_eq!(answer.error_code, code::NONE, "{answer:?}");
    answer
        .active_producers
        .iter()
        .map(|p| {
            (
                p.producer_id.0,
                p.producer_epoch,
                p.last_sequence,
                p.last_timestamp,
                p.current_txn_start_offset,
            )
        })
        .collect()
}

fn require_txn_apis(wire: &mut Wire) {
    raw::require(
        wire,
        &[
            (ApiKey::InitProducerId, raw::INIT_PRODUCER_ID),
            (ApiKey::AddPartitionsToTxn, raw::ADD_PARTITIONS_BATCHED),
            (ApiKey::EndTxn, raw::END_TXN),
            (ApiKey::DescribeTransactions, raw::DESCRIBE_TRANSACTIONS),
            (ApiKey::ListTransactions, raw::LIST_TRANSACTIONS),
            (ApiKey::DescribeProducers, raw::DESCRIBE_PRODUCERS),
        ],
    );
}

/// How: partition 0 gets two plain records (offsets 0, 1), three records of an open transaction
/// (2..=4) and one more plain record (5). While the transaction is open every API must say so:
/// DescribeTransactions `Ongoing` with its partition; ListTransactions finds it by state, by
/// producer id and by age, and reports an unknown state filter; DescribeProducers gives its
/// epoch, last sequence and first offset 2; the LSO is 2 by ListOffsets and by Fetch, whose
/// read_committed answer stops before it. After the commit: `CompleteCommit`, no partitions,
/// no open offset, and the LSO is the high watermark (7, past the COMMIT marker at 6).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_open_transaction_is_described_everywhere() {
    let broker = txn_broker().await;
    let address = broker.bootstrap_servers();
    blocking(move || {
        let mut wire = Wire::connect(&address);
        require_txn_apis(&mut wire);
        let topic = "described";
        raw::create_topic(&mut wire, topic, 2);
        let id = "describe-me";
        let plain = |wire: &mut Wire, values: &[String]| {
            raw::produce(wire, None, (topic, 0), raw::batch(None, 0, false, values))
        };
        assert_eq!(plain(&mut wire, &["p0".into(), "p1".into()]), (0, 0));
        let producer = raw::init(&mut wire, id);
        raw::add(&mut wire, id, producer, &[(topic, 0)]);
        let values: Vec<String> = (0..3).map(|i| format!("t{i}")).collect();
        let before_ms = raw::now_ms();
        let batch = raw::batch(Some(producer), 0, true, &values);
        let after_ms = raw::now_ms();
        assert_eq!(raw::produce(&mut wire, Some(id), (topic, 0), batch), (0, 2));
        assert_eq!(plain(&mut wire, &["p2".into()]), (0, 5));

        let (state, partitions) = describe_one(&mut wire, id);
        assert_eq!(state, "Ongoing");
        assert_eq!(partitions, vec![(topic.to_owned(), 0)]);
        let full = describe(&mut wire, &[id, "never-seen"]);
        let described = &full.transaction_states[0];
        assert_eq!(
            (described.producer_id.0, described.producer_epoch),
            producer
        );
        assert_eq!(described.transaction_timeout_ms, 60_000);
        assert!(described.transaction_start_time_ms > 0);
        assert_eq!(
            full.transaction_states[1].error_code, TRANSACTIONAL_ID_NOT_FOUND,
            "an unknown transactional id"
        );

        let me = (id.to_owned(), producer.0, "Ongoing".to_owned());
        let (ongoing, _) = list(&mut wire, &["Ongoing"], &[], -1);
        assert!(ongoing.contains(&me), "listed by state: {ongoing:?}");
        let (by_pid, _) = list(&mut wire, &[], &[producer.0], -1);
        assert_eq!(by_pid, vec![me.clone()], "listed by producer id");
        let (completed, _) = list(&mut wire, &["CompleteCommit", "CompleteAbort"], &[], -1);
        assert!(!completed.iter().any(|t| t.0 == id), "{completed:?}");
        let (_, unknown) = list(&mut wire, &["Ongoing", "NoSuchState"], &[], -1);
        assert_eq!(unknown, vec!["NoSuchState".to_owned()]);
        let (young, _) = list(&mut wire, &[], &[producer.0], 3_600_000);
        assert!(young.is_empty(), "not running for an hour: {young:?}");
        std::thread::sleep(Duration::from_millis(30));
        let (old, _) = list(&mut wire, &[], &[producer.0], 10);
        assert_eq!(old, vec![me], "running for more than 10 ms");

        let active = producers(&mut wire, topic, 0);
        assert_eq!(active.len(), 1, "{active:?}");
        let (pid, epoch, last_sequence, last_timestamp, txn_start) = active[0];
        assert_eq!(
            (pid, epoch, last_sequence, txn_start),
            (producer.0, i32::from(producer.1), 2, 2)
        );
        assert!(
            (before_ms..=after_ms).contains(&last_timestamp),
            "last timestamp {last_timestamp} is the batch's"
        );
        assert!(producers(&mut wire, topic, 1).is_empty());
        assert_eq!(raw::latest(&mut wire, (topic, 0), READ_COMMITTED), 2, "LSO");
        assert_eq!(raw::latest(&mut wire, (topic, 0), READ_UNCOMMITTED), 6);
        let fetched = raw::fetch(&mut wire, (topic, 0), 0, READ_COMMITTED);
        assert_eq!((fetched.last_stable_offset, fetched.high_watermark), (2, 6));
        let batches = raw::decode(&fetched.records);
        assert!(
            !batches.is_empty() && batches.iter().all(|b| b.last_offset < 2),
            "read_committed fetch stops at the LSO: {batches:?}"
        );

        assert_eq!(raw::end_txn(&mut wire, id, producer, true), code::NONE);
        raw::poll_until(
            Duration::from_secs(10),
            || format!("{id}: {:?}", describe_one(&mut Wire::connect(&address), id)),
            || describe_one(&mut wire, id) == ("CompleteCommit".to_owned(), Vec::new()),
        );
        assert_eq!(
            raw::wait_stable(&mut wire, (topic, 0), Duration::from_secs(10)),
            7
        );
        let after = producers(&mut wire, topic, 0);
        assert_eq!(after.len(), 1);
        assert_eq!(after[0].4, -1, "no open transaction: {after:?}");
        let (listed, _) = list(&mut wire, &["CompleteCommit"], &[producer.0], -1);
        assert_eq!(listed.len(), 1, "{listed:?}");
    })
    .await;
    broker.shutdown().await.unwrap();
}

/// How: a transaction adds partition 0 only. A transactional batch for partition 1 is refused
/// and the log of partition 1 is unchanged. Kafka 4.0's coordinator reports the partition as
/// TRANSACTION_ABORTABLE (120), which the partition leader passes on to Produce v11+ and turns
/// into INVALID_TXN_STATE (48) below v11 (`AddPartitionsToTxnManager`,
/// `produceRequestVersionToTransactionSupportedOperation`); both versions are checked. After
/// the commit, a batch for partition 0 without a new AddPartitionsToTxn is refused the same
/// way: the partition belonged to the finished transaction, not to a new one (the "hanging
/// transaction" KIP-890 closes).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_partition_outside_the_transaction_is_refused() {
    let broker = txn_broker().await;
    let address = broker.bootstrap_servers();
    blocking(move || {
        let mut wire = Wire::connect(&address);
        require_txn_apis(&mut wire);
        let topic = "kip890";
        raw::create_topic(&mut wire, topic, 2);
        let id = "kip890";
        let producer = raw::init(&mut wire, id);
        raw::add(&mut wire, id, producer, &[(topic, 0)]);
        let one = |v: &str| vec![v.to_owned()];
        let added = raw::batch(Some(producer), 0, true, &one("in"));
        assert_eq!(raw::produce(&mut wire, Some(id), (topic, 0), added), (0, 0));

        let log_before = raw::read_log(&mut wire, (topic, 1), READ_UNCOMMITTED).0;
        for (version, expected) in [
            (10, code::INVALID_TXN_STATE),
            (11, code::TRANSACTION_ABORTABLE),
        ] {
            let outside = raw::batch(Some(producer), 0, true, &one("out"));
            let (error, _) = raw::produce_at(&mut wire, version, Some(id), (topic, 1), outside);
            assert_eq!(
                error, expected,
                "Produce v{version} to a partition not in the transaction"
            );
        }
        assert_eq!(
            raw::read_log(&mut wire, (topic, 1), READ_UNCOMMITTED).0,
            log_before,
            "the refused batches were not written"
        );
        assert_eq!(raw::latest(&mut wire, (topic, 1), READ_UNCOMMITTED), 0);

        assert_eq!(raw::end_txn(&mut wire, id, producer, true), code::NONE);
        let end = raw::wait_stable(&mut wire, (topic, 0), Duration::from_secs(10));
        assert_eq!(end, 2, "the record and its COMMIT marker");
        let late = raw::batch(Some(producer), 1, true, &one("late"));
        assert_eq!(
            raw::produce(&mut wire, Some(id), (topic, 0), late).0,
            code::INVALID_TXN_STATE,
            "a batch after the commit, before the partition joined a new transaction"
        );
        assert_eq!(raw::latest(&mut wire, (topic, 0), READ_UNCOMMITTED), 2);
        assert_eq!(
            raw::read_committed(&mut wire, (topic, 0)),
            vec![(0, "in".to_owned())]
        );
    })
    .await;
    broker.shutdown().await.unwrap();
}

/// How: one AddPartitionsToTxn v4 carries two transactions (Kafka's batched broker form); both
/// get their partitions, as DescribeTransactions shows. `verify_only` then checks without adding:
/// an added partition answers NONE, one outside the transaction TRANSACTION_ABORTABLE (Kafka
/// 4.0's `handleVerifyPartitionsInTransaction`), and the transaction's partitions are unchanged.
/// In a batch, a transaction at a stale epoch is answered PRODUCER_FENCED and its neighbour is
/// still served.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn batched_add_partitions_and_verify_only() {
    let broker = txn_broker().await;
    let address = broker.bootstrap_servers();
    blocking(move || {
        let mut wire = Wire::connect(&address);
        require_txn_apis(&mut wire);
        let topic = "batched";
        raw::create_topic(&mut wire, topic, 3);
        let (first, second) = ("batched-a", "batched-b");
        // Initialised twice: the first epoch is stale from then on.
        let stale = raw::init(&mut wire, first);
        let a = raw::init(&mut wire, first);
        assert!(a.1 > stale.1);
        let b = raw::init(&mut wire, second);
        let (top, errors) = raw::add_partitions_batched(
            &mut wire,
            &[
                BatchedTxn {
                    transactional_id: first,
                    producer: a,
                    verify_only: false,
                    partitions: &[(topic, 0), (topic, 1)],
                },
                BatchedTxn {
                    transactional_id: second,
                    producer: b,
                    verify_only: false,
                    partitions: &[(topic, 2)],
                },
            ],
        );
        assert_eq!((top, errors), (code::NONE, vec![vec![0, 0], vec![0]]));
        let partitions = |wire: &mut Wire, id: &str| describe_one(wire, id);
        assert_eq!(
            partitions(&mut wire, first),
            (
                "Ongoing".to_owned(),
                vec![(topic.to_owned(), 0), (topic.to_owned(), 1)]
            )
        );
        assert_eq!(
            partitions(&mut wire, second),
            ("Ongoing".to_owned(), vec![(topic.to_owned(), 2)])
        );

        let (top, errors) = raw::add_partitions_batched(
            &mut wire,
            &[BatchedTxn {
                transactional_id: first,
                producer: a,
                verify_only: true,
                partitions: &[(topic, 1), (topic, 2)],
            }],
        );
        assert_eq!(
            (top, errors),
            (
                code::NONE,
                vec![vec![code::NONE, code::TRANSACTION_ABORTABLE]]
            )
        );
        assert_eq!(
            partitions(&mut wire, first).1,
            vec![(topic.to_owned(), 0), (topic.to_owned(), 1)],
            "verify_only added nothing"
        );

        let (_, errors) = raw::add_partitions_batched(
            &mut wire,
            &[
                BatchedTxn {
                    transactional_id: first,
                    producer: stale,
                    verify_only: false,
                    partitions: &[(topic, 2)],
                },
                BatchedTxn {
                    transactional_id: second,
                    producer: b,
                    verify_only: false,
                    partitions: &[(topic, 0)],
                },
            ],
        );
        assert_eq!(errors, vec![vec![code::PRODUCER_FENCED], vec![code::NONE]]);
        for (id, producer) in [(first, a), (second, b)] {
            assert_eq!(raw::end_txn(&mut wire, id, producer, false), code::NONE);
        }
    })
    .await;
    broker.shutdown().await.unwrap();
}
