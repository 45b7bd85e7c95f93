//! InitProducerId: a fresh producer id for an idempotent producer, or for a transactional id
//! its producer id with a bumped epoch (fencing older producers with the same id).

use std::sync::Arc;

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::{InitProducerIdRequest, InitProducerIdResponse, ProducerId};

use super::on_transactions;
use crate::broker::BrokerState;
use crate::handlers::blocking;

/// Allocates a producer id, or initialises a transactional id.
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
    let answer = |(producer_id, epoch): (i64, i16)| {
        InitProducerIdResponse::default()
            .with_producer_id(ProducerId(producer_id))
            .with_producer_epoch(epoch)
    };
    if let Some(transactional_id) = request.transactional_id {
        let id = transactional_id.0.to_string();
        let timeout_ms = request.transaction_timeout_ms;
        // v3+ (KIP-360): a producer that re-initialises names its current id and epoch.
        let expected =
            (request.producer_id.0 >= 0).then_some((request.producer_id.0, request.producer_epoch));
        let result = on_transactions(state, Err(ResponseError::UnknownServerError), move |t| {
            t.init_producer_id(&id, timeout_ms, expected)
        })
        .await;
        return result.map_or_else(failed, answer);
    }
    let producer_ids = Arc::clone(&state.producer_ids);
    match blocking(
        Err(std::io::Error::other("allocation task failed")),
        move || producer_ids.generate_producer_id(),
    )
    .await
    {
        Ok(id) => answer((id, 0)),
        Err(error) => {
            tracing::error!(%error, "producer id allocation failed");
            failed(ResponseError::KafkaStorageError)
        }
    }
}
