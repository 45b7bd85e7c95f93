//! The group coordinator's broker configs (Kafka's names and defaults) and typed accessors.

use super::ConfigType::{Int, List, Long};
use super::{BrokerConfig, ConfigDef, def};

/// Group coordinator configs.
pub(super) static GROUP_CONFIGS: &[ConfigDef] = &[
    def(
        "group.initial.rebalance.delay.ms",
        Int,
        Some("3000"),
        0,
        "How long an empty group waits for more members before its first rebalance completes.",
    ),
    def(
        "group.min.session.timeout.ms",
        Int,
        Some("6000"),
        1,
        "Smallest session timeout a classic group member may ask for.",
    ),
    def(
        "group.max.session.timeout.ms",
        Int,
        Some("1800000"),
        1,
        "Largest session timeout a classic group member may ask for.",
    ),
    def(
        "group.max.size",
        Int,
        Some("2147483647"),
        1,
        "Most members a classic group may have.",
    ),
    def(
        "offsets.topic.num.partitions",
        Int,
        Some("50"),
        1,
        "Partitions of __consumer_offsets (fixed once the topic exists).",
    ),
    def(
        "offsets.topic.segment.bytes",
        Int,
        Some("104857600"),
        14,
        "segment.bytes of __consumer_offsets, small so that compaction can run.",
    ),
    def(
        "offsets.retention.minutes",
        Int,
        Some("10080"),
        1,
        "How long the offsets of a group stay after it became empty.",
    ),
    def(
        "offsets.retention.check.interval.ms",
        Long,
        Some("600000"),
        1,
        "How often expired offsets are looked for.",
    ),
    def(
        "offset.metadata.max.bytes",
        Int,
        Some("4096"),
        0,
        "Longest metadata string an offset commit may carry.",
    ),
    def(
        "group.consumer.session.timeout.ms",
        Int,
        Some("45000"),
        1,
        "Session timeout of consumer-protocol (KIP-848) group members.",
    ),
    def(
        "group.consumer.heartbeat.interval.ms",
        Int,
        Some("5000"),
        1,
        "Heartbeat interval consumer-protocol members are told to use.",
    ),
    def(
        "group.consumer.max.size",
        Int,
        Some("2147483647"),
        1,
        "Most members a consumer-protocol group may have.",
    ),
    super::ConfigDef {
        name: "group.consumer.assignors",
        kind: List,
        default: Some("uniform,range"),
        min: 0,
        one_of: &["uniform", "range"],
        doc: "Server-side assignors of consumer-protocol groups; the first is the default.",
    },
    super::ConfigDef {
        name: "group.coordinator.rebalance.protocols",
        kind: List,
        default: Some("classic,consumer"),
        min: 0,
        one_of: &["classic", "consumer"],
        doc: "Rebalance protocols the coordinator accepts.",
    },
];

impl BrokerConfig {
    pub(super) fn int(&self, name: &str) -> i32 {
        i32::try_from(self.long(name)).unwrap_or(i32::MAX)
    }

    /// `group.initial.rebalance.delay.ms`.
    #[must_use]
    pub fn group_initial_rebalance_delay_ms(&self) -> i32 {
        self.int("group.initial.rebalance.delay.ms")
    }

    /// `group.min.session.timeout.ms`.
    #[must_use]
    pub fn group_min_session_timeout_ms(&self) -> i32 {
        self.int("group.min.session.timeout.ms")
    }

    /// `group.max.session.timeout.ms`.
    #[must_use]
    pub fn group_max_session_timeout_ms(&self) -> i32 {
        self.int("group.max.session.timeout.ms")
    }

    /// `group.max.size`.
    #[must_use]
    pub fn group_max_size(&self) -> usize {
        usize::try_from(self.long("group.max.size")).unwrap_or(usize::MAX)
    }

    /// `offsets.topic.num.partitions`.
    #[must_use]
    pub fn offsets_topic_num_partitions(&self) -> i32 {
        self.int("offsets.topic.num.partitions")
    }

    /// `offsets.topic.segment.bytes`.
    #[must_use]
    pub fn offsets_topic_segment_bytes(&self) -> i32 {
        self.int("offsets.topic.segment.bytes")
    }

    /// `offsets.retention.minutes` in milliseconds.
    #[must_use]
    pub fn offsets_retention_ms(&self) -> i64 {
        self.long("offsets.retention.minutes")
            .saturating_mul(60_000)
    }

    /// `offsets.retention.check.interval.ms`.
    #[must_use]
    pub fn offsets_retention_check_interval_ms(&self) -> u64 {
        u64::try_from(self.long("offsets.retention.check.interval.ms")).unwrap_or(600_000)
    }

    /// `offset.metadata.max.bytes`.
    #[must_use]
    pub fn offset_metadata_max_bytes(&self) -> usize {
        usize::try_from(self.long("offset.metadata.max.bytes")).unwrap_or(4096)
    }

    /// `group.consumer.session.timeout.ms`.
    #[must_use]
    pub fn group_consumer_session_timeout_ms(&self) -> i32 {
        self.int("group.consumer.session.timeout.ms")
    }

    /// `group.consumer.heartbeat.interval.ms`.
    #[must_use]
    pub fn group_consumer_heartbeat_interval_ms(&self) -> i32 {
        self.int("group.consumer.heartbeat.interval.ms")
    }

    /// `group.consumer.max.size`.
    #[must_use]
    pub fn group_consumer_max_size(&self) -> usize {
        usize::try_from(self.long("group.consumer.max.size")).unwrap_or(usize::MAX)
    }

    /// `group.consumer.assignors`, in order (the first is the default).
    #[must_use]
    pub fn group_consumer_assignors(&self) -> Vec<String> {
        self.list("group.consumer.assignors")
    }

    /// Whether `group.coordinator.rebalance.protocols` lists `protocol`.
    #[must_use]
    pub fn group_protocol_enabled(&self, protocol: &str) -> bool {
        self.list("group.coordinator.rebalance.protocols")
            .iter()
            .any(|p| p == protocol)
    }

    fn list(&self, name: &str) -> Vec<String> {
        self.string(name)
            .map(|v| {
                v.split(',')
                    .filter(|s| !s.is_empty())
                    .map(str::to_owned)
                    .collect()
            })
            .unwrap_or_default()
    }
}
