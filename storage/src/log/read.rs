//! `Log::read`: whole stored batches from the one holding an offset (Kafka's `LocalLog.read`).

use bytes::Bytes;

use super::{FetchDataInfo, Log, LogInner};
use crate::batch::Batches;
use crate::error::{Error, Result};
use crate::segment::{SegmentRead, SegmentSnapshot};

impl Log {
    /// Reads whole batches starting with the one that holds `offset`, up to `max_bytes` but
    /// always at least one batch (KIP-74), and only batches starting below `max_offset`
    /// (default: the high watermark). `offset == log_end_offset` gives an empty answer.
    ///
    /// A read stays in one segment, except when all it finds there are batches without a
    /// record: the emptied last batch the cleaner keeps at the end of a segment, or a
    /// producer's last batch. Those are skipped, as a compaction gap is, and the read goes on
    /// from the next batch, until it finds a record; only if none follows (below `max_offset`)
    /// is the last empty batch the answer, so that the reader still moves past it. Clients
    /// take an answer without a record for a fetch size too small for the next record:
    /// librdkafka doubles its fetch size and, after enough of them, fails with
    /// MSG_SIZE_TOO_LARGE.
    ///
    /// # Errors
    /// `OffsetOutOfRange` outside `[log_start_offset, log_end_offset]`; I/O errors.
    pub fn read(
        &self,
        offset: i64,
        max_bytes: usize,
        max_offset: Option<i64>,
    ) -> Result<FetchDataInfo> {
        // `from` is where the next read starts and `cursor` the offset whose segment it reads;
        // `skipped` the last record-less answer, given if nothing with a record follows.
        let (mut from, mut cursor) = (offset, offset);
        let mut skipped = Bytes::new();
        loop {
            let (snapshot, info) = match self.locate(from, cursor) {
                Ok(found) => found,
                // Retention moved the log start past the skipped batches meanwhile.
                Err(_) if !skipped.is_empty() => return Ok(self.info(skipped)),
                Err(error) => return Err(error),
            };
            let Some(snapshot) = snapshot else {
                return Ok(FetchDataInfo {
                    records: skipped,
                    ..info
                });
            };
            let limit = max_offset
                .unwrap_or(info.high_watermark)
                .min(info.high_watermark);
            match snapshot.read(from, max_bytes, limit, true)? {
                SegmentRead::Found(records) => match last_offset_if_record_less(&records) {
                    Some(last) => {
                        (from, cursor) = (last + 1, last + 1);
                        skipped = records;
                    }
                    None if records.is_empty() => {
                        return Ok(FetchDataInfo {
                            records: skipped,
                            ..info
                        });
                    }
                    None => return Ok(FetchDataInfo { records, ..info }),
                },
                SegmentRead::NotHere => {
                    // The wanted offset is past this segment's batches (compaction can leave
                    // gaps): continue at the next segment.
                    let next = self
                        .inner
                        .lock()
                        .segments
                        .range(snapshot.base_offset + 1..)
                        .next()
                        .map(|(&base, _)| base);
                    match next {
                        Some(base) => cursor = base.max(from),
                        None => {
                            return Ok(FetchDataInfo {
                                records: skipped,
                                ..info
                            });
                        }
                    }
                }
            }
        }
    }

    /// The watermarks, and a snapshot of the segment that holds `cursor` (the next one after a
    /// gap), unless `cursor` is at the log end. `from` is checked against the log's range.
    fn locate(&self, from: i64, cursor: i64) -> Result<(Option<SegmentSnapshot>, FetchDataInfo)> {
        let inner = self.inner.lock();
        if from < inner.log_start_offset || from > inner.next_offset {
            return Err(Error::OffsetOutOfRange {
                requested: from,
                log_start_offset: inner.log_start_offset,
                log_end_offset: inner.next_offset,
            });
        }
        let info = fetch_info(&inner, Bytes::new());
        let segment = inner
            .segments
            .range(..=cursor)
            .next_back()
            .or_else(|| inner.segments.range(cursor..).next())
            .map(|(_, s)| s);
        Ok(match segment {
            Some(s) if cursor < inner.next_offset => (Some(s.snapshot(cursor)), info),
            _ => (None, info),
        })
    }

    /// `records` with the current watermarks.
    fn info(&self, records: Bytes) -> FetchDataInfo {
        fetch_info(&self.inner.lock(), records)
    }
}

/// `records` with the watermarks of `inner`.
fn fetch_info(inner: &LogInner, records: Bytes) -> FetchDataInfo {
    FetchDataInfo {
        records,
        log_start_offset: inner.log_start_offset,
        log_end_offset: inner.next_offset,
        high_watermark: inner.next_offset,
        last_stable_offset: inner
            .producers
            .first_unstable_offset()
            .unwrap_or(i64::MAX)
            .min(inner.next_offset),
    }
}

/// The last offset of `records` if it holds batches and none of them has a record (control
/// batches hold one); `None` otherwise.
fn last_offset_if_record_less(records: &[u8]) -> Option<i64> {
    let mut last = None;
    for batch in Batches::new(records) {
        let (_, batch) = batch.ok()?;
        if batch.records_count() != 0 || batch.is_control() {
            return None;
        }
        last = Some(batch.last_offset());
    }
    last
}
