//! `ProducerStateManager`: per-partition state of idempotent producers, for sequence checks and
//! duplicate detection (Kafka's `ProducerStateManager` / `ProducerAppendInfo`).
//!
//! The last [`MAX_BATCHES_PER_PRODUCER`] batches of each producer are kept, as in Kafka, so a
//! retried batch within the producer's in-flight window is answered with its original offsets.
//! The state is rebuilt on open from a snapshot (written at clean shutdown) plus a scan of the
//! log after it.
//!
//! Transactions: a producer's first transactional batch opens its transaction at that offset,
//! and its COMMIT or ABORT marker closes it. The smallest open first offset is the partition's
//! first unstable offset, which bounds the last stable offset (LSO) that read_committed readers
//! see.

use std::collections::{BTreeMap, HashMap, VecDeque};

use crate::batch::{NO_PRODUCER_ID, NO_SEQUENCE, RecordBatchHeader};
use crate::control::{ControlRecordType, EndTransactionMarker};
use crate::error::{Error, Result};
use crate::index::txn::AbortedTxn;
use crate::validator::AppendOrigin;

/// Kafka keeps five: the producer's `max.in.flight.requests.per.connection` for idempotence.
pub const MAX_BATCHES_PER_PRODUCER: usize = 5;

/// One appended batch of a producer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BatchMetadata {
    /// Sequence of the first record.
    pub first_seq: i32,
    /// Sequence of the last record.
    pub last_seq: i32,
    /// Offset of the first record.
    pub first_offset: i64,
    /// Offset of the last record.
    pub last_offset: i64,
    /// Max timestamp of the batch.
    pub timestamp: i64,
}

/// State of one producer in one partition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProducerStateEntry {
    /// The producer id.
    pub producer_id: i64,
    /// The latest epoch seen.
    pub producer_epoch: i16,
    /// Most recent batches, oldest first.
    pub batches: VecDeque<BatchMetadata>,
    /// First offset of the producer's open transaction in this partition.
    pub current_txn_first_offset: Option<i64>,
    /// Epoch of the coordinator that wrote the producer's last marker.
    pub coordinator_epoch: i32,
}

/// A transaction closed by a marker.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CompletedTxn {
    /// The producer.
    pub producer_id: i64,
    /// First offset of the transaction.
    pub first_offset: i64,
    /// Offset of the marker.
    pub last_offset: i64,
    /// Whether it was aborted.
    pub aborted: bool,
}

impl ProducerStateEntry {
    fn last_seq(&self) -> i32 {
        self.batches.back().map_or(NO_SEQUENCE, |b| b.last_seq)
    }
}

/// What a sequence check concluded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum SequenceCheck {
    /// Append it.
    Append,
    /// Already in the log: answer with these offsets.
    Duplicate(BatchMetadata),
}

/// Producer state of one partition.
#[derive(Debug, Default)]
pub struct ProducerStateManager {
    producers: HashMap<i64, ProducerStateEntry>,
    /// Open transactions: first offset → producer id.
    ongoing: BTreeMap<i64, i64>,
}

fn in_sequence(last_seq: i32, next_seq: i32) -> bool {
    next_seq == last_seq.wrapping_add(1) || (last_seq == i32::MAX && next_seq == 0)
}

impl ProducerStateManager {
    /// Number of producers tracked.
    #[must_use]
    pub fn len(&self) -> usize {
        self.producers.len()
    }

    /// Whether no producer is tracked.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.producers.is_empty()
    }

    /// The entry of a producer.
    #[must_use]
    pub fn get(&self, producer_id: i64) -> Option<&ProducerStateEntry> {
        self.producers.get(&producer_id)
    }

    /// All entries, for snapshots.
    pub fn entries(&self) -> impl Iterator<Item = &ProducerStateEntry> {
        self.producers.values()
    }

    /// The first offset of the earliest open transaction.
    #[must_use]
    pub fn first_unstable_offset(&self) -> Option<i64> {
        self.ongoing.keys().next().copied()
    }

    /// The transaction index entry for an aborted transaction, with the LSO after its marker.
    #[must_use]
    pub fn aborted_entry(&self, done: &CompletedTxn) -> AbortedTxn {
        AbortedTxn {
            producer_id: done.producer_id,
            first_offset: done.first_offset,
            last_offset: done.last_offset,
            last_stable_offset: self.first_unstable_offset().unwrap_or(done.last_offset + 1),
        }
    }

    /// Checks a batch about to be appended (Kafka's `ProducerAppendInfo.checkSequence` and
    /// `findDuplicateBatch`).
    pub(crate) fn check(
        &self,
        batch: &RecordBatchHeader<'_>,
        origin: AppendOrigin,
    ) -> Result<SequenceCheck> {
        let producer_id = batch.producer_id();
        if producer_id == NO_PRODUCER_ID {
            return Ok(SequenceCheck::Append);
        }
        let entry = self.producers.get(&producer_id);
        if origin == AppendOrigin::Coordinator {
            // Markers from the coordinator skip sequence checks but not fencing.
            return match entry {
                Some(e) if batch.is_control() && batch.producer_epoch() < e.producer_epoch => {
                    Err(Error::InvalidProducerEpoch {
                        producer_id,
                        current: e.producer_epoch,
                        actual: batch.producer_epoch(),
                    })
                }
                _ => Ok(SequenceCheck::Append),
            };
        }
        if entry.is_some_and(|e| e.current_txn_first_offset.is_some()) && !batch.is_transactional()
        {
            return Err(Error::InvalidTxnState { producer_id });
        }
        let Some(entry) = entry else {
            // Unknown producer: its state may have been removed (retention, expiration), so any
            // sequence is accepted, as Kafka does since KIP-360.
            return Ok(SequenceCheck::Append);
        };
        let epoch = batch.producer_epoch();
        if epoch < entry.producer_epoch {
            return Err(Error::InvalidProducerEpoch {
                producer_id,
                current: entry.producer_epoch,
                actual: epoch,
            });
        }
        let first_seq = batch.base_sequence();
        if epoch > entry.producer_epoch {
            if first_seq != 0 && entry.producer_epoch >= 0 && first_seq != NO_SEQUENCE {
                return Err(Error::OutOfOrderSequence {
                    producer_id,
                    expected: 0,
                    actual: first_seq,
                });
            }
            return Ok(SequenceCheck::Append);
        }
        if first_seq == NO_SEQUENCE {
            return Ok(SequenceCheck::Append);
        }
        if let Some(dup) = entry
            .batches
            .iter()
            .find(|b| b.first_seq == first_seq && b.last_seq == batch.last_sequence())
        {
            return Ok(SequenceCheck::Duplicate(*dup));
        }
        let last_seq = entry.last_seq();
        if last_seq != NO_SEQUENCE && !in_sequence(last_seq, first_seq) {
            return Err(Error::OutOfOrderSequence {
                producer_id,
                expected: last_seq.wrapping_add(1),
                actual: first_seq,
            });
        }
        Ok(SequenceCheck::Append)
    }

    /// Records a batch that is now in the log (offsets assigned). `marker` is the parsed
    /// marker of a control batch. Returns the transaction a marker closed.
    pub(crate) fn update(
        &mut self,
        batch: &RecordBatchHeader<'_>,
        marker: Option<EndTransactionMarker>,
    ) -> Option<CompletedTxn> {
        let producer_id = batch.producer_id();
        if producer_id == NO_PRODUCER_ID {
            return None;
        }
        let entry = self
            .producers
            .entry(producer_id)
            .or_insert_with(|| ProducerStateEntry {
                producer_id,
                producer_epoch: batch.producer_epoch(),
                batches: VecDeque::new(),
                current_txn_first_offset: None,
                coordinator_epoch: -1,
            });
        if batch.producer_epoch() > entry.producer_epoch {
            entry.producer_epoch = batch.producer_epoch();
            entry.batches.clear();
        }
        if batch.is_control() {
            let marker = marker?;
            entry.coordinator_epoch = marker.coordinator_epoch;
            let first_offset = entry.current_txn_first_offset.take()?;
            let _ = self.ongoing.remove(&first_offset);
            return Some(CompletedTxn {
                producer_id,
                first_offset,
                last_offset: batch.last_offset(),
                aborted: marker.kind == ControlRecordType::Abort,
            });
        }
        if batch.is_transactional() && entry.current_txn_first_offset.is_none() {
            entry.current_txn_first_offset = Some(batch.base_offset());
            let _ = self.ongoing.insert(batch.base_offset(), producer_id);
        }
        if batch.base_sequence() == NO_SEQUENCE {
            return None;
        }
        if entry.batches.len() == MAX_BATCHES_PER_PRODUCER {
            let _ = entry.batches.pop_front();
        }
        entry.batches.push_back(BatchMetadata {
            first_seq: batch.base_sequence(),
            last_seq: batch.last_sequence(),
            first_offset: batch.base_offset(),
            last_offset: batch.last_offset(),
            timestamp: batch.max_timestamp(),
        });
        None
    }

    /// Restores an entry from a snapshot.
    pub(crate) fn restore(&mut self, entry: ProducerStateEntry) {
        if let Some(first) = entry.current_txn_first_offset {
            let _ = self.ongoing.insert(first, entry.producer_id);
        }
        let _ = self.producers.insert(entry.producer_id, entry);
    }

    /// Forgets producers idle for `expiration_ms` (Kafka's `producer.id.expiration.ms`) that
    /// have no open transaction: the bound on producer state. Returns how many were removed.
    pub(crate) fn remove_expired(&mut self, now_ms: i64, expiration_ms: i64) -> usize {
        let before = self.producers.len();
        self.producers.retain(|_, entry| {
            let last = entry.batches.back().map_or(i64::MIN, |b| b.timestamp);
            entry.current_txn_first_offset.is_some() || now_ms.saturating_sub(last) < expiration_ms
        });
        before - self.producers.len()
    }

    /// Drops every producer (before a rebuild from the log).
    pub(crate) fn clear(&mut self) {
        self.producers.clear();
        self.ongoing.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::batch::set_base_offset;
    use crate::builder::RecordBatchBuilder;

    fn batch(pid: i64, epoch: i16, seq: i32, n: usize, offset: i64) -> Vec<u8> {
        let mut b = RecordBatchBuilder::new().producer(pid, epoch, seq);
        for _ in 0..n {
            b = b.record(None, Some(b"v"), 0);
        }
        let mut bytes = b.build();
        set_base_offset(&mut bytes, offset);
        bytes
    }

    fn check(state: &ProducerStateManager, bytes: &[u8]) -> Result<SequenceCheck> {
        state.check(
            &RecordBatchHeader::parse(bytes).unwrap(),
            AppendOrigin::Client,
        )
    }

    #[test]
    fn sequences_duplicates_and_epochs_follow_kafka() {
        let mut state = ProducerStateManager::default();
        let first = batch(1, 0, 0, 3, 0);
        assert_eq!(check(&state, &first).unwrap(), SequenceCheck::Append);
        let _ = state.update(&RecordBatchHeader::parse(&first).unwrap(), None);
        // A retry of the same batch is a duplicate with its original offsets.
        assert!(matches!(
            check(&state, &batch(1, 0, 0, 3, 99)).unwrap(),
            SequenceCheck::Duplicate(BatchMetadata {
                first_offset: 0,
                last_offset: 2,
                ..
            })
        ));
        // A gap is out of order.
        assert!(matches!(
            check(&state, &batch(1, 0, 5, 1, 3)),
            Err(Error::OutOfOrderSequence {
                expected: 3,
                actual: 5,
                ..
            })
        ));
        assert_eq!(
            check(&state, &batch(1, 0, 3, 1, 3)).unwrap(),
            SequenceCheck::Append
        );
        // A newer epoch must restart at 0; an older one is fenced.
        assert!(check(&state, &batch(1, 1, 4, 1, 3)).is_err());
        let bumped = batch(1, 1, 0, 1, 3);
        assert_eq!(check(&state, &bumped).unwrap(), SequenceCheck::Append);
        let _ = state.update(&RecordBatchHeader::parse(&bumped).unwrap(), None);
        assert!(matches!(
            check(&state, &batch(1, 0, 3, 1, 4)),
            Err(Error::InvalidProducerEpoch {
                current: 1,
                actual: 0,
                ..
            })
        ));
    }

    #[test]
    fn keeps_only_the_last_five_batches() {
        let mut state = ProducerStateManager::default();
        for i in 0..7 {
            let b = batch(9, 0, i, 1, i64::from(i));
            let _ = state.update(&RecordBatchHeader::parse(&b).unwrap(), None);
        }
        let entry = state.get(9).unwrap();
        assert_eq!(entry.batches.len(), MAX_BATCHES_PER_PRODUCER);
        assert_eq!(entry.batches.front().unwrap().first_seq, 2);
    }

    #[test]
    fn markers_close_transactions_and_move_the_first_unstable_offset() {
        use crate::control::{build_marker, parse_marker};
        let mut state = ProducerStateManager::default();
        let txn = |pid, offset| {
            let mut bytes = RecordBatchBuilder::new()
                .producer(pid, 0, 0)
                .transactional(true)
                .record(None, Some(b"v"), 0)
                .build();
            set_base_offset(&mut bytes, offset);
            bytes
        };
        for (pid, offset) in [(1, 10), (2, 11)] {
            let bytes = txn(pid, offset);
            let _ = state.update(&RecordBatchHeader::parse(&bytes).unwrap(), None);
        }
        assert_eq!(state.first_unstable_offset(), Some(10));
        // A plain write from a producer inside a transaction is refused.
        let plain = batch(1, 0, 1, 1, 12);
        assert!(matches!(
            check(&state, &plain),
            Err(Error::InvalidTxnState { producer_id: 1 })
        ));
        let marker = EndTransactionMarker {
            kind: ControlRecordType::Abort,
            coordinator_epoch: 0,
        };
        let mut bytes = build_marker(1, 0, marker, 0);
        set_base_offset(&mut bytes, 12);
        let header = RecordBatchHeader::parse(&bytes).unwrap();
        let done = state.update(&header, parse_marker(&header)).unwrap();
        assert_eq!(
            done,
            CompletedTxn {
                producer_id: 1,
                first_offset: 10,
                last_offset: 12,
                aborted: true
            }
        );
        assert_eq!(state.first_unstable_offset(), Some(11));
        // A fenced (older epoch) marker is refused.
        let mut old = build_marker(2, -1, marker, 0);
        set_base_offset(&mut old, 13);
        let old = RecordBatchHeader::parse(&old).unwrap();
        assert!(state.check(&old, AppendOrigin::Coordinator).is_err());
    }
}
