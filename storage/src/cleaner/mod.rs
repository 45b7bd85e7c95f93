//! `LogCleaner`: log compaction (Kafka's `LogCleaner`), keeping the latest record per key.
//!
//! A log has a **clean** section (already compacted, below its cleaner checkpoint, the *first
//! dirty offset*), a **dirty** section after it, and an **uncleanable** tail that is never
//! touched: the active segment, anything at or past the last stable offset, anything not yet
//! fsynced (recovery trusts a crash-free prefix to end at segment boundaries, see
//! `loader.rs`), anything at or past the log's clean limit ([`Log::clean_limit`], set by an
//! owner whose state elsewhere must catch up with the records first), and segments newer than
//! `min.compaction.lag.ms`. Only whole segments are rewritten.
//!
//! One pass:
//! 1. Scan the dirty section into an [`OffsetMap`] (key → latest offset), skipping control
//!    batches and aborted transactions. If the map fills, the mapped range ends at the first
//!    record whose key did not fit, which may lie inside a segment or even inside a batch: that
//!    offset becomes the new first dirty offset and the next pass maps from there (Kafka's
//!    multi-pass cleaning). Memory is bounded, not the log, and a pass always makes progress,
//!    however many keys one segment holds.
//! 2. Rewrite every segment that starts below the end of the mapped range (the clean section
//!    and the mapped dirty one), in groups that fit `segment.bytes`, dropping records
//!    that a later offset of the same key supersedes, records of aborted transactions,
//!    tombstones older than `delete.retention.ms`, and transaction markers older than that
//!    whose transaction kept no data. A producer's last batch is kept (empty if need be).
//!    Records at or past the end of the mapped range (in the segment where the map filled) are
//!    kept as they are, tombstones included: this pass has not removed the older versions they
//!    supersede.
//! 3. Swap each group in crash-safely (see [`swap`]).
//!
//! Offsets never change; reads see gaps where records were removed.

mod offset_map;
mod rewrite;
pub(crate) mod swap;

use std::collections::{HashMap, HashSet};
use std::ops::ControlFlow;
use std::sync::Arc;

pub use offset_map::{MapFull, OffsetMap};

use crate::batch::RecordBatchHeader;
use crate::control::{self, ControlRecordType};
use crate::error::{Error, Result};
use crate::file_records::{BatchReader, ScanStop};
use crate::fs::FileHandle;
use crate::index::txn::AbortedTxn;
use crate::log::Log;
use rewrite::Filtered;

/// What one pass over a log did.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct CleanerStats {
    /// Bytes read (map building and rewriting).
    pub bytes_read: u64,
    /// Bytes written to cleaned segments.
    pub bytes_written: u64,
    /// Segments replaced.
    pub segments_replaced: usize,
    /// Dirty ratio before the pass.
    pub dirty_ratio: f64,
    /// The new first dirty offset (the log's cleaner checkpoint): where the next pass starts
    /// mapping. Inside a segment when the offset map filled.
    pub first_dirty_offset: i64,
}

/// How dirty a compacted log is.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LogToClean {
    /// First dirty offset, from the cleaner checkpoint.
    pub first_dirty_offset: i64,
    /// Nothing at or past this is cleaned.
    pub first_uncleanable_offset: i64,
    /// Bytes of cleanable segments below the first dirty offset.
    pub clean_bytes: u64,
    /// Bytes of cleanable segments at or past it.
    pub dirty_bytes: u64,
    /// Whether `max.compaction.lag.ms` forces a pass regardless of the ratio.
    pub overdue: bool,
}

impl LogToClean {
    /// `dirty / (clean + dirty)`.
    #[must_use]
    pub fn dirty_ratio(&self) -> f64 {
        let total = self.clean_bytes + self.dirty_bytes;
        if total == 0 {
            0.0
        } else {
            // Byte counts far below 2^52: the conversion is exact enough for a ratio.
            self.dirty_bytes as f64 / total as f64
        }
    }
}

/// A non-active segment as the cleaner sees it.
#[derive(Debug, Clone)]
pub(crate) struct SegmentInfo {
    pub base: i64,
    /// The next segment's base offset: the segment covers `[base, upper)`.
    pub upper: i64,
    pub size: u32,
    pub max_timestamp: i64,
    pub file: Arc<dyn FileHandle>,
}

/// The cleaner's work buffers. One per cleaner thread.
#[derive(Debug)]
pub struct LogCleaner {
    map: OffsetMap,
}

impl LogCleaner {
    /// A cleaner whose offset map uses about `dedupe_buffer_bytes`.
    #[must_use]
    pub fn new(dedupe_buffer_bytes: usize) -> Self {
        Self {
            map: OffsetMap::with_memory(dedupe_buffer_bytes),
        }
    }

    /// Cleans `log` once if it has a dirty section, staying below `durable_offset` (the
    /// recovery point as last checkpointed). Returns `None` when there is nothing to do.
    ///
    /// # Errors
    /// I/O errors; the log itself is left as it was (a partly written group is discarded).
    pub fn clean(
        &mut self,
        log: &Log,
        first_dirty_offset: i64,
        durable_offset: i64,
        now_ms: i64,
    ) -> Result<Option<CleanerStats>> {
        let (segments, to_clean) = cleanable(log, first_dirty_offset, durable_offset, now_ms);
        if to_clean.dirty_bytes == 0 {
            return Ok(None);
        }
        let mut stats = CleanerStats {
            bytes_read: 0,
            bytes_written: 0,
            segments_replaced: 0,
            dirty_ratio: to_clean.dirty_ratio(),
            first_dirty_offset: to_clean.first_dirty_offset,
        };
        let aborted =
            log.aborted_transactions(log.log_start_offset(), to_clean.first_uncleanable_offset);
        let end = self.build_map(log, &segments, &to_clean, &aborted, &mut stats)?;
        // An empty map always takes its first key, so a pass with dirty bytes maps something.
        debug_assert!(end > to_clean.first_dirty_offset, "a pass makes progress");
        if end <= to_clean.first_dirty_offset {
            return Ok(None);
        }
        let config = log.config();
        let context = PassContext {
            delete_horizon_ms: now_ms.saturating_sub(config.delete_retention_ms),
            map_end: end,
            aborted,
            producer_last_offsets: log.producer_last_offsets(),
        };
        let mut txn_state = TxnRetention::default();
        let cleanable: Vec<&SegmentInfo> = segments.iter().filter(|s| s.base < end).collect();
        for group in group_by_size(&cleanable, config.segment_bytes) {
            match self.clean_group(log, &group, &context, &mut txn_state, &mut stats)? {
                GroupOutcome::Replaced(count) => stats.segments_replaced += count,
                GroupOutcome::Unchanged => {}
                // A later group may drop a tombstone whose older values sit in this one, which
                // would bring them back; and this group's superseded records must go before the
                // range counts as clean. So the pass ends here and the next one maps the same
                // range again (only the groups already swapped are done).
                GroupOutcome::Abandoned => return Ok(Some(stats)),
            }
        }
        stats.first_dirty_offset = end;
        Ok(Some(stats))
    }

    /// Fills the map from the dirty section, starting at its first offset. Returns the end of
    /// the mapped range: every keyed record from the first dirty offset up to it is in the
    /// map. That is the upper bound of the last dirty segment, or, when the map fills, the
    /// offset of the first record whose key did not fit.
    fn build_map(
        &mut self,
        log: &Log,
        segments: &[SegmentInfo],
        to_clean: &LogToClean,
        aborted: &[AbortedTxn],
        stats: &mut CleanerStats,
    ) -> Result<i64> {
        self.map.clear();
        let first_dirty = to_clean.first_dirty_offset;
        let mut end = first_dirty;
        for segment in segments
            .iter()
            .filter(|s| s.upper > first_dirty && s.upper <= to_clean.first_uncleanable_offset)
        {
            let mut stop = None;
            scan(log, segment, |batch| {
                // Below the first dirty offset (a segment an earlier pass mapped in part) the
                // records are clean already; control and aborted batches supersede nothing.
                if batch.last_offset() < first_dirty
                    || batch.is_control()
                    || is_aborted(batch, aborted)
                {
                    return Ok(ControlFlow::Continue(()));
                }
                stop = self.map_batch(batch, first_dirty)?;
                Ok(match stop {
                    Some(_) => ControlFlow::Break(()),
                    None => ControlFlow::Continue(()),
                })
            })?;
            stats.bytes_read += u64::from(segment.size);
            if let Some(offset) = stop {
                return Ok(offset);
            }
            end = segment.upper;
        }
        Ok(end)
    }

    /// Puts the keyed records of `batch` at or after `from` into the map. Returns the offset
    /// of the first record whose key did not fit, if any; the records before it are mapped.
    fn map_batch(&mut self, batch: &RecordBatchHeader<'_>, from: i64) -> Result<Option<i64>> {
        let records = crate::record::RecordBytes::of(batch).map_err(Error::InvalidRecord)?;
        for record in records.records() {
            let record = record.map_err(Error::InvalidRecord)?;
            let offset = batch.base_offset() + i64::from(record.offset_delta);
            let Some(key) = record.key else { continue };
            if offset >= from && self.map.put(key, offset).is_err() {
                return Ok(Some(offset));
            }
        }
        Ok(None)
    }

    /// Rewrites one group of segments and swaps it in, unless nothing changed.
    fn clean_group(
        &mut self,
        log: &Log,
        group: &[&SegmentInfo],
        context: &PassContext,
        txn_state: &mut TxnRetention,
        stats: &mut CleanerStats,
    ) -> Result<GroupOutcome> {
        let Some(first) = group.first() else {
            return Ok(GroupOutcome::Unchanged);
        };
        let mut writer = swap::CleanedSegment::create(log, first.base)?;
        // Merging several segments into one is a change even if no record goes.
        let mut changed = group.len() > 1;
        // The decision on each batch is written once the next batch is seen, so that the
        // group's last batch can be kept (emptied if need be): a cleaned segment then always
        // ends at the old last offset. Offsets stay contiguous across segments, which crash
        // recovery relies on, and a swap file always states the range it replaces.
        let mut held: Option<(Vec<u8>, Filtered)> = None;
        for segment in group {
            scan(log, segment, |batch| {
                let out = self.filter(batch, context, txn_state)?;
                if let Some((bytes, decision)) = held.replace((batch.bytes().to_vec(), out)) {
                    changed |= write_decision(&mut writer, &bytes, decision)?;
                }
                Ok(ControlFlow::Continue(()))
            })?;
            stats.bytes_read += u64::from(segment.size);
        }
        if let Some((bytes, decision)) = held {
            let decision = match decision {
                Filtered::Dropped => keep_as_empty(&bytes)?,
                other => other,
            };
            changed |= write_decision(&mut writer, &bytes, decision)?;
        }
        if !changed {
            writer.discard(log);
            return Ok(GroupOutcome::Unchanged);
        }
        let upper = group.last().map_or(first.upper, |s| s.upper);
        let kept_aborted: Vec<AbortedTxn> = context
            .aborted
            .iter()
            .filter(|a| a.last_offset >= first.base && a.last_offset < upper)
            .filter(|a| !txn_state.dropped_markers.contains(&a.last_offset))
            .copied()
            .collect();
        stats.bytes_written += writer.bytes();
        let bases: Vec<(i64, u32)> = group.iter().map(|s| (s.base, s.size)).collect();
        Ok(if writer.commit(log, &kept_aborted, &bases)? {
            GroupOutcome::Replaced(group.len())
        } else {
            GroupOutcome::Abandoned
        })
    }

    fn filter(
        &self,
        batch: &RecordBatchHeader<'_>,
        context: &PassContext,
        txn_state: &mut TxnRetention,
    ) -> Result<Filtered> {
        let producer = batch.producer_id();
        let keep_empty = producer >= 0
            && context.producer_last_offsets.get(&producer) == Some(&batch.last_offset());
        if batch.is_control() {
            if batch.base_offset() >= context.map_end {
                return Ok(Filtered::Unchanged);
            }
            let marker = control::parse_marker(batch);
            // An ABORT marker's records are always removed, so only its age matters; a COMMIT
            // marker must stay while any record of its transaction does.
            let data_kept = txn_state.data_kept.remove(&producer)
                && marker.is_some_and(|m| m.kind == ControlRecordType::Commit);
            let old = batch.max_timestamp() < context.delete_horizon_ms;
            if old && !data_kept && !keep_empty {
                let _ = txn_state.dropped_markers.insert(batch.last_offset());
                return Ok(Filtered::Dropped);
            }
            return Ok(Filtered::Unchanged);
        }
        // An empty batch is left by an earlier pass as its producer's or its group's last
        // batch. It stays only while it is still its producer's last (the group's last batch
        // is kept by the caller), or empty batches would pile up with every pass.
        if batch.records_count() == 0 && !keep_empty {
            return Ok(Filtered::Dropped);
        }
        if is_aborted(batch, &context.aborted) {
            return rewrite::filter_batch(batch, keep_empty, |_, _, _| false)
                .map_err(Error::InvalidRecord);
        }
        let mut kept_any = false;
        let out = rewrite::filter_batch(batch, keep_empty, |record, offset, timestamp| {
            let keep = match record.key {
                None => true,
                Some(key) => {
                    let latest = self.map.get(key).is_none_or(|latest| latest <= offset);
                    // Past the mapped range the older versions a tombstone hides may still
                    // be in the log (nothing mapped them away), so it must stay.
                    let expired_tombstone = record.value.is_none()
                        && timestamp < context.delete_horizon_ms
                        && offset < context.map_end;
                    latest && !expired_tombstone
                }
            };
            kept_any |= keep;
            keep
        })
        .map_err(Error::InvalidRecord)?;
        if kept_any && batch.is_transactional() {
            let _ = txn_state.data_kept.insert(producer);
        }
        Ok(out)
    }
}

/// What became of one group of segments.
enum GroupOutcome {
    /// Nothing to remove: the segments stay as they are.
    Unchanged,
    /// Swapped in; this many segments were replaced.
    Replaced(usize),
    /// The segments changed while the group was rewritten; the cleaned copy was discarded.
    Abandoned,
}

/// Writes a batch's fate; returns whether it differs from the original.
fn write_decision(
    writer: &mut swap::CleanedSegment,
    original: &[u8],
    decision: Filtered,
) -> Result<bool> {
    match decision {
        Filtered::Unchanged => writer.append(original).map(|()| false),
        Filtered::Dropped => Ok(true),
        Filtered::Rewritten(bytes) => writer.append(&bytes).map(|()| true),
    }
}

/// The empty form of a batch the filter dropped (control batches are kept as they are).
fn keep_as_empty(bytes: &[u8]) -> Result<Filtered> {
    let batch = RecordBatchHeader::parse(bytes).map_err(|reason| Error::corrupt("", 0, reason))?;
    if batch.is_control() {
        return Ok(Filtered::Unchanged);
    }
    rewrite::filter_batch(&batch, true, |_, _, _| false).map_err(Error::InvalidRecord)
}

/// Inputs shared by every group of one pass.
struct PassContext {
    delete_horizon_ms: i64,
    /// End of the range the map covers: records at or past it are kept as they are.
    map_end: i64,
    aborted: Vec<AbortedTxn>,
    producer_last_offsets: HashMap<i64, i64>,
}

/// Transactions seen so far in a pass: producers whose open transaction kept records, and the
/// markers dropped (their `.txnindex` entries go too).
#[derive(Default)]
struct TxnRetention {
    data_kept: HashSet<i64>,
    dropped_markers: HashSet<i64>,
}

fn is_aborted(batch: &RecordBatchHeader<'_>, aborted: &[AbortedTxn]) -> bool {
    aborted.iter().any(|a| a.covers(batch))
}

/// Calls `visit` for every batch of `segment`, CRC-checked, until it breaks.
fn scan(
    log: &Log,
    segment: &SegmentInfo,
    mut visit: impl FnMut(&RecordBatchHeader<'_>) -> Result<ControlFlow<()>>,
) -> Result<()> {
    let mut reader = BatchReader::new(segment.file.clone(), 0, segment.size);
    loop {
        match reader.next_batch() {
            Ok((_, bytes)) => {
                let batch = RecordBatchHeader::parse(bytes)
                    .map_err(|reason| Error::corrupt(log.dir(), u64::from(segment.size), reason))?;
                if visit(&batch)?.is_break() {
                    return Ok(());
                }
            }
            Err(ScanStop::End) => return Ok(()),
            Err(ScanStop::Invalid(position, reason)) => {
                return Err(Error::corrupt(log.dir(), u64::from(position), reason));
            }
            Err(ScanStop::Io(e)) => return Err(Error::io("clean: read", log.dir(), e)),
        }
    }
}

/// Consecutive segments whose total size fits `segment.bytes` and whose offsets fit a segment.
fn group_by_size<'a>(
    segments: &[&'a SegmentInfo],
    segment_bytes: u32,
) -> Vec<Vec<&'a SegmentInfo>> {
    let mut groups: Vec<Vec<&SegmentInfo>> = Vec::new();
    let mut size = 0u64;
    for &segment in segments {
        let fits = groups.last().and_then(|g| g.first()).is_some_and(|first| {
            size + u64::from(segment.size) <= u64::from(segment_bytes)
                && segment.upper - first.base <= i64::from(i32::MAX)
        });
        if fits {
            size += u64::from(segment.size);
            if let Some(group) = groups.last_mut() {
                group.push(segment);
            }
        } else {
            size = u64::from(segment.size);
            groups.push(vec![segment]);
        }
    }
    groups
}

/// The cleanable segments of `log` and how dirty they are.
pub(crate) fn cleanable(
    log: &Log,
    first_dirty_offset: i64,
    durable_offset: i64,
    now_ms: i64,
) -> (Vec<SegmentInfo>, LogToClean) {
    let view = log.cleaner_view();
    let config = &view.config;
    let first_dirty = first_dirty_offset.max(view.log_start_offset);
    let lag_bound = view
        .segments
        .iter()
        .find(|s| {
            // As in Kafka, a lag of 0 is no bound at all: with `<` alone, a segment holding a
            // timestamp ahead of the broker's clock would hold back every later one.
            s.upper > first_dirty
                && config.min_compaction_lag_ms > 0
                && now_ms.saturating_sub(s.max_timestamp) < config.min_compaction_lag_ms
        })
        .map_or(i64::MAX, |s| s.base);
    let first_uncleanable = view
        .active_base
        .min(view.first_unstable_offset.unwrap_or(i64::MAX))
        .min(view.recovery_point.min(durable_offset))
        .min(view.clean_limit)
        .min(lag_bound);
    let mut to_clean = LogToClean {
        first_dirty_offset: first_dirty,
        first_uncleanable_offset: first_uncleanable,
        clean_bytes: 0,
        dirty_bytes: 0,
        overdue: false,
    };
    for segment in view
        .segments
        .iter()
        .filter(|s| s.upper <= first_uncleanable)
    {
        if segment.upper <= first_dirty {
            to_clean.clean_bytes += u64::from(segment.size);
        } else {
            to_clean.dirty_bytes += u64::from(segment.size);
            if now_ms.saturating_sub(segment.max_timestamp) > config.max_compaction_lag_ms {
                to_clean.overdue = true;
            }
        }
    }
    (view.segments, to_clean)
}

/// How dirty `log` is, for choosing which log to clean.
#[must_use]
pub fn log_to_clean(
    log: &Log,
    first_dirty_offset: i64,
    durable_offset: i64,
    now_ms: i64,
) -> LogToClean {
    cleanable(log, first_dirty_offset, durable_offset, now_ms).1
}
