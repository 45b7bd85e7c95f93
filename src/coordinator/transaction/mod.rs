//! The transaction coordinator: transactional ids, their producer ids and epochs, and the
//! state of their transactions, persisted in the compacted internal topic
//! `__transaction_state`.
//!
//! Each transactional id has its own lock, held for a whole operation including its writes:
//! ending a transaction (COMMIT/ABORT markers into every partition) and a transactional
//! append that checks the transaction first (KIP-890: the partition must have been added)
//! exclude each other, so a batch can never land after its transaction's marker. The order of
//! an EndTxn is Kafka's: `PrepareCommit` is durable before the first marker, markers are
//! durable before the client is answered, and `CompleteCommit` follows; after a crash, loading
//! finds `Prepare*` and writes the markers again (a second marker is harmless).
//!
//! `init.rs` holds InitProducerId and AddPartitionsToTxn, `end.rs` EndTxn, markers, timeouts and
//! expiry, `load.rs` the replay at start.

mod end;
mod init;
mod load;
pub mod metadata;
pub mod record;
pub mod timer;

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use kafka_protocol::error::ResponseError;
use parking_lot::Mutex;

pub use metadata::{TransactionMetadata, TransactionState};

use crate::clock::Clock;
use crate::config::BrokerConfig;
use crate::coordinator::group::GroupCoordinator;
use crate::coordinator::internal_topic::InternalTopic;
use crate::coordinator::producer_id::ProducerIdManager;
use crate::error::ApiError;
use crate::metadata::MetadataCache;

/// The internal topic of transaction state.
pub const TRANSACTION_STATE_TOPIC: &str = "__transaction_state";

type Entry = Arc<Mutex<TransactionMetadata>>;

/// The transaction coordinator.
#[derive(Debug)]
pub struct TransactionCoordinator {
    config: Arc<BrokerConfig>,
    clock: Arc<dyn Clock>,
    metadata: Arc<MetadataCache>,
    topic: InternalTopic,
    producer_ids: Arc<ProducerIdManager>,
    groups: Arc<GroupCoordinator>,
    transactions: Mutex<HashMap<String, Entry>>,
    loading: AtomicBool,
}

impl TransactionCoordinator {
    /// A coordinator that answers COORDINATOR_LOAD_IN_PROGRESS until it has loaded.
    #[must_use]
    pub fn new(
        config: Arc<BrokerConfig>,
        clock: Arc<dyn Clock>,
        metadata: Arc<MetadataCache>,
        topic: InternalTopic,
        producer_ids: Arc<ProducerIdManager>,
        groups: Arc<GroupCoordinator>,
    ) -> TransactionCoordinator {
        TransactionCoordinator {
            config,
            clock,
            metadata,
            topic,
            producer_ids,
            groups,
            transactions: Mutex::new(HashMap::new()),
            loading: AtomicBool::new(true),
        }
    }

    /// `__transaction_state` (FindCoordinator creates it).
    #[must_use]
    pub fn state_topic(&self) -> &InternalTopic {
        &self.topic
    }

    /// Whether the state is still being loaded.
    #[must_use]
    pub fn is_loading(&self) -> bool {
        self.loading.load(Ordering::Acquire)
    }

    fn check(&self, transactional_id: &str) -> Result<(), ResponseError> {
        if transactional_id.is_empty() {
            return Err(ResponseError::InvalidRequest);
        }
        if self.is_loading() {
            return Err(ResponseError::CoordinatorLoadInProgress);
        }
        Ok(())
    }

    fn entry(&self, transactional_id: &str) -> Option<Entry> {
        self.transactions.lock().get(transactional_id).cloned()
    }

    /// Persists `metadata` durably (fsync with `kairos.acks.all.fsync`).
    fn persist(&self, metadata: &TransactionMetadata) -> Result<(), ApiError> {
        let write = self.topic.append(
            &metadata.transactional_id,
            &[record::record(metadata)],
            None,
        )?;
        self.topic.make_durable(write)
    }

    /// Runs `f` with the transactional id's state locked: while it runs, the transaction cannot
    /// end. Produce and TxnOffsetCommit append through this, after checking that the
    /// transaction is open and holds their partitions (KIP-890).
    pub fn with_transaction<T>(
        &self,
        transactional_id: &str,
        f: impl FnOnce(Result<&TransactionMetadata, ResponseError>) -> T,
    ) -> T {
        if let Err(error) = self.check(transactional_id) {
            return f(Err(error));
        }
        match self.entry(transactional_id) {
            Some(entry) => {
                let metadata = entry.lock();
                f(Ok(&metadata))
            }
            None => f(Err(ResponseError::InvalidProducerIdMapping)),
        }
    }

    /// Checks that `producer_id`/`producer_epoch` own the open transaction and that it holds
    /// `partition` (the check of a transactional append).
    ///
    /// # Errors
    /// INVALID_PRODUCER_ID_MAPPING, INVALID_PRODUCER_EPOCH, INVALID_TXN_STATE.
    pub fn verify(
        metadata: &TransactionMetadata,
        producer_id: i64,
        producer_epoch: i16,
        partition: &(String, i32),
    ) -> Result<(), ResponseError> {
        if metadata.producer_id != producer_id {
            return Err(ResponseError::InvalidProducerIdMapping);
        }
        if metadata.producer_epoch != producer_epoch {
            return Err(ResponseError::InvalidProducerEpoch);
        }
        if metadata.state != TransactionState::Ongoing || !metadata.partitions.contains(partition) {
            return Err(ResponseError::InvalidTxnState);
        }
        Ok(())
    }

    /// DescribeTransactions of one id.
    ///
    /// # Errors
    /// TRANSACTIONAL_ID_NOT_FOUND, COORDINATOR_LOAD_IN_PROGRESS.
    pub fn describe(&self, transactional_id: &str) -> Result<TransactionMetadata, ResponseError> {
        self.check(transactional_id)?;
        self.entry(transactional_id)
            .map(|e| e.lock().clone())
            .filter(|m| m.state != TransactionState::Dead)
            .ok_or(ResponseError::TransactionalIdNotFound)
    }

    /// ListTransactions with Kafka's filters: states (empty = all), producer ids (empty = all),
    /// and transactions open longer than `min_duration_ms` (-1 = no filter).
    ///
    /// # Errors
    /// COORDINATOR_LOAD_IN_PROGRESS.
    pub fn list(
        &self,
        states: &[String],
        producer_ids: &[i64],
        min_duration_ms: i64,
    ) -> Result<Vec<TransactionMetadata>, ResponseError> {
        if self.is_loading() {
            return Err(ResponseError::CoordinatorLoadInProgress);
        }
        let now_ms = self.clock.now_ms();
        let entries: Vec<Entry> = self.transactions.lock().values().cloned().collect();
        let mut listed: Vec<TransactionMetadata> = entries
            .iter()
            .map(|e| e.lock().clone())
            .filter(|m| m.state != TransactionState::Dead)
            .filter(|m| states.is_empty() || states.iter().any(|s| s == m.state.as_str()))
            .filter(|m| producer_ids.is_empty() || producer_ids.contains(&m.producer_id))
            .filter(|m| {
                min_duration_ms < 0
                    || (m.state == TransactionState::Ongoing
                        && now_ms.saturating_sub(m.start_ms) >= min_duration_ms)
            })
            .collect();
        listed.sort_by(|a, b| a.transactional_id.cmp(&b.transactional_id));
        Ok(listed)
    }
}
