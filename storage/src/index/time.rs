//! `TimeIndex`: sparse map from timestamp to offset.
//!
//! Format: 12-byte entries, `timestamp: i64 BE` (the largest timestamp in the segment so far)
//! then `relative_offset: u32 BE` (the last offset of the batch that carried it). Timestamps are
//! non-decreasing. Every record before an entry's offset has a timestamp `<=` the entry's.

use std::path::Path;

use super::{IndexFile, be_i64, be_u32};
use crate::error::Result;
use crate::fs::FileSystem;

/// Bytes per entry.
pub(crate) const ENTRY_BYTES: usize = 12;
const _: () = assert!(ENTRY_BYTES == 8 + 4);

/// A timestamp → offset entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TimestampOffset {
    /// Timestamp in ms.
    pub timestamp: i64,
    /// Offset.
    pub offset: i64,
}

/// The `.timeindex` file of one segment.
#[derive(Debug)]
pub(crate) struct TimeIndex {
    file: IndexFile,
    base_offset: i64,
}

impl TimeIndex {
    pub(crate) fn open(
        fs: &dyn FileSystem,
        path: &Path,
        base_offset: i64,
        max_bytes: u32,
        writable: bool,
    ) -> Result<Self> {
        let file = IndexFile::open(fs, path, ENTRY_BYTES, max_bytes, writable)?;
        Ok(Self { file, base_offset })
    }

    pub(crate) fn file(&mut self) -> &mut IndexFile {
        &mut self.file
    }

    pub(crate) fn entry(&self, n: usize) -> Option<TimestampOffset> {
        self.file.entry(n).map(|e| TimestampOffset {
            timestamp: be_i64(e, 0),
            offset: self.base_offset + i64::from(be_u32(e, 8)),
        })
    }

    pub(crate) fn last(&self) -> Option<TimestampOffset> {
        self.file
            .entries()
            .checked_sub(1)
            .and_then(|n| self.entry(n))
    }

    pub(crate) fn is_full(&self) -> bool {
        self.file.is_full()
    }

    /// Appends an entry if its timestamp is larger than the last one's.
    pub(crate) fn maybe_append(&mut self, timestamp: i64, offset: i64) {
        if self
            .last()
            .is_some_and(|l| timestamp <= l.timestamp || offset <= l.offset)
        {
            return;
        }
        if self.file.is_full() {
            return;
        }
        let relative = u32::try_from(offset - self.base_offset).unwrap_or(u32::MAX);
        let mut entry = [0u8; ENTRY_BYTES];
        entry[..8].copy_from_slice(&timestamp.to_be_bytes());
        entry[8..].copy_from_slice(&relative.to_be_bytes());
        self.file.push(&entry);
    }

    /// An offset from which to scan for the first record with timestamp `>= target`: the offset
    /// after the largest entry whose timestamp is strictly below `target`, or the segment start.
    pub(crate) fn lookup(&self, target: i64) -> i64 {
        self.file
            .floor(target - 1, |e| be_i64(e, 0))
            .and_then(|n| self.entry(n))
            .map_or(self.base_offset, |e| e.offset + 1)
    }

    /// Drops entries with offset `>= offset`.
    pub(crate) fn truncate_to(&mut self, offset: i64) {
        let mut keep = self.file.entries();
        while keep > 0 && self.entry(keep - 1).is_some_and(|e| e.offset >= offset) {
            keep -= 1;
        }
        self.file.truncate_entries(keep);
    }

    /// Entries non-decreasing in timestamp, strictly increasing in offset, below `next_offset`.
    pub(crate) fn is_sane(&self, next_offset: i64) -> bool {
        let mut previous: Option<TimestampOffset> = None;
        for n in 0..self.file.entries() {
            let Some(e) = self.entry(n) else { return false };
            if e.offset >= next_offset.max(self.base_offset + 1) {
                return false;
            }
            if previous.is_some_and(|p| e.timestamp < p.timestamp || e.offset <= p.offset) {
                return false;
            }
            previous = Some(e);
        }
        true
    }
}
