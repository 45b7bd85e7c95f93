//! Raw bytes on a real socket: malformed frames get a closed connection (or, for ApiVersions at
//! an unknown version, a v0 error response), and a well-behaved client on another connection
//! keeps working meanwhile.

use bytes::{BufMut, BytesMut};
use kafka_protocol::messages::{ApiVersionsRequest, ApiVersionsResponse, MetadataRequest};
use kafka_protocol::protocol::Decodable;

use crate::support;
use crate::wire::Wire;

/// A normal client round trip on a fresh connection.
fn check_healthy(address: &str) {
    let mut wire = Wire::connect(address);
    let response = wire.call(3, &ApiVersionsRequest::default());
    assert_eq!(response.error_code, 0);
    let metadata = wire.call(12, &MetadataRequest::default().with_topics(None));
    assert_eq!(metadata.brokers.len(), 1);
}

/// Writes `bytes` on a new connection (optionally half-closing it) and asserts that the broker
/// closes the connection without answering, while a second connection stays healthy.
fn check_closed(address: &str, bytes: &[u8], half_close: bool) {
    let mut bad = Wire::connect(address);
    // The broker may close before reading everything; a failed write is also a closed connection.
    let _ = bad.write_raw(bytes);
    if half_close {
        bad.shutdown_write();
    }
    check_healthy(address);
    assert!(bad.read_frame().is_none(), "no response to {bytes:02x?}");
    check_healthy(address);
}

fn frame(body: &[u8]) -> Vec<u8> {
    let mut frame = BytesMut::new();
    frame.put_i32(i32::try_from(body.len()).unwrap());
    frame.put_slice(body);
    frame.to_vec()
}

fn header(api_key: i16, version: i16, rest: &[u8]) -> Vec<u8> {
    let mut body = BytesMut::new();
    body.put_i16(api_key);
    body.put_i16(version);
    body.put_i32(42);
    body.put_slice(rest);
    body.to_vec()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn malformed_frames_close_only_their_connection() {
    let broker = support::embedded().await;
    let address = broker.bootstrap_servers();
    tokio::task::spawn_blocking(move || {
        // Garbage: a plausible small length followed by noise.
        check_closed(
            &address,
            &frame(b"\xde\xad\xbe\xef garbage \x00\x01\x02 bytes"),
            false,
        );
        // A 2 GB length prefix: refused before any body is read.
        check_closed(&address, &[0x7f, 0xff, 0xff, 0xff, 1, 2, 3], false);
        // A negative length prefix.
        check_closed(&address, &[0xff, 0xff, 0xff, 0xfe], false);
        // A truncated frame: 100 bytes announced, 10 sent, then end of stream.
        let mut truncated = vec![0, 0, 0, 100];
        truncated.extend_from_slice(&header(18, 0, b"\x00\x00"));
        check_closed(&address, &truncated, true);
        // An unknown API key.
        check_closed(&address, &frame(&header(999, 0, b"\x00\x00")), false);
        // A known but unadvertised API (JoinGroup).
        check_closed(&address, &frame(&header(11, 5, b"\x00\x00")), false);
        // An unsupported version of Produce.
        check_closed(&address, &frame(&header(0, 99, b"\x00\x00")), false);
        // A wrong-type field: Metadata v4 whose topic name "string" claims 30 000 bytes.
        let mut body = header(3, 4, b"\x00\x04wire");
        body.extend_from_slice(&[0, 0, 0, 1, 0x75, 0x30, b'x', 1]);
        check_closed(&address, &frame(&body), false);
        // An array length of 2^31 - 16 in a 30-byte request: must not pre-allocate ~150 GB
        // (the vendored kafka-protocol patch; this aborted the whole broker before).
        let mut body = header(3, 4, b"\x00\x04wire");
        body.extend_from_slice(&[0x7f, 0xff, 0xff, 0xf0, 0, 0]);
        check_closed(&address, &frame(&body), false);
        // The same through a compact (varint) array length in flexible Metadata v12.
        let mut body = header(3, 12, b"\x00\x04wire\x00");
        body.extend_from_slice(&[0xff, 0xff, 0xff, 0xff, 0x0f, 0]);
        check_closed(&address, &frame(&body), false);
        // A request frame of zero bytes.
        check_closed(&address, &[0, 0, 0, 0], false);
    })
    .await
    .unwrap();
    broker.shutdown().await.unwrap();
}

/// ApiVersions at a version we do not support: a v0 body with UNSUPPORTED_VERSION and
/// ApiVersions' own range, without parsing the request body; the connection stays usable.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn api_versions_at_unsupported_version_answers_v0() {
    let broker = support::embedded().await;
    let address = broker.bootstrap_servers();
    tokio::task::spawn_blocking(move || {
        let mut wire = Wire::connect(&address);
        wire.write_raw(&frame(&header(18, 99, b"\xffnot a valid body at all")))
            .unwrap();
        let mut response = wire.read_frame().unwrap();
        // Response header v0: the correlation id only.
        assert_eq!(&response[..4], &42_i32.to_be_bytes());
        let _ = response.split_to(4);
        let body = ApiVersionsResponse::decode(&mut response, 0).unwrap();
        assert_eq!(body.error_code, 35);
        assert_eq!(body.api_keys.len(), 1);
        assert_eq!(
            (
                body.api_keys[0].api_key,
                body.api_keys[0].min_version,
                body.api_keys[0].max_version
            ),
            (18, 0, 4)
        );
        assert!(response.is_empty(), "exactly a v0 body");
        // The same connection then negotiates normally.
        assert_eq!(wire.call(3, &ApiVersionsRequest::default()).error_code, 0);
    })
    .await
    .unwrap();
    broker.shutdown().await.unwrap();
}

/// The advertised table is exactly ours, at every ApiVersions version, with a v0 response
/// header even for the flexible versions.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn api_versions_advertise_the_explicit_table() {
    let broker = support::embedded().await;
    let address = broker.bootstrap_servers();
    tokio::task::spawn_blocking(move || {
        let mut wire = Wire::connect(&address);
        for version in 0..=4 {
            let response = wire.call(version, &ApiVersionsRequest::default());
            let advertised: Vec<(i16, i16, i16)> = response
                .api_keys
                .iter()
                .map(|k| (k.api_key, k.min_version, k.max_version))
                .collect();
            let expected: Vec<(i16, i16, i16)> = kairos::protocol::versions::SUPPORTED_APIS
                .iter()
                .map(|(key, range)| (*key as i16, range.min, range.max))
                .collect();
            assert_eq!(advertised, expected, "v{version}");
            // Kafka 4.0 baselines (KIP-896).
            assert!(advertised.contains(&(0, 3, 12)));
            assert!(advertised.contains(&(1, 4, 17)));
        }
    })
    .await
    .unwrap();
    broker.shutdown().await.unwrap();
}

/// `socket.request.max.bytes` is checked from the length prefix, before reading the body.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn frames_above_socket_request_max_bytes_close() {
    let broker = kairos::Broker::builder()
        .temp_dir()
        .listener("127.0.0.1:0")
        .config("socket.request.max.bytes", "1000")
        .start()
        .await
        .unwrap();
    let address = broker.bootstrap_servers();
    tokio::task::spawn_blocking(move || {
        // 1001 bytes announced, none sent: closed without waiting for the body.
        check_closed(&address, &[0, 0, 0x03, 0xe9], false);
        check_healthy(&address);
    })
    .await
    .unwrap();
    broker.shutdown().await.unwrap();
}

/// `max.connections`: at the cap, a new connection waits (in the accept backlog) until another
/// closes, and is then served.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn connections_above_the_cap_wait_for_a_slot() {
    let broker = kairos::Broker::builder()
        .temp_dir()
        .listener("127.0.0.1:0")
        .config("max.connections", "2")
        .start()
        .await
        .unwrap();
    let address = broker.bootstrap_servers();
    tokio::task::spawn_blocking(move || {
        let mut first = Wire::connect(&address);
        let mut second = Wire::connect(&address);
        assert_eq!(first.call(3, &ApiVersionsRequest::default()).error_code, 0);
        assert_eq!(second.call(3, &ApiVersionsRequest::default()).error_code, 0);
        let mut third = Wire::connect(&address);
        third.set_read_timeout(std::time::Duration::from_millis(300));
        let _ = third.send(3, &ApiVersionsRequest::default());
        assert!(third.read_frame().is_none(), "not served while at the cap");
        drop(first);
        third.set_read_timeout(std::time::Duration::from_secs(10));
        assert!(third.read_frame().is_some(), "served once a slot frees up");
    })
    .await
    .unwrap();
    broker.shutdown().await.unwrap();
}

/// `connections.max.idle.ms`: a connection that sends nothing is closed, freeing its slot.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn idle_connections_are_closed() {
    let broker = kairos::Broker::builder()
        .temp_dir()
        .listener("127.0.0.1:0")
        .config("connections.max.idle.ms", "200")
        .start()
        .await
        .unwrap();
    let address = broker.bootstrap_servers();
    tokio::task::spawn_blocking(move || {
        let mut idle = Wire::connect(&address);
        assert_eq!(idle.call(3, &ApiVersionsRequest::default()).error_code, 0);
        std::thread::sleep(std::time::Duration::from_millis(600));
        assert!(idle.is_closed(), "idle connection closed by the broker");
        check_healthy(&address);
    })
    .await
    .unwrap();
    broker.shutdown().await.unwrap();
}
