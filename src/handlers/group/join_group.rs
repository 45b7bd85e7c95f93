//! JoinGroup: parks until the rebalance completes (the connection keeps serving in order).

use std::sync::Arc;

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::join_group_response::JoinGroupResponseMember;
use kafka_protocol::messages::{JoinGroupRequest, JoinGroupResponse};

use super::on_coordinator;
use crate::broker::BrokerState;
use crate::coordinator::group::classic::{JoinRequest, JoinResult};
use crate::handlers::str_bytes;
use crate::protocol::{Reply, RequestContext};

/// Joins (or rejoins) a member.
pub async fn handle(
    state: &Arc<BrokerState>,
    ctx: &RequestContext,
    request: JoinGroupRequest,
) -> Reply {
    let version = ctx.api_version;
    let group_id = request.group_id.0.to_string();
    let join = JoinRequest {
        member_id: request.member_id.to_string(),
        group_instance_id: request.group_instance_id.map(|id| id.to_string()),
        protocol_type: request.protocol_type.to_string(),
        protocols: request
            .protocols
            .into_iter()
            .map(|p| (p.name.to_string(), p.metadata))
            .collect(),
        session_timeout_ms: request.session_timeout_ms,
        rebalance_timeout_ms: if version >= 1 {
            request.rebalance_timeout_ms
        } else {
            request.session_timeout_ms
        },
        client_id: ctx.client_id.clone().unwrap_or_default(),
        client_host: ctx.client_host.clone(),
        require_known_member_id: version >= 4,
        supports_skip_assignment: version >= 9,
    };
    let member_id = join.member_id.clone();
    let receiver = on_coordinator(state, None, move |c| Some(c.join_group(&group_id, join))).await;
    // Before v7 the protocol name is not nullable (an error answer carries "") and the protocol
    // type is not sent; instance ids exist from v5.
    let nullable_protocol = version >= 7;
    let with_instance_ids = version >= 5;
    Reply::Later(Box::pin(async move {
        let result = match receiver {
            Some(receiver) => receiver.await.unwrap_or_else(|_| {
                // The coordinator dropped the parked request (a newer join from the same member
                // replaced it, or shutdown): a retriable error makes the client rejoin.
                JoinResult::error(ResponseError::CoordinatorNotAvailable.code(), &member_id)
            }),
            None => JoinResult::error(ResponseError::UnknownServerError.code(), &member_id),
        };
        Ok(Some(
            response(result, nullable_protocol, with_instance_ids).into(),
        ))
    }))
}

fn response(
    result: JoinResult,
    nullable_protocol: bool,
    with_instance_ids: bool,
) -> JoinGroupResponse {
    let protocol_name = match result.protocol_name.as_deref() {
        None if !nullable_protocol => Some(""),
        name => name,
    };
    JoinGroupResponse::default()
        .with_error_code(result.error)
        .with_generation_id(result.generation_id)
        .with_protocol_type(
            result
                .protocol_type
                .as_deref()
                .filter(|_| nullable_protocol)
                .map(str_bytes),
        )
        .with_protocol_name(protocol_name.map(str_bytes))
        .with_leader(str_bytes(&result.leader))
        .with_skip_assignment(result.skip_assignment)
        .with_member_id(str_bytes(&result.member_id))
        .with_members(
            result
                .members
                .into_iter()
                .map(|m| {
                    JoinGroupResponseMember::default()
                        .with_member_id(str_bytes(&m.member_id))
                        .with_group_instance_id(
                            m.group_instance_id
                                .as_deref()
                                .filter(|_| with_instance_ids)
                                .map(str_bytes),
                        )
                        .with_metadata(m.metadata)
                })
                .collect(),
        )
}
