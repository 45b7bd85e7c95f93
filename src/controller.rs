//! `Controller`: the single node's controller role. It owns every change to topic metadata:
//! create, delete, add partitions, alter configs. Changes are serialised by one mutex, persisted
//! before they are published, and then applied to the logs.
//!
//! Ordering makes crashes harmless: metadata is written before logs are created (a missing log
//! is created lazily on first use) and removed before logs are deleted (a log without metadata
//! is an orphan that start-up deletes). Every method is blocking (fsync); handlers call them on
//! the blocking pool.

use std::collections::BTreeMap;
use std::sync::Arc;

use kafka_protocol::error::ResponseError;
use kairos_storage::TopicPartition;
use parking_lot::Mutex;
use uuid::Uuid;

use crate::config::{BrokerConfig, ConfigType};
use crate::error::ApiError;
use crate::metadata::{MetadataCache, TopicMetadata};
use crate::replica::ReplicaManager;
use crate::topic_config::{self, TopicOverrides};

/// Most partitions a topic may have: each partition is a directory with open files.
pub const PARTITIONS_PER_TOPIC_MAX: i32 = 10_000;
/// Kafka's limit on topic name length.
const TOPIC_NAME_BYTES_MAX: usize = 249;

/// A topic creation request, already decoded.
#[derive(Debug, Clone)]
pub struct NewTopic {
    /// Name.
    pub name: String,
    /// Partitions; -1 means `num.partitions`.
    pub num_partitions: i32,
    /// Replication factor; only 1 or -1 on a single node.
    pub replication_factor: i16,
    /// Manual assignment: one broker list per partition (empty = none).
    pub assignments: Vec<Vec<i32>>,
    /// Configs by Kafka name; a `None` value means "use the default".
    pub configs: Vec<(String, Option<String>)>,
}

/// IncrementalAlterConfigs operations (Kafka's `AlterConfigOp.OpType` numbering).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AlterConfigOp {
    /// 0: set the value.
    Set,
    /// 1: remove the override.
    Delete,
    /// 2: add items to a list.
    Append,
    /// 3: remove items from a list.
    Subtract,
}

impl AlterConfigOp {
    /// Decodes the wire number.
    #[must_use]
    pub fn from_code(code: i8) -> Option<AlterConfigOp> {
        match code {
            0 => Some(AlterConfigOp::Set),
            1 => Some(AlterConfigOp::Delete),
            2 => Some(AlterConfigOp::Append),
            3 => Some(AlterConfigOp::Subtract),
            _ => None,
        }
    }
}

/// Owns topic metadata changes.
#[derive(Debug)]
pub struct Controller {
    metadata: Arc<MetadataCache>,
    replica_manager: Arc<ReplicaManager>,
    config: Arc<BrokerConfig>,
    // One change at a time: create/delete/alter read-modify-write the registry and the logs.
    lock: Mutex<()>,
}

impl Controller {
    /// A controller over the registry and the logs.
    pub fn new(
        metadata: Arc<MetadataCache>,
        replica_manager: Arc<ReplicaManager>,
        config: Arc<BrokerConfig>,
    ) -> Controller {
        Controller {
            metadata,
            replica_manager,
            config,
            lock: Mutex::new(()),
        }
    }

    /// Creates a topic (or only validates it).
    ///
    /// # Errors
    /// INVALID_TOPIC_EXCEPTION, TOPIC_ALREADY_EXISTS, INVALID_PARTITIONS,
    /// INVALID_REPLICATION_FACTOR, INVALID_REPLICA_ASSIGNMENT, INVALID_CONFIG, KAFKA_STORAGE_ERROR.
    pub fn create_topic(
        &self,
        new_topic: &NewTopic,
        validate_only: bool,
    ) -> Result<Arc<TopicMetadata>, ApiError> {
        validate_topic_name(&new_topic.name)?;
        if !matches!(new_topic.replication_factor, -1 | 1) {
            return Err(ApiError::new(
                ResponseError::InvalidReplicationFactor,
                format!(
                    "replication factor {} is impossible on a single node",
                    new_topic.replication_factor
                ),
            ));
        }
        let partitions = self.partition_count(new_topic)?;
        let mut configs = TopicOverrides::new();
        for (name, value) in &new_topic.configs {
            if let Some(value) = value {
                let (name, value) = topic_config::validate_override(name, value)?;
                let _previous = configs.insert(name, value);
            } else {
                // A null value means "the default": only the name has to be known.
                let _ = topic_config::topic_config_def(name).ok_or_else(|| unknown_config(name))?;
            }
        }
        topic_config::validate_topic(&new_topic.name, &configs)?;
        let _guard = self.lock.lock();
        if self.metadata.topic(&new_topic.name).is_some() {
            return Err(ApiError::new(
                ResponseError::TopicAlreadyExists,
                format!("topic {:?} already exists", new_topic.name),
            ));
        }
        let topic = TopicMetadata {
            name: new_topic.name.clone(),
            topic_id: Uuid::new_v4(),
            partitions,
            leader_epoch: 0,
            configs,
        };
        if validate_only {
            return Ok(Arc::new(topic));
        }
        let topic = self.metadata.put_topic(topic).map_err(storage_io_error)?;
        for partition in 0..topic.partitions {
            // A failure here leaves a topic whose log is created on first use.
            if let Err(error) = self.replica_manager.partition_log(&topic, partition) {
                tracing::warn!(topic = %topic.name, partition, %error, "creating a partition log failed");
            }
        }
        tracing::info!(topic = %topic.name, partitions = topic.partitions, id = %topic.topic_id, "created topic");
        Ok(topic)
    }

    fn partition_count(&self, new_topic: &NewTopic) -> Result<i32, ApiError> {
        if !new_topic.assignments.is_empty() {
            if new_topic.num_partitions != -1 || new_topic.replication_factor != -1 {
                return Err(ApiError::new(
                    ResponseError::InvalidRequest,
                    "both replica assignments and partitions/replication factor were given",
                ));
            }
            let node_id = self.config.node_id();
            if new_topic
                .assignments
                .iter()
                .any(|brokers| brokers != &[node_id])
            {
                return Err(ApiError::new(
                    ResponseError::InvalidReplicaAssignment,
                    format!("every partition must be assigned to node {node_id} only"),
                ));
            }
            return i32::try_from(new_topic.assignments.len())
                .ok()
                .filter(|&n| n <= PARTITIONS_PER_TOPIC_MAX)
                .ok_or_else(|| ResponseError::InvalidPartitions.into());
        }
        let partitions = match new_topic.num_partitions {
            -1 => self.config.num_partitions(),
            n => n,
        };
        if !(1..=PARTITIONS_PER_TOPIC_MAX).contains(&partitions) {
            return Err(ApiError::new(
                ResponseError::InvalidPartitions,
                format!(
                    "partitions must be between 1 and {PARTITIONS_PER_TOPIC_MAX}, got {partitions}"
                ),
            ));
        }
        Ok(partitions)
    }

    /// Deletes a topic and its files.
    ///
    /// # Errors
    /// UNKNOWN_TOPIC_OR_PARTITION, TOPIC_DELETION_DISABLED, KAFKA_STORAGE_ERROR.
    pub fn delete_topic(&self, name: &str) -> Result<Arc<TopicMetadata>, ApiError> {
        if !self.config.delete_topic_enable() {
            return Err(ResponseError::TopicDeletionDisabled.into());
        }
        if crate::coordinator::is_internal_topic(name) {
            // The coordinators' state lives there; Kafka refuses to delete it too.
            return Err(ApiError::new(
                ResponseError::InvalidTopicException,
                format!("{name} is an internal topic and cannot be deleted"),
            ));
        }
        let _guard = self.lock.lock();
        let topic = self
            .metadata
            .topic(name)
            .ok_or(ApiError::from(ResponseError::UnknownTopicOrPartition))?;
        self.metadata.remove_topic(name).map_err(storage_io_error)?;
        for partition in 0..topic.partitions {
            self.delete_log(name, partition);
        }
        tracing::info!(topic = %name, id = %topic.topic_id, "deleted topic");
        Ok(topic)
    }

    fn delete_log(&self, topic: &str, partition: i32) {
        let tp = TopicPartition {
            topic: topic.to_owned(),
            partition,
        };
        if self.replica_manager.log_manager().get(&tp).is_some()
            && let Err(error) = self.replica_manager.log_manager().delete(&tp)
        {
            // The metadata is already gone, so start-up removes the orphan directory.
            tracing::warn!(topic, partition, %error, "deleting a partition log failed");
        }
    }

    /// Deletes logs that no topic owns (left by a crash during DeleteTopics) and applies the
    /// persisted topic configs to the recovered logs. Called once at start.
    pub fn reconcile_logs(&self) {
        for (tp, log) in self.replica_manager.log_manager().logs() {
            match self.metadata.topic(&tp.topic) {
                Some(topic) if tp.partition < topic.partitions => {
                    log.update_config(topic_config::log_config(&topic.configs, &self.config));
                }
                _ => {
                    tracing::info!(topic = %tp.topic, partition = tp.partition, "deleting orphan log");
                    self.delete_log(&tp.topic, tp.partition);
                }
            }
        }
    }

    /// Grows a topic to `count` partitions.
    ///
    /// # Errors
    /// UNKNOWN_TOPIC_OR_PARTITION, INVALID_PARTITIONS, INVALID_REPLICA_ASSIGNMENT,
    /// KAFKA_STORAGE_ERROR.
    pub fn create_partitions(
        &self,
        name: &str,
        count: i32,
        assignments: Option<&[Vec<i32>]>,
        validate_only: bool,
    ) -> Result<(), ApiError> {
        let _guard = self.lock.lock();
        let topic = self
            .metadata
            .topic(name)
            .ok_or(ApiError::from(ResponseError::UnknownTopicOrPartition))?;
        if count <= topic.partitions || count > PARTITIONS_PER_TOPIC_MAX {
            return Err(ApiError::new(
                ResponseError::InvalidPartitions,
                format!(
                    "topic has {} partitions; asked for {count}",
                    topic.partitions
                ),
            ));
        }
        if let Some(assignments) = assignments {
            let node_id = self.config.node_id();
            let added = usize::try_from(count - topic.partitions).unwrap_or(0);
            if assignments.len() != added || assignments.iter().any(|b| b != &[node_id]) {
                return Err(ApiError::new(
                    ResponseError::InvalidReplicaAssignment,
                    format!("each new partition must be assigned to node {node_id} only"),
                ));
            }
        }
        if validate_only {
            return Ok(());
        }
        let mut grown = (*topic).clone();
        grown.partitions = count;
        let grown = self.metadata.put_topic(grown).map_err(storage_io_error)?;
        for partition in topic.partitions..count {
            if let Err(error) = self.replica_manager.partition_log(&grown, partition) {
                tracing::warn!(topic = %name, partition, %error, "creating a partition log failed");
            }
        }
        Ok(())
    }

    /// Replaces all of a topic's configs (legacy AlterConfigs semantics).
    ///
    /// # Errors
    /// UNKNOWN_TOPIC_OR_PARTITION, INVALID_CONFIG, KAFKA_STORAGE_ERROR.
    pub fn replace_topic_configs(
        &self,
        name: &str,
        configs: &[(String, Option<String>)],
        validate_only: bool,
    ) -> Result<(), ApiError> {
        let mut overrides = TopicOverrides::new();
        for (config, value) in configs {
            let Some(value) = value else {
                // A null value in the legacy API means "no override" for that config.
                let _ =
                    topic_config::topic_config_def(config).ok_or_else(|| unknown_config(config))?;
                continue;
            };
            let (config, value) = topic_config::validate_override(config, value)?;
            let _previous = overrides.insert(config, value);
        }
        self.update_topic_configs(name, validate_only, |_| Ok(overrides))
    }

    /// Applies IncrementalAlterConfigs operations to a topic's configs.
    ///
    /// # Errors
    /// UNKNOWN_TOPIC_OR_PARTITION, INVALID_CONFIG, INVALID_REQUEST, KAFKA_STORAGE_ERROR.
    pub fn incremental_alter_topic_configs(
        &self,
        name: &str,
        ops: &[(String, AlterConfigOp, Option<String>)],
        validate_only: bool,
    ) -> Result<(), ApiError> {
        self.update_topic_configs(name, validate_only, |current| {
            let mut overrides = current.clone();
            for (config, op, value) in ops {
                apply_op(&mut overrides, config, *op, value.as_deref(), &self.config)?;
            }
            Ok(overrides)
        })
    }

    fn update_topic_configs(
        &self,
        name: &str,
        validate_only: bool,
        change: impl FnOnce(&TopicOverrides) -> Result<TopicOverrides, ApiError>,
    ) -> Result<(), ApiError> {
        let _guard = self.lock.lock();
        let topic = self
            .metadata
            .topic(name)
            .ok_or(ApiError::from(ResponseError::UnknownTopicOrPartition))?;
        let configs = change(&topic.configs)?;
        topic_config::validate_topic(name, &configs)?;
        if validate_only || configs == topic.configs {
            return Ok(());
        }
        let mut updated = (*topic).clone();
        updated.configs = configs;
        let updated = self.metadata.put_topic(updated).map_err(storage_io_error)?;
        let log_config = topic_config::log_config(&updated.configs, &self.config);
        for partition in 0..updated.partitions {
            let tp = TopicPartition {
                topic: name.to_owned(),
                partition,
            };
            if let Some(log) = self.replica_manager.log_manager().get(&tp) {
                log.update_config(log_config.clone());
            }
        }
        Ok(())
    }
}

fn apply_op(
    overrides: &mut TopicOverrides,
    name: &str,
    op: AlterConfigOp,
    value: Option<&str>,
    broker: &BrokerConfig,
) -> Result<(), ApiError> {
    let def = topic_config::topic_config_def(name).ok_or_else(|| unknown_config(name))?;
    let is_list = def.def.kind == ConfigType::List;
    match op {
        AlterConfigOp::Set => {
            let (name, value) = topic_config::validate_override(name, value.unwrap_or_default())?;
            let _previous = overrides.insert(name, value);
        }
        AlterConfigOp::Delete => {
            let _removed = overrides.remove(name);
        }
        AlterConfigOp::Append | AlterConfigOp::Subtract if !is_list => {
            return Err(ApiError::new(
                ResponseError::InvalidConfig,
                format!("{name} is not a list; APPEND and SUBTRACT need a list config"),
            ));
        }
        AlterConfigOp::Append | AlterConfigOp::Subtract => {
            let current = current_value(overrides, name, broker);
            let mut items: Vec<String> = split_list(&current);
            for item in split_list(value.unwrap_or_default()) {
                if op == AlterConfigOp::Append && !items.contains(&item) {
                    items.push(item);
                } else if op == AlterConfigOp::Subtract {
                    items.retain(|existing| existing != &item);
                }
            }
            let (name, value) = topic_config::validate_override(name, &items.join(","))?;
            let _previous = overrides.insert(name, value);
        }
    }
    Ok(())
}

fn current_value(overrides: &TopicOverrides, name: &str, broker: &BrokerConfig) -> String {
    topic_config::resolve(overrides, broker)
        .into_iter()
        .find(|r| r.def.def.name == name)
        .and_then(|r| r.value)
        .unwrap_or_default()
}

fn split_list(value: &str) -> Vec<String> {
    value
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .collect()
}

fn unknown_config(name: &str) -> ApiError {
    ApiError::new(
        ResponseError::InvalidConfig,
        format!("unknown or unsupported topic config {name:?}"),
    )
}

fn storage_io_error(error: std::io::Error) -> ApiError {
    tracing::error!(%error, "writing topic metadata failed");
    ApiError::new(ResponseError::KafkaStorageError, error.to_string())
}

/// Kafka's topic-name rule: 1..=249 characters of `[a-zA-Z0-9._-]`, not `.` or `..`.
///
/// # Errors
/// INVALID_TOPIC_EXCEPTION with the reason.
pub fn validate_topic_name(name: &str) -> Result<(), ApiError> {
    let reason = if name.is_empty() {
        Some("the empty string is not a valid topic name".to_owned())
    } else if name == "." || name == ".." {
        Some(format!("{name:?} is not a valid topic name"))
    } else if name.len() > TOPIC_NAME_BYTES_MAX {
        Some(format!(
            "topic name is longer than {TOPIC_NAME_BYTES_MAX} characters"
        ))
    } else {
        name.chars()
            .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-')))
            .map(|bad| {
                format!("topic name {name:?} contains {bad:?}; only [a-zA-Z0-9._-] are allowed")
            })
    };
    match reason {
        Some(reason) => Err(ApiError::new(ResponseError::InvalidTopicException, reason)),
        None => Ok(()),
    }
}

/// Groups requested partitions by topic, keeping request order of first appearance; a helper
/// for handlers building per-topic responses.
#[must_use]
pub fn group_by_topic<T>(items: Vec<(String, T)>) -> Vec<(String, Vec<T>)> {
    let mut order: Vec<String> = Vec::new();
    let mut groups: BTreeMap<String, Vec<T>> = BTreeMap::new();
    for (topic, item) in items {
        if !groups.contains_key(&topic) {
            order.push(topic.clone());
        }
        groups.entry(topic).or_default().push(item);
    }
    order
        .into_iter()
        .map(|topic| {
            let items = groups.remove(&topic).unwrap_or_default();
            (topic, items)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn topic_names() {
        for bad in ["", ".", "..", "a b", "a/b", "é", &"x".repeat(250)] {
            assert_eq!(
                validate_topic_name(bad).unwrap_err().code,
                ResponseError::InvalidTopicException,
                "{bad:?}"
            );
        }
        for good in ["a", "A.b_c-1", &"x".repeat(249)] {
            validate_topic_name(good).unwrap();
        }
    }

    #[test]
    fn incremental_list_operations() {
        let broker = BrokerConfig::default();
        let mut overrides = TopicOverrides::new();
        apply_op(
            &mut overrides,
            "cleanup.policy",
            AlterConfigOp::Append,
            Some("compact"),
            &broker,
        )
        .unwrap();
        assert_eq!(overrides["cleanup.policy"], "delete,compact");
        apply_op(
            &mut overrides,
            "cleanup.policy",
            AlterConfigOp::Subtract,
            Some("delete"),
            &broker,
        )
        .unwrap();
        assert_eq!(overrides["cleanup.policy"], "compact");
        apply_op(
            &mut overrides,
            "retention.ms",
            AlterConfigOp::Set,
            Some("1000"),
            &broker,
        )
        .unwrap();
        apply_op(
            &mut overrides,
            "retention.ms",
            AlterConfigOp::Delete,
            None,
            &broker,
        )
        .unwrap();
        assert!(!overrides.contains_key("retention.ms"));
        let error = apply_op(
            &mut overrides,
            "retention.ms",
            AlterConfigOp::Append,
            Some("1"),
            &broker,
        )
        .unwrap_err();
        assert_eq!(error.code, ResponseError::InvalidConfig);
        let error = apply_op(
            &mut overrides,
            "bogus",
            AlterConfigOp::Set,
            Some("1"),
            &broker,
        )
        .unwrap_err();
        assert_eq!(error.code, ResponseError::InvalidConfig);
    }
}
