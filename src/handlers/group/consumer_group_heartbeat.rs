//! ConsumerGroupHeartbeat (KIP-848): the consumer protocol's only group request.

use std::sync::Arc;

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::{ConsumerGroupHeartbeatRequest, ConsumerGroupHeartbeatResponse};

use super::on_coordinator;
use crate::broker::BrokerState;
use crate::protocol::RequestContext;

/// Joins, heartbeats, reconciles or leaves; the answer carries the member's assignment.
pub async fn handle(
    state: &Arc<BrokerState>,
    ctx: &RequestContext,
    request: ConsumerGroupHeartbeatRequest,
) -> ConsumerGroupHeartbeatResponse {
    let version = ctx.api_version;
    let client_id = ctx.client_id.clone().unwrap_or_default();
    let client_host = ctx.client_host.clone();
    let fallback = ConsumerGroupHeartbeatResponse::default()
        .with_error_code(ResponseError::UnknownServerError.code());
    on_coordinator(state, fallback, move |c| {
        c.consumer_group_heartbeat(&request, version, &client_id, &client_host)
    })
    .await
}
