//! The optional admin HTTP listener (`kairos.metrics.listener`): `GET /metrics` in Prometheus
//! text format, 404 for anything else. A deliberately tiny HTTP/1.1 responder (one request per
//! connection, headers capped at 8 KiB) so the broker needs no web framework.

use std::sync::Arc;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use super::Shutdown;
use crate::broker::BrokerState;

/// Longest a metrics request may take from accept to the end of the response.
const REQUEST_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

/// Largest request head read before answering.
const REQUEST_HEAD_BYTES_MAX: usize = 8 * 1024;

/// Serves until shutdown.
pub async fn run(listener: TcpListener, state: Arc<BrokerState>, mut shutdown: Shutdown) {
    loop {
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            () = shutdown.recv() => return,
        };
        if let Ok((stream, _peer)) = accepted {
            let state = Arc::clone(&state);
            drop(tokio::spawn(async move {
                // A client that never finishes its request must not hold a task forever.
                match tokio::time::timeout(REQUEST_TIMEOUT, serve(stream, &state)).await {
                    Ok(Ok(())) => {}
                    Ok(Err(error)) => tracing::debug!(%error, "metrics request failed"),
                    Err(_elapsed) => tracing::debug!("metrics request timed out"),
                }
            }));
        }
    }
}

async fn serve(mut stream: TcpStream, state: &BrokerState) -> std::io::Result<()> {
    let mut head = Vec::with_capacity(1024);
    let mut chunk = [0_u8; 1024];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") && head.len() < REQUEST_HEAD_BYTES_MAX {
        let read = stream.read(&mut chunk).await?;
        if read == 0 {
            break;
        }
        head.extend_from_slice(chunk.get(..read).unwrap_or_default());
    }
    let request_line = head.split(|&b| b == b'\r').next().unwrap_or_default();
    let (status, body) = if request_line.starts_with(b"GET /metrics ") {
        ("200 OK", state.render_metrics())
    } else {
        ("404 Not Found", "not found\n".to_owned())
    };
    let response = format!(
        "HTTP/1.1 {status}\r\nContent-Type: text/plain; version=0.0.4; charset=utf-8\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(response.as_bytes()).await?;
    stream.shutdown().await
}
