//! Fetch, sessionless (KIP-227 answered as "no session"): session id 0 always, and
//! FETCH_SESSION_ID_NOT_FOUND for any other id. Topics by name before v13, by id from v13.

use std::sync::Arc;

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::fetch_response::{
    AbortedTransaction, FetchableTopicResponse, PartitionData,
};
use kafka_protocol::messages::{
    BrokerId, FetchRequest, FetchResponse, ProducerId, ResponseKind, TopicName,
};

use crate::broker::BrokerState;
use crate::error::ApiError;
use crate::protocol::{Reply, RequestContext, ready};
use crate::replica::delayed_fetch::{
    FetchParams, FetchPartition, FetchPartitionData, unknown_topic_id,
};

/// Version from which topics are named by id.
const TOPIC_ID_VERSION: i16 = 13;

/// Starts the fetch; the returned future long-polls off the connection's read path.
pub fn handle(state: &Arc<BrokerState>, ctx: &RequestContext, request: FetchRequest) -> Reply {
    if request.session_id != 0 {
        return ready(
            FetchResponse::default()
                .with_error_code(ResponseError::FetchSessionIdNotFound.code())
                .with_session_id(0),
        );
    }
    let by_id = ctx.api_version >= TOPIC_ID_VERSION;
    let params = FetchParams {
        max_wait_ms: request.max_wait_ms,
        min_bytes: request.min_bytes,
        max_bytes: if ctx.api_version >= 3 {
            request.max_bytes
        } else {
            i32::MAX
        },
        isolation_level: request.isolation_level,
    };
    let mut layout = Vec::with_capacity(request.topics.len());
    let mut partitions = Vec::new();
    for topic in request.topics {
        let resolved: Result<_, ApiError> = if by_id {
            state
                .metadata
                .topic_by_id(topic.topic_id)
                .ok_or_else(unknown_topic_id)
        } else {
            state
                .metadata
                .topic(&topic.topic)
                .ok_or_else(|| ResponseError::UnknownTopicOrPartition.into())
        };
        let mut indexes = Vec::with_capacity(topic.partitions.len());
        for partition in topic.partitions {
            indexes.push(partition.partition);
            partitions.push(FetchPartition {
                topic: resolved.clone(),
                partition: partition.partition,
                fetch_offset: partition.fetch_offset,
                partition_max_bytes: partition.partition_max_bytes,
            });
        }
        layout.push((topic.topic, topic.topic_id, indexes));
    }
    let replica_manager = Arc::clone(&state.replica_manager);
    let read_committed = request.isolation_level == 1;
    Reply::Later(Box::pin(async move {
        let data = replica_manager.fetch_messages(params, partitions).await;
        let mut data = data.into_iter();
        let responses = layout
            .into_iter()
            .map(|(name, topic_id, indexes)| {
                let partitions = indexes
                    .into_iter()
                    .map(|index| partition_data(index, data.next(), read_committed))
                    .collect();
                FetchableTopicResponse::default()
                    .with_topic(if by_id { TopicName::default() } else { name })
                    .with_topic_id(topic_id)
                    .with_partitions(partitions)
            })
            .collect();
        Ok(Some(ResponseKind::Fetch(
            FetchResponse::default()
                .with_session_id(0)
                .with_responses(responses),
        )))
    }))
}

fn partition_data(
    index: i32,
    data: Option<FetchPartitionData>,
    read_committed: bool,
) -> PartitionData {
    let Some(data) = data else {
        return PartitionData::default()
            .with_partition_index(index)
            .with_error_code(ResponseError::UnknownServerError.code());
    };
    PartitionData::default()
        .with_partition_index(index)
        .with_error_code(data.error.as_ref().map_or(0, ApiError::code))
        .with_high_watermark(data.high_watermark)
        .with_last_stable_offset(data.last_stable_offset)
        .with_log_start_offset(data.log_start_offset)
        .with_aborted_transactions(read_committed.then(|| {
            data.aborted_transactions
                .iter()
                .map(|(producer_id, first_offset)| {
                    AbortedTransaction::default()
                        .with_producer_id(ProducerId(*producer_id))
                        .with_first_offset(*first_offset)
                })
                .collect()
        }))
        .with_preferred_read_replica(BrokerId(-1))
        .with_records(data.records)
}
