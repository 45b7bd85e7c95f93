//! Groups across a broker restart. The coordinator persists a group's membership and
//! assignment in `__consumer_offsets` and reloads them at start, so members that keep
//! heartbeating through a restart keep their partitions: no rebalance, and consumption resumes
//! exactly where it stopped. A member that died with the broker is reloaded too, and expires
//! when its session does.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::{Duration, Instant};

use rdkafka::ClientConfig;

use super::member::{ConsumedLog, Member};
use super::raw::{self, code};
use super::{
    Feed, blocking, check_exactly_once, check_no_errors, classic_config, consumer_protocol_config,
    partitions, produce_per_partition, wait_for_split, wait_until,
};
use crate::support::{self, BinaryBroker};
use crate::wire::Wire;

/// How: two members split six partitions while a feed produces; the embedded broker shuts
/// down and starts again over the same data dir on the same port. Both members reconnect and
/// go on consuming; neither sees a rebalance callback, and every record is processed once.
async fn members_keep_their_partitions_across_a_restart(config: impl Fn(&str) -> ClientConfig) {
    let dir = tempfile::tempdir().unwrap();
    let broker = support::group_broker_in(dir.path()).await;
    let address = broker.local_addr();
    let bootstrap = broker.bootstrap_servers();
    let topic = support::topic_name("restart-members");
    support::create_topic(&bootstrap, &topic, 6, &[]).await;
    let config = config(&bootstrap);
    let log = Arc::new(ConsumedLog::default());
    let timeout = Duration::from_secs(15);
    let a = Member::start("a", &config, &[&topic], &log);
    let b = Member::start("b", &config, &[&topic], &log);
    wait_for_split(&[&a, &b], &partitions(&topic, 6), timeout).await;
    let feed = Feed::start(&bootstrap, &topic);
    wait_until(
        timeout,
        || format!("{} consumed", log.len()),
        || log.len() >= 30,
    )
    .await;
    let events = (a.state.events(), b.state.events());

    broker.shutdown().await.unwrap();
    // The same port: the clients know the broker by its advertised address.
    let broker = support::group_broker_builder()
        .data_dir(dir.path())
        .listener(&address.to_string())
        .start()
        .await
        .expect("broker restarts on its port");
    let seen = log.len();
    wait_until(
        timeout,
        || format!("{} consumed", log.len()),
        || log.count_by("a") > 0 && log.len() >= seen + 60,
    )
    .await;
    // A lost group shows at the members' next heartbeats (every 200 ms classic, 300 ms KIP-848).
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(
        a.state.events(),
        events.0,
        "a saw a rebalance across the restart"
    );
    assert_eq!(
        b.state.events(),
        events.1,
        "b saw a rebalance across the restart"
    );

    let produced = feed.finish().await;
    check_exactly_once(&produced, &log).await;
    let (a, b) = (a.stop().await, b.stop().await);
    check_no_errors(&[&a, &b]);
    broker.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn classic_members_keep_their_partitions_across_a_restart() {
    members_keep_their_partitions_across_a_restart(|bootstrap| {
        classic_config(bootstrap, &support::topic_name("restart-classic"))
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn kip848_members_keep_their_partitions_across_a_restart() {
    members_keep_their_partitions_across_a_restart(|bootstrap| {
        consumer_protocol_config(bootstrap, &support::topic_name("restart-kip848"), "uniform")
    })
    .await;
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Protocol {
    Classic,
    Kip848,
}

/// The offset the crashed member committed for `partition`.
fn committed(partition: i32) -> i64 {
    7 + i64::from(partition)
}

/// How: a raw-socket member joins (classic JoinGroup/SyncGroup, or a KIP-848 heartbeat) and
/// commits `committed(p)` for four partitions; the binary is killed with SIGKILL and started
/// again over its data dir. The dead member is reloaded with the group and holds its
/// partitions until its 6 s session expires; then a new librdkafka member gets them all and,
/// with `auto.offset.reset=error`, reads exactly from the committed offsets.
async fn member_lost_in_a_crash_expires_after_reload(protocol: Protocol) {
    let dir = tempfile::tempdir().unwrap();
    let args = support::group_binary_args();
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let mut binary = BinaryBroker::start(dir.path(), &args);
    let topic = support::topic_name("crash-member");
    let group = support::topic_name("crash-group");
    support::create_topic(&binary.bootstrap, &topic, 4, &[]).await;
    produce_per_partition(&binary.bootstrap, &topic, 4, 20).await;
    {
        let (address, topic, group) = (binary.bootstrap.clone(), topic.clone(), group.clone());
        blocking(move || {
            let mut wire = Wire::connect(&address);
            raw::require_classic(&mut wire);
            let _ = raw::find_coordinators(&mut wire, &[&group]);
            let offsets: Vec<(&str, i32, i64)> =
                (0..4).map(|p| (topic.as_str(), p, committed(p))).collect();
            let errors = if protocol == Protocol::Classic {
                let member = raw::member(&mut wire, &group, &topic, &[0, 1, 2, 3]);
                raw::commit(
                    &mut wire,
                    &group,
                    member.generation,
                    &member.member_id,
                    &offsets,
                )
            } else {
                let version = raw::heartbeat_version(&mut wire);
                let joined = raw::kip848_join(&mut wire, version, &group, &[&topic]);
                let assigned: usize = joined.assignment.as_ref().map_or(0, |a| {
                    a.topic_partitions.iter().map(|t| t.partitions.len()).sum()
                });
                assert_eq!(
                    assigned, 4,
                    "the only member gets every partition: {joined:?}"
                );
                let member_id = joined.member_id.expect("member id").to_string();
                raw::commit_at(
                    &mut wire,
                    9,
                    &group,
                    joined.member_epoch,
                    &member_id,
                    &offsets,
                )
            };
            assert!(errors.values().all(|e| *e == code::NONE), "{errors:?}");
        })
        .await;
    }
    binary.kill9();

    let restarted = Instant::now();
    let binary = BinaryBroker::start(dir.path(), &args);
    let mut config = if protocol == Protocol::Classic {
        classic_config(&binary.bootstrap, &group)
    } else {
        consumer_protocol_config(&binary.bootstrap, &group, "uniform")
    };
    let _ = config.set("auto.offset.reset", "error");
    let log = Arc::new(ConsumedLog::default());
    let member = Member::start("new", &config, &[&topic], &log);
    wait_for_split(&[&member], &partitions(&topic, 4), Duration::from_secs(25)).await;
    let took = restarted.elapsed();
    assert!(
        took >= Duration::from_secs(5),
        "the new member got every partition {took:?} after the restart: the reloaded member \
         should have held them until its 6 s session expired"
    );
    let expected: BTreeSet<(i32, i64)> = (0..4)
        .flat_map(|p| (committed(p)..20).map(move |o| (p, o)))
        .collect();
    wait_until(
        Duration::from_secs(15),
        || format!("{} of {} records", log.len(), expected.len()),
        || log.len() >= expected.len(),
    )
    .await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let read: Vec<(i32, i64)> = log
        .records()
        .iter()
        .map(|r| (r.partition, r.offset))
        .collect();
    assert_eq!(read.len(), expected.len(), "no record twice");
    assert_eq!(
        read.into_iter().collect::<BTreeSet<_>>(),
        expected,
        "resumed at the commits"
    );
    let member = member.stop().await;
    check_no_errors(&[&member]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn classic_member_lost_in_a_crash_expires_after_reload() {
    member_lost_in_a_crash_expires_after_reload(Protocol::Classic).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn kip848_member_lost_in_a_crash_expires_after_reload() {
    member_lost_in_a_crash_expires_after_reload(Protocol::Kip848).await;
}

/// How: on a broker that compacts `__consumer_offsets` (1 KiB segments, cleaner every 50 ms),
/// 50 raw members join and leave a classic group and 50 a KIP-848 group, and in each group a
/// last member commits offsets and leaves. The broker restarts over the compacted log. A new
/// member of each group gets every partition at once (no member that left comes back to hold
/// partitions until a session expires) and reads exactly from the commits.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn groups_reload_from_a_compacted_log_without_members_that_left() {
    let dir = tempfile::tempdir().unwrap();
    let broker = super::offsets::compacting_broker(dir.path()).await;
    let bootstrap = broker.bootstrap_servers();
    let topic = support::topic_name("ghost");
    support::create_topic(&bootstrap, &topic, 2, &[]).await;
    produce_per_partition(&bootstrap, &topic, 2, 10).await;
    let (classic, kip848) = (
        support::topic_name("ghost-classic"),
        support::topic_name("ghost-kip848"),
    );
    {
        let (address, topic, classic, kip848) = (
            bootstrap.clone(),
            topic.clone(),
            classic.clone(),
            kip848.clone(),
        );
        blocking(move || {
            let mut wire = Wire::connect(&address);
            raw::require_classic(&mut wire);
            let _ = raw::find_coordinators(&mut wire, &[&classic, &kip848]);
            let offsets = [(topic.as_str(), 0, 3), (topic.as_str(), 1, 4)];
            for round in 0..=50 {
                let member = raw::member(&mut wire, &classic, &topic, &[0, 1]);
                if round == 50 {
                    let errors = raw::commit(
                        &mut wire,
                        &classic,
                        member.generation,
                        &member.member_id,
                        &offsets,
                    );
                    assert!(errors.values().all(|e| *e == code::NONE), "{errors:?}");
                }
                assert_eq!(
                    raw::leave(&mut wire, &classic, &member.member_id).error_code,
                    code::NONE
                );
            }
            let version = raw::heartbeat_version(&mut wire);
            for round in 0..=50 {
                let joined = raw::kip848_join(&mut wire, version, &kip848, &[&topic]);
                let member_id = joined.member_id.clone().expect("member id");
                if round == 50 {
                    let errors = raw::commit_at(
                        &mut wire,
                        9,
                        &kip848,
                        joined.member_epoch,
                        member_id.as_str(),
                        &offsets,
                    );
                    assert!(errors.values().all(|e| *e == code::NONE), "{errors:?}");
                }
                let leave = kafka_protocol::messages::ConsumerGroupHeartbeatRequest::default()
                    .with_group_id(raw::group_id(&kip848))
                    .with_member_id(member_id)
                    .with_member_epoch(-1);
                assert_eq!(wire.call(version, &leave).error_code, code::NONE);
            }
        })
        .await;
    }
    // The cleaner runs every 50 ms; give it a few passes over the last segments.
    tokio::time::sleep(Duration::from_millis(500)).await;
    broker.shutdown().await.unwrap();

    let broker = super::offsets::compacting_broker(dir.path()).await;
    let bootstrap = broker.bootstrap_servers();
    let expected: BTreeSet<(i32, i64)> = (3..10)
        .map(|o| (0, o))
        .chain((4..10).map(|o| (1, o)))
        .collect();
    for (group, config) in [
        (&classic, classic_config(&bootstrap, &classic)),
        (
            &kip848,
            consumer_protocol_config(&bootstrap, &kip848, "uniform"),
        ),
    ] {
        let mut config = config;
        let _ = config.set("auto.offset.reset", "error");
        let log = Arc::new(ConsumedLog::default());
        let started = Instant::now();
        let member = Member::start(group, &config, &[&topic], &log);
        wait_for_split(&[&member], &partitions(&topic, 2), Duration::from_secs(15)).await;
        assert!(
            started.elapsed() < Duration::from_secs(4),
            "{group}: partitions came after {:?}, as if a member that left was reloaded",
            started.elapsed()
        );
        wait_until(
            Duration::from_secs(15),
            || format!("{group} read {}", log.len()),
            || log.len() >= expected.len(),
        )
        .await;
        let member = member.stop().await;
        check_no_errors(&[&member]);
        let read: BTreeSet<(i32, i64)> = log
            .records()
            .iter()
            .map(|r| (r.partition, r.offset))
            .collect();
        assert_eq!(
            (log.len(), read),
            (expected.len(), expected.clone()),
            "{group} resumed at its commits"
        );
    }
    broker.shutdown().await.unwrap();
}
