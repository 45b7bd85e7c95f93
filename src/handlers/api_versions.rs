//! ApiVersions: the advertised version table (see `protocol::versions`).

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::api_versions_response::ApiVersion;
use kafka_protocol::messages::{ApiKey, ApiVersionsRequest, ApiVersionsResponse};

use crate::protocol::RequestContext;
use crate::protocol::versions::{SUPPORTED_APIS, supported_range};

/// Answers with every advertised API.
#[must_use]
pub fn handle(_ctx: &RequestContext, _request: &ApiVersionsRequest) -> ApiVersionsResponse {
    let api_keys = SUPPORTED_APIS
        .iter()
        .map(|(key, range)| {
            ApiVersion::default()
                .with_api_key(*key as i16)
                .with_min_version(range.min)
                .with_max_version(range.max)
        })
        .collect();
    ApiVersionsResponse::default().with_api_keys(api_keys)
}

/// The v0 answer to an ApiVersions request at a version we do not support: UNSUPPORTED_VERSION
/// and ApiVersions' own range, so the client can retry at a version we speak (KIP-511).
#[must_use]
pub fn unsupported_version_response() -> ApiVersionsResponse {
    let own = supported_range(ApiKey::ApiVersions).map_or_else(Vec::new, |range| {
        vec![
            ApiVersion::default()
                .with_api_key(ApiKey::ApiVersions as i16)
                .with_min_version(range.min)
                .with_max_version(range.max),
        ]
    });
    ApiVersionsResponse::default()
        .with_error_code(ResponseError::UnsupportedVersion.code())
        .with_api_keys(own)
}
