//! Writes seed corpora for the fuzz targets, built with the storage crate's own encoder and log:
//! `corpus/record_batch/` (single batches of every codec and kind, plus a few broken ones) and
//! `corpus/segment_recover/` (real segment directories, after a crash and after a clean
//! shutdown, with one and with two segments).
//!
//! Usage, from `fuzz/`: `cargo run --bin generate_seeds [corpus-dir]` (default `corpus`).

use std::path::PathBuf;
use std::sync::Arc;

use kairos_fuzz::{SegmentInput, TOPIC, fuzz_config};
use kairos_storage::builder::{RecordBatchBuilder, RecordSpec};
use kairos_storage::control::{ControlRecordType, EndTransactionMarker, build_marker};
use kairos_storage::file_names::{
    self, INDEX_SUFFIX, LOG_SUFFIX, TIME_INDEX_SUFFIX, TXN_INDEX_SUFFIX,
};
use kairos_storage::fs::StdFs;
use kairos_storage::{AppendOrigin, Compression, LogConfig, LogManager, TopicPartition};

const CODECS: [Compression; 5] = [
    Compression::None,
    Compression::Gzip,
    Compression::Snappy,
    Compression::Lz4,
    Compression::Zstd,
];

fn main() {
    let root = PathBuf::from(std::env::args().nth(1).unwrap_or_else(|| "corpus".into()));
    let batches = root.join("record_batch");
    let segments = root.join("segment_recover");
    std::fs::create_dir_all(&batches).unwrap();
    std::fs::create_dir_all(&segments).unwrap();
    let mut n = 0;
    for seed in record_batch_seeds() {
        std::fs::write(batches.join(format!("seed-{n:03}")), seed).unwrap();
        n += 1;
    }
    let mut m = 0;
    for seed in segment_seeds() {
        std::fs::write(segments.join(format!("seed-{m:03}")), seed.encode()).unwrap();
        m += 1;
    }
    println!("wrote {n} record_batch and {m} segment_recover seeds under {root:?}");
}

/// A small batch of `records` keyed records, some with headers, one a tombstone.
fn batch(codec: Compression, records: usize, timestamp: i64) -> RecordBatchBuilder {
    (0..records).fold(RecordBatchBuilder::new().compression(codec), |b, i| {
        b.record_spec(RecordSpec {
            key: Some(format!("k{i}").into_bytes()),
            value: (i % 4 != 3).then(|| format!("{{\"price\":{i},\"status\":\"active\"}}").into()),
            timestamp_ms: timestamp + i as i64,
            headers: if i % 2 == 0 {
                vec![("h".into(), Some(b"x".to_vec())), ("null".into(), None)]
            } else {
                Vec::new()
            },
        })
    })
}

fn record_batch_seeds() -> Vec<Vec<u8>> {
    let mut seeds = Vec::new();
    for codec in CODECS {
        seeds.push(batch(codec, 3, 1_000).build());
    }
    seeds.push(batch(Compression::None, 1, 0).producer(7, 1, 41).build());
    seeds.push(
        batch(Compression::None, 2, 0)
            .producer(7, 1, 0)
            .transactional(true)
            .build(),
    );
    seeds.push(
        RecordBatchBuilder::new()
            .control(true)
            .producer(7, 1, -1)
            .transactional(true)
            .record(Some(&[0, 0, 0, 1]), Some(&[0, 0, 0, 0, 0, 0]), 5)
            .build(),
    );
    // Two batches back to back, as a Produce request carries them.
    let mut two = batch(Compression::None, 2, 0).build();
    two.extend_from_slice(&batch(Compression::Lz4, 2, 10).build());
    seeds.push(two);
    // Broken ones: a truncated batch and a flipped bit under the CRC.
    let whole = batch(Compression::None, 2, 0).build();
    seeds.push(whole[..whole.len() - 3].to_vec());
    let mut flipped = whole;
    let last = flipped.len() - 1;
    flipped[last] ^= 0x10;
    seeds.push(flipped);
    seeds
}

/// One real log per case, read back from disk into a [`SegmentInput`].
fn segment_seeds() -> Vec<SegmentInput> {
    let mut seeds = Vec::new();
    for clean in [false, true] {
        for two_segments in [false, true] {
            for codec in CODECS {
                seeds.push(real_log(codec, clean, two_segments, false));
            }
            seeds.push(real_log(Compression::None, clean, two_segments, true));
        }
    }
    seeds
}

/// Three transactions: producer 7 commits, producer 8 aborts (which gives the segment a
/// `.txnindex` entry), and producer 9's stays open.
fn append_transactions(log: &kairos_storage::Log) {
    let append = |mut bytes: Vec<u8>, origin| {
        let _ = log.append(&mut bytes, origin, 0, 0).unwrap();
    };
    for (producer, end) in [
        (7, Some(ControlRecordType::Commit)),
        (8, Some(ControlRecordType::Abort)),
        (9, None),
    ] {
        for sequence in [0, 2] {
            let batch = batch(Compression::None, 2, 2_000)
                .producer(producer, 0, sequence)
                .transactional(true);
            append(batch.build(), AppendOrigin::Client);
        }
        if let Some(kind) = end {
            let marker = EndTransactionMarker {
                kind,
                coordinator_epoch: 3,
            };
            append(
                build_marker(producer, 0, marker, 2_100),
                AppendOrigin::Coordinator,
            );
        }
    }
}

fn real_log(
    codec: Compression,
    clean: bool,
    two_segments: bool,
    transactions: bool,
) -> SegmentInput {
    let dir = tempfile::tempdir().unwrap();
    let tp = TopicPartition::new(TOPIC, 0);
    let config = LogConfig {
        segment_bytes: if two_segments { 700 } else { 1 << 20 },
        ..fuzz_config()
    };
    let manager =
        LogManager::open_with_configs(Arc::new(StdFs), dir.path(), 0, |_| config.clone()).unwrap();
    let log = manager.get_or_create(&tp, config.clone(), 0).unwrap();
    if transactions {
        append_transactions(&log);
    } else {
        for i in 0..8i64 {
            let mut bytes = batch(codec, 1 + (i % 3) as usize, 1_000 + i * 10).build();
            let _ = log.append(&mut bytes, AppendOrigin::Client, 0, 0).unwrap();
        }
    }
    let log_dir = log.dir().to_path_buf();
    let bases = log.segment_base_offsets();
    if clean {
        manager.shutdown(0).unwrap();
    } else {
        log.sync_to(log.log_end_offset(), 0).unwrap();
    }
    drop(log);
    drop(manager);
    let read = |base: i64, suffix| std::fs::read(file_names::file_path(&log_dir, base, suffix));
    let first = bases[0];
    let mut log_bytes = read(first, LOG_SUFFIX).unwrap();
    let split = (bases.len() > 1).then(|| u16::try_from(log_bytes.len()).unwrap());
    if let Some(&second) = bases.get(1) {
        log_bytes.extend_from_slice(&read(second, LOG_SUFFIX).unwrap());
    }
    SegmentInput {
        index: read(first, INDEX_SUFFIX)
            .ok()
            .map(|b| trim_zero_entries(b, 8)),
        time_index: read(first, TIME_INDEX_SUFFIX)
            .ok()
            .map(|b| trim_zero_entries(b, 12)),
        txn_index: read(first, TXN_INDEX_SUFFIX).ok(),
        clean_shutdown: clean,
        split,
        base_offset: u32::try_from(first).unwrap(),
        log: log_bytes,
    }
}

/// An active segment's index is preallocated with zeros; the entries are what matters, and a
/// short seed fuzzes faster. Whole zero entries are dropped from the end.
fn trim_zero_entries(mut bytes: Vec<u8>, entry_bytes: usize) -> Vec<u8> {
    bytes.truncate(bytes.len() / entry_bytes * entry_bytes);
    while bytes.len() >= entry_bytes && bytes[bytes.len() - entry_bytes..].iter().all(|&b| b == 0) {
        bytes.truncate(bytes.len() - entry_bytes);
    }
    bytes
}
