//! The consumer protocol's APIs (KIP-848): ConsumerGroupHeartbeat and ConsumerGroupDescribe.

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::consumer_group_describe_response::DescribedGroup;
use kafka_protocol::messages::{ConsumerGroupHeartbeatRequest, ConsumerGroupHeartbeatResponse};

use super::{Group, GroupCoordinator, GroupKind, state_tombstones};
use crate::coordinator::group::consumer::{ConsumerGroup, validate_heartbeat_request};
use crate::handlers::str_bytes;

fn heartbeat_error(error: ResponseError, message: Option<&str>) -> ConsumerGroupHeartbeatResponse {
    ConsumerGroupHeartbeatResponse::default()
        .with_error_code(error.code())
        .with_error_message(message.map(str_bytes))
}

impl GroupCoordinator {
    /// ConsumerGroupHeartbeat: joins, heartbeats, reconciles and leaves.
    pub fn consumer_group_heartbeat(
        &self,
        request: &ConsumerGroupHeartbeatRequest,
        version: i16,
        client_id: &str,
        client_host: &str,
    ) -> ConsumerGroupHeartbeatResponse {
        let group_id = request.group_id.0.as_str();
        if !self.config.group_protocol_enabled("consumer") {
            return heartbeat_error(
                ResponseError::UnsupportedVersion,
                Some("the consumer group protocol is disabled"),
            );
        }
        if let Err(error) = self.check(group_id) {
            return heartbeat_error(error, None);
        }
        let config = self.consumer_config();
        if let Err((error, message)) = validate_heartbeat_request(request, version, &config) {
            return heartbeat_error(error, Some(&message));
        }
        let now_ms = self.clock.now_ms();
        let topics = self.metadata.topics();
        let mut groups = self.groups.lock();
        let joining = request.member_epoch == 0;
        let group = match groups.get_mut(group_id) {
            Some(group) => group,
            None if joining => groups
                .entry(group_id.to_owned())
                .or_insert_with(|| Group::classic(group_id, now_ms)),
            None => {
                return heartbeat_error(
                    ResponseError::GroupIdNotFound,
                    Some(&format!("Group {group_id} not found.")),
                );
            }
        };
        if let GroupKind::Classic(classic) = &group.kind {
            if !classic.is_empty() {
                return heartbeat_error(
                    ResponseError::GroupIdNotFound,
                    Some(&format!("Group {group_id} is not a consumer group.")),
                );
            }
            if !joining {
                return heartbeat_error(ResponseError::UnknownMemberId, None);
            }
            // A classic group without members (offsets only) becomes a consumer group.
            let records = state_tombstones(group_id, group);
            if classic.generation_id() > 0 {
                self.persist(group_id, &records);
            }
            group.kind = GroupKind::Consumer(ConsumerGroup::new(group_id));
        }
        let GroupKind::Consumer(consumer) = &mut group.kind else {
            return heartbeat_error(ResponseError::UnknownServerError, None);
        };
        let (response, records) = consumer.heartbeat(
            request,
            version,
            client_id,
            client_host,
            &topics,
            &config,
            now_ms,
        );
        if let Err(error) = self.topic.append(group_id, &records, None) {
            tracing::warn!(group = group_id, %error, "cannot persist consumer group state");
            return heartbeat_error(ResponseError::CoordinatorNotAvailable, None);
        }
        drop(groups);
        self.timer.notify_one();
        response
    }

    /// ConsumerGroupDescribe of one group.
    pub fn describe_consumer_group(&self, group_id: &str) -> DescribedGroup {
        let failed = |error: ResponseError, message: String| {
            DescribedGroup::default()
                .with_group_id(str_bytes(group_id).into())
                .with_error_code(error.code())
                .with_error_message(Some(str_bytes(&message)))
        };
        let topics = self.metadata.topics();
        let config = self.consumer_config();
        let described = self.with_group(group_id, |group| match group.map(|g| &g.kind) {
            Some(GroupKind::Consumer(consumer)) => consumer.describe(&topics, &config),
            Some(GroupKind::Classic(_)) => failed(
                ResponseError::GroupIdNotFound,
                format!("Group {group_id} is not a consumer group."),
            ),
            None => failed(
                ResponseError::GroupIdNotFound,
                format!("Group {group_id} not found."),
            ),
        });
        described.unwrap_or_else(|error| failed(error, error.to_string()))
    }
}
