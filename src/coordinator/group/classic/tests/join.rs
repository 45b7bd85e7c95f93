//! JoinGroup: the KIP-394 handshake, the initial rebalance delay, protocol selection.

use super::*;

// ---- JoinGroup: the KIP-394 handshake ------------------------------------------------------

#[test]
fn v4_join_without_member_id_gets_member_id_required_then_joins_with_it() {
    let mut h = Harness::new();
    let first = h.join_now(JoinRequest {
        require_known_member_id: true,
        ..member("c")
    });
    assert_eq!(first.error, code(ResponseError::MemberIdRequired));
    assert_eq!(first.error, 79);
    assert!(!first.member_id.is_empty());
    // Nothing joined yet: the id is only pending.
    assert_eq!(h.state(), ClassicGroupState::Empty);
    assert!(h.group.is_empty());

    let joined = h.join_now(JoinRequest {
        require_known_member_id: true,
        ..rejoin("c", &first.member_id)
    });
    assert_eq!(joined.error, NONE);
    assert_eq!(joined.member_id, first.member_id);
    assert_eq!(joined.generation_id, 1);
    assert_eq!(joined.leader, first.member_id);
    assert_eq!(h.state(), ClassicGroupState::CompletingRebalance);
}

#[test]
fn pending_member_id_expires_after_the_session_timeout() {
    let mut h = Harness::new();
    let first = h.join_now(JoinRequest {
        require_known_member_id: true,
        ..member("c")
    });
    assert_eq!(
        h.group.next_deadline(),
        Some(START_MS + i64::from(SESSION_MS))
    );
    assert_eq!(
        h.advance_to_next_deadline(),
        START_MS + i64::from(SESSION_MS)
    );
    assert_eq!(h.group.next_deadline(), None);

    let late = h.join_now(rejoin("c", &first.member_id));
    assert_eq!(late.error, code(ResponseError::UnknownMemberId));
    assert!(h.group.is_empty());
}

// ---- JoinGroup: the initial rebalance delay ------------------------------------------------

#[test]
fn first_join_waits_for_the_initial_delay() {
    let mut h = Harness::with_initial_delay(INITIAL_DELAY_MS);
    let mut join = h.join(member("c"));
    assert_parked(&mut join);
    assert_eq!(h.state(), ClassicGroupState::PreparingRebalance);
    let deadline = START_MS + i64::from(INITIAL_DELAY_MS);
    assert_eq!(h.group.next_deadline(), Some(deadline));

    h.advance(i64::from(INITIAL_DELAY_MS) - 1);
    assert_parked(&mut join);

    h.advance(1);
    let result = answered(&mut join);
    assert_eq!((result.error, result.generation_id), (NONE, 1));
    assert_eq!(h.state(), ClassicGroupState::CompletingRebalance);
}

#[test]
fn zero_initial_delay_answers_the_first_join_at_once() {
    let mut h = Harness::new();
    let result = h.join_now(member("c"));
    assert_eq!((result.error, result.generation_id), (NONE, 1));
    assert_eq!(result.leader, result.member_id);
    assert_eq!(result.members.len(), 1);
    assert_eq!(result.members[0].metadata, metadata("c", "range"));
}

#[test]
fn initial_delay_extends_while_members_keep_joining() {
    let mut h = Harness::with_initial_delay(INITIAL_DELAY_MS);
    let delay = i64::from(INITIAL_DELAY_MS);
    let mut a = h.join(member("a"));
    h.advance(2_000);
    let mut b = h.join(member("b"));

    // b arrived during the first delay: wait one more delay.
    h.advance(delay - 2_000);
    assert_parked(&mut a);
    assert_parked(&mut b);
    assert_eq!(h.group.next_deadline(), Some(START_MS + 2 * delay));

    // Nobody arrived during the second delay: done.
    let _ = h.advance_to_next_deadline();
    let (a, b) = (answered(&mut a), answered(&mut b));
    assert_eq!((a.error, b.error), (NONE, NONE));
    assert_eq!((a.generation_id, b.generation_id), (1, 1));
}

#[test]
fn initial_delay_is_bounded_by_the_rebalance_timeout() {
    let mut h = Harness::with_initial_delay(INITIAL_DELAY_MS);
    let request = |client: &str| JoinRequest {
        rebalance_timeout_ms: 10_000,
        ..member(client)
    };
    // Each delay that sees a new member is followed by another, but the whole wait stops at the
    // rebalance timeout (Kafka's InitialDelayedJoin and its `remainingMs`): the third extension
    // would end at 12 s and is cut to 10 s.
    let mut joins = vec![h.join(request("c0"))];
    let schedule = [
        (2_000, 3_000),
        (5_000, 6_000),
        (8_000, 9_000),
        (9_500, 10_000),
    ];
    for (i, (join_at, deadline)) in schedule.into_iter().enumerate() {
        h.advance(START_MS + join_at - h.now_ms);
        joins.push(h.join(request(&format!("c{}", i + 1))));
        assert_eq!(h.group.next_deadline(), Some(START_MS + deadline));
        for join in &mut joins {
            assert_parked(join);
        }
        let _ = h.advance_to_next_deadline();
    }
    for join in &mut joins {
        let result = answered(join);
        assert_eq!((result.error, result.generation_id), (NONE, 1));
    }
    assert_eq!(h.member_ids().len(), 5);
}

// ---- JoinGroup: two members, protocol selection --------------------------------------------

#[test]
fn members_joining_together_share_a_generation_and_only_the_leader_sees_members() {
    let mut h = Harness::with_initial_delay(INITIAL_DELAY_MS);
    let results = h.form(&["a", "b"]);
    let (leader, follower) = leader_and_follower(&results);

    assert_eq!(leader.generation_id, follower.generation_id);
    assert_eq!(leader.leader, follower.leader);
    for result in &results {
        assert_eq!(result.protocol_type.as_deref(), Some("consumer"));
        assert_eq!(result.protocol_name.as_deref(), Some("range"));
    }
    assert!(follower.members.is_empty());
    let mut members: Vec<(String, Bytes)> = leader
        .members
        .iter()
        .map(|m| (m.member_id.clone(), m.metadata.clone()))
        .collect();
    members.sort();
    let mut expected = vec![
        (results[0].member_id.clone(), metadata("a", "range")),
        (results[1].member_id.clone(), metadata("b", "range")),
    ];
    expected.sort();
    assert_eq!(members, expected);
}

#[test]
fn protocol_is_chosen_by_vote_among_the_protocols_all_members_support() {
    let mut h = Harness::with_initial_delay(INITIAL_DELAY_MS);
    // Common to all: range and roundrobin. Votes (each member's first common protocol):
    // a → range (sticky is not common), b → roundrobin, c → range.
    let mut joins = [
        h.join(with_protocols("a", &["sticky", "range", "roundrobin"])),
        h.join(with_protocols("b", &["roundrobin", "range"])),
        h.join(with_protocols("c", &["range", "roundrobin", "sticky"])),
    ];
    h.finish_initial_delay();
    let results: Vec<JoinResult> = joins.iter_mut().map(answered).collect();
    for result in &results {
        assert_eq!(result.protocol_name.as_deref(), Some("range"));
    }
    assert_eq!(h.group.protocol_name(), Some("range"));
    let (leader, _) = leader_and_follower(&results);
    // The leader sees each member's metadata for the chosen protocol.
    for joined in &leader.members {
        let client = results
            .iter()
            .zip(["a", "b", "c"])
            .find(|(r, _)| r.member_id == joined.member_id)
            .map(|(_, c)| c)
            .expect("a known member");
        assert_eq!(joined.metadata, metadata(client, "range"));
    }
}

#[test]
fn protocol_type_mismatch_or_no_common_protocol_is_inconsistent() {
    let mut h = Harness::new();
    let _ = h.join_now(member("a"));
    let inconsistent = code(ResponseError::InconsistentGroupProtocol);

    let other_type = h.join_now(JoinRequest {
        protocol_type: "connect".to_owned(),
        ..member("b")
    });
    assert_eq!(other_type.error, inconsistent);

    let no_common = h.join_now(with_protocols("b", &["roundrobin", "sticky"]));
    assert_eq!(no_common.error, inconsistent);

    let no_protocols = h.join_now(with_protocols("b", &[]));
    assert_eq!(no_protocols.error, inconsistent);

    assert_eq!(h.member_ids().len(), 1);
    assert_eq!(h.state(), ClassicGroupState::CompletingRebalance);
}
