//! FindCoordinator: this node coordinates every group and transactional id. v4+ batches keys.

use std::sync::Arc;

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::find_coordinator_response::Coordinator;
use kafka_protocol::messages::{BrokerId, FindCoordinatorRequest, FindCoordinatorResponse};
use kafka_protocol::protocol::StrBytes;

use super::on_coordinator;
use crate::broker::BrokerState;
use crate::handlers::str_bytes;
use crate::protocol::RequestContext;

const KEY_TYPE_GROUP: i8 = 0;
const KEY_TYPE_TRANSACTION: i8 = 1;

/// Answers with this node, creating `__consumer_offsets` on first use as Kafka does.
pub async fn handle(
    state: &Arc<BrokerState>,
    ctx: &RequestContext,
    request: FindCoordinatorRequest,
) -> FindCoordinatorResponse {
    let key_type = request.key_type;
    // Kafka creates the internal topic on the first lookup of its kind.
    let topic_ready = match key_type {
        KEY_TYPE_GROUP => {
            on_coordinator(state, Err(ResponseError::CoordinatorNotAvailable), |c| {
                c.offsets_topic().ensure().map(|_| ()).map_err(|e| e.code)
            })
            .await
        }
        KEY_TYPE_TRANSACTION => {
            crate::handlers::txn::on_transactions(
                state,
                Err(ResponseError::CoordinatorNotAvailable),
                |t| t.state_topic().ensure().map(|_| ()).map_err(|e| e.code),
            )
            .await
        }
        _ => Ok(()),
    };
    let answer = |key: &StrBytes| -> Coordinator {
        let error = match key_type {
            _ if topic_ready.is_err() => topic_ready.err(),
            KEY_TYPE_GROUP | KEY_TYPE_TRANSACTION if key.is_empty() => {
                Some(ResponseError::InvalidRequest)
            }
            KEY_TYPE_GROUP | KEY_TYPE_TRANSACTION => None,
            _ => Some(ResponseError::InvalidRequest),
        };
        match error {
            Some(error) => Coordinator::default()
                .with_key(key.clone())
                .with_node_id(BrokerId(-1))
                .with_host(StrBytes::from_static_str(""))
                .with_port(-1)
                .with_error_code(error.code())
                .with_error_message(Some(str_bytes(&error.to_string()))),
            None => Coordinator::default()
                .with_key(key.clone())
                .with_node_id(BrokerId(state.config.node_id()))
                .with_host(str_bytes(&state.advertised_host))
                .with_port(state.advertised_port),
        }
    };
    if ctx.api_version >= 4 {
        let coordinators = request.coordinator_keys.iter().map(answer).collect();
        return FindCoordinatorResponse::default().with_coordinators(coordinators);
    }
    let single = answer(&request.key);
    FindCoordinatorResponse::default()
        .with_error_code(single.error_code)
        .with_error_message(single.error_message)
        .with_node_id(single.node_id)
        .with_host(single.host)
        .with_port(single.port)
}
