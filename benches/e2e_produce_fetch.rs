//! End-to-end produce/fetch benchmark against the real `kairos` binary, with the raw machine
//! reference measured in the same run. One command:
//!
//! ```sh
//! cargo bench --bench e2e_produce_fetch   # KAIROS_BENCH_RECORDS=200000: size; KAIROS_BENCH_RATE=50000: pin the latency run's rate
//! ```
//!
//! Reports:
//! - produce MB/s and records/s with 1 KiB records at acks=1 and acks=all (librdkafka producer);
//! - produce latency p50/p99 at half of the measured acks=1 maximum without lingering (paced
//!   sends, linger.ms=0);
//! - consume MB/s (librdkafka consumer from offset 0, and raw Fetch requests without a client);
//! - the reference: loopback TCP MB/s, and sequential file write MB/s ending in fdatasync;
//! - acks=1 round-trip latency of raw Produce requests, one in flight (the broker alone);
//! - the broker's idle RSS.

#[path = "e2e/support.rs"]
mod e2e_support;

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::time::{Duration, Instant};

use e2e_support::{Broker, disk_mb_s, mb_s, percentile};

use rdkafka::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::{Offset, TopicPartitionList};

const RECORD_BYTES: usize = 1024;

fn records() -> usize {
    std::env::var("KAIROS_BENCH_RECORDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(100_000)
}

fn producer(bootstrap: &str, acks: &str, linger_ms: &str) -> FutureProducer {
    let mut config = ClientConfig::new();
    config
        .set("bootstrap.servers", bootstrap)
        .set("acks", acks)
        .set("linger.ms", linger_ms)
        .set("batch.size", "1000000")
        .set("queue.buffering.max.messages", "1000000")
        .set("message.timeout.ms", "60000");
    if acks != "all" {
        config.set("enable.idempotence", "false");
    }
    config.create().expect("producer")
}

/// Sends `count` records as fast as the producer queue allows; returns elapsed time.
async fn produce_burst(
    bootstrap: &str,
    topic: &str,
    acks: &str,
    linger_ms: &str,
    count: usize,
) -> Duration {
    let producer = producer(bootstrap, acks, linger_ms);
    let payload = vec![b'x'; RECORD_BYTES];
    let started = Instant::now();
    let mut pending = Vec::with_capacity(count);
    for i in 0..count {
        let key = (i as u64).to_be_bytes();
        let mut record = FutureRecord::to(topic).key(&key[..]).payload(&payload[..]);
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

/// Sends at `rate` records/s for `count` records; returns per-record latencies.
async fn produce_paced(bootstrap: &str, topic: &str, rate: f64, count: usize) -> Vec<Duration> {
    let producer = producer(bootstrap, "1", "0");
    let payload = vec![b'y'; RECORD_BYTES];
    let interval = Duration::from_secs_f64(1.0 / rate);
    let started = Instant::now();
    let mut tasks = Vec::with_capacity(count);
    for i in 0..count {
        let due = started + interval.mul_f64(i as f64);
        if let Some(wait) = due.checked_duration_since(Instant::now()) {
            tokio::time::sleep(wait).await;
        }
        let sent = Instant::now();
        let delivery = producer
            .send_result(FutureRecord::<(), _>::to(topic).payload(&payload[..]))
            .expect("queue has room at half load");
        tasks.push(tokio::spawn(async move {
            let _ = delivery.await;
            sent.elapsed()
        }));
    }
    let mut latencies = Vec::with_capacity(count);
    for task in tasks {
        latencies.push(task.await.expect("latency task"));
    }
    latencies.sort_unstable();
    latencies
}

fn consume_all(bootstrap: &str, topic: &str, count: usize) -> (Duration, usize) {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("group.id", "bench")
        .set("enable.auto.commit", "false")
        .set("fetch.max.bytes", "52428800")
        .set("max.partition.fetch.bytes", "10485760")
        .create()
        .expect("consumer");
    let mut list = TopicPartitionList::new();
    list.add_partition_offset(topic, 0, Offset::Beginning)
        .expect("partition");
    consumer.assign(&list).expect("assign");
    let started = Instant::now();
    let (mut seen, mut bytes) = (0, 0);
    while seen < count && started.elapsed() < Duration::from_secs(120) {
        if let Some(Ok(message)) = consumer.poll(Duration::from_millis(100)) {
            use rdkafka::Message;
            seen += 1;
            bytes += message.payload().map_or(0, <[u8]>::len);
        }
    }
    (started.elapsed(), bytes)
}

/// Fetch v12 over a raw socket from offset 0 to `end_offset`, 8 MiB per request: the broker's
/// fetch path without a client library's per-record work. Returns elapsed time and bytes.
fn raw_fetch(bootstrap: &str, topic: &str, end_offset: i64) -> (Duration, usize) {
    use bytes::{Buf, BufMut, BytesMut};
    use kafka_protocol::messages::fetch_request::{FetchPartition, FetchTopic};
    use kafka_protocol::messages::{
        BrokerId, FetchRequest, FetchResponse, RequestHeader, ResponseHeader, TopicName,
    };
    use kafka_protocol::protocol::{Decodable, Encodable};
    let mut stream = TcpStream::connect(bootstrap).expect("connect");
    stream.set_nodelay(true).expect("nodelay");
    let started = Instant::now();
    let (mut offset, mut bytes) = (0_i64, 0_usize);
    while offset < end_offset && started.elapsed() < Duration::from_secs(60) {
        let request = FetchRequest::default()
            .with_replica_id(BrokerId(-1))
            .with_max_wait_ms(100)
            .with_min_bytes(1)
            .with_max_bytes(8 << 20)
            .with_session_epoch(-1)
            .with_topics(vec![
                FetchTopic::default()
                    .with_topic(TopicName(topic.to_owned().into()))
                    .with_partitions(vec![
                        FetchPartition::default()
                            .with_fetch_offset(offset)
                            .with_partition_max_bytes(8 << 20),
                    ]),
            ]);
        let mut body = BytesMut::new();
        RequestHeader::default()
            .with_request_api_key(1)
            .with_request_api_version(12)
            .with_correlation_id(1)
            .encode(&mut body, 2)
            .expect("header");
        request.encode(&mut body, 12).expect("body");
        let mut frame = BytesMut::new();
        frame.put_i32(i32::try_from(body.len()).expect("small"));
        frame.put_slice(&body);
        stream.write_all(&frame).expect("send");
        let mut size = [0_u8; 4];
        stream.read_exact(&mut size).expect("size");
        let mut response = vec![0_u8; usize::try_from(i32::from_be_bytes(size)).expect("size")];
        stream.read_exact(&mut response).expect("response");
        let mut response = bytes::Bytes::from(response);
        let _ = ResponseHeader::decode(&mut response, 1).expect("response header");
        let fetched = FetchResponse::decode(&mut response, 12).expect("fetch response");
        let records = fetched.responses[0].partitions[0]
            .records
            .clone()
            .unwrap_or_default();
        if records.is_empty() {
            break;
        }
        bytes += records.len();
        // Walk the batches to the next offset: base offset + last offset delta + 1.
        let mut cursor = records.clone();
        while cursor.remaining() >= 61 {
            let base = cursor.get_i64();
            let length = usize::try_from(cursor.get_i32()).expect("length");
            if cursor.remaining() < length {
                break;
            }
            let batch = cursor.split_to(length);
            let last_offset_delta = i32::from_be_bytes(batch[11..15].try_into().expect("4 bytes"));
            offset = base + i64::from(last_offset_delta) + 1;
        }
    }
    (started.elapsed(), bytes)
}

/// Produce v11 round trips over a raw socket, one 1 KiB record per request and one request in
/// flight: the broker's own acks=1 latency, without a client library's queues and threads.
fn raw_produce_latency(bootstrap: &str, topic: &str, count: usize) -> Vec<Duration> {
    use bytes::{BufMut, BytesMut};
    use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
    use kafka_protocol::messages::{ProduceRequest, RequestHeader, TopicName};
    use kafka_protocol::protocol::Encodable;
    let batch = bytes::Bytes::from(
        kairos_storage::builder::RecordBatchBuilder::new()
            .record(Some(b"k"), Some(&[b'r'; RECORD_BYTES]), 1)
            .build(),
    );
    let mut stream = TcpStream::connect(bootstrap).expect("connect");
    stream.set_nodelay(true).expect("nodelay");
    let mut latencies = Vec::with_capacity(count);
    let mut response = vec![0_u8; 1 << 16];
    for i in 0..count {
        let request = ProduceRequest::default()
            .with_acks(1)
            .with_timeout_ms(5_000)
            .with_topic_data(vec![
                TopicProduceData::default()
                    .with_name(TopicName(topic.to_owned().into()))
                    .with_partition_data(vec![
                        PartitionProduceData::default()
                            .with_index(0)
                            .with_records(Some(batch.clone())),
                    ]),
            ]);
        let mut body = BytesMut::new();
        RequestHeader::default()
            .with_request_api_key(0)
            .with_request_api_version(11)
            .with_correlation_id(i32::try_from(i).unwrap_or(0))
            .encode(&mut body, 2)
            .expect("header");
        request.encode(&mut body, 11).expect("body");
        let mut frame = BytesMut::new();
        frame.put_i32(i32::try_from(body.len()).expect("small"));
        frame.put_slice(&body);
        let sent = Instant::now();
        stream.write_all(&frame).expect("send");
        let mut size = [0_u8; 4];
        stream.read_exact(&mut size).expect("size");
        let size = usize::try_from(i32::from_be_bytes(size)).expect("size");
        stream.read_exact(&mut response[..size]).expect("response");
        latencies.push(sent.elapsed());
    }
    latencies.sort_unstable();
    latencies
}

/// Loopback TCP: one writer, one reader, `total` bytes in 64 KiB writes.
fn loopback_mb_s(total: usize) -> f64 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let address = listener.local_addr().expect("address");
    let reader = std::thread::spawn(move || {
        let (mut stream, _) = listener.accept().expect("accept");
        let mut buffer = vec![0_u8; 1 << 16];
        let mut read = 0;
        while read < total {
            match stream.read(&mut buffer) {
                Ok(0) | Err(_) => break,
                Ok(n) => read += n,
            }
        }
    });
    let mut stream = TcpStream::connect(address).expect("connect");
    let chunk = vec![b'z'; 1 << 16];
    let started = Instant::now();
    let mut written = 0;
    while written < total {
        stream.write_all(&chunk).expect("write");
        written += chunk.len();
    }
    drop(stream);
    reader.join().expect("reader");
    mb_s(written, started.elapsed())
}

#[tokio::main]
async fn main() {
    // `cargo bench` passes `--bench`; nothing to parse.
    let count = records();
    let dir = tempfile::tempdir().expect("tempdir");
    let broker = Broker::start(dir.path(), &[]);
    std::thread::sleep(Duration::from_millis(300));
    let idle_rss = broker.rss_kib();
    let bootstrap = broker.bootstrap.clone();
    let payload_bytes = count * RECORD_BYTES;

    let reference_net = loopback_mb_s(payload_bytes);
    let reference_disk = disk_mb_s(dir.path(), payload_bytes);

    let acks1 = produce_burst(&bootstrap, "bench-acks1", "1", "5", count).await;
    let acks_all = produce_burst(&bootstrap, "bench-acksall", "all", "5", count).await;
    // Latency is measured without client-side lingering, so "max load" is measured the same way.
    let unlingered = produce_burst(&bootstrap, "bench-max", "1", "0", count).await;
    let pinned = std::env::var("KAIROS_BENCH_RATE").is_ok();
    let max_rate = std::env::var("KAIROS_BENCH_RATE")
        .ok()
        .and_then(|v| v.parse::<f64>().ok())
        .map_or(count as f64 / unlingered.as_secs_f64(), |rate| rate * 2.0);
    let paced = (count / 5).max(1_000);
    let latencies = produce_paced(&bootstrap, "bench-latency", max_rate / 2.0, paced).await;
    let (consume_time, consumed) = {
        let bootstrap = bootstrap.clone();
        tokio::task::spawn_blocking(move || consume_all(&bootstrap, "bench-acks1", count))
            .await
            .expect("consume")
    };

    println!("kairos end-to-end bench: {count} records of {RECORD_BYTES} B, one partition");
    println!("reference  loopback TCP       {reference_net:>9.1} MB/s");
    println!("reference  file write+fsync   {reference_disk:>9.1} MB/s");
    println!(
        "produce    acks=1             {:>9.1} MB/s {:>10.0} records/s ({:.0}% of min reference)",
        mb_s(payload_bytes, acks1),
        count as f64 / acks1.as_secs_f64(),
        100.0 * mb_s(payload_bytes, acks1) / reference_net.min(reference_disk)
    );
    println!(
        "produce    acks=all           {:>9.1} MB/s {:>10.0} records/s ({:.0}% of min reference)",
        mb_s(payload_bytes, acks_all),
        count as f64 / acks_all.as_secs_f64(),
        100.0 * mb_s(payload_bytes, acks_all) / reference_net.min(reference_disk)
    );
    println!(
        "latency    acks=1 linger 0 at {:.0} rec/s ({})  p50 {:?}  p99 {:?}",
        max_rate / 2.0,
        if pinned {
            "KAIROS_BENCH_RATE"
        } else {
            "half of max"
        },
        percentile(&latencies, 0.50),
        percentile(&latencies, 0.99)
    );
    println!(
        "consume    from offset 0      {:>9.1} MB/s (librdkafka consumer)",
        mb_s(consumed, consume_time)
    );
    let (raw_time, raw_bytes) = {
        let bootstrap = bootstrap.clone();
        let end = i64::try_from(count).expect("count fits");
        tokio::task::spawn_blocking(move || raw_fetch(&bootstrap, "bench-acks1", end))
            .await
            .expect("raw fetch")
    };
    println!(
        "consume    from offset 0      {:>9.1} MB/s (raw Fetch v12, 8 MiB per request)",
        mb_s(raw_bytes, raw_time)
    );
    let raw = {
        let bootstrap = bootstrap.clone();
        tokio::task::spawn_blocking(move || {
            raw_produce_latency(&bootstrap, "bench-raw-latency", 20_000)
        })
        .await
        .expect("raw latency")
    };
    println!(
        "latency    acks=1 raw Produce, 1 in flight     p50 {:?}  p99 {:?}",
        percentile(&raw, 0.50),
        percentile(&raw, 0.99)
    );
    println!("idle RSS   {idle_rss} KiB");
}
