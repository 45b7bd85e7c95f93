//! OffsetCommit: answered once the offsets are durable.

use std::sync::Arc;

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::offset_commit_response::{
    OffsetCommitResponsePartition, OffsetCommitResponseTopic,
};
use kafka_protocol::messages::{OffsetCommitRequest, OffsetCommitResponse};

use super::on_coordinator;
use crate::broker::BrokerState;
use crate::coordinator::group::coordinator::{Committer, OffsetCommit};
use crate::protocol::RequestContext;

/// Commits the offsets; every partition gets its own error code.
pub async fn handle(
    state: &Arc<BrokerState>,
    ctx: &RequestContext,
    request: OffsetCommitRequest,
) -> OffsetCommitResponse {
    let group_id = request.group_id.0.to_string();
    let committer = Committer {
        member_id: request.member_id.to_string(),
        group_instance_id: request.group_instance_id.as_ref().map(ToString::to_string),
        generation_or_epoch: request.generation_id_or_member_epoch,
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
    let result = on_coordinator(state, Err(ResponseError::UnknownServerError), move |c| {
        c.commit_offsets(&group_id, &committer, offsets)
    })
    .await;
    let mut codes = match result {
        Ok(codes) => codes,
        Err(error) => vec![error.code(); count],
    }
    .into_iter();
    let topics = request
        .topics
        .into_iter()
        .map(|topic| {
            let partitions = topic
                .partitions
                .iter()
                .map(|p| {
                    OffsetCommitResponsePartition::default()
                        .with_partition_index(p.partition_index)
                        .with_error_code(codes.next().unwrap_or(0))
                })
                .collect();
            OffsetCommitResponseTopic::default()
                .with_name(topic.name)
                .with_partitions(partitions)
        })
        .collect();
    OffsetCommitResponse::default().with_topics(topics)
}
