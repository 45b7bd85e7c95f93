//! `kairos-storage`: the Kairos log engine.
//!
//! Synchronous and blocking by design: no tokio, no Kafka protocol message types. It takes Kafka
//! v2 record-batch bytes and returns offsets. The broker calls it from blocking threads.
//! The byte layout of every file is documented in `FORMAT.md`.
//!
//! Module map, in the order data flows through it:
//! - [`batch`]: zero-copy v2 batch header view, CRC32C, in-place patches.
//! - [`validator`] (crate-private): checks client batches and assigns offsets in place.
//! - [`log`]: [`Log`], one partition: append with group commit, read, roll, truncate.
//! - `segment`, `index`, `file_records`: a segment's `.log`, `.index` and `.timeindex`.
//! - [`loader`] (crate-private): open with recovery. `retention`: deleting segments.
//! - [`producer_state`]: idempotent and transactional producer state; `snapshot` persists it;
//!   [`control`] reads and writes transaction markers; `index::txn` lists aborted transactions.
//! - [`cleaner`]: log compaction with a bounded offset map and crash-safe segment swaps.
//! - [`manager`]: [`LogManager`], a data directory of logs, its lock and checkpoints.
//! - [`record`], [`builder`], [`compression`]: decode and encode records inside a batch.
//! - [`fs`]: the file-system seam every file operation goes through.
//! - [`file_names`], [`config`], [`error`].
#![warn(missing_docs)]

pub mod batch;
pub mod builder;
mod checkpoint;
pub mod cleaner;
pub mod compression;
pub mod config;
pub mod control;
pub mod error;
pub mod file_names;
mod file_records;
pub mod fs;
mod index;
mod loader;
pub mod log;
pub mod manager;
pub mod producer_state;
pub mod record;
mod retention;
mod segment;
mod snapshot;
mod validator;

pub use batch::{Compression, TimestampType};
pub use checkpoint::{
    CLEANER_OFFSET_CHECKPOINT, LOG_START_OFFSET_CHECKPOINT, RECOVERY_POINT_CHECKPOINT,
};
pub use cleaner::{CleanerStats, LogCleaner};
pub use config::{CleanupPolicy, LogConfig};
pub use error::{CorruptReason, Error, InvalidRecordReason, Result};
pub use index::time::TimestampOffset;
pub use index::txn::AbortedTxn;
pub use log::{AppendOutcome, FetchDataInfo, LoadParams, Log, LogAppendInfo};
pub use manager::{LogManager, TopicPartition};
pub use validator::AppendOrigin;
