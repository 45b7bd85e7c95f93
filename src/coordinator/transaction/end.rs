//! Ending transactions: EndTxn, the markers, timeouts, and completing what a crash left in
//! `Prepare*`; plus the expiry of idle transactional ids.

use bytes::BytesMut;
use kafka_protocol::error::ResponseError;
use kairos_storage::control::{ControlRecordType, EndTransactionMarker, build_marker};
use kairos_storage::{AppendOrigin, AppendOutcome, TopicPartition};

use super::{TransactionCoordinator, TransactionMetadata, TransactionState, record};
use crate::coordinator::group::OFFSETS_TOPIC;
use crate::coordinator::internal_topic::{PendingWrite, make_durable};
use crate::error::ApiError;

// The coordinator epoch written into markers. A single node is always the coordinator of its
// transactions; the epoch only fences a stale coordinator, which cannot exist here.
const COORDINATOR_EPOCH: i32 = 0;

impl TransactionCoordinator {
    /// EndTxn: commits or aborts the open transaction. Answered once the markers are durable in
    /// every partition, so a read_committed consumer sees the outcome right after.
    ///
    /// # Errors
    /// INVALID_PRODUCER_ID_MAPPING, PRODUCER_FENCED, CONCURRENT_TRANSACTIONS,
    /// INVALID_TXN_STATE, storage errors.
    pub fn end_txn(
        &self,
        transactional_id: &str,
        producer_id: i64,
        producer_epoch: i16,
        commit: bool,
    ) -> Result<(), ResponseError> {
        self.check(transactional_id)?;
        let entry = self
            .entry(transactional_id)
            .ok_or(ResponseError::InvalidProducerIdMapping)?;
        let mut metadata = entry.lock();
        Self::check_producer(&metadata, producer_id, producer_epoch)?;
        match (metadata.state, commit) {
            (TransactionState::Ongoing, _) => self.end(&mut metadata, commit).map_err(|e| e.code),
            // A retry of an EndTxn that completed.
            (TransactionState::CompleteCommit, true) | (TransactionState::CompleteAbort, false) => {
                Ok(())
            }
            _ => Err(ResponseError::InvalidTxnState),
        }
    }

    /// Ongoing → Prepare* (durable) → markers (durable) → Complete*.
    pub(super) fn end(
        &self,
        metadata: &mut TransactionMetadata,
        commit: bool,
    ) -> Result<(), ApiError> {
        let previous = metadata.clone();
        metadata.state = if commit {
            TransactionState::PrepareCommit
        } else {
            TransactionState::PrepareAbort
        };
        metadata.last_update_ms = self.clock.now_ms();
        if let Err(error) = self.persist(metadata) {
            *metadata = previous;
            return Err(error);
        }
        self.complete(metadata)
    }

    /// Writes the markers of a `Prepare*` transaction and moves it to `Complete*`. On an error
    /// the state stays `Prepare*`, and the timer retries.
    pub(super) fn complete(&self, metadata: &mut TransactionMetadata) -> Result<(), ApiError> {
        let commit = metadata.state == TransactionState::PrepareCommit;
        self.write_markers(metadata, commit)?;
        metadata.state = if commit {
            TransactionState::CompleteCommit
        } else {
            TransactionState::CompleteAbort
        };
        metadata.partitions.clear();
        metadata.start_ms = -1;
        metadata.last_update_ms = self.clock.now_ms();
        // Not waited for: if it is lost, loading finds Prepare* and writes the markers again.
        let _ = self.topic.append(
            &metadata.transactional_id,
            &[record::record(metadata)],
            None,
        )?;
        Ok(())
    }

    fn write_markers(&self, metadata: &TransactionMetadata, commit: bool) -> Result<(), ApiError> {
        let replicas = self.topic.replica_manager();
        let now_ms = self.clock.now_ms();
        let marker = EndTransactionMarker {
            kind: if commit {
                ControlRecordType::Commit
            } else {
                ControlRecordType::Abort
            },
            coordinator_epoch: COORDINATOR_EPOCH,
        };
        let mut writes = Vec::with_capacity(metadata.partitions.len());
        let mut offsets_partitions = Vec::new();
        for (topic, partition) in &metadata.partitions {
            // A partition deleted since it joined the transaction has nothing to close.
            let Some(topic_metadata) = self.metadata.topic(topic) else {
                continue;
            };
            let Ok(log) = replicas.partition_log(&topic_metadata, *partition) else {
                continue;
            };
            let mut bytes = BytesMut::from(
                &build_marker(
                    metadata.producer_id,
                    metadata.producer_epoch,
                    marker,
                    now_ms,
                )[..],
            );
            let outcome = log
                .append(
                    &mut bytes,
                    AppendOrigin::Coordinator,
                    now_ms,
                    topic_metadata.leader_epoch,
                )
                .map_err(|e| ApiError::from(&e))?;
            let end = match outcome {
                AppendOutcome::Appended(info) => info.last_offset + 1,
                AppendOutcome::Duplicate { last_offset, .. } => last_offset + 1,
            };
            writes.push(PendingWrite::new(log, end));
            replicas.wake_fetches(&TopicPartition {
                topic: topic.clone(),
                partition: *partition,
            });
            if topic == OFFSETS_TOPIC {
                offsets_partitions.push(*partition);
            }
        }
        for write in writes {
            make_durable(&self.config, self.clock.as_ref(), Some(write))?;
        }
        for partition in offsets_partitions {
            self.groups
                .on_transaction_marker(partition, metadata.producer_id, commit);
        }
        Ok(())
    }

    /// Aborts transactions open longer than their timeout, bumping the epoch so that the
    /// producer, if it is still alive, is fenced. Also completes transactions a failure left
    /// in `Prepare*`.
    pub fn abort_timed_out(&self) {
        if self.is_loading() {
            return;
        }
        let now_ms = self.clock.now_ms();
        let entries: Vec<_> = self.transactions.lock().values().cloned().collect();
        for entry in entries {
            let mut metadata = entry.lock();
            let result = if metadata.timed_out(now_ms) {
                tracing::info!(transactional_id = %metadata.transactional_id, "aborting a timed-out transaction");
                self.bump_epoch(&mut metadata)
                    .map_err(ApiError::from)
                    .and_then(|()| self.end(&mut metadata, false))
            } else if matches!(
                metadata.state,
                TransactionState::PrepareCommit | TransactionState::PrepareAbort
            ) {
                self.complete(&mut metadata)
            } else {
                Ok(())
            };
            if let Err(error) = result {
                tracing::warn!(transactional_id = %metadata.transactional_id, %error, "cannot end a transaction; retrying later");
            }
        }
    }

    /// Forgets transactional ids idle for `transactional.id.expiration.ms` (not in a
    /// transaction), with a tombstone.
    pub fn expire_transactional_ids(&self) {
        if self.is_loading() {
            return;
        }
        let now_ms = self.clock.now_ms();
        let expiration_ms = self.config.transactional_id_expiration_ms();
        let mut transactions = self.transactions.lock();
        transactions.retain(|id, entry| {
            let metadata = entry.lock();
            let idle = matches!(
                metadata.state,
                TransactionState::Empty
                    | TransactionState::CompleteCommit
                    | TransactionState::CompleteAbort
            ) && now_ms.saturating_sub(metadata.last_update_ms) >= expiration_ms;
            if !idle {
                return true;
            }
            match self.topic.append(id, &[record::tombstone(id)], None) {
                Ok(_) => {
                    tracing::info!(transactional_id = %id, "expired transactional id");
                    false
                }
                Err(_) => true,
            }
        });
    }
}
