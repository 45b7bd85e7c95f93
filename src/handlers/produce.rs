//! Produce. The append happens in request order before the connection reads its next request;
//! the fsync wait of acks=-1 happens in the returned future, so a pipelining producer keeps
//! appending while earlier batches wait for their group commit (DESIGN §4).

use std::sync::Arc;

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::produce_response::{
    BatchIndexAndErrorMessage, PartitionProduceResponse, TopicProduceResponse,
};
use kafka_protocol::messages::{ProduceRequest, ProduceResponse, ResponseKind, TopicName};

use super::str_bytes;
use crate::broker::BrokerState;
use crate::coordinator::transaction::{TransactionCoordinator, TransactionMetadata};
use crate::error::{ApiError, ConnectionError};
use crate::protocol::{Reply, RequestContext};
use crate::replica::manager::{PartitionAppend, PartitionAppendResult, PendingProduce};
use kairos_storage::batch::RecordBatchHeader;

/// Appends, then returns the future that answers.
///
/// An acks=0 produce that failed answers with an error that closes the connection.
pub async fn handle(
    state: &Arc<BrokerState>,
    _ctx: &RequestContext,
    request: ProduceRequest,
) -> Reply {
    let acks = request.acks;
    let mut layout: Vec<(TopicName, Vec<i32>)> = Vec::with_capacity(request.topic_data.len());
    let mut entries = Vec::new();
    for topic in request.topic_data {
        let mut partitions = Vec::with_capacity(topic.partition_data.len());
        for partition in topic.partition_data {
            partitions.push(partition.index);
            entries.push(PartitionAppend {
                topic: topic.name.to_string(),
                partition: partition.index,
                records: partition.records,
            });
        }
        layout.push((topic.name, partitions));
    }
    if !matches!(acks, -1..=1) {
        let results =
            vec![
                PartitionAppendResult::rejected(ResponseError::InvalidRequiredAcks.into());
                entries.len()
            ];
        return Reply::Now(Ok(Some(ResponseKind::Produce(build_response(
            layout, results,
        )))));
    }
    let pending = match request.transactional_id {
        Some(id) => append_transactional(state, id.0.to_string(), acks, entries).await,
        None => state.replica_manager.append_records(acks, entries).await,
    };
    if acks == 0 {
        return Reply::Now(match pending.first_error().cloned() {
            Some(error) => Err(ConnectionError::AcksZeroProduceFailed(error)),
            None => Ok(None),
        });
    }
    match pending.into_durable() {
        // acks=1 (or fsync disabled): answered in order without a task of its own.
        Ok(results) => Reply::Now(Ok(Some(ResponseKind::Produce(build_response(
            layout, results,
        ))))),
        Err(pending) => Reply::Later(Box::pin(async move {
            let results = pending.complete().await;
            Ok(Some(ResponseKind::Produce(build_response(layout, results))))
        })),
    }
}

/// Appends a transactional producer's batches while its transaction cannot end, each only if
/// the transaction is open and holds the partition (KIP-890: otherwise a late batch could land
/// after the transaction's marker and hold the last stable offset back forever).
async fn append_transactional(
    state: &Arc<BrokerState>,
    transactional_id: String,
    acks: i16,
    entries: Vec<PartitionAppend>,
) -> PendingProduce {
    let transactions = Arc::clone(&state.transactions);
    let replicas = Arc::clone(&state.replica_manager);
    let sync = replicas.syncs(acks);
    let appending = Arc::clone(&replicas);
    let joined = tokio::task::spawn_blocking(move || {
        transactions.with_transaction(&transactional_id, |metadata| {
            let rejected = entries
                .iter()
                .map(|entry| verify(metadata, entry))
                .collect();
            appending.append_checked(entries, rejected, sync)
        })
    })
    .await;
    let pending = joined.unwrap_or_else(|error| {
        tracing::error!(%error, "transactional append task failed");
        replicas.failed_append()
    });
    replicas.after_append(&pending);
    pending
}

fn verify(
    metadata: Result<&TransactionMetadata, ResponseError>,
    entry: &PartitionAppend,
) -> Option<ApiError> {
    // Batches that are not transactional, or do not parse, are the log's to judge.
    let records = entry.records.as_ref()?;
    let batch = RecordBatchHeader::parse(records).ok()?;
    if !batch.is_transactional() {
        return None;
    }
    let checked = metadata.and_then(|metadata| {
        TransactionCoordinator::verify(
            metadata,
            batch.producer_id(),
            batch.producer_epoch(),
            &(entry.topic.clone(), entry.partition),
        )
    });
    match checked {
        Ok(()) => None,
        // Kafka answers a produce whose transaction cannot be checked yet with a retriable
        // error, so the producer retries instead of failing its transaction.
        Err(ResponseError::CoordinatorLoadInProgress | ResponseError::CoordinatorNotAvailable) => {
            Some(ResponseError::NotEnoughReplicas.into())
        }
        Err(error) => Some(error.into()),
    }
}

fn build_response(
    layout: Vec<(TopicName, Vec<i32>)>,
    results: Vec<PartitionAppendResult>,
) -> ProduceResponse {
    let mut results = results.into_iter();
    let responses = layout
        .into_iter()
        .map(|(name, partitions)| {
            let partition_responses = partitions
                .into_iter()
                .map(|index| {
                    let result = results.next().unwrap_or_else(|| {
                        PartitionAppendResult::rejected(ResponseError::UnknownServerError.into())
                    });
                    partition_response(index, result)
                })
                .collect();
            TopicProduceResponse::default()
                .with_name(name)
                .with_partition_responses(partition_responses)
        })
        .collect();
    ProduceResponse::default().with_responses(responses)
}

fn partition_response(index: i32, result: PartitionAppendResult) -> PartitionProduceResponse {
    let record_errors = result
        .record_errors
        .iter()
        .map(|(batch_index, message)| {
            BatchIndexAndErrorMessage::default()
                .with_batch_index(*batch_index)
                .with_batch_index_error_message(Some(str_bytes(message)))
        })
        .collect();
    PartitionProduceResponse::default()
        .with_index(index)
        .with_error_code(result.error.as_ref().map_or(0, ApiError::code))
        .with_error_message(result.error.and_then(|e| e.message).map(|m| str_bytes(&m)))
        .with_base_offset(result.base_offset)
        .with_log_append_time_ms(result.log_append_time_ms)
        .with_log_start_offset(result.log_start_offset)
        .with_record_errors(record_errors)
}
