//! KIP-848 consumer groups ("the next generation consumer rebalance protocol"): Kafka's
//! `ConsumerGroup` state machine, pure and synchronous.
//!
//! The server owns the assignment. Each ConsumerGroupHeartbeat may change the group in three
//! steps, as in Kafka's `GroupMetadataManager.consumerGroupHeartbeat`:
//!
//! 1. The member's subscription is updated; a changed subscription (or changed metadata of the
//!    subscribed topics) bumps the **group epoch**.
//! 2. If the group epoch is ahead of the **target assignment epoch**, the server-side assignor
//!    computes a new target assignment.
//! 3. The member **reconciles** towards its target ([`reconcile`]): it revokes first, then
//!    receives partitions that no other member still owns, and takes the target epoch.
//!
//! Every change is also returned as `__consumer_offsets` records ([`record`]), in Kafka's order,
//! so that replaying any prefix of them rebuilds a consistent group. The caller (the group
//! coordinator) appends them before answering; timers are deadlines the caller polls through
//! [`ConsumerGroup::next_deadline`] and [`ConsumerGroup::expire`].
//!
//! Files: `heartbeat.rs` (the request path), `expire.rs` (timeouts, metadata changes),
//! `replay.rs` (loading and tombstones), `describe.rs` (describe and offset validation).

pub mod assignor;
mod describe;
mod expire;
mod heartbeat;
pub mod member;
pub mod reconcile;
pub mod record;
mod replay;
pub mod subscription;

#[cfg(test)]
mod tests;

use std::collections::{BTreeMap, BTreeSet, HashMap};

use regex::Regex;
use uuid::Uuid;

use crate::coordinator::group::record::CoordinatorRecord;
use assignor::AssignmentMember;
use member::{Assignment, ConsumerGroupMember, MemberState};
use record::{ResolvedRegex, SubscribedTopic};

pub use heartbeat::validate_heartbeat_request;

/// Member epoch of a member leaving the group.
pub const LEAVE_GROUP_MEMBER_EPOCH: i32 = -1;
/// Member epoch of a static member leaving temporarily (it keeps its assignment until its
/// session times out).
pub const LEAVE_GROUP_STATIC_MEMBER_EPOCH: i32 = -2;

/// The group coordinator's settings for consumer groups (Kafka's `group.consumer.*`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConsumerGroupConfig {
    /// `group.consumer.session.timeout.ms`: a member without a heartbeat for this long is
    /// fenced.
    pub session_timeout_ms: i32,
    /// `group.consumer.heartbeat.interval.ms`, sent to members.
    pub heartbeat_interval_ms: i32,
    /// `group.consumer.assignors`: the first is the default; supported: "uniform", "range".
    pub assignors: Vec<String>,
    /// `group.consumer.max.size`.
    pub max_size: usize,
}

impl Default for ConsumerGroupConfig {
    /// Kafka's defaults.
    fn default() -> ConsumerGroupConfig {
        ConsumerGroupConfig {
            session_timeout_ms: 45_000,
            heartbeat_interval_ms: 5_000,
            assignors: vec![assignor::UNIFORM.to_owned(), assignor::RANGE.to_owned()],
            max_size: usize::MAX,
        }
    }
}

impl ConsumerGroupConfig {
    /// Whether `name` is configured (and implemented).
    #[must_use]
    pub fn assignor_enabled(&self, name: &str) -> bool {
        assignor::is_supported(name) && self.assignors.iter().any(|a| a == name)
    }

    fn default_assignor(&self) -> &str {
        self.assignors
            .iter()
            .map(String::as_str)
            .find(|name| assignor::is_supported(name))
            .unwrap_or(assignor::UNIFORM)
    }
}

/// A consumer group's state, by Kafka's names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConsumerGroupState {
    /// No members.
    Empty,
    /// The group epoch is ahead of the target assignment.
    Assigning,
    /// Some member has not converged to the target assignment.
    Reconciling,
    /// Every member owns its target assignment.
    Stable,
    /// Deleted (its metadata tombstone was replayed).
    Dead,
}

impl ConsumerGroupState {
    /// Kafka's name, as ListGroups and ConsumerGroupDescribe answer it.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            ConsumerGroupState::Empty => "Empty",
            ConsumerGroupState::Assigning => "Assigning",
            ConsumerGroupState::Reconciling => "Reconciling",
            ConsumerGroupState::Stable => "Stable",
            ConsumerGroupState::Dead => "Dead",
        }
    }
}

/// Deadlines of one member. In memory only: loading re-arms them (`finish_loading`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct MemberTimers {
    /// When the member is fenced unless it heartbeats.
    session_deadline_ms: i64,
    /// When the member is fenced if it is still revoking at `epoch` (Kafka's rebalance
    /// timeout, which only fires if the member did not move on).
    rebalance: Option<(i64, i32)>,
}

/// A KIP-848 consumer group.
#[derive(Debug, Clone)]
pub struct ConsumerGroup {
    group_id: String,
    /// Bumped when the members' subscriptions or the subscribed topics change.
    group_epoch: i32,
    /// Members by member id.
    members: BTreeMap<String, ConsumerGroupMember>,
    /// Static members: instance id → member id.
    static_members: BTreeMap<String, String>,
    /// The subscribed topics as of the last group epoch bump; a difference with the broker's
    /// topics is a reason to bump again.
    subscription_metadata: BTreeMap<String, SubscribedTopic>,
    /// Regexes some member subscribes to, with the topics they matched.
    resolved_regexes: BTreeMap<String, ResolvedRegex>,
    /// The group epoch the target assignment was computed for.
    target_assignment_epoch: i32,
    /// Target assignment by member id (members with an empty one are absent).
    target_assignment: BTreeMap<String, Assignment>,
    /// The epoch of the member that owns (or is still revoking) each partition. A partition
    /// absent here is free; reconciliation only hands out free partitions.
    partition_epochs: HashMap<(Uuid, i32), i32>,
    /// Member deadlines.
    timers: BTreeMap<String, MemberTimers>,
    /// Compiled regexes, a cache (compiling is the expensive part of resolving).
    compiled: HashMap<String, Regex>,
    /// Set when the group's metadata tombstone is replayed.
    dead: bool,
}

impl ConsumerGroup {
    /// An empty group at epoch 0.
    #[must_use]
    pub fn new(group_id: &str) -> ConsumerGroup {
        ConsumerGroup {
            group_id: group_id.to_owned(),
            group_epoch: 0,
            members: BTreeMap::new(),
            static_members: BTreeMap::new(),
            subscription_metadata: BTreeMap::new(),
            resolved_regexes: BTreeMap::new(),
            target_assignment_epoch: 0,
            target_assignment: BTreeMap::new(),
            partition_epochs: HashMap::new(),
            timers: BTreeMap::new(),
            compiled: HashMap::new(),
            dead: false,
        }
    }

    /// The group id.
    #[must_use]
    pub fn group_id(&self) -> &str {
        &self.group_id
    }

    /// The group epoch.
    #[must_use]
    pub fn group_epoch(&self) -> i32 {
        self.group_epoch
    }

    /// The epoch of the current target assignment.
    #[must_use]
    pub fn assignment_epoch(&self) -> i32 {
        self.target_assignment_epoch
    }

    /// Whether the group has no members.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.members.is_empty()
    }

    /// Number of members.
    #[must_use]
    pub fn member_count(&self) -> usize {
        self.members.len()
    }

    /// A member by id.
    #[must_use]
    pub fn member(&self, member_id: &str) -> Option<&ConsumerGroupMember> {
        self.members.get(member_id)
    }

    /// The members, by member id.
    pub fn members(&self) -> impl Iterator<Item = &ConsumerGroupMember> {
        self.members.values()
    }

    /// A member's target assignment.
    #[must_use]
    pub fn target_assignment(&self, member_id: &str) -> Assignment {
        self.target_assignment
            .get(member_id)
            .cloned()
            .unwrap_or_default()
    }

    /// The group's state.
    #[must_use]
    pub fn state(&self) -> ConsumerGroupState {
        if self.dead {
            ConsumerGroupState::Dead
        } else if self.members.is_empty() {
            ConsumerGroupState::Empty
        } else if self.group_epoch > self.target_assignment_epoch {
            ConsumerGroupState::Assigning
        } else if self
            .members
            .values()
            .any(|m| !m.is_reconciled_to(self.target_assignment_epoch))
        {
            ConsumerGroupState::Reconciling
        } else {
            ConsumerGroupState::Stable
        }
    }

    /// The epoch of the member owning a partition, -1 if free.
    fn partition_epoch(&self, topic_id: &Uuid, partition: i32) -> i32 {
        self.partition_epochs
            .get(&(*topic_id, partition))
            .copied()
            .unwrap_or(-1)
    }

    /// Inserts or replaces a member, keeping the static-member index and the partition owner
    /// epochs in step with it.
    fn set_member(&mut self, member: ConsumerGroupMember) {
        if let Some(old) = self.members.remove(&member.member_id) {
            self.forget_member_indexes(&old);
        }
        for (topic_id, partitions) in member
            .assigned_partitions
            .iter()
            .chain(&member.partitions_pending_revocation)
        {
            for &partition in partitions {
                let _ = self
                    .partition_epochs
                    .insert((*topic_id, partition), member.member_epoch);
            }
        }
        if let Some(instance_id) = &member.instance_id {
            let _ = self
                .static_members
                .insert(instance_id.clone(), member.member_id.clone());
        }
        let _ = self.members.insert(member.member_id.clone(), member);
    }

    fn forget_member_indexes(&mut self, member: &ConsumerGroupMember) {
        for (topic_id, partitions) in member
            .assigned_partitions
            .iter()
            .chain(&member.partitions_pending_revocation)
        {
            for &partition in partitions {
                let _ = self.partition_epochs.remove(&(*topic_id, partition));
            }
        }
        if let Some(instance_id) = &member.instance_id
            && self.static_members.get(instance_id) == Some(&member.member_id)
        {
            let _ = self.static_members.remove(instance_id);
        }
    }

    /// Removes a member and everything keyed by it, writing Kafka's tombstones (current
    /// assignment, target assignment, then metadata: the reverse of creation).
    fn remove_member(&mut self, member_id: &str, records: &mut Vec<CoordinatorRecord>) {
        records.push(record::tombstone(
            record::CURRENT_MEMBER_ASSIGNMENT,
            &self.group_id,
            Some(member_id),
        ));
        records.push(record::tombstone(
            record::TARGET_ASSIGNMENT_MEMBER,
            &self.group_id,
            Some(member_id),
        ));
        records.push(record::tombstone(
            record::MEMBER_METADATA,
            &self.group_id,
            Some(member_id),
        ));
        if let Some(old) = self.members.remove(member_id) {
            self.forget_member_indexes(&old);
        }
        let _ = self.target_assignment.remove(member_id);
        let _ = self.timers.remove(member_id);
    }

    /// Whether any member subscribes to `topic` (OffsetDelete refuses its offsets then).
    #[must_use]
    pub fn is_subscribed_to(&self, topic: &str) -> bool {
        self.subscribed_topic_names().contains(topic)
    }

    /// All topic names the members subscribe to, by name or through a resolved regex.
    fn subscribed_topic_names(&self) -> BTreeSet<String> {
        let mut names = BTreeSet::new();
        for member in self.members.values() {
            names.extend(member.subscribed_topic_names.iter().cloned());
            if let Some(resolved) = member.regex().and_then(|r| self.resolved_regexes.get(r)) {
                names.extend(resolved.topics.iter().cloned());
            }
        }
        names
    }

    /// The assignor the most members ask for (ties go to the earlier one in the config), else
    /// the configured default.
    fn preferred_assignor<'c>(&self, config: &'c ConsumerGroupConfig) -> &'c str {
        let mut best: Option<(&'c str, usize)> = None;
        for name in &config.assignors {
            if !assignor::is_supported(name) {
                continue;
            }
            let count = self
                .members
                .values()
                .filter(|m| m.server_assignor.as_deref() == Some(name.as_str()))
                .count();
            if count > 0 && best.is_none_or(|(_, c)| count > c) {
                best = Some((name.as_str(), count));
            }
        }
        best.map_or_else(|| config.default_assignor(), |(name, _)| name)
    }

    /// Computes the target assignment for the current group epoch; writes the members whose
    /// target changed, then the assignment epoch (so a prefix never claims an epoch whose
    /// member records are missing).
    fn compute_target_assignment(
        &mut self,
        config: &ConsumerGroupConfig,
        records: &mut Vec<CoordinatorRecord>,
    ) {
        let topics: BTreeMap<Uuid, i32> = self
            .subscription_metadata
            .values()
            .map(|t| (t.topic_id, t.partitions))
            .collect();
        let ids_by_name: HashMap<&str, Uuid> = self
            .subscription_metadata
            .iter()
            .map(|(name, t)| (name.as_str(), t.topic_id))
            .collect();
        let specs: Vec<AssignmentMember<'_>> = self
            .members
            .values()
            .map(|m| {
                let regex_topics = m
                    .regex()
                    .and_then(|r| self.resolved_regexes.get(r))
                    .map(|r| &r.topics);
                let subscribed_topic_ids = m
                    .subscribed_topic_names
                    .iter()
                    .chain(regex_topics.into_iter().flatten())
                    .filter_map(|name| ids_by_name.get(name.as_str()).copied())
                    .collect();
                AssignmentMember {
                    member_id: &m.member_id,
                    instance_id: m.instance_id.as_deref(),
                    subscribed_topic_ids,
                    current: self
                        .target_assignment
                        .get(&m.member_id)
                        .cloned()
                        .unwrap_or_default(),
                }
            })
            .collect();
        let assignment = assignor::assign(self.preferred_assignor(config), &specs, &topics);
        drop(specs);
        for (member_id, target) in assignment {
            let old = self.target_assignment.get(&member_id);
            if old.map_or(target.is_empty(), |old| *old == target) {
                continue;
            }
            records.push(record::target_assignment_record(
                &self.group_id,
                &member_id,
                &target,
            ));
            if target.is_empty() {
                let _ = self.target_assignment.remove(&member_id);
            } else {
                let _ = self.target_assignment.insert(member_id, target);
            }
        }
        self.target_assignment_epoch = self.group_epoch;
        records.push(record::target_assignment_epoch_record(
            &self.group_id,
            self.group_epoch,
        ));
    }

    /// Re-resolves every regex a member uses against `topics` and drops the ones no member
    /// uses. Returns whether a used regex now matches different topics (a subscription
    /// change).
    fn refresh_regexes(
        &mut self,
        topics: &[std::sync::Arc<crate::metadata::TopicMetadata>],
        now_ms: i64,
        records: &mut Vec<CoordinatorRecord>,
    ) -> bool {
        let in_use: BTreeSet<String> = self
            .members
            .values()
            .filter_map(|m| m.regex().map(str::to_owned))
            .collect();
        let unused: Vec<String> = self
            .resolved_regexes
            .keys()
            .filter(|r| !in_use.contains(*r))
            .cloned()
            .collect();
        for regex in unused {
            let _ = self.resolved_regexes.remove(&regex);
            let _ = self.compiled.remove(&regex);
            records.push(record::tombstone(
                record::REGULAR_EXPRESSION,
                &self.group_id,
                Some(&regex),
            ));
        }
        let mut changed = false;
        for regex in in_use {
            let Some(compiled) = self.compiled_regex(&regex) else {
                // Validated when the member subscribed; a regex loaded from the log that this
                // engine rejects matches nothing.
                continue;
            };
            let topics = subscription::resolve(compiled, topics);
            if self
                .resolved_regexes
                .get(&regex)
                .is_some_and(|r| r.topics == topics)
            {
                continue;
            }
            let resolved = ResolvedRegex {
                topics,
                version: i64::from(self.group_epoch),
                timestamp_ms: now_ms,
            };
            records.push(record::regex_record(&self.group_id, &regex, &resolved));
            let _ = self.resolved_regexes.insert(regex, resolved);
            changed = true;
        }
        changed
    }

    fn compiled_regex(&mut self, regex: &str) -> Option<&Regex> {
        if !self.compiled.contains_key(regex) {
            let compiled = subscription::compile(regex).ok()?;
            let _ = self.compiled.insert(regex.to_owned(), compiled);
        }
        self.compiled.get(regex)
    }

    /// Recomputes the subscription metadata; a change is written and asks for an epoch bump.
    fn refresh_subscription_metadata(
        &mut self,
        topics: &[std::sync::Arc<crate::metadata::TopicMetadata>],
        records: &mut Vec<CoordinatorRecord>,
    ) -> bool {
        let metadata = subscription::subscription_metadata(&self.subscribed_topic_names(), topics);
        if metadata == self.subscription_metadata {
            return false;
        }
        records.push(record::partition_metadata_record(&self.group_id, &metadata));
        self.subscription_metadata = metadata;
        true
    }

    fn bump_group_epoch(&mut self, records: &mut Vec<CoordinatorRecord>) {
        self.group_epoch += 1;
        records.push(record::group_epoch_record(&self.group_id, self.group_epoch));
    }
}
