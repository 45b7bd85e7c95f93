//! `OffsetIndex`: sparse map from offset to the byte position of a batch in the segment.
//!
//! Format: 8-byte entries, `relative_offset: u32 BE` (offset − base offset, the last offset of
//! an indexed batch) then `position: u32 BE` (where that batch starts). Strictly increasing in
//! both fields. To find an offset, take the largest entry `<= offset` and scan forward.

use std::path::Path;

use super::{IndexFile, be_u32};
use crate::error::Result;
use crate::fs::FileSystem;

/// Bytes per entry.
pub(crate) const ENTRY_BYTES: usize = 8;
const _: () = assert!(ENTRY_BYTES == 4 + 4);

/// An offset → position entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct OffsetPosition {
    pub offset: i64,
    pub position: u32,
}

/// The `.index` file of one segment.
#[derive(Debug)]
pub(crate) struct OffsetIndex {
    file: IndexFile,
    base_offset: i64,
}

impl OffsetIndex {
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

    pub(crate) fn entry(&self, n: usize) -> Option<OffsetPosition> {
        self.file.entry(n).map(|e| OffsetPosition {
            offset: self.base_offset + i64::from(be_u32(e, 0)),
            position: be_u32(e, 4),
        })
    }

    pub(crate) fn last(&self) -> Option<OffsetPosition> {
        self.file
            .entries()
            .checked_sub(1)
            .and_then(|n| self.entry(n))
    }

    pub(crate) fn is_full(&self) -> bool {
        self.file.is_full()
    }

    /// Appends `(offset, position)`; both must exceed the last entry's.
    pub(crate) fn append(&mut self, offset: i64, position: u32) {
        let relative = u32::try_from(offset - self.base_offset).unwrap_or(u32::MAX);
        let mut entry = [0u8; ENTRY_BYTES];
        entry[..4].copy_from_slice(&relative.to_be_bytes());
        entry[4..].copy_from_slice(&position.to_be_bytes());
        self.file.push(&entry);
    }

    /// The largest entry with offset `<= target`, or the segment start.
    pub(crate) fn lookup(&self, target: i64) -> OffsetPosition {
        let start = OffsetPosition {
            offset: self.base_offset,
            position: 0,
        };
        let relative = target - self.base_offset;
        self.file
            .floor(relative, |e| i64::from(be_u32(e, 0)))
            .and_then(|n| self.entry(n))
            .unwrap_or(start)
    }

    /// Drops entries with offset `>= offset`.
    pub(crate) fn truncate_to(&mut self, offset: i64) {
        let keep = self
            .file
            .floor(offset - self.base_offset - 1, |e| i64::from(be_u32(e, 0)))
            .map_or(0, |n| n + 1);
        self.file.truncate_entries(keep);
    }

    /// Kafka's `sanityCheck`: entries strictly increasing and inside the log.
    pub(crate) fn is_sane(&self, log_size: u32) -> bool {
        let mut previous: Option<OffsetPosition> = None;
        for n in 0..self.file.entries() {
            let Some(e) = self.entry(n) else { return false };
            if e.position >= log_size.max(1) {
                return false;
            }
            if previous.is_some_and(|p| e.offset <= p.offset || e.position <= p.position) {
                return false;
            }
            previous = Some(e);
        }
        true
    }
}
