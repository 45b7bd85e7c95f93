//! The ConsumerGroupHeartbeat path (Kafka's `GroupCoordinatorService` request validation and
//! `GroupMetadataManager.consumerGroupHeartbeat`).
//!
//! Every check that can fail runs before the group changes, so an error answer leaves the group
//! untouched and writes nothing.

use std::sync::Arc;

use kafka_protocol::ResponseError;
use kafka_protocol::messages::ConsumerGroupHeartbeatRequest;
use kafka_protocol::messages::ConsumerGroupHeartbeatResponse;
use kafka_protocol::messages::consumer_group_heartbeat_request::TopicPartitions as OwnedTopicPartitions;
use kafka_protocol::messages::consumer_group_heartbeat_response::{
    Assignment as ResponseAssignment, TopicPartitions as ResponseTopicPartitions,
};
use kafka_protocol::protocol::StrBytes;

use super::member::{Assignment, ConsumerGroupMember, MemberState};
use super::reconcile::reconcile;
use super::{
    ConsumerGroup, ConsumerGroupConfig, LEAVE_GROUP_MEMBER_EPOCH, LEAVE_GROUP_STATIC_MEMBER_EPOCH,
    MemberTimers, record, subscription,
};
use crate::coordinator::group::record::CoordinatorRecord;
use crate::metadata::TopicMetadata;

/// From this ConsumerGroupHeartbeat version the client must generate its member id (KIP-1082).
const CONSUMER_GENERATED_MEMBER_ID_REQUIRED_VERSION: i16 = 1;

/// A refused heartbeat: the error code and Kafka's message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct HeartbeatError {
    code: ResponseError,
    message: String,
}

fn error(code: ResponseError, message: impl Into<String>) -> HeartbeatError {
    HeartbeatError {
        code,
        message: message.into(),
    }
}

fn invalid(message: &str) -> HeartbeatError {
    error(ResponseError::InvalidRequest, message)
}

/// Java's `String.trim().isEmpty()`: every character is at most a space.
fn blank(value: Option<&str>) -> bool {
    value.is_some_and(|v| v.chars().all(|c| c <= ' '))
}

/// Kafka's `throwIfConsumerGroupHeartbeatRequestIsInvalid`, in its order. Kafka runs it before
/// looking the group up, so the coordinator may call it before creating a group.
///
/// # Errors
/// INVALID_REQUEST or UNSUPPORTED_ASSIGNOR, with Kafka's message.
pub fn validate_heartbeat_request(
    request: &ConsumerGroupHeartbeatRequest,
    version: i16,
    config: &ConsumerGroupConfig,
) -> Result<(), (ResponseError, String)> {
    validate(request, version, config).map_err(|e| (e.code, e.message))
}

fn validate(
    request: &ConsumerGroupHeartbeatRequest,
    version: i16,
    config: &ConsumerGroupConfig,
) -> Result<(), HeartbeatError> {
    let epoch = request.member_epoch;
    if (version >= CONSUMER_GENERATED_MEMBER_ID_REQUIRED_VERSION
        || epoch > 0
        || epoch == LEAVE_GROUP_MEMBER_EPOCH)
        && blank(Some(&request.member_id))
    {
        return Err(invalid("MemberId can't be empty."));
    }
    if blank(Some(&request.group_id)) {
        return Err(invalid("GroupId can't be empty."));
    }
    if blank(request.instance_id.as_deref()) {
        return Err(invalid("InstanceId can't be empty."));
    }
    if blank(request.rack_id.as_deref()) {
        return Err(invalid("RackId can't be empty."));
    }
    if epoch == 0 {
        if request.rebalance_timeout_ms == -1 {
            return Err(invalid(
                "RebalanceTimeoutMs must be provided in first request.",
            ));
        }
        if request
            .topic_partitions
            .as_ref()
            .is_none_or(|p| !p.is_empty())
        {
            return Err(invalid("TopicPartitions must be empty when (re-)joining."));
        }
        if request.subscribed_topic_names.is_none() && request.subscribed_topic_regex.is_none() {
            return Err(invalid(
                "Either SubscribedTopicNames or SubscribedTopicRegex must be non-null when \
                 (re-)joining.",
            ));
        }
    } else if epoch == LEAVE_GROUP_STATIC_MEMBER_EPOCH {
        if request.instance_id.is_none() {
            return Err(invalid("InstanceId can't be null."));
        }
    } else if epoch < LEAVE_GROUP_STATIC_MEMBER_EPOCH {
        return Err(invalid("MemberEpoch is invalid."));
    }
    if let Some(name) = request.server_assignor.as_deref()
        && !config.assignor_enabled(name)
    {
        let supported: Vec<&str> = config
            .assignors
            .iter()
            .map(String::as_str)
            .filter(|a| super::assignor::is_supported(a))
            .collect();
        return Err(error(
            ResponseError::UnsupportedAssignor,
            format!(
                "ServerAssignor {name} is not supported. Supported assignors: {}.",
                supported.join(", ")
            ),
        ));
    }
    Ok(())
}

/// How the heartbeat's member was found.
enum Lookup {
    /// A known member, or a new one (epoch 0).
    Member(ConsumerGroupMember),
    /// A static member rejoining under a new member id after a temporary leave: `old` is
    /// replaced by `new`, which inherits its assignment.
    ReplaceStatic {
        old: String,
        new: ConsumerGroupMember,
    },
}

fn owned_assignment(owned: Option<&Vec<OwnedTopicPartitions>>) -> Option<Assignment> {
    owned.map(|topics| {
        let mut assignment = Assignment::new();
        for t in topics {
            if !t.partitions.is_empty() {
                assignment
                    .entry(t.topic_id)
                    .or_default()
                    .extend(t.partitions.iter().copied());
            }
        }
        assignment
    })
}

/// Kafka's `isSubset`: every reported topic is assigned and every reported partition too.
fn is_subset(owned: Option<&Vec<OwnedTopicPartitions>>, assigned: &Assignment) -> bool {
    owned.is_some_and(|topics| {
        topics.iter().all(|t| {
            assigned
                .get(&t.topic_id)
                .is_some_and(|set| t.partitions.iter().all(|p| set.contains(p)))
        })
    })
}

/// Kafka's `throwIfConsumerGroupMemberEpochIsInvalid`: an epoch ahead of the member's is
/// fenced; one behind is accepted only if it is the previous epoch and the member owns nothing
/// beyond its assignment (the response that bumped the epoch was lost).
fn check_member_epoch(
    member: &ConsumerGroupMember,
    received: i32,
    owned: Option<&Vec<OwnedTopicPartitions>>,
) -> Result<(), HeartbeatError> {
    let fenced = |relation: &str| {
        error(
            ResponseError::FencedMemberEpoch,
            format!(
                "The consumer group member has a {relation} member epoch ({received}) than the \
                 one known by the group coordinator ({}). The member must abandon all its \
                 partitions and rejoin.",
                member.member_epoch
            ),
        )
    };
    if received > member.member_epoch {
        return Err(fenced("greater"));
    }
    if received < member.member_epoch
        && (received != member.previous_member_epoch
            || !is_subset(owned, &member.assigned_partitions))
    {
        return Err(fenced("smaller"));
    }
    Ok(())
}

/// Kafka's `Uuid.randomUuid().toString()`: 16 random bytes in URL-safe base64 without padding,
/// never starting with '-' (Kafka re-draws those so ids do not look like command-line flags).
fn generate_member_id() -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    loop {
        let bytes = uuid::Uuid::new_v4().into_bytes();
        let mut out = String::with_capacity(22);
        let mut bits = 0u32;
        let mut nbits = 0;
        for byte in bytes {
            bits = (bits << 8) | u32::from(byte);
            nbits += 8;
            while nbits >= 6 {
                nbits -= 6;
                out.push(char::from(ALPHABET[((bits >> nbits) & 63) as usize]));
            }
        }
        if nbits > 0 {
            out.push(char::from(ALPHABET[((bits << (6 - nbits)) & 63) as usize]));
        }
        if !out.starts_with('-') {
            return out;
        }
    }
}

fn response_assignment(assignment: &Assignment) -> ResponseAssignment {
    ResponseAssignment::default().with_topic_partitions(
        assignment
            .iter()
            .map(|(topic_id, partitions)| {
                ResponseTopicPartitions::default()
                    .with_topic_id(*topic_id)
                    .with_partitions(partitions.iter().copied().collect())
            })
            .collect(),
    )
}

impl ConsumerGroup {
    /// Handles one ConsumerGroupHeartbeat (versions 0 and 1).
    ///
    /// Returns the response (an error code on failure, throttle 0) and the records to append
    /// before sending it. State changes are applied in memory as they are decided; if the
    /// append fails, the caller must discard this group and reload it from the log. Call it on
    /// a fresh group only for a join (member epoch 0): Kafka answers other heartbeats for an
    /// unknown group with GROUP_ID_NOT_FOUND, which is the coordinator's decision.
    #[expect(
        clippy::too_many_arguments,
        reason = "the request plus its context (client, topics, config, clock), as the coordinator has them"
    )]
    pub fn heartbeat(
        &mut self,
        request: &ConsumerGroupHeartbeatRequest,
        version: i16,
        client_id: &str,
        client_host: &str,
        topics: &[Arc<TopicMetadata>],
        config: &ConsumerGroupConfig,
        now_ms: i64,
    ) -> (ConsumerGroupHeartbeatResponse, Vec<CoordinatorRecord>) {
        let mut records = Vec::new();
        let result = validate(request, version, config).and_then(|()| {
            if request.member_epoch == LEAVE_GROUP_MEMBER_EPOCH
                || request.member_epoch == LEAVE_GROUP_STATIC_MEMBER_EPOCH
            {
                self.leave(request, topics, config, now_ms, &mut records)
            } else {
                let context = Context {
                    client_id,
                    client_host,
                    topics,
                    config,
                    now_ms,
                };
                self.member_heartbeat(request, &context, &mut records)
            }
        });
        match result {
            Ok(response) => (response, records),
            Err(e) => {
                debug_assert!(records.is_empty(), "a refused heartbeat wrote records");
                (
                    ConsumerGroupHeartbeatResponse::default()
                        .with_error_code(e.code.code())
                        .with_error_message(Some(StrBytes::from_string(e.message))),
                    Vec::new(),
                )
            }
        }
    }

    fn lookup(
        &self,
        member_id: &str,
        request: &ConsumerGroupHeartbeatRequest,
    ) -> Result<Lookup, HeartbeatError> {
        let epoch = request.member_epoch;
        let owned = request.topic_partitions.as_ref();
        let unknown_member = || {
            error(
                ResponseError::UnknownMemberId,
                format!(
                    "Member {member_id} is not a member of group {}.",
                    self.group_id
                ),
            )
        };
        let Some(instance_id) = request.instance_id.as_deref() else {
            return match self.members.get(member_id) {
                Some(member) => {
                    check_member_epoch(member, epoch, owned)?;
                    Ok(Lookup::Member(member.clone()))
                }
                None if epoch == 0 => Ok(Lookup::Member(ConsumerGroupMember::new(member_id))),
                None => Err(unknown_member()),
            };
        };
        let existing = self
            .static_members
            .get(instance_id)
            .and_then(|id| self.members.get(id));
        if epoch == 0 {
            let Some(old) = existing else {
                return Ok(Lookup::Member(
                    self.members
                        .get(member_id)
                        .cloned()
                        .unwrap_or_else(|| ConsumerGroupMember::new(member_id)),
                ));
            };
            // The instance id is free only once its holder sent a static leave (-2).
            if old.member_epoch != LEAVE_GROUP_STATIC_MEMBER_EPOCH {
                return Err(error(
                    ResponseError::UnreleasedInstanceId,
                    format!(
                        "Static member {member_id} with instance id {instance_id} cannot join \
                         the group because the instance id is owned by {} member.",
                        old.member_id
                    ),
                ));
            }
            let mut new = old.clone();
            new.member_id = member_id.to_owned();
            new.member_epoch = 0;
            new.previous_member_epoch = 0;
            return Ok(Lookup::ReplaceStatic {
                old: old.member_id.clone(),
                new,
            });
        }
        let Some(old) = existing else {
            return Err(error(
                ResponseError::UnknownMemberId,
                format!("Instance id {instance_id} is unknown."),
            ));
        };
        if old.member_id != member_id {
            return Err(error(
                ResponseError::FencedInstanceId,
                format!(
                    "Static member {member_id} with instance id {instance_id} was fenced by \
                     member {}.",
                    old.member_id
                ),
            ));
        }
        check_member_epoch(old, epoch, owned)?;
        Ok(Lookup::Member(old.clone()))
    }

    fn member_heartbeat(
        &mut self,
        request: &ConsumerGroupHeartbeatRequest,
        cx: &Context<'_>,
        records: &mut Vec<CoordinatorRecord>,
    ) -> Result<ConsumerGroupHeartbeatResponse, HeartbeatError> {
        // Checks first: nothing below the last `?` may fail.
        if self.members.len() >= cx.config.max_size
            && (request.member_id.is_empty() || !self.members.contains_key(&*request.member_id))
        {
            return Err(error(
                ResponseError::GroupMaxSizeReached,
                format!(
                    "The consumer group has reached its maximum capacity of {} members.",
                    cx.config.max_size
                ),
            ));
        }
        let member_id = if request.member_id.is_empty() {
            generate_member_id()
        } else {
            request.member_id.to_string()
        };
        let lookup = self.lookup(&member_id, request)?;
        if let Some(regex) = request
            .subscribed_topic_regex
            .as_deref()
            .filter(|r| !r.is_empty())
            && !self.compiled.contains_key(regex)
        {
            let compiled = subscription::compile(regex).map_err(|e| {
                error(
                    ResponseError::InvalidRegularExpression,
                    format!(
                        "SubscribedTopicRegex `{regex}` is not a valid regular expression: {e}."
                    ),
                )
            })?;
            // A cache, not group state: filling it early changes nothing if a later step fails.
            let _ = self.compiled.insert(regex.to_string(), compiled);
        }
        let owned = owned_assignment(request.topic_partitions.as_ref());
        let member = match &lookup {
            Lookup::Member(m) | Lookup::ReplaceStatic { new: m, .. } => m,
        };
        if member.state == MemberState::Unknown && owned.as_ref().is_none_or(|o| !o.is_empty()) {
            return Err(error(
                ResponseError::FencedMemberEpoch,
                "The consumer group member is in a unknown state. The member must abandon all \
                 its partitions and rejoin.",
            ));
        }

        // 0. A static member rejoining under a new id takes over the old member's records.
        let member = match lookup {
            Lookup::Member(member) => member,
            Lookup::ReplaceStatic { old, new } => {
                let target = self.target_assignment(&old);
                self.remove_member(&old, records);
                records.push(record::member_metadata_record(&self.group_id, &new));
                records.push(record::target_assignment_record(
                    &self.group_id,
                    &new.member_id,
                    &target,
                ));
                records.push(record::current_assignment_record(&self.group_id, &new));
                if !target.is_empty() {
                    let _ = self.target_assignment.insert(new.member_id.clone(), target);
                }
                self.set_member(new.clone());
                new
            }
        };
        let is_new = !self.members.contains_key(&member.member_id);

        // 1. The subscription.
        let mut updated = member.clone();
        apply_request(&mut updated, request, cx);
        let mut bump = updated.subscribed_topic_names != member.subscribed_topic_names
            || updated.subscribed_topic_regex != member.subscribed_topic_regex;
        if is_new || updated.metadata_differs(&member) {
            records.push(record::member_metadata_record(&self.group_id, &updated));
            self.set_member(updated.clone());
        }
        bump |= self.refresh_regexes(cx.topics, cx.now_ms, records);
        bump |= self.refresh_subscription_metadata(cx.topics, records);
        if bump {
            self.bump_group_epoch(records);
        }

        // 2. The target assignment.
        if self.group_epoch > self.target_assignment_epoch {
            self.compute_target_assignment(cx.config, records);
        }

        // 3. Reconciliation.
        let updated = self.reconcile_member(updated, owned.as_ref(), cx.now_ms, records);
        self.timers
            .entry(updated.member_id.clone())
            .or_insert(MemberTimers {
                session_deadline_ms: 0,
                rebalance: None,
            })
            .session_deadline_ms = cx.now_ms + i64::from(cx.config.session_timeout_ms);

        // A full request (a join, or a client resending everything after an error) always gets
        // the assignment; otherwise only a changed one is sent.
        let full_request = request.member_epoch == 0
            || (request.rebalance_timeout_ms != -1
                && (request.subscribed_topic_names.is_some()
                    || request.subscribed_topic_regex.is_some())
                && request.topic_partitions.is_some());
        let mut response = ConsumerGroupHeartbeatResponse::default()
            .with_member_id(Some(StrBytes::from_string(updated.member_id.clone())))
            .with_member_epoch(updated.member_epoch)
            .with_heartbeat_interval_ms(cx.config.heartbeat_interval_ms);
        if full_request || updated.assigned_partitions != member.assigned_partitions {
            response.assignment = Some(response_assignment(&updated.assigned_partitions));
        }
        Ok(response)
    }

    /// Moves the member towards its target; a change is written, and a member that now has to
    /// revoke gets a rebalance deadline (cleared once it is no longer revoking).
    fn reconcile_member(
        &mut self,
        member: ConsumerGroupMember,
        owned: Option<&Assignment>,
        now_ms: i64,
        records: &mut Vec<CoordinatorRecord>,
    ) -> ConsumerGroupMember {
        if member.is_reconciled_to(self.target_assignment_epoch) {
            return member;
        }
        let target = self.target_assignment(&member.member_id);
        let next = reconcile(
            &member,
            self.target_assignment_epoch,
            &target,
            owned,
            |t, p| self.partition_epoch(t, p),
        );
        if !next.assignment_differs(&member) {
            return member;
        }
        records.push(record::current_assignment_record(&self.group_id, &next));
        let rebalance = (next.state == MemberState::UnrevokedPartitions).then(|| {
            (
                now_ms + i64::from(next.rebalance_timeout_ms.max(0)),
                next.member_epoch,
            )
        });
        self.timers
            .entry(next.member_id.clone())
            .or_insert(MemberTimers {
                session_deadline_ms: i64::MAX,
                rebalance: None,
            })
            .rebalance = rebalance;
        self.set_member(next.clone());
        next
    }

    /// A member leaving (-1), or a static member leaving for now (-2).
    fn leave(
        &mut self,
        request: &ConsumerGroupHeartbeatRequest,
        topics: &[Arc<TopicMetadata>],
        config: &ConsumerGroupConfig,
        now_ms: i64,
        records: &mut Vec<CoordinatorRecord>,
    ) -> Result<ConsumerGroupHeartbeatResponse, HeartbeatError> {
        let member_id = &*request.member_id;
        let member = match request.instance_id.as_deref() {
            None => self.members.get(member_id).ok_or_else(|| {
                error(
                    ResponseError::UnknownMemberId,
                    format!(
                        "Member {member_id} is not a member of group {}.",
                        self.group_id
                    ),
                )
            })?,
            Some(instance_id) => {
                let member = self
                    .static_members
                    .get(instance_id)
                    .and_then(|id| self.members.get(id))
                    .ok_or_else(|| {
                        error(
                            ResponseError::UnknownMemberId,
                            format!("Instance id {instance_id} is unknown."),
                        )
                    })?;
                if member.member_id != member_id {
                    return Err(error(
                        ResponseError::FencedInstanceId,
                        format!(
                            "Static member {member_id} with instance id {instance_id} was \
                             fenced by member {}.",
                            member.member_id
                        ),
                    ));
                }
                member
            }
        };
        if request.member_epoch == LEAVE_GROUP_STATIC_MEMBER_EPOCH {
            // The member keeps its assignment (other members cannot take its partitions) until
            // it rejoins with the same instance id or its session expires.
            let mut leaving = member.clone();
            leaving.member_epoch = LEAVE_GROUP_STATIC_MEMBER_EPOCH;
            leaving.partitions_pending_revocation = Assignment::new();
            records.push(record::current_assignment_record(&self.group_id, &leaving));
            if let Some(timers) = self.timers.get_mut(&leaving.member_id) {
                timers.rebalance = None;
            }
            let response = ConsumerGroupHeartbeatResponse::default()
                .with_member_id(Some(StrBytes::from_string(leaving.member_id.clone())))
                .with_member_epoch(LEAVE_GROUP_STATIC_MEMBER_EPOCH);
            self.set_member(leaving);
            return Ok(response);
        }
        let member_id = member.member_id.clone();
        self.fence_member(&member_id, topics, config, now_ms, records);
        Ok(ConsumerGroupHeartbeatResponse::default()
            .with_member_id(Some(request.member_id.clone()))
            .with_member_epoch(request.member_epoch))
    }
}

/// What a heartbeat carries besides the request.
struct Context<'a> {
    client_id: &'a str,
    client_host: &'a str,
    topics: &'a [Arc<TopicMetadata>],
    config: &'a ConsumerGroupConfig,
    now_ms: i64,
}

/// Applies the fields a heartbeat sets; absent (null / -1) fields keep their value, which is
/// how the protocol sends only what changed.
fn apply_request(
    member: &mut ConsumerGroupMember,
    request: &ConsumerGroupHeartbeatRequest,
    cx: &Context<'_>,
) {
    if let Some(instance_id) = &request.instance_id {
        member.instance_id = Some(instance_id.to_string());
    }
    if let Some(rack_id) = &request.rack_id {
        member.rack_id = Some(rack_id.to_string());
    }
    if request.rebalance_timeout_ms != -1 {
        member.rebalance_timeout_ms = request.rebalance_timeout_ms;
    }
    if let Some(assignor) = &request.server_assignor {
        member.server_assignor = Some(assignor.to_string());
    }
    if let Some(names) = &request.subscribed_topic_names {
        member.subscribed_topic_names = names.iter().map(|n| n.0.to_string()).collect();
    }
    if let Some(regex) = &request.subscribed_topic_regex {
        member.subscribed_topic_regex = Some(regex.to_string());
    }
    cx.client_id.clone_into(&mut member.client_id);
    cx.client_host.clone_into(&mut member.client_host);
}
