//! Assignor tests: exact results on small cases, then properties (coverage, balance,
//! stickiness) over generated groups.

use std::collections::{BTreeMap, BTreeSet};

use proptest::prelude::*;
use uuid::Uuid;

use super::{AssignmentMember, RANGE, UNIFORM, assign};
use crate::coordinator::group::consumer::member::{Assignment, partition_count};

fn topic(n: u128) -> Uuid {
    Uuid::from_u128(n)
}

fn member<'a>(id: &'a str, topics: &[u128]) -> AssignmentMember<'a> {
    AssignmentMember {
        member_id: id,
        instance_id: None,
        subscribed_topic_ids: topics.iter().map(|&t| topic(t)).collect(),
        current: Assignment::new(),
    }
}

fn parts(assignment: &Assignment, t: u128) -> Vec<i32> {
    assignment
        .get(&topic(t))
        .map(|p| p.iter().copied().collect())
        .unwrap_or_default()
}

#[test]
fn range_gives_contiguous_co_partitioned_ranges() {
    let members = [member("m0", &[1, 2]), member("m1", &[1, 2])];
    let topics = [(topic(1), 3), (topic(2), 3)].into();
    let result = assign(RANGE, &members, &topics);
    assert_eq!(parts(&result["m0"], 1), vec![0, 1]);
    assert_eq!(parts(&result["m0"], 2), vec![0, 1]);
    assert_eq!(parts(&result["m1"], 1), vec![2]);
    assert_eq!(parts(&result["m1"], 2), vec![2]);
}

#[test]
fn range_orders_static_members_by_instance_id() {
    // "z" sorts after "a" by member id, but its instance id sorts first.
    let mut a = member("a", &[1]);
    let mut z = member("z", &[1]);
    z.instance_id = Some("i0");
    a.instance_id = Some("i1");
    let topics = [(topic(1), 4)].into();
    let result = assign(RANGE, &[a, z], &topics);
    assert_eq!(parts(&result["z"], 1), vec![0, 1]);
    assert_eq!(parts(&result["a"], 1), vec![2, 3]);
}

#[test]
fn uniform_spreads_and_keeps_what_it_can() {
    let topics: BTreeMap<Uuid, i32> = [(topic(1), 6)].into();
    let first = assign(UNIFORM, &[member("a", &[1])], &topics);
    assert_eq!(parts(&first["a"], 1), vec![0, 1, 2, 3, 4, 5]);
    let mut a = member("a", &[1]);
    a.current = first["a"].clone();
    let second = assign(UNIFORM, &[a, member("b", &[1]), member("c", &[1])], &topics);
    // "a" keeps two of its own; "b" and "c" get two each of the rest.
    assert_eq!(parts(&second["a"], 1), vec![0, 1]);
    assert_eq!(partition_count(&second["b"]), 2);
    assert_eq!(partition_count(&second["c"]), 2);
}

#[test]
fn uniform_places_constrained_partitions_first() {
    // a: t1 only; b: t1 and t2; c: t2 only. t1 has 2 partitions, t2 has 4.
    let members = [member("a", &[1]), member("b", &[1, 2]), member("c", &[2])];
    let topics = [(topic(1), 2), (topic(2), 4)].into();
    let result = assign(UNIFORM, &members, &topics);
    let sizes: Vec<usize> = ["a", "b", "c"]
        .iter()
        .map(|m| partition_count(&result[*m]))
        .collect();
    assert_eq!(sizes, vec![2, 2, 2]);
    assert!(result["a"].keys().all(|t| *t == topic(1)));
    assert!(result["c"].keys().all(|t| *t == topic(2)));
}

#[test]
fn unsubscribed_and_vanished_partitions_are_dropped() {
    let mut a = member("a", &[1]);
    // Owned a partition of topic 2 (no longer subscribed) and partition 9 of topic 1 (gone).
    a.current = [(topic(1), [0, 9].into()), (topic(2), [0].into())].into();
    let topics = [(topic(1), 2), (topic(2), 1)].into();
    let result = assign(UNIFORM, &[a, member("b", &[2])], &topics);
    assert_eq!(parts(&result["a"], 1), vec![0, 1]);
    assert_eq!(parts(&result["b"], 2), vec![0]);
}

/// A generated group: partition counts per topic, and each member's subscription.
fn group() -> impl Strategy<Value = (Vec<i32>, Vec<Vec<bool>>, bool)> {
    (1usize..4, 1usize..7).prop_flat_map(|(topics, members)| {
        (
            prop::collection::vec(0i32..12, topics),
            prop::collection::vec(prop::collection::vec(any::<bool>(), topics), members),
            any::<bool>(),
        )
    })
}

fn build<'a>(
    ids: &'a [String],
    subscriptions: &[Vec<bool>],
    homogeneous: bool,
) -> Vec<AssignmentMember<'a>> {
    ids.iter()
        .zip(subscriptions)
        .map(|(id, subscribed)| {
            let topics: Vec<u128> = (0..subscribed.len())
                .filter(|&t| homogeneous || subscribed[t])
                .map(|t| t as u128)
                .collect();
            member(id, &topics)
        })
        .collect()
}

/// Every partition of a topic someone subscribes to is assigned exactly once, to a subscriber.
fn check_coverage(
    members: &[AssignmentMember<'_>],
    topics: &BTreeMap<Uuid, i32>,
    result: &BTreeMap<String, Assignment>,
) {
    let mut seen = BTreeSet::new();
    for m in members {
        for (topic_id, partitions) in &result[m.member_id] {
            assert!(m.subscribed_topic_ids.contains(topic_id));
            for &p in partitions {
                assert!(p < topics[topic_id]);
                assert!(seen.insert((*topic_id, p)), "assigned twice");
            }
        }
    }
    for (topic_id, &count) in topics {
        if members
            .iter()
            .any(|m| m.subscribed_topic_ids.contains(topic_id))
        {
            for p in 0..count {
                assert!(seen.contains(&(*topic_id, p)), "unassigned partition");
            }
        }
    }
}

fn spread(sizes: impl Iterator<Item = usize>) -> usize {
    let sizes: Vec<usize> = sizes.collect();
    sizes.iter().max().unwrap_or(&0) - sizes.iter().min().unwrap_or(&0)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    #[test]
    fn assignors_cover_and_balance((counts, subscriptions, homogeneous) in group()) {
        let ids: Vec<String> = (0..subscriptions.len()).map(|i| format!("m{i}")).collect();
        let members = build(&ids, &subscriptions, homogeneous);
        let topics: BTreeMap<Uuid, i32> =
            counts.iter().enumerate().map(|(t, &c)| (topic(t as u128), c)).collect();
        for name in [UNIFORM, RANGE] {
            let result = assign(name, &members, &topics);
            check_coverage(&members, &topics, &result);
            // Deterministic.
            prop_assert_eq!(&result, &assign(name, &members, &topics));
            if homogeneous {
                if name == UNIFORM {
                    prop_assert!(spread(result.values().map(partition_count)) <= 1);
                } else {
                    for topic_id in topics.keys() {
                        let per_topic = result.values().map(|a| a.get(topic_id).map_or(0, BTreeSet::len));
                        prop_assert!(spread(per_topic) <= 1);
                    }
                }
            }
        }
    }

    #[test]
    fn uniform_is_sticky_when_members_come_and_go(
        (counts, subscriptions, _) in group(),
        remove in any::<prop::sample::Index>(),
        add in any::<bool>(),
    ) {
        let ids: Vec<String> = (0..=subscriptions.len()).map(|i| format!("m{i}")).collect();
        let topics: BTreeMap<Uuid, i32> =
            counts.iter().enumerate().map(|(t, &c)| (topic(t as u128), c)).collect();
        let before_members = build(&ids[..subscriptions.len()], &subscriptions, true);
        let before = assign(UNIFORM, &before_members, &topics);
        // Next generation: one member leaves, maybe a new one joins.
        let gone = remove.index(before_members.len());
        let mut after_members: Vec<AssignmentMember<'_>> = before_members
            .iter()
            .enumerate()
            .filter(|(i, _)| *i != gone)
            .map(|(_, m)| AssignmentMember { current: before[m.member_id].clone(), ..m.clone() })
            .collect();
        if add {
            after_members.push(member(&ids[subscriptions.len()], &(0..counts.len() as u128).collect::<Vec<_>>()));
        }
        prop_assume!(!after_members.is_empty());
        let after = assign(UNIFORM, &after_members, &topics);
        check_coverage(&after_members, &topics, &after);
        let total: usize = counts.iter().map(|&c| c as usize).sum();
        let floor = total / after_members.len();
        for m in &after_members {
            let kept = after[m.member_id].iter().map(|(t, ps)| {
                ps.iter().filter(|p| m.current.get(t).is_some_and(|c| c.contains(p))).count()
            }).sum::<usize>();
            // A member keeps everything up to its share.
            prop_assert!(kept >= partition_count(&m.current).min(floor));
        }
    }
}
