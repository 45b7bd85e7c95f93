//! `ReplicaManager`: the owner of partition logs for the request path.
//!
//! Storage is blocking, so every call into a `Log` runs on tokio's blocking pool and no async
//! lock is held across it. Produce is split in two phases so that a connection can pipeline:
//! [`ReplicaManager::append_records`] appends in request order (the connection awaits it before
//! reading its next request), and the returned [`PendingProduce`] waits for the group-commit
//! fsync of acks=-1 off the connection's read path.
//!
//! Every successful append bumps a `watch` counter that parked fetches (`DelayedFetch`) wait on,
//! so long-polls wake on appends instead of polling.

use std::sync::Arc;

use bytes::{Bytes, BytesMut};
use kafka_protocol::error::ResponseError;
use kairos_storage::{AppendOrigin, AppendOutcome, Log, LogManager, TopicPartition};
use std::collections::HashMap;
use std::sync::Weak;

use tokio::sync::{Notify, watch};

use crate::clock::Clock;
use crate::config::BrokerConfig;
use crate::error::{ApiError, storage_error_code};
use crate::metadata::{MetadataCache, TopicMetadata};
use crate::topic_config;

/// One partition's records in a Produce request.
#[derive(Debug)]
pub struct PartitionAppend {
    /// Topic name.
    pub topic: String,
    /// Partition index.
    pub partition: i32,
    /// The record batches as sent.
    pub records: Option<Bytes>,
}

/// The answer for one partition of a Produce request.
#[derive(Debug, Clone)]
pub struct PartitionAppendResult {
    /// Error for this partition, if any.
    pub error: Option<ApiError>,
    /// First offset assigned (or of the duplicate).
    pub base_offset: i64,
    /// The broker's timestamp for LogAppendTime topics, else -1.
    pub log_append_time_ms: i64,
    /// The log start offset after the append.
    pub log_start_offset: i64,
    /// `(batch index, message)` for INVALID_RECORD.
    pub record_errors: Vec<(i32, String)>,
}

impl PartitionAppendResult {
    /// A partition that was not appended because of `error`.
    #[must_use]
    pub fn rejected(error: ApiError) -> PartitionAppendResult {
        PartitionAppendResult::failed(error)
    }

    fn failed(error: ApiError) -> PartitionAppendResult {
        let record_errors = if error.code == ResponseError::InvalidRecord {
            vec![(0, error.message.clone().unwrap_or_default())]
        } else {
            Vec::new()
        };
        PartitionAppendResult {
            error: Some(error),
            base_offset: -1,
            log_append_time_ms: -1,
            log_start_offset: -1,
            record_errors,
        }
    }
}

/// Results of the append phase, and what is left to make them durable.
#[derive(Debug)]
pub struct PendingProduce {
    results: Vec<PartitionAppendResult>,
    // `(index into results, log, end offset)` to fsync before answering acks=-1.
    to_sync: Vec<(usize, Arc<Log>, i64)>,
    clock: Arc<dyn Clock>,
    // Partitions that received data: their parked fetches are woken.
    appended_partitions: Vec<TopicPartition>,
}

impl PendingProduce {
    /// Whether any partition failed (acks=0 closes the connection then).
    #[must_use]
    pub fn first_error(&self) -> Option<&ApiError> {
        self.results.iter().find_map(|r| r.error.as_ref())
    }

    /// The results, if nothing is left to fsync; otherwise `self` back.
    ///
    /// # Errors
    /// Returns `self` when an fsync is still needed (acks=-1).
    pub fn into_durable(self) -> Result<Vec<PartitionAppendResult>, PendingProduce> {
        if self.to_sync.is_empty() {
            Ok(self.results)
        } else {
            Err(self)
        }
    }

    /// Waits until the appended data is durable (group commit: concurrent callers share one
    /// fdatasync in storage), then returns the per-partition results in request order.
    pub async fn complete(mut self) -> Vec<PartitionAppendResult> {
        if self.to_sync.is_empty() {
            return self.results;
        }
        let to_sync = std::mem::take(&mut self.to_sync);
        let clock = Arc::clone(&self.clock);
        let synced = tokio::task::spawn_blocking(move || {
            to_sync
                .into_iter()
                .map(|(index, log, end_offset)| (index, log.sync_to(end_offset, clock.now_ms())))
                .collect::<Vec<_>>()
        })
        .await;
        match synced {
            Ok(outcomes) => {
                for (index, outcome) in outcomes {
                    if let (Err(error), Some(result)) = (outcome, self.results.get_mut(index)) {
                        *result = PartitionAppendResult::failed(ApiError::from(&error));
                    }
                }
            }
            Err(join_error) => {
                tracing::error!(%join_error, "fsync task failed");
                for result in &mut self.results {
                    *result =
                        PartitionAppendResult::failed(ResponseError::KafkaStorageError.into());
                }
            }
        }
        self.results
    }
}

/// Appends and reads partition logs.
#[derive(Debug)]
pub struct ReplicaManager {
    log_manager: Arc<LogManager>,
    metadata: Arc<MetadataCache>,
    config: Arc<BrokerConfig>,
    clock: Arc<dyn Clock>,
    // Bumped after every successful append, for tasks that follow every log (the due pulse).
    appended: watch::Sender<u64>,
    // Parked fetches by partition: the fetch purgatory, keyed like Kafka's by TopicPartition,
    // so an append wakes only the fetches that read that partition. Weak, so a finished fetch
    // costs nothing; dead entries are pruned whenever a partition's list is touched.
    fetch_waiters: parking_lot::Mutex<HashMap<TopicPartition, Vec<Weak<Notify>>>>,
    // Set at shutdown: parked fetches answer with what they have instead of waiting out
    // `max_wait_ms`, so a graceful shutdown is not held up by long-polls.
    shutting_down: std::sync::atomic::AtomicBool,
}

impl ReplicaManager {
    /// A manager over `log_manager`.
    pub fn new(
        log_manager: Arc<LogManager>,
        metadata: Arc<MetadataCache>,
        config: Arc<BrokerConfig>,
        clock: Arc<dyn Clock>,
    ) -> ReplicaManager {
        let (appended, _receiver) = watch::channel(0);
        ReplicaManager {
            log_manager,
            metadata,
            config,
            clock,
            appended,
            fetch_waiters: parking_lot::Mutex::new(HashMap::new()),
            shutting_down: std::sync::atomic::AtomicBool::new(false),
        }
    }

    /// Registers a parked fetch's waker for each of `partitions`.
    pub fn watch_partitions(&self, partitions: &[TopicPartition], waiter: &Arc<Notify>) {
        let mut waiters = self.fetch_waiters.lock();
        for tp in partitions {
            let list = waiters.entry(tp.clone()).or_default();
            list.retain(|w| w.strong_count() > 0);
            if !list
                .iter()
                .any(|w| std::ptr::eq(w.as_ptr(), Arc::as_ptr(waiter)))
            {
                list.push(Arc::downgrade(waiter));
            }
        }
    }

    /// Wakes the fetches parked on `tp` (after an append to it, by any writer).
    pub fn wake_fetches(&self, tp: &TopicPartition) {
        let woken: Vec<Arc<Notify>> = {
            let mut waiters = self.fetch_waiters.lock();
            let Some(list) = waiters.get_mut(tp) else {
                return;
            };
            let woken = list.drain(..).filter_map(|w| w.upgrade()).collect();
            let _ = waiters.remove(tp);
            woken
        };
        // Notify outside the lock; `notify_one` keeps a permit if the fetch is between its read
        // and its wait, so the wake-up is never lost.
        for waiter in woken {
            waiter.notify_one();
        }
    }

    /// Completes every parked fetch now and every later one at once.
    pub fn begin_shutdown(&self) {
        self.shutting_down
            .store(true, std::sync::atomic::Ordering::SeqCst);
        self.appended
            .send_modify(|count| *count = count.wrapping_add(1));
        self.wake_all_fetches();
    }

    /// Wakes every parked fetch (after appends that bypass Produce, such as due fires, whose
    /// partitions the writer does not track).
    pub fn wake_all_fetches(&self) {
        let parked: Vec<TopicPartition> = self.fetch_waiters.lock().keys().cloned().collect();
        for tp in &parked {
            self.wake_fetches(tp);
        }
    }

    /// Whether [`ReplicaManager::begin_shutdown`] was called.
    #[must_use]
    pub fn is_shutting_down(&self) -> bool {
        self.shutting_down.load(std::sync::atomic::Ordering::SeqCst)
    }

    /// The log manager (for the controller, background tasks and metrics).
    #[must_use]
    pub fn log_manager(&self) -> &Arc<LogManager> {
        &self.log_manager
    }

    /// The broker clock.
    #[must_use]
    pub fn clock(&self) -> &Arc<dyn Clock> {
        &self.clock
    }

    /// Subscribes to the append counter.
    #[must_use]
    pub fn subscribe_appends(&self) -> watch::Receiver<u64> {
        self.appended.subscribe()
    }

    /// The log of `topic`/`partition`, creating it from the topic's configs if the topic exists
    /// but the log does not yet (first use after creation, or after a crash in between).
    ///
    /// # Errors
    /// UNKNOWN_TOPIC_OR_PARTITION, or a storage error creating the log. Blocking.
    pub fn partition_log(
        &self,
        topic: &TopicMetadata,
        partition: i32,
    ) -> Result<Arc<Log>, ApiError> {
        if partition < 0 || partition >= topic.partitions {
            return Err(ResponseError::UnknownTopicOrPartition.into());
        }
        let tp = TopicPartition {
            topic: topic.name.clone(),
            partition,
        };
        if let Some(log) = self.log_manager.get(&tp) {
            return Ok(log);
        }
        let log_config = topic_config::log_config(&topic.configs, &self.config);
        self.log_manager
            .get_or_create(&tp, log_config, self.clock.now_ms())
            .map_err(|e| ApiError::from(&e))
    }

    /// Looks up a topic by name for a request path.
    ///
    /// # Errors
    /// UNKNOWN_TOPIC_OR_PARTITION.
    pub fn topic(&self, name: &str) -> Result<Arc<TopicMetadata>, ApiError> {
        self.metadata
            .topic(name)
            .ok_or_else(|| ResponseError::UnknownTopicOrPartition.into())
    }

    /// The append phase of a Produce request: validates and appends every partition in order.
    /// With `acks == -1` the returned [`PendingProduce`] still has to fsync.
    pub async fn append_records(
        self: &Arc<Self>,
        acks: i16,
        entries: Vec<PartitionAppend>,
    ) -> PendingProduce {
        let manager = Arc::clone(self);
        let sync = acks == -1 && self.config.acks_all_fsync();
        let joined =
            tokio::task::spawn_blocking(move || manager.append_blocking(entries, sync)).await;
        let pending = joined.unwrap_or_else(|join_error| {
            tracing::error!(%join_error, "append task failed");
            self.failed_append()
        });
        self.after_append(&pending);
        pending
    }

    /// What a failed append task answers.
    #[must_use]
    pub fn failed_append(&self) -> PendingProduce {
        PendingProduce {
            results: vec![PartitionAppendResult::failed(
                ResponseError::UnknownServerError.into(),
            )],
            to_sync: Vec::new(),
            clock: Arc::clone(&self.clock),
            appended_partitions: Vec::new(),
        }
    }

    /// Wakes what waits for appends (parked fetches, the due pulse) after an append phase.
    pub fn after_append(&self, pending: &PendingProduce) {
        if !pending.appended_partitions.is_empty() {
            for tp in &pending.appended_partitions {
                self.wake_fetches(tp);
            }
            self.appended
                .send_modify(|count| *count = count.wrapping_add(1));
        }
    }

    /// Whether acks=`acks` waits for an fsync.
    #[must_use]
    pub fn syncs(&self, acks: i16) -> bool {
        acks == -1 && self.config.acks_all_fsync()
    }

    /// The append phase for entries a caller has already checked: `rejected[i]` answers entry
    /// `i` without appending it. Blocking; the caller then calls [`Self::after_append`]. The
    /// transaction coordinator appends transactional batches through this while it holds the
    /// transaction (KIP-890).
    pub fn append_checked(
        &self,
        entries: Vec<PartitionAppend>,
        rejected: Vec<Option<ApiError>>,
        sync: bool,
    ) -> PendingProduce {
        let mut rejected = rejected.into_iter();
        self.append_each(entries, sync, |_| rejected.next().flatten())
    }

    fn append_blocking(&self, entries: Vec<PartitionAppend>, sync: bool) -> PendingProduce {
        self.append_each(entries, sync, |_| None)
    }

    fn append_each(
        &self,
        entries: Vec<PartitionAppend>,
        sync: bool,
        mut rejected: impl FnMut(&PartitionAppend) -> Option<ApiError>,
    ) -> PendingProduce {
        let mut results = Vec::with_capacity(entries.len());
        let mut to_sync = Vec::new();
        let mut appended_partitions = Vec::new();
        for entry in entries {
            if let Some(error) = rejected(&entry) {
                results.push(PartitionAppendResult::failed(error));
                continue;
            }
            match self.append_one(&entry) {
                Ok((result, log, end_offset)) => {
                    if sync {
                        to_sync.push((results.len(), log, end_offset));
                    }
                    results.push(result);
                    appended_partitions.push(TopicPartition {
                        topic: entry.topic,
                        partition: entry.partition,
                    });
                }
                Err(error) => {
                    tracing::debug!(topic = %entry.topic, partition = entry.partition, %error, "produce rejected");
                    results.push(PartitionAppendResult::failed(error));
                }
            }
        }
        PendingProduce {
            results,
            to_sync,
            clock: Arc::clone(&self.clock),
            appended_partitions,
        }
    }

    fn append_one(
        &self,
        entry: &PartitionAppend,
    ) -> Result<(PartitionAppendResult, Arc<Log>, i64), ApiError> {
        let topic = self.topic(&entry.topic)?;
        if crate::coordinator::is_internal_topic(&topic.name) {
            // Kafka's rule: only the coordinators write their internal topics.
            return Err(ApiError::new(
                ResponseError::InvalidTopicException,
                format!("cannot append to internal topic {}", topic.name),
            ));
        }
        let log = self.partition_log(&topic, entry.partition)?;
        let Some(records) = entry.records.as_ref().filter(|r| !r.is_empty()) else {
            return Err(ApiError::new(
                ResponseError::CorruptMessage,
                "produce without records",
            ));
        };
        // Storage patches offsets and the leader epoch in place, so it needs its own copy of the
        // bytes (the request frame is shared).
        let mut owned = BytesMut::from(&records[..]);
        let now_ms = self.clock.now_ms();
        let outcome = log
            .append(&mut owned, AppendOrigin::Client, now_ms, topic.leader_epoch)
            .map_err(|e| {
                let mut error = ApiError::from(&e);
                if storage_error_code(&e) == ResponseError::UnknownServerError {
                    error.message = Some(e.to_string());
                }
                error
            })?;
        let (result, end_offset) = match outcome {
            AppendOutcome::Appended(info) => (
                PartitionAppendResult {
                    error: None,
                    base_offset: info.first_offset,
                    log_append_time_ms: info.log_append_time_ms,
                    log_start_offset: info.log_start_offset,
                    record_errors: Vec::new(),
                },
                info.last_offset + 1,
            ),
            AppendOutcome::Duplicate {
                first_offset,
                last_offset,
                log_start_offset,
            } => (
                PartitionAppendResult {
                    error: None,
                    base_offset: first_offset,
                    log_append_time_ms: -1,
                    log_start_offset,
                    record_errors: Vec::new(),
                },
                last_offset + 1,
            ),
        };
        Ok((result, log, end_offset))
    }
}
