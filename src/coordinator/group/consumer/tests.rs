//! Consumer-group state machine tests. Each drives a [`Harness`]: a group, the broker's topics,
//! a clock, and the log of every record written, so any test can also check that the log
//! replays into the same group.

use std::collections::BTreeSet;
use std::sync::Arc;

use kafka_protocol::ResponseError;
use kafka_protocol::messages::consumer_group_heartbeat_request::TopicPartitions;
use kafka_protocol::messages::{
    ConsumerGroupHeartbeatRequest, ConsumerGroupHeartbeatResponse, TopicName,
};
use kafka_protocol::protocol::StrBytes;
use uuid::Uuid;

use super::member::{Assignment, MemberState, partition_count};
use super::*;
use crate::coordinator::group::record::RecordKey;
use crate::metadata::TopicMetadata;

fn topic_id(name: &str) -> Uuid {
    Uuid::from_u128(
        u128::from(crate::coordinator::group::record::java_string_hash(name).unsigned_abs()) + 1,
    )
}

fn topic(name: &str, partitions: i32) -> Arc<TopicMetadata> {
    Arc::new(TopicMetadata {
        name: name.to_owned(),
        topic_id: topic_id(name),
        partitions,
        leader_epoch: 0,
        configs: crate::topic_config::TopicOverrides::new(),
    })
}

fn s(v: &str) -> StrBytes {
    StrBytes::from_string(v.to_owned())
}

fn join(member_id: &str, topics: &[&str]) -> ConsumerGroupHeartbeatRequest {
    ConsumerGroupHeartbeatRequest::default()
        .with_group_id(s("g").into())
        .with_member_id(s(member_id))
        .with_member_epoch(0)
        .with_rebalance_timeout_ms(1_000)
        .with_subscribed_topic_names(Some(topics.iter().map(|t| TopicName(s(t))).collect()))
        .with_topic_partitions(Some(Vec::new()))
}

fn owned_list(owned: &Assignment) -> Vec<TopicPartitions> {
    owned
        .iter()
        .map(|(t, p)| {
            TopicPartitions::default()
                .with_topic_id(*t)
                .with_partitions(p.iter().copied().collect())
        })
        .collect()
}

fn heartbeat(
    member_id: &str,
    epoch: i32,
    owned: Option<&Assignment>,
) -> ConsumerGroupHeartbeatRequest {
    ConsumerGroupHeartbeatRequest::default()
        .with_group_id(s("g").into())
        .with_member_id(s(member_id))
        .with_member_epoch(epoch)
        .with_rebalance_timeout_ms(-1)
        .with_topic_partitions(owned.map(owned_list))
}

fn assignment(response: &ConsumerGroupHeartbeatResponse) -> Option<Assignment> {
    response.assignment.as_ref().map(|a| {
        a.topic_partitions
            .iter()
            .map(|tp| (tp.topic_id, tp.partitions.iter().copied().collect()))
            .collect()
    })
}

fn parts(name: &str, partitions: &[i32]) -> Assignment {
    [(
        topic_id(name),
        partitions.iter().copied().collect::<BTreeSet<_>>(),
    )]
    .into()
}

struct Harness {
    group: ConsumerGroup,
    topics: Vec<Arc<TopicMetadata>>,
    config: ConsumerGroupConfig,
    now_ms: i64,
    log: Vec<CoordinatorRecord>,
}

impl Harness {
    fn new(topics: &[(&str, i32)]) -> Harness {
        Harness {
            group: ConsumerGroup::new("g"),
            topics: topics.iter().map(|(n, p)| topic(n, *p)).collect(),
            config: ConsumerGroupConfig {
                session_timeout_ms: 10_000,
                heartbeat_interval_ms: 500,
                ..ConsumerGroupConfig::default()
            },
            now_ms: 1_000,
            log: Vec::new(),
        }
    }

    fn send_version(
        &mut self,
        request: &ConsumerGroupHeartbeatRequest,
        version: i16,
    ) -> ConsumerGroupHeartbeatResponse {
        let (response, records) = self.group.heartbeat(
            request,
            version,
            "client",
            "/127.0.0.1",
            &self.topics,
            &self.config,
            self.now_ms,
        );
        if response.error_code != 0 {
            assert!(records.is_empty(), "an error wrote records");
        }
        self.log.extend(records);
        response
    }

    fn send(&mut self, request: &ConsumerGroupHeartbeatRequest) -> ConsumerGroupHeartbeatResponse {
        self.send_version(request, 1)
    }

    fn ok(&mut self, request: &ConsumerGroupHeartbeatRequest) -> ConsumerGroupHeartbeatResponse {
        let response = self.send(request);
        assert_eq!(response.error_code, 0, "{:?}", response.error_message);
        response
    }

    fn error(&mut self, request: &ConsumerGroupHeartbeatRequest) -> ResponseError {
        let response = self.send(request);
        ResponseError::try_from_code(response.error_code).expect("expected an error")
    }

    fn expire(&mut self) {
        let records = self.group.expire(&self.topics, &self.config, self.now_ms);
        self.log.extend(records);
    }

    fn set_topics(&mut self, topics: &[(&str, i32)]) {
        self.topics = topics.iter().map(|(n, p)| topic(n, *p)).collect();
        let records = self
            .group
            .on_metadata_change(&self.topics, &self.config, self.now_ms);
        self.log.extend(records);
    }

    /// Replays `records` into a fresh group.
    fn replay(records: &[CoordinatorRecord]) -> ConsumerGroup {
        let mut group = ConsumerGroup::new("g");
        for record in records {
            let RecordKey::ConsumerGroup {
                version,
                group: id,
                rest,
            } = RecordKey::decode(&record.key).unwrap()
            else {
                panic!("not a consumer group record");
            };
            assert_eq!(id, "g");
            group
                .replay(version, &rest, record.value.as_deref())
                .unwrap();
        }
        group
    }

    /// The log replays into a group equal to the live one.
    fn check_replay(&self) {
        assert_eq!(
            persisted(&Harness::replay(&self.log)),
            persisted(&self.group)
        );
    }
}

/// Everything a group persists (timers and caches excluded).
fn persisted(g: &ConsumerGroup) -> String {
    let mut epochs: Vec<_> = g.partition_epochs.iter().collect();
    epochs.sort();
    format!(
        "{} {:?} {:?} {:?} {:?} {} {:?} {:?} {}",
        g.group_epoch,
        g.members,
        g.static_members,
        g.subscription_metadata,
        g.resolved_regexes,
        g.target_assignment_epoch,
        g.target_assignment,
        epochs,
        g.dead
    )
}

#[test]
fn one_member_gets_every_partition() {
    let mut h = Harness::new(&[("t", 3)]);
    let response = h.ok(&join("m1", &["t"]));
    assert_eq!(response.member_id.as_deref(), Some("m1"));
    assert_eq!(response.member_epoch, 1);
    assert_eq!(response.heartbeat_interval_ms, 500);
    assert_eq!(assignment(&response), Some(parts("t", &[0, 1, 2])));
    assert_eq!(h.group.state(), ConsumerGroupState::Stable);
    assert_eq!((h.group.group_epoch(), h.group.assignment_epoch()), (1, 1));
    h.check_replay();
}

#[test]
fn a_new_member_gets_partitions_only_after_they_are_revoked() {
    let mut h = Harness::new(&[("t", 4)]);
    let all = parts("t", &[0, 1, 2, 3]);
    h.ok(&join("m1", &["t"]));

    // m2 joins: epoch 2, but everything is still owned by m1.
    let r2 = h.ok(&join("m2", &["t"]));
    assert_eq!(r2.member_epoch, 2);
    assert_eq!(assignment(&r2), Some(Assignment::new()));
    assert_eq!(
        h.group.member("m2").unwrap().state,
        MemberState::UnreleasedPartitions
    );
    let m2_target = h.group.target_assignment("m2");
    assert_eq!(partition_count(&m2_target), 2);
    let m1_keeps = h.group.target_assignment("m1");

    // m1 is asked to revoke: it stays at epoch 1 and is sent only what it keeps.
    let r1 = h.ok(&heartbeat("m1", 1, Some(&all)));
    assert_eq!(r1.member_epoch, 1);
    assert_eq!(assignment(&r1), Some(m1_keeps.clone()));
    assert_eq!(h.group.state(), ConsumerGroupState::Reconciling);

    // m2 still gets nothing while m1 has not acknowledged.
    let r2 = h.ok(&heartbeat("m2", 2, Some(&Assignment::new())));
    assert_eq!(assignment(&r2), None);
    h.ok(&heartbeat("m1", 1, Some(&all)));
    assert_eq!(
        h.group.member("m1").unwrap().state,
        MemberState::UnrevokedPartitions
    );

    // m1 acknowledges the revocation: it moves to epoch 2.
    let r1 = h.ok(&heartbeat("m1", 1, Some(&m1_keeps)));
    assert_eq!(r1.member_epoch, 2);
    // Now m2 gets its partitions.
    let r2 = h.ok(&heartbeat("m2", 2, Some(&Assignment::new())));
    assert_eq!(assignment(&r2), Some(m2_target));
    assert_eq!(h.group.state(), ConsumerGroupState::Stable);
    h.check_replay();
}

/// Joins m1 and m2 on a 4-partition topic and completes the rebalance.
fn two_stable_members(h: &mut Harness) {
    let all = parts("t", &[0, 1, 2, 3]);
    h.ok(&join("m1", &["t"]));
    h.ok(&join("m2", &["t"]));
    h.ok(&heartbeat("m1", 1, Some(&all)));
    let keeps = h.group.target_assignment("m1");
    h.ok(&heartbeat("m1", 1, Some(&keeps)));
    h.ok(&heartbeat("m2", 2, Some(&Assignment::new())));
    assert_eq!(h.group.state(), ConsumerGroupState::Stable);
}

#[test]
fn a_leaving_member_hands_its_partitions_over() {
    let mut h = Harness::new(&[("t", 4)]);
    two_stable_members(&mut h);
    let m1_owned = h.group.member("m1").unwrap().assigned_partitions.clone();
    let response = h.ok(&heartbeat("m2", -1, None));
    assert_eq!(response.member_epoch, -1);
    assert_eq!(response.member_id.as_deref(), Some("m2"));
    assert!(h.group.member("m2").is_none());
    assert_eq!(h.group.group_epoch(), 3);
    assert_eq!(h.group.target_assignment("m1"), parts("t", &[0, 1, 2, 3]));
    let r1 = h.ok(&heartbeat("m1", 2, Some(&m1_owned)));
    assert_eq!(r1.member_epoch, 3);
    assert_eq!(assignment(&r1), Some(parts("t", &[0, 1, 2, 3])));
    h.check_replay();
    // The leave wrote the member's three tombstones.
    let tombstones = h.log.iter().filter(|r| r.value.is_none()).count();
    assert_eq!(tombstones, 3);
}

#[test]
fn a_static_member_keeps_its_assignment_across_a_restart() {
    let mut h = Harness::new(&[("t", 4)]);
    let static_join = |member: &str| join(member, &["t"]).with_instance_id(Some(s("i1")));
    h.ok(&static_join("a1"));
    h.ok(&join("m2", &["t"]));
    let all = parts("t", &[0, 1, 2, 3]);
    let keeps = h.group.target_assignment("a1");
    h.ok(&heartbeat("a1", 1, Some(&all)).with_instance_id(Some(s("i1"))));
    h.ok(&heartbeat("a1", 1, Some(&keeps)).with_instance_id(Some(s("i1"))));
    let epoch = h.group.group_epoch();

    // Temporary leave.
    let r = h.ok(&heartbeat("a1", -2, None).with_instance_id(Some(s("i1"))));
    assert_eq!(r.member_epoch, -2);
    assert_eq!(
        h.group.group_epoch(),
        epoch,
        "a static leave is not a rebalance"
    );

    // The restarted instance comes back with a new member id and gets the same partitions.
    let r = h.ok(&static_join("a2"));
    assert_eq!(assignment(&r), Some(keeps.clone()));
    assert!(h.group.member("a1").is_none());
    assert_eq!(h.group.target_assignment("a2"), keeps);
    assert_eq!(
        h.group.group_epoch(),
        epoch,
        "replacing a static member is not a rebalance"
    );
    h.check_replay();

    // While "a2" holds "i1", another member cannot join with it.
    assert_eq!(
        h.error(&static_join("a3")),
        ResponseError::UnreleasedInstanceId
    );
    // And an old incarnation heartbeating with it is fenced.
    assert_eq!(
        h.error(&heartbeat("a1", 1, None).with_instance_id(Some(s("i1")))),
        ResponseError::FencedInstanceId
    );
}

#[test]
fn a_silent_member_is_fenced_when_its_session_expires() {
    let mut h = Harness::new(&[("t", 4)]);
    two_stable_members(&mut h);
    h.now_ms += 5_000;
    h.ok(&heartbeat("m1", 2, None));
    // m2's session (renewed 5 s ago) ends first.
    assert_eq!(h.group.next_deadline(), Some(h.now_ms + 5_000));
    h.now_ms += 5_000;
    h.expire();
    assert!(
        h.group.member("m2").is_none(),
        "m2 did not heartbeat for 10 s"
    );
    assert!(h.group.member("m1").is_some());
    assert_eq!(h.group.target_assignment("m1"), parts("t", &[0, 1, 2, 3]));
    h.check_replay();
    assert_eq!(
        h.error(&heartbeat("m2", 2, None)),
        ResponseError::UnknownMemberId
    );
}

#[test]
fn a_member_that_does_not_revoke_in_time_is_fenced() {
    let mut h = Harness::new(&[("t", 4)]);
    let all = parts("t", &[0, 1, 2, 3]);
    h.ok(&join("m1", &["t"]));
    h.ok(&join("m2", &["t"]));
    h.ok(&heartbeat("m1", 1, Some(&all)));
    assert_eq!(
        h.group.member("m1").unwrap().state,
        MemberState::UnrevokedPartitions
    );
    // Heartbeats keep the session alive but do not revoke; the rebalance timeout is 1 s.
    h.now_ms += 600;
    h.ok(&heartbeat("m1", 1, Some(&all)));
    h.ok(&heartbeat("m2", 2, Some(&Assignment::new())));
    h.now_ms += 600;
    h.expire();
    assert!(h.group.member("m1").is_none());
    // m2 now gets everything.
    let r = h.ok(&heartbeat("m2", 2, Some(&Assignment::new())));
    assert_eq!(assignment(&r), Some(all));
    h.check_replay();
}

#[test]
fn a_member_that_revokes_in_time_is_not_fenced() {
    let mut h = Harness::new(&[("t", 4)]);
    two_stable_members(&mut h);
    h.now_ms += 5_000;
    h.ok(&heartbeat("m1", 2, None));
    h.ok(&heartbeat("m2", 2, None));
    h.expire();
    assert_eq!(h.group.member_count(), 2);
}

#[test]
fn stale_epochs_are_fenced_and_the_previous_one_is_forgiven() {
    let mut h = Harness::new(&[("t", 2)]);
    h.ok(&join("m1", &["t"]));
    // Ahead of the member's epoch.
    assert_eq!(
        h.error(&heartbeat("m1", 5, None)),
        ResponseError::FencedMemberEpoch
    );
    // A rejoin at epoch 0 owning nothing: the join response was lost, accepted.
    assert_eq!(h.ok(&join("m1", &["t"])).member_epoch, 1);
    // m2 joins; m1 revokes and moves to epoch 2 (previous epoch 1).
    h.ok(&join("m2", &["t"]));
    h.ok(&heartbeat("m1", 1, Some(&parts("t", &[0, 1]))));
    let keeps = h.group.member("m1").unwrap().assigned_partitions.clone();
    assert_eq!(h.ok(&heartbeat("m1", 1, Some(&keeps))).member_epoch, 2);
    // The previous epoch with owned partitions within the assignment: accepted.
    h.ok(&heartbeat("m1", 1, Some(&keeps)));
    // The previous epoch without a report of owned partitions, or owning more: fenced.
    assert_eq!(
        h.error(&heartbeat("m1", 1, None)),
        ResponseError::FencedMemberEpoch
    );
    assert_eq!(
        h.error(&heartbeat("m1", 1, Some(&parts("t", &[0, 1])))),
        ResponseError::FencedMemberEpoch
    );
    // Two epochs behind, even owning nothing.
    assert_eq!(
        h.error(&join("m1", &["t"])),
        ResponseError::FencedMemberEpoch
    );
}

#[test]
fn unknown_members_are_refused() {
    let mut h = Harness::new(&[("t", 2)]);
    h.ok(&join("m1", &["t"]));
    assert_eq!(
        h.error(&heartbeat("nobody", 1, None)),
        ResponseError::UnknownMemberId
    );
    assert_eq!(
        h.error(&heartbeat("nobody", -1, None)),
        ResponseError::UnknownMemberId
    );
    assert_eq!(
        h.error(&heartbeat("nobody", 1, None).with_instance_id(Some(s("i")))),
        ResponseError::UnknownMemberId
    );
}

#[test]
fn new_partitions_and_topics_make_a_new_target_assignment() {
    let mut h = Harness::new(&[("t", 2)]);
    h.ok(&join("m1", &["t", "u"]));
    assert_eq!(h.group.target_assignment("m1"), parts("t", &[0, 1]));

    // The coordinator notices a partition increase.
    h.set_topics(&[("t", 3)]);
    assert_eq!(h.group.group_epoch(), 2);
    assert_eq!(h.group.target_assignment("m1"), parts("t", &[0, 1, 2]));
    let r = h.ok(&heartbeat("m1", 1, Some(&parts("t", &[0, 1]))));
    assert_eq!(
        (r.member_epoch, assignment(&r)),
        (2, Some(parts("t", &[0, 1, 2])))
    );

    // A heartbeat notices a created topic by itself.
    h.topics.push(topic("u", 1));
    let r = h.ok(&heartbeat("m1", 2, Some(&parts("t", &[0, 1, 2]))));
    assert_eq!(r.member_epoch, 3);
    let mut expected = parts("t", &[0, 1, 2]);
    expected.extend(parts("u", &[0]));
    assert_eq!(assignment(&r), Some(expected));
    // Nothing changed: no new epoch, no assignment in the response.
    let r = h.ok(&heartbeat("m1", 3, None));
    assert_eq!((r.member_epoch, assignment(&r)), (3, None));
    h.check_replay();
}

#[test]
fn regex_subscriptions_follow_the_topics() {
    let mut h = Harness::new(&[("orders-eu", 1), ("orders-us", 1), ("payments", 1)]);
    let request = join("m1", &[])
        .with_subscribed_topic_names(None)
        .with_subscribed_topic_regex(Some(s("orders-.*")));
    let r = h.ok(&request);
    let mut expected = parts("orders-eu", &[0]);
    expected.extend(parts("orders-us", &[0]));
    assert_eq!(assignment(&r), Some(expected.clone()));
    // A matching topic appears.
    h.set_topics(&[
        ("orders-eu", 1),
        ("orders-us", 1),
        ("payments", 1),
        ("orders-jp", 1),
    ]);
    let owned = expected.clone();
    expected.extend(parts("orders-jp", &[0]));
    assert_eq!(h.group.target_assignment("m1"), expected);
    let r = h.ok(&heartbeat("m1", 1, Some(&owned)));
    assert_eq!(
        (r.member_epoch, assignment(&r)),
        (2, Some(expected.clone()))
    );
    h.check_replay();
    // Switching to names: the regex is cleared with an empty one and its record deleted.
    let r = h.ok(&heartbeat("m1", 2, Some(&expected))
        .with_subscribed_topic_names(Some(vec![TopicName(s("payments"))]))
        .with_subscribed_topic_regex(Some(s(""))));
    assert_eq!(r.member_epoch, 2, "must revoke the orders topics first");
    assert!(h.group.resolved_regexes.is_empty());
    h.check_replay();
    // An invalid regex.
    let bad = join("m2", &[])
        .with_subscribed_topic_names(None)
        .with_subscribed_topic_regex(Some(s("(")));
    assert_eq!(h.error(&bad), ResponseError::InvalidRegularExpression);
    assert!(h.group.member("m2").is_none());
}

#[test]
fn requests_are_validated_as_kafka_does() {
    let mut h = Harness::new(&[("t", 1)]);
    let cases: Vec<(ConsumerGroupHeartbeatRequest, i16, ResponseError, &str)> = vec![
        (
            join("", &["t"]),
            1,
            ResponseError::InvalidRequest,
            "MemberId can't be empty.",
        ),
        (
            join("m", &["t"]).with_group_id(s(" ").into()),
            1,
            ResponseError::InvalidRequest,
            "GroupId can't be empty.",
        ),
        (
            join("m", &["t"]).with_instance_id(Some(s(""))),
            1,
            ResponseError::InvalidRequest,
            "InstanceId can't be empty.",
        ),
        (
            join("m", &["t"]).with_rack_id(Some(s("\t"))),
            1,
            ResponseError::InvalidRequest,
            "RackId can't be empty.",
        ),
        (
            join("m", &["t"]).with_rebalance_timeout_ms(-1),
            1,
            ResponseError::InvalidRequest,
            "RebalanceTimeoutMs must be provided in first request.",
        ),
        (
            join("m", &["t"]).with_topic_partitions(None),
            1,
            ResponseError::InvalidRequest,
            "TopicPartitions must be empty when (re-)joining.",
        ),
        (
            join("m", &["t"]).with_subscribed_topic_names(None),
            1,
            ResponseError::InvalidRequest,
            "Either SubscribedTopicNames or SubscribedTopicRegex must be non-null when (re-)joining.",
        ),
        (
            heartbeat("m", -2, None),
            1,
            ResponseError::InvalidRequest,
            "InstanceId can't be null.",
        ),
        (
            heartbeat("m", -3, None),
            1,
            ResponseError::InvalidRequest,
            "MemberEpoch is invalid.",
        ),
        (
            heartbeat("", 1, None),
            0,
            ResponseError::InvalidRequest,
            "MemberId can't be empty.",
        ),
        (
            join("m", &["t"]).with_server_assignor(Some(s("sticky"))),
            1,
            ResponseError::UnsupportedAssignor,
            "ServerAssignor sticky is not supported. Supported assignors: uniform, range.",
        ),
    ];
    for (request, version, code, message) in cases {
        let response = h.send_version(&request, version);
        assert_eq!(response.error_code, code.code(), "{message}");
        assert_eq!(response.error_message.as_deref(), Some(message));
    }
    assert!(h.group.is_empty());
    assert!(h.log.is_empty());
    // Version 0 lets the server generate the member id.
    let response = h.send_version(&join("", &["t"]), 0);
    assert_eq!(response.error_code, 0);
    let id = response.member_id.unwrap();
    assert_eq!(id.len(), 22);
    assert!(h.group.member(&id).is_some());
}

#[test]
fn the_group_size_is_bounded() {
    let mut h = Harness::new(&[("t", 1)]);
    h.config.max_size = 1;
    h.ok(&join("m1", &["t"]));
    assert_eq!(
        h.error(&join("m2", &["t"])),
        ResponseError::GroupMaxSizeReached
    );
    // Existing members still heartbeat.
    h.ok(&heartbeat("m1", 1, None));
}

#[test]
fn the_assignor_is_the_one_members_ask_for() {
    let mut h = Harness::new(&[("t", 4), ("u", 4)]);
    h.ok(&join("m1", &["t", "u"]).with_server_assignor(Some(s("range"))));
    h.ok(&join("m2", &["t", "u"]));
    // Range co-partitions: m1 has partitions 0-1 of both topics.
    let mut expected = parts("t", &[0, 1]);
    expected.extend(parts("u", &[0, 1]));
    assert_eq!(h.group.target_assignment("m1"), expected);
    let described = h.group.describe(&h.topics, &h.config);
    assert_eq!(described.assignor_name.as_str(), "range");
}

#[test]
fn every_prefix_of_the_log_replays_and_the_whole_log_equals_the_group() {
    let mut h = Harness::new(&[("t", 4), ("u", 2)]);
    two_stable_members(&mut h);
    h.ok(&join("s1", &["t", "u"]).with_instance_id(Some(s("i1"))));
    h.set_topics(&[("t", 6), ("u", 2)]);
    h.ok(&heartbeat("m1", 2, None));
    h.ok(&heartbeat("s1", -2, None).with_instance_id(Some(s("i1"))));
    h.ok(&heartbeat("m2", -1, None));
    h.check_replay();
    for len in 0..=h.log.len() {
        let group = Harness::replay(&h.log[..len]);
        assert!(group.group_epoch() >= group.assignment_epoch() || group.is_empty());
    }
    // Loading arms fresh sessions.
    let mut loaded = Harness::replay(&h.log);
    loaded.finish_loading(&h.config, 50_000);
    assert_eq!(loaded.next_deadline(), Some(60_000));
}

#[test]
fn tombstones_delete_the_group() {
    let mut h = Harness::new(&[("t", 2)]);
    h.ok(&join("m1", &["t"]));
    h.ok(&heartbeat("m1", -1, None));
    assert!(h.group.is_empty());
    assert_eq!(h.group.state(), ConsumerGroupState::Empty);
    let mut log = h.log.clone();
    log.extend(h.group.tombstones());
    let group = Harness::replay(&log);
    assert!(group.is_dead());
    assert_eq!(group.state(), ConsumerGroupState::Dead);
    assert_eq!(
        h.group.tombstones().last().unwrap().key,
        record::group_epoch_record("g", 0).key
    );
}

#[test]
fn describe_shows_members_and_their_target() {
    let mut h = Harness::new(&[("t", 2)]);
    h.ok(&join("m1", &["t"]).with_rack_id(Some(s("r1"))));
    let d = h.group.describe(&h.topics, &h.config);
    assert_eq!(d.group_state.as_str(), "Stable");
    assert_eq!((d.group_epoch, d.assignment_epoch), (1, 1));
    assert_eq!(d.assignor_name.as_str(), "uniform");
    let m = &d.members[0];
    assert_eq!(m.member_id.as_str(), "m1");
    assert_eq!(m.rack_id.as_deref(), Some("r1"));
    assert_eq!(m.member_type, 1);
    assert_eq!(m.assignment.topic_partitions[0].topic_name.0.as_str(), "t");
    assert_eq!(
        m.target_assignment.topic_partitions[0].partitions,
        vec![0, 1]
    );
}

#[test]
fn offset_commits_and_fetches_check_the_member_epoch() {
    let mut g = Harness::new(&[("t", 1)]);
    // Empty group: anyone with a negative epoch may commit.
    assert_eq!(
        g.group.validate_offset_commit("", None, -1, false, 8),
        Ok(())
    );
    g.ok(&join("m1", &["t"]));
    let group = &g.group;
    assert_eq!(
        group.validate_offset_commit("", None, -1, false, 9),
        Err(ResponseError::UnknownMemberId)
    );
    assert_eq!(
        group.validate_offset_commit("x", None, 1, false, 9),
        Err(ResponseError::UnknownMemberId)
    );
    assert_eq!(
        group.validate_offset_commit("m1", None, 1, false, 9),
        Ok(())
    );
    assert_eq!(
        group.validate_offset_commit("m1", None, 0, false, 9),
        Err(ResponseError::StaleMemberEpoch)
    );
    assert_eq!(
        group.validate_offset_commit("m1", None, 1, false, 8),
        Err(ResponseError::UnsupportedVersion)
    );
    // TxnOffsetCommit: any version, and without member fields it is not checked.
    assert_eq!(group.validate_offset_commit("m1", None, 1, true, 3), Ok(()));
    assert_eq!(group.validate_offset_commit("", None, -1, true, 3), Ok(()));
    assert_eq!(
        group.validate_offset_commit("", Some("i"), -1, true, 3),
        Err(ResponseError::UnknownMemberId)
    );
    assert_eq!(group.validate_offset_fetch(None, -1), Ok(()));
    assert_eq!(group.validate_offset_fetch(Some("m1"), 1), Ok(()));
    assert_eq!(
        group.validate_offset_fetch(Some("m1"), 2),
        Err(ResponseError::StaleMemberEpoch)
    );
    assert_eq!(
        group.validate_offset_fetch(Some("x"), 1),
        Err(ResponseError::UnknownMemberId)
    );
    assert_eq!(
        group.validate_offset_fetch(Some(""), -1),
        Err(ResponseError::UnknownMemberId)
    );
}
