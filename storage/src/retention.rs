//! Deleting whole segments: by `retention.ms`, by `retention.bytes` (both only below the log's
//! clean limit), and below the log start offset (DeleteRecords, which is explicit and
//! unbounded). The active segment is only deleted by rolling first, when every
//! segment has expired, as Kafka does.
//!
//! Readers that copied a segment's file handle keep reading it after the unlink, so files are
//! removed at once rather than after Kafka's `file.delete.delay.ms`.

use crate::error::{Error, Result};
use crate::fs::FileSystem;
use crate::log::{Log, LogInner};
use crate::segment::LogSegment;

/// Applies the retention policies of the log's config. Returns the number of deleted segments.
pub(crate) fn enforce(log: &Log, inner: &mut LogInner, now_ms: i64) -> Result<usize> {
    let mut deleted = 0;
    if inner.config.cleanup_policy.deletes() {
        let retention_ms = inner.config.retention_ms;
        deleted += delete_while(log, inner, |segment| {
            retention_ms >= 0
                && segment.max_timestamp >= 0
                && now_ms.saturating_sub(segment.max_timestamp) > retention_ms
        })?;
        let retention_bytes = inner.config.retention_bytes;
        if retention_bytes >= 0 {
            let total: i64 = inner.segments.values().map(|s| i64::from(s.size())).sum();
            let mut excess = total - retention_bytes;
            deleted += delete_while(log, inner, |segment| {
                if excess >= segment.size {
                    excess -= segment.size;
                    true
                } else {
                    false
                }
            })?;
        }
    }
    deleted += delete_below_log_start(log, inner)?;
    Ok(deleted)
}

/// What a deletion predicate sees of a segment.
struct Candidate {
    size: i64,
    max_timestamp: i64,
}

/// Deletes the oldest segments while `predicate` holds (and the segment is not empty). If it
/// holds for the active segment too, a new empty segment is rolled first so the log keeps one.
fn delete_while(
    log: &Log,
    inner: &mut LogInner,
    mut predicate: impl FnMut(&Candidate) -> bool,
) -> Result<usize> {
    let mut doomed = Vec::new();
    let count = inner.segments.len();
    let bases: Vec<i64> = inner.segments.keys().copied().collect();
    let clean_limit = log.clean_limit();
    for (i, segment) in inner.segments.values().enumerate() {
        let candidate = Candidate {
            size: i64::from(segment.size()),
            max_timestamp: segment.max_timestamp().timestamp,
        };
        // A segment whose records reach the clean limit stays (see `Log::clean_limit`): its
        // owner has not yet recorded elsewhere what those records mean.
        let upper = bases.get(i + 1).copied().unwrap_or(inner.next_offset);
        if segment.size() == 0 || upper > clean_limit || !predicate(&candidate) {
            break;
        }
        doomed.push((segment.base_offset(), i + 1 == count));
    }
    if doomed.last().is_some_and(|&(_, active)| active) {
        let at = inner.next_offset;
        log.roll_locked(inner, at)?;
    }
    if !doomed.is_empty() {
        log.sync_dir_if_dirty(inner)?;
    }
    let n = doomed.len();
    for (base, _) in doomed {
        if let Some(segment) = inner.segments.remove(&base) {
            delete_segment_files(log.fs(), &segment)?;
        }
    }
    advance_log_start(log, inner);
    Ok(n)
}

/// Deletes segments whose every offset is below the log start offset.
pub(crate) fn delete_below_log_start(log: &Log, inner: &mut LogInner) -> Result<usize> {
    let start = inner.log_start_offset;
    let bases: Vec<i64> = inner.segments.keys().copied().collect();
    let mut n = 0;
    for pair in bases.windows(2) {
        let &[base, next_base] = pair else { break };
        if next_base > start {
            break;
        }
        log.sync_dir_if_dirty(inner)?;
        if let Some(segment) = inner.segments.remove(&base) {
            delete_segment_files(log.fs(), &segment)?;
            n += 1;
        }
    }
    // The active segment alone can also lie wholly below the start (DeleteRecords up to the
    // log end offset): replace it with an empty one at the start.
    let active_below = inner
        .segments
        .values()
        .next_back()
        .is_some_and(|s| s.size() > 0 && s.next_offset() <= start && inner.segments.len() == 1);
    if active_below {
        let at = inner.next_offset;
        log.roll_locked(inner, at)?;
        log.sync_dir_if_dirty(inner)?;
        if let Some(segment) = inner.segments.pop_first().map(|(_, s)| s) {
            delete_segment_files(log.fs(), &segment)?;
            n += 1;
        }
    }
    advance_log_start(log, inner);
    Ok(n)
}

fn advance_log_start(log: &Log, inner: &mut LogInner) {
    if let Some(&first) = inner.segments.keys().next() {
        inner.log_start_offset = inner.log_start_offset.max(first);
    }
    log.set_log_start_offset(inner.log_start_offset);
}

/// Unlinks a segment's files. Missing index files are not an error.
pub(crate) fn delete_segment_files(fs: &dyn FileSystem, segment: &LogSegment) -> Result<()> {
    for path in segment.file_paths() {
        match fs.remove_file(&path) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(Error::io("delete segment", &path, e)),
        }
    }
    Ok(())
}
