//! The `kairos` binary: parse configuration, start the broker, run until SIGINT/SIGTERM, shut
//! down cleanly.
//!
//! Configuration, lowest precedence first: Kafka's defaults, an optional TOML file
//! (`--config`), `KAIROS_<NAME>` environment variables (`KAIROS_NUM_PARTITIONS=3`), and flags
//! (`--data-dir`, `--listener`, `--override num.partitions=3`). With no arguments it serves on
//! 127.0.0.1:9092 with its data in `./data`.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use clap::Parser;
use kairos::clock::{Clock, SystemClock};
use kairos::config::all_configs;
use kairos::{Broker, BrokerConfig, ManualClock};

/// A single-node Kafka-compatible broker with a due index.
#[derive(Debug, Parser)]
#[command(version, about)]
struct Cli {
    /// Data directory (Kafka's `log.dirs`). Default: ./data
    #[arg(long, env = "KAIROS_DATA_DIR")]
    data_dir: Option<PathBuf>,
    /// Kafka listener, host:port or PLAINTEXT://host:port. Default: 127.0.0.1:9092
    #[arg(long, env = "KAIROS_LISTENER")]
    listener: Option<String>,
    /// Address advertised to clients in Metadata. Default: the bound address.
    #[arg(long, env = "KAIROS_ADVERTISED_LISTENER")]
    advertised_listener: Option<String>,
    /// Admin HTTP listener serving Prometheus /metrics, host:port. Default: off.
    #[arg(long, env = "KAIROS_METRICS_LISTENER")]
    metrics_listener: Option<String>,
    /// TOML file of broker configs by Kafka name, e.g. `"num.partitions" = 3`.
    #[arg(long, short = 'c', env = "KAIROS_CONFIG")]
    config: Option<PathBuf>,
    /// A broker config by Kafka name, NAME=VALUE; repeatable.
    #[arg(long = "override", short = 'o', value_name = "NAME=VALUE")]
    overrides: Vec<String>,
    /// For tests of the binary only: the broker's clock is a manual clock whose time (decimal
    /// epoch ms) is read from this file at start and again whenever it changes (polled every
    /// 5 ms; replace the file by a rename so no partial content is read). Crash tests drive
    /// due times across kill -9 and restarts with it. Hidden, and without it the broker uses
    /// the system clock.
    #[arg(long, hide = true, value_name = "PATH")]
    manual_clock_file: Option<PathBuf>,
}

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .init();
    let cli = Cli::parse();
    let config = match build_config(&cli) {
        Ok(config) => config,
        Err(message) => {
            eprintln!("kairos: {message}");
            return ExitCode::from(2);
        }
    };
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("kairos: cannot start the runtime: {error}");
            return ExitCode::FAILURE;
        }
    };
    let clock: Arc<dyn Clock> = match &cli.manual_clock_file {
        Some(path) => match follow_clock_file(path.clone()) {
            Ok(clock) => Arc::new(clock),
            Err(message) => {
                eprintln!("kairos: {message}");
                return ExitCode::from(2);
            }
        },
        None => Arc::new(SystemClock),
    };
    match runtime.block_on(run(config, clock)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("kairos: {error}");
            ExitCode::FAILURE
        }
    }
}

async fn run(config: BrokerConfig, clock: Arc<dyn Clock>) -> Result<(), kairos::StartError> {
    let broker = Broker::builder()
        .broker_config(config)
        .clock(clock)
        .start()
        .await?;
    println!("kairos listening on {}", broker.local_addr());
    wait_for_signal().await;
    tracing::info!("shutting down");
    broker.shutdown().await
}

async fn wait_for_signal() {
    let mut terminate =
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(signal) => signal,
            Err(error) => {
                tracing::warn!(%error, "cannot listen for SIGTERM; only SIGINT stops the broker");
                let _ = tokio::signal::ctrl_c().await;
                return;
            }
        };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = terminate.recv() => {}
    }
}

/// A manual clock set from `path` now and whenever its content changes (see the flag).
fn follow_clock_file(path: PathBuf) -> Result<ManualClock, String> {
    let read =
        |path: &PathBuf| -> Option<i64> { std::fs::read_to_string(path).ok()?.trim().parse().ok() };
    let start = read(&path).ok_or_else(|| format!("{}: expected epoch ms", path.display()))?;
    let clock = ManualClock::new(start);
    let follower = clock.clone();
    let _ = std::thread::Builder::new()
        .name("manual-clock".into())
        .spawn(move || {
            let mut last = start;
            loop {
                std::thread::sleep(std::time::Duration::from_millis(5));
                // A file being rewritten may read empty or partial: keep the last good time.
                if let Some(now) = read(&path).filter(|&now| now != last) {
                    follower.set_ms(now);
                    last = now;
                }
            }
        })
        .map_err(|e| e.to_string())?;
    Ok(clock)
}

fn build_config(cli: &Cli) -> Result<BrokerConfig, String> {
    let mut config = BrokerConfig::default();
    if let Some(path) = &cli.config {
        let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
        let table: toml::Table = text
            .parse()
            .map_err(|e| format!("{}: {e}", path.display()))?;
        let mut flat = Vec::new();
        flatten("", &table, &mut flat);
        for (name, value) in flat {
            config
                .set(&name, &value)
                .map_err(|e| format!("{}: {e}", path.display()))?;
        }
    }
    for def in all_configs() {
        let variable = format!("KAIROS_{}", def.name.replace('.', "_").to_ascii_uppercase());
        if let Ok(value) = std::env::var(&variable) {
            config
                .set(def.name, &value)
                .map_err(|e| format!("{variable}: {e}"))?;
        }
    }
    let flags = [
        (
            "log.dirs",
            cli.data_dir
                .as_ref()
                .map(|p| p.to_string_lossy().into_owned()),
        ),
        ("listeners", cli.listener.clone()),
        ("advertised.listeners", cli.advertised_listener.clone()),
        ("kairos.metrics.listener", cli.metrics_listener.clone()),
    ];
    for (name, value) in flags {
        if let Some(value) = value {
            config.set(name, &value).map_err(|e| e.to_string())?;
        }
    }
    for assignment in &cli.overrides {
        let (name, value) = assignment
            .split_once('=')
            .ok_or_else(|| format!("--override {assignment:?}: expected NAME=VALUE"))?;
        config.set(name.trim(), value).map_err(|e| e.to_string())?;
    }
    Ok(config)
}

/// TOML dotted keys (`num.partitions = 3`) are nested tables; Kafka names are flat.
fn flatten(prefix: &str, table: &toml::Table, out: &mut Vec<(String, String)>) {
    for (key, value) in table {
        let name = if prefix.is_empty() {
            key.clone()
        } else {
            format!("{prefix}.{key}")
        };
        match value {
            toml::Value::Table(inner) => flatten(&name, inner, out),
            toml::Value::String(s) => out.push((name, s.clone())),
            other => out.push((name, other.to_string())),
        }
    }
}
