//! The `kairos` binary killed with SIGKILL while transactions are open or committing. After a
//! restart the transaction coordinator recovers from `__transaction_state`: an open transaction
//! is aborted once its timeout passes (so the LSO moves on), a commit that was answered is
//! completed, and read_committed never sees part of a transaction.

use std::collections::BTreeMap;
use std::time::Duration;

use kairos_storage::control::ControlRecordType;
use rdkafka::producer::{FutureProducer, FutureRecord, Producer};

use super::client::{TXN_CALL, send_all};
use super::raw::{self, READ_UNCOMMITTED};
use super::{Isolation, Seen, read_to_end, txn_binary_args, txn_producer, wait_stable};
use crate::groups::blocking;
use crate::support::{self, BinaryBroker};
use crate::wire::Wire;

/// The producers' transaction timeout: short, so an abandoned transaction is aborted within the
/// test. librdkafka wants `message.timeout.ms` and `socket.timeout.ms` no longer than it.
const SHORT_TIMEOUT: &[(&str, &str)] = &[
    ("transaction.timeout.ms", "3000"),
    ("message.timeout.ms", "3000"),
    ("socket.timeout.ms", "3000"),
];

fn start(dir: &std::path::Path) -> BinaryBroker {
    let args = txn_binary_args();
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    BinaryBroker::start(dir, &args)
}

fn values(seen: &[Seen], partition: i32) -> Vec<String> {
    seen.iter()
        .filter(|s| s.partition == partition)
        .map(|s| s.value.clone())
        .collect()
}

fn sent_values(sent: &[(i32, i64, String)], partition: i32) -> Vec<String> {
    sent.iter()
        .filter(|(p, _, _)| *p == partition)
        .map(|(_, _, v)| v.clone())
        .collect()
}

/// How: on two partitions, a committed transaction, then a transaction left open (3 s timeout),
/// then plain records after it. Before the kill read_committed is held at the open transaction.
/// The binary is killed with SIGKILL and restarted on the same directory (the producers are
/// gone with the old address). Within the open transaction's timeout plus the 200 ms abort scan,
/// read_committed must be handed the committed and the plain records, never the open ones, and
/// each partition must end with an ABORT marker from the open transaction's producer.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn kill_9_with_an_open_transaction_aborts_it_after_its_timeout() {
    let dir = tempfile::tempdir().unwrap();
    let mut broker = start(dir.path());
    let bootstrap = broker.bootstrap.clone();
    let topic = support::topic_name("crash-open");
    support::create_topic(&bootstrap, &topic, 2, &[]).await;

    let committer = txn_producer(&bootstrap, "crash-committed", &[]);
    committer.init_transactions(TXN_CALL).expect("init");
    committer.begin_transaction().unwrap();
    let committed = send_all(&committer, &topic, 2, "committed", 3).await;
    committer.commit_transaction(TXN_CALL).expect("commit");
    let open = txn_producer(&bootstrap, "crash-open", SHORT_TIMEOUT);
    open.init_transactions(TXN_CALL).expect("init");
    open.begin_transaction().unwrap();
    let _ = send_all(&open, &topic, 2, "open", 3).await;
    let plain = send_all(
        &support::producer(&bootstrap, "all", &[]),
        &topic,
        2,
        "plain",
        2,
    )
    .await;

    let (address, read_topic) = (bootstrap.clone(), topic.clone());
    let held = blocking(move || {
        read_to_end(
            &address,
            &read_topic,
            2,
            Isolation::ReadCommitted,
            Duration::from_secs(10),
        )
    })
    .await;
    for partition in 0..2 {
        assert_eq!(values(&held, partition), sent_values(&committed, partition));
    }

    broker.kill9();
    drop((committer, open));
    let broker = start(dir.path());
    let (address, read_topic) = (broker.bootstrap.clone(), topic.clone());
    let seen = blocking(move || {
        // Until the abort, read_committed is held below the open records; poll until it is not.
        let deadline = std::time::Instant::now() + Duration::from_secs(20);
        loop {
            let seen = read_to_end(
                &address,
                &read_topic,
                2,
                Isolation::ReadCommitted,
                Duration::from_secs(10),
            );
            assert!(
                seen.iter().all(|s| !s.value.starts_with("open")),
                "read_committed was handed records of the open transaction: {seen:?}"
            );
            let complete = (0..2).all(|p| values(&seen, p).len() == 3 + 2);
            if complete || std::time::Instant::now() > deadline {
                return seen;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    })
    .await;
    for partition in 0..2 {
        let mut expected = sent_values(&committed, partition);
        expected.extend(sent_values(&plain, partition));
        assert_eq!(
            values(&seen, partition),
            expected,
            "partition {partition}: the LSO never passed the open transaction after the restart"
        );
    }
    let (address, raw_topic) = (broker.bootstrap.clone(), topic.clone());
    blocking(move || {
        let mut wire = Wire::connect(&address);
        for partition in 0..2 {
            let (batches, _) = raw::read_log(&mut wire, (&raw_topic, partition), READ_UNCOMMITTED);
            let open_pid = batches
                .iter()
                .find(|b| b.records.iter().any(|(_, v)| v.starts_with("open")))
                .expect("the open records are in the log")
                .producer_id;
            let last = batches.last().unwrap();
            assert_eq!(
                (last.marker, last.producer_id),
                (Some(ControlRecordType::Abort), open_pid),
                "partition {partition} ends with the open transaction's ABORT marker"
            );
        }
    })
    .await;
}

/// Runs transactions of four records (two per partition, values `t<k>-<p>-<i>`) until one
/// fails; returns the numbers of the transactions whose commit was answered, and how many
/// were begun. The blocking transaction calls run on the blocking pool.
async fn commit_until_failure(producer: FutureProducer, topic: String) -> (Vec<usize>, usize) {
    let call = |f: fn(&FutureProducer) -> bool, producer: &FutureProducer| {
        let producer = producer.clone();
        async move { blocking(move || f(&producer)).await }
    };
    let mut answered = Vec::new();
    for k in 0.. {
        if !call(|p| p.begin_transaction().is_ok(), &producer).await {
            return (answered, k);
        }
        let mut pending = Vec::new();
        for partition in 0..2 {
            for i in 0..2 {
                let value = format!("t{k}-{partition}-{i}");
                let record = FutureRecord::<(), _>::to(&topic)
                    .partition(partition)
                    .payload(&value);
                match producer.send_result(record) {
                    Ok(delivery) => pending.push(delivery),
                    Err(_) => return (answered, k + 1),
                }
            }
        }
        for delivery in pending {
            if !matches!(delivery.await, Ok(Ok(_))) {
                return (answered, k + 1);
            }
        }
        let commit = |p: &FutureProducer| p.commit_transaction(Duration::from_secs(3)).is_ok();
        if !call(commit, &producer).await {
            return (answered, k + 1);
        }
        answered.push(k);
    }
    unreachable!()
}

/// How: a producer commits small transactions over two partitions in a loop; the binary is
/// killed with SIGKILL at a random moment (so during a send, an EndTxn or the markers) and
/// restarted. Once the LSO reached the high watermark again (the open transaction aborted after
/// its 3 s timeout, or a prepared commit completed), read_committed must hold every transaction
/// whole (all four records) or not at all, and every transaction whose commit was answered.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn kill_9_during_commits_leaves_every_transaction_whole() {
    let dir = tempfile::tempdir().unwrap();
    let mut broker = start(dir.path());
    let bootstrap = broker.bootstrap.clone();
    let topic = support::topic_name("crash-stream");
    support::create_topic(&bootstrap, &topic, 2, &[]).await;
    let producer = txn_producer(&bootstrap, "crash-stream", SHORT_TIMEOUT);
    producer.init_transactions(TXN_CALL).expect("init");
    let stream = tokio::spawn(commit_until_failure(producer, topic.clone()));
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos();
    let delay = Duration::from_millis(600 + u64::from(nanos % 900));
    eprintln!("kill_9_during_commits: killing after {delay:?}");
    tokio::time::sleep(delay).await;
    broker.kill9();
    let (answered, begun) = stream.await.unwrap();
    assert!(
        answered.len() >= 3,
        "only {} commits before the kill",
        answered.len()
    );

    let broker = start(dir.path());
    let (address, read_topic) = (broker.bootstrap.clone(), topic.clone());
    let seen = blocking(move || {
        let _ = wait_stable(&address, &read_topic, 2);
        read_to_end(
            &address,
            &read_topic,
            2,
            Isolation::ReadCommitted,
            Duration::from_secs(10),
        )
    })
    .await;
    let mut by_transaction: BTreeMap<usize, usize> = BTreeMap::new();
    for record in &seen {
        let k: usize = record.value[1..record.value.find('-').unwrap()]
            .parse()
            .unwrap();
        *by_transaction.entry(k).or_default() += 1;
    }
    for (k, count) in &by_transaction {
        assert!(*k < begun, "transaction {k} was never begun ({begun} were)");
        assert_eq!(
            *count, 4,
            "transaction {k} is partly visible: {count} of 4 records"
        );
    }
    for k in &answered {
        assert!(
            by_transaction.contains_key(k),
            "transaction {k}'s commit was answered but it is not visible"
        );
    }
}
