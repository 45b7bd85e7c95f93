//! Partitions and the `ReplicaManager` that appends to and reads from them on behalf of Produce,
//! Fetch, ListOffsets and DeleteRecords.

pub mod cleaner;
pub mod cleaner_metrics;
pub mod delayed_fetch;
pub mod manager;
pub mod offsets;

pub use manager::ReplicaManager;
