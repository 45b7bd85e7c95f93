//! Swapping cleaned segments in, crash-safely (Kafka's `.cleaned` → `.swap` → `.log`).
//!
//! 1. The group is written to `{base}.log.cleaned` (and its aborted-transaction entries to
//!    `{base}.txnindex.cleaned`) and fsynced.
//! 2. Both are renamed to `.swap`, the transaction index first, and the directory is fsynced.
//!    **The log's `.swap` file is the commit point.**
//! 3. Under the log lock: the old segments' files are deleted, the `.swap` files renamed over
//!    `{base}.log` / `{base}.txnindex`, the directory fsynced, and the new segment opened with
//!    rebuilt indexes.
//!
//! Recovery ([`complete_swaps`]) deletes `.cleaned` files (before the commit point the old
//! segments are intact) and finishes step 3 for every `.log.swap` (after it, the swap file is
//! complete and durable). A crash therefore leaves the old segments or the new one, never a mix.
//! Readers that hold an old segment's file handle keep reading it after the unlink.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::error::{Error, Result};
use crate::file_names::{self, CLEANED_SUFFIX, LOG_SUFFIX, SWAP_SUFFIX, TXN_INDEX_SUFFIX};
use crate::file_records::{BatchReader, ScanStop};
use crate::fs::{FileHandle, FileSystem};
use crate::index::txn::AbortedTxn;
use crate::log::Log;
use crate::segment::LogSegment;

use super::SegmentInfo;

fn path_with(dir: &Path, base: i64, suffix: &str, stage: &str) -> PathBuf {
    dir.join(format!("{}{stage}", file_names::file_name(base, suffix)))
}

/// A cleaned segment being written.
#[derive(Debug)]
pub(crate) struct CleanedSegment {
    base: i64,
    path: PathBuf,
    file: Arc<dyn FileHandle>,
    size: u64,
}

impl CleanedSegment {
    pub(crate) fn create(log: &Log, base: i64) -> Result<Self> {
        let path = path_with(log.dir(), base, LOG_SUFFIX, CLEANED_SUFFIX);
        let file = log
            .fs()
            .open(&path, true)
            .map_err(|e| Error::io("create cleaned segment", &path, e))?;
        file.set_len(0)
            .map_err(|e| Error::io("create cleaned segment", &path, e))?;
        Ok(Self {
            base,
            path,
            file,
            size: 0,
        })
    }

    pub(crate) fn append(&mut self, bytes: &[u8]) -> Result<()> {
        self.file
            .write_all_at(bytes, self.size)
            .map_err(|e| Error::io("write cleaned segment", &self.path, e))?;
        self.size += bytes.len() as u64;
        Ok(())
    }

    pub(crate) fn bytes(&self) -> u64 {
        self.size
    }

    /// Throws the cleaned file away (nothing changed, or the pass failed).
    pub(crate) fn discard(self, log: &Log) {
        let _ = log.fs().remove_file(&self.path);
    }

    /// Steps 1–3 of the module docs. `group` lists the replaced segments' `(base, size)`; if
    /// any of them changed meanwhile (retention, DeleteRecords, truncation), the swap is
    /// abandoned and this returns false.
    pub(crate) fn commit(
        self,
        log: &Log,
        aborted: &[AbortedTxn],
        group: &[(i64, u32)],
    ) -> Result<bool> {
        let fs = log.fs();
        let dir = log.dir();
        let io = |op, path: &Path, e| Error::io(op, path, e);
        self.file
            .sync_data()
            .map_err(|e| io("fsync", &self.path, e))?;
        let txn_cleaned = path_with(dir, self.base, TXN_INDEX_SUFFIX, CLEANED_SUFFIX);
        let txn_file = fs
            .open(&txn_cleaned, true)
            .map_err(|e| io("create", &txn_cleaned, e))?;
        txn_file
            .set_len(0)
            .map_err(|e| io("truncate", &txn_cleaned, e))?;
        let bytes: Vec<u8> = aborted.iter().flat_map(AbortedTxn::encode).collect();
        txn_file
            .write_all_at(&bytes, 0)
            .map_err(|e| io("write", &txn_cleaned, e))?;
        txn_file
            .sync_data()
            .map_err(|e| io("fsync", &txn_cleaned, e))?;
        let txn_swap = path_with(dir, self.base, TXN_INDEX_SUFFIX, SWAP_SUFFIX);
        let log_swap = path_with(dir, self.base, LOG_SUFFIX, SWAP_SUFFIX);
        fs.rename(&txn_cleaned, &txn_swap)
            .map_err(|e| io("rename", &txn_swap, e))?;
        fs.rename(&self.path, &log_swap)
            .map_err(|e| io("rename", &log_swap, e))?;
        fs.sync_dir(dir).map_err(|e| io("fsync dir", dir, e))?;
        replace_segments(log, self.base, group)
    }
}

/// Step 3 under the log lock. Returns false if the swap was abandoned.
fn replace_segments(log: &Log, base: i64, group: &[(i64, u32)]) -> Result<bool> {
    let fs = log.fs();
    let dir = log.dir();
    let mut inner = log.lock_inner();
    let unchanged = group
        .iter()
        .all(|&(b, size)| inner.segments.get(&b).is_some_and(|s| s.size() == size))
        && inner
            .segments
            .keys()
            .next_back()
            .is_some_and(|&active| group.iter().all(|&(b, _)| b < active));
    if !unchanged {
        drop(inner);
        tracing::info!(
            ?dir,
            base,
            "segments changed while cleaning; discarding the cleaned copy"
        );
        let _ = fs.remove_file(&path_with(dir, base, LOG_SUFFIX, SWAP_SUFFIX));
        let _ = fs.remove_file(&path_with(dir, base, TXN_INDEX_SUFFIX, SWAP_SUFFIX));
        return Ok(false);
    }
    for &(b, _) in group {
        if let Some(old) = inner.segments.remove(&b) {
            crate::retention::delete_segment_files(fs, &old)?;
        }
    }
    finish_swap(fs, dir, base)?;
    let config = inner.config.clone();
    let mut segment = LogSegment::open(fs, dir, base, &config, true)?;
    let _ = segment.recover(&config)?;
    segment.on_become_inactive()?;
    let _ = inner.segments.insert(base, segment);
    Ok(true)
}

/// Renames `{base}.txnindex.swap` and `{base}.log.swap` into place and fsyncs the directory.
fn finish_swap(fs: &dyn FileSystem, dir: &Path, base: i64) -> Result<()> {
    let io = |op, path: &Path, e| Error::io(op, path, e);
    let txn_swap = path_with(dir, base, TXN_INDEX_SUFFIX, SWAP_SUFFIX);
    if fs.exists(&txn_swap) {
        let target = file_names::file_path(dir, base, TXN_INDEX_SUFFIX);
        fs.rename(&txn_swap, &target)
            .map_err(|e| io("rename", &target, e))?;
    }
    let target = file_names::file_path(dir, base, LOG_SUFFIX);
    let log_swap = path_with(dir, base, LOG_SUFFIX, SWAP_SUFFIX);
    fs.rename(&log_swap, &target)
        .map_err(|e| io("rename", &target, e))?;
    fs.sync_dir(dir).map_err(|e| io("fsync dir", dir, e))
}

/// Recovery: deletes `.cleaned` files and orphan transaction-index swaps, and completes every
/// committed swap. Returns the base offsets of the completed swaps, whose indexes the loader
/// must rebuild.
pub(crate) fn complete_swaps(
    fs: &dyn FileSystem,
    dir: &Path,
    names: &[String],
) -> Result<HashSet<i64>> {
    let mut log_bases = Vec::new();
    let mut swaps = Vec::new();
    for name in names {
        let path = dir.join(name);
        if name.ends_with(CLEANED_SUFFIX) {
            fs.remove_file(&path)
                .map_err(|e| Error::io("remove leftover", &path, e))?;
        } else if let Some((base, suffix)) = file_names::parse(name) {
            if suffix == LOG_SUFFIX {
                log_bases.push(base);
            } else if suffix == format!("{LOG_SUFFIX}{SWAP_SUFFIX}") {
                swaps.push(base);
            } else if suffix == format!("{TXN_INDEX_SUFFIX}{SWAP_SUFFIX}")
                && !names.contains(&format!(
                    "{}{SWAP_SUFFIX}",
                    file_names::file_name(base, LOG_SUFFIX)
                ))
            {
                fs.remove_file(&path)
                    .map_err(|e| Error::io("remove leftover", &path, e))?;
            }
        }
    }
    let mut completed = HashSet::new();
    for base in swaps {
        let swap_path = path_with(dir, base, LOG_SUFFIX, SWAP_SUFFIX);
        // The cleaner never writes an empty segment (it keeps each group's last batch), so a
        // swap without a batch is not one it committed: drop it and keep the old segments.
        let Some(last) = last_offset(fs, &swap_path)? else {
            tracing::warn!(?swap_path, "removing a swap file that holds no batch");
            fs.remove_file(&swap_path)
                .map_err(|e| Error::io("remove leftover", &swap_path, e))?;
            let _ = fs.remove_file(&path_with(dir, base, TXN_INDEX_SUFFIX, SWAP_SUFFIX));
            continue;
        };
        let replaced: Vec<i64> = log_bases
            .iter()
            .copied()
            .filter(|&b| b >= base && b <= last)
            .collect();
        tracing::warn!(
            ?dir,
            base,
            ?replaced,
            "completing an interrupted segment swap"
        );
        for b in replaced {
            for suffix in [
                LOG_SUFFIX,
                crate::file_names::INDEX_SUFFIX,
                crate::file_names::TIME_INDEX_SUFFIX,
                TXN_INDEX_SUFFIX,
            ] {
                let path = file_names::file_path(dir, b, suffix);
                match fs.remove_file(&path) {
                    Ok(()) => {}
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                    Err(e) => return Err(Error::io("remove replaced segment", &path, e)),
                }
            }
        }
        finish_swap(fs, dir, base)?;
        let _ = completed.insert(base);
    }
    Ok(completed)
}

/// The last offset in a (complete, fsynced) swap file, or `None` if it holds no batch.
fn last_offset(fs: &dyn FileSystem, path: &Path) -> Result<Option<i64>> {
    let file = fs
        .open(path, false)
        .map_err(|e| Error::io("open swap", path, e))?;
    let size = file.len().map_err(|e| Error::io("stat swap", path, e))?;
    let mut reader = BatchReader::new(file, 0, u32::try_from(size).unwrap_or(u32::MAX));
    let mut last = None;
    loop {
        match reader.next_info() {
            Ok(info) => last = Some(info.last_offset),
            Err(ScanStop::End | ScanStop::Invalid(..)) => return Ok(last),
            Err(ScanStop::Io(e)) => return Err(Error::io("scan swap", path, e)),
        }
    }
}

impl Log {
    /// The non-active segments, the active base, and the bounds the cleaner must respect.
    pub(crate) fn cleaner_view(&self) -> CleanerView {
        let inner = self.lock_inner();
        let bases: Vec<i64> = inner.segments.keys().copied().collect();
        let active_base = bases.last().copied().unwrap_or(inner.next_offset);
        let segments = inner
            .segments
            .values()
            .zip(bases.iter().skip(1))
            .map(|(s, &upper)| SegmentInfo {
                base: s.base_offset(),
                upper,
                size: s.size(),
                max_timestamp: s.max_timestamp().timestamp,
                file: s.file().clone(),
            })
            .collect();
        CleanerView {
            segments,
            active_base,
            first_unstable_offset: inner.producers.first_unstable_offset(),
            recovery_point: self.recovery_point(),
            clean_limit: self.clean_limit(),
            log_start_offset: inner.log_start_offset,
            config: inner.config.clone(),
        }
    }

    /// Last offset of every producer's last batch: the batches cleaning must keep.
    pub(crate) fn producer_last_offsets(&self) -> HashMap<i64, i64> {
        let inner = self.lock_inner();
        inner
            .producers
            .entries()
            .filter_map(|e| e.batches.back().map(|b| (e.producer_id, b.last_offset)))
            .collect()
    }
}

/// See [`Log::cleaner_view`].
#[derive(Debug)]
pub(crate) struct CleanerView {
    pub segments: Vec<SegmentInfo>,
    pub active_base: i64,
    pub first_unstable_offset: Option<i64>,
    pub recovery_point: i64,
    pub clean_limit: i64,
    pub log_start_offset: i64,
    pub config: crate::config::LogConfig,
}
