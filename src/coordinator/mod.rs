//! Coordinators: state owners that are not partitions. The group coordinator and the
//! producer-id allocator; the transaction coordinator joins them in a later wave.

pub mod group;
pub mod internal_topic;
pub mod producer_id;
pub mod transaction;

/// Whether `topic` is one of Kafka's internal topics: clients cannot produce to it, and
/// Metadata marks it `is_internal` (clients leave it out of pattern subscriptions).
#[must_use]
pub fn is_internal_topic(topic: &str) -> bool {
    topic == group::OFFSETS_TOPIC
        || topic == transaction::TRANSACTION_STATE_TOPIC
        || topic == crate::temporal::due_state::DUE_STATE_TOPIC
}
