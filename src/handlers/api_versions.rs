//! ApiVersions: the advertised version table (see `protocol::versions`).

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::api_versions_response::{
    ApiVersion, FinalizedFeatureKey, SupportedFeatureKey,
};
use kafka_protocol::messages::{ApiKey, ApiVersionsRequest, ApiVersionsResponse};
use kafka_protocol::protocol::StrBytes;

use crate::protocol::RequestContext;
use crate::protocol::versions::{SUPPORTED_APIS, supported_range};

/// Feature levels (KIP-584) this node implements, finalized at their maximum: `group.version`
/// 1 is the KIP-848 consumer protocol. `transaction.version` stays at level 0 (not listed, as
/// Kafka omits level-0 features): `__transaction_state` is written in its version-0 layout and
/// EndTxn does not bump the epoch per transaction (KIP-890 part 2); part 1, the server-side check
/// of transactional appends, does not need a feature level.
const FEATURES: &[(&str, i16, i16)] = &[("group.version", 0, 1)];

// A single node never changes its features at run time: one fixed epoch.
const FINALIZED_FEATURES_EPOCH: i64 = 1;

/// Answers with every advertised API, and from v3 the feature levels.
#[must_use]
pub fn handle(ctx: &RequestContext, _request: &ApiVersionsRequest) -> ApiVersionsResponse {
    let api_keys = SUPPORTED_APIS
        .iter()
        .map(|(key, range)| {
            ApiVersion::default()
                .with_api_key(*key as i16)
                .with_min_version(range.min)
                .with_max_version(range.max)
        })
        .collect();
    let response = ApiVersionsResponse::default().with_api_keys(api_keys);
    if ctx.api_version < 3 {
        return response;
    }
    response
        .with_supported_features(
            FEATURES
                .iter()
                .map(|(name, min, max)| {
                    SupportedFeatureKey::default()
                        .with_name(StrBytes::from_static_str(name))
                        .with_min_version(*min)
                        .with_max_version(*max)
                })
                .collect(),
        )
        .with_finalized_features_epoch(FINALIZED_FEATURES_EPOCH)
        .with_finalized_features(
            FEATURES
                .iter()
                .map(|(name, _, max)| {
                    FinalizedFeatureKey::default()
                        .with_name(StrBytes::from_static_str(name))
                        .with_min_version_level(*max)
                        .with_max_version_level(*max)
                })
                .collect(),
        )
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
