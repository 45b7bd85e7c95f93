//! The due-index semantics of DESIGN §5 that hold below the broker: indexing a real partition
//! log, firing with the pulse step, and replaying after a restart. Time is explicit (`now_ms`).

use kairos_storage::batch::Batches;
use kairos_storage::builder::{RecordBatchBuilder, RecordSpec};
use kairos_storage::control::{ControlRecordType, EndTransactionMarker, build_marker};
use kairos_storage::record::RecordBytes;
use kairos_storage::{AppendOrigin, Error, Log, LogConfig, LogManager, TopicPartition};

use std::collections::HashMap;

use super::config::TemporalConfig;
use super::due_index::DueIndex;
use super::due_state::{FiredValue, StateKey};
use super::fire::{HEADER_DUE_AT, HEADER_DUE_FIELD, HEADER_SOURCE_OFFSET};
use super::indexer::{FiredChange, PartitionIndexer};
use super::pulse::{FireTarget, fire_due};

struct Fixture {
    _dir: tempfile::TempDir,
    manager: LogManager,
    log: std::sync::Arc<Log>,
    config: TemporalConfig,
    indexer: PartitionIndexer,
    /// What `__due_state` would hold: the fired-state changes the steps handed over, applied
    /// in order per (key, field), as compaction of that topic keeps them.
    state: HashMap<(Vec<u8>, u8), Option<FiredValue>>,
}

fn fixture(fields: &str, patch: Option<&str>) -> Fixture {
    fixture_with(fields, patch, LogConfig::default())
}

/// A fixture whose log is compacted (keys required) and cleanable at any dirty ratio.
fn compacted_fixture(fields: &str) -> Fixture {
    let config = LogConfig {
        cleanup_policy: kairos_storage::CleanupPolicy::Compact,
        min_cleanable_dirty_ratio: 0.0,
        ..LogConfig::default()
    };
    fixture_with(fields, None, config)
}

fn fixture_with(fields: &str, patch: Option<&str>, log_config: LogConfig) -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let manager = LogManager::open_std(dir.path(), 0).unwrap();
    let log = manager
        .get_or_create(&TopicPartition::new("prices", 0), log_config, 0)
        .unwrap();
    Fixture {
        _dir: dir,
        manager,
        log,
        config: TemporalConfig::parse(Some(fields), None, patch, None)
            .unwrap()
            .unwrap(),
        indexer: PartitionIndexer::new(0, DueIndex::new()),
        state: HashMap::new(),
    }
}

fn put(log: &Log, key: &str, value: Option<&str>) -> i64 {
    let mut bytes = RecordBatchBuilder::new()
        .record_spec(RecordSpec {
            key: Some(key.as_bytes().to_vec()),
            value: value.map(|v| v.as_bytes().to_vec()),
            timestamp_ms: 1,
            headers: vec![("trace".into(), Some(b"t1".to_vec()))],
        })
        .build();
    match log.append(&mut bytes, AppendOrigin::Client, 1, 0).unwrap() {
        kairos_storage::AppendOutcome::Appended(info) => info.first_offset,
        other => panic!("{other:?}"),
    }
}

/// A fire as seen by a consumer.
#[derive(Debug, PartialEq, Eq)]
struct Fired {
    key: String,
    field: String,
    due_at: i64,
    source_offset: i64,
    value: serde_json::Value,
    timestamp: i64,
    trace: Option<String>,
}

fn fires(log: &Log) -> Vec<Fired> {
    let data = log.read(0, 1 << 24, None).unwrap();
    let mut out = Vec::new();
    for (_, batch) in Batches::new(&data.records).map_while(Result::ok) {
        let records = RecordBytes::of(&batch).unwrap();
        for r in records.records().map(Result::unwrap) {
            let header = |name: &str| {
                r.headers()
                    .find(|(k, _)| *k == name.as_bytes())
                    .and_then(|(_, v)| v)
                    .map(|v| String::from_utf8(v.to_vec()).unwrap())
            };
            let Some(field) = header(HEADER_DUE_FIELD) else {
                continue;
            };
            out.push(Fired {
                key: String::from_utf8(r.key.unwrap().to_vec()).unwrap(),
                field,
                due_at: header(HEADER_DUE_AT).unwrap().parse().unwrap(),
                source_offset: header(HEADER_SOURCE_OFFSET).unwrap().parse().unwrap(),
                value: serde_json::from_slice(r.value.unwrap()).unwrap(),
                timestamp: batch.base_timestamp() + r.timestamp_delta,
                trace: header("trace"),
            });
        }
    }
    out
}

/// One pulse step as the service runs it: fire, then record every fired-state change.
fn step(f: &mut Fixture, now: i64) -> usize {
    let mut fired = 0;
    loop {
        let report = fire_due(
            &f.log,
            FireTarget::Source,
            &mut f.indexer,
            &f.config,
            now,
            10_000,
        )
        .unwrap();
        fired += report.fired;
        let mut changes = f.indexer.take_changes();
        changes.extend(report.fires);
        record(f, changes);
        if !report.behind {
            return fired;
        }
    }
}

fn record(f: &mut Fixture, changes: Vec<FiredChange>) {
    for change in changes {
        match change {
            FiredChange::Fired {
                key,
                field,
                due_ms,
                source_offset,
                fire_offset,
            } => {
                let value = FiredValue {
                    due_at_ms: due_ms,
                    source_offset,
                    fire_offset,
                };
                let _ = f.state.insert((key, field), Some(value));
            }
            FiredChange::Forgotten { key, field } => {
                let _ = f.state.insert((key, field), None);
            }
        }
    }
}

/// A restart without a snapshot: a fresh index loads the recorded fired state, then replays
/// the log from its start.
fn rebuild(f: &mut Fixture) {
    f.indexer = PartitionIndexer::new(f.log.log_start_offset(), DueIndex::new());
    for ((key, field), value) in &f.state {
        let state = StateKey {
            topic_id: uuid::Uuid::nil(),
            partition: 0,
            field: f.config.fields[usize::from(*field)].as_str().to_owned(),
            key: key.clone(),
        };
        f.indexer.restore_state(&f.config, &state, *value, false);
    }
}

/// Compacts the log as far as it can: everything but the active segment is sealed and synced.
fn compact(f: &Fixture) {
    f.log.sync_to(f.log.log_end_offset(), 0).unwrap();
    f.log.roll().unwrap();
    let mut cleaner = kairos_storage::LogCleaner::new(1 << 20);
    while f.manager.clean_once(10, &mut cleaner).unwrap().is_some() {}
}

#[test]
fn latest_version_wins_move_cancel_and_same_time_refresh() {
    let mut f = fixture("/expires", None);
    put(&f.log, "moved", Some(r#"{"expires":100}"#));
    put(&f.log, "moved", Some(r#"{"expires":200}"#));
    put(&f.log, "tombstoned", Some(r#"{"expires":100}"#));
    put(&f.log, "tombstoned", None);
    put(&f.log, "field-removed", Some(r#"{"expires":100}"#));
    put(&f.log, "field-removed", Some(r#"{"other":1}"#));
    put(&f.log, "refreshed", Some(r#"{"expires":150,"v":1}"#));
    let newest = put(&f.log, "refreshed", Some(r#"{"expires":150,"v":2}"#));
    assert_eq!(step(&mut f, 120), 0, "nothing due at 120 after the move");
    assert_eq!(step(&mut f, 199), 1);
    assert_eq!(step(&mut f, 1_000), 1);
    let fired = fires(&f.log);
    assert_eq!(fired.len(), 2);
    assert_eq!(
        (fired[0].key.as_str(), fired[0].due_at, fired[0].timestamp),
        ("refreshed", 150, 150)
    );
    assert_eq!(fired[0].value["v"], 2, "the fire carries the newest value");
    assert_eq!(fired[0].source_offset, newest);
    assert_eq!(
        fired[0].trace.as_deref(),
        Some("t1"),
        "source headers are copied"
    );
    assert_eq!((fired[1].key.as_str(), fired[1].due_at), ("moved", 200));
}

#[test]
fn two_fields_with_patches_fire_separately() {
    let mut f = fixture(
        "/valid_from,/expiration_date",
        Some(r#"{"/valid_from":{"status":"active"},"/expiration_date":{"status":"inactive"}}"#),
    );
    put(
        &f.log,
        "p1",
        Some(r#"{"status":"pending","valid_from":"1970-01-01T00:00:01Z","expiration_date":3000}"#),
    );
    assert_eq!(step(&mut f, 1_000), 1);
    assert_eq!(step(&mut f, 2_000), 0);
    assert_eq!(step(&mut f, 3_000), 1);
    let fired = fires(&f.log);
    assert_eq!(fired[0].field, "/valid_from");
    assert_eq!(fired[0].value["status"], "active");
    assert_eq!(fired[1].field, "/expiration_date");
    assert_eq!(fired[1].value["status"], "inactive");
    // The second fire reflects the first fire (the newest version), patched again.
    assert!(fired[1].source_offset > fired[0].source_offset);
}

#[test]
fn past_due_fires_at_once_in_due_order_and_never_again() {
    let mut f = fixture("/at", None);
    for (key, at) in [("c", 30), ("a", 10), ("b", 20)] {
        put(&f.log, key, Some(&format!(r#"{{"at":{at}}}"#)));
    }
    assert_eq!(step(&mut f, 1_000), 3);
    let order: Vec<_> = fires(&f.log).into_iter().map(|x| x.key).collect();
    assert_eq!(order, vec!["a", "b", "c"]);
    // The fire records are versions too: indexing them does not fire again, nor does a later
    // update with the same due time, nor a clock that steps back and forward again.
    assert_eq!(step(&mut f, 1_000), 0);
    put(&f.log, "a", Some(r#"{"at":10,"price":2}"#));
    assert_eq!(step(&mut f, 500), 0);
    assert_eq!(step(&mut f, 5_000), 0);
    // Another due time fires by the normal rules.
    put(&f.log, "a", Some(r#"{"at":4000}"#));
    assert_eq!(step(&mut f, 5_000), 1);
}

#[test]
fn a_restart_replaying_the_log_does_not_fire_again() {
    let mut f = fixture("/at", None);
    put(&f.log, "a", Some(r#"{"at":10}"#));
    put(&f.log, "b", Some(r#"{"at":99999}"#));
    assert_eq!(step(&mut f, 100), 1);
    put(&f.log, "a", Some(r#"{"at":10,"again":true}"#));
    // A fresh indexer replays from the log start: the fire record restores the fired state.
    f.indexer = PartitionIndexer::new(0, DueIndex::new());
    assert_eq!(step(&mut f, 100), 0);
    assert_eq!(step(&mut f, 100_000), 1, "b still fires");
}

#[test]
fn malformed_and_null_keys_are_counted_and_never_fired() {
    let mut f = fixture("/at", None);
    put(&f.log, "bad", Some(r#"{"at":"next tuesday"}"#));
    put(&f.log, "bad2", Some(r#"{"at":true}"#));
    let mut null_key = RecordBatchBuilder::new()
        .record(None, Some(br#"{"at":1}"#), 1)
        .build();
    let _ = f
        .log
        .append(&mut null_key, AppendOrigin::Client, 1, 0)
        .unwrap();
    assert_eq!(step(&mut f, i64::MAX / 4), 0);
    let stats = f.indexer.stats();
    assert_eq!((stats.malformed, stats.null_keys, stats.records), (2, 1, 3));
    assert_eq!(f.indexer.first_malformed_offset(), Some(0));
}

#[test]
fn aborted_transactions_never_fire_and_open_ones_wait() {
    let mut f = fixture("/at", None);
    let txn = |pid: i64, key: &str, at: i64| {
        RecordBatchBuilder::new()
            .producer(pid, 0, 0)
            .transactional(true)
            .record(
                Some(key.as_bytes()),
                Some(format!(r#"{{"at":{at}}}"#).as_bytes()),
                1,
            )
            .build()
    };
    let marker = |pid, kind| {
        build_marker(
            pid,
            0,
            EndTransactionMarker {
                kind,
                coordinator_epoch: 0,
            },
            1,
        )
    };
    let _ = f
        .log
        .append(&mut txn(1, "aborted", 10), AppendOrigin::Client, 1, 0)
        .unwrap();
    let _ = f
        .log
        .append(
            &mut marker(1, ControlRecordType::Abort),
            AppendOrigin::Coordinator,
            1,
            0,
        )
        .unwrap();
    put(&f.log, "waits", Some(r#"{"at":10}"#));
    let _ = f
        .log
        .append(&mut txn(2, "waits", 50), AppendOrigin::Client, 1, 0)
        .unwrap();
    let report = fire_due(
        &f.log,
        FireTarget::Source,
        &mut f.indexer,
        &f.config,
        100,
        100,
    )
    .unwrap();
    assert_eq!(
        (report.fired, report.waiting),
        (0, 1),
        "a version of `waits` is in an open txn"
    );
    let _ = f
        .log
        .append(
            &mut marker(2, ControlRecordType::Commit),
            AppendOrigin::Coordinator,
            1,
            0,
        )
        .unwrap();
    assert_eq!(step(&mut f, 100), 1);
    let fired = fires(&f.log);
    assert_eq!(
        (fired[0].key.as_str(), fired[0].due_at),
        ("waits", 50),
        "the committed version"
    );
}

#[test]
fn a_producer_update_racing_a_fire_wins() {
    let mut f = fixture("/at", None);
    put(&f.log, "k", Some(r#"{"at":10}"#));
    // The pulse decided at this log end...
    let end = f.log.log_end_offset();
    let _ = f.indexer.catch_up(&f.log, &f.config, end).unwrap();
    let mut due = Vec::new();
    f.indexer.index_mut().pop_due(100, 10, &mut due);
    assert_eq!(due.len(), 1);
    // ...then a producer moved the entity to the future before the fire was appended.
    put(&f.log, "k", Some(r#"{"at":5000}"#));
    let source = super::fire::read_record(&f.log, due[0].offset)
        .unwrap()
        .unwrap();
    let mut stale =
        super::fire::fire_batch(vec![super::fire::fire_record(&f.config, &due[0], &source)]);
    assert!(matches!(
        f.log
            .append_if_end_is(&mut stale, AppendOrigin::Coordinator, 100, 0, end),
        Err(Error::LogEndMoved { .. })
    ));
    f.indexer.index_mut().retry(&due[0]);
    // Caught up, the entity is due at 5000, not 10.
    assert_eq!(step(&mut f, 100), 0);
    assert_eq!(step(&mut f, 5_000), 1);
    assert_eq!(fires(&f.log)[0].due_at, 5000);
}

/// How: the pulse appends a fire but its fired-state record is lost (a crash between the two);
/// a restart without a snapshot replays the fire record, which changes the fired state, so the
/// change is handed over again. Once recorded, compaction may drop the fire record: a later
/// rebuild still knows, and a later version with the same due time does not fire again.
#[test]
fn a_fire_whose_state_record_was_lost_is_recorded_again_by_the_replay() {
    let mut f = compacted_fixture("/at");
    put(&f.log, "p", Some(r#"{"at":10,"price":1}"#));
    let report = fire_due(
        &f.log,
        FireTarget::Source,
        &mut f.indexer,
        &f.config,
        100,
        10_000,
    )
    .unwrap();
    assert_eq!(report.fired, 1);
    let _ = f.indexer.take_changes();
    drop(report.fires);
    assert!(f.state.is_empty(), "the state record was lost");
    rebuild(&mut f);
    assert_eq!(step(&mut f, 100), 0);
    let recorded = f.state.get(&(b"p".to_vec(), 0)).copied().flatten().unwrap();
    assert_eq!(
        (
            recorded.due_at_ms,
            recorded.source_offset,
            recorded.fire_offset
        ),
        (10, 0, 1)
    );
    // The same due time again: the fire record is superseded and compacted away.
    put(&f.log, "p", Some(r#"{"at":10,"price":2}"#));
    assert_eq!(step(&mut f, 200), 0);
    compact(&f);
    assert!(
        fires(&f.log).is_empty(),
        "compaction removed the fire record"
    );
    rebuild(&mut f);
    assert_eq!(
        step(&mut f, 300),
        0,
        "no re-fire after compaction and rebuild"
    );
    // Another due time still fires.
    put(&f.log, "p", Some(r#"{"at":250,"price":3}"#));
    assert_eq!(step(&mut f, 300), 1);
}

/// How: a fired entity is deleted by a tombstone; the tombstone hands over a `Forgotten`
/// change, so after compaction drops everything a rebuild holds nothing for the key, and the
/// key created again is a new entity that fires.
#[test]
fn a_tombstone_forgets_the_fired_state_durably() {
    let mut f = fixture("/at", None);
    put(&f.log, "gone", Some(r#"{"at":10}"#));
    assert_eq!(step(&mut f, 100), 1);
    assert!(f.state[&(b"gone".to_vec(), 0)].is_some());
    put(&f.log, "gone", None);
    assert_eq!(step(&mut f, 100), 0);
    assert_eq!(f.state[&(b"gone".to_vec(), 0)], None);
    rebuild(&mut f);
    assert_eq!(f.indexer.index().entities(), 0);
    put(&f.log, "gone", Some(r#"{"at":10}"#));
    assert_eq!(step(&mut f, 100), 1);
}

/// How: a rebuild from the log start over thousands of fire records hands its fired-state
/// changes over in slices of at most `CHANGES_MAX`, and fires nothing until it has caught up.
#[test]
fn a_rebuild_hands_over_fired_state_in_bounded_slices() {
    let mut f = fixture("/at", None);
    let n = super::indexer::CHANGES_MAX * 2 + 10;
    for i in 0..n {
        put(&f.log, &format!("k{i}"), Some(r#"{"at":10}"#));
    }
    let mut fired = 0;
    while fired < n {
        let step_fired = step(&mut f, 100);
        assert!(step_fired > 0, "a step made no progress");
        fired += step_fired;
    }
    f.state.clear();
    f.indexer = PartitionIndexer::new(0, DueIndex::new());
    let mut slices = Vec::new();
    loop {
        let report = fire_due(
            &f.log,
            FireTarget::Source,
            &mut f.indexer,
            &f.config,
            100,
            10_000,
        )
        .unwrap();
        assert_eq!(report.fired, 0);
        let changes = f.indexer.take_changes();
        assert!(changes.len() <= super::indexer::CHANGES_MAX);
        slices.push(changes.len());
        record(&mut f, changes);
        if !report.behind {
            break;
        }
    }
    assert!(slices.len() >= 3, "{slices:?}");
    assert_eq!(f.state.len(), n);
}

/// A backlog larger than `max.message.bytes` is split into batches that each fit, instead of
/// failing the same oversized append forever (found by the join-path bench: half of the
/// entities due at once never fired).
#[test]
fn a_backlog_larger_than_one_batch_is_split_into_batches_that_fit() {
    let mut f = fixture("/due", None);
    let small = LogConfig {
        max_message_bytes: 4_096,
        ..LogConfig::default()
    };
    f.log.update_config(small);
    let padding = "x".repeat(200);
    for i in 0..100 {
        let _ = put(
            &f.log,
            &format!("k{i:03}"),
            Some(&format!(r#"{{"due":50,"pad":"{padding}"}}"#)),
        );
    }
    let report = fire_due(
        &f.log,
        FireTarget::Source,
        &mut f.indexer,
        &f.config,
        100,
        10_000,
    )
    .unwrap();
    assert_eq!(report.fired, 100);
    assert_eq!(fires(&f.log).len(), 100);
    let data = f.log.read(100, 1 << 24, None).unwrap();
    let sizes: Vec<usize> = Batches::new(&data.records)
        .map_while(Result::ok)
        .map(|(_, batch)| batch.total_size())
        .collect();
    assert!(
        sizes.len() > 1,
        "the backlog fitted in one batch; the test proves nothing"
    );
    assert!(sizes.iter().all(|s| *s <= 4_096), "{sizes:?}");
}

/// Sources are found by offset whatever the order asked, once per batch, duplicates and
/// offsets past the end included.
#[test]
fn read_records_answers_every_offset_of_a_shared_batch() {
    let f = fixture("/due", None);
    let mut builder = RecordBatchBuilder::new();
    for i in 0..50 {
        builder = builder.record(
            Some(format!("k{i}").as_bytes()),
            Some(format!(r#"{{"due":{i}}}"#).as_bytes()),
            1,
        );
    }
    let mut bytes = builder.build();
    let _ = f
        .log
        .append(&mut bytes, AppendOrigin::Client, 1, 0)
        .unwrap();
    let found = super::fire::read_records(&f.log, &[40, 3, 3, 49, 60]).unwrap();
    let mut offsets: Vec<i64> = found.keys().copied().collect();
    offsets.sort_unstable();
    assert_eq!(offsets, vec![3, 40, 49]);
    assert_eq!(found[&40].key.as_deref(), Some(&b"k40"[..]));
}

/// A target topic's partition beside the fixture's source log.
fn target_log(f: &Fixture) -> std::sync::Arc<Log> {
    f.manager
        .get_or_create(
            &TopicPartition::new("price-events", 0),
            LogConfig::default(),
            0,
        )
        .unwrap()
}

#[test]
fn with_a_target_topic_fires_go_there_and_nothing_is_appended_to_the_source() {
    let mut f = fixture("/at", Some(r#"{"/at":{"status":"off"}}"#));
    let target = target_log(&f);
    let _ = put(&f.log, "k", Some(r#"{"at":10,"status":"on"}"#));
    let mut marks = Vec::new();
    let mut before = |end: i64| {
        marks.push(end);
        Ok(())
    };
    let report = fire_due(
        &f.log,
        FireTarget::Topic {
            source_topic: "prices",
            log: &target,
            before_append: &mut before,
        },
        &mut f.indexer,
        &f.config,
        100,
        10_000,
    )
    .unwrap();
    assert_eq!(report.fired, 1);
    assert_eq!(marks, [0], "the target's end before the append");
    assert_eq!(f.log.log_end_offset(), 1, "nothing appended to the source");
    let fired = fires(&target);
    assert_eq!(fired.len(), 1);
    assert_eq!(
        (
            fired[0].key.as_str(),
            fired[0].source_offset,
            fired[0].due_at
        ),
        ("k", 0, 10)
    );
    assert_eq!(fired[0].value["status"], "off");
    assert_eq!(fired[0].trace.as_deref(), Some("t1"));
    // Its fired state names the fire's offset in the target.
    assert!(matches!(
        report.fires.as_slice(),
        [FiredChange::Fired {
            fire_offset: 0,
            source_offset: 0,
            ..
        }]
    ));
    // The source's indexer does not meet its fires; the fired state is in the index.
    assert_eq!(step(&mut f, 200), 0);
}

/// A producer's version lands in the source between the pulse's decision and its append to the
/// target: the source end moved, so the stale fire is not appended; the step decides again
/// from the new version.
#[test]
fn a_version_racing_a_fire_into_a_target_wins_over_the_stale_fire() {
    let mut f = fixture("/at", None);
    let target = target_log(&f);
    let _ = put(&f.log, "moved", Some(r#"{"at":10,"v":1}"#));
    let _ = put(&f.log, "same", Some(r#"{"at":10,"v":1}"#));
    let source = std::sync::Arc::clone(&f.log);
    let mut raced = false;
    let mut before = |_end: i64| {
        if !raced {
            raced = true;
            // The racing producer: `moved` now falls due later, `same` gets a new value.
            let _ = put(&source, "moved", Some(r#"{"at":1000,"v":2}"#));
            let _ = put(&source, "same", Some(r#"{"at":10,"v":2}"#));
        }
        Ok(())
    };
    let report = fire_due(
        &f.log,
        FireTarget::Topic {
            source_topic: "prices",
            log: &target,
            before_append: &mut before,
        },
        &mut f.indexer,
        &f.config,
        100,
        10_000,
    )
    .unwrap();
    assert!(raced);
    assert_eq!(report.fired, 1);
    let fired = fires(&target);
    assert_eq!(fired.len(), 1, "{fired:?}");
    assert_eq!(fired[0].key, "same");
    assert_eq!(
        fired[0].value["v"], 2,
        "the newer version, not the stale one"
    );
    assert_eq!(fired[0].source_offset, 3);
    assert_eq!(f.log.log_end_offset(), 4);
}

#[test]
fn a_fire_from_another_topic_is_a_version_here_not_a_fire_of_this_topic() {
    // This topic is the target of another: a record carrying `kairos.source.topic` with the
    // same field and due time is indexed (and fires here), not taken as already fired.
    let mut f = fixture("/at", None);
    let mut bytes = RecordBatchBuilder::new()
        .record_spec(RecordSpec {
            key: Some(b"k".to_vec()),
            value: Some(br#"{"at":10}"#.to_vec()),
            timestamp_ms: 10,
            headers: vec![
                (HEADER_DUE_FIELD.into(), Some(b"/at".to_vec())),
                (HEADER_DUE_AT.into(), Some(b"10".to_vec())),
                (HEADER_SOURCE_OFFSET.into(), Some(b"7".to_vec())),
                (
                    super::fire::HEADER_SOURCE_TOPIC.into(),
                    Some(b"prices".to_vec()),
                ),
            ],
        })
        .build();
    let _ = f
        .log
        .append(&mut bytes, AppendOrigin::Coordinator, 1, 0)
        .unwrap();
    assert_eq!(step(&mut f, 100), 1);
    let fired = fires(&f.log);
    assert_eq!(fired.len(), 2, "the incoming fire, then this topic's own");
    assert_eq!(fired[1].source_offset, 0);
    // This topic's own fire (no `kairos.source.topic`) is evidence: nothing more fires.
    assert_eq!(step(&mut f, 200), 0);
}
