//! Request decoding, dispatch on the API key, and response encoding.
//!
//! A frame (the bytes after the 4-byte size prefix) becomes a [`Decoded`] request:
//! 1. The first 8 bytes (api key, api version, correlation id) are read by hand, so that an
//!    ApiVersions request at a version we do not support can be answered without parsing
//!    anything else (KIP-511: the client retries with the version we advertise).
//! 2. Any other API at an unadvertised version, an unknown API key, or a header or body that does
//!    not decode, is a [`ConnectionError`]: the connection closes, as Kafka does.
//! 3. Bodies are decoded with the `kafka-protocol` crate at the header's version.
//!
//! [`crate::handlers::handle`] then runs the request's handler.

// Decoders must not panic on input (STYLE B6.8).
#![deny(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

pub mod versions;

use std::future::Future;
use std::pin::Pin;

use bytes::{Buf, BufMut, Bytes, BytesMut};
use kafka_protocol::messages::*;
use kafka_protocol::protocol::{Decodable, Encodable, HeaderVersion};

use crate::error::ConnectionError;

/// A handler's answer: a response, nothing (acks=0 produce), or an error that closes the
/// connection.
pub type Answer = Result<Option<ResponseKind>, ConnectionError>;

/// The rest of a request that waits (an fsync, a fetch long-poll).
pub type ResponseFuture = Pin<Box<dyn Future<Output = Answer> + Send>>;

/// What the in-order part of a handler returns. Most answers are known at once and skip the
/// task that a waiting answer needs, which keeps the produce path to one thread hop.
#[expect(
    clippy::large_enum_variant,
    reason = "the known answer is the common, hot case"
)]
pub enum Reply {
    /// The answer is known.
    Now(Answer),
    /// The answer needs waiting; the connection runs it as its own task.
    Later(ResponseFuture),
}

impl std::fmt::Debug for Reply {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Reply::Now(answer) => f.debug_tuple("Now").field(answer).finish(),
            Reply::Later(_) => f.write_str("Later(..)"),
        }
    }
}

/// A response that is ready now.
pub fn ready(response: impl Into<ResponseKind>) -> Reply {
    Reply::Now(Ok(Some(response.into())))
}

/// Per-request facts handlers may need.
#[derive(Debug, Clone)]
pub struct RequestContext {
    /// The API.
    pub api_key: ApiKey,
    /// The negotiated version of the API.
    pub api_version: i16,
    /// Echoed in the response header.
    pub correlation_id: i32,
    /// The client's self-reported id, for logs.
    pub client_id: Option<String>,
    /// The client's address as Kafka prints it (`/127.0.0.1`), for group members; empty until
    /// the connection fills it in.
    pub client_host: String,
}

/// The outcome of decoding one frame.
#[derive(Debug)]
// The request variant is the common case; boxing it would add an allocation per request.
#[expect(
    clippy::large_enum_variant,
    reason = "the large variant is the hot one"
)]
pub enum Decoded {
    /// A request at an advertised version.
    Request(RequestContext, RequestKind),
    /// ApiVersions at a version newer than we support: answer v0 UNSUPPORTED_VERSION.
    UnsupportedApiVersions {
        /// Echoed in the response header.
        correlation_id: i32,
    },
}

/// Decodes one frame.
///
/// # Errors
/// Everything that must close the connection (see the module docs).
pub fn decode_request(mut frame: Bytes) -> Result<Decoded, ConnectionError> {
    let prefix = frame
        .get(0..8)
        .ok_or_else(|| ConnectionError::MalformedHeader(format!("{} byte frame", frame.len())))?;
    let mut prefix_buf = prefix;
    let api_key_raw = prefix_buf.get_i16();
    let api_version = prefix_buf.get_i16();
    let correlation_id = prefix_buf.get_i32();
    let api_key = ApiKey::try_from(api_key_raw)
        .map_err(|()| ConnectionError::MalformedHeader(format!("unknown api key {api_key_raw}")))?;
    if !versions::is_supported(api_key, api_version) {
        if api_key == ApiKey::ApiVersions && api_version >= 0 {
            return Ok(Decoded::UnsupportedApiVersions { correlation_id });
        }
        return Err(ConnectionError::UnsupportedVersion {
            api_key: api_key_raw,
            version: api_version,
        });
    }
    let header_version = api_key.request_header_version(api_version);
    let header = RequestHeader::decode(&mut frame, header_version)
        .map_err(|e| ConnectionError::MalformedHeader(e.to_string()))?;
    let request = decode_body(api_key, api_version, &mut frame).map_err(|e| {
        ConnectionError::MalformedBody {
            api: api_key,
            version: api_version,
            reason: e,
        }
    })?;
    let context = RequestContext {
        api_key,
        api_version,
        correlation_id: header.correlation_id,
        client_id: header.client_id.map(|id| id.to_string()),
        client_host: String::new(),
    };
    Ok(Decoded::Request(context, request))
}

fn decode_body(api_key: ApiKey, version: i16, buf: &mut Bytes) -> Result<RequestKind, String> {
    // The crate reports decode errors as `anyhow::Error`; only the message is kept.
    macro_rules! decode {
        ($($key:ident => $ty:ident),* $(,)?) => {
            match api_key {
                $(ApiKey::$key => RequestKind::$key(
                    $ty::decode(buf, version).map_err(|e| e.to_string())?,
                ),)*
                other => return Err(format!("{other:?} has no decoder")),
            }
        };
    }
    Ok(decode! {
        Produce => ProduceRequest,
        Fetch => FetchRequest,
        ListOffsets => ListOffsetsRequest,
        Metadata => MetadataRequest,
        ApiVersions => ApiVersionsRequest,
        CreateTopics => CreateTopicsRequest,
        DeleteTopics => DeleteTopicsRequest,
        DeleteRecords => DeleteRecordsRequest,
        InitProducerId => InitProducerIdRequest,
        DescribeConfigs => DescribeConfigsRequest,
        AlterConfigs => AlterConfigsRequest,
        CreatePartitions => CreatePartitionsRequest,
        IncrementalAlterConfigs => IncrementalAlterConfigsRequest,
        DescribeCluster => DescribeClusterRequest,
        FindCoordinator => FindCoordinatorRequest,
        JoinGroup => JoinGroupRequest,
        SyncGroup => SyncGroupRequest,
        Heartbeat => HeartbeatRequest,
        LeaveGroup => LeaveGroupRequest,
        OffsetCommit => OffsetCommitRequest,
        OffsetFetch => OffsetFetchRequest,
        OffsetDelete => OffsetDeleteRequest,
        ListGroups => ListGroupsRequest,
        DescribeGroups => DescribeGroupsRequest,
        DeleteGroups => DeleteGroupsRequest,
        ConsumerGroupHeartbeat => ConsumerGroupHeartbeatRequest,
        ConsumerGroupDescribe => ConsumerGroupDescribeRequest,
        AddPartitionsToTxn => AddPartitionsToTxnRequest,
        AddOffsetsToTxn => AddOffsetsToTxnRequest,
        EndTxn => EndTxnRequest,
        TxnOffsetCommit => TxnOffsetCommitRequest,
        DescribeProducers => DescribeProducersRequest,
        DescribeTransactions => DescribeTransactionsRequest,
        ListTransactions => ListTransactionsRequest,
    })
}

/// Appends a complete response frame (size prefix, header, body) to `out`.
///
/// # Errors
/// Encoding failures (a bug: a field that the version cannot represent).
pub fn encode_response(
    api_key: ApiKey,
    api_version: i16,
    correlation_id: i32,
    response: &ResponseKind,
    out: &mut BytesMut,
) -> Result<(), ConnectionError> {
    let start = out.len();
    out.put_i32(0);
    let header_version = if api_key == ApiKey::ApiVersions {
        // Always v0 for ApiVersions, so a client that does not yet know our versions can read it.
        ApiVersionsResponse::header_version(api_version)
    } else {
        api_key.response_header_version(api_version)
    };
    ResponseHeader::default()
        .with_correlation_id(correlation_id)
        .encode(out, header_version)
        .map_err(|e| ConnectionError::Encode(e.to_string()))?;
    response
        .encode(out, api_version)
        .map_err(|e| ConnectionError::Encode(format!("{api_key:?} v{api_version}: {e}")))?;
    let size = i32::try_from(out.len() - start - 4)
        .map_err(|_| ConnectionError::Encode("response larger than 2 GiB".into()))?;
    if let Some(prefix) = out.get_mut(start..start + 4) {
        prefix.copy_from_slice(&size.to_be_bytes());
    }
    Ok(())
}

/// A short, static name of an API for metrics labels and logs.
#[must_use]
pub fn api_name(api_key: ApiKey) -> &'static str {
    match api_key {
        ApiKey::Produce => "Produce",
        ApiKey::Fetch => "Fetch",
        ApiKey::ListOffsets => "ListOffsets",
        ApiKey::Metadata => "Metadata",
        ApiKey::ApiVersions => "ApiVersions",
        ApiKey::CreateTopics => "CreateTopics",
        ApiKey::DeleteTopics => "DeleteTopics",
        ApiKey::DeleteRecords => "DeleteRecords",
        ApiKey::InitProducerId => "InitProducerId",
        ApiKey::DescribeConfigs => "DescribeConfigs",
        ApiKey::AlterConfigs => "AlterConfigs",
        ApiKey::CreatePartitions => "CreatePartitions",
        ApiKey::IncrementalAlterConfigs => "IncrementalAlterConfigs",
        ApiKey::DescribeCluster => "DescribeCluster",
        _ => "Other",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(api_key: i16, version: i16, rest: &[u8]) -> Bytes {
        let mut buf = BytesMut::new();
        buf.put_i16(api_key);
        buf.put_i16(version);
        buf.put_i32(7);
        buf.put_slice(rest);
        buf.freeze()
    }

    #[test]
    fn short_frames_and_unknown_keys_close() {
        assert!(matches!(
            decode_request(Bytes::from_static(b"abc")),
            Err(ConnectionError::MalformedHeader(_))
        ));
        assert!(matches!(
            decode_request(frame(999, 0, &[])),
            Err(ConnectionError::MalformedHeader(_))
        ));
        assert!(matches!(
            decode_request(frame(0, 99, &[])),
            Err(ConnectionError::UnsupportedVersion { .. })
        ));
        assert!(matches!(
            decode_request(frame(18, 99, b"whatever")),
            Ok(Decoded::UnsupportedApiVersions { correlation_id: 7 })
        ));
    }

    #[test]
    fn every_advertised_version_round_trips_a_default_request() {
        for (key, range) in versions::SUPPORTED_APIS {
            for version in range.min..=range.max {
                let mut body = BytesMut::new();
                let header = RequestHeader::default()
                    .with_request_api_key(*key as i16)
                    .with_request_api_version(version)
                    .with_correlation_id(3);
                header
                    .encode(&mut body, key.request_header_version(version))
                    .unwrap();
                default_request(*key).encode(&mut body, version).unwrap();
                match decode_request(body.freeze()) {
                    Ok(Decoded::Request(ctx, _)) => assert_eq!(ctx.correlation_id, 3),
                    other => panic!("{key:?} v{version}: {other:?}"),
                }
            }
        }
    }

    fn default_request(key: ApiKey) -> RequestKind {
        match key {
            ApiKey::Produce => ProduceRequest::default().into(),
            ApiKey::Fetch => FetchRequest::default().into(),
            ApiKey::ListOffsets => ListOffsetsRequest::default().into(),
            ApiKey::Metadata => MetadataRequest::default().into(),
            ApiKey::ApiVersions => ApiVersionsRequest::default().into(),
            ApiKey::CreateTopics => CreateTopicsRequest::default().into(),
            ApiKey::DeleteTopics => DeleteTopicsRequest::default().into(),
            ApiKey::DeleteRecords => DeleteRecordsRequest::default().into(),
            ApiKey::InitProducerId => InitProducerIdRequest::default().into(),
            ApiKey::DescribeConfigs => DescribeConfigsRequest::default().into(),
            ApiKey::AlterConfigs => AlterConfigsRequest::default().into(),
            ApiKey::CreatePartitions => CreatePartitionsRequest::default().into(),
            ApiKey::IncrementalAlterConfigs => IncrementalAlterConfigsRequest::default().into(),
            ApiKey::DescribeCluster => DescribeClusterRequest::default().into(),
            ApiKey::FindCoordinator => FindCoordinatorRequest::default().into(),
            ApiKey::JoinGroup => JoinGroupRequest::default().into(),
            ApiKey::SyncGroup => SyncGroupRequest::default().into(),
            ApiKey::Heartbeat => HeartbeatRequest::default().into(),
            ApiKey::LeaveGroup => LeaveGroupRequest::default().into(),
            ApiKey::OffsetCommit => OffsetCommitRequest::default().into(),
            ApiKey::OffsetFetch => OffsetFetchRequest::default().into(),
            ApiKey::OffsetDelete => OffsetDeleteRequest::default().into(),
            ApiKey::ListGroups => ListGroupsRequest::default().into(),
            ApiKey::DescribeGroups => DescribeGroupsRequest::default().into(),
            ApiKey::DeleteGroups => DeleteGroupsRequest::default().into(),
            ApiKey::ConsumerGroupHeartbeat => ConsumerGroupHeartbeatRequest::default().into(),
            ApiKey::ConsumerGroupDescribe => ConsumerGroupDescribeRequest::default().into(),
            ApiKey::AddPartitionsToTxn => AddPartitionsToTxnRequest::default().into(),
            ApiKey::AddOffsetsToTxn => AddOffsetsToTxnRequest::default().into(),
            ApiKey::EndTxn => EndTxnRequest::default().into(),
            ApiKey::TxnOffsetCommit => TxnOffsetCommitRequest::default().into(),
            ApiKey::DescribeProducers => DescribeProducersRequest::default().into(),
            ApiKey::DescribeTransactions => DescribeTransactionsRequest::default().into(),
            ApiKey::ListTransactions => ListTransactionsRequest::default().into(),
            other => panic!("{other:?}"),
        }
    }
}
