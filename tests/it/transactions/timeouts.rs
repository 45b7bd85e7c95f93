//! Transaction timeouts on a raw socket: a transaction left open longer than its
//! `transaction.timeout.ms` is aborted by the coordinator (its epoch bumped, so the late
//! producer is fenced), and a timeout above `transaction.max.timeout.ms` is refused.

use std::time::{Duration, Instant};

use kafka_protocol::messages::DescribeTransactionsRequest;

use super::raw::{self, READ_UNCOMMITTED, code, txn_id};
use super::txn_broker_builder;
use crate::groups::blocking;
use crate::wire::Wire;

/// INVALID_TRANSACTION_TIMEOUT: InitProducerId with a timeout above the broker's maximum.
const INVALID_TRANSACTION_TIMEOUT: i16 = 50;

fn state_of(wire: &mut Wire, id: &str) -> (String, i16) {
    let request = DescribeTransactionsRequest::default().with_transactional_ids(vec![txn_id(id)]);
    let response = wire.call(raw::DESCRIBE_TRANSACTIONS, &request);
    let state = &response.transaction_states[0];
    (state.transaction_state.to_string(), state.producer_epoch)
}

/// How: the broker allows at most 5 s and scans for timed-out transactions every 200 ms. A
/// producer asking for 10 s is refused with INVALID_TRANSACTION_TIMEOUT. One asking for 500 ms
/// opens a transaction with one record and goes silent: within the timeout plus a few scans the
/// coordinator aborts it (`CompleteAbort`, epoch bumped, an ABORT marker, the LSO at the high
/// watermark), and not before the timeout. The silent producer's EndTxn COMMIT afterwards is
/// PRODUCER_FENCED, and its record is never visible to read_committed.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_abandoned_transaction_is_aborted_after_its_timeout() {
    let broker = txn_broker_builder()
        .temp_dir()
        .config("transaction.max.timeout.ms", "5000")
        .start()
        .await
        .unwrap();
    let address = broker.bootstrap_servers();
    blocking(move || {
        let mut wire = Wire::connect(&address);
        let topic = "abandoned";
        raw::create_topic(&mut wire, topic, 1);
        let id = "abandoned";
        let (error, _, _) = raw::init_producer_id(&mut wire, Some(id), 10_000);
        assert_eq!(
            error, INVALID_TRANSACTION_TIMEOUT,
            "10 s > transaction.max.timeout.ms"
        );

        let (error, pid, epoch) = raw::init_producer_id(&mut wire, Some(id), 500);
        assert_eq!(error, code::NONE);
        raw::add(&mut wire, id, (pid, epoch), &[(topic, 0)]);
        let started = Instant::now();
        let batch = raw::batch(Some((pid, epoch)), 0, true, &["abandoned".to_owned()]);
        assert_eq!(raw::produce(&mut wire, Some(id), (topic, 0), batch), (0, 0));
        assert_eq!(state_of(&mut wire, id).0, "Ongoing");

        let mut state = state_of(&mut wire, id);
        while state.0 != "CompleteAbort" && started.elapsed() < Duration::from_secs(10) {
            std::thread::sleep(Duration::from_millis(20));
            state = state_of(&mut wire, id);
        }
        let aborted_after = started.elapsed();
        assert_eq!(state.0, "CompleteAbort", "never aborted: {state:?}");
        assert!(
            aborted_after >= Duration::from_millis(500),
            "aborted after {aborted_after:?}, before its 500 ms timeout"
        );
        assert!(
            state.1 > epoch,
            "the timeout abort bumps the epoch: {state:?}"
        );
        assert_eq!(
            raw::wait_stable(&mut wire, (topic, 0), Duration::from_secs(5)),
            2,
            "the record and the ABORT marker"
        );
        let (batches, _) = raw::read_log(&mut wire, (topic, 0), READ_UNCOMMITTED);
        assert_eq!(
            batches.last().and_then(|b| b.marker),
            Some(kairos_storage::control::ControlRecordType::Abort)
        );
        assert_eq!(
            raw::end_txn(&mut wire, id, (pid, epoch), true),
            code::PRODUCER_FENCED,
            "the abandoned producer's late commit"
        );
        assert!(raw::read_committed(&mut wire, (topic, 0)).is_empty());
    })
    .await;
    broker.shutdown().await.unwrap();
}
