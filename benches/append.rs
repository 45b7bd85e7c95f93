//! Append throughput of `Log::append` for 1 KiB to 1 MiB batches, next to raw references
//! measured in the same run on the same disk:
//!
//! - `append_<size>`: `log_no_flush` (acks=1: page cache only) against `raw_write`, a plain
//!   `write(2)` of the same bytes to a plain file.
//! - `append_sync_<size>`: `log_fsync_each` (one producer at acks=all: append, then
//!   `sync_to`) against `raw_write_fdatasync` (`write` + `fdatasync` per batch), and
//!   `log_group_commit_4t` (four producers appending and calling `sync_to` concurrently, so
//!   they share fdatasyncs) against `raw_write_fdatasync_4t` (four threads doing `pwrite` +
//!   `fdatasync` on one file with no coordination).
//!
//! How: the same batch buffer is appended again and again (the log patches its base offset in
//! place, outside the CRC). The log and the raw file restart from empty every
//! `RESTART_BYTES`, outside the timed region, so both always extend a file of the same size.
//! Throughput is in bytes of batches.

mod support;

use std::fs::OpenOptions;
use std::os::unix::fs::FileExt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

use criterion::{Criterion, SamplingMode, Throughput, criterion_group, criterion_main};
use kairos_storage::{Log, LogConfig};
use support::{BenchLog, LogSink, NOW_MS, RawSink, SIZES};

/// Concurrent producers in the group-commit benches: enough that several wait on one
/// fdatasync while another runs, on a two-core machine.
const PRODUCERS: usize = 4;

fn config() -> LogConfig {
    LogConfig {
        // Room for a 1 MiB batch plus framing whatever the default is.
        max_message_bytes: 2 << 20,
        ..LogConfig::default()
    }
}

fn no_flush(c: &mut Criterion) {
    for (label, size) in SIZES {
        let mut group = c.benchmark_group(format!("append_{label}"));
        let _ = group.throughput(Throughput::Bytes(size as u64));
        let batch = support::batch_of_size(size);
        let mut sink = LogSink::new("append-no-flush", config(), false);
        let _ = group.bench_function("log_no_flush", |b| {
            let mut batch = batch.clone();
            b.iter_custom(|iters| support::time_writes(iters, &mut sink, &mut batch));
        });
        drop(sink);
        let mut raw = RawSink::new("raw-write", false);
        let _ = group.bench_function("raw_write", |b| {
            let mut batch = batch.clone();
            b.iter_custom(|iters| support::time_writes(iters, &mut raw, &mut batch));
        });
        group.finish();
    }
}

fn synced(c: &mut Criterion) {
    for (label, size) in SIZES {
        let mut group = c.benchmark_group(format!("append_sync_{label}"));
        let _ = group
            .throughput(Throughput::Bytes(size as u64))
            .sampling_mode(SamplingMode::Flat)
            .sample_size(10);
        let batch = support::batch_of_size(size);
        let mut sink = LogSink::new("append-fsync", config(), true);
        let _ = group.bench_function("log_fsync_each", |b| {
            let mut batch = batch.clone();
            b.iter_custom(|iters| support::time_writes(iters, &mut sink, &mut batch));
        });
        drop(sink);
        let mut raw = RawSink::new("raw-fdatasync", true);
        let _ = group.bench_function("raw_write_fdatasync", |b| {
            let mut batch = batch.clone();
            b.iter_custom(|iters| support::time_writes(iters, &mut raw, &mut batch));
        });
        drop(raw);
        let bench = BenchLog::new("append-group-commit", config());
        let _ = group.bench_function(format!("log_group_commit_{PRODUCERS}t"), |b| {
            b.iter_custom(|iters| group_commit(&bench.log, &batch, iters));
        });
        drop(bench);
        let _ = group.bench_function(format!("raw_write_fdatasync_{PRODUCERS}t"), |b| {
            b.iter_custom(|iters| raw_concurrent_fdatasync(&batch, iters));
        });
        group.finish();
    }
}

/// Splits `iters` batches over the producers. Each appends its batch and waits for
/// `sync_to(last + 1)`, as a Produce at acks=all does. The clock runs from the moment all
/// threads are released until the last one has its batch durable.
fn group_commit(log: &Arc<Log>, batch: &[u8], iters: u64) -> Duration {
    log.truncate_to(0).expect("truncate the log");
    let barrier = Barrier::new(PRODUCERS + 1);
    let start = std::thread::scope(|scope| {
        for n in split(iters) {
            let (log, barrier, mut batch) = (log, &barrier, batch.to_vec());
            let _ = scope.spawn(move || {
                let _ = barrier.wait();
                for _ in 0..n {
                    let last = support::append(log, &mut batch);
                    log.sync_to(last + 1, NOW_MS).expect("sync_to failed");
                }
            });
        }
        let _ = barrier.wait();
        Instant::now()
    });
    start.elapsed()
}

/// The raw counterpart of [`group_commit`]: each thread reserves a range of the file, writes
/// the batch there with `pwrite` and calls `fdatasync` itself. Whatever sharing happens is the
/// kernel's and the file system journal's.
fn raw_concurrent_fdatasync(batch: &[u8], iters: u64) -> Duration {
    let dir = support::scratch_dir("raw-fdatasync-concurrent");
    let file = OpenOptions::new()
        .create(true)
        .truncate(true)
        .write(true)
        .open(dir.path().join("raw.bin"))
        .expect("create the raw file");
    let end = AtomicU64::new(0);
    let barrier = Barrier::new(PRODUCERS + 1);
    let start = std::thread::scope(|scope| {
        for n in split(iters) {
            let (file, end, barrier) = (&file, &end, &barrier);
            let _ = scope.spawn(move || {
                let _ = barrier.wait();
                for _ in 0..n {
                    let at = end.fetch_add(batch.len() as u64, Ordering::Relaxed);
                    file.write_all_at(batch, at).expect("pwrite failed");
                    file.sync_data().expect("fdatasync failed");
                }
            });
        }
        let _ = barrier.wait();
        Instant::now()
    });
    start.elapsed()
}

/// `iters` split as evenly as possible over [`PRODUCERS`] threads.
fn split(iters: u64) -> impl Iterator<Item = u64> {
    let producers = PRODUCERS as u64;
    (0..producers).map(move |t| iters / producers + u64::from(t < iters % producers))
}

criterion_group! {
    name = benches;
    config = support::criterion();
    targets = no_flush, synced
}
criterion_main!(benches);
