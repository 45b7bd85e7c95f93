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
//! before anything else (see `service.rs` for why that, with the log's clean limit, makes the
//! fired state exact across crashes and compaction). A step does not fire while the indexer is
//! behind (it stopped early to hand over fired-state changes): the decision needs the latest
//! version of every key.
//!
//! The async task that sleeps until the next due time and calls this is the broker's.

use std::collections::HashSet;

use kairos_storage::batch::Batches;
use kairos_storage::builder::RecordSpec;
use kairos_storage::record::RecordBytes;
use kairos_storage::{AppendOrigin, Error, Log};

use super::config::TemporalConfig;
use super::due_index::{DueEntry, EntityId};
use super::fire::{fire_batch, fire_record, read_records};
use super::indexer::{FiredChange, PartitionIndexer};

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
    /// For each fire, how late it was appended: `now_ms - due_ms`.
    pub lateness_ms: Vec<i64>,
    /// The fires appended, in offset order, to be recorded as fired state.
    pub fires: Vec<FiredChange>,
    /// The indexer stopped short of the stable offset with fired-state changes to hand over;
    /// nothing was fired. The caller takes the changes and steps again.
    pub behind: bool,
}

/// One pulse step for `log` (fires go to the same partition). See the module docs.
///
/// # Errors
/// Storage errors; popped entries are put back first, so nothing is lost and the caller retries
/// with backoff.
pub fn fire_due(
    log: &Log,
    indexer: &mut PartitionIndexer,
    config: &TemporalConfig,
    now_ms: i64,
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
        // every time and the backlog would never drain), appended together: one append and one
        // fsync per step however large the backlog slice.
        let mut batches: Vec<Vec<RecordSpec>> = vec![Vec::new()];
        let mut fired = Vec::with_capacity(due.len());
        let mut keys = Vec::with_capacity(due.len());
        let budget = batch_budget(log);
        let mut bytes = 0;
        let offsets: Vec<i64> = due.iter().map(|e| e.offset).collect();
        let sources = read_records(log, &offsets)?;
        for entry in due {
            if unstable.contains(&entry.id) {
                report.waiting += 1;
                indexer.index_mut().retry(&entry);
                continue;
            }
            // Not `remove`: two fields of one key share their source version.
            match sources.get(&entry.offset) {
                Some(source)
                    if source
                        .key
                        .as_deref()
                        .map(|k| EntityId::new(k, entry.id.field()))
                        == Some(entry.id) =>
                {
                    let fire = fire_record(config, &entry, source);
                    let size = record_size_bound(&fire);
                    if bytes + size > budget && batches.last().is_some_and(|b| !b.is_empty()) {
                        batches.push(Vec::new());
                        bytes = 0;
                    }
                    bytes += size;
                    if let Some(batch) = batches.last_mut() {
                        batch.push(fire);
                    }
                    fired.push(entry);
                    keys.push(source.key.clone().unwrap_or_default());
                }
                _ => report.stale += 1,
            }
        }
        if fired.is_empty() {
            return Ok(report);
        }
        let mut batch: Vec<u8> = batches
            .into_iter()
            .filter(|fires| !fires.is_empty())
            .flat_map(fire_batch)
            .collect();
        match log.append_if_end_is(&mut batch, AppendOrigin::Coordinator, now_ms, 0, end) {
            Ok(_) => {
                // The batch was appended at `end`, its records at consecutive offsets.
                for ((entry, key), fire_offset) in fired.iter().zip(keys).zip(end..) {
                    let _ = indexer.index_mut().fired(entry);
                    report.lateness_ms.push(now_ms - entry.due_ms);
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

/// Bytes of records one fire batch may hold: `max.message.bytes` less the batch header.
fn batch_budget(log: &Log) -> usize {
    let max = usize::try_from(log.config().max_message_bytes).unwrap_or(usize::MAX);
    max.saturating_sub(kairos_storage::batch::BATCH_HEADER_BYTES)
        .max(1)
}

/// An upper bound of a record's encoded size (varint lengths and deltas included).
fn record_size_bound(record: &RecordSpec) -> usize {
    let headers: usize = record
        .headers
        .iter()
        .map(|(k, v)| k.len() + v.as_ref().map_or(0, Vec::len) + 10)
        .sum();
    record.key.as_ref().map_or(0, Vec::len)
        + record.value.as_ref().map_or(0, Vec::len)
        + headers
        + 32
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
