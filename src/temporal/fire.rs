//! Building the record a due entity fires: key = the entity key; value = its latest committed
//! value with the field's merge patch applied; timestamp = the due time; headers = the source
//! version's headers (minus earlier `kairos.*` due headers) plus `kairos.due.field`,
//! `kairos.due.at` (decimal epoch ms) and `kairos.source.offset`; a fire into a
//! `temporal.target.topic` also gets `kairos.source.topic` (the pulse adds it).

use std::borrow::Cow;
use std::collections::HashMap;

use bytes::Bytes;
use kairos_storage::Log;
use kairos_storage::batch::Batches;
use kairos_storage::builder::{BatchWriter, RecordBatchBuilder, RecordSpec};
use kairos_storage::record::{Record, RecordBytes};

use super::config::TemporalConfig;
use super::due_index::DueEntry;

/// Header naming the selector that fired.
pub const HEADER_DUE_FIELD: &str = "kairos.due.field";
/// Header with the due time in decimal epoch ms.
pub const HEADER_DUE_AT: &str = "kairos.due.at";
/// Header with the offset of the version the fire reflects.
pub const HEADER_SOURCE_OFFSET: &str = "kairos.source.offset";

/// Header naming the topic the fire's source version is in; only on fires appended to a
/// `temporal.target.topic` (a fire into the topic itself is its own source).
pub const HEADER_SOURCE_TOPIC: &str = "kairos.source.topic";

/// One record of the log, owned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SourceRecord {
    /// Its offset.
    pub offset: i64,
    /// Key.
    pub key: Option<Vec<u8>>,
    /// Value.
    pub value: Option<Vec<u8>>,
    /// Headers in order.
    pub headers: Vec<(String, Option<Vec<u8>>)>,
}

/// Reads the record at `offset`, or `None` if no record has that offset (compacted away).
///
/// # Errors
/// Storage errors.
pub fn read_record(log: &Log, offset: i64) -> kairos_storage::Result<Option<SourceRecord>> {
    Ok(read_records(log, &[offset])?.remove(&offset))
}

/// The stored batches holding some offsets of a log, each read and decoded once: the pulse
/// builds its fires from records borrowed from them ([`SourceBatches::records`]).
#[derive(Debug)]
pub struct SourceBatches {
    /// Sorted, deduplicated, within the log: the offsets asked for.
    wanted: Vec<i64>,
    /// One stored batch each (the first batch of a read).
    reads: Vec<Bytes>,
}

impl SourceBatches {
    /// Reads the batches holding `offsets`. Offsets are visited in order and every stored
    /// batch is read once, however many of them it holds: a producer's batch can hold
    /// thousands of entities, and decoding it again for each (the pulse used to) made a large
    /// backlog drain at a few thousand fires per second.
    ///
    /// # Errors
    /// Storage errors.
    pub fn read(log: &Log, offsets: &[i64]) -> kairos_storage::Result<Self> {
        let mut wanted = offsets.to_vec();
        wanted.sort_unstable();
        wanted.dedup();
        // Offsets that retention removed, or past the end, have no record.
        let (start, end) = (log.log_start_offset(), log.log_end_offset());
        wanted.retain(|o| (start..end).contains(o));
        let mut reads = Vec::new();
        let mut next = 0;
        while let Some(&offset) = wanted.get(next) {
            let data = log.read(offset, 1, None)?;
            let Some(Ok((_, batch))) = Batches::new(&data.records).next() else {
                break;
            };
            // Every wanted offset up to this batch's end is answered (or was compacted away).
            let last = batch.last_offset().max(offset);
            let size = batch.total_size();
            while wanted.get(next).is_some_and(|o| *o <= last) {
                next += 1;
            }
            reads.push(data.records.slice(..size));
        }
        Ok(Self { wanted, reads })
    }

    /// Each batch's base offset and records (decompressed if needed). Undecodable batches are
    /// left out: their records are then absent, as if compacted away.
    #[must_use]
    pub fn decode(&self) -> Vec<(i64, RecordBytes<'_>)> {
        self.reads
            .iter()
            .filter_map(|bytes| {
                let (_, batch) = Batches::new(bytes).next()?.ok()?;
                Some((batch.base_offset(), RecordBytes::of(&batch).ok()?))
            })
            .collect()
    }

    /// The wanted records among `decoded` (from [`Self::decode`]), by offset.
    #[must_use]
    pub fn records<'d>(&self, decoded: &'d [(i64, RecordBytes<'_>)]) -> HashMap<i64, Record<'d>> {
        let mut found = HashMap::with_capacity(self.wanted.len());
        for (base, records) in decoded {
            for record in records.records().map_while(Result::ok) {
                let at = base + i64::from(record.offset_delta);
                if self.wanted.binary_search(&at).is_ok() {
                    let _ = found.insert(at, record);
                }
            }
        }
        found
    }
}

/// The records at `offsets` (absent ones were removed by compaction or retention), owned.
///
/// # Errors
/// Storage errors.
pub fn read_records(
    log: &Log,
    offsets: &[i64],
) -> kairos_storage::Result<HashMap<i64, SourceRecord>> {
    let batches = SourceBatches::read(log, offsets)?;
    let decoded = batches.decode();
    Ok(batches
        .records(&decoded)
        .into_iter()
        .map(|(offset, record)| (offset, source_record(offset, &record)))
        .collect())
}

fn source_record(offset: i64, record: &Record<'_>) -> SourceRecord {
    SourceRecord {
        offset,
        key: record.key.map(<[u8]>::to_vec),
        value: record.value.map(<[u8]>::to_vec),
        headers: record
            .headers()
            .map(|(k, v)| {
                (
                    String::from_utf8_lossy(k).into_owned(),
                    v.map(<[u8]>::to_vec),
                )
            })
            .collect(),
    }
}

/// The headers a fire sets itself: copies of them from the source version are dropped.
const DUE_HEADERS: [&str; 4] = [
    HEADER_DUE_FIELD,
    HEADER_DUE_AT,
    HEADER_SOURCE_OFFSET,
    HEADER_SOURCE_TOPIC,
];

/// A header of a fire: its name, and its value borrowed from the source or made for the fire.
pub type FireHeader<'a> = (&'a [u8], Option<Cow<'a, [u8]>>);

/// A fire, borrowing from its source version whatever it does not change.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FireParts<'a> {
    /// The entity key.
    pub key: Option<&'a [u8]>,
    /// The latest value, patched if the field has a patch.
    pub value: Option<Cow<'a, [u8]>>,
    /// The due time.
    pub timestamp_ms: i64,
    /// The source's headers (less earlier due headers), then the due headers.
    pub headers: Vec<FireHeader<'a>>,
}

impl<'a> FireParts<'a> {
    /// The fire for `entry` from its latest version: `key`, `value` and `headers` of the
    /// record at `source_offset`. `source_topic` is set on fires into a target topic.
    #[must_use]
    pub fn new(
        config: &'a TemporalConfig,
        entry: &DueEntry,
        source_offset: i64,
        (key, value): (Option<&'a [u8]>, Option<&'a [u8]>),
        headers: impl Iterator<Item = (&'a [u8], Option<&'a [u8]>)>,
        source_topic: Option<&'a str>,
    ) -> Self {
        let selector = config
            .fields
            .get(usize::from(entry.id.field()))
            .map_or("", |f| f.as_str());
        let value = config
            .patches
            .apply(selector, value)
            .map(Cow::Owned)
            .or(value.map(Cow::Borrowed));
        let mut headers: Vec<FireHeader<'_>> = headers
            .filter(|(k, _)| !DUE_HEADERS.iter().any(|h| h.as_bytes() == *k))
            .map(|(k, v)| (k, v.map(Cow::Borrowed)))
            .collect();
        headers.push((
            HEADER_DUE_FIELD.as_bytes(),
            Some(Cow::Borrowed(selector.as_bytes())),
        ));
        headers.push((
            HEADER_DUE_AT.as_bytes(),
            Some(Cow::Owned(entry.due_ms.to_string().into_bytes())),
        ));
        headers.push((
            HEADER_SOURCE_OFFSET.as_bytes(),
            Some(Cow::Owned(source_offset.to_string().into_bytes())),
        ));
        if let Some(topic) = source_topic {
            headers.push((
                HEADER_SOURCE_TOPIC.as_bytes(),
                Some(Cow::Borrowed(topic.as_bytes())),
            ));
        }
        Self {
            key,
            value,
            timestamp_ms: entry.due_ms,
            headers,
        }
    }

    /// An upper bound of the encoded record's size (varint lengths and deltas included).
    #[must_use]
    pub fn size_bound(&self) -> usize {
        let headers: usize = self
            .headers
            .iter()
            .map(|(k, v)| k.len() + v.as_ref().map_or(0, |v| v.len()) + 10)
            .sum();
        self.key.map_or(0, <[u8]>::len) + self.value.as_ref().map_or(0, |v| v.len()) + headers + 32
    }

    /// Encodes the fire into `batch`.
    pub fn write(&self, batch: &mut BatchWriter<'_>) {
        let headers: Vec<(&[u8], Option<&[u8]>)> = self
            .headers
            .iter()
            .map(|(k, v)| (*k, v.as_deref()))
            .collect();
        batch.push(self.key, self.value.as_deref(), self.timestamp_ms, &headers);
    }

    /// The owned record.
    #[must_use]
    pub fn to_spec(&self) -> RecordSpec {
        RecordSpec {
            key: self.key.map(<[u8]>::to_vec),
            value: self.value.as_ref().map(|v| v.to_vec()),
            timestamp_ms: self.timestamp_ms,
            headers: self
                .headers
                .iter()
                .map(|(k, v)| {
                    (
                        String::from_utf8_lossy(k).into_owned(),
                        v.as_ref().map(|v| v.to_vec()),
                    )
                })
                .collect(),
        }
    }
}

/// The fire record for `entry`, whose latest version is `source`.
#[must_use]
pub fn fire_record(config: &TemporalConfig, entry: &DueEntry, source: &SourceRecord) -> RecordSpec {
    FireParts::new(
        config,
        entry,
        source.offset,
        (source.key.as_deref(), source.value.as_deref()),
        source
            .headers
            .iter()
            .map(|(k, v)| (k.as_bytes(), v.as_deref())),
        None,
    )
    .to_spec()
}

/// One batch holding `fires`, in order.
#[must_use]
pub fn fire_batch(fires: Vec<RecordSpec>) -> Vec<u8> {
    fires
        .into_iter()
        .fold(RecordBatchBuilder::new(), RecordBatchBuilder::record_spec)
        .build()
}
