//! Metadata: this node as the only broker, controller and leader of every partition; topics by
//! name or id, with auto-creation through `allow_auto_topic_creation` and
//! `auto.create.topics.enable`.

use std::sync::Arc;

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::metadata_response::{
    MetadataResponseBroker, MetadataResponsePartition, MetadataResponseTopic,
};
use kafka_protocol::messages::{BrokerId, MetadataRequest, MetadataResponse, TopicName};
use uuid::Uuid;

use super::{blocking, str_bytes};
use crate::broker::BrokerState;
use crate::controller::NewTopic;
use crate::error::ApiError;
use crate::metadata::TopicMetadata;
use crate::protocol::RequestContext;

/// "Authorized operations were not requested" (Kafka's `Int32.MIN_VALUE`).
const AUTHORIZED_OPERATIONS_OMITTED: i32 = i32::MIN;

/// Which topics a request names.
enum Wanted {
    Name(String),
    Id(Uuid),
}

/// Answers a Metadata request, creating topics where allowed.
pub async fn handle(
    state: &Arc<BrokerState>,
    ctx: &RequestContext,
    request: MetadataRequest,
) -> MetadataResponse {
    // v0 has no null: an empty list means all topics. From v1 null means all, empty means none.
    let wanted: Option<Vec<Wanted>> = match request.topics {
        None => None,
        Some(topics) if topics.is_empty() && ctx.api_version == 0 => None,
        Some(topics) => Some(
            topics
                .into_iter()
                .map(|t| match t.name {
                    // v10+ may name a topic by id only; the name is then null (or, from some
                    // encoders, empty).
                    Some(name) if !name.is_empty() || t.topic_id.is_nil() => {
                        Wanted::Name(name.to_string())
                    }
                    _ => Wanted::Id(t.topic_id),
                })
                .collect(),
        ),
    };
    // Before v4 the field does not exist and Kafka treats it as true.
    let allow_auto_create = ctx.api_version < 4 || request.allow_auto_topic_creation;
    let topics = match wanted {
        None => state
            .metadata
            .topics()
            .iter()
            .map(|topic| topic_response(state, Ok(topic)))
            .collect(),
        Some(wanted) => {
            let mut topics = Vec::with_capacity(wanted.len());
            for want in wanted {
                topics.push(match want {
                    Wanted::Name(name) => {
                        let found = find_or_create(state, &name, allow_auto_create).await;
                        topic_response(state, found.as_ref().map_err(|e| (e, name.as_str())))
                    }
                    Wanted::Id(id) => match state.metadata.topic_by_id(id) {
                        Some(topic) => topic_response(state, Ok(&topic)),
                        None => MetadataResponseTopic::default()
                            .with_error_code(ResponseError::UnknownTopicId.code())
                            .with_topic_id(id)
                            .with_topic_authorized_operations(AUTHORIZED_OPERATIONS_OMITTED),
                    },
                });
            }
            topics
        }
    };
    MetadataResponse::default()
        .with_brokers(vec![
            MetadataResponseBroker::default()
                .with_node_id(BrokerId(state.config.node_id()))
                .with_host(str_bytes(&state.advertised_host))
                .with_port(state.advertised_port),
        ])
        .with_cluster_id(Some(str_bytes(state.metadata.cluster_id())))
        .with_controller_id(BrokerId(state.config.node_id()))
        .with_topics(topics)
        .with_cluster_authorized_operations(AUTHORIZED_OPERATIONS_OMITTED)
}

async fn find_or_create(
    state: &Arc<BrokerState>,
    name: &str,
    allow_auto_create: bool,
) -> Result<Arc<TopicMetadata>, ApiError> {
    if let Some(topic) = state.metadata.topic(name) {
        return Ok(topic);
    }
    crate::controller::validate_topic_name(name)?;
    if !(allow_auto_create && state.config.auto_create_topics_enable()) {
        return Err(ResponseError::UnknownTopicOrPartition.into());
    }
    let new_topic = NewTopic {
        name: name.to_owned(),
        num_partitions: -1,
        replication_factor: -1,
        assignments: Vec::new(),
        configs: Vec::new(),
    };
    let controller = Arc::clone(&state.controller);
    let created = blocking(Err(ResponseError::UnknownServerError.into()), move || {
        controller.create_topic(&new_topic, false)
    })
    .await;
    match created {
        // Another connection created it first: that is the topic we want.
        Err(error) if error.code == ResponseError::TopicAlreadyExists => state
            .metadata
            .topic(name)
            .ok_or_else(|| ResponseError::UnknownTopicOrPartition.into()),
        other => other,
    }
}

fn topic_response(
    state: &BrokerState,
    topic: Result<&Arc<TopicMetadata>, (&ApiError, &str)>,
) -> MetadataResponseTopic {
    let topic = match topic {
        Ok(topic) => topic,
        Err((error, name)) => {
            return MetadataResponseTopic::default()
                .with_error_code(error.code())
                .with_name(Some(TopicName(str_bytes(name))))
                .with_topic_authorized_operations(AUTHORIZED_OPERATIONS_OMITTED);
        }
    };
    let node = BrokerId(state.config.node_id());
    let partitions = (0..topic.partitions)
        .map(|index| {
            MetadataResponsePartition::default()
                .with_partition_index(index)
                .with_leader_id(node)
                .with_leader_epoch(topic.leader_epoch)
                .with_replica_nodes(vec![node])
                .with_isr_nodes(vec![node])
        })
        .collect();
    MetadataResponseTopic::default()
        .with_name(Some(TopicName(str_bytes(&topic.name))))
        .with_topic_id(topic.topic_id)
        .with_is_internal(crate::coordinator::is_internal_topic(&topic.name))
        .with_partitions(partitions)
        .with_topic_authorized_operations(AUTHORIZED_OPERATIONS_OMITTED)
}
