//! ConsumerGroupDescribe, and the member checks of OffsetCommit, TxnOffsetCommit and
//! OffsetFetch against a consumer group (Kafka's `ConsumerGroup.validateOffsetCommit` and
//! `validateOffsetFetch`).

use std::collections::HashMap;
use std::sync::Arc;

use kafka_protocol::ResponseError;
use kafka_protocol::messages::TopicName;
use kafka_protocol::messages::consumer_group_describe_response::{
    Assignment as DescribedAssignment, DescribedGroup, Member as DescribedMember, TopicPartitions,
};
use kafka_protocol::protocol::StrBytes;
use uuid::Uuid;

use super::member::Assignment;
use super::{ConsumerGroup, ConsumerGroupConfig};
use crate::metadata::TopicMetadata;

/// `member_type` of ConsumerGroupDescribe v1 for a member of the consumer protocol.
const CONSUMER_MEMBER_TYPE: i8 = 1;

fn str_bytes(s: &str) -> StrBytes {
    StrBytes::from_string(s.to_owned())
}

/// Kafka skips topics it no longer knows (a deleted topic has no name to show).
fn described(assignment: &Assignment, names: &HashMap<Uuid, &str>) -> DescribedAssignment {
    DescribedAssignment::default().with_topic_partitions(
        assignment
            .iter()
            .filter_map(|(topic_id, partitions)| {
                names.get(topic_id).map(|name| {
                    TopicPartitions::default()
                        .with_topic_id(*topic_id)
                        .with_topic_name(TopicName(str_bytes(name)))
                        .with_partitions(partitions.iter().copied().collect())
                })
            })
            .collect(),
    )
}

impl ConsumerGroup {
    /// The group for ConsumerGroupDescribe (v0 and v1; `member_type` is only encoded in v1).
    /// `authorized_operations` is left at the protocol default for the caller to fill in.
    #[must_use]
    pub fn describe(
        &self,
        topics: &[Arc<TopicMetadata>],
        config: &ConsumerGroupConfig,
    ) -> DescribedGroup {
        let names: HashMap<Uuid, &str> = topics
            .iter()
            .map(|t| (t.topic_id, t.name.as_str()))
            .collect();
        let members = self
            .members
            .values()
            .map(|m| {
                DescribedMember::default()
                    .with_member_id(str_bytes(&m.member_id))
                    .with_instance_id(m.instance_id.as_deref().map(str_bytes))
                    .with_rack_id(m.rack_id.as_deref().map(str_bytes))
                    .with_member_epoch(m.member_epoch)
                    .with_client_id(str_bytes(&m.client_id))
                    .with_client_host(str_bytes(&m.client_host))
                    .with_subscribed_topic_names(
                        m.subscribed_topic_names
                            .iter()
                            .map(|n| TopicName(str_bytes(n)))
                            .collect(),
                    )
                    .with_subscribed_topic_regex(m.subscribed_topic_regex.as_deref().map(str_bytes))
                    .with_assignment(described(&m.assigned_partitions, &names))
                    .with_target_assignment(described(
                        &self.target_assignment(&m.member_id),
                        &names,
                    ))
                    .with_member_type(CONSUMER_MEMBER_TYPE)
            })
            .collect();
        DescribedGroup::default()
            .with_group_id(str_bytes(&self.group_id).into())
            .with_group_state(str_bytes(self.state().as_str()))
            .with_group_epoch(self.group_epoch)
            .with_assignment_epoch(self.target_assignment_epoch)
            .with_assignor_name(str_bytes(self.preferred_assignor(config)))
            .with_members(members)
    }

    /// Checks an OffsetCommit (or, with `is_transactional`, a TxnOffsetCommit) against the
    /// group, as Kafka's `ConsumerGroup.validateOffsetCommit`:
    ///
    /// - a negative epoch commits freely while the group has no members (the admin client, or
    ///   a consumer assigning partitions itself);
    /// - a TxnOffsetCommit without member id, generation and instance id is not checked;
    /// - otherwise the member must exist (UNKNOWN_MEMBER_ID), a non-transactional commit must
    ///   be OffsetCommit v9+ (UNSUPPORTED_VERSION: older versions cannot carry member epochs),
    ///   and the epoch must be the member's current one (STALE_MEMBER_EPOCH).
    ///
    /// # Errors
    /// The codes above.
    pub fn validate_offset_commit(
        &self,
        member_id: &str,
        group_instance_id: Option<&str>,
        member_epoch: i32,
        is_transactional: bool,
        api_version: i16,
    ) -> Result<(), ResponseError> {
        if member_epoch < 0 && self.members.is_empty() {
            return Ok(());
        }
        if is_transactional
            && member_epoch == -1
            && member_id.is_empty()
            && group_instance_id.is_none()
        {
            return Ok(());
        }
        let member = self
            .members
            .get(member_id)
            .ok_or(ResponseError::UnknownMemberId)?;
        if !is_transactional && api_version < 9 {
            return Err(ResponseError::UnsupportedVersion);
        }
        if member_epoch != member.member_epoch {
            return Err(ResponseError::StaleMemberEpoch);
        }
        Ok(())
    }

    /// Checks an OffsetFetch as Kafka's `ConsumerGroup.validateOffsetFetch`: a request without
    /// a member id (`None`, as OffsetFetch before v9 and the admin client send) and with a
    /// negative epoch is not checked; otherwise the member must exist (UNKNOWN_MEMBER_ID) and
    /// the epoch must be its current one (STALE_MEMBER_EPOCH).
    ///
    /// # Errors
    /// The codes above.
    pub fn validate_offset_fetch(
        &self,
        member_id: Option<&str>,
        member_epoch: i32,
    ) -> Result<(), ResponseError> {
        if member_id.is_none() && member_epoch < 0 {
            return Ok(());
        }
        let member = self
            .members
            .get(member_id.unwrap_or_default())
            .ok_or(ResponseError::UnknownMemberId)?;
        if member_epoch != member.member_epoch {
            return Err(ResponseError::StaleMemberEpoch);
        }
        Ok(())
    }
}
