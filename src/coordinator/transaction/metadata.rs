//! One transactional id's state (Kafka's `TransactionMetadata`) and its state machine.

use std::collections::BTreeSet;

/// Kafka's transaction states, with their `__transaction_state` status codes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TransactionState {
    /// No transaction (after InitProducerId).
    Empty,
    /// Partitions were added: a transaction is open.
    Ongoing,
    /// EndTxn(commit) is writing COMMIT markers.
    PrepareCommit,
    /// EndTxn(abort), a timeout or a fence is writing ABORT markers.
    PrepareAbort,
    /// The last transaction committed.
    CompleteCommit,
    /// The last transaction aborted.
    CompleteAbort,
    /// The transactional id expired.
    Dead,
    /// A newer producer fenced this one; its open transaction is being aborted.
    PrepareEpochFence,
}

impl TransactionState {
    /// The `TransactionStatus` byte of `__transaction_state`.
    #[must_use]
    pub fn code(self) -> i8 {
        match self {
            TransactionState::Empty => 0,
            TransactionState::Ongoing => 1,
            TransactionState::PrepareCommit => 2,
            TransactionState::PrepareAbort => 3,
            TransactionState::CompleteCommit => 4,
            TransactionState::CompleteAbort => 5,
            TransactionState::Dead => 6,
            TransactionState::PrepareEpochFence => 7,
        }
    }

    /// The state of a status byte.
    #[must_use]
    pub fn from_code(code: i8) -> Option<TransactionState> {
        Some(match code {
            0 => TransactionState::Empty,
            1 => TransactionState::Ongoing,
            2 => TransactionState::PrepareCommit,
            3 => TransactionState::PrepareAbort,
            4 => TransactionState::CompleteCommit,
            5 => TransactionState::CompleteAbort,
            6 => TransactionState::Dead,
            7 => TransactionState::PrepareEpochFence,
            _ => return None,
        })
    }

    /// Kafka's name, as DescribeTransactions and ListTransactions show it.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            TransactionState::Empty => "Empty",
            TransactionState::Ongoing => "Ongoing",
            TransactionState::PrepareCommit => "PrepareCommit",
            TransactionState::PrepareAbort => "PrepareAbort",
            TransactionState::CompleteCommit => "CompleteCommit",
            TransactionState::CompleteAbort => "CompleteAbort",
            TransactionState::Dead => "Dead",
            TransactionState::PrepareEpochFence => "PrepareEpochFence",
        }
    }

    /// Whether markers are being written (a client must retry: CONCURRENT_TRANSACTIONS).
    #[must_use]
    pub fn is_completing(self) -> bool {
        matches!(
            self,
            TransactionState::PrepareCommit
                | TransactionState::PrepareAbort
                | TransactionState::PrepareEpochFence
        )
    }
}

/// One transactional id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TransactionMetadata {
    /// The transactional id.
    pub transactional_id: String,
    /// Its producer id.
    pub producer_id: i64,
    /// Its current epoch (-1 before the first InitProducerId completes).
    pub producer_epoch: i16,
    /// The epoch before the last bump, so that a retried InitProducerId (KIP-360) is
    /// recognised.
    pub last_producer_epoch: i16,
    /// `transaction.timeout.ms` of the producer.
    pub timeout_ms: i32,
    /// State.
    pub state: TransactionState,
    /// Partitions of the open (or completing) transaction.
    pub partitions: BTreeSet<(String, i32)>,
    /// When the open transaction started (-1 if none).
    pub start_ms: i64,
    /// Last change.
    pub last_update_ms: i64,
}

impl TransactionMetadata {
    /// A fresh transactional id with a new producer id, epoch -1 until InitProducerId bumps it.
    #[must_use]
    pub fn new(transactional_id: &str, producer_id: i64, timeout_ms: i32, now_ms: i64) -> Self {
        TransactionMetadata {
            transactional_id: transactional_id.to_owned(),
            producer_id,
            producer_epoch: -1,
            last_producer_epoch: -1,
            timeout_ms,
            state: TransactionState::Empty,
            partitions: BTreeSet::new(),
            start_ms: -1,
            last_update_ms: now_ms,
        }
    }

    /// Whether the epoch can be bumped without a new producer id (Kafka keeps the last value
    /// free for the fencing bump).
    #[must_use]
    pub fn epoch_exhausted(&self) -> bool {
        self.producer_epoch >= i16::MAX - 1
    }

    /// Whether the open transaction has outlived its timeout.
    #[must_use]
    pub fn timed_out(&self, now_ms: i64) -> bool {
        self.state == TransactionState::Ongoing
            && self.start_ms >= 0
            && now_ms.saturating_sub(self.start_ms) > i64::from(self.timeout_ms)
    }
}
