//! The log cleaner task: compacts topics with `cleanup.policy=compact` in the background.
//!
//! One pass at a time runs on a blocking thread (storage is synchronous). After a pass that
//! cleaned something the next one starts at once; when no log is dirty enough the task sleeps
//! `log.cleaner.backoff.ms`. The offset map (`log.cleaner.dedupe.buffer.size`) is allocated on
//! the first pass, so a broker without compacted topics never pays for it.

use std::sync::Arc;
use std::time::Duration;

use kairos_storage::LogCleaner;

use crate::broker::BrokerState;
use crate::server::shutdown::Shutdown;

/// Runs until shutdown.
pub async fn run(state: Arc<BrokerState>, mut shutdown: Shutdown) {
    if !state.config.log_cleaner_enable() {
        return;
    }
    let backoff = Duration::from_millis(state.config.log_cleaner_backoff_ms());
    let mut cleaner: Option<LogCleaner> = None;
    loop {
        let logs = Arc::clone(state.replica_manager.log_manager());
        let now_ms = state.clock.now_ms();
        let buffer = state.config.log_cleaner_dedupe_buffer_size();
        let mut owned = cleaner.take();
        let stopwatch = crate::clock::Stopwatch::start();
        let pass = tokio::task::spawn_blocking(move || {
            // Only a compacted log needs the offset map; allocating it earlier would make an idle
            // broker without compacted topics resident at the size of the dedupe buffer.
            if owned.is_none()
                && !logs
                    .logs()
                    .iter()
                    .any(|(_, log)| log.config().cleanup_policy.compacts())
            {
                return (owned, Ok(None));
            }
            let cleaner = owned.get_or_insert_with(|| LogCleaner::new(buffer));
            let result = logs.clean_once(now_ms, cleaner);
            (owned, result)
        })
        .await;
        let cleaned = match pass {
            Ok((owned, Ok(Some((tp, stats))))) => {
                cleaner = owned;
                let seconds = stopwatch.elapsed().as_secs_f64();
                state
                    .metrics
                    .cleaner
                    .record_pass(&tp.topic, tp.partition, &stats, seconds);
                tracing::info!(
                    %tp,
                    bytes_read = stats.bytes_read,
                    bytes_written = stats.bytes_written,
                    segments = stats.segments_replaced,
                    dirty_ratio = stats.dirty_ratio,
                    "cleaned log"
                );
                true
            }
            Ok((owned, Ok(None))) => {
                cleaner = owned;
                false
            }
            Ok((owned, Err(error))) => {
                cleaner = owned;
                tracing::warn!(%error, "log cleaner pass failed; retrying after the backoff");
                false
            }
            Err(error) => {
                tracing::error!(%error, "log cleaner task failed");
                false
            }
        };
        if cleaned {
            continue;
        }
        tokio::select! {
            () = tokio::time::sleep(backoff) => {}
            () = shutdown.recv() => return,
        }
    }
}
