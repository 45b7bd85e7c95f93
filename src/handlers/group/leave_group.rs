//! LeaveGroup: one member (v0–2) or a batch of members by id or instance id (v3+).

use std::sync::Arc;

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::leave_group_response::MemberResponse;
use kafka_protocol::messages::{LeaveGroupRequest, LeaveGroupResponse};

use super::on_coordinator;
use crate::broker::BrokerState;
use crate::handlers::str_bytes;
use crate::protocol::RequestContext;

/// Removes the members; the group rebalances.
pub async fn handle(
    state: &Arc<BrokerState>,
    ctx: &RequestContext,
    request: LeaveGroupRequest,
) -> LeaveGroupResponse {
    let group_id = request.group_id.0.to_string();
    let batched = ctx.api_version >= 3;
    let members: Vec<(String, Option<String>)> = if batched {
        request
            .members
            .iter()
            .map(|m| {
                (
                    m.member_id.to_string(),
                    m.group_instance_id.as_ref().map(ToString::to_string),
                )
            })
            .collect()
    } else {
        vec![(request.member_id.to_string(), None)]
    };
    let asked = members.clone();
    let result = on_coordinator(state, Err(ResponseError::UnknownServerError), move |c| {
        c.leave_group(&group_id, &members)
    })
    .await;
    match result {
        Err(error) => LeaveGroupResponse::default().with_error_code(error.code()),
        Ok(results) if !batched => LeaveGroupResponse::default()
            .with_error_code(results.first().map_or(0, |(_, code)| *code)),
        Ok(results) => LeaveGroupResponse::default().with_members(
            results
                .into_iter()
                .zip(asked)
                // Kafka echoes the member id sent (empty for a leave by instance id).
                .map(|((_, error), (asked_id, instance_id))| {
                    MemberResponse::default()
                        .with_member_id(str_bytes(&asked_id))
                        .with_group_instance_id(instance_id.as_deref().map(str_bytes))
                        .with_error_code(error)
                })
                .collect(),
        ),
    }
}
