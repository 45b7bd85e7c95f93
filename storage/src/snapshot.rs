//! Producer state snapshots: `{offset:020}.snapshot`, written at clean close so the next open
//! does not scan the whole log to rebuild idempotence state.
//!
//! Format (big-endian; see `FORMAT.md`):
//!
//! ```text
//! Snapshot =>
//!   version   i16 = 1
//!   crc       u32   CRC32C of everything after this field
//!   count     i32
//!   count × ProducerEntry =>
//!     producer_id    i64
//!     producer_epoch i16
//!     current_txn_first_offset i64   -1 when no transaction is open
//!     coordinator_epoch        i32
//!     batch_count    u8     at most 5
//!     batch_count × (first_seq i32, last_seq i32, first_offset i64, last_offset i64, timestamp i64)
//! ```
#![deny(clippy::indexing_slicing, clippy::unwrap_used, clippy::expect_used)]

use std::collections::VecDeque;
use std::path::Path;

use crate::error::{CorruptReason, Error, Result};
use crate::file_names::{self, SNAPSHOT_SUFFIX};
use crate::fs::{self, FileSystem};
use crate::producer_state::{
    BatchMetadata, MAX_BATCHES_PER_PRODUCER, ProducerStateEntry, ProducerStateManager,
};

const VERSION: i16 = 1;

/// How a snapshot is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Durability {
    /// tmp + fdatasync + rename + directory fsync (at clean close).
    Synced,
    /// tmp + rename, no fsync (at a roll). A snapshot is a cache: one lost or torn by a crash
    /// fails its CRC and the loader falls back to the previous snapshot, which is kept, or to
    /// replaying the log. Not syncing also keeps rolls, which happen inside appends, from
    /// issuing an fsync that could race a failing group commit.
    Unsynced,
}

/// Writes the snapshot for `offset` and deletes all but the previous one.
pub(crate) fn write(
    fs: &dyn FileSystem,
    dir: &Path,
    offset: i64,
    state: &ProducerStateManager,
    durability: Durability,
) -> Result<()> {
    let mut body = Vec::new();
    body.extend_from_slice(&i32::try_from(state.len()).unwrap_or(i32::MAX).to_be_bytes());
    for entry in state.entries() {
        body.extend_from_slice(&entry.producer_id.to_be_bytes());
        body.extend_from_slice(&entry.producer_epoch.to_be_bytes());
        body.extend_from_slice(&entry.current_txn_first_offset.unwrap_or(-1).to_be_bytes());
        body.extend_from_slice(&entry.coordinator_epoch.to_be_bytes());
        let n = entry.batches.len().min(MAX_BATCHES_PER_PRODUCER);
        body.push(u8::try_from(n).unwrap_or(0));
        for b in entry.batches.iter().take(n) {
            body.extend_from_slice(&b.first_seq.to_be_bytes());
            body.extend_from_slice(&b.last_seq.to_be_bytes());
            body.extend_from_slice(&b.first_offset.to_be_bytes());
            body.extend_from_slice(&b.last_offset.to_be_bytes());
            body.extend_from_slice(&b.timestamp.to_be_bytes());
        }
    }
    let mut out = VERSION.to_be_bytes().to_vec();
    out.extend_from_slice(&crc32c::crc32c(&body).to_be_bytes());
    out.extend_from_slice(&body);
    let path = file_names::file_path(dir, offset, SNAPSHOT_SUFFIX);
    match durability {
        Durability::Synced => fs::write_atomically(fs, &path, &out)?,
        Durability::Unsynced => write_unsynced(fs, &path, &out)?,
    }
    let older: Vec<_> = list(fs, dir)?
        .into_iter()
        .filter(|(o, _)| *o < offset)
        .collect();
    for (_, path) in older.iter().rev().skip(1) {
        let _ = fs.remove_file(path);
    }
    Ok(())
}

fn write_unsynced(fs: &dyn FileSystem, path: &Path, bytes: &[u8]) -> Result<()> {
    let mut name = path.file_name().unwrap_or_default().to_os_string();
    name.push(file_names::TMP_SUFFIX);
    let tmp = path.with_file_name(name);
    let file = fs
        .open(&tmp, true)
        .map_err(|e| Error::io("open", &tmp, e))?;
    file.set_len(0)
        .map_err(|e| Error::io("truncate", &tmp, e))?;
    file.write_all_at(bytes, 0)
        .map_err(|e| Error::io("write", &tmp, e))?;
    drop(file);
    fs.rename(&tmp, path)
        .map_err(|e| Error::io("rename", path, e))
}

/// Snapshot files in `dir` as `(offset, path)`, oldest first.
pub(crate) fn list(fs: &dyn FileSystem, dir: &Path) -> Result<Vec<(i64, std::path::PathBuf)>> {
    let names = fs
        .list_dir(dir)
        .map_err(|e| Error::io("list dir", dir, e))?;
    let mut out: Vec<_> = names
        .iter()
        .filter_map(|n| file_names::parse(n).filter(|(_, s)| *s == SNAPSHOT_SUFFIX))
        .map(|(o, _)| (o, file_names::file_path(dir, o, SNAPSHOT_SUFFIX)))
        .collect();
    out.sort_unstable_by_key(|(o, _)| *o);
    Ok(out)
}

/// Reads a snapshot file into `state`.
pub(crate) fn read(
    fs: &dyn FileSystem,
    path: &Path,
    state: &mut ProducerStateManager,
) -> Result<()> {
    let bad = || Error::corrupt(path, 0, CorruptReason::BadCheckpoint);
    let file = fs
        .open(path, false)
        .map_err(|e| Error::io("open snapshot", path, e))?;
    let len = usize::try_from(
        file.len()
            .map_err(|e| Error::io("stat snapshot", path, e))?,
    )
    .map_err(|_| bad())?;
    let mut bytes = vec![0u8; len];
    file.read_exact_at(&mut bytes, 0)
        .map_err(|e| Error::io("read snapshot", path, e))?;
    let mut cur = Reader { buf: &bytes };
    if cur.i16().ok_or_else(bad)? != VERSION {
        return Err(bad());
    }
    let crc = cur.u32().ok_or_else(bad)?;
    if crc32c::crc32c(cur.buf) != crc {
        return Err(bad());
    }
    let count = cur.i32().ok_or_else(bad)?;
    for _ in 0..count {
        let producer_id = cur.i64().ok_or_else(bad)?;
        let producer_epoch = cur.i16().ok_or_else(bad)?;
        let current_txn_first_offset = Some(cur.i64().ok_or_else(bad)?).filter(|&o| o >= 0);
        let coordinator_epoch = cur.i32().ok_or_else(bad)?;
        let n = cur.u8().ok_or_else(bad)?;
        let mut batches = VecDeque::new();
        for _ in 0..n {
            batches.push_back(BatchMetadata {
                first_seq: cur.i32().ok_or_else(bad)?,
                last_seq: cur.i32().ok_or_else(bad)?,
                first_offset: cur.i64().ok_or_else(bad)?,
                last_offset: cur.i64().ok_or_else(bad)?,
                timestamp: cur.i64().ok_or_else(bad)?,
            });
        }
        state.restore(ProducerStateEntry {
            producer_id,
            producer_epoch,
            batches,
            current_txn_first_offset,
            coordinator_epoch,
        });
    }
    Ok(())
}

struct Reader<'a> {
    buf: &'a [u8],
}

impl Reader<'_> {
    fn take<const N: usize>(&mut self) -> Option<[u8; N]> {
        let head: [u8; N] = self.buf.get(..N)?.try_into().ok()?;
        self.buf = self.buf.get(N..)?;
        Some(head)
    }
    fn u8(&mut self) -> Option<u8> {
        self.take::<1>().map(|[b]| b)
    }
    fn i16(&mut self) -> Option<i16> {
        self.take().map(i16::from_be_bytes)
    }
    fn i32(&mut self) -> Option<i32> {
        self.take().map(i32::from_be_bytes)
    }
    fn u32(&mut self) -> Option<u32> {
        self.take().map(u32::from_be_bytes)
    }
    fn i64(&mut self) -> Option<i64> {
        self.take().map(i64::from_be_bytes)
    }
}
