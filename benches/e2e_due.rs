//! The join path end to end: the `kairos` binary indexes millions of entities and fires those
//! that come due, measured with the raw disk reference in the same run. One command:
//!
//! ```sh
//! cargo bench --bench e2e_due   # KAIROS_BENCH_ENTITIES=8000000; KAIROS_BENCH_PARTITIONS=4
//!                               # KAIROS_BENCH_OVERRIDES="name=value ..." (broker configs)
//! ```
//!
//! Workload (DESIGN §5): N keyed JSON entities of about 300 B, one `expiration_date` each. The
//! fractions f = 0.5 %, 1 %, 5 %, 10 % and 50 % of them fall due at five instants a few seconds
//! apart (each instant drains before the next); the remaining 33.5 % are spread over a year.
//! The topic uses `message.timestamp.type=LogAppendTime`, so a fire's timestamp is when the
//! broker appended it and `timestamp - kairos.due.at` is its wake-up lateness. Fires carry a
//! `temporal.patch` (`status: inactive`).
//!
//! Reports:
//! - produce throughput of the same N records into a plain topic (index off) and into the
//!   temporal topic (index on), and the disk reference;
//! - resident bytes per entity: the broker's RSS growth while indexing, divided by N;
//! - per instant: fires, lateness p50/p99, drain time (last fire's append time − due time) and
//!   fires/s;
//! - index-ready time after a clean restart (from the snapshot): process start until the index
//!   holds every entity again.

#[path = "e2e/due_workload.rs"]
mod e2e_due_workload;
#[path = "e2e/support.rs"]
mod e2e_support;

use std::collections::BTreeMap;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use e2e_due_workload::{VALUE_BYTES, produce, wait_for_metric};
use e2e_support::{Broker, disk_mb_s, env_usize, free_port, mb_s, override_args, percentile};
use rdkafka::ClientConfig;
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::{Headers, Message};
use rdkafka::{Offset, TopicPartitionList};

const FRACTIONS: [f64; 5] = [0.005, 0.01, 0.05, 0.1, 0.5];

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

/// Which instant entity `i` falls due at (`Some(index into FRACTIONS)`), or `None` for the
/// year-spread rest. A multiplicative scatter spreads each fraction over all partitions.
fn instant_of(i: usize, n: usize) -> Option<usize> {
    let position = (i.wrapping_mul(2_654_435_761) % n) as f64 / n as f64;
    let mut bound = 0.0;
    for (index, fraction) in FRACTIONS.iter().enumerate() {
        bound += fraction;
        if position < bound {
            return Some(index);
        }
    }
    None
}

async fn create_topics(bootstrap: &str, partitions: i32) {
    let admin: AdminClient<DefaultClientContext> = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .create()
        .expect("admin");
    let plain = NewTopic::new("plain", partitions, TopicReplication::Fixed(1))
        .set("message.timestamp.type", "LogAppendTime");
    let prices = NewTopic::new("prices", partitions, TopicReplication::Fixed(1))
        .set("message.timestamp.type", "LogAppendTime")
        .set("temporal.fields", "/expiration_date")
        .set(
            "temporal.patch",
            r#"{"/expiration_date":{"status":"inactive"}}"#,
        );
    for result in admin
        .create_topics([&plain, &prices], &AdminOptions::new())
        .await
        .expect("create topics")
    {
        result.expect("topic created");
    }
}

/// Reads every fire after `starts` (the end offsets before the instants): `(due_at,
/// lateness_ms)` per fire.
fn read_fires(bootstrap: &str, starts: &[(i32, i64)], expected: usize) -> Vec<(i64, i64)> {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("group.id", "e2e-due")
        .set("enable.auto.commit", "false")
        .set("fetch.wait.max.ms", "100")
        .create()
        .expect("consumer");
    let mut list = TopicPartitionList::new();
    for (partition, offset) in starts {
        list.add_partition_offset("prices", *partition, Offset::Offset(*offset))
            .expect("partition");
    }
    consumer.assign(&list).expect("assign");
    let mut fires = Vec::with_capacity(expected);
    let deadline = Instant::now() + Duration::from_secs(600);
    while fires.len() < expected && Instant::now() < deadline {
        let Some(Ok(message)) = consumer.poll(Duration::from_millis(200)) else {
            continue;
        };
        let due_at = message.headers().and_then(|headers| {
            headers
                .iter()
                .find(|h| h.key == "kairos.due.at")
                .and_then(|h| h.value)
                .and_then(|v| std::str::from_utf8(v).ok()?.parse::<i64>().ok())
        });
        if let (Some(due_at), Some(appended)) = (due_at, message.timestamp().to_millis()) {
            fires.push((due_at, appended - due_at));
        }
    }
    fires
}

#[tokio::main]
async fn main() {
    let n = env_usize("KAIROS_BENCH_ENTITIES", 4_000_000);
    let partitions = i32::try_from(env_usize("KAIROS_BENCH_PARTITIONS", 4)).unwrap_or(4);
    let dir = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).expect("tempdir");
    let metrics = format!("127.0.0.1:{}", free_port());
    let mut args = vec!["--metrics-listener".to_owned(), metrics.clone()];
    args.extend(override_args());
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let broker = Broker::start(dir.path(), &args);
    let bootstrap = broker.bootstrap.clone();
    let bytes = n * VALUE_BYTES;
    let disk = disk_mb_s(dir.path(), bytes.min(1 << 30));
    create_topics(&bootstrap, partitions).await;

    let off = produce(&bootstrap, "plain", n, |_| 0).await;
    let rss_before = broker.rss_kib();

    // The instants start after the indexed produce can have finished (estimated from the
    // plain one), a few seconds apart so that each drains before the next.
    let lead_ms = i64::try_from(off.as_millis()).unwrap_or(0) * 2 + 10_000;
    let gap_ms = 5_000 + i64::try_from(n / 200).unwrap_or(0);
    let first = now_ms() + lead_ms;
    let instants: Vec<i64> = (0..FRACTIONS.len())
        .map(|j| first + gap_ms * i64::try_from(j).unwrap_or(0))
        .collect();
    let year_ms = 365 * 24 * 3_600_000_i64;
    let far = |i: usize| first + year_ms / 4 + (i as i64 * 7_919) % year_ms;
    let on = produce(&bootstrap, "prices", n, |i| {
        instant_of(i, n).map_or_else(|| far(i), |j| instants[j])
    })
    .await;
    let indexed = wait_for_metric(&metrics, "due_entities", n as f64, Duration::from_secs(300));
    let rss_after = broker.rss_kib();
    if now_ms() >= first {
        println!(
            "warning: the first instant passed before indexing finished; lateness is inflated"
        );
    }
    let mut expected = BTreeMap::new();
    for i in 0..n {
        if let Some(j) = instant_of(i, n) {
            *expected.entry(instants[j]).or_insert(0usize) += 1;
        }
    }
    let total: usize = expected.values().sum();
    let starts: Vec<(i32, i64)> = {
        let consumer: BaseConsumer = ClientConfig::new()
            .set("bootstrap.servers", &bootstrap)
            .create()
            .expect("consumer");
        (0..partitions)
            .map(|p| {
                let (_, high) = consumer
                    .fetch_watermarks("prices", p, Duration::from_secs(10))
                    .expect("watermarks");
                (p, high)
            })
            .collect()
    };
    let fires = {
        let bootstrap = bootstrap.clone();
        tokio::task::spawn_blocking(move || read_fires(&bootstrap, &starts, total))
            .await
            .expect("read fires")
    };

    println!("kairos join path: {n} entities of {VALUE_BYTES} B, {partitions} partitions");
    println!("reference  file write+fsync       {disk:>9.1} MB/s");
    println!(
        "produce    index off              {:>9.1} MB/s {:>10.0} records/s",
        mb_s(bytes, off),
        n as f64 / off.as_secs_f64()
    );
    println!(
        "produce    index on               {:>9.1} MB/s {:>10.0} records/s ({:.0}% of index off); index caught up {:?} after",
        mb_s(bytes, on),
        n as f64 / on.as_secs_f64(),
        100.0 * off.as_secs_f64() / on.as_secs_f64(),
        indexed
    );
    println!(
        "memory     {:.1} B/entity resident (RSS {} KiB -> {} KiB)",
        (rss_after.saturating_sub(rss_before) * 1024) as f64 / n as f64,
        rss_before,
        rss_after
    );
    let mut by_instant: BTreeMap<i64, Vec<i64>> = BTreeMap::new();
    for (due_at, lateness) in &fires {
        by_instant.entry(*due_at).or_default().push(*lateness);
    }
    for (j, instant) in instants.iter().enumerate() {
        let mut lateness = by_instant.remove(instant).unwrap_or_default();
        lateness.sort_unstable();
        let drain_ms = lateness.last().copied().unwrap_or(0).max(1);
        println!(
            "fire       f={:>5.1}%  {:>8} of {:>8} fired  lateness p50 {:>6} ms  p99 {:>6} ms  drain {:>6} ms  {:>10.0} fires/s",
            FRACTIONS[j] * 100.0,
            lateness.len(),
            expected.get(instant).copied().unwrap_or(0),
            percentile(&lateness, 0.50),
            percentile(&lateness, 0.99),
            drain_ms,
            lateness.len() as f64 * 1000.0 / drain_ms as f64
        );
    }
    let unexpected: usize = by_instant.values().map(Vec::len).sum();
    if unexpected > 0 {
        println!("warning: {unexpected} fires at unplanned instants");
    }

    broker.stop();
    let restarted = Instant::now();
    let broker = Broker::start(dir.path(), &args);
    let ready = wait_for_metric(&metrics, "due_entities", n as f64, Duration::from_secs(300))
        .map(|_| restarted.elapsed());
    println!("restart    index ready {ready:?} after process start (from the snapshot)");
    drop(broker);
}
