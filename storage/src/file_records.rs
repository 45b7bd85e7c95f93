//! Buffered, position-explicit reading of the batches in a `.log` file (Kafka's `FileRecords`
//! role). Used by recovery (whole batches, CRC checked) and by reads and offset lookups (headers
//! only, bodies skipped).
#![deny(clippy::indexing_slicing, clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;

use crate::batch::{self, BATCH_HEADER_BYTES, LOG_OVERHEAD, RecordBatchHeader};
use crate::error::CorruptReason;
use crate::fs::FileHandle;

/// Read-ahead size: large enough that scanning small batches costs few system calls, small
/// enough to keep per-reader memory modest.
const CHUNK_BYTES: usize = 64 << 10;

/// The header fields of a batch that scans need.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct BatchInfo {
    pub position: u32,
    pub total_size: u32,
    pub base_offset: i64,
    pub last_offset: i64,
    pub max_timestamp: i64,
}

/// Why a scan stopped.
#[derive(Debug)]
pub(crate) enum ScanStop {
    /// Reached `end` exactly.
    End,
    /// The bytes at this position do not form a valid batch.
    Invalid(u32, CorruptReason),
    /// The file could not be read.
    Io(std::io::Error),
}

/// Reads batches sequentially from `position` up to `end`.
#[derive(Debug)]
pub(crate) struct BatchReader {
    file: Arc<dyn FileHandle>,
    position: u32,
    end: u32,
    buf: Vec<u8>,
    /// File position of `buf[0]`.
    buf_start: u32,
}

impl BatchReader {
    pub(crate) fn new(file: Arc<dyn FileHandle>, position: u32, end: u32) -> Self {
        Self {
            file,
            position,
            end,
            buf: Vec::new(),
            buf_start: position,
        }
    }

    /// Makes `[position, position + len)` available in `buf`; returns false if the file ends
    /// first.
    fn fill(&mut self, len: usize) -> Result<bool, std::io::Error> {
        let have_from = self.position.saturating_sub(self.buf_start) as usize;
        if self.position >= self.buf_start && have_from + len <= self.buf.len() {
            return Ok(true);
        }
        let available = (self.end - self.position) as usize;
        if len > available {
            return Ok(false);
        }
        let want = len.max(CHUNK_BYTES).min(available);
        self.buf.resize(want, 0);
        self.file
            .read_exact_at(&mut self.buf, u64::from(self.position))?;
        self.buf_start = self.position;
        Ok(true)
    }

    fn window(&self, len: usize) -> &[u8] {
        let from = (self.position - self.buf_start) as usize;
        self.buf.get(from..from + len).unwrap_or_default()
    }

    /// The next batch's header fields, validating framing but not the CRC; the body is skipped.
    pub(crate) fn next_info(&mut self) -> Result<BatchInfo, ScanStop> {
        let (info, _) = self.advance(false)?;
        Ok(info)
    }

    /// The next batch's info and fixed header bytes, body skipped.
    pub(crate) fn next_header(
        &mut self,
    ) -> Result<(BatchInfo, [u8; BATCH_HEADER_BYTES]), ScanStop> {
        let (info, ()) = self.advance(false)?;
        let from = (info.position - self.buf_start) as usize;
        let mut header = [0u8; BATCH_HEADER_BYTES];
        if let Some(src) = self.buf.get(from..from + BATCH_HEADER_BYTES) {
            header.copy_from_slice(src);
        }
        Ok((info, header))
    }

    /// The next whole batch, CRC checked. Returns its info and bytes.
    pub(crate) fn next_batch(&mut self) -> Result<(BatchInfo, &[u8]), ScanStop> {
        let (info, _) = self.advance(true)?;
        let from = (info.position - self.buf_start) as usize;
        let bytes = self
            .buf
            .get(from..from + info.total_size as usize)
            .unwrap_or_default();
        Ok((info, bytes))
    }

    fn advance(&mut self, whole: bool) -> Result<(BatchInfo, ()), ScanStop> {
        if self.position >= self.end {
            return Err(ScanStop::End);
        }
        let at = self.position;
        let invalid = |reason| ScanStop::Invalid(at, reason);
        if !self.fill(LOG_OVERHEAD).map_err(ScanStop::Io)? {
            return Err(invalid(CorruptReason::TruncatedBatch));
        }
        let total = batch::peek_total_size(self.window(LOG_OVERHEAD))
            .filter(|&t| t >= BATCH_HEADER_BYTES)
            .ok_or(invalid(CorruptReason::TruncatedBatch))?;
        let need = if whole { total } else { BATCH_HEADER_BYTES };
        if total > (self.end - at) as usize || !self.fill(need).map_err(ScanStop::Io)? {
            return Err(invalid(CorruptReason::TruncatedBatch));
        }
        let info = {
            let bytes = self.window(need);
            let header = if whole {
                let h = RecordBatchHeader::parse(bytes).map_err(invalid)?;
                h.verify_crc().map_err(invalid)?;
                h
            } else {
                parse_prefix(bytes).map_err(invalid)?
            };
            BatchInfo {
                position: at,
                total_size: u32::try_from(total).unwrap_or(u32::MAX),
                base_offset: header.base_offset(),
                last_offset: header.last_offset(),
                max_timestamp: header.max_timestamp(),
            }
        };
        if info.last_offset < info.base_offset {
            return Err(invalid(CorruptReason::TruncatedBatch));
        }
        self.position = at + info.total_size;
        Ok((info, ()))
    }
}

/// Parses just the fixed header from its first [`BATCH_HEADER_BYTES`] bytes, checking magic.
fn parse_prefix(bytes: &[u8]) -> Result<RecordBatchHeader<'_>, CorruptReason> {
    // RecordBatchHeader::parse wants the whole batch; the fixed-header getters only touch the
    // first 61 bytes, so a header-only view is enough once the magic is checked.
    let magic = bytes.get(16).map(|&b| i8::from_be_bytes([b]));
    match magic {
        Some(batch::MAGIC_V2) => Ok(RecordBatchHeader::header_only(bytes)),
        Some(other) => Err(CorruptReason::BadMagic(other)),
        None => Err(CorruptReason::TruncatedBatch),
    }
}
