//! Loading a group back from `__consumer_offsets`, and deleting it.
//!
//! Replay applies records one at a time, exactly as the heartbeat path changed memory when it
//! wrote them, so any prefix of the log gives a group the state machine can continue from.

use super::member::{Assignment, ConsumerGroupMember};
use super::record::{self, decode_key_string};
use super::{
    ConsumerGroup, ConsumerGroupConfig, LEAVE_GROUP_MEMBER_EPOCH, MemberState, MemberTimers,
};
use crate::coordinator::group::codec::CodecError;
use crate::coordinator::group::record::CoordinatorRecord;

impl ConsumerGroup {
    /// Applies one record of this group (`version` and `key_rest` from
    /// `RecordKey::ConsumerGroup`; `value` `None` for a tombstone).
    ///
    /// # Errors
    /// A value that does not decode, or a key version that is not a consumer-group record.
    pub fn replay(
        &mut self,
        version: i16,
        key_rest: &[u8],
        value: Option<&[u8]>,
    ) -> Result<(), CodecError> {
        match version {
            record::GROUP_METADATA => match value {
                Some(v) => {
                    self.group_epoch = record::decode_epoch(v)?;
                    self.dead = false;
                }
                // The last record of a deletion: the caller drops the group.
                None => self.dead = true,
            },
            record::PARTITION_METADATA => {
                self.subscription_metadata = match value {
                    Some(v) => record::decode_partition_metadata(v)?,
                    None => std::collections::BTreeMap::new(),
                };
            }
            record::MEMBER_METADATA => {
                let member_id = decode_key_string(key_rest)?;
                match value {
                    Some(v) => {
                        let mut member = self.member_or_new(&member_id);
                        record::decode_member_metadata(v, &mut member)?;
                        self.set_member(member);
                    }
                    None => {
                        if let Some(old) = self.members.remove(&member_id) {
                            self.forget_member_indexes(&old);
                        }
                        let _ = self.timers.remove(&member_id);
                    }
                }
            }
            record::TARGET_ASSIGNMENT_METADATA => {
                self.target_assignment_epoch = match value {
                    Some(v) => record::decode_epoch(v)?,
                    None => 0,
                };
            }
            record::TARGET_ASSIGNMENT_MEMBER => {
                let member_id = decode_key_string(key_rest)?;
                let target = match value {
                    Some(v) => record::decode_target_assignment(v)?,
                    None => Assignment::new(),
                };
                if target.is_empty() {
                    let _ = self.target_assignment.remove(&member_id);
                } else {
                    let _ = self.target_assignment.insert(member_id, target);
                }
            }
            record::CURRENT_MEMBER_ASSIGNMENT => {
                let member_id = decode_key_string(key_rest)?;
                match value {
                    Some(v) => {
                        let mut member = self.member_or_new(&member_id);
                        record::decode_current_assignment(v, &mut member)?;
                        self.set_member(member);
                    }
                    None => {
                        // As Kafka: the member is leaving; its metadata tombstone follows.
                        if let Some(old) = self.members.get(&member_id) {
                            let mut member = old.clone();
                            member.member_epoch = LEAVE_GROUP_MEMBER_EPOCH;
                            member.previous_member_epoch = LEAVE_GROUP_MEMBER_EPOCH;
                            member.state = MemberState::Stable;
                            member.assigned_partitions = Assignment::new();
                            member.partitions_pending_revocation = Assignment::new();
                            self.set_member(member);
                        }
                    }
                }
            }
            record::REGULAR_EXPRESSION => {
                let regex = decode_key_string(key_rest)?;
                match value {
                    Some(v) => {
                        let _ = self
                            .resolved_regexes
                            .insert(regex, record::decode_regex(v)?);
                    }
                    None => {
                        let _ = self.resolved_regexes.remove(&regex);
                    }
                }
            }
            _ => return Err(CodecError("not a consumer group record")),
        }
        Ok(())
    }

    fn member_or_new(&self, member_id: &str) -> ConsumerGroupMember {
        self.members
            .get(member_id)
            .cloned()
            .unwrap_or_else(|| ConsumerGroupMember::new(member_id))
    }

    /// Arms the timers after loading: every member gets a full session from `now_ms` (it may
    /// have heartbeated to the previous incarnation just before it stopped), and a member that
    /// was revoking gets a full rebalance timeout.
    pub fn finish_loading(&mut self, config: &ConsumerGroupConfig, now_ms: i64) {
        self.timers.clear();
        for member in self.members.values() {
            let rebalance = (member.state == MemberState::UnrevokedPartitions).then(|| {
                (
                    now_ms + i64::from(member.rebalance_timeout_ms.max(0)),
                    member.member_epoch,
                )
            });
            let _ = self.timers.insert(
                member.member_id.clone(),
                MemberTimers {
                    session_deadline_ms: now_ms + i64::from(config.session_timeout_ms),
                    rebalance,
                },
            );
        }
    }

    /// Tombstones for every record of the group, in Kafka's order (current assignments, target
    /// assignments and their epoch, member metadata, regexes, subscription metadata, and the
    /// group epoch last), for DeleteGroups and for an expired empty group.
    #[must_use]
    pub fn tombstones(&self) -> Vec<CoordinatorRecord> {
        let group = &self.group_id;
        let mut records = Vec::new();
        for member_id in self.members.keys() {
            records.push(record::tombstone(
                record::CURRENT_MEMBER_ASSIGNMENT,
                group,
                Some(member_id),
            ));
        }
        let mut targets: std::collections::BTreeSet<&String> = self.members.keys().collect();
        targets.extend(self.target_assignment.keys());
        for member_id in targets {
            records.push(record::tombstone(
                record::TARGET_ASSIGNMENT_MEMBER,
                group,
                Some(member_id),
            ));
        }
        records.push(record::tombstone(
            record::TARGET_ASSIGNMENT_METADATA,
            group,
            None,
        ));
        for member_id in self.members.keys() {
            records.push(record::tombstone(
                record::MEMBER_METADATA,
                group,
                Some(member_id),
            ));
        }
        for regex in self.resolved_regexes.keys() {
            records.push(record::tombstone(
                record::REGULAR_EXPRESSION,
                group,
                Some(regex),
            ));
        }
        records.push(record::tombstone(record::PARTITION_METADATA, group, None));
        records.push(record::tombstone(record::GROUP_METADATA, group, None));
        records
    }

    /// Whether the group was deleted (its metadata tombstone replayed); the caller drops it.
    #[must_use]
    pub fn is_dead(&self) -> bool {
        self.dead
    }
}
