//! CreatePartitions: grow a topic's partition count.

use std::sync::Arc;

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::create_partitions_response::CreatePartitionsTopicResult;
use kafka_protocol::messages::{CreatePartitionsRequest, CreatePartitionsResponse};

use crate::broker::BrokerState;
use crate::handlers::{blocking, str_bytes};

/// Grows each named topic.
pub async fn handle(
    state: &Arc<BrokerState>,
    request: CreatePartitionsRequest,
) -> CreatePartitionsResponse {
    let validate_only = request.validate_only;
    let mut results = Vec::with_capacity(request.topics.len());
    for topic in request.topics {
        let name = topic.name.to_string();
        let count = topic.count;
        let assignments: Option<Vec<Vec<i32>>> = topic.assignments.map(|a| {
            a.iter()
                .map(|b| b.broker_ids.iter().map(|id| id.0).collect())
                .collect()
        });
        let controller = Arc::clone(&state.controller);
        let outcome = blocking(Err(ResponseError::UnknownServerError.into()), move || {
            controller.create_partitions(&name, count, assignments.as_deref(), validate_only)
        })
        .await;
        let result = CreatePartitionsTopicResult::default().with_name(topic.name);
        results.push(match outcome {
            Ok(()) => result,
            Err(error) => result
                .with_error_code(error.code())
                .with_error_message(error.message.as_deref().map(str_bytes)),
        });
    }
    CreatePartitionsResponse::default().with_results(results)
}
