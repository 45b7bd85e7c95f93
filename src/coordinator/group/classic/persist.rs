//! The persisted form of a classic group (`GroupMetadataValue`), and deletion.

use kafka_protocol::error::ResponseError;

use super::member::{ClassicMember, JoinResult, SyncResult};
use super::{ClassicGroup, ClassicGroupState, code};
use crate::coordinator::group::record::{GroupMetadataValue, MemberMetadata};

impl ClassicGroup {
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
