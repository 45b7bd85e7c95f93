//! SyncGroup: followers park until the leader's assignment arrives.

use std::sync::Arc;

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::{SyncGroupRequest, SyncGroupResponse};

use super::on_coordinator;
use crate::broker::BrokerState;
use crate::coordinator::group::classic::SyncResult;
use crate::handlers::str_bytes;
use crate::protocol::{Reply, RequestContext};

/// Delivers (or waits for) the member's assignment.
pub async fn handle(
    state: &Arc<BrokerState>,
    ctx: &RequestContext,
    request: SyncGroupRequest,
) -> Reply {
    let group_id = request.group_id.0.to_string();
    let member_id = request.member_id.to_string();
    let instance_id = request.group_instance_id.map(|id| id.to_string());
    let protocol_type = request.protocol_type.map(|p| p.to_string());
    let protocol_name = request.protocol_name.map(|p| p.to_string());
    let assignments = request
        .assignments
        .into_iter()
        .map(|a| (a.member_id.to_string(), a.assignment))
        .collect();
    let generation_id = request.generation_id;
    let receiver = on_coordinator(state, None, move |c| {
        Some(c.sync_group(
            &group_id,
            &member_id,
            instance_id.as_deref(),
            generation_id,
            protocol_type.as_deref(),
            protocol_name.as_deref(),
            assignments,
        ))
    })
    .await;
    // The protocol type and name are answered from v5.
    let with_protocol = ctx.api_version >= 5;
    Reply::Later(Box::pin(async move {
        let result = match receiver {
            Some(receiver) => receiver.await.unwrap_or_else(|_| {
                SyncResult::error(ResponseError::CoordinatorNotAvailable.code())
            }),
            None => SyncResult::error(ResponseError::UnknownServerError.code()),
        };
        Ok(Some(
            SyncGroupResponse::default()
                .with_error_code(result.error)
                .with_protocol_type(
                    result
                        .protocol_type
                        .as_deref()
                        .filter(|_| with_protocol)
                        .map(str_bytes),
                )
                .with_protocol_name(
                    result
                        .protocol_name
                        .as_deref()
                        .filter(|_| with_protocol)
                        .map(str_bytes),
                )
                .with_assignment(result.assignment)
                .into(),
        ))
    }))
}
