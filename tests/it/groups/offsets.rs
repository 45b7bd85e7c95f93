//! Committed offsets: they survive a clean restart and a kill -9 (a commit is acknowledged only
//! once durable in `__consumer_offsets`), the last commit wins also when it is lower, and
//! offsets of a group without members expire after `offsets.retention.minutes`.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use kafka_protocol::messages::{DeleteGroupsRequest, ListGroupsRequest};
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer};
use rdkafka::message::Message;
use rdkafka::{Offset, TopicPartitionList};

use super::raw::{self, code};
use super::{blocking, classic_config, produce_per_partition};
use crate::support::{self, BinaryBroker, TestBroker};
use crate::wire::Wire;

const PARTITIONS: i32 = 4;
const PER_PARTITION: i64 = 20;

/// The offsets group G finally commits (different per partition, and lower than an earlier
/// commit of the same partitions, so "last wins" is checked rather than "highest wins").
fn final_offset(partition: i32) -> i64 {
    5 + 3 * i64::from(partition)
}

/// The offsets group H commits without joining (generation -1, as a manually assigned
/// consumer does).
fn simple_offset(partition: i32) -> i64 {
    10 + i64::from(partition)
}

fn offsets(topic: &str, offset: impl Fn(i32) -> i64, metadata: bool) -> TopicPartitionList {
    let mut list = TopicPartitionList::new();
    for partition in 0..PARTITIONS {
        let mut element = list.add_partition(topic, partition);
        element
            .set_offset(Offset::Offset(offset(partition)))
            .unwrap();
        if metadata {
            element.set_metadata(format!("m{partition}"));
        }
    }
    list
}

/// Group G: a subscribed member reads everything, commits 20 everywhere, then the lower
/// `final_offset`s with metadata, and leaves. Group H commits `simple_offset`s without joining.
fn commit_both_groups(bootstrap: &str, topic: &str, g: &str, h: &str) {
    let consumer: BaseConsumer = classic_config(bootstrap, g).create().unwrap();
    consumer.subscribe(&[topic]).unwrap();
    let total = usize::try_from(i64::from(PARTITIONS) * PER_PARTITION).unwrap();
    let read = support::consume(&consumer, total, Duration::from_secs(20));
    assert_eq!(read.len(), total);
    consumer
        .commit(&offsets(topic, |_| PER_PARTITION, false), CommitMode::Sync)
        .unwrap();
    consumer
        .commit(&offsets(topic, final_offset, true), CommitMode::Sync)
        .unwrap();
    drop(consumer);

    let simple: BaseConsumer = classic_config(bootstrap, h).create().unwrap();
    simple
        .commit(&offsets(topic, simple_offset, false), CommitMode::Sync)
        .unwrap();
}

/// After the restart: a member of G with `auto.offset.reset=error` (a lost commit is an error,
/// not a silent reset) reads exactly from each committed offset to the end, and sees the
/// metadata; H's offsets are there too.
fn check_resumed(bootstrap: &str, topic: &str, g: &str, h: &str) {
    let mut config = classic_config(bootstrap, g);
    let _ = config.set("auto.offset.reset", "error");
    let consumer: BaseConsumer = config.create().unwrap();
    consumer.subscribe(&[topic]).unwrap();
    let remaining: i64 = (0..PARTITIONS)
        .map(|p| PER_PARTITION - final_offset(p))
        .sum();
    let read = support::consume(
        &consumer,
        usize::try_from(remaining).unwrap(),
        Duration::from_secs(20),
    );
    let mut by_partition: BTreeMap<i32, Vec<i64>> = BTreeMap::new();
    for message in &read {
        by_partition
            .entry(message.partition())
            .or_default()
            .push(message.offset());
    }
    for partition in 0..PARTITIONS {
        let expected: Vec<i64> = (final_offset(partition)..PER_PARTITION).collect();
        assert_eq!(
            by_partition.get(&partition).cloned().unwrap_or_default(),
            expected,
            "partition {partition} resumes at its committed offset"
        );
    }
    let committed = consumer
        .committed_offsets(offsets(topic, |_| 0, false), Duration::from_secs(10))
        .unwrap();
    for element in committed.elements() {
        assert_eq!(
            element.offset(),
            Offset::Offset(final_offset(element.partition()))
        );
        assert_eq!(element.metadata(), format!("m{}", element.partition()));
    }
    drop(consumer);

    let other: BaseConsumer = classic_config(bootstrap, h).create().unwrap();
    let committed = other
        .committed_offsets(offsets(topic, |_| 0, false), Duration::from_secs(10))
        .unwrap();
    for element in committed.elements() {
        assert_eq!(
            element.offset(),
            Offset::Offset(simple_offset(element.partition())),
            "group H"
        );
    }
}

#[derive(Clone, Copy)]
enum Restart {
    /// An embedded broker, shut down cleanly.
    Clean,
    /// The binary, killed with SIGKILL right after the last commit was acknowledged.
    Kill9,
}

async fn start(restart: Restart, dir: &Path) -> TestBroker {
    match restart {
        Restart::Clean => TestBroker::Embedded(support::group_broker_in(dir).await),
        Restart::Kill9 => {
            let args = support::group_binary_args();
            let args: Vec<&str> = args.iter().map(String::as_str).collect();
            TestBroker::Binary(BinaryBroker::start(dir, &args))
        }
    }
}

async fn committed_offsets_survive(restart: Restart) {
    let dir = tempfile::tempdir().unwrap();
    let broker = start(restart, dir.path()).await;
    let bootstrap = broker.bootstrap();
    let topic = support::topic_name("resume");
    support::create_topic(&bootstrap, &topic, PARTITIONS, &[]).await;
    produce_per_partition(&bootstrap, &topic, PARTITIONS, PER_PARTITION).await;
    let (g, h) = (
        support::topic_name("resume-g"),
        support::topic_name("resume-h"),
    );
    {
        let (bootstrap, topic, g, h) = (bootstrap.clone(), topic.clone(), g.clone(), h.clone());
        blocking(move || commit_both_groups(&bootstrap, &topic, &g, &h)).await;
    }
    match (restart, broker) {
        (Restart::Kill9, TestBroker::Binary(mut binary)) => binary.kill9(),
        (_, broker) => broker.stop().await,
    }

    let broker = start(restart, dir.path()).await;
    let bootstrap = broker.bootstrap();
    blocking(move || check_resumed(&bootstrap, &topic, &g, &h)).await;
    broker.stop().await;
}

/// How: commit (a lower offset last, with metadata; and a generation -1 commit of another
/// group), shut the embedded broker down, start it over the same data dir, resume.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn committed_offsets_survive_clean_restart() {
    committed_offsets_survive(Restart::Clean).await;
}

/// How: the same with the binary killed by SIGKILL as soon as the last commit returned.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn committed_offsets_survive_kill9() {
    committed_offsets_survive(Restart::Kill9).await;
}

/// The committed offset of `(topic, partition)` for `group`, `-1` if none.
fn committed(wire: &mut Wire, group: &str, topic: &str, partition: i32) -> i64 {
    let response = raw::fetch_offsets(wire, &[(group, Some((topic, &[partition])))]);
    raw::committed_of(&response, group)[&(topic.to_owned(), partition)]
}

/// How: with an injected clock, `offsets.retention.minutes=1` and a 100 ms check interval, a
/// group without members commits partition 0, the clock moves 2 minutes, it commits partition
/// 1: partition 0's offset expires, partition 1's (younger than the retention) stays. Two more
/// minutes and partition 1 expires too, and the group, now without offsets, is no longer
/// listed.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn offsets_of_a_group_without_members_expire_after_retention() {
    let clock = kairos::ManualClock::new(1_800_000_000_000);
    let broker = support::group_broker_builder()
        .temp_dir()
        .clock(Arc::new(clock.clone()))
        .config("offsets.retention.minutes", "1")
        .config("offsets.retention.check.interval.ms", "100")
        .start()
        .await
        .expect("broker starts");
    let bootstrap = broker.bootstrap_servers();
    let topic = support::topic_name("retention");
    support::create_topic(&bootstrap, &topic, 2, &[]).await;
    let group = support::topic_name("retention-group");
    blocking(move || {
        let mut wire = Wire::connect(&bootstrap);
        raw::require_classic(&mut wire);
        let _ = raw::find_coordinators(&mut wire, &[&group]);
        let commit = |wire: &mut Wire, partition: i32, offset: i64| {
            let errors = raw::commit(wire, &group, -1, "", &[(&topic, partition, offset)]);
            assert_eq!(errors[&(topic.clone(), partition)], code::NONE);
        };
        commit(&mut wire, 0, 7);
        assert_eq!(committed(&mut wire, &group, &topic, 0), 7);
        clock.advance_ms(120_000);
        commit(&mut wire, 1, 9);

        let deadline = Instant::now() + Duration::from_secs(10);
        while committed(&mut wire, &group, &topic, 0) != -1 {
            assert!(
                Instant::now() < deadline,
                "partition 0's offset never expired"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        assert_eq!(
            committed(&mut wire, &group, &topic, 1),
            9,
            "a young offset is kept"
        );

        clock.advance_ms(120_000);
        let deadline = Instant::now() + Duration::from_secs(10);
        while committed(&mut wire, &group, &topic, 1) != -1 {
            assert!(
                Instant::now() < deadline,
                "partition 1's offset never expired"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let listed = wire.call(raw::LIST_GROUPS, &ListGroupsRequest::default());
            assert_eq!(listed.error_code, code::NONE);
            if listed.groups.iter().all(|g| g.group_id.as_str() != group) {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "a group with no members and no offsets stays listed: {listed:?}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    })
    .await;
    broker.shutdown().await.unwrap();
}

/// How many records `__consumer_offsets` holds (all of its 3 partitions), read as a client.
fn offsets_topic_records(bootstrap: &str) -> usize {
    let consumer = support::consumer(bootstrap);
    support::assign(&consumer, "__consumer_offsets", 3, Offset::Beginning);
    support::consume(&consumer, 100_000, Duration::from_millis(1500)).len()
}

/// Starts the embedded broker over `dir` with 1 KiB `__consumer_offsets` segments and a cleaner
/// that looks for dirty logs every 50 ms from the start. No initial rebalance delay: callers
/// cycle members through empty groups.
pub(crate) async fn compacting_broker(dir: &Path) -> kairos::BrokerHandle {
    support::group_broker_builder()
        .data_dir(dir)
        .config("offsets.topic.segment.bytes", "1024")
        .config("log.cleaner.backoff.ms", "50")
        .config("log.initial.task.delay.ms", "0")
        .config("group.initial.rebalance.delay.ms", "0")
        .start()
        .await
        .expect("broker starts")
}

/// How: with 1 KiB segments for `__consumer_offsets` and a cleaner every 50 ms, group G
/// commits one partition 400 times (each commit supersedes the previous one) and group H
/// commits once and is deleted (DeleteGroups writes tombstones). The cleaner compacts the
/// internal topic: reading it as a client shows most of the 400 commits gone. After a clean
/// restart G's offset is its last commit and H stays deleted: the reload of a compacted log
/// is exact.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_offsets_topic_is_compacted_and_reloads_exactly() {
    let dir = tempfile::tempdir().unwrap();
    let broker = compacting_broker(dir.path()).await;
    let bootstrap = broker.bootstrap_servers();
    let topic = support::topic_name("compact-offsets");
    support::create_topic(&bootstrap, &topic, 1, &[]).await;
    let (g, h) = (
        support::topic_name("compact-g"),
        support::topic_name("compact-h"),
    );
    {
        let (address, topic, g, h) = (bootstrap.clone(), topic.clone(), g.clone(), h.clone());
        blocking(move || {
            let mut wire = Wire::connect(&address);
            raw::require_classic(&mut wire);
            let _ = raw::find_coordinators(&mut wire, &[&g, &h]);
            for offset in 1..=400 {
                let errors = raw::commit(&mut wire, &g, -1, "", &[(&topic, 0, offset)]);
                assert!(errors.values().all(|e| *e == code::NONE), "{errors:?}");
            }
            let errors = raw::commit(&mut wire, &h, -1, "", &[(&topic, 0, 7)]);
            assert!(errors.values().all(|e| *e == code::NONE), "{errors:?}");
            let deleted = wire.call(
                2,
                &DeleteGroupsRequest::default().with_groups_names(vec![raw::group_id(&h)]),
            );
            assert_eq!(deleted.results[0].error_code, code::NONE, "{deleted:?}");
        })
        .await;
    }
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let address = bootstrap.clone();
        let records = blocking(move || offsets_topic_records(&address)).await;
        eprintln!("__consumer_offsets holds {records} records");
        if records < 100 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "__consumer_offsets still holds {records} records: never compacted"
        );
    }
    broker.shutdown().await.unwrap();

    let broker = compacting_broker(dir.path()).await;
    let bootstrap = broker.bootstrap_servers();
    blocking(move || {
        let mut wire = Wire::connect(&bootstrap);
        let fetched = raw::fetch_offsets(
            &mut wire,
            &[(&g, Some((&topic, &[0]))), (&h, Some((&topic, &[0])))],
        );
        assert_eq!(
            raw::committed_of(&fetched, &g)[&(topic.clone(), 0)],
            400,
            "the last commit"
        );
        assert_eq!(
            raw::committed_of(&fetched, &h)[&(topic.clone(), 0)],
            -1,
            "the deleted group"
        );
        let listed = wire.call(raw::LIST_GROUPS, &ListGroupsRequest::default());
        assert!(
            listed
                .groups
                .iter()
                .all(|group| group.group_id.as_str() != h),
            "{listed:?}"
        );
    })
    .await;
    broker.shutdown().await.unwrap();
}
