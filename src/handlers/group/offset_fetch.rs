//! OffsetFetch: one group (v1–7) or several (v8+); a null topic list means every offset.

use std::sync::Arc;

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::offset_fetch_response::{
    OffsetFetchResponseGroup, OffsetFetchResponsePartition, OffsetFetchResponsePartitions,
    OffsetFetchResponseTopic, OffsetFetchResponseTopics,
};
use kafka_protocol::messages::{GroupId, OffsetFetchRequest, OffsetFetchResponse, TopicName};

use super::on_coordinator;
use crate::broker::BrokerState;
use crate::controller::group_by_topic;
use crate::coordinator::group::record::OffsetCommitValue;
use crate::handlers::str_bytes;
use crate::protocol::RequestContext;

type Fetched = Result<Vec<(String, i32, Option<OffsetCommitValue>)>, ResponseError>;

/// The committed offsets (-1 where none).
pub async fn handle(
    state: &Arc<BrokerState>,
    ctx: &RequestContext,
    request: OffsetFetchRequest,
) -> OffsetFetchResponse {
    if ctx.api_version >= 8 {
        let mut groups = Vec::with_capacity(request.groups.len());
        for group in request.groups {
            let topics = group.topics.map(|topics| {
                topics
                    .into_iter()
                    .map(|t| (t.name.0.to_string(), t.partition_indexes))
                    .collect()
            });
            let member = group
                .member_id
                .as_ref()
                .map(ToString::to_string)
                .unwrap_or_default();
            let fetched = fetch(
                state,
                group.group_id.0.to_string(),
                member,
                group.member_epoch,
                topics,
            )
            .await;
            groups.push(group_response(group.group_id, fetched));
        }
        return OffsetFetchResponse::default().with_groups(groups);
    }
    let topics = request.topics.map(|topics| {
        topics
            .into_iter()
            .map(|t| (t.name.0.to_string(), t.partition_indexes))
            .collect()
    });
    let requested = topics.clone();
    let fetched = fetch(
        state,
        request.group_id.0.to_string(),
        String::new(),
        -1,
        topics,
    )
    .await;
    match fetched {
        // v1 has no group-level error: it goes into every requested partition.
        Err(error) if ctx.api_version < 2 => OffsetFetchResponse::default().with_topics(
            requested
                .unwrap_or_default()
                .into_iter()
                .map(|(topic, partitions)| {
                    OffsetFetchResponseTopic::default()
                        .with_name(TopicName(str_bytes(&topic)))
                        .with_partitions(
                            partitions
                                .into_iter()
                                .map(|p| {
                                    OffsetFetchResponsePartition::default()
                                        .with_partition_index(p)
                                        .with_committed_offset(-1)
                                        .with_metadata(Some(str_bytes("")))
                                        .with_error_code(error.code())
                                })
                                .collect(),
                        )
                })
                .collect(),
        ),
        Err(error) => OffsetFetchResponse::default().with_error_code(error.code()),
        Ok(offsets) => OffsetFetchResponse::default().with_topics(
            group_by_topic(offsets.into_iter().map(|(t, p, v)| (t, (p, v))).collect())
                .into_iter()
                .map(|(topic, partitions)| {
                    OffsetFetchResponseTopic::default()
                        .with_name(TopicName(str_bytes(&topic)))
                        .with_partitions(
                            partitions
                                .into_iter()
                                .map(|(p, v)| {
                                    let (offset, epoch, metadata) = committed(v.as_ref());
                                    OffsetFetchResponsePartition::default()
                                        .with_partition_index(p)
                                        .with_committed_offset(offset)
                                        .with_committed_leader_epoch(if ctx.api_version >= 5 {
                                            epoch
                                        } else {
                                            -1
                                        })
                                        .with_metadata(Some(str_bytes(metadata)))
                                })
                                .collect(),
                        )
                })
                .collect(),
        ),
    }
}

async fn fetch(
    state: &Arc<BrokerState>,
    group_id: String,
    member_id: String,
    member_epoch: i32,
    topics: Option<Vec<(String, Vec<i32>)>>,
) -> Fetched {
    on_coordinator(state, Err(ResponseError::UnknownServerError), move |c| {
        c.fetch_offsets(&group_id, &member_id, member_epoch, topics)
    })
    .await
}

fn committed(value: Option<&OffsetCommitValue>) -> (i64, i32, &str) {
    value.map_or((-1, -1, ""), |v| {
        (v.offset, v.leader_epoch, v.metadata.as_str())
    })
}

fn group_response(group_id: GroupId, fetched: Fetched) -> OffsetFetchResponseGroup {
    let offsets = match fetched {
        Err(error) => {
            return OffsetFetchResponseGroup::default()
                .with_group_id(group_id)
                .with_error_code(error.code());
        }
        Ok(offsets) => offsets,
    };
    let topics = group_by_topic(offsets.into_iter().map(|(t, p, v)| (t, (p, v))).collect())
        .into_iter()
        .map(|(topic, partitions)| {
            OffsetFetchResponseTopics::default()
                .with_name(TopicName(str_bytes(&topic)))
                .with_partitions(
                    partitions
                        .into_iter()
                        .map(|(p, v)| {
                            let (offset, epoch, metadata) = committed(v.as_ref());
                            OffsetFetchResponsePartitions::default()
                                .with_partition_index(p)
                                .with_committed_offset(offset)
                                .with_committed_leader_epoch(epoch)
                                .with_metadata(Some(str_bytes(metadata)))
                        })
                        .collect(),
                )
        })
        .collect();
    OffsetFetchResponseGroup::default()
        .with_group_id(group_id)
        .with_topics(topics)
}
