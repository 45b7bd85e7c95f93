//! The transaction coordinator's task: load, then abort timed-out transactions and expire idle
//! transactional ids on Kafka's intervals.

use std::sync::Arc;
use std::time::Duration;

use super::TransactionCoordinator;
use crate::server::shutdown::Shutdown;

/// Loads the coordinator's state, then runs its periodic work until shutdown.
pub async fn run(
    coordinator: Arc<TransactionCoordinator>,
    abort_interval: Duration,
    expiration_interval: Duration,
    mut shutdown: Shutdown,
) {
    // Completing interrupted transactions writes markers into __consumer_offsets, which the
    // group coordinator must see after its own load, not be overwritten by it.
    while coordinator.groups_loading() {
        tokio::select! {
            () = tokio::time::sleep(Duration::from_millis(10)) => {}
            () = shutdown.recv() => return,
        }
    }
    let loading = Arc::clone(&coordinator);
    match tokio::task::spawn_blocking(move || loading.load()).await {
        Ok(Ok(())) => {}
        Ok(Err(error)) => {
            tracing::error!(%error, "cannot load __transaction_state; transactions stay unavailable");
            return;
        }
        Err(error) => {
            tracing::error!(%error, "transaction load task failed");
            return;
        }
    }
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
