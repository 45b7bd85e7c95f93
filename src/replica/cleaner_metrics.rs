//! Log cleaner metrics: bytes read and written per log, pass duration, and each cleaned log's
//! dirty ratio before its pass (Kafka's LogCleaner and LogCleanerManager metrics).

use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;
use std::sync::atomic::AtomicU64;

type Labels = Vec<(&'static str, String)>;

/// The cleaner's metrics; clones share the same values.
#[derive(Debug, Clone)]
pub struct CleanerMetrics {
    bytes_read: Family<Labels, Counter>,
    bytes_written: Family<Labels, Counter>,
    dirty_ratio: Family<Labels, Gauge<f64, AtomicU64>>,
    pass_seconds: Histogram,
}

impl CleanerMetrics {
    /// Registers the metrics under `cleaner_` in `registry`.
    pub fn register(registry: &mut Registry) -> CleanerMetrics {
        let metrics = CleanerMetrics {
            bytes_read: Family::default(),
            bytes_written: Family::default(),
            dirty_ratio: Family::default(),
            // 1 ms to ~65 s.
            pass_seconds: Histogram::new(exponential_buckets(0.001, 2.0, 17)),
        };
        let cleaner = registry.sub_registry_with_prefix("cleaner");
        cleaner.register(
            "bytes_read",
            "Bytes the cleaner read, by log",
            metrics.bytes_read.clone(),
        );
        cleaner.register(
            "bytes_written",
            "Bytes the cleaner wrote to cleaned segments, by log",
            metrics.bytes_written.clone(),
        );
        cleaner.register(
            "dirty_ratio",
            "Dirty ratio of a log before its last cleaner pass",
            metrics.dirty_ratio.clone(),
        );
        cleaner.register(
            "pass_seconds",
            "Duration of cleaner passes",
            metrics.pass_seconds.clone(),
        );
        metrics
    }

    /// Records one pass over `topic`/`partition`.
    pub fn record_pass(
        &self,
        topic: &str,
        partition: i32,
        stats: &kairos_storage::CleanerStats,
        seconds: f64,
    ) {
        let labels = vec![
            ("topic", topic.to_owned()),
            ("partition", partition.to_string()),
        ];
        let _ = self
            .bytes_read
            .get_or_create(&labels)
            .inc_by(stats.bytes_read);
        let _ = self
            .bytes_written
            .get_or_create(&labels)
            .inc_by(stats.bytes_written);
        let _ = self
            .dirty_ratio
            .get_or_create(&labels)
            .set(stats.dirty_ratio);
        self.pass_seconds.observe(seconds);
    }
}
