//! Unit tests of the due service (target marks, restoring fires at load).

use kairos_storage::builder::{RecordBatchBuilder, RecordSpec};
use kairos_storage::{AppendOrigin, LogConfig};

use super::*;
use crate::temporal::due_index::DueIndex;
use crate::temporal::fire::{
    HEADER_DUE_AT, HEADER_DUE_FIELD, HEADER_SOURCE_OFFSET, HEADER_SOURCE_TOPIC,
};
use crate::temporal::pulse::{FireTarget, fire_due};

fn put(log: &Log, key: &str, value: &str, headers: Vec<(String, Option<Vec<u8>>)>) {
    let mut bytes = RecordBatchBuilder::new()
        .record_spec(RecordSpec {
            key: Some(key.as_bytes().to_vec()),
            value: Some(value.as_bytes().to_vec()),
            timestamp_ms: 1,
            headers,
        })
        .build();
    let _ = log.append(&mut bytes, AppendOrigin::Client, 1, 0).unwrap();
}

fn step(
    source: &Log,
    target: &Log,
    indexer: &mut PartitionIndexer,
    config: &TemporalConfig,
    mark: &mut Option<i64>,
) -> usize {
    let mut before_append = |end: i64| {
        *mark = Some(end);
        Ok(())
    };
    fire_due(
        source,
        FireTarget::Topic {
            source_topic: "prices",
            log: target,
            before_append: &mut before_append,
        },
        indexer,
        config,
        100,
        FIRES_PER_STEP,
    )
    .unwrap()
    .fired
}

/// Rule 4: a crash after a step's fires reached the target but before their fired state
/// did. The restart (no snapshot, nothing in `__due_state`) reads the target from the mark
/// and does not fire again; another topic's fires there are left alone.
#[test]
fn fires_a_crash_left_unrecorded_in_the_target_are_restored_from_the_mark() {
    let dir = tempfile::tempdir().unwrap();
    let manager = LogManager::open_std(dir.path(), 0).unwrap();
    let open = |topic: &str| {
        manager
            .get_or_create(&TopicPartition::new(topic, 0), LogConfig::default(), 0)
            .unwrap()
    };
    let (source, target) = (open("prices"), open("price-events"));
    let config = TemporalConfig::parse(Some("/at"), None, None, Some("price-events"))
        .unwrap()
        .unwrap();
    put(&target, "unrelated", "{}", Vec::new());
    put(&source, "k", r#"{"at":10}"#, Vec::new());
    let mut indexer = PartitionIndexer::new(0, DueIndex::new());
    let mut mark = None;
    assert_eq!(step(&source, &target, &mut indexer, &config, &mut mark), 1);
    assert_eq!(mark, Some(1));
    // Another topic fires `j` into the same partition; `j` is due here too.
    let header = |name: &str, value: &str| (name.to_owned(), Some(value.as_bytes().to_vec()));
    put(
        &target,
        "j",
        r#"{"at":10}"#,
        vec![
            header(HEADER_DUE_FIELD, "/at"),
            header(HEADER_DUE_AT, "10"),
            header(HEADER_SOURCE_OFFSET, "0"),
            header(HEADER_SOURCE_TOPIC, "elsewhere"),
        ],
    );
    put(&source, "j", r#"{"at":10}"#, Vec::new());

    // The restart.
    let mut indexer = PartitionIndexer::new(0, DueIndex::new());
    restore_target_fires(&mut indexer, &config, "prices", &target, 1).unwrap();
    let restored = indexer.take_changes();
    assert!(
        matches!(
            restored.as_slice(),
            [FiredChange::Fired { key, due_ms: 10, source_offset: 0, fire_offset: 1, .. }]
                if key == b"k"
        ),
        "{restored:?}"
    );
    let mut mark = None;
    assert_eq!(
        step(&source, &target, &mut indexer, &config, &mut mark),
        1,
        "only `j`, which never fired from this topic"
    );
    // Without the mark's restore, `k` would have fired twice.
    let mut forgetful = PartitionIndexer::new(0, DueIndex::new());
    assert_eq!(
        step(&source, &target, &mut forgetful, &config, &mut mark),
        2
    );
}
