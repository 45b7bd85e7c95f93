//! The embedding API: injected clock, metrics listener, start/stop in a few lines.

use std::io::{Read, Write};
use std::sync::Arc;
use std::time::Duration;

use kairos::{Broker, ManualClock};
use rdkafka::Message;
use rdkafka::Offset;
use rdkafka::producer::FutureRecord;
use rdkafka::util::Timeout;

use crate::support;

/// LogAppendTime stamps come from the injected clock, not the system's: a ManualClock set to a
/// fixed instant is what consumers see.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn log_append_time_comes_from_the_injected_clock() {
    let clock = ManualClock::new(1_234_567_890_000);
    let broker = Broker::builder()
        .temp_dir()
        .listener("127.0.0.1:0")
        .clock(Arc::new(clock.clone()))
        .start()
        .await
        .unwrap();
    let bootstrap = broker.bootstrap_servers();
    let topic = support::topic_name("clock");
    support::create_topic(
        &bootstrap,
        &topic,
        1,
        &[("message.timestamp.type", "LogAppendTime")],
    )
    .await;
    let producer = support::producer(&bootstrap, "all", &[]);
    let delivery = producer
        .send(
            FutureRecord::<(), _>::to(&topic).payload("a").timestamp(5),
            Timeout::Never,
        )
        .await
        .unwrap();
    assert_eq!(delivery.offset, 0);
    clock.advance_ms(1_000);
    let _ = producer
        .send(
            FutureRecord::<(), _>::to(&topic).payload("b").timestamp(5),
            Timeout::Never,
        )
        .await
        .unwrap();
    let consumer = support::consumer(&bootstrap);
    support::assign(&consumer, &topic, 1, Offset::Beginning);
    let messages = support::consume(&consumer, 2, Duration::from_secs(10));
    let stamps: Vec<Option<i64>> = messages.iter().map(|m| m.timestamp().to_millis()).collect();
    assert_eq!(
        stamps,
        vec![Some(1_234_567_890_000), Some(1_234_567_891_000)]
    );
    drop((producer, consumer));
    broker.shutdown().await.unwrap();
}

/// `/metrics` in Prometheus text format: requests per API, bytes, connections, and log end
/// offset per partition.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn metrics_endpoint_reports_requests_and_partitions() {
    let broker = Broker::builder()
        .temp_dir()
        .listener("127.0.0.1:0")
        .config("kairos.metrics.listener", "127.0.0.1:0")
        .start()
        .await
        .unwrap();
    let bootstrap = broker.bootstrap_servers();
    let topic = support::topic_name("metrics");
    support::create_topic(&bootstrap, &topic, 1, &[]).await;
    let producer = support::producer(&bootstrap, "1", &[]);
    for _ in 0..3 {
        let _ = producer
            .send(
                FutureRecord::<(), _>::to(&topic).payload("m"),
                Timeout::Never,
            )
            .await
            .unwrap();
    }
    let address = broker.metrics_addr().unwrap();
    let text = tokio::task::spawn_blocking(move || {
        let mut stream = std::net::TcpStream::connect(address).unwrap();
        stream
            .write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n")
            .unwrap();
        let mut text = String::new();
        let _ = stream.read_to_string(&mut text).unwrap();
        text
    })
    .await
    .unwrap();
    assert!(text.starts_with("HTTP/1.1 200 OK"), "{text}");
    assert!(
        text.contains("kairos_requests_total{api=\"Produce\"}"),
        "{text}"
    );
    assert!(
        text.contains("kairos_request_duration_seconds_bucket{"),
        "{text}"
    );
    assert!(
        text.contains(&format!(
            "kairos_log_end_offset{{topic=\"{topic}\",partition=\"0\"}} 3"
        )),
        "{text}"
    );
    assert!(text.contains("kairos_network_bytes_in_total"), "{text}");
    assert!(text.contains("kairos_connections "), "{text}");
    drop(producer);
    broker.shutdown().await.unwrap();
}

/// A second broker on the same data directory is refused (the directory lock), and the first
/// keeps serving.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_locked_data_dir_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let first = support::embedded_in(dir.path()).await;
    let second = Broker::builder()
        .data_dir(dir.path())
        .listener("127.0.0.1:0")
        .start()
        .await;
    assert!(
        matches!(second, Err(kairos::StartError::Storage(_))),
        "{second:?}"
    );
    first.shutdown().await.unwrap();
    let again = support::embedded_in(dir.path()).await;
    again.shutdown().await.unwrap();
}

/// Graceful shutdown answers a parked long-poll at once instead of waiting out its
/// `max_wait_ms`, and still finishes the in-flight request.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn shutdown_completes_parked_fetches() {
    use kafka_protocol::messages::fetch_request::{FetchPartition, FetchTopic};
    use kafka_protocol::messages::{BrokerId, FetchRequest, FetchResponse, TopicName};
    use kafka_protocol::protocol::Decodable;
    let broker = support::embedded().await;
    let bootstrap = broker.bootstrap_servers();
    let topic = support::topic_name("parked");
    support::create_topic(&bootstrap, &topic, 1, &[]).await;
    let parked = tokio::task::spawn_blocking(move || {
        let mut wire = crate::wire::Wire::connect(&bootstrap);
        let request = FetchRequest::default()
            .with_replica_id(BrokerId(-1))
            .with_max_wait_ms(20_000)
            .with_min_bytes(1)
            .with_max_bytes(1_000)
            .with_session_epoch(-1)
            .with_topics(vec![
                FetchTopic::default()
                    .with_topic(TopicName(topic.into()))
                    .with_partitions(vec![
                        FetchPartition::default()
                            .with_fetch_offset(0)
                            .with_partition_max_bytes(1_000),
                    ]),
            ]);
        let _ = wire.send(12, &request);
        let mut frame = wire.read_frame().expect("the parked fetch is answered");
        let _ = kafka_protocol::messages::ResponseHeader::decode(&mut frame, 1).unwrap();
        FetchResponse::decode(&mut frame, 12).unwrap().responses[0].partitions[0].error_code
    });
    tokio::time::sleep(Duration::from_millis(300)).await;
    let stopping = std::time::Instant::now();
    broker.shutdown().await.unwrap();
    assert!(
        stopping.elapsed() < Duration::from_secs(5),
        "shutdown took {:?}",
        stopping.elapsed()
    );
    assert_eq!(parked.await.unwrap(), 0);
}
