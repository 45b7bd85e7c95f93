//! `TransactionIndex`: the aborted transactions whose ABORT marker is in a segment, so that a
//! read_committed fetch can tell the client which producers' records to drop.
//!
//! Format (Kafka's `.txnindex`): 34-byte entries, appended as markers are written:
//!
//! ```text
//! version             i16  0
//! producer_id         i64
//! first_offset        i64  first offset of the aborted transaction
//! last_offset         i64  offset of its ABORT marker
//! last_stable_offset  i64  the partition's LSO after the marker
//! ```
//!
//! The file is small (one entry per aborted transaction), so it is read whole on open and kept
//! in memory; appends go through the file-system seam. Like the other indexes it is a cache of
//! the log: the loader truncates it and replays markers after the producer-state snapshot.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::error::{Error, Result};
use crate::fs::{FileHandle, FileSystem};

/// Bytes per entry.
pub(crate) const ENTRY_BYTES: usize = 34;
const _: () = assert!(ENTRY_BYTES == 2 + 8 + 8 + 8 + 8);

/// An aborted transaction.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AbortedTxn {
    /// The producer.
    pub producer_id: i64,
    /// First offset of the transaction in this partition.
    pub first_offset: i64,
    /// Offset of the ABORT marker.
    pub last_offset: i64,
    /// Last stable offset after the marker.
    pub last_stable_offset: i64,
}

impl AbortedTxn {
    /// Whether `batch` holds records of this aborted transaction (control batches, the markers
    /// themselves, do not).
    #[must_use]
    pub fn covers(&self, batch: &crate::batch::RecordBatchHeader<'_>) -> bool {
        batch.is_transactional()
            && !batch.is_control()
            && self.producer_id == batch.producer_id()
            && self.first_offset <= batch.base_offset()
            && batch.base_offset() < self.last_offset
    }

    pub(crate) fn encode(&self) -> [u8; ENTRY_BYTES] {
        let mut out = [0u8; ENTRY_BYTES];
        out[2..10].copy_from_slice(&self.producer_id.to_be_bytes());
        out[10..18].copy_from_slice(&self.first_offset.to_be_bytes());
        out[18..26].copy_from_slice(&self.last_offset.to_be_bytes());
        out[26..34].copy_from_slice(&self.last_stable_offset.to_be_bytes());
        out
    }

    fn decode(bytes: &[u8]) -> Option<Self> {
        let field = |at: usize| -> Option<i64> {
            Some(i64::from_be_bytes(bytes.get(at..at + 8)?.try_into().ok()?))
        };
        if bytes.get(..2)? != [0, 0] {
            return None;
        }
        Some(Self {
            producer_id: field(2)?,
            first_offset: field(10)?,
            last_offset: field(18)?,
            last_stable_offset: field(26)?,
        })
    }
}

/// The `.txnindex` file of one segment.
#[derive(Debug)]
pub(crate) struct TransactionIndex {
    path: PathBuf,
    file: Arc<dyn FileHandle>,
    entries: Vec<AbortedTxn>,
}

impl TransactionIndex {
    /// Opens (creating) the index. An entry that does not decode, or a trailing partial entry,
    /// ends the valid entries: the rest is cut off, as the loader replays markers anyway.
    pub(crate) fn open(fs: &dyn FileSystem, path: &Path) -> Result<Self> {
        let io = |op, e| Error::io(op, path, e);
        let file = fs.open(path, true).map_err(|e| io("open txn index", e))?;
        let len = usize::try_from(file.len().map_err(|e| io("stat txn index", e))?).unwrap_or(0);
        let mut bytes = vec![0u8; len];
        file.read_exact_at(&mut bytes, 0)
            .map_err(|e| io("read txn index", e))?;
        let entries: Vec<AbortedTxn> = bytes
            .chunks_exact(ENTRY_BYTES)
            .map_while(AbortedTxn::decode)
            .collect();
        let mut index = Self {
            path: path.to_path_buf(),
            file,
            entries,
        };
        if index.entries.len() * ENTRY_BYTES != len {
            index.rewrite()?;
        }
        Ok(index)
    }

    fn rewrite(&mut self) -> Result<()> {
        let len = (self.entries.len() * ENTRY_BYTES) as u64;
        self.file
            .set_len(len)
            .map_err(|e| Error::io("truncate txn index", &self.path, e))
    }

    pub(crate) fn append(&mut self, entry: AbortedTxn) -> Result<()> {
        let at = (self.entries.len() * ENTRY_BYTES) as u64;
        self.file
            .write_all_at(&entry.encode(), at)
            .map_err(|e| Error::io("append txn index", &self.path, e))?;
        self.entries.push(entry);
        Ok(())
    }

    /// Drops entries whose marker is at or after `offset`.
    pub(crate) fn truncate_to(&mut self, offset: i64) -> Result<()> {
        let keep = self
            .entries
            .iter()
            .take_while(|e| e.last_offset < offset)
            .count();
        if keep < self.entries.len() {
            self.entries.truncate(keep);
            self.rewrite()?;
        }
        Ok(())
    }

    /// Aborted transactions overlapping `[start, upper)`.
    /// Adds the entries overlapping `[start, upper)` to `out`; `true` once an entry's last
    /// stable offset reaches `upper`: no later entry can overlap the range then (Kafka's
    /// `TxnIndexSearchResult.isComplete`).
    pub(crate) fn collect(&self, start: i64, upper: i64, out: &mut Vec<AbortedTxn>) -> bool {
        for entry in &self.entries {
            if entry.last_offset >= start && entry.first_offset < upper {
                out.push(*entry);
            }
            if entry.last_stable_offset >= upper {
                return true;
            }
        }
        false
    }
}
