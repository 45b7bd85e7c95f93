//! A raw Kafka client over a blocking socket, for exact protocol checks: encode any request with
//! kafka-protocol at a chosen version, read back the response frame.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use bytes::{Buf, BufMut, Bytes, BytesMut};
use kafka_protocol::messages::{ApiKey, RequestHeader, ResponseHeader};
use kafka_protocol::protocol::{Decodable, Encodable, HeaderVersion, Request};

pub(crate) struct Wire {
    stream: TcpStream,
    next_correlation_id: i32,
}

impl Wire {
    pub(crate) fn connect(address: &str) -> Wire {
        let stream = TcpStream::connect(address).unwrap();
        stream
            .set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        stream.set_nodelay(true).unwrap();
        Wire {
            stream,
            next_correlation_id: 1,
        }
    }

    /// Writes raw bytes.
    pub(crate) fn write_raw(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        self.stream.write_all(bytes)
    }

    /// Sends `request` at `version` and returns its frame bytes (without reading an answer).
    pub(crate) fn send<R: Request>(&mut self, version: i16, request: &R) -> i32 {
        let correlation_id = self.next_correlation_id;
        self.next_correlation_id += 1;
        let key = ApiKey::try_from(R::KEY).unwrap();
        let mut body = BytesMut::new();
        RequestHeader::default()
            .with_request_api_key(R::KEY)
            .with_request_api_version(version)
            .with_correlation_id(correlation_id)
            .with_client_id(Some("wire-test".into()))
            .encode(&mut body, key.request_header_version(version))
            .unwrap();
        request.encode(&mut body, version).unwrap();
        let mut frame = BytesMut::new();
        frame.put_i32(i32::try_from(body.len()).unwrap());
        frame.put_slice(&body);
        self.stream.write_all(&frame).unwrap();
        correlation_id
    }

    /// Reads one response frame; `None` if the broker closed the connection.
    pub(crate) fn read_frame(&mut self) -> Option<Bytes> {
        let mut size = [0_u8; 4];
        self.stream.read_exact(&mut size).ok()?;
        let mut body = vec![0_u8; usize::try_from(i32::from_be_bytes(size)).unwrap()];
        self.stream.read_exact(&mut body).ok()?;
        Some(Bytes::from(body))
    }

    /// Sends and decodes the typed response, checking the correlation id.
    pub(crate) fn call<R: Request>(&mut self, version: i16, request: &R) -> R::Response {
        let correlation_id = self.send(version, request);
        self.receive::<R>(version, correlation_id)
    }

    /// Reads and decodes the response to a request sent earlier with `send`.
    pub(crate) fn receive<R: Request>(&mut self, version: i16, correlation_id: i32) -> R::Response {
        let mut frame = self.read_frame().expect("a response");
        let header =
            ResponseHeader::decode(&mut frame, R::Response::header_version(version)).unwrap();
        assert_eq!(header.correlation_id, correlation_id);
        let response = R::Response::decode(&mut frame, version).unwrap();
        assert_eq!(frame.remaining(), 0, "response fully consumed");
        response
    }

    /// Changes the read timeout.
    pub(crate) fn set_read_timeout(&mut self, timeout: Duration) {
        self.stream.set_read_timeout(Some(timeout)).unwrap();
    }

    /// Half-closes the connection (no more bytes from us).
    pub(crate) fn shutdown_write(&mut self) {
        let _ = self.stream.shutdown(std::net::Shutdown::Write);
    }

    /// True when the broker closed the connection (EOF or reset) within the read timeout.
    pub(crate) fn is_closed(&mut self) -> bool {
        let mut byte = [0_u8; 1];
        matches!(self.stream.read(&mut byte), Ok(0) | Err(_))
    }
}
