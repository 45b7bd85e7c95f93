//! The pulse task: sleeps until the earliest due time, an append, a move of a manual clock or
//! the next snapshot, then runs one pass of the [`DueService`].

use std::sync::Arc;
use std::time::Duration;

use super::service::{DueService, IDLE_WAKE_MS, Pass, RETRY_MS};

/// The pulse task; see the module docs. Returns at shutdown after writing snapshots.
pub async fn run(
    state: Arc<crate::broker::BrokerState>,
    service: Arc<DueService>,
    mut shutdown: crate::server::shutdown::Shutdown,
) {
    let mut appends = state.replica_manager.subscribe_appends();
    let mut clock_changes = state.clock.changes();
    let snapshot_every = Duration::from_millis(
        u64::try_from(state.config.due_snapshot_interval_ms()).unwrap_or(60_000),
    );
    // Real time, not the injected clock: snapshots bound recovery work, not due times.
    let mut next_snapshot = tokio::time::Instant::now() + snapshot_every;
    // The checkpoint runs beside the passes, not in this loop: writing and syncing the
    // snapshots of millions of entities takes seconds, and fires due meanwhile would wait
    // for it (it takes the service's lock only to encode one partition at a time).
    let mut checkpoint: Option<tokio::task::JoinHandle<()>> = None;
    loop {
        if tokio::time::Instant::now() >= next_snapshot
            && checkpoint
                .as_ref()
                .is_none_or(tokio::task::JoinHandle::is_finished)
        {
            let service = Arc::clone(&service);
            checkpoint = Some(tokio::task::spawn_blocking(move || service.checkpoint()));
            next_snapshot = tokio::time::Instant::now() + snapshot_every;
        }
        let topics = state.metadata.topics();
        let logs = Arc::clone(state.replica_manager.log_manager());
        let now_ms = state.clock.now_ms();
        let worker = Arc::clone(&service);
        let pass = tokio::task::spawn_blocking(move || {
            worker.sync(&topics, &logs);
            worker.pass(now_ms)
        })
        .await
        .unwrap_or_else(|error| {
            tracing::error!(%error, "due pulse failed");
            Pass {
                failed: true,
                ..Pass::default()
            }
        });
        if pass.fired > 0 {
            // Fires are appended straight to the logs, not through Produce: wake the consumers'
            // parked long-polls so a fire is delivered now rather than at their max_wait_ms.
            state.replica_manager.wake_all_fetches();
        }
        let now_ms = state.clock.now_ms();
        let wait_ms = match pass.next_due {
            // More was due than one step fires: continue at once, after yielding.
            Some(due) if due <= now_ms && pass.fired > 0 && !pass.failed => 0,
            // Fires went to another topic, which may be temporal itself: index them now.
            _ if pass.fired_elsewhere > 0 && !pass.failed => 0,
            // Due but held back (an open transaction, a storage error): wait for a change.
            Some(due) if due <= now_ms => RETRY_MS,
            Some(due) => (due - now_ms).min(IDLE_WAKE_MS),
            None => IDLE_WAKE_MS,
        };
        let until_snapshot = next_snapshot.saturating_duration_since(tokio::time::Instant::now());
        let wait_ms = wait_ms.min(i64::try_from(until_snapshot.as_millis()).unwrap_or(i64::MAX));
        if wait_ms == 0 {
            tokio::task::yield_now().await;
            continue;
        }
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
            _ = appends.changed() => {}
            () = clock_moved => {}
            () = shutdown.recv() => {
                if let Some(running) = checkpoint.take() {
                    let _ = running.await;
                }
                let service = Arc::clone(&service);
                let _ = tokio::task::spawn_blocking(move || service.checkpoint()).await;
                return;
            }
        }
    }
}
