//! Many short-lived members: joins and leaves in quick succession, sequential and concurrent,
//! must leave a group that the next member can use at once. A coordinator that leaks members,
//! generations or pending joins shows up here as a stuck or slow final join.

use std::sync::Arc;
use std::time::{Duration, Instant};

use kafka_protocol::messages::{ConsumerGroupHeartbeatRequest, DescribeGroupsRequest};

use super::member::{ConsumedLog, Member};
use super::raw::{self, code};
use super::{
    blocking, bounded, check_no_errors, classic_config, consumer_protocol_config, partitions,
    wait_for_split, wait_until,
};
use crate::support;
use crate::wire::Wire;

/// How: 200 raw members join, sync and leave one after another; then four streams of ten
/// librdkafka members each join concurrently and close as soon as they hold partitions (every
/// join and leave rebalances the others). A last member then holds all six partitions within
/// 10 s, and DescribeGroups lists it alone.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn classic_group_stays_usable_after_many_short_lived_members() {
    // No initial rebalance delay: each raw cycle finds the group Empty and would wait for it.
    let broker = support::group_broker_builder()
        .temp_dir()
        .config("group.initial.rebalance.delay.ms", "0")
        .start()
        .await
        .unwrap();
    let bootstrap = broker.bootstrap_servers();
    let topic = support::topic_name("churn");
    support::create_topic(&bootstrap, &topic, 6, &[]).await;
    let group = support::topic_name("churn-group");

    let raw_started = Instant::now();
    {
        let (address, topic, group) = (bootstrap.clone(), topic.clone(), group.clone());
        bounded(
            Duration::from_secs(30),
            blocking(move || {
                let mut wire = Wire::connect(&address);
                raw::require_classic(&mut wire);
                let _ = raw::find_coordinators(&mut wire, &[&group]);
                let mut generations = Vec::new();
                for _ in 0..200 {
                    let member = raw::member(&mut wire, &group, &topic, &[0, 1, 2, 3, 4, 5]);
                    generations.push(member.generation);
                    let left = raw::leave(&mut wire, &group, &member.member_id);
                    assert_eq!(left.error_code, code::NONE, "{left:?}");
                }
                assert!(
                    generations.windows(2).all(|w| w[1] > w[0]),
                    "each cycle is a new generation: {generations:?}"
                );
            }),
        )
        .await;
    }

    eprintln!(
        "200 raw join-sync-leave cycles took {:?}",
        raw_started.elapsed()
    );
    let streams_started = Instant::now();
    let log = Arc::new(ConsumedLog::default());
    let config = classic_config(&bootstrap, &group);
    let mut streams = Vec::new();
    for stream in 0..4 {
        let (config, topic, log) = (config.clone(), topic.clone(), Arc::clone(&log));
        streams.push(tokio::spawn(async move {
            let mut states = Vec::new();
            for i in 0..10 {
                let member = Member::start(&format!("s{stream}-{i}"), &config, &[&topic], &log);
                wait_until(
                    Duration::from_secs(20),
                    || format!("{} never got partitions", member.state.name),
                    || !member.state.assignment().is_empty(),
                )
                .await;
                states.push(member.stop().await);
            }
            states
        }));
    }
    let mut states = Vec::new();
    for stream in streams {
        states.extend(bounded(Duration::from_secs(60), stream).await.unwrap());
    }

    eprintln!("40 librdkafka members took {:?}", streams_started.elapsed());
    let started = Instant::now();
    let last = Member::start("last", &config, &[&topic], &log);
    wait_for_split(&[&last], &partitions(&topic, 6), Duration::from_secs(10)).await;
    eprintln!(
        "the last member held every partition after {:?}",
        started.elapsed()
    );
    let (address, group_name) = (bootstrap.clone(), group.clone());
    let described = blocking(move || {
        let mut wire = Wire::connect(&address);
        wire.call(
            raw::DESCRIBE_GROUPS,
            &DescribeGroupsRequest::default().with_groups(vec![raw::group_id(&group_name)]),
        )
    })
    .await;
    let found = &described.groups[0];
    assert_eq!(
        (found.error_code, found.group_state.as_str()),
        (code::NONE, "Stable")
    );
    assert_eq!(
        found.members.len(),
        1,
        "only the last member is left: {found:?}"
    );
    states.push(last.stop().await);
    check_no_errors(&states.iter().map(AsRef::as_ref).collect::<Vec<_>>());
    broker.shutdown().await.unwrap();
}

/// How: 100 raw KIP-848 members join (epoch 0) and leave (epoch -1) one after another; a
/// librdkafka KIP-848 member then holds all six partitions within 10 s.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn kip848_group_stays_usable_after_many_short_lived_members() {
    let broker = support::group_broker().await;
    let bootstrap = broker.bootstrap_servers();
    let topic = support::topic_name("churn848");
    support::create_topic(&bootstrap, &topic, 6, &[]).await;
    let group = support::topic_name("churn848-group");
    {
        let (address, topic, group) = (bootstrap.clone(), topic.clone(), group.clone());
        bounded(
            Duration::from_secs(30),
            blocking(move || {
                let mut wire = Wire::connect(&address);
                let version = raw::heartbeat_version(&mut wire);
                for _ in 0..100 {
                    let joined = raw::kip848_join(&mut wire, version, &group, &[&topic]);
                    let member_id = joined.member_id.expect("member id");
                    let left = wire.call(
                        version,
                        &ConsumerGroupHeartbeatRequest::default()
                            .with_group_id(raw::group_id(&group))
                            .with_member_id(member_id)
                            .with_member_epoch(-1),
                    );
                    assert_eq!(
                        (left.error_code, left.member_epoch),
                        (code::NONE, -1),
                        "{left:?}"
                    );
                }
            }),
        )
        .await;
    }
    let log = Arc::new(ConsumedLog::default());
    let last = Member::start(
        "last",
        &consumer_protocol_config(&bootstrap, &group, "uniform"),
        &[&topic],
        &log,
    );
    wait_for_split(&[&last], &partitions(&topic, 6), Duration::from_secs(10)).await;
    let last = last.stop().await;
    check_no_errors(&[&last]);
    broker.shutdown().await.unwrap();
}
