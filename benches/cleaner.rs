//! Cleaner throughput: `LogManager::clean_once` compacting 64 MiB of keyed records of which 10 %
//! are live (the latest of their key), next to a raw reference that does the same I/O, measured
//! in the same run on the same disk. Throughput is in bytes of dirty log cleaned.
//!
//! - `clean`: passes until nothing is dirty (one pass: the 16 MiB offset map holds every key).
//!   A pass reads each dirty segment twice (once to fill the key → offset map, once to rewrite
//!   it), decodes every record, writes the kept ones to `.cleaned` files, and per group of
//!   segments fdatasyncs the file, renames it through `.swap` to `.log` with two directory
//!   fsyncs, and rebuilds the new segment's indexes.
//! - `raw_read_write_fdatasync`: reads the same segment files as many times as the pass did
//!   (`bytes_read` of its stats), in 64 KiB `read`s, and writes the same number of bytes as
//!   the pass wrote (`bytes_written`) into as many files as it produced segments, each
//!   followed by `fdatasync` and a directory fsync: the I/O floor of a cleaner.
//!
//! How: a template data directory is written once: 64 MiB of 16-record batches with 200-byte
//! JSON-like values and keys drawn at random from 10 % as many keys as records, in 8 MiB
//! segments, synced, rolled and shut down cleanly. Before every timed iteration (untimed) the
//! template is copied to a fresh directory, so both contenders read files just written (in
//! the page cache) and the cleaner always starts from the same dirty log; opening the manager
//! and dropping it are untimed too.

mod support;

use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use criterion::{Criterion, SamplingMode, Throughput, criterion_group, criterion_main};
use kairos_storage::builder::{RecordBatchBuilder, RecordSpec};
use kairos_storage::fs::StdFs;
use kairos_storage::{CleanupPolicy, LogCleaner, LogConfig, LogManager, TopicPartition};
use support::{BenchLog, NOW_MS, Rng};
use tempfile::TempDir;

const LOG_BYTES: u64 = 64 << 20;
const SEGMENT_BYTES: u32 = 8 << 20;
const RECORDS_PER_BATCH: usize = 16;
const VALUE_BYTES: usize = 200;
/// One key for every ten records: about 10 % of the records are their key's latest.
const RECORDS_PER_KEY: u64 = 10;
/// The offset map: enough for every key, so one pass cleans the whole log.
const DEDUPE_BUFFER_BYTES: usize = 16 << 20;
const TOPIC: &str = "cleaner";

fn config() -> LogConfig {
    LogConfig {
        cleanup_policy: CleanupPolicy::Compact,
        segment_bytes: SEGMENT_BYTES,
        min_cleanable_dirty_ratio: 0.0,
        ..LogConfig::default()
    }
}

/// Writes the template log; returns its directory and the dirty bytes (all but the empty
/// active segment).
fn template() -> (TempDir, u64) {
    let BenchLog { log, manager, dir } = BenchLog::new(TOPIC, config());
    let value = support::payload(VALUE_BYTES, 1);
    let mut rng = Rng::new(7);
    let mut records = 0u64;
    while log.size_bytes() < LOG_BYTES {
        // Keys range over a tenth of the records the log will hold once it is full.
        let keys = (LOG_BYTES / (VALUE_BYTES as u64 + 30) / RECORDS_PER_KEY).max(1);
        let mut batch = (0..RECORDS_PER_BATCH)
            .fold(RecordBatchBuilder::new(), |b, i| {
                b.record_spec(RecordSpec {
                    key: Some(format!("key-{:08}", rng.below(keys)).into_bytes()),
                    value: Some(value.clone()),
                    timestamp_ms: NOW_MS + i as i64,
                    headers: Vec::new(),
                })
            })
            .build();
        let _ = support::append(&log, &mut batch);
        records += RECORDS_PER_BATCH as u64;
    }
    log.sync_to(log.log_end_offset(), NOW_MS)
        .expect("sync the template");
    log.roll().expect("roll the template");
    let dirty = log.size_bytes();
    eprintln!(
        "cleaner bench: template of {records} records, {} segments, {dirty} bytes",
        log.segment_count()
    );
    drop(log);
    manager.shutdown(NOW_MS).expect("shut the template down");
    drop(manager);
    (dir, dirty)
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).expect("create the copy");
    for entry in std::fs::read_dir(from).expect("list the template") {
        let entry = entry.expect("entry");
        let target = to.join(entry.file_name());
        if entry.file_type().expect("file type").is_dir() {
            copy_dir(&entry.path(), &target);
        } else if entry.file_name() != ".lock" {
            let _ = std::fs::copy(entry.path(), target).expect("copy");
        }
    }
}

/// A fresh copy of the template.
fn fresh_copy(template: &Path) -> TempDir {
    let dir = support::scratch_dir("cleaner-run");
    copy_dir(template, dir.path());
    dir
}

/// What one cleaning of the template did, for the reference to repeat.
#[derive(Debug, Clone, Copy)]
struct Work {
    bytes_read: u64,
    bytes_written: u64,
    output_files: u64,
}

/// Cleans a fresh copy of the template until nothing is dirty; returns the time spent in
/// `clean_once` and what it did.
fn clean_copy(template: &Path, cleaner: &mut LogCleaner) -> (Duration, Work) {
    let dir = fresh_copy(template);
    let manager = LogManager::open_with_configs(Arc::new(StdFs), dir.path(), NOW_MS, |_| config())
        .expect("open the copy");
    let mut work = Work {
        bytes_read: 0,
        bytes_written: 0,
        output_files: 0,
    };
    let start = Instant::now();
    while let Some((_, stats)) = manager.clean_once(NOW_MS, cleaner).expect("clean") {
        work.bytes_read += stats.bytes_read;
        work.bytes_written += stats.bytes_written;
    }
    let elapsed = start.elapsed();
    let log = manager
        .get(&TopicPartition::new(TOPIC, 0))
        .expect("the log");
    // Every segment but the empty active one is a cleaned one.
    work.output_files = log.segment_count() as u64 - 1;
    (elapsed, work)
}

/// The raw reference for `work` on a fresh copy of the template (see the module docs).
fn raw_copy(template: &Path, dirty_bytes: u64, work: Work) -> Duration {
    let dir = fresh_copy(template);
    let log_dir = dir.path().join(format!("{TOPIC}-0"));
    let mut inputs: Vec<PathBuf> = std::fs::read_dir(&log_dir)
        .expect("list the copy")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "log"))
        .collect();
    inputs.sort();
    let passes = work.bytes_read.div_ceil(dirty_bytes);
    let per_file = work.bytes_written / work.output_files.max(1);
    let output = vec![0x5Au8; usize::try_from(per_file).expect("fits")];
    let start = Instant::now();
    let mut buf = vec![0u8; 64 << 10];
    for _ in 0..passes {
        for input in &inputs {
            let mut file = std::fs::File::open(input).expect("open a segment");
            while file.read(&mut buf).expect("read a segment") > 0 {}
        }
    }
    for i in 0..work.output_files {
        let path = log_dir.join(format!("{i:020}.raw"));
        std::fs::write(&path, &output).expect("write");
        std::fs::File::open(&path)
            .expect("reopen")
            .sync_data()
            .expect("fdatasync");
        std::fs::File::open(&log_dir)
            .expect("open the dir")
            .sync_all()
            .expect("fsync the dir");
    }
    start.elapsed()
}

fn cleaner(c: &mut Criterion) {
    let (template, dirty_bytes) = template();
    let mut cleaner = LogCleaner::new(DEDUPE_BUFFER_BYTES);
    let (_, work) = clean_copy(template.path(), &mut cleaner);
    assert!(
        work.bytes_read >= dirty_bytes && work.bytes_written < dirty_bytes / 5,
        "the pass cleaned the whole log: {work:?}"
    );
    eprintln!(
        "cleaner bench: a cleaning reads {} bytes, writes {} bytes into {} segments",
        work.bytes_read, work.bytes_written, work.output_files
    );
    let mut group = c.benchmark_group("clean_64MiB_10pct_live");
    let _ = group
        .sampling_mode(SamplingMode::Flat)
        .sample_size(10)
        .measurement_time(Duration::from_secs(10))
        .throughput(Throughput::Bytes(dirty_bytes));
    let _ = group.bench_function("clean", |b| {
        b.iter_custom(|iters| {
            (0..iters)
                .map(|_| clean_copy(template.path(), &mut cleaner).0)
                .sum()
        });
    });
    let _ = group.bench_function("raw_read_write_fdatasync", |b| {
        b.iter_custom(|iters| {
            (0..iters)
                .map(|_| raw_copy(template.path(), dirty_bytes, work))
                .sum()
        });
    });
    group.finish();
}

criterion_group! {
    name = benches;
    config = support::criterion();
    targets = cleaner
}
criterion_main!(benches);
