//! Server-side assignors (KIP-848): given the members' subscriptions, the subscribed topics'
//! partition counts and the current target assignment, compute the next target assignment.
//!
//! Assignors are pure and deterministic: the same input gives the same output, so a target
//! assignment never changes without a reason, and tests can state exact results.

mod range;
mod uniform;

use std::collections::{BTreeMap, BTreeSet};

use uuid::Uuid;

use super::member::Assignment;

/// Kafka's `UniformAssignor` name (the default).
pub const UNIFORM: &str = "uniform";
/// Kafka's `RangeAssignor` name.
pub const RANGE: &str = "range";

/// Whether `name` is an assignor this broker implements.
#[must_use]
pub fn is_supported(name: &str) -> bool {
    name == UNIFORM || name == RANGE
}

/// One member as an assignor sees it.
#[derive(Debug, Clone)]
pub struct AssignmentMember<'a> {
    /// Member id.
    pub member_id: &'a str,
    /// Static members sort by instance id in the range assignor, so a rolling bounce (new
    /// member ids) keeps the same ranges.
    pub instance_id: Option<&'a str>,
    /// Topic ids the member subscribes to that exist.
    pub subscribed_topic_ids: BTreeSet<Uuid>,
    /// The member's current target assignment, for stickiness.
    pub current: Assignment,
}

/// Runs the assignor `name` (an unknown name runs the uniform one; callers validate names).
/// Every member gets an entry, possibly empty; only partitions of `topics` are assigned, each
/// to exactly one member subscribed to its topic.
#[must_use]
pub fn assign(
    name: &str,
    members: &[AssignmentMember<'_>],
    topics: &BTreeMap<Uuid, i32>,
) -> BTreeMap<String, Assignment> {
    if name == RANGE {
        range::assign(members, topics)
    } else {
        uniform::assign(members, topics)
    }
}

#[cfg(test)]
mod tests;
