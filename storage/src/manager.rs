//! `LogManager`: owns a data directory, with one [`Log`] per topic-partition in a
//! `{topic}-{partition}` subdirectory, a directory lock, the offset checkpoints and the
//! clean-shutdown marker.
//!
//! The broker drives the periodic work (checkpoints, retention, `flush.ms`) by calling the step
//! functions here from its own tasks; the manager starts no threads.

use std::collections::HashMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use parking_lot::{Mutex, RwLock};

use crate::checkpoint::{
    self, CLEANER_OFFSET_CHECKPOINT, LOG_START_OFFSET_CHECKPOINT, RECOVERY_POINT_CHECKPOINT,
};
use crate::cleaner::{CleanerStats, LogCleaner};
use crate::config::LogConfig;
use crate::error::{Error, Result};
use crate::fs::{FileHandle, FileSystem, StdFs};
use crate::log::{LoadParams, Log};

/// Written at clean shutdown, removed at open: its absence at open means a crash. Kafka's name.
pub const CLEAN_SHUTDOWN_FILE: &str = ".kafka_cleanshutdown";
/// Held locked while the directory is open, so two processes cannot open it.
pub const LOCK_FILE: &str = ".lock";

/// A topic name and partition number.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TopicPartition {
    /// Topic name.
    pub topic: String,
    /// Partition number.
    pub partition: i32,
}

impl TopicPartition {
    /// A topic-partition.
    #[must_use]
    pub fn new(topic: impl Into<String>, partition: i32) -> Self {
        Self {
            topic: topic.into(),
            partition,
        }
    }

    /// The directory name, `{topic}-{partition}`.
    #[must_use]
    pub fn dir_name(&self) -> String {
        format!("{}-{}", self.topic, self.partition)
    }

    /// Parses a directory name; topics may contain `-`, so the last one separates.
    #[must_use]
    pub fn parse_dir_name(name: &str) -> Option<Self> {
        let (topic, partition) = name.rsplit_once('-')?;
        if topic.is_empty() || name.starts_with('.') {
            return None;
        }
        Some(Self::new(topic, partition.parse().ok()?))
    }
}

impl fmt::Display for TopicPartition {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}-{}", self.topic, self.partition)
    }
}

/// All logs of one data directory.
pub struct LogManager {
    fs: Arc<dyn FileSystem>,
    dir: PathBuf,
    logs: RwLock<HashMap<TopicPartition, Arc<Log>>>,
    /// First dirty offset per compacted log, persisted in `cleaner-offset-checkpoint`.
    cleaner_offsets: Mutex<HashMap<TopicPartition, i64>>,
    /// Keeps the directory lock for the manager's lifetime.
    _lock: Arc<dyn FileHandle>,
}

impl fmt::Debug for LogManager {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LogManager")
            .field("dir", &self.dir)
            .field("logs", &self.logs.read().len())
            .finish_non_exhaustive()
    }
}

impl LogManager {
    /// Opens `dir` on the real file system with default configs for existing logs.
    ///
    /// # Errors
    /// `DirLocked` if another process has it open; I/O errors.
    pub fn open_std(dir: &Path, now_ms: i64) -> Result<Self> {
        Self::open(Arc::new(StdFs), dir, now_ms)
    }

    /// Opens `dir`, recovering every log, each with the default config. The broker applies
    /// topic configs afterwards with [`Log::update_config`], or uses
    /// [`LogManager::open_with_configs`].
    ///
    /// # Errors
    /// `DirLocked` if another process has it open; I/O errors.
    pub fn open(fs: Arc<dyn FileSystem>, dir: &Path, now_ms: i64) -> Result<Self> {
        Self::open_with_configs(fs, dir, now_ms, |_| LogConfig::default())
    }

    /// Opens `dir`, recovering every log with the config `config_for` gives it.
    ///
    /// # Errors
    /// `DirLocked` if another process has it open; I/O errors.
    pub fn open_with_configs(
        fs: Arc<dyn FileSystem>,
        dir: &Path,
        now_ms: i64,
        config_for: impl Fn(&TopicPartition) -> LogConfig,
    ) -> Result<Self> {
        fs.create_dir_all(dir)
            .map_err(|e| Error::io("create data dir", dir, e))?;
        let lock = lock_dir(fs.as_ref(), dir)?;
        let marker = dir.join(CLEAN_SHUTDOWN_FILE);
        let clean_shutdown = fs.exists(&marker);
        let recovery_points = read_checkpoint(fs.as_ref(), &dir.join(RECOVERY_POINT_CHECKPOINT));
        let log_starts = read_checkpoint(fs.as_ref(), &dir.join(LOG_START_OFFSET_CHECKPOINT));
        let mut logs = HashMap::new();
        for name in fs
            .list_dir(dir)
            .map_err(|e| Error::io("list data dir", dir, e))?
        {
            let Some(tp) = TopicPartition::parse_dir_name(&name) else {
                continue;
            };
            let path = dir.join(&name);
            let params = LoadParams {
                recovery_point: recovery_points.get(&tp).copied().unwrap_or(0),
                log_start_offset: log_starts.get(&tp).copied().unwrap_or(0),
                clean_shutdown,
            };
            let log = Log::open(fs.clone(), &path, config_for(&tp), params, now_ms)?;
            let _ = logs.insert(tp, Arc::new(log));
        }
        if clean_shutdown {
            // From here on a crash must be detected as one.
            fs.remove_file(&marker)
                .map_err(|e| Error::io("remove clean-shutdown marker", &marker, e))?;
            fs.sync_dir(dir)
                .map_err(|e| Error::io("fsync dir", dir, e))?;
        }
        let cleaner_offsets = read_checkpoint(fs.as_ref(), &dir.join(CLEANER_OFFSET_CHECKPOINT));
        let manager = Self {
            fs,
            dir: dir.to_path_buf(),
            logs: RwLock::new(logs),
            cleaner_offsets: Mutex::new(cleaner_offsets),
            _lock: lock,
        };
        manager.checkpoint()?;
        Ok(manager)
    }

    /// The data directory.
    #[must_use]
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The log of a partition, if it exists.
    #[must_use]
    pub fn get(&self, tp: &TopicPartition) -> Option<Arc<Log>> {
        self.logs.read().get(tp).cloned()
    }

    /// The log of a partition, created empty with `config` if it does not exist.
    ///
    /// # Errors
    /// I/O errors creating it.
    pub fn get_or_create(
        &self,
        tp: &TopicPartition,
        config: LogConfig,
        now_ms: i64,
    ) -> Result<Arc<Log>> {
        if let Some(log) = self.get(tp) {
            return Ok(log);
        }
        let mut logs = self.logs.write();
        if let Some(log) = logs.get(tp) {
            return Ok(log.clone());
        }
        let path = self.dir.join(tp.dir_name());
        let log = Arc::new(Log::open(
            self.fs.clone(),
            &path,
            config,
            LoadParams::default(),
            now_ms,
        )?);
        self.fs
            .sync_dir(&self.dir)
            .map_err(|e| Error::io("fsync dir", &self.dir, e))?;
        let _ = logs.insert(tp.clone(), log.clone());
        Ok(log)
    }

    /// Deletes a partition's log and its files.
    ///
    /// # Errors
    /// I/O errors removing files.
    pub fn delete(&self, tp: &TopicPartition) -> Result<()> {
        let Some(log) = self.logs.write().remove(tp) else {
            return Ok(());
        };
        let path = log.dir().to_path_buf();
        drop(log);
        let _ = self.cleaner_offsets.lock().remove(tp);
        self.fs
            .remove_dir_all(&path)
            .map_err(|e| Error::io("delete log dir", &path, e))?;
        self.fs
            .sync_dir(&self.dir)
            .map_err(|e| Error::io("fsync dir", &self.dir, e))
    }

    /// Every log, sorted by topic-partition.
    #[must_use]
    pub fn logs(&self) -> Vec<(TopicPartition, Arc<Log>)> {
        let mut out: Vec<_> = self
            .logs
            .read()
            .iter()
            .map(|(tp, log)| (tp.clone(), log.clone()))
            .collect();
        out.sort_by(|a, b| a.0.cmp(&b.0));
        out
    }

    /// Writes the recovery-point and log-start-offset checkpoints.
    ///
    /// # Errors
    /// I/O errors.
    pub fn checkpoint(&self) -> Result<()> {
        let logs = self.logs();
        let points: Vec<_> = logs
            .iter()
            .map(|(tp, log)| (tp.clone(), log.recovery_point()))
            .collect();
        let starts: Vec<_> = logs
            .iter()
            .map(|(tp, log)| (tp.clone(), log.log_start_offset()))
            .collect();
        checkpoint::write(
            self.fs.as_ref(),
            &self.dir.join(RECOVERY_POINT_CHECKPOINT),
            &points,
        )?;
        checkpoint::write(
            self.fs.as_ref(),
            &self.dir.join(LOG_START_OFFSET_CHECKPOINT),
            &starts,
        )
    }

    /// Applies retention to every log. Failures are logged per log and do not stop the others.
    pub fn run_retention(&self, now_ms: i64) {
        for (tp, log) in self.logs() {
            if let Err(error) = log.enforce_retention(now_ms) {
                tracing::warn!(%tp, %error, "retention failed");
            }
        }
    }

    /// Forgets producers idle for `expiration_ms` in every log (Kafka's
    /// `producer.id.expiration.ms`, checked every `producer.id.expiration.check.interval.ms`).
    pub fn remove_expired_producers(&self, now_ms: i64, expiration_ms: i64) -> usize {
        self.logs()
            .iter()
            .map(|(_, log)| log.remove_expired_producers(now_ms, expiration_ms))
            .sum()
    }

    /// Runs one cleaner pass on the dirtiest compacted log whose dirty ratio reaches
    /// `min.cleanable.dirty.ratio` (or that `max.compaction.lag.ms` makes overdue), and
    /// persists its new first dirty offset. Returns what was cleaned.
    ///
    /// The recovery points are checkpointed first and the pass stays below them, so a cleaned
    /// segment is never one that crash recovery would rescan (see `loader.rs`).
    ///
    /// # Errors
    /// I/O errors of the pass or the checkpoints.
    pub fn clean_once(
        &self,
        now_ms: i64,
        cleaner: &mut LogCleaner,
    ) -> Result<Option<(TopicPartition, CleanerStats)>> {
        // Read before the checkpoint, which then records values at least this large.
        let durable: Vec<(TopicPartition, Arc<Log>, i64)> = self
            .logs()
            .into_iter()
            .filter(|(_, log)| log.config().cleanup_policy.compacts() && !log.is_poisoned())
            .map(|(tp, log)| {
                let recovery_point = log.recovery_point();
                (tp, log, recovery_point)
            })
            .collect();
        self.checkpoint()?;
        let offsets = self.cleaner_offsets.lock().clone();
        let candidate = durable
            .into_iter()
            .map(|(tp, log, durable)| {
                let first_dirty = offsets.get(&tp).copied().unwrap_or(0);
                let dirt = crate::cleaner::log_to_clean(&log, first_dirty, durable, now_ms);
                (tp, log, first_dirty, dirt, durable)
            })
            .filter(|(_, log, _, dirt, _)| {
                dirt.dirty_bytes > 0
                    && (dirt.overdue
                        || dirt.dirty_ratio() >= log.config().min_cleanable_dirty_ratio)
            })
            .max_by(|a, b| a.3.dirty_ratio().total_cmp(&b.3.dirty_ratio()));
        let Some((tp, log, first_dirty, _, durable)) = candidate else {
            return Ok(None);
        };
        let Some(stats) = cleaner.clean(&log, first_dirty, durable, now_ms)? else {
            return Ok(None);
        };
        let entries: Vec<(TopicPartition, i64)> = {
            let mut offsets = self.cleaner_offsets.lock();
            let _ = offsets.insert(tp.clone(), stats.first_dirty_offset);
            offsets.iter().map(|(tp, o)| (tp.clone(), *o)).collect()
        };
        checkpoint::write(
            self.fs.as_ref(),
            &self.dir.join(CLEANER_OFFSET_CHECKPOINT),
            &entries,
        )?;
        Ok(Some((tp, stats)))
    }

    /// Syncs every log whose `flush.ms` has passed.
    pub fn flush_due(&self, now_ms: i64) {
        for (tp, log) in self.logs() {
            if let Err(error) = log.flush_if_due(now_ms) {
                tracing::warn!(%tp, %error, "scheduled flush failed");
            }
        }
    }

    /// Flushes and closes every log, writes the checkpoints, and then the clean-shutdown
    /// marker. A log that fails to close (poisoned) leaves no marker, so the next open
    /// recovers.
    ///
    /// # Errors
    /// The first error met; the others are logged.
    pub fn shutdown(&self, now_ms: i64) -> Result<()> {
        let mut first_error = None;
        for (tp, log) in self.logs() {
            if let Err(error) = log.close(now_ms) {
                tracing::error!(%tp, %error, "log did not close cleanly");
                first_error.get_or_insert(error);
            }
        }
        self.checkpoint()?;
        if let Some(error) = first_error {
            return Err(error);
        }
        crate::fs::write_atomically(self.fs.as_ref(), &self.dir.join(CLEAN_SHUTDOWN_FILE), b"")
    }
}

fn lock_dir(fs: &dyn FileSystem, dir: &Path) -> Result<Arc<dyn FileHandle>> {
    let path = dir.join(LOCK_FILE);
    let file = fs
        .open(&path, true)
        .map_err(|e| Error::io("open lock file", &path, e))?;
    match file.as_std_file().try_lock() {
        Ok(()) => Ok(file),
        Err(std::fs::TryLockError::WouldBlock) => Err(Error::DirLocked(dir.to_path_buf())),
        Err(std::fs::TryLockError::Error(e)) => Err(Error::io("lock data dir", &path, e)),
    }
}

fn read_checkpoint(fs: &dyn FileSystem, path: &Path) -> HashMap<TopicPartition, i64> {
    checkpoint::read(fs, path).unwrap_or_else(|error| {
        tracing::warn!(?path, %error, "ignoring unreadable checkpoint; logs will fully recover");
        HashMap::new()
    })
}
