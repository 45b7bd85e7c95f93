//! Loading: replaying `__consumer_offsets` into groups at start.

use std::collections::HashMap;
use std::sync::atomic::Ordering;

use super::{Group, GroupCoordinator, GroupKind};
use crate::coordinator::group::classic::ClassicGroup;
use crate::coordinator::group::codec::CodecError;
use crate::coordinator::group::consumer::ConsumerGroup;
use crate::coordinator::group::record::{
    GroupMetadataValue, OffsetCommitValue, RecordKey, partition_for,
};
use crate::coordinator::internal_topic::LoadedRecord;

impl GroupCoordinator {
    /// Replays `__consumer_offsets` into memory, then starts answering. Blocking.
    ///
    /// # Errors
    /// Storage errors while reading (the coordinator then stays unavailable).
    pub fn load(&self) -> Result<(), kairos_storage::Error> {
        let now_ms = self.clock.now_ms();
        let mut groups: HashMap<String, Group> = HashMap::new();
        let mut malformed = 0u64;
        let partitions = self.topic.topic().map_or(1, |t| t.partitions);
        self.topic.read_all(|partition, record| match record {
            LoadedRecord::Data {
                key,
                value,
                producer_id,
            } => {
                if replay(&mut groups, key, value, producer_id, now_ms).is_err() {
                    malformed += 1;
                }
            }
            // A transaction that committed offsets ended: only groups of this partition can
            // hold its offsets.
            LoadedRecord::Marker {
                producer_id,
                commit,
            } => {
                for (group_id, group) in &mut groups {
                    if partition_for(group_id, partitions) == partition {
                        group.offsets.complete_transaction(producer_id, commit);
                    }
                }
            }
        })?;
        let consumer_config = self.consumer_config();
        for group in groups.values_mut() {
            if let GroupKind::Consumer(consumer) = &mut group.kind {
                consumer.finish_loading(&consumer_config, now_ms);
            }
        }
        groups.retain(|_, group| !group.is_forgettable());
        if malformed > 0 {
            tracing::warn!(malformed, "skipped malformed records in __consumer_offsets");
        }
        tracing::info!(groups = groups.len(), "group coordinator loaded");
        *self.groups.lock() = groups;
        self.loading.store(false, Ordering::Release);
        self.timer.notify_one();
        Ok(())
    }
}

/// Applies one record read back from the log.
fn replay(
    groups: &mut HashMap<String, Group>,
    key: &[u8],
    value: Option<&[u8]>,
    producer_id: i64,
    now_ms: i64,
) -> Result<(), CodecError> {
    let key = RecordKey::decode(key)?;
    match key {
        RecordKey::Offset {
            group,
            topic,
            partition,
        } => match value {
            Some(value) => {
                let value = OffsetCommitValue::decode(value)?;
                let offsets = &mut groups
                    .entry(group.clone())
                    .or_insert_with(|| Group::classic(&group, now_ms))
                    .offsets;
                if producer_id >= 0 {
                    offsets.put_pending(producer_id, &topic, partition, value);
                } else {
                    offsets.put(&topic, partition, value);
                }
            }
            None => {
                if let Some(group) = groups.get_mut(&group) {
                    let _ = group.offsets.remove(&topic, partition);
                }
            }
        },
        RecordKey::GroupMetadata { group } => match value {
            Some(value) => {
                let value = GroupMetadataValue::decode(value)?;
                let loaded = ClassicGroup::from_record(&group, value, now_ms);
                groups
                    .entry(group.clone())
                    .or_insert_with(|| Group::classic(&group, now_ms))
                    .kind = GroupKind::Classic(loaded);
            }
            None => {
                if let Some(existing) = groups.get_mut(&group)
                    && matches!(existing.kind, GroupKind::Classic(_))
                {
                    existing.kind = GroupKind::Classic(ClassicGroup::new(&group, now_ms));
                }
            }
        },
        RecordKey::ConsumerGroup {
            version,
            group,
            rest,
        } => {
            let entry = groups
                .entry(group.clone())
                .or_insert_with(|| Group::classic(&group, now_ms));
            if !matches!(entry.kind, GroupKind::Consumer(_)) {
                // A group converted from classic (it had no members then).
                entry.kind = GroupKind::Consumer(ConsumerGroup::new(&group));
            }
            if let GroupKind::Consumer(consumer) = &mut entry.kind {
                consumer.replay(version, &rest, value)?;
            }
        }
    }
    Ok(())
}
