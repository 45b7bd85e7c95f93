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

mod deadlines_offsets_persistence;
mod join;
mod random_schedules;
mod rebalance_leave;
mod static_membership;
mod sync_heartbeat;

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
