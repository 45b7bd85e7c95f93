//! A member of a classic group and the answers it waits for.

use bytes::Bytes;
use tokio::sync::oneshot;

/// What a JoinGroup request asks for, in the coordinator's terms.
#[derive(Debug, Clone)]
pub struct JoinRequest {
    /// The member id sent (empty for a new member).
    pub member_id: String,
    /// `group.instance.id` of a static member.
    pub group_instance_id: Option<String>,
    /// E.g. `consumer`.
    pub protocol_type: String,
    /// Supported protocols (assignors) in preference order, with their subscription metadata.
    pub protocols: Vec<(String, Bytes)>,
    /// Session timeout.
    pub session_timeout_ms: i32,
    /// Rebalance timeout (v0 requests use the session timeout).
    pub rebalance_timeout_ms: i32,
    /// Client id from the request header.
    pub client_id: String,
    /// Client address.
    pub client_host: String,
    /// v4+: a new dynamic member first gets MEMBER_ID_REQUIRED with its id.
    pub require_known_member_id: bool,
    /// v9+: a static leader that rejoins a stable group may skip the assignment.
    pub supports_skip_assignment: bool,
}

/// One member in a JoinGroup answer to the leader.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JoinMember {
    /// Member id.
    pub member_id: String,
    /// Static instance id.
    pub group_instance_id: Option<String>,
    /// The member's metadata for the chosen protocol.
    pub metadata: Bytes,
}

/// The answer to a JoinGroup.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JoinResult {
    /// Kafka error code (0 = none).
    pub error: i16,
    /// Generation joined.
    pub generation_id: i32,
    /// The group's protocol type.
    pub protocol_type: Option<String>,
    /// The chosen protocol.
    pub protocol_name: Option<String>,
    /// The leader's member id.
    pub leader: String,
    /// v9: the leader need not assign (a static leader rejoined a stable group).
    pub skip_assignment: bool,
    /// The member's id (assigned by the coordinator for new members).
    pub member_id: String,
    /// For the leader: every member and its metadata; empty for followers.
    pub members: Vec<JoinMember>,
}

impl JoinResult {
    /// An error answer that still tells the member its id (MEMBER_ID_REQUIRED needs that).
    #[must_use]
    pub fn error(error: i16, member_id: &str) -> JoinResult {
        JoinResult {
            error,
            generation_id: -1,
            protocol_type: None,
            protocol_name: None,
            leader: String::new(),
            skip_assignment: false,
            member_id: member_id.to_owned(),
            members: Vec::new(),
        }
    }
}

/// The answer to a SyncGroup.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyncResult {
    /// Kafka error code (0 = none).
    pub error: i16,
    /// The group's protocol type.
    pub protocol_type: Option<String>,
    /// The chosen protocol.
    pub protocol_name: Option<String>,
    /// This member's assignment.
    pub assignment: Bytes,
}

impl SyncResult {
    /// An error answer.
    #[must_use]
    pub fn error(error: i16) -> SyncResult {
        SyncResult {
            error,
            protocol_type: None,
            protocol_name: None,
            assignment: Bytes::new(),
        }
    }
}

/// Where a parked JoinGroup's answer goes.
pub type JoinResponder = oneshot::Sender<JoinResult>;
/// Where a parked SyncGroup's answer goes.
pub type SyncResponder = oneshot::Sender<SyncResult>;

/// A member of a classic group.
#[derive(Debug)]
pub struct ClassicMember {
    /// Member id.
    pub member_id: String,
    /// Static instance id.
    pub group_instance_id: Option<String>,
    /// Client id.
    pub client_id: String,
    /// Client address.
    pub client_host: String,
    /// Rebalance timeout.
    pub rebalance_timeout_ms: i32,
    /// Session timeout.
    pub session_timeout_ms: i32,
    /// Protocol type.
    pub protocol_type: String,
    /// Supported protocols in preference order.
    pub protocols: Vec<(String, Bytes)>,
    /// The assignment of the current generation.
    pub assignment: Bytes,
    /// A JoinGroup parked until the rebalance completes.
    pub awaiting_join: Option<JoinResponder>,
    /// A SyncGroup parked until the leader's assignment arrives.
    pub awaiting_sync: Option<SyncResponder>,
    /// When the member expires without a heartbeat.
    pub session_deadline_ms: i64,
}

impl ClassicMember {
    /// A member from its join request.
    #[must_use]
    pub fn new(member_id: String, request: &JoinRequest, now_ms: i64) -> ClassicMember {
        ClassicMember {
            member_id,
            group_instance_id: request.group_instance_id.clone(),
            client_id: request.client_id.clone(),
            client_host: request.client_host.clone(),
            rebalance_timeout_ms: request.rebalance_timeout_ms,
            session_timeout_ms: request.session_timeout_ms,
            protocol_type: request.protocol_type.clone(),
            protocols: request.protocols.clone(),
            assignment: Bytes::new(),
            awaiting_join: None,
            awaiting_sync: None,
            session_deadline_ms: now_ms.saturating_add(i64::from(request.session_timeout_ms)),
        }
    }

    /// The member's metadata for `protocol`.
    #[must_use]
    pub fn metadata(&self, protocol: &str) -> Bytes {
        self.protocols
            .iter()
            .find(|(name, _)| name == protocol)
            .map(|(_, metadata)| metadata.clone())
            .unwrap_or_default()
    }

    /// Whether the member's protocols are exactly `protocols` (names and metadata).
    #[must_use]
    pub fn same_protocols(&self, protocols: &[(String, Bytes)]) -> bool {
        self.protocols == protocols
    }

    /// Moves the session deadline: the member showed it is alive.
    pub fn touch(&mut self, now_ms: i64) {
        self.session_deadline_ms = now_ms.saturating_add(i64::from(self.session_timeout_ms));
    }

    /// Answers a parked JoinGroup, if any.
    pub fn answer_join(&mut self, result: JoinResult) {
        if let Some(responder) = self.awaiting_join.take() {
            // The requester may have gone (connection closed); nothing to do then.
            let _ = responder.send(result);
        }
    }

    /// Answers a parked SyncGroup, if any.
    pub fn answer_sync(&mut self, result: SyncResult) {
        if let Some(responder) = self.awaiting_sync.take() {
            let _ = responder.send(result);
        }
    }

    /// Answers a parked SyncGroup of a member that stays in the group, and restarts its session:
    /// it could not heartbeat while it waited, and its old deadline may have passed. Kafka's
    /// `propagateAssignment` reschedules the heartbeat of every member it answers, for success
    /// and error alike.
    pub fn answer_sync_and_touch(&mut self, result: SyncResult, now_ms: i64) {
        if self.awaiting_sync.is_some() {
            self.touch(now_ms);
        }
        self.answer_sync(result);
    }
}
