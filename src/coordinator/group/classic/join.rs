//! JoinGroup: new, known and static members, the initial delay, completing the join phase,
//! and the protocol vote.

use bytes::Bytes;
use kafka_protocol::error::ResponseError;

use super::member::{
    ClassicMember, JoinMember, JoinRequest, JoinResponder, JoinResult, SyncResult,
};
use super::{ClassicGroup, ClassicGroupConfig, ClassicGroupState, code};

impl ClassicGroup {
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

    pub(super) fn join_unknown_member(
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

    pub(super) fn join_known_member(
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

    pub(super) fn replace_static_member(
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

    pub(super) fn add_member_and_rebalance(
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

    pub(super) fn update_member(
        &mut self,
        member_id: &str,
        request: &JoinRequest,
        responder: JoinResponder,
    ) {
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

    pub(super) fn start_rebalance(&mut self, now_ms: i64, initial_delay_ms: Option<i32>) {
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

    pub(super) fn all_members_joined(&self) -> bool {
        self.pending_members.is_empty() && self.members.values().all(|m| m.awaiting_join.is_some())
    }

    pub(super) fn maybe_complete_join(&mut self, now_ms: i64) {
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

    pub(super) fn complete_join(&mut self, now_ms: i64) {
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
    pub(super) fn elect_joined_leader(&mut self) -> bool {
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

    pub(super) fn join_result_for(&self, member_id: &str, skip_assignment: bool) -> JoinResult {
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
    pub(super) fn select_protocol(&self) -> Option<String> {
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

    pub(super) fn candidate_protocols(&self) -> Vec<String> {
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

    pub(super) fn supports_protocols(
        &self,
        protocol_type: &str,
        protocols: &[(String, Bytes)],
    ) -> bool {
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
}
