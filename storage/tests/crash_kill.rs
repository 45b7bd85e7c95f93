//! Crash test with a real SIGKILL.
//!
//! How: the test binary runs itself again as a child (only this test, `--exact`), switched into
//! child mode by an environment variable. The child opens a `LogManager` on the shared
//! directory and runs several appender threads; each appends a batch whose bytes follow from a
//! tag (round, thread, sequence), waits for the group commit (`sync_to`), and only then prints
//! `FLUSHED first last crc tag`. The parent reads those lines, kills the child with SIGKILL
//! after a random delay (counted from the child's `READY` line, or for every fourth round from
//! its start, to also kill it while it recovers), reopens the directory and checks that
//! - every batch reported as flushed, in this round or an earlier one, is present at its
//!   offsets, with its CRC, byte for byte;
//! - the log is a clean prefix: every batch CRC-valid, offsets contiguous, no gap, no torn
//!   batch, and every batch is exactly one the child (or the parent) built;
//! - appending and flushing still work.
//!
//! The next round continues on the same directory, half of the rounds after a clean shutdown
//! by the parent and half after the parent merely dropped the manager.
//! `KAIROS_CRASH_SEED` replays the random delays and batch sizes of a failing run (the kill
//! moment itself depends on scheduling).

mod support;

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use kairos_storage::batch::RecordBatchHeader;
use kairos_storage::{LogConfig, LogManager, TopicPartition};
use support::{
    Rng, Stored, append, as_stored, check_clean_prefix, check_contains, tag_of, tagged_batch,
};

const TEST_NAME: &str = "sigkill_at_random_moments_keeps_every_flushed_batch";
const CHILD_DIR_ENV: &str = "KAIROS_CRASH_KILL_CHILD_DIR";
const CHILD_SEED_ENV: &str = "KAIROS_CRASH_KILL_CHILD_SEED";
const ROUNDS: u64 = 24;
const APPENDER_THREADS: u64 = 4;
/// Tag "thread" of the batches the parent appends between rounds.
const PARENT_THREAD: u64 = 0xFF;
/// A child that was never killed gives up after this long, so a broken parent leaves no
/// process behind.
const CHILD_LIFETIME: Duration = Duration::from_secs(30);

fn tp() -> TopicPartition {
    TopicPartition::new("crash", 0)
}

/// Small segments, so that the kills also land around rolls and directory fsyncs.
fn config() -> LogConfig {
    LogConfig {
        segment_bytes: 256 << 10,
        index_interval_bytes: 4096,
        segment_index_bytes: 64 << 10,
        ..LogConfig::default()
    }
}

fn tag(seed: u64, thread: u64, sequence: u64) -> u64 {
    ((seed & 0xFF_FFFF) << 40) | (thread << 32) | sequence
}

/// The batch for `tag`: 1..12 records of 0..700 bytes each, all derived from the tag.
fn batch_for(tag: u64) -> Vec<u8> {
    let mut rng = Rng::new(tag);
    let records = rng.range(1, 12) as usize;
    let value_len = rng.range(0, 700) as usize;
    tagged_batch(tag, records, value_len)
}

#[test]
fn sigkill_at_random_moments_keeps_every_flushed_batch() {
    if let Ok(dir) = std::env::var(CHILD_DIR_ENV) {
        let seed = std::env::var(CHILD_SEED_ENV).unwrap().parse().unwrap();
        run_child(Path::new(&dir), seed);
    }
    let seed = std::env::var("KAIROS_CRASH_SEED").map_or_else(
        |_| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_nanos() as u64
        },
        |s| s.parse().unwrap(),
    );
    eprintln!("crash_kill: KAIROS_CRASH_SEED={seed}");
    let mut rng = Rng::new(seed);
    let dir = tempfile::tempdir().unwrap();
    let started = Instant::now();
    let mut flushed: Vec<Stored> = Vec::new();
    let (mut rounds_with_flushes, mut total_reported) = (0, 0);
    for round in 0..ROUNDS {
        let child_seed = rng.next_u64();
        // Every fourth kill lands while the child starts (opening, recovering); the others
        // after it is appending.
        let kill = if round % 4 == 3 {
            Kill::AfterSpawn(Duration::from_millis(rng.range(0, 60)))
        } else {
            Kill::AfterReady(Duration::from_millis(rng.range(5, 250)))
        };
        let reported = run_round(dir.path(), child_seed, kill);
        rounds_with_flushes += usize::from(!reported.is_empty());
        total_reported += reported.len();
        flushed.extend(reported);

        let manager = LogManager::open_std(dir.path(), 0).unwrap();
        let Some(log) = manager.get(&tp()) else {
            assert!(flushed.is_empty(), "round {round}: the log vanished");
            continue;
        };
        let batches = check_clean_prefix(&log);
        assert_eq!(log.log_start_offset(), 0);
        for batch in &batches {
            let expected = as_stored(batch_for(tag_of(&batch.bytes)), batch.first);
            assert!(
                batch.bytes == expected,
                "round {round}: batch at {} is not a batch that was written",
                batch.first
            );
        }
        flushed.sort_by_key(|b| b.first);
        check_contains(&batches, &flushed);

        let mine = append(&log, batch_for(tag(child_seed, PARENT_THREAD, 0))).unwrap();
        assert_eq!(
            mine.first,
            log.log_end_offset() - (mine.last - mine.first + 1)
        );
        log.sync_to(mine.last + 1, 0).unwrap();
        flushed.push(mine);
        if round % 2 == 0 {
            manager.shutdown(0).unwrap();
        }
        drop((log, manager));
        eprintln!(
            "crash_kill: round {round}: killed {kill:?}, {} batches in the log",
            batches.len() + 1
        );
    }
    eprintln!(
        "crash_kill: {ROUNDS} kills, {total_reported} batches reported flushed, \
         {rounds_with_flushes} rounds killed under load, {:?}",
        started.elapsed()
    );
    assert!(
        rounds_with_flushes >= ROUNDS as usize / 2,
        "enough kills should land while the child is appending"
    );
}

/// When the parent kills the child.
#[derive(Debug, Clone, Copy)]
enum Kill {
    /// This long after starting it.
    AfterSpawn(Duration),
    /// This long after it reported that its log is open.
    AfterReady(Duration),
}

/// Runs one child until it is killed; returns the batches it reported flushed.
fn run_round(dir: &Path, child_seed: u64, kill: Kill) -> Vec<Stored> {
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args([TEST_NAME, "--exact", "--nocapture", "--test-threads=1"])
        .env(CHILD_DIR_ENV, dir)
        .env(CHILD_SEED_ENV, child_seed.to_string())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let (ready_tx, ready_rx) = std::sync::mpsc::channel();
    let reader = std::thread::spawn(move || {
        let mut reported = Vec::new();
        let mut reader = BufReader::new(stdout);
        let mut line = String::new();
        loop {
            line.clear();
            if reader.read_line(&mut line).unwrap() == 0 {
                return reported;
            }
            if line == "READY\n" {
                let _ = ready_tx.send(());
            }
            // A line cut by the kill has no newline: it was never fully reported.
            if let Some(fields) = line
                .strip_prefix("FLUSHED ")
                .and_then(|l| l.strip_suffix('\n'))
            {
                let f: Vec<u64> = fields.split(' ').map(|x| x.parse().unwrap()).collect();
                reported.push((f[0] as i64, f[1] as i64, f[2] as u32, f[3]));
            }
        }
    });
    match kill {
        Kill::AfterSpawn(delay) => std::thread::sleep(delay),
        Kill::AfterReady(delay) => {
            ready_rx
                .recv_timeout(CHILD_LIFETIME)
                .expect("the child opened its log");
            std::thread::sleep(delay);
        }
    }
    if let Some(status) = child.try_wait().unwrap() {
        panic!("the child exited by itself: {status}");
    }
    child.kill().unwrap(); // SIGKILL on Unix.
    let _ = child.wait().unwrap();
    reader
        .join()
        .unwrap()
        .into_iter()
        .map(|(first, last, crc, tag)| {
            let bytes = as_stored(batch_for(tag), first);
            let header = RecordBatchHeader::parse(&bytes).unwrap();
            assert_eq!(header.crc(), crc, "the reported CRC is the built batch's");
            assert_eq!(header.last_offset(), last);
            Stored { first, last, bytes }
        })
        .collect()
}

/// Child mode: append and group-commit from several threads until killed.
fn run_child(dir: &Path, seed: u64) -> ! {
    let manager = LogManager::open_std(dir, 0).unwrap();
    let log = manager.get_or_create(&tp(), config(), 0).unwrap();
    log.update_config(config());
    // On its own line: libtest has already printed `test <name> ... ` without a newline.
    println!("\nREADY");
    let started = Instant::now();
    let threads: Vec<_> = (0..APPENDER_THREADS)
        .map(|thread| {
            let log = Arc::clone(&log);
            std::thread::spawn(move || {
                for sequence in 0.. {
                    assert!(
                        started.elapsed() < CHILD_LIFETIME,
                        "the parent never killed me"
                    );
                    let tag = tag(seed, thread, sequence);
                    let stored = append(&log, batch_for(tag)).unwrap();
                    log.sync_to(stored.last + 1, 0).unwrap();
                    let crc = RecordBatchHeader::parse(&stored.bytes).unwrap().crc();
                    println!("FLUSHED {} {} {crc} {tag}", stored.first, stored.last);
                }
            })
        })
        .collect();
    for thread in threads {
        thread.join().unwrap();
    }
    unreachable!("appenders run until killed");
}
