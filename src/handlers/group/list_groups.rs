//! ListGroups with the state (v4+) and type (v5+) filters.

use std::sync::Arc;

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::list_groups_response::ListedGroup;
use kafka_protocol::messages::{GroupId, ListGroupsRequest, ListGroupsResponse};

use super::on_coordinator;
use crate::broker::BrokerState;
use crate::handlers::str_bytes;
use crate::protocol::RequestContext;

/// Lists the groups that pass the filters.
pub async fn handle(
    state: &Arc<BrokerState>,
    ctx: &RequestContext,
    request: ListGroupsRequest,
) -> ListGroupsResponse {
    // States are answered from v4, types from v5.
    let version = ctx.api_version;
    let states: Vec<String> = request
        .states_filter
        .iter()
        .map(ToString::to_string)
        .collect();
    let types: Vec<String> = request
        .types_filter
        .iter()
        .map(ToString::to_string)
        .collect();
    let result = on_coordinator(state, Err(ResponseError::UnknownServerError), move |c| {
        c.list_groups(&states, &types)
    })
    .await;
    match result {
        Err(error) => ListGroupsResponse::default().with_error_code(error.code()),
        Ok(groups) => ListGroupsResponse::default().with_groups(
            groups
                .into_iter()
                .map(|g| {
                    ListedGroup::default()
                        .with_group_id(GroupId(str_bytes(&g.group_id)))
                        .with_protocol_type(str_bytes(&g.protocol_type))
                        .with_group_state(str_bytes(if version >= 4 { &g.state } else { "" }))
                        .with_group_type(str_bytes(if version >= 5 { &g.group_type } else { "" }))
                })
                .collect(),
        ),
    }
}
