//! InitProducerId for idempotent producers (no transactional id): a fresh producer id at epoch 0.
//! A transactional id is answered with TRANSACTIONAL_ID_AUTHORIZATION_FAILED until the
//! transaction coordinator exists: failing loudly beats a transaction that is not one.

use std::sync::Arc;

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::{InitProducerIdRequest, InitProducerIdResponse, ProducerId};

use super::blocking;
use crate::broker::BrokerState;

/// Allocates a producer id.
pub async fn handle(
    state: &Arc<BrokerState>,
    request: InitProducerIdRequest,
) -> InitProducerIdResponse {
    let failed = |code: ResponseError| {
        InitProducerIdResponse::default()
            .with_error_code(code.code())
            .with_producer_id(ProducerId(-1))
            .with_producer_epoch(-1)
    };
    if request.transactional_id.is_some() {
        return failed(ResponseError::TransactionalIdAuthorizationFailed);
    }
    let producer_ids = Arc::clone(&state.producer_ids);
    match blocking(
        Err(std::io::Error::other("allocation task failed")),
        move || producer_ids.generate_producer_id(),
    )
    .await
    {
        Ok(id) => InitProducerIdResponse::default()
            .with_producer_id(ProducerId(id))
            .with_producer_epoch(0),
        Err(error) => {
            tracing::error!(%error, "producer id allocation failed");
            failed(ResponseError::KafkaStorageError)
        }
    }
}
