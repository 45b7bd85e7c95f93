//! The `kairos` binary's configuration: TOML file, environment variables, `--override`, and
//! refusal of unknown config names.

use std::process::Command;

use kafka_protocol::messages::metadata_request::MetadataRequestTopic;
use kafka_protocol::messages::{DeleteTopicsRequest, MetadataRequest, TopicName};

use crate::support::BinaryBroker;
use crate::wire::Wire;

#[test]
fn toml_file_env_and_overrides_configure_the_broker() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("kairos.toml");
    // Dotted keys and quoted keys both name Kafka configs.
    std::fs::write(
        &config,
        "num.partitions = 2\n\"delete.topic.enable\" = true\n",
    )
    .unwrap();
    let data = dir.path().join("data");
    // The override (a flag) wins over the file.
    let broker = BinaryBroker::start(
        &data,
        &[
            "--config",
            config.to_str().unwrap(),
            "--override",
            "num.partitions=3",
            "-o",
            "delete.topic.enable=false",
        ],
    );
    let mut wire = Wire::connect(&broker.bootstrap);
    let request = MetadataRequest::default()
        .with_topics(Some(vec![
            MetadataRequestTopic::default()
                .with_name(Some(TopicName("from-cli".to_owned().into()))),
        ]))
        .with_allow_auto_topic_creation(true);
    let response = wire.call(12, &request);
    assert_eq!(response.topics[0].partitions.len(), 3);
    let deleted = wire.call(
        5,
        &DeleteTopicsRequest::default()
            .with_topic_names(vec![TopicName("from-cli".to_owned().into())]),
    );
    assert_eq!(
        deleted.responses[0].error_code, 73,
        "TOPIC_DELETION_DISABLED"
    );
}

#[test]
fn unknown_config_names_are_refused_at_start() {
    let dir = tempfile::tempdir().unwrap();
    let output = Command::new(env!("CARGO_BIN_EXE_kairos"))
        .arg("--data-dir")
        .arg(dir.path())
        .args([
            "--listener",
            "127.0.0.1:0",
            "--override",
            "no.such.config=1",
        ])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&output.stderr).contains("no.such.config"));
    let output = Command::new(env!("CARGO_BIN_EXE_kairos"))
        .arg("--data-dir")
        .arg(dir.path())
        .args(["--listener", "127.0.0.1:0"])
        .env("KAIROS_NUM_PARTITIONS", "zero")
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2), "invalid env value refused");
}
