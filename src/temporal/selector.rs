//! Field selectors of `temporal.fields`: a JSON Pointer (RFC 6901) into the record value, such
//! as `/expiration_date` or `/validity/end`, or `header:<name>` for a record header. The
//! selector string is the field's name everywhere (headers, metrics, listings).

use std::fmt;

/// Prefix of a header selector.
pub const HEADER_PREFIX: &str = "header:";

/// Where a temporal field is read from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FieldSource {
    /// Unescaped reference tokens of a JSON Pointer into the value.
    Pointer(Vec<String>),
    /// A record header, read as a string.
    Header(String),
}

/// One element of `temporal.fields`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldSelector {
    text: String,
    source: FieldSource,
}

/// Why a `temporal.fields` value is refused (answered as INVALID_CONFIG).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SelectorError {
    /// Neither `/...` nor `header:...`.
    #[error("selector {0:?} is neither a JSON Pointer (\"/field\") nor \"header:<name>\"")]
    Unrecognised(String),
    /// `~` not followed by `0` or `1` (RFC 6901 §3).
    #[error("selector {0:?} has an invalid ~ escape")]
    BadEscape(String),
    /// `header:` with nothing after it.
    #[error("selector {0:?} names no header")]
    EmptyHeader(String),
    /// The same selector twice.
    #[error("selector {0:?} is listed twice")]
    Duplicate(String),
    /// More selectors than a topic may have.
    #[error("at most {max} temporal fields per topic")]
    TooMany {
        /// The limit.
        max: usize,
    },
}

/// A topic may index at most this many fields. The field index is stored in 8 bits per entry.
pub const MAX_FIELDS: usize = 16;

impl FieldSelector {
    /// Parses one selector.
    ///
    /// # Errors
    /// [`SelectorError`] for anything but a valid pointer or header selector.
    pub fn parse(text: &str) -> Result<Self, SelectorError> {
        let source = if let Some(name) = text.strip_prefix(HEADER_PREFIX) {
            if name.is_empty() {
                return Err(SelectorError::EmptyHeader(text.to_owned()));
            }
            FieldSource::Header(name.to_owned())
        } else if let Some(rest) = text.strip_prefix('/') {
            let tokens = rest
                .split('/')
                .map(unescape)
                .collect::<Option<Vec<_>>>()
                .ok_or_else(|| SelectorError::BadEscape(text.to_owned()))?;
            FieldSource::Pointer(tokens)
        } else {
            return Err(SelectorError::Unrecognised(text.to_owned()));
        };
        Ok(Self {
            text: text.to_owned(),
            source,
        })
    }

    /// The selector as configured: the field's name.
    #[must_use]
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// Where it reads from.
    #[must_use]
    pub fn source(&self) -> &FieldSource {
        &self.source
    }
}

impl fmt::Display for FieldSelector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

/// RFC 6901 §4: `~1` is `/`, `~0` is `~`, in that order; any other `~` is invalid.
fn unescape(token: &str) -> Option<String> {
    let mut out = String::with_capacity(token.len());
    let mut chars = token.chars();
    while let Some(c) = chars.next() {
        if c == '~' {
            match chars.next() {
                Some('0') => out.push('~'),
                Some('1') => out.push('/'),
                _ => return None,
            }
        } else {
            out.push(c);
        }
    }
    Some(out)
}

/// Parses a `temporal.fields` value: comma-separated selectors, surrounding whitespace
/// ignored. An empty value means the topic is not indexed. A selector cannot contain a comma:
/// the comma always separates, so such a selector fails to parse as intended and the list is
/// refused if a piece is not a selector.
///
/// # Errors
/// [`SelectorError`] for the first bad element, duplicates, or too many fields.
pub fn parse_fields(value: &str) -> Result<Vec<FieldSelector>, SelectorError> {
    if value.trim().is_empty() {
        return Ok(Vec::new());
    }
    let mut out: Vec<FieldSelector> = Vec::new();
    for piece in value.split(',').map(str::trim) {
        let selector = FieldSelector::parse(piece)?;
        if out.iter().any(|s| s.text == selector.text) {
            return Err(SelectorError::Duplicate(selector.text));
        }
        out.push(selector);
    }
    if out.len() > MAX_FIELDS {
        return Err(SelectorError::TooMany { max: MAX_FIELDS });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_pointers_headers_and_lists() {
        let fields = parse_fields(" /expiration_date, /validity/end ,header:valid-until").unwrap();
        assert_eq!(fields.len(), 3);
        assert_eq!(
            fields[1].source(),
            &FieldSource::Pointer(vec!["validity".into(), "end".into()])
        );
        assert_eq!(
            fields[2].source(),
            &FieldSource::Header("valid-until".into())
        );
        assert_eq!(fields[0].as_str(), "/expiration_date");
        assert!(parse_fields("").unwrap().is_empty());
        assert!(parse_fields("  ").unwrap().is_empty());
    }

    #[test]
    fn unescapes_rfc6901_tokens() {
        let s = FieldSelector::parse("/a~1b/c~0d/~01").unwrap();
        assert_eq!(
            s.source(),
            &FieldSource::Pointer(vec!["a/b".into(), "c~d".into(), "~1".into()])
        );
    }

    #[test]
    fn refuses_bad_selectors() {
        assert!(matches!(
            parse_fields("expiration_date"),
            Err(SelectorError::Unrecognised(_))
        ));
        assert!(matches!(
            parse_fields("/a~2"),
            Err(SelectorError::BadEscape(_))
        ));
        assert!(matches!(
            parse_fields("header:"),
            Err(SelectorError::EmptyHeader(_))
        ));
        assert!(matches!(
            parse_fields("/a,/a"),
            Err(SelectorError::Duplicate(_))
        ));
        // A comma always separates: "/a,b" is "/a" and "b", and "b" is not a selector.
        assert!(matches!(
            parse_fields("/a,b"),
            Err(SelectorError::Unrecognised(_))
        ));
        assert!(matches!(
            parse_fields("/a,"),
            Err(SelectorError::Unrecognised(_))
        ));
        let many = (0..=MAX_FIELDS)
            .map(|i| format!("/f{i}"))
            .collect::<Vec<_>>()
            .join(",");
        assert!(matches!(
            parse_fields(&many),
            Err(SelectorError::TooMany { .. })
        ));
    }
}
