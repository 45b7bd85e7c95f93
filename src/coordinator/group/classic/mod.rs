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

pub mod member;
#[cfg(test)]
mod tests;

use std::collections::{BTreeMap, HashMap, HashSet};

use bytes::Bytes;
use kafka_protocol::error::ResponseError;

use super::record::{GroupMetadataValue, MemberMetadata};
pub use member::{ClassicMember, JoinMember, JoinRequest, JoinResult, SyncResult};
use member::{JoinResponder, SyncResponder};

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

    // ---- JoinGroup -------------------------------------------------------------------------

    /// Handles a JoinGroup. The answer goes to `responder`, now or when the rebalance completes.
    pub fn join(
        &mut self,
        request: JoinRequest,
        config: &ClassicGroupConfig,
        now_ms: i64,
        responder: JoinResponder,
    ) {
        let fail = |responder: JoinResponder, error: ResponseError, member_id: &str| {
            let _ = responder.send(JoinResult::error(code(error), member_id));
        };
        if request.session_timeout_ms < config.min_session_timeout_ms
            || request.session_timeout_ms > config.max_session_timeout_ms
        {
            return fail(
                responder,
                ResponseError::InvalidSessionTimeout,
                &request.member_id,
            );
        }
        if self.state == ClassicGroupState::Dead {
            return fail(
                responder,
                ResponseError::CoordinatorNotAvailable,
                &request.member_id,
            );
        }
        if !self.supports_protocols(&request.protocol_type, &request.protocols) {
            return fail(
                responder,
                ResponseError::InconsistentGroupProtocol,
                &request.member_id,
            );
        }
        if request.member_id.is_empty() {
            self.join_unknown_member(request, config, now_ms, responder);
        } else {
            self.join_known_member(request, config, now_ms, responder);
        }
    }

    fn join_unknown_member(
        &mut self,
        request: JoinRequest,
        config: &ClassicGroupConfig,
        now_ms: i64,
        responder: JoinResponder,
    ) {
        if let Some(instance_id) = request.group_instance_id.clone() {
            let new_member_id = format!("{instance_id}-{}", uuid::Uuid::new_v4());
            if let Some(old_member_id) = self.static_members.get(&instance_id).cloned() {
                return self.replace_static_member(
                    &old_member_id,
                    new_member_id,
                    request,
                    now_ms,
                    responder,
                );
            }
            if self.members.len() >= config.max_size {
                let _ = responder.send(JoinResult::error(
                    code(ResponseError::GroupMaxSizeReached),
                    "",
                ));
                return;
            }
            return self.add_member_and_rebalance(
                new_member_id,
                request,
                config,
                now_ms,
                responder,
            );
        }
        if self.members.len() + self.pending_members.len() >= config.max_size {
            let _ = responder.send(JoinResult::error(
                code(ResponseError::GroupMaxSizeReached),
                "",
            ));
            return;
        }
        let member_id = format!("{}-{}", request.client_id, uuid::Uuid::new_v4());
        if request.require_known_member_id {
            // KIP-394: the member learns its id first, so a client that times out and retries
            // does not leave a ghost member behind for a whole session timeout.
            let deadline = now_ms.saturating_add(i64::from(request.session_timeout_ms));
            let _ = self.pending_members.insert(member_id.clone(), deadline);
            let _ = responder.send(JoinResult::error(
                code(ResponseError::MemberIdRequired),
                &member_id,
            ));
            return;
        }
        self.add_member_and_rebalance(member_id, request, config, now_ms, responder);
    }

    fn join_known_member(
        &mut self,
        request: JoinRequest,
        config: &ClassicGroupConfig,
        now_ms: i64,
        responder: JoinResponder,
    ) {
        let member_id = request.member_id.clone();
        if self.pending_members.remove(&member_id).is_some() {
            // Counted against group.max.size when the id was handed out.
            return self.add_member_and_rebalance(member_id, request, config, now_ms, responder);
        }
        if let Err(error) = self.validate_member(&member_id, request.group_instance_id.as_deref()) {
            let _ = responder.send(JoinResult::error(code(error), &member_id));
            return;
        }
        let Some(member) = self.members.get_mut(&member_id) else {
            return;
        };
        member.touch(now_ms);
        match self.state {
            ClassicGroupState::PreparingRebalance => {
                self.update_member(&member_id, &request, responder);
                self.maybe_complete_join(now_ms);
            }
            ClassicGroupState::CompletingRebalance => {
                if member.same_protocols(&request.protocols) {
                    // The member lost our answer (a retry): give it the same one again.
                    let result = self.join_result_for(&member_id, false);
                    let _ = responder.send(result);
                } else {
                    self.update_member(&member_id, &request, responder);
                    self.prepare_rebalance(now_ms);
                }
            }
            ClassicGroupState::Stable => {
                let is_leader = self.leader.as_deref() == Some(member_id.as_str());
                if is_leader || !member.same_protocols(&request.protocols) {
                    // A leader's join asks for a new assignment (e.g. its metadata changed).
                    self.update_member(&member_id, &request, responder);
                    self.prepare_rebalance(now_ms);
                } else {
                    let result = self.join_result_for(&member_id, false);
                    let _ = responder.send(result);
                }
            }
            ClassicGroupState::Empty | ClassicGroupState::Dead => {
                let _ = responder.send(JoinResult::error(
                    code(ResponseError::UnknownMemberId),
                    &member_id,
                ));
            }
        }
    }

    fn replace_static_member(
        &mut self,
        old_member_id: &str,
        new_member_id: String,
        request: JoinRequest,
        now_ms: i64,
        responder: JoinResponder,
    ) {
        let Some(mut member) = self.members.remove(old_member_id) else {
            return;
        };
        // The old instance is a zombie now: whatever it waits for is answered with
        // FENCED_INSTANCE_ID.
        member.answer_join(JoinResult::error(
            code(ResponseError::FencedInstanceId),
            old_member_id,
        ));
        member.answer_sync(SyncResult::error(code(ResponseError::FencedInstanceId)));
        let protocols_changed = !member.same_protocols(&request.protocols);
        member.member_id.clone_from(&new_member_id);
        member.client_id.clone_from(&request.client_id);
        member.client_host.clone_from(&request.client_host);
        member.session_timeout_ms = request.session_timeout_ms;
        member.rebalance_timeout_ms = request.rebalance_timeout_ms;
        member.protocols.clone_from(&request.protocols);
        member.touch(now_ms);
        let was_leader = self.leader.as_deref() == Some(old_member_id);
        if was_leader {
            self.leader = Some(new_member_id.clone());
        }
        if self.pending_sync.remove(old_member_id) {
            let _ = self.pending_sync.insert(new_member_id.clone());
        }
        if let Some(instance_id) = &request.group_instance_id {
            let _ = self
                .static_members
                .insert(instance_id.clone(), new_member_id.clone());
        }
        let _ = self.members.insert(new_member_id.clone(), member);
        match self.state {
            ClassicGroupState::Stable if !protocols_changed => {
                // KIP-345: a static member that comes back within its session timeout keeps its
                // assignment, and the group does not rebalance.
                self.dirty = true;
                let skip_assignment = was_leader && request.supports_skip_assignment;
                let mut result = self.join_result_for(&new_member_id, skip_assignment);
                if was_leader && !skip_assignment {
                    // Before v9 a leader cannot be told to skip the assignment. Kafka answers
                    // with the old leader id (and no members): the client sees itself as a
                    // follower, computes no assignment that a Stable group would not propagate,
                    // and syncs for the one it has. The group's leader is the new id all the same.
                    result.leader = old_member_id.to_owned();
                    result.members.clear();
                }
                let _ = responder.send(result);
            }
            ClassicGroupState::PreparingRebalance => {
                if let Some(member) = self.members.get_mut(&new_member_id) {
                    member.awaiting_join = Some(responder);
                }
                self.maybe_complete_join(now_ms);
            }
            _ => {
                // CompletingRebalance: the leader may be assigning to the old id; Stable with
                // new protocols: rebalance.
                if let Some(member) = self.members.get_mut(&new_member_id) {
                    member.awaiting_join = Some(responder);
                }
                self.prepare_rebalance(now_ms);
            }
        }
    }

    fn add_member_and_rebalance(
        &mut self,
        member_id: String,
        request: JoinRequest,
        config: &ClassicGroupConfig,
        now_ms: i64,
        responder: JoinResponder,
    ) {
        let mut member = ClassicMember::new(member_id.clone(), &request, now_ms);
        member.awaiting_join = Some(responder);
        if self.members.is_empty() {
            self.protocol_type = Some(request.protocol_type.clone());
        }
        if let Some(instance_id) = &request.group_instance_id {
            let _ = self
                .static_members
                .insert(instance_id.clone(), member_id.clone());
        }
        if self.leader.is_none() {
            // Kafka's rule: the first member to join a leaderless group leads it.
            self.leader = Some(member_id.clone());
        }
        let _ = self.members.insert(member_id, member);
        self.new_member_added = true;
        match self.state {
            ClassicGroupState::PreparingRebalance => self.maybe_complete_join(now_ms),
            ClassicGroupState::Empty => {
                self.start_rebalance(now_ms, Some(config.initial_rebalance_delay_ms));
                self.maybe_complete_join(now_ms);
            }
            _ => self.prepare_rebalance(now_ms),
        }
    }

    fn update_member(&mut self, member_id: &str, request: &JoinRequest, responder: JoinResponder) {
        if let Some(member) = self.members.get_mut(member_id) {
            // A second join from the same member replaces the first; the first is dropped and
            // its handler answers with a retriable error.
            member.awaiting_join = Some(responder);
            member.protocols.clone_from(&request.protocols);
            member.session_timeout_ms = request.session_timeout_ms;
            member.rebalance_timeout_ms = request.rebalance_timeout_ms;
        }
    }

    /// Starts a rebalance: members must rejoin.
    pub fn prepare_rebalance(&mut self, now_ms: i64) {
        self.start_rebalance(now_ms, None);
        self.maybe_complete_join(now_ms);
    }

    fn start_rebalance(&mut self, now_ms: i64, initial_delay_ms: Option<i32>) {
        if self.state == ClassicGroupState::CompletingRebalance {
            // The assignment being computed is stale: tell the members that wait for it.
            for member in self.members.values_mut() {
                member.assignment = Bytes::new();
                member.answer_sync_and_touch(
                    SyncResult::error(code(ResponseError::RebalanceInProgress)),
                    now_ms,
                );
            }
        }
        self.pending_sync.clear();
        self.sync_deadline_ms = None;
        let rebalance_timeout = i64::from(
            self.members
                .values()
                .map(|m| m.rebalance_timeout_ms)
                .max()
                .unwrap_or(0),
        );
        match initial_delay_ms {
            Some(delay) if delay > 0 => {
                self.initial_delay_ms = i64::from(delay);
                self.join_deadline_ms = Some(now_ms.saturating_add(self.initial_delay_ms));
                self.initial_join_limit_ms = Some(now_ms.saturating_add(rebalance_timeout));
                self.new_member_added = false;
            }
            _ => {
                self.join_deadline_ms = Some(now_ms.saturating_add(rebalance_timeout));
                self.initial_join_limit_ms = None;
            }
        }
        if self.state != ClassicGroupState::PreparingRebalance {
            self.transition(ClassicGroupState::PreparingRebalance, now_ms);
        }
    }

    fn all_members_joined(&self) -> bool {
        self.pending_members.is_empty() && self.members.values().all(|m| m.awaiting_join.is_some())
    }

    fn maybe_complete_join(&mut self, now_ms: i64) {
        if self.state != ClassicGroupState::PreparingRebalance {
            return;
        }
        // During the initial delay the group waits for more members even if all have joined.
        if self.initial_join_limit_ms.is_some() {
            return;
        }
        if self.all_members_joined() {
            self.complete_join(now_ms);
        }
    }

    fn complete_join(&mut self, now_ms: i64) {
        self.join_deadline_ms = None;
        self.initial_join_limit_ms = None;
        // Kafka removes the dynamic members that did not rejoin. Static members (KIP-345) keep
        // their place and their share of the assignment; their session timeout removes them if
        // they are really gone.
        let not_joined: Vec<String> = self
            .members
            .values()
            .filter(|m| m.awaiting_join.is_none() && m.group_instance_id.is_none())
            .map(|m| m.member_id.clone())
            .collect();
        for member_id in not_joined {
            self.remove_member(&member_id);
        }
        if !self.elect_joined_leader() && !self.members.is_empty() {
            // Kafka: "could not complete rebalance because no members rejoined". Wait another
            // rebalance timeout while the static members' sessions run out.
            let rebalance_timeout = self
                .members
                .values()
                .map(|m| m.rebalance_timeout_ms)
                .max()
                .unwrap_or(0);
            self.join_deadline_ms = Some(now_ms.saturating_add(i64::from(rebalance_timeout)));
            return;
        }
        self.generation_id = self.generation_id.wrapping_add(1);
        if self.members.is_empty() {
            self.protocol_name = None;
            self.leader = None;
            self.transition(ClassicGroupState::Empty, now_ms);
            self.dirty = true;
            return;
        }
        self.protocol_name = self.select_protocol();
        self.transition(ClassicGroupState::CompletingRebalance, now_ms);
        let ids: Vec<String> = self.members.keys().cloned().collect();
        let mut rebalance_timeout = 0;
        for member_id in &ids {
            let result = self.join_result_for(member_id, false);
            if let Some(member) = self.members.get_mut(member_id) {
                member.touch(now_ms);
                member.answer_join(result);
                rebalance_timeout = rebalance_timeout.max(member.rebalance_timeout_ms);
            }
            let _ = self.pending_sync.insert(member_id.clone());
        }
        // Members that never send SyncGroup are removed after the rebalance timeout, so one
        // stuck member cannot hold the group in CompletingRebalance.
        self.sync_deadline_ms = Some(now_ms.saturating_add(i64::from(rebalance_timeout)));
    }

    /// Kafka's `maybeElectNewJoinedLeader`: the leader must be a member that rejoined; if it did
    /// not, any member that did takes over. False if no member rejoined.
    fn elect_joined_leader(&mut self) -> bool {
        let joined = |m: &ClassicMember| m.awaiting_join.is_some();
        if let Some(leader) = &self.leader
            && self.members.get(leader).is_some_and(joined)
        {
            return true;
        }
        match self.members.values().find(|m| joined(m)) {
            Some(member) => {
                self.leader = Some(member.member_id.clone());
                true
            }
            None => false,
        }
    }

    fn join_result_for(&self, member_id: &str, skip_assignment: bool) -> JoinResult {
        let protocol = self.protocol_name.clone().unwrap_or_default();
        let leader = self.leader.clone().unwrap_or_default();
        let members = if leader == member_id {
            self.members
                .values()
                .map(|m| JoinMember {
                    member_id: m.member_id.clone(),
                    group_instance_id: m.group_instance_id.clone(),
                    metadata: m.metadata(&protocol),
                })
                .collect()
        } else {
            Vec::new()
        };
        JoinResult {
            error: 0,
            generation_id: self.generation_id,
            protocol_type: self.protocol_type.clone(),
            protocol_name: self.protocol_name.clone(),
            leader,
            skip_assignment,
            member_id: member_id.to_owned(),
            members,
        }
    }

    /// Kafka's vote: among the protocols every member supports, each member votes for its most
    /// preferred one; the most votes wins (ties go to the earlier-listed protocol).
    fn select_protocol(&self) -> Option<String> {
        let candidates = self.candidate_protocols();
        let mut votes: Vec<(String, usize)> = candidates.iter().map(|c| (c.clone(), 0)).collect();
        for member in self.members.values() {
            if let Some((name, _)) = member
                .protocols
                .iter()
                .find(|(name, _)| candidates.contains(name))
                && let Some(vote) = votes.iter_mut().find(|(c, _)| c == name)
            {
                vote.1 += 1;
            }
        }
        let best = votes.iter().map(|(_, n)| *n).max()?;
        votes.into_iter().find(|(_, n)| *n == best).map(|(c, _)| c)
    }

    fn candidate_protocols(&self) -> Vec<String> {
        let mut members = self.members.values();
        let Some(first) = members.next() else {
            return Vec::new();
        };
        let mut candidates: Vec<String> = first.protocols.iter().map(|(n, _)| n.clone()).collect();
        for member in members {
            candidates.retain(|c| member.protocols.iter().any(|(n, _)| n == c));
        }
        candidates
    }

    fn supports_protocols(&self, protocol_type: &str, protocols: &[(String, Bytes)]) -> bool {
        if protocol_type.is_empty() || protocols.is_empty() {
            return false;
        }
        if self.members.is_empty() {
            return true;
        }
        self.protocol_type.as_deref() == Some(protocol_type)
            && self
                .candidate_protocols()
                .iter()
                .any(|c| protocols.iter().any(|(n, _)| n == c))
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

    // ---- Persistence -----------------------------------------------------------------------

    /// The persisted form of the group.
    #[must_use]
    pub fn to_record(&self) -> GroupMetadataValue {
        let protocol = self.protocol_name.clone().unwrap_or_default();
        GroupMetadataValue {
            protocol_type: self.protocol_type.clone().unwrap_or_default(),
            generation: self.generation_id,
            protocol: self.protocol_name.clone(),
            leader: self.leader.clone(),
            current_state_timestamp: self.state_timestamp_ms,
            members: self
                .members
                .values()
                .map(|m| MemberMetadata {
                    member_id: m.member_id.clone(),
                    group_instance_id: m.group_instance_id.clone(),
                    client_id: m.client_id.clone(),
                    client_host: m.client_host.clone(),
                    rebalance_timeout_ms: m.rebalance_timeout_ms,
                    session_timeout_ms: m.session_timeout_ms,
                    subscription: m.metadata(&protocol),
                    assignment: m.assignment.clone(),
                })
                .collect(),
        }
    }

    /// A group loaded from its persisted form: Stable with its members (their sessions start
    /// now), or Empty.
    #[must_use]
    pub fn from_record(group_id: &str, value: GroupMetadataValue, now_ms: i64) -> ClassicGroup {
        let mut group = ClassicGroup::new(group_id, now_ms);
        group.protocol_type = (!value.protocol_type.is_empty()).then_some(value.protocol_type);
        group.generation_id = value.generation;
        group.protocol_name = value.protocol;
        group.leader = value.leader;
        group.state_timestamp_ms = if value.current_state_timestamp > 0 {
            value.current_state_timestamp
        } else {
            now_ms
        };
        let protocol = group.protocol_name.clone().unwrap_or_default();
        for m in value.members {
            if let Some(instance_id) = &m.group_instance_id {
                let _ = group
                    .static_members
                    .insert(instance_id.clone(), m.member_id.clone());
            }
            let member = ClassicMember {
                member_id: m.member_id.clone(),
                group_instance_id: m.group_instance_id,
                client_id: m.client_id,
                client_host: m.client_host,
                rebalance_timeout_ms: m.rebalance_timeout_ms,
                session_timeout_ms: m.session_timeout_ms,
                protocol_type: group.protocol_type.clone().unwrap_or_default(),
                protocols: vec![(protocol.clone(), m.subscription)],
                assignment: m.assignment,
                awaiting_join: None,
                awaiting_sync: None,
                session_deadline_ms: now_ms.saturating_add(i64::from(m.session_timeout_ms)),
            };
            let _ = group.members.insert(m.member_id, member);
        }
        group.state = if group.members.is_empty() {
            ClassicGroupState::Empty
        } else {
            ClassicGroupState::Stable
        };
        group
    }

    /// Marks the group deleted: parked requests are answered so that clients rediscover.
    pub fn mark_dead(&mut self, now_ms: i64) {
        for member in self.members.values_mut() {
            member.answer_join(JoinResult::error(
                code(ResponseError::CoordinatorNotAvailable),
                &member.member_id.clone(),
            ));
            member.answer_sync(SyncResult::error(code(
                ResponseError::CoordinatorNotAvailable,
            )));
        }
        self.members.clear();
        self.static_members.clear();
        self.pending_members.clear();
        self.transition(ClassicGroupState::Dead, now_ms);
    }
}
