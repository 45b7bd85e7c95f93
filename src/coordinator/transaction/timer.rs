//! The transaction coordinator's task: abort timed-out transactions and expire idle
//! transactional ids on Kafka's intervals.

use std::sync::Arc;
use std::time::Duration;

use super::TransactionCoordinator;
use crate::server::shutdown::Shutdown;

/// Runs the periodic work of a loaded coordinator until shutdown.
pub async fn run(
    coordinator: Arc<TransactionCoordinator>,
    abort_interval: Duration,
    expiration_interval: Duration,
    mut shutdown: Shutdown,
) {
    let mut aborts = tokio::time::interval(abort_interval);
    let mut expiry = tokio::time::interval(expiration_interval);
    for interval in [&mut aborts, &mut expiry] {
        interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    }
    loop {
        let work: fn(&TransactionCoordinator) = tokio::select! {
            _ = aborts.tick() => TransactionCoordinator::abort_timed_out,
            _ = expiry.tick() => TransactionCoordinator::expire_transactional_ids,
            () = shutdown.recv() => return,
        };
        let coordinator = Arc::clone(&coordinator);
        if let Err(error) = tokio::task::spawn_blocking(move || work(&coordinator)).await {
            tracing::error!(%error, "transaction timer failed");
        }
    }
}
