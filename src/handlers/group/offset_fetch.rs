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
use crate::coordinator::group::coordinator::FetchedOffset;
use crate::handlers::str_bytes;
use crate::protocol::RequestContext;

type Fetched = Result<Vec<FetchedOffset>, ResponseError>;

/// One partition's answer fields: `(offset, leader epoch, metadata, error)`.
fn fields(fetched: &FetchedOffset, version: i16) -> (i64, i32, &str, i16) {
    let error = fetched.error.map_or(0, |e| e.code());
    match &fetched.committed {
        // The leader epoch is answered from v5.
        Some(v) => (
            v.offset,
            if version >= 5 { v.leader_epoch } else { -1 },
            v.metadata.as_str(),
            error,
        ),
        None => (-1, -1, "", error),
    }
}

/// The committed offsets (-1 where none).
pub async fn handle(
    state: &Arc<BrokerState>,
    ctx: &RequestContext,
    request: OffsetFetchRequest,
) -> OffsetFetchResponse {
    let version = ctx.api_version;
    let require_stable = request.require_stable;
    if version >= 8 {
        let mut groups = Vec::with_capacity(request.groups.len());
        for group in request.groups {
            let topics = group.topics.map(|topics| {
                topics
                    .into_iter()
                    .map(|t| (t.name.0.to_string(), t.partition_indexes))
                    .collect()
            });
            // v9: a consumer-protocol member sends its id and epoch (null id: not a member).
            let member = group.member_id.as_ref().map(ToString::to_string);
            let id = group.group_id.0.to_string();
            let epoch = group.member_epoch;
            let fetched = fetch(state, id, member, epoch, topics, require_stable).await;
            groups.push(group_response(group.group_id, fetched, version));
        }
        return OffsetFetchResponse::default().with_groups(groups);
    }
    let topics: Option<Vec<(String, Vec<i32>)>> = request.topics.map(|topics| {
        topics
            .into_iter()
            .map(|t| (t.name.0.to_string(), t.partition_indexes))
            .collect()
    });
    let group_id = request.group_id.0.to_string();
    let fetched = fetch(state, group_id, None, -1, topics.clone(), require_stable).await;
    let offsets = match fetched {
        Ok(offsets) => offsets,
        // v1 has no group-level error: it goes into every requested partition.
        Err(error) if version < 2 => topics
            .unwrap_or_default()
            .into_iter()
            .flat_map(|(topic, partitions)| {
                partitions.into_iter().map(move |partition| FetchedOffset {
                    topic: topic.clone(),
                    partition,
                    committed: None,
                    error: Some(error),
                })
            })
            .collect(),
        Err(error) => return OffsetFetchResponse::default().with_error_code(error.code()),
    };
    let topics = by_topic(offsets)
        .into_iter()
        .map(|(topic, partitions)| {
            OffsetFetchResponseTopic::default()
                .with_name(TopicName(str_bytes(&topic)))
                .with_partitions(
                    partitions
                        .iter()
                        .map(|f| {
                            let (offset, epoch, metadata, error) = fields(f, version);
                            OffsetFetchResponsePartition::default()
                                .with_partition_index(f.partition)
                                .with_committed_offset(offset)
                                .with_committed_leader_epoch(epoch)
                                .with_metadata(Some(str_bytes(metadata)))
                                .with_error_code(error)
                        })
                        .collect(),
                )
        })
        .collect();
    OffsetFetchResponse::default().with_topics(topics)
}

fn by_topic(offsets: Vec<FetchedOffset>) -> Vec<(String, Vec<FetchedOffset>)> {
    group_by_topic(offsets.into_iter().map(|f| (f.topic.clone(), f)).collect())
}

async fn fetch(
    state: &Arc<BrokerState>,
    group_id: String,
    member_id: Option<String>,
    member_epoch: i32,
    topics: Option<Vec<(String, Vec<i32>)>>,
    require_stable: bool,
) -> Fetched {
    on_coordinator(state, Err(ResponseError::UnknownServerError), move |c| {
        c.fetch_offsets(
            &group_id,
            member_id.as_deref(),
            member_epoch,
            topics,
            require_stable,
        )
    })
    .await
}

fn group_response(group_id: GroupId, fetched: Fetched, version: i16) -> OffsetFetchResponseGroup {
    let offsets = match fetched {
        Err(error) => {
            return OffsetFetchResponseGroup::default()
                .with_group_id(group_id)
                .with_error_code(error.code());
        }
        Ok(offsets) => offsets,
    };
    let topics = by_topic(offsets)
        .into_iter()
        .map(|(topic, partitions)| {
            OffsetFetchResponseTopics::default()
                .with_name(TopicName(str_bytes(&topic)))
                .with_partitions(
                    partitions
                        .iter()
                        .map(|f| {
                            let (offset, epoch, metadata, error) = fields(f, version);
                            OffsetFetchResponsePartitions::default()
                                .with_partition_index(f.partition)
                                .with_committed_offset(offset)
                                .with_committed_leader_epoch(epoch)
                                .with_metadata(Some(str_bytes(metadata)))
                                .with_error_code(error)
                        })
                        .collect(),
                )
        })
        .collect();
    OffsetFetchResponseGroup::default()
        .with_group_id(group_id)
        .with_topics(topics)
}
