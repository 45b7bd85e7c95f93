//! One file per Kafka API. Each handler decodes nothing itself (the protocol layer did), makes
//! one call on the owner of the state (`ReplicaManager`, `Controller`, `MetadataCache`,
//! `ProducerIdManager`) and builds the response. Per-partition and per-resource failures are
//! error codes in the response; only a [`ConnectionError`] closes the connection.

pub mod admin;
pub mod api_versions;
pub mod delete_records;
pub mod describe_cluster;
pub mod fetch;
pub mod group;
pub mod list_offsets;
pub mod metadata;
pub mod produce;
pub mod txn;

use std::sync::Arc;

use kafka_protocol::messages::RequestKind;
use kafka_protocol::protocol::StrBytes;

use crate::broker::BrokerState;
use crate::error::ConnectionError;
use crate::protocol::{Reply, RequestContext, ready};

/// Runs the in-order part of a request and returns the rest as a future.
///
/// # Errors
/// Conditions that close the connection.
pub async fn handle(
    state: &Arc<BrokerState>,
    ctx: &RequestContext,
    request: RequestKind,
) -> Result<Reply, ConnectionError> {
    Ok(match request {
        RequestKind::ApiVersions(req) => ready(api_versions::handle(ctx, &req)),
        RequestKind::Metadata(req) => ready(metadata::handle(state, ctx, req).await),
        RequestKind::Produce(req) => produce::handle(state, ctx, req).await,
        RequestKind::Fetch(req) => fetch::handle(state, ctx, req),
        RequestKind::ListOffsets(req) => ready(list_offsets::handle(state, ctx, req).await),
        RequestKind::InitProducerId(req) => ready(txn::init_producer_id::handle(state, req).await),
        RequestKind::AddPartitionsToTxn(req) => {
            ready(txn::add_partitions_to_txn::handle(state, ctx, req).await)
        }
        RequestKind::AddOffsetsToTxn(req) => {
            ready(txn::add_offsets_to_txn::handle(state, req).await)
        }
        RequestKind::EndTxn(req) => ready(txn::end_txn::handle(state, req).await),
        RequestKind::TxnOffsetCommit(req) => {
            ready(txn::txn_offset_commit::handle(state, ctx, req).await)
        }
        RequestKind::DescribeProducers(req) => {
            ready(txn::describe_producers::handle(state, req).await)
        }
        RequestKind::DescribeTransactions(req) => {
            ready(txn::describe_transactions::handle(state, req).await)
        }
        RequestKind::ListTransactions(req) => {
            ready(txn::list_transactions::handle(state, ctx, req).await)
        }
        RequestKind::DeleteRecords(req) => ready(delete_records::handle(state, req).await),
        RequestKind::DescribeCluster(req) => ready(describe_cluster::handle(state, &req)),
        RequestKind::FindCoordinator(req) => {
            ready(group::find_coordinator::handle(state, ctx, req).await)
        }
        RequestKind::JoinGroup(req) => group::join_group::handle(state, ctx, req).await,
        RequestKind::SyncGroup(req) => group::sync_group::handle(state, ctx, req).await,
        RequestKind::Heartbeat(req) => ready(group::heartbeat::handle(state, req).await),
        RequestKind::LeaveGroup(req) => ready(group::leave_group::handle(state, ctx, req).await),
        RequestKind::OffsetCommit(req) => {
            ready(group::offset_commit::handle(state, ctx, req).await)
        }
        RequestKind::OffsetFetch(req) => ready(group::offset_fetch::handle(state, ctx, req).await),
        RequestKind::OffsetDelete(req) => ready(group::offset_delete::handle(state, req).await),
        RequestKind::ListGroups(req) => ready(group::list_groups::handle(state, ctx, req).await),
        RequestKind::DescribeGroups(req) => {
            ready(group::describe_groups::handle(state, ctx, req).await)
        }
        RequestKind::ConsumerGroupHeartbeat(req) => {
            ready(group::consumer_group_heartbeat::handle(state, ctx, req).await)
        }
        RequestKind::ConsumerGroupDescribe(req) => {
            ready(group::consumer_group_describe::handle(state, ctx, req).await)
        }
        RequestKind::DeleteGroups(req) => ready(group::delete_groups::handle(state, req).await),
        RequestKind::CreateTopics(req) => {
            ready(admin::create_topics::handle(state, ctx, req).await)
        }
        RequestKind::DeleteTopics(req) => {
            ready(admin::delete_topics::handle(state, ctx, req).await)
        }
        RequestKind::CreatePartitions(req) => {
            ready(admin::create_partitions::handle(state, req).await)
        }
        RequestKind::DescribeConfigs(req) => {
            ready(admin::describe_configs::handle(state, ctx, &req))
        }
        RequestKind::AlterConfigs(req) => ready(admin::alter_configs::handle(state, req).await),
        RequestKind::IncrementalAlterConfigs(req) => {
            ready(admin::alter_configs::handle_incremental(state, req).await)
        }
        other => {
            // The protocol layer only decodes advertised APIs, so this is unreachable from the
            // wire; answer by closing rather than panicking.
            return Err(ConnectionError::MalformedHeader(format!(
                "no handler for {:?}",
                std::mem::discriminant(&other)
            )));
        }
    })
}

/// Runs blocking owner code on the blocking pool; a panic there becomes `fallback`.
pub(crate) async fn blocking<T: Send + 'static>(
    fallback: T,
    work: impl FnOnce() -> T + Send + 'static,
) -> T {
    match tokio::task::spawn_blocking(work).await {
        Ok(value) => value,
        Err(join_error) => {
            tracing::error!(%join_error, "blocking task failed");
            fallback
        }
    }
}

/// A `StrBytes` from a `&str`.
pub(crate) fn str_bytes(value: &str) -> StrBytes {
    StrBytes::from_string(value.to_owned())
}
