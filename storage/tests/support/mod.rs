//! Shared by the storage integration tests: the fault-injecting file system, deterministic
//! batches, and the `check_*` helpers that state what a recovered log must look like.
#![allow(
    dead_code,
    reason = "each test binary uses a different part of the support module"
)]

pub(crate) mod faulty_fs;

use kairos_storage::batch::Batches;
use kairos_storage::builder::RecordBatchBuilder;
use kairos_storage::{AppendOrigin, AppendOutcome, Log};

/// A batch as stored in the log: its offsets and its exact bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Stored {
    pub first: i64,
    pub last: i64,
    pub bytes: Vec<u8>,
}

/// SplitMix64: a tiny deterministic generator, so failures reproduce from a printed seed.
#[derive(Debug, Clone)]
pub(crate) struct Rng(u64);

impl Rng {
    pub(crate) fn new(seed: u64) -> Self {
        Self(seed)
    }

    pub(crate) fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `[lo, hi)`.
    pub(crate) fn range(&mut self, lo: u64, hi: u64) -> u64 {
        lo + self.next_u64() % (hi - lo).max(1)
    }
}

/// A batch whose every byte follows from `tag`: `records` records with key `"{tag}/{i}"` and a
/// value of `value_len` bytes derived from the tag and the record index.
pub(crate) fn tagged_batch(tag: u64, records: usize, value_len: usize) -> Vec<u8> {
    let timestamp = i64::try_from(tag % 1_000_000).unwrap();
    (0..records)
        .fold(RecordBatchBuilder::new(), |builder, i| {
            let key = format!("{tag}/{i}");
            let value: Vec<u8> = (0..value_len)
                .map(|j| (tag as usize).wrapping_mul(31).wrapping_add(i * 7 + j) as u8)
                .collect();
            builder.record(Some(key.as_bytes()), Some(&value), timestamp)
        })
        .build()
}

/// Appends `bytes` as a client batch and returns it as stored (offsets and leader epoch are
/// patched in place by the append).
pub(crate) fn append(log: &Log, mut bytes: Vec<u8>) -> kairos_storage::Result<Stored> {
    match log.append(&mut bytes, AppendOrigin::Client, 0, 0)? {
        AppendOutcome::Appended(info) => Ok(Stored {
            first: info.first_offset,
            last: info.last_offset,
            bytes,
        }),
        other => panic!("unexpected {other:?}"),
    }
}

/// Splits concatenated batches into [`Stored`] batches, checking each CRC.
pub(crate) fn split_batches(bytes: &[u8]) -> Vec<Stored> {
    Batches::new(bytes)
        .map(|b| {
            let (at, header) = b.expect("batch frames");
            header.verify_crc().expect("batch CRC");
            Stored {
                first: header.base_offset(),
                last: header.last_offset(),
                bytes: bytes[at..at + header.total_size()].to_vec(),
            }
        })
        .collect()
}

/// Every batch from the log start to the log end, read through `Log::read`.
pub(crate) fn read_all(log: &Log) -> Vec<Stored> {
    let mut out: Vec<Stored> = Vec::new();
    let mut offset = log.log_start_offset();
    while offset < log.log_end_offset() {
        let read = log.read(offset, 1 << 20, None).expect("read");
        let batches = split_batches(&read.records);
        assert!(!batches.is_empty(), "read at {offset} returned nothing");
        offset = batches.last().unwrap().last + 1;
        out.extend(batches);
    }
    out
}

/// The log is a clean prefix: every batch CRC-valid (checked by [`split_batches`]), offsets
/// contiguous from the batch holding the log start to the log end offset, no gap.
pub(crate) fn check_clean_prefix(log: &Log) -> Vec<Stored> {
    let batches = read_all(log);
    let (start, end) = (log.log_start_offset(), log.log_end_offset());
    let mut expected_next = None;
    for batch in &batches {
        if let Some(next) = expected_next {
            assert_eq!(
                batch.first, next,
                "gap or overlap before offset {}",
                batch.first
            );
        } else {
            assert!(
                batch.first <= start && start <= batch.last,
                "first batch {}..={} does not hold the log start {start}",
                batch.first,
                batch.last
            );
        }
        expected_next = Some(batch.last + 1);
    }
    assert_eq!(expected_next.unwrap_or(start), end, "log ends at the LEO");
    batches
}

/// Every batch of `expected` is in `actual`, at the same offsets and byte for byte.
pub(crate) fn check_contains(actual: &[Stored], expected: &[Stored]) {
    let mut by_first = std::collections::HashMap::new();
    for batch in actual {
        let _ = by_first.insert(batch.first, batch);
    }
    for want in expected {
        let got = by_first
            .get(&want.first)
            .unwrap_or_else(|| panic!("flushed batch at {} is missing", want.first));
        assert_eq!(got.last, want.last, "last offset of batch {}", want.first);
        assert!(
            got.bytes == want.bytes,
            "bytes of batch {} differ",
            want.first
        );
    }
}

/// The tag [`tagged_batch`] built a stored batch from, read back from its first record's key.
pub(crate) fn tag_of(bytes: &[u8]) -> u64 {
    let header = kairos_storage::batch::RecordBatchHeader::parse(bytes).unwrap();
    let records = kairos_storage::record::RecordBytes::of(&header).unwrap();
    let first = records.records().next().unwrap().unwrap();
    let key = std::str::from_utf8(first.key.unwrap()).unwrap();
    key.split('/').next().unwrap().parse().unwrap()
}

/// `built` as the log stores it at `first_offset`: the append patches the base offset and the
/// partition leader epoch (0 in these tests), both outside the CRC.
pub(crate) fn as_stored(mut built: Vec<u8>, first_offset: i64) -> Vec<u8> {
    kairos_storage::batch::set_base_offset(&mut built, first_offset);
    kairos_storage::batch::set_partition_leader_epoch(&mut built, 0);
    built
}
