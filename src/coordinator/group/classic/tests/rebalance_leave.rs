//! Rebalances of a Stable group and LeaveGroup.

use super::*;

// ---- Rebalance of a Stable group -----------------------------------------------------------

#[test]
fn a_third_member_rebalances_a_stable_group_and_the_join_completes_when_all_rejoined() {
    let mut h = Harness::with_initial_delay(INITIAL_DELAY_MS);
    let results = h.form_stable(&["a", "b"]);
    let (a, b) = (results[0].member_id.clone(), results[1].member_id.clone());
    let (generation, leader) = (results[0].generation_id, results[0].leader.clone());

    let mut c_join = h.join(member("c"));
    assert_parked(&mut c_join);
    assert_eq!(h.state(), ClassicGroupState::PreparingRebalance);

    // The existing members learn about the rebalance from their heartbeats and rejoin.
    assert_eq!(
        h.heartbeat(&a, generation),
        Err(ResponseError::RebalanceInProgress)
    );
    let mut a_join = h.join(rejoin("a", &a));
    assert_parked(&mut a_join);
    assert_parked(&mut c_join);
    assert_eq!(
        h.heartbeat(&b, generation),
        Err(ResponseError::RebalanceInProgress)
    );
    let mut b_join = h.join(rejoin("b", &b));

    let joined: Vec<JoinResult> = [&mut a_join, &mut b_join, &mut c_join]
        .into_iter()
        .map(answered)
        .collect();
    for result in &joined {
        assert_eq!((result.error, result.generation_id), (NONE, generation + 1));
        // The leader rejoined, so it stays the leader.
        assert_eq!(result.leader, leader);
    }
    assert_eq!(h.state(), ClassicGroupState::CompletingRebalance);
    let (new_leader, _) = leader_and_follower(&joined);
    assert_eq!(new_leader.members.len(), 3);
}

#[test]
fn a_member_that_does_not_rejoin_is_removed_at_the_join_deadline() {
    let mut h = Harness::with_initial_delay(INITIAL_DELAY_MS);
    let results = h.form_stable(&["a", "b"]);
    let (a, b) = (results[0].member_id.clone(), results[1].member_id.clone());
    let generation = results[0].generation_id;

    let mut c_join = h.join(member("c"));
    let rebalance_started = h.now_ms;
    let mut a_join = h.join(rejoin("a", &a));
    // b stays alive (heartbeats) but never rejoins.
    while h.now_ms + 5_000 < rebalance_started + i64::from(REBALANCE_MS) {
        h.advance(5_000);
        assert_eq!(
            h.heartbeat(&b, generation),
            Err(ResponseError::RebalanceInProgress)
        );
        assert_parked(&mut a_join);
    }
    assert_eq!(
        h.group.next_deadline(),
        Some(rebalance_started + i64::from(REBALANCE_MS))
    );
    let _ = h.advance_to_next_deadline();

    let a_joined = answered(&mut a_join);
    let c_joined = answered(&mut c_join);
    assert_eq!(a_joined.generation_id, generation + 1);
    assert_eq!(c_joined.generation_id, generation + 1);
    let mut expected = vec![a, c_joined.member_id.clone()];
    expected.sort();
    assert_eq!(h.member_ids(), expected);
    assert_eq!(
        h.heartbeat(&b, generation),
        Err(ResponseError::UnknownMemberId)
    );
}

#[test]
fn a_follower_rejoining_a_stable_group_unchanged_gets_the_current_generation() {
    let mut h = Harness::with_initial_delay(INITIAL_DELAY_MS);
    let results = h.form_stable(&["a", "b"]);
    let (_, follower) = leader_and_follower(&results);
    let client = if follower.member_id == results[0].member_id {
        "a"
    } else {
        "b"
    };
    let again = h.join_now(rejoin(client, &follower.member_id));
    assert_eq!(
        (again.error, again.generation_id),
        (NONE, follower.generation_id)
    );
    assert!(again.members.is_empty());
    assert_eq!(h.state(), ClassicGroupState::Stable);
}

#[test]
fn a_leader_rejoining_a_stable_group_triggers_a_rebalance() {
    let mut h = Harness::with_initial_delay(INITIAL_DELAY_MS);
    let results = h.form_stable(&["a", "b"]);
    let (leader, _) = leader_and_follower(&results);
    let client = if leader.member_id == results[0].member_id {
        "a"
    } else {
        "b"
    };
    let mut join = h.join(rejoin(client, &leader.member_id));
    assert_parked(&mut join);
    assert_eq!(h.state(), ClassicGroupState::PreparingRebalance);
}

// ---- LeaveGroup ----------------------------------------------------------------------------

#[test]
fn leave_by_member_id_rebalances_the_rest() {
    let mut h = Harness::with_initial_delay(INITIAL_DELAY_MS);
    let results = h.form_stable(&["a", "b"]);
    let (a, b) = (results[0].member_id.clone(), results[1].member_id.clone());
    let generation = results[0].generation_id;

    assert_eq!(h.leave(&b), Ok(b.clone()));
    assert_eq!(h.state(), ClassicGroupState::PreparingRebalance);
    assert_eq!(h.member_ids(), vec![a.clone()]);
    assert_eq!(h.leave(&b), Err(ResponseError::UnknownMemberId));

    assert_eq!(
        h.heartbeat(&a, generation),
        Err(ResponseError::RebalanceInProgress)
    );
    let again = h.join_now(rejoin("a", &a));
    assert_eq!((again.error, again.generation_id), (NONE, generation + 1));
    assert_eq!(again.leader, a);
}

#[test]
fn leave_by_instance_id_removes_the_static_member() {
    let mut h = Harness::with_initial_delay(INITIAL_DELAY_MS);
    let mut a = h.join(static_member("a"));
    let mut b = h.join(static_member("b"));
    h.finish_initial_delay();
    let (a, b) = (answered(&mut a), answered(&mut b));

    let removed = h.group.leave("", Some(&instance_id("b")), h.now_ms);
    assert_eq!(removed, Ok(b.member_id.clone()));
    assert_eq!(h.member_ids(), vec![a.member_id.clone()]);
    assert_eq!(
        h.group.leave("", Some(&instance_id("b")), h.now_ms),
        Err(ResponseError::UnknownMemberId)
    );
}

#[test]
fn leave_with_another_members_instance_id_is_fenced() {
    let mut h = Harness::with_initial_delay(INITIAL_DELAY_MS);
    let mut a = h.join(static_member("a"));
    let mut b = h.join(static_member("b"));
    h.finish_initial_delay();
    let (a, _b) = (answered(&mut a), answered(&mut b));

    assert_eq!(
        h.group
            .leave(&a.member_id, Some(&instance_id("b")), h.now_ms),
        Err(ResponseError::FencedInstanceId)
    );
    assert_eq!(code(ResponseError::FencedInstanceId), 82);
    assert_eq!(h.member_ids().len(), 2);
}

#[test]
fn leaving_during_preparing_rebalance_completes_the_join_if_the_rest_joined() {
    let mut h = Harness::with_initial_delay(INITIAL_DELAY_MS);
    let results = h.form_stable(&["a", "b"]);
    let (a, b) = (results[0].member_id.clone(), results[1].member_id.clone());
    let generation = results[0].generation_id;

    let mut c_join = h.join(member("c"));
    let mut a_join = h.join(rejoin("a", &a));
    assert_parked(&mut a_join);
    assert_eq!(h.leave(&b), Ok(b));
    let a_joined = answered(&mut a_join);
    let c_joined = answered(&mut c_join);
    assert_eq!(a_joined.generation_id, generation + 1);
    assert_eq!(c_joined.generation_id, generation + 1);
    assert_eq!(h.state(), ClassicGroupState::CompletingRebalance);
}

#[test]
fn a_member_that_leaves_while_parked_gets_unknown_member_id() {
    let mut h = Harness::with_initial_delay(INITIAL_DELAY_MS);
    let results = h.form(&["a", "b"]);
    let (_, follower) = leader_and_follower(&results);
    let mut sync = h.sync(&follower.member_id, follower.generation_id, &[]);
    assert_eq!(h.leave(&follower.member_id), Ok(follower.member_id.clone()));
    assert_eq!(
        answered(&mut sync).error,
        code(ResponseError::UnknownMemberId)
    );
}
