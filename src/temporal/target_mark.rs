//! Target marks (rule 4 of the due service): the target's log end written durably before a
//! step appends fires to another topic, and the restoring of those fires at load.

use std::path::Path;

use kairos_storage::Log;
use kairos_storage::batch::Batches;

use super::config::TemporalConfig;
use super::fire::{HEADER_DUE_AT, HEADER_DUE_FIELD, HEADER_SOURCE_OFFSET, HEADER_SOURCE_TOPIC};
use super::indexer::PartitionIndexer;
use super::service::write_file_atomically;
use kairos_storage::record::RecordBytes;

/// Reads a target mark: the target's log end before a step's fires were appended.
pub(super) fn read_mark(path: &Path) -> Option<i64> {
    let text = std::fs::read_to_string(path).ok()?;
    text.lines().next()?.trim().parse().ok()
}

/// Writes a target mark durably (the target's name follows, for whoever reads the file).
pub(super) fn write_mark(path: &Path, offset: i64, target: &str) -> std::io::Result<()> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    write_file_atomically(path, format!("{offset}\n{target}\n").as_bytes())
}

/// Removes a target mark durably.
pub(super) fn remove_mark(path: &Path) -> std::io::Result<()> {
    match std::fs::remove_file(path) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(e),
    }
    match path.parent() {
        Some(dir) => std::fs::File::open(dir)?.sync_all(),
        None => Ok(()),
    }
}

/// Rule 4 at load: the fires of `source_topic`'s partition found in its target partition from
/// `mark` on are restored into `indexer` (queued as changes when they are ones), before the
/// source log is replayed.
pub(super) fn restore_target_fires(
    indexer: &mut PartitionIndexer,
    config: &TemporalConfig,
    source_topic: &str,
    target: &Log,
    mark: i64,
) -> kairos_storage::Result<()> {
    let end = target.log_end_offset();
    let mut offset = mark.max(target.log_start_offset());
    while offset < end {
        let data = target.read(offset, 1 << 20, Some(end))?;
        let mut advanced = false;
        for (_, batch) in Batches::new(&data.records).map_while(Result::ok) {
            let from = offset;
            offset = offset.max(batch.last_offset() + 1);
            advanced = true;
            if batch.is_control() {
                continue;
            }
            let Ok(records) = RecordBytes::of(&batch) else {
                continue;
            };
            for record in records.records().map_while(Result::ok) {
                let at = batch.base_offset() + i64::from(record.offset_delta);
                let Some(key) = record.key.filter(|_| at >= from) else {
                    continue;
                };
                restore_target_fire(indexer, config, source_topic, &record, key, at);
            }
        }
        if !advanced {
            break;
        }
    }
    Ok(())
}

/// One record of [`restore_target_fires`]: restored if it is a fire of `source_topic`.
pub(super) fn restore_target_fire(
    indexer: &mut PartitionIndexer,
    config: &TemporalConfig,
    source_topic: &str,
    record: &kairos_storage::record::Record<'_>,
    key: &[u8],
    at: i64,
) {
    let (mut topic, mut field, mut due, mut source) = (None, None, None, None);
    for (name, value) in record.headers() {
        match name {
            n if n == HEADER_SOURCE_TOPIC.as_bytes() => topic = value,
            n if n == HEADER_DUE_FIELD.as_bytes() => field = value,
            n if n == HEADER_DUE_AT.as_bytes() => due = value,
            n if n == HEADER_SOURCE_OFFSET.as_bytes() => source = value,
            _ => {}
        }
    }
    if topic != Some(source_topic.as_bytes()) {
        return;
    }
    let decimal =
        |v: Option<&[u8]>| v.and_then(|v| std::str::from_utf8(v).ok()?.parse::<i64>().ok());
    let Some(index) = field.and_then(|f| {
        config
            .fields
            .iter()
            .position(|s| s.as_str().as_bytes() == f)
    }) else {
        return;
    };
    let (Some(due_ms), Some(source_offset)) = (decimal(due), decimal(source)) else {
        return;
    };
    indexer.restore_fire(
        key,
        u8::try_from(index).unwrap_or(u8::MAX),
        due_ms,
        source_offset,
        at,
    );
}
