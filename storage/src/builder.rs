//! Builds v2 record batches: used by tests, benches and fuzz seeds, and by the broker for the
//! records it writes itself (transaction markers, internal topics, due-index fires).
//!
//! The output is a complete batch with base offset 0 and a valid CRC32C; the log assigns the
//! real offset on append.

use crate::batch::{self, BATCH_HEADER_BYTES, Compression, NO_PRODUCER_ID, NO_SEQUENCE};
use crate::compression;
use crate::record::put_varlong;

/// One record to encode: the owned form of [`crate::record::Record`].
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct RecordSpec {
    /// Key, `None` for null.
    pub key: Option<Vec<u8>>,
    /// Value, `None` for a tombstone.
    pub value: Option<Vec<u8>>,
    /// Absolute timestamp in ms.
    pub timestamp_ms: i64,
    /// Headers in order.
    pub headers: Vec<(String, Option<Vec<u8>>)>,
}

/// Builder for one record batch.
#[derive(Debug, Clone)]
pub struct RecordBatchBuilder {
    records: Vec<RecordSpec>,
    compression: Compression,
    producer_id: i64,
    producer_epoch: i16,
    base_sequence: i32,
    transactional: bool,
    control: bool,
}

impl Default for RecordBatchBuilder {
    fn default() -> Self {
        Self::new()
    }
}

impl RecordBatchBuilder {
    /// An empty, uncompressed, non-idempotent batch.
    #[must_use]
    pub fn new() -> Self {
        Self {
            records: Vec::new(),
            compression: Compression::None,
            producer_id: NO_PRODUCER_ID,
            producer_epoch: -1,
            base_sequence: NO_SEQUENCE,
            transactional: false,
            control: false,
        }
    }

    /// Sets the compression codec.
    #[must_use]
    pub fn compression(mut self, codec: Compression) -> Self {
        self.compression = codec;
        self
    }

    /// Makes the batch idempotent: producer id, epoch and the first record's sequence.
    #[must_use]
    pub fn producer(mut self, producer_id: i64, producer_epoch: i16, base_sequence: i32) -> Self {
        self.producer_id = producer_id;
        self.producer_epoch = producer_epoch;
        self.base_sequence = base_sequence;
        self
    }

    /// Marks the batch transactional.
    #[must_use]
    pub fn transactional(mut self, on: bool) -> Self {
        self.transactional = on;
        self
    }

    /// Marks the batch a control batch (transaction marker).
    #[must_use]
    pub fn control(mut self, on: bool) -> Self {
        self.control = on;
        self
    }

    /// Adds a record without headers.
    #[must_use]
    pub fn record(self, key: Option<&[u8]>, value: Option<&[u8]>, timestamp_ms: i64) -> Self {
        self.record_spec(RecordSpec {
            key: key.map(<[u8]>::to_vec),
            value: value.map(<[u8]>::to_vec),
            timestamp_ms,
            headers: Vec::new(),
        })
    }

    /// Adds a record.
    #[must_use]
    pub fn record_spec(mut self, record: RecordSpec) -> Self {
        self.records.push(record);
        self
    }

    /// Number of records added so far.
    #[must_use]
    pub fn len(&self) -> usize {
        self.records.len()
    }

    /// Whether no record was added.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.records.is_empty()
    }

    /// Encodes the batch. An empty builder gives an empty vector (a batch needs a record).
    ///
    /// # Panics
    /// If more than `i32::MAX` records were added.
    #[must_use]
    pub fn build(&self) -> Vec<u8> {
        let mut out = Vec::new();
        self.build_into(&mut out);
        out
    }

    /// Appends the encoded batch to `out` (nothing for an empty builder), so that batches
    /// meant for one append are written into one buffer without copying them again.
    ///
    /// # Panics
    /// If more than `i32::MAX` records were added.
    pub fn build_into(&self, out: &mut Vec<u8>) {
        let Some(first) = self.records.first() else {
            return;
        };
        let base_timestamp = first.timestamp_ms;
        let max_timestamp = self
            .records
            .iter()
            .map(|r| r.timestamp_ms)
            .max()
            .unwrap_or(base_timestamp);
        // The records are encoded straight after room for the header, which is filled in last:
        // an uncompressed batch (every batch the broker writes itself) is copied once.
        let estimate: usize = self.records.iter().map(encoded_size_bound).sum();
        let start = out.len();
        out.reserve(BATCH_HEADER_BYTES + estimate);
        out.resize(start + BATCH_HEADER_BYTES, 0);
        let mut record = Vec::new();
        for (delta, spec) in self.records.iter().enumerate() {
            record.clear();
            encode_record(&mut record, spec, base_timestamp, delta);
            put_varlong(out, len_i64(record.len()));
            out.extend_from_slice(&record);
        }
        let body_start = start + BATCH_HEADER_BYTES;
        if self.compression != Compression::None {
            let body = compression::compress(self.compression, &out[body_start..]);
            out.truncate(body_start);
            out.extend_from_slice(&body);
        }
        let count = i32::try_from(self.records.len()).expect("batch record count fits i32");
        let mut attributes = self.compression.id();
        if self.transactional {
            attributes |= 0x10;
        }
        if self.control {
            attributes |= 0x20;
        }
        finish_batch(
            out,
            start,
            &BatchFields {
                attributes,
                count,
                base_timestamp,
                max_timestamp,
                producer_id: self.producer_id,
                producer_epoch: self.producer_epoch,
                base_sequence: self.base_sequence,
            },
        );
    }
}

/// The header fields of a batch whose records are already encoded.
struct BatchFields {
    attributes: i16,
    count: i32,
    base_timestamp: i64,
    max_timestamp: i64,
    producer_id: i64,
    producer_epoch: i16,
    base_sequence: i32,
}

/// Fills in the header of the batch at `out[start..]` (room left for it, records after it)
/// and its CRC.
fn finish_batch(out: &mut [u8], start: usize, fields: &BatchFields) {
    let body_start = start + BATCH_HEADER_BYTES;
    let body_len = out.len() - body_start;
    let mut header = Vec::with_capacity(BATCH_HEADER_BYTES);
    header.extend_from_slice(&0i64.to_be_bytes());
    let batch_length =
        i32::try_from(BATCH_HEADER_BYTES - batch::LOG_OVERHEAD + body_len).expect("batch fits i32");
    header.extend_from_slice(&batch_length.to_be_bytes());
    header.extend_from_slice(&(-1i32).to_be_bytes());
    header.push(2);
    header.extend_from_slice(&0u32.to_be_bytes());
    header.extend_from_slice(&fields.attributes.to_be_bytes());
    header.extend_from_slice(&(fields.count - 1).to_be_bytes());
    header.extend_from_slice(&fields.base_timestamp.to_be_bytes());
    header.extend_from_slice(&fields.max_timestamp.to_be_bytes());
    header.extend_from_slice(&fields.producer_id.to_be_bytes());
    header.extend_from_slice(&fields.producer_epoch.to_be_bytes());
    header.extend_from_slice(&fields.base_sequence.to_be_bytes());
    header.extend_from_slice(&fields.count.to_be_bytes());
    out[start..body_start].copy_from_slice(&header);
    // The CRC covers everything from the attributes on.
    let crc = crc32c::crc32c(&out[start + 21..]);
    out[start + 17..start + 21].copy_from_slice(&crc.to_be_bytes());
}

/// Encodes one plain (uncompressed, non-idempotent) batch record by record, straight into a
/// buffer and from borrowed parts: for the broker's own high-volume writes (due index fires),
/// which would otherwise copy every key, value and header into a [`RecordSpec`] first.
#[derive(Debug)]
pub struct BatchWriter<'o> {
    out: &'o mut Vec<u8>,
    start: usize,
    count: usize,
    base_timestamp: i64,
    max_timestamp: i64,
    record: Vec<u8>,
}

impl<'o> BatchWriter<'o> {
    /// A batch appended to `out` (left as it was if no record is pushed).
    pub fn new(out: &'o mut Vec<u8>) -> Self {
        let start = out.len();
        out.resize(start + BATCH_HEADER_BYTES, 0);
        Self {
            out,
            start,
            count: 0,
            base_timestamp: 0,
            max_timestamp: 0,
            record: Vec::new(),
        }
    }

    /// Records pushed so far.
    #[must_use]
    pub fn len(&self) -> usize {
        self.count
    }

    /// Whether no record was pushed.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// Bytes of the batch so far, header included.
    #[must_use]
    pub fn size(&self) -> usize {
        self.out.len() - self.start
    }

    /// Adds a record.
    pub fn push(
        &mut self,
        key: Option<&[u8]>,
        value: Option<&[u8]>,
        timestamp_ms: i64,
        headers: &[(&[u8], Option<&[u8]>)],
    ) {
        if self.count == 0 {
            self.base_timestamp = timestamp_ms;
            self.max_timestamp = timestamp_ms;
        }
        self.max_timestamp = self.max_timestamp.max(timestamp_ms);
        self.record.clear();
        encode_record_parts(
            &mut self.record,
            RecordParts {
                key,
                value,
                timestamp_delta: timestamp_ms - self.base_timestamp,
                offset_delta: self.count,
            },
            headers.iter().copied(),
        );
        put_varlong(self.out, len_i64(self.record.len()));
        self.out.extend_from_slice(&self.record);
        self.count += 1;
    }

    /// Completes the batch (header and CRC), or removes it if it has no record.
    ///
    /// # Panics
    /// If more than `i32::MAX` records were pushed.
    pub fn finish(self) {
        if self.count == 0 {
            self.out.truncate(self.start);
            return;
        }
        finish_batch(
            self.out,
            self.start,
            &BatchFields {
                attributes: Compression::None.id(),
                count: i32::try_from(self.count).expect("batch record count fits i32"),
                base_timestamp: self.base_timestamp,
                max_timestamp: self.max_timestamp,
                producer_id: NO_PRODUCER_ID,
                producer_epoch: -1,
                base_sequence: NO_SEQUENCE,
            },
        );
    }
}

/// At least the encoded size of `record` (varints counted at their longest).
fn encoded_size_bound(record: &RecordSpec) -> usize {
    let headers: usize = record
        .headers
        .iter()
        .map(|(k, v)| k.len() + v.as_ref().map_or(0, Vec::len) + 20)
        .sum();
    record.key.as_ref().map_or(0, Vec::len)
        + record.value.as_ref().map_or(0, Vec::len)
        + headers
        + 50
}

fn len_i64(len: usize) -> i64 {
    i64::try_from(len).unwrap_or(i64::MAX)
}

fn put_bytes(out: &mut Vec<u8>, bytes: Option<&[u8]>) {
    match bytes {
        None => put_varlong(out, -1),
        Some(bytes) => {
            put_varlong(out, len_i64(bytes.len()));
            out.extend_from_slice(bytes);
        }
    }
}

/// The fixed parts of one record.
struct RecordParts<'a> {
    key: Option<&'a [u8]>,
    value: Option<&'a [u8]>,
    timestamp_delta: i64,
    offset_delta: usize,
}

fn encode_record(out: &mut Vec<u8>, spec: &RecordSpec, base_timestamp: i64, offset_delta: usize) {
    encode_record_parts(
        out,
        RecordParts {
            key: spec.key.as_deref(),
            value: spec.value.as_deref(),
            timestamp_delta: spec.timestamp_ms - base_timestamp,
            offset_delta,
        },
        spec.headers
            .iter()
            .map(|(k, v)| (k.as_bytes(), v.as_deref())),
    );
}

fn encode_record_parts<'h>(
    out: &mut Vec<u8>,
    parts: RecordParts<'_>,
    headers: impl ExactSizeIterator<Item = (&'h [u8], Option<&'h [u8]>)>,
) {
    out.push(0);
    put_varlong(out, parts.timestamp_delta);
    put_varlong(out, len_i64(parts.offset_delta));
    put_bytes(out, parts.key);
    put_bytes(out, parts.value);
    put_varlong(out, len_i64(headers.len()));
    for (key, value) in headers {
        put_bytes(out, Some(key));
        put_bytes(out, value);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::batch::RecordBatchHeader;
    use crate::record::RecordBytes;

    #[test]
    fn built_batches_decode_back_for_every_codec() {
        for codec in [
            Compression::None,
            Compression::Gzip,
            Compression::Snappy,
            Compression::Lz4,
            Compression::Zstd,
        ] {
            let bytes = RecordBatchBuilder::new()
                .compression(codec)
                .record(Some(b"k1"), Some(b"v1"), 100)
                .record_spec(RecordSpec {
                    key: Some(b"k2".to_vec()),
                    value: None,
                    timestamp_ms: 90,
                    headers: vec![("h".into(), Some(b"x".to_vec())), ("n".into(), None)],
                })
                .build();
            let batch = RecordBatchHeader::parse(&bytes).unwrap();
            batch.verify_crc().unwrap();
            assert_eq!(batch.max_timestamp(), 100);
            let decoded = RecordBytes::of(&batch).unwrap();
            let records: Vec<_> = decoded.records().map(Result::unwrap).collect();
            assert_eq!(records.len(), 2);
            assert_eq!(records[0].key, Some(&b"k1"[..]));
            assert_eq!(records[1].value, None);
            assert_eq!(records[1].timestamp_delta, -10);
            assert_eq!(records[1].offset_delta, 1);
            let headers: Vec<_> = records[1].headers().collect();
            assert_eq!(
                headers,
                vec![(&b"h"[..], Some(&b"x"[..])), (&b"n"[..], None)]
            );
        }
    }

    #[test]
    fn batches_built_into_one_buffer_follow_each_other_whole() {
        let mut out = b"prefix".to_vec();
        for (codec, key) in [(Compression::None, b"a"), (Compression::Gzip, b"b")] {
            RecordBatchBuilder::new()
                .compression(codec)
                .record(Some(key), Some(b"value"), 7)
                .build_into(&mut out);
        }
        RecordBatchBuilder::new().build_into(&mut out);
        let rest = out.strip_prefix(&b"prefix"[..]).unwrap();
        let first = RecordBatchHeader::parse(rest).unwrap();
        first.verify_crc().unwrap();
        assert_eq!(first.compression(), Some(Compression::None));
        let second = RecordBatchHeader::parse(&rest[first.total_size()..]).unwrap();
        second.verify_crc().unwrap();
        assert_eq!(second.compression(), Some(Compression::Gzip));
        assert_eq!(first.total_size() + second.total_size(), rest.len());
        let records = RecordBytes::of(&second).unwrap();
        assert_eq!(
            records.records().next().unwrap().unwrap().key,
            Some(&b"b"[..])
        );
    }

    #[test]
    fn a_batch_writer_encodes_what_the_builder_does() {
        let specs = [
            RecordSpec {
                key: Some(b"k1".to_vec()),
                value: Some(b"v1".to_vec()),
                timestamp_ms: 100,
                headers: vec![("h".into(), Some(b"x".to_vec())), ("n".into(), None)],
            },
            RecordSpec {
                key: None,
                value: None,
                timestamp_ms: 90,
                headers: Vec::new(),
            },
        ];
        let built = specs
            .iter()
            .cloned()
            .fold(RecordBatchBuilder::new(), RecordBatchBuilder::record_spec)
            .build();
        let mut out = b"before".to_vec();
        let mut writer = BatchWriter::new(&mut out);
        for spec in &specs {
            let headers: Vec<(&[u8], Option<&[u8]>)> = spec
                .headers
                .iter()
                .map(|(k, v)| (k.as_bytes(), v.as_deref()))
                .collect();
            writer.push(
                spec.key.as_deref(),
                spec.value.as_deref(),
                spec.timestamp_ms,
                &headers,
            );
        }
        assert_eq!((writer.len(), writer.size()), (2, built.len()));
        writer.finish();
        assert_eq!(out.strip_prefix(&b"before"[..]), Some(&built[..]));
        BatchWriter::new(&mut out).finish();
        assert_eq!(
            out.len(),
            b"before".len() + built.len(),
            "an empty batch leaves nothing"
        );
    }
}
