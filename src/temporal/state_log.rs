//! `DueStateLog`: the due service's access to `__due_state` (record layout in
//! [`super::due_state`]). Writes happen under the due service's lock, so the log's order is the
//! order of the fired-state changes; each write is made durable before the service goes on.

use std::collections::HashMap;

use bytes::Bytes;
use kairos_storage::Log;

use super::due_state::{DUE_STATE_PARTITIONS, FiredValue, StateKey, key_prefix, state_partition};
use super::indexer::FiredChange;
use super::selector::FieldSelector;
use crate::coordinator::internal_topic::{CoordinatorRecord, InternalTopic, LoadedRecord};
use crate::error::ApiError;

/// Records per appended batch: keeps a batch far below `max.message.bytes` whatever the keys.
const RECORDS_PER_BATCH: usize = 1_000;

/// See the module docs.
#[derive(Debug)]
pub struct DueStateLog {
    topic: InternalTopic,
    /// `kairos.acks.all.fsync`: whether "durable" means fsynced (otherwise written to the OS,
    /// which survives a process kill but not a power loss, like acks=all produce).
    fsync: bool,
}

impl DueStateLog {
    /// Over `topic` (spec: [`super::due_state::DUE_STATE_TOPIC`], compacted).
    #[must_use]
    pub fn new(topic: InternalTopic, fsync: bool) -> Self {
        Self { topic, fsync }
    }

    fn partitions(&self) -> i32 {
        self.topic
            .topic()
            .map_or(DUE_STATE_PARTITIONS, |t| t.partitions)
    }

    /// Records `changes` of one source partition and makes them durable. `fires` is the log its
    /// fires went to: the partition itself, or its target topic's partition.
    ///
    /// The fire records among them are made durable in `fires` first: a fired state must
    /// never be durable while its fire is not, or a power loss could keep the first and lose
    /// the second, and the fire would be missed.
    ///
    /// # Errors
    /// The storage error's code; nothing is known to be recorded, and the caller retries.
    pub fn record(
        &self,
        topic_id: uuid::Uuid,
        partition: i32,
        fields: &[FieldSelector],
        fires: &Log,
        changes: &[FiredChange],
        now_ms: i64,
    ) -> Result<(), ApiError> {
        let fires_end = changes
            .iter()
            .filter_map(|c| match c {
                FiredChange::Fired { fire_offset, .. } => Some(fire_offset + 1),
                FiredChange::Forgotten { .. } => None,
            })
            .max();
        if let (true, Some(end)) = (self.fsync, fires_end) {
            fires
                .sync_to(end.min(fires.log_end_offset()), now_ms)
                .map_err(|e| ApiError::from(&e))?;
        }
        let records: Vec<CoordinatorRecord> = changes
            .iter()
            .map(|change| to_record(topic_id, partition, fields, change))
            .collect();
        self.append_durable(
            state_partition(topic_id, partition, self.partitions()),
            &records,
        )
    }

    fn append_durable(
        &self,
        partition: i32,
        records: &[CoordinatorRecord],
    ) -> Result<(), ApiError> {
        let mut last = None;
        for chunk in records.chunks(RECORDS_PER_BATCH) {
            last = self.topic.append_to(partition, chunk, None)?.or(last);
        }
        // One sync covers every batch: `sync_to` makes everything below its offset durable.
        if self.fsync {
            self.topic.make_durable(last)
        } else {
            Ok(())
        }
    }

    /// Calls `apply` with every fired-state record of `(topic_id, partition)`, in log order
    /// (a later record of a key supersedes an earlier one; `None` is a tombstone).
    ///
    /// # Errors
    /// Storage errors.
    pub fn load(
        &self,
        topic_id: uuid::Uuid,
        partition: i32,
        mut apply: impl FnMut(StateKey, Option<FiredValue>),
    ) -> Result<(), kairos_storage::Error> {
        let prefix = key_prefix(topic_id, partition);
        let state = state_partition(topic_id, partition, self.partitions());
        self.topic.read_partition(state, |record| {
            let LoadedRecord::Data { key, value, .. } = record else {
                return;
            };
            if !key.starts_with(&prefix) {
                return;
            }
            let Some(key) = StateKey::decode(key) else {
                return;
            };
            match value {
                None => apply(key, None),
                Some(value) => {
                    if let Some(value) = FiredValue::decode(value) {
                        apply(key, Some(value));
                    }
                }
            }
        })
    }

    /// Writes a tombstone for every live fired-state record of `(topic_id, partition)` (a
    /// deleted topic's). Returns how many.
    ///
    /// # Errors
    /// Storage errors reading, or the code of one writing.
    pub fn forget(&self, topic_id: uuid::Uuid, partition: i32) -> Result<usize, ApiError> {
        let mut live: HashMap<Bytes, bool> = HashMap::new();
        self.load(topic_id, partition, |key, value| {
            let _ = live.insert(key.encode(), value.is_some());
        })
        .map_err(|e| ApiError::from(&e))?;
        let tombstones: Vec<CoordinatorRecord> = live
            .into_iter()
            .filter(|(_, is_live)| *is_live)
            .map(|(key, _)| CoordinatorRecord { key, value: None })
            .collect();
        let state = state_partition(topic_id, partition, self.partitions());
        self.append_durable(state, &tombstones)?;
        Ok(tombstones.len())
    }
}

fn to_record(
    topic_id: uuid::Uuid,
    partition: i32,
    fields: &[FieldSelector],
    change: &FiredChange,
) -> CoordinatorRecord {
    let (key, field, value) = match change {
        FiredChange::Fired {
            key,
            field,
            due_ms,
            source_offset,
            fire_offset,
        } => (
            key,
            field,
            Some(
                FiredValue {
                    due_at_ms: *due_ms,
                    source_offset: *source_offset,
                    fire_offset: *fire_offset,
                }
                .encode(),
            ),
        ),
        FiredChange::Forgotten { key, field } => (key, field, None),
    };
    let field = fields.get(usize::from(*field)).map_or("", |f| f.as_str());
    CoordinatorRecord {
        key: StateKey::encode_parts(topic_id, partition, field, key),
        value,
    }
}
