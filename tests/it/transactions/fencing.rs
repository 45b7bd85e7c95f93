//! Zombie fencing with real clients: a second producer with the same `transactional.id` bumps
//! the epoch, aborts the first one's transaction and makes it fail for good.

use std::time::Duration;

use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::producer::{FutureRecord, Producer};

use super::client::{READ, TXN_CALL, send_all};
use super::{Isolation, read_to_end, txn_broker, txn_producer, wait_stable};
use crate::support;

/// The codes librdkafka reports a fenced transactional producer with: the coordinator's
/// PRODUCER_FENCED, the partition's INVALID_PRODUCER_EPOCH, or its own `__FENCED` (-144).
fn is_fencing(code: RDKafkaErrorCode) -> bool {
    matches!(
        code,
        RDKafkaErrorCode::ProducerFenced
            | RDKafkaErrorCode::InvalidProducerEpoch
            | RDKafkaErrorCode::Fenced
    )
}

/// How: producer A begins a transaction and has two records acknowledged. Producer B, same
/// `transactional.id`, calls `init_transactions`: the coordinator bumps the epoch and aborts A's
/// open transaction. A's next send must be refused, and A's commit must fail; librdkafka then
/// holds a fatal fencing error (if the commit failure is only "abortable", the abort that must
/// follow is what bumps into the new epoch and turns fatal). B commits its own transaction.
/// read_committed is handed B's records only; read_uncommitted shows A's two records are in
/// the log (written, then aborted), and A's late record is not.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn zombie_with_the_same_transactional_id_is_fenced() {
    let broker = txn_broker().await;
    let bootstrap = broker.bootstrap_servers();
    let topic = support::topic_name("txn-zombie");
    support::create_topic(&bootstrap, &topic, 1, &[]).await;
    let transactional_id = support::topic_name("zombie");

    let zombie = txn_producer(&bootstrap, &transactional_id, &[]);
    zombie.init_transactions(TXN_CALL).expect("A init");
    zombie.begin_transaction().unwrap();
    let zombie_sent = send_all(&zombie, &topic, 1, "zombie", 2).await;

    let fencer = txn_producer(&bootstrap, &transactional_id, &[]);
    fencer
        .init_transactions(TXN_CALL)
        .expect("B init fences A and aborts its transaction");

    let late = zombie
        .send(
            FutureRecord::<(), _>::to(&topic)
                .partition(0)
                .payload("zombie-late"),
            Duration::from_secs(10),
        )
        .await;
    assert!(
        late.is_err(),
        "the zombie's send after fencing was acknowledged: {late:?}"
    );
    let commit = zombie.commit_transaction(TXN_CALL);
    let Err(KafkaError::Transaction(error)) = commit else {
        panic!("the zombie's commit did not fail with a transaction error: {commit:?}");
    };
    if !error.is_fatal() {
        assert!(
            error.txn_requires_abort(),
            "commit error neither fatal nor abortable: {error}"
        );
        let abort = zombie.abort_transaction(TXN_CALL);
        assert!(
            abort.is_err(),
            "the zombie's abort succeeded: its epoch bump was not fenced"
        );
    }
    let fatal = zombie.client().fatal_error();
    assert!(
        fatal.as_ref().is_some_and(|(code, _)| is_fencing(*code)),
        "the zombie holds no fatal fencing error: {fatal:?} (commit said {error})"
    );

    fencer.begin_transaction().unwrap();
    let fencer_sent = send_all(&fencer, &topic, 1, "fencer", 3).await;
    fencer.commit_transaction(TXN_CALL).expect("B commits");

    let address = bootstrap.clone();
    let (read_committed, read_uncommitted) = crate::groups::blocking(move || {
        let _ = wait_stable(&address, &topic, 1);
        (
            read_to_end(&address, &topic, 1, Isolation::ReadCommitted, READ),
            read_to_end(&address, &topic, 1, Isolation::ReadUncommitted, READ),
        )
    })
    .await;
    let values = |sent: &[(i32, i64, String)]| -> Vec<String> {
        sent.iter().map(|(_, _, v)| v.clone()).collect()
    };
    let committed: Vec<String> = read_committed.iter().map(|s| s.value.clone()).collect();
    assert_eq!(committed, values(&fencer_sent), "read_committed: B's only");
    let uncommitted: Vec<String> = read_uncommitted.iter().map(|s| s.value.clone()).collect();
    let mut everything = values(&zombie_sent);
    everything.extend(values(&fencer_sent));
    assert_eq!(
        uncommitted, everything,
        "read_uncommitted: A's two records then B's; A's late record never written"
    );
    drop(zombie);
    broker.shutdown().await.unwrap();
}
