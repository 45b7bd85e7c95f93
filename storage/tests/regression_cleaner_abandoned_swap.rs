//! Regression: a cleaner pass whose swap of one group was abandoned (the group's segments
//! changed meanwhile, here by DeleteRecords; retention on `compact,delete` topics does the
//! same) went on with the later groups and advanced the first dirty offset anyway. A later
//! group could then drop an expired tombstone whose older value sat in the abandoned group,
//! and that value came back: a deleted key reappeared. Now the pass stops at an abandoned
//! group and keeps the first dirty offset, so the next pass maps the same range again.
//!
//! How: segments A (one record) and B (the value of key `k`) form the first group; the
//! tombstone of `k`, old enough to be dropped, is in the next segment, which starts the second
//! group. A file system wrapper runs DeleteRecords past A at the moment the first group's
//! `.log.swap` is renamed into place (after it was written, before the segments are replaced),
//! so that swap is abandoned.

use std::collections::BTreeMap;
use std::io;
use std::path::Path;
use std::sync::{Arc, Mutex, OnceLock};

use kairos_storage::batch::Batches;
use kairos_storage::builder::RecordBatchBuilder;
use kairos_storage::fs::{FileHandle, FileSystem, StdFs};
use kairos_storage::record::RecordBytes;
use kairos_storage::{
    AppendOrigin, CleanupPolicy, Log, LogCleaner, LogConfig, LogManager, TopicPartition,
};

/// `StdFs` that calls `hook` (once) when a file is renamed to `{first group}.log.swap`.
#[derive(Default)]
struct HookFs {
    hook: Mutex<Option<Box<dyn FnOnce() + Send>>>,
}

impl std::fmt::Debug for HookFs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("HookFs")
    }
}

impl FileSystem for HookFs {
    fn open(&self, path: &Path, create: bool) -> io::Result<Arc<dyn FileHandle>> {
        StdFs.open(path, create)
    }
    fn create_dir_all(&self, path: &Path) -> io::Result<()> {
        StdFs.create_dir_all(path)
    }
    fn list_dir(&self, path: &Path) -> io::Result<Vec<String>> {
        StdFs.list_dir(path)
    }
    fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        StdFs.rename(from, to)?;
        if to.ends_with("00000000000000000000.log.swap") {
            let hook = self.hook.lock().unwrap().take();
            if let Some(hook) = hook {
                hook();
            }
        }
        Ok(())
    }
    fn remove_file(&self, path: &Path) -> io::Result<()> {
        StdFs.remove_file(path)
    }
    fn remove_dir_all(&self, path: &Path) -> io::Result<()> {
        StdFs.remove_dir_all(path)
    }
    fn sync_dir(&self, path: &Path) -> io::Result<()> {
        StdFs.sync_dir(path)
    }
    fn exists(&self, path: &Path) -> bool {
        StdFs.exists(path)
    }
}

fn put(log: &Log, key: &str, value: Option<&str>) {
    let mut bytes = RecordBatchBuilder::new()
        .record(Some(key.as_bytes()), value.map(str::as_bytes), 10)
        .build();
    let _ = log.append(&mut bytes, AppendOrigin::Client, 10, 0).unwrap();
}

/// The latest value of every key, reading from the log start.
fn latest(log: &Log) -> BTreeMap<String, Option<String>> {
    let mut out = BTreeMap::new();
    let mut offset = log.log_start_offset();
    while offset < log.log_end_offset() {
        let data = log.read(offset, 1 << 20, None).unwrap();
        let Some(last) = Batches::new(&data.records).last() else {
            break;
        };
        for batch in Batches::new(&data.records) {
            let (_, batch) = batch.unwrap();
            for record in RecordBytes::of(&batch).unwrap().records() {
                let record = record.unwrap();
                let key = String::from_utf8(record.key.unwrap().to_vec()).unwrap();
                let value = record.value.map(|v| String::from_utf8(v.to_vec()).unwrap());
                let _ = out.insert(key, value);
            }
        }
        offset = last.unwrap().1.last_offset() + 1;
    }
    out
}

#[test]
fn an_abandoned_swap_never_lets_a_deleted_key_reappear() {
    let dir = tempfile::tempdir().unwrap();
    let fs = Arc::new(HookFs::default());
    let manager = LogManager::open(fs.clone(), dir.path(), 0).unwrap();
    let config = LogConfig {
        cleanup_policy: CleanupPolicy::Compact,
        segment_bytes: 1024,
        min_cleanable_dirty_ratio: 0.0,
        delete_retention_ms: 1_000,
        ..LogConfig::default()
    };
    let log = manager
        .get_or_create(&TopicPartition::new("r", 0), config, 0)
        .unwrap();
    put(&log, "a", Some("1"));
    log.roll().unwrap();
    let b_base = log.log_end_offset();
    put(&log, "k", Some("old"));
    log.roll().unwrap();
    // A segment of about `segment.bytes`, so that it cannot join A and B in one group.
    put(&log, "k", None);
    while log.segment_count() == 3 {
        put(&log, "filler", Some("x"));
    }
    log.sync_to(log.log_end_offset(), 0).unwrap();
    log.roll().unwrap();
    assert_eq!(latest(&log).get("k"), Some(&None));

    let shared: Arc<OnceLock<Arc<Log>>> = Arc::new(OnceLock::new());
    let _ = shared.set(log.clone());
    let in_hook = shared.clone();
    *fs.hook.lock().unwrap() = Some(Box::new(move || {
        let _ = in_hook.get().unwrap().delete_records(b_base).unwrap();
    }));
    let mut cleaner = LogCleaner::new(1 << 20);
    // The first pass meets the abandoned swap; later ones finish the work.
    for _ in 0..4 {
        let _ = manager.clean_once(100_000, &mut cleaner).unwrap();
        let k = latest(&log).get("k").cloned();
        assert!(
            matches!(k, None | Some(None)),
            "deleted key k came back as {k:?}"
        );
    }
    assert!(fs.hook.lock().unwrap().is_none(), "the hook ran");
    assert_eq!(log.log_start_offset(), b_base);
    assert!(!latest(&log).contains_key("k"), "the tombstone is gone too");
}
