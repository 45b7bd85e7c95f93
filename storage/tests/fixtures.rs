//! Recovery of the checked-in data directories under `storage/fixtures/`, each a few KB:
//!
//! - `torn_tail`: half a batch at the end of the active segment, no clean-shutdown marker, the
//!   recovery point at the active segment's base. Recovery cuts the half batch.
//! - `zero_filled_index`: a clean shutdown whose active segment's `.index` and `.timeindex`
//!   are all zeros at their preallocated size (the entries never reached the disk). The log is
//!   valid; the index sanity check fails and both indexes are rebuilt.
//! - `bad_crc`: one flipped bit inside the third batch of the first of several segments, no
//!   marker, recovery point 0. Recovery keeps the two batches before it and deletes the later
//!   segments, which would otherwise follow a gap.
//!
//! How: each test copies a fixture to a temporary directory (fixtures are never opened in
//! place), opens it with a `LogManager`, and checks the exact log end offset, that the surviving
//! batches are exactly the ones the generator wrote (rebuilt here from their tags), that a read
//! at every offset and a timestamp lookup for every batch find the right batch, and that the
//! index files left by a clean shutdown are sane and point at batch boundaries.
//!
//! The fixtures were written by `generate_fixtures` (ignored; run it with `--ignored` only to
//! add a fixture, then commit the bytes). The format they pin must keep loading.

mod support;

use std::path::{Path, PathBuf};

use kairos_storage::batch::Batches;
use kairos_storage::{LogConfig, LogManager, TopicPartition};
use support::{Stored, as_stored, check_clean_prefix, tagged_batch};

/// Small segments and indexes so that each fixture has several of each in a few KB.
fn config() -> LogConfig {
    LogConfig {
        segment_bytes: 1500,
        index_interval_bytes: 200,
        segment_index_bytes: 256,
        ..LogConfig::default()
    }
}

fn tp() -> TopicPartition {
    TopicPartition::new("fx", 0)
}

/// Batch `tag` of every fixture: `1 + tag % 3` records with 40-byte values, timestamp `tag`.
fn fixture_batch(tag: u64) -> Vec<u8> {
    tagged_batch(tag, 1 + (tag % 3) as usize, 40)
}

/// Batches `1..=count` as the log stores them from offset 0.
fn expected_batches(count: u64) -> Vec<Stored> {
    let mut next = 0;
    (1..=count)
        .map(|tag| {
            let records = 1 + (tag % 3) as i64;
            let stored = Stored {
                first: next,
                last: next + records - 1,
                bytes: as_stored(fixture_batch(tag), next),
            };
            next += records;
            stored
        })
        .collect()
}

fn fixture_dir(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fixtures")
        .join(name)
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            let _ = std::fs::copy(entry.path(), target).unwrap();
        }
    }
}

/// A temporary copy of fixture `name`, and its partition directory.
fn open_copy(name: &str) -> (tempfile::TempDir, PathBuf) {
    let source = fixture_dir(name);
    assert!(source.is_dir(), "missing fixture {source:?}");
    let dir = tempfile::tempdir().unwrap();
    copy_dir(&source, dir.path());
    let partition = dir.path().join(tp().dir_name());
    (dir, partition)
}

fn segment_file(partition: &Path, base: i64, suffix: &str) -> PathBuf {
    partition.join(kairos_storage::file_names::file_name(base, suffix))
}

/// Opens the data directory, checks its log against the first `surviving` fixture batches,
/// shuts down and checks the index files. Returns the segment base offsets.
fn check_recovered(data_dir: &Path, surviving: u64) -> Vec<i64> {
    let expected = expected_batches(surviving);
    let end = expected.last().unwrap().last + 1;
    let manager = LogManager::open_with_configs(
        std::sync::Arc::new(kairos_storage::fs::StdFs),
        data_dir,
        0,
        |_| config(),
    )
    .unwrap();
    let log = manager.get(&tp()).unwrap();
    assert_eq!(log.log_end_offset(), end);
    assert_eq!(log.log_start_offset(), 0);
    assert_eq!(check_clean_prefix(&log), expected);
    for batch in &expected {
        for offset in batch.first..=batch.last {
            let read = log.read(offset, 1, None).unwrap();
            assert_eq!(read.records[..], batch.bytes[..], "read at {offset}");
        }
        let timestamp = i64::try_from(support::tag_of(&batch.bytes)).unwrap();
        let found = log.offset_for_timestamp(timestamp).unwrap().unwrap();
        assert_eq!(found.offset, batch.first, "timestamp {timestamp}");
    }
    let bases = log.segment_base_offsets();
    manager.shutdown(0).unwrap();
    drop((log, manager));
    let partition = data_dir.join(tp().dir_name());
    for &base in &bases {
        check_offset_index(&partition, base);
    }
    bases
}

/// The `.index` of a closed segment: whole 8-byte entries, strictly increasing, each pointing
/// at the start of the batch whose last offset it names.
fn check_offset_index(partition: &Path, base: i64) {
    let index = std::fs::read(segment_file(partition, base, ".index")).unwrap();
    let log = std::fs::read(segment_file(partition, base, ".log")).unwrap();
    assert_eq!(index.len() % 8, 0, "trimmed to whole entries");
    let starts: std::collections::HashMap<usize, i64> = Batches::new(&log)
        .map(|b| {
            let (at, header) = b.unwrap();
            (at, header.last_offset())
        })
        .collect();
    let mut previous = None;
    for entry in index.chunks(8) {
        let relative = u32::from_be_bytes(entry[..4].try_into().unwrap());
        let position = u32::from_be_bytes(entry[4..].try_into().unwrap());
        if let Some((r, p)) = previous {
            assert!(
                relative > r && position > p,
                "index of {base} not increasing"
            );
        }
        previous = Some((relative, position));
        assert_eq!(
            starts.get(&(position as usize)),
            Some(&(base + i64::from(relative))),
            "index entry ({relative}, {position}) of segment {base}"
        );
    }
    if log.len() > 2 * config().index_interval_bytes as usize {
        assert!(previous.is_some(), "segment {base} has index entries");
    }
}

#[test]
fn torn_tail_is_cut_at_the_last_whole_batch() {
    let (dir, partition) = open_copy("torn_tail");
    let bases = check_recovered(dir.path(), TORN_TAIL_BATCHES);
    let active = *bases.last().unwrap();
    let log = std::fs::read(segment_file(&partition, active, ".log")).unwrap();
    assert_eq!(
        Batches::new(&log)
            .map(|b| b.unwrap().1.total_size())
            .sum::<usize>(),
        log.len(),
        "the half batch is gone from the file"
    );
    assert!(bases.len() > 1);
}

#[test]
fn zero_filled_indexes_are_rebuilt_after_a_clean_shutdown() {
    let (dir, partition) = open_copy("zero_filled_index");
    let active = *bases_of(&partition).last().unwrap();
    let index = std::fs::read(segment_file(&partition, active, ".index")).unwrap();
    assert!(!index.is_empty() && index.iter().all(|&b| b == 0));
    assert!(dir.path().join(".kafka_cleanshutdown").exists());
    let bases = check_recovered(dir.path(), ZERO_FILLED_INDEX_BATCHES);
    assert_eq!(*bases.last().unwrap(), active);
    let rebuilt = std::fs::read(segment_file(&partition, active, ".index")).unwrap();
    assert!(!rebuilt.is_empty(), "the rebuilt index has entries");
}

#[test]
fn zero_filled_indexes_are_rebuilt_after_an_unclean_shutdown() {
    let (dir, _) = open_copy("zero_filled_index");
    std::fs::remove_file(dir.path().join(".kafka_cleanshutdown")).unwrap();
    let _ = check_recovered(dir.path(), ZERO_FILLED_INDEX_BATCHES);
}

#[test]
fn bad_crc_mid_segment_truncates_there_and_drops_later_segments() {
    let (dir, partition) = open_copy("bad_crc");
    let later: Vec<_> = std::fs::read_dir(&partition)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|n| n.ends_with(".log") && !n.starts_with("00000000000000000000"))
        .collect();
    assert!(!later.is_empty(), "the fixture has later segments");
    let bases = check_recovered(dir.path(), BAD_CRC_BATCH - 1);
    assert_eq!(bases, vec![0]);
    for name in later {
        assert!(!partition.join(name).exists());
    }
}

/// Batches written to `torn_tail` before the half batch.
const TORN_TAIL_BATCHES: u64 = 20;
/// Batches in `zero_filled_index`.
const ZERO_FILLED_INDEX_BATCHES: u64 = 24;
/// Batches in `bad_crc`, and the tag of the batch with the flipped bit (in the first segment).
const BAD_CRC_BATCHES: u64 = 24;
const BAD_CRC_BATCH: u64 = 3;

/// Writes every fixture from scratch into `storage/fixtures/`.
#[test]
#[ignore = "writes the checked-in fixtures; run by hand when adding one"]
fn generate_fixtures() {
    // torn_tail
    let out = write_clean(TORN_TAIL_BATCHES, "torn_tail");
    let partition = out.join(tp().dir_name());
    let bases = bases_of(&partition);
    assert!(bases.len() > 1);
    let active = *bases.last().unwrap();
    std::fs::remove_file(out.join(".kafka_cleanshutdown")).unwrap();
    write_recovery_point(&out, active);
    let end = expected_batches(TORN_TAIL_BATCHES).last().unwrap().last + 1;
    let half = as_stored(fixture_batch(TORN_TAIL_BATCHES + 1), end);
    append_bytes(
        &segment_file(&partition, active, ".log"),
        &half[..half.len() / 2],
    );

    // zero_filled_index
    let out = write_clean(ZERO_FILLED_INDEX_BATCHES, "zero_filled_index");
    let partition = out.join(tp().dir_name());
    let active = *bases_of(&partition).last().unwrap();
    let index_bytes = config().segment_index_bytes as usize;
    std::fs::write(
        segment_file(&partition, active, ".index"),
        vec![0u8; index_bytes / 8 * 8],
    )
    .unwrap();
    std::fs::write(
        segment_file(&partition, active, ".timeindex"),
        vec![0u8; index_bytes / 12 * 12],
    )
    .unwrap();

    // bad_crc
    let out = write_clean(BAD_CRC_BATCHES, "bad_crc");
    let partition = out.join(tp().dir_name());
    assert!(bases_of(&partition).len() > 2);
    std::fs::remove_file(out.join(".kafka_cleanshutdown")).unwrap();
    write_recovery_point(&out, 0);
    let first = segment_file(&partition, 0, ".log");
    let mut bytes = std::fs::read(&first).unwrap();
    let (at, header) = Batches::new(&bytes)
        .nth(usize::try_from(BAD_CRC_BATCH - 1).unwrap())
        .unwrap()
        .unwrap();
    let flip = at + header.total_size() - 5;
    assert!(at + header.total_size() < bytes.len(), "mid-segment");
    bytes[flip] ^= 0x10;
    std::fs::write(&first, bytes).unwrap();
}

/// Writes batches `1..=count` through the engine, shuts down cleanly, and copies the data
/// directory (without its lock file) to fixture `name`.
fn write_clean(count: u64, name: &str) -> PathBuf {
    let scratch = tempfile::tempdir().unwrap();
    {
        let manager = LogManager::open_std(scratch.path(), 0).unwrap();
        let log = manager.get_or_create(&tp(), config(), 0).unwrap();
        for (tag, want) in (1..=count).zip(expected_batches(count)) {
            assert_eq!(support::append(&log, fixture_batch(tag)).unwrap(), want);
        }
        manager.shutdown(0).unwrap();
    }
    std::fs::remove_file(scratch.path().join(".lock")).unwrap();
    let out = fixture_dir(name);
    if out.exists() {
        std::fs::remove_dir_all(&out).unwrap();
    }
    copy_dir(scratch.path(), &out);
    out
}

fn bases_of(partition: &Path) -> Vec<i64> {
    let mut bases: Vec<i64> = std::fs::read_dir(partition)
        .unwrap()
        .filter_map(|e| {
            let name = e.unwrap().file_name().into_string().unwrap();
            name.strip_suffix(".log").map(|b| b.parse().unwrap())
        })
        .collect();
    bases.sort_unstable();
    bases
}

fn write_recovery_point(data_dir: &Path, offset: i64) {
    let text = format!("0\n1\n{} {} {offset}\n", tp().topic, tp().partition);
    std::fs::write(
        data_dir.join(kairos_storage::RECOVERY_POINT_CHECKPOINT),
        text,
    )
    .unwrap();
}

fn append_bytes(path: &Path, bytes: &[u8]) {
    use std::io::Write;
    let mut file = std::fs::OpenOptions::new().append(true).open(path).unwrap();
    file.write_all(bytes).unwrap();
}
