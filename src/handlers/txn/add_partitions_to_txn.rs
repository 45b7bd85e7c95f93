//! AddPartitionsToTxn: one transaction (v0–3, from producers) or a batch of them (v4+, with
//! `verify_only` to check membership without adding).

use std::sync::Arc;

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::add_partitions_to_txn_request::AddPartitionsToTxnTopic;
use kafka_protocol::messages::add_partitions_to_txn_response::{
    AddPartitionsToTxnPartitionResult, AddPartitionsToTxnResult, AddPartitionsToTxnTopicResult,
};
use kafka_protocol::messages::{AddPartitionsToTxnRequest, AddPartitionsToTxnResponse};

use super::on_transactions;
use crate::broker::BrokerState;
use crate::protocol::RequestContext;

fn partitions(topics: &[AddPartitionsToTxnTopic]) -> Vec<(String, i32)> {
    topics
        .iter()
        .flat_map(|t| t.partitions.iter().map(|p| (t.name.0.to_string(), *p)))
        .collect()
}

fn topic_results(
    topics: &[AddPartitionsToTxnTopic],
    codes: &[i16],
) -> Vec<AddPartitionsToTxnTopicResult> {
    let mut codes = codes.iter();
    topics
        .iter()
        .map(|t| {
            AddPartitionsToTxnTopicResult::default()
                .with_name(t.name.clone())
                .with_results_by_partition(
                    t.partitions
                        .iter()
                        .map(|p| {
                            AddPartitionsToTxnPartitionResult::default()
                                .with_partition_index(*p)
                                .with_partition_error_code(codes.next().copied().unwrap_or(0))
                        })
                        .collect(),
                )
        })
        .collect()
}

/// Adds (or verifies) the partitions.
pub async fn handle(
    state: &Arc<BrokerState>,
    ctx: &RequestContext,
    request: AddPartitionsToTxnRequest,
) -> AddPartitionsToTxnResponse {
    if ctx.api_version < 4 {
        let id = request.v3_and_below_transactional_id.0.to_string();
        let (producer_id, epoch) = (
            request.v3_and_below_producer_id.0,
            request.v3_and_below_producer_epoch,
        );
        let wanted = partitions(&request.v3_and_below_topics);
        let count = wanted.len();
        let result = on_transactions(state, Err(ResponseError::UnknownServerError), move |t| {
            t.add_partitions(&id, producer_id, epoch, &wanted)
        })
        .await;
        let codes = result.unwrap_or_else(|error| vec![error.code(); count]);
        return AddPartitionsToTxnResponse::default().with_results_by_topic_v3_and_below(
            topic_results(&request.v3_and_below_topics, &codes),
        );
    }
    let mut results = Vec::with_capacity(request.transactions.len());
    for transaction in request.transactions {
        let id = transaction.transactional_id.0.to_string();
        let (producer_id, epoch) = (transaction.producer_id.0, transaction.producer_epoch);
        let verify_only = transaction.verify_only;
        let wanted = partitions(&transaction.topics);
        let count = wanted.len();
        let result = on_transactions(state, Err(ResponseError::UnknownServerError), move |t| {
            if verify_only {
                t.verify_partitions(&id, producer_id, epoch, &wanted)
            } else {
                t.add_partitions(&id, producer_id, epoch, &wanted)
            }
        })
        .await;
        // A transaction-level error is reported in each of its partitions.
        let codes = result.unwrap_or_else(|error| vec![error.code(); count]);
        results.push(
            AddPartitionsToTxnResult::default()
                .with_transactional_id(transaction.transactional_id)
                .with_topic_results(topic_results(&transaction.topics, &codes)),
        );
    }
    AddPartitionsToTxnResponse::default().with_results_by_transaction(results)
}
