//! The classic protocol's APIs: JoinGroup, SyncGroup, Heartbeat, LeaveGroup.

use bytes::Bytes;
use kafka_protocol::error::ResponseError;
use tokio::sync::oneshot;

use super::{Group, GroupCoordinator, GroupKind, code, state_tombstones};
use crate::coordinator::group::classic::{ClassicGroup, JoinRequest, JoinResult, SyncResult};

impl GroupCoordinator {
    /// JoinGroup. The receiver yields the answer (maybe after a rebalance).
    pub fn join_group(
        &self,
        group_id: &str,
        request: JoinRequest,
    ) -> oneshot::Receiver<JoinResult> {
        let (sender, receiver) = oneshot::channel();
        let reject = |sender: oneshot::Sender<JoinResult>, error: ResponseError| {
            let _ = sender.send(JoinResult::error(code(error), &request.member_id));
        };
        if let Err(error) = self.check(group_id) {
            reject(sender, error);
            return receiver;
        }
        let now_ms = self.clock.now_ms();
        let config = self.classic_config();
        let mut groups = self.groups.lock();
        if !groups.contains_key(group_id) && !request.member_id.is_empty() {
            reject(sender, ResponseError::UnknownMemberId);
            return receiver;
        }
        let group = groups
            .entry(group_id.to_owned())
            .or_insert_with(|| Group::classic(group_id, now_ms));
        if let GroupKind::Consumer(consumer) = &group.kind {
            if !consumer.is_empty() {
                // Members of both protocols in one group (KIP-848's online migration) are not
                // supported: the classic member is told its protocol does not fit.
                reject(sender, ResponseError::InconsistentGroupProtocol);
                return receiver;
            }
            // An empty consumer-protocol group becomes a classic one; offsets stay.
            let records = state_tombstones(group_id, group);
            self.persist(group_id, &records);
            group.kind = GroupKind::Classic(ClassicGroup::new(group_id, now_ms));
        }
        if let GroupKind::Classic(classic) = &mut group.kind {
            classic.join(request, &config, now_ms, sender);
        }
        self.persist_if_dirty(group_id, group);
        drop(groups);
        self.timer.notify_one();
        receiver
    }

    /// SyncGroup.
    #[allow(clippy::too_many_arguments)]
    pub fn sync_group(
        &self,
        group_id: &str,
        member_id: &str,
        group_instance_id: Option<&str>,
        generation_id: i32,
        protocol_type: Option<&str>,
        protocol_name: Option<&str>,
        assignments: Vec<(String, Bytes)>,
    ) -> oneshot::Receiver<SyncResult> {
        let (sender, receiver) = oneshot::channel();
        if let Err(error) = self.check(group_id) {
            let _ = sender.send(SyncResult::error(code(error)));
            return receiver;
        }
        let now_ms = self.clock.now_ms();
        let mut groups = self.groups.lock();
        let Some(group) = groups.get_mut(group_id) else {
            let _ = sender.send(SyncResult::error(code(ResponseError::UnknownMemberId)));
            return receiver;
        };
        let GroupKind::Classic(classic) = &mut group.kind else {
            let _ = sender.send(SyncResult::error(code(ResponseError::UnknownMemberId)));
            return receiver;
        };
        classic.sync(
            member_id,
            group_instance_id,
            generation_id,
            protocol_type,
            protocol_name,
            assignments,
            now_ms,
            sender,
        );
        self.persist_if_dirty(group_id, group);
        drop(groups);
        self.timer.notify_one();
        receiver
    }

    /// Heartbeat.
    ///
    /// # Errors
    /// The Kafka error for the member.
    pub fn heartbeat(
        &self,
        group_id: &str,
        member_id: &str,
        group_instance_id: Option<&str>,
        generation_id: i32,
    ) -> Result<(), ResponseError> {
        self.check(group_id)?;
        let now_ms = self.clock.now_ms();
        let mut groups = self.groups.lock();
        match groups.get_mut(group_id).map(|g| &mut g.kind) {
            Some(GroupKind::Classic(classic)) => {
                classic.heartbeat(member_id, group_instance_id, generation_id, now_ms)
            }
            _ => Err(ResponseError::UnknownMemberId),
        }
    }

    /// LeaveGroup for several members: per member `(member id, error code)`.
    ///
    /// # Errors
    /// Group-level errors.
    pub fn leave_group(
        &self,
        group_id: &str,
        members: &[(String, Option<String>)],
    ) -> Result<Vec<(String, i16)>, ResponseError> {
        self.check(group_id)?;
        let now_ms = self.clock.now_ms();
        let mut groups = self.groups.lock();
        let group = groups
            .get_mut(group_id)
            .ok_or(ResponseError::UnknownMemberId)?;
        let GroupKind::Classic(classic) = &mut group.kind else {
            return Err(ResponseError::UnknownMemberId);
        };
        let results = members
            .iter()
            .map(|(member_id, instance_id)| {
                match classic.leave(member_id, instance_id.as_deref(), now_ms) {
                    Ok(id) => (id, 0),
                    Err(error) => (member_id.clone(), code(error)),
                }
            })
            .collect();
        self.persist_if_dirty(group_id, group);
        drop(groups);
        self.timer.notify_one();
        Ok(results)
    }
}
