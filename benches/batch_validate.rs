//! The cost of validating a batch on the append path, per codec, measured through the public
//! API (the validator is crate-private, so an append to a fresh log measures it).
//!
//! - `validate_append_plain/<codec>`: append to a `cleanup.policy=delete` topic, where
//!   validation is framing, magic, CRC32C and header checks only: no decompression.
//! - `validate_append_compacted/<codec>`: append to a `cleanup.policy=compact` topic, where
//!   validation also decompresses the batch and decodes every record to refuse null keys. The
//!   difference between the two is that decode.
//! - `decode_records/<codec>`: `RecordBytes::of` plus iterating the records and their headers,
//!   what compaction, timestamp lookups and the due index pay per batch.
//! - `crc32c/verify_crc`: `RecordBatchHeader::parse` + `verify_crc` on a 1 MiB batch.
//!
//! How: one batch of 100 keyed records with 1000-byte JSON-like values per codec, appended
//! repeatedly without flushing; the log restarts from empty every `RESTART_BYTES`, outside the
//! timed region. Throughput is in records (the compressed sizes differ per codec).

mod support;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use kairos_storage::batch::RecordBatchHeader;
use kairos_storage::record::RecordBytes;
use kairos_storage::{CleanupPolicy, Compression, LogConfig};
use support::LogSink;

const RECORDS: usize = 100;
const VALUE_BYTES: usize = 1000;

const CODECS: [(&str, Compression); 5] = [
    ("none", Compression::None),
    ("gzip", Compression::Gzip),
    ("snappy", Compression::Snappy),
    ("lz4", Compression::Lz4),
    ("zstd", Compression::Zstd),
];

fn appends(c: &mut Criterion) {
    for (group_name, policy) in [
        ("validate_append_plain", CleanupPolicy::Delete),
        ("validate_append_compacted", CleanupPolicy::Compact),
    ] {
        let mut group = c.benchmark_group(group_name);
        let _ = group.throughput(Throughput::Elements(RECORDS as u64));
        for (name, codec) in CODECS {
            let batch = support::keyed_batch(RECORDS, VALUE_BYTES, codec);
            let config = LogConfig {
                cleanup_policy: policy,
                ..LogConfig::default()
            };
            let mut sink = LogSink::new(group_name, config, false);
            let _ = group.bench_function(name, |b| {
                let mut batch = batch.clone();
                b.iter_custom(|iters| support::time_writes(iters, &mut sink, &mut batch));
            });
        }
        group.finish();
    }
}

fn decode(c: &mut Criterion) {
    let mut group = c.benchmark_group("decode_records");
    let _ = group.throughput(Throughput::Elements(RECORDS as u64));
    for (name, codec) in CODECS {
        let batch = support::keyed_batch(RECORDS, VALUE_BYTES, codec);
        let _ = group.bench_function(name, |b| {
            b.iter(|| {
                let header = RecordBatchHeader::parse(&batch).expect("frames");
                let records = RecordBytes::of(&header).expect("decompresses");
                let mut keys = 0;
                for record in records.records() {
                    let record = record.expect("decodes");
                    keys += usize::from(record.key.is_some()) + record.headers().count();
                }
                assert_eq!(keys, RECORDS);
            });
        });
    }
    group.finish();

    let mut group = c.benchmark_group("crc32c");
    let batch = support::batch_of_size(1 << 20);
    let _ = group.throughput(Throughput::Bytes(batch.len() as u64));
    let _ = group.bench_function("verify_crc_1MiB", |b| {
        b.iter(|| {
            let header = RecordBatchHeader::parse(&batch).expect("frames");
            header.verify_crc().expect("valid CRC");
        });
    });
    group.finish();
}

criterion_group! {
    name = benches;
    config = support::criterion();
    targets = appends, decode
}
criterion_main!(benches);
