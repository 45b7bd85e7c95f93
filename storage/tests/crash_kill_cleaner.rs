//! Crash test of compaction with a real SIGKILL: the process dies at random points of cleaner
//! passes (mapping, writing `.cleaned`, renaming to `.swap`, replacing segments) while records
//! are appended, and the log still holds the latest durable record of every key.
//!
//! How: the test binary runs itself again as a child (only this test, `--exact`), switched
//! into child mode by an environment variable. The child opens a compacted log with 2 KiB
//! segments and runs two appender threads and a cleaner thread. Each appender writes one-record
//! batches to random keys (one in six a tombstone), waits for the group commit (`sync_to`) and
//! only then prints `ACK offset key value`; the cleaner runs `LogManager::clean_once` in a loop
//! with a zero dirty ratio and prints `PASS` after every pass that cleaned. The parent kills the
//! child with SIGKILL a random 60..400 ms after its `READY` line, reopens the directory (which
//! completes or discards an interrupted swap) and checks that
//! - no `.cleaned` or `.swap` file is left and every segment file holds only offsets in
//!   `[its base, the next segment's base)`: old and cleaned segments never both survive;
//! - reading from the start, batches are CRC-valid and offsets strictly increase;
//! - for every key, the latest record in the log is at or after its latest acknowledged
//!   write: that very record (same offset and value), or, for a tombstone, possibly nothing
//!   (cleaned after `delete.retention.ms`), or a newer write the child made but had not
//!   acknowledged yet (whose value names the same key). No key is older than what was
//!   acknowledged, and no acknowledged value is lost.
//!
//! The trials continue on the same directory, so acknowledgements of earlier trials stay
//! constraints; every other trial the parent shuts the manager down cleanly before the next.
//! `KAIROS_CRASH_SEED` replays the random delays and keys (the kill moment itself depends on
//! scheduling).

mod support;

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use kairos_storage::batch::Batches;
use kairos_storage::builder::RecordBatchBuilder;
use kairos_storage::record::RecordBytes;
use kairos_storage::{
    AppendOrigin, AppendOutcome, CleanupPolicy, Log, LogCleaner, LogConfig, LogManager,
    TopicPartition,
};
use support::Rng;

const TEST_NAME: &str = "sigkill_during_cleaning_keeps_the_latest_durable_record_per_key";
const CHILD_DIR_ENV: &str = "KAIROS_CRASH_CLEANER_CHILD_DIR";
const CHILD_SEED_ENV: &str = "KAIROS_CRASH_CLEANER_CHILD_SEED";
const TRIALS: u64 = 20;
const KEYS: u64 = 48;
const APPENDER_THREADS: u64 = 2;
/// A child that was never killed gives up after this long, so a broken parent leaves no
/// process behind.
const CHILD_LIFETIME: Duration = Duration::from_secs(30);

fn tp() -> TopicPartition {
    TopicPartition::new("crash-clean", 0)
}

/// Small segments, so that passes are frequent and short and kills land inside them.
fn config() -> LogConfig {
    LogConfig {
        cleanup_policy: CleanupPolicy::Compact,
        segment_bytes: 2048,
        index_interval_bytes: 256,
        min_cleanable_dirty_ratio: 0.0,
        delete_retention_ms: 100,
        ..LogConfig::default()
    }
}

/// Wall-clock milliseconds: record timestamps and the cleaner's `now_ms`, so that tombstone
/// retention runs on one clock across the trials' processes.
fn now_ms() -> i64 {
    i64::try_from(
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_millis(),
    )
    .unwrap()
}

/// A key's latest acknowledged write: offset and value (`None`, a tombstone).
type Acked = BTreeMap<String, (i64, Option<String>)>;

#[test]
fn sigkill_during_cleaning_keeps_the_latest_durable_record_per_key() {
    if let Ok(dir) = std::env::var(CHILD_DIR_ENV) {
        let seed = std::env::var(CHILD_SEED_ENV).unwrap().parse().unwrap();
        run_child(Path::new(&dir), seed);
    }
    let seed = std::env::var("KAIROS_CRASH_SEED")
        .map_or_else(|_| now_ms().unsigned_abs(), |s| s.parse().unwrap());
    eprintln!("crash_kill_cleaner: KAIROS_CRASH_SEED={seed}");
    let mut rng = Rng::new(seed);
    let dir = tempfile::tempdir().unwrap();
    let started = Instant::now();
    let mut acked = Acked::new();
    let (mut total_acks, mut total_passes, mut killed_after_a_pass) = (0, 0, 0);
    // Kills that left a `.cleaned` file (before the commit point) or a `.swap` (after it).
    let mut killed_in_stage = (0, 0);
    for trial in 0..TRIALS {
        let delay = Duration::from_millis(rng.range(60, 400));
        let (acks, passes) = run_trial(dir.path(), rng.next_u64(), delay);
        total_acks += acks.len();
        total_passes += passes;
        killed_after_a_pass += usize::from(passes > 0);
        for (offset, key, value) in acks {
            if acked.get(&key).is_none_or(|(latest, _)| *latest < offset) {
                let _ = acked.insert(key, (offset, value));
            }
        }

        let (cleaned, swap) = check_segment_files(&dir.path().join(tp().dir_name()), trial);
        killed_in_stage.0 += usize::from(cleaned);
        killed_in_stage.1 += usize::from(swap);
        let manager = LogManager::open_std(dir.path(), now_ms()).unwrap();
        if let Some(log) = manager.get(&tp()) {
            check_latest(&log, &acked, trial);
            // What survived the kill is durable from now on, acknowledged or not: a newer
            // tombstone the child wrote but never acknowledged may be cleaned away in a later
            // trial, and the key's absence is then correct, not a lost value.
            for (key, latest) in latest_records(&log, trial) {
                if acked.get(&key).is_none_or(|(offset, _)| *offset < latest.0) {
                    let _ = acked.insert(key, latest);
                }
            }
        } else {
            assert!(acked.is_empty(), "trial {trial}: the log vanished");
        }
        if trial % 2 == 0 {
            manager.shutdown(now_ms()).unwrap();
        }
        eprintln!(
            "crash_kill_cleaner: trial {trial}: killed {delay:?} after READY, {passes} passes"
        );
    }
    eprintln!(
        "crash_kill_cleaner: {TRIALS} kills, {total_acks} acknowledged writes, \
         {total_passes} cleaner passes, {killed_after_a_pass} kills after at least one pass, \
         {} with a .cleaned file left, {} with a .swap file, {} keys, {:?}",
        killed_in_stage.0,
        killed_in_stage.1,
        acked.len(),
        started.elapsed()
    );
    assert!(
        killed_after_a_pass >= TRIALS as usize / 4,
        "the cleaner must be busy when most kills land"
    );
}

/// Runs one child until it is killed; returns its acknowledged writes and completed passes.
fn run_trial(
    dir: &Path,
    seed: u64,
    delay: Duration,
) -> (Vec<(i64, String, Option<String>)>, usize) {
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args([TEST_NAME, "--exact", "--nocapture", "--test-threads=1"])
        .env(CHILD_DIR_ENV, dir)
        .env(CHILD_SEED_ENV, seed.to_string())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let (ready_tx, ready_rx) = std::sync::mpsc::channel();
    let reader = std::thread::spawn(move || {
        let (mut acks, mut passes) = (Vec::new(), 0);
        let mut reader = BufReader::new(stdout);
        let mut line = String::new();
        loop {
            line.clear();
            if reader.read_line(&mut line).unwrap() == 0 {
                return (acks, passes);
            }
            // A line cut by the kill has no newline: it was never fully reported.
            let Some(line) = line.strip_suffix('\n') else {
                continue;
            };
            let fields: Vec<&str> = line.split(' ').collect();
            match fields.as_slice() {
                ["READY"] => {
                    let _ = ready_tx.send(());
                }
                ["PASS"] => passes += 1,
                ["ACK", offset, key, value] => acks.push((
                    offset.parse().unwrap(),
                    (*key).to_owned(),
                    (*value != "-").then(|| (*value).to_owned()),
                )),
                _ => {}
            }
        }
    });
    ready_rx
        .recv_timeout(CHILD_LIFETIME)
        .expect("the child opened its log");
    std::thread::sleep(delay);
    if let Some(status) = child.try_wait().unwrap() {
        panic!("the child exited by itself: {status}");
    }
    child.kill().unwrap(); // SIGKILL on Unix.
    let _ = child.wait().unwrap();
    reader.join().unwrap()
}

/// No two segment files share an offset, whatever the kill left. Returns which swap stages
/// the kill left behind (`.cleaned`, `.swap`) for the reopen to resolve.
fn check_segment_files(partition_dir: &Path, trial: u64) -> (bool, bool) {
    let Ok(entries) = std::fs::read_dir(partition_dir) else {
        return (false, false);
    };
    let names: Vec<String> = entries
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    let mut bases: Vec<i64> = names
        .iter()
        .filter_map(|n| n.strip_suffix(".log"))
        .map(|n| n.parse().unwrap())
        .collect();
    bases.sort_unstable();
    let stage = |suffix: &str| names.iter().any(|n| n.ends_with(suffix));
    for (i, &base) in bases.iter().enumerate() {
        let next = bases.get(i + 1).copied().unwrap_or(i64::MAX);
        let bytes = std::fs::read(partition_dir.join(format!("{base:020}.log"))).unwrap();
        for batch in Batches::new(&bytes) {
            // A torn unsynced tail is recovery's business; stop at it.
            let Ok((_, batch)) = batch else { break };
            if batch.verify_crc().is_err() {
                break;
            }
            assert!(
                base <= batch.base_offset() && batch.last_offset() < next,
                "trial {trial}: segment {base} holds {}..={}, next segment at {next}; files: {names:?}",
                batch.base_offset(),
                batch.last_offset()
            );
        }
    }
    (stage(".cleaned"), stage(".swap"))
}

/// Every key's latest record is at or after its latest acknowledged write (module docs); and
/// the reopened directory has no swap stage left.
fn check_latest(log: &Log, acked: &Acked, trial: u64) {
    let leftovers: Vec<String> = std::fs::read_dir(log.dir())
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|n| n.ends_with(".cleaned") || n.ends_with(".swap"))
        .collect();
    assert!(
        leftovers.is_empty(),
        "trial {trial}: left over {leftovers:?}"
    );
    let latest = latest_records(log, trial);
    for (key, (offset, value)) in acked {
        match latest.get(key) {
            None => assert!(
                value.is_none(),
                "trial {trial}: key {key} lost its acknowledged value {value:?} at {offset}"
            ),
            Some((found, found_value)) if found == offset => assert_eq!(
                found_value, value,
                "trial {trial}: key {key} at offset {offset}"
            ),
            Some((found, found_value)) => {
                assert!(
                    found > offset,
                    "trial {trial}: key {key} went back to offset {found} ({found_value:?}) \
                     from its acknowledged {offset} ({value:?})"
                );
                assert!(
                    found_value
                        .as_ref()
                        .is_none_or(|v| v.starts_with(&format!("{key}:"))),
                    "trial {trial}: key {key} holds {found_value:?}"
                );
            }
        }
    }
}

/// The latest (offset, value) per key, reading from the log start; checks CRCs and that
/// offsets strictly increase.
fn latest_records(log: &Log, trial: u64) -> Acked {
    let mut out = Acked::new();
    let mut offset = log.log_start_offset();
    let mut previous = -1;
    while offset < log.log_end_offset() {
        let data = log.read(offset, 1 << 20, None).unwrap();
        let mut next = offset;
        for batch in Batches::new(&data.records) {
            let (_, batch) = batch.expect("batch frames");
            batch.verify_crc().expect("batch CRC");
            for record in RecordBytes::of(&batch).unwrap().records() {
                let record = record.unwrap();
                let at = batch.base_offset() + i64::from(record.offset_delta);
                assert!(at > previous, "trial {trial}: offset {at} after {previous}");
                previous = at;
                let key = String::from_utf8(record.key.unwrap().to_vec()).unwrap();
                let value = record.value.map(|v| String::from_utf8(v.to_vec()).unwrap());
                let _ = out.insert(key, (at, value));
            }
            next = batch.last_offset() + 1;
        }
        if next == offset {
            break;
        }
        offset = next;
    }
    out
}

/// Child mode: append, group-commit and clean until killed.
fn run_child(dir: &Path, seed: u64) -> ! {
    let manager = Arc::new(LogManager::open_std(dir, now_ms()).unwrap());
    let log = manager.get_or_create(&tp(), config(), now_ms()).unwrap();
    log.update_config(config());
    // On its own line: libtest has already printed `test <name> ... ` without a newline.
    println!("\nREADY");
    let started = Instant::now();
    let busy = Arc::new(AtomicBool::new(true));
    let cleaner = {
        let manager = Arc::clone(&manager);
        let busy = Arc::clone(&busy);
        std::thread::spawn(move || {
            let mut cleaner = LogCleaner::new(0);
            while busy.load(Ordering::Relaxed) {
                alive(started);
                if manager
                    .clean_once(now_ms(), &mut cleaner)
                    .unwrap()
                    .is_some()
                {
                    println!("PASS");
                } else {
                    std::thread::sleep(Duration::from_millis(1));
                }
            }
        })
    };
    let appenders: Vec<_> = (0..APPENDER_THREADS)
        .map(|thread| {
            let log = Arc::clone(&log);
            std::thread::spawn(move || {
                let mut rng = Rng::new(seed ^ thread);
                for sequence in 0.. {
                    alive(started);
                    let key = format!("key{}", rng.range(0, KEYS));
                    let value =
                        (rng.range(0, 6) != 0).then(|| format!("{key}:{seed}:{thread}:{sequence}"));
                    let offset = append(&log, &key, value.as_deref());
                    log.sync_to(offset + 1, 0).unwrap();
                    println!("ACK {offset} {key} {}", value.as_deref().unwrap_or("-"));
                }
            })
        })
        .collect();
    for thread in appenders {
        thread.join().unwrap();
    }
    busy.store(false, Ordering::Relaxed);
    cleaner.join().unwrap();
    unreachable!("appenders run until killed");
}

fn alive(started: Instant) {
    assert!(
        started.elapsed() < CHILD_LIFETIME,
        "the parent never killed me"
    );
}

fn append(log: &Log, key: &str, value: Option<&str>) -> i64 {
    let now = now_ms();
    let mut bytes = RecordBatchBuilder::new()
        .record(Some(key.as_bytes()), value.map(str::as_bytes), now)
        .build();
    match log
        .append(&mut bytes, AppendOrigin::Client, now, 0)
        .unwrap()
    {
        AppendOutcome::Appended(info) => info.first_offset,
        other => panic!("{other:?}"),
    }
}
