//! Committed offsets on raw sockets, where the exact answer matters: persistence and reload
//! across every OffsetFetch version, `offsets.retention.minutes` driven by a manual clock,
//! metadata limits, and `__consumer_offsets` being internal.

use std::sync::Arc;
use std::time::{Duration, Instant};

use kafka_protocol::messages::create_topics_request::CreatableTopic;
use kafka_protocol::messages::offset_commit_request::{
    OffsetCommitRequestPartition, OffsetCommitRequestTopic,
};
use kafka_protocol::messages::offset_fetch_request::{
    OffsetFetchRequestGroup, OffsetFetchRequestTopic, OffsetFetchRequestTopics,
};
use kafka_protocol::messages::*;
use kafka_protocol::protocol::StrBytes;
use kairos::{Broker, BrokerHandle, ManualClock};

use crate::wire::Wire;

const T0: i64 = 1_800_000_000_000;

async fn broker(dir: &std::path::Path, clock: &ManualClock) -> BrokerHandle {
    Broker::builder()
        .data_dir(dir)
        .listener("127.0.0.1:0")
        .clock(Arc::new(clock.clone()))
        .config("offsets.topic.num.partitions", "3")
        .config("offsets.retention.minutes", "1")
        .config("offsets.retention.check.interval.ms", "20")
        .start()
        .await
        .unwrap()
}

fn s(value: &str) -> StrBytes {
    StrBytes::from_string(value.to_owned())
}

fn create_topic(wire: &mut Wire, topic: &str, partitions: i32) {
    let response = wire.call(
        7,
        &CreateTopicsRequest::default().with_topics(vec![
            CreatableTopic::default()
                .with_name(TopicName(s(topic)))
                .with_num_partitions(partitions)
                .with_replication_factor(1),
        ]),
    );
    assert_eq!(response.topics[0].error_code, 0);
}

/// An admin-style commit (generation -1, no member) of `offsets` for partitions 0.. of `topic`.
fn commit(wire: &mut Wire, group: &str, topic: &str, offsets: &[i64], metadata: &str) -> Vec<i16> {
    let request = OffsetCommitRequest::default()
        .with_group_id(GroupId(s(group)))
        .with_generation_id_or_member_epoch(-1)
        .with_topics(vec![
            OffsetCommitRequestTopic::default()
                .with_name(TopicName(s(topic)))
                .with_partitions(
                    offsets
                        .iter()
                        .enumerate()
                        .map(|(partition, offset)| {
                            OffsetCommitRequestPartition::default()
                                .with_partition_index(i32::try_from(partition).unwrap())
                                .with_committed_offset(*offset)
                                .with_committed_leader_epoch(0)
                                .with_committed_metadata(Some(s(metadata)))
                        })
                        .collect(),
                ),
        ]);
    wire.call(8, &request).topics[0]
        .partitions
        .iter()
        .map(|p| p.error_code)
        .collect()
}

/// `(offset, metadata)` per partition, through OffsetFetch at `version`.
fn fetch(
    wire: &mut Wire,
    version: i16,
    group: &str,
    topic: &str,
    partitions: i32,
) -> Vec<(i64, String)> {
    let indexes: Vec<i32> = (0..partitions).collect();
    if version >= 8 {
        let request = OffsetFetchRequest::default().with_groups(vec![
            OffsetFetchRequestGroup::default()
                .with_group_id(GroupId(s(group)))
                .with_member_epoch(-1)
                .with_topics(Some(vec![
                    OffsetFetchRequestTopics::default()
                        .with_name(TopicName(s(topic)))
                        .with_partition_indexes(indexes),
                ])),
        ]);
        let response = wire.call(version, &request);
        assert_eq!(response.groups[0].error_code, 0);
        return response.groups[0].topics[0]
            .partitions
            .iter()
            .map(|p| {
                assert_eq!(p.error_code, 0);
                (
                    p.committed_offset,
                    p.metadata.as_deref().unwrap_or("").to_owned(),
                )
            })
            .collect();
    }
    let request = OffsetFetchRequest::default()
        .with_group_id(GroupId(s(group)))
        .with_topics(Some(vec![
            OffsetFetchRequestTopic::default()
                .with_name(TopicName(s(topic)))
                .with_partition_indexes(indexes),
        ]));
    let response = wire.call(version, &request);
    assert_eq!(response.error_code, 0);
    response.topics[0]
        .partitions
        .iter()
        .map(|p| {
            assert_eq!(p.error_code, 0);
            (
                p.committed_offset,
                p.metadata.as_deref().unwrap_or("").to_owned(),
            )
        })
        .collect()
}

async fn on_wire<T: Send + 'static>(
    address: String,
    body: impl FnOnce(&mut Wire) -> T + Send + 'static,
) -> T {
    tokio::task::spawn_blocking(move || body(&mut Wire::connect(&address)))
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn offsets_survive_a_restart_and_read_at_every_version() {
    let dir = tempfile::tempdir().unwrap();
    let clock = ManualClock::new(T0);
    let first = broker(dir.path(), &clock).await;
    on_wire(first.bootstrap_servers(), |wire| {
        create_topic(wire, "orders", 3);
        assert_eq!(
            commit(wire, "billing", "orders", &[5, 0, 42], "m"),
            vec![0, 0, 0]
        );
        // A later commit wins.
        assert_eq!(commit(wire, "billing", "orders", &[7], "n"), vec![0]);
    })
    .await;
    first.shutdown().await.unwrap();

    let second = broker(dir.path(), &clock).await;
    on_wire(second.bootstrap_servers(), |wire| {
        for version in 1..=9 {
            let offsets = fetch(wire, version, "billing", "orders", 3);
            assert_eq!(
                offsets,
                vec![
                    (7, "n".to_owned()),
                    (0, "m".to_owned()),
                    (42, "m".to_owned())
                ],
                "OffsetFetch v{version}"
            );
            // Unknown groups and partitions read as "no offset", not as an error.
            assert_eq!(
                fetch(wire, version, "nobody", "orders", 1),
                vec![(-1, String::new())]
            );
        }
    })
    .await;
    second.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn offsets_of_an_empty_group_expire_after_the_retention() {
    let dir = tempfile::tempdir().unwrap();
    let clock = ManualClock::new(T0);
    let handle = broker(dir.path(), &clock).await;
    let address = handle.bootstrap_servers();
    on_wire(address.clone(), |wire| {
        create_topic(wire, "events", 1);
        assert_eq!(commit(wire, "old", "events", &[3], ""), vec![0]);
    })
    .await;
    // Just short of one minute: still there, however often the expiry runs.
    clock.advance_ms(59_000);
    tokio::time::sleep(Duration::from_millis(200)).await;
    let kept = on_wire(address.clone(), |wire| fetch(wire, 9, "old", "events", 1)).await;
    assert_eq!(kept, vec![(3, String::new())]);

    clock.advance_ms(2_000);
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let now = on_wire(address.clone(), |wire| {
            let offsets = fetch(wire, 9, "old", "events", 1);
            let listed = wire.call(5, &ListGroupsRequest::default()).groups.len();
            (offsets, listed)
        })
        .await;
        if now == (vec![(-1, String::new())], 0) {
            break;
        }
        assert!(Instant::now() < deadline, "offsets did not expire: {now:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    handle.shutdown().await.unwrap();

    // The expiry was persisted as tombstones: a restart does not bring the offset back.
    let again = broker(dir.path(), &clock).await;
    let after = on_wire(again.bootstrap_servers(), |wire| {
        fetch(wire, 9, "old", "events", 1)
    })
    .await;
    assert_eq!(after, vec![(-1, String::new())]);
    again.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn commit_errors_are_per_partition_and_the_offsets_topic_is_internal() {
    let dir = tempfile::tempdir().unwrap();
    let clock = ManualClock::new(T0);
    let handle = broker(dir.path(), &clock).await;
    on_wire(handle.bootstrap_servers(), |wire| {
        create_topic(wire, "small", 1);
        // Partition 1 does not exist; metadata over offset.metadata.max.bytes (4096).
        assert_eq!(commit(wire, "g", "small", &[1, 2], ""), vec![0, 3]);
        assert_eq!(
            commit(wire, "g", "small", &[1], &"x".repeat(5000)),
            vec![12]
        );
        assert_eq!(commit(wire, "g", "missing", &[1], ""), vec![3]);

        let metadata = wire.call(12, &MetadataRequest::default().with_topics(None));
        let internal = metadata
            .topics
            .iter()
            .find(|t| {
                t.name
                    .as_ref()
                    .is_some_and(|n| n.0.as_str() == "__consumer_offsets")
            })
            .expect("__consumer_offsets is listed");
        assert!(internal.is_internal);
        assert_eq!(internal.partitions.len(), 3);
        let user = metadata
            .topics
            .iter()
            .find(|t| t.name.as_ref().is_some_and(|n| n.0.as_str() == "small"))
            .unwrap();
        assert!(!user.is_internal);

        // Clients cannot write the coordinator's log.
        let produce = wire.call(
            9,
            &ProduceRequest::default()
                .with_acks(1)
                .with_timeout_ms(1000)
                .with_topic_data(vec![
                    produce_request::TopicProduceData::default()
                        .with_name(TopicName(s("__consumer_offsets")))
                        .with_partition_data(vec![
                            produce_request::PartitionProduceData::default()
                                .with_index(0)
                                .with_records(Some(
                                    kairos_storage::builder::RecordBatchBuilder::new()
                                        .record(Some(b"k"), Some(b"v"), T0)
                                        .build()
                                        .into(),
                                )),
                        ]),
                ]),
        );
        assert_eq!(produce.responses[0].partition_responses[0].error_code, 17);
        let delete = |wire: &mut Wire, topic: &str| {
            wire.call(
                6,
                &DeleteTopicsRequest::default().with_topics(vec![
                    delete_topics_request::DeleteTopicState::default()
                        .with_name(Some(TopicName(s(topic)))),
                ]),
            )
            .responses[0]
                .error_code
        };
        assert_eq!(delete(wire, "__consumer_offsets"), 17);

        // Offsets of a deleted topic go with it: the same name created again starts clean.
        assert_eq!(commit(wire, "g", "small", &[9], ""), vec![0]);
        assert_eq!(fetch(wire, 9, "g", "small", 1), vec![(9, String::new())]);
        assert_eq!(delete(wire, "small"), 0);
        create_topic(wire, "small", 1);
        assert_eq!(fetch(wire, 9, "g", "small", 1), vec![(-1, String::new())]);
    })
    .await;
    handle.shutdown().await.unwrap();
}
