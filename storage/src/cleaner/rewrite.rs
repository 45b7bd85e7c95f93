//! Rewriting one batch with only the records the cleaner keeps.
//!
//! Offsets are preserved exactly: the rewritten batch keeps its base offset, last offset delta,
//! base timestamp and producer fields, and each kept record's bytes (which carry its offset and
//! timestamp deltas) are copied verbatim. Only the record count, the max timestamp, the records
//! section (recompressed with the batch's codec) and the CRC change.
//!
//! A batch left without records is dropped, unless it is its producer's last batch: then an
//! empty batch (header only, no compression) keeps the producer's sequence and epoch in the log,
//! so idempotence state survives cleaning, as in Kafka.

use crate::batch::{self, BATCH_HEADER_BYTES, Compression, RecordBatchHeader, TimestampType};
use crate::compression;
use crate::error::InvalidRecordReason;
use crate::record::{Record, RecordBytes};

/// What became of a batch.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Filtered {
    /// Every record kept: copy the batch as it is.
    Unchanged,
    /// Nothing kept and no reason to keep an empty batch.
    Dropped,
    /// Some records kept (or an empty batch kept): the new batch bytes.
    Rewritten(Vec<u8>),
}

/// Filters `batch` with `retain(record, offset, timestamp)`.
pub(crate) fn filter_batch(
    batch: &RecordBatchHeader<'_>,
    keep_empty: bool,
    mut retain: impl FnMut(&Record<'_>, i64, i64) -> bool,
) -> Result<Filtered, InvalidRecordReason> {
    let records = RecordBytes::of(batch)?;
    let mut kept = Vec::new();
    let mut kept_count = 0i32;
    let mut dropped = false;
    let mut max_timestamp = -1i64;
    for record in records.records() {
        let record = record?;
        let offset = batch.base_offset() + i64::from(record.offset_delta);
        let timestamp = batch.base_timestamp() + record.timestamp_delta;
        if retain(&record, offset, timestamp) {
            kept.extend_from_slice(record.raw());
            kept_count += 1;
            max_timestamp = max_timestamp.max(timestamp);
        } else {
            dropped = true;
        }
    }
    if !dropped {
        return Ok(Filtered::Unchanged);
    }
    if kept_count == 0 && !keep_empty {
        return Ok(Filtered::Dropped);
    }
    let codec = if kept_count == 0 {
        Compression::None
    } else {
        batch
            .compression()
            .ok_or(InvalidRecordReason::UnknownCompression)?
    };
    if batch.timestamp_type() == TimestampType::LogAppendTime || kept_count == 0 {
        max_timestamp = batch.max_timestamp();
    }
    let body = compression::compress(codec, &kept);
    Ok(Filtered::Rewritten(encode(
        batch,
        codec,
        kept_count,
        max_timestamp,
        &body,
    )))
}

fn encode(
    batch: &RecordBatchHeader<'_>,
    codec: Compression,
    count: i32,
    max_timestamp: i64,
    body: &[u8],
) -> Vec<u8> {
    let mut out = Vec::with_capacity(BATCH_HEADER_BYTES + body.len());
    out.extend_from_slice(&batch.bytes()[..BATCH_HEADER_BYTES]);
    out.extend_from_slice(body);
    let length = i32::try_from(out.len() - batch::LOG_OVERHEAD).unwrap_or(i32::MAX);
    out[8..12].copy_from_slice(&length.to_be_bytes());
    let attributes = (batch.attributes() & !0x07) | codec.id();
    out[21..23].copy_from_slice(&attributes.to_be_bytes());
    out[35..43].copy_from_slice(&max_timestamp.to_be_bytes());
    out[57..61].copy_from_slice(&count.to_be_bytes());
    let crc = crc32c::crc32c(&out[21..]);
    out[17..21].copy_from_slice(&crc.to_be_bytes());
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::builder::RecordBatchBuilder;

    fn batch(codec: Compression) -> Vec<u8> {
        let mut bytes = RecordBatchBuilder::new()
            .compression(codec)
            .producer(4, 1, 10)
            .record(Some(b"a"), Some(b"1"), 100)
            .record(Some(b"b"), Some(b"2"), 105)
            .record(Some(b"c"), Some(b"3"), 103)
            .build();
        batch::set_base_offset(&mut bytes, 50);
        bytes
    }

    #[test]
    fn keeps_offsets_timestamps_and_producer_fields() {
        for codec in [Compression::None, Compression::Gzip, Compression::Zstd] {
            let bytes = batch(codec);
            let header = RecordBatchHeader::parse(&bytes).unwrap();
            let out = filter_batch(&header, false, |r, _, _| r.key != Some(b"b")).unwrap();
            let Filtered::Rewritten(out) = out else {
                panic!("{out:?}")
            };
            let new = RecordBatchHeader::parse(&out).unwrap();
            new.verify_crc().unwrap();
            assert_eq!((new.base_offset(), new.last_offset()), (50, 52));
            assert_eq!(
                (new.producer_id(), new.producer_epoch(), new.base_sequence()),
                (4, 1, 10)
            );
            assert_eq!(new.records_count(), 2);
            assert_eq!(new.max_timestamp(), 103);
            let records = RecordBytes::of(&new).unwrap();
            let kept: Vec<_> = records
                .records()
                .map(|r| {
                    let r = r.unwrap();
                    (r.offset_delta, new.base_timestamp() + r.timestamp_delta)
                })
                .collect();
            assert_eq!(kept, vec![(0, 100), (2, 103)]);
        }
    }

    #[test]
    fn all_kept_is_unchanged_none_kept_drops_or_leaves_an_empty_batch() {
        let bytes = batch(Compression::Lz4);
        let header = RecordBatchHeader::parse(&bytes).unwrap();
        assert_eq!(
            filter_batch(&header, false, |_, _, _| true).unwrap(),
            Filtered::Unchanged
        );
        assert_eq!(
            filter_batch(&header, false, |_, _, _| false).unwrap(),
            Filtered::Dropped
        );
        let Filtered::Rewritten(empty) = filter_batch(&header, true, |_, _, _| false).unwrap()
        else {
            panic!()
        };
        let empty = RecordBatchHeader::parse(&empty).unwrap();
        empty.verify_crc().unwrap();
        assert_eq!((empty.records_count(), empty.last_offset()), (0, 52));
        assert_eq!(empty.compression(), Some(Compression::None));
    }
}
