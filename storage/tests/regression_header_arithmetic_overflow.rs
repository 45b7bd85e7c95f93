//! Regression (found by the `record_batch` fuzz target): `RecordBatchHeader::last_sequence`
//! and `last_offset` did unchecked arithmetic on header fields, so a header that has not been
//! validated (a negative `last_offset_delta`, or a base offset near `i64::MAX`, which a flipped
//! bit can produce because the base offset is outside the CRC) panicked with an overflow in
//! debug builds. They now wrap, as Kafka's Java arithmetic does, and recovery truncates such a
//! batch instead of panicking.
//!
//! How: patch the fields of a built batch (keeping its CRC valid where it covers them), call
//! the getters, and open a log whose segment ends with such a batch.

use kairos_storage::batch::{RecordBatchHeader, set_base_offset};
use kairos_storage::builder::RecordBatchBuilder;
use kairos_storage::{AppendOrigin, LogManager, TopicPartition};

const LAST_OFFSET_DELTA_AT: usize = 23;

fn with_delta(delta: i32) -> Vec<u8> {
    let mut bytes = RecordBatchBuilder::new()
        .producer(7, 0, 5)
        .record(Some(b"k"), Some(b"v"), 0)
        .build();
    bytes[LAST_OFFSET_DELTA_AT..LAST_OFFSET_DELTA_AT + 4].copy_from_slice(&delta.to_be_bytes());
    let crc = crc32c(&bytes[21..]);
    bytes[17..21].copy_from_slice(&crc.to_be_bytes());
    bytes
}

/// CRC32C (Castagnoli), bitwise, so the test does not lean on the code under test.
fn crc32c(data: &[u8]) -> u32 {
    let mut crc = !0u32;
    for &byte in data {
        crc ^= u32::from(byte);
        for _ in 0..8 {
            crc = (crc >> 1) ^ (0x82F6_3B78 & 0u32.wrapping_sub(crc & 1));
        }
    }
    !crc
}

#[test]
fn header_getters_wrap_instead_of_panicking() {
    let negative = with_delta(-1);
    let header = RecordBatchHeader::parse(&negative).unwrap();
    header.verify_crc().unwrap();
    // Kafka's incrementSequence(5, -1) in Java ints: `5 > MAX - (-1)` wraps to `5 > MIN`, so
    // it returns `-1 - (MAX - 5) - 1`. Garbage in, garbage out, but no panic.
    assert_eq!(header.last_sequence(), -2_147_483_644);
    assert_eq!(header.last_offset(), -1);

    let mut huge = with_delta(1);
    set_base_offset(&mut huge, i64::MAX);
    let header = RecordBatchHeader::parse(&huge).unwrap();
    header.verify_crc().unwrap();
    assert_eq!(header.last_offset(), i64::MIN, "wraps");
}

#[test]
fn recovery_truncates_a_batch_whose_last_offset_overflows() {
    let dir = tempfile::tempdir().unwrap();
    let tp = TopicPartition::new("overflow", 0);
    let segment = dir.path().join("overflow-0/00000000000000000000.log");
    {
        let manager = LogManager::open_std(dir.path(), 0).unwrap();
        let log = manager
            .get_or_create(&tp, kairos_storage::LogConfig::default(), 0)
            .unwrap();
        let mut good = RecordBatchBuilder::new()
            .record(None, Some(b"v"), 0)
            .build();
        let _ = log.append(&mut good, AppendOrigin::Client, 0, 0).unwrap();
        log.sync_to(1, 0).unwrap();
    }
    let mut bytes = std::fs::read(&segment).unwrap();
    let mut bad = with_delta(1);
    set_base_offset(&mut bad, i64::MAX);
    bytes.extend_from_slice(&bad);
    std::fs::write(&segment, &bytes).unwrap();
    let manager = LogManager::open_std(dir.path(), 0).unwrap();
    let log = manager.get(&tp).unwrap();
    assert_eq!(log.log_end_offset(), 1);
}
