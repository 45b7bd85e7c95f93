//! `kairos-storage`: the Kairos log engine.
//!
//! Synchronous and blocking by design: no tokio, no Kafka protocol message types. It takes Kafka
//! v2 record-batch bytes and returns offsets. The broker calls it from blocking threads.
//!
//! Module map:
//! - [`batch`]: zero-copy v2 batch header view, CRC32C, in-place patches.
//! - [`record`] / [`builder`]: decode and encode the records inside a batch (with compression).
//! - [`fs`]: the file-system seam every file operation goes through.
//! - [`file_names`]: `{offset:020}.log` and friends.
//! - [`error`]: typed errors.
#![warn(missing_docs)]

pub mod batch;
pub mod error;
pub mod file_names;
pub mod fs;

pub use error::{CorruptReason, Error, InvalidRecordReason, Result};
