//! DescribeConfigs for topics and the broker: values, sources, synonyms (v1+), types and
//! documentation (v3+).

use std::sync::Arc;

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::describe_configs_response::{
    DescribeConfigsResourceResult, DescribeConfigsResult, DescribeConfigsSynonym,
};
use kafka_protocol::messages::{DescribeConfigsRequest, DescribeConfigsResponse};
use kafka_protocol::protocol::StrBytes;

use super::{RESOURCE_TYPE_BROKER, RESOURCE_TYPE_TOPIC};
use crate::broker::BrokerState;
use crate::handlers::str_bytes;
use crate::protocol::RequestContext;
use crate::topic_config::{self, ConfigSource};

/// Describes each resource.
#[must_use]
pub fn handle(
    state: &Arc<BrokerState>,
    ctx: &RequestContext,
    request: &DescribeConfigsRequest,
) -> DescribeConfigsResponse {
    let synonyms = ctx.api_version >= 1 && request.include_synonyms;
    let documentation = ctx.api_version >= 3 && request.include_documentation;
    let results = request
        .resources
        .iter()
        .map(|resource| {
            let wanted = |name: &str| {
                resource
                    .configuration_keys
                    .as_ref()
                    .is_none_or(|keys| keys.iter().any(|k| k.as_str() == name))
            };
            let result = DescribeConfigsResult::default()
                .with_resource_type(resource.resource_type)
                .with_resource_name(resource.resource_name.clone());
            match resource.resource_type {
                RESOURCE_TYPE_TOPIC => {
                    let Some(topic) = state.metadata.topic(resource.resource_name.as_str()) else {
                        return result
                            .with_error_code(ResponseError::UnknownTopicOrPartition.code())
                            .with_error_message(Some(str_bytes("unknown topic")));
                    };
                    let configs = topic_config::resolve(&topic.configs, &state.config)
                        .into_iter()
                        .filter(|c| wanted(c.def.def.name))
                        .map(|c| {
                            let entry = entry(c.def.def.name, c.value.as_deref(), c.source, false)
                                .with_config_type(c.def.def.kind.describe_code());
                            let entry = if documentation {
                                entry.with_documentation(Some(str_bytes(c.def.def.doc)))
                            } else {
                                entry
                            };
                            if synonyms {
                                entry.with_synonyms(
                                    c.synonyms
                                        .iter()
                                        .map(|(name, value, source)| {
                                            synonym(name, value.as_deref(), *source)
                                        })
                                        .collect(),
                                )
                            } else {
                                entry
                            }
                        })
                        .collect();
                    result.with_configs(configs)
                }
                RESOURCE_TYPE_BROKER => {
                    let name = resource.resource_name.as_str();
                    if !(name.is_empty() || name == state.config.node_id().to_string()) {
                        return result
                            .with_error_code(ResponseError::InvalidRequest.code())
                            .with_error_message(Some(str_bytes("unknown broker id")));
                    }
                    let configs = state
                        .config
                        .describe()
                        .into_iter()
                        .filter(|(def, _, _)| wanted(def.name))
                        .map(|(def, value, explicit)| {
                            let source = if explicit {
                                ConfigSource::StaticBroker
                            } else {
                                ConfigSource::Default
                            };
                            let entry = entry(def.name, value.as_deref(), source, true)
                                .with_config_type(def.kind.describe_code());
                            let entry = if documentation {
                                entry.with_documentation(Some(str_bytes(def.doc)))
                            } else {
                                entry
                            };
                            if synonyms {
                                entry.with_synonyms(vec![synonym(
                                    def.name,
                                    value.as_deref(),
                                    source,
                                )])
                            } else {
                                entry
                            }
                        })
                        .collect();
                    result.with_configs(configs)
                }
                other => result
                    .with_error_code(ResponseError::InvalidRequest.code())
                    .with_error_message(Some(str_bytes(&format!(
                        "unsupported resource type {other}"
                    )))),
            }
        })
        .collect();
    DescribeConfigsResponse::default().with_results(results)
}

fn entry(
    name: &str,
    value: Option<&str>,
    source: ConfigSource,
    read_only: bool,
) -> DescribeConfigsResourceResult {
    DescribeConfigsResourceResult::default()
        .with_name(str_bytes(name))
        .with_value(value.map(str_bytes))
        .with_read_only(read_only)
        .with_config_source(source.code())
        .with_is_sensitive(false)
}

fn synonym(name: &str, value: Option<&str>, source: ConfigSource) -> DescribeConfigsSynonym {
    DescribeConfigsSynonym::default()
        .with_name(StrBytes::from_string(name.to_owned()))
        .with_value(value.map(str_bytes))
        .with_source(source.code())
}
