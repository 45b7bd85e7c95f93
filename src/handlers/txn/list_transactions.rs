//! ListTransactions with the state, producer id (v0) and duration (v1) filters.

use std::sync::Arc;

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::list_transactions_response::TransactionState;
use kafka_protocol::messages::{
    ListTransactionsRequest, ListTransactionsResponse, ProducerId, TransactionalId,
};

use super::on_transactions;
use crate::broker::BrokerState;
use crate::coordinator::transaction::TransactionState as State;
use crate::handlers::str_bytes;
use crate::protocol::RequestContext;

const STATES: [State; 8] = [
    State::Empty,
    State::Ongoing,
    State::PrepareCommit,
    State::PrepareAbort,
    State::CompleteCommit,
    State::CompleteAbort,
    State::Dead,
    State::PrepareEpochFence,
];

/// Lists the transactional ids that pass the filters; unknown state names are echoed back.
pub async fn handle(
    state: &Arc<BrokerState>,
    ctx: &RequestContext,
    request: ListTransactionsRequest,
) -> ListTransactionsResponse {
    let states: Vec<String> = request
        .state_filters
        .iter()
        .map(ToString::to_string)
        .collect();
    let unknown: Vec<_> = request
        .state_filters
        .iter()
        .filter(|s| !STATES.iter().any(|k| k.as_str() == s.as_str()))
        .cloned()
        .collect();
    let producer_ids: Vec<i64> = request.producer_id_filters.iter().map(|p| p.0).collect();
    let duration = if ctx.api_version >= 1 {
        request.duration_filter
    } else {
        -1
    };
    let listed = on_transactions(state, Err(ResponseError::UnknownServerError), move |t| {
        t.list(&states, &producer_ids, duration)
    })
    .await;
    match listed {
        Err(error) => ListTransactionsResponse::default().with_error_code(error.code()),
        Ok(listed) => ListTransactionsResponse::default()
            .with_unknown_state_filters(unknown)
            .with_transaction_states(
                listed
                    .into_iter()
                    .map(|m| {
                        TransactionState::default()
                            .with_transactional_id(TransactionalId(str_bytes(&m.transactional_id)))
                            .with_producer_id(ProducerId(m.producer_id))
                            .with_transaction_state(str_bytes(m.state.as_str()))
                    })
                    .collect(),
            ),
    }
}
