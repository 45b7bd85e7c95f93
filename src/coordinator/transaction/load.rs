//! Loading `__transaction_state` at start, and finishing what a crash interrupted.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use parking_lot::Mutex;

use super::{TransactionCoordinator, TransactionMetadata, TransactionState, record};
use crate::coordinator::internal_topic::LoadedRecord;

impl TransactionCoordinator {
    /// Replays the log, then completes transactions left in `Prepare*` (their markers are
    /// written again). Open transactions stay open: the timeout aborts them if their producer
    /// does not come back. Blocking.
    ///
    /// # Errors
    /// Storage errors while reading (the coordinator then stays unavailable).
    pub fn load(&self) -> Result<(), kairos_storage::Error> {
        let mut loaded: HashMap<String, TransactionMetadata> = HashMap::new();
        let mut malformed = 0u64;
        self.topic.read_all(|_, record| {
            let LoadedRecord::Data { key, value, .. } = record else {
                return;
            };
            let Ok(id) = record::decode_key(key) else {
                malformed += 1;
                return;
            };
            match value.map(|v| record::decode_value(&id, v)) {
                Some(Ok(metadata)) => {
                    let _ = loaded.insert(id, metadata);
                }
                Some(Err(_)) => malformed += 1,
                None => {
                    let _ = loaded.remove(&id);
                }
            }
        })?;
        if malformed > 0 {
            tracing::warn!(
                malformed,
                "skipped malformed records in __transaction_state"
            );
        }
        let interrupted: Vec<String> = loaded
            .values()
            .filter(|m| {
                matches!(
                    m.state,
                    TransactionState::PrepareCommit | TransactionState::PrepareAbort
                )
            })
            .map(|m| m.transactional_id.clone())
            .collect();
        tracing::info!(
            transactional_ids = loaded.len(),
            interrupted = interrupted.len(),
            "transaction coordinator loaded"
        );
        *self.transactions.lock() = loaded
            .into_iter()
            .map(|(id, metadata)| (id, Arc::new(Mutex::new(metadata))))
            .collect();
        for id in interrupted {
            if let Some(entry) = self.entry(&id) {
                let mut metadata = entry.lock();
                if let Err(error) = self.complete(&mut metadata) {
                    tracing::warn!(transactional_id = %id, %error, "cannot complete an interrupted transaction; retrying later");
                }
            }
        }
        self.loading.store(false, Ordering::Release);
        Ok(())
    }
}
