//! `protocol::decode_request` for the two hot requests: a Produce carrying one 16 KiB record
//! batch (v9, flexible) and a Fetch of 3 partitions (v12 by name, v13 by topic id).
//!
//! How: each request is encoded once with kafka-protocol; every iteration decodes a clone of the
//! frame `Bytes` (a reference-count bump, as the connection hands over a frame). Throughput is in
//! frame bytes.

use bytes::{BufMut, Bytes, BytesMut};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use kafka_protocol::messages::fetch_request::{FetchPartition, FetchTopic};
use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
use kafka_protocol::messages::{
    ApiKey, BrokerId, FetchRequest, ProduceRequest, RequestHeader, TopicName,
};
use kafka_protocol::protocol::{Encodable, Request};
use kairos::protocol::{Decoded, decode_request};

fn frame<R: Request>(version: i16, request: &R) -> Bytes {
    let key = ApiKey::try_from(R::KEY).expect("known key");
    let mut body = BytesMut::new();
    RequestHeader::default()
        .with_request_api_key(R::KEY)
        .with_request_api_version(version)
        .with_correlation_id(1)
        .with_client_id(Some("bench".into()))
        .encode(&mut body, key.request_header_version(version))
        .expect("header encodes");
    request.encode(&mut body, version).expect("body encodes");
    body.freeze()
}

fn produce() -> Bytes {
    let records = kairos_storage::builder::RecordBatchBuilder::new();
    let value = vec![b'v'; 1024];
    let records = (0..16).fold(records, |b, i| {
        b.record(Some(format!("k{i}").as_bytes()), Some(&value), 1)
    });
    let mut batch = BytesMut::new();
    batch.put_slice(&records.build());
    frame(
        9,
        &ProduceRequest::default()
            .with_acks(-1)
            .with_timeout_ms(30_000)
            .with_topic_data(vec![
                TopicProduceData::default()
                    .with_name(TopicName("bench".into()))
                    .with_partition_data(vec![
                        PartitionProduceData::default()
                            .with_index(0)
                            .with_records(Some(batch.freeze())),
                    ]),
            ]),
    )
}

fn fetch(version: i16) -> Bytes {
    let partitions = (0..3)
        .map(|p| {
            FetchPartition::default()
                .with_partition(p)
                .with_fetch_offset(1_000)
                .with_partition_max_bytes(1 << 20)
        })
        .collect();
    frame(
        version,
        &FetchRequest::default()
            .with_replica_id(BrokerId(-1))
            .with_max_wait_ms(500)
            .with_min_bytes(1)
            .with_max_bytes(50 << 20)
            .with_session_epoch(-1)
            .with_topics(vec![
                FetchTopic::default()
                    .with_topic(TopicName("bench".into()))
                    .with_topic_id(uuid::Uuid::from_u128(7))
                    .with_partitions(partitions),
            ]),
    )
}

fn bench(c: &mut Criterion) {
    let mut group = c.benchmark_group("request_decode");
    for (name, frame) in [
        ("produce_v9_16KiB", produce()),
        ("fetch_v12_3p", fetch(12)),
        ("fetch_v13_3p", fetch(13)),
    ] {
        group.throughput(Throughput::Bytes(frame.len() as u64));
        let _ = group.bench_function(name, |b| {
            b.iter(|| match decode_request(frame.clone()) {
                Ok(Decoded::Request(ctx, request)) => (ctx.correlation_id, request),
                other => panic!("{other:?}"),
            });
        });
    }
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
