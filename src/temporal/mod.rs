//! The due index: temporal fields inside records that wake their entities up.
//!
//! A topic with `temporal.fields` has each partition followed by a cursor up to its last stable
//! offset. For every committed version of a key, each selector yields a due time, nothing, or a
//! malformed value ([`extract`]); the partition's [`due_index::DueIndex`] keeps one entry per
//! (key, field) from the latest version. When the clock reaches an entry's due time, the broker
//! appends one record for the entity: its latest value with the field's merge patch applied
//! ([`patch`]), to the same partition (or the same partition number of
//! `temporal.target.topic`).
//!
//! The modules here are pure (no clock reads; time comes in as `now_ms`), except [`service`],
//! which owns the indexers, the pulse task and the snapshot files.

pub mod config;
pub mod due_index;
pub mod due_state;
pub mod extract;
pub mod fire;
pub mod indexer;
pub mod metrics;
pub mod patch;
pub mod pulse;
pub mod pulse_task;
pub mod selector;
pub mod service;
pub mod snapshot;
pub mod state_log;
mod target_mark;
pub mod time_format;

#[cfg(test)]
mod tests;
