//! `GroupCoordinator`: owns every group and its committed offsets, answers the group APIs, and
//! persists what must survive a restart in `__consumer_offsets`.
//!
//! One mutex guards all groups. Operations are short and synchronous (handlers run them on the
//! blocking pool); the only slow step, the fsync that makes an offset commit durable, happens
//! after the lock is released, and log order equals the order of in-memory changes because
//! appends happen under the lock. Parked JoinGroup/SyncGroup requests are oneshot receivers the
//! handlers await outside.
//!
//! The API is split by area: `classic.rs` (JoinGroup, SyncGroup, Heartbeat, LeaveGroup),
//! `consumer.rs` (KIP-848), `offsets.rs` (OffsetCommit/Fetch/Delete), `admin.rs` (List,
//! Describe, DeleteGroups), and `load.rs` (replaying the log at start).

mod admin;
mod classic;
mod consumer;
mod load;
mod offsets;
#[cfg(test)]
mod tests;

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use kafka_protocol::error::ResponseError;
use parking_lot::Mutex;
use tokio::sync::Notify;

pub use admin::ListedGroup;
pub use offsets::{Committer, FetchedOffset, OffsetCommit};

use super::classic::{ClassicGroup, ClassicGroupConfig, ClassicGroupState};
use super::consumer::{ConsumerGroup, ConsumerGroupConfig};
use super::offsets::OffsetStore;
use super::record::{CoordinatorRecord, RecordKey};
use crate::clock::Clock;
use crate::config::BrokerConfig;
use crate::coordinator::internal_topic::InternalTopic;
use crate::metadata::MetadataCache;

/// The protocol state of a group.
#[derive(Debug)]
pub enum GroupKind {
    /// The classic protocol (also groups that only have offsets).
    Classic(ClassicGroup),
    /// The consumer protocol (KIP-848).
    Consumer(ConsumerGroup),
}

/// One group: its protocol state and its offsets.
#[derive(Debug)]
pub struct Group {
    /// Protocol state.
    pub kind: GroupKind,
    /// Committed offsets.
    pub offsets: OffsetStore,
}

impl Group {
    fn classic(group_id: &str, now_ms: i64) -> Group {
        Group {
            kind: GroupKind::Classic(ClassicGroup::new(group_id, now_ms)),
            offsets: OffsetStore::default(),
        }
    }

    /// Whether the group has no members (it may still have offsets).
    #[must_use]
    pub fn has_no_members(&self) -> bool {
        match &self.kind {
            GroupKind::Classic(classic) => classic.is_empty(),
            GroupKind::Consumer(consumer) => consumer.is_empty(),
        }
    }

    /// Whether any member consumes `topic`.
    #[must_use]
    pub fn is_subscribed_to(&self, topic: &str) -> bool {
        match &self.kind {
            GroupKind::Classic(classic) => !classic.is_empty() && classic.is_subscribed_to(topic),
            GroupKind::Consumer(consumer) => consumer.is_subscribed_to(topic),
        }
    }

    /// Nothing to keep: no members, no offsets, no protocol history.
    fn is_forgettable(&self) -> bool {
        let no_state = match &self.kind {
            GroupKind::Classic(classic) => classic.is_empty() && classic.generation_id() == 0,
            GroupKind::Consumer(consumer) => {
                consumer.is_dead() || (consumer.is_empty() && consumer.group_epoch() == 0)
            }
        };
        no_state && self.offsets.is_empty() && !self.offsets.has_any_pending()
    }
}

/// The group coordinator.
#[derive(Debug)]
pub struct GroupCoordinator {
    config: Arc<BrokerConfig>,
    clock: Arc<dyn Clock>,
    metadata: Arc<MetadataCache>,
    topic: InternalTopic,
    groups: Mutex<HashMap<String, Group>>,
    loading: AtomicBool,
    timer: Notify,
}

fn code(error: ResponseError) -> i16 {
    error.code()
}

impl GroupCoordinator {
    /// A coordinator that answers COORDINATOR_LOAD_IN_PROGRESS until [`GroupCoordinator::load`]
    /// has run.
    #[must_use]
    pub fn new(
        config: Arc<BrokerConfig>,
        clock: Arc<dyn Clock>,
        metadata: Arc<MetadataCache>,
        topic: InternalTopic,
    ) -> GroupCoordinator {
        GroupCoordinator {
            config,
            clock,
            metadata,
            topic,
            groups: Mutex::new(HashMap::new()),
            loading: AtomicBool::new(true),
            timer: Notify::new(),
        }
    }

    /// The offsets topic (FindCoordinator creates it).
    #[must_use]
    pub fn offsets_topic(&self) -> &InternalTopic {
        &self.topic
    }

    /// Whether groups are still being loaded.
    #[must_use]
    pub fn is_loading(&self) -> bool {
        self.loading.load(Ordering::Acquire)
    }

    /// Woken whenever a deadline may have moved earlier.
    #[must_use]
    pub fn timer(&self) -> &Notify {
        &self.timer
    }

    fn classic_config(&self) -> ClassicGroupConfig {
        ClassicGroupConfig {
            min_session_timeout_ms: self.config.group_min_session_timeout_ms(),
            max_session_timeout_ms: self.config.group_max_session_timeout_ms(),
            initial_rebalance_delay_ms: self.config.group_initial_rebalance_delay_ms(),
            max_size: self.config.group_max_size(),
        }
    }

    fn consumer_config(&self) -> ConsumerGroupConfig {
        ConsumerGroupConfig {
            session_timeout_ms: self.config.group_consumer_session_timeout_ms(),
            heartbeat_interval_ms: self.config.group_consumer_heartbeat_interval_ms(),
            assignors: self.config.group_consumer_assignors(),
            max_size: self.config.group_consumer_max_size(),
        }
    }

    /// Common checks of every group request.
    fn check(&self, group_id: &str) -> Result<(), ResponseError> {
        if group_id.is_empty() {
            return Err(ResponseError::InvalidGroupId);
        }
        if self.is_loading() {
            return Err(ResponseError::CoordinatorLoadInProgress);
        }
        Ok(())
    }

    /// Appends records of a group's state (not offsets). Not waited for: a lost group record
    /// costs a rebalance after a crash, never data.
    fn persist(&self, group_id: &str, records: &[CoordinatorRecord]) {
        if let Err(error) = self.topic.append(group_id, records, None) {
            tracing::warn!(group = group_id, %error, "cannot persist group state");
        }
    }

    /// Appends a classic group's metadata if its state machine marked it dirty.
    fn persist_if_dirty(&self, group_id: &str, group: &mut Group) {
        let GroupKind::Classic(classic) = &mut group.kind else {
            return;
        };
        if !classic.take_dirty() {
            return;
        }
        let record = CoordinatorRecord {
            key: RecordKey::GroupMetadata {
                group: group_id.to_owned(),
            }
            .encode(),
            value: Some(classic.to_record().encode()),
        };
        self.persist(group_id, &[record]);
    }

    /// Runs every group's expired deadlines; returns the next deadline.
    pub fn tick(&self) -> Option<i64> {
        if self.is_loading() {
            return None;
        }
        let now_ms = self.clock.now_ms();
        let consumer_config = self.consumer_config();
        let mut topics = None;
        let mut groups = self.groups.lock();
        let mut next: Option<i64> = None;
        let ids: Vec<String> = groups.keys().cloned().collect();
        for group_id in ids {
            let Some(group) = groups.get_mut(&group_id) else {
                continue;
            };
            let deadline = match &mut group.kind {
                GroupKind::Classic(classic) => {
                    if classic.next_deadline().is_some_and(|d| d <= now_ms) {
                        classic.tick(now_ms);
                    }
                    classic.next_deadline()
                }
                GroupKind::Consumer(consumer) => {
                    if consumer.next_deadline().is_some_and(|d| d <= now_ms) {
                        let topics = topics.get_or_insert_with(|| self.metadata.topics());
                        let records = consumer.expire(topics, &consumer_config, now_ms);
                        self.persist(&group_id, &records);
                    }
                    consumer.next_deadline()
                }
            };
            self.persist_if_dirty(&group_id, group);
            if let Some(deadline) = deadline {
                next = Some(next.map_or(deadline, |n| n.min(deadline)));
            }
        }
        next
    }

    /// Expires offsets past `offsets.retention.minutes` in groups without members, and forgets
    /// groups left with nothing (Kafka's `cleanupGroupMetadata`).
    pub fn expire_offsets(&self) {
        if self.is_loading() {
            return;
        }
        let now_ms = self.clock.now_ms();
        let retention_ms = self.config.offsets_retention_ms();
        let mut groups = self.groups.lock();
        let ids: Vec<String> = groups.keys().cloned().collect();
        for group_id in ids {
            let Some(group) = groups.get_mut(&group_id) else {
                continue;
            };
            // A classic consumer group that emptied counts from then; offset-only groups and
            // consumer-protocol groups per commit.
            let base = match &group.kind {
                GroupKind::Classic(classic) if classic.state() == ClassicGroupState::Empty => {
                    classic
                        .protocol_type()
                        .is_some()
                        .then_some(classic.state_timestamp_ms())
                }
                GroupKind::Consumer(consumer) if consumer.is_empty() => None,
                _ => continue,
            };
            let expired = group.offsets.expired(now_ms, retention_ms, base);
            if expired.is_empty() {
                continue;
            }
            let mut records: Vec<CoordinatorRecord> = expired
                .iter()
                .map(|(topic, partition)| offset_tombstone(&group_id, topic, *partition))
                .collect();
            let forget = expired.len() == group.offsets.iter().count();
            if forget {
                records.extend(state_tombstones(&group_id, group));
            }
            if let Err(error) = self.topic.append(&group_id, &records, None) {
                tracing::warn!(group = %group_id, %error, "cannot expire offsets");
                continue;
            }
            for (topic, partition) in &expired {
                let _ = group.offsets.remove(topic, *partition);
            }
            tracing::info!(group = %group_id, expired = expired.len(), "expired offsets");
            if forget {
                let _ = groups.remove(&group_id);
            }
        }
    }

    /// Removes every committed offset of a deleted topic (with tombstones).
    pub fn on_topic_deleted(&self, topic: &str) {
        let mut groups = self.groups.lock();
        for (group_id, group) in groups.iter_mut() {
            let partitions = group.offsets.partitions_of(topic);
            if partitions.is_empty() {
                continue;
            }
            let records: Vec<CoordinatorRecord> = partitions
                .iter()
                .map(|p| offset_tombstone(group_id, topic, *p))
                .collect();
            self.persist(group_id, &records);
            for partition in partitions {
                let _ = group.offsets.remove(topic, partition);
            }
        }
    }
}

fn offset_tombstone(group_id: &str, topic: &str, partition: i32) -> CoordinatorRecord {
    CoordinatorRecord {
        key: RecordKey::Offset {
            group: group_id.to_owned(),
            topic: topic.to_owned(),
            partition,
        }
        .encode(),
        value: None,
    }
}

/// Tombstones for a group's protocol state (classic metadata or every KIP-848 record).
fn state_tombstones(group_id: &str, group: &Group) -> Vec<CoordinatorRecord> {
    match &group.kind {
        GroupKind::Classic(_) => vec![CoordinatorRecord {
            key: RecordKey::GroupMetadata {
                group: group_id.to_owned(),
            }
            .encode(),
            value: None,
        }],
        GroupKind::Consumer(consumer) => consumer.tombstones(),
    }
}

/// Tombstones for everything a group has persisted.
fn group_tombstones(group_id: &str, group: &Group) -> Vec<CoordinatorRecord> {
    let mut records: Vec<CoordinatorRecord> = group
        .offsets
        .iter()
        .map(|(topic, partition, _)| offset_tombstone(group_id, topic, partition))
        .collect();
    records.extend(state_tombstones(group_id, group));
    records
}
