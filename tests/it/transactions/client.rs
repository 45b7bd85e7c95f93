//! librdkafka's transactional producer against the broker: what read_committed and
//! read_uncommitted consumers are handed after a commit and an abort, where the markers sit,
//! and a read_committed consumer held at an open transaction.

use std::time::Duration;

use kairos_storage::control::ControlRecordType;
use rdkafka::producer::{FutureProducer, FutureRecord, Producer};

use super::raw::{self, READ_COMMITTED, READ_UNCOMMITTED};
use super::{Isolation, Seen, read_to_end, txn_broker, txn_producer, wait_end_offsets};
use crate::support;
use crate::wire::Wire;

pub(crate) const TXN_CALL: Duration = Duration::from_secs(15);
pub(crate) const READ: Duration = Duration::from_secs(15);

/// Sends `per_partition` records to each of `partitions` partitions, values `<prefix>-<p>-<i>`,
/// and waits for every acknowledgement. Returns `(partition, offset, value)` in send order.
pub(crate) async fn send_all(
    producer: &FutureProducer,
    topic: &str,
    partitions: i32,
    prefix: &str,
    per_partition: usize,
) -> Vec<(i32, i64, String)> {
    let mut pending = Vec::new();
    for i in 0..per_partition {
        for partition in 0..partitions {
            let value = format!("{prefix}-{partition}-{i}");
            let key = format!("k{i}");
            let delivery = producer
                .send_result(
                    FutureRecord::to(topic)
                        .partition(partition)
                        .key(&key)
                        .payload(&value),
                )
                .unwrap_or_else(|(error, _)| panic!("queue {value}: {error}"));
            pending.push((value, delivery));
        }
    }
    let mut sent = Vec::new();
    for (value, delivery) in pending {
        let delivery = delivery
            .await
            .expect("delivery report")
            .unwrap_or_else(|(error, _)| panic!("deliver {value}: {error}"));
        sent.push((delivery.partition, delivery.offset, value));
    }
    sent
}

fn values_of(seen: &[Seen], partition: i32) -> Vec<(i64, String)> {
    seen.iter()
        .filter(|s| s.partition == partition)
        .map(|s| (s.offset, s.value.clone()))
        .collect()
}

/// How: one transactional producer writes `k` records to each of two partitions and commits,
/// then `k` more and aborts after every record was acknowledged (so the aborted records really
/// are in the log). Per partition the log must then be: the committed records at `0..k`, a
/// COMMIT marker at `k`, the aborted records at `k+1..=2k`, an ABORT marker at `2k+1`. A
/// read_committed consumer is handed exactly the committed records, a read_uncommitted one both
/// sets, and neither is ever handed a marker: the offsets `k` and `2k+1` are gaps to them.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn committed_and_aborted_records_by_isolation_level() {
    let broker = txn_broker().await;
    let bootstrap = broker.bootstrap_servers();
    let topic = support::topic_name("txn-basic");
    let partitions = 2;
    support::create_topic(&bootstrap, &topic, partitions, &[]).await;
    let producer = txn_producer(&bootstrap, &support::topic_name("basic"), &[]);
    producer
        .init_transactions(TXN_CALL)
        .expect("init_transactions");

    let k = 7_usize;
    producer.begin_transaction().unwrap();
    let committed = send_all(&producer, &topic, partitions, "committed", k).await;
    producer.commit_transaction(TXN_CALL).expect("commit");
    producer.begin_transaction().unwrap();
    let aborted = send_all(&producer, &topic, partitions, "aborted", k).await;
    producer.abort_transaction(TXN_CALL).expect("abort");

    let k = i64::try_from(k).unwrap();
    // The model of each partition's offsets.
    for partition in 0..partitions {
        let offsets = |sent: &[(i32, i64, String)]| -> Vec<i64> {
            sent.iter()
                .filter(|(p, _, _)| *p == partition)
                .map(|(_, o, _)| *o)
                .collect()
        };
        assert_eq!(offsets(&committed), (0..k).collect::<Vec<_>>());
        assert_eq!(offsets(&aborted), (k + 1..=2 * k).collect::<Vec<_>>());
    }
    wait_end_offsets(&bootstrap, &topic, &[2 * k + 2; 2]);

    // The raw log: markers at k (COMMIT) and 2k+1 (ABORT), from the same producer as the data;
    // a read_committed fetch lists the aborted transaction from its first offset.
    let (address, raw_topic) = (bootstrap.clone(), topic.clone());
    crate::groups::blocking(move || {
        let mut wire = Wire::connect(&address);
        for partition in 0..partitions {
            let target = (raw_topic.as_str(), partition);
            let (batches, _) = raw::read_log(&mut wire, target, READ_UNCOMMITTED);
            let pid = batches[0].producer_id;
            assert!(pid >= 0 && batches.iter().all(|b| b.producer_id == pid));
            let markers: Vec<(i64, i64, ControlRecordType)> = batches
                .iter()
                .filter_map(|b| b.marker.map(|m| (b.base_offset, b.last_offset, m)))
                .collect();
            assert_eq!(
                markers,
                vec![
                    (k, k, ControlRecordType::Commit),
                    (2 * k + 1, 2 * k + 1, ControlRecordType::Abort)
                ],
                "{target:?}: one marker per transaction, right after its records"
            );
            assert!(
                batches
                    .iter()
                    .filter(|b| b.marker.is_none())
                    .all(|b| b.transactional),
                "data batches carry the transactional flag"
            );
            let fetched = raw::fetch(&mut wire, target, 0, READ_COMMITTED);
            assert_eq!(fetched.last_stable_offset, 2 * k + 2);
            assert_eq!(
                fetched.aborted,
                vec![(pid, k + 1)],
                "{target:?}: the aborted transaction, from its first offset"
            );
        }
    })
    .await;

    let (address, read_topic) = (bootstrap.clone(), topic.clone());
    let (read_committed, read_uncommitted) = crate::groups::blocking(move || {
        (
            read_to_end(&address, &read_topic, 2, Isolation::ReadCommitted, READ),
            read_to_end(&address, &read_topic, 2, Isolation::ReadUncommitted, READ),
        )
    })
    .await;
    for partition in 0..partitions {
        let expect = |sent: &[(i32, i64, String)]| -> Vec<(i64, String)> {
            sent.iter()
                .filter(|(p, _, _)| *p == partition)
                .map(|(_, o, v)| (*o, v.clone()))
                .collect()
        };
        assert_eq!(
            values_of(&read_committed, partition),
            expect(&committed),
            "read_committed on partition {partition}: exactly the committed records"
        );
        let mut both = expect(&committed);
        both.extend(expect(&aborted));
        assert_eq!(
            values_of(&read_uncommitted, partition),
            both,
            "read_uncommitted on partition {partition}: committed and aborted records"
        );
    }
    for seen in read_committed.iter().chain(&read_uncommitted) {
        assert!(
            seen.offset != k && seen.offset != 2 * k + 1,
            "a marker offset was handed to the application: {seen:?}"
        );
    }
    broker.shutdown().await.unwrap();
}

/// How: producer A's transaction writes first, producer B's second, both to partition 0; A
/// aborts while B stays open. The LSO is B's first offset, so A's ABORT marker lies above it,
/// where a read_committed consumer does not read; it can skip A's records only because the
/// Fetch answer lists A's aborted transaction for the range it returns (Kafka lists every
/// aborted transaction overlapping the fetched offsets, searching the transaction indexes of
/// later segments too). `segment.bytes` is the minimum, so every batch is a segment of its own
/// and A's marker (and its transaction index entry) is two segments after A's records, as
/// after any roll in a busy log. The consumer must be handed nothing, then, after B commits,
/// B's records only.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_abort_above_the_lso_still_hides_the_aborted_records() {
    let broker = txn_broker().await;
    let bootstrap = broker.bootstrap_servers();
    let topic = support::topic_name("txn-abort-above-lso");
    support::create_topic(&bootstrap, &topic, 1, &[("segment.bytes", "14")]).await;
    let first = txn_producer(&bootstrap, &support::topic_name("abort-a"), &[]);
    let second = txn_producer(&bootstrap, &support::topic_name("abort-b"), &[]);
    first.init_transactions(TXN_CALL).expect("init A");
    second.init_transactions(TXN_CALL).expect("init B");
    first.begin_transaction().unwrap();
    second.begin_transaction().unwrap();
    let aborted = send_all(&first, &topic, 1, "aborted", 2).await;
    let kept = send_all(&second, &topic, 1, "kept", 2).await;
    assert_eq!((aborted[0].1, kept[0].1), (0, 2));
    first.abort_transaction(TXN_CALL).expect("abort A");
    // A's ABORT marker at 4, B still open from 2.
    wait_end_offsets_unstable(&bootstrap, &topic, 5).await;

    let (address, read_topic) = (bootstrap.clone(), topic.clone());
    let (lso, held) = crate::groups::blocking(move || {
        let lso = raw::latest(
            &mut Wire::connect(&address),
            (&read_topic, 0),
            READ_COMMITTED,
        );
        let held = read_to_end(&address, &read_topic, 1, Isolation::ReadCommitted, READ);
        (lso, held)
    })
    .await;
    assert_eq!(
        lso, 2,
        "the LSO is B's first offset once A's transaction ended"
    );
    assert!(
        held.is_empty(),
        "read_committed was handed records of an aborted transaction: {held:?}"
    );
    second.commit_transaction(TXN_CALL).expect("commit B");
    wait_end_offsets(&bootstrap, &topic, &[6]);
    let (address, read_topic) = (bootstrap.clone(), topic.clone());
    let after = crate::groups::blocking(move || {
        read_to_end(&address, &read_topic, 1, Isolation::ReadCommitted, READ)
    })
    .await;
    let expected: Vec<(i64, String)> = kept.iter().map(|(_, o, v)| (*o, v.clone())).collect();
    assert_eq!(values_of(&after, 0), expected);
    broker.shutdown().await.unwrap();
}

/// Waits until partition 0's high watermark is `end` (markers are written after EndTxn may be
/// answered), without waiting for the LSO.
async fn wait_end_offsets_unstable(bootstrap: &str, topic: &str, end: i64) {
    let (address, topic) = (bootstrap.to_owned(), topic.to_owned());
    crate::groups::blocking(move || {
        let mut wire = Wire::connect(&address);
        raw::poll_until(
            Duration::from_secs(10),
            || format!("{topic}: high watermark never reached {end}"),
            || raw::latest(&mut wire, (&topic, 0), READ_UNCOMMITTED) >= end,
        );
    })
    .await;
}

/// How: a transaction writes to partition 0 and stays open while a plain producer appends after
/// it. A read_committed consumer reaches its end (EOF at the LSO) having been handed nothing:
/// the plain records sit above the open transaction's first offset. ListOffsets latest under
/// read_committed is that first offset. After the commit both are handed over, in log order.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn read_committed_stops_at_the_open_transaction() {
    let broker = txn_broker().await;
    let bootstrap = broker.bootstrap_servers();
    let topic = support::topic_name("txn-lso");
    support::create_topic(&bootstrap, &topic, 1, &[]).await;
    let producer = txn_producer(&bootstrap, &support::topic_name("lso"), &[]);
    producer
        .init_transactions(TXN_CALL)
        .expect("init_transactions");
    producer.begin_transaction().unwrap();
    let open = send_all(&producer, &topic, 1, "open", 3).await;
    let plain = send_all(
        &support::producer(&bootstrap, "all", &[]),
        &topic,
        1,
        "plain",
        4,
    )
    .await;
    assert_eq!(open[0].1, 0);
    assert_eq!(plain[0].1, 3, "plain records follow the open transaction");

    let (address, read_topic) = (bootstrap.clone(), topic.clone());
    let (held, lso, high) = crate::groups::blocking(move || {
        let mut wire = Wire::connect(&address);
        let lso = raw::latest(&mut wire, (&read_topic, 0), READ_COMMITTED);
        let high = raw::latest(&mut wire, (&read_topic, 0), READ_UNCOMMITTED);
        let held = read_to_end(&address, &read_topic, 1, Isolation::ReadCommitted, READ);
        (held, lso, high)
    })
    .await;
    assert_eq!(
        (lso, high),
        (0, 7),
        "LSO at the open transaction's first offset"
    );
    assert!(held.is_empty(), "handed records above the LSO: {held:?}");

    producer.commit_transaction(TXN_CALL).expect("commit");
    wait_end_offsets(&bootstrap, &topic, &[8]);
    let (address, read_topic) = (bootstrap.clone(), topic.clone());
    let after = crate::groups::blocking(move || {
        read_to_end(&address, &read_topic, 1, Isolation::ReadCommitted, READ)
    })
    .await;
    let expected: Vec<(i64, String)> = open
        .iter()
        .chain(&plain)
        .map(|(_, offset, value)| (*offset, value.clone()))
        .collect();
    assert_eq!(values_of(&after, 0), expected);
    broker.shutdown().await.unwrap();
}
