//! The classic group protocol with real librdkafka members: eager rebalances with exact
//! handover, static membership (KIP-345) and cooperative-sticky (KIP-429).

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::{Duration, Instant};

use rdkafka::ClientConfig;

use super::member::{ConsumedLog, Member, RebalanceEvent};
use super::{
    Feed, check_exactly_once, check_no_errors, classic_config, leave_and_join_exactly_once,
    partitions, wait_for_split, wait_until,
};
use crate::support;

/// How: two members share six partitions while a feed produces; a third joins, the first
/// closes (LeaveGroup); the consumed (partition, offset) pairs are exactly the produced ones.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn members_share_partitions_exactly_once_across_leave_and_join() {
    leave_and_join_exactly_once(
        |bootstrap| classic_config(bootstrap, &support::topic_name("classic-share")),
        "classic-share",
    )
    .await;
}

/// How: static members A and B (A with `group.instance.id`) split six partitions. A closes:
/// librdkafka sends no LeaveGroup for a static member (KIP-345), so the coordinator keeps A's
/// slot for its session timeout (6 s). A new consumer with A's instance id joins within it: it
/// gets A's partitions back, and B sees no rebalance (no callback, same assignment). Then A
/// closes for good and B receives all partitions only once the session timeout expired.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn static_member_restarting_within_session_timeout_causes_no_rebalance() {
    static_member_comes_back_without_rebalance(classic_config).await;
}

/// The static-membership scenario with members built by `config(bootstrap, group)`; KIP-848
/// runs it too (there a static member leaves with member epoch -2, which keeps its
/// assignment for its session).
pub(crate) async fn static_member_comes_back_without_rebalance(
    config: impl Fn(&str, &str) -> ClientConfig,
) {
    let broker = support::group_broker().await;
    let bootstrap = broker.bootstrap_servers();
    let topic = support::topic_name("static");
    support::create_topic(&bootstrap, &topic, 6, &[]).await;
    let group = support::topic_name("static-group");
    let all = partitions(&topic, 6);
    let log = Arc::new(ConsumedLog::default());
    let timeout = Duration::from_secs(15);
    let mut static_config = config(&bootstrap, &group);
    let _ = static_config.set("group.instance.id", "instance-a");
    let dynamic_config = config(&bootstrap, &group);

    let a = Member::start("a", &static_config, &[&topic], &log);
    let b = Member::start("b", &dynamic_config, &[&topic], &log);
    wait_for_split(&[&a, &b], &all, timeout).await;
    let a_partitions = a.state.assignment();
    let b_partitions = b.state.assignment();
    let b_events = b.state.events().len();

    let a = a.stop().await;
    let restarted_at = Instant::now();
    let a2 = Member::start("a2", &static_config, &[&topic], &log);
    wait_until(
        timeout,
        || "restarted static member assigned".to_owned(),
        || !a2.state.assignment().is_empty(),
    )
    .await;
    assert!(
        restarted_at.elapsed() < Duration::from_secs(5),
        "the restart must land inside the 6 s session timeout for this test to mean anything"
    );
    assert_eq!(
        a2.state.assignment(),
        a_partitions,
        "the static member gets its partitions back"
    );
    // A rebalance reaches B at its next heartbeat (every 200 ms); give it several.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(
        b.state.events()[b_events..],
        [],
        "B saw a rebalance although the static member came back in time"
    );
    assert_eq!(b.state.assignment(), b_partitions);

    // The restarted member really owns its partitions: it consumes their records.
    let feed = Feed::start(&bootstrap, &topic);
    wait_until(
        timeout,
        || format!("a2 consumed {}", log.count_by("a2")),
        || log.count_by("a2") >= 10 && log.count_by("b") >= 10,
    )
    .await;
    let produced = feed.finish().await;
    check_exactly_once(&produced, &log).await;
    for record in log.records() {
        let owner = if a_partitions.contains(&(topic.clone(), record.partition)) {
            "a2"
        } else {
            "b"
        };
        assert_eq!(record.member, owner, "{record:?}");
    }

    // Closing again without a LeaveGroup: B takes over only when the session expires.
    let a2 = a2.stop().await;
    let closed_at = Instant::now();
    wait_until(
        Duration::from_secs(20),
        || format!("B holds {:?}", b.state.assignment()),
        || b.state.assignment() == all,
    )
    .await;
    let took = closed_at.elapsed();
    assert!(
        took >= Duration::from_millis(5000),
        "B took over after {took:?}: the static member was dropped before its 6 s session expired"
    );
    let b = b.stop().await;
    check_no_errors(&[&a, &a2, &b]);
    broker.shutdown().await.unwrap();
}

/// How: with `partition.assignment.strategy=cooperative-sticky`, A holds all six partitions
/// while a feed produces; B joins. A's callbacks revoke exactly the partitions that move to B
/// (incremental, never everything) and A keeps consuming the rest; B leaves and A only gains.
/// Every record is processed exactly once.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn cooperative_sticky_revokes_only_what_moves() {
    let broker = support::group_broker().await;
    let bootstrap = broker.bootstrap_servers();
    let topic = support::topic_name("coop");
    support::create_topic(&bootstrap, &topic, 6, &[]).await;
    let mut config = classic_config(&bootstrap, &support::topic_name("coop-group"));
    let _ = config.set("partition.assignment.strategy", "cooperative-sticky");
    let all = partitions(&topic, 6);
    let log = Arc::new(ConsumedLog::default());
    let timeout = Duration::from_secs(15);

    let a = Member::start("a", &config, &[&topic], &log);
    wait_for_split(&[&a], &all, timeout).await;
    assert_eq!(a.state.protocol(), "cooperative");
    let feed = Feed::start(&bootstrap, &topic);
    wait_until(
        timeout,
        || format!("{} consumed", log.len()),
        || log.len() >= 50,
    )
    .await;
    let before = a.state.events().len();

    let b = Member::start("b", &config, &[&topic], &log);
    wait_for_split(&[&a, &b], &all, timeout).await;
    let seen = log.len();
    wait_until(
        timeout,
        || format!("{} consumed", log.len()),
        || log.len() >= seen + 50,
    )
    .await;
    let kept = a.state.assignment();
    let moved: BTreeSet<_> = all.difference(&kept).cloned().collect();
    assert_eq!(b.state.assignment(), moved);
    assert_eq!(
        moved.len(),
        3,
        "cooperative-sticky balances 6 partitions 3/3"
    );
    let revoked: BTreeSet<_> = a.state.events()[before..]
        .iter()
        .filter_map(|e| match e {
            RebalanceEvent::Revoked(partitions) => Some(partitions.clone()),
            _ => None,
        })
        .flatten()
        .collect();
    assert_eq!(
        revoked,
        moved,
        "A was asked to give up exactly what moved; events: {:?}",
        a.state.events()
    );
    // A keeps consuming what it kept (it may be held up a moment by a commit retried across
    // the second rebalance round, so this waits rather than looks once).
    wait_until(
        timeout,
        || "A consumes its remaining partitions after B joined".to_owned(),
        || log.records()[seen..].iter().any(|r| r.member == "a"),
    )
    .await;

    // B leaves: A takes B's partitions back without giving up any of its own.
    let before_leave = a.state.events().len();
    let b = b.stop().await;
    wait_for_split(&[&a], &all, timeout).await;
    let seen = log.len();
    wait_until(
        timeout,
        || format!("{} consumed", log.len()),
        || log.len() >= seen + 50,
    )
    .await;
    let produced = feed.finish().await;
    check_exactly_once(&produced, &log).await;
    let after_leave = &a.state.events()[before_leave..];
    assert!(
        after_leave
            .iter()
            .all(|e| matches!(e, RebalanceEvent::Assigned(_))),
        "A only gained partitions when B left: {after_leave:?}"
    );
    let a = a.stop().await;
    check_no_errors(&[&a, &b]);
    broker.shutdown().await.unwrap();
}
