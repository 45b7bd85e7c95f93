//! ListOffsets and DeleteRecords on the `ReplicaManager`.

use std::sync::Arc;

use kafka_protocol::error::ResponseError;

use super::ReplicaManager;
use crate::error::ApiError;

/// ListOffsets' special timestamps (Kafka's `ListOffsetsRequest` constants).
pub const LATEST_TIMESTAMP: i64 = -1;
/// The log start offset.
pub const EARLIEST_TIMESTAMP: i64 = -2;
/// The record with the largest timestamp (v7+).
pub const MAX_TIMESTAMP: i64 = -3;
/// The first offset still on local disk (v8+): the log start offset, without tiered storage.
pub const EARLIEST_LOCAL_TIMESTAMP: i64 = -4;
/// The last offset in tiered storage (v9+): none, without tiered storage.
pub const LATEST_TIERED_TIMESTAMP: i64 = -5;

/// One partition's ListOffsets answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OffsetAndTimestamp {
    /// The offset, or -1 when there is none.
    pub offset: i64,
    /// The record's timestamp, or -1.
    pub timestamp: i64,
    /// The partition's leader epoch (-1 when there is no offset).
    pub leader_epoch: i32,
}

impl ReplicaManager {
    /// Resolves `timestamp` (or one of the special values) to an offset. Blocking.
    ///
    /// # Errors
    /// UNKNOWN_TOPIC_OR_PARTITION and storage errors.
    pub fn fetch_offset_for_timestamp(
        &self,
        topic: &str,
        partition: i32,
        timestamp: i64,
        isolation_level: i8,
    ) -> Result<OffsetAndTimestamp, ApiError> {
        let topic = self.topic(topic)?;
        let log = self.partition_log(&topic, partition)?;
        let epoch = topic.leader_epoch;
        let at = |offset: i64| OffsetAndTimestamp {
            offset,
            timestamp: -1,
            leader_epoch: epoch,
        };
        let none = OffsetAndTimestamp {
            offset: -1,
            timestamp: -1,
            leader_epoch: -1,
        };
        Ok(match timestamp {
            LATEST_TIMESTAMP if isolation_level == 1 => at(log.last_stable_offset()),
            LATEST_TIMESTAMP => at(log.high_watermark()),
            EARLIEST_TIMESTAMP | EARLIEST_LOCAL_TIMESTAMP => at(log.log_start_offset()),
            MAX_TIMESTAMP => log
                .max_timestamp()
                .map_or(none, |found| OffsetAndTimestamp {
                    offset: found.offset,
                    timestamp: found.timestamp,
                    leader_epoch: epoch,
                }),
            LATEST_TIERED_TIMESTAMP => none,
            t if t >= 0 => match log
                .offset_for_timestamp(t)
                .map_err(|e| ApiError::from(&e))?
            {
                Some(found) => OffsetAndTimestamp {
                    offset: found.offset,
                    timestamp: found.timestamp,
                    leader_epoch: epoch,
                },
                None => none,
            },
            other => {
                return Err(ApiError::new(
                    ResponseError::InvalidRequest,
                    format!("invalid ListOffsets timestamp {other}"),
                ));
            }
        })
    }

    /// Advances the log start offset of a partition (`offset == -1` means the high watermark).
    /// Returns the new low watermark. Blocking.
    ///
    /// # Errors
    /// UNKNOWN_TOPIC_OR_PARTITION, OFFSET_OUT_OF_RANGE and storage errors.
    pub fn delete_records(
        self: &Arc<Self>,
        topic: &str,
        partition: i32,
        offset: i64,
    ) -> Result<i64, ApiError> {
        let topic = self.topic(topic)?;
        let log = self.partition_log(&topic, partition)?;
        let offset = if offset == -1 {
            log.high_watermark()
        } else {
            offset
        };
        if offset < 0 || offset > log.high_watermark() {
            return Err(ResponseError::OffsetOutOfRange.into());
        }
        log.delete_records(offset).map_err(|e| ApiError::from(&e))
    }
}
