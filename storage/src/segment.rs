//! `LogSegment`: one `.log` file with its `.index` and `.timeindex`.
//!
//! The segment is only mutated under the owning log's lock. Reads take a [`SegmentSnapshot`]
//! under the lock (file handle, committed size, index hint) and do their I/O after releasing it.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use bytes::{Bytes, BytesMut};

use crate::batch::{Batches, RecordBatchHeader};
use crate::config::LogConfig;
use crate::error::{Error, Result};
use crate::file_names::{self, INDEX_SUFFIX, LOG_SUFFIX, TIME_INDEX_SUFFIX, TXN_INDEX_SUFFIX};
use crate::file_records::{BatchInfo, BatchReader, ScanStop};
use crate::fs::{FileHandle, FileSystem};
use crate::index::offset::OffsetIndex;
use crate::index::time::{TimeIndex, TimestampOffset};
use crate::index::txn::{AbortedTxn, TransactionIndex};

/// One segment of a partition log.
#[derive(Debug)]
pub(crate) struct LogSegment {
    base_offset: i64,
    log_path: PathBuf,
    log: Arc<dyn FileHandle>,
    /// Bytes of valid batches. Reads never go past it, so a torn write beyond it is invisible.
    size: u32,
    offset_index: OffsetIndex,
    time_index: TimeIndex,
    txn_index: TransactionIndex,
    bytes_since_last_index_entry: u32,
    max_timestamp_so_far: i64,
    offset_of_max_timestamp_so_far: i64,
    /// Max timestamp of the first batch: `segment.ms` counts from it, as in Kafka.
    rolling_based_timestamp: Option<i64>,
    /// One past the last offset in the segment (the base offset when empty).
    next_offset: i64,
}

/// What a reader needs from a segment, captured under the log lock.
#[derive(Debug, Clone)]
pub(crate) struct SegmentSnapshot {
    pub base_offset: i64,
    pub file: Arc<dyn FileHandle>,
    pub size: u32,
    /// Position from which scanning for the wanted offset may start.
    pub start_position: u32,
    pub path: PathBuf,
}

impl LogSegment {
    /// Creates an empty segment at `base_offset`.
    pub(crate) fn create(
        fs: &dyn FileSystem,
        dir: &Path,
        base_offset: i64,
        config: &LogConfig,
    ) -> Result<Self> {
        let log_path = file_names::file_path(dir, base_offset, LOG_SUFFIX);
        let log = fs
            .open(&log_path, true)
            .map_err(|e| Error::io("create segment", &log_path, e))?;
        log.set_len(0)
            .map_err(|e| Error::io("create segment", &log_path, e))?;
        let mut segment = Self::open_files(fs, dir, base_offset, log, log_path, config, true)?;
        segment.offset_index.file().reset()?;
        segment.time_index.file().reset()?;
        Ok(segment)
    }

    /// Opens an existing segment. Its next offset and max timestamp are not known until
    /// [`LogSegment::recover`] or [`LogSegment::load_tail`] runs.
    pub(crate) fn open(
        fs: &dyn FileSystem,
        dir: &Path,
        base_offset: i64,
        config: &LogConfig,
        writable: bool,
    ) -> Result<Self> {
        let log_path = file_names::file_path(dir, base_offset, LOG_SUFFIX);
        let log = fs
            .open(&log_path, false)
            .map_err(|e| Error::io("open segment", &log_path, e))?;
        Self::open_files(fs, dir, base_offset, log, log_path, config, writable)
    }

    fn open_files(
        fs: &dyn FileSystem,
        dir: &Path,
        base_offset: i64,
        log: Arc<dyn FileHandle>,
        log_path: PathBuf,
        config: &LogConfig,
        writable: bool,
    ) -> Result<Self> {
        let len = log
            .len()
            .map_err(|e| Error::io("stat segment", &log_path, e))?;
        let index_path = file_names::file_path(dir, base_offset, INDEX_SUFFIX);
        let time_path = file_names::file_path(dir, base_offset, TIME_INDEX_SUFFIX);
        let txn_path = file_names::file_path(dir, base_offset, TXN_INDEX_SUFFIX);
        let max = config.segment_index_bytes;
        Ok(Self {
            base_offset,
            log,
            log_path,
            size: u32::try_from(len).unwrap_or(u32::MAX),
            offset_index: OffsetIndex::open(fs, &index_path, base_offset, max, writable)?,
            time_index: TimeIndex::open(fs, &time_path, base_offset, max, writable)?,
            txn_index: TransactionIndex::open(fs, &txn_path)?,
            bytes_since_last_index_entry: 0,
            max_timestamp_so_far: -1,
            offset_of_max_timestamp_so_far: base_offset,
            rolling_based_timestamp: None,
            next_offset: base_offset,
        })
    }

    pub(crate) fn base_offset(&self) -> i64 {
        self.base_offset
    }
    pub(crate) fn size(&self) -> u32 {
        self.size
    }
    pub(crate) fn next_offset(&self) -> i64 {
        self.next_offset
    }
    pub(crate) fn file(&self) -> &Arc<dyn FileHandle> {
        &self.log
    }
    pub(crate) fn path(&self) -> &Path {
        &self.log_path
    }
    pub(crate) fn max_timestamp(&self) -> TimestampOffset {
        TimestampOffset {
            timestamp: self.max_timestamp_so_far,
            offset: self.offset_of_max_timestamp_so_far,
        }
    }

    /// Records an aborted transaction whose marker is in this segment.
    pub(crate) fn append_aborted_txn(&mut self, txn: AbortedTxn) -> Result<()> {
        self.txn_index.append(txn)
    }

    /// Drops aborted-transaction entries whose marker is at or after `offset`.
    pub(crate) fn truncate_txn_index(&mut self, offset: i64) -> Result<()> {
        self.txn_index.truncate_to(offset)
    }

    /// Aborted transactions in this segment overlapping `[start, upper)`.
    pub(crate) fn collect_aborted(
        &self,
        start: i64,
        upper: i64,
        out: &mut Vec<AbortedTxn>,
    ) -> bool {
        self.txn_index.collect(start, upper, out)
    }

    /// Whether appending `bytes` more, at `now_ms`, must go to a new segment.
    pub(crate) fn should_roll(
        &self,
        bytes: usize,
        max_offset: i64,
        config: &LogConfig,
        now_ms: i64,
    ) -> bool {
        if self.size == 0 {
            return false;
        }
        let too_big = u64::from(self.size) + bytes as u64 > u64::from(config.segment_bytes);
        let too_old = self
            .rolling_based_timestamp
            .is_some_and(|t| now_ms.saturating_sub(t) > config.segment_ms);
        let relative_overflow = max_offset - self.base_offset > i64::from(i32::MAX);
        too_big
            || too_old
            || relative_overflow
            || self.offset_index.is_full()
            || self.time_index.is_full()
    }

    /// Appends batches whose offsets are assigned. Index entries are added every
    /// `index.interval.bytes`. On error, `size` is unchanged, so the torn bytes stay invisible.
    pub(crate) fn append(&mut self, buf: &[u8], config: &LogConfig) -> Result<()> {
        self.log
            .write_all_at(buf, u64::from(self.size))
            .map_err(|e| Error::io("append", &self.log_path, e))?;
        let mut position = self.size;
        for (_, batch) in Batches::new(buf).flatten() {
            self.index_batch(&info_of(&batch, position), config);
            position += u32::try_from(batch.total_size()).unwrap_or(u32::MAX);
        }
        self.size = position;
        Ok(())
    }

    fn index_batch(&mut self, info: &BatchInfo, config: &LogConfig) {
        if self.rolling_based_timestamp.is_none() {
            self.rolling_based_timestamp = Some(info.max_timestamp);
        }
        if info.max_timestamp > self.max_timestamp_so_far {
            self.max_timestamp_so_far = info.max_timestamp;
            self.offset_of_max_timestamp_so_far = info.last_offset;
        }
        if self.bytes_since_last_index_entry > config.index_interval_bytes {
            self.offset_index.append(info.last_offset, info.position);
            self.time_index.maybe_append(
                self.max_timestamp_so_far,
                self.offset_of_max_timestamp_so_far,
            );
            self.bytes_since_last_index_entry = 0;
        }
        self.bytes_since_last_index_entry += info.total_size;
        self.next_offset = info.last_offset + 1;
    }

    /// Scans the whole segment checking every batch (framing, magic, CRC, increasing offsets),
    /// truncates at the first invalid one, and rebuilds both indexes. Returns the number of
    /// bytes truncated.
    pub(crate) fn recover(&mut self, config: &LogConfig) -> Result<u32> {
        self.recover_below(config, i64::MAX)
    }

    /// [`LogSegment::recover`] for a segment followed by one at `end_offset`: a batch that
    /// reaches it is invalid too.
    pub(crate) fn recover_below(&mut self, config: &LogConfig, end_offset: i64) -> Result<u32> {
        self.offset_index.file().reset()?;
        self.time_index.file().reset()?;
        self.reset_stats();
        let mut reader = BatchReader::new(self.log.clone(), 0, self.size);
        let valid_end = loop {
            match reader.next_batch() {
                Ok((info, _))
                    if info.base_offset < self.next_offset
                        || !self.holds_offsets_of(&info, end_offset) =>
                {
                    tracing::warn!(path = ?self.log_path, position = info.position, "batch offsets out of order or outside the segment; truncating");
                    break info.position;
                }
                Ok((info, _)) => self.index_batch(&info, config),
                Err(ScanStop::End) => break self.size,
                Err(ScanStop::Invalid(position, reason)) => {
                    tracing::warn!(path = ?self.log_path, position, ?reason, "truncating invalid tail");
                    break position;
                }
                Err(ScanStop::Io(e)) => return Err(Error::io("recover", &self.log_path, e)),
            }
        };
        let truncated = self.size - valid_end;
        if truncated > 0 {
            self.log
                .set_len(u64::from(valid_end))
                .map_err(|e| Error::io("truncate", &self.log_path, e))?;
            self.size = valid_end;
        }
        Ok(truncated)
    }

    /// Whether a batch's offsets can belong to this segment: at or after its base offset,
    /// below `end_offset` (the next segment's base offset), and within `i32::MAX` of the base
    /// offset, the range appends keep to (`should_roll`) and the relative index entries need.
    /// The base offset field is outside the CRC, so a flipped bit there passes the CRC check.
    fn holds_offsets_of(&self, info: &BatchInfo, end_offset: i64) -> bool {
        info.base_offset >= self.base_offset
            && info.last_offset < end_offset
            && info.last_offset - self.base_offset <= i64::from(i32::MAX)
    }

    fn reset_stats(&mut self) {
        self.bytes_since_last_index_entry = 0;
        self.max_timestamp_so_far = -1;
        self.offset_of_max_timestamp_so_far = self.base_offset;
        self.rolling_based_timestamp = None;
        self.next_offset = self.base_offset;
    }

    /// For a segment that needs no recovery: checks the indexes (rebuilding them if they are
    /// not sane) and finds the next offset and max timestamp by scanning from the last index
    /// entry. A tail that does not scan, or holds offsets outside the segment (`end_offset` is
    /// the next segment's base offset), falls back to [`LogSegment::recover_below`]. Returns
    /// the number of bytes that truncated.
    pub(crate) fn load_tail(&mut self, config: &LogConfig, end_offset: i64) -> Result<u32> {
        if !self.offset_index.is_sane(self.size) {
            tracing::warn!(path = ?self.log_path, "offset index failed its sanity check; rebuilding");
            return self.recover_below(config, end_offset);
        }
        let from = self.offset_index.last().map_or(0, |e| e.position);
        let mut reader = BatchReader::new(self.log.clone(), from, self.size);
        self.reset_stats();
        if let Some(last) = self.time_index.last() {
            self.max_timestamp_so_far = last.timestamp;
            self.offset_of_max_timestamp_so_far = last.offset;
        }
        let mut first = true;
        loop {
            match reader.next_info() {
                Ok(info) if !self.holds_offsets_of(&info, end_offset) => {
                    tracing::warn!(path = ?self.log_path, "segment tail has offsets outside the segment; recovering");
                    return self.recover_below(config, end_offset);
                }
                Ok(info) => {
                    if first && from == 0 {
                        self.rolling_based_timestamp = Some(info.max_timestamp);
                    }
                    first = false;
                    if info.max_timestamp > self.max_timestamp_so_far {
                        self.max_timestamp_so_far = info.max_timestamp;
                        self.offset_of_max_timestamp_so_far = info.last_offset;
                    }
                    self.next_offset = info.last_offset + 1;
                }
                Err(ScanStop::End) => break,
                Err(ScanStop::Invalid(..)) => {
                    tracing::warn!(path = ?self.log_path, "segment tail does not scan; recovering");
                    return self.recover_below(config, end_offset);
                }
                Err(ScanStop::Io(e)) => return Err(Error::io("load segment", &self.log_path, e)),
            }
        }
        if !self.time_index.is_sane(self.next_offset) {
            tracing::warn!(path = ?self.log_path, "time index failed its sanity check; rebuilding");
            return self.recover_below(config, end_offset);
        }
        if self.rolling_based_timestamp.is_none() && self.size > 0 {
            let mut reader = BatchReader::new(self.log.clone(), 0, self.size);
            self.rolling_based_timestamp = reader.next_info().ok().map(|i| i.max_timestamp);
        }
        Ok(0)
    }

    /// A reader's view for `offset`, taken under the log lock.
    pub(crate) fn snapshot(&self, offset: i64) -> SegmentSnapshot {
        SegmentSnapshot {
            base_offset: self.base_offset,
            file: self.log.clone(),
            size: self.size,
            start_position: self.offset_index.lookup(offset).position,
            path: self.log_path.clone(),
        }
    }

    /// The offset to start scanning from for the first timestamp `>= target`.
    pub(crate) fn time_lookup_offset(&self, target: i64) -> i64 {
        self.time_index.lookup(target)
    }

    /// Called when the segment stops being active: a final time index entry so the max
    /// timestamp is exact on reopen, then both indexes trimmed to their entries.
    pub(crate) fn on_become_inactive(&mut self) -> Result<()> {
        self.time_index.maybe_append(
            self.max_timestamp_so_far,
            self.offset_of_max_timestamp_so_far,
        );
        self.offset_index.file().trim()?;
        self.time_index.file().trim()
    }

    /// Makes a segment that was inactive the active one again (after a truncation removed the
    /// segments after it): its trimmed indexes get room to grow.
    pub(crate) fn reactivate(&mut self) -> Result<()> {
        self.offset_index.file().make_writable()?;
        self.time_index.file().make_writable()
    }

    /// Removes everything at and after `offset`. Returns whether anything was removed.
    pub(crate) fn truncate_to(&mut self, offset: i64, config: &LogConfig) -> Result<bool> {
        if offset >= self.next_offset {
            return Ok(false);
        }
        let start = self.offset_index.lookup(offset - 1).position;
        let mut reader = BatchReader::new(self.log.clone(), start, self.size);
        let mut cut = self.size;
        loop {
            match reader.next_info() {
                Ok(info) if info.last_offset >= offset => {
                    cut = info.position;
                    break;
                }
                Ok(_) => {}
                Err(ScanStop::Io(e)) => return Err(Error::io("truncate", &self.log_path, e)),
                Err(_) => break,
            }
        }
        self.log
            .set_len(u64::from(cut))
            .map_err(|e| Error::io("truncate", &self.log_path, e))?;
        self.size = cut;
        self.offset_index.truncate_to(offset);
        self.time_index.truncate_to(offset);
        self.txn_index.truncate_to(offset)?;
        // Recompute max timestamp and next offset from what is left.
        self.recover(config)?;
        Ok(true)
    }

    /// Paths of the segment's files, for deletion.
    pub(crate) fn file_paths(&self) -> [PathBuf; 4] {
        [
            self.log_path.clone(),
            self.offset_index_path(),
            self.time_index_path(),
            self.log_path.with_extension(&TXN_INDEX_SUFFIX[1..]),
        ]
    }

    fn offset_index_path(&self) -> PathBuf {
        self.log_path.with_extension(&INDEX_SUFFIX[1..])
    }

    fn time_index_path(&self) -> PathBuf {
        self.log_path.with_extension(&TIME_INDEX_SUFFIX[1..])
    }
}

fn info_of(batch: &RecordBatchHeader<'_>, position: u32) -> BatchInfo {
    BatchInfo {
        position,
        total_size: u32::try_from(batch.total_size()).unwrap_or(u32::MAX),
        base_offset: batch.base_offset(),
        last_offset: batch.last_offset(),
        max_timestamp: batch.max_timestamp(),
    }
}

/// What a read found in one segment.
#[derive(Debug)]
pub(crate) enum SegmentRead {
    /// Whole batches starting with the one holding the wanted offset (possibly empty when the
    /// first batch is at or past `max_offset`).
    Found(Bytes),
    /// No batch in this segment reaches the wanted offset: try the next segment.
    NotHere,
}

impl SegmentSnapshot {
    /// Reads whole batches from the batch holding `offset`, up to `max_bytes` (but always the
    /// first batch when `min_one_batch`, KIP-74), excluding batches that start at or after
    /// `max_offset`.
    pub(crate) fn read(
        &self,
        offset: i64,
        max_bytes: usize,
        max_offset: i64,
        min_one_batch: bool,
    ) -> Result<SegmentRead> {
        let io = |e| Error::io("read", &self.path, e);
        let mut reader = BatchReader::new(self.file.clone(), self.start_position, self.size);
        let first = loop {
            match reader.next_info() {
                Ok(info) if info.last_offset >= offset => break info,
                Ok(_) => {}
                Err(ScanStop::End) => return Ok(SegmentRead::NotHere),
                Err(ScanStop::Io(e)) => return Err(io(e)),
                Err(ScanStop::Invalid(position, reason)) => {
                    return Err(Error::corrupt(&self.path, u64::from(position), reason));
                }
            }
        };
        if first.base_offset >= max_offset {
            return Ok(SegmentRead::Found(Bytes::new()));
        }
        let available = (self.size - first.position) as usize;
        let mut want = max_bytes.min(available);
        if min_one_batch {
            want = want.max(first.total_size as usize);
        }
        let mut buf = BytesMut::zeroed(want);
        self.file
            .read_exact_at(&mut buf, u64::from(first.position))
            .map_err(io)?;
        let mut keep = 0;
        for (at, batch) in Batches::new(&buf).map_while(Result::ok) {
            if batch.base_offset() >= max_offset {
                break;
            }
            keep = at + batch.total_size();
        }
        buf.truncate(keep);
        Ok(SegmentRead::Found(buf.freeze()))
    }

    /// Scans for the first batch with max timestamp `>= target` from `from_offset`, and then
    /// the first record in it with timestamp `>= target`.
    pub(crate) fn find_timestamp(
        &self,
        target: i64,
        from_offset: i64,
    ) -> Result<Option<TimestampOffset>> {
        let io = |e| Error::io("read", &self.path, e);
        let mut reader = BatchReader::new(self.file.clone(), self.start_position, self.size);
        loop {
            match reader.next_info() {
                Ok(info) if info.last_offset >= from_offset && info.max_timestamp >= target => {
                    let mut buf = vec![0u8; info.total_size as usize];
                    self.file
                        .read_exact_at(&mut buf, u64::from(info.position))
                        .map_err(io)?;
                    return Ok(first_record_at_or_after(&buf, target, &self.path, info));
                }
                Ok(_) => {}
                Err(ScanStop::End | ScanStop::Invalid(..)) => return Ok(None),
                Err(ScanStop::Io(e)) => return Err(io(e)),
            }
        }
    }
}

fn first_record_at_or_after(
    buf: &[u8],
    target: i64,
    path: &Path,
    info: BatchInfo,
) -> Option<TimestampOffset> {
    let batch = RecordBatchHeader::parse(buf).ok()?;
    let fallback = TimestampOffset {
        timestamp: info.max_timestamp,
        offset: info.base_offset,
    };
    if batch.timestamp_type() == crate::batch::TimestampType::LogAppendTime {
        // Every record of a LogAppendTime batch carries the batch's max timestamp.
        return Some(fallback);
    }
    let Ok(records) = crate::record::RecordBytes::of(&batch) else {
        tracing::warn!(
            ?path,
            position = info.position,
            "records do not decode; using batch base offset"
        );
        return Some(fallback);
    };
    for record in records.records() {
        let Ok(record) = record else { break };
        let timestamp = batch.base_timestamp() + record.timestamp_delta;
        if timestamp >= target {
            return Some(TimestampOffset {
                timestamp,
                offset: batch.base_offset() + i64::from(record.offset_delta),
            });
        }
    }
    Some(fallback)
}
