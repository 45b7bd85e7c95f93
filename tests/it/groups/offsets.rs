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
/// A consume error fails with the consumer's positions and the raw batches at them.
fn offsets_topic_records(bootstrap: &str) -> usize {
    let consumer = support::consumer(bootstrap);
    support::assign(&consumer, "__consumer_offsets", 3, Offset::Beginning);
    let deadline = Instant::now() + Duration::from_millis(1500);
    let mut count = 0;
    while Instant::now() < deadline {
        match consumer.poll(Duration::from_millis(100)) {
            Some(Ok(_)) => count += 1,
            Some(Err(error)) => {
                let positions = consumer.position().unwrap();
                let mut evidence = Vec::new();
                for element in positions.elements() {
                    if let Offset::Offset(at) = element.offset() {
                        evidence.push(describe_fetch(bootstrap, element.partition(), at));
                    }
                }
                panic!("reading __consumer_offsets after {count} records: {error}; {evidence:#?}");
            }
            None => {}
        }
    }
    count
}

/// One raw Fetch v12 of `__consumer_offsets-<partition>` at `offset`: the batches' base
/// offsets and lengths, and any bytes left over.
fn describe_fetch(bootstrap: &str, partition: i32, offset: i64) -> String {
    use kafka_protocol::messages::FetchRequest;
    use kafka_protocol::messages::fetch_request::{FetchPartition, FetchTopic};
    let mut wire = Wire::connect(bootstrap);
    let request = FetchRequest::default()
        .with_replica_id(kafka_protocol::messages::BrokerId(-1))
        .with_max_bytes(52_428_800)
        .with_topics(vec![
            FetchTopic::default()
                .with_topic(raw::topic_name("__consumer_offsets"))
                .with_partitions(vec![
                    FetchPartition::default()
                        .with_partition(partition)
                        .with_fetch_offset(offset)
                        .with_partition_max_bytes(1 << 20),
                ]),
        ]);
    let response = wire.call(12, &request);
    let data = &response.responses[0].partitions[0];
    let records = data.records.clone().unwrap_or_default();
    let mut rest = &records[..];
    let mut batches = Vec::new();
    while rest.len() >= 12 {
        let base = i64::from_be_bytes(rest[0..8].try_into().unwrap());
        let length = usize::try_from(i32::from_be_bytes(rest[8..12].try_into().unwrap()))
            .unwrap_or(usize::MAX);
        batches.push((base, length));
        if rest.len() < 12 + length {
            break;
        }
        rest = &rest[12 + length..];
    }
    format!(
        "partition {partition} at {offset}: error {}, hw {}, log start {}, {} bytes, batches (base, length) {batches:?}, {} bytes after the last whole batch",
        data.error_code,
        data.high_watermark,
        data.log_start_offset,
        records.len(),
        rest.len()
    )
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

/// Checks that `records` (a Fetch answer's bytes for one partition) are whole v2 batches with
/// valid CRCs and increasing offsets that cover `fetch_offset`; returns the last offset.
fn check_batches(records: &[u8], fetch_offset: i64, what: &str) -> Option<i64> {
    let mut rest = records;
    let mut batches = 0;
    let mut previous_last = fetch_offset - 1;
    while !rest.is_empty() {
        assert!(
            rest.len() >= 61,
            "{what}: {} trailing bytes, less than a batch header",
            rest.len()
        );
        let base_offset = i64::from_be_bytes(rest[0..8].try_into().unwrap());
        let length = usize::try_from(i32::from_be_bytes(rest[8..12].try_into().unwrap())).unwrap();
        assert!(
            rest.len() >= 12 + length,
            "{what}: batch {batches} at offset {base_offset} claims {length} bytes, {} left",
            rest.len() - 12
        );
        let batch = &rest[..12 + length];
        assert_eq!(
            batch[16], 2,
            "{what}: batch at {base_offset}: magic {}",
            batch[16]
        );
        let crc = u32::from_be_bytes(batch[17..21].try_into().unwrap());
        assert_eq!(
            crc32c::crc32c(&batch[21..]),
            crc,
            "{what}: batch at {base_offset}: bad CRC"
        );
        let record_count = i32::from_be_bytes(batch[57..61].try_into().unwrap());
        let decoded = kafka_protocol::records::RecordBatchDecoder::decode(
            &mut bytes::Bytes::copy_from_slice(batch),
        )
        .unwrap_or_else(|e| panic!("{what}: batch at {base_offset} does not decode: {e}"));
        assert_eq!(
            usize::try_from(record_count).unwrap(),
            decoded.records.len(),
            "{what}: batch at {base_offset}: record count"
        );
        let last_delta = i64::from(i32::from_be_bytes(batch[23..27].try_into().unwrap()));
        assert!(
            base_offset + last_delta > previous_last,
            "{what}: batch at {base_offset} after offset {previous_last}"
        );
        previous_last = base_offset + last_delta;
        if batches == 0 {
            assert!(
                previous_last >= fetch_offset,
                "{what}: the first batch ends at {previous_last}, before the fetch offset"
            );
        }
        batches += 1;
        rest = &rest[12 + length..];
    }
    (batches > 0).then_some(previous_last)
}

/// How: one thread commits 300 times (1 KiB segments, so segments roll and the cleaner
/// rewrites them every 50 ms) while another fetches every partition of `__consumer_offsets`
/// from offset 0 again and again, as a client reading the topic would. Every answer must be
/// whole batches with valid CRCs: the cleaner swapping segments under a fetch must not show.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn fetching_the_offsets_topic_while_it_is_compacted_returns_whole_batches() {
    use kafka_protocol::messages::FetchRequest;
    use kafka_protocol::messages::fetch_request::{FetchPartition, FetchTopic};

    let dir = tempfile::tempdir().unwrap();
    let broker = compacting_broker(dir.path()).await;
    let bootstrap = broker.bootstrap_servers();
    let topic = support::topic_name("fetch-compacting");
    support::create_topic(&bootstrap, &topic, 1, &[]).await;
    let group = support::topic_name("fetch-compacting-g");
    {
        // The first commit creates `__consumer_offsets`.
        let (address, topic, group) = (bootstrap.clone(), topic.clone(), group.clone());
        blocking(move || {
            let mut wire = Wire::connect(&address);
            let _ = raw::find_coordinators(&mut wire, &[&group]);
            let errors = raw::commit(&mut wire, &group, -1, "", &[(&topic, 0, 0)]);
            assert!(errors.values().all(|e| *e == code::NONE), "{errors:?}");
        })
        .await;
    }
    let done = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let writer = {
        let (address, topic, done) = (bootstrap.clone(), topic.clone(), Arc::clone(&done));
        tokio::task::spawn_blocking(move || {
            let mut wire = Wire::connect(&address);
            for offset in 1..=300 {
                let errors = raw::commit(&mut wire, &group, -1, "", &[(&topic, 0, offset)]);
                assert!(errors.values().all(|e| *e == code::NONE), "{errors:?}");
            }
            done.store(true, std::sync::atomic::Ordering::SeqCst);
        })
    };
    let reader = {
        let address = bootstrap.clone();
        tokio::task::spawn_blocking(move || {
            let mut wire = Wire::connect(&address);
            let mut fetches = 0;
            // Each partition is read forward as a consumer does (the next fetch starts after
            // the last batch returned), waits at the end, and starts from 0 again.
            let mut next = [0_i64; 3];
            while !done.load(std::sync::atomic::Ordering::SeqCst) {
                let request = FetchRequest::default()
                    .with_replica_id(kafka_protocol::messages::BrokerId(-1))
                    // Caught-up partitions make the fetch wait for the next append, as a
                    // consumer's long poll does.
                    .with_max_wait_ms(100)
                    .with_min_bytes(1)
                    .with_max_bytes(16 << 20)
                    .with_topics(vec![
                        FetchTopic::default()
                            .with_topic(raw::topic_name("__consumer_offsets"))
                            .with_partitions(
                                (0..3)
                                    .map(|p| {
                                        FetchPartition::default()
                                            .with_partition(p)
                                            .with_fetch_offset(next[usize::try_from(p).unwrap()])
                                            .with_partition_max_bytes(1 << 20)
                                    })
                                    .collect(),
                            ),
                    ]);
                let response = wire.call(12, &request);
                for partition in &response.responses[0].partitions {
                    let index = usize::try_from(partition.partition_index).unwrap();
                    assert_eq!(partition.error_code, code::NONE, "{partition:?}");
                    let records = partition.records.clone().unwrap_or_default();
                    let what = format!(
                        "fetch {fetches} of __consumer_offsets-{index} at {}",
                        next[index]
                    );
                    let last = check_batches(&records, next[index], &what);
                    // Forward to the end, wait there a few times, then from 0 again.
                    next[index] = match last {
                        Some(last) => last + 1,
                        None if fetches % 8 == 0 => 0,
                        None => next[index],
                    };
                }
                fetches += 1;
            }
            fetches
        })
    };
    writer.await.unwrap();
    let fetches = reader.await.unwrap();
    eprintln!("{fetches} fetches checked");
    broker.shutdown().await.unwrap();
}

/// How: on a compacted `__consumer_offsets` (group G commits 50 times, group H commits and is
/// deleted, so its tombstones are the last records), every partition is walked with raw
/// fetches from 0 as a consumer does, then fetched at every offset from the last one returned
/// up to the high watermark. Kafka never answers a fetch with only batches that end before the
/// fetch offset: librdkafka reads no message from such an answer, doubles its fetch size and,
/// after ten of them, fails with MSG_SIZE_TOO_LARGE.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn fetches_of_the_compacted_offsets_topic_never_answer_below_the_fetch_offset() {
    use kafka_protocol::messages::FetchRequest;
    use kafka_protocol::messages::fetch_request::{FetchPartition, FetchTopic};

    let dir = tempfile::tempdir().unwrap();
    let broker = compacting_broker(dir.path()).await;
    let bootstrap = broker.bootstrap_servers();
    let topic = support::topic_name("tail");
    support::create_topic(&bootstrap, &topic, 1, &[]).await;
    let (g, h) = (support::topic_name("tail-g"), support::topic_name("tail-h"));
    blocking(move || {
        let mut wire = Wire::connect(&bootstrap);
        let _ = raw::find_coordinators(&mut wire, &[&g, &h]);
        for offset in 1..=50 {
            let errors = raw::commit(&mut wire, &g, -1, "", &[(&topic, 0, offset)]);
            assert!(errors.values().all(|e| *e == code::NONE), "{errors:?}");
        }
        let errors = raw::commit(&mut wire, &h, -1, "", &[(&topic, 0, 7)]);
        assert!(errors.values().all(|e| *e == code::NONE), "{errors:?}");
        let deleted = wire.call(
            2,
            &DeleteGroupsRequest::default().with_groups_names(vec![raw::group_id(&h)]),
        );
        assert_eq!(deleted.results[0].error_code, code::NONE);
        // Let the cleaner (every 50 ms) go over what was written.
        std::thread::sleep(Duration::from_millis(500));

        let mut fetch = |partition: i32, offset: i64| {
            let request = FetchRequest::default()
                .with_replica_id(kafka_protocol::messages::BrokerId(-1))
                .with_max_bytes(52_428_800)
                .with_topics(vec![
                    FetchTopic::default()
                        .with_topic(raw::topic_name("__consumer_offsets"))
                        .with_partitions(vec![
                            FetchPartition::default()
                                .with_partition(partition)
                                .with_fetch_offset(offset)
                                .with_partition_max_bytes(1 << 20),
                        ]),
                ]);
            let response = wire.call(12, &request);
            let data = response.responses[0].partitions[0].clone();
            assert_eq!(data.error_code, code::NONE, "{data:?}");
            let records = data.records.clone().unwrap_or_default();
            let what = format!(
                "__consumer_offsets-{partition} at {offset} (high watermark {})",
                data.high_watermark
            );
            (check_batches(&records, offset, &what), data.high_watermark)
        };
        for partition in 0..3 {
            let mut next = 0;
            let high_watermark = loop {
                match fetch(partition, next) {
                    (Some(last), _) => next = last + 1,
                    (None, high_watermark) => break high_watermark,
                }
            };
            for offset in next..=high_watermark {
                let _ = fetch(partition, offset);
            }
        }
    })
    .await;
    broker.shutdown().await.unwrap();
}
