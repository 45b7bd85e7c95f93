//! Broker metrics in Prometheus text format (served by `server::admin_http` at `/metrics`).
//!
//! Request counters and latency are recorded on the request path; per-partition gauges (log end
//! offset, size) are refreshed from the log manager at scrape time, so the append path pays
//! nothing for them.

use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

type Labels = Vec<(&'static str, String)>;

fn latency_histogram() -> Histogram {
    // 50 µs .. ~1.6 s in 16 doublings: covers a page-cache append and a long-poll fetch.
    Histogram::new(exponential_buckets(0.000_05, 2.0, 16))
}

/// All broker metrics.
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    requests: Family<Labels, Counter>,
    request_seconds: Family<Labels, Histogram, fn() -> Histogram>,
    bytes_in: Counter,
    bytes_out: Counter,
    connections: Gauge,
    connections_accepted: Counter,
    log_end_offset: Family<Labels, Gauge>,
    log_size_bytes: Family<Labels, Gauge>,
    /// The due index's metrics, shared with its service.
    pub due: crate::temporal::metrics::DueMetrics,
    /// The log cleaner's metrics.
    pub cleaner: crate::replica::cleaner_metrics::CleanerMetrics,
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics::new()
    }
}

impl Metrics {
    /// Registers every metric.
    #[must_use]
    pub fn new() -> Metrics {
        let mut registry = Registry::with_prefix("kairos");
        let requests = Family::<Labels, Counter>::default();
        let request_seconds = Family::<Labels, Histogram, fn() -> Histogram>::new_with_constructor(
            latency_histogram as fn() -> Histogram,
        );
        let bytes_in = Counter::default();
        let bytes_out = Counter::default();
        let connections = Gauge::default();
        let connections_accepted = Counter::default();
        let log_end_offset = Family::<Labels, Gauge>::default();
        let log_size_bytes = Family::<Labels, Gauge>::default();
        registry.register("requests", "Requests handled, by API", requests.clone());
        registry.register(
            "request_duration_seconds",
            "Time from decoding a request to writing its response, by API",
            request_seconds.clone(),
        );
        registry.register("network_bytes_in", "Request bytes read", bytes_in.clone());
        registry.register(
            "network_bytes_out",
            "Response bytes written",
            bytes_out.clone(),
        );
        registry.register(
            "connections",
            "Open client connections",
            connections.clone(),
        );
        registry.register(
            "connections_accepted",
            "Client connections accepted",
            connections_accepted.clone(),
        );
        registry.register(
            "log_end_offset",
            "Log end offset per partition",
            log_end_offset.clone(),
        );
        registry.register(
            "log_size_bytes",
            "Log size per partition",
            log_size_bytes.clone(),
        );
        let due = crate::temporal::metrics::DueMetrics::register(&mut registry);
        let cleaner = crate::replica::cleaner_metrics::CleanerMetrics::register(&mut registry);
        Metrics {
            due,
            cleaner,
            registry,
            requests,
            request_seconds,
            bytes_in,
            bytes_out,
            connections,
            connections_accepted,
            log_end_offset,
            log_size_bytes,
        }
    }

    /// One request of `api` finished after `seconds`.
    pub fn record_request(&self, api: &'static str, seconds: f64) {
        let labels = vec![("api", api.to_owned())];
        let _ = self.requests.get_or_create(&labels).inc();
        self.request_seconds.get_or_create(&labels).observe(seconds);
    }

    /// Bytes read from clients.
    pub fn add_bytes_in(&self, bytes: usize) {
        let _ = self
            .bytes_in
            .inc_by(u64::try_from(bytes).unwrap_or(u64::MAX));
    }

    /// Bytes written to clients.
    pub fn add_bytes_out(&self, bytes: usize) {
        let _ = self
            .bytes_out
            .inc_by(u64::try_from(bytes).unwrap_or(u64::MAX));
    }

    /// A connection opened.
    pub fn connection_opened(&self) {
        let _ = self.connections.inc();
        let _ = self.connections_accepted.inc();
    }

    /// A connection closed.
    pub fn connection_closed(&self) {
        let _ = self.connections.dec();
    }

    /// Renders the text exposition, after setting the per-partition gauges from `partitions`
    /// (`(topic, partition, log end offset, size in bytes)`).
    #[must_use]
    pub fn render(&self, partitions: &[(String, i32, i64, u64)]) -> String {
        self.log_end_offset.clear();
        self.log_size_bytes.clear();
        for (topic, partition, leo, size) in partitions {
            let labels = vec![
                ("topic", topic.clone()),
                ("partition", partition.to_string()),
            ];
            let _ = self.log_end_offset.get_or_create(&labels).set(*leo);
            let _ = self
                .log_size_bytes
                .get_or_create(&labels)
                .set(i64::try_from(*size).unwrap_or(i64::MAX));
        }
        let mut text = String::new();
        // Writing into a String cannot fail.
        let _ = encode(&mut text, &self.registry);
        text
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_requests_and_partitions() {
        let metrics = Metrics::new();
        metrics.record_request("Produce", 0.001);
        metrics.add_bytes_in(10);
        metrics.connection_opened();
        let text = metrics.render(&[("t".into(), 0, 42, 1000)]);
        assert!(
            text.contains("kairos_requests_total{api=\"Produce\"} 1"),
            "{text}"
        );
        assert!(
            text.contains("kairos_log_end_offset{topic=\"t\",partition=\"0\"} 42"),
            "{text}"
        );
        assert!(text.contains("kairos_connections 1"), "{text}");
    }
}
