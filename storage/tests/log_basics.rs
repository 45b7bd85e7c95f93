//! Log-level behaviour through the public API: append and read, reopen with and without a
//! clean shutdown, torn tails, timestamp lookup, retention, DeleteRecords, group commit and the
//! directory lock.

use std::sync::Arc;

use kairos_storage::batch::{Batches, RecordBatchHeader};
use kairos_storage::builder::RecordBatchBuilder;
use kairos_storage::{
    AppendOrigin, AppendOutcome, Error, LogConfig, LogManager, TimestampOffset, TopicPartition,
};

fn batch(n: usize, ts: i64) -> Vec<u8> {
    (0..n)
        .fold(RecordBatchBuilder::new(), |b, i| {
            let key = format!("k{i}");
            b.record(
                Some(key.as_bytes()),
                Some(&[7u8; 100]),
                ts + i64::try_from(i).unwrap(),
            )
        })
        .build()
}

fn append(log: &kairos_storage::Log, mut bytes: Vec<u8>, now: i64) -> (i64, i64) {
    match log
        .append(&mut bytes, AppendOrigin::Client, now, 0)
        .unwrap()
    {
        AppendOutcome::Appended(info) => (info.first_offset, info.last_offset),
        other => panic!("unexpected {other:?}"),
    }
}

fn small_segments() -> LogConfig {
    LogConfig {
        segment_bytes: 4096,
        index_interval_bytes: 512,
        segment_index_bytes: 4096,
        ..LogConfig::default()
    }
}

fn offsets_of(bytes: &[u8]) -> Vec<(i64, i64)> {
    Batches::new(bytes)
        .map(|b| {
            let b = b.unwrap().1;
            (b.base_offset(), b.last_offset())
        })
        .collect()
}

#[test]
fn appends_read_back_by_offset_across_segments_and_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let tp = TopicPartition::new("t", 0);
    let mut expected = Vec::new();
    {
        let manager = LogManager::open_std(dir.path(), 0).unwrap();
        let log = manager.get_or_create(&tp, small_segments(), 0).unwrap();
        for i in 0..100 {
            expected.push(append(&log, batch(3, i * 10), 0));
        }
        assert!(log.segment_count() > 5, "small segments roll");
        assert_eq!(log.log_end_offset(), 300);
        manager.shutdown(0).unwrap();
    }
    for clean in [true, false] {
        if !clean {
            std::fs::remove_file(dir.path().join(".kafka_cleanshutdown")).ok();
        }
        let manager = LogManager::open_std(dir.path(), 0).unwrap();
        let log = manager.get(&tp).unwrap();
        log.update_config(small_segments());
        assert_eq!(log.log_end_offset(), 300);
        for &(first, last) in &expected {
            for offset in [first, first + 1, last] {
                let read = log.read(offset, 1, None).unwrap();
                assert_eq!(
                    offsets_of(&read.records),
                    vec![(first, last)],
                    "offset {offset}"
                );
            }
        }
        let all = log.read(0, 1 << 20, None).unwrap();
        assert!(offsets_of(&all.records).len() > 1);
        assert!(log.read(300, 100, None).unwrap().records.is_empty());
        assert!(matches!(
            log.read(301, 100, None),
            Err(Error::OffsetOutOfRange { .. })
        ));
        // Appends continue where the log ended.
        assert_eq!(append(&log, batch(1, 0), 0).0, 300);
        log.truncate_to(300).unwrap();
        manager.shutdown(0).unwrap();
    }
}

#[test]
fn torn_and_zero_filled_tails_are_truncated_on_unclean_open() {
    let dir = tempfile::tempdir().unwrap();
    let tp = TopicPartition::new("torn", 0);
    let segment = dir.path().join("torn-0/00000000000000000000.log");
    {
        let manager = LogManager::open_std(dir.path(), 0).unwrap();
        let log = manager.get_or_create(&tp, LogConfig::default(), 0).unwrap();
        for i in 0..10 {
            append(&log, batch(2, i), 0);
        }
        log.sync_to(log.log_end_offset(), 0).unwrap();
    }
    let good_len = std::fs::metadata(&segment).unwrap().len();
    // Half a batch, then zeros, as a crash during a preallocated write leaves.
    let mut bytes = std::fs::read(&segment).unwrap();
    let half = batch(2, 0);
    bytes.extend_from_slice(&half[..half.len() / 2]);
    bytes.extend_from_slice(&[0u8; 4096]);
    std::fs::write(&segment, &bytes).unwrap();
    let manager = LogManager::open_std(dir.path(), 0).unwrap();
    let log = manager.get(&tp).unwrap();
    assert_eq!(log.log_end_offset(), 20);
    assert_eq!(std::fs::metadata(&segment).unwrap().len(), good_len);
    assert_eq!(log.recovery_point(), 20);
}

#[test]
fn a_flipped_bit_truncates_from_that_batch_and_drops_later_segments() {
    let dir = tempfile::tempdir().unwrap();
    let tp = TopicPartition::new("crc", 0);
    {
        let manager = LogManager::open_std(dir.path(), 0).unwrap();
        let log = manager.get_or_create(&tp, small_segments(), 0).unwrap();
        for i in 0..40 {
            append(&log, batch(3, i), 0);
        }
        assert!(log.segment_count() >= 3);
    }
    let first = dir.path().join("crc-0/00000000000000000000.log");
    let mut bytes = std::fs::read(&first).unwrap();
    let second_batch_end = {
        let b = RecordBatchHeader::parse(&bytes).unwrap();
        b.total_size() + 100
    };
    bytes[second_batch_end] ^= 0x40;
    std::fs::write(&first, &bytes).unwrap();
    let manager = LogManager::open_std(dir.path(), 0).unwrap();
    let log = manager.get(&tp).unwrap();
    assert_eq!(log.log_end_offset(), 3, "only the first batch survives");
    assert_eq!(log.segment_count(), 1);
    assert_eq!(append(&log, batch(1, 0), 0).0, 3);
}

#[test]
fn timestamp_lookup_finds_the_first_record_at_or_after() {
    let dir = tempfile::tempdir().unwrap();
    let manager = LogManager::open_std(dir.path(), 0).unwrap();
    let log = manager
        .get_or_create(&TopicPartition::new("ts", 0), small_segments(), 0)
        .unwrap();
    for i in 0..50 {
        append(&log, batch(4, 1000 + i * 10), 0);
    }
    // Batch i holds timestamps 1000+10i .. 1000+10i+3 at offsets 4i .. 4i+3.
    let found = log.offset_for_timestamp(1000 + 25 * 10 + 2).unwrap();
    assert_eq!(
        found,
        Some(TimestampOffset {
            timestamp: 1252,
            offset: 102
        })
    );
    let between = log.offset_for_timestamp(1000 + 25 * 10 + 5).unwrap();
    assert_eq!(
        between,
        Some(TimestampOffset {
            timestamp: 1260,
            offset: 104
        })
    );
    assert_eq!(log.offset_for_timestamp(0).unwrap().unwrap().offset, 0);
    assert_eq!(log.offset_for_timestamp(99_999).unwrap(), None);
    assert_eq!(log.max_timestamp().unwrap().timestamp, 1000 + 49 * 10 + 3);
}

#[test]
fn retention_and_delete_records_advance_the_log_start() {
    let dir = tempfile::tempdir().unwrap();
    let manager = LogManager::open_std(dir.path(), 0).unwrap();
    let config = LogConfig {
        retention_ms: 1000,
        ..small_segments()
    };
    let log = manager
        .get_or_create(&TopicPartition::new("ret", 0), config.clone(), 0)
        .unwrap();
    for i in 0..30 {
        append(&log, batch(3, i * 100), 0);
    }
    let segments = log.segment_count();
    // At now = 2500 the batches with max timestamp < 1500 are expired.
    let deleted = log.enforce_retention(2500).unwrap();
    assert!(deleted > 0 && deleted < segments);
    assert!(log.log_start_offset() > 0);
    assert!(log.read(0, 100, None).is_err());
    // DeleteRecords inside a segment moves the start without deleting that segment.
    let start = log.log_start_offset();
    assert_eq!(log.delete_records(start + 1).unwrap(), start + 1);
    assert!(matches!(
        log.read(start, 10, None),
        Err(Error::OffsetOutOfRange { .. })
    ));
    assert!(log.delete_records(log.log_end_offset() + 1).is_err());
    // Everything expired: the active segment rolls and goes too; the log stays appendable.
    let _ = log.enforce_retention(1_000_000).unwrap();
    assert_eq!(log.log_start_offset(), 90);
    assert_eq!(append(&log, batch(1, 1_000_000), 0).0, 90);
    // Size-based retention.
    log.update_config(LogConfig {
        retention_ms: -1,
        retention_bytes: 4096,
        ..small_segments()
    });
    for i in 0..30 {
        append(&log, batch(3, i), 0);
    }
    let _ = log.enforce_retention(0).unwrap();
    assert!(log.size_bytes() <= 4096 + 4096);
}

#[test]
fn group_commit_shares_fsyncs_between_threads() {
    let dir = tempfile::tempdir().unwrap();
    let manager = LogManager::open_std(dir.path(), 0).unwrap();
    let log = manager
        .get_or_create(&TopicPartition::new("gc", 0), LogConfig::default(), 0)
        .unwrap();
    let threads: Vec<_> = (0..8)
        .map(|_| {
            let log = Arc::clone(&log);
            std::thread::spawn(move || {
                for _ in 0..50 {
                    let (_, last) = append(&log, batch(1, 0), 0);
                    log.sync_to(last + 1, 0).unwrap();
                    assert!(log.recovery_point() > last);
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    assert_eq!(log.log_end_offset(), 400);
    assert_eq!(log.recovery_point(), 400);
}

#[test]
fn idempotent_duplicates_get_original_offsets_and_survive_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let tp = TopicPartition::new("idem", 0);
    let producer_batch = |seq| {
        RecordBatchBuilder::new()
            .producer(42, 0, seq)
            .record(Some(b"k"), Some(b"v"), 0)
            .build()
    };
    {
        let manager = LogManager::open_std(dir.path(), 0).unwrap();
        let log = manager.get_or_create(&tp, LogConfig::default(), 0).unwrap();
        append(&log, batch(2, 0), 0);
        assert_eq!(append(&log, producer_batch(0), 0), (2, 2));
        manager.shutdown(0).unwrap();
    }
    for clean in [true, false] {
        let manager = LogManager::open_std(dir.path(), 0).unwrap();
        let log = manager.get(&tp).unwrap();
        let outcome = log
            .append(&mut producer_batch(0), AppendOrigin::Client, 0, 0)
            .unwrap();
        assert!(
            matches!(
                outcome,
                AppendOutcome::Duplicate {
                    first_offset: 2,
                    last_offset: 2,
                    ..
                }
            ),
            "clean={clean}: {outcome:?}"
        );
        assert!(matches!(
            log.append(&mut producer_batch(5), AppendOrigin::Client, 0, 0),
            Err(Error::OutOfOrderSequence {
                expected: 1,
                actual: 5,
                ..
            })
        ));
        if clean {
            manager.shutdown(0).unwrap();
        } else {
            drop(manager);
        }
    }
}

#[test]
fn a_second_manager_on_the_same_directory_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let _first = LogManager::open_std(dir.path(), 0).unwrap();
    assert!(matches!(
        LogManager::open_std(dir.path(), 0),
        Err(Error::DirLocked(_))
    ));
}

#[test]
fn log_append_time_is_stamped_and_leader_epoch_patched() {
    let dir = tempfile::tempdir().unwrap();
    let manager = LogManager::open_std(dir.path(), 0).unwrap();
    let log = manager
        .get_or_create(
            &TopicPartition::new("lat", 0),
            LogConfig {
                message_timestamp_type: kairos_storage::TimestampType::LogAppendTime,
                ..LogConfig::default()
            },
            0,
        )
        .unwrap();
    let mut bytes = batch(2, 5);
    let AppendOutcome::Appended(info) = log
        .append(&mut bytes, AppendOrigin::Client, 77_000, 4)
        .unwrap()
    else {
        panic!()
    };
    assert_eq!(info.log_append_time_ms, 77_000);
    let read = log.read(0, 1000, None).unwrap();
    let header = RecordBatchHeader::parse(&read.records).unwrap();
    header.verify_crc().unwrap();
    assert_eq!(header.max_timestamp(), 77_000);
    assert_eq!(header.partition_leader_epoch(), 4);
}

#[test]
fn flush_messages_and_flush_ms_sync_without_being_asked() {
    let dir = tempfile::tempdir().unwrap();
    let manager = LogManager::open_std(dir.path(), 0).unwrap();
    let by_count = manager
        .get_or_create(
            &TopicPartition::new("fm", 0),
            LogConfig {
                flush_messages: 5,
                ..LogConfig::default()
            },
            0,
        )
        .unwrap();
    append(&by_count, batch(2, 0), 0);
    append(&by_count, batch(2, 0), 0);
    assert_eq!(
        by_count.recovery_point(),
        0,
        "4 unflushed records: below flush.messages"
    );
    append(&by_count, batch(1, 0), 0);
    assert_eq!(
        by_count.recovery_point(),
        5,
        "the 5th record triggers the sync"
    );

    let by_time = manager
        .get_or_create(
            &TopicPartition::new("ft", 0),
            LogConfig {
                flush_ms: 1000,
                ..LogConfig::default()
            },
            0,
        )
        .unwrap();
    append(&by_time, batch(3, 0), 0);
    manager.flush_due(999);
    assert_eq!(by_time.recovery_point(), 0);
    manager.flush_due(1000);
    assert_eq!(by_time.recovery_point(), 3);
}

#[test]
fn idle_producers_expire_but_open_transactions_stay() {
    let dir = tempfile::tempdir().unwrap();
    let manager = LogManager::open_std(dir.path(), 0).unwrap();
    let log = manager
        .get_or_create(&TopicPartition::new("exp", 0), LogConfig::default(), 0)
        .unwrap();
    let idempotent = RecordBatchBuilder::new()
        .producer(1, 0, 0)
        .record(None, Some(b"v"), 1_000)
        .build();
    let transactional = RecordBatchBuilder::new()
        .producer(2, 0, 0)
        .transactional(true)
        .record(None, Some(b"v"), 1_000)
        .build();
    append(&log, idempotent, 0);
    append(&log, transactional, 0);
    assert_eq!(manager.remove_expired_producers(1_500, 1_000), 0);
    assert_eq!(manager.remove_expired_producers(2_000, 1_000), 1);
    // The expired producer's next batch is accepted from any sequence, as for a new producer.
    let resumed = RecordBatchBuilder::new()
        .producer(1, 0, 7)
        .record(None, Some(b"v"), 2_000)
        .build();
    append(&log, resumed, 0);
    assert_eq!(
        log.last_stable_offset(),
        1,
        "producer 2's transaction is still open"
    );
}

/// Regression (found by the model tests' workaround): producer state lived only in the log and in
/// a snapshot written at clean shutdown, so a crash after retention had deleted a producer's
/// segments forgot its sequences, and a retried batch was appended twice. A snapshot at every
/// roll keeps them.
#[test]
fn idempotence_survives_a_crash_after_retention_deleted_the_producers_segments() {
    let dir = tempfile::tempdir().unwrap();
    let tp = TopicPartition::new("idem-retention", 0);
    let config = LogConfig {
        segment_bytes: 1024,
        retention_bytes: 2048,
        ..LogConfig::default()
    };
    let producer_batch = |seq| {
        RecordBatchBuilder::new()
            .producer(77, 0, seq)
            .record(Some(b"k"), Some(&[1u8; 200]), 0)
            .build()
    };
    {
        let manager = LogManager::open_std(dir.path(), 0).unwrap();
        let log = manager.get_or_create(&tp, config.clone(), 0).unwrap();
        for seq in 0..3 {
            append(&log, producer_batch(seq), 0);
        }
        for i in 0..20 {
            append(&log, batch(2, i), 0);
        }
        let _ = log.enforce_retention(0).unwrap();
        assert!(
            log.log_start_offset() > 3,
            "the producer's batches are gone"
        );
        log.sync_to(log.log_end_offset(), 0).unwrap();
        // Dropped without shutdown: a crash.
    }
    let manager = LogManager::open_std(dir.path(), 0).unwrap();
    let log = manager.get(&tp).unwrap();
    log.update_config(config);
    assert!(matches!(
        log.append(&mut producer_batch(2), AppendOrigin::Client, 0, 0)
            .unwrap(),
        AppendOutcome::Duplicate {
            first_offset: 2,
            last_offset: 2,
            ..
        }
    ));
    assert!(matches!(
        log.append(&mut producer_batch(4), AppendOrigin::Client, 0, 0),
        Err(Error::OutOfOrderSequence {
            expected: 3,
            actual: 4,
            ..
        })
    ));
}

#[test]
fn while_end_is_runs_only_at_the_expected_end_and_holds_appends_off_meanwhile() {
    let dir = tempfile::tempdir().unwrap();
    let manager = LogManager::open_std(dir.path(), 0).unwrap();
    let source = manager
        .get_or_create(&TopicPartition::new("source", 0), LogConfig::default(), 0)
        .unwrap();
    let target = manager
        .get_or_create(&TopicPartition::new("target", 0), LogConfig::default(), 0)
        .unwrap();
    let _ = append(&source, batch(2, 0), 0);
    // At the expected end: `f` runs and may append to another log.
    let appended = source
        .while_end_is(2, || {
            let mut bytes = batch(1, 0);
            target.append(&mut bytes, AppendOrigin::Coordinator, 0, 0)
        })
        .unwrap();
    assert!(matches!(appended, AppendOutcome::Appended(_)));
    assert_eq!(target.log_end_offset(), 1);
    // Moved on: `f` does not run.
    let mut ran = false;
    let moved = source.while_end_is(1, || {
        ran = true;
        Ok(())
    });
    assert!(matches!(
        moved,
        Err(Error::LogEndMoved {
            expected: 1,
            actual: 2
        })
    ));
    assert!(!ran);
    // While `f` runs, an append to the source waits for it.
    let (started_tx, started_rx) = std::sync::mpsc::channel();
    let (release_tx, release_rx) = std::sync::mpsc::channel::<()>();
    let holder = {
        let source = Arc::clone(&source);
        std::thread::spawn(move || {
            source
                .while_end_is(2, || {
                    started_tx.send(()).unwrap();
                    release_rx.recv().unwrap();
                    Ok(())
                })
                .unwrap();
        })
    };
    started_rx.recv().unwrap();
    let producer = {
        let source = Arc::clone(&source);
        std::thread::spawn(move || append(&source, batch(1, 0), 0))
    };
    std::thread::sleep(std::time::Duration::from_millis(50));
    assert_eq!(source.log_end_offset(), 2, "the append waited for `f`");
    release_tx.send(()).unwrap();
    holder.join().unwrap();
    assert_eq!(producer.join().unwrap(), (2, 2));
}
