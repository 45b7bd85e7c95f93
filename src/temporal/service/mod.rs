//! `DueService`: the due index of every partition of every temporal topic, and the passes that
//! fire them (DESIGN §5; the task that runs the passes is `pulse_task.rs`).
//!
//! - The set of indexed partitions follows the topic registry: a topic gains an indexer when
//!   `temporal.fields` is set, is re-indexed from its log start when the selectors or the format
//!   change (fire records in the log keep what already fired from firing again), and loses it
//!   when the config is cleared or the topic deleted.
//! - One task runs the pulse. It sleeps until the earliest due time, or until something is
//!   appended (new versions to index, or a transaction resolving), or until a manual clock
//!   moves, and then runs one step per partition on a blocking thread. A step fires at most
//!   [`FIRES_PER_STEP`] entries per partition, so an overdue backlog drains in bounded slices
//!   between which foreground appends get the log lock.
//! - Every `kairos.due.snapshot.interval.ms` and at shutdown each partition's index is written
//!   as a snapshot with the offset it covers, so the next start (after a crash too) replays only
//!   the tail. Snapshots are named after the topic id and a hash of
//!   the selectors and format, so one that no longer matches is never loaded.
//!
//! ## Exactly once without a cross-log transaction (DESIGN §5.3)
//!
//! The fired state lives in the slots of the index, in `__due_state` ([`DueStateLog`]), and as
//! evidence in the fire records of the source partition. Three rules, all under this service's
//! lock, keep them exact:
//!
//! 1. **State follows the fire at once.** A pulse step appends its fires to the entity
//!    partition, and before anything else the service appends their fired-state records to
//!    `__due_state` and makes them durable (the fires first when `kairos.acks.all.fsync` is
//!    on). Fired-state changes the indexer meets in the log (fire records, tombstones of fired
//!    entities) are recorded the same way, in the same step.
//! 2. **Snapshots cover only recorded state.** A partition is snapshotted only when it has no
//!    change waiting to be recorded, so everything below a snapshot's cursor that touched the
//!    fired state is durable in `__due_state`.
//! 3. **The cleaner stays behind the snapshot.** The partition's clean limit
//!    ([`Log::set_clean_limit`], honoured by compaction and by time/size retention) is the
//!    cursor of its durable snapshot, or the offset the index was rebuilt from when there is
//!    none. It is set when the partition is tracked, before the cleaner's first pass.
//!
//! 4. **A target topic keeps a mark.** With `temporal.target.topic` the fires go to the target's
//!    partition of the same number, so the source log holds no fire records and rule 1's
//!    "still in the log for the replay" needs the target. Before a step appends fires there,
//!    the target's log end is written durably as the partition's *target mark* (a small file
//!    beside the snapshots), and the target's clean limit is lowered to it; once the step's
//!    fired state is durable in `__due_state`, the mark is removed durably and the limit is
//!    released. At load, a partition with a mark reads the target from the mark on and
//!    restores every fire carrying `kairos.source.topic` = this topic (they are all this
//!    partition's: the target partition has the same number), queuing the changes so they are
//!    recorded on the first step. Only fires since the mark are read, and only while the mark
//!    exists are any of them unrecorded, so an entity forgotten (tombstoned) after an older,
//!    recorded fire is never restored from it. The source's own clean limit (rule 3) is
//!    unchanged: what compaction removes from the source still lies below a snapshot. A log
//!    that is both a temporal partition and a target gets the lower of the two limits.
//!
//! After a kill -9 at any instant: with a snapshot, the log from its cursor on is intact
//! (rule 3), so replaying it rebuilds the index exactly, and a fire whose state record was lost
//! is met again: it changes the fired state, so its record is written then. Without a
//! snapshot (deleted, or never written), the index is rebuilt from `__due_state` and the whole
//! log. Compaction keeps a suffix of each key's records (it only drops records that a later one
//! of the same key supersedes), and whatever it dropped lies below some earlier snapshot's
//! cursor, so its fired state is in `__due_state` (rule 2); what it kept is replayed. The
//! loaded state is each entity's last fired due time; replaying the kept suffix over it ends
//! in the same state as the uncompacted history, because a fire record sets the fired time and
//! a version whose due time equals the last fired one never queues (the case of a price
//! updated after it expired).

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use kairos_storage::{Log, LogManager, TopicPartition};
use parking_lot::Mutex;

use super::config::TemporalConfig;
use super::due_index::DueIndex;
use super::indexer::{FiredChange, PartitionIndexer};
use super::metrics::DueMetrics;
use super::snapshot;
use super::state_log::DueStateLog;
use super::target_mark::{read_mark, restore_target_fires};
use crate::clock::Clock;
use crate::metadata::TopicMetadata;
use crate::topic_config;

mod pass;

pub(super) use pass::Pass;

/// Most fires appended per partition per step: the slice a backlog drains in.
pub const FIRES_PER_STEP: usize = 10_000;
/// Longest the pulse sleeps without a reason, so config changes are picked up.
pub(super) const IDLE_WAKE_MS: i64 = 1_000;
/// Wait after a step that could not fire what was due (open transaction, storage error).
pub(super) const RETRY_MS: i64 = 50;
/// Directory under the data dir holding due index snapshots.
pub const SNAPSHOT_DIR: &str = "__due_index";

struct Tracked {
    topic_id: uuid::Uuid,
    /// Selectors and format as configured: a change re-indexes the partition.
    index_key: String,
    config: Arc<TemporalConfig>,
    log: Arc<Log>,
    indexer: PartitionIndexer,
    /// Cursor of the partition's durable snapshot, or the offset the index was rebuilt from:
    /// the log's clean limit (rule 3 of the module docs).
    snapshot_cursor: i64,
    /// Fired-state changes whose recording failed; retried before the partition fires again,
    /// and no snapshot is written while any wait (rule 2).
    unflushed: Vec<FiredChange>,
    /// `temporal.target.topic` when it is another topic.
    target: Option<String>,
    /// The target topic's partition of the same number, resolved at every sync; `None` while
    /// it does not exist (the fires wait, counted in `due_blocked_partitions`).
    target_log: Option<Arc<Log>>,
    /// The target mark (rule 4 of the module docs), while one is outstanding.
    target_mark: Option<i64>,
}

impl std::fmt::Debug for Tracked {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tracked")
            .field("index_key", &self.index_key)
            .field("cursor", &self.indexer.cursor())
            .finish_non_exhaustive()
    }
}

/// Counters across partitions, for metrics and listings.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DueTotals {
    /// Entities in the indexes (pending or remembered as fired).
    pub entities: u64,
    /// Entries waiting for their due time.
    pub pending: u64,
    /// Fires appended since start.
    pub fired: u64,
    /// Malformed temporal fields seen since start.
    pub malformed: u64,
    /// Null keys seen since start.
    pub null_keys: u64,
}

/// One entity in a listing of what is due next.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct DueListing {
    /// Partition.
    pub partition: i32,
    /// The entity key (lossy UTF-8).
    pub key: String,
    /// The selector.
    pub field: String,
    /// When it falls due, epoch ms.
    pub due_at: i64,
    /// Offset of the version it will reflect.
    pub offset: i64,
}

/// See the module docs.
#[derive(Debug)]
pub struct DueService {
    snapshot_dir: PathBuf,
    partitions: Mutex<HashMap<TopicPartition, Tracked>>,
    metrics: DueMetrics,
    /// `__due_state`, written under `partitions`' lock.
    state: DueStateLog,
    /// Stamps fires when they are appended (LogAppendTime and lateness), which can be well
    /// after the pass's `now_ms` when a step reads many source batches first.
    clock: Arc<dyn Clock>,
}

impl DueService {
    /// A service keeping its snapshots under `data_dir` and its fired state in `state`.
    #[must_use]
    pub fn new(
        data_dir: &Path,
        metrics: DueMetrics,
        state: DueStateLog,
        clock: Arc<dyn Clock>,
    ) -> Self {
        Self {
            snapshot_dir: data_dir.join(SNAPSHOT_DIR),
            partitions: Mutex::new(HashMap::new()),
            metrics,
            state,
            clock,
        }
    }

    /// Brings the tracked partitions in line with the registry.
    pub fn sync(&self, topics: &[Arc<TopicMetadata>], logs: &LogManager) {
        let mut want: HashMap<TopicPartition, (uuid::Uuid, String, Arc<TemporalConfig>)> =
            HashMap::new();
        let mut targets: HashMap<String, Option<String>> = HashMap::new();
        for topic in topics {
            let Some(config) = topic_config::temporal_config(&topic.configs) else {
                continue;
            };
            let key = index_key(&topic.configs);
            let _ = targets.insert(
                topic.name.clone(),
                config.target_of(&topic.name).map(str::to_owned),
            );
            let config = Arc::new(config);
            for partition in 0..topic.partitions {
                let _ = want.insert(
                    TopicPartition::new(topic.name.clone(), partition),
                    (topic.topic_id, key.clone(), Arc::clone(&config)),
                );
            }
        }
        let mut partitions = self.partitions.lock();
        let mut released = Vec::new();
        partitions.retain(|tp, tracked| {
            let wanted = want.get(tp);
            let keep = wanted
                .is_some_and(|(id, key, _)| *id == tracked.topic_id && *key == tracked.index_key);
            if !keep {
                let _ = std::fs::remove_file(self.snapshot_path(
                    tp,
                    tracked.topic_id,
                    &tracked.index_key,
                ));
                // A partition re-indexed below gets its new limit there; one no longer indexed
                // fires nothing more, and all its fires' state is recorded: no limit.
                if wanted.is_none() {
                    released.push(Arc::clone(&tracked.log));
                }
                // Its target mark goes with it; the target's limit is recomputed below.
                if let Some(log) = tracked.target_log.take() {
                    released.push(log);
                }
            }
            keep
        });
        for (tp, (topic_id, key, config)) in want {
            let target = targets.get(&tp.topic).cloned().flatten();
            // Fires go to the partition of the same number, or wait for it; never elsewhere.
            let target_log = target
                .as_ref()
                .and_then(|t| logs.get(&TopicPartition::new(t.clone(), tp.partition)));
            if let Some(tracked) = partitions.get_mut(&tp) {
                // A patch or target change takes effect at once; selectors and format re-index
                // (above). Fires already appended elsewhere keep their fired state.
                tracked.config = config;
                // A new target waits until the mark on the old one is gone (its fires' state
                // recorded): the mark and its clean limit belong to the old target.
                if tracked.target_mark.is_none() || tracked.target == target {
                    tracked.target = target;
                    if let Some(old) = std::mem::replace(&mut tracked.target_log, target_log) {
                        released.push(old);
                    }
                }
                continue;
            }
            let Some(log) = logs.get(&tp) else { continue };
            let Some((mut indexer, snapshot_cursor)) =
                self.load_indexer(&tp, topic_id, &key, &config, &log, target.is_some())
            else {
                continue;
            };
            log.set_clean_limit(snapshot_cursor);
            // Rule 4: fires a crash left in the target without their fired state.
            let target_mark = read_mark(&self.mark_path(&tp, topic_id));
            if let (Some(mark), Some(target_log)) = (target_mark, &target_log) {
                target_log.set_clean_limit(mark.min(target_log.clean_limit()));
                if let Err(error) =
                    restore_target_fires(&mut indexer, &config, &tp.topic, target_log, mark)
                {
                    tracing::warn!(%tp, %error, "cannot read the target topic; the partition waits");
                    continue;
                }
            }
            let _ = partitions.insert(
                tp,
                Tracked {
                    topic_id,
                    index_key: key,
                    config,
                    log,
                    indexer,
                    snapshot_cursor,
                    unflushed: Vec::new(),
                    target,
                    target_log,
                    target_mark,
                },
            );
        }
        apply_clean_limits(&partitions, released);
    }

    /// The target mark's file (rule 4 of the module docs): one per source partition, beside
    /// the snapshots.
    fn mark_path(&self, tp: &TopicPartition, topic_id: uuid::Uuid) -> PathBuf {
        self.snapshot_dir
            .join(format!("{}-{topic_id}.target-mark", tp.dir_name()))
    }

    fn snapshot_path(&self, tp: &TopicPartition, topic_id: uuid::Uuid, key: &str) -> PathBuf {
        let key_hash = xxhash_rust::xxh3::xxh3_64(key.as_bytes());
        self.snapshot_dir.join(format!(
            "{}-{topic_id}-{key_hash:016x}.snapshot",
            tp.dir_name()
        ))
    }

    /// The partition's indexer and the offset it starts from: from its snapshot, or else
    /// from the log start with the fired state loaded from `__due_state` first (so fires that
    /// compaction removed still count). `None` if `__due_state` cannot be read: the partition
    /// is not indexed without it, and the next pulse tries again.
    fn load_indexer(
        &self,
        tp: &TopicPartition,
        topic_id: uuid::Uuid,
        key: &str,
        config: &TemporalConfig,
        log: &Log,
        fires_elsewhere: bool,
    ) -> Option<(PartitionIndexer, i64)> {
        let path = self.snapshot_path(tp, topic_id, key);
        let loaded = std::fs::File::open(&path)
            .ok()
            .and_then(|mut file| match snapshot::read(&mut file) {
                Ok(loaded) => Some(loaded),
                Err(error) => {
                    tracing::warn!(?path, %error, "ignoring due index snapshot; rebuilding from the log");
                    None
                }
            })
            // A snapshot past the log end describes data a crash took: rebuild instead.
            .filter(|(_, cursor)| *cursor <= log.log_end_offset());
        if let Some((index, cursor)) = loaded {
            return Some((PartitionIndexer::new(cursor, index), cursor));
        }
        let start = log.log_start_offset();
        let mut indexer = PartitionIndexer::new(start, DueIndex::new());
        let loaded = self.state.load(topic_id, tp.partition, |state, value| {
            indexer.restore_state(config, &state, value, fires_elsewhere);
        });
        match loaded {
            Ok(()) => Some((indexer, start)),
            Err(error) => {
                tracing::warn!(%tp, %error, "cannot read __due_state; the partition waits");
                None
            }
        }
    }

    /// Writes every partition's snapshot (tmp + fsync + rename). Each partition's index is
    /// copied under the lock, then encoded and written after releasing it, one partition at a
    /// time (so the copy costs one partition's index in memory for a moment), and the pulse
    /// waits at most for one copy, never for the encoding or the disk. A
    /// partition with fired state still to record is skipped (rule 2 of the module docs); once
    /// a snapshot is durable, the cleaner may follow it (rule 3).
    pub fn checkpoint(&self) {
        let names: Vec<TopicPartition> = self.partitions.lock().keys().cloned().collect();
        if names.is_empty() {
            return;
        }
        if let Err(error) = std::fs::create_dir_all(&self.snapshot_dir) {
            tracing::warn!(%error, "cannot create the due index snapshot directory");
            return;
        }
        for tp in names {
            let encoded = {
                let partitions = self.partitions.lock();
                partitions
                    .get(&tp)
                    .filter(|t| t.unflushed.is_empty() && !t.indexer.has_changes())
                    .map(|tracked| {
                        let path = self.snapshot_path(&tp, tracked.topic_id, &tracked.index_key);
                        (
                            path,
                            tracked.indexer.index().clone(),
                            tracked.indexer.cursor(),
                            tracked.topic_id,
                            tracked.index_key.clone(),
                        )
                    })
            };
            let Some((path, index, cursor, topic_id, index_key)) = encoded else {
                continue;
            };
            // Encoded from the copy after the lock is released: the pulse waits only for the
            // copy (memory bandwidth, tens of ms for millions of entities), not for gathering
            // the entries in due order (random reads of every slot, hundreds of ms).
            let mut bytes = Vec::new();
            let _ = snapshot::write(&index, cursor, &mut bytes);
            drop(index);
            if let Err(error) = write_file_atomically(&path, &bytes) {
                tracing::warn!(?path, %error, "due index snapshot not written");
                continue;
            }
            let mut partitions = self.partitions.lock();
            // The same index (not one re-created meanwhile under the same name) moves on.
            if let Some(tracked) = partitions
                .get_mut(&tp)
                .filter(|t| t.topic_id == topic_id && t.index_key == index_key)
                && cursor > tracked.snapshot_cursor
            {
                tracked.snapshot_cursor = cursor;
                apply_clean_limits(&partitions, Vec::new());
            }
        }
    }

    /// DeleteTopics: the topic's indexes and snapshots go, and its fired state is tombstoned
    /// in `__due_state` (DESIGN §5.9). A topic created again has another id, so even a
    /// tombstone lost to a crash here never leaks state into it.
    pub fn on_topic_deleted(&self, topic: &TopicMetadata) {
        let mut partitions = self.partitions.lock();
        let mut released = Vec::new();
        partitions.retain(|tp, tracked| {
            let deleted = tp.topic == topic.name && tracked.topic_id == topic.topic_id;
            if deleted {
                let _ = std::fs::remove_file(self.snapshot_path(
                    tp,
                    tracked.topic_id,
                    &tracked.index_key,
                ));
                let _ = std::fs::remove_file(self.mark_path(tp, tracked.topic_id));
                released.extend(tracked.target_log.take());
            }
            !deleted
        });
        apply_clean_limits(&partitions, released);
        for partition in 0..topic.partitions {
            match self.state.forget(topic.topic_id, partition) {
                Ok(0) => {}
                Ok(count) => {
                    tracing::info!(topic = %topic.name, partition, count, "fired state tombstoned");
                }
                Err(error) => {
                    tracing::warn!(topic = %topic.name, partition, ?error, "fired state of a deleted topic not tombstoned");
                }
            }
        }
    }

    /// Totals across partitions.
    #[must_use]
    pub fn totals(&self) -> DueTotals {
        let partitions = self.partitions.lock();
        let mut totals = DueTotals {
            fired: self.metrics.fires.get(),
            ..DueTotals::default()
        };
        for tracked in partitions.values() {
            let index = tracked.indexer.index();
            totals.entities += index.entities() as u64;
            totals.pending += index.pending() as u64;
            let stats = tracked.indexer.stats();
            totals.malformed += stats.malformed;
            totals.null_keys += stats.null_keys;
        }
        totals
    }

    /// The next `limit` due entities of `topic`, earliest first.
    #[must_use]
    pub fn next_due(&self, topic: &str, limit: usize) -> Vec<DueListing> {
        let partitions = self.partitions.lock();
        let mut out = Vec::new();
        for (tp, tracked) in partitions.iter().filter(|(tp, _)| tp.topic == topic) {
            for entry in tracked.indexer.index().peek_next(limit) {
                let key = super::fire::read_record(&tracked.log, entry.offset)
                    .ok()
                    .flatten()
                    .and_then(|r| r.key)
                    .map(|k| String::from_utf8_lossy(&k).into_owned())
                    .unwrap_or_default();
                let field = tracked
                    .config
                    .fields
                    .get(usize::from(entry.id.field()))
                    .map_or_else(String::new, |f| f.as_str().to_owned());
                out.push(DueListing {
                    partition: tp.partition,
                    key,
                    field,
                    due_at: entry.due_ms,
                    offset: entry.offset,
                });
            }
        }
        out.sort_by_key(|l| (l.due_at, l.partition, l.offset));
        out.truncate(limit);
        out
    }
}

/// Sets the clean limit of every log the service constrains: a tracked partition's is its
/// snapshot cursor (rule 3), lowered to the target mark of any partition firing into it
/// (rule 4); a target partition that is not tracked itself has only the marks, or none.
/// `released` logs (no longer tracked, or no longer a target) lose their limit unless one of
/// these still applies: a log is never left without the limit it needs, not even for a moment.
fn apply_clean_limits(partitions: &HashMap<TopicPartition, Tracked>, released: Vec<Arc<Log>>) {
    let mut limits: HashMap<TopicPartition, (Arc<Log>, i64)> = HashMap::new();
    for (tp, tracked) in partitions {
        let _ = limits.insert(
            tp.clone(),
            (Arc::clone(&tracked.log), tracked.snapshot_cursor),
        );
    }
    for (tp, tracked) in partitions {
        let (Some(target), Some(log)) = (&tracked.target, &tracked.target_log) else {
            continue;
        };
        let mark = tracked.target_mark.unwrap_or(i64::MAX);
        let entry = limits
            .entry(TopicPartition::new(target.clone(), tp.partition))
            .or_insert_with(|| (Arc::clone(log), i64::MAX));
        entry.1 = entry.1.min(mark);
    }
    for log in released {
        if !limits.values().any(|(kept, _)| Arc::ptr_eq(kept, &log)) {
            log.set_clean_limit(i64::MAX);
        }
    }
    for (log, limit) in limits.into_values() {
        log.set_clean_limit(limit);
    }
}

/// The configs whose change re-indexes a topic.
fn index_key(configs: &topic_config::TopicOverrides) -> String {
    let get = |name: &str| configs.get(name).map_or("", String::as_str);
    format!("{}\n{}", get("temporal.fields"), get("temporal.format"))
}

pub(super) fn write_file_atomically(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    let tmp = path.with_extension("snapshot.tmp");
    let mut file = std::fs::File::create(&tmp)?;
    file.write_all(bytes)?;
    file.sync_data()?;
    std::fs::rename(&tmp, path)?;
    if let Some(dir) = path.parent() {
        std::fs::File::open(dir)?.sync_all()?;
    }
    Ok(())
}

#[cfg(test)]
mod tests;
