//! Fault injection through `FaultyFs`: a failed write or fsync (ENOSPC, EIO, short write)
//! poisons only the log it hit, which refuses appends and flushes with `LogDirOffline`, stays
//! readable and never retries the fsync. After reopening, with or without a simulated crash,
//! every batch acknowledged as flushed is there byte for byte and the log is a clean prefix.
//! The last tests pin the directory fsyncs a crash depends on, and truncations racing group
//! commits.

mod support;

use std::path::Path;
use std::sync::Arc;

use kairos_storage::{Error, Log, LogConfig, LogManager, TopicPartition};
use support::faulty_fs::{EIO, ENOSPC, Fault, FaultOp, FaultyFs};
use support::{Stored, append, check_clean_prefix, check_contains, tagged_batch};

fn small_segments() -> LogConfig {
    LogConfig {
        segment_bytes: 8 << 10,
        index_interval_bytes: 1024,
        segment_index_bytes: 1024,
        ..LogConfig::default()
    }
}

fn tp_a() -> TopicPartition {
    TopicPartition::new("a", 0)
}

fn tp_b() -> TopicPartition {
    TopicPartition::new("b", 0)
}

/// Appends `n` batches tagged from `tag`, returning them as stored.
fn append_n(log: &Log, tag: u64, n: u64) -> Vec<Stored> {
    (tag..tag + n)
        .map(|t| append(log, tagged_batch(t, 1 + (t % 4) as usize, 300)).unwrap())
        .collect()
}

fn flush(log: &Log) {
    log.sync_to(log.log_end_offset(), 0).unwrap();
}

fn is_errno(error: &Error, errno: i32) -> bool {
    matches!(error, Error::Io { source, .. } if source.raw_os_error() == Some(errno))
}

/// What to break, and where.
#[derive(Debug, Clone, Copy)]
enum Breakage {
    /// The next append's write fails with this errno.
    Write(i32),
    /// The next append's write stores only half of the batch, then fails with ENOSPC.
    ShortWrite,
    /// The next fdatasync of a segment fails with this errno.
    SyncData(i32),
    /// The directory fsync after a roll fails with EIO.
    SyncDir,
    /// Resizing an index file while rolling a segment fails with ENOSPC.
    Roll,
}

/// How the poisoned log is closed before reopening.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Reopen {
    /// Shut down (which fails for the poisoned log), reopen on the page cache as it is.
    AfterShutdown,
    /// Drop everything and simulate power loss before reopening.
    AfterCrash,
}

/// The scenario every poison test runs: two logs in one manager, flushed and unflushed data in
/// log `a`, one fault in `a`, then the checks of the module docs.
fn check_poisoning(breakage: Breakage, reopen: Reopen) {
    let dir = tempfile::tempdir().unwrap();
    let fs = FaultyFs::new();
    let manager = LogManager::open(fs.handle(), dir.path(), 0).unwrap();
    let a = manager.get_or_create(&tp_a(), small_segments(), 0).unwrap();
    let b = manager.get_or_create(&tp_b(), small_segments(), 0).unwrap();
    let mut flushed_a = append_n(&a, 0, 40);
    flush(&a);
    let mut flushed_b = append_n(&b, 1000, 10);
    flush(&b);
    assert!(a.segment_count() > 1, "the data spans segments");
    if matches!(breakage, Breakage::SyncDir) {
        a.roll().unwrap();
    }
    let mut written_a = flushed_a.clone();
    written_a.extend(append_n(&a, 100, 3));

    let error = match breakage {
        Breakage::Write(errno) => {
            fs.arm(Fault::next(FaultOp::Write, errno).under(a.dir()));
            let error = append(&a, tagged_batch(200, 2, 300)).unwrap_err();
            assert!(is_errno(&error, errno), "{error:?}");
            error
        }
        Breakage::ShortWrite => {
            let torn = tagged_batch(200, 3, 300);
            fs.arm(
                Fault::next(FaultOp::Write, ENOSPC)
                    .under(a.dir())
                    .short(torn.len() / 2),
            );
            append(&a, torn).unwrap_err()
        }
        Breakage::SyncData(errno) => {
            fs.arm(Fault::next(FaultOp::SyncData, errno).under(a.dir()));
            let error = a.sync_to(a.log_end_offset(), 0).unwrap_err();
            assert!(is_errno(&error, errno), "{error:?}");
            error
        }
        Breakage::SyncDir => {
            fs.arm(Fault::next(FaultOp::SyncDir, EIO).under(a.dir()));
            a.sync_to(a.log_end_offset(), 0).unwrap_err()
        }
        Breakage::Roll => {
            fs.arm(Fault::next(FaultOp::SetLen, ENOSPC).under(a.dir()));
            let error = a.roll().unwrap_err();
            assert!(is_errno(&error, ENOSPC), "{error:?}");
            error
        }
    };
    assert_eq!(fs.fired(), 1, "{breakage:?}: the fault fired ({error})");
    assert!(a.is_poisoned());

    // Poisoned: appends and flushes are refused with the typed error, and no fsync is retried.
    let syncs_before = fs.count(FaultOp::AnySync, a.dir());
    let leo = a.log_end_offset();
    assert_eq!(
        leo,
        written_a.last().unwrap().last + 1,
        "the failed append did not count"
    );
    assert!(matches!(
        append(&a, tagged_batch(300, 1, 10)),
        Err(Error::LogDirOffline(_))
    ));
    assert!(matches!(a.sync_to(leo, 0), Err(Error::LogDirOffline(_))));
    assert!(matches!(
        a.flush_if_due(i64::MAX),
        Err(Error::LogDirOffline(_))
    ));
    // Nothing else changes its files either: no roll, truncation or deletion.
    let segments = a.segment_base_offsets();
    assert!(matches!(a.roll(), Err(Error::LogDirOffline(_))));
    assert!(matches!(a.truncate_to(1), Err(Error::LogDirOffline(_))));
    assert!(matches!(a.delete_records(1), Err(Error::LogDirOffline(_))));
    assert!(matches!(
        a.enforce_retention(i64::MAX),
        Err(Error::LogDirOffline(_))
    ));
    assert_eq!(a.segment_base_offsets(), segments);
    assert_eq!(a.log_start_offset(), 0);
    assert_eq!(a.log_end_offset(), leo);
    assert!(a.recovery_point() > flushed_a.last().unwrap().last);

    // Still readable: everything written before the failure, byte for byte.
    let read = check_clean_prefix(&a);
    assert_eq!(read, written_a);

    // The other log of the manager is unaffected.
    assert!(!b.is_poisoned());
    flushed_b.extend(append_n(&b, 2000, 5));
    flush(&b);
    assert_eq!(check_clean_prefix(&b), flushed_b);

    // Shutting down reports the poisoned log and leaves no clean-shutdown marker.
    assert!(matches!(manager.shutdown(0), Err(Error::LogDirOffline(_))));
    assert_eq!(
        fs.count(FaultOp::AnySync, a.dir()),
        syncs_before,
        "an fsync of the poisoned log was retried"
    );
    assert_eq!(fs.count_since_fault(FaultOp::AnySync, a.dir()), 0);
    drop((a, b, manager));
    if reopen == Reopen::AfterCrash {
        fs.crash();
    }

    let fs = FaultyFs::new();
    let manager = LogManager::open(fs.handle(), dir.path(), 0).unwrap();
    let a = manager.get(&tp_a()).unwrap();
    let b = manager.get(&tp_b()).unwrap();
    let recovered = check_clean_prefix(&a);
    check_contains(&recovered, &flushed_a);
    // A prefix of what was written, never the torn or refused batch.
    assert!(recovered.len() <= written_a.len());
    assert_eq!(recovered[..], written_a[..recovered.len()]);
    if reopen == Reopen::AfterShutdown {
        assert_eq!(
            recovered, written_a,
            "the page cache kept every written batch"
        );
    }
    assert_eq!(check_clean_prefix(&b), flushed_b);

    // The log works again after the restart.
    let next = append(&a, tagged_batch(400, 2, 50)).unwrap();
    assert_eq!(next.first, recovered.last().unwrap().last + 1);
    flush(&a);
    flushed_a.push(next);
    check_contains(&check_clean_prefix(&a), &flushed_a);
    manager.shutdown(0).unwrap();
}

#[test]
fn failed_write_enospc_poisons_the_log() {
    check_poisoning(Breakage::Write(ENOSPC), Reopen::AfterShutdown);
    check_poisoning(Breakage::Write(ENOSPC), Reopen::AfterCrash);
}

#[test]
fn failed_write_eio_poisons_the_log() {
    check_poisoning(Breakage::Write(EIO), Reopen::AfterShutdown);
    check_poisoning(Breakage::Write(EIO), Reopen::AfterCrash);
}

#[test]
fn short_write_poisons_the_log_and_the_torn_batch_is_recovered_away() {
    check_poisoning(Breakage::ShortWrite, Reopen::AfterShutdown);
    check_poisoning(Breakage::ShortWrite, Reopen::AfterCrash);
}

#[test]
fn failed_fdatasync_enospc_poisons_the_log() {
    check_poisoning(Breakage::SyncData(ENOSPC), Reopen::AfterShutdown);
    check_poisoning(Breakage::SyncData(ENOSPC), Reopen::AfterCrash);
}

#[test]
fn failed_fdatasync_eio_poisons_the_log() {
    check_poisoning(Breakage::SyncData(EIO), Reopen::AfterShutdown);
    check_poisoning(Breakage::SyncData(EIO), Reopen::AfterCrash);
}

#[test]
fn failed_index_resize_in_a_roll_poisons_the_log() {
    check_poisoning(Breakage::Roll, Reopen::AfterShutdown);
    check_poisoning(Breakage::Roll, Reopen::AfterCrash);
}

#[test]
fn failed_directory_fsync_after_a_roll_poisons_the_log() {
    check_poisoning(Breakage::SyncDir, Reopen::AfterShutdown);
    check_poisoning(Breakage::SyncDir, Reopen::AfterCrash);
}

/// Several appenders share group commits; one fdatasync fails. Every appender gets an error
/// (none hangs), no fsync follows the failed one, and every batch acknowledged as flushed
/// survives a crash. A retry needs a waiter to race the failing flusher (the bug this pins
/// showed in about half of the runs of these 40 failure points), so the scenario repeats.
#[test]
fn a_failed_group_commit_fails_every_waiter_and_keeps_every_acknowledged_batch() {
    for nth in 30..70 {
        check_failed_group_commit(nth);
    }
}

fn check_failed_group_commit(failing_sync: u64) {
    let dir = tempfile::tempdir().unwrap();
    let fs = FaultyFs::new();
    let manager = LogManager::open(fs.handle(), dir.path(), 0).unwrap();
    let log = manager.get_or_create(&tp_a(), small_segments(), 0).unwrap();
    fs.arm(
        Fault::next(FaultOp::SyncData, EIO)
            .under(log.dir())
            .nth(failing_sync),
    );
    let threads: Vec<_> = (0..4u64)
        .map(|t| {
            let log = Arc::clone(&log);
            std::thread::spawn(move || {
                let mut acked = Vec::new();
                for i in 0.. {
                    let batch = match append(&log, tagged_batch(t * 10_000 + i, 2, 100)) {
                        Ok(batch) => batch,
                        Err(error) => return (acked, error),
                    };
                    match log.sync_to(batch.last + 1, 0) {
                        Ok(()) => acked.push(batch),
                        Err(error) => return (acked, error),
                    }
                }
                unreachable!()
            })
        })
        .collect();
    let mut acked = Vec::new();
    for thread in threads {
        let (batches, error) = thread.join().unwrap();
        assert!(
            matches!(error, Error::LogDirOffline(_)) || is_errno(&error, EIO),
            "{error:?}"
        );
        acked.extend(batches);
    }
    assert_eq!(fs.fired(), 1);
    assert!(!acked.is_empty());
    assert_eq!(
        fs.count_since_fault(FaultOp::AnySync, log.dir()),
        0,
        "a waiter retried the failed fsync (failing sync {failing_sync})"
    );
    let syncs = fs.count(FaultOp::AnySync, log.dir());
    let (recovery_point, end) = (log.recovery_point(), log.log_end_offset());
    let flushed = log.sync_to(end, 0);
    assert!(
        matches!(flushed, Err(Error::LogDirOffline(_))),
        "{flushed:?}: recovery point {recovery_point}, log end {end}"
    );
    assert_eq!(fs.count(FaultOp::AnySync, log.dir()), syncs);
    drop((log, manager));
    fs.crash();
    let manager = LogManager::open_std(dir.path(), 0).unwrap();
    let log = manager.get(&tp_a()).unwrap();
    acked.sort_by_key(|b| b.first);
    check_contains(&check_clean_prefix(&log), &acked);
}

/// The harness itself: a crash drops bytes never fdatasynced and files whose directory entry
/// was never fsynced, and undoes a rename no directory fsync followed.
#[test]
fn faulty_fs_crash_drops_what_was_never_synced() {
    use kairos_storage::fs::FileSystem;
    let dir = tempfile::tempdir().unwrap();
    let fs = FaultyFs::new();
    let path = |name: &str| dir.path().join(name);
    let durable = fs.open(&path("durable"), true).unwrap();
    durable.write_all_at(b"hello", 0).unwrap();
    durable.sync_data().unwrap();
    fs.sync_dir(dir.path()).unwrap();
    durable.write_all_at(b" world", 5).unwrap();
    let orphan = fs.open(&path("orphan"), true).unwrap();
    orphan.write_all_at(b"x", 0).unwrap();
    orphan.sync_data().unwrap();
    let tmp = fs.open(&path("new.tmp"), true).unwrap();
    tmp.write_all_at(b"new", 0).unwrap();
    tmp.sync_data().unwrap();
    drop((durable, orphan, tmp));
    fs.rename(&path("new.tmp"), &path("durable")).unwrap();
    assert_eq!(std::fs::read(path("durable")).unwrap(), b"new");
    fs.crash();
    assert_eq!(std::fs::read(path("durable")).unwrap(), b"hello world"[..5]);
    assert!(!path("orphan").exists());
    assert!(!path("new.tmp").exists());
}

/// Segments created by rolls are only found after a crash because the flush fsyncs the log
/// directory; a log created by `get_or_create` survives because the data directory is fsynced.
#[test]
fn rolled_segments_and_new_logs_survive_a_crash_once_flushed() {
    let dir = tempfile::tempdir().unwrap();
    let fs = FaultyFs::new();
    let manager = LogManager::open(fs.handle(), dir.path(), 0).unwrap();
    let log = manager.get_or_create(&tp_a(), small_segments(), 0).unwrap();
    let flushed = append_n(&log, 0, 60);
    flush(&log);
    assert!(log.segment_count() > 3);
    let dir_syncs = fs.count(FaultOp::SyncDir, log.dir());
    assert!(dir_syncs >= 1, "the flush fsynced the log directory");
    // Unflushed appends that roll new segments are lost whole, never torn.
    let unflushed = append_n(&log, 100, 60);
    let segments_before_crash = log.segment_count();
    drop((log, manager));
    fs.crash();
    let manager = LogManager::open(fs.handle(), dir.path(), 0).unwrap();
    let log = manager
        .get(&tp_a())
        .expect("the new log's directory entry is durable");
    let recovered = check_clean_prefix(&log);
    assert_eq!(
        recovered, flushed,
        "unflushed data in unsynced segments is gone"
    );
    assert!(log.segment_count() < segments_before_crash);
    drop(unflushed);
    manager.shutdown(0).unwrap();
}

/// A clean shutdown makes everything durable: a crash right after it loses nothing, and the
/// next open is clean (no recovery needed to find every batch).
#[test]
fn a_crash_after_a_clean_shutdown_loses_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let fs = FaultyFs::new();
    let manager = LogManager::open(fs.handle(), dir.path(), 0).unwrap();
    let log = manager.get_or_create(&tp_a(), small_segments(), 0).unwrap();
    let written = append_n(&log, 0, 50);
    manager.shutdown(0).unwrap();
    drop((log, manager));
    fs.crash();
    assert!(Path::new(&dir.path().join(".kafka_cleanshutdown")).exists());
    let manager = LogManager::open(fs.handle(), dir.path(), 0).unwrap();
    let log = manager.get(&tp_a()).unwrap();
    assert_eq!(check_clean_prefix(&log), written);
}

/// Checkpoints are written to a temporary file, fsynced, renamed over the old one and the
/// directory fsynced. If the directory fsync fails and the machine then loses power, the rename
/// may be lost: the old checkpoint must still be there and the log must open with everything
/// that was flushed.
#[test]
fn a_checkpoint_whose_rename_never_became_durable_leaves_the_old_one() {
    let dir = tempfile::tempdir().unwrap();
    let fs = FaultyFs::new();
    let manager = LogManager::open(fs.handle(), dir.path(), 0).unwrap();
    let log = manager.get_or_create(&tp_a(), small_segments(), 0).unwrap();
    manager.checkpoint().unwrap();
    let checkpoint = dir.path().join(kairos_storage::RECOVERY_POINT_CHECKPOINT);
    let before = std::fs::read(&checkpoint).unwrap();
    let flushed = append_n(&log, 0, 30);
    flush(&log);
    fs.arm(Fault::next(FaultOp::SyncDir, EIO).under(dir.path()));
    let error = manager.checkpoint().unwrap_err();
    assert!(is_errno(&error, EIO), "{error:?}");
    assert_ne!(
        std::fs::read(&checkpoint).unwrap(),
        before,
        "renamed in place"
    );
    drop((log, manager));
    fs.crash();
    assert_eq!(
        std::fs::read(&checkpoint).unwrap(),
        before,
        "the rename was undone"
    );
    let manager = LogManager::open(fs.handle(), dir.path(), 0).unwrap();
    let log = manager.get(&tp_a()).unwrap();
    assert_eq!(check_clean_prefix(&log), flushed);
}

/// Truncations racing group commits: a flush that started before a truncation must not raise
/// the recovery point past the new log end (where new, unsynced data goes), and an appender
/// whose batch was truncated away gets an error instead of waiting forever for its offsets.
/// How: three appenders flush every batch while the test thread truncates the last few offsets
/// every millisecond, checking the recovery point after each truncation.
#[test]
fn truncations_racing_group_commits_never_overstate_the_recovery_point() {
    use std::sync::atomic::{AtomicBool, Ordering};
    let dir = tempfile::tempdir().unwrap();
    let manager = LogManager::open_std(dir.path(), 0).unwrap();
    let log = manager.get_or_create(&tp_a(), small_segments(), 0).unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let appenders: Vec<_> = (0..3u64)
        .map(|t| {
            let (log, stop) = (Arc::clone(&log), Arc::clone(&stop));
            std::thread::spawn(move || {
                for i in 0.. {
                    if stop.load(Ordering::Relaxed) {
                        return;
                    }
                    let batch = append(&log, tagged_batch(t * 1_000_000 + i, 1, 50)).unwrap();
                    match log.sync_to(batch.last + 1, 0) {
                        Ok(()) => assert!(log.recovery_point() > batch.last),
                        Err(Error::OffsetOutOfRange { .. }) => {}
                        Err(other) => panic!("{other:?}"),
                    }
                }
            })
        })
        .collect();
    for round in 0..300 {
        std::thread::sleep(std::time::Duration::from_millis(1));
        log.truncate_to((log.log_end_offset() - 3).max(0)).unwrap();
        // Only this thread truncates, so the log end read second is at least what it was when
        // the recovery point was read.
        let recovery_point = log.recovery_point();
        let end = log.log_end_offset();
        assert!(
            recovery_point <= end,
            "round {round}: recovery point {recovery_point} past the log end {end}"
        );
    }
    stop.store(true, Ordering::Relaxed);
    for appender in appenders {
        appender.join().unwrap();
    }
    log.sync_to(log.log_end_offset(), 0).unwrap();
    drop((log, manager));
    let manager = LogManager::open_std(dir.path(), 0).unwrap();
    let _ = check_clean_prefix(&manager.get(&tp_a()).unwrap());
}
