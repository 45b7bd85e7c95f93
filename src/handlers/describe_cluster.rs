//! DescribeCluster: this node is the whole cluster and its controller.

use kafka_protocol::messages::describe_cluster_response::DescribeClusterBroker;
use kafka_protocol::messages::{BrokerId, DescribeClusterRequest, DescribeClusterResponse};

use super::str_bytes;
use crate::broker::BrokerState;

/// Answers with the one broker.
#[must_use]
pub fn handle(state: &BrokerState, _request: &DescribeClusterRequest) -> DescribeClusterResponse {
    let node = BrokerId(state.config.node_id());
    DescribeClusterResponse::default()
        .with_cluster_id(str_bytes(state.metadata.cluster_id()))
        .with_controller_id(node)
        .with_endpoint_type(1)
        .with_cluster_authorized_operations(i32::MIN)
        .with_brokers(vec![
            DescribeClusterBroker::default()
                .with_broker_id(node)
                .with_host(str_bytes(&state.advertised_host))
                .with_port(state.advertised_port),
        ])
}
