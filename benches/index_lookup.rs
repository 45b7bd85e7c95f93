//! Offset and timestamp lookups in one large segment with many index entries.
//!
//! - `index_lookup/random`: `Log::read` of one batch at a random offset anywhere in a 256 MiB
//!   segment (about 45,000 offset index entries): binary search of the mapped index, a scan
//!   from the entry found, and the read of the batch. Everything is in the page cache.
//! - `index_lookup/tail`: the same for offsets in the newest 1 MiB, the part of the index and
//!   the log that consumers at the tail keep warm (Kafka's "warm section").
//! - `index_lookup/random_cold`: random offsets with the segment's `.log` pages evicted before
//!   each lookup, so the scan and the read go to the disk. The mapped index stays resident: a
//!   shared mapping cannot be evicted from outside, and a live broker touches it on every
//!   append, so this is the cold case a consumer catching up really meets.
//! - `offset_for_timestamp/random` (and `_cold`): ListOffsets by timestamp, through the time
//!   index, a scan, and the decoding of the records of the batch found.
//!
//! How: 1 KiB batches of one record each, timestamps increasing by 1 ms per batch, default
//! `index.interval.bytes` (4096). The segment is synced so eviction can drop its pages.

mod support;

use std::time::{Duration, Instant};

use criterion::{Criterion, SamplingMode, criterion_group, criterion_main};
use kairos_storage::builder::RecordBatchBuilder;
use kairos_storage::{Log, LogConfig};
use support::{BenchLog, NOW_MS, Rng};

const BATCH_BYTES: usize = 1 << 10;
const SEGMENT_BYTES: usize = 256 << 20;
/// The tail that `index_lookup/tail` picks offsets from, in batches.
const TAIL_BATCHES: u64 = (1 << 20) / BATCH_BYTES as u64;

/// A one-record batch of exactly [`BATCH_BYTES`] stamped `timestamp`.
fn one_record(value: &[u8], timestamp: i64) -> Vec<u8> {
    RecordBatchBuilder::new()
        .record(Some(b"key-0000"), Some(value), timestamp)
        .build()
}

fn fixture() -> BenchLog {
    let bench = BenchLog::new("index-lookup", LogConfig::default());
    let mut value = support::payload(BATCH_BYTES, 3);
    let overhead = one_record(&value, NOW_MS).len() - value.len();
    value.truncate(BATCH_BYTES - overhead);
    assert_eq!(one_record(&value, NOW_MS).len(), BATCH_BYTES);
    for i in 0..(SEGMENT_BYTES / BATCH_BYTES) as i64 {
        let mut batch = one_record(&value, NOW_MS + i);
        let _ = support::append(&bench.log, &mut batch);
    }
    assert_eq!(bench.log.segment_count(), 1, "one large segment");
    let end = bench.log.log_end_offset();
    bench.log.sync_to(end, NOW_MS).expect("sync the fixture");
    bench
}

/// Times `iters` calls of `lookup` on random inputs from `pick`, optionally evicting the
/// segment's pages (untimed) before each.
fn time_lookups(
    iters: u64,
    bench: &BenchLog,
    cold: bool,
    mut pick: impl FnMut() -> i64,
    mut lookup: impl FnMut(&Log, i64),
) -> Duration {
    let mut total = Duration::ZERO;
    for _ in 0..iters {
        let input = pick();
        if cold {
            bench.evict_page_cache();
        }
        let start = Instant::now();
        lookup(&bench.log, input);
        total += start.elapsed();
    }
    total
}

fn read_one(log: &Log, offset: i64) {
    let read = log.read(offset, 1, None).expect("read");
    assert_eq!(read.records.len(), BATCH_BYTES);
}

fn find_timestamp(log: &Log, timestamp: i64) {
    let found = log.offset_for_timestamp(timestamp).expect("lookup");
    assert_eq!(found.map(|f| f.offset), Some(timestamp - NOW_MS));
}

fn lookups(c: &mut Criterion) {
    let bench = fixture();
    let end = bench.log.log_end_offset();
    let mut group = c.benchmark_group("index_lookup");
    for (name, from, cold) in [
        ("random", 0, false),
        ("tail", end - TAIL_BATCHES as i64, false),
        ("random_cold", 0, true),
    ] {
        if cold {
            let _ = group.sampling_mode(SamplingMode::Flat).sample_size(10);
        }
        let mut rng = Rng::new(4);
        let _ = group.bench_function(name, |b| {
            b.iter_custom(|iters| {
                let pick = || from + rng.below((end - from) as u64) as i64;
                time_lookups(iters, &bench, cold, pick, read_one)
            });
        });
    }
    group.finish();

    let mut group = c.benchmark_group("offset_for_timestamp");
    for (name, cold) in [("random", false), ("random_cold", true)] {
        if cold {
            let _ = group.sampling_mode(SamplingMode::Flat).sample_size(10);
        }
        let mut rng = Rng::new(5);
        let _ = group.bench_function(name, |b| {
            b.iter_custom(|iters| {
                let pick = || NOW_MS + rng.below(end as u64) as i64;
                time_lookups(iters, &bench, cold, pick, find_timestamp)
            });
        });
    }
    group.finish();
}

criterion_group! {
    name = benches;
    config = support::criterion();
    targets = lookups
}
criterion_main!(benches);
