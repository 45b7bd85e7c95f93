//! Groups across a broker restart. The coordinator persists a group's membership and
//! assignment in `__consumer_offsets` and reloads them at start, so members that keep
//! heartbeating through a restart keep their partitions: no rebalance, and consumption resumes
//! exactly where it stopped.

use std::sync::Arc;
use std::time::Duration;

use rdkafka::ClientConfig;

use super::member::{ConsumedLog, Member};
use super::{
    Feed, check_exactly_once, check_no_errors, classic_config, consumer_protocol_config,
    partitions, wait_for_split, wait_until,
};
use crate::support;

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
