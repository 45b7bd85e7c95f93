//! ConsumerGroupDescribe (KIP-848): members, assignments and target assignments.

use std::sync::Arc;

use kafka_protocol::messages::{ConsumerGroupDescribeRequest, ConsumerGroupDescribeResponse};

use super::on_coordinator;
use crate::broker::BrokerState;
use crate::protocol::RequestContext;

/// Describes each group (GROUP_ID_NOT_FOUND for unknown or classic groups).
pub async fn handle(
    state: &Arc<BrokerState>,
    ctx: &RequestContext,
    request: ConsumerGroupDescribeRequest,
) -> ConsumerGroupDescribeResponse {
    // `member_type` exists from v1; v0 must leave it at its default.
    let with_member_type = ctx.api_version >= 1;
    let ids: Vec<String> = request.group_ids.iter().map(|g| g.0.to_string()).collect();
    let groups = on_coordinator(state, Vec::new(), move |c| {
        ids.iter()
            .map(|id| c.describe_consumer_group(id))
            .collect::<Vec<_>>()
    })
    .await;
    let groups = groups
        .into_iter()
        .map(|mut group| {
            if !with_member_type {
                for member in &mut group.members {
                    member.member_type = -1;
                }
            }
            group
        })
        .collect();
    ConsumerGroupDescribeResponse::default().with_groups(groups)
}
