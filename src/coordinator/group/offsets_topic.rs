//! `__consumer_offsets`: creating it on first use, appending coordinator records, and reading
//! them back at load. This is the only place the group coordinator touches storage.

use std::sync::Arc;

use bytes::BytesMut;
use kafka_protocol::error::ResponseError;
use kairos_storage::batch::Batches;
use kairos_storage::builder::RecordBatchBuilder;
use kairos_storage::record::RecordBytes;
use kairos_storage::{AppendOrigin, AppendOutcome, Log};

use super::record::{CoordinatorRecord, partition_for};
use crate::clock::Clock;
use crate::config::BrokerConfig;
use crate::controller::{Controller, NewTopic};
use crate::error::ApiError;
use crate::metadata::{MetadataCache, TopicMetadata};
use crate::replica::ReplicaManager;

/// The internal topic's name.
pub const OFFSETS_TOPIC: &str = "__consumer_offsets";

// Reads at load go in chunks of this size.
const LOAD_READ_BYTES: usize = 1 << 20;

/// Access to `__consumer_offsets` for the coordinator.
#[derive(Debug)]
pub struct OffsetsTopic {
    config: Arc<BrokerConfig>,
    clock: Arc<dyn Clock>,
    metadata: Arc<MetadataCache>,
    controller: Arc<Controller>,
    replica_manager: Arc<ReplicaManager>,
}

/// An appended write that still has to be made durable before it is acknowledged.
#[derive(Debug)]
pub struct PendingWrite {
    log: Arc<Log>,
    end_offset: i64,
}

impl OffsetsTopic {
    /// Wires the topic's owners.
    #[must_use]
    pub fn new(
        config: Arc<BrokerConfig>,
        clock: Arc<dyn Clock>,
        metadata: Arc<MetadataCache>,
        controller: Arc<Controller>,
        replica_manager: Arc<ReplicaManager>,
    ) -> OffsetsTopic {
        OffsetsTopic {
            config,
            clock,
            metadata,
            controller,
            replica_manager,
        }
    }

    /// The topic, if it exists.
    #[must_use]
    pub fn topic(&self) -> Option<Arc<TopicMetadata>> {
        self.metadata.topic(OFFSETS_TOPIC)
    }

    /// The topic, created (compacted, `offsets.topic.*` sized) on first use as Kafka does.
    ///
    /// # Errors
    /// COORDINATOR_NOT_AVAILABLE when it cannot be created.
    pub fn ensure(&self) -> Result<Arc<TopicMetadata>, ApiError> {
        if let Some(topic) = self.topic() {
            return Ok(topic);
        }
        let new_topic = NewTopic {
            name: OFFSETS_TOPIC.to_owned(),
            num_partitions: self.config.offsets_topic_num_partitions(),
            replication_factor: 1,
            assignments: Vec::new(),
            configs: vec![
                ("cleanup.policy".to_owned(), Some("compact".to_owned())),
                (
                    "segment.bytes".to_owned(),
                    Some(self.config.offsets_topic_segment_bytes().to_string()),
                ),
                ("compression.type".to_owned(), Some("producer".to_owned())),
            ],
        };
        match self.controller.create_topic(&new_topic, false) {
            Ok(topic) => Ok(topic),
            // A concurrent first use created it.
            Err(_) if self.topic().is_some() => self.topic().ok_or_else(unavailable),
            Err(error) => {
                tracing::error!(%error, "cannot create {OFFSETS_TOPIC}");
                Err(unavailable())
            }
        }
    }

    /// The partition that holds `group`.
    #[must_use]
    pub fn partition_of(&self, group: &str) -> i32 {
        let partitions = self
            .topic()
            .map_or(self.config.offsets_topic_num_partitions(), |t| t.partitions);
        partition_for(group, partitions)
    }

    /// Appends `records` of `group` as one batch. The caller holds the coordinator's lock, so
    /// log order is the order in which the in-memory state changed.
    ///
    /// # Errors
    /// COORDINATOR_NOT_AVAILABLE, or the storage error's code.
    pub fn append(
        &self,
        group: &str,
        records: &[CoordinatorRecord],
    ) -> Result<Option<PendingWrite>, ApiError> {
        if records.is_empty() {
            return Ok(None);
        }
        let topic = self.ensure()?;
        let log = self
            .replica_manager
            .partition_log(&topic, partition_for(group, topic.partitions))?;
        let now_ms = self.clock.now_ms();
        let mut builder = RecordBatchBuilder::new();
        for record in records {
            builder = builder.record(Some(&record.key), record.value.as_deref(), now_ms);
        }
        let mut bytes = BytesMut::from(&builder.build()[..]);
        let outcome = log
            .append(
                &mut bytes,
                AppendOrigin::Coordinator,
                now_ms,
                topic.leader_epoch,
            )
            .map_err(|e| ApiError::from(&e))?;
        let end_offset = match outcome {
            AppendOutcome::Appended(info) => info.last_offset + 1,
            AppendOutcome::Duplicate { last_offset, .. } => last_offset + 1,
        };
        self.replica_manager
            .wake_fetches(&kairos_storage::TopicPartition {
                topic: OFFSETS_TOPIC.to_owned(),
                partition: partition_for(group, topic.partitions),
            });
        Ok(Some(PendingWrite { log, end_offset }))
    }

    /// Makes an appended write durable (group commit with every other fsync of the log), as
    /// acks=all produce does when `kairos.acks.all.fsync` is on.
    ///
    /// # Errors
    /// The storage error's code.
    pub fn make_durable(&self, write: Option<PendingWrite>) -> Result<(), ApiError> {
        let Some(write) = write else { return Ok(()) };
        if !self.config.acks_all_fsync() {
            return Ok(());
        }
        write
            .log
            .sync_to(write.end_offset, self.clock.now_ms())
            .map_err(|e| ApiError::from(&e))
    }

    /// Every record of every partition, in log order per partition, as `(key, value)`.
    ///
    /// # Errors
    /// Storage errors.
    pub fn read_all(
        &self,
        mut apply: impl FnMut(&[u8], Option<&[u8]>),
    ) -> Result<(), kairos_storage::Error> {
        let Some(topic) = self.topic() else {
            return Ok(());
        };
        for partition in 0..topic.partitions {
            let Ok(log) = self.replica_manager.partition_log(&topic, partition) else {
                continue;
            };
            let end = log.log_end_offset();
            let mut cursor = log.log_start_offset();
            while cursor < end {
                let data = log.read(cursor, LOAD_READ_BYTES, Some(end))?;
                if data.records.is_empty() {
                    break;
                }
                for batch in Batches::new(&data.records) {
                    let Ok((_, batch)) = batch else { break };
                    cursor = cursor.max(batch.last_offset() + 1);
                    if batch.is_control() {
                        continue;
                    }
                    let Ok(records) = RecordBytes::of(&batch) else {
                        tracing::warn!(
                            partition,
                            offset = batch.base_offset(),
                            "unreadable batch in {OFFSETS_TOPIC}"
                        );
                        continue;
                    };
                    for record in records.records().flatten() {
                        if let Some(key) = record.key {
                            apply(key, record.value);
                        }
                    }
                }
            }
        }
        Ok(())
    }
}

fn unavailable() -> ApiError {
    ResponseError::CoordinatorNotAvailable.into()
}
