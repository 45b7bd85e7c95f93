//! EndTxn: commit or abort; answered once the markers are durable.

use std::sync::Arc;

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::{EndTxnRequest, EndTxnResponse};

use super::on_transactions;
use crate::broker::BrokerState;

/// Ends the transaction.
pub async fn handle(state: &Arc<BrokerState>, request: EndTxnRequest) -> EndTxnResponse {
    let id = request.transactional_id.0.to_string();
    let (producer_id, epoch) = (request.producer_id.0, request.producer_epoch);
    let commit = request.committed;
    let result = on_transactions(state, Err(ResponseError::UnknownServerError), move |t| {
        t.end_txn(&id, producer_id, epoch, commit)
    })
    .await;
    EndTxnResponse::default().with_error_code(result.err().map_or(0, |e| e.code()))
}
