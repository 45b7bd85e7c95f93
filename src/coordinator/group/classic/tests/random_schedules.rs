//! Many members, random schedules.

use super::*;

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
