//! Typed storage errors. The broker maps each variant to exactly one Kafka error code in
//! `src/error.rs`; keep variants structured (fields, not formatted strings) so that the hot path
//! allocates nothing when it fails.

use std::io;
use std::path::PathBuf;

/// Why a batch or file was judged corrupt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum CorruptReason {
    /// The CRC32C stored in the batch header does not match its bytes.
    CrcMismatch {
        /// CRC stored in the header.
        expected: u32,
        /// CRC computed over the bytes.
        actual: u32,
    },
    /// The magic byte is not 2 (only v2 record batches are stored).
    BadMagic(i8),
    /// The batch length field points past the end of the available bytes, or is too small to
    /// hold a v2 batch header.
    TruncatedBatch,
    /// An index file's entries are not strictly increasing or point past the log.
    IndexNotMonotonic,
    /// A checkpoint or snapshot file does not parse.
    BadCheckpoint,
}

/// Everything that can go wrong in the log engine.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// An operating-system I/O call failed. After a failed write or sync the log is poisoned.
    #[error("{op} {path:?}: {source}")]
    Io {
        /// What was being done (`"append"`, `"fsync"`, ...).
        op: &'static str,
        /// The file or directory involved.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: io::Error,
    },
    /// Bytes (from a client or from disk) that do not form a valid record batch.
    #[error("corrupt data in {path:?} at position {position}: {reason:?}")]
    Corrupt {
        /// The file, or an empty path for client-supplied bytes.
        path: PathBuf,
        /// Byte position of the bad batch.
        position: u64,
        /// What is wrong with it.
        reason: CorruptReason,
    },
    /// A read asked for an offset outside `[log_start_offset, log_end_offset]`.
    #[error("offset {requested} out of range [{log_start_offset}, {log_end_offset}]")]
    OffsetOutOfRange {
        /// The requested offset.
        requested: i64,
        /// First readable offset.
        log_start_offset: i64,
        /// Next offset to be assigned.
        log_end_offset: i64,
    },
    /// A batch larger than `max.message.bytes`.
    #[error("record batch of {size} bytes exceeds max.message.bytes {max}")]
    RecordBatchTooLarge {
        /// Size of the batch, framing included.
        size: usize,
        /// The configured limit.
        max: usize,
    },
    /// A structurally valid batch that breaks a rule (control batch from a client, null key on a
    /// compacted topic, record count mismatch, ...).
    #[error("invalid record: {0:?}")]
    InvalidRecord(InvalidRecordReason),
    /// A timestamp that the log refuses.
    #[error("invalid timestamp {timestamp}")]
    InvalidTimestamp {
        /// The offending timestamp.
        timestamp: i64,
    },
    /// An idempotent producer's sequence does not follow its last one.
    #[error("out of order sequence for producer {producer_id}: expected {expected}, got {actual}")]
    OutOfOrderSequence {
        /// The producer.
        producer_id: i64,
        /// The sequence the log expected.
        expected: i32,
        /// The sequence the batch carried.
        actual: i32,
    },
    /// A batch from an older epoch of a producer than the log has seen.
    #[error("producer {producer_id} epoch {actual} is older than {current}")]
    InvalidProducerEpoch {
        /// The producer.
        producer_id: i64,
        /// The epoch the log knows.
        current: i16,
        /// The epoch the batch carried.
        actual: i16,
    },
    /// The log has no state for a producer it needs state for.
    #[error("unknown producer id {producer_id}")]
    UnknownProducerId {
        /// The producer.
        producer_id: i64,
    },
    /// A producer with an open transaction wrote a non-transactional batch.
    #[error("producer {producer_id} has an open transaction but wrote a non-transactional batch")]
    InvalidTxnState {
        /// The producer.
        producer_id: i64,
    },
    /// A conditional append found the log end offset moved.
    #[error("log end offset is {actual}, not the expected {expected}")]
    LogEndMoved {
        /// The end the caller expected.
        expected: i64,
        /// The actual end.
        actual: i64,
    },
    /// The log was poisoned by an earlier I/O failure and refuses writes until restart.
    #[error("log {0:?} is offline after an earlier I/O error")]
    LogDirOffline(PathBuf),
    /// Another process holds the data directory lock.
    #[error("data directory {0:?} is locked by another process")]
    DirLocked(PathBuf),
}

/// Why a batch was refused as an invalid record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum InvalidRecordReason {
    /// Clients may not write control batches; only the transaction coordinator does.
    ControlBatchFromClient,
    /// `records_count` disagrees with `last_offset_delta + 1`, or is not positive.
    RecordCountMismatch,
    /// A transactional batch without a producer id.
    TransactionalWithoutProducerId,
    /// A record without a key on a compacted topic.
    NullKeyOnCompactedTopic,
    /// The records inside the batch do not decode (including after decompression).
    MalformedRecords,
    /// The compression codec id is not one Kafka defines.
    UnknownCompression,
}

/// Result alias for the crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    pub(crate) fn io(op: &'static str, path: impl Into<PathBuf>, source: io::Error) -> Self {
        Error::Io {
            op,
            path: path.into(),
            source,
        }
    }

    pub(crate) fn corrupt(path: impl Into<PathBuf>, position: u64, reason: CorruptReason) -> Self {
        Error::Corrupt {
            path: path.into(),
            position,
            reason,
        }
    }
}
