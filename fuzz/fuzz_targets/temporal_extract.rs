//! Fuzz target: due-field extraction and time parsing over arbitrary values.
//!
//! The input's first byte picks a `temporal.format` and a selector set (pointers, nested and
//! array-indexing pointers, a header); the rest is the record value, and is also offered as
//! the header's value. Extraction must never panic, must give one result per selector, and any
//! due time it finds must be a valid epoch-ms value within the range the due index stores.
#![no_main]

use kairos::temporal::extract::{FieldValue, MAX_DUE_MS, extract};
use kairos::temporal::selector::parse_fields;
use kairos::temporal::time_format::TemporalFormat;
use libfuzzer_sys::fuzz_target;

const SELECTORS: [&str; 4] = [
    "/expiration_date",
    "/validity/end,/a~1b",
    "/list/0/at,/list/1",
    "header:until,/x",
];
const FORMATS: [TemporalFormat; 4] = [
    TemporalFormat::Auto,
    TemporalFormat::Rfc3339,
    TemporalFormat::EpochMs,
    TemporalFormat::EpochS,
];

fuzz_target!(|data: &[u8]| {
    let Some((&choice, value)) = data.split_first() else { return };
    let selectors = parse_fields(SELECTORS[usize::from(choice & 3)]).expect("valid selectors");
    let format = FORMATS[usize::from((choice >> 2) & 3)];
    let headers = [(&b"until"[..], Some(value))];
    let mut out = Vec::new();
    extract(&selectors, format, Some(value), headers.iter().copied(), &mut out);
    assert_eq!(out.len(), selectors.len());
    for found in &out {
        if let FieldValue::Due(ms) = *found {
            assert!((0..=MAX_DUE_MS).contains(&ms), "due time {ms} out of range");
        }
    }
    // A tombstone never yields a due time from the value.
    extract(&selectors, format, None, std::iter::empty(), &mut out);
    assert!(out.iter().all(|v| *v == FieldValue::Absent));
});
