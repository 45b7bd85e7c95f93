//! `temporal.format` and the parsing of due times into UTC epoch milliseconds.
//!
//! Under `auto` (the default) a JSON number, or a string of ASCII digits only, is epoch
//! milliseconds; any other string is RFC 3339 with `Z` or an offset, or a date-only
//! `YYYY-MM-DD`, which means midnight UTC. A header value is always a string.

use std::str::FromStr;

use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;
use time::macros::format_description;

/// How due times are written in a topic's records.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum TemporalFormat {
    /// Numbers and digit strings are epoch ms; other strings RFC 3339 or `YYYY-MM-DD`.
    #[default]
    Auto,
    /// RFC 3339 strings (or date-only), nothing else.
    Rfc3339,
    /// Epoch milliseconds, as a number or a digit string.
    EpochMs,
    /// Epoch seconds, as a number or a digit string.
    EpochS,
}

impl TemporalFormat {
    /// The config value.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Auto => "auto",
            Self::Rfc3339 => "rfc3339",
            Self::EpochMs => "epoch_ms",
            Self::EpochS => "epoch_s",
        }
    }
}

impl FromStr for TemporalFormat {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "auto" => Ok(Self::Auto),
            "rfc3339" => Ok(Self::Rfc3339),
            "epoch_ms" => Ok(Self::EpochMs),
            "epoch_s" => Ok(Self::EpochS),
            other => Err(format!(
                "temporal.format {other:?} is not one of auto, rfc3339, epoch_ms, epoch_s"
            )),
        }
    }
}

/// A raw field value, before interpretation.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum RawTime<'a> {
    /// A JSON number, as written (`1700000000000`, `1.7e12`).
    Number(&'a str),
    /// A JSON string (unescaped) or a header value.
    Text(&'a str),
}

/// Why a present field is not a usable time (counted as malformed, never fired).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum MalformedTime {
    /// Not a number or string of the configured form.
    #[error("not a time in the configured format")]
    Unparseable,
    /// A time outside what epoch milliseconds in an i64 can hold, or before 1970.
    #[error("time out of range")]
    OutOfRange,
}

/// Parses a raw value into UTC epoch milliseconds under `format`.
///
/// # Errors
/// [`MalformedTime`] when the value does not fit the format.
pub fn parse_due_ms(raw: RawTime<'_>, format: TemporalFormat) -> Result<i64, MalformedTime> {
    match (format, raw) {
        (TemporalFormat::Auto | TemporalFormat::EpochMs, RawTime::Number(n)) => integer(n),
        (TemporalFormat::EpochS, RawTime::Number(n)) => seconds(integer(n)?),
        (TemporalFormat::Auto, RawTime::Text(t)) if is_digits(t) => integer(t),
        (TemporalFormat::EpochMs, RawTime::Text(t)) if is_digits(t) => integer(t),
        (TemporalFormat::EpochS, RawTime::Text(t)) if is_digits(t) => seconds(integer(t)?),
        (TemporalFormat::Auto | TemporalFormat::Rfc3339, RawTime::Text(t)) => rfc3339(t),
        _ => Err(MalformedTime::Unparseable),
    }
}

fn is_digits(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit())
}

/// Whole numbers only: `1.5e12` or `-3` are not epoch milliseconds a producer meant.
fn integer(s: &str) -> Result<i64, MalformedTime> {
    if !is_digits(s) {
        return Err(MalformedTime::Unparseable);
    }
    s.parse().map_err(|_| MalformedTime::OutOfRange)
}

fn seconds(s: i64) -> Result<i64, MalformedTime> {
    s.checked_mul(1000).ok_or(MalformedTime::OutOfRange)
}

fn rfc3339(text: &str) -> Result<i64, MalformedTime> {
    let at = if text.len() == 10 {
        let date = time::Date::parse(text, format_description!("[year]-[month]-[day]"))
            .map_err(|_| MalformedTime::Unparseable)?;
        date.midnight().assume_utc()
    } else {
        OffsetDateTime::parse(text, &Rfc3339).map_err(|_| MalformedTime::Unparseable)?
    };
    let ms = at.unix_timestamp_nanos() / 1_000_000;
    let ms = i64::try_from(ms).map_err(|_| MalformedTime::OutOfRange)?;
    if ms < 0 {
        return Err(MalformedTime::OutOfRange);
    }
    Ok(ms)
}

#[cfg(test)]
mod tests {
    use super::*;
    use RawTime::{Number, Text};
    use TemporalFormat::{Auto, EpochMs, EpochS, Rfc3339 as Rfc};

    #[test]
    fn auto_reads_numbers_digit_strings_rfc3339_and_dates() {
        assert_eq!(
            parse_due_ms(Number("1700000000000"), Auto),
            Ok(1_700_000_000_000)
        );
        assert_eq!(
            parse_due_ms(Text("1700000000000"), Auto),
            Ok(1_700_000_000_000)
        );
        assert_eq!(
            parse_due_ms(Text("2024-01-01T00:00:00Z"), Auto),
            Ok(1_704_067_200_000)
        );
        assert_eq!(
            parse_due_ms(Text("2024-01-01T02:00:00.250+02:00"), Auto),
            Ok(1_704_067_200_250)
        );
        assert_eq!(
            parse_due_ms(Text("2024-01-01"), Auto),
            Ok(1_704_067_200_000)
        );
    }

    #[test]
    fn explicit_formats_refuse_the_other_forms() {
        assert_eq!(
            parse_due_ms(Number("1700000000"), EpochS),
            Ok(1_700_000_000_000)
        );
        assert_eq!(
            parse_due_ms(Text("1700000000"), EpochS),
            Ok(1_700_000_000_000)
        );
        assert!(parse_due_ms(Number("1700000000000"), Rfc).is_err());
        assert!(parse_due_ms(Text("2024-01-01T00:00:00Z"), EpochMs).is_err());
        assert_eq!(parse_due_ms(Text("2024-01-01"), Rfc), Ok(1_704_067_200_000));
    }

    #[test]
    fn malformed_values_are_errors_not_guesses() {
        for bad in [
            "",
            "tomorrow",
            "2024-13-01",
            "2024-01-01T00:00:00",
            "1.5",
            "-5",
            "0x10",
        ] {
            assert!(parse_due_ms(Text(bad), Auto).is_err(), "{bad:?}");
        }
        assert!(parse_due_ms(Number("1.7e12"), Auto).is_err());
        assert!(parse_due_ms(Number("-1"), Auto).is_err());
        assert_eq!(
            parse_due_ms(Number("99999999999999999999"), Auto),
            Err(MalformedTime::OutOfRange)
        );
        assert_eq!(
            parse_due_ms(Text("1969-12-31T23:59:59Z"), Auto),
            Err(MalformedTime::OutOfRange)
        );
        assert_eq!(
            parse_due_ms(Number("99999999999999999"), EpochS),
            Err(MalformedTime::OutOfRange)
        );
    }
}
