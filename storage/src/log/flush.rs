//! Group commit and scheduled flushes of a [`Log`]: one flusher at a time fdatasyncs everything
//! appended so far, and every appender waiting meanwhile is released by that one sync. A failed
//! sync poisons the log; no fsync is ever retried.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use crate::error::{Error, Result};
use crate::fs::FileHandle;

use super::{Log, LogInner, segments_from};

impl Log {
    /// Fsyncs the directory if segments were created since its last fsync. Retention and
    /// DeleteRecords call it before deleting segments: a deletion may reach the disk before an
    /// earlier creation, and a crash that keeps the deletions but loses the newer segments
    /// leaves the log restarting below offsets it already acknowledged as flushed.
    pub(crate) fn sync_dir_if_dirty(&self, inner: &mut LogInner) -> Result<()> {
        if !inner.dir_dirty {
            return Ok(());
        }
        match self.fs.sync_dir(&self.dir) {
            Ok(()) => {
                inner.dir_dirty = false;
                Ok(())
            }
            Err(e) => {
                let e = Error::io("fsync dir", &self.dir, e);
                self.poison(&e);
                Err(e)
            }
        }
    }

    /// Group commit: returns once every offset below `end_offset` is fdatasynced. Concurrent
    /// callers share one fdatasync: the first becomes the flusher and syncs everything appended
    /// so far; the others wait and are released by its result.
    ///
    /// # Errors
    /// `LogDirOffline` if this or an earlier sync failed. A failed fsync is never retried.
    /// `OffsetOutOfRange` if `end_offset` is past the log end offset (a truncation removed the
    /// offsets waited for).
    pub fn sync_to(&self, end_offset: i64, now_ms: i64) -> Result<()> {
        loop {
            // Poison first: once a sync has failed the log answers every write, this one
            // included, with LogDirOffline, even if an earlier flush happened to cover it.
            if self.is_poisoned() {
                return Err(self.offline());
            }
            if self.recovery_point() >= end_offset {
                return Ok(());
            }
            let log_end_offset = self.log_end_offset();
            if end_offset > log_end_offset {
                return Err(Error::OffsetOutOfRange {
                    requested: end_offset,
                    log_start_offset: self.log_start_offset(),
                    log_end_offset,
                });
            }
            if self.is_poisoned() {
                return Err(self.offline());
            }
            let mut state = self.flush_state.lock();
            if state.in_progress {
                self.flushed.wait(&mut state);
                continue;
            }
            // Checked again under the lock: a flush that failed after the check above poisoned
            // the log before giving up the flusher role, and its fsync must not be retried.
            if self.is_poisoned() {
                return Err(self.offline());
            }
            state.in_progress = true;
            drop(state);
            let result = self.flush_once(now_ms);
            let mut state = self.flush_state.lock();
            state.in_progress = false;
            self.flushed.notify_all();
            drop(state);
            result?;
        }
    }

    /// Syncs everything appended so far. Only one runs at a time (see [`Log::sync_to`]).
    fn flush_once(&self, now_ms: i64) -> Result<()> {
        let (target, files, dir_dirty, truncations) = {
            let mut inner = self.inner.lock();
            let from = self.recovery_point();
            let files: Vec<(Arc<dyn FileHandle>, PathBuf)> = segments_from(&inner, from)
                .map(|s| (s.file().clone(), s.path().to_path_buf()))
                .collect();
            inner.last_flush_ms = now_ms;
            (
                inner.next_offset,
                files,
                std::mem::take(&mut inner.dir_dirty),
                self.truncations.load(Ordering::Acquire),
            )
        };
        let result = (|| {
            for (file, path) in &files {
                file.sync_data().map_err(|e| Error::io("fsync", path, e))?;
            }
            if dir_dirty {
                self.fs
                    .sync_dir(&self.dir)
                    .map_err(|e| Error::io("fsync dir", &self.dir, e))?;
            }
            Ok(())
        })();
        match result {
            Ok(()) => {
                // Under the log lock, so that no truncation runs between the check and the
                // update. After a truncation the caller's loop flushes again.
                let _inner = self.inner.lock();
                if self.truncations.load(Ordering::Acquire) == truncations {
                    let _ = self.recovery_point.fetch_max(target, Ordering::AcqRel);
                }
                Ok(())
            }
            Err(e) => {
                self.poison(&e);
                Err(e)
            }
        }
    }

    /// Syncs if `flush.ms` has passed since the last sync and something is unflushed.
    ///
    /// # Errors
    /// As [`Log::sync_to`].
    pub fn flush_if_due(&self, now_ms: i64) -> Result<()> {
        let (due, end) = {
            let inner = self.inner.lock();
            let unflushed = inner.next_offset > self.recovery_point();
            let due =
                unflushed && now_ms.saturating_sub(inner.last_flush_ms) >= inner.config.flush_ms;
            (due, inner.next_offset)
        };
        if due {
            self.sync_to(end, now_ms)
        } else {
            Ok(())
        }
    }
}
