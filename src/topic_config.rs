//! Topic configs: the one place that knows which topic configs exist, their types, their broker
//! synonyms, and how they become a storage [`LogConfig`].
//!
//! Adding a topic config is one entry in [`TOPIC_CONFIGS`] (plus, if storage needs it, one line
//! in [`log_config`]). A name that is not in the table is rejected with INVALID_CONFIG: Kafka
//! users expect a config they set to take effect, so silently ignoring one would be a lie.

use std::collections::BTreeMap;

use kafka_protocol::error::ResponseError;
use kairos_storage::LogConfig;

use crate::config::{BrokerConfig, ConfigDef, ConfigType};
use crate::error::ApiError;
use crate::temporal::config::TemporalConfig;

/// A topic config: its definition and the broker config that supplies its default.
#[derive(Debug, Clone, Copy)]
pub struct TopicConfigDef {
    /// Name, type, accepted values. The `default` here is only used when there is no synonym.
    pub def: ConfigDef,
    /// The broker config whose value is the default (`retention.ms` ← `log.retention.ms`).
    pub broker_synonym: Option<&'static str>,
}

const fn topic(
    name: &'static str,
    kind: ConfigType,
    broker_synonym: &'static str,
    min: i64,
    one_of: &'static [&'static str],
    doc: &'static str,
) -> TopicConfigDef {
    TopicConfigDef {
        def: ConfigDef {
            name,
            kind,
            default: None,
            min,
            one_of,
            doc,
        },
        broker_synonym: Some(broker_synonym),
    }
}

/// A Kairos topic config with no broker synonym.
const fn temporal(
    name: &'static str,
    kind: ConfigType,
    default: Option<&'static str>,
    one_of: &'static [&'static str],
    doc: &'static str,
) -> TopicConfigDef {
    TopicConfigDef {
        def: ConfigDef {
            name,
            kind,
            default,
            min: 0,
            one_of,
            doc,
        },
        broker_synonym: None,
    }
}

use ConfigType::{Int, List, Long};

/// Every topic config Kairos implements.
pub static TOPIC_CONFIGS: &[TopicConfigDef] = &[
    topic(
        "cleanup.policy",
        List,
        "log.cleanup.policy",
        0,
        &["delete", "compact"],
        "delete, compact, or both.",
    ),
    topic(
        "retention.ms",
        Long,
        "log.retention.ms",
        -1,
        &[],
        "Delete segments older than this (-1 = forever).",
    ),
    topic(
        "retention.bytes",
        Long,
        "log.retention.bytes",
        -1,
        &[],
        "Delete old segments beyond this size per partition (-1 = unlimited).",
    ),
    topic(
        "segment.bytes",
        Int,
        "log.segment.bytes",
        14,
        &[],
        "Roll a segment at this size.",
    ),
    topic(
        "segment.ms",
        Long,
        "log.roll.ms",
        1,
        &[],
        "Roll a segment after this long.",
    ),
    topic(
        "segment.index.bytes",
        Int,
        "log.index.size.max.bytes",
        4,
        &[],
        "Offset/time index size per segment.",
    ),
    topic(
        "index.interval.bytes",
        Int,
        "log.index.interval.bytes",
        0,
        &[],
        "Bytes between offset index entries.",
    ),
    topic(
        "max.message.bytes",
        Int,
        "message.max.bytes",
        0,
        &[],
        "Largest record batch accepted.",
    ),
    topic(
        "flush.messages",
        Long,
        "log.flush.interval.messages",
        1,
        &[],
        "fsync after this many messages.",
    ),
    topic(
        "flush.ms",
        Long,
        "log.flush.interval.ms",
        0,
        &[],
        "fsync after this long.",
    ),
    topic(
        "min.compaction.lag.ms",
        Long,
        "log.cleaner.min.compaction.lag.ms",
        0,
        &[],
        "Records younger than this are not compacted.",
    ),
    topic(
        "max.compaction.lag.ms",
        Long,
        "log.cleaner.max.compaction.lag.ms",
        1,
        &[],
        "Records older than this are compacted even below min.cleanable.dirty.ratio.",
    ),
    topic(
        "delete.retention.ms",
        Long,
        "log.cleaner.delete.retention.ms",
        0,
        &[],
        "How long tombstones and transaction markers survive compaction.",
    ),
    topic(
        "min.cleanable.dirty.ratio",
        ConfigType::Double,
        "log.cleaner.min.cleanable.ratio",
        0,
        &[],
        "Compact when this share of the log is dirty.",
    ),
    topic(
        "message.timestamp.type",
        ConfigType::String,
        "log.message.timestamp.type",
        0,
        &["CreateTime", "LogAppendTime"],
        "CreateTime keeps the producer's timestamp; LogAppendTime stamps the broker's.",
    ),
    temporal(
        "temporal.fields",
        List,
        Some(""),
        &[],
        "Due-index selectors: JSON Pointers into the value (/expiration_date) or header:<name>.",
    ),
    temporal(
        "temporal.format",
        ConfigType::String,
        Some("auto"),
        &["auto", "rfc3339", "epoch_ms", "epoch_s"],
        "How due times are written: auto, rfc3339, epoch_ms or epoch_s.",
    ),
    temporal(
        "temporal.patch",
        ConfigType::String,
        None,
        &[],
        "JSON object: selector to an RFC 7396 merge patch applied to that field's fires.",
    ),
    temporal(
        "temporal.target.topic",
        ConfigType::String,
        None,
        &[],
        "Topic whose partition of the same number receives the fires; the topic itself if unset.",
    ),
    TopicConfigDef {
        // Only `producer` is implemented: the stored bytes are the producer's. Any other value
        // would need recompression on append, so it is rejected rather than ignored.
        def: ConfigDef {
            name: "compression.type",
            kind: ConfigType::String,
            default: Some("producer"),
            min: 0,
            one_of: &["producer"],
            doc: "Only `producer` (store batches as the producer compressed them).",
        },
        broker_synonym: None,
    },
];

/// Looks up a topic config by name.
#[must_use]
pub fn topic_config_def(name: &str) -> Option<&'static TopicConfigDef> {
    TOPIC_CONFIGS.iter().find(|c| c.def.name == name)
}

/// A topic's explicitly set configs (Kafka's "dynamic topic configs"), validated.
pub type TopicOverrides = BTreeMap<String, String>;

/// Validates one `name = value` override.
///
/// # Errors
/// INVALID_CONFIG for unknown names and values that do not validate.
pub fn validate_override(name: &str, value: &str) -> Result<(String, String), ApiError> {
    let def = topic_config_def(name).ok_or_else(|| {
        ApiError::new(
            ResponseError::InvalidConfig,
            format!("unknown or unsupported topic config {name:?}"),
        )
    })?;
    let value = def
        .def
        .validate(value)
        .map_err(|message| ApiError::new(ResponseError::InvalidConfig, message))?;
    Ok((def.def.name.to_owned(), value))
}

/// The due-index configuration of a topic, if `temporal.fields` is set. Configs were validated
/// by [`validate_topic`], so a parse failure here means "not indexed".
#[must_use]
pub fn temporal_config(configs: &TopicOverrides) -> Option<TemporalConfig> {
    parse_temporal(configs).ok().flatten()
}

fn parse_temporal(configs: &TopicOverrides) -> Result<Option<TemporalConfig>, String> {
    let get = |name: &str| configs.get(name).map(String::as_str);
    TemporalConfig::parse(
        get("temporal.fields"),
        get("temporal.format"),
        get("temporal.patch"),
        get("temporal.target.topic"),
    )
}

/// Checks what single configs cannot: the `temporal.*` configs together.
///
/// # Errors
/// INVALID_CONFIG naming the problem.
pub fn validate_topic(topic: &str, configs: &TopicOverrides) -> Result<(), ApiError> {
    let invalid = |message: String| ApiError::new(ResponseError::InvalidConfig, message);
    let _ = parse_temporal(configs).map_err(invalid)?;
    // Checked even while `temporal.fields` is unset: the value would be refused once it is.
    if let Some(target) = configs
        .get("temporal.target.topic")
        .filter(|t| !t.is_empty() && *t != topic)
    {
        crate::controller::validate_topic_name(target).map_err(|e| {
            invalid(format!(
                "temporal.target.topic: {}",
                e.message.unwrap_or_default()
            ))
        })?;
        // Only their coordinators write internal topics (ARCHITECTURE: internal topics).
        if crate::coordinator::is_internal_topic(target) {
            return Err(invalid(format!(
                "temporal.target.topic {target:?}: fires cannot go to an internal topic"
            )));
        }
    }
    Ok(())
}

/// Where a described value comes from, with DescribeConfigs' `config_source` numbering.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConfigSource {
    /// Set on the topic (DYNAMIC_TOPIC_CONFIG = 1).
    Topic,
    /// Set in the broker's config file or flags (STATIC_BROKER_CONFIG = 4).
    StaticBroker,
    /// Kafka's default (DEFAULT_CONFIG = 5).
    Default,
}

impl ConfigSource {
    /// The wire number.
    #[must_use]
    pub fn code(self) -> i8 {
        match self {
            ConfigSource::Topic => 1,
            ConfigSource::StaticBroker => 4,
            ConfigSource::Default => 5,
        }
    }
}

/// One resolved topic config: value in force, its source, and the chain of synonyms (most
/// specific first) as DescribeConfigs v1+ reports them.
#[derive(Debug, Clone)]
pub struct ResolvedConfig {
    /// The definition.
    pub def: &'static TopicConfigDef,
    /// Value in force.
    pub value: Option<String>,
    /// Where it comes from.
    pub source: ConfigSource,
    /// `(name, value, source)` from most to least specific.
    pub synonyms: Vec<(String, Option<String>, ConfigSource)>,
}

/// Resolves every topic config for a topic with `overrides` on a broker configured as `broker`.
#[must_use]
pub fn resolve(overrides: &TopicOverrides, broker: &BrokerConfig) -> Vec<ResolvedConfig> {
    TOPIC_CONFIGS
        .iter()
        .map(|def| {
            let mut synonyms = Vec::new();
            if let Some(value) = overrides.get(def.def.name) {
                synonyms.push((
                    def.def.name.to_owned(),
                    Some(value.clone()),
                    ConfigSource::Topic,
                ));
            }
            match def
                .broker_synonym
                .and_then(|name| Some((name, broker.get(name)?)))
            {
                Some((name, (value, true))) => {
                    synonyms.push((name.to_owned(), Some(value), ConfigSource::StaticBroker));
                }
                Some((name, (value, false))) => {
                    synonyms.push((name.to_owned(), Some(value), ConfigSource::Default));
                }
                None => synonyms.push((
                    def.def.name.to_owned(),
                    def.def.default.map(str::to_owned),
                    ConfigSource::Default,
                )),
            }
            let (value, source) = synonyms
                .first()
                .map(|(_, value, source)| (value.clone(), *source))
                .unwrap_or((None, ConfigSource::Default));
            ResolvedConfig {
                def,
                value,
                source,
                synonyms,
            }
        })
        .collect()
}

/// The storage configuration for a topic.
#[must_use]
pub fn log_config(overrides: &TopicOverrides, broker: &BrokerConfig) -> LogConfig {
    let mut config = LogConfig::default();
    for resolved in resolve(overrides, broker) {
        let Some(value) = resolved.value.as_deref() else {
            continue;
        };
        apply(&mut config, resolved.def.def.name, value);
    }
    config
}

/// Sets one validated topic config on a [`LogConfig`]. Values were validated by
/// [`validate_override`] or come from validated broker configs, so parse failures keep the
/// storage default.
fn apply(config: &mut LogConfig, name: &str, value: &str) {
    let long = || value.parse::<i64>().ok();
    match name {
        "cleanup.policy" => {
            config.cleanup_policy = storage_cleanup_policy(value);
        }
        "retention.ms" => set(&mut config.retention_ms, long()),
        "retention.bytes" => set(&mut config.retention_bytes, long()),
        "segment.bytes" => set(&mut config.segment_bytes, long()),
        "segment.ms" => set(&mut config.segment_ms, long()),
        "segment.index.bytes" => set(&mut config.segment_index_bytes, long()),
        "index.interval.bytes" => set(&mut config.index_interval_bytes, long()),
        "max.message.bytes" => set(&mut config.max_message_bytes, long()),
        "flush.messages" => set(&mut config.flush_messages, long()),
        "flush.ms" => set(&mut config.flush_ms, long()),
        "min.compaction.lag.ms" => set(&mut config.min_compaction_lag_ms, long()),
        "max.compaction.lag.ms" => set(&mut config.max_compaction_lag_ms, long()),
        "delete.retention.ms" => set(&mut config.delete_retention_ms, long()),
        "min.cleanable.dirty.ratio" => {
            if let Ok(ratio) = value.parse() {
                config.min_cleanable_dirty_ratio = ratio;
            }
        }
        "message.timestamp.type" => {
            config.message_timestamp_type = if value == "LogAppendTime" {
                kairos_storage::TimestampType::LogAppendTime
            } else {
                kairos_storage::TimestampType::CreateTime
            };
        }
        // compression.type is `producer`, which is what storage does anyway.
        _ => {}
    }
}

/// Stores `value` into a numeric field of whatever integer type storage chose, if it fits.
fn set<T: TryFrom<i64>>(field: &mut T, value: Option<i64>) {
    if let Some(converted) = value.and_then(|v| T::try_from(v).ok()) {
        *field = converted;
    }
}

fn storage_cleanup_policy(value: &str) -> kairos_storage::CleanupPolicy {
    let compact = value.split(',').any(|p| p == "compact");
    let delete = value.split(',').any(|p| p == "delete");
    match (compact, delete) {
        (true, true) => kairos_storage::CleanupPolicy::CompactDelete,
        (true, false) => kairos_storage::CleanupPolicy::Compact,
        // An empty list is refused by validation; `delete` is Kafka's default.
        (false, _) => kairos_storage::CleanupPolicy::Delete,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_and_invalid_overrides_are_invalid_config() {
        for (name, value) in [
            ("no.such.config", "1"),
            ("retention.ms", "soon"),
            ("cleanup.policy", "shred"),
            ("compression.type", "zstd"),
            ("segment.bytes", "1"),
        ] {
            let error = validate_override(name, value).unwrap_err();
            assert_eq!(error.code, ResponseError::InvalidConfig, "{name}={value}");
        }
        assert_eq!(
            validate_override("cleanup.policy", "compact, delete").unwrap(),
            ("cleanup.policy".into(), "compact,delete".into())
        );
    }

    #[test]
    fn resolve_reports_sources_and_synonyms() {
        let broker = BrokerConfig::default()
            .with("log.retention.ms", "1000")
            .unwrap();
        let mut overrides = TopicOverrides::new();
        let _ = overrides.insert("segment.bytes".into(), "1048576".into());
        let resolved = resolve(&overrides, &broker);
        let find = |name: &str| resolved.iter().find(|r| r.def.def.name == name).unwrap();
        assert_eq!(find("segment.bytes").source, ConfigSource::Topic);
        assert_eq!(find("segment.bytes").synonyms.len(), 2);
        assert_eq!(find("retention.ms").source, ConfigSource::StaticBroker);
        assert_eq!(find("retention.ms").value.as_deref(), Some("1000"));
        assert_eq!(find("flush.ms").source, ConfigSource::Default);
    }
}
