//! Errors at the edge: Kafka error codes on the wire.
//!
//! Three layers (STYLE B4): storage returns its typed [`kairos_storage::Error`], owners turn
//! outcomes into an [`ApiError`] (a Kafka code plus an optional message), and handlers write the
//! code into the per-partition or per-resource slot of the response. An `Err` escaping a handler
//! is a [`ConnectionError`] and closes that one connection.
//!
//! [`storage_error_code`] is the one table from storage errors to Kafka codes.

use kafka_protocol::error::ResponseError;
use kairos_storage::{CorruptReason, Error as StorageError};

/// A Kafka error code with an optional human-readable message for the response's
/// `error_message` field.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    /// The Kafka error code.
    pub code: ResponseError,
    /// Sent to the client where the response has an `error_message` field.
    pub message: Option<String>,
}

impl ApiError {
    /// An error with a message.
    pub fn new(code: ResponseError, message: impl Into<String>) -> ApiError {
        ApiError {
            code,
            message: Some(message.into()),
        }
    }

    /// The numeric code for the response.
    #[must_use]
    pub fn code(&self) -> i16 {
        self.code.code()
    }
}

impl From<ResponseError> for ApiError {
    fn from(code: ResponseError) -> ApiError {
        ApiError {
            code,
            message: None,
        }
    }
}

impl From<&StorageError> for ApiError {
    fn from(error: &StorageError) -> ApiError {
        ApiError {
            code: storage_error_code(error),
            message: Some(error.to_string()),
        }
    }
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.message {
            Some(message) => write!(f, "{:?}: {message}", self.code),
            None => write!(f, "{:?}", self.code),
        }
    }
}

/// Why a connection is being closed. Never sent to the client: Kafka clients treat a closed
/// connection as "reconnect and renegotiate", which is the right answer to every case here.
#[derive(Debug, thiserror::Error)]
pub enum ConnectionError {
    /// The socket failed or the peer went away.
    #[error("i/o: {0}")]
    Io(#[from] std::io::Error),
    /// The frame's length prefix is negative or above `socket.request.max.bytes`.
    #[error("frame of {size} bytes exceeds socket.request.max.bytes {max}")]
    FrameTooLarge {
        /// The length the client announced.
        size: i64,
        /// The configured limit.
        max: usize,
    },
    /// The request header does not decode, or names an API key we do not know.
    #[error("malformed request header: {0}")]
    MalformedHeader(String),
    /// An API other than ApiVersions at a version we do not advertise: the client should have
    /// negotiated, so Kafka closes the connection rather than guess a response format.
    #[error("unsupported version {version} of api key {api_key}")]
    UnsupportedVersion {
        /// The API key.
        api_key: i16,
        /// The requested version.
        version: i16,
    },
    /// The body does not decode at the version the header named.
    #[error("malformed {api:?} v{version} body: {reason}")]
    MalformedBody {
        /// The API.
        api: kafka_protocol::messages::ApiKey,
        /// Its version.
        version: i16,
        /// What the decoder said.
        reason: String,
    },
    /// A produce at acks=0 failed: the client gets no response, so closing the connection is the
    /// only way to tell it (Kafka does the same).
    #[error("acks=0 produce failed: {0}")]
    AcksZeroProduceFailed(ApiError),
    /// Encoding the response failed; this is a bug, logged and contained to one connection.
    #[error("response encoding failed: {0}")]
    Encode(String),
}

/// The one mapping from storage errors to Kafka error codes.
///
/// `kairos_storage::Error` is `#[non_exhaustive]`, and a foreign non-exhaustive enum cannot be
/// matched exhaustively, so this match needs one wildcard arm. It maps to UNKNOWN_SERVER_ERROR,
/// the fallback Kafka's `Errors.forException` uses, and is logged as a bug: a new storage variant
/// should get its own arm here.
#[must_use]
pub fn storage_error_code(error: &StorageError) -> ResponseError {
    match error {
        StorageError::Io { .. } | StorageError::LogDirOffline(_) | StorageError::DirLocked(_) => {
            ResponseError::KafkaStorageError
        }
        StorageError::Corrupt { reason, .. } => corrupt_reason_code(*reason),
        StorageError::OffsetOutOfRange { .. } => ResponseError::OffsetOutOfRange,
        StorageError::RecordBatchTooLarge { .. } => ResponseError::MessageTooLarge,
        StorageError::InvalidRecord(_) => ResponseError::InvalidRecord,
        StorageError::InvalidTimestamp { .. } => ResponseError::InvalidTimestamp,
        StorageError::OutOfOrderSequence { .. } => ResponseError::OutOfOrderSequenceNumber,
        StorageError::InvalidProducerEpoch { .. } => ResponseError::InvalidProducerEpoch,
        StorageError::UnknownProducerId { .. } => ResponseError::UnknownProducerId,
        other => {
            tracing::error!(error = %other, "storage error without a Kafka code mapping (bug)");
            ResponseError::UnknownServerError
        }
    }
}

fn corrupt_reason_code(reason: CorruptReason) -> ResponseError {
    // Every way client bytes can fail to be a batch is CORRUPT_MESSAGE to the client; the reason
    // only matters in the broker log.
    let _ = reason;
    ResponseError::CorruptMessage
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn storage_errors_map_to_kafka_codes() {
        let cases = [
            (
                StorageError::OffsetOutOfRange {
                    requested: 9,
                    log_start_offset: 0,
                    log_end_offset: 3,
                },
                1,
            ),
            (StorageError::RecordBatchTooLarge { size: 10, max: 5 }, 10),
            (
                StorageError::OutOfOrderSequence {
                    producer_id: 1,
                    expected: 2,
                    actual: 5,
                },
                45,
            ),
            (StorageError::UnknownProducerId { producer_id: 1 }, 59),
            (
                StorageError::LogDirOffline(std::path::PathBuf::from("x")),
                56,
            ),
        ];
        for (error, code) in cases {
            assert_eq!(storage_error_code(&error).code(), code, "{error}");
        }
    }
}
