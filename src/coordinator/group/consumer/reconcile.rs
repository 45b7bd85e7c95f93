//! Reconciliation of one member towards its target assignment (Kafka's
//! `CurrentAssignmentBuilder`).
//!
//! The rule that keeps a partition from having two owners: a member first gives up what the
//! target took away (`UnrevokedPartitions`, at its old epoch), and only then moves to the target
//! epoch and receives new partitions, but only those no other member still owns
//! (`UnreleasedPartitions` until they are free). Ownership is tracked by the group as the epoch
//! of each partition's current owner; -1 means free.

use super::member::{Assignment, ConsumerGroupMember, MemberState, intersects};

/// The next state of `member` given the target assignment, the partitions the member reports
/// owning (`None` when its heartbeat did not say), and a lookup of each partition's owner epoch.
/// Returns the member unchanged when it cannot progress.
pub fn reconcile(
    member: &ConsumerGroupMember,
    target_epoch: i32,
    target: &Assignment,
    owned: Option<&Assignment>,
    partition_epoch: impl Fn(&uuid::Uuid, i32) -> i32,
) -> ConsumerGroupMember {
    match member.state {
        MemberState::Stable => {
            if member.member_epoch == target_epoch {
                member.clone()
            } else {
                next_assignment(
                    member,
                    member.member_epoch,
                    target_epoch,
                    target,
                    owned,
                    &partition_epoch,
                )
            }
        }
        MemberState::UnrevokedPartitions => {
            if owns_any(owned, &member.partitions_pending_revocation) {
                member.clone()
            } else {
                next_assignment(
                    member,
                    member.member_epoch,
                    target_epoch,
                    target,
                    owned,
                    &partition_epoch,
                )
            }
        }
        MemberState::UnreleasedPartitions => next_assignment(
            member,
            member.member_epoch,
            target_epoch,
            target,
            owned,
            &partition_epoch,
        ),
        // The heartbeat path fences an Unknown member unless it reports owning nothing.
        MemberState::Unknown => next_assignment(
            member,
            target_epoch,
            target_epoch,
            target,
            owned,
            &partition_epoch,
        ),
    }
}

/// Whether the member still reports owning any of `pending`. Without a report we must assume
/// it does.
fn owns_any(owned: Option<&Assignment>, pending: &Assignment) -> bool {
    owned.is_none_or(|owned| intersects(owned, pending))
}

fn next_assignment(
    member: &ConsumerGroupMember,
    member_epoch: i32,
    target_epoch: i32,
    target: &Assignment,
    owned: Option<&Assignment>,
    partition_epoch: &impl Fn(&uuid::Uuid, i32) -> i32,
) -> ConsumerGroupMember {
    let mut assigned = Assignment::new();
    let mut pending_revocation = Assignment::new();
    let mut pending_assignment = Assignment::new();
    let mut has_unreleased = false;

    let topics: std::collections::BTreeSet<&uuid::Uuid> = target
        .keys()
        .chain(member.assigned_partitions.keys())
        .collect();
    for topic_id in topics {
        let empty = std::collections::BTreeSet::new();
        let wanted = target.get(topic_id).unwrap_or(&empty);
        let current = member.assigned_partitions.get(topic_id).unwrap_or(&empty);
        // Kept = current ∩ target; revoked = current − kept.
        let kept: std::collections::BTreeSet<i32> = current.intersection(wanted).copied().collect();
        let revoked: std::collections::BTreeSet<i32> = current.difference(&kept).copied().collect();
        // New = target − kept, minus what another member still owns.
        let mut new = std::collections::BTreeSet::new();
        for &partition in wanted.difference(&kept) {
            if partition_epoch(topic_id, partition) == -1 {
                let _ = new.insert(partition);
            } else {
                has_unreleased = true;
            }
        }
        if !kept.is_empty() {
            let _ = assigned.insert(*topic_id, kept);
        }
        if !revoked.is_empty() {
            let _ = pending_revocation.insert(*topic_id, revoked);
        }
        if !new.is_empty() {
            let _ = pending_assignment.insert(*topic_id, new);
        }
    }

    let mut next = member.clone();
    if !pending_revocation.is_empty() && owns_any(owned, &pending_revocation) {
        // Revoke first, at the current epoch.
        next.state = MemberState::UnrevokedPartitions;
        next.update_member_epoch(member_epoch);
        next.assigned_partitions = assigned;
        next.partitions_pending_revocation = pending_revocation;
        return next;
    }
    for (topic_id, partitions) in pending_assignment {
        assigned.entry(topic_id).or_default().extend(partitions);
    }
    next.state = if has_unreleased {
        MemberState::UnreleasedPartitions
    } else {
        MemberState::Stable
    };
    next.update_member_epoch(target_epoch);
    next.assigned_partitions = assigned;
    next.partitions_pending_revocation = Assignment::new();
    next
}

#[cfg(test)]
mod tests {
    use uuid::Uuid;

    use super::*;

    fn t() -> Uuid {
        Uuid::from_u128(1)
    }

    fn asg(partitions: &[i32]) -> Assignment {
        if partitions.is_empty() {
            return Assignment::new();
        }
        [(t(), partitions.iter().copied().collect())].into()
    }

    fn member(epoch: i32, assigned: &[i32]) -> ConsumerGroupMember {
        let mut m = ConsumerGroupMember::new("m");
        m.member_epoch = epoch;
        m.previous_member_epoch = epoch - 1;
        m.assigned_partitions = asg(assigned);
        m
    }

    const FREE: fn(&Uuid, i32) -> i32 = |_, _| -1;

    #[test]
    fn stable_member_moves_to_target_when_nothing_to_revoke() {
        let next = reconcile(&member(1, &[0]), 2, &asg(&[0, 1]), Some(&asg(&[0])), FREE);
        assert_eq!(next.state, MemberState::Stable);
        assert_eq!((next.member_epoch, next.previous_member_epoch), (2, 1));
        assert_eq!(next.assigned_partitions, asg(&[0, 1]));
    }

    #[test]
    fn member_revokes_before_it_receives() {
        let m = member(1, &[0, 1]);
        let next = reconcile(&m, 2, &asg(&[0, 2]), Some(&asg(&[0, 1])), FREE);
        assert_eq!(next.state, MemberState::UnrevokedPartitions);
        assert_eq!(next.member_epoch, 1);
        assert_eq!(next.assigned_partitions, asg(&[0]));
        assert_eq!(next.partitions_pending_revocation, asg(&[1]));
        // Still reporting partition 1: no progress.
        assert_eq!(
            reconcile(&next, 2, &asg(&[0, 2]), Some(&asg(&[0, 1])), FREE),
            next
        );
        // Without a report of owned partitions: no progress either.
        assert_eq!(reconcile(&next, 2, &asg(&[0, 2]), None, FREE), next);
        // Revoked: moves to epoch 2 and gets partition 2.
        let done = reconcile(&next, 2, &asg(&[0, 2]), Some(&asg(&[0])), FREE);
        assert_eq!(done.state, MemberState::Stable);
        assert_eq!(done.member_epoch, 2);
        assert_eq!(done.assigned_partitions, asg(&[0, 2]));
    }

    #[test]
    fn partitions_owned_elsewhere_are_unreleased() {
        let owned_elsewhere = |_: &Uuid, p: i32| if p == 1 { 3 } else { -1 };
        let next = reconcile(
            &member(1, &[0]),
            2,
            &asg(&[0, 1]),
            Some(&asg(&[0])),
            owned_elsewhere,
        );
        assert_eq!(next.state, MemberState::UnreleasedPartitions);
        assert_eq!(next.member_epoch, 2);
        assert_eq!(next.assigned_partitions, asg(&[0]));
        // Released: the next heartbeat gets it.
        let done = reconcile(&next, 2, &asg(&[0, 1]), Some(&asg(&[0])), FREE);
        assert_eq!(done.state, MemberState::Stable);
        assert_eq!(done.assigned_partitions, asg(&[0, 1]));
    }

    #[test]
    fn already_revoked_partitions_do_not_wait() {
        // The member dropped partition 1 on its own: no revocation round-trip.
        let next = reconcile(&member(1, &[0, 1]), 2, &asg(&[0]), Some(&asg(&[0])), FREE);
        assert_eq!(next.state, MemberState::Stable);
        assert_eq!(next.member_epoch, 2);
        assert_eq!(next.assigned_partitions, asg(&[0]));
    }
}
