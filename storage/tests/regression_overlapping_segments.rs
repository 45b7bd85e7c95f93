//! Regression (found by the `segment_recover` fuzz target): opening a log did not check that a
//! segment's batches stay below the next segment's base offset. The base offset field is
//! outside the CRC, so one flipped bit there gives a CRC-valid batch whose offsets run into
//! (or far past) the next segment. The log then had overlapping segments: a log end offset
//! below an earlier segment's offsets, reads served from the wrong segment, and a failed
//! invariant assertion (a panic in debug builds). Such a batch is now invalid, like a bad CRC:
//! recovery truncates there and drops the later segments, after a clean shutdown too.
//!
//! How: write three small segments, move the base offset of the last batch of the first
//! segment far ahead (the CRC stays valid), then open with and without the clean-shutdown
//! marker and check that the log is the clean prefix before that batch.

use std::path::Path;

use kairos_storage::batch::{Batches, peek_base_offset, set_base_offset};
use kairos_storage::builder::RecordBatchBuilder;
use kairos_storage::manager::CLEAN_SHUTDOWN_FILE;
use kairos_storage::{AppendOrigin, LogConfig, LogManager, TopicPartition};

fn config() -> LogConfig {
    LogConfig {
        segment_bytes: 1024,
        ..LogConfig::default()
    }
}

/// Writes three segments and returns the offset of the last batch of the first one.
fn write_log(data_dir: &Path, clean: bool) -> i64 {
    let tp = TopicPartition::new("overlap", 0);
    let manager = LogManager::open_std(data_dir, 0).unwrap();
    let log = manager.get_or_create(&tp, config(), 0).unwrap();
    for i in 0..12 {
        let mut batch = RecordBatchBuilder::new()
            .record(Some(b"k"), Some(&[9u8; 200]), i)
            .build();
        let _ = log.append(&mut batch, AppendOrigin::Client, 0, 0).unwrap();
    }
    assert!(log.segment_count() >= 3);
    if clean {
        manager.shutdown(0).unwrap();
    } else {
        log.sync_to(log.log_end_offset(), 0).unwrap();
    }
    let first = data_dir.join("overlap-0/00000000000000000000.log");
    let mut bytes = std::fs::read(&first).unwrap();
    let last_at = Batches::new(&bytes).map(|b| b.unwrap().0).last().unwrap();
    let original = peek_base_offset(&bytes[last_at..]);
    set_base_offset(&mut bytes[last_at..], original + 1_000);
    std::fs::write(&first, &bytes).unwrap();
    original
}

fn check(clean: bool) {
    let dir = tempfile::tempdir().unwrap();
    let corrupt_at = write_log(dir.path(), clean);
    assert_eq!(
        dir.path().join(CLEAN_SHUTDOWN_FILE).exists(),
        clean,
        "the marker matches the case"
    );
    let manager = LogManager::open_with_configs(
        std::sync::Arc::new(kairos_storage::fs::StdFs),
        dir.path(),
        0,
        |_| config(),
    )
    .unwrap();
    let log = manager.get(&TopicPartition::new("overlap", 0)).unwrap();
    assert_eq!(log.log_end_offset(), corrupt_at, "clean={clean}");
    assert_eq!(log.segment_count(), 1, "later segments are dropped");
    let all = log.read(0, 1 << 20, None).unwrap();
    let offsets: Vec<i64> = Batches::new(&all.records)
        .map(|b| b.unwrap().1.base_offset())
        .collect();
    assert_eq!(offsets, (0..corrupt_at).collect::<Vec<_>>());
    let mut next = RecordBatchBuilder::new()
        .record(None, Some(b"v"), 0)
        .build();
    let _ = log.append(&mut next, AppendOrigin::Client, 0, 0).unwrap();
    assert_eq!(log.log_end_offset(), corrupt_at + 1);
}

#[test]
fn a_batch_reaching_the_next_segment_is_truncated_after_a_crash() {
    check(false);
}

#[test]
fn a_batch_reaching_the_next_segment_is_truncated_after_a_clean_shutdown() {
    check(true);
}
