//! The records of `__transaction_state`, in Apache Kafka's layouts:
//!
//! ```text
//! TransactionLogKey   => version i16 (0), transactional_id string
//! TransactionLogValue => version i16, producer_id i64, producer_epoch i16,
//!                        transaction_timeout_ms i32, transaction_status i8,
//!                        transaction_partitions [topic string, partition_ids [i32]] (nullable),
//!                        transaction_last_update_timestamp_ms i64,
//!                        transaction_start_timestamp_ms i64
//! ```
//!
//! Version 0 is written; version 1 (the same fields in the flexible encoding, plus tagged
//! fields) is read. A null value is a tombstone: the transactional id expired.

use std::collections::BTreeSet;

use bytes::Bytes;

use super::metadata::{TransactionMetadata, TransactionState};
use crate::coordinator::group::codec::{CodecError, Reader, Writer};
use crate::coordinator::internal_topic::CoordinatorRecord;

/// The key of a transactional id.
#[must_use]
pub fn encode_key(transactional_id: &str) -> Bytes {
    let mut w = Writer::new();
    w.i16(0).string(transactional_id);
    w.finish()
}

/// The transactional id of a key.
///
/// # Errors
/// A truncated key or an unknown version.
pub fn decode_key(key: &[u8]) -> Result<String, CodecError> {
    let mut r = Reader::new(key);
    match r.i16()? {
        0 | 1 => r.string(),
        _ => Err(CodecError("unknown transaction log key version")),
    }
}

/// The record that persists `metadata`.
#[must_use]
pub fn record(metadata: &TransactionMetadata) -> CoordinatorRecord {
    CoordinatorRecord {
        key: encode_key(&metadata.transactional_id),
        value: Some(encode_value(metadata)),
    }
}

/// The tombstone of an expired transactional id.
#[must_use]
pub fn tombstone(transactional_id: &str) -> CoordinatorRecord {
    CoordinatorRecord {
        key: encode_key(transactional_id),
        value: None,
    }
}

fn by_topic(partitions: &BTreeSet<(String, i32)>) -> Vec<(&str, Vec<i32>)> {
    let mut topics: Vec<(&str, Vec<i32>)> = Vec::new();
    for (topic, partition) in partitions {
        match topics.last_mut() {
            Some((last, ids)) if *last == topic.as_str() => ids.push(*partition),
            _ => topics.push((topic.as_str(), vec![*partition])),
        }
    }
    topics
}

fn encode_value(m: &TransactionMetadata) -> Bytes {
    let mut w = Writer::new();
    w.i16(0)
        .i64(m.producer_id)
        .i16(m.producer_epoch)
        .i32(m.timeout_ms)
        .i8(m.state.code());
    let topics = by_topic(&m.partitions);
    w.array_len(topics.len());
    for (topic, ids) in topics {
        w.string(topic).array_len(ids.len());
        for id in ids {
            w.i32(id);
        }
    }
    w.i64(m.last_update_ms).i64(m.start_ms);
    w.finish()
}

/// Decodes a value (versions 0 and 1) for `transactional_id`.
///
/// # Errors
/// A truncated value, an unknown version or status.
pub fn decode_value(
    transactional_id: &str,
    value: &[u8],
) -> Result<TransactionMetadata, CodecError> {
    let mut r = Reader::new(value);
    let version = r.i16()?;
    let flexible = match version {
        0 => false,
        1 => true,
        _ => return Err(CodecError("unknown transaction log value version")),
    };
    let producer_id = r.i64()?;
    let producer_epoch = r.i16()?;
    let timeout_ms = r.i32()?;
    let state =
        TransactionState::from_code(r.i8()?).ok_or(CodecError("unknown transaction status"))?;
    let mut partitions = BTreeSet::new();
    let topics = if flexible {
        r.compact_array_len()?
    } else {
        r.array_len()?
    };
    for _ in 0..topics {
        let topic = if flexible {
            r.compact_string()?
        } else {
            r.string()?
        };
        let ids = if flexible {
            r.compact_array_len()?
        } else {
            r.array_len()?
        };
        for _ in 0..ids {
            let _ = partitions.insert((topic.clone(), r.i32()?));
        }
        if flexible {
            r.skip_tagged_fields()?;
        }
    }
    let last_update_ms = r.i64()?;
    let start_ms = r.i64()?;
    if flexible {
        r.skip_tagged_fields()?;
    }
    Ok(TransactionMetadata {
        transactional_id: transactional_id.to_owned(),
        producer_id,
        producer_epoch,
        last_producer_epoch: -1,
        timeout_ms,
        state,
        partitions,
        start_ms,
        last_update_ms,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metadata_round_trips() {
        let mut m = TransactionMetadata::new("txn-1", 42, 60_000, 1_000);
        m.producer_epoch = 3;
        m.state = TransactionState::PrepareCommit;
        m.start_ms = 900;
        for (t, p) in [("a", 0), ("a", 2), ("b", 1)] {
            let _ = m.partitions.insert((t.to_owned(), p));
        }
        let record = record(&m);
        assert_eq!(decode_key(&record.key).unwrap(), "txn-1");
        let decoded = decode_value("txn-1", record.value.as_deref().unwrap()).unwrap();
        assert_eq!(decoded, m);
        assert!(decode_value("x", &[0, 9]).is_err());
        assert!(decode_value("x", &record.value.unwrap()[..10]).is_err());
    }

    #[test]
    fn reads_the_flexible_version() {
        let mut w = Writer::new();
        w.i16(1).i64(7).i16(2).i32(1000).i8(1);
        w.compact_len(1).compact_string("t").compact_len(1).i32(4);
        w.no_tagged_fields();
        w.i64(5).i64(4).no_tagged_fields();
        let m = decode_value("x", &w.finish()).unwrap();
        assert_eq!(m.producer_id, 7);
        assert_eq!(m.state, TransactionState::Ongoing);
        assert!(m.partitions.contains(&("t".to_owned(), 4)));
    }
}
