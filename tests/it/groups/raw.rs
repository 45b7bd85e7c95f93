//! The group APIs on a raw socket, at fixed versions inside Apache Kafka 4.0's range, for checks
//! of exact error codes. Each helper sends one request and returns the decoded response (or the
//! error code that matters); `member` runs the JoinGroup dance for a classic member.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use bytes::{BufMut, Bytes, BytesMut};
use kafka_protocol::messages::consumer_protocol_assignment::TopicPartition as AssignedTopic;
use kafka_protocol::messages::join_group_request::JoinGroupRequestProtocol;
use kafka_protocol::messages::offset_commit_request::{
    OffsetCommitRequestPartition, OffsetCommitRequestTopic,
};
use kafka_protocol::messages::offset_fetch_request::{
    OffsetFetchRequestGroup, OffsetFetchRequestTopics,
};
use kafka_protocol::messages::sync_group_request::SyncGroupRequestAssignment;
use kafka_protocol::messages::{
    ApiKey, ApiVersionsRequest, ConsumerGroupHeartbeatRequest, ConsumerGroupHeartbeatResponse,
    ConsumerProtocolAssignment, ConsumerProtocolSubscription, FindCoordinatorRequest,
    FindCoordinatorResponse, GroupId, HeartbeatRequest, JoinGroupRequest, JoinGroupResponse,
    LeaveGroupRequest, LeaveGroupResponse, OffsetCommitRequest, OffsetFetchRequest,
    OffsetFetchResponse, SyncGroupRequest, SyncGroupResponse, TopicName,
};
use kafka_protocol::protocol::{Encodable, StrBytes};

use crate::wire::Wire;

/// Versions used on the wire: flexible and pre-KIP-848 where the API has both, all inside the
/// range Kafka 4.0 serves (KIP-896 removed the older ones).
pub(crate) const FIND_COORDINATOR: i16 = 4;
pub(crate) const JOIN_GROUP: i16 = 6;
pub(crate) const SYNC_GROUP: i16 = 4;
pub(crate) const HEARTBEAT: i16 = 4;
pub(crate) const LEAVE_GROUP: i16 = 4;
pub(crate) const OFFSET_COMMIT: i16 = 8;
pub(crate) const OFFSET_FETCH: i16 = 8;
pub(crate) const OFFSET_DELETE: i16 = 0;
pub(crate) const LIST_GROUPS: i16 = 4;
pub(crate) const DESCRIBE_GROUPS: i16 = 5;

/// Kafka error codes the group tests expect.
pub(crate) mod code {
    pub(crate) const NONE: i16 = 0;
    pub(crate) const UNKNOWN_TOPIC_OR_PARTITION: i16 = 3;
    pub(crate) const COORDINATOR_LOAD_IN_PROGRESS: i16 = 14;
    pub(crate) const COORDINATOR_NOT_AVAILABLE: i16 = 15;
    pub(crate) const ILLEGAL_GENERATION: i16 = 22;
    pub(crate) const INCONSISTENT_GROUP_PROTOCOL: i16 = 23;
    pub(crate) const UNKNOWN_MEMBER_ID: i16 = 25;
    pub(crate) const INVALID_SESSION_TIMEOUT: i16 = 26;
    pub(crate) const REBALANCE_IN_PROGRESS: i16 = 27;
    pub(crate) const UNSUPPORTED_VERSION: i16 = 35;
    pub(crate) const GROUP_ID_NOT_FOUND: i16 = 69;
    pub(crate) const MEMBER_ID_REQUIRED: i16 = 79;
    pub(crate) const GROUP_MAX_SIZE_REACHED: i16 = 81;
    pub(crate) const FENCED_INSTANCE_ID: i16 = 82;
    pub(crate) const GROUP_SUBSCRIBED_TO_TOPIC: i16 = 86;
    pub(crate) const FENCED_MEMBER_EPOCH: i16 = 110;
    pub(crate) const STALE_MEMBER_EPOCH: i16 = 113;
}

pub(crate) fn group_id(name: &str) -> GroupId {
    GroupId(StrBytes::from_string(name.to_owned()))
}

pub(crate) fn topic_name(name: &str) -> TopicName {
    TopicName(StrBytes::from_string(name.to_owned()))
}

pub(crate) fn text(value: &str) -> StrBytes {
    StrBytes::from_string(value.to_owned())
}

/// The advertised `(min, max)` per API key.
pub(crate) fn advertised(wire: &mut Wire) -> BTreeMap<i16, (i16, i16)> {
    let response = wire.call(3, &ApiVersionsRequest::default());
    assert_eq!(response.error_code, 0);
    response
        .api_keys
        .iter()
        .map(|k| (k.api_key, (k.min_version, k.max_version)))
        .collect()
}

/// Asserts that each `(api, version)` is advertised, so a missing API fails with its name
/// rather than as a closed connection.
pub(crate) fn require(wire: &mut Wire, wanted: &[(ApiKey, i16)]) {
    let table = advertised(wire);
    for (api, version) in wanted {
        let range = table.get(&(*api as i16));
        assert!(
            range.is_some_and(|(min, max)| (*min..=*max).contains(version)),
            "{api:?} v{version} is not advertised (advertised: {range:?})"
        );
    }
}

/// The classic APIs every raw group test uses.
pub(crate) fn require_classic(wire: &mut Wire) {
    require(
        wire,
        &[
            (ApiKey::FindCoordinator, FIND_COORDINATOR),
            (ApiKey::JoinGroup, JOIN_GROUP),
            (ApiKey::SyncGroup, SYNC_GROUP),
            (ApiKey::Heartbeat, HEARTBEAT),
            (ApiKey::LeaveGroup, LEAVE_GROUP),
            (ApiKey::OffsetCommit, OFFSET_COMMIT),
            (ApiKey::OffsetFetch, OFFSET_FETCH),
        ],
    );
}

/// FindCoordinator v4 (batched) for `groups`, retried while the coordinator is loading.
pub(crate) fn find_coordinators(wire: &mut Wire, groups: &[&str]) -> FindCoordinatorResponse {
    let request = FindCoordinatorRequest::default()
        .with_key_type(0)
        .with_coordinator_keys(groups.iter().map(|g| text(g)).collect());
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let response = wire.call(FIND_COORDINATOR, &request);
        let loading = response.coordinators.iter().any(|c| {
            matches!(
                c.error_code,
                code::COORDINATOR_LOAD_IN_PROGRESS | code::COORDINATOR_NOT_AVAILABLE
            )
        });
        if !loading || Instant::now() > deadline {
            return response;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// A consumer-protocol subscription to `topics` (version 0), as a classic JoinGroup carries it.
pub(crate) fn subscription(topics: &[&str]) -> Bytes {
    let mut bytes = BytesMut::new();
    bytes.put_i16(0);
    ConsumerProtocolSubscription::default()
        .with_topics(topics.iter().map(|t| text(t)).collect())
        .encode(&mut bytes, 0)
        .unwrap();
    bytes.freeze()
}

/// A consumer-protocol assignment of `partitions` of `topic` (version 0).
pub(crate) fn assignment(topic: &str, partitions: &[i32]) -> Bytes {
    let mut bytes = BytesMut::new();
    bytes.put_i16(0);
    ConsumerProtocolAssignment::default()
        .with_assigned_partitions(vec![
            AssignedTopic::default()
                .with_topic(topic_name(topic))
                .with_partitions(partitions.to_vec()),
        ])
        .encode(&mut bytes, 0)
        .unwrap();
    bytes.freeze()
}

/// A JoinGroup request for protocol type `consumer`, protocol `range`, subscribed to `topic`.
pub(crate) fn join_request(group: &str, member_id: &str, topic: &str) -> JoinGroupRequest {
    JoinGroupRequest::default()
        .with_group_id(group_id(group))
        .with_session_timeout_ms(6000)
        .with_rebalance_timeout_ms(3000)
        .with_member_id(text(member_id))
        .with_protocol_type(text("consumer"))
        .with_protocols(vec![
            JoinGroupRequestProtocol::default()
                .with_name(text("range"))
                .with_metadata(subscription(&[topic])),
        ])
}

pub(crate) fn join(wire: &mut Wire, request: &JoinGroupRequest) -> JoinGroupResponse {
    wire.call(JOIN_GROUP, request)
}

/// A classic member that joined and synced: its id and generation.
#[derive(Debug, Clone)]
pub(crate) struct RawMember {
    pub(crate) member_id: String,
    pub(crate) generation: i32,
    pub(crate) assignment: Bytes,
}

/// Joins `group` alone (JoinGroup with an empty id → MEMBER_ID_REQUIRED, rejoin with the id
/// given), then syncs as leader, assigning itself `partitions` of `topic`.
pub(crate) fn member(wire: &mut Wire, group: &str, topic: &str, partitions: &[i32]) -> RawMember {
    let first = join(wire, &join_request(group, "", topic));
    assert_eq!(
        first.error_code,
        code::MEMBER_ID_REQUIRED,
        "first join: {first:?}"
    );
    let member_id = first.member_id.to_string();
    assert!(
        !member_id.is_empty(),
        "MEMBER_ID_REQUIRED carries the id to use"
    );
    let joined = join(wire, &join_request(group, &member_id, topic));
    assert_eq!(
        joined.error_code,
        code::NONE,
        "rejoin with the given id: {joined:?}"
    );
    assert_eq!(joined.member_id.as_str(), member_id);
    assert_eq!(joined.leader.as_str(), member_id, "the only member leads");
    assert!(joined.generation_id >= 1);
    let assignment = assignment(topic, partitions);
    let synced = sync(
        wire,
        group,
        joined.generation_id,
        &member_id,
        &[(&member_id, assignment.clone())],
    );
    assert_eq!(synced.error_code, code::NONE, "sync: {synced:?}");
    assert_eq!(
        synced.assignment, assignment,
        "the leader's assignment comes back"
    );
    RawMember {
        member_id,
        generation: joined.generation_id,
        assignment,
    }
}

pub(crate) fn sync(
    wire: &mut Wire,
    group: &str,
    generation: i32,
    member_id: &str,
    assignments: &[(&str, Bytes)],
) -> SyncGroupResponse {
    let request = SyncGroupRequest::default()
        .with_group_id(group_id(group))
        .with_generation_id(generation)
        .with_member_id(text(member_id))
        .with_assignments(
            assignments
                .iter()
                .map(|(member, bytes)| {
                    SyncGroupRequestAssignment::default()
                        .with_member_id(text(member))
                        .with_assignment(bytes.clone())
                })
                .collect(),
        );
    wire.call(SYNC_GROUP, &request)
}

pub(crate) fn heartbeat(wire: &mut Wire, group: &str, generation: i32, member_id: &str) -> i16 {
    static_heartbeat(wire, group, generation, member_id, None)
}

/// A heartbeat that also names the member's `group.instance.id`.
pub(crate) fn static_heartbeat(
    wire: &mut Wire,
    group: &str,
    generation: i32,
    member_id: &str,
    instance: Option<&str>,
) -> i16 {
    let request = HeartbeatRequest::default()
        .with_group_id(group_id(group))
        .with_generation_id(generation)
        .with_member_id(text(member_id))
        .with_group_instance_id(instance.map(text));
    wire.call(HEARTBEAT, &request).error_code
}

pub(crate) fn leave(wire: &mut Wire, group: &str, member_id: &str) -> LeaveGroupResponse {
    let request = LeaveGroupRequest::default()
        .with_group_id(group_id(group))
        .with_members(vec![
            kafka_protocol::messages::leave_group_request::MemberIdentity::default()
                .with_member_id(text(member_id)),
        ]);
    wire.call(LEAVE_GROUP, &request)
}

/// The OffsetCommit request `commit` sends (metadata `raw-<offset>`).
pub(crate) fn commit_request(
    group: &str,
    generation: i32,
    member_id: &str,
    offsets: &[(&str, i32, i64)],
) -> OffsetCommitRequest {
    let mut topics: BTreeMap<&str, Vec<OffsetCommitRequestPartition>> = BTreeMap::new();
    for (topic, partition, offset) in offsets {
        topics.entry(topic).or_default().push(
            OffsetCommitRequestPartition::default()
                .with_partition_index(*partition)
                .with_committed_offset(*offset)
                .with_committed_leader_epoch(-1)
                .with_committed_metadata(Some(text(&format!("raw-{offset}")))),
        );
    }
    OffsetCommitRequest::default()
        .with_group_id(group_id(group))
        .with_generation_id_or_member_epoch(generation)
        .with_member_id(text(member_id))
        .with_retention_time_ms(-1)
        .with_topics(
            topics
                .into_iter()
                .map(|(name, partitions)| {
                    OffsetCommitRequestTopic::default()
                        .with_name(topic_name(name))
                        .with_partitions(partitions)
                })
                .collect(),
        )
}

/// LeaveGroup v3+ for several members at once, each by member id and/or instance id (an
/// admin removing static members sends only instance ids).
pub(crate) fn leave_members(
    wire: &mut Wire,
    group: &str,
    members: &[(&str, Option<&str>)],
) -> LeaveGroupResponse {
    let request = LeaveGroupRequest::default()
        .with_group_id(group_id(group))
        .with_members(
            members
                .iter()
                .map(|(member_id, instance)| {
                    kafka_protocol::messages::leave_group_request::MemberIdentity::default()
                        .with_member_id(text(member_id))
                        .with_group_instance_id(instance.map(text))
                })
                .collect(),
        );
    wire.call(LEAVE_GROUP, &request)
}

/// OffsetCommit v8 of `offsets` (`(topic, partition, offset)`) as `member_id` at `generation`
/// (`-1` and `""` for a commit outside any generation). Returns `(topic, partition) → error`.
pub(crate) fn commit(
    wire: &mut Wire,
    group: &str,
    generation: i32,
    member_id: &str,
    offsets: &[(&str, i32, i64)],
) -> BTreeMap<(String, i32), i16> {
    commit_at(wire, OFFSET_COMMIT, group, generation, member_id, offsets)
}

/// `commit` at `version`: KIP-848 members must commit with v9+, their member epoch in the
/// generation field.
pub(crate) fn commit_at(
    wire: &mut Wire,
    version: i16,
    group: &str,
    generation: i32,
    member_id: &str,
    offsets: &[(&str, i32, i64)],
) -> BTreeMap<(String, i32), i16> {
    let request = commit_request(group, generation, member_id, offsets);
    let response = wire.call(version, &request);
    response
        .topics
        .iter()
        .flat_map(|t| {
            t.partitions
                .iter()
                .map(|p| ((t.name.to_string(), p.partition_index), p.error_code))
        })
        .collect()
}

/// The partitions of one topic an OffsetFetch asks about; `None` asks for every committed one.
pub(crate) type FetchTopic<'a> = Option<(&'a str, &'a [i32])>;

/// OffsetFetch v8 for several groups at once.
pub(crate) fn fetch_offsets(
    wire: &mut Wire,
    groups: &[(&str, FetchTopic<'_>)],
) -> OffsetFetchResponse {
    let request = OffsetFetchRequest::default()
        .with_require_stable(false)
        .with_groups(
            groups
                .iter()
                .map(|(group, topic)| {
                    OffsetFetchRequestGroup::default()
                        .with_group_id(group_id(group))
                        .with_topics(topic.map(|(name, partitions)| {
                            vec![
                                OffsetFetchRequestTopics::default()
                                    .with_name(topic_name(name))
                                    .with_partition_indexes(partitions.to_vec()),
                            ]
                        }))
                })
                .collect(),
        );
    wire.call(OFFSET_FETCH, &request)
}

/// The committed offsets of `group` in an OffsetFetch v8 answer: `(topic, partition) → offset`
/// (`-1` for none), asserting no error at any level.
pub(crate) fn committed_of(
    response: &OffsetFetchResponse,
    group: &str,
) -> BTreeMap<(String, i32), i64> {
    let found = response
        .groups
        .iter()
        .find(|g| g.group_id.as_str() == group)
        .unwrap_or_else(|| panic!("{group} is not in the answer: {response:?}"));
    assert_eq!(found.error_code, code::NONE, "{group}: {found:?}");
    found
        .topics
        .iter()
        .flat_map(|t| {
            t.partitions.iter().map(|p| {
                assert_eq!(
                    p.error_code,
                    code::NONE,
                    "{group} {}-{}",
                    t.name.as_str(),
                    p.partition_index
                );
                ((t.name.to_string(), p.partition_index), p.committed_offset)
            })
        })
        .collect()
}

/// The ConsumerGroupHeartbeat version to use: the advertised maximum, at most 1 (v1 lets the
/// client choose its member id, KIP-1082).
pub(crate) fn heartbeat_version(wire: &mut Wire) -> i16 {
    let (min, max) = *advertised(wire)
        .get(&(ApiKey::ConsumerGroupHeartbeat as i16))
        .expect("ConsumerGroupHeartbeat is advertised");
    let version = max.min(1);
    assert!(
        min <= version,
        "ConsumerGroupHeartbeat advertised as {min}..={max}"
    );
    version
}

/// A KIP-848 member joins `group` subscribed to `topics` (member epoch 0); at v1 it brings its
/// own member id.
pub(crate) fn kip848_join(
    wire: &mut Wire,
    version: i16,
    group: &str,
    topics: &[&str],
) -> ConsumerGroupHeartbeatResponse {
    kip848_join_with_timeout(wire, version, group, topics, 5000)
}

/// `kip848_join` with the member's rebalance timeout: how long it may take to revoke.
pub(crate) fn kip848_join_with_timeout(
    wire: &mut Wire,
    version: i16,
    group: &str,
    topics: &[&str],
    rebalance_timeout_ms: i32,
) -> ConsumerGroupHeartbeatResponse {
    let member_id = if version >= 1 {
        uuid::Uuid::new_v4().to_string()
    } else {
        String::new()
    };
    let request = ConsumerGroupHeartbeatRequest::default()
        .with_group_id(group_id(group))
        .with_member_id(text(&member_id))
        .with_member_epoch(0)
        .with_rebalance_timeout_ms(rebalance_timeout_ms)
        .with_subscribed_topic_names(Some(topics.iter().map(|t| topic_name(t)).collect()))
        .with_topic_partitions(Some(vec![]));
    let response = wire.call(version, &request);
    assert_eq!(response.error_code, code::NONE, "{response:?}");
    response
}
