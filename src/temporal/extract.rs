//! Reading a record's temporal fields: each selector of `temporal.fields` gives a due time,
//! nothing (the field is absent, null, or the record is a tombstone), or a malformed value.
//!
//! Pointer fields are found with a lazy JSON lookup that skips over everything it does not need,
//! rather than parsing the whole value: a topic's produce rate should not pay for the parts of
//! an entity the due index never reads.

use super::selector::{FieldSelector, FieldSource};
use super::time_format::{MalformedTime, RawTime, TemporalFormat, parse_due_ms};

/// Due times above this are refused as out of range: the due index stores them in 48 bits
/// (that is past the year 10000).
pub const MAX_DUE_MS: i64 = (1 << 48) - 1;

/// What one selector found in one record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FieldValue {
    /// A due time in UTC epoch ms.
    Due(i64),
    /// No such field, a JSON null, or a tombstone: the entry for this field is cancelled.
    Absent,
    /// Present but not a time: counted and logged, never fired.
    Malformed(MalformedTime),
}

/// Extracts every selector's value from one record, in selector order, into `out` (cleared
/// first). `headers` are the record's headers in order; the first header with a selector's name
/// is used.
pub fn extract<'h>(
    selectors: &[FieldSelector],
    format: TemporalFormat,
    value: Option<&[u8]>,
    headers: impl Iterator<Item = (&'h [u8], Option<&'h [u8]>)> + Clone,
    out: &mut Vec<FieldValue>,
) {
    out.clear();
    for selector in selectors {
        let found = match selector.source() {
            FieldSource::Header(name) => header_value(headers.clone(), name, format),
            FieldSource::Pointer(tokens) => match value {
                None => FieldValue::Absent,
                Some(json) => pointer_value(json, tokens, format),
            },
        };
        out.push(found);
    }
}

fn checked(due: Result<i64, MalformedTime>) -> FieldValue {
    match due {
        Ok(ms) if ms > MAX_DUE_MS => FieldValue::Malformed(MalformedTime::OutOfRange),
        Ok(ms) => FieldValue::Due(ms),
        Err(e) => FieldValue::Malformed(e),
    }
}

fn header_value<'h>(
    mut headers: impl Iterator<Item = (&'h [u8], Option<&'h [u8]>)>,
    name: &str,
    format: TemporalFormat,
) -> FieldValue {
    match headers.find(|(k, _)| *k == name.as_bytes()) {
        None | Some((_, None)) => FieldValue::Absent,
        Some((_, Some(bytes))) => match std::str::from_utf8(bytes) {
            Ok(text) => checked(parse_due_ms(RawTime::Text(text.trim()), format)),
            Err(_) => FieldValue::Malformed(MalformedTime::Unparseable),
        },
    }
}

fn pointer_value(json: &[u8], tokens: &[String], format: TemporalFormat) -> FieldValue {
    match sonic_rs::get_from_slice(json, tokens.iter().map(String::as_str)) {
        Ok(lazy) => raw_value(lazy.as_raw_str(), format),
        Err(e) if e.is_not_found() => FieldValue::Absent,
        // The lazy lookup treats every token as an object key and stops at the first surprise
        // (an array, a scalar on the path, invalid JSON). RFC 6901 indexes arrays with digit
        // tokens and resolves nothing through scalars; those rare cases take a full parse, which
        // also tells invalid JSON apart.
        Err(_) => full_parse_value(json, tokens, format),
    }
}

fn full_parse_value(json: &[u8], tokens: &[String], format: TemporalFormat) -> FieldValue {
    let Ok(doc) = serde_json::from_slice::<serde_json::Value>(json) else {
        return FieldValue::Malformed(MalformedTime::Unparseable);
    };
    let pointer: String = tokens
        .iter()
        .map(|t| format!("/{}", t.replace('~', "~0").replace('/', "~1")))
        .collect();
    match doc.pointer(&pointer) {
        None | Some(serde_json::Value::Null) => FieldValue::Absent,
        Some(serde_json::Value::Number(n)) => {
            checked(parse_due_ms(RawTime::Number(&n.to_string()), format))
        }
        Some(serde_json::Value::String(s)) => checked(parse_due_ms(RawTime::Text(s), format)),
        Some(_) => FieldValue::Malformed(MalformedTime::Unparseable),
    }
}

/// Interprets the raw JSON text of the found value.
fn raw_value(raw: &str, format: TemporalFormat) -> FieldValue {
    match raw.as_bytes().first() {
        Some(b'"') => {
            let inner = raw.get(1..raw.len().saturating_sub(1)).unwrap_or_default();
            if inner.contains('\\') {
                match serde_json::from_str::<String>(raw) {
                    Ok(text) => checked(parse_due_ms(RawTime::Text(&text), format)),
                    Err(_) => FieldValue::Malformed(MalformedTime::Unparseable),
                }
            } else {
                checked(parse_due_ms(RawTime::Text(inner), format))
            }
        }
        Some(b'-' | b'0'..=b'9') => checked(parse_due_ms(RawTime::Number(raw), format)),
        Some(b'n') if raw == "null" => FieldValue::Absent,
        _ => FieldValue::Malformed(MalformedTime::Unparseable),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::temporal::selector::parse_fields;

    fn run(fields: &str, value: Option<&str>, headers: &[(&str, Option<&str>)]) -> Vec<FieldValue> {
        let selectors = parse_fields(fields).unwrap();
        let headers: Vec<(&[u8], Option<&[u8]>)> = headers
            .iter()
            .map(|(k, v)| (k.as_bytes(), v.map(str::as_bytes)))
            .collect();
        let mut out = Vec::new();
        extract(
            &selectors,
            TemporalFormat::Auto,
            value.map(str::as_bytes),
            headers.iter().copied(),
            &mut out,
        );
        out
    }

    #[test]
    fn finds_nested_fields_headers_and_absences() {
        let value = r#"{"id":"p1","validity":{"start":"2024-01-01","end":1704067200001},
                        "expiration_date":"2024-01-01T00:00:00Z","note":null}"#;
        let got = run(
            "/expiration_date,/validity/end,/missing,/note,header:until",
            Some(value),
            &[("until", Some("1704067200002"))],
        );
        assert_eq!(
            got,
            vec![
                FieldValue::Due(1_704_067_200_000),
                FieldValue::Due(1_704_067_200_001),
                FieldValue::Absent,
                FieldValue::Absent,
                FieldValue::Due(1_704_067_200_002),
            ]
        );
    }

    #[test]
    fn tombstones_and_missing_headers_cancel() {
        assert_eq!(run("/a,header:h", None, &[]), vec![FieldValue::Absent; 2]);
        assert_eq!(
            run("header:h", None, &[("h", None)]),
            vec![FieldValue::Absent]
        );
    }

    #[test]
    fn malformed_values_are_reported() {
        let got = run(
            "/a,/b,/c,/d",
            Some(r#"{"a":"soon","b":true,"c":{"x":1},"d":1.5}"#),
            &[],
        );
        assert!(
            got.iter().all(|v| matches!(v, FieldValue::Malformed(_))),
            "{got:?}"
        );
        assert!(matches!(
            run("/a", Some("not json"), &[])[0],
            FieldValue::Malformed(_)
        ));
        assert!(matches!(
            run("/a", Some(r#"{"a":99999999999999999}"#), &[])[0],
            FieldValue::Malformed(MalformedTime::OutOfRange)
        ));
        assert!(matches!(
            run("header:h", None, &[("h", Some("later"))])[0],
            FieldValue::Malformed(_)
        ));
    }

    #[test]
    fn escaped_strings_and_array_indices_follow_json_and_rfc6901() {
        let got = run(
            "/a~1b,/list/1/at",
            Some(r#"{"a/b":"2024-01-01T00:00:00\u005a","list":[{"at":1},{"at":2}]}"#),
            &[],
        );
        assert_eq!(
            got,
            vec![FieldValue::Due(1_704_067_200_000), FieldValue::Due(2)]
        );
    }
}
