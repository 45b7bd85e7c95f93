//! DescribeGroups: classic groups with their members (metadata and assignments once Stable).

use std::sync::Arc;

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::describe_groups_response::{DescribedGroup, DescribedGroupMember};
use kafka_protocol::messages::{DescribeGroupsRequest, DescribeGroupsResponse, GroupId};
use kafka_protocol::protocol::StrBytes;

use super::on_coordinator;
use crate::broker::BrokerState;
use crate::coordinator::group::classic::ClassicGroupState;
use crate::coordinator::group::coordinator::{Group, GroupKind};
use crate::handlers::str_bytes;
use crate::protocol::RequestContext;

// Kafka's "authorized operations not requested" marker.
const OPERATIONS_OMITTED: i32 = i32::MIN;

/// Describes each group; unknown groups are Dead (v0–5) or GROUP_ID_NOT_FOUND (v6+).
pub async fn handle(
    state: &Arc<BrokerState>,
    ctx: &RequestContext,
    request: DescribeGroupsRequest,
) -> DescribeGroupsResponse {
    let version = ctx.api_version;
    let ids = request.groups;
    let described = on_coordinator(state, Vec::new(), move |c| {
        ids.into_iter()
            .map(|id| {
                let name = id.0.to_string();
                c.with_group(&name, |group| describe(id.clone(), group, version))
                    .unwrap_or_else(|error| failed(id, error))
            })
            .collect()
    })
    .await;
    DescribeGroupsResponse::default().with_groups(described)
}

fn failed(group_id: GroupId, error: ResponseError) -> DescribedGroup {
    DescribedGroup::default()
        .with_group_id(group_id)
        .with_error_code(error.code())
        .with_group_state(StrBytes::from_static_str(""))
        .with_authorized_operations(OPERATIONS_OMITTED)
}

fn describe(group_id: GroupId, group: Option<&Group>, version: i16) -> DescribedGroup {
    let dead = || {
        let base = DescribedGroup::default()
            .with_group_id(group_id.clone())
            .with_group_state(StrBytes::from_static_str("Dead"))
            .with_authorized_operations(OPERATIONS_OMITTED);
        if version >= 6 {
            base.with_error_code(ResponseError::GroupIdNotFound.code())
                .with_error_message(Some(str_bytes(&format!("Group {} not found.", group_id.0))))
        } else {
            base
        }
    };
    let Some(group) = group else { return dead() };
    let GroupKind::Classic(classic) = &group.kind else {
        // Kafka 4.0: DescribeGroups describes classic groups only.
        return DescribedGroup::default()
            .with_group_id(group_id.clone())
            .with_group_state(StrBytes::from_static_str("Dead"))
            .with_error_code(ResponseError::GroupIdNotFound.code())
            .with_error_message(
                Some(str_bytes(&format!(
                    "Group {} is not a classic group.",
                    group_id.0
                )))
                .filter(|_| version >= 6),
            )
            .with_authorized_operations(OPERATIONS_OMITTED);
    };
    let stable = classic.state() == ClassicGroupState::Stable;
    let protocol = classic.protocol_name().unwrap_or_default().to_owned();
    let members = classic
        .members()
        .map(|m| {
            let member = DescribedGroupMember::default()
                .with_member_id(str_bytes(&m.member_id))
                .with_group_instance_id(
                    m.group_instance_id
                        .as_deref()
                        .filter(|_| version >= 4)
                        .map(str_bytes),
                )
                .with_client_id(str_bytes(&m.client_id))
                .with_client_host(str_bytes(&m.client_host));
            // Kafka shows metadata and assignments only in Stable: otherwise they are in flux.
            if stable {
                member
                    .with_member_metadata(m.metadata(&protocol))
                    .with_member_assignment(m.assignment.clone())
            } else {
                member
            }
        })
        .collect();
    DescribedGroup::default()
        .with_group_id(group_id)
        .with_group_state(str_bytes(classic.state().as_str()))
        .with_protocol_type(str_bytes(classic.protocol_type().unwrap_or_default()))
        .with_protocol_data(str_bytes(if stable { &protocol } else { "" }))
        .with_members(members)
        .with_authorized_operations(OPERATIONS_OMITTED)
}
