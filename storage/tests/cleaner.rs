//! Log compaction: after cleaning, a reader from the start sees exactly the latest record per
//! key with offsets preserved; tombstones go after `delete.retention.ms`; aborted transactional
//! records never come back; idempotence state survives; and a crash on either side of the swap's
//! commit point leaves the old segments or the new ones.
//!
//! How: small segments so that many roll; `LogManager::clean_once` drives passes with explicit
//! `now_ms`; reads decode every record back; crash states are built by copying directories.

use std::collections::BTreeMap;
use std::path::Path;

use kairos_storage::batch::Batches;
use kairos_storage::builder::RecordBatchBuilder;
use kairos_storage::control::{ControlRecordType, EndTransactionMarker, build_marker};
use kairos_storage::record::RecordBytes;
use kairos_storage::{
    AppendOrigin, AppendOutcome, CleanupPolicy, Log, LogCleaner, LogConfig, LogManager,
    TopicPartition,
};

type Rows = Vec<(i64, Vec<u8>, Option<Vec<u8>>)>;

fn compacted() -> LogConfig {
    LogConfig {
        cleanup_policy: CleanupPolicy::Compact,
        segment_bytes: 1024,
        min_cleanable_dirty_ratio: 0.0,
        delete_retention_ms: 1_000,
        ..LogConfig::default()
    }
}

fn put(log: &Log, key: &str, value: Option<&str>, ts: i64) -> i64 {
    let mut bytes = RecordBatchBuilder::new()
        .record(Some(key.as_bytes()), value.map(str::as_bytes), ts)
        .build();
    match log.append(&mut bytes, AppendOrigin::Client, ts, 0).unwrap() {
        AppendOutcome::Appended(info) => info.first_offset,
        other => panic!("{other:?}"),
    }
}

/// Every record from the log start, as (offset, key, value).
fn rows(log: &Log) -> Rows {
    let mut out = Vec::new();
    let mut offset = log.log_start_offset();
    while offset < log.log_end_offset() {
        let data = log.read(offset, 1 << 20, None).unwrap();
        let mut next = offset;
        for batch in Batches::new(&data.records) {
            let (_, batch) = batch.unwrap();
            batch.verify_crc().unwrap();
            let records = RecordBytes::of(&batch).unwrap();
            for r in records.records() {
                let r = r.unwrap();
                out.push((
                    batch.base_offset() + i64::from(r.offset_delta),
                    r.key.unwrap_or_default().to_vec(),
                    r.value.map(<[u8]>::to_vec),
                ));
            }
            next = batch.last_offset() + 1;
        }
        if next == offset {
            // Only a gap (removed records) is left before the log end offset.
            break;
        }
        offset = next;
    }
    out
}

fn latest(rows: &Rows) -> BTreeMap<Vec<u8>, (i64, Option<Vec<u8>>)> {
    rows.iter()
        .map(|(o, k, v)| (k.clone(), (*o, v.clone())))
        .collect()
}

fn clean(manager: &LogManager, now: i64) -> bool {
    let mut cleaner = LogCleaner::new(1 << 20);
    manager.clean_once(now, &mut cleaner).unwrap().is_some()
}

fn sync_and_roll(log: &Log) {
    log.sync_to(log.log_end_offset(), 0).unwrap();
    log.roll().unwrap();
}

#[test]
fn keeps_exactly_the_latest_record_per_key_with_offsets_preserved() {
    let dir = tempfile::tempdir().unwrap();
    let manager = LogManager::open_std(dir.path(), 0).unwrap();
    let log = manager
        .get_or_create(&TopicPartition::new("c", 0), compacted(), 0)
        .unwrap();
    for i in 0..300 {
        put(&log, &format!("k{}", i % 17), Some(&format!("v{i}")), 10);
    }
    sync_and_roll(&log);
    let before = rows(&log);
    let (bytes_before, segments_before) = (log.size_bytes(), log.segment_count());
    assert!(clean(&manager, 100));
    let after = rows(&log);
    assert_eq!(after.len(), 17, "one record per key");
    assert_eq!(
        latest(&after),
        latest(&before),
        "same latest values at the same offsets"
    );
    assert!(log.size_bytes() < bytes_before / 5);
    // Groups are chosen by the segments' sizes before cleaning (as Kafka does), so the now
    // small segments merge on the next pass that has dirty data.
    put(&log, "k0", Some("again"), 10);
    sync_and_roll(&log);
    assert!(clean(&manager, 100));
    assert!(
        log.segment_count() < segments_before / 2,
        "small cleaned segments are merged"
    );
    // A second pass has nothing dirty.
    assert!(!clean(&manager, 100));
    // Appends continue, and survive a clean and an unclean reopen with the cleaned log.
    put(&log, "k1", Some("new"), 10);
    let expected = rows(&log);
    manager.shutdown(0).unwrap();
    drop(manager);
    for clean_shutdown in [true, false] {
        let manager = LogManager::open_std(dir.path(), 0).unwrap();
        let log = manager.get(&TopicPartition::new("c", 0)).unwrap();
        assert_eq!(rows(&log), expected, "clean_shutdown={clean_shutdown}");
        if clean_shutdown {
            drop(manager);
            std::fs::remove_file(dir.path().join("recovery-point-offset-checkpoint")).ok();
        }
    }
}

/// How: 3,000 keys written three times in batches of 40 records (the last round deletes every
/// tenth key with an old tombstone) into segments of about 2,500 records, and a cleaner whose
/// map holds 921 keys, fewer than one segment. Each pass maps a prefix of the dirty range that
/// ends inside a segment, often inside a batch, and the next continues there.
#[test]
fn a_map_smaller_than_a_segment_cleans_in_several_passes_to_one_record_per_key() {
    const KEYS: usize = 3_000;
    let dir = tempfile::tempdir().unwrap();
    let manager = LogManager::open_std(dir.path(), 0).unwrap();
    let config = LogConfig {
        segment_bytes: 96 << 10,
        ..compacted()
    };
    let log = manager
        .get_or_create(&TopicPartition::new("p", 0), config, 0)
        .unwrap();
    for round in 0..3 {
        for chunk in (0..KEYS).collect::<Vec<_>>().chunks(40) {
            let builder = chunk.iter().fold(RecordBatchBuilder::new(), |b, &k| {
                let key = format!("key-{k:04}");
                let value = (round < 2 || k % 10 != 0).then(|| format!("{round}-{k}"));
                b.record(
                    Some(key.as_bytes()),
                    value.as_deref().map(str::as_bytes),
                    10,
                )
            });
            let mut bytes = builder.build();
            let _ = log.append(&mut bytes, AppendOrigin::Client, 10, 0).unwrap();
        }
    }
    sync_and_roll(&log);
    let expected: BTreeMap<Vec<u8>, (i64, Option<Vec<u8>>)> = latest(&rows(&log))
        .into_iter()
        .filter(|(_, (_, value))| value.is_some())
        .collect();
    assert_eq!(expected.len(), KEYS - KEYS / 10);
    assert!(log.segment_count() > 3);

    let mut cleaner = LogCleaner::new(0);
    let mut ends = Vec::new();
    while let Some((_, stats)) = manager.clean_once(100_000, &mut cleaner).unwrap() {
        ends.push(stats.first_dirty_offset);
        assert!(ends.len() < 50, "passes make progress: {ends:?}");
    }
    assert!(
        ends.len() >= 8,
        "9,000 keyed records, 921 per map: {ends:?}"
    );
    assert!(ends.windows(2).all(|w| w[0] < w[1]), "{ends:?}");
    assert!(
        ends.iter().any(|&end| end % 40 != 0),
        "some pass ends inside a batch: {ends:?}"
    );
    let after = rows(&log);
    let found = latest(&after);
    let wrong: Vec<_> = expected
        .iter()
        .filter(|(key, value)| found.get(*key) != Some(value))
        .map(|(key, _)| String::from_utf8_lossy(key))
        .chain(
            found
                .keys()
                .filter(|key| !expected.contains_key(*key))
                .map(|key| String::from_utf8_lossy(key)),
        )
        .collect();
    assert!(
        wrong.is_empty(),
        "{} keys differ from the latest live write, e.g. {:?}",
        wrong.len(),
        &wrong[..wrong.len().min(5)]
    );
    assert_eq!(after.len(), expected.len(), "one record per live key");
}

/// How: 15 rounds of overwriting five keys, each round rolled and cleaned. Every pass leaves
/// its groups' last batches (emptied when all their records are superseded) to keep offsets
/// contiguous across segments; a later pass that merges those segments must drop the empty
/// batches that are no longer any group's last, or they pile up forever.
#[test]
fn empty_batches_left_by_a_pass_do_not_accumulate() {
    let dir = tempfile::tempdir().unwrap();
    let manager = LogManager::open_std(dir.path(), 0).unwrap();
    let log = manager
        .get_or_create(&TopicPartition::new("e", 0), compacted(), 0)
        .unwrap();
    let mut cleaner = LogCleaner::new(1 << 20);
    for round in 0..15 {
        for i in 0..20 {
            put(
                &log,
                &format!("k{}", i % 5),
                Some(&format!("{round}-{i}")),
                10,
            );
        }
        sync_and_roll(&log);
        while manager.clean_once(100, &mut cleaner).unwrap().is_some() {}
    }
    let mut empty = 0;
    let mut offset = 0;
    while offset < log.log_end_offset() {
        let data = log.read(offset, 1 << 20, None).unwrap();
        for batch in Batches::new(&data.records) {
            let (_, batch) = batch.unwrap();
            empty += usize::from(batch.records_count() == 0);
            offset = batch.last_offset() + 1;
        }
    }
    assert_eq!(rows(&log).len(), 5);
    assert!(
        empty <= log.segment_count(),
        "{empty} empty batches in {} segments",
        log.segment_count()
    );
}

/// How: keys overwritten across many small segments, cleaned, so that segments end in the
/// emptied batch each group keeps; then a small read at every offset. A client takes an answer
/// without a record for a fetch size too small for the next record (librdkafka doubles its
/// fetch size and in the end fails with MSG_SIZE_TOO_LARGE), so a read below the last record
/// must carry at least one.
#[test]
fn a_read_after_cleaning_always_carries_a_record() {
    let dir = tempfile::tempdir().unwrap();
    let manager = LogManager::open_std(dir.path(), 0).unwrap();
    let log = manager
        .get_or_create(&TopicPartition::new("r", 0), compacted(), 0)
        .unwrap();
    for i in 0..200 {
        put(&log, &format!("k{}", i % 4), Some(&format!("v{i}")), 10);
    }
    sync_and_roll(&log);
    assert!(clean(&manager, 100));
    let last_record = rows(&log).last().unwrap().0;
    for offset in 0..=last_record {
        let data = log.read(offset, 100, None).unwrap();
        let records: i32 = Batches::new(&data.records)
            .map(|b| b.unwrap().1.records_count())
            .sum();
        assert!(records > 0, "read at {offset} answered no record");
    }
}

/// How: records whose timestamps lie an hour past the cleaner's clock (a producer's clock
/// ahead, or event times), cleaned with `min.compaction.lag.ms` 0 and then with one minute.
#[test]
fn future_timestamps_hold_back_cleaning_only_under_a_compaction_lag() {
    let dir = tempfile::tempdir().unwrap();
    let manager = LogManager::open_std(dir.path(), 0).unwrap();
    let log = manager
        .get_or_create(&TopicPartition::new("f", 0), compacted(), 0)
        .unwrap();
    let now = 1_000_000;
    for i in 0..40 {
        put(&log, &format!("k{}", i % 3), Some("v"), now + 3_600_000);
    }
    sync_and_roll(&log);
    log.update_config(LogConfig {
        min_compaction_lag_ms: 60_000,
        ..compacted()
    });
    assert!(!clean(&manager, now), "younger than the lag");
    // Kafka applies the lag only when it is positive.
    log.update_config(compacted());
    assert!(clean(&manager, now), "no lag, no hold");
    assert_eq!(rows(&log).len(), 3);
}

#[test]
fn tombstones_disappear_after_delete_retention() {
    let dir = tempfile::tempdir().unwrap();
    let manager = LogManager::open_std(dir.path(), 0).unwrap();
    let log = manager
        .get_or_create(&TopicPartition::new("t", 0), compacted(), 0)
        .unwrap();
    put(&log, "gone", Some("v"), 10);
    put(&log, "kept", Some("v"), 10);
    put(&log, "gone", None, 10);
    sync_and_roll(&log);
    assert!(clean(&manager, 500));
    let keys: Vec<_> = rows(&log)
        .into_iter()
        .map(|(_, k, v)| (k, v.is_some()))
        .collect();
    assert_eq!(
        keys,
        vec![(b"kept".to_vec(), true), (b"gone".to_vec(), false)],
        "tombstone kept while young"
    );
    put(&log, "other", Some("v"), 2_000);
    sync_and_roll(&log);
    assert!(clean(&manager, 2_000));
    let keys: Vec<_> = rows(&log).into_iter().map(|(_, k, _)| k).collect();
    assert_eq!(
        keys,
        vec![b"kept".to_vec(), b"other".to_vec()],
        "tombstone removed after 1000 ms"
    );
}

#[test]
fn aborted_records_never_reappear_and_idempotence_survives() {
    let dir = tempfile::tempdir().unwrap();
    let manager = LogManager::open_std(dir.path(), 0).unwrap();
    let log = manager
        .get_or_create(&TopicPartition::new("a", 0), compacted(), 0)
        .unwrap();
    put(&log, "k", Some("committed-before"), 10);
    let mut txn = RecordBatchBuilder::new()
        .producer(7, 0, 0)
        .transactional(true)
        .record(Some(b"k"), Some(b"aborted"), 10)
        .record(Some(b"z"), Some(b"aborted"), 10)
        .build();
    let _ = log.append(&mut txn, AppendOrigin::Client, 10, 0).unwrap();
    let abort = EndTransactionMarker {
        kind: ControlRecordType::Abort,
        coordinator_epoch: 0,
    };
    let _ = log
        .append(
            &mut build_marker(7, 0, abort, 10),
            AppendOrigin::Coordinator,
            10,
            0,
        )
        .unwrap();
    // An idempotent producer whose only record is later superseded.
    let mut idem = RecordBatchBuilder::new()
        .producer(8, 0, 0)
        .record(Some(b"i"), Some(b"old"), 10)
        .build();
    let _ = log.append(&mut idem, AppendOrigin::Client, 10, 0).unwrap();
    put(&log, "i", Some("new"), 10);
    sync_and_roll(&log);
    assert!(clean(&manager, 5_000));
    let values: Vec<_> = rows(&log)
        .into_iter()
        .map(|(_, k, v)| (k, v.unwrap()))
        .collect();
    assert_eq!(
        values,
        vec![
            (b"k".to_vec(), b"committed-before".to_vec()),
            (b"i".to_vec(), b"new".to_vec())
        ]
    );
    assert!(
        log.aborted_transactions(0, log.log_end_offset()).is_empty(),
        "old abort marker dropped"
    );
    // Producer 8's last batch is kept (empty), so a retry is still a duplicate after a restart.
    manager.shutdown(0).unwrap();
    drop(manager);
    std::fs::remove_file(dir.path().join(".kafka_cleanshutdown")).unwrap();
    for entry in std::fs::read_dir(dir.path().join("a-0")).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "snapshot") {
            std::fs::remove_file(path).unwrap();
        }
    }
    let manager = LogManager::open_std(dir.path(), 0).unwrap();
    let log = manager.get(&TopicPartition::new("a", 0)).unwrap();
    let mut retry = RecordBatchBuilder::new()
        .producer(8, 0, 0)
        .record(Some(b"i"), Some(b"old"), 10)
        .build();
    assert!(matches!(
        log.append(&mut retry, AppendOrigin::Client, 10, 0).unwrap(),
        AppendOutcome::Duplicate { .. }
    ));
}

#[test]
fn nothing_past_the_lso_or_in_the_active_segment_is_cleaned() {
    let dir = tempfile::tempdir().unwrap();
    let manager = LogManager::open_std(dir.path(), 0).unwrap();
    let log = manager
        .get_or_create(&TopicPartition::new("u", 0), compacted(), 0)
        .unwrap();
    put(&log, "k", Some("1"), 10);
    let mut open_txn = RecordBatchBuilder::new()
        .producer(3, 0, 0)
        .transactional(true)
        .record(Some(b"t"), Some(b"pending"), 10)
        .build();
    let _ = log
        .append(&mut open_txn, AppendOrigin::Client, 10, 0)
        .unwrap();
    sync_and_roll(&log);
    for i in 0..50 {
        put(&log, "k", Some(&i.to_string()), 10);
    }
    sync_and_roll(&log);
    put(&log, "k", Some("active"), 10);
    let before = rows(&log);
    // Everything from the open transaction (offset 1) on is uncleanable; only segment 0 is
    // below, and it has nothing superseded within the cleanable range.
    let _ = clean(&manager, 100);
    assert_eq!(rows(&log), before);
}

/// How: three sealed segments of one key, a clean limit inside the second. Nothing at or past
/// the limit is cleaned, nor deleted by retention; raising the limit lets both proceed.
#[test]
fn the_clean_limit_bounds_cleaning_and_retention() {
    let dir = tempfile::tempdir().unwrap();
    let manager = LogManager::open_std(dir.path(), 0).unwrap();
    let log = manager
        .get_or_create(&TopicPartition::new("l", 0), compacted(), 0)
        .unwrap();
    assert_eq!(log.clean_limit(), i64::MAX, "no limit by default");
    for segment in 0..3 {
        for i in 0..10 {
            put(&log, "k", Some(&format!("{segment}-{i}")), 10);
        }
        sync_and_roll(&log);
    }
    put(&log, "k", Some("active"), 10);
    log.set_clean_limit(15);
    let before = rows(&log);
    // Segment [0, 10) is below the limit but has no record superseded within [0, 10).
    let _ = clean(&manager, 100);
    let after = rows(&log);
    assert_eq!(after.len(), before.len() - 9, "only [0, 10) was cleaned");
    for offset in 9..=30 {
        assert!(after.iter().any(|(o, _, _)| *o == offset), "{offset} kept");
    }
    log.set_clean_limit(i64::MAX);
    while clean(&manager, 100) {}
    assert_eq!(
        rows(&log).len(),
        2,
        "the last sealed record and the active one"
    );

    let retained = manager
        .get_or_create(
            &TopicPartition::new("r", 0),
            LogConfig {
                retention_ms: 1,
                segment_bytes: 1024,
                ..LogConfig::default()
            },
            0,
        )
        .unwrap();
    for segment in 0..3 {
        put(&retained, &format!("k{segment}"), Some("v"), 10);
        sync_and_roll(&retained);
    }
    retained.set_clean_limit(1);
    let _ = retained.enforce_retention(1_000).unwrap();
    assert_eq!(
        retained.log_start_offset(),
        1,
        "the segment reaching the limit stays"
    );
    retained.set_clean_limit(i64::MAX);
    let _ = retained.enforce_retention(1_000).unwrap();
    assert_eq!(retained.log_start_offset(), 3);
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &to.join(entry.file_name()));
        } else if entry.file_name() != ".lock" {
            std::fs::copy(entry.path(), to.join(entry.file_name())).unwrap();
        }
    }
}

#[test]
fn a_crash_on_either_side_of_the_swap_commit_point_recovers_old_or_new() {
    let before_dir = tempfile::tempdir().unwrap();
    let after_dir = tempfile::tempdir().unwrap();
    let tp = TopicPartition::new("s", 0);
    let (old_rows, new_rows) = {
        let manager = LogManager::open_std(before_dir.path(), 0).unwrap();
        let log = manager.get_or_create(&tp, compacted(), 0).unwrap();
        for i in 0..200 {
            put(&log, &format!("k{}", i % 5), Some(&format!("v{i}")), 10);
        }
        sync_and_roll(&log);
        let old_rows = rows(&log);
        manager.checkpoint().unwrap();
        copy_dir(before_dir.path(), after_dir.path());
        drop(manager);
        let manager = LogManager::open_std(after_dir.path(), 0).unwrap();
        // One group for the whole log, so one swap file describes the entire pass.
        manager.get(&tp).unwrap().update_config(LogConfig {
            segment_bytes: 1 << 20,
            ..compacted()
        });
        assert!(clean(&manager, 100));
        let new_rows = rows(&manager.get(&tp).unwrap());
        (old_rows, new_rows)
    };
    assert_ne!(old_rows, new_rows);
    // The cleaned segment is the first one (the group starts at the log start).
    let new_base = std::fs::read_dir(after_dir.path().join("s-0"))
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|n| n.ends_with(".log"))
        .min()
        .unwrap();
    let new_log = std::fs::read(after_dir.path().join("s-0").join(&new_base)).unwrap();
    for (stage, expect_new) in [(".cleaned", false), (".swap", true)] {
        let crashed = tempfile::tempdir().unwrap();
        copy_dir(before_dir.path(), crashed.path());
        std::fs::write(
            crashed
                .path()
                .join("s-0")
                .join(format!("{new_base}{stage}")),
            &new_log,
        )
        .unwrap();
        let manager = LogManager::open_std(crashed.path(), 0).unwrap();
        let log = manager.get(&tp).unwrap();
        let expected = if expect_new { &new_rows } else { &old_rows };
        assert_eq!(&rows(&log), expected, "crash with a {stage} file");
        let leftovers = std::fs::read_dir(crashed.path().join("s-0"))
            .unwrap()
            .filter(|e| {
                let name = e.as_ref().unwrap().file_name().into_string().unwrap();
                name.ends_with(".cleaned") || name.ends_with(".swap")
            })
            .count();
        assert_eq!(leftovers, 0);
    }
}

mod model {
    use super::*;
    use proptest::prelude::*;

    /// Keys of the bulk batches: more than the 921 keys the model's cleaner maps per pass.
    const BULK_KEYS: u16 = 1_500;

    #[derive(Debug, Clone)]
    enum Op {
        /// One record: key `key{k}`, a value or (None) a tombstone.
        Put(u8, Option<u8>),
        /// One batch of `count` records over the bulk keys, every `tombstone_every`th a
        /// tombstone, so that the offset map fills and passes end inside batches.
        PutMany {
            first_key: u16,
            count: u16,
            tombstone_every: u16,
        },
        Roll,
        Clean,
        /// Restart: after a clean shutdown, or (false) after dropping everything, as a crash
        /// of the process would, so that recovery runs.
        Reopen(bool),
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            6 => (0u8..12, proptest::option::weighted(0.8, any::<u8>())).prop_map(|(k, v)| Op::Put(k, v)),
            2 => (0..BULK_KEYS, 100u16..1_200, 2u16..20).prop_map(|(first_key, count, tombstone_every)| {
                Op::PutMany { first_key, count, tombstone_every }
            }),
            1 => Just(Op::Roll),
            2 => Just(Op::Clean),
            1 => any::<bool>().prop_map(Op::Reopen),
        ]
    }

    /// Key → (offset, value) of its latest write.
    type Model = BTreeMap<Vec<u8>, (i64, Option<Vec<u8>>)>;

    fn put_many(log: &Log, model: &mut Model, op: (u16, u16, u16), now: i64) {
        let (first_key, count, tombstone_every) = op;
        let records: Vec<(String, Option<String>)> = (0..count)
            .map(|i| {
                let key = format!("bulk{}", (first_key + i * 7) % BULK_KEYS);
                let value = (i % tombstone_every != 0).then(|| format!("v{now}-{i}"));
                (key, value)
            })
            .collect();
        let mut bytes = records
            .iter()
            .fold(RecordBatchBuilder::new(), |b, (key, value)| {
                b.record(
                    Some(key.as_bytes()),
                    value.as_deref().map(str::as_bytes),
                    now,
                )
            })
            .build();
        let AppendOutcome::Appended(info) = log
            .append(&mut bytes, AppendOrigin::Client, now, 0)
            .unwrap()
        else {
            panic!("not appended")
        };
        for (offset, (key, value)) in (info.first_offset..).zip(records) {
            let _ = model.insert(key.into_bytes(), (offset, value.map(String::into_bytes)));
        }
    }

    /// The log holds the model's latest record of every key at its offset; a deleted key may
    /// instead be absent (its tombstone cleaned); nothing else is there twice.
    fn check(log: &Log, model: &Model) -> Result<(), TestCaseError> {
        let seen = rows(log);
        prop_assert!(seen.windows(2).all(|w| w[0].0 < w[1].0), "offsets increase");
        let latest = latest(&seen);
        for (key, expected) in model {
            match (&expected.1, latest.get(key)) {
                (Some(_), Some(found)) => prop_assert_eq!(expected, found),
                (None, None) => {}
                (None, Some(found)) => prop_assert_eq!(expected, found),
                (_, None) => prop_assert!(false, "key {:?}: expected {:?}, absent", key, expected),
            }
        }
        prop_assert!(latest.keys().all(|k| model.contains_key(k)));
        Ok(())
    }

    proptest! {
        #![proptest_config(ProptestConfig {
            cases: std::env::var("PROPTEST_CASES").ok().and_then(|c| c.parse().ok()).unwrap_or(32),
            ..ProptestConfig::default()
        })]

        /// Random keyed writes, deletes, bulk batches, rolls, cleaner passes with a map smaller
        /// than the key space, and clean and unclean restarts: after every step the log's
        /// latest record per key is the model's, at the same offset (a deleted key may be
        /// absent entirely once its tombstone is cleaned), and offsets only ever increase.
        #[test]
        fn latest_per_key_matches_a_model(ops in proptest::collection::vec(op(), 1..60)) {
            let dir = tempfile::tempdir().unwrap();
            let tp = TopicPartition::new("m", 0);
            let mut manager = LogManager::open_std(dir.path(), 0).unwrap();
            let mut log = manager.get_or_create(&tp, compacted(), 0).unwrap();
            let mut cleaner = LogCleaner::new(0);
            let mut model = Model::new();
            let mut now = 0i64;
            for op in ops {
                now += 300;
                match op {
                    Op::Put(k, v) => {
                        let key = format!("key{k}");
                        let value = v.map(|v| format!("value{v}"));
                        let offset = put(&log, &key, value.as_deref(), now);
                        model.insert(key.into_bytes(), (offset, value.map(String::into_bytes)));
                    }
                    Op::PutMany { first_key, count, tombstone_every } => {
                        put_many(&log, &mut model, (first_key, count, tombstone_every), now);
                    }
                    Op::Roll => sync_and_roll(&log),
                    Op::Clean => { let _ = manager.clean_once(now, &mut cleaner).unwrap(); }
                    Op::Reopen(clean_shutdown) => {
                        if clean_shutdown {
                            manager.shutdown(now).unwrap();
                        }
                        drop(log);
                        drop(manager);
                        manager = LogManager::open_std(dir.path(), now).unwrap();
                        log = manager.get(&tp).unwrap();
                        log.update_config(compacted());
                    }
                }
                check(&log, &model)?;
            }
        }
    }
}
