//! A crash at every step of a compaction pass.
//!
//! How: a compacted log of several flushed segments is built once. Then, for n = 1, 2, ..., a
//! fresh copy is opened on `FaultyFs`, a cleaner pass runs with the nth file operation (write,
//! fsync, directory fsync or resize) failing, the manager is dropped and `FaultyFs::crash`
//! simulates power loss right there, undoing unsynced renames and dropping unsynced bytes and
//! files. After every such crash the reopened log must hold all its offsets up to the same log
//! end offset, with CRC-valid batches in increasing order, every record one that was written
//! (same offset, key and value), and the latest record of every key still there, whether the
//! swap was committed or not. Every eighth crash state is then compacted to completion, which
//! must leave one record per key. The loop ends at the first n where the pass completes without reaching the fault.

mod support;

use std::collections::BTreeMap;
use std::path::Path;

use kairos_storage::batch::Batches;
use kairos_storage::builder::RecordBatchBuilder;
use kairos_storage::record::RecordBytes;
use kairos_storage::{CleanupPolicy, Log, LogCleaner, LogConfig, LogManager, TopicPartition};
use support::faulty_fs::{EIO, Fault, FaultOp, FaultyFs};

type Row = (Vec<u8>, Vec<u8>);

const KEYS: usize = 7;

fn config() -> LogConfig {
    LogConfig {
        cleanup_policy: CleanupPolicy::Compact,
        segment_bytes: 1024,
        min_cleanable_dirty_ratio: 0.0,
        ..LogConfig::default()
    }
}

fn tp() -> TopicPartition {
    TopicPartition::new("cc", 0)
}

fn open(fs: &FaultyFs, dir: &Path) -> LogManager {
    LogManager::open_with_configs(fs.handle(), dir, 0, |_| config()).unwrap()
}

/// Every record as offset -> (key, value), checking CRCs and that batches only go forwards.
fn records(log: &Log) -> BTreeMap<i64, Row> {
    let mut out = BTreeMap::new();
    let mut offset = log.log_start_offset();
    let mut previous_last = -1;
    while offset < log.log_end_offset() {
        let data = log.read(offset, 1 << 20, None).unwrap();
        let mut next = offset;
        for batch in Batches::new(&data.records) {
            let (_, batch) = batch.expect("batch frames");
            batch.verify_crc().expect("batch CRC");
            assert!(batch.base_offset() > previous_last, "batches go forwards");
            previous_last = batch.last_offset();
            for record in RecordBytes::of(&batch).unwrap().records() {
                let record = record.unwrap();
                let at = batch.base_offset() + i64::from(record.offset_delta);
                let row = (record.key.unwrap().to_vec(), record.value.unwrap().to_vec());
                assert!(out.insert(at, row).is_none(), "offset {at} twice");
            }
            next = batch.last_offset() + 1;
        }
        if next == offset {
            break;
        }
        offset = next;
    }
    out
}

fn latest(rows: &BTreeMap<i64, Row>) -> BTreeMap<Vec<u8>, i64> {
    rows.iter().map(|(&o, (k, _))| (k.clone(), o)).collect()
}

/// What every crash state must satisfy against the records written. Returns whether the log
/// is compacted (holds fewer records than were written).
fn check_consistent(log: &Log, written: &BTreeMap<i64, Row>, end: i64, step: u64) -> bool {
    assert_eq!(log.log_end_offset(), end, "step {step}: log end offset");
    let now = records(log);
    for (offset, row) in &now {
        assert_eq!(
            written.get(offset),
            Some(row),
            "step {step}: record at {offset}"
        );
    }
    assert_eq!(
        latest(&now),
        latest(written),
        "step {step}: latest record per key"
    );
    now.len() < written.len()
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &target);
        } else if entry.file_name() != ".lock" {
            let _ = std::fs::copy(entry.path(), target).unwrap();
        }
    }
}

#[test]
fn a_crash_at_any_step_of_a_cleaner_pass_keeps_the_old_or_the_new_segments() {
    let base = tempfile::tempdir().unwrap();
    let (written, end) = {
        let manager = LogManager::open_std(base.path(), 0).unwrap();
        let log = manager.get_or_create(&tp(), config(), 0).unwrap();
        for i in 0..70 {
            let key = format!("k{}", i % KEYS);
            let mut bytes = RecordBatchBuilder::new()
                .record(Some(key.as_bytes()), Some(format!("v{i}").as_bytes()), 10)
                .build();
            let _ = log
                .append(&mut bytes, kairos_storage::AppendOrigin::Client, 10, 0)
                .unwrap();
        }
        log.roll().unwrap();
        let written = records(&log);
        let end = log.log_end_offset();
        assert!(log.segment_count() > 3);
        manager.shutdown(0).unwrap();
        (written, end)
    };
    let mut step = 0;
    let (mut old_states, mut new_states) = (0, 0);
    loop {
        step += 1;
        let dir = tempfile::tempdir().unwrap();
        copy_dir(base.path(), dir.path());
        let fs = FaultyFs::new();
        let manager = open(&fs, dir.path());
        fs.arm(Fault::next(FaultOp::Any, EIO).nth(step));
        let outcome = manager.clean_once(100, &mut LogCleaner::new(1 << 20));
        let fired = fs.fired() > 0;
        if !fired {
            assert!(outcome.unwrap().is_some(), "the pass cleaned something");
        }
        drop(manager);
        fs.crash();

        let manager = open(&FaultyFs::new(), dir.path());
        let log = manager.get(&tp()).unwrap();
        if check_consistent(&log, &written, end, step) {
            new_states += 1;
        } else {
            old_states += 1;
        }
        drop(log);
        if !fired {
            assert!(step > 5, "the pass has several steps");
            break;
        }
        if step % 8 != 0 {
            continue;
        }
        // The log can still be compacted completely.
        let mut cleaner = LogCleaner::new(1 << 20);
        while manager.clean_once(100, &mut cleaner).unwrap().is_some() {}
        let log = manager.get(&tp()).unwrap();
        let _ = check_consistent(&log, &written, end, step);
        assert_eq!(records(&log).len(), KEYS, "step {step}: one record per key");
    }
    eprintln!(
        "crash_cleaner: crashed at each of {} steps: {old_states} left the old segments, \
         {new_states} the cleaned ones",
        step - 1
    );
    assert!(
        old_states > 0 && new_states > 1,
        "crashes on both sides of the commit"
    );
}
