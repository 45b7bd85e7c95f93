//! Control batches: the COMMIT and ABORT transaction markers the transaction coordinator writes
//! into every partition of a transaction.
//!
//! Format of the single record of a control batch (see `FORMAT.md`):
//!
//! ```text
//! key   => version i16 (0), type i16 (0 = ABORT, 1 = COMMIT)
//! value => version i16 (0), coordinator_epoch i32
//! ```
#![deny(clippy::indexing_slicing, clippy::unwrap_used, clippy::expect_used)]

use crate::batch::RecordBatchHeader;
use crate::builder::{RecordBatchBuilder, RecordSpec};
use crate::record::RecordBytes;

/// The kind of a transaction marker (Kafka's `ControlRecordType`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ControlRecordType {
    /// The transaction was aborted: its records are hidden from read_committed readers.
    Abort,
    /// The transaction committed.
    Commit,
}

/// A parsed transaction marker.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EndTransactionMarker {
    /// Commit or abort.
    pub kind: ControlRecordType,
    /// Epoch of the coordinator that wrote it, to fence a stale coordinator.
    pub coordinator_epoch: i32,
}

/// Reads the marker of a control batch. `None` if the batch is not a control batch or its
/// record is not a transaction marker this broker knows.
#[must_use]
pub fn parse_marker(batch: &RecordBatchHeader<'_>) -> Option<EndTransactionMarker> {
    if !batch.is_control() {
        return None;
    }
    let records = RecordBytes::of(batch).ok()?;
    let record = records.records().next()?.ok()?;
    let key = record.key?;
    let kind = match i16::from_be_bytes(key.get(2..4)?.try_into().ok()?) {
        0 => ControlRecordType::Abort,
        1 => ControlRecordType::Commit,
        _ => return None,
    };
    let coordinator_epoch = record
        .value
        .and_then(|v| v.get(2..6))
        .and_then(|b| b.try_into().ok())
        .map_or(0, i32::from_be_bytes);
    Some(EndTransactionMarker {
        kind,
        coordinator_epoch,
    })
}

/// Builds the control batch a transaction coordinator appends to end a transaction.
#[must_use]
pub fn build_marker(
    producer_id: i64,
    producer_epoch: i16,
    marker: EndTransactionMarker,
    timestamp_ms: i64,
) -> Vec<u8> {
    let kind: i16 = match marker.kind {
        ControlRecordType::Abort => 0,
        ControlRecordType::Commit => 1,
    };
    let mut key = 0i16.to_be_bytes().to_vec();
    key.extend_from_slice(&kind.to_be_bytes());
    let mut value = 0i16.to_be_bytes().to_vec();
    value.extend_from_slice(&marker.coordinator_epoch.to_be_bytes());
    RecordBatchBuilder::new()
        .producer(producer_id, producer_epoch, crate::batch::NO_SEQUENCE)
        .transactional(true)
        .control(true)
        .record_spec(RecordSpec {
            key: Some(key),
            value: Some(value),
            timestamp_ms,
            headers: Vec::new(),
        })
        .build()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn markers_round_trip() {
        for kind in [ControlRecordType::Abort, ControlRecordType::Commit] {
            let marker = EndTransactionMarker {
                kind,
                coordinator_epoch: 7,
            };
            let bytes = build_marker(5, 2, marker, 100);
            let batch = RecordBatchHeader::parse(&bytes).unwrap();
            assert!(batch.is_control() && batch.is_transactional());
            assert_eq!(batch.producer_id(), 5);
            assert_eq!(parse_marker(&batch), Some(marker));
        }
        let plain = RecordBatchBuilder::new()
            .record(None, Some(b"v"), 0)
            .build();
        assert_eq!(
            parse_marker(&RecordBatchHeader::parse(&plain).unwrap()),
            None
        );
    }
}
