//! `LogLoader`: opening a partition directory, with recovery.
//!
//! 1. Leftovers of interrupted operations (`.deleted`, `.tmp`) are removed.
//! 2. Segments that may hold unflushed data (from the one holding the recovery point on, or all
//!    of them after an unclean shutdown without checkpoint) are scanned batch by batch. The
//!    scan stops at the first batch that is short, has a bad magic or a bad CRC, or goes
//!    backwards in offsets; a zero-filled tail ends the same way. The segment is truncated
//!    there, later segments are deleted (they would leave a gap), and the indexes are rebuilt.
//! 3. Other segments keep their indexes if they pass a sanity check, and are rebuilt if not.
//! 4. Producer state comes from the newest snapshot plus a header scan of the log after it.
//! 5. After an unclean open, recovered segments are fsynced, so the recovery point can be the
//!    log end offset.

use std::collections::BTreeMap;
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
    let (segments, recovered) = load_segments(fs.as_ref(), dir, &config, params, &bases)?;
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
) -> Result<(BTreeMap<i64, LogSegment>, bool)> {
    let mut segments = BTreeMap::new();
    let mut recovered = false;
    for (i, &base) in bases.iter().enumerate() {
        let next_base = bases.get(i + 1).copied();
        let last = next_base.is_none();
        let mut segment = LogSegment::open(fs, dir, base, config, last)?;
        let needs_recovery =
            !params.clean_shutdown && next_base.is_none_or(|n| n > params.recovery_point);
        if needs_recovery {
            recovered = true;
            let truncated = segment.recover(config)?;
            if truncated > 0 && !last {
                tracing::warn!(
                    ?dir,
                    base,
                    "segment truncated in recovery; deleting later segments"
                );
                segment.reactivate()?;
                let _ = segments.insert(base, segment);
                for &later in bases.get(i + 1..).unwrap_or_default() {
                    let doomed = LogSegment::open(fs, dir, later, config, false)?;
                    crate::retention::delete_segment_files(fs, &doomed)?;
                }
                return Ok((segments, recovered));
            }
        } else {
            segment.load_tail(config)?;
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
fn rebuild_producer_state(fs: &dyn FileSystem, dir: &Path, inner: &mut LogInner) -> Result<()> {
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
    for segment in inner.segments.values() {
        if segment.next_offset() <= from {
            continue;
        }
        let snapshot = segment.snapshot(from);
        let mut reader = BatchReader::new(snapshot.file, snapshot.start_position, snapshot.size);
        loop {
            match reader.next_header() {
                Ok((info, header)) => {
                    if info.last_offset >= from {
                        let header = RecordBatchHeader::header_only(&header);
                        inner.producers.update(&header);
                    }
                }
                Err(ScanStop::End | ScanStop::Invalid(..)) => break,
                Err(ScanStop::Io(e)) => return Err(Error::io("scan", segment.path(), e)),
            }
        }
    }
    Ok(())
}
