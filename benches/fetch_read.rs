//! `Log::read` as a Fetch uses it: 1 MiB (`max.partition.fetch.bytes`) from a random batch of
//! an old, rolled segment and of the active segment, the old segment also with its pages
//! evicted from the page cache (a consumer catching up from disk), and the newest batch alone
//! (a consumer at the tail).
//!
//! How: one log of 16 KiB batches in 32 MiB segments, about two and a half segments, synced so
//! that eviction can drop its pages. Reads start at a random batch at least 1 MiB before the
//! end of its segment, so every read returns the same number of bytes. Throughput is in bytes
//! returned.

mod support;

use std::time::{Duration, Instant};

use criterion::{Criterion, SamplingMode, Throughput, criterion_group, criterion_main};
use kairos_storage::LogConfig;
use support::{BenchLog, NOW_MS, Rng};

const BATCH_BYTES: usize = 16 << 10;
const SEGMENT_BYTES: u32 = 32 << 20;
const FETCH_BYTES: usize = 1 << 20;

struct Fixture {
    bench: BenchLog,
    /// Offsets at which a 1 MiB read of the oldest segment stays inside it.
    old: (i64, i64),
    /// The same for the active segment.
    active: (i64, i64),
}

fn fixture() -> Fixture {
    let bench = BenchLog::new(
        "fetch-read",
        LogConfig {
            segment_bytes: SEGMENT_BYTES,
            ..LogConfig::default()
        },
    );
    let mut batch = support::batch_of_size(BATCH_BYTES);
    let per_segment = i64::from(SEGMENT_BYTES) / BATCH_BYTES as i64;
    let batches = per_segment * 5 / 2;
    let records_per_batch = support::append(&bench.log, &mut batch) + 1;
    for _ in 1..batches {
        let _ = support::append(&bench.log, &mut batch);
    }
    let end = bench.log.log_end_offset();
    bench.log.sync_to(end, NOW_MS).expect("sync the fixture");
    let bases = bench.log.segment_base_offsets();
    assert!(bases.len() >= 3, "the fixture has old segments: {bases:?}");
    let margin = (FETCH_BYTES / BATCH_BYTES) as i64 * records_per_batch + records_per_batch;
    Fixture {
        old: (bases[0], bases[1] - margin),
        active: (bases[bases.len() - 1], end - margin),
        bench,
    }
}

fn reads(c: &mut Criterion) {
    let fixture = fixture();
    let log = &fixture.bench.log;
    let returned = log
        .read(fixture.old.0, FETCH_BYTES, None)
        .expect("read")
        .records
        .len();
    let mut group = c.benchmark_group("read_1MiB");
    let _ = group.throughput(Throughput::Bytes(returned as u64));
    for (name, range) in [
        ("old_segment", fixture.old),
        ("active_segment", fixture.active),
    ] {
        let mut rng = Rng::new(1);
        let _ = group.bench_function(name, |b| {
            b.iter(|| {
                let offset = range.0 + rng.below((range.1 - range.0) as u64) as i64;
                let read = log.read(offset, FETCH_BYTES, None).expect("read");
                assert_eq!(read.records.len(), returned);
                read
            });
        });
    }
    group.finish();

    let mut group = c.benchmark_group("read_1MiB_cold");
    let _ = group
        .throughput(Throughput::Bytes(returned as u64))
        .sampling_mode(SamplingMode::Flat)
        .sample_size(10);
    let mut rng = Rng::new(2);
    let old_path = fixture.bench.segment_path(fixture.old.0);
    let _ = group.bench_function("old_segment", |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                support::evict_page_cache(&old_path);
                let offset =
                    fixture.old.0 + rng.below((fixture.old.1 - fixture.old.0) as u64) as i64;
                let start = Instant::now();
                let read = log.read(offset, FETCH_BYTES, None).expect("read");
                total += start.elapsed();
                assert_eq!(read.records.len(), returned);
            }
            total
        });
    });
    group.finish();

    let mut group = c.benchmark_group("read_tail");
    let last = log.log_end_offset() - 1;
    let newest = log
        .read(last, FETCH_BYTES, None)
        .expect("read")
        .records
        .len();
    let _ = group.throughput(Throughput::Bytes(newest as u64));
    let _ = group.bench_function("newest_batch", |b| {
        b.iter(|| log.read(last, FETCH_BYTES, None).expect("read"));
    });
    group.finish();
}

criterion_group! {
    name = benches;
    config = support::criterion();
    targets = reads
}
criterion_main!(benches);
