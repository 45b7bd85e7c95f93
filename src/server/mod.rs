//! The Kafka listener: accept loop, connection cap, graceful shutdown.
//!
//! Start at [`run`], then `connection.rs` (framing, pipelining, in-order responses), then
//! `crate::protocol` (decode and dispatch).

pub mod admin_http;
pub mod connection;
pub mod shutdown;

use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::sync::{Semaphore, mpsc};

use crate::broker::BrokerState;
pub use shutdown::Shutdown;

/// Pause after a failed `accept` (e.g. out of file descriptors) before trying again.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(100);

/// Serves connections until `shutdown` fires, then waits for every connection to finish its
/// in-flight requests.
pub async fn run(listener: TcpListener, state: Arc<BrokerState>, mut shutdown: Shutdown) {
    // A semaphore caps concurrent connections (`max.connections`): at the cap the accept loop
    // stops accepting, so extra clients wait in the kernel's backlog instead of being refused.
    let limit = Arc::new(Semaphore::new(state.config.max_connections()));
    // Each connection task holds a clone of `done_sender`; when all are dropped, `recv` returns
    // None and shutdown can proceed (mini-redis's `shutdown_complete` pattern).
    let (done_sender, mut done_receiver) = mpsc::channel::<()>(1);
    loop {
        let permit = tokio::select! {
            permit = Arc::clone(&limit).acquire_owned() => match permit {
                Ok(permit) => permit,
                Err(_closed) => break,
            },
            () = shutdown.recv() => break,
        };
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            () = shutdown.recv() => break,
        };
        let (stream, peer) = match accepted {
            Ok(accepted) => accepted,
            Err(error) => {
                tracing::warn!(%error, "accept failed");
                tokio::time::sleep(ACCEPT_BACKOFF).await;
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
        let state = Arc::clone(&state);
        let shutdown = shutdown.clone();
        let done = done_sender.clone();
        drop(tokio::spawn(async move {
            tracing::debug!(%peer, "connection opened");
            connection::run(stream, state, shutdown).await;
            tracing::debug!(%peer, "connection closed");
            drop(permit);
            drop(done);
        }));
    }
    drop(listener);
    drop(done_sender);
    let _ = done_receiver.recv().await;
}
