//! DescribeProducers: the producers a partition knows (sequence state and open transaction).

use std::sync::Arc;

use kafka_protocol::messages::describe_producers_response::{
    PartitionResponse, ProducerState, TopicResponse,
};
use kafka_protocol::messages::{DescribeProducersRequest, DescribeProducersResponse, ProducerId};

use crate::broker::BrokerState;
use crate::handlers::blocking;

/// Lists each partition's active producers.
pub async fn handle(
    state: &Arc<BrokerState>,
    request: DescribeProducersRequest,
) -> DescribeProducersResponse {
    let replicas = Arc::clone(&state.replica_manager);
    let topics = blocking(Vec::new(), move || {
        request
            .topics
            .into_iter()
            .map(|topic| {
                let metadata = replicas.topic(topic.name.0.as_str());
                let partitions = topic
                    .partition_indexes
                    .iter()
                    .map(|index| {
                        let answer = PartitionResponse::default().with_partition_index(*index);
                        let log = metadata
                            .as_ref()
                            .map_err(|e| e.code)
                            .and_then(|t| replicas.partition_log(t, *index).map_err(|e| e.code));
                        match log {
                            Err(error) => answer.with_error_code(error.code()),
                            Ok(log) => answer.with_active_producers(
                                log.active_producers().iter().map(producer).collect(),
                            ),
                        }
                    })
                    .collect();
                TopicResponse::default()
                    .with_name(topic.name)
                    .with_partitions(partitions)
            })
            .collect()
    })
    .await;
    DescribeProducersResponse::default().with_topics(topics)
}

fn producer(entry: &kairos_storage::producer_state::ProducerStateEntry) -> ProducerState {
    let last = entry.batches.back();
    ProducerState::default()
        .with_producer_id(ProducerId(entry.producer_id))
        .with_producer_epoch(i32::from(entry.producer_epoch))
        .with_last_sequence(last.map_or(-1, |b| b.last_seq))
        .with_last_timestamp(last.map_or(-1, |b| b.timestamp))
        .with_coordinator_epoch(entry.coordinator_epoch)
        .with_current_txn_start_offset(entry.current_txn_first_offset.unwrap_or(-1))
}
