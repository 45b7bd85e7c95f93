//! Property test: random interleavings of transactional and idempotent producers, commits,
//! aborts and re-initialisations (fencing) against one broker, checked against a model of what a
//! read_committed reader must be handed.
//!
//! How: one embedded broker serves every case (each case has its own topic and transactional
//! ids). The model keeps, per partition, the records in the order they were appended, each
//! tagged with its transaction (or none), and each transaction's outcome. A reader is allowed
//! the records that are not transactional or whose transaction committed, in log order; while a
//! transaction is open it may be handed only those before that transaction's first record (the
//! LSO). `Read` checks that what the broker gives (raw Fetch at read_committed, filtered the way
//! Kafka's consumers filter with `aborted_transactions`) is always a prefix of the allowed
//! records and reaches the part below the model's LSO (markers may be written just after EndTxn
//! is answered). At the end every transaction is ended, the LSO must reach the high watermark,
//! the high watermark must be the model's records plus one marker per partition per ended
//! transaction, and the reader must get exactly the allowed records.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use proptest::prelude::*;
use proptest::test_runner::{Config, FileFailurePersistence, TestRunner};

use super::raw::{self, code};
use super::txn_broker;
use crate::wire::Wire;

const PRODUCERS: usize = 3;
const PARTITIONS: i32 = 2;

#[derive(Debug, Clone)]
enum Op {
    /// An idempotent, non-transactional batch.
    Plain {
        partition: i32,
        records: usize,
    },
    /// A transactional batch; begins a transaction and adds the partition when needed.
    Send {
        producer: usize,
        partition: i32,
        records: usize,
    },
    Commit {
        producer: usize,
    },
    Abort {
        producer: usize,
    },
    /// InitProducerId again with the same transactional id: bumps the epoch and aborts the open
    /// transaction.
    Reinit {
        producer: usize,
    },
    /// A batch at the epoch before the last `Reinit`: refused, nothing written.
    Zombie {
        producer: usize,
    },
    Read,
}

fn op() -> impl Strategy<Value = Op> {
    let producer = 0..PRODUCERS;
    let partition = 0..PARTITIONS;
    prop_oneof![
        2 => (partition.clone(), 1..4_usize)
            .prop_map(|(partition, records)| Op::Plain { partition, records }),
        5 => (producer.clone(), partition, 1..4_usize).prop_map(|(producer, partition, records)| {
            Op::Send { producer, partition, records }
        }),
        2 => producer.clone().prop_map(|producer| Op::Commit { producer }),
        1 => producer.clone().prop_map(|producer| Op::Abort { producer }),
        1 => producer.clone().prop_map(|producer| Op::Reinit { producer }),
        1 => producer.prop_map(|producer| Op::Zombie { producer }),
        1 => Just(Op::Read),
    ]
}

/// The operations, how each producer's still-open transaction ends (true: commit), and the
/// topic's `segment.bytes`.
type Case = (Vec<Op>, Vec<bool>, &'static str);

fn case() -> impl Strategy<Value = Case> {
    (
        proptest::collection::vec(op(), 1..24),
        proptest::collection::vec(any::<bool>(), PRODUCERS),
        // One segment for the whole case, a segment per batch (Kafka's minimum), or a roll
        // every few batches: transactions and their markers in the same or in later segments.
        prop_oneof![Just("1073741824"), Just("14"), Just("400")],
    )
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Outcome {
    Open,
    Committed,
    Aborted,
}

#[derive(Debug, Default)]
struct TxnProducer {
    /// `(producer id, epoch)` once initialised.
    current: Option<(i64, i16)>,
    stale_epoch: Option<i16>,
    sequences: BTreeMap<i32, i32>,
    /// The open transaction: its number and its partitions.
    open: Option<(usize, BTreeSet<i32>)>,
}

struct Model {
    topic: String,
    /// Per partition, `(value, transaction)` in append order.
    records: BTreeMap<i32, Vec<(String, Option<usize>)>>,
    outcomes: Vec<Outcome>,
    markers: BTreeMap<i32, i64>,
    producers: Vec<TxnProducer>,
    plain: (i64, i16),
    plain_sequences: BTreeMap<i32, i32>,
    next_value: usize,
}

impl Model {
    fn txn_id(&self, producer: usize) -> String {
        format!("{}-p{producer}", self.topic)
    }

    fn values(&mut self, records: usize) -> Vec<String> {
        (0..records)
            .map(|_| {
                self.next_value += 1;
                format!("v{}", self.next_value)
            })
            .collect()
    }

    /// What a reader may ever be handed, and the part of it below the model's LSO.
    fn allowed(&self, partition: i32) -> (Vec<String>, usize) {
        let mut allowed = Vec::new();
        let mut below_lso = None;
        for (value, txn) in &self.records[&partition] {
            match txn.map(|t| self.outcomes[t]) {
                Some(Outcome::Open) => {
                    below_lso.get_or_insert(allowed.len());
                }
                Some(Outcome::Aborted) => {}
                None | Some(Outcome::Committed) => allowed.push(value.clone()),
            }
        }
        let below = below_lso.unwrap_or(allowed.len());
        (allowed, below)
    }

    fn end(&mut self, wire: &mut Wire, producer: usize, commit: bool) {
        let Some((txn, partitions)) = self.producers[producer].open.take() else {
            return;
        };
        let current = self.producers[producer].current.unwrap();
        let id = self.txn_id(producer);
        assert_eq!(
            raw::end_txn(wire, &id, current, commit),
            code::NONE,
            "EndTxn {id}"
        );
        self.close(txn, &partitions, commit);
    }

    fn close(&mut self, txn: usize, partitions: &BTreeSet<i32>, commit: bool) {
        self.outcomes[txn] = if commit {
            Outcome::Committed
        } else {
            Outcome::Aborted
        };
        for partition in partitions {
            *self.markers.entry(*partition).or_default() += 1;
        }
    }

    fn apply(&mut self, wire: &mut Wire, op: &Op) {
        self.apply_op(wire, op);
        // Every end of a transaction changes what readers may see: check at once, not only at
        // the next `Read`.
        if matches!(op, Op::Commit { .. } | Op::Abort { .. } | Op::Reinit { .. }) {
            for partition in 0..PARTITIONS {
                self.check_read(wire, partition);
            }
        }
    }

    fn apply_op(&mut self, wire: &mut Wire, op: &Op) {
        match *op {
            Op::Plain { partition, records } => {
                let values = self.values(records);
                let sequence = self.plain_sequences.entry(partition).or_default();
                let batch = raw::batch(Some(self.plain), *sequence, false, &values);
                *sequence += i32::try_from(records).unwrap();
                let (error, _) = raw::produce(wire, None, (&self.topic, partition), batch);
                assert_eq!(error, code::NONE, "plain produce");
                let log = self.records.get_mut(&partition).unwrap();
                log.extend(values.into_iter().map(|v| (v, None)));
            }
            Op::Send {
                producer,
                partition,
                records,
            } => {
                let id = self.txn_id(producer);
                if self.producers[producer].current.is_none() {
                    self.producers[producer].current = Some(raw::init(wire, &id));
                }
                let current = self.producers[producer].current.unwrap();
                if self.producers[producer].open.is_none() {
                    self.outcomes.push(Outcome::Open);
                    self.producers[producer].open =
                        Some((self.outcomes.len() - 1, BTreeSet::new()));
                }
                let (txn, partitions) = self.producers[producer].open.clone().unwrap();
                if !partitions.contains(&partition) {
                    raw::add(wire, &id, current, &[(&self.topic, partition)]);
                    let open = self.producers[producer].open.as_mut().unwrap();
                    let _ = open.1.insert(partition);
                }
                let values = self.values(records);
                let sequence = self.producers[producer]
                    .sequences
                    .entry(partition)
                    .or_default();
                let batch = raw::batch(Some(current), *sequence, true, &values);
                *sequence += i32::try_from(records).unwrap();
                let (error, _) = raw::produce(wire, Some(&id), (&self.topic, partition), batch);
                assert_eq!(error, code::NONE, "transactional produce of {id}");
                let log = self.records.get_mut(&partition).unwrap();
                log.extend(values.into_iter().map(|v| (v, Some(txn))));
            }
            Op::Commit { producer } => self.end(wire, producer, true),
            Op::Abort { producer } => self.end(wire, producer, false),
            Op::Reinit { producer } => {
                let Some(before) = self.producers[producer].current else {
                    return;
                };
                let id = self.txn_id(producer);
                let after = raw::init(wire, &id);
                assert_eq!(after.0, before.0, "{id}: same producer id");
                assert!(after.1 > before.1, "{id}: epoch bumped");
                let state = &mut self.producers[producer];
                state.current = Some(after);
                state.stale_epoch = Some(before.1);
                state.sequences.clear();
                if let Some((txn, partitions)) = state.open.take() {
                    self.close(txn, &partitions, false);
                }
            }
            Op::Zombie { producer } => {
                let state = &self.producers[producer];
                let (Some((pid, _)), Some(stale)) = (state.current, state.stale_epoch) else {
                    return;
                };
                let id = self.txn_id(producer);
                let batch = raw::batch(Some((pid, stale)), 0, true, &["zombie".to_owned()]);
                let (error, _) = raw::produce(wire, Some(&id), (&self.topic, 0), batch);
                assert_eq!(error, code::INVALID_PRODUCER_EPOCH, "{id}: stale epoch");
            }
            Op::Read => {
                for partition in 0..PARTITIONS {
                    self.check_read(wire, partition);
                }
            }
        }
    }

    /// The broker's read_committed view is a prefix of the allowed records, and reaches the
    /// model's LSO within a few seconds.
    fn check_read(&self, wire: &mut Wire, partition: i32) {
        let (allowed, below_lso) = self.allowed(partition);
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            let seen: Vec<String> = raw::read_committed(wire, (&self.topic, partition))
                .into_iter()
                .map(|(_, v)| v)
                .collect();
            assert!(
                allowed.starts_with(&seen),
                "partition {partition}: read_committed gave {seen:?}, allowed {allowed:?}"
            );
            if seen.len() >= below_lso {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "partition {partition}: read_committed stuck at {seen:?}, expected the first \
                 {below_lso} of {allowed:?}"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn finish(&mut self, wire: &mut Wire, commits: &[bool]) {
        for (producer, commit) in commits.iter().enumerate() {
            self.end(wire, producer, *commit);
        }
        for partition in 0..PARTITIONS {
            let end = raw::wait_stable(wire, (&self.topic, partition), Duration::from_secs(10));
            let records = i64::try_from(self.records[&partition].len()).unwrap();
            let markers = self.markers.get(&partition).copied().unwrap_or(0);
            assert_eq!(
                end,
                records + markers,
                "partition {partition}: high watermark = {records} records + {markers} markers"
            );
            let (allowed, below_lso) = self.allowed(partition);
            assert_eq!(below_lso, allowed.len(), "every transaction ended");
            let seen: Vec<String> = raw::read_committed(wire, (&self.topic, partition))
                .into_iter()
                .map(|(_, v)| v)
                .collect();
            assert_eq!(seen, allowed, "partition {partition}: read_committed");
        }
    }
}

fn run_case(address: &str, (ops, commits, segment_bytes): &Case) {
    static CASE: AtomicUsize = AtomicUsize::new(0);
    let topic = format!("model-{}", CASE.fetch_add(1, Ordering::Relaxed));
    let mut wire = Wire::connect(address);
    let configs = [("segment.bytes", *segment_bytes)];
    raw::create_topic_with(&mut wire, &topic, PARTITIONS, &configs);
    let (error, pid, epoch) = raw::init_producer_id(&mut wire, None, 60_000);
    assert_eq!(error, code::NONE);
    let mut model = Model {
        records: (0..PARTITIONS).map(|p| (p, Vec::new())).collect(),
        topic,
        outcomes: Vec::new(),
        markers: BTreeMap::new(),
        producers: (0..PRODUCERS).map(|_| TxnProducer::default()).collect(),
        plain: (pid, epoch),
        plain_sequences: BTreeMap::new(),
        next_value: 0,
    };
    for op in ops {
        model.apply(&mut wire, op);
    }
    model.finish(&mut wire, commits);
}

/// Cases: `PROPTEST_CASES` (CI sets 64), else 64. Failures are persisted next to this file.
fn config() -> Config {
    Config {
        cases: std::env::var("PROPTEST_CASES")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(64),
        max_shrink_iters: 256,
        source_file: Some(file!()),
        failure_persistence: Some(Box::new(FileFailurePersistence::WithSource(
            "proptest-regressions",
        ))),
        ..Config::default()
    }
}

#[test]
fn read_committed_matches_the_model() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let broker = runtime.block_on(txn_broker());
    let address = broker.bootstrap_servers();
    let mut runner = TestRunner::new(config());
    let result = runner.run(&case(), |case| {
        run_case(&address, &case);
        Ok(())
    });
    runtime.block_on(broker.shutdown()).unwrap();
    if let Err(error) = result {
        panic!("{error}\n{runner}");
    }
}
