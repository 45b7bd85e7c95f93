//! DESIGN §3 "Clients break on details", one test each, over the raw wire. Tests are named after
//! the issue that requires them: i6 = issue 6, the Kafka wire server.

use bytes::Bytes;
use kafka_protocol::messages::create_topics_request::{CreatableTopic, CreatableTopicConfig};
use kafka_protocol::messages::delete_topics_request::DeleteTopicState;
use kafka_protocol::messages::fetch_request::{FetchPartition, FetchTopic};
use kafka_protocol::messages::list_offsets_request::{ListOffsetsPartition, ListOffsetsTopic};
use kafka_protocol::messages::metadata_request::MetadataRequestTopic;
use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
use kafka_protocol::messages::*;
use kairos_storage::Compression;
use kairos_storage::builder::RecordBatchBuilder;
use uuid::Uuid;

use crate::support;
use crate::wire::Wire;

fn name(topic: &str) -> TopicName {
    TopicName(topic.to_owned().into())
}

fn batch(records: usize, value_bytes: usize) -> Vec<u8> {
    let mut builder = RecordBatchBuilder::new();
    for i in 0..records {
        let value = vec![b'a' + u8::try_from(i % 26).unwrap(); value_bytes];
        builder = builder.record(
            Some(format!("k{i}").as_bytes()),
            Some(&value),
            1_000 + i64::try_from(i).unwrap(),
        );
    }
    builder.build()
}

fn create(
    wire: &mut Wire,
    topic: &str,
    partitions: i32,
    configs: &[(&str, &str)],
) -> CreatableTopic {
    let creatable = CreatableTopic::default()
        .with_name(name(topic))
        .with_num_partitions(partitions)
        .with_replication_factor(1)
        .with_configs(
            configs
                .iter()
                .map(|(k, v)| {
                    CreatableTopicConfig::default()
                        .with_name((*k).to_owned().into())
                        .with_value(Some((*v).to_owned().into()))
                })
                .collect(),
        );
    let response = wire.call(
        7,
        &CreateTopicsRequest::default().with_topics(vec![creatable.clone()]),
    );
    assert_eq!(
        response.topics[0].error_code, 0,
        "create {topic}: {:?}",
        response.topics[0].error_message
    );
    creatable
}

fn produce_request(topic: &str, partition: i32, acks: i16, records: Vec<u8>) -> ProduceRequest {
    ProduceRequest::default()
        .with_acks(acks)
        .with_timeout_ms(5_000)
        .with_topic_data(vec![
            TopicProduceData::default()
                .with_name(name(topic))
                .with_partition_data(vec![
                    PartitionProduceData::default()
                        .with_index(partition)
                        .with_records(Some(Bytes::from(records))),
                ]),
        ])
}

/// `(error code, base offset)` of a single-partition produce.
fn produce(wire: &mut Wire, topic: &str, records: Vec<u8>) -> (i16, i64) {
    let response = wire.call(11, &produce_request(topic, 0, -1, records));
    let partition = &response.responses[0].partition_responses[0];
    (partition.error_code, partition.base_offset)
}

fn fetch_request(
    _version: i16,
    topic: &str,
    topic_id: Uuid,
    offset: i64,
    max_bytes: i32,
) -> FetchRequest {
    FetchRequest::default()
        .with_replica_id(BrokerId(-1))
        .with_max_wait_ms(0)
        .with_min_bytes(1)
        .with_max_bytes(max_bytes)
        .with_session_epoch(-1)
        .with_topics(vec![
            FetchTopic::default()
                .with_topic(name(topic))
                .with_topic_id(topic_id)
                .with_partitions(vec![
                    FetchPartition::default()
                        .with_partition(0)
                        .with_fetch_offset(offset)
                        .with_partition_max_bytes(max_bytes),
                ]),
        ])
}

/// Runs `body` against a fresh embedded broker, on a blocking thread with a raw connection.
async fn with_wire(body: impl FnOnce(&mut Wire, &str) + Send + 'static) {
    let broker = support::embedded().await;
    let address = broker.bootstrap_servers();
    tokio::task::spawn_blocking(move || {
        let mut wire = Wire::connect(&address);
        body(&mut wire, &address);
    })
    .await
    .unwrap();
    broker.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn i6_metadata_null_means_all_empty_means_none_and_auto_create() {
    with_wire(|wire, _| {
        create(wire, "existing", 2, &[]);
        let all = wire.call(1, &MetadataRequest::default().with_topics(None));
        assert_eq!(all.topics.len(), 1);
        let none = wire.call(1, &MetadataRequest::default().with_topics(Some(vec![])));
        assert!(none.topics.is_empty());
        let v0_all = wire.call(0, &MetadataRequest::default().with_topics(Some(vec![])));
        assert_eq!(v0_all.topics.len(), 1);
        let ask = |topic: &str, allow: bool| {
            MetadataRequest::default()
                .with_topics(Some(vec![
                    MetadataRequestTopic::default().with_name(Some(name(topic))),
                ]))
                .with_allow_auto_topic_creation(allow)
        };
        let refused = wire.call(12, &ask("auto", false));
        assert_eq!(refused.topics[0].error_code, 3);
        let created = wire.call(12, &ask("auto", true));
        assert_eq!(created.topics[0].error_code, 0);
        assert_eq!(created.topics[0].partitions.len(), 1, "num.partitions");
        assert_ne!(created.topics[0].topic_id, Uuid::nil());
        let invalid = wire.call(12, &ask("bad name", true));
        assert_eq!(invalid.topics[0].error_code, 17);
        assert_eq!(all.controller_id, all.brokers[0].node_id);
        assert!(created.cluster_id.is_some(), "cluster id from v2");
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn i6_topic_ids_unknown_id_and_recreated_topic_gets_new_id() {
    with_wire(|wire, _| {
        create(wire, "ids", 1, &[]);
        let id_of = |wire: &mut Wire| {
            let response = wire.call(
                12,
                &MetadataRequest::default().with_topics(Some(vec![
                    MetadataRequestTopic::default().with_name(Some(name("ids"))),
                ])),
            );
            response.topics[0].topic_id
        };
        let first = id_of(wire);
        let unknown = Uuid::new_v4();
        let by_id = wire.call(
            12,
            &MetadataRequest::default().with_topics(Some(vec![
                MetadataRequestTopic::default().with_topic_id(unknown),
            ])),
        );
        assert_eq!(by_id.topics[0].error_code, 100);
        let fetched = wire.call(13, &fetch_request(13, "", unknown, 0, 1_000));
        assert_eq!(fetched.responses[0].partitions[0].error_code, 100);
        let fetched = wire.call(13, &fetch_request(13, "", first, 0, 1_000));
        assert_eq!(fetched.responses[0].partitions[0].error_code, 0);
        // Delete by id, re-create by name: a new id.
        let deleted = wire.call(
            6,
            &DeleteTopicsRequest::default()
                .with_topics(vec![DeleteTopicState::default().with_topic_id(first)]),
        );
        assert_eq!(deleted.responses[0].error_code, 0);
        assert_eq!(
            deleted.responses[0].name.as_ref().map(|n| n.to_string()),
            Some("ids".into())
        );
        create(wire, "ids", 1, &[]);
        assert_ne!(id_of(wire), first);
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn i6_fetch_boundaries_kip74_and_sessions() {
    with_wire(|wire, _| {
        create(wire, "fetch", 1, &[]);
        assert_eq!(produce(wire, "fetch", batch(1, 300)), (0, 0));
        let compressed = RecordBatchBuilder::new().compression(Compression::Gzip);
        let compressed = (0..5).fold(compressed, |b, i| {
            b.record(Some(b"k"), Some(format!("c{i}").as_bytes()), 5)
        });
        assert_eq!(produce(wire, "fetch", compressed.build()), (0, 1));
        assert_eq!(produce(wire, "fetch", batch(1, 10)), (0, 6));
        let fetch = |wire: &mut Wire, offset: i64, max_bytes: i32| {
            let response = wire.call(
                12,
                &fetch_request(12, "fetch", Uuid::nil(), offset, max_bytes),
            );
            assert_eq!(response.session_id, 0);
            response.responses[0].partitions[0].clone()
        };
        // KIP-74: the first batch is returned whole even above max_bytes.
        let first = fetch(wire, 0, 1);
        assert_eq!(first.error_code, 0);
        let records = first.records.unwrap();
        assert!(records.len() > 300);
        assert_eq!(i64::from_be_bytes(records[..8].try_into().unwrap()), 0);
        assert_eq!(
            (
                first.high_watermark,
                first.last_stable_offset,
                first.log_start_offset
            ),
            (7, 7, 0)
        );
        // An offset inside a compressed batch returns that whole batch.
        let inside = fetch(wire, 3, 1).records.unwrap();
        assert_eq!(i64::from_be_bytes(inside[..8].try_into().unwrap()), 1);
        // Offset == LEO: empty, no error. Past it: OFFSET_OUT_OF_RANGE.
        let at_end = fetch(wire, 7, 1_000);
        assert_eq!(at_end.error_code, 0);
        assert!(at_end.records.unwrap_or_default().is_empty());
        assert_eq!(fetch(wire, 8, 1_000).error_code, 1);
        assert_eq!(fetch(wire, -5, 1_000).error_code, 1);
        // Sessionless: any other session id is FETCH_SESSION_ID_NOT_FOUND.
        let session = wire.call(
            12,
            &fetch_request(12, "fetch", Uuid::nil(), 0, 1_000)
                .with_session_id(5)
                .with_session_epoch(1),
        );
        assert_eq!(session.error_code, 70);
        // Leader epoch is stamped into stored batches and matches Metadata and ListOffsets.
        let epoch_in_batch = i32::from_be_bytes(records[12..16].try_into().unwrap());
        let metadata = wire.call(12, &MetadataRequest::default().with_topics(None));
        assert_eq!(
            metadata.topics[0].partitions[0].leader_epoch,
            epoch_in_batch
        );
        let offsets = list_offsets(wire, "fetch", -1);
        assert_eq!(offsets.leader_epoch, epoch_in_batch);
    })
    .await;
}

fn list_offsets(
    wire: &mut Wire,
    topic: &str,
    timestamp: i64,
) -> list_offsets_response::ListOffsetsPartitionResponse {
    let request = ListOffsetsRequest::default()
        .with_replica_id(BrokerId(-1))
        .with_topics(vec![
            ListOffsetsTopic::default()
                .with_name(name(topic))
                .with_partitions(vec![
                    ListOffsetsPartition::default()
                        .with_partition_index(0)
                        .with_timestamp(timestamp),
                ]),
        ]);
    wire.call(9, &request).topics[0].partitions[0].clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn i6_list_offsets_special_timestamps() {
    with_wire(|wire, _| {
        create(wire, "offsets", 1, &[]);
        let _ = produce(wire, "offsets", batch(3, 10)); // timestamps 1000, 1001, 1002
        let check = |wire: &mut Wire, timestamp: i64| {
            let p = list_offsets(wire, "offsets", timestamp);
            (p.error_code, p.offset, p.timestamp)
        };
        assert_eq!(check(wire, -2), (0, 0, -1));
        assert_eq!(check(wire, -1), (0, 3, -1));
        assert_eq!(check(wire, -3), (0, 2, 1_002));
        assert_eq!(check(wire, 1_001), (0, 1, 1_001));
        assert_eq!(check(wire, 5_000), (0, -1, -1));
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn i6_produce_errors_per_partition() {
    with_wire(|wire, address| {
        create(wire, "small", 1, &[("max.message.bytes", "200")]);
        create(wire, "compacted", 1, &[("cleanup.policy", "compact")]);
        let mut corrupt = batch(1, 10);
        let last = corrupt.len() - 1;
        corrupt[last] ^= 0xff;
        assert_eq!(
            produce(wire, "small", corrupt).0,
            2,
            "CRC mismatch is CORRUPT_MESSAGE"
        );
        assert_eq!(
            produce(wire, "small", batch(1, 500)).0,
            10,
            "MESSAGE_TOO_LARGE"
        );
        assert_eq!(
            produce(wire, "missing", batch(1, 10)).0,
            3,
            "UNKNOWN_TOPIC_OR_PARTITION"
        );
        let null_key = RecordBatchBuilder::new()
            .record(None, Some(b"v"), 1)
            .build();
        let response = wire.call(11, &produce_request("compacted", 0, -1, null_key));
        let partition = &response.responses[0].partition_responses[0];
        assert_eq!(partition.error_code, 87, "INVALID_RECORD");
        assert!(!partition.record_errors.is_empty(), "record_errors filled");
        // Several partitions, one failing: the error is per partition.
        let mut request = produce_request("small", 0, -1, batch(1, 10));
        request.topic_data[0].partition_data.push(
            PartitionProduceData::default()
                .with_index(7)
                .with_records(Some(Bytes::from(batch(1, 10)))),
        );
        let response = wire.call(11, &request);
        let codes: Vec<i16> = response.responses[0]
            .partition_responses
            .iter()
            .map(|p| p.error_code)
            .collect();
        assert_eq!(codes, vec![0, 3]);
        // An error at acks=0 closes the connection (there is no response to carry it).
        let mut acks_zero = Wire::connect(address);
        let _ = acks_zero.send(11, &produce_request("missing", 0, 0, batch(1, 10)));
        assert!(
            acks_zero.read_frame().is_none(),
            "acks=0 failure closes the connection"
        );
        // A successful acks=0 produce gets no response; the next request is answered.
        let mut quiet = Wire::connect(address);
        let _ = quiet.send(11, &produce_request("small", 0, 0, batch(1, 10)));
        assert_eq!(quiet.call(3, &ApiVersionsRequest::default()).error_code, 0);
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn i6_idempotent_producer_dedupes_and_checks_sequences() {
    with_wire(|wire, _| {
        create(wire, "idempotent", 1, &[]);
        let idempotent = InitProducerIdRequest::default().with_transactional_id(None);
        let init = wire.call(4, &idempotent.clone().with_transaction_timeout_ms(60_000));
        assert_eq!(init.error_code, 0);
        let (pid, epoch) = (init.producer_id.0, init.producer_epoch);
        assert!(pid >= 0);
        let second = wire.call(4, &idempotent);
        assert_ne!(second.producer_id.0, pid, "ids are unique");
        let seq = |s: i32| {
            RecordBatchBuilder::new()
                .producer(pid, epoch, s)
                .record(Some(b"k"), Some(b"v"), 1)
                .record(Some(b"k"), Some(b"w"), 2)
                .build()
        };
        assert_eq!(produce(wire, "idempotent", seq(0)), (0, 0));
        assert_eq!(produce(wire, "idempotent", seq(2)), (0, 2));
        assert_eq!(
            produce(wire, "idempotent", seq(2)),
            (0, 2),
            "duplicate answers its original offset"
        );
        assert_eq!(
            produce(wire, "idempotent", seq(9)).0,
            45,
            "OUT_OF_ORDER_SEQUENCE_NUMBER"
        );
        assert_eq!(
            list_offsets(wire, "idempotent", -1).offset,
            4,
            "the duplicate was not appended"
        );
    })
    .await;
}

/// A pipelining client: many acks=all produces and other requests written back to back without
/// waiting. Every response comes back, in request order, with increasing offsets.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn i6_pipelined_requests_are_answered_in_order() {
    with_wire(|wire, _| {
        create(wire, "pipeline", 1, &[]);
        let mut expected = Vec::new();
        for i in 0..50 {
            if i % 5 == 4 {
                expected.push((
                    wire.send(3, &ApiVersionsRequest::default()),
                    ApiKey::ApiVersions,
                ));
            } else {
                expected.push((
                    wire.send(11, &produce_request("pipeline", 0, -1, batch(1, 100))),
                    ApiKey::Produce,
                ));
            }
        }
        let mut next_offset = 0;
        for (correlation_id, key) in expected {
            let mut frame = wire.read_frame().unwrap();
            let header_version = if key == ApiKey::ApiVersions { 0 } else { 1 };
            let header = kafka_protocol::protocol::Decodable::decode(&mut frame, header_version)
                .map(|h: ResponseHeader| h)
                .unwrap();
            assert_eq!(header.correlation_id, correlation_id, "in order");
            if key == ApiKey::Produce {
                let response: ProduceResponse =
                    kafka_protocol::protocol::Decodable::decode(&mut frame, 11).unwrap();
                let partition = &response.responses[0].partition_responses[0];
                assert_eq!(
                    (partition.error_code, partition.base_offset),
                    (0, next_offset)
                );
                next_offset += 1;
            }
        }
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn i6_describe_cluster_and_replication_factor() {
    with_wire(|wire, _| {
        let cluster = wire.call(1, &DescribeClusterRequest::default());
        assert_eq!(cluster.error_code, 0);
        assert_eq!(cluster.brokers.len(), 1);
        assert_eq!(cluster.controller_id, cluster.brokers[0].broker_id);
        let request = CreateTopicsRequest::default().with_topics(vec![
            CreatableTopic::default()
                .with_name(name("rf"))
                .with_num_partitions(1)
                .with_replication_factor(2),
            CreatableTopic::default()
                .with_name(name("rf-default"))
                .with_num_partitions(-1)
                .with_replication_factor(-1),
        ]);
        let response = wire.call(7, &request);
        assert_eq!(
            response.topics[0].error_code, 38,
            "INVALID_REPLICATION_FACTOR"
        );
        assert_eq!(response.topics[1].error_code, 0);
        assert_eq!(response.topics[1].num_partitions, 1);
    })
    .await;
}

/// Every advertised version of every API answers a minimal request with a response that decodes
/// at that version (an encoder that cannot represent a field would close the connection).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn i6_every_advertised_version_answers() {
    with_wire(|wire, _| {
        create(wire, "versions", 1, &[]);
        for (key, range) in kairos::protocol::versions::SUPPORTED_APIS {
            for version in range.min..=range.max {
                macro_rules! call {
                    ($request:expr) => {{
                        let _ = wire.call(version, &$request);
                    }};
                }
                match key {
                    ApiKey::Produce => call!(produce_request("versions", 0, 1, batch(1, 10))),
                    ApiKey::Fetch => {
                        call!(fetch_request(version, "versions", Uuid::nil(), 0, 1_000))
                    }
                    ApiKey::ListOffsets => call!(
                        ListOffsetsRequest::default()
                            .with_replica_id(BrokerId(-1))
                            .with_topics(vec![
                                ListOffsetsTopic::default()
                                    .with_name(name("versions"))
                                    .with_partitions(vec![
                                        ListOffsetsPartition::default().with_timestamp(-1),
                                    ]),
                            ])
                    ),
                    ApiKey::Metadata => call!(MetadataRequest::default().with_topics(None)),
                    ApiKey::ApiVersions => call!(ApiVersionsRequest::default()),
                    ApiKey::CreateTopics => {
                        call!(CreateTopicsRequest::default().with_topics(vec![
                        CreatableTopic::default()
                            .with_name(name(&format!("v-create-{version}")))
                            .with_num_partitions(1)
                            .with_replication_factor(1),
                    ]))
                    }
                    ApiKey::DeleteTopics => call!(DeleteTopicsRequest::default()),
                    ApiKey::DeleteRecords => call!(DeleteRecordsRequest::default()),
                    ApiKey::InitProducerId => {
                        call!(InitProducerIdRequest::default().with_transactional_id(None))
                    }
                    ApiKey::DescribeConfigs => call!(
                        DescribeConfigsRequest::default()
                            .with_resources(vec![
                                describe_configs_request::DescribeConfigsResource::default()
                                    .with_resource_type(2)
                                    .with_resource_name("versions".to_owned().into())
                                    .with_configuration_keys(None),
                                describe_configs_request::DescribeConfigsResource::default()
                                    .with_resource_type(4)
                                    .with_resource_name("1".to_owned().into())
                                    .with_configuration_keys(None),
                            ])
                            .with_include_synonyms(version >= 1)
                            .with_include_documentation(version >= 3)
                    ),
                    ApiKey::AlterConfigs => call!(AlterConfigsRequest::default()),
                    ApiKey::CreatePartitions => call!(CreatePartitionsRequest::default()),
                    ApiKey::IncrementalAlterConfigs => {
                        call!(IncrementalAlterConfigsRequest::default())
                    }
                    ApiKey::DescribeCluster => call!(DescribeClusterRequest::default()),
                    ApiKey::FindCoordinator if version >= 4 => call!(
                        FindCoordinatorRequest::default()
                            .with_coordinator_keys(vec!["g".to_owned().into()])
                    ),
                    ApiKey::FindCoordinator => {
                        call!(FindCoordinatorRequest::default().with_key("g".to_owned().into()))
                    }
                    // Error answers (empty group id, unknown members): their encodings carry
                    // the version-dependent nullable fields that success answers also carry.
                    ApiKey::JoinGroup => call!(JoinGroupRequest::default()),
                    ApiKey::SyncGroup => call!(
                        SyncGroupRequest::default()
                            .with_group_id(GroupId("nobody".to_owned().into()))
                    ),
                    ApiKey::Heartbeat => call!(HeartbeatRequest::default()),
                    ApiKey::LeaveGroup => call!(LeaveGroupRequest::default()),
                    ApiKey::OffsetCommit => call!(OffsetCommitRequest::default()),
                    ApiKey::OffsetFetch if version >= 8 => {
                        call!(OffsetFetchRequest::default().with_groups(vec![
                            offset_fetch_request::OffsetFetchRequestGroup::default()
                                .with_group_id(GroupId("nobody".to_owned().into()))
                        ]))
                    }
                    ApiKey::OffsetFetch => call!(
                        OffsetFetchRequest::default()
                            .with_group_id(GroupId("nobody".to_owned().into()))
                    ),
                    ApiKey::OffsetDelete => call!(OffsetDeleteRequest::default()),
                    ApiKey::ListGroups => call!(ListGroupsRequest::default()),
                    ApiKey::DescribeGroups => call!(
                        DescribeGroupsRequest::default()
                            .with_groups(vec![GroupId("nobody".to_owned().into())])
                    ),
                    ApiKey::DeleteGroups => call!(
                        DeleteGroupsRequest::default()
                            .with_groups_names(vec![GroupId("nobody".to_owned().into())])
                    ),
                    ApiKey::ConsumerGroupHeartbeat => {
                        call!(ConsumerGroupHeartbeatRequest::default())
                    }
                    ApiKey::ConsumerGroupDescribe => call!(
                        ConsumerGroupDescribeRequest::default()
                            .with_group_ids(vec![GroupId("nobody".to_owned().into())])
                    ),
                    ApiKey::AddPartitionsToTxn if version >= 4 => {
                        call!(AddPartitionsToTxnRequest::default().with_transactions(vec![
                            add_partitions_to_txn_request::AddPartitionsToTxnTransaction::default()
                                .with_transactional_id(TransactionalId("t".to_owned().into()))
                        ]))
                    }
                    ApiKey::AddPartitionsToTxn => call!(
                        AddPartitionsToTxnRequest::default().with_v3_and_below_transactional_id(
                            TransactionalId("t".to_owned().into())
                        )
                    ),
                    ApiKey::AddOffsetsToTxn => call!(AddOffsetsToTxnRequest::default()),
                    ApiKey::EndTxn => call!(EndTxnRequest::default()),
                    ApiKey::TxnOffsetCommit => call!(TxnOffsetCommitRequest::default()),
                    ApiKey::DescribeProducers => call!(DescribeProducersRequest::default()),
                    ApiKey::DescribeTransactions => call!(
                        DescribeTransactionsRequest::default()
                            .with_transactional_ids(vec![TransactionalId("t".to_owned().into())])
                    ),
                    ApiKey::ListTransactions => call!(ListTransactionsRequest::default()),
                    other => panic!("advertised {other:?} is missing from this test"),
                }
            }
        }
    })
    .await;
}
