//! The transaction coordinator's broker configs (Kafka's names and defaults) and accessors.

use super::ConfigType::Int;
use super::{BrokerConfig, ConfigDef, def};

/// Transaction coordinator configs.
pub(super) static TRANSACTION_CONFIGS: &[ConfigDef] = &[
    def(
        "transaction.state.log.num.partitions",
        Int,
        Some("50"),
        1,
        "Partitions of __transaction_state (fixed once the topic exists).",
    ),
    def(
        "transaction.state.log.segment.bytes",
        Int,
        Some("104857600"),
        14,
        "segment.bytes of __transaction_state, small so that compaction can run.",
    ),
    def(
        "transaction.max.timeout.ms",
        Int,
        Some("900000"),
        1,
        "Largest transaction.timeout.ms a producer may ask for.",
    ),
    def(
        "transaction.abort.timed.out.transaction.cleanup.interval.ms",
        Int,
        Some("10000"),
        1,
        "How often transactions past their timeout are looked for and aborted.",
    ),
    def(
        "transactional.id.expiration.ms",
        Int,
        Some("604800000"),
        1,
        "How long a transactional id without a transaction is remembered.",
    ),
    def(
        "transaction.remove.expired.transaction.cleanup.interval.ms",
        Int,
        Some("3600000"),
        1,
        "How often expired transactional ids are looked for.",
    ),
];

impl BrokerConfig {
    /// `transaction.state.log.num.partitions`.
    #[must_use]
    pub fn transaction_state_log_num_partitions(&self) -> i32 {
        self.int("transaction.state.log.num.partitions")
    }

    /// `transaction.state.log.segment.bytes`.
    #[must_use]
    pub fn transaction_state_log_segment_bytes(&self) -> i32 {
        self.int("transaction.state.log.segment.bytes")
    }

    /// `transaction.max.timeout.ms`.
    #[must_use]
    pub fn transaction_max_timeout_ms(&self) -> i32 {
        self.int("transaction.max.timeout.ms")
    }

    /// `transaction.abort.timed.out.transaction.cleanup.interval.ms`.
    #[must_use]
    pub fn transaction_abort_check_interval_ms(&self) -> u64 {
        u64::try_from(self.long("transaction.abort.timed.out.transaction.cleanup.interval.ms"))
            .unwrap_or(10_000)
    }

    /// `transactional.id.expiration.ms`.
    #[must_use]
    pub fn transactional_id_expiration_ms(&self) -> i64 {
        self.long("transactional.id.expiration.ms")
    }

    /// `transaction.remove.expired.transaction.cleanup.interval.ms`.
    #[must_use]
    pub fn transactional_id_expiration_check_interval_ms(&self) -> u64 {
        u64::try_from(self.long("transaction.remove.expired.transaction.cleanup.interval.ms"))
            .unwrap_or(3_600_000)
    }
}
