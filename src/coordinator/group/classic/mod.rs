//! The classic group protocol (JoinGroup, SyncGroup, Heartbeat, LeaveGroup) as a synchronous
//! state machine, after Kafka's `ClassicGroup`:
//!
//! ```text
//!            join              all joined / timeout         leader's SyncGroup
//!   Empty ──────────▶ PreparingRebalance ──────────▶ CompletingRebalance ──────────▶ Stable
//!     ▲                 ▲        │ no member left            │                        │
//!     └─────────────────┼────────┘                           │ join/leave/expiry      │
//!                       └────────────────────────────────────┴────────────────────────┘
//! ```
//!
//! Time is an input (`now_ms`): the coordinator's timer calls [`ClassicGroup::tick`] at
//! [`ClassicGroup::next_deadline`]. Parked JoinGroup/SyncGroup requests are oneshot senders held
//! by their members and answered when the state machine gets there. State that must survive a
//! restart is marked dirty; the coordinator persists it as a `GroupMetadataValue`.
//!
//! `join.rs` holds JoinGroup and the join phase (the initial delay, the protocol vote, static
//! members); `persist.rs` the persisted form; this file SyncGroup, Heartbeat, LeaveGroup and
//! the deadlines.

mod join;
pub mod member;
mod persist;
#[cfg(test)]
mod tests;

use std::collections::{BTreeMap, HashMap, HashSet};

use bytes::Bytes;
use kafka_protocol::error::ResponseError;

use member::SyncResponder;
pub use member::{ClassicMember, JoinMember, JoinRequest, JoinResult, SyncResult};

/// Kafka's classic group states.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClassicGroupState {
    /// No members (offsets may remain).
    Empty,
    /// Waiting for members to (re)join.
    PreparingRebalance,
    /// Joined; waiting for the leader's assignment.
    CompletingRebalance,
    /// Assigned.
    Stable,
    /// Deleted.
    Dead,
}

impl ClassicGroupState {
    /// Kafka's name, as ListGroups and DescribeGroups show it.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            ClassicGroupState::Empty => "Empty",
            ClassicGroupState::PreparingRebalance => "PreparingRebalance",
            ClassicGroupState::CompletingRebalance => "CompletingRebalance",
            ClassicGroupState::Stable => "Stable",
            ClassicGroupState::Dead => "Dead",
        }
    }
}

/// Limits from the broker config.
#[derive(Debug, Clone, Copy)]
pub struct ClassicGroupConfig {
    /// `group.min.session.timeout.ms`.
    pub min_session_timeout_ms: i32,
    /// `group.max.session.timeout.ms`.
    pub max_session_timeout_ms: i32,
    /// `group.initial.rebalance.delay.ms`.
    pub initial_rebalance_delay_ms: i32,
    /// `group.max.size`.
    pub max_size: usize,
}

/// A classic group.
#[derive(Debug)]
pub struct ClassicGroup {
    group_id: String,
    state: ClassicGroupState,
    state_timestamp_ms: i64,
    protocol_type: Option<String>,
    protocol_name: Option<String>,
    generation_id: i32,
    leader: Option<String>,
    members: BTreeMap<String, ClassicMember>,
    // instance id -> member id of static members.
    static_members: HashMap<String, String>,
    // v4+ handshake: ids handed out with MEMBER_ID_REQUIRED, and when they expire.
    pending_members: HashMap<String, i64>,
    // Members of this generation that have not sent SyncGroup yet.
    pending_sync: HashSet<String>,
    sync_deadline_ms: Option<i64>,
    join_deadline_ms: Option<i64>,
    // The initial delay (group was empty) extends while members keep arriving, up to this.
    initial_join_limit_ms: Option<i64>,
    initial_delay_ms: i64,
    new_member_added: bool,
    dirty: bool,
}

fn code(error: ResponseError) -> i16 {
    error.code()
}

impl ClassicGroup {
    /// An empty group.
    #[must_use]
    pub fn new(group_id: &str, now_ms: i64) -> ClassicGroup {
        ClassicGroup {
            group_id: group_id.to_owned(),
            state: ClassicGroupState::Empty,
            state_timestamp_ms: now_ms,
            protocol_type: None,
            protocol_name: None,
            generation_id: 0,
            leader: None,
            members: BTreeMap::new(),
            static_members: HashMap::new(),
            pending_members: HashMap::new(),
            pending_sync: HashSet::new(),
            sync_deadline_ms: None,
            join_deadline_ms: None,
            initial_join_limit_ms: None,
            initial_delay_ms: 0,
            new_member_added: false,
            dirty: false,
        }
    }

    /// The group id.
    #[must_use]
    pub fn group_id(&self) -> &str {
        &self.group_id
    }

    /// The current state.
    #[must_use]
    pub fn state(&self) -> ClassicGroupState {
        self.state
    }

    /// When the state last changed (for an empty group: since when it is empty).
    #[must_use]
    pub fn state_timestamp_ms(&self) -> i64 {
        self.state_timestamp_ms
    }

    /// The protocol type, once a member joined.
    #[must_use]
    pub fn protocol_type(&self) -> Option<&str> {
        self.protocol_type.as_deref()
    }

    /// The chosen protocol of the current generation.
    #[must_use]
    pub fn protocol_name(&self) -> Option<&str> {
        self.protocol_name.as_deref()
    }

    /// The current generation.
    #[must_use]
    pub fn generation_id(&self) -> i32 {
        self.generation_id
    }

    /// The members, by id.
    pub fn members(&self) -> impl Iterator<Item = &ClassicMember> {
        self.members.values()
    }

    /// Whether the group has no members.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.members.is_empty()
    }

    /// Whether any member subscribes to `topic` (for OffsetDelete), judged from the consumer
    /// protocol's subscription metadata.
    #[must_use]
    pub fn is_subscribed_to(&self, topic: &str) -> bool {
        let Some(protocol) = self.protocol_name.as_deref() else {
            return false;
        };
        if self.protocol_type.as_deref() != Some("consumer") {
            return false;
        }
        self.members.values().any(|member| {
            super::consumer_protocol::subscribed_topics(&member.metadata(protocol))
                .is_none_or(|topics| topics.iter().any(|t| t == topic))
        })
    }

    /// Takes the "persist me" flag.
    pub fn take_dirty(&mut self) -> bool {
        std::mem::take(&mut self.dirty)
    }

    fn transition(&mut self, state: ClassicGroupState, now_ms: i64) {
        self.state = state;
        self.state_timestamp_ms = now_ms;
    }

    // ---- SyncGroup -------------------------------------------------------------------------

    /// Handles a SyncGroup. `assignments` is non-empty only from the leader.
    #[allow(clippy::too_many_arguments)]
    pub fn sync(
        &mut self,
        member_id: &str,
        group_instance_id: Option<&str>,
        generation_id: i32,
        protocol_type: Option<&str>,
        protocol_name: Option<&str>,
        assignments: Vec<(String, Bytes)>,
        now_ms: i64,
        responder: SyncResponder,
    ) {
        let fail = |responder: SyncResponder, error: ResponseError| {
            let _ = responder.send(SyncResult::error(code(error)));
        };
        if self.state == ClassicGroupState::Dead {
            return fail(responder, ResponseError::CoordinatorNotAvailable);
        }
        if let Err(error) = self.validate_member(member_id, group_instance_id) {
            return fail(responder, error);
        }
        if generation_id != self.generation_id {
            return fail(responder, ResponseError::IllegalGeneration);
        }
        if protocol_type.is_some_and(|t| Some(t) != self.protocol_type.as_deref())
            || protocol_name.is_some_and(|n| Some(n) != self.protocol_name.as_deref())
        {
            return fail(responder, ResponseError::InconsistentGroupProtocol);
        }
        let _ = self.pending_sync.remove(member_id);
        if self.pending_sync.is_empty() {
            self.sync_deadline_ms = None;
        }
        match self.state {
            ClassicGroupState::Empty | ClassicGroupState::Dead => {
                fail(responder, ResponseError::UnknownMemberId);
            }
            ClassicGroupState::PreparingRebalance => {
                fail(responder, ResponseError::RebalanceInProgress);
            }
            ClassicGroupState::CompletingRebalance => {
                let is_leader = self.leader.as_deref() == Some(member_id);
                if let Some(member) = self.members.get_mut(member_id) {
                    member.touch(now_ms);
                    member.awaiting_sync = Some(responder);
                }
                if is_leader {
                    self.complete_sync(assignments, now_ms);
                }
            }
            ClassicGroupState::Stable => {
                let result = self.sync_result_for(member_id);
                if let Some(member) = self.members.get_mut(member_id) {
                    member.touch(now_ms);
                }
                let _ = responder.send(result);
            }
        }
    }

    fn complete_sync(&mut self, assignments: Vec<(String, Bytes)>, now_ms: i64) {
        let mut assignments: HashMap<String, Bytes> = assignments.into_iter().collect();
        for member in self.members.values_mut() {
            // Members the leader left out get an empty assignment, as in Kafka.
            member.assignment = assignments.remove(&member.member_id).unwrap_or_default();
        }
        self.transition(ClassicGroupState::Stable, now_ms);
        self.dirty = true;
        let ids: Vec<String> = self.members.keys().cloned().collect();
        for member_id in ids {
            let result = self.sync_result_for(&member_id);
            if let Some(member) = self.members.get_mut(&member_id) {
                member.answer_sync_and_touch(result, now_ms);
            }
        }
    }

    fn sync_result_for(&self, member_id: &str) -> SyncResult {
        SyncResult {
            error: 0,
            protocol_type: self.protocol_type.clone(),
            protocol_name: self.protocol_name.clone(),
            assignment: self
                .members
                .get(member_id)
                .map(|m| m.assignment.clone())
                .unwrap_or_default(),
        }
    }

    // ---- Heartbeat, LeaveGroup, offsets --------------------------------------------------

    /// Handles a Heartbeat.
    ///
    /// # Errors
    /// The Kafka error for the member.
    pub fn heartbeat(
        &mut self,
        member_id: &str,
        group_instance_id: Option<&str>,
        generation_id: i32,
        now_ms: i64,
    ) -> Result<(), ResponseError> {
        match self.state {
            ClassicGroupState::Dead => return Err(ResponseError::CoordinatorNotAvailable),
            ClassicGroupState::Empty => return Err(ResponseError::UnknownMemberId),
            _ => {}
        }
        self.validate_member(member_id, group_instance_id)?;
        if generation_id != self.generation_id {
            return Err(ResponseError::IllegalGeneration);
        }
        if let Some(member) = self.members.get_mut(member_id) {
            member.touch(now_ms);
        }
        if self.state == ClassicGroupState::PreparingRebalance {
            return Err(ResponseError::RebalanceInProgress);
        }
        Ok(())
    }

    /// Removes a member that leaves: by member id, or by instance id for a static member whose
    /// member id is not given.
    ///
    /// # Errors
    /// UNKNOWN_MEMBER_ID, FENCED_INSTANCE_ID.
    pub fn leave(
        &mut self,
        member_id: &str,
        group_instance_id: Option<&str>,
        now_ms: i64,
    ) -> Result<String, ResponseError> {
        if self.state == ClassicGroupState::Dead {
            return Err(ResponseError::CoordinatorNotAvailable);
        }
        let member_id = match (member_id.is_empty(), group_instance_id) {
            (true, Some(instance_id)) => self
                .static_members
                .get(instance_id)
                .cloned()
                .ok_or(ResponseError::UnknownMemberId)?,
            _ => {
                if self.pending_members.remove(member_id).is_some() {
                    return Ok(member_id.to_owned());
                }
                self.validate_member(member_id, group_instance_id)?;
                member_id.to_owned()
            }
        };
        if let Some(mut member) = self.members.remove(&member_id) {
            member.answer_join(JoinResult::error(
                code(ResponseError::UnknownMemberId),
                &member_id,
            ));
            member.answer_sync(SyncResult::error(code(ResponseError::UnknownMemberId)));
            self.forget_member(&member);
        }
        self.after_member_removed(now_ms);
        Ok(member_id)
    }

    fn after_member_removed(&mut self, now_ms: i64) {
        match self.state {
            ClassicGroupState::Stable | ClassicGroupState::CompletingRebalance => {
                self.prepare_rebalance(now_ms);
            }
            ClassicGroupState::PreparingRebalance => self.maybe_complete_join(now_ms),
            ClassicGroupState::Empty | ClassicGroupState::Dead => {}
        }
    }

    fn remove_member(&mut self, member_id: &str) {
        if let Some(mut member) = self.members.remove(member_id) {
            member.answer_join(JoinResult::error(
                code(ResponseError::UnknownMemberId),
                member_id,
            ));
            member.answer_sync(SyncResult::error(code(ResponseError::UnknownMemberId)));
            self.forget_member(&member);
        }
    }

    fn forget_member(&mut self, member: &ClassicMember) {
        if let Some(instance_id) = &member.group_instance_id
            && self.static_members.get(instance_id) == Some(&member.member_id)
        {
            let _ = self.static_members.remove(instance_id);
        }
        let _ = self.pending_sync.remove(&member.member_id);
        if self.leader.as_deref() == Some(member.member_id.as_str()) {
            self.leader = None;
        }
    }

    /// Kafka's `validateMember`: a static member must present the member id its instance id
    /// maps to; a dynamic one must be known.
    fn validate_member(
        &self,
        member_id: &str,
        group_instance_id: Option<&str>,
    ) -> Result<(), ResponseError> {
        if let Some(instance_id) = group_instance_id {
            return match self.static_members.get(instance_id) {
                Some(current) if current == member_id => Ok(()),
                Some(_) => Err(ResponseError::FencedInstanceId),
                None => Err(ResponseError::UnknownMemberId),
            };
        }
        if self.members.contains_key(member_id) {
            Ok(())
        } else {
            Err(ResponseError::UnknownMemberId)
        }
    }

    /// Kafka's `validateOffsetCommit` for the classic protocol.
    ///
    /// # Errors
    /// COORDINATOR_NOT_AVAILABLE, UNKNOWN_MEMBER_ID, FENCED_INSTANCE_ID, ILLEGAL_GENERATION,
    /// REBALANCE_IN_PROGRESS.
    pub fn validate_offset_commit(
        &self,
        member_id: &str,
        group_instance_id: Option<&str>,
        generation_id: i32,
    ) -> Result<(), ResponseError> {
        if self.state == ClassicGroupState::Dead {
            return Err(ResponseError::CoordinatorNotAvailable);
        }
        if generation_id < 0 && self.state == ClassicGroupState::Empty {
            // Admin clients and consumers that assign partitions themselves.
            return Ok(());
        }
        self.validate_member(member_id, group_instance_id)?;
        if generation_id != self.generation_id {
            return Err(ResponseError::IllegalGeneration);
        }
        if self.state == ClassicGroupState::CompletingRebalance {
            return Err(ResponseError::RebalanceInProgress);
        }
        Ok(())
    }

    // ---- Time ------------------------------------------------------------------------------

    /// The earliest time [`ClassicGroup::tick`] has something to do.
    #[must_use]
    pub fn next_deadline(&self) -> Option<i64> {
        let sessions = self
            .members
            .values()
            .filter(|m| m.awaiting_join.is_none() && m.awaiting_sync.is_none())
            .map(|m| m.session_deadline_ms);
        sessions
            .chain(self.pending_members.values().copied())
            .chain(self.join_deadline_ms)
            .chain(self.sync_deadline_ms)
            .min()
    }

    /// Expires sessions, pending member ids, join and sync deadlines.
    pub fn tick(&mut self, now_ms: i64) {
        self.pending_members
            .retain(|_, deadline| *deadline > now_ms);
        let expired: Vec<String> = self
            .members
            .values()
            .filter(|m| m.awaiting_join.is_none() && m.awaiting_sync.is_none())
            .filter(|m| m.session_deadline_ms <= now_ms)
            .map(|m| m.member_id.clone())
            .collect();
        if !expired.is_empty() {
            for member_id in &expired {
                tracing::debug!(group = %self.group_id, member = %member_id, "session expired");
                self.remove_member(member_id);
            }
            self.after_member_removed(now_ms);
        }
        if self.state == ClassicGroupState::PreparingRebalance
            && self.join_deadline_ms.is_some_and(|d| d <= now_ms)
        {
            self.join_deadline_expired(now_ms);
        }
        if self.sync_deadline_ms.is_some_and(|d| d <= now_ms) {
            self.sync_deadline_ms = None;
            let missing: Vec<String> = self.pending_sync.drain().collect();
            if !missing.is_empty()
                && matches!(
                    self.state,
                    ClassicGroupState::CompletingRebalance | ClassicGroupState::Stable
                )
            {
                for member_id in &missing {
                    self.remove_member(member_id);
                }
                self.prepare_rebalance(now_ms);
            }
        }
        // A join that became complete through removals above.
        self.maybe_complete_join(now_ms);
    }

    fn join_deadline_expired(&mut self, now_ms: i64) {
        if let Some(limit) = self.initial_join_limit_ms {
            // Kafka's InitialDelayedJoin: keep waiting in steps of the delay while members
            // keep arriving, up to the rebalance timeout.
            if self.new_member_added && now_ms < limit {
                self.new_member_added = false;
                self.join_deadline_ms =
                    Some(now_ms.saturating_add(self.initial_delay_ms).min(limit));
                return;
            }
        }
        self.complete_join(now_ms);
    }
}
