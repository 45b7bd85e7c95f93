//! InitProducerId, AddPartitionsToTxn and AddOffsetsToTxn.

use std::sync::Arc;

use kafka_protocol::error::ResponseError;
use parking_lot::Mutex;

use super::{Entry, TransactionCoordinator, TransactionMetadata, TransactionState};
use crate::coordinator::group::OFFSETS_TOPIC;

impl TransactionCoordinator {
    /// InitProducerId for a transactional id: the producer id and a bumped epoch, which fences
    /// every older producer with the same id. An open transaction of the fenced producer is
    /// aborted first (with the bumped epoch, so its late appends are refused). `expected` is
    /// the producer's current id and epoch when it re-initialises after an abortable error
    /// (KIP-360).
    ///
    /// # Errors
    /// INVALID_TRANSACTION_TIMEOUT, CONCURRENT_TRANSACTIONS, PRODUCER_FENCED,
    /// COORDINATOR_LOAD_IN_PROGRESS, storage errors.
    pub fn init_producer_id(
        &self,
        transactional_id: &str,
        timeout_ms: i32,
        expected: Option<(i64, i16)>,
    ) -> Result<(i64, i16), ResponseError> {
        self.check(transactional_id)?;
        if timeout_ms <= 0 || timeout_ms > self.config.transaction_max_timeout_ms() {
            return Err(ResponseError::InvalidTransactionTimeout);
        }
        let now_ms = self.clock.now_ms();
        let entry = self.get_or_create(transactional_id, timeout_ms, now_ms)?;
        let mut metadata = entry.lock();
        if let Some((producer_id, epoch)) = expected {
            if metadata.producer_id != producer_id
                || (metadata.producer_epoch != epoch && metadata.last_producer_epoch != epoch)
            {
                return Err(ResponseError::ProducerFenced);
            }
            if metadata.producer_epoch != epoch && !metadata.state.is_completing() {
                // A retry of an InitProducerId that already bumped: same answer.
                return Ok((metadata.producer_id, metadata.producer_epoch));
            }
        }
        match metadata.state {
            state if state.is_completing() => return Err(ResponseError::ConcurrentTransactions),
            TransactionState::Ongoing => {
                // Fence the current producer: abort its transaction with a bumped epoch.
                self.bump_epoch(&mut metadata)?;
                self.end(&mut metadata, false).map_err(|e| e.code)?;
            }
            _ => {}
        }
        self.bump_epoch(&mut metadata)?;
        let previous = metadata.clone();
        metadata.state = TransactionState::Empty;
        metadata.partitions.clear();
        metadata.timeout_ms = timeout_ms;
        metadata.start_ms = -1;
        metadata.last_update_ms = now_ms;
        if let Err(error) = self.persist(&metadata) {
            *metadata = previous;
            return Err(error.code);
        }
        Ok((metadata.producer_id, metadata.producer_epoch))
    }

    fn get_or_create(
        &self,
        transactional_id: &str,
        timeout_ms: i32,
        now_ms: i64,
    ) -> Result<Entry, ResponseError> {
        if let Some(entry) = self.entry(transactional_id) {
            return Ok(entry);
        }
        let producer_id = self
            .producer_ids
            .generate_producer_id()
            .map_err(|_| ResponseError::KafkaStorageError)?;
        let mut transactions = self.transactions.lock();
        Ok(Arc::clone(
            transactions
                .entry(transactional_id.to_owned())
                .or_insert_with(|| {
                    Arc::new(Mutex::new(TransactionMetadata::new(
                        transactional_id,
                        producer_id,
                        timeout_ms,
                        now_ms,
                    )))
                }),
        ))
    }

    /// The next epoch, or a new producer id at epoch 0 once the epoch is exhausted.
    pub(super) fn bump_epoch(
        &self,
        metadata: &mut TransactionMetadata,
    ) -> Result<(), ResponseError> {
        if metadata.epoch_exhausted() {
            metadata.producer_id = self
                .producer_ids
                .generate_producer_id()
                .map_err(|_| ResponseError::KafkaStorageError)?;
            metadata.last_producer_epoch = -1;
            metadata.producer_epoch = 0;
        } else {
            metadata.last_producer_epoch = metadata.producer_epoch;
            metadata.producer_epoch += 1;
        }
        Ok(())
    }

    /// Checks the producer of a request against the transactional id's state.
    pub(super) fn check_producer(
        metadata: &TransactionMetadata,
        producer_id: i64,
        producer_epoch: i16,
    ) -> Result<(), ResponseError> {
        if metadata.producer_id != producer_id {
            return Err(ResponseError::InvalidProducerIdMapping);
        }
        if metadata.producer_epoch != producer_epoch {
            return Err(ResponseError::ProducerFenced);
        }
        if metadata.state.is_completing() {
            return Err(ResponseError::ConcurrentTransactions);
        }
        Ok(())
    }

    /// AddPartitionsToTxn: the partitions join the open transaction (opening it if needed).
    /// Per partition an error code: UNKNOWN_TOPIC_OR_PARTITION for partitions that do not
    /// exist, OPERATION_NOT_ATTEMPTED for the others then (Kafka adds all or none).
    ///
    /// # Errors
    /// Errors that apply to every partition.
    pub fn add_partitions(
        &self,
        transactional_id: &str,
        producer_id: i64,
        producer_epoch: i16,
        partitions: &[(String, i32)],
    ) -> Result<Vec<i16>, ResponseError> {
        self.check(transactional_id)?;
        let unknown: Vec<bool> = partitions
            .iter()
            .map(|(topic, partition)| {
                self.metadata
                    .topic(topic)
                    .is_none_or(|t| !(0..t.partitions).contains(partition))
            })
            .collect();
        if unknown.iter().any(|u| *u) {
            return Ok(unknown
                .into_iter()
                .map(|u| {
                    if u {
                        ResponseError::UnknownTopicOrPartition.code()
                    } else {
                        ResponseError::OperationNotAttempted.code()
                    }
                })
                .collect());
        }
        self.add(transactional_id, producer_id, producer_epoch, partitions)?;
        Ok(vec![0; partitions.len()])
    }

    /// AddPartitionsToTxn v4+ with `verify_only`: whether each partition is in the open
    /// transaction, without adding it.
    ///
    /// # Errors
    /// Errors that apply to every partition.
    pub fn verify_partitions(
        &self,
        transactional_id: &str,
        producer_id: i64,
        producer_epoch: i16,
        partitions: &[(String, i32)],
    ) -> Result<Vec<i16>, ResponseError> {
        self.with_transaction(transactional_id, |metadata| {
            let metadata = metadata?;
            Ok(partitions
                .iter()
                .map(|p| {
                    TransactionCoordinator::verify(metadata, producer_id, producer_epoch, p)
                        .err()
                        .map_or(0, |e| e.code())
                })
                .collect())
        })
    }

    /// AddOffsetsToTxn: the group's `__consumer_offsets` partition joins the transaction, so
    /// that TxnOffsetCommit can write there.
    ///
    /// # Errors
    /// As AddPartitionsToTxn.
    pub fn add_offsets(
        &self,
        transactional_id: &str,
        producer_id: i64,
        producer_epoch: i16,
        group_id: &str,
    ) -> Result<(), ResponseError> {
        self.check(transactional_id)?;
        if group_id.is_empty() {
            return Err(ResponseError::InvalidGroupId);
        }
        let topic = self.groups.offsets_topic();
        topic.ensure().map_err(|e| e.code)?;
        let partition = (OFFSETS_TOPIC.to_owned(), topic.partition_of(group_id));
        self.add(
            transactional_id,
            producer_id,
            producer_epoch,
            std::slice::from_ref(&partition),
        )
    }

    fn add(
        &self,
        transactional_id: &str,
        producer_id: i64,
        producer_epoch: i16,
        partitions: &[(String, i32)],
    ) -> Result<(), ResponseError> {
        let entry = self
            .entry(transactional_id)
            .ok_or(ResponseError::InvalidProducerIdMapping)?;
        let mut metadata = entry.lock();
        Self::check_producer(&metadata, producer_id, producer_epoch)?;
        if metadata.state == TransactionState::Ongoing
            && partitions.iter().all(|p| metadata.partitions.contains(p))
        {
            return Ok(());
        }
        let previous = metadata.clone();
        let now_ms = self.clock.now_ms();
        if metadata.state != TransactionState::Ongoing {
            metadata.state = TransactionState::Ongoing;
            metadata.start_ms = now_ms;
            metadata.partitions.clear();
        }
        metadata.partitions.extend(partitions.iter().cloned());
        metadata.last_update_ms = now_ms;
        if let Err(error) = self.persist(&metadata) {
            *metadata = previous;
            return Err(error.code);
        }
        Ok(())
    }
}
