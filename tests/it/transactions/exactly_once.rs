//! Consume-transform-produce with `send_offsets_to_transaction`, killed with SIGKILL mid-stream
//! and restarted with the same `transactional.id`: every input record is in the output exactly
//! once under read_committed.
//!
//! How: the test binary runs itself again as the application (only this test, `--exact`,
//! switched into child mode by an environment variable). The child is a static member of a
//! consumer group on the input topic (read_committed, manual commits), and a transactional
//! producer. Each round it takes up to `BATCH` records, writes `partition:offset:value` of each
//! to the output topic, flushes (the records are in the log), prints `TXN_OPEN`, sends its
//! consumer positions into the transaction, prints `OFFSETS_SENT`, commits and prints
//! `COMMITTED`. The parent kills it with SIGKILL right after `TXN_OPEN`, then right after
//! `OFFSETS_SENT`, then a random few milliseconds after a commit, and lets the fourth run go
//! until it prints `CAUGHT_UP` (its committed offsets reached the end of the input). A restarted
//! child's `init_transactions` fences the killed one and aborts its open transaction; its
//! consumer resumes from the offsets committed with the last committed transaction.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::{Receiver, RecvTimeoutError, channel};
use std::time::Duration;

use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::producer::{BaseProducer, BaseRecord, Producer};
use rdkafka::{Message, Offset, TopicPartitionList};

use super::{Isolation, TXN_CONFIGS, read_to_end, txn_broker, txn_producer_config, wait_stable};
use crate::groups::blocking;
use crate::support;

const TEST_NAME: &str = "transactions::exactly_once::consume_transform_produce_survives_sigkill";
const CHILD_ENV: &str = "KAIROS_TXN_EOS_CHILD";
const INPUT_RECORDS: usize = 300;
const BATCH: usize = 10;
/// A child that is never killed gives up after this long, so a failed parent leaves no process.
const CHILD_LIFETIME: Duration = Duration::from_secs(60);
/// How long the parent waits for any one line of a child.
const LINE_TIMEOUT: Duration = Duration::from_secs(20);

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn consume_transform_produce_survives_sigkill() {
    if let Ok(spec) = std::env::var(CHILD_ENV) {
        run_child(&spec);
    }
    // The group configs matter here: no initial rebalance delay.
    assert!(TXN_CONFIGS.contains(&("group.initial.rebalance.delay.ms", "0")));
    let broker = txn_broker().await;
    let bootstrap = broker.bootstrap_servers();
    let (input, output) = (
        support::topic_name("eos-in"),
        support::topic_name("eos-out"),
    );
    support::create_topic(&bootstrap, &input, 3, &[]).await;
    support::create_topic(&bootstrap, &output, 2, &[]).await;
    let produced = produce_input(&bootstrap, &input).await;
    let spec = [
        bootstrap.as_str(),
        &input,
        &output,
        &support::topic_name("eos-group"),
        &support::topic_name("eos-app"),
    ]
    .join("|");
    let seed = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos();
    eprintln!("exactly_once: random kill delay seed {seed}");
    let spec_for_rounds = spec.clone();
    blocking(move || {
        run_round(&spec_for_rounds, Kill::AfterLine("TXN_OPEN"));
        run_round(&spec_for_rounds, Kill::AfterLine("OFFSETS_SENT"));
        run_round(
            &spec_for_rounds,
            Kill::AfterCommitPlus(u64::from(seed % 40)),
        );
        run_round(&spec_for_rounds, Kill::Never);
    })
    .await;

    let group = spec.split('|').nth(3).unwrap().to_owned();
    let (address, out_topic, in_topic) = (bootstrap.clone(), output.clone(), input.clone());
    let (committed, uncommitted, group_offsets) = blocking(move || {
        let _ = wait_stable(&address, &out_topic, 2);
        let committed = read_to_end(
            &address,
            &out_topic,
            2,
            Isolation::ReadCommitted,
            LINE_TIMEOUT,
        );
        let uncommitted = read_to_end(
            &address,
            &out_topic,
            2,
            Isolation::ReadUncommitted,
            LINE_TIMEOUT,
        );
        (
            committed,
            uncommitted,
            group_offsets(&address, &group, &in_topic),
        )
    })
    .await;

    let mut outputs: BTreeMap<(i32, i64), Vec<String>> = BTreeMap::new();
    for seen in &committed {
        let mut parts = seen.value.splitn(3, ':');
        let partition: i32 = parts.next().unwrap().parse().unwrap();
        let offset: i64 = parts.next().unwrap().parse().unwrap();
        outputs
            .entry((partition, offset))
            .or_default()
            .push(parts.next().unwrap().to_owned());
    }
    let duplicates: Vec<_> = outputs.iter().filter(|(_, v)| v.len() > 1).collect();
    assert!(duplicates.is_empty(), "processed twice: {duplicates:?}");
    let missing: Vec<_> = produced
        .keys()
        .filter(|k| !outputs.contains_key(k))
        .collect();
    assert!(missing.is_empty(), "never processed: {missing:?}");
    for (position, values) in &outputs {
        assert_eq!(
            produced.get(position),
            Some(&values[0]),
            "output for input {position:?}"
        );
    }
    assert!(
        uncommitted.len() > committed.len(),
        "no aborted output at all ({} records): the kills did not land inside transactions",
        uncommitted.len()
    );
    let mut ends: BTreeMap<i32, i64> = BTreeMap::new();
    for (partition, offset) in produced.keys() {
        let end = ends.entry(*partition).or_default();
        *end = (*end).max(offset + 1);
    }
    assert_eq!(
        group_offsets, ends,
        "committed input offsets are the input's end"
    );
    broker.shutdown().await.unwrap();
}

/// Produces the input (keys spread over the partitions); returns `(partition, offset) → value`.
async fn produce_input(bootstrap: &str, topic: &str) -> BTreeMap<(i32, i64), String> {
    let producer = support::producer(bootstrap, "all", &[]);
    let mut pending = Vec::new();
    for i in 0..INPUT_RECORDS {
        let (key, value) = (format!("k{i}"), format!("v{i}"));
        let record = rdkafka::producer::FutureRecord::to(topic)
            .key(&key)
            .payload(&value);
        pending.push((value.clone(), producer.send_result(record).unwrap()));
    }
    let mut produced = BTreeMap::new();
    for (value, delivery) in pending {
        let delivery = delivery.await.unwrap().expect("input acknowledged");
        let _ = produced.insert((delivery.partition, delivery.offset), value);
    }
    produced
}

/// The group's committed offsets of `topic`'s three partitions (read_committed, so pending
/// transactional offsets are waited for).
fn group_offsets(bootstrap: &str, group: &str, topic: &str) -> BTreeMap<i32, i64> {
    let consumer: BaseConsumer = support::client_config(bootstrap)
        .set("group.id", group)
        .set("isolation.level", "read_committed")
        .create()
        .unwrap();
    let mut list = TopicPartitionList::new();
    for partition in 0..3 {
        list.add_partition(topic, partition);
    }
    let committed = consumer
        .committed_offsets(list, Duration::from_secs(10))
        .expect("committed offsets");
    committed
        .elements()
        .iter()
        .map(|e| (e.partition(), e.offset().to_raw().unwrap_or(-1)))
        .collect()
}

#[derive(Debug, Clone, Copy)]
enum Kill {
    /// SIGKILL as soon as this line is printed, after the child's second commit.
    AfterLine(&'static str),
    /// SIGKILL this many milliseconds after the child's second commit.
    AfterCommitPlus(u64),
    /// Run until the child reports CAUGHT_UP and exits.
    Never,
}

struct Running {
    child: Child,
    lines: Receiver<String>,
}

impl Running {
    fn spawn(spec: &str) -> Running {
        let mut child = Command::new(std::env::current_exe().unwrap())
            .args([TEST_NAME, "--exact", "--nocapture", "--test-threads=1"])
            .env(CHILD_ENV, spec)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("child spawns");
        let stdout = child.stdout.take().unwrap();
        let (sender, lines) = channel();
        let _ = std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if sender.send(line).is_err() {
                    break;
                }
            }
        });
        Running { child, lines }
    }

    /// The next protocol line of the child (libtest's own output is skipped).
    fn next(&self, round: &Kill) -> Option<String> {
        loop {
            match self.lines.recv_timeout(LINE_TIMEOUT) {
                Ok(line) if line.starts_with("ERROR") => {
                    panic!("round {round:?}: the application failed: {line}")
                }
                Ok(line) if line.starts_with("EOS ") => return Some(line[4..].to_owned()),
                Ok(_) => {}
                Err(RecvTimeoutError::Disconnected) => return None,
                Err(RecvTimeoutError::Timeout) => {
                    panic!("round {round:?}: no line from the application for {LINE_TIMEOUT:?}")
                }
            }
        }
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn run_round(spec: &str, kill: Kill) {
    let mut running = Running::spawn(spec);
    let mut commits = 0;
    loop {
        let Some(line) = running.next(&kill) else {
            let status = running.child.wait().unwrap();
            panic!("round {kill:?}: the application exited early with {status}");
        };
        if line.starts_with("COMMITTED") {
            commits += 1;
        }
        match kill {
            Kill::AfterLine(wanted) if commits >= 2 && line == wanted => break,
            Kill::AfterCommitPlus(ms) if commits >= 2 => {
                std::thread::sleep(Duration::from_millis(ms));
                break;
            }
            Kill::Never if line == "CAUGHT_UP" => {
                let status = running.child.wait().unwrap();
                assert!(status.success(), "the last run ended with {status}");
                return;
            }
            _ => {}
        }
    }
    // SIGKILL: no flush, no abort, no LeaveGroup.
    running.child.kill().unwrap();
    let _ = running.child.wait();
}

/// The application. Never returns: exits 0 once caught up, 2 on any client error.
fn run_child(spec: &str) -> ! {
    let parts: Vec<&str> = spec.split('|').collect();
    let [bootstrap, input, output, group, transactional_id] = parts[..] else {
        panic!("bad child spec {spec}");
    };
    let _ = std::thread::spawn(|| {
        std::thread::sleep(CHILD_LIFETIME);
        println!("ERROR the application's lifetime is over");
        std::process::exit(3);
    });
    let consumer: BaseConsumer = support::client_config(bootstrap)
        .set("group.id", group)
        // Static membership: a restarted application takes its predecessor's place at once,
        // instead of waiting for the dead member's session to expire.
        .set("group.instance.id", "eos-app")
        .set("session.timeout.ms", "6000")
        .set("heartbeat.interval.ms", "200")
        .set("isolation.level", "read_committed")
        .set("enable.auto.commit", "false")
        .set("auto.offset.reset", "earliest")
        .set("fetch.wait.max.ms", "50")
        .create()
        .unwrap_or_else(|e| fail("consumer", &e));
    consumer
        .subscribe(&[input])
        .unwrap_or_else(|e| fail("subscribe", &e));
    let producer: BaseProducer = txn_producer_config(bootstrap, transactional_id, &[])
        .create()
        .unwrap_or_else(|e| fail("producer", &e));
    producer
        .init_transactions(Duration::from_secs(30))
        .unwrap_or_else(|e| fail("init_transactions", &e));
    say("READY");
    loop {
        let mut batch = Vec::new();
        while batch.len() < BATCH {
            match consumer.poll(Duration::from_millis(100)) {
                Some(Ok(message)) => batch.push(message.detach()),
                Some(Err(error)) => fail("poll", &error),
                None => break,
            }
        }
        if batch.is_empty() {
            if caught_up(&consumer, input) {
                say("CAUGHT_UP");
                std::process::exit(0);
            }
            continue;
        }
        producer
            .begin_transaction()
            .unwrap_or_else(|e| fail("begin", &e));
        for message in &batch {
            let value = format!(
                "{}:{}:{}",
                message.partition(),
                message.offset(),
                String::from_utf8_lossy(message.payload().unwrap_or_default())
            );
            let key = message.key().unwrap_or_default();
            producer
                .send(BaseRecord::to(output).key(key).payload(&value))
                .unwrap_or_else(|(e, _)| fail("send", &e));
        }
        producer
            .flush(Duration::from_secs(10))
            .unwrap_or_else(|e| fail("flush", &e));
        say("TXN_OPEN");
        let positions = consumer.position().unwrap_or_else(|e| fail("position", &e));
        let mut offsets = TopicPartitionList::new();
        for element in positions.elements() {
            if let Offset::Offset(offset) = element.offset() {
                offsets
                    .add_partition_offset(
                        element.topic(),
                        element.partition(),
                        Offset::Offset(offset),
                    )
                    .unwrap();
            }
        }
        let metadata = consumer.group_metadata().expect("group metadata");
        producer
            .send_offsets_to_transaction(&offsets, &metadata, Duration::from_secs(10))
            .unwrap_or_else(|e| fail("send_offsets_to_transaction", &e));
        say("OFFSETS_SENT");
        producer
            .commit_transaction(Duration::from_secs(10))
            .unwrap_or_else(|e| fail("commit", &e));
        say(&format!("COMMITTED {}", batch.len()));
    }
}

/// True when every input partition is assigned and its committed offset is its end.
fn caught_up(consumer: &BaseConsumer, input: &str) -> bool {
    let Ok(assignment) = consumer.assignment() else {
        return false;
    };
    if assignment.count() < 3 {
        return false;
    }
    let Ok(committed) = consumer.committed_offsets(assignment, Duration::from_secs(5)) else {
        return false;
    };
    committed.elements().iter().all(|element| {
        let end = consumer
            .fetch_watermarks(input, element.partition(), Duration::from_secs(5))
            .map_or(i64::MAX, |(_, high)| high);
        element.offset().to_raw() == Some(end)
    })
}

fn say(line: &str) {
    println!("EOS {line}");
}

fn fail(what: &str, error: &dyn std::fmt::Display) -> ! {
    println!("ERROR {what}: {error}");
    std::process::exit(2);
}
