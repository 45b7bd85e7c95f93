//! The sync deadline, offset commit validation and persistence.

use super::*;

// ---- Sync deadline -------------------------------------------------------------------------

#[test]
fn members_that_never_sync_are_removed_and_the_group_rebalances() {
    let mut h = Harness::with_initial_delay(INITIAL_DELAY_MS);
    let results = h.form(&["a", "b"]);
    let (leader, follower) = leader_and_follower(&results);
    let (leader, follower) = (leader.member_id.clone(), follower.member_id.clone());
    let generation = results[0].generation_id;
    let sync_deadline = h.now_ms + i64::from(REBALANCE_MS);

    let mut leader_sync = h.sync(&leader, generation, &[(&leader, "l"), (&follower, "f")]);
    assert_eq!(answered(&mut leader_sync).error, NONE);
    assert_eq!(h.state(), ClassicGroupState::Stable);
    // The follower heartbeats (so its session lives) but never sends SyncGroup.
    while h.now_ms + 5_000 < sync_deadline {
        h.advance(5_000);
        assert_eq!(h.heartbeat(&follower, generation), Ok(()));
        assert_eq!(h.heartbeat(&leader, generation), Ok(()));
    }
    assert_eq!(h.group.next_deadline(), Some(sync_deadline));
    let _ = h.advance_to_next_deadline();

    assert_eq!(h.member_ids(), vec![leader.clone()]);
    assert_eq!(h.state(), ClassicGroupState::PreparingRebalance);
    assert_eq!(
        h.heartbeat(&leader, generation),
        Err(ResponseError::RebalanceInProgress)
    );
}

#[test]
fn a_leader_that_never_syncs_empties_the_group() {
    let mut h = Harness::with_initial_delay(INITIAL_DELAY_MS);
    let results = h.form(&["a", "b"]);
    let generation = results[0].generation_id;
    let sync_deadline = h.now_ms + i64::from(REBALANCE_MS);
    // Both heartbeat, nobody syncs.
    while h.now_ms + 5_000 < sync_deadline {
        h.advance(5_000);
        for result in &results {
            assert_eq!(h.heartbeat(&result.member_id, generation), Ok(()));
        }
    }
    assert_eq!(h.advance_to_next_deadline(), sync_deadline);
    assert!(h.group.is_empty());
    assert_eq!(h.state(), ClassicGroupState::Empty);
    assert_eq!(h.group.generation_id(), generation + 1);
}

// ---- Offset commit validation --------------------------------------------------------------

#[test]
fn offset_commit_validation_follows_the_group_state() {
    let mut h = Harness::with_initial_delay(INITIAL_DELAY_MS);
    // Admin clients and manual assignment commit with generation -1 into an Empty group.
    assert_eq!(h.group.validate_offset_commit("", None, -1), Ok(()));

    let results = h.form(&["a", "b"]);
    let (a, generation) = (results[0].member_id.clone(), results[0].generation_id);
    assert_eq!(
        h.group.validate_offset_commit("", None, -1),
        Err(ResponseError::UnknownMemberId)
    );
    assert_eq!(
        h.group.validate_offset_commit("nobody", None, generation),
        Err(ResponseError::UnknownMemberId)
    );
    assert_eq!(
        h.group.validate_offset_commit(&a, None, generation + 1),
        Err(ResponseError::IllegalGeneration)
    );
    // Joined but not yet assigned.
    assert_eq!(
        h.group.validate_offset_commit(&a, None, generation),
        Err(ResponseError::RebalanceInProgress)
    );
}

#[test]
fn offset_commit_is_valid_in_stable_and_preparing_rebalance() {
    let mut h = Harness::with_initial_delay(INITIAL_DELAY_MS);
    let results = h.form_stable(&["a", "b"]);
    let (a, generation) = (results[0].member_id.clone(), results[0].generation_id);
    assert_eq!(h.group.validate_offset_commit(&a, None, generation), Ok(()));
    // Kafka lets members commit what they consumed while the group prepares a rebalance.
    let _new_member = h.join(member("c"));
    assert_eq!(h.state(), ClassicGroupState::PreparingRebalance);
    assert_eq!(h.group.validate_offset_commit(&a, None, generation), Ok(()));
}

// ---- Persistence ---------------------------------------------------------------------------

#[test]
fn a_stable_group_reloads_stable_from_its_record() {
    let mut h = Harness::with_initial_delay(INITIAL_DELAY_MS);
    let results = h.form_stable(&["a", "b"]);
    let record = h.group.to_record();
    assert_eq!(record.generation, results[0].generation_id);
    assert_eq!(record.leader.as_deref(), Some(results[0].leader.as_str()));
    assert_eq!(record.protocol.as_deref(), Some("range"));
    assert_eq!(record.protocol_type, "consumer");

    let later = h.now_ms + 60_000;
    let mut reloaded = ClassicGroup::from_record("g", record.clone(), later);
    assert_eq!(reloaded.state(), ClassicGroupState::Stable);
    assert_eq!(reloaded.generation_id(), results[0].generation_id);
    assert_eq!(reloaded.protocol_name(), Some("range"));
    assert_eq!(reloaded.protocol_type(), Some("consumer"));
    for result in &results {
        let member = reloaded
            .members()
            .find(|m| m.member_id == result.member_id)
            .expect("member reloaded");
        assert_eq!(member.assignment, bytes(&assignment_for(&result.member_id)));
    }
    assert_eq!(reloaded.to_record(), record);

    // Reloaded members carry on: sessions restart at load time.
    let (a, generation) = (results[0].member_id.as_str(), results[0].generation_id);
    assert_eq!(reloaded.heartbeat(a, None, generation, later), Ok(()));
    let (responder, mut sync) = oneshot::channel();
    reloaded.sync(
        a,
        None,
        generation,
        None,
        None,
        Vec::new(),
        later,
        responder,
    );
    assert_eq!(answered(&mut sync).assignment, bytes(&assignment_for(a)));
}

#[test]
fn an_empty_group_reloads_empty() {
    let mut h = Harness::new();
    let joined = h.join_now(member("a"));
    assert_eq!(h.leave(&joined.member_id), Ok(joined.member_id.clone()));
    assert_eq!(h.state(), ClassicGroupState::Empty);

    let record = h.group.to_record();
    assert!(record.members.is_empty());
    let reloaded = ClassicGroup::from_record("g", record, h.now_ms + 1);
    assert_eq!(reloaded.state(), ClassicGroupState::Empty);
    assert_eq!(reloaded.generation_id(), 2);
    assert!(reloaded.is_empty());
}

#[test]
fn the_group_is_dirty_after_a_completed_sync_and_after_it_empties() {
    let mut h = Harness::with_initial_delay(INITIAL_DELAY_MS);
    let results = h.form(&["a", "b"]);
    // Kafka writes the group only with the leader's assignment, not at the end of the join.
    assert!(!h.group.take_dirty());

    let (leader, follower) = leader_and_follower(&results);
    let (leader, follower) = (leader.member_id.clone(), follower.member_id.clone());
    let mut sync = h.sync(&leader, results[0].generation_id, &[]);
    assert_eq!(answered(&mut sync).error, NONE);
    assert!(h.group.take_dirty());
    assert!(!h.group.take_dirty());

    assert_eq!(h.leave(&follower), Ok(follower.clone()));
    assert_eq!(h.leave(&leader), Ok(leader.clone()));
    assert_eq!(h.state(), ClassicGroupState::Empty);
    assert!(h.group.take_dirty());
}
