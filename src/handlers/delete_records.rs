//! DeleteRecords: advance partitions' log start offsets.

use std::sync::Arc;

use kafka_protocol::messages::delete_records_response::{
    DeleteRecordsPartitionResult, DeleteRecordsTopicResult,
};
use kafka_protocol::messages::{DeleteRecordsRequest, DeleteRecordsResponse};

use super::blocking;
use crate::broker::BrokerState;

/// Answers every partition with its new low watermark or an error.
pub async fn handle(
    state: &Arc<BrokerState>,
    request: DeleteRecordsRequest,
) -> DeleteRecordsResponse {
    let replica_manager = Arc::clone(&state.replica_manager);
    let topics = blocking(Vec::new(), move || {
        request
            .topics
            .into_iter()
            .map(|topic| {
                let partitions = topic
                    .partitions
                    .iter()
                    .map(|p| {
                        let result = DeleteRecordsPartitionResult::default()
                            .with_partition_index(p.partition_index);
                        match replica_manager.delete_records(
                            &topic.name,
                            p.partition_index,
                            p.offset,
                        ) {
                            Ok(low_watermark) => result.with_low_watermark(low_watermark),
                            Err(error) => {
                                result.with_error_code(error.code()).with_low_watermark(-1)
                            }
                        }
                    })
                    .collect();
                DeleteRecordsTopicResult::default()
                    .with_name(topic.name)
                    .with_partitions(partitions)
            })
            .collect()
    })
    .await;
    DeleteRecordsResponse::default().with_topics(topics)
}
