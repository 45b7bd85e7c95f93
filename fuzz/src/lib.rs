//! The bodies of the fuzz targets, kept here so each target in `fuzz_targets/` is one line and
//! so `generate_seeds` can share the input encoding of `segment_recover`.
//!
//! Every check is an `assert!`: a failed property is a crash that libFuzzer saves, exactly
//! like a panic inside the code under test.

use std::path::Path;
use std::sync::Arc;

use kairos_storage::batch::{self, BATCH_HEADER_BYTES, Batches, LOG_OVERHEAD, RecordBatchHeader};
use kairos_storage::builder::RecordBatchBuilder;
use kairos_storage::error::CorruptReason;
use kairos_storage::file_names::{
    self, INDEX_SUFFIX, LOG_SUFFIX, TIME_INDEX_SUFFIX, TXN_INDEX_SUFFIX,
};
use kairos_storage::fs::StdFs;
use kairos_storage::manager::CLEAN_SHUTDOWN_FILE;
use kairos_storage::record::RecordBytes;
use kairos_storage::{AppendOrigin, AppendOutcome, Error, LogConfig, LogManager, TopicPartition};

/// Arbitrary bytes as one record batch: framing must agree with an independent reading of the
/// length and magic fields, the CRC check with an independent CRC32C over `[21, end)`, and
/// every record the decoder accepts must lie inside its own length-prefixed frame. Nothing may
/// panic.
pub fn record_batch(data: &[u8]) {
    check_framing(data);
    // A buffer of concatenated batches: the iterator must tile a prefix of it exactly.
    let mut end = 0;
    for item in Batches::new(data) {
        match item {
            Ok((at, batch)) => {
                assert_eq!(at, end, "batches are contiguous");
                end = at + batch.total_size();
                assert!(end <= data.len());
            }
            Err(_) => break,
        }
    }
}

fn check_framing(data: &[u8]) {
    let parsed = RecordBatchHeader::parse(data);
    let Some(total) = independent_total_size(data) else {
        assert!(
            matches!(parsed, Err(CorruptReason::TruncatedBatch)),
            "short or bad length must not frame: {parsed:?}"
        );
        return;
    };
    let magic = data[16] as i8;
    if magic != batch::MAGIC_V2 {
        assert_eq!(parsed.unwrap_err(), CorruptReason::BadMagic(magic));
        return;
    }
    let header = parsed.expect("a well-framed v2 batch parses");
    assert_eq!(header.total_size(), total);
    assert_eq!(header.bytes(), &data[..total]);
    let stored = u32::from_be_bytes(data[17..21].try_into().unwrap());
    let crc_ok = stored == crc32c::crc32c(&data[21..total]);
    assert_eq!(header.verify_crc().is_ok(), crc_ok, "CRC check disagrees");
    touch_header_fields(&header);
    check_records(&header);
}

/// The batch size from the raw length field, if the batch is complete and long enough to hold
/// the fixed header.
fn independent_total_size(data: &[u8]) -> Option<usize> {
    let length = i32::from_be_bytes(data.get(8..12)?.try_into().ok()?);
    let total = usize::try_from(length).ok()?.checked_add(LOG_OVERHEAD)?;
    (total >= BATCH_HEADER_BYTES && total <= data.len()).then_some(total)
}

fn touch_header_fields(h: &RecordBatchHeader<'_>) {
    let _ = (h.base_offset(), h.last_offset(), h.last_offset_delta());
    let _ = (h.partition_leader_epoch(), h.attributes(), h.compression());
    let _ = (h.timestamp_type(), h.is_transactional(), h.is_control());
    let _ = (h.base_timestamp(), h.max_timestamp(), h.producer_id());
    let _ = (h.producer_epoch(), h.base_sequence(), h.last_sequence());
    let _ = (h.records_count(), h.records_bytes());
    let _ = kairos_storage::control::parse_marker(h);
}

fn check_records(header: &RecordBatchHeader<'_>) {
    let Ok(records) = RecordBytes::of(header) else {
        return;
    };
    let uncompressed = header.compression() == Some(kairos_storage::Compression::None);
    let raw = header.records_bytes();
    let mut frames = RecordFrames { buf: raw, at: 0 };
    for record in records.records() {
        let Ok(record) = record else { break };
        for (key, value) in record.headers() {
            let _ = (key.len(), value.map(<[u8]>::len));
        }
        if !uncompressed {
            continue;
        }
        // Uncompressed records borrow from the batch: key and value must lie inside the frame
        // an independent varint walk finds for this record.
        let frame = frames
            .next()
            .expect("the decoder accepted a record with no frame");
        for part in [record.key, record.value].into_iter().flatten() {
            let start = part.as_ptr() as usize - raw.as_ptr() as usize;
            assert!(
                start >= frame.0 && start + part.len() <= frame.1,
                "field outside its record frame"
            );
        }
    }
}

/// An independent walk over uncompressed records: a zigzag varint length, then that many bytes.
/// Yields `(start, end)` of each record body within the records bytes.
struct RecordFrames<'a> {
    buf: &'a [u8],
    at: usize,
}

impl Iterator for RecordFrames<'_> {
    type Item = (usize, usize);

    fn next(&mut self) -> Option<(usize, usize)> {
        let mut raw: u64 = 0;
        let mut shift = 0;
        loop {
            let byte = *self.buf.get(self.at)?;
            self.at += 1;
            raw |= u64::from(byte & 0x7f) << shift;
            if byte & 0x80 == 0 {
                break;
            }
            shift += 7;
            if shift > 63 {
                return None;
            }
        }
        let length = (raw >> 1) as i64 ^ -((raw & 1) as i64);
        let start = self.at;
        let end = start.checked_add(usize::try_from(length).ok()?)?;
        if end > self.buf.len() {
            return None;
        }
        self.at = end;
        Some((start, end))
    }
}

/// The partition every `segment_recover` input is written to.
pub const TOPIC: &str = "fuzz";

/// The config of the fuzzed log: small preallocated indexes (cheap to map) and an index entry
/// every 128 bytes, so short inputs still have several entries.
#[must_use]
pub fn fuzz_config() -> LogConfig {
    LogConfig {
        segment_index_bytes: 4096,
        index_interval_bytes: 128,
        ..LogConfig::default()
    }
}

/// One `segment_recover` input, decoded from (and encodable to) bytes:
///
/// ```text
/// flags        u8    bit 0: write `.index`; bit 1: write `.timeindex`; bit 2: a clean-shutdown
///                    marker is present (indexes are then trusted after their sanity check);
///                    bit 3: split the log into two segments at `split`; bit 4: write
///                    `.txnindex`
/// index_len    u16 BE
/// time_len     u16 BE
/// txn_len      u16 BE
/// split        u16 BE   byte position of the second segment inside `log`
/// base_offset  u32 BE   base offset of the first segment (its file name)
/// index        index_len bytes
/// time_index   time_len bytes
/// txn_index    txn_len bytes
/// log          the rest
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SegmentInput {
    /// Bytes of the first segment's `.index`, if one is written.
    pub index: Option<Vec<u8>>,
    /// Bytes of the first segment's `.timeindex`, if one is written.
    pub time_index: Option<Vec<u8>>,
    /// Bytes of the first segment's `.txnindex`, if one is written.
    pub txn_index: Option<Vec<u8>>,
    /// Whether the data directory carries a clean-shutdown marker.
    pub clean_shutdown: bool,
    /// Where the second segment starts inside `log`, if there is one.
    pub split: Option<u16>,
    /// Base offset of the first segment.
    pub base_offset: u32,
    /// The bytes of all `.log` files, concatenated.
    pub log: Vec<u8>,
}

const INPUT_HEADER_BYTES: usize = 13;

impl SegmentInput {
    /// Decodes an input; short inputs decode with empty fields.
    #[must_use]
    pub fn decode(data: &[u8]) -> Self {
        let byte = |i: usize| data.get(i).copied().unwrap_or(0);
        let u16_at = |i| u16::from_be_bytes([byte(i), byte(i + 1)]);
        let flags = byte(0);
        let mut rest = data.get(INPUT_HEADER_BYTES..).unwrap_or_default();
        let mut take = |len: usize| {
            let (head, tail) = rest.split_at(len.min(rest.len()));
            rest = tail;
            head.to_vec()
        };
        let index = take(usize::from(u16_at(1)));
        let time_index = take(usize::from(u16_at(3)));
        let txn_index = take(usize::from(u16_at(5)));
        Self {
            index: (flags & 1 != 0).then_some(index),
            time_index: (flags & 2 != 0).then_some(time_index),
            txn_index: (flags & 16 != 0).then_some(txn_index),
            clean_shutdown: flags & 4 != 0,
            split: (flags & 8 != 0).then_some(u16_at(7)),
            base_offset: u32::from_be_bytes([byte(9), byte(10), byte(11), byte(12)]),
            log: rest.to_vec(),
        }
    }

    /// The inverse of [`SegmentInput::decode`], for seeds. Index files longer than `u16::MAX`
    /// are cut.
    #[must_use]
    pub fn encode(&self) -> Vec<u8> {
        let cut = |bytes: &Option<Vec<u8>>| {
            let bytes = bytes.as_deref().unwrap_or_default();
            bytes[..bytes.len().min(usize::from(u16::MAX))].to_vec()
        };
        let (index, time_index, txn_index) = (
            cut(&self.index),
            cut(&self.time_index),
            cut(&self.txn_index),
        );
        let flags = u8::from(self.index.is_some())
            | u8::from(self.time_index.is_some()) << 1
            | u8::from(self.clean_shutdown) << 2
            | u8::from(self.split.is_some()) << 3
            | u8::from(self.txn_index.is_some()) << 4;
        let mut out = vec![flags];
        for part in [&index, &time_index, &txn_index] {
            out.extend_from_slice(&(part.len() as u16).to_be_bytes());
        }
        out.extend_from_slice(&self.split.unwrap_or(0).to_be_bytes());
        out.extend_from_slice(&self.base_offset.to_be_bytes());
        for part in [&index, &time_index, &txn_index] {
            out.extend_from_slice(part);
        }
        out.extend_from_slice(&self.log);
        out
    }

    /// Writes the input as a data directory: `{TOPIC}-0/` with the segment files, and the
    /// clean-shutdown marker if set. The second segment, if any, is named after the base offset
    /// of its first batch when that frames, as a roll would name it.
    pub fn write_to(&self, data_dir: &Path) {
        let log_dir = data_dir.join(format!("{TOPIC}-0"));
        std::fs::create_dir_all(&log_dir).unwrap();
        let base = i64::from(self.base_offset);
        let split = self
            .split
            .map_or(self.log.len(), |s| usize::from(s).min(self.log.len()));
        let (first, second) = self.log.split_at(split);
        std::fs::write(file_names::file_path(&log_dir, base, LOG_SUFFIX), first).unwrap();
        if let Some(index) = &self.index {
            std::fs::write(file_names::file_path(&log_dir, base, INDEX_SUFFIX), index).unwrap();
        }
        if let Some(time_index) = &self.time_index {
            let path = file_names::file_path(&log_dir, base, TIME_INDEX_SUFFIX);
            std::fs::write(path, time_index).unwrap();
        }
        if let Some(txn_index) = &self.txn_index {
            let path = file_names::file_path(&log_dir, base, TXN_INDEX_SUFFIX);
            std::fs::write(path, txn_index).unwrap();
        }
        if self.split.is_some() {
            let second_base = if second.len() >= LOG_OVERHEAD {
                batch::peek_base_offset(second).clamp(base + 1, i64::from(u32::MAX) * 2)
            } else {
                base + 1
            };
            let path = file_names::file_path(&log_dir, second_base, LOG_SUFFIX);
            std::fs::write(path, second).unwrap();
        }
        if self.clean_shutdown {
            std::fs::write(data_dir.join(CLEAN_SHUTDOWN_FILE), b"").unwrap();
        }
    }
}

/// Arbitrary segment files opened as a partition log. Opening must not panic.
///
/// After an unclean shutdown the recovered log must be a clean prefix of what was on disk:
/// every batch readable, CRC-valid and in increasing offset order, the bytes a prefix of the
/// original `.log` bytes; an append must then continue at the log end and read back, also
/// from the offset right after the recovered batches.
///
/// After a clean shutdown the segments are trusted, as in Kafka: data that was synced is
/// assumed intact (`FORMAT.md`, "Assumptions about the media"), so corrupt bytes there may
/// read back as garbage. Only the absence of panics is checked, through reads, lookups, an
/// append and a shutdown.
pub fn segment_recover(data: &[u8]) {
    let input = SegmentInput::decode(data);
    let strict = !input.clean_shutdown;
    let dir = tempfile::tempdir().unwrap();
    input.write_to(dir.path());
    let manager = LogManager::open_with_configs(Arc::new(StdFs), dir.path(), 0, |_| fuzz_config())
        .expect("opening a log directory never fails on corrupt data");
    let log = manager.get(&TopicPartition::new(TOPIC, 0)).unwrap();
    let (stored, after) = read_all(&log, strict);
    if strict {
        assert!(
            input.log.starts_with(&stored),
            "recovered bytes are not a prefix of the segment bytes"
        );
    }
    let _ = log.offset_for_timestamp(i64::from(input.base_offset));
    let _ = log.max_timestamp();
    let end = log.log_end_offset();
    let _ = log.aborted_transactions(log.log_start_offset(), end);
    assert!(log.last_stable_offset() <= log.high_watermark());
    let mut fresh = RecordBatchBuilder::new()
        .record(Some(b"key"), Some(b"value"), 1)
        .build();
    let appended = log.append(&mut fresh, AppendOrigin::Client, 0, 0);
    let Ok(AppendOutcome::Appended(info)) = appended else {
        panic!("append after open failed: {appended:?}");
    };
    assert_eq!(info.first_offset, end, "appends continue at the log end");
    let read = log.read(end, 1 << 20, None);
    if strict {
        let read = read.expect("read the new batch");
        assert_eq!(&read.records[..], &fresh[..], "the new batch reads back");
        // A consumer positioned after the recovered batches reaches the new one.
        let read = log
            .read(after, 1 << 20, None)
            .expect("read after the prefix");
        assert_eq!(
            &read.records[..],
            &fresh[..],
            "reading on from {after} skips data"
        );
    }
    manager.shutdown(0).unwrap();
}

/// Reads every batch from the log start to the log end, checking each. Returns the bytes and
/// the offset after the last batch read. With `strict` (after recovery), a read error or a bad
/// CRC is a failure; otherwise reading just stops there. An empty read below the log end is
/// allowed: an empty active segment whose base offset is past the previous segment's last
/// batch leaves a gap up to the log end, as Kafka's would; the caller checks that a read in
/// that gap reaches the next appended batch.
fn read_all(log: &kairos_storage::Log, strict: bool) -> (Vec<u8>, i64) {
    let mut out = Vec::new();
    let mut offset = log.log_start_offset();
    let mut next = offset;
    let end = log.log_end_offset();
    while offset < end {
        let read = match log.read(offset, 1 << 20, None) {
            Ok(read) => read,
            Err(e) if !strict => {
                assert!(matches!(e, Error::Corrupt { .. }), "unexpected error {e}");
                break;
            }
            Err(e) => panic!("read at {offset} of a recovered log failed: {e}"),
        };
        if read.records.is_empty() {
            break;
        }
        for item in Batches::new(&read.records) {
            let (_, batch) = item.expect("reads return whole batches");
            let (base, last) = (batch.base_offset(), batch.last_offset());
            if strict {
                assert!(batch.verify_crc().is_ok(), "recovered batch with a bad CRC");
                assert!(
                    base >= next,
                    "batch at {base} overlaps the one before {next}"
                );
                assert!(last >= base, "batch ends before it starts");
                assert!(last < end, "batch {base}..={last} past the log end {end}");
            } else if last < next {
                // A trusted but corrupt log: stop rather than loop.
                return (out, offset);
            }
            next = last.saturating_add(1);
        }
        offset = next;
        out.extend_from_slice(&read.records);
    }
    (out, offset)
}
