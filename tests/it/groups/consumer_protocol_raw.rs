//! KIP-848 on raw sockets, where the exact error code matters: ConsumerGroupHeartbeat
//! fencing, member epochs in OffsetCommit and OffsetFetch, the group size limit, the
//! revocation (rebalance) timeout.

use std::time::{Duration, Instant};

use kafka_protocol::messages::offset_fetch_request::{
    OffsetFetchRequestGroup, OffsetFetchRequestTopics,
};
use kafka_protocol::messages::{
    ApiKey, ConsumerGroupHeartbeatRequest, ConsumerGroupHeartbeatResponse, OffsetFetchRequest,
    consumer_group_heartbeat_request,
};
use kafka_protocol::protocol::StrBytes;

use super::blocking;
use super::raw::{self, code};
use crate::support;
use crate::wire::Wire;

/// One ConsumerGroupHeartbeat at the highest version both sides know (v1 makes the client
/// choose its member id, KIP-1082).
fn heartbeat(
    wire: &mut Wire,
    version: i16,
    request: &ConsumerGroupHeartbeatRequest,
) -> ConsumerGroupHeartbeatResponse {
    wire.call(version, request)
}

/// How: on a raw socket, a member joins (epoch 0) and gets an epoch; a heartbeat with an epoch
/// the member never had is FENCED_MEMBER_EPOCH, one from an unknown member id is
/// UNKNOWN_MEMBER_ID; afterwards the real member still heartbeats with no error and leaves
/// (epoch -1).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn kip848_heartbeat_refuses_unknown_members_and_fenced_epochs() {
    let broker = support::group_broker().await;
    let bootstrap = broker.bootstrap_servers();
    let topic = support::topic_name("kip848-raw");
    support::create_topic(&bootstrap, &topic, 3, &[]).await;
    let group = support::topic_name("kip848-raw-group");
    blocking(move || {
        let mut wire = Wire::connect(&bootstrap);
        let table = raw::advertised(&mut wire);
        let (min, max) = *table
            .get(&(ApiKey::ConsumerGroupHeartbeat as i16))
            .expect("ConsumerGroupHeartbeat is advertised");
        let version = max.min(1);
        assert!(
            min <= version,
            "ConsumerGroupHeartbeat advertised as {min}..={max}"
        );
        let chosen_id = if version >= 1 {
            uuid::Uuid::new_v4().to_string()
        } else {
            String::new()
        };
        let base = ConsumerGroupHeartbeatRequest::default().with_group_id(raw::group_id(&group));
        let joined = heartbeat(
            &mut wire,
            version,
            &base
                .clone()
                .with_member_id(raw::text(&chosen_id))
                .with_member_epoch(0)
                .with_rebalance_timeout_ms(5000)
                .with_subscribed_topic_names(Some(vec![raw::topic_name(&topic)]))
                .with_topic_partitions(Some(vec![])),
        );
        assert_eq!(joined.error_code, code::NONE, "{joined:?}");
        assert!(joined.member_epoch >= 1, "{joined:?}");
        assert!(joined.heartbeat_interval_ms > 0);
        let member_id = joined.member_id.clone().expect("a member id").to_string();
        if version >= 1 {
            assert_eq!(member_id, chosen_id, "v1 keeps the client's member id");
        }
        let epoch = joined.member_epoch;
        let beat = |wire: &mut Wire, member: &str, epoch: i32| {
            heartbeat(
                wire,
                version,
                &base
                    .clone()
                    .with_member_id(raw::text(member))
                    .with_member_epoch(epoch),
            )
        };

        let fenced = beat(&mut wire, &member_id, epoch + 7);
        assert_eq!(fenced.error_code, code::FENCED_MEMBER_EPOCH, "{fenced:?}");
        let unknown = beat(&mut wire, &uuid::Uuid::new_v4().to_string(), 3);
        assert_eq!(unknown.error_code, code::UNKNOWN_MEMBER_ID, "{unknown:?}");

        // The errors answer only those requests (Kafka writes no record for them): the member
        // keeps its epoch, and a heartbeat with it still works.
        let healthy = beat(&mut wire, &member_id, epoch);
        assert_eq!(healthy.error_code, code::NONE, "{healthy:?}");
        let left = beat(&mut wire, &member_id, -1);
        assert_eq!(left.error_code, code::NONE, "{left:?}");
        assert_eq!(left.member_epoch, -1);
    })
    .await;
    broker.shutdown().await.unwrap();
}

/// How: a raw KIP-848 member joins. OffsetCommit v9 carries its member epoch: the current one
/// commits; another epoch is STALE_MEMBER_EPOCH (113), an unknown member UNKNOWN_MEMBER_ID,
/// a commit outside any generation (epoch -1) into the non-empty group UNKNOWN_MEMBER_ID, and
/// the pre-KIP-848 v8 UNSUPPORTED_VERSION (35), each for every partition. OffsetFetch v9 checks
/// the epoch the same way, and answers an admin fetch (no member) regardless. Nothing but the
/// good commit changes the committed offset.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn kip848_offset_commit_and_fetch_check_the_member_epoch() {
    let broker = support::group_broker().await;
    let bootstrap = broker.bootstrap_servers();
    let topic = support::topic_name("epoch");
    support::create_topic(&bootstrap, &topic, 2, &[]).await;
    let group = support::topic_name("epoch-group");
    blocking(move || {
        let mut wire = Wire::connect(&bootstrap);
        raw::require(
            &mut wire,
            &[(ApiKey::OffsetCommit, 9), (ApiKey::OffsetFetch, 9)],
        );
        let version = raw::heartbeat_version(&mut wire);
        let joined = raw::kip848_join(&mut wire, version, &group, &[&topic]);
        let (member, epoch) = (
            joined.member_id.clone().unwrap().to_string(),
            joined.member_epoch,
        );
        let offsets = [(topic.as_str(), 0, 5), (topic.as_str(), 1, 6)];
        let commit = |wire: &mut Wire, version: i16, member: &str, epoch: i32| -> Vec<i16> {
            raw::commit_at(wire, version, &group, epoch, member, &offsets)
                .into_values()
                .collect()
        };
        assert_eq!(
            commit(&mut wire, 9, &member, epoch),
            [code::NONE, code::NONE]
        );
        let stale = [code::STALE_MEMBER_EPOCH, code::STALE_MEMBER_EPOCH];
        assert_eq!(
            commit(&mut wire, 9, &member, epoch + 1),
            stale,
            "a later epoch"
        );
        assert_eq!(
            commit(&mut wire, 9, &member, epoch - 1),
            stale,
            "an earlier epoch"
        );
        let unknown = [code::UNKNOWN_MEMBER_ID, code::UNKNOWN_MEMBER_ID];
        assert_eq!(commit(&mut wire, 9, "ghost", epoch), unknown);
        assert_eq!(
            commit(&mut wire, 9, "", -1),
            unknown,
            "a simple commit into a live group"
        );
        let old = [code::UNSUPPORTED_VERSION, code::UNSUPPORTED_VERSION];
        assert_eq!(
            commit(&mut wire, 8, &member, epoch),
            old,
            "KIP-848 members commit with v9+"
        );

        let fetch = |wire: &mut Wire, member: Option<&str>, epoch: i32| {
            let request = OffsetFetchRequest::default().with_groups(vec![
                OffsetFetchRequestGroup::default()
                    .with_group_id(raw::group_id(&group))
                    .with_member_id(member.map(raw::text))
                    .with_member_epoch(epoch)
                    .with_topics(Some(vec![
                        OffsetFetchRequestTopics::default()
                            .with_name(raw::topic_name(&topic))
                            .with_partition_indexes(vec![0, 1]),
                    ])),
            ]);
            wire.call(9, &request)
        };
        let fetched = fetch(&mut wire, Some(&member), epoch);
        let committed = raw::committed_of(&fetched, &group);
        assert_eq!(committed.values().copied().collect::<Vec<_>>(), [5, 6]);
        let stale = fetch(&mut wire, Some(&member), epoch + 1);
        assert_eq!(
            stale.groups[0].error_code,
            code::STALE_MEMBER_EPOCH,
            "{stale:?}"
        );
        let ghost = fetch(&mut wire, Some("ghost"), epoch);
        assert_eq!(
            ghost.groups[0].error_code,
            code::UNKNOWN_MEMBER_ID,
            "{ghost:?}"
        );
        let admin = fetch(&mut wire, None, -1);
        assert_eq!(
            raw::committed_of(&admin, &group)
                .values()
                .copied()
                .collect::<Vec<_>>(),
            [5, 6]
        );
    })
    .await;
    broker.shutdown().await.unwrap();
}

/// How: with `group.consumer.max.size=2`, two raw KIP-848 members join; a third is
/// GROUP_MAX_SIZE_REACHED (81); once one leaves, the third gets in.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn kip848_group_refuses_members_beyond_its_max_size() {
    let broker = support::group_broker_builder()
        .temp_dir()
        .config("group.consumer.max.size", "2")
        .start()
        .await
        .unwrap();
    let bootstrap = broker.bootstrap_servers();
    let topic = support::topic_name("full");
    support::create_topic(&bootstrap, &topic, 2, &[]).await;
    let group = support::topic_name("full-group");
    blocking(move || {
        let mut wire = Wire::connect(&bootstrap);
        let version = raw::heartbeat_version(&mut wire);
        let first = raw::kip848_join(&mut wire, version, &group, &[&topic]);
        let _second = raw::kip848_join(&mut wire, version, &group, &[&topic]);
        let member_id = if version >= 1 {
            uuid::Uuid::new_v4().to_string()
        } else {
            String::new()
        };
        let join = ConsumerGroupHeartbeatRequest::default()
            .with_group_id(raw::group_id(&group))
            .with_member_id(raw::text(&member_id))
            .with_member_epoch(0)
            .with_rebalance_timeout_ms(5000)
            .with_subscribed_topic_names(Some(vec![raw::topic_name(&topic)]))
            .with_topic_partitions(Some(vec![]));
        let refused = heartbeat(&mut wire, version, &join);
        assert_eq!(
            refused.error_code,
            code::GROUP_MAX_SIZE_REACHED,
            "{refused:?}"
        );
        let leave = ConsumerGroupHeartbeatRequest::default()
            .with_group_id(raw::group_id(&group))
            .with_member_id(first.member_id.clone().unwrap())
            .with_member_epoch(-1);
        let left = heartbeat(&mut wire, version, &leave);
        assert_eq!(left.error_code, code::NONE, "{left:?}");
        let admitted = heartbeat(&mut wire, version, &join);
        assert_eq!(admitted.error_code, code::NONE, "{admitted:?}");
    })
    .await;
    broker.shutdown().await.unwrap();
}

/// A KIP-848 heartbeat of a member that reports it owns `owned` (topic id, partitions).
fn beat_owning(
    wire: &mut Wire,
    version: i16,
    group: &str,
    member: &StrBytes,
    epoch: i32,
    owned: &[(uuid::Uuid, Vec<i32>)],
) -> ConsumerGroupHeartbeatResponse {
    let request = ConsumerGroupHeartbeatRequest::default()
        .with_group_id(raw::group_id(group))
        .with_member_id(member.clone())
        .with_member_epoch(epoch)
        .with_topic_partitions(Some(
            owned
                .iter()
                .map(|(id, partitions)| {
                    consumer_group_heartbeat_request::TopicPartitions::default()
                        .with_topic_id(*id)
                        .with_partitions(partitions.clone())
                })
                .collect(),
        ));
    heartbeat(wire, version, &request)
}

/// The assignment in a heartbeat answer as `(topic id, partitions)`; `None` if it did not change.
fn assigned(response: &ConsumerGroupHeartbeatResponse) -> Option<Vec<(uuid::Uuid, Vec<i32>)>> {
    response.assignment.as_ref().map(|a| {
        a.topic_partitions
            .iter()
            .map(|t| {
                let mut partitions = t.partitions.clone();
                partitions.sort_unstable();
                (t.topic_id, partitions)
            })
            .collect()
    })
}

/// How: member M1 (rebalance timeout 1 s) owns both partitions; M2 joins, so M1 is asked to
/// give one up. M1 keeps heartbeating but keeps reporting both as owned (it never finishes
/// revoking). When its rebalance timeout expires the coordinator fences it (its heartbeats are
/// refused from then on) and M2 ends up with both partitions.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn kip848_member_that_never_revokes_is_fenced_after_its_rebalance_timeout() {
    let broker = support::group_broker().await;
    let bootstrap = broker.bootstrap_servers();
    let topic = support::topic_name("revoke");
    support::create_topic(&bootstrap, &topic, 2, &[]).await;
    let group = support::topic_name("revoke-group");
    blocking(move || {
        let mut first = Wire::connect(&bootstrap);
        let version = raw::heartbeat_version(&mut first);
        let joined = raw::kip848_join_with_timeout(&mut first, version, &group, &[&topic], 1000);
        let m1 = joined.member_id.clone().expect("member id");
        let owned = assigned(&joined).expect("the first member's assignment");
        assert_eq!(owned.len(), 1);
        assert_eq!(owned[0].1, [0, 1], "{joined:?}");
        let mut epoch = joined.member_epoch;
        let acked = beat_owning(&mut first, version, &group, &m1, epoch, &owned);
        assert_eq!(acked.error_code, code::NONE, "{acked:?}");
        epoch = acked.member_epoch;

        let mut second = Wire::connect(&bootstrap);
        let joined2 = raw::kip848_join(&mut second, version, &group, &[&topic]);
        let m2 = joined2.member_id.clone().expect("member id");
        let mut m2_epoch = joined2.member_epoch;
        let mut m2_owned = assigned(&joined2).unwrap_or_default();

        let started = Instant::now();
        let mut m1_errors = Vec::new();
        loop {
            // M1 insists on owning both partitions.
            let answer = beat_owning(&mut first, version, &group, &m1, epoch, &owned);
            if answer.error_code != code::NONE {
                m1_errors.push(answer.error_code);
            } else {
                epoch = answer.member_epoch;
            }
            // M2 acknowledges whatever it is given.
            let answer = beat_owning(&mut second, version, &group, &m2, m2_epoch, &m2_owned);
            assert_eq!(answer.error_code, code::NONE, "M2: {answer:?}");
            m2_epoch = answer.member_epoch;
            if let Some(new) = assigned(&answer) {
                m2_owned = new;
            }
            let m2_all = m2_owned.iter().map(|(_, p)| p.len()).sum::<usize>() == 2;
            if !m1_errors.is_empty() && m2_all {
                break;
            }
            assert!(
                started.elapsed() < Duration::from_secs(8),
                "after {:?}: M1 errors {m1_errors:?}, M2 owns {m2_owned:?}",
                started.elapsed()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        assert!(
            m1_errors
                .iter()
                .all(|e| matches!(*e, code::UNKNOWN_MEMBER_ID | code::FENCED_MEMBER_EPOCH)),
            "M1 is fenced: {m1_errors:?}"
        );
        let took = started.elapsed();
        assert!(
            took >= Duration::from_millis(900),
            "M1 was fenced after {took:?}, before its 1 s rebalance timeout"
        );
        assert!(
            took < Duration::from_secs(4),
            "M1 was fenced after {took:?}: by its 6 s session, not its 1 s rebalance timeout"
        );
    })
    .await;
    broker.shutdown().await.unwrap();
}
