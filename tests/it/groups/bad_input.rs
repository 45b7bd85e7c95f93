//! Stale, unknown or malformed group requests on raw sockets get Kafka's exact error codes, and
//! the group they were aimed at stays healthy: its real member still heartbeats, and a
//! librdkafka consumer still resumes from its commits.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use kafka_protocol::messages::JoinGroupRequest;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::Message;

use super::raw::{self, code};
use super::{blocking, classic_config, produce_per_partition};
use crate::support;
use crate::wire::Wire;

/// An embedded group broker, a topic with `partitions`, and a fresh group name.
async fn setup(partitions: i32) -> (kairos::BrokerHandle, String, String) {
    let broker = support::group_broker().await;
    let topic = support::topic_name("bad");
    support::create_topic(&broker.bootstrap_servers(), &topic, partitions, &[]).await;
    (broker, topic, support::topic_name("bad-group"))
}

/// How: JoinGroup v4+ with an empty member id is MEMBER_ID_REQUIRED (79) and carries an id; a
/// rejoin with that id succeeds (`raw::member` asserts both). Session timeouts outside
/// `group.min.session.timeout.ms`..`group.max.session.timeout.ms` are INVALID_SESSION_TIMEOUT.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn join_requires_a_member_id_and_a_session_timeout_in_range() {
    let (broker, topic, group) = setup(2).await;
    let address = broker.bootstrap_servers();
    blocking(move || {
        let mut wire = Wire::connect(&address);
        raw::require_classic(&mut wire);
        let _ = raw::find_coordinators(&mut wire, &[&group]);
        for session_timeout_ms in [100, 120_000] {
            let request =
                raw::join_request(&group, "", &topic).with_session_timeout_ms(session_timeout_ms);
            let response = raw::join(&mut wire, &request);
            assert_eq!(
                response.error_code,
                code::INVALID_SESSION_TIMEOUT,
                "{session_timeout_ms} ms: {response:?}"
            );
        }
        let member = raw::member(&mut wire, &group, &topic, &[0, 1]);
        assert_eq!(
            raw::heartbeat(&mut wire, &group, member.generation, &member.member_id),
            code::NONE
        );
        let left = raw::leave(&mut wire, &group, &member.member_id);
        assert_eq!(left.error_code, code::NONE, "{left:?}");
        assert_eq!(left.members[0].error_code, code::NONE);
    })
    .await;
    broker.shutdown().await.unwrap();
}

/// How: a member joins and syncs. SyncGroup and Heartbeat with a generation it never had are
/// ILLEGAL_GENERATION (22); Heartbeat and SyncGroup from an unknown member id are
/// UNKNOWN_MEMBER_ID (25); a JoinGroup with another protocol type is
/// INCONSISTENT_GROUP_PROTOCOL (23). After each, the real member heartbeats with no error.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn stale_generations_and_unknown_members_are_refused_and_the_group_stays_healthy() {
    let (broker, topic, group) = setup(2).await;
    let address = broker.bootstrap_servers();
    blocking(move || {
        let mut wire = Wire::connect(&address);
        raw::require_classic(&mut wire);
        let _ = raw::find_coordinators(&mut wire, &[&group]);
        let member = raw::member(&mut wire, &group, &topic, &[0, 1]);
        let (generation, id) = (member.generation, member.member_id.as_str());
        let check_healthy = |wire: &mut Wire, after: &str| {
            assert_eq!(
                raw::heartbeat(wire, &group, generation, id),
                code::NONE,
                "after {after}"
            );
        };

        let synced = raw::sync(
            &mut wire,
            &group,
            generation + 1,
            id,
            &[(id, member.assignment.clone())],
        );
        assert_eq!(synced.error_code, code::ILLEGAL_GENERATION, "{synced:?}");
        check_healthy(&mut wire, "a sync with a wrong generation");
        assert_eq!(
            raw::heartbeat(&mut wire, &group, generation + 1, id),
            code::ILLEGAL_GENERATION
        );
        check_healthy(&mut wire, "a heartbeat with a wrong generation");

        assert_eq!(
            raw::heartbeat(&mut wire, &group, generation, "ghost"),
            code::UNKNOWN_MEMBER_ID
        );
        check_healthy(&mut wire, "a heartbeat from an unknown member");
        let synced = raw::sync(&mut wire, &group, generation, "ghost", &[]);
        assert_eq!(synced.error_code, code::UNKNOWN_MEMBER_ID, "{synced:?}");
        check_healthy(&mut wire, "a sync from an unknown member");

        let mut other = Wire::connect(&address);
        let foreign: JoinGroupRequest =
            raw::join_request(&group, "", &topic).with_protocol_type(raw::text("connect"));
        let refused = raw::join(&mut other, &foreign);
        assert_eq!(
            refused.error_code,
            code::INCONSISTENT_GROUP_PROTOCOL,
            "{refused:?}"
        );
        check_healthy(&mut wire, "a join with another protocol type");

        let fetched = raw::fetch_offsets(&mut wire, &[(&group, Some((&topic, &[0])))]);
        assert_eq!(raw::committed_of(&fetched, &group)[&(topic.clone(), 0)], -1);
        assert_eq!(raw::leave(&mut wire, &group, id).error_code, code::NONE);
    })
    .await;
    broker.shutdown().await.unwrap();
}

/// How: a member (M1) is Stable; a second one (M2) sends JoinGroup, which waits for M1. M1's
/// next heartbeat is REBALANCE_IN_PROGRESS (27); M1 rejoins, both get the new generation with
/// M1 as leader (only the leader sees the member list); M2's SyncGroup waits for the leader's,
/// and each gets the assignment the leader chose. The old generation is then
/// ILLEGAL_GENERATION.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_rebalance_is_announced_by_heartbeat_and_completes_when_all_rejoin() {
    let (broker, topic, group) = setup(4).await;
    let address = broker.bootstrap_servers();
    blocking(move || {
        let mut first = Wire::connect(&address);
        raw::require_classic(&mut first);
        let _ = raw::find_coordinators(&mut first, &[&group]);
        let m1 = raw::member(&mut first, &group, &topic, &[0, 1, 2, 3]);

        let mut second = Wire::connect(&address);
        let asked = raw::join(&mut second, &raw::join_request(&group, "", &topic));
        assert_eq!(asked.error_code, code::MEMBER_ID_REQUIRED);
        let m2_id = asked.member_id.to_string();
        let pending_join = second.send(raw::JOIN_GROUP, &raw::join_request(&group, &m2_id, &topic));

        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            let error = raw::heartbeat(&mut first, &group, m1.generation, &m1.member_id);
            if error == code::REBALANCE_IN_PROGRESS {
                break;
            }
            assert_eq!(error, code::NONE, "heartbeat while M2 joins");
            assert!(
                Instant::now() < deadline,
                "M1 was never told of the rebalance"
            );
            std::thread::sleep(Duration::from_millis(50));
        }

        let rejoined = raw::join(
            &mut first,
            &raw::join_request(&group, &m1.member_id, &topic),
        );
        assert_eq!(rejoined.error_code, code::NONE, "{rejoined:?}");
        let joined = second.receive::<JoinGroupRequest>(raw::JOIN_GROUP, pending_join);
        assert_eq!(joined.error_code, code::NONE, "{joined:?}");
        let generation = rejoined.generation_id;
        assert_eq!(generation, m1.generation + 1);
        assert_eq!(joined.generation_id, generation);
        assert_eq!(
            rejoined.leader.as_str(),
            m1.member_id,
            "the existing member stays leader"
        );
        assert_eq!(joined.leader, rejoined.leader);
        assert_eq!(joined.protocol_name.as_deref(), Some("range"));
        let mut listed: Vec<String> = rejoined
            .members
            .iter()
            .map(|m| m.member_id.to_string())
            .collect();
        listed.sort();
        let mut expected = vec![m1.member_id.clone(), m2_id.clone()];
        expected.sort();
        assert_eq!(listed, expected, "the leader gets every member");
        assert!(joined.members.is_empty(), "a follower gets no member list");

        // Between JoinGroup and SyncGroup (CompletingRebalance) a heartbeat of the new
        // generation is normal: Kafka resets the session and answers with no error.
        assert_eq!(
            raw::heartbeat(&mut second, &group, generation, &m2_id),
            code::NONE
        );
        let pending_sync = second.send(
            raw::SYNC_GROUP,
            &kafka_protocol::messages::SyncGroupRequest::default()
                .with_group_id(raw::group_id(&group))
                .with_generation_id(generation)
                .with_member_id(raw::text(&m2_id)),
        );
        let (mine, theirs) = (
            raw::assignment(&topic, &[0, 1]),
            raw::assignment(&topic, &[2, 3]),
        );
        let synced = raw::sync(
            &mut first,
            &group,
            generation,
            &m1.member_id,
            &[(&m1.member_id, mine.clone()), (&m2_id, theirs.clone())],
        );
        assert_eq!(
            (synced.error_code, synced.assignment.clone()),
            (code::NONE, mine)
        );
        let follower = second
            .receive::<kafka_protocol::messages::SyncGroupRequest>(raw::SYNC_GROUP, pending_sync);
        assert_eq!(
            (follower.error_code, follower.assignment),
            (code::NONE, theirs)
        );

        assert_eq!(
            raw::heartbeat(&mut first, &group, generation, &m1.member_id),
            code::NONE
        );
        assert_eq!(
            raw::heartbeat(&mut second, &group, generation, &m2_id),
            code::NONE
        );
        assert_eq!(
            raw::heartbeat(&mut first, &group, m1.generation, &m1.member_id),
            code::ILLEGAL_GENERATION
        );
    })
    .await;
    broker.shutdown().await.unwrap();
}

/// How: a member commits in one request to an existing partition, a partition past the
/// topic's count, a topic that never existed and a deleted topic: the last three are
/// UNKNOWN_TOPIC_OR_PARTITION (3) each, the first succeeds. The member leaves; a librdkafka
/// consumer with `auto.offset.reset=error` then resumes exactly from the good commits.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn commits_to_missing_topics_or_partitions_are_refused_per_partition() {
    let (broker, topic, group) = setup(2).await;
    let bootstrap = broker.bootstrap_servers();
    let deleted = support::topic_name("bad-deleted");
    support::create_topic(&bootstrap, &deleted, 1, &[]).await;
    let admin = support::admin(&bootstrap);
    for result in admin
        .delete_topics(&[&deleted], &support::admin_options())
        .await
        .unwrap()
    {
        result.unwrap();
    }
    produce_per_partition(&bootstrap, &topic, 2, 10).await;
    {
        let (address, topic, group) = (bootstrap.clone(), topic.clone(), group.clone());
        blocking(move || {
            let mut wire = Wire::connect(&address);
            raw::require_classic(&mut wire);
            let _ = raw::find_coordinators(&mut wire, &[&group]);
            let member = raw::member(&mut wire, &group, &topic, &[0, 1]);
            let never = support::topic_name("bad-never");
            let errors = raw::commit(
                &mut wire,
                &group,
                member.generation,
                &member.member_id,
                &[
                    (&topic, 0, 6),
                    (&topic, 1, 0),
                    (&topic, 99, 1),
                    (&never, 0, 1),
                    (&deleted, 0, 1),
                ],
            );
            let expected: BTreeMap<(String, i32), i16> = [
                ((topic.clone(), 0), code::NONE),
                ((topic.clone(), 1), code::NONE),
                ((topic.clone(), 99), code::UNKNOWN_TOPIC_OR_PARTITION),
                ((never.clone(), 0), code::UNKNOWN_TOPIC_OR_PARTITION),
                ((deleted.clone(), 0), code::UNKNOWN_TOPIC_OR_PARTITION),
            ]
            .into_iter()
            .collect();
            assert_eq!(errors, expected);
            assert_eq!(
                raw::heartbeat(&mut wire, &group, member.generation, &member.member_id),
                code::NONE
            );
            assert_eq!(
                raw::leave(&mut wire, &group, &member.member_id).error_code,
                code::NONE
            );
        })
        .await;
    }
    blocking(move || {
        let mut config = classic_config(&bootstrap, &group);
        let _ = config.set("auto.offset.reset", "error");
        let consumer: BaseConsumer = config.create().unwrap();
        consumer.subscribe(&[&topic]).unwrap();
        let read = support::consume(&consumer, 14, Duration::from_secs(20));
        let mut positions: Vec<(i32, i64)> =
            read.iter().map(|m| (m.partition(), m.offset())).collect();
        positions.sort_unstable();
        let expected: Vec<(i32, i64)> = (6..10)
            .map(|o| (0, o))
            .chain((0..10).map(|o| (1, o)))
            .collect();
        assert_eq!(
            positions, expected,
            "resumed from the commits that succeeded"
        );
    })
    .await;
    broker.shutdown().await.unwrap();
}

/// How: a static member (instance `i1`) joins without the MEMBER_ID_REQUIRED round trip and
/// syncs. A restart of it (same instance id, empty member id) takes over: same generation, the
/// old assignment back from SyncGroup, and the old member id is now FENCED_INSTANCE_ID (82).
/// An admin LeaveGroup by instance id removes it (an unknown instance id is UNKNOWN_MEMBER_ID
/// for that member only), after which its heartbeats are UNKNOWN_MEMBER_ID.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_static_member_is_replaced_by_its_restart_and_removed_by_instance_id() {
    let (broker, topic, group) = setup(2).await;
    let address = broker.bootstrap_servers();
    blocking(move || {
        let mut wire = Wire::connect(&address);
        raw::require_classic(&mut wire);
        let _ = raw::find_coordinators(&mut wire, &[&group]);
        let static_join = |wire: &mut Wire| {
            let request =
                raw::join_request(&group, "", &topic).with_group_instance_id(Some(raw::text("i1")));
            let response = raw::join(wire, &request);
            assert_eq!(
                response.error_code,
                code::NONE,
                "a static member needs no member id round trip: {response:?}"
            );
            response
        };
        let first = static_join(&mut wire);
        let old_id = first.member_id.to_string();
        let assignment = raw::assignment(&topic, &[0, 1]);
        let synced = raw::sync(
            &mut wire,
            &group,
            first.generation_id,
            &old_id,
            &[(&old_id, assignment.clone())],
        );
        assert_eq!(synced.error_code, code::NONE);

        let restarted = static_join(&mut wire);
        let new_id = restarted.member_id.to_string();
        assert_ne!(new_id, old_id, "the restarted member gets a new member id");
        assert_eq!(
            restarted.generation_id, first.generation_id,
            "no rebalance for a known static member"
        );
        let synced = raw::sync(&mut wire, &group, restarted.generation_id, &new_id, &[]);
        assert_eq!(
            (synced.error_code, synced.assignment),
            (code::NONE, assignment),
            "its assignment is kept"
        );
        let generation = restarted.generation_id;
        assert_eq!(
            raw::static_heartbeat(&mut wire, &group, generation, &old_id, Some("i1")),
            code::FENCED_INSTANCE_ID,
            "the replaced member is fenced"
        );
        assert_eq!(
            raw::static_heartbeat(&mut wire, &group, generation, &new_id, Some("i1")),
            code::NONE
        );

        let left = raw::leave_members(&mut wire, &group, &[("", Some("i1")), ("", Some("nobody"))]);
        assert_eq!(left.error_code, code::NONE, "{left:?}");
        let errors: Vec<i16> = left.members.iter().map(|m| m.error_code).collect();
        assert_eq!(errors, [code::NONE, code::UNKNOWN_MEMBER_ID], "{left:?}");
        assert_eq!(
            raw::static_heartbeat(&mut wire, &group, generation, &new_id, Some("i1")),
            code::UNKNOWN_MEMBER_ID
        );
    })
    .await;
    broker.shutdown().await.unwrap();
}

/// How: a client pipelines requests on one connection, and Kafka applies them in order (it
/// reads the next request only after answering the previous one). A leader commits at its
/// generation and, without waiting, rejoins (which starts a new generation, completed at once
/// since it is alone): the commit was sent first, so it must succeed at the old generation.
/// Fifty rounds, to catch a commit validated after the rejoin it preceded.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn pipelined_commit_then_rejoin_take_effect_in_order() {
    let (broker, topic, group) = setup(1).await;
    let address = broker.bootstrap_servers();
    blocking(move || {
        let mut wire = Wire::connect(&address);
        raw::require_classic(&mut wire);
        let _ = raw::find_coordinators(&mut wire, &[&group]);
        let member = raw::member(&mut wire, &group, &topic, &[0]);
        let mut generation = member.generation;
        for round in 0..50_i64 {
            let commit =
                raw::commit_request(&group, generation, &member.member_id, &[(&topic, 0, round)]);
            let committed = wire.send(raw::OFFSET_COMMIT, &commit);
            let joined = wire.send(
                raw::JOIN_GROUP,
                &raw::join_request(&group, &member.member_id, &topic),
            );
            let commit = wire.receive::<kafka_protocol::messages::OffsetCommitRequest>(
                raw::OFFSET_COMMIT,
                committed,
            );
            let join = wire.receive::<JoinGroupRequest>(raw::JOIN_GROUP, joined);
            assert_eq!(
                commit.topics[0].partitions[0].error_code,
                code::NONE,
                "round {round}: the commit sent at generation {generation} before the rejoin"
            );
            assert_eq!(join.error_code, code::NONE, "{join:?}");
            assert_eq!(
                join.generation_id,
                generation + 1,
                "the leader's rejoin starts a generation"
            );
            generation = join.generation_id;
            let synced = raw::sync(
                &mut wire,
                &group,
                generation,
                &member.member_id,
                &[(&member.member_id, member.assignment.clone())],
            );
            assert_eq!(synced.error_code, code::NONE);
        }
    })
    .await;
    broker.shutdown().await.unwrap();
}

/// How: members that stop taking part are removed by the coordinator's timers. A member that
/// does not rejoin a rebalance is dropped when the rebalance timeout (1 s) expires, and the
/// others' JoinGroup completes without it; a member that stops heartbeating is dropped when
/// its session (1 s) expires, leaving the group Empty. Each then gets UNKNOWN_MEMBER_ID.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn members_that_stop_taking_part_are_removed_by_their_timeouts() {
    let (broker, topic, group) = setup(2).await;
    let address = broker.bootstrap_servers();
    blocking(move || {
        let quick = |member: &str| {
            raw::join_request(&group, member, &topic)
                .with_session_timeout_ms(1000)
                .with_rebalance_timeout_ms(1000)
        };
        let mut first = Wire::connect(&address);
        raw::require_classic(&mut first);
        let _ = raw::find_coordinators(&mut first, &[&group]);
        let asked = raw::join(&mut first, &quick(""));
        let m1 = asked.member_id.to_string();
        let joined = raw::join(&mut first, &quick(&m1));
        assert_eq!(joined.error_code, code::NONE, "{joined:?}");
        let synced = raw::sync(
            &mut first,
            &group,
            joined.generation_id,
            &m1,
            &[(&m1, raw::assignment(&topic, &[0, 1]))],
        );
        assert_eq!(synced.error_code, code::NONE);

        // M2 joins; M1 keeps heartbeating (it is told of the rebalance) but never rejoins.
        let mut second = Wire::connect(&address);
        let m2 = raw::join(&mut second, &quick("")).member_id.to_string();
        let pending = second.send(raw::JOIN_GROUP, &quick(&m2));
        second.set_read_timeout(Duration::from_secs(10));
        let started = Instant::now();
        let m1_beat = std::thread::spawn({
            let (address, group, m1) = (address.clone(), group.clone(), m1.clone());
            let generation = joined.generation_id;
            move || {
                let mut wire = Wire::connect(&address);
                let mut seen = Vec::new();
                for _ in 0..30 {
                    let error = raw::heartbeat(&mut wire, &group, generation, &m1);
                    seen.push(error);
                    if error == code::UNKNOWN_MEMBER_ID {
                        break;
                    }
                    std::thread::sleep(Duration::from_millis(100));
                }
                seen
            }
        });
        let completed = second.receive::<JoinGroupRequest>(raw::JOIN_GROUP, pending);
        let took = started.elapsed();
        assert_eq!(completed.error_code, code::NONE, "{completed:?}");
        assert_eq!(
            completed.leader.as_str(),
            m2,
            "the member that rejoined leads the new generation"
        );
        assert_eq!(completed.members.len(), 1, "{completed:?}");
        assert!(
            took < Duration::from_secs(5),
            "the rebalance waited {took:?} for a 1 s rebalance timeout"
        );
        let beats = m1_beat.join().unwrap();
        assert_eq!(
            beats.last(),
            Some(&code::UNKNOWN_MEMBER_ID),
            "M1 was removed: {beats:?}"
        );
        assert!(
            beats.contains(&code::REBALANCE_IN_PROGRESS),
            "M1 was told of the rebalance: {beats:?}"
        );

        // M2 syncs, then goes silent: its 1 s session expires and the group is Empty.
        let generation = completed.generation_id;
        let synced = raw::sync(
            &mut second,
            &group,
            generation,
            &m2,
            &[(&m2, raw::assignment(&topic, &[0, 1]))],
        );
        assert_eq!(synced.error_code, code::NONE);
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            let described = second.call(
                raw::DESCRIBE_GROUPS,
                &kafka_protocol::messages::DescribeGroupsRequest::default()
                    .with_groups(vec![raw::group_id(&group)]),
            );
            if described.groups[0].group_state.as_str() == "Empty" {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "M2's session never expired: {described:?}"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        assert_eq!(
            raw::heartbeat(&mut second, &group, generation, &m2),
            code::UNKNOWN_MEMBER_ID
        );
    })
    .await;
    broker.shutdown().await.unwrap();
}
