//! `PartitionIndexer`: the cursor that follows one partition of a temporal topic and keeps its
//! [`DueIndex`] in step with the latest committed version of every key.
//!
//! It reads from its cursor up to a bound the caller passes: min(last stable offset, high
//! watermark). Records of aborted transactions are skipped, control batches ignored, and records
//! of open transactions are not reached until they commit (DESIGN §5.4). Recovery replays the
//! tail with the same cursor.
//!
//! Fired state: a fire record met in the log restores what fired, and a tombstone forgets an
//! entity. Each such change of an entity's fired state is also queued as a [`FiredChange`] for
//! the owner to write to `__due_state` ([`super::due_state`]). Only changes are queued, so the
//! fire records the pulse appended itself (already recorded) queue nothing; the ones a crash
//! left without their state record do, and the owner writes them on the next step.
//!
//! A record with `kairos.source.topic` is a fire *from another topic* (this one is its
//! `temporal.target.topic`): it is a version of this topic's entity like any other, not
//! evidence that this topic fired. A topic with a target never meets its own fires here; the
//! due service hands the ones a crash left unrecorded to [`PartitionIndexer::restore_fire`].

use kairos_storage::batch::{Batches, RecordBatchHeader};
use kairos_storage::record::RecordBytes;
use kairos_storage::{AbortedTxn, Log};

use super::config::TemporalConfig;
use super::due_index::{DueIndex, EntityId};
use super::due_state::{FiredValue, StateKey};
use super::extract::{FieldValue, extract};
use super::fire::{HEADER_DUE_AT, HEADER_DUE_FIELD, HEADER_SOURCE_OFFSET, HEADER_SOURCE_TOPIC};

/// Counters of one partition's indexing.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct IndexerStats {
    /// Records read.
    pub records: u64,
    /// Records with a null key (never indexed).
    pub null_keys: u64,
    /// Fields present but not a time (never fired).
    pub malformed: u64,
}

/// Bytes read from the log per step: bounds the memory and the time one catch-up step holds.
const READ_BYTES: usize = 1 << 20;
/// Queued fired-state changes at which a catch-up stops early, so the owner writes them before
/// reading on: a rebuild of a log full of fire records never holds all their keys at once.
pub const CHANGES_MAX: usize = 4096;

/// A change of an entity's fired state, to be recorded in `__due_state`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FiredChange {
    /// The entity's field fired for `due_ms`.
    Fired {
        /// The entity key.
        key: Vec<u8>,
        /// The field's index in `temporal.fields`.
        field: u8,
        /// The due time that fired.
        due_ms: i64,
        /// Offset of the version the fire reflected (-1 if the record did not say).
        source_offset: i64,
        /// Offset of the fire record.
        fire_offset: i64,
    },
    /// A tombstone deleted the entity: its fired state is forgotten.
    Forgotten {
        /// The entity key.
        key: Vec<u8>,
        /// The field's index in `temporal.fields`.
        field: u8,
    },
}

/// See the module docs.
#[derive(Debug)]
pub struct PartitionIndexer {
    cursor: i64,
    index: DueIndex,
    stats: IndexerStats,
    /// Offset of the first malformed field seen, logged once per partition.
    first_malformed_offset: Option<i64>,
    values: Vec<FieldValue>,
    /// Fired-state changes met since the owner last took them ([`Self::take_changes`]).
    changes: Vec<FiredChange>,
}

impl PartitionIndexer {
    /// An indexer whose cursor starts at `offset` (the log start, or a snapshot's offset).
    #[must_use]
    pub fn new(offset: i64, index: DueIndex) -> Self {
        Self {
            cursor: offset,
            index,
            stats: IndexerStats::default(),
            first_malformed_offset: None,
            values: Vec::new(),
            changes: Vec::new(),
        }
    }

    /// The next offset to index.
    #[must_use]
    pub fn cursor(&self) -> i64 {
        self.cursor
    }

    /// The index.
    #[must_use]
    pub fn index(&self) -> &DueIndex {
        &self.index
    }

    /// The index, for the pulse.
    pub fn index_mut(&mut self) -> &mut DueIndex {
        &mut self.index
    }

    /// Counters.
    #[must_use]
    pub fn stats(&self) -> IndexerStats {
        self.stats
    }

    /// The fired-state changes met since the last call, in log order.
    pub fn take_changes(&mut self) -> Vec<FiredChange> {
        std::mem::take(&mut self.changes)
    }

    /// Whether changes are waiting to be taken.
    #[must_use]
    pub fn has_changes(&self) -> bool {
        !self.changes.is_empty()
    }

    /// Applies one `__due_state` record (in log order) before the log is replayed: the fired
    /// state of a field still configured, or its tombstone. Loaded entities hold no pending
    /// entry; replaying the log queues what is still due.
    ///
    /// `fires_elsewhere`: the topic has a target topic, so `fire_offset` is an offset there and
    /// the slot takes the source version's offset instead (a slot's offset is in this log).
    pub fn restore_state(
        &mut self,
        config: &TemporalConfig,
        state: &StateKey,
        value: Option<FiredValue>,
        fires_elsewhere: bool,
    ) {
        let Some(field) = config.fields.iter().position(|f| f.as_str() == state.field) else {
            return;
        };
        let id = EntityId::new(&state.key, u8::try_from(field).unwrap_or(u8::MAX));
        match value {
            Some(value) => {
                let offset = if fires_elsewhere {
                    value.source_offset
                } else {
                    value.fire_offset
                };
                self.index.restore_fired(id, value.due_at_ms, offset.max(0));
            }
            None => {
                let _ = self.index.remove(id);
            }
        }
    }

    /// A fire of this partition found in its target topic (`fire_offset` is there) after a
    /// crash may have lost its fired-state record: restores it, and queues the change to be
    /// recorded if it is one. `source_offset` is the version it reflected, in this log.
    pub fn restore_fire(
        &mut self,
        key: &[u8],
        field: u8,
        due_ms: i64,
        source_offset: i64,
        fire_offset: i64,
    ) {
        let id = EntityId::new(key, field);
        if self.index.fired_of(id) != Some(due_ms) {
            self.changes.push(FiredChange::Fired {
                key: key.to_vec(),
                field,
                due_ms,
                source_offset,
                fire_offset,
            });
        }
        self.index.restore_fired(id, due_ms, source_offset.max(0));
    }

    /// Offset of the first malformed field, if any.
    #[must_use]
    pub fn first_malformed_offset(&self) -> Option<i64> {
        self.first_malformed_offset
    }

    /// Indexes records from the cursor up to `upper` (exclusive; the caller passes
    /// min(LSO, HW)), or until [`CHANGES_MAX`] fired-state changes are queued (the cursor then
    /// stops short of `upper`). Returns the number of records read.
    ///
    /// # Errors
    /// Storage errors reading the log. A cursor below the log start (retention, DeleteRecords)
    /// jumps to the log start.
    pub fn catch_up(
        &mut self,
        log: &Log,
        config: &TemporalConfig,
        upper: i64,
    ) -> kairos_storage::Result<u64> {
        let before = self.stats.records;
        self.cursor = self.cursor.max(log.log_start_offset());
        if self.cursor >= upper {
            return Ok(0);
        }
        let aborted = log.aborted_transactions(self.cursor, upper);
        while self.cursor < upper {
            let data = log.read(self.cursor, READ_BYTES, Some(upper))?;
            if data.records.is_empty() {
                // Nothing starts below `upper` from here: the rest is a compaction gap.
                self.cursor = upper;
                break;
            }
            for batch in Batches::new(&data.records) {
                let Ok((_, batch)) = batch else { break };
                if self.index_batch(&batch, config, &aborted) {
                    // Stopped inside the batch; the cursor is past the last record indexed.
                    return Ok(self.stats.records - before);
                }
                self.cursor = self.cursor.max(batch.last_offset() + 1);
            }
        }
        Ok(self.stats.records - before)
    }

    /// Indexes the records of `batch` at or past the cursor. Returns true if it stopped after
    /// a record because [`CHANGES_MAX`] changes are queued (the cursor is then past it).
    fn index_batch(
        &mut self,
        batch: &RecordBatchHeader<'_>,
        config: &TemporalConfig,
        aborted: &[AbortedTxn],
    ) -> bool {
        if batch.is_control() || is_aborted(batch, aborted) {
            return false;
        }
        let Ok(records) = RecordBytes::of(batch) else {
            self.note_malformed(batch.base_offset(), config.fields.len());
            return false;
        };
        for record in records.records() {
            if self.changes.len() >= CHANGES_MAX {
                return true;
            }
            let Ok(record) = record else {
                self.note_malformed(batch.base_offset(), config.fields.len());
                return false;
            };
            let offset = batch.base_offset() + i64::from(record.offset_delta);
            if offset < self.cursor {
                continue;
            }
            self.cursor = offset + 1;
            self.stats.records += 1;
            let Some(key) = record.key else {
                self.stats.null_keys += 1;
                continue;
            };
            self.note_fire(&record, key, config, offset);
            extract(
                &config.fields,
                config.format,
                record.value,
                record.headers(),
                &mut self.values,
            );
            for (field, value) in std::mem::take(&mut self.values).into_iter().enumerate() {
                // At most MAX_FIELDS (16) fields: the index fits a u8.
                let id = EntityId::new(key, u8::try_from(field).unwrap_or(u8::MAX));
                match value {
                    FieldValue::Due(due_ms) => {
                        let _ = self.index.upsert(id, due_ms, offset);
                    }
                    FieldValue::Absent if record.value.is_none() => {
                        if self.index.fired_of(id).is_some() {
                            self.changes.push(FiredChange::Forgotten {
                                key: key.to_vec(),
                                field: id.field(),
                            });
                        }
                        let _ = self.index.remove(id);
                    }
                    FieldValue::Absent => {
                        let _ = self.index.cancel(id, offset);
                    }
                    FieldValue::Malformed(_) => {
                        // The latest version has no usable time: whatever was pending for the
                        // field is cancelled, and the value is counted, never fired.
                        let _ = self.index.cancel(id, offset);
                        self.note_malformed(offset, 1);
                    }
                }
            }
        }
        false
    }

    /// A fire record is evidence that its (key, field, due time) fired: replaying the log
    /// therefore restores the fired state, and the record's own fields then find it. A replay
    /// that changes the fired state queues the change (see the module docs).
    fn note_fire(
        &mut self,
        record: &kairos_storage::record::Record<'_>,
        key: &[u8],
        config: &TemporalConfig,
        offset: i64,
    ) {
        let mut field = None;
        let mut due_at = None;
        let mut source = None;
        for (name, value) in record.headers() {
            match name {
                // Another topic's fire: a plain version here (see the module docs).
                n if n == HEADER_SOURCE_TOPIC.as_bytes() => return,
                n if n == HEADER_DUE_FIELD.as_bytes() => field = value,
                n if n == HEADER_DUE_AT.as_bytes() => due_at = value,
                n if n == HEADER_SOURCE_OFFSET.as_bytes() => source = value,
                _ => {}
            }
        }
        let (Some(field), Some(due_at)) = (field, due_at) else {
            return;
        };
        let Some(index) = config
            .fields
            .iter()
            .position(|f| f.as_str().as_bytes() == field)
        else {
            return;
        };
        let Some(due_ms) = parse_decimal(due_at) else {
            return;
        };
        let id = EntityId::new(key, u8::try_from(index).unwrap_or(u8::MAX));
        if self.index.fired_of(id) != Some(due_ms) {
            self.changes.push(FiredChange::Fired {
                key: key.to_vec(),
                field: id.field(),
                due_ms,
                source_offset: source.and_then(parse_decimal).unwrap_or(-1),
                fire_offset: offset,
            });
        }
        self.index.restore_fired(id, due_ms, offset);
    }

    fn note_malformed(&mut self, offset: i64, count: usize) {
        self.stats.malformed += count as u64;
        if self.first_malformed_offset.is_none() {
            self.first_malformed_offset = Some(offset);
            tracing::warn!(
                offset,
                "malformed temporal field: counted and never fired (logged once per partition)"
            );
        }
    }
}

fn parse_decimal(bytes: &[u8]) -> Option<i64> {
    std::str::from_utf8(bytes).ok()?.parse().ok()
}

fn is_aborted(batch: &RecordBatchHeader<'_>, aborted: &[AbortedTxn]) -> bool {
    aborted.iter().any(|a| a.covers(batch))
}
