//! The synchronous core of the pulse: one step that fires what is due in one partition.
//!
//! A step catches the indexer up to min(LSO, HW), pops the entries due at `now_ms` (in due
//! order, at most `max`), builds one fire per entry from the entity's latest version, and
//! appends them in one batch **only if the log end offset is still the one the decision was
//! made at** ([`Log::append_if_end_is`]). If a producer appended first, the entries go back
//! and the step retries after catching up again, so a fire never overtakes a newer version.
//! While a transaction is open, entities with a version in the unstable tail wait until it
//! resolves (DESIGN §5.2).
//!
//! A step returns its fires as [`FiredChange`]s: the caller records them in `__due_state`
//! before anything else (see `service/mod.rs` for why that, with the log's clean limit, makes the
//! fired state exact across crashes and compaction). A step does not fire while the indexer is
//! behind (it stopped early to hand over fired-state changes): the decision needs the latest
//! version of every key.
//!
//! With `temporal.target.topic`, fires go to the partition of the same number in the target
//! topic ([`FireTarget::Topic`]). The decision is still made against the *source* log: the
//! fires are appended to the target inside [`Log::while_end_is`] on the source, so they land
//! only if no version was appended to the source since the decision, exactly as
//! `append_if_end_is` does for the same-topic path. The pulse is then the only holder of two
//! log locks at once (source, then target); producers and coordinators hold one at a time, and
//! the pulse steps such partitions one at a time (only same-topic steps run in parallel, see
//! `DueService::pass`), so the two cannot deadlock. A topic whose target is itself is
//! the same-topic path (never two locks on one log).
//!
//! The async task that sleeps until the next due time and calls this is the broker's.

use std::collections::HashSet;

use kairos_storage::batch::Batches;
use kairos_storage::builder::BatchWriter;
use kairos_storage::record::RecordBytes;
use kairos_storage::{AppendOrigin, Error, Log};

use super::config::TemporalConfig;
use super::due_index::{DueEntry, EntityId};
use super::fire::{FireParts, SourceBatches};
use super::indexer::{FiredChange, PartitionIndexer};
use crate::clock::{Clock, ManualClock};

/// Attempts per step before yielding to foreground appends that keep moving the log end.
const ATTEMPTS: usize = 8;

/// What a step did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FireReport {
    /// Fires appended.
    pub fired: usize,
    /// Popped entries whose version was no longer the latest (a newer one requeued them, or
    /// retention removed the version).
    pub stale: usize,
    /// Entries waiting for an open transaction.
    pub waiting: usize,
    /// For each fire, how late it was appended: append time − due time.
    pub lateness_ms: Vec<i64>,
    /// The fires appended, in offset order, to be recorded as fired state.
    pub fires: Vec<FiredChange>,
    /// The indexer stopped short of the stable offset with fired-state changes to hand over;
    /// nothing was fired. The caller takes the changes and steps again.
    pub behind: bool,
}

/// Where a step appends its fires.
pub enum FireTarget<'a> {
    /// The source partition itself (no `temporal.target.topic`).
    Source,
    /// The partition of the same number in another topic.
    Topic {
        /// The source topic's name, written as `kairos.source.topic` on every fire: it tells
        /// consumers what `kairos.source.offset` refers to, tells the target's own indexer
        /// (if the target is temporal too) that the fire is not one of its own, and lets
        /// recovery find the fires a crash left unrecorded.
        source_topic: &'a str,
        /// The target partition's log.
        log: &'a Log,
        /// Called with the target's log end before fires are appended there (the fires land
        /// at or after it): the caller notes durably where to look after a crash.
        before_append: &'a mut dyn FnMut(i64) -> kairos_storage::Result<()>,
    },
}

impl std::fmt::Debug for FireTarget<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Source => f.write_str("Source"),
            Self::Topic { source_topic, .. } => f
                .debug_struct("Topic")
                .field("source_topic", source_topic)
                .finish_non_exhaustive(),
        }
    }
}

/// One pulse step for `log`, firing into `target`, with fires stamped at `now_ms`. See the
/// module docs.
///
/// # Errors
/// Storage errors; popped entries are put back first, so nothing is lost and the caller retries
/// with backoff.
pub fn fire_due(
    log: &Log,
    target: FireTarget<'_>,
    indexer: &mut PartitionIndexer,
    config: &TemporalConfig,
    now_ms: i64,
    max: usize,
) -> kairos_storage::Result<FireReport> {
    let clock = ManualClock::new(now_ms);
    fire_due_clocked(log, target, indexer, config, now_ms, &clock, max)
}

/// [`fire_due`] deciding at `now_ms` but stamping the fires (LogAppendTime, lateness) with
/// `clock` as they are appended: a step that reads many source batches appends well after
/// the time it decided at, and that time is part of the fires' lateness.
///
/// # Errors
/// As [`fire_due`].
pub fn fire_due_clocked(
    log: &Log,
    mut target: FireTarget<'_>,
    indexer: &mut PartitionIndexer,
    config: &TemporalConfig,
    now_ms: i64,
    clock: &dyn Clock,
    max: usize,
) -> kairos_storage::Result<FireReport> {
    let mut report = FireReport::default();
    for _ in 0..ATTEMPTS {
        let end = log.log_end_offset();
        let stable = log.last_stable_offset().min(log.high_watermark());
        let _ = indexer.catch_up(log, config, stable)?;
        if indexer.cursor() < stable {
            report.behind = true;
            return Ok(report);
        }
        let unstable = if stable < end {
            unstable_keys(log, stable, end, config.fields.len())?
        } else {
            HashSet::new()
        };
        let mut due = Vec::new();
        indexer.index_mut().pop_due(now_ms, max, &mut due);
        if due.is_empty() {
            return Ok(report);
        }
        // Batches of fires, each within `max.message.bytes` (an oversized batch would fail
        // every time and the backlog would never drain), encoded one after another into one
        // buffer and appended together: one append and one fsync per step however large the
        // backlog slice. Fires borrow keys, values and headers from the source batches.
        let mut fired = Vec::with_capacity(due.len());
        let mut keys = Vec::with_capacity(due.len());
        let (limit, source_topic) = match &target {
            FireTarget::Source => (batch_limit(log), None),
            FireTarget::Topic {
                source_topic,
                log: target,
                ..
            } => (batch_limit(target), Some(*source_topic)),
        };
        let offsets: Vec<i64> = due.iter().map(|e| e.offset).collect();
        let source_batches = SourceBatches::read(log, &offsets)?;
        let decoded = source_batches.decode();
        let sources = source_batches.records(&decoded);
        let mut batch: Vec<u8> = Vec::new();
        let mut writer = BatchWriter::new(&mut batch);
        for entry in due {
            if unstable.contains(&entry.id) {
                report.waiting += 1;
                indexer.index_mut().retry(&entry);
                continue;
            }
            // Not `remove`: two fields of one key share their source version.
            match sources.get(&entry.offset) {
                Some(source)
                    if source.key.map(|k| EntityId::new(k, entry.id.field())) == Some(entry.id) =>
                {
                    let fire = FireParts::new(
                        config,
                        &entry,
                        entry.offset,
                        (source.key, source.value),
                        source.headers(),
                        source_topic,
                    );
                    if writer.size() + fire.size_bound() > limit && !writer.is_empty() {
                        writer.finish();
                        writer = BatchWriter::new(&mut batch);
                    }
                    fire.write(&mut writer);
                    fired.push(entry);
                    keys.push(source.key.map(<[u8]>::to_vec).unwrap_or_default());
                }
                _ => report.stale += 1,
            }
        }
        writer.finish();
        if fired.is_empty() {
            return Ok(report);
        }
        let append_ms = clock.now_ms();
        let appended = match &mut target {
            // Appended at `end` if at all.
            FireTarget::Source => log
                .append_if_end_is(&mut batch, AppendOrigin::Coordinator, append_ms, 0, end)
                .map(|_| end),
            FireTarget::Topic {
                log: target,
                before_append,
                ..
            } => match before_append(target.log_end_offset()) {
                // Not under the source lock: the caller's note may fsync, and producers of the
                // source would wait for it.
                Ok(()) => log.while_end_is(end, || {
                    target
                        .append(&mut batch, AppendOrigin::Coordinator, append_ms, 0)
                        .map(|outcome| first_offset(&outcome))
                }),
                Err(e) => Err(e),
            },
        };
        match appended {
            Ok(first) => {
                // The batches were appended together, their records at consecutive offsets.
                for ((entry, key), fire_offset) in fired.iter().zip(keys).zip(first..) {
                    let _ = indexer.index_mut().fired(entry);
                    report.lateness_ms.push(append_ms - entry.due_ms);
                    report.fires.push(FiredChange::Fired {
                        key,
                        field: entry.id.field(),
                        due_ms: entry.due_ms,
                        source_offset: entry.offset,
                        fire_offset,
                    });
                }
                report.fired += fired.len();
                return Ok(report);
            }
            Err(Error::LogEndMoved { .. }) => requeue(indexer, &fired),
            Err(e) => {
                requeue(indexer, &fired);
                return Err(e);
            }
        }
    }
    Ok(report)
}

fn first_offset(outcome: &kairos_storage::AppendOutcome) -> i64 {
    match outcome {
        kairos_storage::AppendOutcome::Appended(info) => info.first_offset,
        kairos_storage::AppendOutcome::Duplicate { first_offset, .. } => *first_offset,
    }
}

/// Bytes one fire batch may take, header included: `max.message.bytes`.
fn batch_limit(log: &Log) -> usize {
    usize::try_from(log.config().max_message_bytes)
        .unwrap_or(usize::MAX)
        .max(1)
}

fn requeue(indexer: &mut PartitionIndexer, entries: &[DueEntry]) {
    for entry in entries {
        indexer.index_mut().retry(entry);
    }
}

/// Entities with a version in `[from, to)`, the part of the log past the stable offset.
fn unstable_keys(
    log: &Log,
    from: i64,
    to: i64,
    fields: usize,
) -> kairos_storage::Result<HashSet<EntityId>> {
    let mut out = HashSet::new();
    let mut offset = from;
    while offset < to {
        let data = log.read(offset, 1 << 20, Some(to))?;
        let mut advanced = false;
        for (_, batch) in Batches::new(&data.records).map_while(Result::ok) {
            offset = batch.last_offset() + 1;
            advanced = true;
            if batch.is_control() {
                continue;
            }
            let Ok(records) = RecordBytes::of(&batch) else {
                continue;
            };
            for key in records
                .records()
                .map_while(Result::ok)
                .filter_map(|r| r.key)
            {
                for field in 0..fields {
                    let _ = out.insert(EntityId::new(key, u8::try_from(field).unwrap_or(u8::MAX)));
                }
            }
        }
        if !advanced {
            break;
        }
    }
    Ok(out)
}
