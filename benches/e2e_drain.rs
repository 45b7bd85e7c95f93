//! Drain throughput of the due index: N entities all due at one instant, fired by the `kairos`
//! binary with and without a `temporal.patch`, beside the raw disk write speed measured in the
//! same run. One command:
//!
//! ```sh
//! cargo bench --bench e2e_drain   # KAIROS_BENCH_ENTITIES=4000000; KAIROS_BENCH_PARTITIONS=4
//!                                 # KAIROS_BENCH_DUE_PERMILLE=5 (0.5 % due; default all)
//! ```
//!
//! How: the broker runs on a manual clock (`--manual-clock-file`). Two topics get N entities of
//! about 300 B each (`unpatched`, due at T+1 h, and `patched`, due at T+2 h, with `status:
//! inactive` as the patch). Once both are indexed the clock jumps to each instant in turn, and
//! the drain time is from the jump until the broker's `fires` counter has grown by N (polled
//! every 10 ms from `/metrics`). The figures are the whole fire path: reading each entity's
//! latest version, building and appending the fires, recording the fired state in
//! `__due_state`, and indexing the fires themselves (they are versions like any other).
//!
//! Beside each drain, and for 2 s before them as the reference, a producer writes one record
//! at a time to a plain topic and its acknowledgement latency is reported: the drain must not
//! starve foreground traffic.
//!
//! `KAIROS_BENCH_OVERRIDES="name=value ..."` passes broker configs (e.g.
//! `kairos.acks.all.fsync=false`, to see what the fsyncs cost). With `KAIROS_BENCH_PROFILE_WAIT_S=S` the bench prints the broker's pid and waits S seconds
//! before the produce phase (the index on) and before each drain, time to attach a profiler.

#[path = "e2e/due_workload.rs"]
mod e2e_due_workload;
#[path = "e2e/support.rs"]
mod e2e_support;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use e2e_due_workload::{VALUE_BYTES, metric, produce, wait_for_metric};
use e2e_support::{
    Broker, disk_mb_s, env_usize, free_port, http_get, mb_s, override_args, percentile,
};
use rdkafka::ClientConfig;
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::producer::{FutureProducer, FutureRecord};

const HOUR_MS: i64 = 3_600_000;
const YEAR_MS: i64 = 365 * 24 * HOUR_MS;

async fn create_topics(bootstrap: &str, partitions: i32) {
    let admin: AdminClient<DefaultClientContext> = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .create()
        .expect("admin");
    let unpatched = NewTopic::new("unpatched", partitions, TopicReplication::Fixed(1))
        .set("temporal.fields", "/expiration_date");
    let patched = NewTopic::new("patched", partitions, TopicReplication::Fixed(1))
        .set("temporal.fields", "/expiration_date")
        .set(
            "temporal.patch",
            r#"{"/expiration_date":{"status":"inactive"}}"#,
        );
    let foreground = NewTopic::new("foreground", 1, TopicReplication::Fixed(1));
    for result in admin
        .create_topics([&unpatched, &patched, &foreground], &AdminOptions::new())
        .await
        .expect("create topics")
    {
        result.expect("topic created");
    }
}

/// Moves the broker's manual clock (a rename, so it never reads a partial file).
fn set_clock(path: &std::path::Path, now_ms: i64) {
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, now_ms.to_string()).expect("write clock");
    std::fs::rename(&tmp, path).expect("move clock");
}

/// Foreground traffic beside a drain: one 300 B record at a time into the plain topic
/// `foreground` (acks=1), every 2 ms until `stop`; the acknowledgement latency of each.
fn spawn_probe(bootstrap: &str, stop: Arc<AtomicBool>) -> tokio::task::JoinHandle<Vec<Duration>> {
    let producer: FutureProducer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("acks", "1")
        .set("linger.ms", "0")
        .create()
        .expect("producer");
    tokio::spawn(async move {
        let payload = vec![b'x'; VALUE_BYTES];
        let mut latencies = Vec::new();
        while !stop.load(Ordering::Relaxed) {
            let sent = Instant::now();
            let record = FutureRecord::to("foreground").key("k").payload(&payload);
            if producer.send(record, Duration::from_secs(30)).await.is_ok() {
                latencies.push(sent.elapsed());
            }
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        latencies
    })
}

/// Stops a probe and formats its latencies.
async fn probe_report(probe: tokio::task::JoinHandle<Vec<Duration>>, stop: &AtomicBool) -> String {
    stop.store(true, Ordering::Relaxed);
    let mut latencies = probe.await.expect("probe");
    latencies.sort_unstable();
    format!(
        "{} produces, ack p50 {:.2} ms p99 {:.2} ms",
        latencies.len(),
        percentile(&latencies, 0.50).as_secs_f64() * 1e3,
        percentile(&latencies, 0.99).as_secs_f64() * 1e3
    )
}

/// Time until the `fires` counter reaches `target`.
fn wait_for_fires(metrics: &str, target: f64) -> Duration {
    let started = Instant::now();
    loop {
        if metric(&http_get(metrics, "/metrics"), "due_fires_total").is_some_and(|v| v >= target) {
            return started.elapsed();
        }
        assert!(
            started.elapsed() < Duration::from_secs(600),
            "the drain did not finish in 10 min"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
}

#[tokio::main]
async fn main() {
    let n = env_usize("KAIROS_BENCH_ENTITIES", 4_000_000);
    let partitions = i32::try_from(env_usize("KAIROS_BENCH_PARTITIONS", 4)).unwrap_or(4);
    let profile_wait = Duration::from_secs(env_usize("KAIROS_BENCH_PROFILE_WAIT_S", 0) as u64);
    let dir = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).expect("tempdir");
    let clock = dir.path().join("clock");
    let t0 = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(0));
    set_clock(&clock, t0);
    let data = dir.path().join("data");
    let metrics = format!("127.0.0.1:{}", free_port());
    let clock_arg = clock.to_string_lossy().into_owned();
    let mut args = vec![
        "--metrics-listener".to_owned(),
        metrics.clone(),
        "--manual-clock-file".to_owned(),
        clock_arg,
    ];
    args.extend(override_args());
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let broker = Broker::start(&data, &args);
    let bootstrap = broker.bootstrap.clone();
    let bytes = n * VALUE_BYTES;
    let disk = disk_mb_s(dir.path(), bytes.min(1 << 30));
    create_topics(&bootstrap, partitions).await;
    let instants = [("unpatched", t0 + HOUR_MS), ("patched", t0 + 2 * HOUR_MS)];
    // KAIROS_BENCH_DUE_PERMILLE: the share of the entities due at the instant (default all),
    // picked by a multiplicative scatter so that it is spread over every batch.
    let permille = env_usize("KAIROS_BENCH_DUE_PERMILLE", 1000).min(1000);
    let is_due = |i: usize| i.wrapping_mul(2_654_435_761) % 1000 < permille;
    let due_count = (0..n).filter(|&i| is_due(i)).count();
    if !profile_wait.is_zero() {
        println!(
            "profile    broker pid {}; producing in {profile_wait:?}",
            broker.pid()
        );
        std::thread::sleep(profile_wait);
    }
    for (topic, due) in instants {
        // The due share is scattered over the partitions' logs, the rest falls due in a year.
        let _ = produce(&bootstrap, topic, n, |i| {
            if is_due(i) { due } else { due + YEAR_MS }
        })
        .await;
    }
    let total = 2.0 * n as f64;
    wait_for_metric(&metrics, "due_entities", total, Duration::from_secs(600))
        .expect("every entity indexed");

    println!(
        "kairos drain: {n} entities of {VALUE_BYTES} B due at one instant, {partitions} partitions"
    );
    println!("reference  file write+fsync       {disk:>9.1} MB/s");
    let stop = Arc::new(AtomicBool::new(false));
    let probe = spawn_probe(&bootstrap, Arc::clone(&stop));
    tokio::time::sleep(Duration::from_secs(2)).await;
    println!("foreground idle: {}", probe_report(probe, &stop).await);
    let mut fired = 0.0;
    for (topic, due) in instants {
        if !profile_wait.is_zero() {
            println!(
                "profile    broker pid {}; draining {topic} in {profile_wait:?}",
                broker.pid()
            );
            std::thread::sleep(profile_wait);
        }
        fired += due_count as f64;
        let cpu = broker.cpu_time();
        let stop = Arc::new(AtomicBool::new(false));
        let probe = spawn_probe(&bootstrap, Arc::clone(&stop));
        set_clock(&clock, due);
        let drain = {
            let metrics = metrics.clone();
            tokio::task::spawn_blocking(move || wait_for_fires(&metrics, fired))
                .await
                .expect("drain")
        };
        let cpu = broker.cpu_time().saturating_sub(cpu);
        let foreground = probe_report(probe, &stop).await;
        println!(
            "drain      {topic:<10} {due_count:>9} fires in {:>6.2} s  {:>9.0} fires/s  {:>6.1} MB/s of source values  broker CPU {:.2} s ({:.2} cores, {:.1} us/fire)",
            drain.as_secs_f64(),
            due_count as f64 / drain.as_secs_f64(),
            mb_s(due_count * VALUE_BYTES, drain),
            cpu.as_secs_f64(),
            cpu.as_secs_f64() / drain.as_secs_f64(),
            cpu.as_secs_f64() * 1e6 / due_count as f64
        );
        println!("foreground during the {topic} drain: {foreground}");
    }
    broker.stop();
}
