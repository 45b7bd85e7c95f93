//! End-to-end cost of exactly-once against the real `kairos` binary, with librdkafka clients.
//! One command:
//!
//! ```sh
//! cargo bench --bench e2e_transactions   # KAIROS_BENCH_RECORDS=50000: produce size; KAIROS_BENCH_ROUNDS=3
//! ```
//!
//! Reports, each as the median of `KAIROS_BENCH_ROUNDS` rounds (rounds interleave the variants,
//! so drift in the machine hits all of them alike):
//! - produce throughput of `KAIROS_BENCH_RECORDS` 256-byte records to one partition at
//!   acks=all, with `enable.idempotence` off and on (same workload, same broker, same run), and
//!   the on/off ratio: what producer ids and sequence checks cost;
//! - the transactional commit rate: transactions per second for one producer that begins,
//!   sends 1, 10 or 100 records to one partition, and commits, one transaction at a time
//!   (commit waits for the records and the EndTxn); and the records per second this gives,
//!   as a ratio of the idempotent produce throughput: what a transaction costs per record.
//!
//! What one transaction costs on the wire: AddPartitionsToTxn (first send), Produce, EndTxn,
//! then the broker's `__transaction_state` writes and a COMMIT marker per partition. At 1
//! record per transaction the rate is bounded by those round trips and fsyncs, at 100 by the
//! produce path.

use std::io::Read;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use rdkafka::ClientConfig;
use rdkafka::producer::{FutureProducer, FutureRecord, Producer};

const RECORD_BYTES: usize = 256;
const RECORDS_PER_TXN: [usize; 3] = [1, 10, 100];

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

struct Broker {
    child: Child,
    bootstrap: String,
}

impl Broker {
    /// The binary with the transaction state log and offsets topic kept small, as in tests.
    fn start(dir: &std::path::Path) -> Broker {
        let mut child = Command::new(env!("CARGO_BIN_EXE_kairos"))
            .arg("--data-dir")
            .arg(dir)
            .args(["--listener", "127.0.0.1:0"])
            .args(["-o", "transaction.state.log.num.partitions=3"])
            .args(["-o", "offsets.topic.num.partitions=3"])
            .env("RUST_LOG", "warn")
            .stdout(Stdio::piped())
            .spawn()
            .expect("kairos starts");
        let mut line = String::new();
        let mut stdout = child.stdout.take().expect("stdout");
        let mut byte = [0_u8; 1];
        while stdout.read(&mut byte).unwrap_or(0) == 1 && byte[0] != b'\n' {
            line.push(char::from(byte[0]));
        }
        let bootstrap = line
            .trim()
            .trim_start_matches("kairos listening on ")
            .to_owned();
        Broker { child, bootstrap }
    }
}

impl Drop for Broker {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn base_config(bootstrap: &str) -> ClientConfig {
    let mut config = ClientConfig::new();
    config
        .set("bootstrap.servers", bootstrap)
        .set("acks", "all")
        .set("linger.ms", "5")
        .set("batch.size", "1000000")
        .set("queue.buffering.max.messages", "1000000")
        .set("message.timeout.ms", "60000");
    config
}

/// Sends `count` records as fast as the queue allows and waits for every acknowledgement.
async fn produce_burst(bootstrap: &str, topic: &str, idempotent: bool, count: usize) -> Duration {
    let producer: FutureProducer = base_config(bootstrap)
        .set(
            "enable.idempotence",
            if idempotent { "true" } else { "false" },
        )
        .create()
        .expect("producer");
    let payload = vec![b'x'; RECORD_BYTES];
    let started = Instant::now();
    let mut pending = Vec::with_capacity(count);
    for i in 0..count {
        let key = (i as u64).to_be_bytes();
        let mut record = FutureRecord::to(topic)
            .partition(0)
            .key(&key[..])
            .payload(&payload[..]);
        loop {
            match producer.send_result(record) {
                Ok(delivery) => {
                    pending.push(delivery);
                    break;
                }
                Err((_, returned)) => {
                    record = returned;
                    tokio::time::sleep(Duration::from_micros(200)).await;
                }
            }
        }
    }
    for delivery in pending {
        let _ = delivery.await.expect("delivered").expect("acknowledged");
    }
    started.elapsed()
}

/// Runs `transactions` transactions of `records` records each with one transactional producer;
/// returns the elapsed time of the transactions alone (not `init_transactions`).
fn transactions(bootstrap: &str, topic: &str, records: usize, transactions: usize) -> Duration {
    let producer: FutureProducer = base_config(bootstrap)
        .set("transactional.id", format!("bench-{topic}"))
        .set("linger.ms", "0")
        .create()
        .expect("transactional producer");
    producer
        .init_transactions(Duration::from_secs(30))
        .expect("init_transactions");
    let payload = vec![b't'; RECORD_BYTES];
    let started = Instant::now();
    for _ in 0..transactions {
        producer.begin_transaction().expect("begin");
        for _ in 0..records {
            let record = FutureRecord::<(), _>::to(topic)
                .partition(0)
                .payload(&payload[..]);
            drop(producer.send_result(record).expect("queue has room"));
        }
        producer
            .commit_transaction(Duration::from_secs(30))
            .expect("commit");
    }
    started.elapsed()
}

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

#[tokio::main]
async fn main() {
    // `cargo bench` passes `--bench`; nothing to parse.
    let count = env_usize("KAIROS_BENCH_RECORDS", 50_000);
    let rounds = env_usize("KAIROS_BENCH_ROUNDS", 3).max(1);
    let dir = tempfile::tempdir().expect("tempdir");
    let broker = Broker::start(dir.path());
    let bootstrap = broker.bootstrap.clone();

    let (mut plain, mut idempotent) = (Vec::new(), Vec::new());
    let mut rates: Vec<Vec<f64>> = vec![Vec::new(); RECORDS_PER_TXN.len()];
    for round in 0..rounds {
        let off = produce_burst(&bootstrap, &format!("plain-{round}"), false, count).await;
        let on = produce_burst(&bootstrap, &format!("idem-{round}"), true, count).await;
        plain.push(count as f64 / off.as_secs_f64());
        idempotent.push(count as f64 / on.as_secs_f64());
        for (slot, records) in RECORDS_PER_TXN.iter().enumerate() {
            // About 2000 records or 200 transactions per point, whichever is fewer transactions.
            let n = (2_000 / records).clamp(20, 200);
            let topic = format!("txn{records}-{round}");
            let (address, per) = (bootstrap.clone(), *records);
            let elapsed =
                tokio::task::spawn_blocking(move || transactions(&address, &topic, per, n))
                    .await
                    .expect("transactions");
            rates[slot].push(n as f64 / elapsed.as_secs_f64());
        }
    }

    let (plain, idempotent) = (median(plain), median(idempotent));
    println!(
        "kairos exactly-once bench: {count} records of {RECORD_BYTES} B, one partition, \
         acks=all, median of {rounds} rounds"
    );
    println!("produce    idempotence off     {plain:>10.0} records/s");
    println!(
        "produce    idempotence on      {idempotent:>10.0} records/s ({:.2}x of off)",
        idempotent / plain
    );
    for (slot, records) in RECORDS_PER_TXN.iter().enumerate() {
        let rate = median(rates[slot].clone());
        let per_record = rate * *records as f64;
        println!(
            "transactions {records:>3} records/txn {rate:>8.1} txn/s {per_record:>10.0} records/s \
             ({:.3}x of idempotent produce)",
            per_record / idempotent
        );
    }
}
