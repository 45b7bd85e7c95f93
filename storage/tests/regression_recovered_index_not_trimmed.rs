//! Regression: after an unclean shutdown, recovery rebuilt the indexes of the old (inactive)
//! segments at their full preallocated size (`segment.index.bytes`) and never trimmed them.
//! The next open read the entry count from the file length, found zero-filled entries, failed
//! the sanity check and rebuilt every old segment again, on every restart, clean or not.
//!
//! How: fill several small segments, drop the manager without a shutdown, reopen (recovery),
//! and check that every inactive segment's `.index` and `.timeindex` hold exactly their
//! entries, after the recovery and again after a clean shutdown and reopen.

use std::path::Path;
use std::sync::Arc;

use kairos_storage::builder::RecordBatchBuilder;
use kairos_storage::fs::StdFs;
use kairos_storage::{AppendOrigin, LogConfig, LogManager, TopicPartition};

const OFFSET_INDEX_ENTRY_BYTES: u64 = 8;
const TIME_INDEX_ENTRY_BYTES: u64 = 12;

fn config() -> LogConfig {
    LogConfig {
        segment_bytes: 4096,
        index_interval_bytes: 512,
        ..LogConfig::default()
    }
}

/// Opens the data directory with [`config`] for every log, so that rebuilt indexes have the
/// same entries as the ones written at append time.
fn open(dir: &Path) -> LogManager {
    LogManager::open_with_configs(Arc::new(StdFs), dir, 0, |_| config()).unwrap()
}

/// Lengths of the `.index` and `.timeindex` files of every segment but the newest.
fn inactive_index_lengths(dir: &Path) -> Vec<(u64, u64)> {
    let mut logs: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "log"))
        .collect();
    logs.sort();
    let _active = logs.pop();
    logs.iter()
        .map(|log| {
            let len = |ext| std::fs::metadata(log.with_extension(ext)).unwrap().len();
            (len("index"), len("timeindex"))
        })
        .collect()
}

#[test]
fn recovered_inactive_segments_get_trimmed_indexes() {
    let dir = tempfile::tempdir().unwrap();
    let tp = TopicPartition::new("trim", 0);
    let log_dir = dir.path().join(tp.dir_name());
    {
        let manager = open(dir.path());
        let log = manager.get_or_create(&tp, config(), 0).unwrap();
        for i in 0..40 {
            let mut batch = RecordBatchBuilder::new()
                .record(Some(b"k"), Some(&[1u8; 300]), i)
                .build();
            let _ = log.append(&mut batch, AppendOrigin::Client, 0, 0).unwrap();
        }
        assert!(log.segment_count() >= 3);
        // Dropped without a shutdown: the next open is unclean.
    }
    let before = inactive_index_lengths(&log_dir);
    assert!(before.len() >= 2);
    let check = |when: &str| {
        let lengths = inactive_index_lengths(&log_dir);
        assert_eq!(
            lengths, before,
            "{when}: inactive indexes hold exactly their entries"
        );
        for (index, time_index) in lengths {
            assert_eq!(index % OFFSET_INDEX_ENTRY_BYTES, 0);
            assert_eq!(time_index % TIME_INDEX_ENTRY_BYTES, 0);
        }
    };
    {
        let manager = open(dir.path());
        check("after recovery");
        manager.shutdown(0).unwrap();
    }
    let manager = open(dir.path());
    check("after a clean reopen");
    assert_eq!(manager.get(&tp).unwrap().log_end_offset(), 40);
}
