//! Timeouts and topic changes: what changes a group without a heartbeat of the member concerned.
//!
//! A member is fenced (removed, as if it had left) when its session expires, or when it is
//! still revoking partitions at the epoch it was asked to revoke them when its rebalance
//! timeout expires: its partitions must go to other members eventually.

use std::sync::Arc;

use super::{ConsumerGroup, ConsumerGroupConfig};
use crate::coordinator::group::record::CoordinatorRecord;
use crate::metadata::TopicMetadata;

impl ConsumerGroup {
    /// Fences the members whose session or rebalance deadline has passed. Returns the records
    /// to append.
    pub fn expire(
        &mut self,
        topics: &[Arc<TopicMetadata>],
        config: &ConsumerGroupConfig,
        now_ms: i64,
    ) -> Vec<CoordinatorRecord> {
        let mut records = Vec::new();
        let mut fenced = Vec::new();
        for (member_id, timers) in &mut self.timers {
            let member_epoch = self.members.get(member_id).map(|m| m.member_epoch);
            if timers.session_deadline_ms <= now_ms {
                fenced.push(member_id.clone());
                continue;
            }
            if let Some((deadline_ms, epoch)) = timers.rebalance
                && deadline_ms <= now_ms
            {
                // The timer only fences a member still at the epoch it was set for; one that
                // moved on revoked in time.
                timers.rebalance = None;
                if member_epoch == Some(epoch) {
                    fenced.push(member_id.clone());
                }
            }
        }
        for member_id in fenced {
            if self.members.contains_key(&member_id) {
                self.fence_member(&member_id, topics, config, now_ms, &mut records);
            } else {
                let _ = self.timers.remove(&member_id);
            }
        }
        records
    }

    /// The earliest deadline of any member, when `expire` next has work.
    #[must_use]
    pub fn next_deadline(&self) -> Option<i64> {
        self.timers
            .values()
            .flat_map(|t| {
                std::iter::once(t.session_deadline_ms)
                    .chain(t.rebalance.map(|(deadline, _)| deadline))
            })
            .min()
    }

    /// Topics were created, deleted or grew: if the subscribed topics' metadata (or what a
    /// subscribed regex matches) changed, bumps the group epoch and recomputes the target
    /// assignment. Members pick the change up at their next heartbeat.
    pub fn on_metadata_change(
        &mut self,
        topics: &[Arc<TopicMetadata>],
        config: &ConsumerGroupConfig,
        now_ms: i64,
    ) -> Vec<CoordinatorRecord> {
        let mut records = Vec::new();
        if self.members.is_empty() {
            return records;
        }
        let mut bump = self.refresh_regexes(topics, now_ms, &mut records);
        bump |= self.refresh_subscription_metadata(topics, &mut records);
        if bump {
            self.bump_group_epoch(&mut records);
        }
        if self.group_epoch > self.target_assignment_epoch {
            self.compute_target_assignment(config, &mut records);
        }
        records
    }

    /// Removes a member (leave, or fenced by a timeout) and rebalances the others: tombstones
    /// for its records, the subscription without it, a group epoch bump and a new target
    /// assignment. Kafka leaves the target assignment to the next heartbeat of any member;
    /// computing it here gives the same assignment and lets an idle group settle.
    pub(super) fn fence_member(
        &mut self,
        member_id: &str,
        topics: &[Arc<TopicMetadata>],
        config: &ConsumerGroupConfig,
        now_ms: i64,
        records: &mut Vec<CoordinatorRecord>,
    ) {
        self.remove_member(member_id, records);
        let _ = self.refresh_regexes(topics, now_ms, records);
        let _ = self.refresh_subscription_metadata(topics, records);
        self.bump_group_epoch(records);
        if !self.members.is_empty() {
            self.compute_target_assignment(config, records);
        }
    }
}
