//! `ProducerIdManager`: hands out producer ids for idempotent producers (InitProducerId without
//! a transactional id).
//!
//! Ids are reserved durably in blocks of [`PRODUCER_ID_BLOCK_SIZE`] in `cluster.json` before any
//! id of the block is handed out, so an id is never reused after a restart or a crash: at worst
//! the rest of a block is skipped, as with Kafka's `ProducerIdManager` blocks.

use std::io;
use std::sync::Arc;

use parking_lot::Mutex;

use crate::metadata::MetadataCache;

/// Ids reserved per durable write.
pub const PRODUCER_ID_BLOCK_SIZE: i64 = 1000;

/// Allocates producer ids.
#[derive(Debug)]
pub struct ProducerIdManager {
    metadata: Arc<MetadataCache>,
    // `(next id, end of the reserved block)`. A mutex, not an atomic, because running out of a
    // block means a durable write that must happen exactly once.
    block: Mutex<(i64, i64)>,
}

impl ProducerIdManager {
    /// A manager with no block reserved yet.
    #[must_use]
    pub fn new(metadata: Arc<MetadataCache>) -> ProducerIdManager {
        ProducerIdManager {
            metadata,
            block: Mutex::new((0, 0)),
        }
    }

    /// The next producer id. Blocking when a new block must be reserved (an fsync).
    ///
    /// # Errors
    /// I/O errors while reserving a block.
    pub fn generate_producer_id(&self) -> io::Result<i64> {
        let mut block = self.block.lock();
        if block.0 >= block.1 {
            let first = self.metadata.reserve_producer_ids(PRODUCER_ID_BLOCK_SIZE)?;
            *block = (first, first + PRODUCER_ID_BLOCK_SIZE);
        }
        let id = block.0;
        block.0 += 1;
        Ok(id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_never_reused_across_restarts() {
        let dir = tempfile::tempdir().unwrap();
        let mut seen = std::collections::BTreeSet::new();
        for _restart in 0..3 {
            let metadata = Arc::new(MetadataCache::open(dir.path()).unwrap());
            let manager = ProducerIdManager::new(metadata);
            for _ in 0..5 {
                assert!(seen.insert(manager.generate_producer_id().unwrap()));
            }
        }
        assert_eq!(seen.len(), 15);
    }
}
