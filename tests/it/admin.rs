//! Admin APIs through librdkafka's admin client: create, describe, alter and delete topics and
//! configs, partitions, delete records, and the errors for invalid requests.

use std::time::Duration;

use rdkafka::admin::{
    AlterConfig, ConfigSource, NewPartitions, NewTopic, ResourceSpecifier, TopicReplication,
};
use rdkafka::consumer::Consumer;
use rdkafka::producer::FutureRecord;
use rdkafka::types::RDKafkaErrorCode;
use rdkafka::util::Timeout;
use rdkafka::{Offset, TopicPartitionList};

use crate::support;

/// Describes one topic config: `(value, source)`.
async fn check_topic_config(bootstrap: &str, topic: &str, name: &str) -> (Option<String>, String) {
    let results = support::admin(bootstrap)
        .describe_configs(
            [&ResourceSpecifier::Topic(topic)],
            &support::admin_options(),
        )
        .await
        .unwrap();
    let resource = results.into_iter().next().unwrap().unwrap();
    let entry = resource
        .get(name)
        .unwrap_or_else(|| panic!("{name} not described"));
    (entry.value.clone(), format!("{:?}", entry.source))
}

async fn topic_count(bootstrap: &str, topic: &str) -> Option<usize> {
    let consumer = support::consumer(bootstrap);
    let topic = topic.to_owned();
    tokio::task::spawn_blocking(move || {
        let metadata = consumer
            .fetch_metadata(Some(&topic), Duration::from_secs(10))
            .unwrap();
        let found = metadata.topics().first().unwrap();
        found.error().is_none().then(|| found.partitions().len())
    })
    .await
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn create_describe_alter_delete_topics_and_configs() {
    let dir = tempfile::tempdir().unwrap();
    for (kind, broker) in support::each_broker(dir.path()).await {
        let bootstrap = broker.bootstrap();
        let admin = support::admin(&bootstrap);
        let options = support::admin_options();
        let topic = support::topic_name("admin");

        support::create_topic(
            &bootstrap,
            &topic,
            2,
            &[("retention.ms", "86400000"), ("cleanup.policy", "compact")],
        )
        .await;
        assert_eq!(topic_count(&bootstrap, &topic).await, Some(2), "{kind}");
        assert_eq!(
            check_topic_config(&bootstrap, &topic, "retention.ms").await,
            (Some("86400000".into()), "DynamicTopic".to_owned())
        );
        assert_eq!(
            check_topic_config(&bootstrap, &topic, "segment.bytes").await,
            (Some("1073741824".into()), "Default".to_owned())
        );

        // Legacy AlterConfigs replaces all of a topic's configs.
        let alter =
            AlterConfig::new(ResourceSpecifier::Topic(&topic)).set("segment.bytes", "1048576");
        let results = admin.alter_configs([&alter], &options).await.unwrap();
        assert!(results[0].is_ok(), "{kind}: {results:?}");
        assert_eq!(
            check_topic_config(&bootstrap, &topic, "segment.bytes").await,
            (Some("1048576".into()), "DynamicTopic".to_owned())
        );
        assert_eq!(
            check_topic_config(&bootstrap, &topic, "retention.ms")
                .await
                .1,
            "Default",
            "legacy alter removed the other override"
        );

        // (An unknown config is refused: see `legacy_alter_configs_rejects_unknown_config`;
        // the Rust binding of librdkafka reports legacy AlterConfigs resource errors as success.)

        // More partitions.
        let results = admin
            .create_partitions([&NewPartitions::new(&topic, 4)], &options)
            .await
            .unwrap();
        assert!(results[0].is_ok(), "{results:?}");
        assert_eq!(topic_count(&bootstrap, &topic).await, Some(4));
        let results = admin
            .create_partitions([&NewPartitions::new(&topic, 3)], &options)
            .await
            .unwrap();
        assert_eq!(
            results[0].as_ref().unwrap_err().1,
            RDKafkaErrorCode::InvalidPartitions
        );

        // Broker configs are described with their sources.
        let results = admin
            .describe_configs([&ResourceSpecifier::Broker(1)], &options)
            .await
            .unwrap();
        let broker_configs = results.into_iter().next().unwrap().unwrap();
        let entry = broker_configs.get("num.partitions").unwrap();
        assert_eq!(entry.value.as_deref(), Some("1"));
        assert!(matches!(entry.source, ConfigSource::Default));

        // Delete; a re-created topic starts empty.
        let producer = support::producer(&bootstrap, "all", &[]);
        let _ = producer
            .send(
                FutureRecord::<(), _>::to(&topic).payload("x").partition(0),
                Timeout::Never,
            )
            .await
            .unwrap();
        let results = admin.delete_topics(&[&topic], &options).await.unwrap();
        assert!(results[0].is_ok(), "{results:?}");
        assert_eq!(topic_count(&bootstrap, &topic).await, None, "deleted");
        support::create_topic(&bootstrap, &topic, 1, &[]).await;
        let consumer = support::consumer(&bootstrap);
        let (low, high) = consumer
            .fetch_watermarks(&topic, 0, Duration::from_secs(10))
            .unwrap();
        assert_eq!((low, high), (0, 0), "{kind}: re-created topic is empty");
        drop((producer, consumer));
        broker.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn create_topic_errors() {
    let broker = support::embedded().await;
    let bootstrap = broker.bootstrap_servers();
    let admin = support::admin(&bootstrap);
    let options = support::admin_options();
    let existing = support::topic_name("exists");
    support::create_topic(&bootstrap, &existing, 1, &[]).await;
    let cases = [
        (
            NewTopic::new("bad/name", 1, TopicReplication::Fixed(1)),
            RDKafkaErrorCode::InvalidTopic,
        ),
        (
            NewTopic::new("rf-three", 1, TopicReplication::Fixed(3)),
            RDKafkaErrorCode::InvalidReplicationFactor,
        ),
        (
            NewTopic::new("zero-partitions", 0, TopicReplication::Fixed(1)),
            RDKafkaErrorCode::InvalidPartitions,
        ),
        (
            NewTopic::new("bad-config", 1, TopicReplication::Fixed(1)).set("retention.ms", "soon"),
            RDKafkaErrorCode::InvalidConfig,
        ),
        (
            NewTopic::new("unknown-config", 1, TopicReplication::Fixed(1)).set("made.up", "1"),
            RDKafkaErrorCode::InvalidConfig,
        ),
        (
            NewTopic::new("recompress", 1, TopicReplication::Fixed(1))
                .set("compression.type", "zstd"),
            RDKafkaErrorCode::InvalidConfig,
        ),
        (
            NewTopic::new(&existing, 1, TopicReplication::Fixed(1)),
            RDKafkaErrorCode::TopicAlreadyExists,
        ),
    ];
    for (topic, expected) in &cases {
        let results = admin.create_topics([topic], &options).await.unwrap();
        assert_eq!(
            results[0].as_ref().unwrap_err().1,
            *expected,
            "{}",
            topic.name
        );
    }
    // validate_only creates nothing.
    let options_validate = support::admin_options().validate_only(true);
    let results = admin
        .create_topics(
            [&NewTopic::new("validated", 1, TopicReplication::Fixed(1))],
            &options_validate,
        )
        .await
        .unwrap();
    assert!(results[0].is_ok());
    assert_eq!(topic_count(&bootstrap, "validated").await, None);
    drop(admin);
    broker.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn delete_records_advances_log_start() {
    let broker = support::embedded().await;
    let bootstrap = broker.bootstrap_servers();
    let topic = support::topic_name("delete-records");
    support::create_topic(&bootstrap, &topic, 1, &[]).await;
    let producer = support::producer(&bootstrap, "all", &[]);
    for i in 0..10 {
        let value = i.to_string();
        let _ = producer
            .send(
                FutureRecord::<(), _>::to(&topic).payload(&value),
                Timeout::Never,
            )
            .await
            .unwrap();
    }
    let mut offsets = TopicPartitionList::new();
    offsets
        .add_partition_offset(&topic, 0, Offset::Offset(4))
        .unwrap();
    let result = support::admin(&bootstrap)
        .delete_records(&offsets, &support::admin_options())
        .await
        .unwrap();
    assert_eq!(
        result.find_partition(&topic, 0).unwrap().offset(),
        Offset::Offset(4)
    );
    let consumer = support::consumer(&bootstrap);
    let (low, high) = consumer
        .fetch_watermarks(&topic, 0, Duration::from_secs(10))
        .unwrap();
    assert_eq!((low, high), (4, 10));
    drop((producer, consumer));
    broker.shutdown().await.unwrap();
}

/// IncrementalAlterConfigs (which librdkafka's Rust binding does not expose) over the wire:
/// SET, APPEND and SUBTRACT on a list config, DELETE back to the default, and INVALID_CONFIG
/// for APPEND on a non-list config.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn incremental_alter_configs() {
    use kafka_protocol::messages::IncrementalAlterConfigsRequest;
    use kafka_protocol::messages::incremental_alter_configs_request::{
        AlterConfigsResource, AlterableConfig,
    };
    let broker = support::embedded().await;
    let bootstrap = broker.bootstrap_servers();
    let topic = support::topic_name("incremental");
    support::create_topic(&bootstrap, &topic, 1, &[]).await;
    let address = bootstrap.clone();
    let topic_name = topic.clone();
    let codes = tokio::task::spawn_blocking(move || {
        let mut wire = crate::wire::Wire::connect(&address);
        let mut alter = |ops: &[(&str, i8, Option<&str>)]| {
            let configs = ops
                .iter()
                .map(|(name, op, value)| {
                    AlterableConfig::default()
                        .with_name((*name).to_owned().into())
                        .with_config_operation(*op)
                        .with_value(value.map(|v| v.to_owned().into()))
                })
                .collect();
            let request = IncrementalAlterConfigsRequest::default().with_resources(vec![
                AlterConfigsResource::default()
                    .with_resource_type(2)
                    .with_resource_name(topic_name.clone().into())
                    .with_configs(configs),
            ]);
            wire.call(1, &request).responses[0].error_code
        };
        vec![
            alter(&[("cleanup.policy", 2, Some("compact"))]),
            alter(&[
                ("cleanup.policy", 3, Some("delete")),
                ("retention.ms", 0, Some("5000")),
            ]),
            alter(&[("retention.ms", 2, Some("1"))]),
            alter(&[("retention.ms", 1, None)]),
            alter(&[("no.such.config", 0, Some("1"))]),
        ]
    })
    .await
    .unwrap();
    assert_eq!(codes, vec![0, 0, 40, 0, 40]);
    assert_eq!(
        check_topic_config(&bootstrap, &topic, "cleanup.policy")
            .await
            .0
            .as_deref(),
        Some("compact")
    );
    assert_eq!(
        check_topic_config(&bootstrap, &topic, "retention.ms")
            .await
            .1,
        "Default"
    );
    broker.shutdown().await.unwrap();
}

/// Legacy AlterConfigs over the wire: an unknown config is INVALID_CONFIG.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn legacy_alter_configs_rejects_unknown_config() {
    use kafka_protocol::messages::AlterConfigsRequest;
    use kafka_protocol::messages::alter_configs_request::{AlterConfigsResource, AlterableConfig};
    let broker = support::embedded().await;
    let bootstrap = broker.bootstrap_servers();
    let topic = support::topic_name("legacy");
    support::create_topic(&bootstrap, &topic, 1, &[]).await;
    let codes = tokio::task::spawn_blocking(move || {
        let mut wire = crate::wire::Wire::connect(&bootstrap);
        (0..=2)
            .map(|version| {
                let request = AlterConfigsRequest::default().with_resources(vec![
                    AlterConfigsResource::default()
                        .with_resource_type(2)
                        .with_resource_name(topic.clone().into())
                        .with_configs(vec![
                            AlterableConfig::default()
                                .with_name("no.such.config".into())
                                .with_value(Some("1".into())),
                        ]),
                ]);
                wire.call(version, &request).responses[0].error_code
            })
            .collect::<Vec<_>>()
    })
    .await
    .unwrap();
    assert_eq!(codes, vec![40, 40, 40]);
    broker.shutdown().await.unwrap();
}
