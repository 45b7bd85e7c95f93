//! Opening a data directory after a crash: `LogManager::open` of one partition log of 64 MiB
//! and 256 MiB whose every segment must be recovered (each batch framed and CRC-checked, both
//! indexes rebuilt, the segments fsynced), with the log in the page cache and evicted from it.
//!
//! How: the log (16 KiB batches in 64 MiB segments) is written and synced once, and the
//! manager is dropped without a shutdown, so there is no clean-shutdown marker. Before each
//! open (untimed) the recovery-point checkpoint is deleted, so the whole log is scanned rather
//! than only the segments after the last checkpoint; the manager is dropped after the clock
//! stops. Throughput is in bytes of log recovered.

mod support;

use std::path::Path;
use std::time::{Duration, Instant};

use criterion::{Criterion, SamplingMode, Throughput, criterion_group, criterion_main};
use kairos_storage::manager::CLEAN_SHUTDOWN_FILE;
use kairos_storage::{LogConfig, LogManager, RECOVERY_POINT_CHECKPOINT, TopicPartition};
use support::{BenchLog, NOW_MS};
use tempfile::TempDir;

const BATCH_BYTES: usize = 16 << 10;
const SEGMENT_BYTES: u32 = 64 << 20;
const SIZES: [(&str, usize); 2] = [("64MiB", 64 << 20), ("256MiB", 256 << 20)];

/// Writes `bytes` of log, syncs it and "crashes". Returns the data directory and the log end
/// offset.
fn unclean_log(bytes: usize) -> (TempDir, i64) {
    let BenchLog { log, manager, dir } = BenchLog::new(
        "recovery",
        LogConfig {
            segment_bytes: SEGMENT_BYTES,
            ..LogConfig::default()
        },
    );
    let mut batch = support::batch_of_size(BATCH_BYTES);
    for _ in 0..bytes / BATCH_BYTES {
        let _ = support::append(&log, &mut batch);
    }
    let end = log.log_end_offset();
    log.sync_to(end, NOW_MS).expect("sync the fixture");
    drop(log);
    drop(manager);
    (dir, end)
}

fn evict(data_dir: &Path) {
    for log_dir in std::fs::read_dir(data_dir).expect("list") {
        let log_dir = log_dir.expect("entry").path();
        if !log_dir.is_dir() {
            continue;
        }
        for file in std::fs::read_dir(&log_dir).expect("list") {
            let path = file.expect("entry").path();
            if path.extension().is_some_and(|e| e == "log") {
                support::evict_page_cache(&path);
            }
        }
    }
}

fn time_opens(iters: u64, dir: &Path, end: i64, cold: bool) -> Duration {
    let mut total = Duration::ZERO;
    for _ in 0..iters {
        assert!(!dir.join(CLEAN_SHUTDOWN_FILE).exists());
        let _ = std::fs::remove_file(dir.join(RECOVERY_POINT_CHECKPOINT));
        if cold {
            evict(dir);
        }
        let start = Instant::now();
        let manager = LogManager::open_std(dir, NOW_MS).expect("open");
        total += start.elapsed();
        let log = manager
            .get(&TopicPartition::new("recovery", 0))
            .expect("the log");
        assert_eq!(log.log_end_offset(), end, "nothing lost");
    }
    total
}

fn recovery(c: &mut Criterion) {
    let mut group = c.benchmark_group("recover_unclean_open");
    let _ = group.sampling_mode(SamplingMode::Flat).sample_size(10);
    for (label, bytes) in SIZES {
        let (dir, end) = unclean_log(bytes);
        let _ = group.throughput(Throughput::Bytes(bytes as u64));
        let _ = group.bench_function(format!("{label}_warm"), |b| {
            b.iter_custom(|iters| time_opens(iters, dir.path(), end, false));
        });
        let _ = group.bench_function(format!("{label}_cold"), |b| {
            b.iter_custom(|iters| time_opens(iters, dir.path(), end, true));
        });
    }
    group.finish();
}

criterion_group! {
    name = benches;
    config = support::criterion();
    targets = recovery
}
criterion_main!(benches);
