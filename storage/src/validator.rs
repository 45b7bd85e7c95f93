//! `LogValidator`: checks client batches before they are appended, and assigns offsets in
//! place. Validation (the CRC pass, the expensive part) runs before the log lock is taken;
//! offset assignment runs under it.
#![deny(clippy::indexing_slicing, clippy::unwrap_used, clippy::expect_used)]

use crate::batch::{self, Batches, RecordBatchHeader, TimestampType};
use crate::config::LogConfig;
use crate::error::{CorruptReason, Error, InvalidRecordReason, Result};
use crate::record::RecordBytes;

/// Who is appending: clients may not write control batches; coordinators may.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AppendOrigin {
    /// A producer, through Produce.
    Client,
    /// The broker itself: transaction markers, internal topics, due-index fires.
    Coordinator,
}

/// What validation learned about a buffer of batches.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct ValidatedRecords {
    /// Number of batches.
    pub batches: usize,
    /// Number of offsets the batches span.
    pub offsets: i64,
    /// Bytes, framing included.
    pub bytes: usize,
}

/// Validates every batch in `buf`: framing, magic 2, CRC32C, `max.message.bytes`, a record count
/// that matches the offset delta, no control batches from clients, and keys on compacted
/// topics.
pub(crate) fn validate(
    buf: &[u8],
    origin: AppendOrigin,
    config: &LogConfig,
) -> Result<ValidatedRecords> {
    let mut out = ValidatedRecords {
        batches: 0,
        offsets: 0,
        bytes: 0,
    };
    let max = usize::try_from(config.max_message_bytes).unwrap_or(usize::MAX);
    let mut batches = Batches::new(buf);
    loop {
        let position = batches.position();
        let Some(next) = batches.next() else { break };
        let corrupt = |reason| Error::corrupt("", position as u64, reason);
        // Check the size before the CRC so an oversized batch is refused cheaply.
        let size = batch::peek_total_size(buf.get(position..).unwrap_or_default());
        if let Some(size) = size.filter(|&size| size > max) {
            return Err(Error::RecordBatchTooLarge { size, max });
        }
        let (_, batch) = next.map_err(corrupt)?;
        batch.verify_crc().map_err(corrupt)?;
        validate_batch(&batch, origin, config)?;
        out.batches += 1;
        out.offsets += i64::from(batch.last_offset_delta()) + 1;
        out.bytes += batch.total_size();
    }
    if out.batches == 0 {
        return Err(Error::corrupt("", 0, CorruptReason::TruncatedBatch));
    }
    Ok(out)
}

fn validate_batch(
    batch: &RecordBatchHeader<'_>,
    origin: AppendOrigin,
    config: &LogConfig,
) -> Result<()> {
    let invalid = |reason| Err(Error::InvalidRecord(reason));
    if batch.is_control() && origin == AppendOrigin::Client {
        return invalid(InvalidRecordReason::ControlBatchFromClient);
    }
    if batch.last_offset_delta() < 0 || batch.records_count() != batch.last_offset_delta() + 1 {
        return invalid(InvalidRecordReason::RecordCountMismatch);
    }
    if batch.is_transactional() && batch.producer_id() < 0 {
        return invalid(InvalidRecordReason::TransactionalWithoutProducerId);
    }
    if batch.compression().is_none() {
        return invalid(InvalidRecordReason::UnknownCompression);
    }
    if config.cleanup_policy.compacts() && !batch.is_control() {
        // Compaction keeps the latest record per key, so a record without a key could never
        // be compacted away; Kafka refuses it and so do we. This is the one place the append
        // path decodes records, and only for compacted topics.
        let records = RecordBytes::of(batch).map_err(Error::InvalidRecord)?;
        for record in records.records() {
            if record.map_err(Error::InvalidRecord)?.key.is_none() {
                return invalid(InvalidRecordReason::NullKeyOnCompactedTopic);
            }
        }
    }
    Ok(())
}

/// Offsets and timestamps assigned by [`assign_offsets`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct AssignedOffsets {
    /// Offset of the last record.
    pub last_offset: i64,
    /// Largest timestamp (the append time under LogAppendTime).
    pub max_timestamp: i64,
    /// Last offset of the batch holding `max_timestamp`.
    pub offset_of_max_timestamp: i64,
}

/// Assigns offsets from `first_offset` by patching each batch's base offset, stamps the leader
/// epoch, and applies LogAppendTime. `buf` must have passed [`validate`].
pub(crate) fn assign_offsets(
    buf: &mut [u8],
    first_offset: i64,
    leader_epoch: i32,
    timestamp_type: TimestampType,
    now_ms: i64,
) -> AssignedOffsets {
    let mut next = first_offset;
    let mut out = AssignedOffsets {
        last_offset: first_offset - 1,
        max_timestamp: -1,
        offset_of_max_timestamp: first_offset,
    };
    let mut position = 0;
    while let Some(rest) = buf.get_mut(position..) {
        let Some(size) = batch::peek_total_size(rest) else {
            break;
        };
        let Some(one) = rest.get_mut(..size) else {
            break;
        };
        batch::set_base_offset(one, next);
        batch::set_partition_leader_epoch(one, leader_epoch);
        if timestamp_type == TimestampType::LogAppendTime {
            batch::set_log_append_time(one, now_ms);
        }
        let Ok(header) = RecordBatchHeader::parse(one) else {
            break;
        };
        if header.max_timestamp() > out.max_timestamp {
            out.max_timestamp = header.max_timestamp();
            out.offset_of_max_timestamp = header.last_offset();
        }
        out.last_offset = header.last_offset();
        next = header.last_offset() + 1;
        position += size;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::builder::RecordBatchBuilder;
    use crate::config::CleanupPolicy;

    fn batch(n: usize) -> Vec<u8> {
        (0..n)
            .fold(RecordBatchBuilder::new(), |b, i| {
                b.record(Some(b"k"), Some(b"v"), 10 + i64::try_from(i).unwrap())
            })
            .build()
    }

    #[test]
    fn validates_and_assigns_offsets_across_batches() {
        let mut buf = batch(3);
        buf.extend_from_slice(&batch(2));
        let config = LogConfig::default();
        let v = validate(&buf, AppendOrigin::Client, &config).unwrap();
        assert_eq!((v.batches, v.offsets, v.bytes), (2, 5, buf.len()));
        let a = assign_offsets(&mut buf, 100, 7, TimestampType::CreateTime, 0);
        assert_eq!(a.last_offset, 104);
        assert_eq!((a.max_timestamp, a.offset_of_max_timestamp), (12, 102));
        let offsets: Vec<_> = Batches::new(&buf)
            .map(|b| b.unwrap().1.base_offset())
            .collect();
        assert_eq!(offsets, vec![100, 103]);
        validate(&buf, AppendOrigin::Client, &config).unwrap();
    }

    #[test]
    fn refuses_each_kind_of_bad_batch_with_its_own_error() {
        let config = LogConfig {
            max_message_bytes: 100,
            ..LogConfig::default()
        };
        let big = RecordBatchBuilder::new()
            .record(None, Some(&[0u8; 200]), 0)
            .build();
        assert!(matches!(
            validate(&big, AppendOrigin::Client, &config),
            Err(Error::RecordBatchTooLarge { max: 100, .. })
        ));
        let control = RecordBatchBuilder::new()
            .control(true)
            .record(Some(b"k"), None, 0)
            .build();
        assert!(matches!(
            validate(&control, AppendOrigin::Client, &LogConfig::default()),
            Err(Error::InvalidRecord(
                InvalidRecordReason::ControlBatchFromClient
            ))
        ));
        validate(&control, AppendOrigin::Coordinator, &LogConfig::default()).unwrap();
        let mut bad_crc = batch(1);
        *bad_crc.last_mut().unwrap() ^= 0xff;
        assert!(matches!(
            validate(&bad_crc, AppendOrigin::Client, &LogConfig::default()),
            Err(Error::Corrupt {
                reason: CorruptReason::CrcMismatch { .. },
                ..
            })
        ));
        let compacted = LogConfig {
            cleanup_policy: CleanupPolicy::Compact,
            ..LogConfig::default()
        };
        let null_key = RecordBatchBuilder::new()
            .record(None, Some(b"v"), 0)
            .build();
        assert!(matches!(
            validate(&null_key, AppendOrigin::Client, &compacted),
            Err(Error::InvalidRecord(
                InvalidRecordReason::NullKeyOnCompactedTopic
            ))
        ));
        assert!(validate(&[], AppendOrigin::Client, &LogConfig::default()).is_err());
    }

    #[test]
    fn log_append_time_overrides_max_timestamp_and_keeps_crc_valid() {
        let mut buf = batch(2);
        let a = assign_offsets(&mut buf, 0, 0, TimestampType::LogAppendTime, 5_000);
        assert_eq!(a.max_timestamp, 5_000);
        let header = RecordBatchHeader::parse(&buf).unwrap();
        header.verify_crc().unwrap();
        assert_eq!(header.timestamp_type(), TimestampType::LogAppendTime);
    }
}
