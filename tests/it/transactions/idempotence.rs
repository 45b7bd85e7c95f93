//! Idempotent produce on a raw socket: duplicates of a producer's recent batches are answered
//! with their original offsets and not written again (also after a restart), gaps in the
//! sequence are refused, and a bumped epoch fences the old one and restarts the sequence.

use std::time::Duration;

use kafka_protocol::messages::ApiKey;

use super::raw::{self, READ_UNCOMMITTED, code};
use super::txn_broker_builder;
use crate::groups::blocking;
use crate::wire::Wire;

/// Two records per batch, values `b<batch>-<record>`.
fn values(batch: i32) -> Vec<String> {
    (0..2).map(|r| format!("b{batch}-{r}")).collect()
}

/// The values of a partition's log, every record, in offset order.
fn log_values(wire: &mut Wire, target: (&str, i32)) -> Vec<(i64, String)> {
    raw::read_log(wire, target, READ_UNCOMMITTED)
        .0
        .into_iter()
        .flat_map(|b| b.records)
        .collect()
}

/// How: an idempotent producer (InitProducerId without a transactional id) appends six
/// two-record batches with consecutive sequences (batch `i` has sequence `2i`). Kafka keeps the
/// metadata of a producer's last five batches per partition, so resending any of batches 1..=5
/// is answered with that batch's original base offset and writes nothing. Batch 0 is too old to
/// be recognised, and a sequence beyond the next one is a gap: both are
/// OUT_OF_ORDER_SEQUENCE_NUMBER. The broker is then restarted on the same directory and the
/// duplicates are still recognised: the producer state is rebuilt from the log. Every check
/// ends with the log compared to the six batches, once each.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn duplicates_answer_their_offset_and_gaps_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let broker = txn_broker_builder()
        .data_dir(dir.path())
        .start()
        .await
        .unwrap();
    let address = broker.bootstrap_servers();
    let topic = "idempotent";
    let (producer, offsets) = blocking(move || {
        let mut wire = Wire::connect(&address);
        raw::require(
            &mut wire,
            &[(ApiKey::InitProducerId, raw::INIT_PRODUCER_ID)],
        );
        raw::create_topic(&mut wire, topic, 1);
        let (error, pid, epoch) = raw::init_producer_id(&mut wire, None, 60_000);
        assert_eq!(error, code::NONE);
        let mut offsets = Vec::new();
        for i in 0..6 {
            let batch = raw::batch(Some((pid, epoch)), 2 * i, false, &values(i));
            let (error, base) = raw::produce(&mut wire, None, (topic, 0), batch);
            assert_eq!(error, code::NONE, "batch {i}");
            offsets.push(base);
        }
        assert_eq!(offsets, vec![0, 2, 4, 6, 8, 10]);
        check_duplicates(&mut wire, topic, (pid, epoch), &offsets);
        ((pid, epoch), offsets)
    })
    .await;
    broker.shutdown().await.unwrap();

    let broker = txn_broker_builder()
        .data_dir(dir.path())
        .start()
        .await
        .unwrap();
    let address = broker.bootstrap_servers();
    blocking(move || {
        let mut wire = Wire::connect(&address);
        check_duplicates(&mut wire, topic, producer, &offsets);
        // The sequence continues where it was.
        let batch = raw::batch(Some(producer), 12, false, &values(6));
        assert_eq!(raw::produce(&mut wire, None, (topic, 0), batch), (0, 12));
    })
    .await;
    broker.shutdown().await.unwrap();
}

fn check_duplicates(wire: &mut Wire, topic: &str, producer: (i64, i16), offsets: &[i64]) {
    let expected: Vec<(i64, String)> = (0..6)
        .flat_map(|i| {
            let base = offsets[usize::try_from(i).unwrap()];
            values(i).into_iter().zip(base..).map(|(v, o)| (o, v))
        })
        .collect();
    for i in (1..6).rev() {
        let again = raw::batch(Some(producer), 2 * i, false, &values(i));
        assert_eq!(
            raw::produce(wire, None, (topic, 0), again),
            (code::NONE, offsets[usize::try_from(i).unwrap()]),
            "duplicate of batch {i} answers its original base offset"
        );
    }
    let oldest = raw::batch(Some(producer), 0, false, &values(0));
    assert_eq!(
        raw::produce(wire, None, (topic, 0), oldest).0,
        code::OUT_OF_ORDER_SEQUENCE_NUMBER,
        "a batch older than the last five is not a known duplicate"
    );
    let gap = raw::batch(Some(producer), 14, false, &values(7));
    assert_eq!(
        raw::produce(wire, None, (topic, 0), gap).0,
        code::OUT_OF_ORDER_SEQUENCE_NUMBER,
        "sequence 14 after 11 is a gap"
    );
    assert_eq!(
        log_values(wire, (topic, 0)),
        expected,
        "the log holds each batch once"
    );
}

/// How: a transactional producer writes at epoch `e0`; InitProducerId again with the same
/// transactional id keeps the producer id and bumps the epoch (aborting the open transaction).
/// A batch at `e0` is then INVALID_PRODUCER_EPOCH; at the new epoch, after the partition is added
/// to a new transaction, the sequence must start again at 0 (3 is OUT_OF_ORDER_SEQUENCE_NUMBER).
/// Nothing refused reaches the log.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_bumped_epoch_fences_the_old_one_and_restarts_the_sequence() {
    let broker = txn_broker_builder().temp_dir().start().await.unwrap();
    let address = broker.bootstrap_servers();
    blocking(move || {
        let mut wire = Wire::connect(&address);
        let topic = "epochs";
        raw::create_topic(&mut wire, topic, 1);
        let id = "epoch-bump";
        let first = raw::init(&mut wire, id);
        raw::add(&mut wire, id, first, &[(topic, 0)]);
        let batch = raw::batch(Some(first), 0, true, &values(0));
        assert_eq!(raw::produce(&mut wire, Some(id), (topic, 0), batch), (0, 0));

        let second = raw::init(&mut wire, id);
        assert_eq!(second.0, first.0, "same producer id");
        assert!(
            second.1 > first.1,
            "epoch bumped: {second:?} after {first:?}"
        );
        let end = raw::wait_stable(&mut wire, (topic, 0), Duration::from_secs(10));
        assert_eq!(
            end, 3,
            "two records and the ABORT marker of the fenced transaction"
        );

        let stale = raw::batch(Some(first), 2, true, &values(1));
        assert_eq!(
            raw::produce(&mut wire, Some(id), (topic, 0), stale).0,
            code::INVALID_PRODUCER_EPOCH
        );
        raw::add(&mut wire, id, second, &[(topic, 0)]);
        let skipped = raw::batch(Some(second), 3, true, &values(2));
        assert_eq!(
            raw::produce(&mut wire, Some(id), (topic, 0), skipped).0,
            code::OUT_OF_ORDER_SEQUENCE_NUMBER,
            "a new epoch starts at sequence 0"
        );
        let fresh = raw::batch(Some(second), 0, true, &values(3));
        assert_eq!(raw::produce(&mut wire, Some(id), (topic, 0), fresh), (0, 3));
        assert_eq!(raw::end_txn(&mut wire, id, second, true), code::NONE);
        let _ = raw::wait_stable(&mut wire, (topic, 0), Duration::from_secs(10));
        let expected: Vec<(i64, String)> = vec![(3, "b3-0".to_owned()), (4, "b3-1".to_owned())];
        assert_eq!(raw::read_committed(&mut wire, (topic, 0)), expected);
        let all: Vec<String> = log_values(&mut wire, (topic, 0))
            .into_iter()
            .map(|(_, v)| v)
            .collect();
        assert_eq!(all, ["b0-0", "b0-1", "b3-0", "b3-1"]);
    })
    .await;
    broker.shutdown().await.unwrap();
}
