//! `LogLoader`: opening a partition directory, with recovery.
//!
//! 1. Leftovers of interrupted operations (`.deleted`, `.tmp`, `.cleaned`) are removed, and a
//!    cleaner swap that reached its commit point (`.log.swap`) is completed.
//! 2. Segments that may hold unflushed data (from the one holding the recovery point on, or all
//!    of them after an unclean shutdown without checkpoint) are scanned batch by batch. The
//!    scan stops at the first batch that is short, has a bad magic or a bad CRC, goes
//!    backwards in offsets, or has offsets outside its segment (below its base, at or past the
//!    next segment's base); a zero-filled tail ends the same way. The segment is truncated
//!    there, later segments are deleted (they would leave a gap), and the indexes are rebuilt.
//! 3. Other segments keep their indexes if they pass a sanity check, and are rebuilt if not; a
//!    tail that does not scan or leaves the segment's offsets is recovered as in step 2.
//! 4. Producer state comes from the newest snapshot plus a header scan of the log after it.
//! 5. After an unclean open, recovered segments are fsynced, so the recovery point can be the
//!    log end offset.

use std::collections::{BTreeMap, HashSet};
use std::path::Path;
use std::sync::Arc;

use crate::batch::RecordBatchHeader;
use crate::config::LogConfig;
use crate::error::{Error, Result};
use crate::file_names::{self, DELETED_SUFFIX, LOG_SUFFIX, TMP_SUFFIX};
use crate::file_records::{BatchReader, ScanStop};
use crate::fs::FileSystem;
use crate::log::{LoadParams, Log, LogInner};
use crate::producer_state::ProducerStateManager;
use crate::segment::LogSegment;

/// Opens the log in `dir`; see the module docs.
pub(crate) fn load(
    fs: Arc<dyn FileSystem>,
    dir: &Path,
    config: LogConfig,
    params: LoadParams,
    now_ms: i64,
) -> Result<Log> {
    let io = |op, e| Error::io(op, dir, e);
    fs.create_dir_all(dir)
        .map_err(|e| io("create log dir", e))?;
    let names = fs.list_dir(dir).map_err(|e| io("list log dir", e))?;
    let swapped = crate::cleaner::swap::complete_swaps(fs.as_ref(), dir, &names)?;
    let names = if swapped.is_empty() {
        names
    } else {
        fs.list_dir(dir).map_err(|e| io("list log dir", e))?
    };
    let mut bases = Vec::new();
    for name in &names {
        if name.ends_with(DELETED_SUFFIX) || name.ends_with(TMP_SUFFIX) {
            let path = dir.join(name);
            fs.remove_file(&path)
                .map_err(|e| Error::io("remove leftover", &path, e))?;
        } else if let Some((base, LOG_SUFFIX)) = file_names::parse(name) {
            bases.push(base);
        }
    }
    bases.sort_unstable();
    let (segments, recovered) = load_segments(fs.as_ref(), dir, &config, params, &bases, &swapped)?;
    let mut inner = LogInner {
        config,
        segments,
        producers: ProducerStateManager::default(),
        log_start_offset: 0,
        next_offset: 0,
        dir_dirty: false,
        last_flush_ms: now_ms,
    };
    if inner.segments.is_empty() {
        let base = params.log_start_offset.max(0);
        let segment = LogSegment::create(fs.as_ref(), dir, base, &inner.config)?;
        let _ = inner.segments.insert(base, segment);
        inner.dir_dirty = true;
    }
    let first = inner.segments.keys().next().copied().unwrap_or(0);
    inner.next_offset = inner
        .segments
        .values()
        .next_back()
        .map_or(first, LogSegment::next_offset);
    inner.log_start_offset = params.log_start_offset.max(first).min(inner.next_offset);
    rebuild_producer_state(fs.as_ref(), dir, &mut inner)?;
    if recovered {
        sync_all(fs.as_ref(), dir, &inner)?;
        inner.dir_dirty = false;
    }
    let recovery_point = if params.clean_shutdown || recovered {
        inner.next_offset
    } else {
        params.recovery_point.min(inner.next_offset)
    };
    Ok(Log::from_loaded(
        fs,
        dir.to_path_buf(),
        inner,
        recovery_point,
    ))
}

/// Opens every segment, recovering those that may hold unflushed data. Returns the segments
/// and whether any recovery ran.
fn load_segments(
    fs: &dyn FileSystem,
    dir: &Path,
    config: &LogConfig,
    params: LoadParams,
    bases: &[i64],
    swapped: &HashSet<i64>,
) -> Result<(BTreeMap<i64, LogSegment>, bool)> {
    let mut segments = BTreeMap::new();
    let mut recovered = false;
    for (i, &base) in bases.iter().enumerate() {
        let next_base = bases.get(i + 1).copied();
        let last = next_base.is_none();
        let mut segment = LogSegment::open(fs, dir, base, config, last)?;
        let needs_recovery =
            !params.clean_shutdown && next_base.is_none_or(|n| n > params.recovery_point);
        // Batches must stay below the next segment's base offset, or the segments overlap.
        let end_offset = next_base.unwrap_or(i64::MAX);
        let truncated = if swapped.contains(&base) {
            // Swapped in by the cleaner: fsynced and complete, but its indexes are gone. The
            // cleaner keeps each group's last batch, so it still ends where the next segment
            // starts and the gap rule below holds for it too.
            segment.recover_below(config, end_offset)?
        } else if needs_recovery {
            recovered = true;
            segment.recover_below(config, end_offset)?
        } else {
            segment.load_tail(config, end_offset)?
        };
        // A segment that ends before the next one starts lost its unsynced tail in a crash that
        // kept the next segment's directory entry. This also happens below the checkpointed
        // recovery point, which a truncation lowers only in memory: the data appended after
        // the truncation was never synced. Keeping the next segments would leave a gap, so
        // they go as after a truncation.
        let ends_early = next_base.is_some_and(|next| segment.next_offset() < next);
        if (truncated > 0 || ends_early) && !last {
            tracing::warn!(
                ?dir,
                base,
                "segment truncated in recovery; deleting later segments"
            );
            recovered = true;
            segment.reactivate()?;
            let _ = segments.insert(base, segment);
            for &later in bases.get(i + 1..).unwrap_or_default() {
                let doomed = LogSegment::open(fs, dir, later, config, false)?;
                crate::retention::delete_segment_files(fs, &doomed)?;
            }
            return Ok((segments, recovered));
        }
        if !last {
            // A rebuild (above, or inside `load_tail`) leaves the indexes at their full
            // preallocated size. An inactive segment's indexes must be trimmed, as at a roll:
            // the next open takes the entry count from the file length, so zero-filled slack
            // would fail the sanity check and force a rebuild on every restart.
            segment.on_become_inactive()?;
        }
        let _ = segments.insert(base, segment);
    }
    Ok((segments, recovered))
}

fn sync_all(fs: &dyn FileSystem, dir: &Path, inner: &LogInner) -> Result<()> {
    for segment in inner.segments.values() {
        segment
            .file()
            .sync_data()
            .map_err(|e| Error::io("fsync", segment.path(), e))?;
    }
    fs.sync_dir(dir).map_err(|e| Error::io("fsync dir", dir, e))
}

/// Loads the newest usable snapshot and replays batch headers after it.
pub(crate) fn rebuild_producer_state(
    fs: &dyn FileSystem,
    dir: &Path,
    inner: &mut LogInner,
) -> Result<()> {
    let mut from = inner.log_start_offset;
    for (offset, path) in crate::snapshot::list(fs, dir)?.into_iter().rev() {
        if offset > inner.next_offset {
            // Written before a truncation: describes offsets that are gone.
            let _ = fs.remove_file(&path);
            continue;
        }
        match crate::snapshot::read(fs, &path, &mut inner.producers) {
            Ok(()) => {
                from = offset;
                break;
            }
            Err(error) => {
                tracing::warn!(?path, %error, "ignoring unreadable producer snapshot");
                inner.producers.clear();
            }
        }
    }
    replay_producer_state(inner, from)
}

/// Replays batch headers from `from` into the producer state, and rebuilds the transaction
/// indexes' entries from `from` on. Control batches are the only bodies read.
pub(crate) fn replay_producer_state(inner: &mut LogInner, from: i64) -> Result<()> {
    for segment in inner.segments.values_mut() {
        segment.truncate_txn_index(from)?;
    }
    let bases: Vec<i64> = inner.segments.keys().copied().collect();
    let mut control = Vec::new();
    for base in bases {
        let Some(segment) = inner.segments.get(&base) else {
            continue;
        };
        if segment.next_offset() <= from {
            continue;
        }
        let snapshot = segment.snapshot(from);
        let path = segment.path().to_path_buf();
        let mut reader = BatchReader::new(
            snapshot.file.clone(),
            snapshot.start_position,
            snapshot.size,
        );
        loop {
            let (info, header) = match reader.next_header() {
                Ok(found) => found,
                Err(ScanStop::End | ScanStop::Invalid(..)) => break,
                Err(ScanStop::Io(e)) => return Err(Error::io("scan", &path, e)),
            };
            if info.last_offset < from {
                continue;
            }
            let header = RecordBatchHeader::header_only(&header);
            let marker = if header.is_control() {
                control.resize(info.total_size as usize, 0);
                snapshot
                    .file
                    .read_exact_at(&mut control, u64::from(info.position))
                    .map_err(|e| Error::io("scan", &path, e))?;
                RecordBatchHeader::parse(&control)
                    .ok()
                    .and_then(|b| crate::control::parse_marker(&b))
            } else {
                None
            };
            let done = inner
                .producers
                .update(&header, marker)
                .filter(|d| d.aborted);
            if let Some(entry) = done.map(|d| inner.producers.aborted_entry(&d))
                && let Some(segment) = inner.segments.get_mut(&base)
            {
                segment.append_aborted_txn(entry)?;
            }
        }
    }
    Ok(())
}
