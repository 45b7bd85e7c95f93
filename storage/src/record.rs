//! Decoding the records inside a v2 batch: the varint-framed record format, after
//! decompression. The append path never calls this for plain topics; features that need record
//! contents (timestamp lookup, compaction, the due index) do.
//!
//! Format (see `FORMAT.md`; varints are zigzag-encoded as in protobuf):
//!
//! ```text
//! Record =>
//!   length          varint   bytes after this field
//!   attributes      i8       unused, 0
//!   timestamp_delta varlong  from the batch's base_timestamp
//!   offset_delta    varint   from the batch's base_offset
//!   key             varint length (-1 = null) + bytes
//!   value           varint length (-1 = null) + bytes
//!   headers         varint count, then per header: varint key length + key, varint value length (-1 = null) + value
//! ```
#![deny(clippy::indexing_slicing, clippy::unwrap_used, clippy::expect_used)]

use std::borrow::Cow;

use crate::batch::{Compression, RecordBatchHeader};
use crate::compression;
use crate::error::InvalidRecordReason;

/// Upper bound on the decompressed size of one batch's records. Kafka bounds batches by
/// `max.message.bytes` (1 MiB by default) compressed; 64 MiB leaves room for highly compressible
/// data while refusing decompression bombs.
pub const MAX_DECOMPRESSED_BYTES: usize = 64 << 20;

/// One record, borrowing from the (decompressed) record bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Record<'a> {
    /// Offset relative to the batch's base offset.
    pub offset_delta: i32,
    /// Timestamp relative to the batch's base timestamp.
    pub timestamp_delta: i64,
    /// Key, `None` for a null key.
    pub key: Option<&'a [u8]>,
    /// Value, `None` for a tombstone.
    pub value: Option<&'a [u8]>,
    headers: &'a [u8],
    headers_count: usize,
    raw: &'a [u8],
}

impl<'a> Record<'a> {
    /// The record's encoded bytes, length prefix included: what the cleaner copies verbatim
    /// for a kept record, so offsets and timestamps are preserved exactly.
    #[must_use]
    pub fn raw(&self) -> &'a [u8] {
        self.raw
    }

    /// Iterates over the headers as `(key, value)`.
    #[must_use]
    pub fn headers(&self) -> Headers<'a> {
        Headers {
            cursor: Cursor { buf: self.headers },
            remaining: self.headers_count,
        }
    }
}

/// Iterator over a record's headers.
#[derive(Debug, Clone)]
pub struct Headers<'a> {
    cursor: Cursor<'a>,
    remaining: usize,
}

impl<'a> Iterator for Headers<'a> {
    type Item = (&'a [u8], Option<&'a [u8]>);

    fn next(&mut self) -> Option<Self::Item> {
        if self.remaining == 0 {
            return None;
        }
        self.remaining -= 1;
        let key = self.cursor.bytes().ok()??;
        let value = self.cursor.bytes().ok()?;
        Some((key, value))
    }
}

/// The decompressed record bytes of a batch; iterate them with [`RecordBytes::records`].
#[derive(Debug)]
pub struct RecordBytes<'a> {
    bytes: Cow<'a, [u8]>,
    count: usize,
}

impl<'a> RecordBytes<'a> {
    /// Decompresses (if needed) the records of `batch`.
    ///
    /// # Errors
    /// `UnknownCompression` or `MalformedRecords`.
    pub fn of(batch: &RecordBatchHeader<'a>) -> Result<Self, InvalidRecordReason> {
        let codec = batch
            .compression()
            .ok_or(InvalidRecordReason::UnknownCompression)?;
        let raw = batch.records_bytes();
        let bytes = match codec {
            Compression::None => Cow::Borrowed(raw),
            other => Cow::Owned(compression::decompress(other, raw, MAX_DECOMPRESSED_BYTES)?),
        };
        let count = usize::try_from(batch.records_count())
            .map_err(|_| InvalidRecordReason::MalformedRecords)?;
        Ok(Self { bytes, count })
    }

    /// Iterates over the records. Each item is an error if the record does not decode; after
    /// an error the iterator ends.
    #[must_use]
    pub fn records(&self) -> Records<'_> {
        Records {
            cursor: Cursor { buf: &self.bytes },
            remaining: self.count,
        }
    }
}

/// Iterator over decoded records.
#[derive(Debug)]
pub struct Records<'a> {
    cursor: Cursor<'a>,
    remaining: usize,
}

impl<'a> Iterator for Records<'a> {
    type Item = Result<Record<'a>, InvalidRecordReason>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.remaining == 0 {
            return None;
        }
        self.remaining -= 1;
        let start = self.cursor.buf;
        let record = decode_record(&mut self.cursor).map(|mut r| {
            let used = start.len() - self.cursor.buf.len();
            r.raw = start.get(..used).unwrap_or_default();
            r
        });
        if record.is_err() {
            self.remaining = 0;
        }
        Some(record)
    }
}

fn decode_record<'a>(cursor: &mut Cursor<'a>) -> Result<Record<'a>, InvalidRecordReason> {
    let bad = InvalidRecordReason::MalformedRecords;
    let length = usize::try_from(cursor.varint()?).map_err(|_| bad)?;
    let mut body = Cursor {
        buf: cursor.take(length)?,
    };
    let _attributes = body.take(1)?;
    let timestamp_delta = body.varlong()?;
    let offset_delta = i32::try_from(body.varint()?).map_err(|_| bad)?;
    let key = body.bytes()?;
    let value = body.bytes()?;
    let headers_count = usize::try_from(body.varint()?).map_err(|_| bad)?;
    let headers = body.buf;
    // Walk the headers once so that a malformed record fails here, not later.
    let mut check = Cursor { buf: headers };
    for _ in 0..headers_count {
        if check.bytes()?.is_none() {
            return Err(bad);
        }
        let _value = check.bytes()?;
    }
    Ok(Record {
        offset_delta,
        timestamp_delta,
        key,
        value,
        headers,
        headers_count,
        raw: &[],
    })
}

#[derive(Debug, Clone)]
struct Cursor<'a> {
    buf: &'a [u8],
}

impl<'a> Cursor<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], InvalidRecordReason> {
        let head = self
            .buf
            .get(..n)
            .ok_or(InvalidRecordReason::MalformedRecords)?;
        self.buf = self.buf.get(n..).unwrap_or_default();
        Ok(head)
    }

    fn varlong(&mut self) -> Result<i64, InvalidRecordReason> {
        let mut raw: u64 = 0;
        for shift in (0..64).step_by(7) {
            let byte = *self
                .take(1)?
                .first()
                .ok_or(InvalidRecordReason::MalformedRecords)?;
            raw |= u64::from(byte & 0x7f) << shift;
            if byte & 0x80 == 0 {
                // Zigzag decoding reinterprets the bits; the casts are the point.
                return Ok((raw >> 1) as i64 ^ -((raw & 1) as i64));
            }
        }
        Err(InvalidRecordReason::MalformedRecords)
    }

    fn varint(&mut self) -> Result<i64, InvalidRecordReason> {
        let value = self.varlong()?;
        if i32::try_from(value).is_err() {
            return Err(InvalidRecordReason::MalformedRecords);
        }
        Ok(value)
    }

    fn bytes(&mut self) -> Result<Option<&'a [u8]>, InvalidRecordReason> {
        let len = self.varint()?;
        if len < 0 {
            return Ok(None);
        }
        let len = usize::try_from(len).map_err(|_| InvalidRecordReason::MalformedRecords)?;
        self.take(len).map(Some)
    }
}

/// Appends `value` to `out` as a zigzag varint.
pub fn put_varlong(out: &mut Vec<u8>, value: i64) {
    // Zigzag encoding reinterprets the bits; the cast is the point.
    let mut raw = ((value << 1) ^ (value >> 63)) as u64;
    loop {
        let byte = (raw & 0x7f) as u8;
        raw >>= 7;
        if raw == 0 {
            out.push(byte);
            return;
        }
        out.push(byte | 0x80);
    }
}
