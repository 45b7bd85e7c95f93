//! DeleteTopics, by name (all versions) or by id (v6+). The files are removed; a topic created
//! again with the same name starts empty with a new id.

use std::sync::Arc;

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::delete_topics_response::DeletableTopicResult;
use kafka_protocol::messages::{DeleteTopicsRequest, DeleteTopicsResponse, TopicName};
use uuid::Uuid;

use crate::broker::BrokerState;
use crate::handlers::{blocking, str_bytes};
use crate::protocol::RequestContext;

/// Deletes each named topic.
pub async fn handle(
    state: &Arc<BrokerState>,
    ctx: &RequestContext,
    request: DeleteTopicsRequest,
) -> DeleteTopicsResponse {
    let wanted: Vec<(Option<String>, Uuid)> = if ctx.api_version >= 6 {
        request
            .topics
            .into_iter()
            .map(|t| (t.name.map(|n| n.to_string()), t.topic_id))
            .collect()
    } else {
        request
            .topic_names
            .into_iter()
            .map(|n| (Some(n.to_string()), Uuid::nil()))
            .collect()
    };
    let mut responses = Vec::with_capacity(wanted.len());
    for (name, topic_id) in wanted {
        let resolved = match &name {
            Some(name) => Some(name.clone()),
            None => state.metadata.topic_by_id(topic_id).map(|t| t.name.clone()),
        };
        let result = DeletableTopicResult::default()
            .with_name(name.as_deref().map(|n| TopicName(str_bytes(n))))
            .with_topic_id(topic_id);
        let Some(resolved) = resolved else {
            responses.push(result.with_error_code(ResponseError::UnknownTopicId.code()));
            continue;
        };
        let controller = Arc::clone(&state.controller);
        let groups = Arc::clone(&state.groups);
        let due = Arc::clone(&state.due);
        let deleted: Result<_, crate::error::ApiError> =
            blocking(Err(ResponseError::UnknownServerError.into()), move || {
                let deleted = controller.delete_topic(&resolved)?;
                // Kafka's `onPartitionsDeleted`: committed offsets of a deleted topic go too, so a
                // topic created again under the name does not inherit them.
                groups.on_topic_deleted(&deleted.name);
                // Likewise its due index entries and fired state (DESIGN §5.9).
                due.on_topic_deleted(&deleted);
                Ok(deleted)
            })
            .await;
        responses.push(match deleted {
            Ok(topic) => result
                .with_name(Some(TopicName(str_bytes(&topic.name))))
                .with_topic_id(topic.topic_id),
            Err(error) => result
                .with_error_code(error.code())
                .with_error_message(error.message.as_deref().map(str_bytes)),
        });
    }
    DeleteTopicsResponse::default().with_responses(responses)
}
