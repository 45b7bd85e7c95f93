//! Transactions in the log: open transactions hold back the last stable offset, ABORT markers
//! land in the transaction index, and both survive clean and unclean reopen and truncation.
//!
//! How: two transactional producers interleave with a plain producer; markers are appended as
//! the coordinator would (`AppendOrigin::Coordinator`); the LSO and the aborted list are checked
//! after each step and after each kind of reopen.

use kairos_storage::builder::RecordBatchBuilder;
use kairos_storage::control::{ControlRecordType, EndTransactionMarker, build_marker};
use kairos_storage::{
    AbortedTxn, AppendOrigin, AppendOutcome, Error, Log, LogConfig, LogManager, TopicPartition,
};

fn append(log: &Log, mut bytes: Vec<u8>, origin: AppendOrigin) -> i64 {
    match log.append(&mut bytes, origin, 0, 0).unwrap() {
        AppendOutcome::Appended(info) => info.first_offset,
        other => panic!("{other:?}"),
    }
}

fn txn_batch(pid: i64, seq: i32) -> Vec<u8> {
    RecordBatchBuilder::new()
        .producer(pid, 0, seq)
        .transactional(true)
        .record(Some(b"k"), Some(b"v"), 0)
        .build()
}

fn marker(pid: i64, kind: ControlRecordType) -> Vec<u8> {
    build_marker(
        pid,
        0,
        EndTransactionMarker {
            kind,
            coordinator_epoch: 0,
        },
        0,
    )
}

fn plain() -> Vec<u8> {
    RecordBatchBuilder::new()
        .record(Some(b"p"), Some(b"v"), 0)
        .build()
}

#[test]
fn lso_and_aborted_index_follow_markers_and_survive_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let tp = TopicPartition::new("txn", 0);
    let config = LogConfig {
        segment_bytes: 300,
        ..LogConfig::default()
    };
    {
        let manager = LogManager::open_std(dir.path(), 0).unwrap();
        let log = manager.get_or_create(&tp, config.clone(), 0).unwrap();
        assert_eq!(append(&log, plain(), AppendOrigin::Client), 0);
        assert_eq!(append(&log, txn_batch(1, 0), AppendOrigin::Client), 1);
        assert_eq!(append(&log, txn_batch(2, 0), AppendOrigin::Client), 2);
        assert_eq!(append(&log, plain(), AppendOrigin::Client), 3);
        assert_eq!(log.last_stable_offset(), 1);
        assert_eq!(log.high_watermark(), 4);
        // read_committed readers are bounded by the LSO.
        let read = log
            .read(0, 1 << 20, Some(log.last_stable_offset()))
            .unwrap();
        assert_eq!(read.last_stable_offset, 1);
        assert!(kairos_storage::batch::Batches::new(&read.records).count() == 1);
        assert_eq!(append(&log, txn_batch(1, 1), AppendOrigin::Client), 4);
        // Producer 1 aborts: offsets 1..=5, marker at 5.
        assert_eq!(
            append(
                &log,
                marker(1, ControlRecordType::Abort),
                AppendOrigin::Coordinator
            ),
            5
        );
        assert_eq!(log.last_stable_offset(), 2);
        assert_eq!(
            append(
                &log,
                marker(2, ControlRecordType::Commit),
                AppendOrigin::Coordinator
            ),
            6
        );
        assert_eq!(log.last_stable_offset(), 7);
        assert!(log.segment_count() > 1, "markers and data span segments");
        manager.shutdown(0).unwrap();
    }
    let expected = vec![AbortedTxn {
        producer_id: 1,
        first_offset: 1,
        last_offset: 5,
        // Producer 2's transaction was still open when the abort was written.
        last_stable_offset: 2,
    }];
    for clean in [true, false] {
        if !clean {
            // Remove the marker and snapshots so the open replays the whole log.
            std::fs::remove_file(dir.path().join(".kafka_cleanshutdown")).unwrap();
            for entry in std::fs::read_dir(dir.path().join("txn-0")).unwrap() {
                let path = entry.unwrap().path();
                if path.extension().is_some_and(|e| e == "snapshot") {
                    std::fs::remove_file(path).unwrap();
                }
            }
        }
        let manager = LogManager::open_std(dir.path(), 0).unwrap();
        let log = manager.get(&tp).unwrap();
        assert_eq!(log.last_stable_offset(), 7, "clean={clean}");
        assert_eq!(log.aborted_transactions(0, 7), expected, "clean={clean}");
        assert!(log.aborted_transactions(6, 7).is_empty());
        assert_eq!(log.aborted_transactions(5, 6), expected);
        if clean {
            manager.shutdown(0).unwrap();
        }
    }
}

#[test]
fn an_open_transaction_survives_a_crash_and_truncation_reopens_one() {
    let dir = tempfile::tempdir().unwrap();
    let tp = TopicPartition::new("open", 0);
    {
        let manager = LogManager::open_std(dir.path(), 0).unwrap();
        let log = manager.get_or_create(&tp, LogConfig::default(), 0).unwrap();
        append(&log, plain(), AppendOrigin::Client);
        append(&log, txn_batch(9, 0), AppendOrigin::Client);
        append(&log, plain(), AppendOrigin::Client);
        assert_eq!(log.last_stable_offset(), 1);
        // Dropped without shutdown: a crash.
    }
    let manager = LogManager::open_std(dir.path(), 0).unwrap();
    let log = manager.get(&tp).unwrap();
    assert_eq!(log.last_stable_offset(), 1);
    assert!(matches!(
        log.append(
            &mut RecordBatchBuilder::new()
                .producer(9, 0, 1)
                .record(None, Some(b"x"), 0)
                .build(),
            AppendOrigin::Client,
            0,
            0
        ),
        Err(Error::InvalidTxnState { producer_id: 9 })
    ));
    append(
        &log,
        marker(9, ControlRecordType::Abort),
        AppendOrigin::Coordinator,
    );
    assert_eq!(log.last_stable_offset(), 4);
    assert_eq!(log.aborted_transactions(0, 4).len(), 1);
    // Truncating the marker away reopens the transaction and forgets the abort.
    log.truncate_to(3).unwrap();
    assert_eq!(log.last_stable_offset(), 1);
    assert!(log.aborted_transactions(0, 4).is_empty());
}

#[test]
fn clients_cannot_write_markers_and_stale_epochs_are_fenced() {
    let dir = tempfile::tempdir().unwrap();
    let manager = LogManager::open_std(dir.path(), 0).unwrap();
    let log = manager
        .get_or_create(&TopicPartition::new("fence", 0), LogConfig::default(), 0)
        .unwrap();
    assert!(matches!(
        log.append(
            &mut marker(1, ControlRecordType::Commit),
            AppendOrigin::Client,
            0,
            0
        ),
        Err(Error::InvalidRecord(_))
    ));
    let bumped = RecordBatchBuilder::new()
        .producer(1, 3, 0)
        .transactional(true)
        .record(None, Some(b"v"), 0)
        .build();
    append(&log, bumped, AppendOrigin::Client);
    let stale = build_marker(
        1,
        2,
        EndTransactionMarker {
            kind: ControlRecordType::Commit,
            coordinator_epoch: 0,
        },
        0,
    );
    let mut stale = stale;
    assert!(matches!(
        log.append(&mut stale, AppendOrigin::Coordinator, 0, 0),
        Err(Error::InvalidProducerEpoch {
            current: 3,
            actual: 2,
            ..
        })
    ));
}

/// The ABORT marker of a transaction can be segments after its first record (a roll in
/// between, another producer's open transaction holding the LSO): a read_committed fetch of
/// the first segment must still learn of the abort, or aborted records reach the application.
#[test]
fn an_abort_in_a_later_segment_is_found_for_a_fetch_of_an_earlier_one() {
    let dir = tempfile::tempdir().unwrap();
    let manager = LogManager::open_std(dir.path(), 0).unwrap();
    // Every batch in its own segment.
    let config = LogConfig {
        segment_bytes: 14,
        ..LogConfig::default()
    };
    let log = manager
        .get_or_create(&TopicPartition::new("txn", 0), config, 0)
        .unwrap();
    assert_eq!(append(&log, txn_batch(1, 0), AppendOrigin::Client), 0);
    assert_eq!(append(&log, txn_batch(2, 0), AppendOrigin::Client), 1);
    assert_eq!(
        append(
            &log,
            marker(1, ControlRecordType::Abort),
            AppendOrigin::Coordinator
        ),
        2
    );
    assert!(log.segment_count() >= 3);
    // Producer 2 is still open: the LSO is 1, and a fetch of [0, 1) overlaps producer 1's
    // aborted transaction, whose marker is in the third segment.
    assert_eq!(log.last_stable_offset(), 1);
    let aborted = log.aborted_transactions(0, 1);
    assert_eq!(
        aborted
            .iter()
            .map(|a| (a.producer_id, a.first_offset))
            .collect::<Vec<_>>(),
        vec![(1, 0)]
    );
}
