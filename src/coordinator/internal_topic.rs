//! The coordinators' internal topics (`__consumer_offsets`, `__transaction_state`, and the due
//! index's `__due_state`): created on first use, appended to by their coordinator only, and replayed at start. This is the only
//! place coordinators touch storage for their own state.

use std::sync::Arc;

use bytes::{Bytes, BytesMut};
use kafka_protocol::error::ResponseError;
use kairos_storage::batch::Batches;
use kairos_storage::builder::RecordBatchBuilder;
use kairos_storage::control::{ControlRecordType, parse_marker};
use kairos_storage::record::RecordBytes;
use kairos_storage::{AppendOrigin, AppendOutcome, Log, TopicPartition};

use crate::clock::Clock;
use crate::config::BrokerConfig;
use crate::controller::{Controller, NewTopic};
use crate::coordinator::group::record::partition_for;
use crate::error::ApiError;
use crate::metadata::{MetadataCache, TopicMetadata};
use crate::replica::ReplicaManager;

// Reads at load go in chunks of this size.
const LOAD_READ_BYTES: usize = 1 << 20;

/// One key/value pair a coordinator appends.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CoordinatorRecord {
    /// The encoded key (starts with its version).
    pub key: Bytes,
    /// The encoded value; `None` is a tombstone.
    pub value: Option<Bytes>,
}

/// What an internal topic is: its name and size.
#[derive(Debug, Clone)]
pub struct InternalTopicSpec {
    /// Topic name.
    pub name: &'static str,
    /// Partitions when created.
    pub partitions: i32,
    /// `segment.bytes`, small so that compaction can run.
    pub segment_bytes: i32,
}

/// A record read back at load.
#[derive(Debug)]
pub enum LoadedRecord<'a> {
    /// A key/value record; `producer_id` ≥ 0 for records written inside a transaction.
    Data {
        /// Key.
        key: &'a [u8],
        /// Value (`None`: tombstone).
        value: Option<&'a [u8]>,
        /// The writing producer of a transactional batch, else -1.
        producer_id: i64,
    },
    /// A transaction marker.
    Marker {
        /// The producer whose transaction ended.
        producer_id: i64,
        /// Commit (else abort).
        commit: bool,
    },
}

/// The producer of a transactional append.
#[derive(Debug, Clone, Copy)]
pub struct TxnProducer {
    /// Producer id.
    pub producer_id: i64,
    /// Producer epoch.
    pub producer_epoch: i16,
}

/// Access to one internal topic for its coordinator.
#[derive(Debug)]
pub struct InternalTopic {
    spec: InternalTopicSpec,
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

impl PendingWrite {
    /// A write to `log` up to `end_offset` (markers are written by the transaction coordinator).
    #[must_use]
    pub fn new(log: Arc<Log>, end_offset: i64) -> PendingWrite {
        PendingWrite { log, end_offset }
    }
}

impl InternalTopic {
    /// Wires the topic's owners.
    #[must_use]
    pub fn new(
        spec: InternalTopicSpec,
        config: Arc<BrokerConfig>,
        clock: Arc<dyn Clock>,
        metadata: Arc<MetadataCache>,
        controller: Arc<Controller>,
        replica_manager: Arc<ReplicaManager>,
    ) -> InternalTopic {
        InternalTopic {
            spec,
            config,
            clock,
            metadata,
            controller,
            replica_manager,
        }
    }

    /// The topic's name.
    #[must_use]
    pub fn name(&self) -> &'static str {
        self.spec.name
    }

    /// The topic, if it exists.
    #[must_use]
    pub fn topic(&self) -> Option<Arc<TopicMetadata>> {
        self.metadata.topic(self.spec.name)
    }

    /// The replica manager (for coordinators that also write other partitions).
    #[must_use]
    pub fn replica_manager(&self) -> &Arc<ReplicaManager> {
        &self.replica_manager
    }

    /// The topic, created (compacted, sized by its spec) on first use as Kafka does.
    ///
    /// # Errors
    /// COORDINATOR_NOT_AVAILABLE when it cannot be created.
    pub fn ensure(&self) -> Result<Arc<TopicMetadata>, ApiError> {
        if let Some(topic) = self.topic() {
            return Ok(topic);
        }
        let new_topic = NewTopic {
            name: self.spec.name.to_owned(),
            num_partitions: self.spec.partitions,
            replication_factor: 1,
            assignments: Vec::new(),
            configs: vec![
                ("cleanup.policy".to_owned(), Some("compact".to_owned())),
                (
                    "segment.bytes".to_owned(),
                    Some(self.spec.segment_bytes.to_string()),
                ),
                ("compression.type".to_owned(), Some("producer".to_owned())),
            ],
        };
        match self.controller.create_topic(&new_topic, false) {
            Ok(topic) => Ok(topic),
            // A concurrent first use created it.
            Err(_) if self.topic().is_some() => self.topic().ok_or_else(unavailable),
            Err(error) => {
                tracing::error!(%error, topic = self.spec.name, "cannot create internal topic");
                Err(unavailable())
            }
        }
    }

    /// The partition that holds `key` (a group id or a transactional id).
    #[must_use]
    pub fn partition_of(&self, key: &str) -> i32 {
        let partitions = self.topic().map_or(self.spec.partitions, |t| t.partitions);
        partition_for(key, partitions)
    }

    /// The log of the partition holding `key`, creating the topic if needed.
    ///
    /// # Errors
    /// COORDINATOR_NOT_AVAILABLE, or the storage error's code.
    pub fn log_of(&self, key: &str) -> Result<(Arc<TopicMetadata>, Arc<Log>), ApiError> {
        let topic = self.ensure()?;
        let log = self
            .replica_manager
            .partition_log(&topic, partition_for(key, topic.partitions))?;
        Ok((topic, log))
    }

    /// Appends `records` of `key` as one batch (inside `producer`'s transaction if given). The
    /// caller holds its coordinator's lock, so log order is the order of its state changes.
    ///
    /// # Errors
    /// COORDINATOR_NOT_AVAILABLE, or the storage error's code.
    pub fn append(
        &self,
        key: &str,
        records: &[CoordinatorRecord],
        producer: Option<TxnProducer>,
    ) -> Result<Option<PendingWrite>, ApiError> {
        if records.is_empty() {
            return Ok(None);
        }
        let topic = self.ensure()?;
        self.append_to(partition_for(key, topic.partitions), records, producer)
    }

    /// Appends `records` as one batch to `partition`, for owners that place their keys
    /// themselves (the due index's fired state). Same contract as [`InternalTopic::append`].
    ///
    /// # Errors
    /// COORDINATOR_NOT_AVAILABLE, or the storage error's code.
    pub fn append_to(
        &self,
        partition: i32,
        records: &[CoordinatorRecord],
        producer: Option<TxnProducer>,
    ) -> Result<Option<PendingWrite>, ApiError> {
        if records.is_empty() {
            return Ok(None);
        }
        let topic = self.ensure()?;
        let log = self.replica_manager.partition_log(&topic, partition)?;
        let now_ms = self.clock.now_ms();
        let mut builder = RecordBatchBuilder::new();
        if let Some(producer) = producer {
            builder = builder
                .producer(producer.producer_id, producer.producer_epoch, -1)
                .transactional(true);
        }
        for record in records {
            builder = builder.record(Some(&record.key), record.value.as_deref(), now_ms);
        }
        // Bytes from a Vec and back to BytesMut: no copy (the buffer is unique).
        let mut bytes = BytesMut::from(bytes::Bytes::from(builder.build()));
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
        self.replica_manager.wake_fetches(&TopicPartition {
            topic: self.spec.name.to_owned(),
            partition,
        });
        Ok(Some(PendingWrite { log, end_offset }))
    }

    /// Makes an appended write durable (group commit with every other fsync of the log), as
    /// acks=all produce does when `kairos.acks.all.fsync` is on.
    ///
    /// # Errors
    /// The storage error's code.
    pub fn make_durable(&self, write: Option<PendingWrite>) -> Result<(), ApiError> {
        make_durable(&self.config, self.clock.as_ref(), write)
    }

    /// Every record of every partition, in log order per partition.
    ///
    /// # Errors
    /// Storage errors.
    pub fn read_all(
        &self,
        mut apply: impl FnMut(i32, LoadedRecord<'_>),
    ) -> Result<(), kairos_storage::Error> {
        let Some(topic) = self.topic() else {
            return Ok(());
        };
        for partition in 0..topic.partitions {
            self.read_partition(partition, |record| apply(partition, record))?;
        }
        Ok(())
    }

    /// Every record of one partition, in log order; nothing if the topic does not exist yet.
    ///
    /// # Errors
    /// Storage errors.
    pub fn read_partition(
        &self,
        partition: i32,
        apply: impl FnMut(LoadedRecord<'_>),
    ) -> Result<(), kairos_storage::Error> {
        let Some(topic) = self.topic() else {
            return Ok(());
        };
        let Ok(log) = self.replica_manager.partition_log(&topic, partition) else {
            return Ok(());
        };
        read_partition(&log, apply)
    }
}

/// fsyncs `write` when `kairos.acks.all.fsync` is on.
///
/// # Errors
/// The storage error's code.
pub fn make_durable(
    config: &BrokerConfig,
    clock: &dyn Clock,
    write: Option<PendingWrite>,
) -> Result<(), ApiError> {
    let Some(write) = write else { return Ok(()) };
    if !config.acks_all_fsync() {
        return Ok(());
    }
    write
        .log
        .sync_to(write.end_offset, clock.now_ms())
        .map_err(|e| ApiError::from(&e))
}

fn read_partition(
    log: &Log,
    mut apply: impl FnMut(LoadedRecord<'_>),
) -> Result<(), kairos_storage::Error> {
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
                if let Some(marker) = parse_marker(&batch) {
                    apply(LoadedRecord::Marker {
                        producer_id: batch.producer_id(),
                        commit: marker.kind == ControlRecordType::Commit,
                    });
                }
                continue;
            }
            let Ok(records) = RecordBytes::of(&batch) else {
                tracing::warn!(
                    offset = batch.base_offset(),
                    "unreadable batch in an internal topic"
                );
                continue;
            };
            let producer_id = if batch.is_transactional() {
                batch.producer_id()
            } else {
                -1
            };
            for record in records.records().flatten() {
                if let Some(key) = record.key {
                    apply(LoadedRecord::Data {
                        key,
                        value: record.value,
                        producer_id,
                    });
                }
            }
        }
    }
    Ok(())
}

fn unavailable() -> ApiError {
    ResponseError::CoordinatorNotAvailable.into()
}
