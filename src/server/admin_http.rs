//! The optional admin HTTP listener (`kairos.metrics.listener`): `GET /metrics` in Prometheus
//! text format, `GET /due?topic=<topic>&limit=<n>` with the next due entities of a temporal
//! topic as JSON, 404 for anything else. A deliberately tiny HTTP/1.1 responder (one request per
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
    let text = "text/plain; version=0.0.4; charset=utf-8";
    let (status, content_type, body) = if request_line.starts_with(b"GET /metrics ") {
        ("200 OK", text, state.render_metrics())
    } else if let Some(query) = request_line
        .strip_prefix(b"GET /due?")
        .and_then(|rest| rest.split(|&b| b == b' ').next())
    {
        due_listing(state, &String::from_utf8_lossy(query))
    } else {
        ("404 Not Found", text, "not found\n".to_owned())
    };
    let response = format!(
        "HTTP/1.1 {status}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(response.as_bytes()).await?;
    stream.shutdown().await
}

/// Most entities one listing returns.
const DUE_LIMIT_MAX: usize = 1_000;

/// `topic=<name>&limit=<n>` → the next due entities as a JSON array. Topic names are limited to
/// `[a-zA-Z0-9._-]`, so the query needs no percent-decoding.
fn due_listing(state: &BrokerState, query: &str) -> (&'static str, &'static str, String) {
    let json = "application/json";
    let mut topic = None;
    let mut limit = 10;
    for pair in query.split('&') {
        match pair.split_once('=') {
            Some(("topic", value)) => topic = Some(value),
            Some(("limit", value)) => match value.parse::<usize>() {
                Ok(n) => limit = n.min(DUE_LIMIT_MAX),
                Err(_) => {
                    return (
                        "400 Bad Request",
                        json,
                        r#"{"error":"limit must be a number"}"#.to_owned(),
                    );
                }
            },
            _ => {}
        }
    }
    let Some(topic) = topic else {
        return (
            "400 Bad Request",
            json,
            r#"{"error":"topic is required"}"#.to_owned(),
        );
    };
    let listing = state.due.next_due(topic, limit);
    (
        "200 OK",
        json,
        serde_json::to_string(&listing).unwrap_or_else(|_| "[]".to_owned()),
    )
}
