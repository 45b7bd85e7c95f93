//! `GroupCoordinator`: owns every group and its committed offsets, answers the group APIs, and
//! persists what must survive a restart in `__consumer_offsets`.
//!
//! One mutex guards all groups. Operations are short and synchronous (handlers run them on the
//! blocking pool); the only slow step, the fsync that makes an offset commit durable, happens
//! after the lock is released, and log order equals the order of in-memory changes because
//! appends happen under the lock. Parked JoinGroup/SyncGroup requests are oneshot receivers the
//! handlers await outside.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use bytes::Bytes;
use kafka_protocol::error::ResponseError;
use parking_lot::Mutex;
use tokio::sync::{Notify, oneshot};

use super::classic::{ClassicGroup, ClassicGroupConfig, ClassicGroupState, JoinRequest};
use super::classic::{JoinResult, SyncResult};
use super::offsets::OffsetStore;
use super::offsets_topic::OffsetsTopic;
use super::record::{CoordinatorRecord, GroupMetadataValue, OffsetCommitValue, RecordKey};
use crate::clock::Clock;
use crate::config::BrokerConfig;
use crate::metadata::MetadataCache;

/// The protocol state of a group.
#[derive(Debug)]
pub enum GroupKind {
    /// The classic protocol (also groups that only have offsets).
    Classic(ClassicGroup),
}

/// One group: its protocol state and its offsets.
#[derive(Debug)]
pub struct Group {
    /// Protocol state.
    pub kind: GroupKind,
    /// Committed offsets.
    pub offsets: OffsetStore,
}

/// A listed group.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListedGroup {
    /// Group id.
    pub group_id: String,
    /// Protocol type (`consumer`, or empty for offset-only groups).
    pub protocol_type: String,
    /// State name.
    pub state: String,
    /// `classic` or `consumer`.
    pub group_type: String,
}

/// One partition of an OffsetCommit.
#[derive(Debug, Clone)]
pub struct OffsetCommit {
    /// Topic.
    pub topic: String,
    /// Partition.
    pub partition: i32,
    /// Offset.
    pub offset: i64,
    /// Leader epoch or -1.
    pub leader_epoch: i32,
    /// Metadata (null is stored as empty).
    pub metadata: Option<String>,
}

/// Who commits: the member and generation (classic) or member epoch (KIP-848).
#[derive(Debug, Clone)]
pub struct Committer {
    /// Member id (empty for admin/simple commits).
    pub member_id: String,
    /// Static instance id.
    pub group_instance_id: Option<String>,
    /// Generation (classic) or member epoch (consumer protocol); -1 for none.
    pub generation_or_epoch: i32,
    /// The request version (OffsetCommit v9 carries member epochs).
    pub api_version: i16,
}

/// The group coordinator.
#[derive(Debug)]
pub struct GroupCoordinator {
    config: Arc<BrokerConfig>,
    clock: Arc<dyn Clock>,
    metadata: Arc<MetadataCache>,
    topic: OffsetsTopic,
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
        topic: OffsetsTopic,
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
    pub fn offsets_topic(&self) -> &OffsetsTopic {
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

    // ---- Loading ---------------------------------------------------------------------------

    /// Replays `__consumer_offsets` into memory, then starts answering. Blocking.
    ///
    /// # Errors
    /// Storage errors while reading (the coordinator then stays unavailable).
    pub fn load(&self) -> Result<(), kairos_storage::Error> {
        let now_ms = self.clock.now_ms();
        let mut groups: HashMap<String, Group> = HashMap::new();
        let mut malformed = 0u64;
        self.topic.read_all(|key, value| {
            if replay(&mut groups, key, value, now_ms).is_err() {
                malformed += 1;
            }
        })?;
        groups.retain(|_, group| !is_forgettable(group));
        if malformed > 0 {
            tracing::warn!(malformed, "skipped malformed records in __consumer_offsets");
        }
        tracing::info!(groups = groups.len(), "group coordinator loaded");
        *self.groups.lock() = groups;
        self.loading.store(false, Ordering::Release);
        self.timer.notify_one();
        Ok(())
    }

    // ---- Persistence -----------------------------------------------------------------------

    /// Appends the group's metadata if the state machine marked it dirty. Not waited for: a lost
    /// group record costs a rebalance after a crash, never data.
    fn persist_if_dirty(&self, group_id: &str, group: &mut Group) {
        let GroupKind::Classic(classic) = &mut group.kind;
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
        if let Err(error) = self.topic.append(group_id, &[record]) {
            tracing::warn!(group = group_id, %error, "cannot persist group metadata");
        }
    }

    // ---- Classic protocol ------------------------------------------------------------------

    /// JoinGroup. The receiver yields the answer (maybe after a rebalance).
    pub fn join_group(
        &self,
        group_id: &str,
        request: JoinRequest,
    ) -> oneshot::Receiver<JoinResult> {
        let (sender, receiver) = oneshot::channel();
        if let Err(error) = self.check(group_id) {
            let _ = sender.send(JoinResult::error(code(error), &request.member_id));
            return receiver;
        }
        let now_ms = self.clock.now_ms();
        let config = self.classic_config();
        let mut groups = self.groups.lock();
        if !groups.contains_key(group_id) && !request.member_id.is_empty() {
            let _ = sender.send(JoinResult::error(
                code(ResponseError::UnknownMemberId),
                &request.member_id,
            ));
            return receiver;
        }
        let group = groups.entry(group_id.to_owned()).or_insert_with(|| Group {
            kind: GroupKind::Classic(ClassicGroup::new(group_id, now_ms)),
            offsets: OffsetStore::default(),
        });
        let GroupKind::Classic(classic) = &mut group.kind;
        classic.join(request, &config, now_ms, sender);
        self.persist_if_dirty(group_id, group);
        drop(groups);
        self.timer.notify_one();
        receiver
    }

    /// SyncGroup.
    #[allow(clippy::too_many_arguments)]
    pub fn sync_group(
        &self,
        group_id: &str,
        member_id: &str,
        group_instance_id: Option<&str>,
        generation_id: i32,
        protocol_type: Option<&str>,
        protocol_name: Option<&str>,
        assignments: Vec<(String, Bytes)>,
    ) -> oneshot::Receiver<SyncResult> {
        let (sender, receiver) = oneshot::channel();
        if let Err(error) = self.check(group_id) {
            let _ = sender.send(SyncResult::error(code(error)));
            return receiver;
        }
        let now_ms = self.clock.now_ms();
        let mut groups = self.groups.lock();
        let Some(group) = groups.get_mut(group_id) else {
            let _ = sender.send(SyncResult::error(code(ResponseError::UnknownMemberId)));
            return receiver;
        };
        let GroupKind::Classic(classic) = &mut group.kind;
        classic.sync(
            member_id,
            group_instance_id,
            generation_id,
            protocol_type,
            protocol_name,
            assignments,
            now_ms,
            sender,
        );
        self.persist_if_dirty(group_id, group);
        drop(groups);
        self.timer.notify_one();
        receiver
    }

    /// Heartbeat.
    ///
    /// # Errors
    /// The Kafka error for the member.
    pub fn heartbeat(
        &self,
        group_id: &str,
        member_id: &str,
        group_instance_id: Option<&str>,
        generation_id: i32,
    ) -> Result<(), ResponseError> {
        self.check(group_id)?;
        let now_ms = self.clock.now_ms();
        let mut groups = self.groups.lock();
        let group = groups
            .get_mut(group_id)
            .ok_or(ResponseError::UnknownMemberId)?;
        let GroupKind::Classic(classic) = &mut group.kind;
        classic.heartbeat(member_id, group_instance_id, generation_id, now_ms)
    }

    /// LeaveGroup for several members: per member `(member id, error code)`.
    ///
    /// # Errors
    /// Group-level errors.
    pub fn leave_group(
        &self,
        group_id: &str,
        members: &[(String, Option<String>)],
    ) -> Result<Vec<(String, i16)>, ResponseError> {
        self.check(group_id)?;
        let now_ms = self.clock.now_ms();
        let mut groups = self.groups.lock();
        let group = groups
            .get_mut(group_id)
            .ok_or(ResponseError::UnknownMemberId)?;
        let GroupKind::Classic(classic) = &mut group.kind;
        let results = members
            .iter()
            .map(|(member_id, instance_id)| {
                match classic.leave(member_id, instance_id.as_deref(), now_ms) {
                    Ok(id) => (id, 0),
                    Err(error) => (member_id.clone(), code(error)),
                }
            })
            .collect();
        self.persist_if_dirty(group_id, group);
        drop(groups);
        self.timer.notify_one();
        Ok(results)
    }

    // ---- Offsets ---------------------------------------------------------------------------

    /// OffsetCommit: validates the committer, appends the offsets, waits until they are
    /// durable, then applies them. Per partition: an error code.
    ///
    /// # Errors
    /// Group-level errors (they apply to every partition).
    pub fn commit_offsets(
        &self,
        group_id: &str,
        committer: &Committer,
        offsets: Vec<OffsetCommit>,
    ) -> Result<Vec<i16>, ResponseError> {
        self.check(group_id)?;
        let now_ms = self.clock.now_ms();
        let max_metadata = self.config.offset_metadata_max_bytes();
        let mut codes = Vec::with_capacity(offsets.len());
        let mut accepted = Vec::new();
        let mut records = Vec::new();
        for commit in offsets {
            let error = self
                .validate_partition(&commit.topic, commit.partition)
                .err()
                .or_else(|| {
                    (commit.metadata.as_deref().map_or(0, str::len) > max_metadata)
                        .then_some(ResponseError::OffsetMetadataTooLarge)
                });
            codes.push(error.map_or(0, code));
            if error.is_some() {
                continue;
            }
            let value = OffsetCommitValue {
                offset: commit.offset,
                leader_epoch: commit.leader_epoch,
                metadata: commit.metadata.unwrap_or_default(),
                commit_timestamp: now_ms,
                expire_timestamp: -1,
            };
            records.push(CoordinatorRecord {
                key: RecordKey::Offset {
                    group: group_id.to_owned(),
                    topic: commit.topic.clone(),
                    partition: commit.partition,
                }
                .encode(),
                value: Some(value.encode()),
            });
            accepted.push((commit.topic, commit.partition, value));
        }
        let write = {
            let mut groups = self.groups.lock();
            if let Some(group) = groups.get(group_id) {
                validate_commit(group, committer)?;
            } else if committer.generation_or_epoch >= 0 || !committer.member_id.is_empty() {
                return Err(if committer.api_version >= 9 {
                    ResponseError::GroupIdNotFound
                } else {
                    ResponseError::IllegalGeneration
                });
            }
            let write = self.topic.append(group_id, &records).map_err(|e| e.code)?;
            let group = groups.entry(group_id.to_owned()).or_insert_with(|| Group {
                kind: GroupKind::Classic(ClassicGroup::new(group_id, now_ms)),
                offsets: OffsetStore::default(),
            });
            for (topic, partition, value) in accepted {
                group.offsets.put(&topic, partition, value);
            }
            write
        };
        self.topic.make_durable(write).map_err(|e| e.code)?;
        Ok(codes)
    }

    fn validate_partition(&self, topic: &str, partition: i32) -> Result<(), ResponseError> {
        match self.metadata.topic(topic) {
            Some(t) if (0..t.partitions).contains(&partition) => Ok(()),
            _ => Err(ResponseError::UnknownTopicOrPartition),
        }
    }

    /// OffsetFetch for one group: `topics` `None` means every committed offset. Each entry is
    /// `(topic, partition, committed)`; an unknown group answers "no offset" for every
    /// requested partition, as Kafka does.
    ///
    /// # Errors
    /// Group-level errors.
    pub fn fetch_offsets(
        &self,
        group_id: &str,
        member_id: &str,
        member_epoch: i32,
        topics: Option<Vec<(String, Vec<i32>)>>,
    ) -> Result<Vec<(String, i32, Option<OffsetCommitValue>)>, ResponseError> {
        self.check(group_id)?;
        // Member epochs only exist in consumer-protocol groups; classic groups ignore them.
        let _ = (member_id, member_epoch);
        let groups = self.groups.lock();
        let group = groups.get(group_id);
        Ok(match topics {
            Some(topics) => topics
                .into_iter()
                .flat_map(|(topic, partitions)| {
                    partitions.into_iter().map(move |p| (topic.clone(), p))
                })
                .map(|(topic, partition)| {
                    let value = group
                        .and_then(|g| g.offsets.get(&topic, partition))
                        .cloned();
                    (topic, partition, value)
                })
                .collect(),
            None => group.map_or_else(Vec::new, |g| {
                g.offsets
                    .iter()
                    .map(|(t, p, v)| (t.to_owned(), p, Some(v.clone())))
                    .collect()
            }),
        })
    }

    /// OffsetDelete: per partition an error code.
    ///
    /// # Errors
    /// GROUP_ID_NOT_FOUND, NON_EMPTY_GROUP-like group-level errors.
    pub fn delete_offsets(
        &self,
        group_id: &str,
        partitions: &[(String, i32)],
    ) -> Result<Vec<i16>, ResponseError> {
        self.check(group_id)?;
        let write = {
            let mut groups = self.groups.lock();
            let group = groups
                .get_mut(group_id)
                .ok_or(ResponseError::GroupIdNotFound)?;
            let GroupKind::Classic(classic) = &group.kind;
            if classic.state() == ClassicGroupState::Dead {
                return Err(ResponseError::GroupIdNotFound);
            }
            let mut codes = Vec::with_capacity(partitions.len());
            let mut records = Vec::new();
            for (topic, partition) in partitions {
                if !classic.is_empty() && classic.is_subscribed_to(topic) {
                    codes.push(code(ResponseError::GroupSubscribedToTopic));
                    continue;
                }
                codes.push(0);
                if group.offsets.get(topic, *partition).is_some() {
                    records.push(offset_tombstone(group_id, topic, *partition));
                }
            }
            let write = self.topic.append(group_id, &records).map_err(|e| e.code)?;
            for (topic, partition) in partitions {
                if !classic.is_subscribed_to(topic) || classic.is_empty() {
                    let _ = group.offsets.remove(topic, *partition);
                }
            }
            (write, codes)
        };
        self.topic.make_durable(write.0).map_err(|e| e.code)?;
        Ok(write.1)
    }

    // ---- Admin -----------------------------------------------------------------------------

    /// ListGroups with Kafka's filters (case-insensitive states; types `classic`/`consumer`).
    ///
    /// # Errors
    /// COORDINATOR_LOAD_IN_PROGRESS.
    pub fn list_groups(
        &self,
        states: &[String],
        types: &[String],
    ) -> Result<Vec<ListedGroup>, ResponseError> {
        if self.is_loading() {
            return Err(ResponseError::CoordinatorLoadInProgress);
        }
        let groups = self.groups.lock();
        let mut listed: Vec<ListedGroup> = groups
            .iter()
            .map(|(id, group)| listed_group(id, group))
            .filter(|g| {
                states.is_empty() || states.iter().any(|s| s.eq_ignore_ascii_case(&g.state))
            })
            .filter(|g| {
                types.is_empty() || types.iter().any(|t| t.eq_ignore_ascii_case(&g.group_type))
            })
            .collect();
        listed.sort_by(|a, b| a.group_id.cmp(&b.group_id));
        Ok(listed)
    }

    /// Runs `describe` on a group under the lock (DescribeGroups builds its answer there).
    ///
    /// # Errors
    /// INVALID_GROUP_ID, COORDINATOR_LOAD_IN_PROGRESS.
    pub fn with_group<T>(
        &self,
        group_id: &str,
        describe: impl FnOnce(Option<&Group>) -> T,
    ) -> Result<T, ResponseError> {
        self.check(group_id)?;
        let groups = self.groups.lock();
        Ok(describe(groups.get(group_id)))
    }

    /// DeleteGroups: per group an error code.
    pub fn delete_groups(&self, group_ids: &[String]) -> Vec<i16> {
        let now_ms = self.clock.now_ms();
        let mut codes = Vec::with_capacity(group_ids.len());
        let mut writes = Vec::new();
        {
            let mut groups = self.groups.lock();
            for group_id in group_ids {
                let result = self.check(group_id).and_then(|()| {
                    let group = groups
                        .get_mut(group_id)
                        .ok_or(ResponseError::GroupIdNotFound)?;
                    let GroupKind::Classic(classic) = &mut group.kind;
                    match classic.state() {
                        ClassicGroupState::Dead => return Err(ResponseError::GroupIdNotFound),
                        ClassicGroupState::Empty => {}
                        _ => return Err(ResponseError::NonEmptyGroup),
                    }
                    let records = group_tombstones(group_id, group);
                    let write = self.topic.append(group_id, &records).map_err(|e| e.code)?;
                    let GroupKind::Classic(classic) = &mut group.kind;
                    classic.mark_dead(now_ms);
                    Ok(write)
                });
                match result {
                    Ok(write) => {
                        let _ = groups.remove(group_id);
                        writes.push((codes.len(), write));
                        codes.push(0);
                    }
                    Err(error) => codes.push(code(error)),
                }
            }
        }
        for (index, write) in writes {
            if let Err(error) = self.topic.make_durable(write) {
                codes[index] = error.code();
            }
        }
        codes
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
            if let Err(error) = self.topic.append(group_id, &records) {
                tracing::warn!(group = %group_id, %error, "cannot delete offsets of a deleted topic");
            }
            for partition in partitions {
                let _ = group.offsets.remove(topic, partition);
            }
        }
    }

    // ---- Time ------------------------------------------------------------------------------

    /// Runs every group's expired deadlines; returns the next deadline.
    pub fn tick(&self) -> Option<i64> {
        if self.is_loading() {
            return None;
        }
        let now_ms = self.clock.now_ms();
        let mut groups = self.groups.lock();
        let mut next: Option<i64> = None;
        let ids: Vec<String> = groups.keys().cloned().collect();
        for group_id in ids {
            let Some(group) = groups.get_mut(&group_id) else {
                continue;
            };
            let GroupKind::Classic(classic) = &mut group.kind;
            if classic.next_deadline().is_some_and(|d| d <= now_ms) {
                classic.tick(now_ms);
                self.persist_if_dirty(&group_id, group);
            }
            let GroupKind::Classic(classic) = &group.kind;
            if let Some(deadline) = classic.next_deadline() {
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
            let GroupKind::Classic(classic) = &group.kind;
            if classic.state() != ClassicGroupState::Empty {
                continue;
            }
            // A consumer group that emptied counts from then; offset-only groups per commit.
            let base = classic
                .protocol_type()
                .is_some()
                .then_some(classic.state_timestamp_ms());
            let expired = group.offsets.expired(now_ms, retention_ms, base);
            let mut records: Vec<CoordinatorRecord> = expired
                .iter()
                .map(|(topic, partition)| offset_tombstone(&group_id, topic, *partition))
                .collect();
            let forget = expired.len() == group.offsets.iter().count();
            if forget {
                records.push(CoordinatorRecord {
                    key: RecordKey::GroupMetadata {
                        group: group_id.clone(),
                    }
                    .encode(),
                    value: None,
                });
            }
            if let Err(error) = self.topic.append(&group_id, &records) {
                tracing::warn!(group = %group_id, %error, "cannot expire offsets");
                continue;
            }
            for (topic, partition) in &expired {
                let _ = group.offsets.remove(topic, *partition);
            }
            if !expired.is_empty() {
                tracing::info!(group = %group_id, expired = expired.len(), "expired offsets");
            }
            if forget {
                let _ = groups.remove(&group_id);
            }
        }
    }
}

fn validate_commit(group: &Group, committer: &Committer) -> Result<(), ResponseError> {
    let GroupKind::Classic(classic) = &group.kind;
    classic.validate_offset_commit(
        &committer.member_id,
        committer.group_instance_id.as_deref(),
        committer.generation_or_epoch,
    )
}

fn listed_group(group_id: &str, group: &Group) -> ListedGroup {
    let GroupKind::Classic(classic) = &group.kind;
    ListedGroup {
        group_id: group_id.to_owned(),
        protocol_type: classic.protocol_type().unwrap_or_default().to_owned(),
        state: classic.state().as_str().to_owned(),
        group_type: "classic".to_owned(),
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

/// Tombstones for everything a group has persisted.
fn group_tombstones(group_id: &str, group: &Group) -> Vec<CoordinatorRecord> {
    let mut records: Vec<CoordinatorRecord> = group
        .offsets
        .iter()
        .map(|(topic, partition, _)| offset_tombstone(group_id, topic, partition))
        .collect();
    records.push(CoordinatorRecord {
        key: RecordKey::GroupMetadata {
            group: group_id.to_owned(),
        }
        .encode(),
        value: None,
    });
    records
}

/// A group with no members, no offsets and no protocol state: nothing to keep.
fn is_forgettable(group: &Group) -> bool {
    let GroupKind::Classic(classic) = &group.kind;
    classic.is_empty() && group.offsets.is_empty() && classic.generation_id() == 0
}

/// Applies one record read back from the log.
fn replay(
    groups: &mut HashMap<String, Group>,
    key: &[u8],
    value: Option<&[u8]>,
    now_ms: i64,
) -> Result<(), super::codec::CodecError> {
    let key = RecordKey::decode(key)?;
    let group_id = key.group().to_owned();
    let entry = || Group {
        kind: GroupKind::Classic(ClassicGroup::new(&group_id, now_ms)),
        offsets: OffsetStore::default(),
    };
    match key {
        RecordKey::Offset {
            group,
            topic,
            partition,
        } => match value {
            Some(value) => {
                let value = OffsetCommitValue::decode(value)?;
                groups
                    .entry(group)
                    .or_insert_with(entry)
                    .offsets
                    .put(&topic, partition, value);
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
                groups.entry(group).or_insert_with(entry).kind = GroupKind::Classic(loaded);
            }
            None => {
                if let Some(existing) = groups.get_mut(&group) {
                    existing.kind = GroupKind::Classic(ClassicGroup::new(&group, now_ms));
                    if existing.offsets.is_empty() {
                        let _ = groups.remove(&group);
                    }
                }
            }
        },
        RecordKey::ConsumerGroup { .. } => {}
    }
    Ok(())
}
