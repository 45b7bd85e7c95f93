//! The coordinator over a real data directory: loading and what it answers before it loads.

use std::sync::Arc;

use kafka_protocol::error::ResponseError;
use kairos_storage::LogManager;
use kairos_storage::fs::StdFs;

use super::{Committer, GroupCoordinator, OffsetCommit};
use crate::clock::{Clock, ManualClock};
use crate::config::BrokerConfig;
use crate::controller::{Controller, NewTopic};
use crate::coordinator::internal_topic::{InternalTopic, InternalTopicSpec};
use crate::metadata::MetadataCache;
use crate::replica::ReplicaManager;

const T0: i64 = 1_800_000_000_000;

/// A coordinator over `dir`, not loaded yet, and the controller to make topics with.
fn open(dir: &std::path::Path) -> (GroupCoordinator, Arc<Controller>) {
    let config = Arc::new(
        BrokerConfig::default()
            .with("offsets.topic.num.partitions", "2")
            .unwrap(),
    );
    let clock: Arc<dyn Clock> = Arc::new(ManualClock::new(T0));
    let metadata = Arc::new(MetadataCache::open(dir).unwrap());
    let logs = Arc::new(LogManager::open(Arc::new(StdFs), dir, T0).unwrap());
    let replicas = Arc::new(ReplicaManager::new(
        logs,
        Arc::clone(&metadata),
        Arc::clone(&config),
        Arc::clone(&clock),
    ));
    let controller = Arc::new(Controller::new(
        Arc::clone(&metadata),
        Arc::clone(&replicas),
        Arc::clone(&config),
    ));
    let topic = InternalTopic::new(
        InternalTopicSpec {
            name: crate::coordinator::group::OFFSETS_TOPIC,
            partitions: 2,
            segment_bytes: 1 << 20,
        },
        Arc::clone(&config),
        Arc::clone(&clock),
        Arc::clone(&metadata),
        Arc::clone(&controller),
        replicas,
    );
    (
        GroupCoordinator::new(config, clock, metadata, topic),
        controller,
    )
}

fn admin() -> Committer {
    Committer {
        member_id: String::new(),
        group_instance_id: None,
        generation_or_epoch: -1,
        api_version: 8,
    }
}

#[test]
fn answers_load_in_progress_until_loaded_then_serves_what_the_log_holds() {
    let dir = tempfile::tempdir().unwrap();
    {
        let (coordinator, controller) = open(dir.path());
        coordinator.load().unwrap();
        let _ = controller
            .create_topic(
                &NewTopic {
                    name: "t".into(),
                    num_partitions: 1,
                    replication_factor: 1,
                    assignments: Vec::new(),
                    configs: Vec::new(),
                },
                false,
            )
            .unwrap();
        let commit = OffsetCommit {
            topic: "t".into(),
            partition: 0,
            offset: 11,
            leader_epoch: -1,
            metadata: None,
        };
        assert_eq!(
            coordinator.commit_offsets("g", &admin(), vec![commit]),
            Ok(vec![0])
        );
    }
    let (coordinator, _) = open(dir.path());
    // Before the log is replayed every group request is refused with a retriable error.
    assert!(coordinator.is_loading());
    assert_eq!(
        coordinator.fetch_offsets("g", None, -1, None, false).err(),
        Some(ResponseError::CoordinatorLoadInProgress)
    );
    assert_eq!(
        coordinator.heartbeat("g", "m", None, 1),
        Err(ResponseError::CoordinatorLoadInProgress)
    );
    assert_eq!(
        coordinator.list_groups(&[], &[]).err(),
        Some(ResponseError::CoordinatorLoadInProgress)
    );
    coordinator.load().unwrap();
    let offsets = coordinator
        .fetch_offsets("g", None, -1, None, false)
        .unwrap();
    assert_eq!(offsets.len(), 1);
    assert_eq!(offsets[0].committed.as_ref().map(|v| v.offset), Some(11));
}
