//! The shutdown signal every task listens to (mini-redis's `Shutdown` shape over a `watch`).

use tokio::sync::watch;

/// A listener for the broker-wide shutdown signal.
#[derive(Debug, Clone)]
pub struct Shutdown {
    receiver: watch::Receiver<bool>,
}

impl Shutdown {
    /// Wraps the receiving side of the broker's shutdown channel.
    #[must_use]
    pub fn new(receiver: watch::Receiver<bool>) -> Shutdown {
        Shutdown { receiver }
    }

    /// Whether shutdown has been signalled.
    #[must_use]
    pub fn is_shutdown(&self) -> bool {
        *self.receiver.borrow()
    }

    /// Waits until shutdown is signalled (or the sender is gone, which means the same).
    pub async fn recv(&mut self) {
        let _ = self.receiver.wait_for(|stop| *stop).await;
    }
}
