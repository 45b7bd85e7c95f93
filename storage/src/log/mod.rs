//! `Log`: one partition's log (Kafka's `UnifiedLog`/`LocalLog` role).
//!
//! Concurrency: every method takes `&self`. A `parking_lot` mutex guards the segments and the
//! producer state; it is held for in-memory work and the `pwrite` of an append, never for an
//! fsync or a read's I/O. Readers copy a [`SegmentSnapshot`] under the lock and read after.
//! Group commit runs on a second mutex + condvar: one flusher at a time fdatasyncs everything
//! appended so far, and every appender waiting meanwhile is released by that one sync.
//!
//! Invariant, asserted after each state change: `log_start_offset <= recovery_point` is NOT
//! required (DeleteRecords may pass it), but `log_start_offset <= high_watermark ==
//! log_end_offset` and `recovery_point <= log_end_offset` are.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};

use bytes::Bytes;
use parking_lot::{Condvar, Mutex};

use crate::batch::Batches;
use crate::config::LogConfig;
use crate::control;
use crate::error::{Error, Result};
use crate::fs::FileSystem;
use crate::index::time::TimestampOffset;
use crate::index::txn::AbortedTxn;
use crate::producer_state::{ProducerStateManager, SequenceCheck};
use crate::segment::LogSegment;
use crate::validator::{self, AppendOrigin};

mod flush;
mod read;

/// Result of a successful append.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LogAppendInfo {
    /// Offset of the first record.
    pub first_offset: i64,
    /// Offset of the last record.
    pub last_offset: i64,
    /// Largest timestamp appended (the append time under LogAppendTime).
    pub max_timestamp: i64,
    /// Offset of the batch holding `max_timestamp`.
    pub offset_of_max_timestamp: i64,
    /// The broker time stamped under LogAppendTime, or -1 under CreateTime.
    pub log_append_time_ms: i64,
    /// Log start offset after the append.
    pub log_start_offset: i64,
    /// Bytes appended.
    pub valid_bytes: usize,
}

/// Outcome of [`Log::append`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AppendOutcome {
    /// The batches were written.
    Appended(LogAppendInfo),
    /// An idempotent producer resent a batch that is already in the log; Kafka answers with the
    /// original offsets as a success.
    Duplicate {
        /// Offset of the first record of the original batch.
        first_offset: i64,
        /// Offset of the last record of the original batch.
        last_offset: i64,
        /// Log start offset now.
        log_start_offset: i64,
    },
}

/// Result of [`Log::read`].
#[derive(Debug, Clone)]
pub struct FetchDataInfo {
    /// Whole batches, exactly as stored.
    pub records: Bytes,
    /// First readable offset.
    pub log_start_offset: i64,
    /// Next offset to be assigned.
    pub log_end_offset: i64,
    /// High watermark.
    pub high_watermark: i64,
    /// Last stable offset.
    pub last_stable_offset: i64,
}

/// Where a [`Log`] starts when opened, from the directory's checkpoints.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct LoadParams {
    /// The recovery point checkpointed for this log (0 if unknown).
    pub recovery_point: i64,
    /// The log start offset checkpointed for this log (0 if unknown).
    pub log_start_offset: i64,
    /// Whether the directory was shut down cleanly.
    pub clean_shutdown: bool,
}

pub(crate) struct LogInner {
    pub(crate) config: LogConfig,
    pub(crate) segments: BTreeMap<i64, LogSegment>,
    pub(crate) producers: ProducerStateManager,
    pub(crate) log_start_offset: i64,
    pub(crate) next_offset: i64,
    /// Segment files created since the directory was last fsynced.
    pub(crate) dir_dirty: bool,
    pub(crate) last_flush_ms: i64,
}

#[derive(Debug, Default)]
struct FlushState {
    in_progress: bool,
}

/// One partition's log. See the module docs for its locking.
pub struct Log {
    dir: PathBuf,
    fs: Arc<dyn FileSystem>,
    inner: Mutex<LogInner>,
    flush_state: Mutex<FlushState>,
    flushed: Condvar,
    log_start_offset: AtomicI64,
    log_end_offset: AtomicI64,
    recovery_point: AtomicI64,
    /// First offset of the earliest open transaction, `i64::MAX` when none.
    first_unstable_offset: AtomicI64,
    /// Set after a failed write or fsync. Never cleared: after a failed fsync the kernel may
    /// have dropped dirty pages, so only a restart (and recovery from the log) is safe.
    poisoned: AtomicBool,
    /// Bumped by every truncation, under the log lock. A flush that started before a
    /// truncation must not raise the recovery point to its target afterwards: the offsets
    /// below that target may now hold new, unsynced data.
    truncations: AtomicU64,
    /// Neither the cleaner nor time/size retention removes records at or past this offset
    /// (`i64::MAX`, no limit, unless an owner sets one). The broker's due index sets it for
    /// temporal partitions to the offset below which the fired state of every fire is durable
    /// elsewhere, so a fire record is never removed before its fired state is recorded.
    clean_limit: AtomicI64,
}

impl std::fmt::Debug for Log {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Log")
            .field("dir", &self.dir)
            .field("log_start_offset", &self.log_start_offset())
            .field("log_end_offset", &self.log_end_offset())
            .field("recovery_point", &self.recovery_point())
            .finish_non_exhaustive()
    }
}

impl Log {
    pub(crate) fn from_loaded(
        fs: Arc<dyn FileSystem>,
        dir: PathBuf,
        inner: LogInner,
        recovery_point: i64,
    ) -> Self {
        let log = Self {
            log_start_offset: AtomicI64::new(inner.log_start_offset),
            log_end_offset: AtomicI64::new(inner.next_offset),
            recovery_point: AtomicI64::new(recovery_point),
            first_unstable_offset: AtomicI64::new(
                inner.producers.first_unstable_offset().unwrap_or(i64::MAX),
            ),
            dir,
            fs,
            inner: Mutex::new(inner),
            flush_state: Mutex::new(FlushState::default()),
            flushed: Condvar::new(),
            poisoned: AtomicBool::new(false),
            truncations: AtomicU64::new(0),
            clean_limit: AtomicI64::new(i64::MAX),
        };
        log.check_invariants(&log.inner.lock());
        log
    }

    /// Opens (or creates) the log in `dir`, recovering it if needed. See [`crate::loader`].
    ///
    /// # Errors
    /// I/O errors; corrupt data is truncated, not returned.
    pub fn open(
        fs: Arc<dyn FileSystem>,
        dir: &Path,
        config: LogConfig,
        params: LoadParams,
        now_ms: i64,
    ) -> Result<Self> {
        crate::loader::load(fs, dir, config, params, now_ms)
    }

    /// The partition directory.
    #[must_use]
    pub fn dir(&self) -> &Path {
        &self.dir
    }
    /// First readable offset.
    #[must_use]
    pub fn log_start_offset(&self) -> i64 {
        self.log_start_offset.load(Ordering::Acquire)
    }
    /// Next offset to be assigned (LEO).
    #[must_use]
    pub fn log_end_offset(&self) -> i64 {
        self.log_end_offset.load(Ordering::Acquire)
    }
    /// On a single replica the high watermark advances when the append is written.
    #[must_use]
    pub fn high_watermark(&self) -> i64 {
        self.log_end_offset()
    }
    /// Bound for read_committed readers: the first offset of the earliest open transaction,
    /// or the high watermark when none is open.
    #[must_use]
    pub fn last_stable_offset(&self) -> i64 {
        self.first_unstable_offset
            .load(Ordering::Acquire)
            .min(self.high_watermark())
    }
    /// Everything below this offset is fdatasynced.
    #[must_use]
    pub fn recovery_point(&self) -> i64 {
        self.recovery_point.load(Ordering::Acquire)
    }
    /// The offset the cleaner and time/size retention stay below (`i64::MAX`: no limit).
    #[must_use]
    pub fn clean_limit(&self) -> i64 {
        self.clean_limit.load(Ordering::Acquire)
    }
    /// Sets [`Log::clean_limit`]. It is in memory only: an owner that needs one sets it again
    /// after every open, before the cleaner's first pass. A pass that already started keeps
    /// the bound it read, so lowering the limit only protects what the previous limit did not
    /// already allow.
    pub fn set_clean_limit(&self, offset: i64) {
        self.clean_limit.store(offset, Ordering::Release);
    }
    /// Whether an I/O error has taken the log offline.
    #[must_use]
    pub fn is_poisoned(&self) -> bool {
        self.poisoned.load(Ordering::Acquire)
    }
    /// Total bytes in all segments.
    #[must_use]
    pub fn size_bytes(&self) -> u64 {
        let inner = self.inner.lock();
        inner.segments.values().map(|s| u64::from(s.size())).sum()
    }
    /// Number of segments.
    #[must_use]
    pub fn segment_count(&self) -> usize {
        self.inner.lock().segments.len()
    }
    /// Base offsets of the segments, oldest first.
    #[must_use]
    pub fn segment_base_offsets(&self) -> Vec<i64> {
        self.inner.lock().segments.keys().copied().collect()
    }
    /// The current configuration.
    #[must_use]
    pub fn config(&self) -> LogConfig {
        self.inner.lock().config.clone()
    }
    /// Replaces the configuration; it applies from the next append.
    pub fn update_config(&self, config: LogConfig) {
        self.inner.lock().config = config;
    }

    fn offline(&self) -> Error {
        Error::LogDirOffline(self.dir.clone())
    }

    fn poison(&self, error: &Error) {
        tracing::error!(dir = ?self.dir, %error, "I/O error: log taken offline until restart");
        self.poisoned.store(true, Ordering::Release);
    }

    fn check_invariants(&self, inner: &LogInner) {
        assert!(
            inner.log_start_offset <= inner.next_offset,
            "log start <= LEO"
        );
        assert!(
            self.recovery_point() <= inner.next_offset,
            "recovery point <= LEO"
        );
        debug_assert!(
            inner
                .segments
                .values()
                .all(|s| s.next_offset() <= inner.next_offset)
        );
    }

    /// Validates and appends `records` (one or more v2 batches), assigning offsets in place.
    /// With `flush.messages` reached, also syncs before returning.
    ///
    /// # Errors
    /// A typed error per refusal (see [`Error`]); `LogDirOffline` once poisoned.
    pub fn append(
        &self,
        records: &mut [u8],
        origin: AppendOrigin,
        now_ms: i64,
        leader_epoch: i32,
    ) -> Result<AppendOutcome> {
        self.append_checked(records, origin, now_ms, leader_epoch, None)
    }

    /// Appends only if the log end offset is still `expected_log_end_offset`, checked under the
    /// append lock: an optimistic-concurrency append. The due index uses it so that a fire,
    /// decided from the versions indexed up to that offset, never overtakes a newer version.
    ///
    /// # Errors
    /// `LogEndMoved` if something else was appended first; otherwise as [`Log::append`].
    pub fn append_if_end_is(
        &self,
        records: &mut [u8],
        origin: AppendOrigin,
        now_ms: i64,
        leader_epoch: i32,
        expected_log_end_offset: i64,
    ) -> Result<AppendOutcome> {
        self.append_checked(
            records,
            origin,
            now_ms,
            leader_epoch,
            Some(expected_log_end_offset),
        )
    }

    /// Runs `f` under this log's append lock if the log end offset is still
    /// `expected_log_end_offset`: nothing can be appended here while `f` runs. The due index
    /// uses it to append a fire to *another* log (a target topic) only while the source
    /// partition, whose versions the fire was decided from, has not moved.
    ///
    /// `f` must not touch this log (the lock is not re-entrant). It may append to another log,
    /// which takes that log's lock while this one is held. That cannot deadlock as long as no
    /// caller ever waits for this lock while holding another log's: appenders (produce,
    /// coordinators, the cleaner's swaps) hold one log lock at a time, and the only holder of
    /// two is the due pulse, a single task that takes them one step at a time (see the broker's
    /// `temporal::pulse`).
    ///
    /// # Errors
    /// `LogEndMoved` if the end is not `expected_log_end_offset` (then `f` does not run);
    /// `LogDirOffline` once poisoned; otherwise what `f` returns.
    pub fn while_end_is<T>(
        &self,
        expected_log_end_offset: i64,
        f: impl FnOnce() -> Result<T>,
    ) -> Result<T> {
        if self.is_poisoned() {
            return Err(self.offline());
        }
        let inner = self.inner.lock();
        if self.is_poisoned() {
            return Err(self.offline());
        }
        if inner.next_offset != expected_log_end_offset {
            return Err(Error::LogEndMoved {
                expected: expected_log_end_offset,
                actual: inner.next_offset,
            });
        }
        let result = f();
        drop(inner);
        result
    }

    fn append_checked(
        &self,
        records: &mut [u8],
        origin: AppendOrigin,
        now_ms: i64,
        leader_epoch: i32,
        expected_log_end_offset: Option<i64>,
    ) -> Result<AppendOutcome> {
        if self.is_poisoned() {
            return Err(self.offline());
        }
        let config = self.inner.lock().config.clone();
        // The CRC pass is the expensive part of validation; it runs without the lock.
        let validated = validator::validate(records, origin, &config)?;
        let mut inner = self.inner.lock();
        if self.is_poisoned() {
            return Err(self.offline());
        }
        if let Some(expected) = expected_log_end_offset.filter(|&e| e != inner.next_offset) {
            return Err(Error::LogEndMoved {
                expected,
                actual: inner.next_offset,
            });
        }
        for (_, batch) in Batches::new(records).flatten() {
            if let SequenceCheck::Duplicate(dup) = inner.producers.check(&batch, origin)? {
                return Ok(AppendOutcome::Duplicate {
                    first_offset: dup.first_offset,
                    last_offset: dup.last_offset,
                    log_start_offset: inner.log_start_offset,
                });
            }
        }
        let first_offset = inner.next_offset;
        let assigned = validator::assign_offsets(
            records,
            first_offset,
            leader_epoch,
            config.message_timestamp_type,
            now_ms,
        );
        let needs_roll = inner.segments.values().next_back().is_none_or(|active| {
            active.should_roll(validated.bytes, assigned.last_offset, &config, now_ms)
        });
        if needs_roll {
            self.roll_locked(&mut inner, first_offset)
                .inspect_err(|e| self.poison(e))?;
        }
        let active = inner.segments.values_mut().next_back();
        let written = active.map_or(Ok(()), |s| s.append(records, &config));
        written.inspect_err(|e| self.poison(e))?;
        self.update_producer_state(&mut inner, records)
            .inspect_err(|e| self.poison(e))?;
        inner.next_offset = assigned.last_offset + 1;
        self.log_end_offset
            .store(inner.next_offset, Ordering::Release);
        self.check_invariants(&inner);
        let info = LogAppendInfo {
            first_offset,
            last_offset: assigned.last_offset,
            max_timestamp: assigned.max_timestamp,
            offset_of_max_timestamp: assigned.offset_of_max_timestamp,
            log_append_time_ms: match config.message_timestamp_type {
                crate::batch::TimestampType::LogAppendTime => now_ms,
                crate::batch::TimestampType::CreateTime => -1,
            },
            log_start_offset: inner.log_start_offset,
            valid_bytes: validated.bytes,
        };
        let unflushed = inner.next_offset - self.recovery_point();
        drop(inner);
        if unflushed >= config.flush_messages {
            self.sync_to(info.last_offset + 1, now_ms)?;
        }
        Ok(AppendOutcome::Appended(info))
    }

    /// Applies appended batches to the producer state; an ABORT marker adds an entry to the
    /// active segment's transaction index.
    fn update_producer_state(&self, inner: &mut LogInner, records: &[u8]) -> Result<()> {
        for (_, batch) in Batches::new(records).flatten() {
            let marker = control::parse_marker(&batch);
            let done = inner.producers.update(&batch, marker).filter(|d| d.aborted);
            if let Some(entry) = done.map(|d| inner.producers.aborted_entry(&d))
                && let Some(active) = inner.segments.values_mut().next_back()
            {
                active.append_aborted_txn(entry)?;
            }
        }
        self.publish_first_unstable(inner);
        Ok(())
    }

    fn publish_first_unstable(&self, inner: &LogInner) {
        let first = inner.producers.first_unstable_offset().unwrap_or(i64::MAX);
        self.first_unstable_offset.store(first, Ordering::Release);
    }

    /// Forgets idle producers; see [`ProducerStateManager`]. Returns how many were removed.
    pub fn remove_expired_producers(&self, now_ms: i64, expiration_ms: i64) -> usize {
        self.inner
            .lock()
            .producers
            .remove_expired(now_ms, expiration_ms)
    }

    /// A copy of every producer's state in this partition (DescribeProducers).
    #[must_use]
    pub fn active_producers(&self) -> Vec<crate::producer_state::ProducerStateEntry> {
        self.inner.lock().producers.entries().cloned().collect()
    }

    /// Aborted transactions overlapping `[start, upper)`, for a read_committed fetch of that
    /// range: clients drop those producers' records between each first offset and its marker.
    #[must_use]
    pub fn aborted_transactions(&self, start: i64, upper: i64) -> Vec<AbortedTxn> {
        let inner = self.inner.lock();
        let from = inner
            .segments
            .range(..=start)
            .next_back()
            .map_or(i64::MIN, |(&b, _)| b);
        // An ABORT marker, and so its index entry, can be in any later segment than the
        // transaction's first record: the scan goes on until an entry's last stable offset
        // shows that nothing later can overlap the range (Kafka's collectAbortedTransactions).
        let mut out = Vec::new();
        for segment in inner.segments.range(from..).map(|(_, s)| s) {
            if segment.collect_aborted(start, upper, &mut out) {
                break;
            }
        }
        out
    }

    /// Rolls a new active segment at the log end offset.
    ///
    /// # Errors
    /// I/O errors creating the files (the log is poisoned); `LogDirOffline` once poisoned.
    pub fn roll(&self) -> Result<()> {
        let mut inner = self.inner.lock();
        if self.is_poisoned() {
            return Err(self.offline());
        }
        let at = inner.next_offset;
        if inner
            .segments
            .values()
            .next_back()
            .is_some_and(|s| s.size() == 0)
        {
            return Ok(());
        }
        self.roll_locked(&mut inner, at)
            .inspect_err(|e| self.poison(e))
    }

    pub(crate) fn roll_locked(&self, inner: &mut LogInner, base_offset: i64) -> Result<()> {
        if let Some(active) = inner.segments.values_mut().next_back() {
            if active.size() == 0 && active.base_offset() == base_offset {
                return Ok(());
            }
            active.on_become_inactive()?;
        }
        let segment = LogSegment::create(self.fs.as_ref(), &self.dir, base_offset, &inner.config)?;
        if let Some(old) = inner.segments.insert(base_offset, segment) {
            // Only an empty segment can share the new base offset.
            debug_assert_eq!(old.size(), 0);
        }
        inner.dir_dirty = true;
        // A producer-state snapshot at every roll, as Kafka takes: after a crash, recovery
        // replays from here instead of from the log start, and idempotent producers keep their
        // sequences even when retention has since deleted the segments that held them.
        crate::snapshot::write(
            self.fs.as_ref(),
            &self.dir,
            base_offset,
            &inner.producers,
            crate::snapshot::Durability::Unsynced,
        )
    }

    /// The first record with timestamp `>= timestamp`, at or after the log start offset.
    ///
    /// # Errors
    /// I/O errors.
    pub fn offset_for_timestamp(&self, timestamp: i64) -> Result<Option<TimestampOffset>> {
        let candidates: Vec<_> = {
            let inner = self.inner.lock();
            let start = inner.log_start_offset;
            inner
                .segments
                .values()
                .filter(|s| s.next_offset() > start && s.max_timestamp().timestamp >= timestamp)
                .map(|s| {
                    let from = s.time_lookup_offset(timestamp).max(start);
                    (s.snapshot(from), from)
                })
                .collect()
        };
        for (snapshot, from) in candidates {
            if let Some(found) = snapshot.find_timestamp(timestamp, from)? {
                let offset = found.offset.max(from);
                return Ok(Some(TimestampOffset { offset, ..found }));
            }
        }
        Ok(None)
    }

    /// The largest timestamp in the log and the offset of the batch that carries it.
    #[must_use]
    pub fn max_timestamp(&self) -> Option<TimestampOffset> {
        let inner = self.inner.lock();
        inner
            .segments
            .values()
            .map(LogSegment::max_timestamp)
            .filter(|t| t.timestamp >= 0 && t.offset >= inner.log_start_offset)
            .max_by_key(|t| (t.timestamp, -t.offset))
    }

    /// DeleteRecords: advances the log start offset to `offset` and deletes segments wholly
    /// below it. Returns the new log start offset (the low watermark).
    ///
    /// # Errors
    /// `OffsetOutOfRange` past the high watermark; I/O errors deleting files;
    /// `LogDirOffline` once poisoned.
    pub fn delete_records(&self, offset: i64) -> Result<i64> {
        let mut inner = self.inner.lock();
        if self.is_poisoned() {
            return Err(self.offline());
        }
        if offset > inner.next_offset || offset < 0 {
            return Err(Error::OffsetOutOfRange {
                requested: offset,
                log_start_offset: inner.log_start_offset,
                log_end_offset: inner.next_offset,
            });
        }
        if offset > inner.log_start_offset {
            inner.log_start_offset = offset;
            self.log_start_offset.store(offset, Ordering::Release);
        }
        crate::retention::delete_below_log_start(self, &mut inner)?;
        self.check_invariants(&inner);
        Ok(inner.log_start_offset)
    }

    /// Removes every record at or after `offset`.
    ///
    /// # Errors
    /// I/O errors (the log is poisoned); `LogDirOffline` once poisoned.
    pub fn truncate_to(&self, offset: i64) -> Result<()> {
        let mut inner = self.inner.lock();
        if self.is_poisoned() {
            return Err(self.offline());
        }
        if offset >= inner.next_offset {
            return Ok(());
        }
        let offset = offset.max(inner.log_start_offset);
        let result = self.truncate_locked(&mut inner, offset);
        result.inspect_err(|e| self.poison(e))
    }

    fn truncate_locked(&self, inner: &mut LogInner, offset: i64) -> Result<()> {
        let doomed: Vec<i64> = inner.segments.range(offset..).map(|(&b, _)| b).collect();
        let first_base = inner.segments.keys().next().copied();
        for base in doomed {
            if Some(base) == first_base {
                continue;
            }
            if let Some(segment) = inner.segments.remove(&base) {
                crate::retention::delete_segment_files(self.fs.as_ref(), &segment)?;
            }
        }
        let config = inner.config.clone();
        if let Some(active) = inner.segments.values_mut().next_back() {
            let _ = active.truncate_to(offset, &config)?;
            active.reactivate()?;
        }
        // Snapshots taken past the new end describe batches that are gone: an unclean restart
        // would load one and answer new batches as duplicates of removed ones. The next flush
        // fsyncs the directory, making the deletion durable before the new data is.
        for (snapshot_offset, path) in crate::snapshot::list(self.fs.as_ref(), &self.dir)? {
            if snapshot_offset > offset {
                self.fs
                    .remove_file(&path)
                    .map_err(|e| Error::io("delete snapshot", &path, e))?;
                inner.dir_dirty = true;
            }
        }
        inner.next_offset = offset;
        // Rebuild rather than drop the removed batches from memory: the state keeps only each
        // producer's last five batches, and the older ones that are now the last must be
        // found again (Kafka's truncateAndReload). The result is what a restart would load.
        // The replay also reopens a transaction whose marker was cut off, and rebuilds the
        // transaction indexes.
        inner.producers.clear();
        crate::loader::rebuild_producer_state(self.fs.as_ref(), &self.dir, inner)?;
        self.publish_first_unstable(inner);
        self.log_end_offset
            .store(inner.next_offset, Ordering::Release);
        let _ = self.truncations.fetch_add(1, Ordering::AcqRel);
        let _ = self
            .recovery_point
            .fetch_min(inner.next_offset, Ordering::AcqRel);
        self.check_invariants(inner);
        Ok(())
    }

    /// Deletes segments by `retention.ms`, `retention.bytes` and the log start offset. Returns
    /// how many segments were deleted.
    ///
    /// # Errors
    /// I/O errors deleting files; `LogDirOffline` once poisoned.
    pub fn enforce_retention(&self, now_ms: i64) -> Result<usize> {
        let mut inner = self.inner.lock();
        if self.is_poisoned() {
            return Err(self.offline());
        }
        let deleted = crate::retention::enforce(self, &mut inner, now_ms)?;
        self.log_start_offset
            .store(inner.log_start_offset, Ordering::Release);
        self.check_invariants(&inner);
        Ok(deleted)
    }

    pub(crate) fn lock_inner(&self) -> parking_lot::MutexGuard<'_, LogInner> {
        self.inner.lock()
    }

    pub(crate) fn fs(&self) -> &dyn FileSystem {
        self.fs.as_ref()
    }

    pub(crate) fn set_log_start_offset(&self, offset: i64) {
        self.log_start_offset.store(offset, Ordering::Release);
    }

    /// Flushes everything and trims the active segment's indexes, then writes a producer
    /// state snapshot, so the next open can skip recovery.
    ///
    /// # Errors
    /// I/O errors.
    pub fn close(&self, now_ms: i64) -> Result<()> {
        if self.is_poisoned() {
            return Err(self.offline());
        }
        self.sync_to(self.log_end_offset(), now_ms)?;
        let mut inner = self.inner.lock();
        if let Some(active) = inner.segments.values_mut().next_back() {
            active.on_become_inactive()?;
        }
        crate::snapshot::write(
            self.fs.as_ref(),
            &self.dir,
            inner.next_offset,
            &inner.producers,
            crate::snapshot::Durability::Synced,
        )
    }
}

/// The segments that may hold offsets at or after `from`.
fn segments_from(inner: &LogInner, from: i64) -> impl Iterator<Item = &LogSegment> {
    let start = inner
        .segments
        .range(..=from)
        .next_back()
        .map_or(i64::MIN, |(&b, _)| b);
    inner.segments.range(start..).map(|(_, s)| s)
}
