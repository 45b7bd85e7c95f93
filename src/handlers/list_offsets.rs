//! ListOffsets: earliest (-2), latest (-1), max timestamp (-3), earliest local (-4), latest
//! tiered (-5), or the first offset whose timestamp is at or after the given one. No such record
//! answers offset -1, timestamp -1 and no error.

use std::sync::Arc;

use kafka_protocol::messages::list_offsets_response::{
    ListOffsetsPartitionResponse, ListOffsetsTopicResponse,
};
use kafka_protocol::messages::{ListOffsetsRequest, ListOffsetsResponse};

use super::blocking;
use crate::broker::BrokerState;
use crate::protocol::RequestContext;

/// Answers every partition.
pub async fn handle(
    state: &Arc<BrokerState>,
    ctx: &RequestContext,
    request: ListOffsetsRequest,
) -> ListOffsetsResponse {
    // leader_epoch exists from v4; older versions cannot carry anything but its default.
    let with_epoch = ctx.api_version >= 4;
    let replica_manager = Arc::clone(&state.replica_manager);
    let isolation_level = request.isolation_level;
    let topics = request.topics;
    let fallback = Vec::new();
    let topics = blocking(fallback, move || {
        topics
            .into_iter()
            .map(|topic| {
                let partitions = topic
                    .partitions
                    .iter()
                    .map(|p| {
                        let response = ListOffsetsPartitionResponse::default()
                            .with_partition_index(p.partition_index);
                        match replica_manager.fetch_offset_for_timestamp(
                            &topic.name,
                            p.partition_index,
                            p.timestamp,
                            isolation_level,
                        ) {
                            Ok(found) => response
                                .with_offset(found.offset)
                                .with_timestamp(found.timestamp)
                                .with_leader_epoch(if with_epoch {
                                    found.leader_epoch
                                } else {
                                    -1
                                }),
                            Err(error) => response
                                .with_error_code(error.code())
                                .with_offset(-1)
                                .with_timestamp(-1),
                        }
                    })
                    .collect();
                ListOffsetsTopicResponse::default()
                    .with_name(topic.name)
                    .with_partitions(partitions)
            })
            .collect()
    })
    .await;
    ListOffsetsResponse::default().with_topics(topics)
}
