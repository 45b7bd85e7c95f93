//! Offset checkpoint files in the data directory, in Kafka's text format so its tools read
//! them: `recovery-point-offset-checkpoint`, `log-start-offset-checkpoint` and
//! `cleaner-offset-checkpoint`.
//!
//! Format:
//!
//! ```text
//! 0                      version
//! N                      number of entries
//! <topic> <partition> <offset>   N lines
//! ```
//!
//! Written atomically (tmp + fsync + rename + directory fsync); a checkpoint that fails to
//! parse is ignored with a warning, which only costs a longer recovery.

use std::collections::HashMap;
use std::path::Path;

use crate::error::{CorruptReason, Error, Result};
use crate::fs::{self, FileSystem};
use crate::manager::TopicPartition;

/// File name of the recovery point checkpoint.
pub const RECOVERY_POINT_CHECKPOINT: &str = "recovery-point-offset-checkpoint";
/// File name of the cleaner's first-dirty-offset checkpoint.
pub const CLEANER_OFFSET_CHECKPOINT: &str = "cleaner-offset-checkpoint";
/// File name of the log start offset checkpoint.
pub const LOG_START_OFFSET_CHECKPOINT: &str = "log-start-offset-checkpoint";

/// Writes `entries` to `path`.
pub(crate) fn write(
    fs: &dyn FileSystem,
    path: &Path,
    entries: &[(TopicPartition, i64)],
) -> Result<()> {
    let mut text = format!("0\n{}\n", entries.len());
    for (tp, offset) in entries {
        text.push_str(&format!("{} {} {offset}\n", tp.topic, tp.partition));
    }
    fs::write_atomically(fs, path, text.as_bytes())
}

/// Reads `path`; a missing file is an empty checkpoint.
pub(crate) fn read(fs: &dyn FileSystem, path: &Path) -> Result<HashMap<TopicPartition, i64>> {
    if !fs.exists(path) {
        return Ok(HashMap::new());
    }
    let file = fs
        .open(path, false)
        .map_err(|e| Error::io("open checkpoint", path, e))?;
    let len = file
        .len()
        .map_err(|e| Error::io("stat checkpoint", path, e))?;
    let mut bytes = vec![0u8; usize::try_from(len).unwrap_or(0)];
    file.read_exact_at(&mut bytes, 0)
        .map_err(|e| Error::io("read checkpoint", path, e))?;
    parse(&bytes).ok_or_else(|| Error::corrupt(path, 0, CorruptReason::BadCheckpoint))
}

fn parse(bytes: &[u8]) -> Option<HashMap<TopicPartition, i64>> {
    let text = std::str::from_utf8(bytes).ok()?;
    let mut lines = text.lines();
    if lines.next()? != "0" {
        return None;
    }
    let count: usize = lines.next()?.parse().ok()?;
    let mut out = HashMap::with_capacity(count.min(1 << 16));
    for _ in 0..count {
        let mut fields = lines.next()?.split(' ');
        let topic = fields.next()?.to_owned();
        let partition = fields.next()?.parse().ok()?;
        let offset = fields.next()?.parse().ok()?;
        let _ = out.insert(TopicPartition { topic, partition }, offset);
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_kafka_format_and_rejects_garbage() {
        let parsed = parse(b"0\n2\nprices 0 42\nmy-topic 3 7\n").unwrap();
        assert_eq!(parsed[&TopicPartition::new("prices", 0)], 42);
        assert_eq!(parsed[&TopicPartition::new("my-topic", 3)], 7);
        assert!(parse(b"1\n0\n").is_none());
        assert!(parse(b"0\n2\nprices 0 42\n").is_none());
        assert!(parse(b"0\n1\nprices x 42\n").is_none());
    }
}
