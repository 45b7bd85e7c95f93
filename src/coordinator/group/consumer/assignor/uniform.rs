//! A uniform assignor in the spirit of Kafka's `UniformAssignor`: balanced and sticky.
//!
//! Kafka has two builders, one for homogeneous subscriptions (every member subscribes to the
//! same topics) and one for heterogeneous ones. This is one algorithm for both, in three steps:
//!
//! 1. **Keep**: every member keeps the partitions of its current target assignment that still
//!    exist and that it still subscribes to.
//! 2. **Place**: each unowned partition goes to the least loaded member subscribed to its
//!    topic. Partitions with the fewest candidate members go first, so the constrained ones
//!    are not crowded out.
//! 3. **Balance**: while some member has at least two partitions more than another member that
//!    could take one of them, one partition moves from the most loaded to the least loaded.
//!
//! With homogeneous subscriptions the result has member sizes within one of each other (any
//! gap of two or more is closed by step 3), and a member only loses partitions when it holds
//! more than its share: the moves are the minimum balance needs. With heterogeneous
//! subscriptions step 3 stops at a local optimum (no single move improves the balance), which
//! Kafka's heterogeneous builder can beat through chains of moves.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use uuid::Uuid;

use super::AssignmentMember;
use crate::coordinator::group::consumer::member::Assignment;

type Partition = (Uuid, i32);

pub(super) fn assign(
    members: &[AssignmentMember<'_>],
    topics: &BTreeMap<Uuid, i32>,
) -> BTreeMap<String, Assignment> {
    // Members in member-id order so that ties break the same way every time.
    let mut sorted: Vec<&AssignmentMember<'_>> = members.iter().collect();
    sorted.sort_by(|a, b| a.member_id.cmp(b.member_id));
    let mut owned: Vec<BTreeSet<Partition>> = vec![BTreeSet::new(); sorted.len()];
    let mut owner: HashMap<Partition, usize> = HashMap::new();

    // 1. Keep.
    for (index, member) in sorted.iter().enumerate() {
        for (topic_id, partitions) in &member.current {
            let Some(&count) = topics.get(topic_id) else {
                continue;
            };
            if !member.subscribed_topic_ids.contains(topic_id) {
                continue;
            }
            for &partition in partitions.iter().filter(|&&p| (0..count).contains(&p)) {
                if let std::collections::hash_map::Entry::Vacant(slot) =
                    owner.entry((*topic_id, partition))
                {
                    let _ = slot.insert(index);
                    let _ = owned[index].insert((*topic_id, partition));
                }
            }
        }
    }

    // 2. Place.
    let candidates = |topic_id: &Uuid| -> Vec<usize> {
        (0..sorted.len())
            .filter(|&i| sorted[i].subscribed_topic_ids.contains(topic_id))
            .collect()
    };
    let mut unowned: Vec<(usize, Partition, Vec<usize>)> = Vec::new();
    for (topic_id, &count) in topics {
        let eligible = candidates(topic_id);
        if eligible.is_empty() {
            continue;
        }
        for partition in 0..count.max(0) {
            if !owner.contains_key(&(*topic_id, partition)) {
                unowned.push((eligible.len(), (*topic_id, partition), eligible.clone()));
            }
        }
    }
    unowned.sort_by_key(|&(candidates, partition, _)| (candidates, partition));
    for (_, partition, eligible) in unowned {
        if let Some(&target) = eligible.iter().min_by_key(|&&i| (owned[i].len(), i)) {
            let _ = owned[target].insert(partition);
        }
    }

    // 3. Balance. Every move lowers the sum of squared sizes, so the loop ends.
    while let Some((from, to, partition)) = best_move(&sorted, &owned) {
        let _ = owned[from].remove(&partition);
        let _ = owned[to].insert(partition);
    }

    sorted
        .iter()
        .zip(owned)
        .map(|(member, partitions)| {
            let mut assignment = Assignment::new();
            for (topic_id, partition) in partitions {
                let _ = assignment.entry(topic_id).or_default().insert(partition);
            }
            (member.member_id.to_owned(), assignment)
        })
        .collect()
}

/// The move from the most loaded member that can give a partition to a member with at least
/// two fewer; its highest partition that the receiver subscribes to.
fn best_move(
    members: &[&AssignmentMember<'_>],
    owned: &[BTreeSet<Partition>],
) -> Option<(usize, usize, Partition)> {
    let mut by_size: Vec<usize> = (0..owned.len()).collect();
    by_size.sort_by_key(|&i| (owned[i].len(), i));
    for &from in by_size.iter().rev() {
        for &to in &by_size {
            if owned[to].len() + 1 >= owned[from].len() {
                break;
            }
            let receiver = &members[to].subscribed_topic_ids;
            if let Some(&partition) = owned[from]
                .iter()
                .rev()
                .find(|(topic_id, _)| receiver.contains(topic_id))
            {
                return Some((from, to, partition));
            }
        }
    }
    None
}
