//! Tests of the classic group state machine against Kafka's semantics: `ClassicGroup` and the
//! classic-group half of `GroupMetadataManager` (and the older `GroupCoordinator.scala`).
//!
//! How: each test drives one [`ClassicGroup`] through a [`Harness`] that owns the clock. A parked
//! JoinGroup or SyncGroup is a oneshot receiver; `try_recv` tells whether the answer has arrived
//! (answered), not yet (parked) or never will (dropped). Time moves only through
//! [`Harness::advance`], which calls `tick` like the coordinator's timer would.

use std::fmt::Debug;

use bytes::Bytes;
use kafka_protocol::error::ResponseError;
use proptest::prelude::*;
use tokio::sync::oneshot::{self, Receiver, error::TryRecvError};

use super::*;

const SESSION_MS: i32 = 10_000;
const REBALANCE_MS: i32 = 30_000;
const INITIAL_DELAY_MS: i32 = 3_000;
const START_MS: i64 = 1_000_000;

const NONE: i16 = 0;

// ---- Harness -------------------------------------------------------------------------------

/// One group, its config and its clock.
struct Harness {
    group: ClassicGroup,
    config: ClassicGroupConfig,
    now_ms: i64,
}

impl Harness {
    /// A group whose first join is answered at once (`group.initial.rebalance.delay.ms` = 0).
    fn new() -> Harness {
        Harness::with_initial_delay(0)
    }

    fn with_initial_delay(initial_rebalance_delay_ms: i32) -> Harness {
        Harness {
            group: ClassicGroup::new("g", START_MS),
            config: ClassicGroupConfig {
                min_session_timeout_ms: 1_000,
                max_session_timeout_ms: 300_000,
                initial_rebalance_delay_ms,
                max_size: 1_000,
            },
            now_ms: START_MS,
        }
    }

    fn join(&mut self, request: JoinRequest) -> Receiver<JoinResult> {
        let (responder, receiver) = oneshot::channel();
        self.group
            .join(request, &self.config, self.now_ms, responder);
        receiver
    }

    /// A join that must be answered at once.
    fn join_now(&mut self, request: JoinRequest) -> JoinResult {
        answered(&mut self.join(request))
    }

    /// A SyncGroup; `assignments` are (member id, assignment) and only the leader sends any.
    fn sync(
        &mut self,
        member_id: &str,
        generation_id: i32,
        assignments: &[(&str, &str)],
    ) -> Receiver<SyncResult> {
        let assignments = assignments
            .iter()
            .map(|(member, assignment)| ((*member).to_owned(), bytes(assignment)))
            .collect();
        self.sync_full(member_id, None, generation_id, assignments)
    }

    fn sync_full(
        &mut self,
        member_id: &str,
        group_instance_id: Option<&str>,
        generation_id: i32,
        assignments: Vec<(String, Bytes)>,
    ) -> Receiver<SyncResult> {
        let (responder, receiver) = oneshot::channel();
        self.group.sync(
            member_id,
            group_instance_id,
            generation_id,
            Some("consumer"),
            None,
            assignments,
            self.now_ms,
            responder,
        );
        receiver
    }

    fn heartbeat(&mut self, member_id: &str, generation_id: i32) -> Result<(), ResponseError> {
        self.group
            .heartbeat(member_id, None, generation_id, self.now_ms)
    }

    fn leave(&mut self, member_id: &str) -> Result<String, ResponseError> {
        self.group.leave(member_id, None, self.now_ms)
    }

    /// Moves the clock and lets the group's timer fire.
    fn advance(&mut self, ms: i64) {
        self.now_ms += ms;
        self.group.tick(self.now_ms);
    }

    /// Moves the clock to the group's next deadline and fires it.
    fn advance_to_next_deadline(&mut self) -> i64 {
        let deadline = self.group.next_deadline().expect("a deadline");
        assert!(
            deadline >= self.now_ms,
            "deadline {deadline} is in the past"
        );
        self.advance(deadline - self.now_ms);
        deadline
    }

    /// Fires deadlines until the initial rebalance completes. With several members the first
    /// deadline is extended once: members joined after the first one.
    fn finish_initial_delay(&mut self) {
        while self.state() == ClassicGroupState::PreparingRebalance {
            let _ = self.advance_to_next_deadline();
        }
    }

    fn state(&self) -> ClassicGroupState {
        self.group.state()
    }

    fn member_ids(&self) -> Vec<String> {
        let mut ids: Vec<String> = self.group.members().map(|m| m.member_id.clone()).collect();
        ids.sort();
        ids
    }

    /// Members `clients` join an empty group during the initial delay, which then completes:
    /// returns their join answers in `clients` order (the group is CompletingRebalance).
    fn form(&mut self, clients: &[&str]) -> Vec<JoinResult> {
        self.form_with(clients.iter().map(|c| member(c)).collect())
    }

    /// Like [`Harness::form`], with these join requests.
    fn form_with(&mut self, requests: Vec<JoinRequest>) -> Vec<JoinResult> {
        assert_eq!(self.state(), ClassicGroupState::Empty);
        assert!(
            self.config.initial_rebalance_delay_ms > 0,
            "form() needs the initial delay to gather all members in one generation"
        );
        let mut receivers: Vec<_> = requests.into_iter().map(|r| self.join(r)).collect();
        for receiver in &mut receivers {
            assert_parked(receiver);
        }
        self.finish_initial_delay();
        let results: Vec<JoinResult> = receivers.iter_mut().map(answered).collect();
        for result in &results {
            assert_eq!(result.error, NONE, "{result:?}");
        }
        assert_eq!(self.state(), ClassicGroupState::CompletingRebalance);
        results
    }

    /// Like [`Harness::form`], then every member syncs and the leader gives each member the
    /// assignment `for-<member id>`: the group is Stable.
    fn form_stable(&mut self, clients: &[&str]) -> Vec<JoinResult> {
        self.form_stable_with(clients.iter().map(|c| member(c)).collect())
    }

    /// Like [`Harness::form_stable`], with these join requests.
    fn form_stable_with(&mut self, requests: Vec<JoinRequest>) -> Vec<JoinResult> {
        let results = self.form_with(requests);
        let generation = results[0].generation_id;
        let leader = results[0].leader.clone();
        let mut follower_syncs = Vec::new();
        for result in results.iter().filter(|r| r.member_id != leader) {
            follower_syncs.push(self.sync(&result.member_id, generation, &[]));
        }
        let assignments: Vec<(String, String)> = results
            .iter()
            .map(|r| (r.member_id.clone(), assignment_for(&r.member_id)))
            .collect();
        let assignments: Vec<(&str, &str)> = assignments
            .iter()
            .map(|(m, a)| (m.as_str(), a.as_str()))
            .collect();
        let leader_sync = answered(&mut self.sync(&leader, generation, &assignments));
        assert_eq!(leader_sync.error, NONE);
        for receiver in &mut follower_syncs {
            assert_eq!(answered(receiver).error, NONE);
        }
        assert_eq!(self.state(), ClassicGroupState::Stable);
        results
    }
}

// ---- Requests and answers ------------------------------------------------------------------

fn bytes(s: &str) -> Bytes {
    Bytes::copy_from_slice(s.as_bytes())
}

fn assignment_for(member_id: &str) -> String {
    format!("for-{member_id}")
}

/// The subscription metadata a client sends for `protocol`.
fn metadata(client: &str, protocol: &str) -> Bytes {
    bytes(&format!("{client}/{protocol}"))
}

/// A new dynamic member's JoinGroup at v3 (no KIP-394 handshake), supporting `range`.
fn member(client: &str) -> JoinRequest {
    with_protocols(client, &["range"])
}

fn with_protocols(client: &str, protocols: &[&str]) -> JoinRequest {
    JoinRequest {
        member_id: String::new(),
        group_instance_id: None,
        protocol_type: "consumer".to_owned(),
        protocols: protocols
            .iter()
            .map(|p| ((*p).to_owned(), metadata(client, p)))
            .collect(),
        session_timeout_ms: SESSION_MS,
        rebalance_timeout_ms: REBALANCE_MS,
        client_id: client.to_owned(),
        client_host: "/127.0.0.1".to_owned(),
        require_known_member_id: false,
        supports_skip_assignment: false,
    }
}

/// A known member's rejoin.
fn rejoin(client: &str, member_id: &str) -> JoinRequest {
    JoinRequest {
        member_id: member_id.to_owned(),
        ..member(client)
    }
}

/// A static member (KIP-345) whose `group.instance.id` is `instance-<client>`.
fn static_member(client: &str) -> JoinRequest {
    JoinRequest {
        group_instance_id: Some(instance_id(client)),
        ..member(client)
    }
}

fn instance_id(client: &str) -> String {
    format!("instance-{client}")
}

fn answered<T: Debug>(receiver: &mut Receiver<T>) -> T {
    match receiver.try_recv() {
        Ok(answer) => answer,
        Err(error) => panic!("expected an answer, got {error:?}"),
    }
}

fn assert_parked<T: Debug>(receiver: &mut Receiver<T>) {
    assert_eq!(receiver.try_recv().err(), Some(TryRecvError::Empty));
}

fn leader_and_follower(results: &[JoinResult]) -> (&JoinResult, &JoinResult) {
    let leader = results
        .iter()
        .find(|r| r.member_id == r.leader)
        .expect("a leader");
    let follower = results
        .iter()
        .find(|r| r.member_id != r.leader)
        .expect("a follower");
    (leader, follower)
}

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

// ---- Many members, random schedules --------------------------------------------------------

/// A well-behaved consumer: it completes the handshake, rejoins when told to, syncs after each
/// join (assigning as leader), and heartbeats otherwise.
#[derive(Debug)]
struct Client {
    name: String,
    /// `group.instance.id` of a static client.
    instance_id: Option<String>,
    member_id: String,
    generation_id: i32,
    join: Option<Receiver<JoinResult>>,
    sync: Option<Receiver<SyncResult>>,
}

impl Client {
    fn new(name: String, is_static: bool) -> Client {
        Client {
            instance_id: is_static.then(|| instance_id(&name)),
            name,
            member_id: String::new(),
            generation_id: -1,
            join: None,
            sync: None,
        }
    }

    fn send_join(&mut self, h: &mut Harness) {
        self.join = Some(h.join(JoinRequest {
            require_known_member_id: true,
            group_instance_id: self.instance_id.clone(),
            ..rejoin(&self.name, &self.member_id)
        }));
    }

    /// Reacts to whatever arrived; true if it sent something.
    fn step(&mut self, h: &mut Harness) -> bool {
        if let Some(receiver) = &mut self.join {
            let result = match receiver.try_recv() {
                Err(TryRecvError::Empty) => return false,
                // Replaced by a later join of ours: that one will be answered.
                Err(TryRecvError::Closed) => {
                    self.join = None;
                    return false;
                }
                Ok(result) => result,
            };
            self.join = None;
            if result.error == NONE {
                self.member_id = result.member_id;
                self.generation_id = result.generation_id;
                let assignments = result
                    .members
                    .iter()
                    .map(|m| (m.member_id.clone(), bytes(&assignment_for(&m.member_id))))
                    .collect();
                self.sync = Some(h.sync_full(
                    &self.member_id,
                    self.instance_id.as_deref(),
                    self.generation_id,
                    assignments,
                ));
            } else {
                // MEMBER_ID_REQUIRED hands out an id; other errors mean start over.
                self.member_id = result.member_id;
                if result.error != code(ResponseError::MemberIdRequired) {
                    self.member_id.clear();
                }
                self.send_join(h);
            }
            return true;
        }
        if let Some(receiver) = &mut self.sync {
            let result = match receiver.try_recv() {
                Err(TryRecvError::Empty) => return false,
                Err(TryRecvError::Closed) => panic!("a SyncGroup was dropped unanswered"),
                Ok(result) => result,
            };
            self.sync = None;
            if result.error == NONE {
                return false;
            }
            if result.error != code(ResponseError::RebalanceInProgress) {
                self.member_id.clear();
            }
            self.send_join(h);
            return true;
        }
        let instance_id = self.instance_id.as_deref();
        match h
            .group
            .heartbeat(&self.member_id, instance_id, self.generation_id, h.now_ms)
        {
            Ok(()) => false,
            Err(ResponseError::RebalanceInProgress) => {
                self.send_join(h);
                true
            }
            Err(_) => {
                self.member_id.clear();
                self.send_join(h);
                true
            }
        }
    }

    /// Leaves the group, if it knows its member id; abandons whatever it waits for.
    fn leave(&mut self, h: &mut Harness) -> Result<String, ResponseError> {
        let left = h
            .group
            .leave(&self.member_id, self.instance_id.as_deref(), h.now_ms);
        self.member_id.clear();
        left
    }

    fn is_parked(&self) -> bool {
        self.join.is_some() || self.sync.is_some()
    }
}

/// Lets every client react until nobody has anything left to send (bounded).
fn settle(h: &mut Harness, clients: &mut [Client]) {
    for _ in 0..1_000 {
        let mut progress = false;
        for client in clients.iter_mut() {
            progress |= client.step(h);
        }
        if !progress {
            return;
        }
    }
    panic!("clients did not settle");
}

#[test]
fn two_hundred_members_joining_and_leaving_leave_no_stuck_state() {
    let mut h = Harness::new();
    let mut clients: Vec<Client> = Vec::new();
    for i in 0..200 {
        let mut client = Client::new(format!("c{i}"), false);
        client.send_join(&mut h);
        clients.push(client);
        settle(&mut h, &mut clients);
        // Every third member leaves again, the oldest first.
        if i % 3 == 2 {
            let mut leaving = clients.remove(0);
            let member_id = leaving.member_id.clone();
            assert_eq!(leaving.leave(&mut h), Ok(member_id));
            settle(&mut h, &mut clients);
        }
        assert_eq!(h.state(), ClassicGroupState::Stable, "after member {i}");
        assert_eq!(h.member_ids().len(), clients.len());
        assert!(clients.iter().all(|c| !c.is_parked()));
    }
    while let Some(mut leaving) = clients.pop() {
        let member_id = leaving.member_id.clone();
        assert_eq!(leaving.leave(&mut h), Ok(member_id));
        settle(&mut h, &mut clients);
        let expected = if clients.is_empty() {
            ClassicGroupState::Empty
        } else {
            ClassicGroupState::Stable
        };
        assert_eq!(h.state(), expected);
        assert!(clients.iter().all(|c| !c.is_parked()));
    }
    assert!(h.group.is_empty());
    assert_eq!(h.group.next_deadline(), None);
}

#[derive(Debug, Clone)]
enum Op {
    /// A new client starts joining; static (KIP-345) if true.
    Join(bool),
    /// Client `n` (modulo the number of clients) leaves cleanly.
    Leave(usize),
    /// Client `n` crashes: it stops talking and its parked requests are abandoned.
    Crash(usize),
    /// Time passes; the clients react.
    Advance(i64),
    /// The clients react without time passing.
    Settle,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        3 => any::<bool>().prop_map(Op::Join),
        1 => any::<usize>().prop_map(Op::Leave),
        1 => any::<usize>().prop_map(Op::Crash),
        2 => (0i64..40_000).prop_map(Op::Advance),
        2 => Just(Op::Settle),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    /// Random joins, leaves, crashes and waits never panic, and once every live client leaves and
    /// the timers run out the group is Empty with no request left parked: each one was answered
    /// or dropped.
    #[test]
    fn random_schedules_leave_no_parked_request(
        ops in proptest::collection::vec(op(), 1..60),
        initial_delay in prop_oneof![Just(0), Just(INITIAL_DELAY_MS)],
    ) {
        let mut h = Harness::with_initial_delay(initial_delay);
        let mut clients: Vec<Client> = Vec::new();
        let mut abandoned: Vec<Client> = Vec::new();
        let mut next_name = 0;
        for op in ops {
            match op {
                Op::Join(is_static) => {
                    let mut client = Client::new(format!("c{next_name}"), is_static);
                    next_name += 1;
                    client.send_join(&mut h);
                    clients.push(client);
                }
                Op::Leave(n) if !clients.is_empty() => {
                    let mut leaving = clients.remove(n % clients.len());
                    // A client may not know its id yet, or may have been expired: either way
                    // there may be nothing to leave.
                    let _ = leaving.leave(&mut h);
                    abandoned.push(leaving);
                }
                Op::Crash(n) if !clients.is_empty() => {
                    abandoned.push(clients.remove(n % clients.len()));
                }
                Op::Advance(ms) => {
                    // Live clients heartbeat often enough to keep their sessions.
                    let mut left = ms;
                    while left > 0 {
                        let step = left.min(i64::from(SESSION_MS) / 3);
                        h.advance(step);
                        left -= step;
                        settle(&mut h, &mut clients);
                    }
                }
                Op::Leave(_) | Op::Crash(_) | Op::Settle => settle(&mut h, &mut clients),
            }
        }
        // Everyone still around leaves; then the timers expire whatever the crashed left behind.
        settle(&mut h, &mut clients);
        for mut client in clients.drain(..) {
            let _ = client.leave(&mut h);
            abandoned.push(client);
        }
        for _ in 0..100 {
            if h.group.next_deadline().is_none() {
                break;
            }
            let _ = h.advance_to_next_deadline();
        }
        prop_assert_eq!(h.group.next_deadline(), None);
        prop_assert!(h.group.is_empty(), "members left: {:?}", h.member_ids());
        prop_assert_eq!(h.state(), ClassicGroupState::Empty);
        for client in &mut abandoned {
            if let Some(join) = &mut client.join {
                prop_assert_ne!(join.try_recv().err(), Some(TryRecvError::Empty));
            }
            if let Some(sync) = &mut client.sync {
                prop_assert_ne!(sync.try_recv().err(), Some(TryRecvError::Empty));
            }
        }
    }
}
