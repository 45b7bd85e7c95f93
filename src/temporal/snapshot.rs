//! Due index snapshots: the index of one partition as of a cursor offset, so a restart replays
//! only the log after it (DESIGN §5.8). A snapshot is a cache: deleting it rebuilds the same
//! index from the log.
//!
//! Format (big-endian):
//!
//! ```text
//! magic     [u8; 8]  "KDUEIDX1"
//! cursor    i64      the next offset the indexer would read
//! count     u64
//! count × Entry (32 bytes):
//!   hash      u64
//!   check     u16
//!   field     u8
//!   pad       u8     0
//!   due_ms    i64    -1 when nothing is pending
//!   offset    u48    latest indexed version
//!   fired_ms  u48    last due time that fired; all ones for none
//! crc       u32      CRC32C of everything before it
//! ```

use std::io::{self, Read, Write};

use super::due_index::{DueIndex, EntityId, SnapshotEntry};

const MAGIC: &[u8; 8] = b"KDUEIDX1";
const ENTRY_BYTES: usize = 32;
const NONE48: u64 = (1 << 48) - 1;

/// Writes `index` as of `cursor` to `out`. Returns the bytes written.
///
/// # Errors
/// I/O errors of `out`.
pub fn write(index: &DueIndex, cursor: i64, out: &mut impl Write) -> io::Result<u64> {
    let mut crc = 0u32;
    let mut written = 0u64;
    let mut put = |bytes: &[u8], out: &mut dyn Write| -> io::Result<()> {
        crc = crc32c::crc32c_append(crc, bytes);
        written += bytes.len() as u64;
        out.write_all(bytes)
    };
    put(MAGIC, out)?;
    put(&cursor.to_be_bytes(), out)?;
    put(&(index.entities() as u64).to_be_bytes(), out)?;
    let mut buf = Vec::with_capacity(ENTRY_BYTES * 1024);
    for entry in &index.snapshot_entries() {
        buf.extend_from_slice(&encode(entry));
        if buf.len() >= ENTRY_BYTES * 1024 {
            put(&buf, out)?;
            buf.clear();
        }
    }
    put(&buf, out)?;
    let crc_bytes = crc.to_be_bytes();
    out.write_all(&crc_bytes)?;
    Ok(written + 4)
}

fn encode(e: &SnapshotEntry) -> [u8; ENTRY_BYTES] {
    let mut out = [0u8; ENTRY_BYTES];
    let (hash, check, field) = e.id.parts();
    out[0..8].copy_from_slice(&hash.to_be_bytes());
    out[8..10].copy_from_slice(&check.to_be_bytes());
    out[10] = field;
    out[12..20].copy_from_slice(&e.due_ms.to_be_bytes());
    let offset = u64::try_from(e.offset).unwrap_or(0) & NONE48;
    out[20..26].copy_from_slice(&offset.to_be_bytes()[2..]);
    let fired = u64::try_from(e.fired_ms).map_or(NONE48, |f| f & NONE48);
    out[26..32].copy_from_slice(&fired.to_be_bytes()[2..]);
    out
}

fn decode(b: &[u8]) -> SnapshotEntry {
    let u48 = |s: &[u8]| -> u64 {
        let mut full = [0u8; 8];
        full[2..].copy_from_slice(s);
        u64::from_be_bytes(full)
    };
    let hash = u64::from_be_bytes(b[0..8].try_into().unwrap_or_default());
    let check = u16::from_be_bytes(b[8..10].try_into().unwrap_or_default());
    let fired = u48(&b[26..32]);
    SnapshotEntry {
        id: EntityId::from_parts(hash, check, b[10]),
        due_ms: i64::from_be_bytes(b[12..20].try_into().unwrap_or_default()),
        offset: i64::try_from(u48(&b[20..26])).unwrap_or(0),
        fired_ms: if fired == NONE48 {
            -1
        } else {
            i64::try_from(fired).unwrap_or(-1)
        },
    }
}

/// Why a snapshot was not loaded (the caller then rebuilds from the log).
#[derive(Debug, thiserror::Error)]
pub enum SnapshotError {
    /// Reading failed.
    #[error("reading the due index snapshot: {0}")]
    Io(#[from] io::Error),
    /// Wrong magic, a short file, or a CRC mismatch.
    #[error("the due index snapshot is corrupt")]
    Corrupt,
}

/// Reads a snapshot: the index and the cursor it covers.
///
/// # Errors
/// [`SnapshotError`]; a corrupt snapshot is never partly loaded.
pub fn read(input: &mut impl Read) -> Result<(DueIndex, i64), SnapshotError> {
    let mut bytes = Vec::new();
    let _ = input.read_to_end(&mut bytes)?;
    if bytes.len() < MAGIC.len() + 8 + 8 + 4 || !bytes.starts_with(MAGIC) {
        return Err(SnapshotError::Corrupt);
    }
    let (body, crc) = bytes.split_at(bytes.len() - 4);
    if crc32c::crc32c(body) != u32::from_be_bytes(crc.try_into().unwrap_or_default()) {
        return Err(SnapshotError::Corrupt);
    }
    let cursor = i64::from_be_bytes(body[8..16].try_into().unwrap_or_default());
    let count = u64::from_be_bytes(body[16..24].try_into().unwrap_or_default());
    let entries = &body[24..];
    if entries.len() as u64 != count.saturating_mul(ENTRY_BYTES as u64) {
        return Err(SnapshotError::Corrupt);
    }
    let mut index = DueIndex::with_capacity(usize::try_from(count).unwrap_or(0));
    for chunk in entries.chunks_exact(ENTRY_BYTES) {
        index.restore(decode(chunk));
    }
    Ok((index, cursor))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_pending_and_fired_state_and_refuses_corruption() {
        let mut index = DueIndex::new();
        for k in 0..5000u32 {
            let _ = index.upsert(
                EntityId::new(&k.to_be_bytes(), 1),
                i64::from(k) * 1000,
                i64::from(k),
            );
        }
        let mut due = Vec::new();
        index.pop_due(100_000, usize::MAX, &mut due);
        for e in &due {
            assert!(index.fired(e));
        }
        let _ = index.remove(EntityId::new(&7u32.to_be_bytes(), 1));
        let mut bytes = Vec::new();
        let _ = write(&index, 4242, &mut bytes).unwrap();
        let (mut restored, cursor) = read(&mut bytes.as_slice()).unwrap();
        assert_eq!(cursor, 4242);
        assert_eq!(restored.entities(), index.entities());
        assert_eq!(restored.pending(), index.pending());
        let id = EntityId::new(&50u32.to_be_bytes(), 1);
        assert_eq!(restored.fired_of(id), Some(50_000));
        assert_eq!(
            restored.pending_of(EntityId::new(&4000u32.to_be_bytes(), 1)),
            Some((4_000_000, 4000))
        );
        assert_eq!(restored.next_due(), index.next_due());
        let mut flipped = bytes.clone();
        flipped[40] ^= 1;
        assert!(matches!(
            read(&mut flipped.as_slice()),
            Err(SnapshotError::Corrupt)
        ));
        assert!(matches!(
            read(&mut &bytes[..bytes.len() - 1]),
            Err(SnapshotError::Corrupt)
        ));
    }
}

#[cfg(test)]
mod timing {
    use super::*;
    use std::time::Instant;

    /// Run with `--ignored --nocapture` in release to see where a restore spends its time.
    #[test]
    #[ignore = "prints a measurement"]
    fn print_restore_breakdown() {
        let n = 8_000_000u64;
        let mut index = DueIndex::with_capacity(n as usize);
        for i in 0..n {
            let due = 1_800_000_000_000
                + i64::try_from(i.wrapping_mul(2_654_435_761) % 31_536_000_000).unwrap();
            let _ = index.upsert(
                EntityId::new(&i.to_be_bytes(), 0),
                due,
                i64::try_from(i).unwrap(),
            );
        }
        let mut bytes = Vec::new();
        let t = Instant::now();
        let _ = write(&index, 1, &mut bytes).unwrap();
        println!("write: {:?}", t.elapsed());
        let t = Instant::now();
        let crc = crc32c::crc32c(&bytes);
        println!("crc only: {:?} ({crc})", t.elapsed());
        let t = Instant::now();
        let decoded: Vec<SnapshotEntry> = bytes[24..bytes.len() - 4]
            .chunks_exact(ENTRY_BYTES)
            .map(decode)
            .collect();
        println!("decode only: {:?}", t.elapsed());
        let t = Instant::now();
        let mut fresh = DueIndex::with_capacity(n as usize);
        println!("reserve: {:?}", t.elapsed());
        let t = Instant::now();
        for e in decoded {
            fresh.restore(e);
        }
        println!("restore loop: {:?}", t.elapsed());
        let t = Instant::now();
        let _ = read(&mut bytes.as_slice()).unwrap();
        println!("full read: {:?}", t.elapsed());
    }
}
