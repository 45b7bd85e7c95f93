//! The coordinator's timer task: session, join and sync deadlines of every group, and the
//! periodic offset expiry. It sleeps until the earliest deadline, a change that may have moved
//! a deadline earlier (the coordinator's notify), or a move of a manual clock.

use std::sync::Arc;
use std::time::Duration;

use super::GroupCoordinator;
use crate::clock::Clock;
use crate::server::shutdown::Shutdown;

// Upper bound of one sleep: deadlines are re-read at least this often, so a missed wake-up
// costs at most this much lateness.
const MAX_SLEEP_MS: i64 = 1_000;

/// Runs the deadlines of a loaded coordinator until shutdown.
pub async fn run(
    coordinator: Arc<GroupCoordinator>,
    clock: Arc<dyn Clock>,
    offsets_retention_check_interval: Duration,
    mut shutdown: Shutdown,
) {
    let mut clock_changes = clock.changes();
    let mut expiry = tokio::time::interval(offsets_retention_check_interval);
    expiry.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        let ticking = Arc::clone(&coordinator);
        let next = tokio::task::spawn_blocking(move || ticking.tick())
            .await
            .unwrap_or_else(|error| {
                tracing::error!(%error, "group timer failed");
                None
            });
        let now_ms = clock.now_ms();
        tracing::trace!(?next, now_ms, "group timer");
        let wait_ms = next.map_or(MAX_SLEEP_MS, |d| (d - now_ms).clamp(0, MAX_SLEEP_MS));
        let sleep = tokio::time::sleep(Duration::from_millis(u64::try_from(wait_ms).unwrap_or(0)));
        let clock_moved = async {
            match clock_changes.as_mut() {
                Some(changes) => {
                    let _ = changes.changed().await;
                }
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            () = sleep => {}
            () = coordinator.timer().notified() => {}
            () = clock_moved => {}
            _ = expiry.tick() => {
                let expiring = Arc::clone(&coordinator);
                let _ = tokio::task::spawn_blocking(move || expiring.expire_offsets()).await;
            }
            () = shutdown.recv() => return,
        }
    }
}
