//! Static membership (KIP-345).

use super::*;

// ---- Static membership (KIP-345) -----------------------------------------------------------

/// A Stable group of static members `a` and `b`: (leader's join, follower's join, follower's
/// client name).
fn stable_static_group(h: &mut Harness) -> (JoinResult, JoinResult, &'static str) {
    let mut joins = [h.join(static_member("a")), h.join(static_member("b"))];
    h.finish_initial_delay();
    let results: Vec<JoinResult> = joins.iter_mut().map(answered).collect();
    let (leader, follower) = leader_and_follower(&results);
    let (leader, follower) = (leader.clone(), follower.clone());
    let generation = leader.generation_id;
    let mut follower_sync = h.sync(&follower.member_id, generation, &[]);
    let mut leader_sync = h.sync(
        &leader.member_id,
        generation,
        &[
            (&leader.member_id, "to-leader"),
            (&follower.member_id, "to-follower"),
        ],
    );
    assert_eq!(answered(&mut leader_sync).error, NONE);
    assert_eq!(answered(&mut follower_sync).error, NONE);
    assert_eq!(h.state(), ClassicGroupState::Stable);
    let follower_client = if follower.member_id == results[0].member_id {
        "a"
    } else {
        "b"
    };
    (leader, follower, follower_client)
}

#[test]
fn static_follower_rejoining_a_stable_group_keeps_its_assignment_without_a_rebalance() {
    let mut h = Harness::with_initial_delay(INITIAL_DELAY_MS);
    let (leader, follower, client) = stable_static_group(&mut h);
    let generation = follower.generation_id;
    let _ = h.group.take_dirty();

    // The follower restarts: it lost its member id but kept its group.instance.id.
    let rejoined = h.join_now(static_member(client));
    assert_eq!(rejoined.error, NONE);
    assert_ne!(rejoined.member_id, follower.member_id);
    assert_eq!(rejoined.generation_id, generation);
    assert_eq!(rejoined.leader, leader.member_id);
    assert!(!rejoined.skip_assignment);
    assert!(rejoined.members.is_empty());
    assert_eq!(h.state(), ClassicGroupState::Stable);
    // Kafka persists the new member id.
    assert!(h.group.take_dirty());

    let mut sync = h.sync_full(
        &rejoined.member_id,
        Some(&instance_id(client)),
        generation,
        Vec::new(),
    );
    assert_eq!(answered(&mut sync).assignment, bytes("to-follower"));

    // The old incarnation is a zombie.
    assert_eq!(
        h.group.heartbeat(
            &follower.member_id,
            Some(&instance_id(client)),
            generation,
            h.now_ms
        ),
        Err(ResponseError::FencedInstanceId)
    );
    assert_eq!(
        h.heartbeat(&follower.member_id, generation),
        Err(ResponseError::UnknownMemberId)
    );
    assert_eq!(
        h.group.heartbeat(
            &rejoined.member_id,
            Some(&instance_id(client)),
            generation,
            h.now_ms
        ),
        Ok(())
    );
}

#[test]
fn static_leader_rejoining_at_v9_skips_the_assignment() {
    let mut h = Harness::with_initial_delay(INITIAL_DELAY_MS);
    let (leader, follower, follower_client) = stable_static_group(&mut h);
    let leader_client = if follower_client == "a" { "b" } else { "a" };
    let generation = leader.generation_id;

    let rejoined = h.join_now(JoinRequest {
        supports_skip_assignment: true,
        ..static_member(leader_client)
    });
    assert_eq!(rejoined.error, NONE);
    assert!(rejoined.skip_assignment);
    assert_eq!(rejoined.generation_id, generation);
    assert_eq!(rejoined.leader, rejoined.member_id);
    let mut members: Vec<String> = rejoined
        .members
        .iter()
        .map(|m| m.member_id.clone())
        .collect();
    members.sort();
    let mut expected = vec![rejoined.member_id.clone(), follower.member_id.clone()];
    expected.sort();
    assert_eq!(members, expected);
    assert_eq!(h.state(), ClassicGroupState::Stable);

    let mut sync = h.sync_full(
        &rejoined.member_id,
        Some(&instance_id(leader_client)),
        generation,
        Vec::new(),
    );
    assert_eq!(answered(&mut sync).assignment, bytes("to-leader"));
}

#[test]
fn static_leader_rejoining_before_v9_keeps_its_assignment_as_a_follower() {
    // Kafka's updateStaticMemberThenRebalanceOrCompleteJoin: in a Stable group whose protocol
    // does not change, a static leader that cannot skip the assignment (JoinGroup < v9) is told
    // the old leader id, so it acts as a follower and syncs for its current assignment. No
    // rebalance.
    let mut h = Harness::with_initial_delay(INITIAL_DELAY_MS);
    let (leader, _, follower_client) = stable_static_group(&mut h);
    let leader_client = if follower_client == "a" { "b" } else { "a" };
    let generation = leader.generation_id;

    let rejoined = h.join_now(static_member(leader_client));
    assert_eq!(rejoined.error, NONE);
    assert_ne!(rejoined.member_id, leader.member_id);
    assert_eq!(rejoined.generation_id, generation);
    assert_eq!(rejoined.leader, leader.member_id);
    assert!(!rejoined.skip_assignment);
    assert!(rejoined.members.is_empty());
    assert_eq!(h.state(), ClassicGroupState::Stable);
    assert_eq!(
        h.group.to_record().leader.as_deref(),
        Some(rejoined.member_id.as_str())
    );

    let mut sync = h.sync_full(
        &rejoined.member_id,
        Some(&instance_id(leader_client)),
        generation,
        Vec::new(),
    );
    assert_eq!(answered(&mut sync).assignment, bytes("to-leader"));
}

#[test]
fn a_static_member_replaced_while_parked_is_fenced() {
    let mut h = Harness::with_initial_delay(INITIAL_DELAY_MS);
    let (_, follower, client) = stable_static_group(&mut h);
    let mut rebalance = h.join(member("c"));
    assert_eq!(h.state(), ClassicGroupState::PreparingRebalance);
    let mut old_join = h.join(JoinRequest {
        member_id: follower.member_id.clone(),
        ..static_member(client)
    });
    assert_parked(&mut old_join);

    // A new incarnation with the same instance id takes over during the rebalance.
    let mut new_join = h.join(static_member(client));
    assert_eq!(
        answered(&mut old_join).error,
        code(ResponseError::FencedInstanceId)
    );
    assert_parked(&mut new_join);
    assert_parked(&mut rebalance);
}

/// A static member with a session longer than the rebalance timeout, as static members
/// usually have: it can miss a whole rebalance without being expired.
fn long_lived_static_member(client: &str) -> JoinRequest {
    JoinRequest {
        session_timeout_ms: 2 * REBALANCE_MS,
        ..static_member(client)
    }
}

#[test]
fn a_static_member_that_does_not_rejoin_keeps_its_place_at_the_join_deadline() {
    // Kafka's completeClassicGroupJoin removes only the dynamic members that did not rejoin
    // (`notYetRejoinedDynamicMembers`); a static member stays in the generation, and the leader
    // assigns to it, until its session times out.
    let mut h = Harness::with_initial_delay(INITIAL_DELAY_MS);
    let results = h.form_stable_with(vec![
        long_lived_static_member("a"),
        long_lived_static_member("b"),
    ]);
    let (a, b) = (results[0].member_id.clone(), results[1].member_id.clone());
    let generation = results[0].generation_id;

    let mut c_join = h.join(member("c"));
    let rebalance_started = h.now_ms;
    let mut a_join = h.join(JoinRequest {
        member_id: a.clone(),
        ..long_lived_static_member("a")
    });
    assert_eq!(
        h.advance_to_next_deadline(),
        rebalance_started + i64::from(REBALANCE_MS)
    );

    let joined = [answered(&mut a_join), answered(&mut c_join)];
    let c = joined[1].member_id.clone();
    for result in &joined {
        assert_eq!((result.error, result.generation_id), (NONE, generation + 1));
        // b did not rejoin, so it cannot lead even if it led before.
        assert_ne!(result.leader, b);
    }
    let mut expected = vec![a, b.clone(), c];
    expected.sort();
    assert_eq!(h.member_ids(), expected);
    let (leader, _) = leader_and_follower(&joined);
    let b_in_members = leader
        .members
        .iter()
        .find(|m| m.member_id == b)
        .expect("the leader assigns to b too");
    assert_eq!(b_in_members.metadata, metadata("b", "range"));
    assert_eq!(
        b_in_members.group_instance_id.as_deref(),
        Some(instance_id("b").as_str())
    );
    assert_eq!(h.state(), ClassicGroupState::CompletingRebalance);
}

#[test]
fn a_rebalance_nobody_rejoins_waits_for_the_static_members_sessions() {
    // Kafka: "could not complete rebalance because no members rejoined": the join phase is
    // retried after another rebalance timeout, and the session timeouts empty the group.
    let mut h = Harness::with_initial_delay(INITIAL_DELAY_MS);
    let results = h.form_stable_with(vec![
        long_lived_static_member("a"),
        long_lived_static_member("b"),
    ]);
    let generation = results[0].generation_id;
    let sessions_end = h.now_ms + 2 * i64::from(REBALANCE_MS);
    let c = h.join_now(JoinRequest {
        require_known_member_id: true,
        ..member("c")
    });
    let mut c_join = h.join(rejoin("c", &c.member_id));
    assert_eq!(h.leave(&c.member_id), Ok(c.member_id.clone()));
    assert_eq!(
        answered(&mut c_join).error,
        code(ResponseError::UnknownMemberId)
    );
    assert_eq!(h.state(), ClassicGroupState::PreparingRebalance);

    let _ = h.advance_to_next_deadline();
    assert_eq!(h.state(), ClassicGroupState::PreparingRebalance);
    assert_eq!(h.group.generation_id(), generation);
    assert_eq!(h.member_ids().len(), 2);
    let _ = h.group.take_dirty();

    assert_eq!(h.advance_to_next_deadline(), sessions_end);
    assert_eq!(h.state(), ClassicGroupState::Empty);
    assert_eq!(h.group.generation_id(), generation + 1);
    assert!(h.group.take_dirty());
}
