//! File names inside a partition directory, as Kafka's `LogFileUtils` spells them, so that
//! operators and Kafka's own tools recognise a Kairos log directory at a glance.

use std::path::{Path, PathBuf};

/// Log data: the record batches themselves.
pub const LOG_SUFFIX: &str = ".log";
/// Sparse offset → position index.
pub const INDEX_SUFFIX: &str = ".index";
/// Sparse timestamp → offset index.
pub const TIME_INDEX_SUFFIX: &str = ".timeindex";
/// Aborted-transaction index.
pub const TXN_INDEX_SUFFIX: &str = ".txnindex";
/// Producer state snapshot.
pub const SNAPSHOT_SUFFIX: &str = ".snapshot";
/// A segment file scheduled for deletion.
pub const DELETED_SUFFIX: &str = ".deleted";
/// A segment (or its transaction index) being written by the cleaner.
pub const CLEANED_SUFFIX: &str = ".cleaned";
/// A cleaned segment ready to replace the segments it covers.
pub const SWAP_SUFFIX: &str = ".swap";
/// Temporary checkpoint being written.
pub const TMP_SUFFIX: &str = ".tmp";

/// `{offset:020}{suffix}`, e.g. `00000000000000000042.log`.
#[must_use]
pub fn file_name(offset: i64, suffix: &str) -> String {
    format!("{offset:020}{suffix}")
}

/// Path of a file for `offset` inside `dir`.
#[must_use]
pub fn file_path(dir: &Path, offset: i64, suffix: &str) -> PathBuf {
    dir.join(file_name(offset, suffix))
}

/// Parses `00000000000000000042.log` into `(42, ".log")`. Returns `None` for other names.
#[must_use]
pub fn parse(name: &str) -> Option<(i64, &str)> {
    let digits = name.get(..20)?;
    if !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let offset = digits.parse().ok()?;
    Some((offset, name.get(20..)?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_offsets_and_suffixes() {
        assert_eq!(file_name(42, LOG_SUFFIX), "00000000000000000042.log");
        assert_eq!(parse("00000000000000000042.log"), Some((42, ".log")));
        assert_eq!(
            parse("00000000000000000007.log.deleted"),
            Some((7, ".log.deleted"))
        );
        assert_eq!(parse("leader-epoch-checkpoint"), None);
        assert_eq!(parse("0000000000000000004x.log"), None);
    }
}
