//! DescribeTransactions: state, producer, timeout and partitions of transactional ids.

use std::sync::Arc;

use kafka_protocol::messages::describe_transactions_response::{TopicData, TransactionState};
use kafka_protocol::messages::{
    DescribeTransactionsRequest, DescribeTransactionsResponse, ProducerId, TopicName,
};

use super::on_transactions;
use crate::broker::BrokerState;
use crate::controller::group_by_topic;
use crate::handlers::str_bytes;

/// Describes each id (TRANSACTIONAL_ID_NOT_FOUND for unknown ones).
pub async fn handle(
    state: &Arc<BrokerState>,
    request: DescribeTransactionsRequest,
) -> DescribeTransactionsResponse {
    let ids = request.transactional_ids;
    let described = on_transactions(state, Vec::new(), move |t| {
        ids.into_iter()
            .map(|id| match t.describe(id.0.as_str()) {
                Err(error) => TransactionState::default()
                    .with_transactional_id(id)
                    .with_error_code(error.code()),
                Ok(m) => {
                    let topics =
                        group_by_topic(m.partitions.iter().map(|(t, p)| (t.clone(), *p)).collect())
                            .into_iter()
                            .map(|(topic, partitions)| {
                                TopicData::default()
                                    .with_topic(TopicName(str_bytes(&topic)))
                                    .with_partitions(partitions)
                            })
                            .collect();
                    TransactionState::default()
                        .with_transactional_id(id)
                        .with_transaction_state(str_bytes(m.state.as_str()))
                        .with_transaction_timeout_ms(m.timeout_ms)
                        .with_transaction_start_time_ms(m.start_ms)
                        .with_producer_id(ProducerId(m.producer_id))
                        .with_producer_epoch(m.producer_epoch)
                        .with_topics(topics)
                }
            })
            .collect()
    })
    .await;
    DescribeTransactionsResponse::default().with_transaction_states(described)
}
