//! Broker configuration, by Kafka's names.
//!
//! Every broker config is declared once in [`BROKER_CONFIGS`] with its type and default. Values
//! are kept as validated strings keyed by the Kafka name (`num.partitions`,
//! `auto.create.topics.enable`, ...), which is what the TOML file, the `--override` flag,
//! DescribeConfigs and the topic-config synonyms all speak; typed accessors parse them. A name
//! that is not in the table is rejected, never ignored.

mod group;
mod transaction;

use std::collections::BTreeMap;
use std::path::PathBuf;

/// The value type of a config, with Kafka's DescribeConfigs `config_type` numbering.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConfigType {
    /// `true` / `false`.
    Boolean,
    /// Free text, optionally restricted to `one_of`.
    String,
    /// 32-bit integer.
    Int,
    /// 64-bit integer.
    Long,
    /// Comma-separated list.
    List,
    /// A ratio in `[0, 1]` (Kafka's only double configs are ratios).
    Double,
}

impl ConfigType {
    /// The number DescribeConfigs v3+ sends as `config_type`.
    #[must_use]
    pub fn describe_code(self) -> i8 {
        match self {
            ConfigType::Boolean => 1,
            ConfigType::String => 2,
            ConfigType::Int => 3,
            ConfigType::Long => 5,
            ConfigType::Double => 6,
            ConfigType::List => 7,
        }
    }
}

/// A declared config: its Kafka name, type, default and the values it accepts.
#[derive(Debug, Clone, Copy)]
pub struct ConfigDef {
    /// Kafka's name, e.g. `log.retention.ms`.
    pub name: &'static str,
    /// Value type.
    pub kind: ConfigType,
    /// Default value as Kafka prints it. `None` means "null" (unset).
    pub default: Option<&'static str>,
    /// Smallest accepted value for numbers.
    pub min: i64,
    /// For strings and lists: the accepted words; empty means any.
    pub one_of: &'static [&'static str],
    /// One sentence for DescribeConfigs `include_documentation`.
    pub doc: &'static str,
}

impl ConfigDef {
    /// Validates and normalises `value` for this config.
    ///
    /// # Errors
    /// A message for INVALID_CONFIG when the value does not parse or is out of range.
    pub fn validate(&self, value: &str) -> Result<String, String> {
        let value = value.trim();
        match self.kind {
            ConfigType::Boolean => match value.to_ascii_lowercase().as_str() {
                "true" => Ok("true".into()),
                "false" => Ok("false".into()),
                _ => Err(format!(
                    "{} must be true or false, got {value:?}",
                    self.name
                )),
            },
            ConfigType::Int | ConfigType::Long => {
                let parsed: i64 = value
                    .parse()
                    .map_err(|_| format!("{} must be an integer, got {value:?}", self.name))?;
                if self.kind == ConfigType::Int && i32::try_from(parsed).is_err() {
                    return Err(format!("{} must fit in 32 bits, got {parsed}", self.name));
                }
                if parsed < self.min {
                    return Err(format!(
                        "{} must be at least {}, got {parsed}",
                        self.name, self.min
                    ));
                }
                Ok(parsed.to_string())
            }
            ConfigType::String => {
                if !self.one_of.is_empty() && !self.one_of.contains(&value) {
                    return Err(format!(
                        "{} must be one of {:?}, got {value:?}",
                        self.name, self.one_of
                    ));
                }
                Ok(value.to_owned())
            }
            ConfigType::Double => match value.parse::<f64>() {
                Ok(ratio) if (0.0..=1.0).contains(&ratio) => Ok(value.to_owned()),
                _ => Err(format!(
                    "{} must be a number between 0 and 1, got {value:?}",
                    self.name
                )),
            },
            ConfigType::List => {
                let items: Vec<&str> = value
                    .split(',')
                    .map(str::trim)
                    .filter(|item| !item.is_empty())
                    .collect();
                if let Some(bad) = items
                    .iter()
                    .find(|item| !self.one_of.is_empty() && !self.one_of.contains(item))
                {
                    return Err(format!(
                        "{} items must be among {:?}, got {bad:?}",
                        self.name, self.one_of
                    ));
                }
                Ok(items.join(","))
            }
        }
    }
}

const fn def(
    name: &'static str,
    kind: ConfigType,
    default: Option<&'static str>,
    min: i64,
    doc: &'static str,
) -> ConfigDef {
    ConfigDef {
        name,
        kind,
        default,
        min,
        one_of: &[],
        doc,
    }
}

use ConfigType::{Boolean, Int, List, Long};

/// Every broker config Kairos understands. Topic-level defaults (`log.retention.ms`, ...) are
/// here too; `topic_config` names them as synonyms of the topic configs.
pub static BROKER_CONFIGS: &[ConfigDef] = &[
    def(
        "node.id",
        Int,
        Some("1"),
        0,
        "The id of this (single) node.",
    ),
    ConfigDef {
        name: "log.dirs",
        kind: ConfigType::String,
        default: Some("./data"),
        min: 0,
        one_of: &[],
        doc: "The data directory (one directory; the first entry of a list is used).",
    },
    ConfigDef {
        name: "listeners",
        kind: ConfigType::String,
        default: Some("PLAINTEXT://127.0.0.1:9092"),
        min: 0,
        one_of: &[],
        doc: "The address the Kafka listener binds, `host:port` or `PLAINTEXT://host:port`.",
    },
    ConfigDef {
        name: "advertised.listeners",
        kind: ConfigType::String,
        default: None,
        min: 0,
        one_of: &[],
        doc: "The address clients are told to connect to; defaults to the bound address.",
    },
    def(
        "auto.create.topics.enable",
        Boolean,
        Some("true"),
        0,
        "Create unknown topics on Metadata requests that allow it.",
    ),
    def(
        "num.partitions",
        Int,
        Some("1"),
        1,
        "Partitions of auto-created topics.",
    ),
    def(
        "default.replication.factor",
        Int,
        Some("1"),
        1,
        "Replication factor of auto-created topics (always 1 on a single node).",
    ),
    def(
        "delete.topic.enable",
        Boolean,
        Some("true"),
        0,
        "Whether DeleteTopics is allowed.",
    ),
    def(
        "socket.request.max.bytes",
        Int,
        Some("104857600"),
        64,
        "Largest request frame accepted; larger frames close the connection before the body is read.",
    ),
    def(
        "max.connections",
        Int,
        Some("1000"),
        1,
        "Connections served at once; more wait in the accept backlog.",
    ),
    def(
        "queued.max.requests",
        Int,
        Some("500"),
        1,
        "Requests in flight per connection before the broker stops reading from it.",
    ),
    def(
        "connections.max.idle.ms",
        Long,
        Some("600000"),
        1,
        "A connection that sends no request for this long is closed, freeing its slot.",
    ),
    def(
        "log.retention.check.interval.ms",
        Long,
        Some("300000"),
        1,
        "How often retention runs.",
    ),
    def(
        "log.cleaner.enable",
        Boolean,
        Some("true"),
        0,
        "Run the log cleaner for topics with cleanup.policy=compact.",
    ),
    def(
        "log.cleaner.backoff.ms",
        Long,
        Some("15000"),
        1,
        "How long the cleaner sleeps when no log is dirty enough.",
    ),
    def(
        "log.cleaner.dedupe.buffer.size",
        Long,
        Some("134217728"),
        24_576,
        "Memory of the cleaner's key to offset map; a pass stops where the map fills.",
    ),
    def(
        "log.cleaner.delete.retention.ms",
        Long,
        Some("86400000"),
        0,
        "Default delete.retention.ms: how long tombstones and markers survive compaction.",
    ),
    def(
        "log.cleaner.max.compaction.lag.ms",
        Long,
        Some("9223372036854775807"),
        1,
        "Default max.compaction.lag.ms.",
    ),
    ConfigDef {
        name: "log.cleaner.min.cleanable.ratio",
        kind: ConfigType::Double,
        default: Some("0.5"),
        min: 0,
        one_of: &[],
        doc: "Default min.cleanable.dirty.ratio.",
    },
    def(
        "producer.id.expiration.ms",
        Int,
        Some("86400000"),
        1,
        "Idle producers are forgotten after this long (idempotence state is bounded).",
    ),
    def(
        "producer.id.expiration.check.interval.ms",
        Int,
        Some("600000"),
        1,
        "How often idle producers are looked for.",
    ),
    def(
        "kairos.due.snapshot.interval.ms",
        Long,
        Some("60000"),
        1_000,
        "How often each due index is written as a snapshot, bounding the log replayed after a crash.",
    ),
    def(
        "log.initial.task.delay.ms",
        Long,
        Some("30000"),
        0,
        "Delay before the first retention, flush and producer-expiry runs after start.",
    ),
    def(
        "log.flush.scheduler.interval.ms",
        Long,
        Some("1000"),
        1,
        "How often flush.ms deadlines are checked.",
    ),
    ConfigDef {
        name: "kairos.metrics.listener",
        kind: ConfigType::String,
        default: None,
        min: 0,
        one_of: &[],
        doc: "host:port of the admin HTTP listener serving Prometheus /metrics; unset disables it.",
    },
    def(
        "kairos.acks.all.fsync",
        Boolean,
        Some("true"),
        0,
        "fsync before acknowledging acks=all. false gives Kafka's page-cache durability.",
    ),
    def(
        "message.max.bytes",
        Int,
        Some("1048588"),
        0,
        "Default max.message.bytes of topics.",
    ),
    def(
        "log.segment.bytes",
        Int,
        Some("1073741824"),
        14,
        "Default segment.bytes of topics.",
    ),
    def(
        "log.roll.ms",
        Long,
        Some("604800000"),
        1,
        "Default segment.ms of topics.",
    ),
    def(
        "log.index.size.max.bytes",
        Int,
        Some("10485760"),
        4,
        "Default segment.index.bytes of topics.",
    ),
    def(
        "log.index.interval.bytes",
        Int,
        Some("4096"),
        0,
        "Default index.interval.bytes of topics.",
    ),
    def(
        "log.retention.ms",
        Long,
        Some("604800000"),
        -1,
        "Default retention.ms of topics (-1 = forever).",
    ),
    def(
        "log.retention.bytes",
        Long,
        Some("-1"),
        -1,
        "Default retention.bytes of topics (-1 = unlimited).",
    ),
    def(
        "log.flush.interval.messages",
        Long,
        Some("9223372036854775807"),
        1,
        "Default flush.messages of topics.",
    ),
    def(
        "log.flush.interval.ms",
        Long,
        Some("9223372036854775807"),
        0,
        "Default flush.ms of topics.",
    ),
    def(
        "log.cleaner.min.compaction.lag.ms",
        Long,
        Some("0"),
        0,
        "Default min.compaction.lag.ms of topics.",
    ),
    ConfigDef {
        name: "log.cleanup.policy",
        kind: List,
        default: Some("delete"),
        min: 0,
        one_of: &["delete", "compact"],
        doc: "Default cleanup.policy of topics.",
    },
    ConfigDef {
        name: "log.message.timestamp.type",
        kind: ConfigType::String,
        default: Some("CreateTime"),
        min: 0,
        one_of: &["CreateTime", "LogAppendTime"],
        doc: "Default message.timestamp.type of topics.",
    },
];

/// Looks up a broker config definition by Kafka name.
#[must_use]
pub fn broker_config_def(name: &str) -> Option<&'static ConfigDef> {
    all_configs().find(|def| def.name == name)
}

/// Every declared broker config: the storage and server ones, then the group coordinator's.
pub fn all_configs() -> impl Iterator<Item = &'static ConfigDef> {
    BROKER_CONFIGS
        .iter()
        .chain(group::GROUP_CONFIGS)
        .chain(transaction::TRANSACTION_CONFIGS)
}

/// The broker's configuration: explicitly set values by Kafka name, over the defaults of
/// [`BROKER_CONFIGS`].
#[derive(Debug, Clone, Default)]
pub struct BrokerConfig {
    // Only explicitly set values live here, so DescribeConfigs can tell STATIC_BROKER_CONFIG from
    // DEFAULT_CONFIG.
    explicit: BTreeMap<&'static str, String>,
}

/// A config name that is unknown or a value that does not validate.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct ConfigError(pub String);

impl BrokerConfig {
    /// Sets a config by Kafka name.
    ///
    /// # Errors
    /// Unknown names and invalid values.
    pub fn set(&mut self, name: &str, value: &str) -> Result<(), ConfigError> {
        let def = broker_config_def(name)
            .ok_or_else(|| ConfigError(format!("unknown broker config {name:?}")))?;
        let value = def.validate(value).map_err(ConfigError)?;
        let _previous = self.explicit.insert(def.name, value);
        Ok(())
    }

    /// Builder-style [`BrokerConfig::set`].
    ///
    /// # Errors
    /// Unknown names and invalid values.
    pub fn with(mut self, name: &str, value: &str) -> Result<BrokerConfig, ConfigError> {
        self.set(name, value)?;
        Ok(self)
    }

    /// The value in force, and whether it was set explicitly.
    #[must_use]
    pub fn get(&self, name: &str) -> Option<(String, bool)> {
        if let Some(value) = self.explicit.get(name) {
            return Some((value.clone(), true));
        }
        broker_config_def(name).and_then(|def| def.default.map(|d| (d.to_owned(), false)))
    }

    fn string(&self, name: &str) -> Option<String> {
        self.get(name).map(|(value, _)| value)
    }

    fn long(&self, name: &str) -> i64 {
        // Values are validated on the way in and defaults are valid by construction (a unit test
        // checks every default), so a parse failure here cannot happen.
        self.string(name)
            .and_then(|v| v.parse().ok())
            .unwrap_or_default()
    }

    fn boolean(&self, name: &str) -> bool {
        self.string(name).is_some_and(|v| v == "true")
    }

    /// `node.id`.
    #[must_use]
    pub fn node_id(&self) -> i32 {
        i32::try_from(self.long("node.id")).unwrap_or(1)
    }

    /// The data directory: the first entry of `log.dirs`.
    #[must_use]
    pub fn log_dir(&self) -> PathBuf {
        let dirs = self.string("log.dirs").unwrap_or_default();
        PathBuf::from(dirs.split(',').next().unwrap_or("./data").trim())
    }

    /// `listeners` without its `PLAINTEXT://` prefix.
    #[must_use]
    pub fn listener(&self) -> String {
        strip_scheme(&self.string("listeners").unwrap_or_default())
    }

    /// `advertised.listeners` without its scheme, if set.
    #[must_use]
    pub fn advertised_listener(&self) -> Option<String> {
        self.string("advertised.listeners")
            .map(|v| strip_scheme(&v))
    }

    /// `auto.create.topics.enable`.
    #[must_use]
    pub fn auto_create_topics_enable(&self) -> bool {
        self.boolean("auto.create.topics.enable")
    }

    /// `num.partitions`.
    #[must_use]
    pub fn num_partitions(&self) -> i32 {
        i32::try_from(self.long("num.partitions")).unwrap_or(1)
    }

    /// `delete.topic.enable`.
    #[must_use]
    pub fn delete_topic_enable(&self) -> bool {
        self.boolean("delete.topic.enable")
    }

    /// `socket.request.max.bytes`.
    #[must_use]
    pub fn socket_request_max_bytes(&self) -> usize {
        usize::try_from(self.long("socket.request.max.bytes")).unwrap_or(usize::MAX)
    }

    /// `max.connections`.
    #[must_use]
    pub fn max_connections(&self) -> usize {
        usize::try_from(self.long("max.connections")).unwrap_or(1)
    }

    /// `queued.max.requests`, applied per connection.
    #[must_use]
    pub fn queued_max_requests(&self) -> usize {
        usize::try_from(self.long("queued.max.requests")).unwrap_or(1)
    }

    /// `connections.max.idle.ms`.
    #[must_use]
    pub fn connections_max_idle_ms(&self) -> u64 {
        u64::try_from(self.long("connections.max.idle.ms")).unwrap_or(600_000)
    }

    /// `log.retention.check.interval.ms`.
    #[must_use]
    pub fn log_retention_check_interval_ms(&self) -> u64 {
        u64::try_from(self.long("log.retention.check.interval.ms")).unwrap_or(300_000)
    }

    /// `log.initial.task.delay.ms`.
    #[must_use]
    pub fn log_initial_task_delay_ms(&self) -> u64 {
        u64::try_from(self.long("log.initial.task.delay.ms")).unwrap_or(30_000)
    }

    /// `log.flush.scheduler.interval.ms`.
    #[must_use]
    pub fn log_flush_scheduler_interval_ms(&self) -> u64 {
        u64::try_from(self.long("log.flush.scheduler.interval.ms")).unwrap_or(1_000)
    }

    /// `log.cleaner.enable`.
    #[must_use]
    pub fn log_cleaner_enable(&self) -> bool {
        self.string("log.cleaner.enable").as_deref() != Some("false")
    }

    /// `log.cleaner.backoff.ms`.
    #[must_use]
    pub fn log_cleaner_backoff_ms(&self) -> u64 {
        u64::try_from(self.long("log.cleaner.backoff.ms")).unwrap_or(15_000)
    }

    /// `log.cleaner.dedupe.buffer.size`.
    #[must_use]
    pub fn log_cleaner_dedupe_buffer_size(&self) -> usize {
        usize::try_from(self.long("log.cleaner.dedupe.buffer.size")).unwrap_or(128 << 20)
    }

    /// `producer.id.expiration.ms`.
    #[must_use]
    pub fn producer_id_expiration_ms(&self) -> i64 {
        self.long("producer.id.expiration.ms")
    }

    /// `producer.id.expiration.check.interval.ms`.
    #[must_use]
    pub fn producer_id_expiration_check_interval_ms(&self) -> u64 {
        u64::try_from(self.long("producer.id.expiration.check.interval.ms")).unwrap_or(600_000)
    }

    /// `kairos.due.snapshot.interval.ms`.
    #[must_use]
    pub fn due_snapshot_interval_ms(&self) -> i64 {
        self.long("kairos.due.snapshot.interval.ms")
    }

    /// `kairos.metrics.listener`.
    #[must_use]
    pub fn metrics_listener(&self) -> Option<String> {
        self.string("kairos.metrics.listener")
    }

    /// `kairos.acks.all.fsync`.
    #[must_use]
    pub fn acks_all_fsync(&self) -> bool {
        self.boolean("kairos.acks.all.fsync")
    }

    /// Every config with its value and whether it was set explicitly, in table order.
    #[must_use]
    pub fn describe(&self) -> Vec<(&'static ConfigDef, Option<String>, bool)> {
        all_configs()
            .map(|def| match self.explicit.get(def.name) {
                Some(value) => (def, Some(value.clone()), true),
                None => (def, def.default.map(str::to_owned), false),
            })
            .collect()
    }
}

fn strip_scheme(listener: &str) -> String {
    let first = listener.split(',').next().unwrap_or_default().trim();
    first
        .split_once("://")
        .map_or(first, |(_, address)| address)
        .to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_default_validates() {
        for def in all_configs() {
            if let Some(default) = def.default {
                assert_eq!(
                    def.validate(default).as_deref(),
                    Ok(default),
                    "{}",
                    def.name
                );
            }
        }
    }

    #[test]
    fn set_rejects_unknown_names_and_bad_values() {
        let mut config = BrokerConfig::default();
        assert!(config.set("no.such.config", "1").is_err());
        assert!(config.set("num.partitions", "zero").is_err());
        assert!(config.set("num.partitions", "0").is_err());
        config.set("num.partitions", "3").unwrap();
        assert_eq!(config.num_partitions(), 3);
        assert_eq!(config.get("num.partitions"), Some(("3".into(), true)));
        assert_eq!(
            config.get("delete.topic.enable"),
            Some(("true".into(), false))
        );
    }

    #[test]
    fn listeners_accept_a_scheme() {
        let config = BrokerConfig::default()
            .with("listeners", "PLAINTEXT://0.0.0.0:9093")
            .unwrap();
        assert_eq!(config.listener(), "0.0.0.0:9093");
        assert_eq!(BrokerConfig::default().listener(), "127.0.0.1:9092");
    }
}
