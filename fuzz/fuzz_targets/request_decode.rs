//! Fuzz target: request decoding and dispatch for every advertised API and version.
//!
//! The first two input bytes pick an advertised `(api key, version)` from
//! `kairos::protocol::versions::SUPPORTED_APIS`, so the fuzzer spends its time inside real
//! decoders instead of on unknown keys; the rest is the header's remainder and the body. Each
//! input is (1) decoded in-process and (2) sent as a frame to a live embedded broker over
//! loopback, which dispatches it to the handler. libfuzzer-sys aborts on a panic in any thread,
//! so a panicking handler task is caught too. The broker must answer or close the connection,
//! and must still answer ApiVersions afterwards.
//!
//! Needs `kairos`, `bytes`, `tokio` (rt-multi-thread) and `libfuzzer-sys` in fuzz/Cargo.toml.
#![no_main]

use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::OnceLock;
use std::time::Duration;

use bytes::{BufMut, Bytes, BytesMut};
use libfuzzer_sys::fuzz_target;

struct Live {
    _runtime: tokio::runtime::Runtime,
    _broker: kairos::BrokerHandle,
    address: String,
}

fn live() -> &'static Live {
    static LIVE: OnceLock<Live> = OnceLock::new();
    LIVE.get_or_init(|| {
        let runtime = tokio::runtime::Runtime::new().expect("runtime");
        let broker = runtime
            .block_on(
                kairos::Broker::builder()
                    .temp_dir()
                    .listener("127.0.0.1:0")
                    .config("socket.request.max.bytes", "1048576")
                    .start(),
            )
            .expect("broker");
        let address = broker.bootstrap_servers();
        Live { _runtime: runtime, _broker: broker, address }
    })
}

fn frame(data: &[u8]) -> Option<Vec<u8>> {
    let (&pick, rest) = data.split_first()?;
    let (&version_pick, rest) = rest.split_first()?;
    let apis = kairos::protocol::versions::SUPPORTED_APIS;
    let (key, range) = apis.get(usize::from(pick) % apis.len())?;
    let span = u8::try_from(range.max - range.min + 1).ok()?;
    let version = range.min + i16::from(version_pick % span);
    let mut body = BytesMut::new();
    body.put_i16(*key as i16);
    body.put_i16(version);
    body.put_i32(7);
    body.put_slice(rest);
    Some(body.to_vec())
}

fuzz_target!(|data: &[u8]| {
    let Some(request) = frame(data) else { return };
    let _ = kairos::protocol::decode_request(Bytes::from(request.clone()));

    let live = live();
    let Ok(mut stream) = TcpStream::connect(&live.address) else { return };
    let _ = stream.set_read_timeout(Some(Duration::from_secs(5)));
    let mut framed = (request.len() as u32).to_be_bytes().to_vec();
    framed.extend_from_slice(&request);
    if stream.write_all(&framed).is_ok() {
        let mut answer = [0_u8; 4096];
        let _ = stream.read(&mut answer);
    }
    // The broker survived: a fresh connection still gets ApiVersions v0 answered.
    let mut check = TcpStream::connect(&live.address).expect("broker still accepts");
    let _ = check.set_read_timeout(Some(Duration::from_secs(5)));
    // ApiVersions v0 (request header v1: api key 18, version 0, correlation id 1, null client id).
    check
        .write_all(&[0, 0, 0, 10, 0, 18, 0, 0, 0, 0, 0, 1, 0xff, 0xff])
        .expect("write ApiVersions");
    let mut head = [0_u8; 8];
    check.read_exact(&mut head).expect("broker still answers");
    assert_eq!(head[4..], [0, 0, 0, 1], "the answer carries the correlation id");
});
