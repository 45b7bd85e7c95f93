//! Coordinators: state owners that are not partitions. For now the producer-id allocator; the
//! group and transaction coordinators join it in later waves.

pub mod group;
pub mod producer_id;
