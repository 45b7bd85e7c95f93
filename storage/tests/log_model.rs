//! Model-based test: random operation sequences run against a real `Log` (through a
//! `LogManager` on `FaultyFs`) and against a `Vec` of batches, compared after every step.
//!
//! How: the model keeps every batch not truncated away (also those below the log start, which
//! a crash may bring back into view), the log start offset, the log end offset, the end of the
//! flushed prefix, and one idempotent producer. After each operation the log's offsets must
//! match the model and a full read must return exactly the model's visible batches, byte for
//! byte. `Reopen` is a clean shutdown and must change nothing. `Crash` drops the manager
//! without shutdown and simulates power loss with `FaultyFs::crash`: the log must then hold the
//! flushed prefix plus possibly some of the unflushed suffix, all of it batches the model knows,
//! and the model adopts what survived.
//!
//! `PROPTEST_CASES` sets the number of cases (default 64) and `KAIROS_MODEL_MAX_OPS` the
//! longest operation sequence (default 40).

mod support;

use std::path::Path;
use std::sync::Arc;

use kairos_storage::builder::RecordBatchBuilder;
use kairos_storage::{
    AppendOrigin, AppendOutcome, Error, Log, LogConfig, LogManager, TopicPartition,
};
use proptest::prelude::*;
use support::faulty_fs::FaultyFs;
use support::{check_clean_prefix, split_batches};

#[derive(Debug, Clone)]
enum Op {
    /// Appends a batch of `records` records with `value_len`-byte values, from the idempotent
    /// producer if `idempotent`.
    Append {
        records: u8,
        value_len: u16,
        idempotent: bool,
    },
    /// Resends the producer's last batch: the log must answer with its original offsets.
    Duplicate,
    /// Reads from an offset picked around `[log_start, log_end]`.
    Read {
        pick: u16,
        max_bytes: u16,
    },
    Roll,
    /// Truncates at a batch boundary picked from the visible batches.
    TruncateTo {
        pick: u16,
    },
    DeleteRecords {
        pick: u16,
    },
    /// Size-based retention down to `bytes`.
    Retention {
        bytes: u16,
    },
    Flush,
    Reopen,
    Crash,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        10 => (1u8..=6, 0u16..=400, any::<bool>()).prop_map(|(records, value_len, idempotent)| {
            Op::Append { records, value_len, idempotent }
        }),
        2 => Just(Op::Duplicate),
        6 => (any::<u16>(), 1u16..=4096).prop_map(|(pick, max_bytes)| Op::Read { pick, max_bytes }),
        1 => Just(Op::Roll),
        1 => any::<u16>().prop_map(|pick| Op::TruncateTo { pick }),
        1 => any::<u16>().prop_map(|pick| Op::DeleteRecords { pick }),
        1 => (0u16..=6000).prop_map(|bytes| Op::Retention { bytes }),
        3 => Just(Op::Flush),
        1 => Just(Op::Reopen),
        2 => Just(Op::Crash),
    ]
}

/// Small segments and indexes, so that a few appends roll segments and fill indexes.
fn config() -> LogConfig {
    LogConfig {
        segment_bytes: 2048,
        index_interval_bytes: 256,
        segment_index_bytes: 64,
        retention_ms: -1,
        ..LogConfig::default()
    }
}

fn tp() -> TopicPartition {
    TopicPartition::new("model", 0)
}

/// A batch of the model, with the producer sequence range it carries.
#[derive(Debug, Clone)]
struct Batch {
    first: i64,
    last: i64,
    bytes: Vec<u8>,
    /// `(producer_id, first_seq)` for idempotent batches.
    producer: Option<(i64, i32)>,
}

#[derive(Debug, Default)]
struct Model {
    /// Every batch not truncated, oldest first, including those below the log start.
    batches: Vec<Batch>,
    log_start: i64,
    log_end: i64,
    /// Every offset below this is acknowledged as flushed.
    flushed: i64,
    producer_id: i64,
    next_seq: i32,
    next_tag: u64,
}

impl Model {
    fn visible(&self) -> impl Iterator<Item = &Batch> {
        self.batches.iter().filter(|b| b.last >= self.log_start)
    }

    /// The producer's newest batch still in the model.
    fn last_producer_batch(&self) -> Option<&Batch> {
        self.batches
            .iter()
            .rev()
            .find(|b| b.producer.is_some_and(|(id, _)| id == self.producer_id))
    }

    /// Producer state is snapshotted only at a clean shutdown, so after a crash the state of a
    /// producer whose batches all lie in deleted segments is that of the last snapshot: its
    /// expected sequence is not known. Such a producer is retired and a new one starts.
    fn retire_producer_below_log_start(&mut self) {
        if self
            .last_producer_batch()
            .is_some_and(|b| b.last < self.log_start)
        {
            self.producer_id += 1;
            self.next_seq = 0;
        }
    }

    /// After a truncation or crash removed batches: continue the producer's sequence after its
    /// newest surviving batch. If none survived, the log has no state for it and any sequence
    /// goes, so start over at 0 (this catches producer state that outlives its batches).
    fn resync_producer(&mut self) {
        match self.last_producer_batch() {
            Some(batch) => {
                let (_, first_seq) = batch.producer.unwrap();
                self.next_seq = first_seq + i32::try_from(batch.last - batch.first).unwrap() + 1;
            }
            None => self.next_seq = 0,
        }
    }
}

/// The log under test and what it runs on.
struct Harness {
    dir: tempfile::TempDir,
    fs: FaultyFs,
    /// `None` only while reopening: the manager and the log are dropped before a crash
    /// touches their files.
    manager: Option<LogManager>,
    log: Option<Arc<Log>>,
}

impl Harness {
    fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let fs = FaultyFs::new();
        let manager = open(&fs, dir.path());
        let log = manager.get_or_create(&tp(), config(), 0).unwrap();
        Self {
            dir,
            fs,
            manager: Some(manager),
            log: Some(log),
        }
    }

    fn log(&self) -> &Log {
        self.log.as_deref().unwrap()
    }

    /// Clean: shutdown and reopen. Not clean: drop, power loss, reopen.
    fn reopen(&mut self, clean: bool) {
        if clean {
            self.manager.as_ref().unwrap().shutdown(0).unwrap();
        }
        self.log = None;
        self.manager = None;
        if !clean {
            self.fs.crash();
        }
        let manager = open(&self.fs, self.dir.path());
        self.log = Some(manager.get(&tp()).unwrap());
        self.manager = Some(manager);
    }
}

fn open(fs: &FaultyFs, dir: &Path) -> LogManager {
    LogManager::open_with_configs(fs.handle(), dir, 0, |_| config()).unwrap()
}

fn build(tag: u64, records: u8, value_len: u16, producer: Option<(i64, i32)>) -> Vec<u8> {
    let mut builder = RecordBatchBuilder::new();
    if let Some((id, seq)) = producer {
        builder = builder.producer(id, 0, seq);
    }
    for i in 0..records {
        let key = format!("{tag}/{i}");
        let value = vec![(tag as u8).wrapping_add(i); usize::from(value_len)];
        builder = builder.record(Some(key.as_bytes()), Some(&value), tag as i64);
    }
    builder.build()
}

fn apply(h: &mut Harness, m: &mut Model, op: &Op) {
    match *op {
        Op::Append {
            records,
            value_len,
            idempotent,
        } => {
            m.next_tag += 1;
            if idempotent {
                m.retire_producer_below_log_start();
            }
            let producer = idempotent.then_some((m.producer_id, m.next_seq));
            let mut bytes = build(m.next_tag, records, value_len, producer);
            let outcome = h
                .log()
                .append(&mut bytes, AppendOrigin::Client, 0, 0)
                .unwrap();
            let AppendOutcome::Appended(info) = outcome else {
                panic!("{outcome:?}");
            };
            assert_eq!(info.first_offset, m.log_end);
            assert_eq!(info.last_offset, m.log_end + i64::from(records) - 1);
            m.batches.push(Batch {
                first: info.first_offset,
                last: info.last_offset,
                bytes,
                producer,
            });
            m.log_end = info.last_offset + 1;
            if idempotent {
                m.next_seq += i32::from(records);
            }
        }
        Op::Duplicate => {
            let Some(last) = m.last_producer_batch().filter(|b| b.last >= m.log_start) else {
                return;
            };
            let mut bytes = last.bytes.clone();
            let outcome = h
                .log()
                .append(&mut bytes, AppendOrigin::Client, 0, 0)
                .unwrap();
            assert_eq!(
                outcome,
                AppendOutcome::Duplicate {
                    first_offset: last.first,
                    last_offset: last.last,
                    log_start_offset: m.log_start,
                }
            );
        }
        Op::Read { pick, max_bytes } => check_read(h, m, pick, usize::from(max_bytes)),
        Op::Roll => h.log().roll().unwrap(),
        Op::TruncateTo { pick } => {
            let mut targets: Vec<i64> = m
                .visible()
                .map(|b| b.first)
                .filter(|&f| f >= m.log_start)
                .collect();
            targets.push(m.log_end);
            let target = targets[usize::from(pick) % targets.len()];
            h.log().truncate_to(target).unwrap();
            m.batches.retain(|b| b.first < target);
            m.log_end = target;
            m.flushed = m.flushed.min(target);
            m.resync_producer();
        }
        Op::DeleteRecords { pick } => {
            let span = m.log_end - m.log_start + 1;
            let target = m.log_start + i64::from(pick) % span;
            let start = h.log().delete_records(target).unwrap();
            assert_eq!(start, target.max(m.log_start));
            m.log_start = start;
        }
        Op::Retention { bytes } => {
            let bases = h.log().segment_base_offsets();
            let size_before = h.log().size_bytes();
            h.log().update_config(LogConfig {
                retention_bytes: i64::from(bytes),
                ..config()
            });
            let _ = h.log().enforce_retention(0).unwrap();
            h.log().update_config(config());
            let start = h.log().log_start_offset();
            assert!(start >= m.log_start);
            assert!(
                start == m.log_start || start == m.log_end || bases.contains(&start),
                "retention moved the log start to {start}, not a segment boundary"
            );
            // Segments wholly below the log start go whatever their size.
            let below_start = bases.windows(2).any(|w| w[1] <= m.log_start)
                || (m.log_start == m.log_end && size_before > 0);
            assert!(
                below_start || h.log().size_bytes() >= size_before.min(u64::from(bytes)),
                "retention deleted more than it had to"
            );
            m.log_start = start;
        }
        Op::Flush => {
            h.log().sync_to(m.log_end, 0).unwrap();
            assert!(h.log().recovery_point() >= m.log_end);
            m.flushed = m.log_end;
        }
        Op::Reopen => {
            h.reopen(true);
            m.flushed = m.log_end;
        }
        Op::Crash => {
            h.reopen(false);
            adopt_survivors(h, m);
        }
    }
    check_state(h, m);
}

/// After a crash: the log holds the flushed prefix and possibly more, every batch one the
/// model wrote; the model becomes what survived.
fn adopt_survivors(h: &Harness, m: &mut Model) {
    let (start, end) = (h.log().log_start_offset(), h.log().log_end_offset());
    assert!(
        end >= m.flushed,
        "flushed data lost: log end {end} < flushed {}",
        m.flushed
    );
    assert!(end <= m.log_end, "log end {end} past what was written");
    assert!(start <= m.log_start, "log start moved forward");
    for batch in check_clean_prefix(h.log()) {
        let known = m
            .batches
            .iter()
            .find(|b| b.first == batch.first)
            .unwrap_or_else(|| panic!("batch at {} was never written", batch.first));
        assert_eq!(known.last, batch.last);
        assert!(
            known.bytes == batch.bytes,
            "batch at {} differs",
            batch.first
        );
    }
    m.batches.retain(|b| b.last < end);
    m.log_end = end;
    m.log_start = start;
    m.flushed = end;
    m.resync_producer();
}

fn check_state(h: &Harness, m: &Model) {
    assert_eq!(h.log().log_end_offset(), m.log_end, "log end offset");
    assert_eq!(h.log().log_start_offset(), m.log_start, "log start offset");
    assert!(h.log().recovery_point() >= m.flushed, "recovery point");
    assert!(h.log().recovery_point() <= m.log_end);
    let actual = check_clean_prefix(h.log());
    let expected: Vec<_> = m.visible().collect();
    assert_eq!(actual.len(), expected.len(), "visible batch count");
    for (a, e) in actual.iter().zip(expected) {
        assert_eq!((a.first, a.last), (e.first, e.last));
        assert!(a.bytes == e.bytes, "bytes of batch {}", a.first);
    }
}

/// A read returns whole batches starting with the one holding the offset, at least one, as
/// many as fit in `max_bytes` within that batch's segment.
fn check_read(h: &Harness, m: &Model, pick: u16, max_bytes: usize) {
    let span = m.log_end - m.log_start + 3;
    let offset = m.log_start - 1 + i64::from(pick) % span;
    let result = h.log().read(offset, max_bytes, None);
    if offset < m.log_start || offset > m.log_end {
        assert!(
            matches!(result, Err(Error::OffsetOutOfRange { .. })),
            "read at {offset}: {result:?}"
        );
        return;
    }
    let read = result.unwrap();
    assert_eq!(read.log_start_offset, m.log_start);
    assert_eq!(read.log_end_offset, m.log_end);
    assert_eq!(read.high_watermark, m.log_end);
    let got = split_batches(&read.records);
    if offset == m.log_end {
        assert!(got.is_empty(), "read at the log end returns nothing");
        return;
    }
    let visible: Vec<&Batch> = m.visible().collect();
    let from = visible
        .iter()
        .position(|b| b.first <= offset && offset <= b.last)
        .unwrap();
    assert!(!got.is_empty(), "read at {offset} returned no batch");
    let mut total = 0;
    for (i, batch) in got.iter().enumerate() {
        let want = visible[from + i];
        assert_eq!((batch.first, batch.last), (want.first, want.last));
        assert!(batch.bytes == want.bytes);
        total += batch.bytes.len();
    }
    if got.len() > 1 {
        assert!(
            total <= max_bytes,
            "read of {max_bytes} bytes returned {total}"
        );
    }
    if let Some(next) = visible.get(from + got.len()) {
        let bases = h.log().segment_base_offsets();
        let segment_of = |o: i64| bases.iter().rev().find(|&&b| b <= o).copied();
        let same_segment = segment_of(next.first) == segment_of(visible[from].first);
        assert!(
            !same_segment || total + next.bytes.len() > max_bytes,
            "read at {offset} of {max_bytes} bytes stopped early at {total} bytes"
        );
    }
}

/// Longest operation sequence: `KAIROS_MODEL_MAX_OPS`, default 40.
fn max_ops() -> usize {
    std::env::var("KAIROS_MODEL_MAX_OPS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(40)
}

fn cases() -> u32 {
    std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(64)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: cases(), ..ProptestConfig::default() })]

    #[test]
    fn log_matches_model(ops in prop::collection::vec(op(), 1..=max_ops())) {
        let mut harness = Harness::new();
        let mut model = Model { producer_id: 42, ..Model::default() };
        for op in &ops {
            apply(&mut harness, &mut model, op);
        }
        harness.reopen(true);
        check_state(&harness, &model);
    }
}

// Regressions found by the model, each replayed as a plain test. The failing op sequences are
// also kept in `log_model.proptest-regressions`.

/// Runs `ops` from an empty log.
fn replay(ops: &[Op]) {
    let mut harness = Harness::new();
    let mut model = Model {
        producer_id: 42,
        ..Model::default()
    };
    for op in ops {
        apply(&mut harness, &mut model, op);
    }
}

fn append_op(records: u8, value_len: u16, idempotent: bool) -> Op {
    Op::Append {
        records,
        value_len,
        idempotent,
    }
}

/// DeleteRecords up to the log end replaced the only segment by a new one and deleted the old
/// one before the new one was durable: a crash left no segment and the log restarted at 0.
#[test]
fn regression_delete_records_then_crash_never_moves_the_log_end_below_flushed() {
    replay(&[
        append_op(1, 0, false),
        Op::Flush,
        Op::DeleteRecords { pick: 1 },
        Op::Crash,
    ]);
    replay(&[
        append_op(5, 0, false),
        Op::Flush,
        append_op(3, 156, false),
        append_op(3, 303, false),
        append_op(1, 294, false),
        Op::DeleteRecords { pick: 11 },
        Op::Crash,
    ]);
}

/// A crash emptied an unflushed segment but kept the (empty) segment after it: the log end
/// came from the later segment's base, with no batches in between.
#[test]
fn regression_a_segment_emptied_by_a_crash_leaves_no_gap() {
    replay(&[
        append_op(4, 299, false),
        append_op(5, 125, false),
        Op::Roll,
        Op::DeleteRecords { pick: 4 },
        Op::Crash,
    ]);
}

/// A producer snapshot written at a clean shutdown outlived a later truncation of the batches
/// it describes; after an unclean restart it made the log answer a new batch as a duplicate of
/// a batch that is no longer there.
#[test]
fn regression_truncation_invalidates_producer_snapshots() {
    replay(&[
        append_op(1, 10, false),
        append_op(2, 10, true),
        Op::Reopen,
        Op::TruncateTo { pick: 1 },
        append_op(3, 10, false),
        Op::Flush,
        Op::Crash,
        append_op(2, 10, true),
    ]);
}

/// The producer state keeps each producer's last five batches; a truncation that removed the
/// newest ones dropped the producer, so a resend of its older batch, still in the log, was
/// appended again instead of being answered as a duplicate.
#[test]
fn regression_truncation_keeps_older_producer_batches_for_duplicates() {
    let mut ops = vec![append_op(1, 0, false), append_op(1, 0, true)];
    ops.extend([append_op(1, 0, false), append_op(1, 0, false)]);
    ops.extend((0..5).map(|_| append_op(1, 0, true)));
    ops.extend([
        append_op(1, 0, false),
        Op::TruncateTo { pick: 2 },
        Op::Duplicate,
    ]);
    replay(&ops);
}

/// A truncation lowers the recovery point only in memory; the checkpoint still claimed the
/// re-appended (unflushed) offsets as flushed, so after a crash the loader trusted a segment
/// that had lost its tail and kept the segment after it: a gap.
#[test]
fn regression_data_appended_after_a_truncation_is_not_trusted_after_a_crash() {
    replay(&[
        append_op(1, 0, false),
        append_op(3, 0, false),
        append_op(4, 0, false),
        append_op(5, 259, false),
        Op::DeleteRecords { pick: 2 },
        append_op(2, 143, false),
        append_op(3, 0, false),
        append_op(1, 0, false),
        Op::Reopen,
        Op::TruncateTo { pick: 3 },
        append_op(4, 0, false),
        append_op(4, 367, false),
        Op::DeleteRecords { pick: 11 },
        Op::Crash,
    ]);
}
