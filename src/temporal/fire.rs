//! Building the record a due entity fires: key = the entity key; value = its latest committed
//! value with the field's merge patch applied; timestamp = the due time; headers = the source
//! version's headers (minus earlier `kairos.*` due headers) plus `kairos.due.field`,
//! `kairos.due.at` (decimal epoch ms) and `kairos.source.offset`; a fire into a
//! `temporal.target.topic` also gets `kairos.source.topic` (the pulse adds it).

use std::collections::HashMap;

use kairos_storage::Log;
use kairos_storage::batch::Batches;
use kairos_storage::builder::{RecordBatchBuilder, RecordSpec};
use kairos_storage::record::RecordBytes;

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

/// The records at `offsets` (absent ones were removed by compaction or retention). Offsets
/// are visited in order and every stored batch is decoded once, however many of them it
/// holds: a producer's batch can hold thousands of entities, and decoding it again for each
/// (the pulse used to) made a large backlog drain at a few thousand fires per second.
///
/// # Errors
/// Storage errors.
pub fn read_records(
    log: &Log,
    offsets: &[i64],
) -> kairos_storage::Result<HashMap<i64, SourceRecord>> {
    let mut wanted = offsets.to_vec();
    wanted.sort_unstable();
    wanted.dedup();
    // Offsets that retention removed, or past the end, have no record.
    let (start, end) = (log.log_start_offset(), log.log_end_offset());
    wanted.retain(|o| (start..end).contains(o));
    let mut found = HashMap::with_capacity(wanted.len());
    let mut next = 0;
    while let Some(&offset) = wanted.get(next) {
        let data = log.read(offset, 1, None)?;
        let Some(Ok((_, batch))) = Batches::new(&data.records).next() else {
            break;
        };
        let rest = wanted.get(next..).unwrap_or_default();
        if let Ok(records) = RecordBytes::of(&batch) {
            for record in records.records().map_while(Result::ok) {
                let at = batch.base_offset() + i64::from(record.offset_delta);
                if rest.binary_search(&at).is_ok() {
                    let _ = found.insert(at, source_record(at, &record));
                }
            }
        }
        // Every wanted offset up to this batch's end is answered (or was compacted away).
        let last = batch.last_offset().max(offset);
        while wanted.get(next).is_some_and(|o| *o <= last) {
            next += 1;
        }
    }
    Ok(found)
}

fn source_record(offset: i64, record: &kairos_storage::record::Record<'_>) -> SourceRecord {
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

/// The fire record for `entry`, whose latest version is `source`.
#[must_use]
pub fn fire_record(config: &TemporalConfig, entry: &DueEntry, source: &SourceRecord) -> RecordSpec {
    let selector = config
        .fields
        .get(usize::from(entry.id.field()))
        .map_or("", |f| f.as_str());
    let value = config
        .patches
        .apply(selector, source.value.as_deref())
        .or_else(|| source.value.clone());
    let mut headers: Vec<(String, Option<Vec<u8>>)> = source
        .headers
        .iter()
        .filter(|(k, _)| {
            ![
                HEADER_DUE_FIELD,
                HEADER_DUE_AT,
                HEADER_SOURCE_OFFSET,
                HEADER_SOURCE_TOPIC,
            ]
            .contains(&k.as_str())
        })
        .cloned()
        .collect();
    headers.push((HEADER_DUE_FIELD.into(), Some(selector.as_bytes().to_vec())));
    headers.push((
        HEADER_DUE_AT.into(),
        Some(entry.due_ms.to_string().into_bytes()),
    ));
    headers.push((
        HEADER_SOURCE_OFFSET.into(),
        Some(source.offset.to_string().into_bytes()),
    ));
    RecordSpec {
        key: source.key.clone(),
        value,
        timestamp_ms: entry.due_ms,
        headers,
    }
}

/// One batch holding `fires`, in order.
#[must_use]
pub fn fire_batch(fires: Vec<RecordSpec>) -> Vec<u8> {
    let mut out = Vec::new();
    fire_batch_into(fires, &mut out);
    out
}

/// [`fire_batch`], appended to `out` (several batches for one append share one buffer).
pub fn fire_batch_into(fires: Vec<RecordSpec>, out: &mut Vec<u8>) {
    fires
        .into_iter()
        .fold(RecordBatchBuilder::new(), RecordBatchBuilder::record_spec)
        .build_into(out);
}
