//! `DelayedFetch`: Fetch with long-polling.
//!
//! A fetch reads every requested partition once. If it found at least `min_bytes`, hit an error,
//! or `max_wait_ms` is zero, it answers at once. Otherwise it parks in the replica manager's fetch
//! purgatory, keyed by partition, until an append to one of its partitions or `max_wait_ms`, and
//! reads again. The fetch registers its waker *before* each read, and the waker keeps a permit,
//! so an append that lands between the read and the wait still wakes it: no lost wake-ups, no
//! polling, and an append wakes only the fetches that read its partition.
//!
//! Size limits follow Kafka (KIP-74): `partition_max_bytes` caps each partition, `max_bytes` caps
//! the response, and the first batch of the response is returned whole even when it exceeds
//! both, so a consumer can always make progress. Later partitions that would exceed the
//! remaining budget are returned empty.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use kafka_protocol::error::ResponseError;
use kairos_storage::TopicPartition;
use tokio::sync::Notify;

use super::ReplicaManager;
use crate::error::ApiError;
use crate::metadata::TopicMetadata;

/// Request-level fetch parameters.
#[derive(Debug, Clone, Copy)]
pub struct FetchParams {
    /// Longest the fetch may wait for `min_bytes`.
    pub max_wait_ms: i32,
    /// Bytes needed to answer before `max_wait_ms`.
    pub min_bytes: i32,
    /// Response size budget.
    pub max_bytes: i32,
    /// 0 = read_uncommitted (up to the high watermark), 1 = read_committed (up to the LSO).
    pub isolation_level: i8,
}

/// One partition to read.
#[derive(Debug)]
pub struct FetchPartition {
    /// The resolved topic, or why it did not resolve.
    pub topic: Result<Arc<TopicMetadata>, ApiError>,
    /// Partition index.
    pub partition: i32,
    /// First offset wanted.
    pub fetch_offset: i64,
    /// Per-partition byte budget.
    pub partition_max_bytes: i32,
}

/// What one partition answers.
#[derive(Debug, Clone)]
pub struct FetchPartitionData {
    /// Error for this partition, if any.
    pub error: Option<ApiError>,
    /// High watermark.
    pub high_watermark: i64,
    /// Last stable offset.
    pub last_stable_offset: i64,
    /// Log start offset.
    pub log_start_offset: i64,
    /// Stored batches, as stored.
    pub records: Option<Bytes>,
    /// For read_committed: the aborted transactions overlapping the returned batches, as
    /// `(producer id, first offset)`, so the client drops their records.
    pub aborted_transactions: Vec<(i64, i64)>,
}

impl FetchPartitionData {
    fn failed(error: ApiError) -> FetchPartitionData {
        FetchPartitionData {
            aborted_transactions: Vec::new(),
            error: Some(error),
            high_watermark: -1,
            last_stable_offset: -1,
            log_start_offset: -1,
            records: None,
        }
    }
}

/// Upper bound on a fetch's wait, whatever the client asks: parked fetches hold a task and a
/// connection slot, so their lifetime is limited (Kafka clients use at most a few seconds).
const FETCH_WAIT_MS_MAX: u64 = 30_000;

impl ReplicaManager {
    /// Serves a Fetch request, waiting per `params` for data.
    pub async fn fetch_messages(
        self: &Arc<Self>,
        params: FetchParams,
        partitions: Vec<FetchPartition>,
    ) -> Vec<FetchPartitionData> {
        let watched: Vec<TopicPartition> = partitions
            .iter()
            .filter_map(|p| {
                p.topic.as_ref().ok().map(|topic| TopicPartition {
                    topic: topic.name.clone(),
                    partition: p.partition,
                })
            })
            .collect();
        let partitions = Arc::new(partitions);
        let waiter = Arc::new(Notify::new());
        let max_wait = Duration::from_millis(
            u64::try_from(params.max_wait_ms)
                .unwrap_or(0)
                .min(FETCH_WAIT_MS_MAX),
        );
        let deadline = tokio::time::sleep(max_wait);
        tokio::pin!(deadline);
        loop {
            // Registered before the read: an append between the read and the wait leaves a
            // permit in `waiter`, so it is never missed.
            self.watch_partitions(&watched, &waiter);
            let (data, bytes, has_error) = self.read_once(params, &partitions).await;
            let enough = bytes >= usize::try_from(params.min_bytes).unwrap_or(0);
            if enough
                || has_error
                || max_wait.is_zero()
                || deadline.is_elapsed()
                || self.is_shutting_down()
            {
                return data;
            }
            tokio::select! {
                () = &mut deadline => {
                    // Nothing was appended to these partitions since the read (the waker would
                    // have fired), so the last read is still the answer.
                    return data;
                }
                () = waiter.notified() => {}
            }
        }
    }

    async fn read_once(
        self: &Arc<Self>,
        params: FetchParams,
        partitions: &Arc<Vec<FetchPartition>>,
    ) -> (Vec<FetchPartitionData>, usize, bool) {
        let manager = Arc::clone(self);
        let partitions = Arc::clone(partitions);
        let joined =
            tokio::task::spawn_blocking(move || manager.read_blocking(params, &partitions)).await;
        joined.unwrap_or_else(|join_error| {
            tracing::error!(%join_error, "fetch task failed");
            (Vec::new(), 0, true)
        })
    }

    fn read_blocking(
        &self,
        params: FetchParams,
        partitions: &[FetchPartition],
    ) -> (Vec<FetchPartitionData>, usize, bool) {
        let mut remaining = usize::try_from(params.max_bytes).unwrap_or(0);
        let mut total = 0_usize;
        let mut has_error = false;
        let data = partitions
            .iter()
            .map(|partition| {
                let result = self.read_partition(params, partition, remaining, total == 0);
                match &result.error {
                    Some(_) => has_error = true,
                    None => {
                        let size = result.records.as_ref().map_or(0, Bytes::len);
                        total += size;
                        remaining = remaining.saturating_sub(size);
                    }
                }
                result
            })
            .collect();
        (data, total, has_error)
    }

    fn read_partition(
        &self,
        params: FetchParams,
        request: &FetchPartition,
        remaining: usize,
        first_in_response: bool,
    ) -> FetchPartitionData {
        let topic = match &request.topic {
            Ok(topic) => topic,
            Err(error) => return FetchPartitionData::failed(error.clone()),
        };
        let log = match self.partition_log(topic, request.partition) {
            Ok(log) => log,
            Err(error) => return FetchPartitionData::failed(error),
        };
        let high_watermark = log.high_watermark();
        let last_stable_offset = log.last_stable_offset();
        let max_offset = if params.isolation_level == 1 {
            last_stable_offset
        } else {
            high_watermark
        };
        let budget = usize::try_from(request.partition_max_bytes)
            .unwrap_or(0)
            .min(remaining);
        let records = if budget == 0 && !first_in_response {
            Ok(Bytes::new())
        } else {
            log.read(request.fetch_offset, budget.max(1), Some(max_offset))
                .map(|info| info.records)
                .map(|records| {
                    // Storage returns the first batch whole (KIP-74); only the response's first
                    // partition may use that, later ones answer empty instead of overflowing.
                    if records.len() > budget && !first_in_response {
                        Bytes::new()
                    } else {
                        records
                    }
                })
        };
        match records {
            Ok(records) => FetchPartitionData {
                aborted_transactions: if params.isolation_level == 1 {
                    aborted_in(&log, request.fetch_offset, &records)
                } else {
                    Vec::new()
                },
                error: None,
                high_watermark,
                last_stable_offset,
                log_start_offset: log.log_start_offset(),
                records: Some(records),
            },
            Err(error) => FetchPartitionData {
                aborted_transactions: Vec::new(),
                error: Some(ApiError::from(&error)),
                high_watermark,
                last_stable_offset,
                log_start_offset: log.log_start_offset(),
                records: None,
            },
        }
    }
}

/// The aborted transactions that overlap the batches in `records` (Kafka's
/// `collectAbortedTransactions` from the fetch offset up to the end of what is returned).
fn aborted_in(log: &kairos_storage::Log, fetch_offset: i64, records: &Bytes) -> Vec<(i64, i64)> {
    let upper = kairos_storage::batch::Batches::new(records)
        .filter_map(Result::ok)
        .map(|(_, batch)| batch.last_offset() + 1)
        .last();
    let Some(upper) = upper else {
        return Vec::new();
    };
    log.aborted_transactions(fetch_offset, upper)
        .into_iter()
        .map(|txn| (txn.producer_id, txn.first_offset))
        .collect()
}

/// UNKNOWN_TOPIC_ID, for fetches by an id this broker does not know.
#[must_use]
pub fn unknown_topic_id() -> ApiError {
    ResponseError::UnknownTopicId.into()
}
