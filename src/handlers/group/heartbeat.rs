//! Heartbeat: keeps a classic member's session alive and tells it about rebalances.

use std::sync::Arc;

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::{HeartbeatRequest, HeartbeatResponse};

use super::on_coordinator;
use crate::broker::BrokerState;

/// Answers NONE, REBALANCE_IN_PROGRESS or the member's error.
pub async fn handle(state: &Arc<BrokerState>, request: HeartbeatRequest) -> HeartbeatResponse {
    let group_id = request.group_id.0.to_string();
    let member_id = request.member_id.to_string();
    let instance_id = request.group_instance_id.map(|id| id.to_string());
    let generation_id = request.generation_id;
    let result = on_coordinator(state, Err(ResponseError::UnknownServerError), move |c| {
        c.heartbeat(&group_id, &member_id, instance_id.as_deref(), generation_id)
    })
    .await;
    HeartbeatResponse::default().with_error_code(result.err().map_or(0, |e| e.code()))
}
