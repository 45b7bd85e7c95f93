//! One member of a consumer group (Kafka's `ConsumerGroupMember`): what it subscribes to, as
//! persisted by `ConsumerGroupMemberMetadata` records, and where its reconciliation stands, as
//! persisted by `ConsumerGroupCurrentMemberAssignment` records.

use std::collections::{BTreeMap, BTreeSet};

use uuid::Uuid;

/// Partitions by topic id. Ordered maps and sets, so that equal assignments compare equal, encode
/// to equal bytes and are answered in a stable order.
pub type Assignment = BTreeMap<Uuid, BTreeSet<i32>>;

/// Where a member stands in its reconciliation towards the target assignment (Kafka's
/// `MemberState`; the byte is persisted, so the values are Kafka's).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MemberState {
    /// The member owns what the target epoch gives it, or is at the target epoch.
    Stable,
    /// The member must first revoke partitions the target assignment took away; it stays at its
    /// epoch until a heartbeat no longer lists them as owned.
    UnrevokedPartitions,
    /// The member is at the target epoch but some of its target partitions are still owned by
    /// other members; it receives them once they are released.
    UnreleasedPartitions,
    /// A state this version does not know (read from a log written by a newer one). The member
    /// is fenced unless it rejoins with no partitions.
    Unknown,
}

impl MemberState {
    /// The persisted byte.
    #[must_use]
    pub fn value(self) -> i8 {
        match self {
            MemberState::Stable => 0,
            MemberState::UnrevokedPartitions => 1,
            MemberState::UnreleasedPartitions => 2,
            MemberState::Unknown => 127,
        }
    }

    /// From the persisted byte; anything unknown is [`MemberState::Unknown`].
    #[must_use]
    pub fn from_value(value: i8) -> MemberState {
        match value {
            0 => MemberState::Stable,
            1 => MemberState::UnrevokedPartitions,
            2 => MemberState::UnreleasedPartitions,
            _ => MemberState::Unknown,
        }
    }
}

/// A consumer-group member.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConsumerGroupMember {
    /// Member id: a client-generated UUID (server-generated for v0 joins without one).
    pub member_id: String,
    /// `group.instance.id` of a static member.
    pub instance_id: Option<String>,
    /// `client.rack`; stored and described, not used by the assignors.
    pub rack_id: Option<String>,
    /// The client id of its last heartbeat.
    pub client_id: String,
    /// The client address of its last heartbeat.
    pub client_host: String,
    /// Subscribed topic names. A set: the order a client lists them in is not a change.
    pub subscribed_topic_names: BTreeSet<String>,
    /// Subscribed regular expression (ConsumerGroupHeartbeat v1); empty means none.
    pub subscribed_topic_regex: Option<String>,
    /// How long the member may take to revoke partitions before it is fenced.
    pub rebalance_timeout_ms: i32,
    /// The assignor the member asked for, if any; the group uses the most requested one.
    pub server_assignor: Option<String>,
    /// The epoch the member must send in its next heartbeat.
    pub member_epoch: i32,
    /// The epoch before the last bump: a member whose response was lost retries with it.
    pub previous_member_epoch: i32,
    /// Reconciliation state.
    pub state: MemberState,
    /// Partitions the member owns (or is being given) at `member_epoch`.
    pub assigned_partitions: Assignment,
    /// Partitions the member must give up before it gets anything new.
    pub partitions_pending_revocation: Assignment,
}

impl ConsumerGroupMember {
    /// A member that just joined: epoch 0, nothing assigned.
    #[must_use]
    pub fn new(member_id: &str) -> ConsumerGroupMember {
        ConsumerGroupMember {
            member_id: member_id.to_owned(),
            instance_id: None,
            rack_id: None,
            client_id: String::new(),
            client_host: String::new(),
            subscribed_topic_names: BTreeSet::new(),
            subscribed_topic_regex: None,
            rebalance_timeout_ms: -1,
            server_assignor: None,
            member_epoch: 0,
            previous_member_epoch: 0,
            state: MemberState::Stable,
            assigned_partitions: Assignment::new(),
            partitions_pending_revocation: Assignment::new(),
        }
    }

    /// Whether the member has converged to the target assignment of `target_epoch`.
    #[must_use]
    pub fn is_reconciled_to(&self, target_epoch: i32) -> bool {
        self.state == MemberState::Stable && self.member_epoch == target_epoch
    }

    /// The regular expression, if the member subscribes with a non-empty one (an empty regex
    /// is how a client clears it).
    #[must_use]
    pub fn regex(&self) -> Option<&str> {
        self.subscribed_topic_regex
            .as_deref()
            .filter(|regex| !regex.is_empty())
    }

    /// Whether the persisted metadata (`ConsumerGroupMemberMetadataValue`) differs.
    #[must_use]
    pub fn metadata_differs(&self, other: &ConsumerGroupMember) -> bool {
        self.instance_id != other.instance_id
            || self.rack_id != other.rack_id
            || self.client_id != other.client_id
            || self.client_host != other.client_host
            || self.subscribed_topic_names != other.subscribed_topic_names
            || self.subscribed_topic_regex != other.subscribed_topic_regex
            || self.rebalance_timeout_ms != other.rebalance_timeout_ms
            || self.server_assignor != other.server_assignor
    }

    /// Whether the persisted reconciliation state (`ConsumerGroupCurrentMemberAssignmentValue`)
    /// differs.
    #[must_use]
    pub fn assignment_differs(&self, other: &ConsumerGroupMember) -> bool {
        self.member_epoch != other.member_epoch
            || self.previous_member_epoch != other.previous_member_epoch
            || self.state != other.state
            || self.assigned_partitions != other.assigned_partitions
            || self.partitions_pending_revocation != other.partitions_pending_revocation
    }

    /// Moves the member to `epoch`, remembering the one it had (Kafka's `updateMemberEpoch`).
    pub fn update_member_epoch(&mut self, epoch: i32) {
        self.previous_member_epoch = self.member_epoch;
        self.member_epoch = epoch;
    }
}

/// Whether `owned` lists any partition of `partitions`.
#[must_use]
pub fn intersects(owned: &Assignment, partitions: &Assignment) -> bool {
    owned.iter().any(|(topic_id, owned)| {
        partitions
            .get(topic_id)
            .is_some_and(|set| owned.iter().any(|p| set.contains(p)))
    })
}

/// Number of partitions in an assignment.
#[must_use]
pub fn partition_count(assignment: &Assignment) -> usize {
    assignment.values().map(BTreeSet::len).sum()
}
