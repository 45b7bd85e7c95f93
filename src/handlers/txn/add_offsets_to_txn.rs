//! AddOffsetsToTxn: the group's offsets partition joins the transaction.

use std::sync::Arc;

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::{AddOffsetsToTxnRequest, AddOffsetsToTxnResponse};

use super::on_transactions;
use crate::broker::BrokerState;

/// Adds `__consumer_offsets`' partition of the group.
pub async fn handle(
    state: &Arc<BrokerState>,
    request: AddOffsetsToTxnRequest,
) -> AddOffsetsToTxnResponse {
    let id = request.transactional_id.0.to_string();
    let group = request.group_id.0.to_string();
    let (producer_id, epoch) = (request.producer_id.0, request.producer_epoch);
    let result = on_transactions(state, Err(ResponseError::UnknownServerError), move |t| {
        t.add_offsets(&id, producer_id, epoch, &group)
    })
    .await;
    AddOffsetsToTxnResponse::default().with_error_code(result.err().map_or(0, |e| e.code()))
}
