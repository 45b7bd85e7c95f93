//! TxnOffsetCommit: offsets written inside the transaction, committed by its marker.

use std::sync::Arc;

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::txn_offset_commit_response::{
    TxnOffsetCommitResponsePartition, TxnOffsetCommitResponseTopic,
};
use kafka_protocol::messages::{TxnOffsetCommitRequest, TxnOffsetCommitResponse};

use crate::broker::BrokerState;
use crate::coordinator::group::OFFSETS_TOPIC;
use crate::coordinator::group::coordinator::{Committer, OffsetCommit};
use crate::coordinator::internal_topic::TxnProducer;
use crate::coordinator::transaction::TransactionCoordinator;
use crate::handlers::blocking;
use crate::protocol::RequestContext;

/// Checks the transaction (it must hold the group's offsets partition: AddOffsetsToTxn came
/// first) and writes the offsets while it cannot end.
pub async fn handle(
    state: &Arc<BrokerState>,
    ctx: &RequestContext,
    request: TxnOffsetCommitRequest,
) -> TxnOffsetCommitResponse {
    let id = request.transactional_id.0.to_string();
    let group_id = request.group_id.0.to_string();
    let producer = TxnProducer {
        producer_id: request.producer_id.0,
        producer_epoch: request.producer_epoch,
    };
    // v3+ (KIP-447) carries the consumer's group generation, checked like an OffsetCommit's.
    let committer = Committer {
        member_id: request.member_id.to_string(),
        group_instance_id: request.group_instance_id.as_ref().map(ToString::to_string),
        generation_or_epoch: request.generation_id,
        api_version: ctx.api_version,
    };
    let offsets: Vec<OffsetCommit> = request
        .topics
        .iter()
        .flat_map(|topic| {
            topic.partitions.iter().map(|p| OffsetCommit {
                topic: topic.name.0.to_string(),
                partition: p.partition_index,
                offset: p.committed_offset,
                leader_epoch: p.committed_leader_epoch,
                metadata: p.committed_metadata.as_ref().map(ToString::to_string),
            })
        })
        .collect();
    let count = offsets.len();
    let transactions = Arc::clone(&state.transactions);
    let groups = Arc::clone(&state.groups);
    let result = blocking(Err(ResponseError::UnknownServerError), move || {
        let partition = (
            OFFSETS_TOPIC.to_owned(),
            groups.offsets_topic().partition_of(&group_id),
        );
        transactions.with_transaction(&id, |metadata| {
            let metadata = metadata?;
            TransactionCoordinator::verify(
                metadata,
                producer.producer_id,
                producer.producer_epoch,
                &partition,
            )?;
            groups.txn_commit_offsets(&group_id, producer, &committer, offsets)
        })
    })
    .await;
    let mut codes = result
        .unwrap_or_else(|error| vec![error.code(); count])
        .into_iter();
    let topics = request
        .topics
        .into_iter()
        .map(|topic| {
            let partitions = topic
                .partitions
                .iter()
                .map(|p| {
                    TxnOffsetCommitResponsePartition::default()
                        .with_partition_index(p.partition_index)
                        .with_error_code(codes.next().unwrap_or(0))
                })
                .collect();
            TxnOffsetCommitResponseTopic::default()
                .with_name(topic.name)
                .with_partitions(partitions)
        })
        .collect();
    TxnOffsetCommitResponse::default().with_topics(topics)
}
