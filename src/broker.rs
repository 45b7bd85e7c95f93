//! The embedding API: [`Broker::builder`] starts a broker in-process and returns a
//! [`BrokerHandle`] with its bound address and a clean `shutdown`.
//!
//! ```no_run
//! # async fn example() -> Result<(), kairos::StartError> {
//! let broker = kairos::Broker::builder()
//!     .temp_dir()
//!     .listener("127.0.0.1:0")
//!     .start()
//!     .await?;
//! println!("bootstrap.servers={}", broker.bootstrap_servers());
//! broker.shutdown().await?;
//! # Ok(()) }
//! ```

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use kairos_storage::LogManager;
use kairos_storage::fs::StdFs;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::clock::{Clock, SystemClock};
use crate::config::{BrokerConfig, ConfigError};
use crate::controller::Controller;
use crate::coordinator::producer_id::ProducerIdManager;
use crate::metadata::MetadataCache;
use crate::metrics::Metrics;
use crate::replica::ReplicaManager;
use crate::server::{self, Shutdown};
use crate::topic_config;

/// Everything connections share. Owners hold the state; this only wires them together.
#[derive(Debug)]
pub struct BrokerState {
    /// Broker configuration (static for the broker's lifetime).
    pub config: Arc<BrokerConfig>,
    /// The injected clock.
    pub clock: Arc<dyn Clock>,
    /// Topic registry.
    pub metadata: Arc<MetadataCache>,
    /// Partition logs for the request path.
    pub replica_manager: Arc<ReplicaManager>,
    /// Topic metadata changes.
    pub controller: Arc<Controller>,
    /// Producer id allocation.
    pub producer_ids: Arc<ProducerIdManager>,
    /// Metrics registry.
    pub metrics: Arc<Metrics>,
    /// Consumer groups and their committed offsets.
    pub groups: Arc<crate::coordinator::group::GroupCoordinator>,
    /// Transactional ids and their transactions.
    pub transactions: Arc<crate::coordinator::transaction::TransactionCoordinator>,
    /// The due index of temporal topics.
    pub due: Arc<crate::temporal::service::DueService>,
    /// Host clients are told to connect to.
    pub advertised_host: String,
    /// Port clients are told to connect to.
    pub advertised_port: i32,
}

impl BrokerState {
    /// The Prometheus text exposition, with per-partition gauges refreshed now.
    #[must_use]
    pub fn render_metrics(&self) -> String {
        let partitions: Vec<_> = self
            .replica_manager
            .log_manager()
            .logs()
            .into_iter()
            .map(|(tp, log)| {
                (
                    tp.topic,
                    tp.partition,
                    log.log_end_offset(),
                    log.size_bytes(),
                )
            })
            .collect();
        self.metrics.render(&partitions)
    }
}

/// Why a broker could not start or stop cleanly.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// A config name or value was rejected.
    #[error("config: {0}")]
    Config(#[from] ConfigError),
    /// Binding a listener failed.
    #[error("cannot bind {address}: {source}")]
    Bind {
        /// The address.
        address: String,
        /// The OS error.
        source: std::io::Error,
    },
    /// Reading or writing broker metadata failed.
    #[error("metadata: {0}")]
    Metadata(std::io::Error),
    /// The log manager failed (including another process holding the data directory).
    #[error("storage: {0}")]
    Storage(#[from] kairos_storage::Error),
    /// A startup or shutdown task panicked.
    #[error("task failed: {0}")]
    Task(String),
}

/// Entry point of the embedding API.
#[derive(Debug, Clone, Copy)]
pub struct Broker;

impl Broker {
    /// A builder with Kafka's defaults, the data directory from `log.dirs` (`./data`), and the
    /// system clock.
    #[must_use]
    pub fn builder() -> BrokerBuilder {
        BrokerBuilder {
            config: BrokerConfig::default(),
            clock: Arc::new(SystemClock),
            temp_dir: false,
            error: None,
        }
    }
}

/// Configures and starts a broker.
#[derive(Debug)]
pub struct BrokerBuilder {
    config: BrokerConfig,
    clock: Arc<dyn Clock>,
    temp_dir: bool,
    // The first invalid setting; reported by `start`, so the builder chains without `?`.
    error: Option<ConfigError>,
}

impl BrokerBuilder {
    /// Sets a broker config by Kafka name (`num.partitions`, `log.retention.ms`, ...).
    #[must_use]
    pub fn config(mut self, name: &str, value: &str) -> BrokerBuilder {
        if let Err(error) = self.config.set(name, value) {
            self.error.get_or_insert(error);
        }
        self
    }

    /// Replaces the whole broker configuration.
    #[must_use]
    pub fn broker_config(mut self, config: BrokerConfig) -> BrokerBuilder {
        self.config = config;
        self
    }

    /// Stores data in `path`.
    #[must_use]
    pub fn data_dir(self, path: impl AsRef<Path>) -> BrokerBuilder {
        let path = path.as_ref().to_string_lossy().into_owned();
        let mut builder = self.config("log.dirs", &path);
        builder.temp_dir = false;
        builder
    }

    /// Stores data in a fresh temporary directory, removed when the handle is dropped.
    #[must_use]
    pub fn temp_dir(mut self) -> BrokerBuilder {
        self.temp_dir = true;
        self
    }

    /// The address to bind, `host:port`; port 0 picks a free port.
    #[must_use]
    pub fn listener(self, address: &str) -> BrokerBuilder {
        self.config("listeners", address)
    }

    /// The address advertised to clients in Metadata.
    #[must_use]
    pub fn advertised_listener(self, address: &str) -> BrokerBuilder {
        self.config("advertised.listeners", address)
    }

    /// Uses `clock` for every wall-clock reading (a `ManualClock` in tests).
    #[must_use]
    pub fn clock(mut self, clock: Arc<dyn Clock>) -> BrokerBuilder {
        self.clock = clock;
        self
    }

    /// Opens the data directory, recovers the logs, binds and starts serving.
    ///
    /// # Errors
    /// Invalid configs, a data directory that is locked or unreadable, an address in use.
    pub async fn start(mut self) -> Result<BrokerHandle, StartError> {
        if let Some(error) = self.error.take() {
            return Err(error.into());
        }
        let temp = if self.temp_dir {
            let dir = tempfile::Builder::new()
                .prefix("kairos-")
                .tempdir()
                .map_err(StartError::Metadata)?;
            self.config.set("log.dirs", &dir.path().to_string_lossy())?;
            Some(dir)
        } else {
            None
        };
        let config = Arc::new(self.config);
        let data_dir = config.log_dir();
        let address = config.listener();
        let listener = TcpListener::bind(&address)
            .await
            .map_err(|source| StartError::Bind {
                address: address.clone(),
                source,
            })?;
        let local_addr = listener
            .local_addr()
            .map_err(|source| StartError::Bind { address, source })?;
        let metrics_listener = match config.metrics_listener() {
            Some(address) => Some(
                TcpListener::bind(&address)
                    .await
                    .map_err(|source| StartError::Bind { address, source })?,
            ),
            None => None,
        };
        let metrics_addr = metrics_listener.as_ref().and_then(|l| l.local_addr().ok());
        let state = open_state(Arc::clone(&config), self.clock, &data_dir, local_addr).await?;
        let (shutdown_sender, shutdown_receiver) = watch::channel(false);
        let shutdown = Shutdown::new(shutdown_receiver);
        let mut tasks = vec![tokio::spawn(server::run(
            listener,
            Arc::clone(&state),
            shutdown.clone(),
        ))];
        if let Some(metrics_listener) = metrics_listener {
            tasks.push(tokio::spawn(server::admin_http::run(
                metrics_listener,
                Arc::clone(&state),
                shutdown.clone(),
            )));
        }
        tasks.push(tokio::spawn(crate::temporal::pulse_task::run(
            Arc::clone(&state),
            Arc::clone(&state.due),
            shutdown.clone(),
        )));
        tasks.push(tokio::spawn(crate::coordinator::group::timer::run(
            Arc::clone(&state.groups),
            Arc::clone(&state.clock),
            Duration::from_millis(state.config.offsets_retention_check_interval_ms()),
            shutdown.clone(),
        )));
        tasks.push(tokio::spawn(crate::coordinator::transaction::timer::run(
            Arc::clone(&state.transactions),
            Duration::from_millis(state.config.transaction_abort_check_interval_ms()),
            Duration::from_millis(state.config.transactional_id_expiration_check_interval_ms()),
            shutdown.clone(),
        )));
        tasks.push(tokio::spawn(crate::replica::cleaner::run(
            Arc::clone(&state),
            shutdown.clone(),
        )));
        tasks.push(tokio::spawn(background_tasks(Arc::clone(&state), shutdown)));
        tracing::info!(%local_addr, data_dir = %data_dir.display(), cluster_id = state.metadata.cluster_id(), "kairos started");
        Ok(BrokerHandle {
            local_addr,
            metrics_addr,
            data_dir,
            state,
            shutdown_sender,
            tasks,
            _temp: temp,
        })
    }
}

async fn open_state(
    config: Arc<BrokerConfig>,
    clock: Arc<dyn Clock>,
    data_dir: &Path,
    local_addr: SocketAddr,
) -> Result<Arc<BrokerState>, StartError> {
    let data_dir = data_dir.to_path_buf();
    let now_ms = clock.now_ms();
    let opening_config = Arc::clone(&config);
    let opened = tokio::task::spawn_blocking(move || -> Result<_, StartError> {
        std::fs::create_dir_all(&data_dir).map_err(StartError::Metadata)?;
        // Metadata first, so recovered logs open with their topic's configs.
        let metadata = MetadataCache::open(&data_dir).map_err(StartError::Metadata)?;
        let log_manager =
            LogManager::open_with_configs(Arc::new(StdFs), &data_dir, now_ms, |tp| {
                let overrides = metadata
                    .topic(&tp.topic)
                    .map(|t| t.configs.clone())
                    .unwrap_or_default();
                topic_config::log_config(&overrides, &opening_config)
            })?;
        Ok((Arc::new(log_manager), Arc::new(metadata)))
    })
    .await
    .map_err(|e| StartError::Task(e.to_string()))?;
    let (log_manager, metadata) = opened?;
    let replica_manager = Arc::new(ReplicaManager::new(
        log_manager,
        Arc::clone(&metadata),
        Arc::clone(&config),
        Arc::clone(&clock),
    ));
    let controller = Arc::new(Controller::new(
        Arc::clone(&metadata),
        Arc::clone(&replica_manager),
        Arc::clone(&config),
    ));
    let reconciling = Arc::clone(&controller);
    tokio::task::spawn_blocking(move || reconciling.reconcile_logs())
        .await
        .map_err(|e| StartError::Task(e.to_string()))?;
    let (advertised_host, advertised_port) = advertised(&config, local_addr);
    let metrics = Arc::new(Metrics::new());
    let due = Arc::new(crate::temporal::service::DueService::new(
        replica_manager.log_manager().dir(),
        metrics.due.clone(),
        crate::temporal::state_log::DueStateLog::new(
            crate::coordinator::internal_topic::InternalTopic::new(
                crate::coordinator::internal_topic::InternalTopicSpec {
                    name: crate::temporal::due_state::DUE_STATE_TOPIC,
                    partitions: crate::temporal::due_state::DUE_STATE_PARTITIONS,
                    segment_bytes: crate::temporal::due_state::DUE_STATE_SEGMENT_BYTES,
                },
                Arc::clone(&config),
                Arc::clone(&clock),
                Arc::clone(&metadata),
                Arc::clone(&controller),
                Arc::clone(&replica_manager),
            ),
            config.acks_all_fsync(),
        ),
        Arc::clone(&clock),
    ));
    // Temporal partitions get their clean limits before the cleaner task's first pass (see
    // `temporal::service`): until then a fire whose fired state a crash left unrecorded could
    // be compacted away.
    let tracking = Arc::clone(&due);
    let topics = metadata.topics();
    let logs = Arc::clone(replica_manager.log_manager());
    tokio::task::spawn_blocking(move || tracking.sync(&topics, &logs))
        .await
        .map_err(|e| StartError::Task(e.to_string()))?;
    let groups = Arc::new(crate::coordinator::group::GroupCoordinator::new(
        Arc::clone(&config),
        Arc::clone(&clock),
        Arc::clone(&metadata),
        crate::coordinator::internal_topic::InternalTopic::new(
            crate::coordinator::internal_topic::InternalTopicSpec {
                name: crate::coordinator::group::OFFSETS_TOPIC,
                partitions: config.offsets_topic_num_partitions(),
                segment_bytes: config.offsets_topic_segment_bytes(),
            },
            Arc::clone(&config),
            Arc::clone(&clock),
            Arc::clone(&metadata),
            Arc::clone(&controller),
            Arc::clone(&replica_manager),
        ),
    ));
    let producer_ids = Arc::new(ProducerIdManager::new(Arc::clone(&metadata)));
    let transactions = Arc::new(
        crate::coordinator::transaction::TransactionCoordinator::new(
            Arc::clone(&config),
            Arc::clone(&clock),
            Arc::clone(&metadata),
            crate::coordinator::internal_topic::InternalTopic::new(
                crate::coordinator::internal_topic::InternalTopicSpec {
                    name: crate::coordinator::transaction::TRANSACTION_STATE_TOPIC,
                    partitions: config.transaction_state_log_num_partitions(),
                    segment_bytes: config.transaction_state_log_segment_bytes(),
                },
                Arc::clone(&config),
                Arc::clone(&clock),
                Arc::clone(&metadata),
                Arc::clone(&controller),
                Arc::clone(&replica_manager),
            ),
            Arc::clone(&producer_ids),
            Arc::clone(&groups),
        ),
    );
    // The coordinators load before the broker serves: start() returns a broker whose groups
    // and transactions are ready. Groups first: completing interrupted transactions writes
    // markers into __consumer_offsets, which must apply to the loaded groups.
    let loading = (Arc::clone(&groups), Arc::clone(&transactions));
    tokio::task::spawn_blocking(move || -> Result<(), StartError> {
        loading.0.load()?;
        loading.1.load()?;
        Ok(())
    })
    .await
    .map_err(|e| StartError::Task(e.to_string()))??;
    Ok(Arc::new(BrokerState {
        groups,
        transactions,
        producer_ids,
        config,
        clock,
        metadata,
        replica_manager,
        controller,
        metrics,
        due,
        advertised_host,
        advertised_port,
    }))
}

/// The advertised listener, or the bound address (an unspecified bind address advertises the
/// loopback address, the only one certain to reach this host).
fn advertised(config: &BrokerConfig, local_addr: SocketAddr) -> (String, i32) {
    if let Some(listener) = config.advertised_listener()
        && let Some((host, port)) = listener.rsplit_once(':')
        && let Ok(port) = port.parse()
    {
        return (host.trim_matches(|c| c == '[' || c == ']').to_owned(), port);
    }
    let host = if local_addr.ip().is_unspecified() {
        "127.0.0.1".to_owned()
    } else {
        local_addr.ip().to_string()
    };
    (host, i32::from(local_addr.port()))
}

/// Periodic storage work: flush.ms deadlines, retention, checkpoints, idle producer expiry.
async fn background_tasks(state: Arc<BrokerState>, mut shutdown: Shutdown) {
    // Like Kafka's scheduler, the first run waits `log.initial.task.delay.ms`: retention at the
    // very start would race the first requests of a broker that was just (re)started.
    let first = tokio::time::Instant::now()
        + Duration::from_millis(state.config.log_initial_task_delay_ms());
    let every = |ms: u64| tokio::time::interval_at(first, Duration::from_millis(ms));
    let mut flush = every(state.config.log_flush_scheduler_interval_ms());
    let mut retention = every(state.config.log_retention_check_interval_ms());
    let mut producer_expiration = every(state.config.producer_id_expiration_check_interval_ms());
    let expiration_ms = state.config.producer_id_expiration_ms();
    loop {
        let work: fn(&LogManager, i64) = tokio::select! {
            _ = flush.tick() => |logs, now_ms| logs.flush_due(now_ms),
            _ = retention.tick() => |logs, now_ms| {
                logs.run_retention(now_ms);
                if let Err(error) = logs.checkpoint() {
                    tracing::warn!(%error, "checkpoint failed");
                }
            },
            _ = producer_expiration.tick() => {
                let logs = Arc::clone(state.replica_manager.log_manager());
                let now_ms = state.clock.now_ms();
                let _ = tokio::task::spawn_blocking(move || {
                    logs.remove_expired_producers(now_ms, expiration_ms)
                })
                .await;
                continue;
            }
            () = shutdown.recv() => return,
        };
        let logs = Arc::clone(state.replica_manager.log_manager());
        let now_ms = state.clock.now_ms();
        if let Err(error) = tokio::task::spawn_blocking(move || work(&logs, now_ms)).await {
            tracing::error!(%error, "background storage task failed");
        }
    }
}

/// A running broker.
#[derive(Debug)]
pub struct BrokerHandle {
    local_addr: SocketAddr,
    metrics_addr: Option<SocketAddr>,
    data_dir: PathBuf,
    state: Arc<BrokerState>,
    shutdown_sender: watch::Sender<bool>,
    tasks: Vec<JoinHandle<()>>,
    // Dropped (and removed) after the broker has shut down.
    _temp: Option<tempfile::TempDir>,
}

impl BrokerHandle {
    /// The bound Kafka listener address.
    #[must_use]
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// `host:port` for a client's `bootstrap.servers`.
    #[must_use]
    pub fn bootstrap_servers(&self) -> String {
        self.local_addr.to_string()
    }

    /// The bound metrics listener, if configured.
    #[must_use]
    pub fn metrics_addr(&self) -> Option<SocketAddr> {
        self.metrics_addr
    }

    /// The data directory.
    #[must_use]
    pub fn data_dir(&self) -> &Path {
        &self.data_dir
    }

    /// The cluster id clients see.
    #[must_use]
    pub fn cluster_id(&self) -> String {
        self.state.metadata.cluster_id().to_owned()
    }

    /// Stops accepting, finishes in-flight requests, flushes every log and writes the
    /// clean-shutdown marker.
    ///
    /// # Errors
    /// Storage errors while flushing.
    pub async fn shutdown(mut self) -> Result<(), StartError> {
        let _ = self.shutdown_sender.send(true);
        self.state.replica_manager.begin_shutdown();
        for task in self.tasks.drain(..) {
            if let Err(error) = task.await {
                tracing::error!(%error, "broker task failed");
            }
        }
        let logs = Arc::clone(self.state.replica_manager.log_manager());
        let now_ms = self.state.clock.now_ms();
        tokio::task::spawn_blocking(move || logs.shutdown(now_ms))
            .await
            .map_err(|e| StartError::Task(e.to_string()))??;
        tracing::info!("kairos stopped");
        Ok(())
    }
}

impl Drop for BrokerHandle {
    fn drop(&mut self) {
        // Without an explicit shutdown the tasks still stop, but logs are not flushed: recovery
        // handles that on the next start, exactly as after a crash.
        let _ = self.shutdown_sender.send(true);
    }
}
