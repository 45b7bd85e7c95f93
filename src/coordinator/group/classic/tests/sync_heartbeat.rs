//! SyncGroup and Heartbeat.

use super::*;

// ---- SyncGroup -----------------------------------------------------------------------------

#[test]
fn follower_sync_parks_until_the_leader_sends_the_assignment() {
    let mut h = Harness::with_initial_delay(INITIAL_DELAY_MS);
    let results = h.form(&["a", "b"]);
    let (leader, follower) = leader_and_follower(&results);
    let generation = leader.generation_id;

    let mut follower_sync = h.sync(&follower.member_id, generation, &[]);
    assert_parked(&mut follower_sync);
    assert_eq!(h.state(), ClassicGroupState::CompletingRebalance);

    let mut leader_sync = h.sync(
        &leader.member_id,
        generation,
        &[
            (&leader.member_id, "to-leader"),
            (&follower.member_id, "to-follower"),
        ],
    );
    let leader_sync = answered(&mut leader_sync);
    let follower_sync = answered(&mut follower_sync);
    assert_eq!(h.state(), ClassicGroupState::Stable);
    assert_eq!(leader_sync.error, NONE);
    assert_eq!(leader_sync.assignment, bytes("to-leader"));
    assert_eq!(follower_sync.error, NONE);
    assert_eq!(follower_sync.assignment, bytes("to-follower"));
    assert_eq!(follower_sync.protocol_type.as_deref(), Some("consumer"));
    assert_eq!(follower_sync.protocol_name.as_deref(), Some("range"));

    // A follower that syncs once the group is Stable gets its assignment at once.
    let mut again = h.sync(&follower.member_id, generation, &[]);
    assert_eq!(answered(&mut again).assignment, bytes("to-follower"));
}

#[test]
fn members_the_leader_leaves_out_get_an_empty_assignment() {
    let mut h = Harness::with_initial_delay(INITIAL_DELAY_MS);
    let results = h.form(&["a", "b", "c"]);
    let (leader, _) = leader_and_follower(&results);
    let (leader_id, generation) = (leader.member_id.clone(), leader.generation_id);
    let mut follower_syncs: Vec<_> = results
        .iter()
        .filter(|r| r.member_id != leader_id)
        .map(|r| h.sync(&r.member_id, generation, &[]))
        .collect();

    let mut leader_sync = h.sync(&leader_id, generation, &[(&leader_id, "everything")]);
    assert_eq!(answered(&mut leader_sync).assignment, bytes("everything"));
    for sync in &mut follower_syncs {
        let result = answered(sync);
        assert_eq!(result.error, NONE);
        assert!(result.assignment.is_empty());
    }
}

#[test]
fn sync_with_a_wrong_generation_or_unknown_member_fails() {
    let mut h = Harness::with_initial_delay(INITIAL_DELAY_MS);
    let results = h.form(&["a", "b"]);
    let (_, follower) = leader_and_follower(&results);

    let mut wrong_generation = h.sync(&follower.member_id, follower.generation_id + 1, &[]);
    assert_eq!(answered(&mut wrong_generation).error, 22);
    let mut unknown = h.sync("nobody", follower.generation_id, &[]);
    assert_eq!(answered(&mut unknown).error, 25);
    assert_eq!(h.state(), ClassicGroupState::CompletingRebalance);
}

#[test]
fn sync_during_preparing_rebalance_is_rebalance_in_progress() {
    let mut h = Harness::with_initial_delay(INITIAL_DELAY_MS);
    let results = h.form_stable(&["a", "b"]);
    let _new_member = h.join(member("c"));
    assert_eq!(h.state(), ClassicGroupState::PreparingRebalance);

    let mut sync = h.sync(&results[0].member_id, results[0].generation_id, &[]);
    assert_eq!(
        answered(&mut sync).error,
        code(ResponseError::RebalanceInProgress)
    );
    assert_eq!(code(ResponseError::RebalanceInProgress), 27);
}

#[test]
fn a_new_rebalance_answers_parked_syncs_with_rebalance_in_progress() {
    let mut h = Harness::with_initial_delay(INITIAL_DELAY_MS);
    let results = h.form(&["a", "b"]);
    let (_, follower) = leader_and_follower(&results);
    let mut follower_sync = h.sync(&follower.member_id, follower.generation_id, &[]);
    assert_parked(&mut follower_sync);

    // A new member while the leader computes the assignment: the assignment is stale.
    let _new_member = h.join(member("c"));
    assert_eq!(h.state(), ClassicGroupState::PreparingRebalance);
    assert_eq!(
        answered(&mut follower_sync).error,
        code(ResponseError::RebalanceInProgress)
    );
}

// ---- Heartbeat -----------------------------------------------------------------------------

#[test]
fn heartbeat_answers_by_state_member_and_generation() {
    let mut h = Harness::with_initial_delay(INITIAL_DELAY_MS);
    let results = h.form_stable(&["a", "b"]);
    let (a, generation) = (results[0].member_id.clone(), results[0].generation_id);

    assert_eq!(h.heartbeat(&a, generation), Ok(()));
    assert_eq!(
        h.heartbeat(&a, generation - 1),
        Err(ResponseError::IllegalGeneration)
    );
    assert_eq!(
        h.heartbeat("nobody", generation),
        Err(ResponseError::UnknownMemberId)
    );

    let _new_member = h.join(member("c"));
    assert_eq!(
        h.heartbeat(&a, generation),
        Err(ResponseError::RebalanceInProgress)
    );
    // An unknown member or an old generation is told so even during a rebalance.
    assert_eq!(
        h.heartbeat("nobody", generation),
        Err(ResponseError::UnknownMemberId)
    );
    assert_eq!(
        h.heartbeat(&a, generation - 1),
        Err(ResponseError::IllegalGeneration)
    );
}

#[test]
fn heartbeat_in_completing_rebalance_is_ok() {
    let mut h = Harness::with_initial_delay(INITIAL_DELAY_MS);
    let results = h.form(&["a", "b"]);
    for result in &results {
        assert_eq!(h.heartbeat(&result.member_id, result.generation_id), Ok(()));
    }
}

#[test]
fn session_expiry_removes_the_member_and_rebalances() {
    let mut h = Harness::with_initial_delay(INITIAL_DELAY_MS);
    let results = h.form_stable(&["a", "b"]);
    let (a, b) = (results[0].member_id.clone(), results[1].member_id.clone());
    let generation = results[0].generation_id;
    let half_session = i64::from(SESSION_MS) / 2;

    h.advance(half_session);
    assert_eq!(h.heartbeat(&a, generation), Ok(()));
    h.advance(half_session - 1);
    assert_eq!(h.state(), ClassicGroupState::Stable);
    // b's session ends now; a's was renewed half a session ago.
    h.advance(1);
    assert_eq!(h.member_ids(), vec![a.clone()]);
    assert_eq!(h.state(), ClassicGroupState::PreparingRebalance);
    assert_eq!(
        h.heartbeat(&b, generation),
        Err(ResponseError::UnknownMemberId)
    );
    assert_eq!(
        h.heartbeat(&a, generation),
        Err(ResponseError::RebalanceInProgress)
    );

    let again = h.join_now(rejoin("a", &a));
    assert_eq!((again.error, again.generation_id), (NONE, generation + 1));
    assert_eq!(again.leader, a);
    assert_eq!(again.members.len(), 1);
}

#[test]
fn members_parked_in_join_or_sync_do_not_expire() {
    let mut h = Harness::with_initial_delay(INITIAL_DELAY_MS);
    let results = h.form_stable(&["a", "b"]);
    let (a, b) = (results[0].member_id.clone(), results[1].member_id.clone());
    let generation = results[0].generation_id;

    // a rejoins and waits in JoinGroup; b keeps heartbeating but is slow to rejoin.
    let mut a_join = h.join(rejoin("a", &a));
    assert_eq!(h.state(), ClassicGroupState::PreparingRebalance);
    for _ in 0..5 {
        h.advance(i64::from(SESSION_MS) / 2);
        assert_eq!(
            h.heartbeat(&b, generation),
            Err(ResponseError::RebalanceInProgress)
        );
    }
    assert_parked(&mut a_join);
    let mut b_join = h.join(rejoin("b", &b));
    let a_joined = answered(&mut a_join);
    let b_joined = answered(&mut b_join);
    assert_eq!(a_joined.generation_id, generation + 1);
    assert_eq!(b_joined.generation_id, generation + 1);

    // The follower waits in SyncGroup for longer than its session; the leader heartbeats.
    let joined = [a_joined, b_joined];
    let (leader, follower) = leader_and_follower(&joined);
    let (leader, follower) = (leader.member_id.clone(), follower.member_id.clone());
    let mut follower_sync = h.sync(&follower, generation + 1, &[]);
    for _ in 0..3 {
        h.advance(i64::from(SESSION_MS) / 2);
        assert_eq!(h.heartbeat(&leader, generation + 1), Ok(()));
    }
    assert_parked(&mut follower_sync);
    assert_eq!(h.member_ids().len(), 2);
    let mut leader_sync = h.sync(&leader, generation + 1, &[(&follower, "f")]);
    assert_eq!(answered(&mut leader_sync).error, NONE);
    assert_eq!(answered(&mut follower_sync).assignment, bytes("f"));
}

#[test]
fn a_session_restarts_when_a_parked_sync_is_answered() {
    // The follower parks its SyncGroup and cannot heartbeat while it waits; the leader takes
    // longer than a session to assign. Kafka's `propagateAssignment` restarts the follower's
    // session when it answers, so the follower is not expired the moment it gets its assignment.
    let mut h = Harness::with_initial_delay(INITIAL_DELAY_MS);
    let results = h.form(&["a", "b"]);
    let (leader, follower) = leader_and_follower(&results);
    let (leader, follower) = (leader.member_id.clone(), follower.member_id.clone());
    let generation = results[0].generation_id;
    let mut follower_sync = h.sync(&follower, generation, &[]);
    for _ in 0..3 {
        h.advance(i64::from(SESSION_MS) / 2);
        assert_eq!(h.heartbeat(&leader, generation), Ok(()));
    }
    let mut leader_sync = h.sync(&leader, generation, &[(&follower, "f")]);
    assert_eq!(answered(&mut leader_sync).error, NONE);
    assert_eq!(answered(&mut follower_sync).assignment, bytes("f"));

    h.advance(i64::from(SESSION_MS) - 1);
    assert_eq!(h.heartbeat(&follower, generation), Ok(()));
    assert_eq!(h.state(), ClassicGroupState::Stable);
}

#[test]
fn a_session_restarts_when_a_parked_sync_is_told_to_rejoin() {
    // As above, but the answer is REBALANCE_IN_PROGRESS: the follower gets a whole session to
    // rejoin rather than being expired for the time it spent parked.
    let mut h = Harness::with_initial_delay(INITIAL_DELAY_MS);
    let results = h.form(&["a", "b"]);
    let (leader, follower) = leader_and_follower(&results);
    let (leader, follower) = (leader.member_id.clone(), follower.member_id.clone());
    let generation = results[0].generation_id;
    let mut follower_sync = h.sync(&follower, generation, &[]);
    for _ in 0..3 {
        h.advance(i64::from(SESSION_MS) / 2);
        assert_eq!(h.heartbeat(&leader, generation), Ok(()));
    }
    let _new_member = h.join(member("c"));
    assert_eq!(
        answered(&mut follower_sync).error,
        code(ResponseError::RebalanceInProgress)
    );

    h.advance(1);
    assert!(h.member_ids().contains(&follower));
    let mut b_join = h.join(rejoin("b", &follower));
    assert_parked(&mut b_join);
}
