//! AlterConfigs (legacy: replaces all of a topic's configs, as Kafka does) and
//! IncrementalAlterConfigs (SET / DELETE / APPEND / SUBTRACT). Broker configs are static in
//! Kairos: altering them is refused with INVALID_REQUEST rather than pretended.

use std::collections::BTreeSet;
use std::sync::Arc;

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::{
    AlterConfigsRequest, AlterConfigsResponse, IncrementalAlterConfigsRequest,
    IncrementalAlterConfigsResponse, alter_configs_response, incremental_alter_configs_response,
};
use kafka_protocol::protocol::StrBytes;

use super::{RESOURCE_TYPE_BROKER, RESOURCE_TYPE_TOPIC};
use crate::broker::BrokerState;
use crate::controller::AlterConfigOp;
use crate::error::ApiError;
use crate::handlers::{blocking, str_bytes};

/// Legacy AlterConfigs.
pub async fn handle(
    state: &Arc<BrokerState>,
    request: AlterConfigsRequest,
) -> AlterConfigsResponse {
    let validate_only = request.validate_only;
    let mut responses = Vec::with_capacity(request.resources.len());
    for resource in request.resources {
        let configs: Vec<(String, Option<String>)> = resource
            .configs
            .iter()
            .map(|c| {
                (
                    c.name.to_string(),
                    c.value.as_ref().map(ToString::to_string),
                )
            })
            .collect();
        let name = resource.resource_name.to_string();
        let controller = Arc::clone(&state.controller);
        let outcome = check_resource(
            resource.resource_type,
            &configs.iter().map(|c| c.0.clone()).collect::<Vec<_>>(),
        );
        let outcome = match outcome {
            Ok(()) => {
                blocking(Err(ResponseError::UnknownServerError.into()), move || {
                    controller.replace_topic_configs(&name, &configs, validate_only)
                })
                .await
            }
            Err(error) => Err(error),
        };
        let (code, message) = code_and_message(outcome);
        responses.push(
            alter_configs_response::AlterConfigsResourceResponse::default()
                .with_resource_type(resource.resource_type)
                .with_resource_name(resource.resource_name)
                .with_error_code(code)
                .with_error_message(message),
        );
    }
    AlterConfigsResponse::default().with_responses(responses)
}

/// IncrementalAlterConfigs.
pub async fn handle_incremental(
    state: &Arc<BrokerState>,
    request: IncrementalAlterConfigsRequest,
) -> IncrementalAlterConfigsResponse {
    let validate_only = request.validate_only;
    let mut responses = Vec::with_capacity(request.resources.len());
    for resource in request.resources {
        let mut ops = Vec::with_capacity(resource.configs.len());
        let mut bad_op = None;
        for config in &resource.configs {
            match AlterConfigOp::from_code(config.config_operation) {
                Some(op) => ops.push((
                    config.name.to_string(),
                    op,
                    config.value.as_ref().map(ToString::to_string),
                )),
                None => bad_op = Some(config.config_operation),
            }
        }
        let names: Vec<String> = ops.iter().map(|o| o.0.clone()).collect();
        let outcome = match (bad_op, check_resource(resource.resource_type, &names)) {
            (Some(op), _) => Err(ApiError::new(
                ResponseError::InvalidRequest,
                format!("unknown config operation {op}"),
            )),
            (None, Err(error)) => Err(error),
            (None, Ok(())) => {
                let name = resource.resource_name.to_string();
                let controller = Arc::clone(&state.controller);
                blocking(Err(ResponseError::UnknownServerError.into()), move || {
                    controller.incremental_alter_topic_configs(&name, &ops, validate_only)
                })
                .await
            }
        };
        let (code, message) = code_and_message(outcome);
        responses.push(
            incremental_alter_configs_response::AlterConfigsResourceResponse::default()
                .with_resource_type(resource.resource_type)
                .with_resource_name(resource.resource_name)
                .with_error_code(code)
                .with_error_message(message),
        );
    }
    IncrementalAlterConfigsResponse::default().with_responses(responses)
}

/// Only topics can be altered, and each config may appear once per resource.
fn check_resource(resource_type: i8, names: &[String]) -> Result<(), ApiError> {
    match resource_type {
        RESOURCE_TYPE_TOPIC => {}
        RESOURCE_TYPE_BROKER => {
            return Err(ApiError::new(
                ResponseError::InvalidRequest,
                "broker configs are static in Kairos; set them in the config file or flags and restart",
            ));
        }
        other => {
            return Err(ApiError::new(
                ResponseError::InvalidRequest,
                format!("unsupported resource type {other}"),
            ));
        }
    }
    let mut seen = BTreeSet::new();
    if let Some(duplicate) = names.iter().find(|n| !seen.insert(n.as_str())) {
        return Err(ApiError::new(
            ResponseError::InvalidRequest,
            format!("config {duplicate} appears twice"),
        ));
    }
    Ok(())
}

fn code_and_message(outcome: Result<(), ApiError>) -> (i16, Option<StrBytes>) {
    match outcome {
        Ok(()) => (0, None),
        Err(error) => (error.code(), error.message.as_deref().map(str_bytes)),
    }
}
