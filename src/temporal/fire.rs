//! Building the record a due entity fires: key = the entity key; value = its latest committed
//! value with the field's merge patch applied; timestamp = the due time; headers = the source
//! version's headers (minus earlier `kairos.*` due headers) plus `kairos.due.field`,
//! `kairos.due.at` (decimal epoch ms) and `kairos.source.offset`.

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
    let data = log.read(offset, 1, None)?;
    let Some(Ok((_, batch))) = Batches::new(&data.records).next() else {
        return Ok(None);
    };
    let Ok(records) = RecordBytes::of(&batch) else {
        return Ok(None);
    };
    for record in records.records().map_while(Result::ok) {
        if batch.base_offset() + i64::from(record.offset_delta) == offset {
            return Ok(Some(SourceRecord {
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
            }));
        }
    }
    Ok(None)
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
            ![HEADER_DUE_FIELD, HEADER_DUE_AT, HEADER_SOURCE_OFFSET].contains(&k.as_str())
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
    fires
        .into_iter()
        .fold(RecordBatchBuilder::new(), RecordBatchBuilder::record_spec)
        .build()
}
