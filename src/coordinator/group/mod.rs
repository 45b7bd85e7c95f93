//! The group coordinator: consumer groups (the classic protocol and KIP-848) and their
//! committed offsets, persisted in the compacted internal topic `__consumer_offsets`.

pub mod classic;
pub mod codec;
pub mod consumer;
pub mod consumer_protocol;
pub mod coordinator;
pub mod offsets;
pub mod record;
pub mod timer;

pub use coordinator::GroupCoordinator;

/// The internal topic of group state and committed offsets.
pub const OFFSETS_TOPIC: &str = "__consumer_offsets";
