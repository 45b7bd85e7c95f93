//! Memory-mapped sparse index files (Kafka's `AbstractIndex` role): fixed-size big-endian
//! entries, preallocated to `segment.index.bytes` while the segment is active and trimmed to
//! their entries when it is rolled or closed.
//!
//! Indexes are a cache of the log, never the truth: they carry no checksum, are sanity-checked
//! on open, and are rebuilt from the log after an unclean shutdown or when the check fails.

pub(crate) mod mmap;
pub(crate) mod offset;
pub(crate) mod time;
pub(crate) mod txn;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use memmap2::MmapMut;

use crate::error::{Error, Result};
use crate::fs::{FileHandle, FileSystem};

/// A file of fixed-size entries, mapped into memory.
#[derive(Debug)]
pub(crate) struct IndexFile {
    path: PathBuf,
    file: Arc<dyn FileHandle>,
    /// `None` while the file has length 0: an empty map cannot be created portably.
    map: Option<MmapMut>,
    entry_bytes: usize,
    entries: usize,
    max_entries: usize,
}

impl IndexFile {
    /// Opens (creating if missing) the index at `path`. Existing entries are taken from the
    /// file length; callers sanity-check them. If `writable`, the file is extended to
    /// `max_bytes` so entries can be appended.
    pub(crate) fn open(
        fs: &dyn FileSystem,
        path: &Path,
        entry_bytes: usize,
        max_bytes: u32,
        writable: bool,
    ) -> Result<Self> {
        let io = |op, e| Error::io(op, path, e);
        let file = fs.open(path, true).map_err(|e| io("open index", e))?;
        let len = usize::try_from(file.len().map_err(|e| io("stat index", e))?).unwrap_or(0);
        let max_entries = (max_bytes as usize / entry_bytes).max(1);
        let mut index = Self {
            path: path.to_path_buf(),
            file,
            map: None,
            entry_bytes,
            entries: len / entry_bytes,
            max_entries: max_entries.max(len / entry_bytes),
        };
        if writable {
            index.resize(index.max_entries * entry_bytes)?;
        } else {
            index.remap()?;
        }
        Ok(index)
    }

    fn remap(&mut self) -> Result<()> {
        self.map = None;
        let len = self
            .file
            .len()
            .map_err(|e| Error::io("stat index", &self.path, e))?;
        if len > 0 {
            self.map = Some(
                mmap::map_mut(self.file.as_std_file())
                    .map_err(|e| Error::io("mmap index", &self.path, e))?,
            );
        }
        Ok(())
    }

    fn resize(&mut self, bytes: usize) -> Result<()> {
        // Unmap before resizing: shrinking a mapped file would leave pages that fault.
        self.map = None;
        self.file
            .set_len(bytes as u64)
            .map_err(|e| Error::io("resize index", &self.path, e))?;
        self.remap()
    }

    pub(crate) fn entries(&self) -> usize {
        self.entries
    }

    pub(crate) fn is_full(&self) -> bool {
        self.entries >= self.max_entries
    }

    /// The bytes of entry `n`, if it exists.
    pub(crate) fn entry(&self, n: usize) -> Option<&[u8]> {
        if n >= self.entries {
            return None;
        }
        let at = n * self.entry_bytes;
        self.map.as_deref()?.get(at..at + self.entry_bytes)
    }

    /// Appends one entry. The caller checks [`IndexFile::is_full`] first.
    pub(crate) fn push(&mut self, entry: &[u8]) {
        assert_eq!(entry.len(), self.entry_bytes, "index entry size");
        let at = self.entries * self.entry_bytes;
        if let Some(slot) = self
            .map
            .as_deref_mut()
            .and_then(|m| m.get_mut(at..at + entry.len()))
        {
            slot.copy_from_slice(entry);
            self.entries += 1;
        }
    }

    /// Forgets entries from `n` on.
    pub(crate) fn truncate_entries(&mut self, n: usize) {
        self.entries = self.entries.min(n);
    }

    /// Binary search: the largest entry index whose key (decoded by `key`) is `<= target`.
    pub(crate) fn floor(&self, target: i64, key: impl Fn(&[u8]) -> i64) -> Option<usize> {
        let (mut lo, mut hi) = (0usize, self.entries);
        while lo < hi {
            let mid = lo + (hi - lo) / 2;
            let k = self.entry(mid).map_or(i64::MAX, &key);
            if k <= target {
                lo = mid + 1;
            } else {
                hi = mid;
            }
        }
        lo.checked_sub(1)
    }

    /// Shrinks the file to exactly its entries (on roll and close), so that the next open
    /// reads the entry count from the length.
    pub(crate) fn trim(&mut self) -> Result<()> {
        self.flush()?;
        self.resize(self.entries * self.entry_bytes)
    }

    /// Extends the file to its maximum size so entries can be appended again.
    pub(crate) fn make_writable(&mut self) -> Result<()> {
        self.resize(self.max_entries * self.entry_bytes)
    }

    /// Empties the index (before a rebuild) and keeps it writable at `max` size.
    pub(crate) fn reset(&mut self) -> Result<()> {
        self.entries = 0;
        self.resize(self.max_entries * self.entry_bytes)
    }

    /// Writes dirty pages back (msync).
    pub(crate) fn flush(&self) -> Result<()> {
        if let Some(map) = &self.map {
            map.flush()
                .map_err(|e| Error::io("msync index", &self.path, e))?;
        }
        Ok(())
    }
}

fn be_u32(bytes: &[u8], at: usize) -> u32 {
    let mut out = [0u8; 4];
    if let Some(src) = bytes.get(at..at + 4) {
        out.copy_from_slice(src);
    }
    u32::from_be_bytes(out)
}

fn be_i64(bytes: &[u8], at: usize) -> i64 {
    let mut out = [0u8; 8];
    if let Some(src) = bytes.get(at..at + 8) {
        out.copy_from_slice(src);
    }
    i64::from_be_bytes(out)
}
