//! CreateTopics: partitions, replication factor 1, configs by Kafka name, validate-only.

use std::collections::BTreeSet;
use std::sync::Arc;

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::create_topics_response::{
    CreatableTopicConfigs, CreatableTopicResult,
};
use kafka_protocol::messages::{CreateTopicsRequest, CreateTopicsResponse};

use crate::broker::BrokerState;
use crate::controller::NewTopic;
use crate::error::ApiError;
use crate::handlers::{blocking, str_bytes};
use crate::protocol::RequestContext;
use crate::topic_config;

/// Creates each topic independently; one failure does not affect the others.
pub async fn handle(
    state: &Arc<BrokerState>,
    _ctx: &RequestContext,
    request: CreateTopicsRequest,
) -> CreateTopicsResponse {
    let mut seen = BTreeSet::new();
    let duplicates: BTreeSet<String> = request
        .topics
        .iter()
        .filter(|t| !seen.insert(t.name.to_string()))
        .map(|t| t.name.to_string())
        .collect();
    let validate_only = request.validate_only;
    let mut results = Vec::with_capacity(request.topics.len());
    for topic in request.topics {
        let name = topic.name.to_string();
        let result = CreatableTopicResult::default()
            .with_name(topic.name.clone())
            .with_num_partitions(-1)
            .with_replication_factor(-1);
        if duplicates.contains(&name) {
            let error = ApiError::new(ResponseError::InvalidRequest, "topic named more than once");
            results.push(with_error(result, &error));
            continue;
        }
        let new_topic = NewTopic {
            name,
            num_partitions: topic.num_partitions,
            replication_factor: topic.replication_factor,
            assignments: topic
                .assignments
                .iter()
                .map(|a| a.broker_ids.iter().map(|b| b.0).collect())
                .collect(),
            configs: topic
                .configs
                .iter()
                .map(|c| {
                    (
                        c.name.to_string(),
                        c.value.as_ref().map(ToString::to_string),
                    )
                })
                .collect(),
        };
        let controller = Arc::clone(&state.controller);
        let created = blocking(Err(ResponseError::UnknownServerError.into()), move || {
            controller.create_topic(&new_topic, validate_only)
        })
        .await;
        results.push(match created {
            Ok(created) => {
                let configs = topic_config::resolve(&created.configs, &state.config)
                    .into_iter()
                    .map(|c| {
                        CreatableTopicConfigs::default()
                            .with_name(str_bytes(c.def.def.name))
                            .with_value(c.value.as_deref().map(str_bytes))
                            .with_config_source(c.source.code())
                    })
                    .collect();
                result
                    .with_topic_id(created.topic_id)
                    .with_num_partitions(created.partitions)
                    .with_replication_factor(1)
                    .with_configs(Some(configs))
            }
            Err(error) => with_error(result, &error),
        });
    }
    CreateTopicsResponse::default().with_topics(results)
}

fn with_error(result: CreatableTopicResult, error: &ApiError) -> CreatableTopicResult {
    result
        .with_error_code(error.code())
        .with_error_message(error.message.as_deref().map(str_bytes))
}
