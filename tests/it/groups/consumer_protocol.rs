//! KIP-848 (`group.protocol=consumer`) with librdkafka members: server-side assignors, static
//! members, regex and name subscriptions that follow topic changes, ConsumerGroupDescribe, and
//! an empty group changing protocol.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use kafka_protocol::messages::{
    ApiKey, ConsumerGroupDescribeRequest, ConsumerGroupDescribeResponse,
};
use rdkafka::ClientConfig;

use super::member::{ConsumedLog, Member};
use super::raw::{self, code};
use super::{
    blocking, check_no_errors, classic_config, consumer_protocol_config,
    leave_and_join_exactly_once, partitions, wait_for_split, wait_until,
};
use crate::support;
use crate::wire::Wire;

/// How: the classic scenario (two members, a third joins, the first leaves, records keep
/// coming) with KIP-848 members and the `uniform` assignor: exactly-once across both changes.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn kip848_members_share_partitions_exactly_once_across_leave_and_join() {
    leave_and_join_exactly_once(
        |bootstrap| {
            consumer_protocol_config(bootstrap, &support::topic_name("kip848-share"), "uniform")
        },
        "kip848-share",
    )
    .await;
}

/// How: the static-membership scenario of `classic` with KIP-848 members: a static member
/// that closes (heartbeat with epoch -2) and comes back within its session gets its partitions
/// back while the other member sees no change; gone for good, it expires with its session.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn kip848_static_member_restarting_within_session_timeout_causes_no_rebalance() {
    super::classic::static_member_comes_back_without_rebalance(|bootstrap, group| {
        consumer_protocol_config(bootstrap, group, "uniform")
    })
    .await;
}

/// ConsumerGroupDescribe v0 of one group.
fn describe(address: &str, group: &str) -> ConsumerGroupDescribeResponse {
    let mut wire = Wire::connect(address);
    raw::require(&mut wire, &[(ApiKey::ConsumerGroupDescribe, 0)]);
    let request =
        ConsumerGroupDescribeRequest::default().with_group_ids(vec![raw::group_id(group)]);
    wire.call(0, &request)
}

/// How: two KIP-848 members subscribe to two 6-partition topics with `range`. Kafka's server
/// range assignor co-partitions: each member gets the same contiguous block of partition
/// numbers in both topics (0-2 and 3-5). ConsumerGroupDescribe names the assignor and shows
/// both members with their assignments.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn kip848_range_assignor_co_partitions_and_describe_shows_it() {
    let broker = support::group_broker().await;
    let bootstrap = broker.bootstrap_servers();
    let (left, right) = (
        support::topic_name("range-l"),
        support::topic_name("range-r"),
    );
    support::create_topic(&bootstrap, &left, 6, &[]).await;
    support::create_topic(&bootstrap, &right, 6, &[]).await;
    let group = support::topic_name("range-group");
    let config = consumer_protocol_config(&bootstrap, &group, "range");
    let log = Arc::new(ConsumedLog::default());
    let a = Member::start("a", &config, &[&left, &right], &log);
    let b = Member::start("b", &config, &[&left, &right], &log);
    let all: BTreeSet<_> = partitions(&left, 6)
        .into_iter()
        .chain(partitions(&right, 6))
        .collect();
    wait_for_split(&[&a, &b], &all, Duration::from_secs(15)).await;

    for member in [&a, &b] {
        let assignment = member.state.assignment();
        let numbers = |topic: &str| -> Vec<i32> {
            assignment
                .iter()
                .filter(|(t, _)| t == topic)
                .map(|(_, p)| *p)
                .collect()
        };
        let (l, r) = (numbers(&left), numbers(&right));
        assert_eq!(
            l, r,
            "{}: range co-partitions the two topics: {assignment:?}",
            member.state.name
        );
        assert!(
            l == [0, 1, 2] || l == [3, 4, 5],
            "{}: range gives contiguous halves: {l:?}",
            member.state.name
        );
    }

    let (address, group_name) = (bootstrap.clone(), group.clone());
    let described = blocking(move || describe(&address, &group_name)).await;
    let found = &described.groups[0];
    assert_eq!(found.error_code, code::NONE, "{found:?}");
    assert_eq!(found.group_id.as_str(), group);
    assert_eq!(found.group_state.as_str(), "Stable");
    assert_eq!(found.assignor_name.as_str(), "range");
    assert!(
        found.group_epoch >= 1 && found.assignment_epoch == found.group_epoch,
        "{found:?}"
    );
    assert_eq!(found.members.len(), 2);
    let mut described_partitions = 0;
    for member in &found.members {
        assert!(member.member_epoch >= 1, "{member:?}");
        let mut subscribed: Vec<_> = member
            .subscribed_topic_names
            .iter()
            .map(|t| t.to_string())
            .collect();
        subscribed.sort();
        let mut expected = vec![left.clone(), right.clone()];
        expected.sort();
        assert_eq!(subscribed, expected);
        for topic in &member.assignment.topic_partitions {
            assert!(topic.topic_name.as_str() == left || topic.topic_name.as_str() == right);
            described_partitions += topic.partitions.len();
        }
    }
    assert_eq!(described_partitions, 12, "{found:?}");

    let (a, b) = (a.stop().await, b.stop().await);
    check_no_errors(&[&a, &b]);
    broker.shutdown().await.unwrap();
}

/// How: a KIP-848 member subscribes with a regular expression (librdkafka sends a `^`
/// subscription to the broker as `SubscribedTopicRegex`). It gets the matching topic's
/// partitions, then a topic created later that matches, and never one that does not match.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn kip848_regex_subscription_follows_new_topics() {
    let broker = support::group_broker().await;
    let bootstrap = broker.bootstrap_servers();
    let prefix = support::topic_name("rx");
    let (first, second, other) = (
        format!("{prefix}-a"),
        format!("{prefix}-b"),
        support::topic_name("other"),
    );
    support::create_topic(&bootstrap, &first, 2, &[]).await;
    support::create_topic(&bootstrap, &other, 2, &[]).await;
    let config = consumer_protocol_config(&bootstrap, &support::topic_name("rx-group"), "uniform");
    let log = Arc::new(ConsumedLog::default());
    let pattern = format!("^{prefix}-.*");
    let member = Member::start("rx", &config, &[&pattern], &log);
    wait_for_split(&[&member], &partitions(&first, 2), Duration::from_secs(15)).await;

    support::create_topic(&bootstrap, &second, 2, &[]).await;
    let both: BTreeSet<_> = partitions(&first, 2)
        .into_iter()
        .chain(partitions(&second, 2))
        .collect();
    wait_for_split(&[&member], &both, Duration::from_secs(20)).await;
    let member = member.stop().await;
    check_no_errors(&[&member]);
    broker.shutdown().await.unwrap();
}

/// Consumes with a new member built by `config` until it read `count` records; returns their
/// positions. `reset` is `auto.offset.reset`: `error` makes a missing commit fail.
async fn consume_as(
    config: ClientConfig,
    reset: &str,
    topic: &str,
    count: usize,
    name: &str,
) -> BTreeSet<(i32, i64)> {
    let mut config = config;
    let _ = config.set("auto.offset.reset", reset);
    let log = Arc::new(ConsumedLog::default());
    let member = Member::start(name, &config, &[topic], &log);
    wait_until(
        Duration::from_secs(15),
        || format!("{name} read {} of {count}", log.len()),
        || log.len() >= count,
    )
    .await;
    let member = member.stop().await;
    check_no_errors(&[&member]);
    let read: Vec<(i32, i64)> = log
        .records()
        .iter()
        .map(|r| (r.partition, r.offset))
        .collect();
    assert_eq!(read.len(), count, "{name} read a record twice");
    read.into_iter().collect()
}

/// How: an empty group changes protocol and keeps its offsets, the upgrade path Kairos offers.
/// A classic member reads and commits everything and leaves; a KIP-848 member then reads
/// exactly the records produced since (`auto.offset.reset=error`). While it is in the group a
/// classic JoinGroup is INCONSISTENT_GROUP_PROTOCOL (Kairos does not mix protocols in one
/// group, unlike Kafka 4.0's online migration) and leaves the member alone. After it leaves, a
/// classic member reads exactly the newer records again.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_empty_group_changes_protocol_and_keeps_its_offsets() {
    let broker = support::group_broker().await;
    let bootstrap = broker.bootstrap_servers();
    let topic = support::topic_name("switch");
    support::create_topic(&bootstrap, &topic, 2, &[]).await;
    let group = support::topic_name("switch-group");
    let range = |from: i64, to: i64| -> BTreeSet<(i32, i64)> {
        (0..2)
            .flat_map(|p| (from..to).map(move |o| (p, o)))
            .collect()
    };

    super::produce_per_partition(&bootstrap, &topic, 2, 10).await;
    let first = classic_config(&bootstrap, &group);
    let read = consume_as(first, "earliest", &topic, 20, "classic-1").await;
    assert_eq!(read, range(0, 10));

    super::produce_per_partition(&bootstrap, &topic, 2, 10).await;
    let kip848 = consumer_protocol_config(&bootstrap, &group, "uniform");
    let log = Arc::new(ConsumedLog::default());
    let mut strict = kip848.clone();
    let _ = strict.set("auto.offset.reset", "error");
    let member = Member::start("kip848", &strict, &[&topic], &log);
    wait_for_split(&[&member], &partitions(&topic, 2), Duration::from_secs(15)).await;
    {
        let (address, topic, group) = (bootstrap.clone(), topic.clone(), group.clone());
        blocking(move || {
            let mut wire = Wire::connect(&address);
            let refused = raw::join(&mut wire, &raw::join_request(&group, "", &topic));
            assert_eq!(
                refused.error_code,
                code::INCONSISTENT_GROUP_PROTOCOL,
                "{refused:?}"
            );
        })
        .await;
    }
    wait_until(
        Duration::from_secs(15),
        || format!("read {}", log.len()),
        || log.len() >= 20,
    )
    .await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(
        member.state.assignment(),
        partitions(&topic, 2),
        "the refused join changed nothing"
    );
    let member = member.stop().await;
    check_no_errors(&[&member]);
    let read: BTreeSet<_> = log
        .records()
        .iter()
        .map(|r| (r.partition, r.offset))
        .collect();
    assert_eq!(
        (log.len(), read),
        (20, range(10, 20)),
        "KIP-848 resumed at the classic commits"
    );

    super::produce_per_partition(&bootstrap, &topic, 2, 10).await;
    let read = consume_as(
        classic_config(&bootstrap, &group),
        "error",
        &topic,
        20,
        "classic-2",
    )
    .await;
    assert_eq!(
        read,
        range(20, 30),
        "classic resumed at the KIP-848 commits"
    );
    broker.shutdown().await.unwrap();
}

/// How: two KIP-848 members subscribe by name to a topic that exists and one that does not yet.
/// When the second topic is created, and later when the first grows from 2 to 4 partitions
/// (CreatePartitions), the coordinator notices and the members split every partition of both.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn kip848_assignment_follows_topic_creation_and_new_partitions() {
    let broker = support::group_broker().await;
    let bootstrap = broker.bootstrap_servers();
    let (first, later) = (support::topic_name("grow"), support::topic_name("later"));
    support::create_topic(&bootstrap, &first, 2, &[]).await;
    let config =
        consumer_protocol_config(&bootstrap, &support::topic_name("grow-group"), "uniform");
    let log = Arc::new(ConsumedLog::default());
    let a = Member::start("a", &config, &[&first, &later], &log);
    let b = Member::start("b", &config, &[&first, &later], &log);
    let timeout = Duration::from_secs(20);
    wait_for_split(&[&a, &b], &partitions(&first, 2), timeout).await;

    support::create_topic(&bootstrap, &later, 2, &[]).await;
    let both: BTreeSet<_> = partitions(&first, 2)
        .into_iter()
        .chain(partitions(&later, 2))
        .collect();
    wait_for_split(&[&a, &b], &both, timeout).await;

    let grown = support::admin(&bootstrap)
        .create_partitions(
            [&rdkafka::admin::NewPartitions::new(&first, 4)],
            &support::admin_options(),
        )
        .await
        .unwrap();
    for result in grown {
        result.unwrap();
    }
    let all: BTreeSet<_> = partitions(&first, 4)
        .into_iter()
        .chain(partitions(&later, 2))
        .collect();
    wait_for_split(&[&a, &b], &all, timeout).await;
    let (a, b) = (a.stop().await, b.stop().await);
    check_no_errors(&[&a, &b]);
    broker.shutdown().await.unwrap();
}
