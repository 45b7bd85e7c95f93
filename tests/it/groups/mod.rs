//! Consumer groups end to end. Real librdkafka members: the classic protocol (`classic`),
//! KIP-848 (`consumer_protocol`), many short-lived members (`churn`), membership across broker
//! restarts (`restart`), offsets in transactions (`transactions`). Committed offsets across
//! restarts, compaction and retention (`offsets`), the admin APIs (`admin`). Exact error codes
//! on raw sockets: classic (`bad_input`), KIP-848 (`consumer_protocol_raw`). Shared here:
//! client configs, the record feed, the exactly-once check and bounded waits; `member` runs a
//! consumer on its own thread, `raw` speaks the group APIs on a socket.

mod admin;
mod bad_input;
mod churn;
mod classic;
mod consumer_protocol;
mod consumer_protocol_raw;
mod member;
mod offsets;
pub(crate) mod raw;
mod restart;
mod transactions;

use std::collections::{BTreeMap, BTreeSet};
use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use rdkafka::ClientConfig;
use rdkafka::producer::FutureRecord;
use rdkafka::util::Timeout;

use crate::support;
use member::{ConsumedLog, Member, Partition, Produced};

/// A classic-protocol (`group.protocol=classic`) consumer config for `group`, with librdkafka's
/// timers shrunk: heartbeats every 200 ms so members learn of a rebalance quickly, a 6 s session
/// (the test broker accepts down to 500 ms), and manual commits only.
pub(crate) fn classic_config(bootstrap: &str, group: &str) -> ClientConfig {
    let mut config = base_config(bootstrap, group);
    config
        .set("session.timeout.ms", "6000")
        .set("heartbeat.interval.ms", "200")
        // Also the JoinGroup rebalance timeout: how long a rebalance waits for a silent member.
        .set("max.poll.interval.ms", "10000");
    config
}

/// A KIP-848 (`group.protocol=consumer`) consumer config. librdkafka refuses
/// `session.timeout.ms`, `heartbeat.interval.ms` and `partition.assignment.strategy` with this
/// protocol: the broker sets the timers and runs the assignor named here.
pub(crate) fn consumer_protocol_config(
    bootstrap: &str,
    group: &str,
    assignor: &str,
) -> ClientConfig {
    let mut config = base_config(bootstrap, group);
    config
        .set("group.protocol", "consumer")
        .set("group.remote.assignor", assignor);
    config
}

fn base_config(bootstrap: &str, group: &str) -> ClientConfig {
    let mut config = support::client_config(bootstrap);
    config
        .set("group.id", group)
        .set("enable.auto.commit", "false")
        .set("auto.offset.reset", "earliest")
        .set("fetch.wait.max.ms", "100")
        .set("enable.partition.eof", "false");
    // For diagnosis: KAIROS_TEST_RDKAFKA_DEBUG=cgrp,consumer,protocol prints the group protocol
    // exchanges of every member.
    if let Ok(debug) = std::env::var("KAIROS_TEST_RDKAFKA_DEBUG") {
        config.set("debug", debug);
    }
    config
}

/// `topic`'s partitions `0..count`.
pub(crate) fn partitions(topic: &str, count: i32) -> BTreeSet<Partition> {
    (0..count).map(|p| (topic.to_owned(), p)).collect()
}

/// Polls `condition` every 50 ms until it holds; panics with `what()` after `timeout`.
pub(crate) async fn wait_until(
    timeout: Duration,
    what: impl Fn() -> String,
    mut condition: impl FnMut() -> bool,
) {
    let deadline = Instant::now() + timeout;
    while !condition() {
        assert!(
            Instant::now() < deadline,
            "timed out after {timeout:?}: {}",
            what()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Waits until `members` split `expected` between them: each holds at least one partition, no
/// partition has two owners, and together they hold all of it.
pub(crate) async fn wait_for_split(
    members: &[&Member],
    expected: &BTreeSet<Partition>,
    timeout: Duration,
) {
    let describe = || {
        members
            .iter()
            .map(|m| format!("{}: {:?}", m.state.name, m.state.assignment()))
            .collect::<Vec<_>>()
            .join("; ")
    };
    wait_until(
        timeout,
        || {
            format!(
                "members never split {} partitions: {}",
                expected.len(),
                describe()
            )
        },
        || {
            let assignments: Vec<_> = members.iter().map(|m| m.state.assignment()).collect();
            let total: usize = assignments.iter().map(BTreeSet::len).sum();
            let union: BTreeSet<Partition> = assignments.iter().flatten().cloned().collect();
            assignments.iter().all(|a| !a.is_empty()) && total == union.len() && union == *expected
        },
    )
    .await;
}

/// Produces keyed records (`k<i>` → `v<i>`) at acks=all, one at a time with a short pause,
/// until stopped: the records keep coming while members join and leave.
pub(crate) struct Feed {
    stop: Arc<AtomicBool>,
    task: tokio::task::JoinHandle<Vec<Produced>>,
}

impl Feed {
    pub(crate) fn start(bootstrap: &str, topic: &str) -> Feed {
        let stop = Arc::new(AtomicBool::new(false));
        let producer = support::producer(bootstrap, "all", &[]);
        let (topic, flag) = (topic.to_owned(), Arc::clone(&stop));
        let task = tokio::spawn(async move {
            let mut produced = Vec::new();
            let mut i = 0_u64;
            while !flag.load(Ordering::SeqCst) {
                let (key, value) = (format!("k{i}"), format!("v{i}"));
                let delivery = producer
                    .send(
                        FutureRecord::to(&topic).key(&key).payload(&value),
                        Timeout::After(Duration::from_secs(20)),
                    )
                    .await;
                let delivery = delivery.unwrap_or_else(|(e, _)| panic!("produce {key}: {e}"));
                produced.push(Produced {
                    partition: delivery.partition,
                    offset: delivery.offset,
                    key,
                    value,
                });
                i += 1;
                tokio::time::sleep(Duration::from_millis(3)).await;
            }
            produced
        });
        Feed { stop, task }
    }

    /// Stops producing; returns every acknowledged record.
    pub(crate) async fn finish(self) -> Vec<Produced> {
        self.stop.store(true, Ordering::SeqCst);
        self.task.await.expect("feed task")
    }
}

/// Produces `count` records (`<partition>-<i>`) into each of `partitions` partitions at acks=all.
pub(crate) async fn produce_per_partition(
    bootstrap: &str,
    topic: &str,
    partitions: i32,
    count: i64,
) {
    let producer = support::producer(bootstrap, "all", &[]);
    for partition in 0..partitions {
        for i in 0..count {
            let value = format!("{partition}-{i}");
            let _ = producer
                .send(
                    FutureRecord::<(), _>::to(topic)
                        .payload(&value)
                        .partition(partition),
                    Timeout::After(Duration::from_secs(20)),
                )
                .await
                .unwrap_or_else(|(e, _)| panic!("produce {topic}-{partition}: {e}"));
        }
    }
}

/// Waits until `log` holds every produced record, lets in-flight duplicates arrive, then checks
/// that each record was processed exactly once with its own key and value.
pub(crate) async fn check_exactly_once(produced: &[Produced], log: &ConsumedLog) {
    let wanted: BTreeSet<(i32, i64)> = produced.iter().map(|p| (p.partition, p.offset)).collect();
    wait_until(
        Duration::from_secs(20),
        || {
            let missing: Vec<_> = wanted
                .difference(&log.distinct())
                .take(10)
                .copied()
                .collect();
            format!(
                "{} of {} records consumed; missing e.g. {missing:?}",
                log.distinct().len(),
                wanted.len()
            )
        },
        || log.distinct().is_superset(&wanted),
    )
    .await;
    // A duplicate would come from a partition handed over at an older offset than its last
    // commit; give its delivery a moment.
    tokio::time::sleep(Duration::from_millis(500)).await;

    let by_position: BTreeMap<(i32, i64), &Produced> = produced
        .iter()
        .map(|p| ((p.partition, p.offset), p))
        .collect();
    let mut seen: BTreeMap<(i32, i64), Vec<String>> = BTreeMap::new();
    for record in log.records() {
        let expected = by_position
            .get(&(record.partition, record.offset))
            .unwrap_or_else(|| panic!("consumed a record nobody produced: {record:?}"));
        assert_eq!(
            (&record.key, &record.value),
            (&expected.key, &expected.value),
            "content at {}@{}",
            record.partition,
            record.offset
        );
        seen.entry((record.partition, record.offset))
            .or_default()
            .push(record.member.clone());
    }
    let duplicates: Vec<_> = seen
        .iter()
        .filter(|(_, members)| members.len() > 1)
        .collect();
    assert!(
        duplicates.is_empty(),
        "{} records processed more than once (partition, offset) → members, e.g. {:?}",
        duplicates.len(),
        duplicates.iter().take(10).collect::<Vec<_>>()
    );
    assert_eq!(seen.len(), wanted.len());
}

/// Asserts that no member recorded an error (failed commit, poll error, stuck close).
pub(crate) fn check_no_errors(members: &[&member::MemberState]) {
    for state in members {
        assert!(
            state.errors().is_empty(),
            "{} errors: {:?}",
            state.name,
            state.errors()
        );
    }
}

/// Runs blocking raw-socket work off the async runtime.
pub(crate) async fn blocking<T: Send + 'static>(work: impl FnOnce() -> T + Send + 'static) -> T {
    tokio::task::spawn_blocking(work)
        .await
        .expect("blocking task")
}

/// The leave-and-join scenario shared by the classic and KIP-848 tests: two members share a
/// 6-partition topic while records keep coming; a third joins, the first leaves (close), and
/// every record is processed exactly once.
pub(crate) async fn leave_and_join_exactly_once(
    config: impl Fn(&str) -> ClientConfig,
    label: &str,
) {
    let broker = support::group_broker().await;
    let bootstrap = broker.bootstrap_servers();
    let topic = support::topic_name(label);
    support::create_topic(&bootstrap, &topic, 6, &[]).await;
    let config = config(&bootstrap);
    let all = partitions(&topic, 6);
    let log = Arc::new(ConsumedLog::default());
    let timeout = Duration::from_secs(15);

    let first = Member::start("first", &config, &[&topic], &log);
    let second = Member::start("second", &config, &[&topic], &log);
    wait_for_split(&[&first, &second], &all, timeout).await;

    let feed = Feed::start(&bootstrap, &topic);
    wait_until(
        timeout,
        || format!("{} consumed", log.len()),
        || log.len() >= 50,
    )
    .await;

    let third = Member::start("third", &config, &[&topic], &log);
    wait_for_split(&[&first, &second, &third], &all, timeout).await;
    let seen = log.len();
    wait_until(
        timeout,
        || format!("{} consumed", log.len()),
        || log.len() >= seen + 50,
    )
    .await;

    let first = first.stop().await;
    wait_for_split(&[&second, &third], &all, timeout).await;
    let seen = log.len();
    wait_until(
        timeout,
        || format!("{} consumed", log.len()),
        || log.len() >= seen + 50,
    )
    .await;

    let produced = feed.finish().await;
    check_exactly_once(&produced, &log).await;
    let (second, third) = (second.stop().await, third.stop().await);
    check_no_errors(&[&first, &second, &third]);
    // Each member really took part: the first before leaving, the third after joining.
    assert!(log.count_by("first") > 0 && log.count_by("third") > 0);
    broker.shutdown().await.unwrap();
}

/// Runs `future` with a bound, so a stuck coordinator fails the test instead of hanging CI.
pub(crate) async fn bounded<T>(limit: Duration, future: impl Future<Output = T>) -> T {
    tokio::time::timeout(limit, future)
        .await
        .unwrap_or_else(|_| panic!("did not finish within {limit:?}"))
}
