//! `ProducerStateManager`: per-partition state of idempotent producers, for sequence checks and
//! duplicate detection (Kafka's `ProducerStateManager` / `ProducerAppendInfo`).
//!
//! The last [`MAX_BATCHES_PER_PRODUCER`] batches of each producer are kept, as in Kafka, so a
//! retried batch within the producer's in-flight window is answered with its original offsets.
//! The state is rebuilt on open from a snapshot (the last batch of each producer, written at
//! clean shutdown) plus a scan of the log after it.

use std::collections::{HashMap, VecDeque};

use crate::batch::{NO_PRODUCER_ID, NO_SEQUENCE, RecordBatchHeader};
use crate::error::{Error, Result};
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

    /// Checks a batch about to be appended (Kafka's `ProducerAppendInfo.checkSequence` and
    /// `findDuplicateBatch`).
    pub(crate) fn check(
        &self,
        batch: &RecordBatchHeader<'_>,
        origin: AppendOrigin,
    ) -> Result<SequenceCheck> {
        let producer_id = batch.producer_id();
        if producer_id == NO_PRODUCER_ID || origin == AppendOrigin::Coordinator {
            return Ok(SequenceCheck::Append);
        }
        let Some(entry) = self.producers.get(&producer_id) else {
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

    /// Records a batch that is now in the log (offsets assigned).
    pub(crate) fn update(&mut self, batch: &RecordBatchHeader<'_>) {
        let producer_id = batch.producer_id();
        if producer_id == NO_PRODUCER_ID {
            return;
        }
        let entry = self
            .producers
            .entry(producer_id)
            .or_insert_with(|| ProducerStateEntry {
                producer_id,
                producer_epoch: batch.producer_epoch(),
                batches: VecDeque::new(),
            });
        if batch.producer_epoch() > entry.producer_epoch {
            entry.producer_epoch = batch.producer_epoch();
            entry.batches.clear();
        }
        if batch.base_sequence() == NO_SEQUENCE || batch.is_control() {
            return;
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
    }

    /// Restores an entry from a snapshot.
    pub(crate) fn restore(&mut self, entry: ProducerStateEntry) {
        let _ = self.producers.insert(entry.producer_id, entry);
    }

    /// Forgets batches at or after `offset` (log truncation); producers left with nothing are
    /// dropped.
    pub(crate) fn truncate_to(&mut self, offset: i64) {
        self.producers.retain(|_, entry| {
            entry.batches.retain(|b| b.last_offset < offset);
            !entry.batches.is_empty()
        });
    }

    /// Drops every producer (before a rebuild from the log).
    pub(crate) fn clear(&mut self) {
        self.producers.clear();
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
        state.update(&RecordBatchHeader::parse(&first).unwrap());
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
        state.update(&RecordBatchHeader::parse(&bumped).unwrap());
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
            state.update(&RecordBatchHeader::parse(&b).unwrap());
        }
        let entry = state.get(9).unwrap();
        assert_eq!(entry.batches.len(), MAX_BATCHES_PER_PRODUCER);
        assert_eq!(entry.batches.front().unwrap().first_seq, 2);
        state.truncate_to(4);
        assert_eq!(state.get(9).unwrap().batches.len(), 2);
    }
}
