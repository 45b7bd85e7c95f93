//! Due index metrics (DESIGN §5.10): entities, backlog (due but not yet fired), the age of the
//! oldest backlog entry, fires, malformed fields, null keys, wake-up lateness, and fires held
//! back (a missing target partition, failed appends).

use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

/// The due index's metrics; clones share the same values.
#[derive(Debug, Clone)]
pub struct DueMetrics {
    /// Fires appended.
    pub fires: Counter,
    /// Entities indexed (pending or remembered as fired).
    pub entities: Gauge,
    /// Entries due at or before now and not fired yet.
    pub backlog: Gauge,
    /// Age of the oldest backlog entry, ms (0 without a backlog).
    pub oldest_backlog_age_ms: Gauge,
    /// Malformed temporal fields seen (since start).
    pub malformed: Gauge,
    /// Records with null keys seen in temporal topics (since start).
    pub null_keys: Gauge,
    /// Fire time minus due time, seconds.
    pub lateness_seconds: Histogram,
    /// Partitions with due fires that cannot be appended now because their target partition
    /// does not exist (target topic missing, or with fewer partitions); retried with backoff.
    pub blocked_partitions: Gauge,
    /// Pulse steps whose fires could not be appended (target missing, storage error, record
    /// too large); each is retried with backoff, never dropped.
    pub append_failures: Counter,
}

impl DueMetrics {
    /// Registers the metrics under `due_` in `registry`.
    pub fn register(registry: &mut Registry) -> DueMetrics {
        let metrics = DueMetrics {
            fires: Counter::default(),
            entities: Gauge::default(),
            backlog: Gauge::default(),
            oldest_backlog_age_ms: Gauge::default(),
            malformed: Gauge::default(),
            null_keys: Gauge::default(),
            // 0.1 ms to ~3.3 s.
            lateness_seconds: Histogram::new(exponential_buckets(0.000_1, 2.0, 16)),
            blocked_partitions: Gauge::default(),
            append_failures: Counter::default(),
        };
        let due = registry.sub_registry_with_prefix("due");
        due.register("fires", "Due fires appended", metrics.fires.clone());
        due.register(
            "entities",
            "Entities in the due index",
            metrics.entities.clone(),
        );
        due.register(
            "backlog",
            "Entries due and not yet fired",
            metrics.backlog.clone(),
        );
        due.register(
            "oldest_backlog_age_ms",
            "Age of the oldest due entry not yet fired",
            metrics.oldest_backlog_age_ms.clone(),
        );
        due.register(
            "malformed",
            "Malformed temporal fields seen",
            metrics.malformed.clone(),
        );
        due.register(
            "null_keys",
            "Null keys seen in temporal topics",
            metrics.null_keys.clone(),
        );
        due.register(
            "lateness_seconds",
            "Fire time minus due time",
            metrics.lateness_seconds.clone(),
        );
        due.register(
            "blocked_partitions",
            "Partitions whose due fires wait for their target partition to exist",
            metrics.blocked_partitions.clone(),
        );
        due.register(
            "append_failures",
            "Pulse steps whose fires could not be appended and are retried",
            metrics.append_failures.clone(),
        );
        metrics
    }
}
