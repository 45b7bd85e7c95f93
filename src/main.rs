//! The `kairos` binary: parse configuration, start the broker, run until SIGINT/SIGTERM, shut
//! down cleanly.
//!
//! Configuration, lowest precedence first: Kafka's defaults, an optional TOML file
//! (`--config`), `KAIROS_<NAME>` environment variables (`KAIROS_NUM_PARTITIONS=3`), and flags
//! (`--data-dir`, `--listener`, `--override num.partitions=3`). With no arguments it serves on
//! 127.0.0.1:9092 with its data in `./data`.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;
use kairos::config::all_configs;
use kairos::{Broker, BrokerConfig};

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
    match runtime.block_on(run(config)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("kairos: {error}");
            ExitCode::FAILURE
        }
    }
}

async fn run(config: BrokerConfig) -> Result<(), kairos::StartError> {
    let broker = Broker::builder().broker_config(config).start().await?;
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
