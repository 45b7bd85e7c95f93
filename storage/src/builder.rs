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
        let body_len = out.len() - body_start;
        let count = i32::try_from(self.records.len()).expect("batch record count fits i32");
        let mut attributes = self.compression.id();
        if self.transactional {
            attributes |= 0x10;
        }
        if self.control {
            attributes |= 0x20;
        }
        let mut header = Vec::with_capacity(BATCH_HEADER_BYTES);
        header.extend_from_slice(&0i64.to_be_bytes());
        let batch_length = i32::try_from(BATCH_HEADER_BYTES - batch::LOG_OVERHEAD + body_len)
            .expect("batch fits i32");
        header.extend_from_slice(&batch_length.to_be_bytes());
        header.extend_from_slice(&(-1i32).to_be_bytes());
        header.push(2);
        header.extend_from_slice(&0u32.to_be_bytes());
        header.extend_from_slice(&attributes.to_be_bytes());
        header.extend_from_slice(&(count - 1).to_be_bytes());
        header.extend_from_slice(&base_timestamp.to_be_bytes());
        header.extend_from_slice(&max_timestamp.to_be_bytes());
        header.extend_from_slice(&self.producer_id.to_be_bytes());
        header.extend_from_slice(&self.producer_epoch.to_be_bytes());
        header.extend_from_slice(&self.base_sequence.to_be_bytes());
        header.extend_from_slice(&count.to_be_bytes());
        out[start..body_start].copy_from_slice(&header);
        // The CRC covers everything from the attributes on.
        let crc = crc32c::crc32c(&out[start + 21..]);
        out[start + 17..start + 21].copy_from_slice(&crc.to_be_bytes());
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

fn encode_record(out: &mut Vec<u8>, spec: &RecordSpec, base_timestamp: i64, offset_delta: usize) {
    out.push(0);
    put_varlong(out, spec.timestamp_ms - base_timestamp);
    put_varlong(out, len_i64(offset_delta));
    put_bytes(out, spec.key.as_deref());
    put_bytes(out, spec.value.as_deref());
    put_varlong(out, len_i64(spec.headers.len()));
    for (key, value) in &spec.headers {
        put_bytes(out, Some(key.as_bytes()));
        put_bytes(out, value.as_deref());
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
}
