//! DeleteGroups: empty groups only; their offsets and metadata get tombstones.

use std::sync::Arc;

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::delete_groups_response::DeletableGroupResult;
use kafka_protocol::messages::{DeleteGroupsRequest, DeleteGroupsResponse};

use super::on_coordinator;
use crate::broker::BrokerState;

/// Deletes each named group, or says why not.
pub async fn handle(
    state: &Arc<BrokerState>,
    request: DeleteGroupsRequest,
) -> DeleteGroupsResponse {
    let names: Vec<String> = request
        .groups_names
        .iter()
        .map(|g| g.0.to_string())
        .collect();
    let asked = request.groups_names.clone();
    let fallback = vec![ResponseError::UnknownServerError.code(); names.len()];
    let codes = on_coordinator(state, fallback, move |c| c.delete_groups(&names)).await;
    DeleteGroupsResponse::default().with_results(
        asked
            .into_iter()
            .zip(codes)
            .map(|(group_id, code)| {
                DeletableGroupResult::default()
                    .with_group_id(group_id)
                    .with_error_code(code)
            })
            .collect(),
    )
}
