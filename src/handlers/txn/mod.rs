//! The transaction APIs. Each handler converts its request, makes one call on the
//! `TransactionCoordinator` on the blocking pool (it writes `__transaction_state` and markers),
//! and builds the response.

pub mod add_offsets_to_txn;
pub mod add_partitions_to_txn;
pub mod describe_producers;
pub mod describe_transactions;
pub mod end_txn;
pub mod init_producer_id;
pub mod list_transactions;
pub mod txn_offset_commit;

use std::sync::Arc;

use crate::broker::BrokerState;
use crate::coordinator::transaction::TransactionCoordinator;

/// Runs `work` on the transaction coordinator off the reactor; a panic becomes `fallback`.
pub(crate) async fn on_transactions<T: Send + 'static>(
    state: &Arc<BrokerState>,
    fallback: T,
    work: impl FnOnce(&TransactionCoordinator) -> T + Send + 'static,
) -> T {
    let coordinator = Arc::clone(&state.transactions);
    super::blocking(fallback, move || work(&coordinator)).await
}
