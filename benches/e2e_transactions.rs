//! End-to-end cost of exactly-once against the real `kairos` binary, with librdkafka clients
//! and a raw-socket reference measured in the same run. One command:
//!
//! ```sh
//! cargo bench --bench e2e_transactions   # KAIROS_BENCH_RECORDS=50000: produce size; KAIROS_BENCH_ROUNDS=3
//! ```
//!
//! Reports, each as the median of `KAIROS_BENCH_ROUNDS` rounds (rounds interleave the variants,
//! so drift in the machine hits all of them alike):
//! - produce throughput of `KAIROS_BENCH_RECORDS` 256-byte records to one partition at acks=all
//!   (same workload, same broker, same run) with `enable.idempotence` off, off with 5 requests
//!   in flight, and on. librdkafka caps an idempotent producer at 5 requests in flight, so
//!   on/off mixes the client's cap with the broker's cost; on/off at 5 in flight is what
//!   producer ids and sequence checks cost the broker;
//! - the transactional commit rate: transactions per second for one librdkafka producer that
//!   begins, sends 1, 10 or 100 records to one partition, waits for their acknowledgements and
//!   commits, one transaction at a time; the records per second this gives, as a ratio of the
//!   idempotent produce throughput (what a transaction costs per record); and the same
//!   transactions on a raw socket (AddPartitionsToTxn, one Produce, EndTxn, one request in
//!   flight): the broker alone, without the client's queues and threads.
//!
//! What one transaction costs the broker: AddPartitionsToTxn and EndTxn each write
//! `__transaction_state` (fsynced), EndTxn writes a COMMIT marker per partition. At 1 record per
//! transaction the rate is bounded by those round trips and fsyncs, at 100 by the produce path.

#[path = "e2e/support.rs"]
mod e2e_support;

use std::io::Read;
use std::time::{Duration, Instant};

use e2e_support::{Broker, env_usize};

use rdkafka::ClientConfig;
use rdkafka::producer::{FutureProducer, FutureRecord, Producer};

const RECORD_BYTES: usize = 256;
const RECORDS_PER_TXN: [usize; 3] = [1, 10, 100];

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
async fn produce_burst(
    bootstrap: &str,
    topic: &str,
    idempotent: bool,
    in_flight: &str,
    count: usize,
) -> Duration {
    let producer: FutureProducer = base_config(bootstrap)
        .set(
            "enable.idempotence",
            if idempotent { "true" } else { "false" },
        )
        .set("max.in.flight.requests.per.connection", in_flight)
        .create()
        .expect("producer");
    let payload = vec![b'x'; RECORD_BYTES];
    // One acknowledged record first, outside the timed region: an idempotent librdkafka
    // producer spends its first ~500 ms getting a producer id (it retries on a 500 ms timer once
    // it moves from the bootstrap connection to the broker's own), which is start-up, not
    // throughput.
    let _ = producer
        .send(
            FutureRecord::<(), _>::to(topic)
                .partition(0)
                .payload(&payload[..]),
            Duration::from_secs(30),
        )
        .await
        .expect("warm-up record acknowledged");
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
/// returns the elapsed time of the transactions alone (not `init_transactions`). Each
/// transaction waits for its records' acknowledgements before committing, as an application
/// that checks its sends does (committing with deliveries outstanding makes rdkafka's commit
/// wait for its 100 ms polling interval, which would measure the wrapper, not the broker).
fn transactions(
    runtime: &tokio::runtime::Handle,
    bootstrap: &str,
    topic: &str,
    records: usize,
    transactions: usize,
) -> Duration {
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
        let deliveries: Vec<_> = (0..records)
            .map(|_| {
                let record = FutureRecord::<(), _>::to(topic)
                    .partition(0)
                    .payload(&payload[..]);
                producer.send_result(record).expect("queue has room")
            })
            .collect();
        for delivery in deliveries {
            let _ = runtime
                .block_on(delivery)
                .expect("delivered")
                .expect("acknowledged");
        }
        producer
            .commit_transaction(Duration::from_secs(30))
            .expect("commit");
    }
    started.elapsed()
}

/// The broker alone: the same transactions on a raw socket, one request at a time
/// (AddPartitionsToTxn, Produce of one batch of `records` records, EndTxn), without a client
/// library's queues and threads. Returns the elapsed time of the transactions.
fn raw_transactions(bootstrap: &str, topic: &str, records: usize, transactions: usize) -> Duration {
    use kafka_protocol::messages::add_partitions_to_txn_request::AddPartitionsToTxnTopic;
    use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
    use kafka_protocol::messages::{
        AddPartitionsToTxnRequest, AddPartitionsToTxnResponse, EndTxnRequest, EndTxnResponse,
        InitProducerIdRequest, InitProducerIdResponse, ProduceRequest, ProduceResponse, ProducerId,
        TopicName, TransactionalId,
    };
    let mut wire = RawWire::connect(bootstrap);
    let id = TransactionalId(format!("raw-{topic}").into());
    let init: InitProducerIdResponse = wire.call(
        4,
        &InitProducerIdRequest::default()
            .with_transactional_id(Some(id.clone()))
            .with_transaction_timeout_ms(60_000)
            .with_producer_id(ProducerId(-1))
            .with_producer_epoch(-1),
    );
    assert_eq!(init.error_code, 0, "InitProducerId");
    let (pid, epoch) = (init.producer_id.0, init.producer_epoch);
    let name = TopicName(topic.to_owned().into());
    let payload = vec![b'r'; RECORD_BYTES];
    let mut sequence = 0_i32;
    let started = Instant::now();
    for _ in 0..transactions {
        let add = AddPartitionsToTxnRequest::default()
            .with_v3_and_below_transactional_id(id.clone())
            .with_v3_and_below_producer_id(ProducerId(pid))
            .with_v3_and_below_producer_epoch(epoch)
            .with_v3_and_below_topics(vec![
                AddPartitionsToTxnTopic::default()
                    .with_name(name.clone())
                    .with_partitions(vec![0]),
            ]);
        // CONCURRENT_TRANSACTIONS (51) while the previous transaction's markers complete.
        loop {
            let added: AddPartitionsToTxnResponse = wire.call(3, &add);
            let error =
                added.results_by_topic_v3_and_below[0].results_by_partition[0].partition_error_code;
            if error == 0 {
                break;
            }
            assert_eq!(error, 51, "AddPartitionsToTxn");
        }
        let mut builder = kairos_storage::builder::RecordBatchBuilder::new()
            .producer(pid, epoch, sequence)
            .transactional(true);
        // Timestamps now: an old timestamp would roll a segment per append (`segment.ms`).
        let now_ms = i64::try_from(
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .expect("after 1970")
                .as_millis(),
        )
        .expect("fits");
        for _ in 0..records {
            builder = builder.record(None, Some(&payload), now_ms);
        }
        sequence += i32::try_from(records).expect("records fit");
        let produce = ProduceRequest::default()
            .with_transactional_id(Some(id.clone()))
            .with_acks(-1)
            .with_timeout_ms(30_000)
            .with_topic_data(vec![
                TopicProduceData::default()
                    .with_name(name.clone())
                    .with_partition_data(vec![
                        PartitionProduceData::default()
                            .with_index(0)
                            .with_records(Some(builder.build().into())),
                    ]),
            ]);
        let produced: ProduceResponse = wire.call(10, &produce);
        assert_eq!(
            produced.responses[0].partition_responses[0].error_code, 0,
            "Produce"
        );
        let end = EndTxnRequest::default()
            .with_transactional_id(id.clone())
            .with_producer_id(ProducerId(pid))
            .with_producer_epoch(epoch)
            .with_committed(true);
        let ended: EndTxnResponse = wire.call(3, &end);
        assert_eq!(ended.error_code, 0, "EndTxn");
    }
    started.elapsed()
}

/// One blocking connection, one request in flight.
struct RawWire {
    stream: std::net::TcpStream,
    correlation_id: i32,
}

impl RawWire {
    fn connect(address: &str) -> RawWire {
        let stream = std::net::TcpStream::connect(address).expect("connect");
        stream.set_nodelay(true).expect("nodelay");
        RawWire {
            stream,
            correlation_id: 0,
        }
    }

    fn call<R: kafka_protocol::protocol::Request>(
        &mut self,
        version: i16,
        request: &R,
    ) -> R::Response {
        use bytes::BufMut;
        use kafka_protocol::messages::{RequestHeader, ResponseHeader};
        use kafka_protocol::protocol::{Decodable, Encodable, HeaderVersion};
        use std::io::Write;
        self.correlation_id += 1;
        let mut body = bytes::BytesMut::new();
        RequestHeader::default()
            .with_request_api_key(R::KEY)
            .with_request_api_version(version)
            .with_correlation_id(self.correlation_id)
            .encode(&mut body, R::header_version(version))
            .expect("header");
        request.encode(&mut body, version).expect("body");
        let mut frame = bytes::BytesMut::new();
        frame.put_i32(i32::try_from(body.len()).expect("small"));
        frame.put_slice(&body);
        self.stream.write_all(&frame).expect("send");
        let mut size = [0_u8; 4];
        self.stream.read_exact(&mut size).expect("size");
        let mut response = vec![0_u8; usize::try_from(i32::from_be_bytes(size)).expect("size")];
        self.stream.read_exact(&mut response).expect("response");
        let mut response = bytes::Bytes::from(response);
        let header = ResponseHeader::decode(&mut response, R::Response::header_version(version))
            .expect("header");
        assert_eq!(header.correlation_id, self.correlation_id);
        R::Response::decode(&mut response, version).expect("response body")
    }
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
    // The transaction state log and offsets topic kept small, as in tests.
    let broker = Broker::start(
        dir.path(),
        &[
            "-o",
            "transaction.state.log.num.partitions=3",
            "-o",
            "offsets.topic.num.partitions=3",
        ],
    );
    let bootstrap = broker.bootstrap.clone();

    // Produce variants: (label, enable.idempotence, max.in.flight). librdkafka caps an idempotent
    // producer at 5 requests in flight; the middle variant has that cap without idempotence, so
    // the last ratio is the broker's sequence checks alone.
    let variants = [
        ("idempotence off", false, "1000000"),
        ("idempotence off, 5 in flight", false, "5"),
        ("idempotence on (5 in flight)", true, "5"),
    ];
    let mut produce: Vec<Vec<f64>> = vec![Vec::new(); variants.len()];
    let mut client_rates: Vec<Vec<f64>> = vec![Vec::new(); RECORDS_PER_TXN.len()];
    let mut raw_rates: Vec<Vec<f64>> = vec![Vec::new(); RECORDS_PER_TXN.len()];
    for round in 0..rounds {
        for (slot, (_, idempotent, in_flight)) in variants.iter().enumerate() {
            let topic = format!("produce{slot}-{round}");
            let elapsed = produce_burst(&bootstrap, &topic, *idempotent, in_flight, count).await;
            produce[slot].push(count as f64 / elapsed.as_secs_f64());
        }
        for (slot, records) in RECORDS_PER_TXN.iter().enumerate() {
            // About 2000 records per point, between 50 and 200 transactions.
            let n = (2_000 / records).clamp(50, 200);
            let topic = format!("txn{records}-{round}");
            let (address, per) = (bootstrap.clone(), *records);
            let runtime = tokio::runtime::Handle::current();
            let (client, raw) = tokio::task::spawn_blocking(move || {
                (
                    transactions(&runtime, &address, &topic, per, n),
                    raw_transactions(&address, &topic, per, n),
                )
            })
            .await
            .expect("transactions");
            client_rates[slot].push(n as f64 / client.as_secs_f64());
            raw_rates[slot].push(n as f64 / raw.as_secs_f64());
        }
    }

    println!(
        "kairos exactly-once bench: {count} records of {RECORD_BYTES} B, one partition, \
         acks=all, median of {rounds} rounds"
    );
    let produce: Vec<f64> = produce.into_iter().map(median).collect();
    for ((label, _, _), rate) in variants.iter().zip(&produce) {
        println!("produce      {label:<30} {rate:>10.0} records/s");
    }
    println!(
        "ratio        idempotence on / off                {:.2}x",
        produce[2] / produce[0]
    );
    println!(
        "ratio        idempotence on / off at 5 in flight {:.2}x",
        produce[2] / produce[1]
    );
    for (slot, records) in RECORDS_PER_TXN.iter().enumerate() {
        let client = median(client_rates[slot].clone());
        let raw = median(raw_rates[slot].clone());
        let per_record = client * *records as f64;
        println!(
            "transactions {records:>3} records/txn  librdkafka {client:>7.1} txn/s \
             {per_record:>8.0} records/s ({:.3}x of idempotent produce)   raw socket {raw:>7.1} txn/s",
            per_record / produce[2]
        );
    }
}
