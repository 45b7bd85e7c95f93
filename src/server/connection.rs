//! One client connection: size-prefixed framing, pipelining, in-order responses.
//!
//! Two tasks share the socket. The reader reads a frame, checks its length against
//! `socket.request.max.bytes` before reading the body, decodes it, and runs the handler's
//! in-order part (for Produce: the append). The rest of the handler (an fsync wait, a fetch
//! long-poll) runs as its own task; its handle goes through a bounded channel to the writer,
//! which awaits the handles in request order and writes the responses. So a produce waiting for
//! its fsync never stops the next request from being read and appended, and responses still
//! leave in order. The channel's capacity (`queued.max.requests`) caps in-flight requests: when
//! it is full the reader stops reading and TCP pushes back on the client.

// Framing reads untrusted bytes: no panicking accessors (STYLE B6.8).
#![deny(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

use std::sync::Arc;

use bytes::{Buf, Bytes, BytesMut};
use kafka_protocol::messages::ApiKey;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use super::Shutdown;
use crate::broker::BrokerState;
use crate::clock::Stopwatch;
use crate::error::ConnectionError;
use crate::handlers;
use crate::protocol::{self, Answer, Decoded, Reply, ready};

/// Initial read buffer; grows to the largest frame seen.
const READ_BUFFER_BYTES: usize = 64 * 1024;
/// A read buffer that grew beyond this is replaced once empty, so one huge request does not pin
/// its memory for the connection's lifetime.
const READ_BUFFER_RETAINED_BYTES_MAX: usize = 1024 * 1024;

/// A request whose response is known or being produced.
struct InFlight {
    api_key: ApiKey,
    api_version: i16,
    correlation_id: i32,
    started: Stopwatch,
    response: Pending,
}

/// The answer, or the task computing it.
#[expect(
    clippy::large_enum_variant,
    reason = "the known answer is the common, hot case"
)]
enum Pending {
    Now(Answer),
    Later(JoinHandle<Answer>),
}

impl Pending {
    fn from_reply(reply: Reply) -> Pending {
        match reply {
            Reply::Now(answer) => Pending::Now(answer),
            // Its own task, so it makes progress while earlier responses are still being
            // written and later requests are being read.
            Reply::Later(future) => Pending::Later(tokio::spawn(future)),
        }
    }

    async fn answer(self) -> Answer {
        match self {
            Pending::Now(answer) => answer,
            Pending::Later(task) => task
                .await
                .map_err(|e| ConnectionError::Encode(format!("handler task failed: {e}")))?,
        }
    }
}

/// Serves one connection until the client leaves, a request closes it, or shutdown.
pub async fn run(stream: TcpStream, state: Arc<BrokerState>, shutdown: Shutdown) {
    state.metrics.connection_opened();
    let client_host = stream
        .peer_addr()
        .map(|addr| format!("/{}", addr.ip()))
        .unwrap_or_default();
    let (reader, writer) = stream.into_split();
    let (sender, receiver) = mpsc::channel(state.config.queued_max_requests());
    let writer_task = tokio::spawn(write_responses(writer, receiver, Arc::clone(&state)));
    if let Err(error) = read_requests(reader, sender, &state, &client_host, shutdown).await {
        tracing::debug!(%error, "closing connection");
    }
    if let Ok(Err(error)) = writer_task.await {
        tracing::debug!(%error, "closing connection");
    }
    state.metrics.connection_closed();
}

async fn read_requests(
    mut reader: OwnedReadHalf,
    sender: mpsc::Sender<InFlight>,
    state: &Arc<BrokerState>,
    client_host: &str,
    mut shutdown: Shutdown,
) -> Result<(), ConnectionError> {
    let max_bytes = state.config.socket_request_max_bytes();
    let idle = std::time::Duration::from_millis(state.config.connections_max_idle_ms());
    let mut buffer = BytesMut::with_capacity(READ_BUFFER_BYTES);
    loop {
        let frame = tokio::select! {
            frame = tokio::time::timeout(idle, read_frame(&mut reader, &mut buffer, max_bytes)) => match frame {
                Ok(frame) => frame?,
                // `connections.max.idle.ms`: an idle client gives its slot back.
                Err(_elapsed) => return Ok(()),
            },
            () = shutdown.recv() => return Ok(()),
            // The writer stopped (a failed acks=0 produce, a write error): close both ways.
            () = sender.closed() => return Ok(()),
        };
        let Some(frame) = frame else {
            return Ok(());
        };
        state.metrics.add_bytes_in(frame.len() + 4);
        let started = Stopwatch::start();
        let in_flight = match protocol::decode_request(frame)? {
            Decoded::UnsupportedApiVersions { correlation_id } => InFlight {
                api_key: ApiKey::ApiVersions,
                api_version: 0,
                correlation_id,
                started,
                response: Pending::from_reply(ready(
                    handlers::api_versions::unsupported_version_response(),
                )),
            },
            Decoded::Request(mut ctx, request) => {
                client_host.clone_into(&mut ctx.client_host);
                let pending = handlers::handle(state, &ctx, request).await?;
                InFlight {
                    api_key: ctx.api_key,
                    api_version: ctx.api_version,
                    correlation_id: ctx.correlation_id,
                    started,
                    response: Pending::from_reply(pending),
                }
            }
        };
        if sender.send(in_flight).await.is_err() {
            return Ok(());
        }
        if buffer.is_empty() && buffer.capacity() > READ_BUFFER_RETAINED_BYTES_MAX {
            buffer = BytesMut::with_capacity(READ_BUFFER_BYTES);
        }
    }
}

/// Reads one frame body. `Ok(None)` is a clean end of stream between frames.
async fn read_frame(
    reader: &mut OwnedReadHalf,
    buffer: &mut BytesMut,
    max_bytes: usize,
) -> Result<Option<Bytes>, ConnectionError> {
    loop {
        if let Some(prefix) = buffer.get(..4).and_then(|p| <[u8; 4]>::try_from(p).ok()) {
            let size = i32::from_be_bytes(prefix);
            let size = usize::try_from(size)
                .ok()
                .filter(|&size| size <= max_bytes)
                .ok_or(ConnectionError::FrameTooLarge {
                    size: i64::from(size),
                    max: max_bytes,
                })?;
            if buffer.len() >= 4 + size {
                buffer.advance(4);
                return Ok(Some(buffer.split_to(size).freeze()));
            }
            // The length was checked above, so this reservation is bounded by the limit.
            buffer.reserve(4 + size - buffer.len());
        }
        if reader.read_buf(buffer).await? == 0 {
            return if buffer.is_empty() {
                Ok(None)
            } else {
                Err(ConnectionError::Io(
                    std::io::ErrorKind::UnexpectedEof.into(),
                ))
            };
        }
    }
}

async fn write_responses(
    mut writer: OwnedWriteHalf,
    mut receiver: mpsc::Receiver<InFlight>,
    state: Arc<BrokerState>,
) -> Result<(), ConnectionError> {
    let mut out = BytesMut::with_capacity(READ_BUFFER_BYTES);
    while let Some(in_flight) = receiver.recv().await {
        let outcome = in_flight.response.answer().await;
        let name = protocol::api_name(in_flight.api_key);
        if let Some(response) = outcome? {
            out.clear();
            protocol::encode_response(
                in_flight.api_key,
                in_flight.api_version,
                in_flight.correlation_id,
                &response,
                &mut out,
            )?;
            writer.write_all(&out).await?;
            state.metrics.add_bytes_out(out.len());
            if out.capacity() > READ_BUFFER_RETAINED_BYTES_MAX {
                out = BytesMut::with_capacity(READ_BUFFER_BYTES);
            }
        }
        state
            .metrics
            .record_request(name, in_flight.started.elapsed().as_secs_f64());
    }
    writer.shutdown().await?;
    Ok(())
}
