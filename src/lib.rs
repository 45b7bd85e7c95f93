//! Kairos: a single-node, embeddable Kafka-compatible broker with a due index.
//!
//! Module map (start at [`server`], then [`protocol`], then [`handlers`]):
//! - [`broker`]: the embedding API ([`Broker::builder`], [`BrokerHandle`]) and the wiring of
//!   the owners below.
//! - [`server`]: the tokio listener, connections (framing, pipelining, in-order responses), the
//!   admin HTTP listener for metrics, and the shutdown signal.
//! - [`protocol`]: request header decoding, dispatch on the API key, response encoding, and the
//!   advertised version table ([`protocol::versions`]).
//! - [`handlers`]: one file per Kafka API; thin: decode, one call on an owner, encode.
//! - [`replica`]: `ReplicaManager` (append, fetch with `DelayedFetch`, offsets) over storage.
//! - [`controller`]: topic creation, deletion, partitions and configs.
//! - [`metadata`]: the persisted topic registry and cluster id.
//! - [`coordinator`]: the producer-id allocator (groups and transactions come later).
//! - [`config`] / [`topic_config`]: broker and topic configs by Kafka's names.
//! - [`error`]: Kafka error codes and the one storage-error mapping.
//! - [`clock`]: the injected clock; nothing else reads the system time.
//! - [`metrics`]: Prometheus metrics.
//!
//! ```no_run
//! # async fn example() -> Result<(), kairos::StartError> {
//! let broker = kairos::Broker::builder().temp_dir().listener("127.0.0.1:0").start().await?;
//! let bootstrap_servers = broker.bootstrap_servers(); // give this to any Kafka client
//! # let _ = bootstrap_servers;
//! broker.shutdown().await?;
//! # Ok(()) }
//! ```

pub mod broker;
pub mod clock;
pub mod config;
pub mod controller;
pub mod coordinator;
pub mod error;
pub mod handlers;
pub mod metadata;
pub mod metrics;
pub mod protocol;
pub mod replica;
pub mod server;
pub mod temporal;
pub mod topic_config;

pub use broker::{Broker, BrokerBuilder, BrokerHandle, StartError};
pub use clock::{Clock, ManualClock, SystemClock};
pub use config::BrokerConfig;

/// The README's Rust examples, compiled as doctests so they stay true.
#[doc = include_str!("../README.md")]
#[cfg(doctest)]
pub struct ReadmeDoctests;
