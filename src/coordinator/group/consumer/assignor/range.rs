//! Kafka's KIP-848 `RangeAssignor`: per topic, the members subscribed to it, in a fixed order,
//! receive contiguous ranges; the first `partitions % members` get one extra partition.
//!
//! The order is static members by instance id, then dynamic members by member id. Because
//! every topic uses the same order, members subscribed to the same topics get the same
//! partition numbers of topics with equal partition counts (co-partitioning, for joins).
//! It is sticky only in that equal input gives equal output: a member joining or leaving
//! shifts the ranges, as in Kafka.

use std::cmp::Ordering;
use std::collections::BTreeMap;

use uuid::Uuid;

use super::AssignmentMember;
use crate::coordinator::group::consumer::member::Assignment;

fn order(a: &AssignmentMember<'_>, b: &AssignmentMember<'_>) -> Ordering {
    match (a.instance_id, b.instance_id) {
        (Some(x), Some(y)) => x.cmp(y).then_with(|| a.member_id.cmp(b.member_id)),
        (Some(_), None) => Ordering::Less,
        (None, Some(_)) => Ordering::Greater,
        (None, None) => a.member_id.cmp(b.member_id),
    }
}

pub(super) fn assign(
    members: &[AssignmentMember<'_>],
    topics: &BTreeMap<Uuid, i32>,
) -> BTreeMap<String, Assignment> {
    let mut sorted: Vec<&AssignmentMember<'_>> = members.iter().collect();
    sorted.sort_by(|a, b| order(a, b));
    let mut result: BTreeMap<String, Assignment> = members
        .iter()
        .map(|m| (m.member_id.to_owned(), Assignment::new()))
        .collect();
    for (&topic_id, &partitions) in topics {
        let subscribers: Vec<&str> = sorted
            .iter()
            .filter(|m| m.subscribed_topic_ids.contains(&topic_id))
            .map(|m| m.member_id)
            .collect();
        let Ok(count) = i32::try_from(subscribers.len()) else {
            continue;
        };
        if count == 0 || partitions <= 0 {
            continue;
        }
        let quota = partitions / count;
        let mut extra = partitions % count;
        let mut start = 0;
        for member_id in subscribers {
            let mut size = quota;
            if extra > 0 {
                size += 1;
                extra -= 1;
            }
            let end = (start + size).min(partitions);
            if start < end
                && let Some(assignment) = result.get_mut(member_id)
            {
                let _ = assignment.insert(topic_id, (start..end).collect());
            }
            start = end;
        }
    }
    result
}
