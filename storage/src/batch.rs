//! A zero-copy view over a Kafka v2 record batch header, plus the in-place patches the append
//! path makes (base offset, partition leader epoch, LogAppendTime).
//!
//! Format (all integers big-endian, see `FORMAT.md`):
//!
//! ```text
//! RecordBatch =>
//!   base_offset            i64   @0    ┐ "log overhead": outside the CRC
//!   batch_length           i32   @8    ┘ bytes after this field
//!   partition_leader_epoch i32   @12     outside the CRC, patched in place
//!   magic                  i8    @16     always 2
//!   crc                    u32   @17     CRC32C of bytes [21, end)
//!   attributes             i16   @21     bits 0-2 codec, 3 timestamp type, 4 transactional, 5 control
//!   last_offset_delta      i32   @23
//!   base_timestamp         i64   @27
//!   max_timestamp          i64   @35
//!   producer_id            i64   @43
//!   producer_epoch         i16   @51
//!   base_sequence          i32   @53
//!   records_count          i32   @57
//!   records                ...   @61
//! ```
#![deny(clippy::indexing_slicing, clippy::unwrap_used, clippy::expect_used)]

use crate::error::CorruptReason;

/// Bytes of `base_offset` + `batch_length`, which precede the length-counted part.
pub const LOG_OVERHEAD: usize = 12;
/// Size of the fixed v2 batch header.
pub const BATCH_HEADER_BYTES: usize = 61;
/// The only record batch format stored.
pub const MAGIC_V2: i8 = 2;
/// `producer_id` of a batch from a non-idempotent producer.
pub const NO_PRODUCER_ID: i64 = -1;
/// `base_sequence` of a batch from a non-idempotent producer.
pub const NO_SEQUENCE: i32 = -1;

const BASE_OFFSET_AT: usize = 0;
const BATCH_LENGTH_AT: usize = 8;
const LEADER_EPOCH_AT: usize = 12;
const MAGIC_AT: usize = 16;
const CRC_AT: usize = 17;
const ATTRIBUTES_AT: usize = 21;
const LAST_OFFSET_DELTA_AT: usize = 23;
const BASE_TIMESTAMP_AT: usize = 27;
const MAX_TIMESTAMP_AT: usize = 35;
const PRODUCER_ID_AT: usize = 43;
const PRODUCER_EPOCH_AT: usize = 51;
const BASE_SEQUENCE_AT: usize = 53;
const RECORDS_COUNT_AT: usize = 57;

const COMPRESSION_MASK: i16 = 0x07;
const TIMESTAMP_TYPE_BIT: i16 = 0x08;
const TRANSACTIONAL_BIT: i16 = 0x10;
const CONTROL_BIT: i16 = 0x20;

const _: () = assert!(RECORDS_COUNT_AT + 4 == BATCH_HEADER_BYTES);
const _: () = assert!(CRC_AT + 4 == ATTRIBUTES_AT);

/// Compression codec of a batch, from the low three attribute bits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compression {
    /// Uncompressed.
    None,
    /// gzip.
    Gzip,
    /// Snappy (raw or xerial-framed).
    Snappy,
    /// LZ4 frame format.
    Lz4,
    /// Zstandard.
    Zstd,
}

impl Compression {
    /// The codec's id in the low three attribute bits.
    #[must_use]
    pub fn id(self) -> i16 {
        match self {
            Self::None => 0,
            Self::Gzip => 1,
            Self::Snappy => 2,
            Self::Lz4 => 3,
            Self::Zstd => 4,
        }
    }
}

/// Timestamp type of a batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TimestampType {
    /// Set by the producer.
    CreateTime,
    /// Set by the broker when appended.
    LogAppendTime,
}

/// A read-only view of a batch whose framing has been checked: at least
/// [`BATCH_HEADER_BYTES`] long and exactly `LOG_OVERHEAD + batch_length` bytes.
#[derive(Debug, Clone, Copy)]
pub struct RecordBatchHeader<'a> {
    bytes: &'a [u8],
}

fn read<const N: usize>(bytes: &[u8], at: usize) -> [u8; N] {
    let mut out = [0u8; N];
    if let Some(src) = bytes.get(at..at + N) {
        out.copy_from_slice(src);
    }
    out
}

fn write(bytes: &mut [u8], at: usize, value: &[u8]) {
    if let Some(dst) = bytes.get_mut(at..at + value.len()) {
        dst.copy_from_slice(value);
    }
}

/// Reads the total size (framing included) of the batch at the start of `buf`, if at least the
/// 12 bytes of log overhead are present. The size may exceed `buf.len()`.
#[must_use]
pub fn peek_total_size(buf: &[u8]) -> Option<usize> {
    if buf.len() < LOG_OVERHEAD {
        return None;
    }
    let len = i32::from_be_bytes(read(buf, BATCH_LENGTH_AT));
    usize::try_from(len).ok().map(|len| len + LOG_OVERHEAD)
}

/// Reads the base offset of the batch at the start of `buf`.
#[must_use]
pub fn peek_base_offset(buf: &[u8]) -> i64 {
    i64::from_be_bytes(read(buf, BASE_OFFSET_AT))
}

impl<'a> RecordBatchHeader<'a> {
    /// Frames the batch at the start of `buf`: checks that the length field is sane and the
    /// whole batch is present, and the magic byte. It does not check the CRC; see
    /// [`RecordBatchHeader::verify_crc`].
    ///
    /// # Errors
    /// `TruncatedBatch` if `buf` is too short or the length field too small, `BadMagic` for a
    /// magic other than 2.
    pub fn parse(buf: &'a [u8]) -> Result<Self, CorruptReason> {
        let total = peek_total_size(buf).ok_or(CorruptReason::TruncatedBatch)?;
        if total < BATCH_HEADER_BYTES {
            return Err(CorruptReason::TruncatedBatch);
        }
        let bytes = buf.get(..total).ok_or(CorruptReason::TruncatedBatch)?;
        let magic = i8::from_be_bytes(read(bytes, MAGIC_AT));
        if magic != MAGIC_V2 {
            return Err(CorruptReason::BadMagic(magic));
        }
        Ok(Self { bytes })
    }

    /// A view over only the first [`BATCH_HEADER_BYTES`] of a batch, for scans that skip bodies.
    /// Only the fixed-header getters are meaningful on it.
    pub(crate) fn header_only(bytes: &'a [u8]) -> Self {
        Self {
            bytes: bytes.get(..BATCH_HEADER_BYTES).unwrap_or(bytes),
        }
    }

    /// The whole batch, framing included.
    #[must_use]
    pub fn bytes(&self) -> &'a [u8] {
        self.bytes
    }
    /// Total size, framing included.
    #[must_use]
    pub fn total_size(&self) -> usize {
        self.bytes.len()
    }
    /// Offset of the first record.
    #[must_use]
    pub fn base_offset(&self) -> i64 {
        i64::from_be_bytes(read(self.bytes, BASE_OFFSET_AT))
    }
    /// Offset of the last record (`base_offset + last_offset_delta`).
    ///
    /// Both fields may be garbage (the base offset is outside the CRC), so the sum wraps
    /// instead of panicking; scans reject a batch whose last offset is below its base offset.
    #[must_use]
    pub fn last_offset(&self) -> i64 {
        self.base_offset()
            .wrapping_add(i64::from(self.last_offset_delta()))
    }
    /// `last_offset - base_offset`.
    #[must_use]
    pub fn last_offset_delta(&self) -> i32 {
        i32::from_be_bytes(read(self.bytes, LAST_OFFSET_DELTA_AT))
    }
    /// Leader epoch stamped when the batch was appended.
    #[must_use]
    pub fn partition_leader_epoch(&self) -> i32 {
        i32::from_be_bytes(read(self.bytes, LEADER_EPOCH_AT))
    }
    /// The CRC stored in the header.
    #[must_use]
    pub fn crc(&self) -> u32 {
        u32::from_be_bytes(read(self.bytes, CRC_AT))
    }
    /// The CRC32C computed over `[attributes, end)`.
    #[must_use]
    pub fn compute_crc(&self) -> u32 {
        crc32c::crc32c(self.bytes.get(ATTRIBUTES_AT..).unwrap_or_default())
    }
    /// Checks the stored CRC against the bytes.
    ///
    /// # Errors
    /// `CrcMismatch` with both values.
    pub fn verify_crc(&self) -> Result<(), CorruptReason> {
        let (expected, actual) = (self.crc(), self.compute_crc());
        if expected == actual {
            Ok(())
        } else {
            Err(CorruptReason::CrcMismatch { expected, actual })
        }
    }
    /// Raw attributes.
    #[must_use]
    pub fn attributes(&self) -> i16 {
        i16::from_be_bytes(read(self.bytes, ATTRIBUTES_AT))
    }
    /// Compression codec, or `None` for an id Kafka does not define (5, 6, 7).
    #[must_use]
    pub fn compression(&self) -> Option<Compression> {
        match self.attributes() & COMPRESSION_MASK {
            0 => Some(Compression::None),
            1 => Some(Compression::Gzip),
            2 => Some(Compression::Snappy),
            3 => Some(Compression::Lz4),
            4 => Some(Compression::Zstd),
            _ => None,
        }
    }
    /// Timestamp type.
    #[must_use]
    pub fn timestamp_type(&self) -> TimestampType {
        if self.attributes() & TIMESTAMP_TYPE_BIT == 0 {
            TimestampType::CreateTime
        } else {
            TimestampType::LogAppendTime
        }
    }
    /// Part of a transaction.
    #[must_use]
    pub fn is_transactional(&self) -> bool {
        self.attributes() & TRANSACTIONAL_BIT != 0
    }
    /// A control batch (transaction marker).
    #[must_use]
    pub fn is_control(&self) -> bool {
        self.attributes() & CONTROL_BIT != 0
    }
    /// Timestamp of the first record.
    #[must_use]
    pub fn base_timestamp(&self) -> i64 {
        i64::from_be_bytes(read(self.bytes, BASE_TIMESTAMP_AT))
    }
    /// Largest timestamp in the batch (or the append time under LogAppendTime).
    #[must_use]
    pub fn max_timestamp(&self) -> i64 {
        i64::from_be_bytes(read(self.bytes, MAX_TIMESTAMP_AT))
    }
    /// Producer id, or [`NO_PRODUCER_ID`].
    #[must_use]
    pub fn producer_id(&self) -> i64 {
        i64::from_be_bytes(read(self.bytes, PRODUCER_ID_AT))
    }
    /// Producer epoch.
    #[must_use]
    pub fn producer_epoch(&self) -> i16 {
        i16::from_be_bytes(read(self.bytes, PRODUCER_EPOCH_AT))
    }
    /// Sequence of the first record, or [`NO_SEQUENCE`].
    #[must_use]
    pub fn base_sequence(&self) -> i32 {
        i32::from_be_bytes(read(self.bytes, BASE_SEQUENCE_AT))
    }
    /// Sequence of the last record; sequences wrap at `i32::MAX` as in Kafka.
    #[must_use]
    pub fn last_sequence(&self) -> i32 {
        let base = self.base_sequence();
        if base == NO_SEQUENCE {
            return NO_SEQUENCE;
        }
        // Kafka's `DefaultRecordBatch.incrementSequence`, in Java's wrapping int arithmetic,
        // so that a header that has not been validated (a negative delta) cannot panic.
        let delta = self.last_offset_delta();
        if base > i32::MAX.wrapping_sub(delta) {
            delta
                .wrapping_sub(i32::MAX.wrapping_sub(base))
                .wrapping_sub(1)
        } else {
            base.wrapping_add(delta)
        }
    }
    /// Number of records the header claims.
    #[must_use]
    pub fn records_count(&self) -> i32 {
        i32::from_be_bytes(read(self.bytes, RECORDS_COUNT_AT))
    }
    /// The record bytes after the header (compressed if the batch is).
    #[must_use]
    pub fn records_bytes(&self) -> &'a [u8] {
        self.bytes.get(BATCH_HEADER_BYTES..).unwrap_or_default()
    }
}

/// Patches the base offset of the batch at the start of `buf`. The base offset is outside the
/// CRC, so no re-hash is needed.
pub fn set_base_offset(buf: &mut [u8], offset: i64) {
    write(buf, BASE_OFFSET_AT, &offset.to_be_bytes());
}

/// Stamps the partition leader epoch, also outside the CRC.
pub fn set_partition_leader_epoch(buf: &mut [u8], epoch: i32) {
    write(buf, LEADER_EPOCH_AT, &epoch.to_be_bytes());
}

/// Turns the batch at the start of `buf` (exactly one batch) into a LogAppendTime batch stamped
/// `now_ms`. Attributes and max timestamp are under the CRC, so it is recomputed.
pub fn set_log_append_time(buf: &mut [u8], now_ms: i64) {
    let attributes = i16::from_be_bytes(read(buf, ATTRIBUTES_AT)) | TIMESTAMP_TYPE_BIT;
    write(buf, ATTRIBUTES_AT, &attributes.to_be_bytes());
    write(buf, MAX_TIMESTAMP_AT, &now_ms.to_be_bytes());
    let crc = crc32c::crc32c(buf.get(ATTRIBUTES_AT..).unwrap_or_default());
    write(buf, CRC_AT, &crc.to_be_bytes());
}

/// Iterates over the framed batches in a buffer of concatenated batches. Stops (yielding the
/// error) at the first batch that does not frame.
#[derive(Debug)]
pub struct Batches<'a> {
    buf: &'a [u8],
    position: usize,
}

impl<'a> Batches<'a> {
    /// Iterates over `buf`.
    #[must_use]
    pub fn new(buf: &'a [u8]) -> Self {
        Self { buf, position: 0 }
    }
    /// Byte position of the next batch within the buffer.
    #[must_use]
    pub fn position(&self) -> usize {
        self.position
    }
}

impl<'a> Iterator for Batches<'a> {
    type Item = Result<(usize, RecordBatchHeader<'a>), CorruptReason>;

    fn next(&mut self) -> Option<Self::Item> {
        let rest = self.buf.get(self.position..)?;
        if rest.is_empty() {
            return None;
        }
        match RecordBatchHeader::parse(rest) {
            Ok(batch) => {
                let at = self.position;
                self.position += batch.total_size();
                Some(Ok((at, batch)))
            }
            Err(reason) => {
                self.position = self.buf.len();
                Some(Err(reason))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::builder::RecordBatchBuilder as BatchBuilder;

    #[test]
    fn parses_header_fields_and_verifies_crc() {
        let bytes = BatchBuilder::new()
            .record(Some(b"k"), Some(b"v"), 1000)
            .record(None, Some(b"w"), 1005)
            .build();
        let batch = RecordBatchHeader::parse(&bytes).unwrap();
        assert_eq!(batch.total_size(), bytes.len());
        assert_eq!(batch.last_offset_delta(), 1);
        assert_eq!(batch.records_count(), 2);
        assert_eq!(batch.max_timestamp(), 1005);
        assert_eq!(batch.compression(), Some(Compression::None));
        batch.verify_crc().unwrap();
    }

    #[test]
    fn patches_outside_the_crc_keep_it_valid_and_append_time_recomputes_it() {
        let mut bytes = BatchBuilder::new().record(None, Some(b"v"), 5).build();
        set_base_offset(&mut bytes, 77);
        set_partition_leader_epoch(&mut bytes, 3);
        let batch = RecordBatchHeader::parse(&bytes).unwrap();
        assert_eq!(
            (batch.base_offset(), batch.partition_leader_epoch()),
            (77, 3)
        );
        batch.verify_crc().unwrap();
        set_log_append_time(&mut bytes, 999);
        let batch = RecordBatchHeader::parse(&bytes).unwrap();
        assert_eq!(batch.timestamp_type(), TimestampType::LogAppendTime);
        assert_eq!(batch.max_timestamp(), 999);
        batch.verify_crc().unwrap();
    }

    #[test]
    fn rejects_short_bad_magic_and_flipped_bits() {
        let bytes = BatchBuilder::new().record(None, Some(b"v"), 5).build();
        assert_eq!(
            RecordBatchHeader::parse(&bytes[..bytes.len() - 1]).unwrap_err(),
            CorruptReason::TruncatedBatch
        );
        assert_eq!(
            RecordBatchHeader::parse(&[0u8; 12]).unwrap_err(),
            CorruptReason::TruncatedBatch
        );
        let mut bad = bytes.clone();
        bad[MAGIC_AT] = 1;
        assert_eq!(
            RecordBatchHeader::parse(&bad).unwrap_err(),
            CorruptReason::BadMagic(1)
        );
        let mut flipped = bytes.clone();
        *flipped.last_mut().unwrap() ^= 1;
        assert!(matches!(
            RecordBatchHeader::parse(&flipped).unwrap().verify_crc(),
            Err(CorruptReason::CrcMismatch { .. })
        ));
    }

    #[test]
    fn last_sequence_wraps_like_kafka() {
        let bytes = BatchBuilder::new()
            .producer(7, 0, i32::MAX - 1)
            .record(None, Some(b"a"), 0)
            .record(None, Some(b"b"), 0)
            .record(None, Some(b"c"), 0)
            .build();
        let batch = RecordBatchHeader::parse(&bytes).unwrap();
        assert_eq!(batch.last_sequence(), 0);
    }
}
