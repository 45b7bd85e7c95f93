//! Time as an injected input.
//!
//! No code outside this module reads the system clock: the broker asks its [`Clock`] for the
//! wall-clock time (record timestamps, retention, flush deadlines) and uses a [`Stopwatch`] for
//! durations (request latency). Tests and the due index drive a [`ManualClock`] instead, so that
//! "the clock reached `due_at`" is an event a test controls rather than waits for.

use std::fmt::Debug;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// A source of wall-clock time in epoch milliseconds (UTC).
pub trait Clock: Send + Sync + Debug {
    /// Milliseconds since the Unix epoch.
    fn now_ms(&self) -> i64;

    /// A receiver that changes whenever the clock is set or advanced by hand. Clocks that move
    /// by themselves return `None`: waiting for a time is then a plain timer.
    fn changes(&self) -> Option<tokio::sync::watch::Receiver<i64>> {
        None
    }
}

/// The operating system's wall clock.
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now_ms(&self) -> i64 {
        // A clock before 1970 is a misconfigured host; treat it as the epoch rather than fail
        // every request.
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
    }
}

/// A clock that only moves when told to. Cloning shares the same time.
#[derive(Debug, Clone)]
pub struct ManualClock {
    // An atomic rather than a mutex: readers are on every request path and never need to see
    // more than one value consistently.
    now_ms: Arc<AtomicI64>,
    /// Wakes tasks waiting for a time (the due index's pulse) when a test moves the clock.
    changed: Arc<tokio::sync::watch::Sender<i64>>,
}

impl Default for ManualClock {
    fn default() -> Self {
        Self::new(0)
    }
}

impl ManualClock {
    /// A manual clock starting at `now_ms`.
    #[must_use]
    pub fn new(now_ms: i64) -> ManualClock {
        ManualClock {
            now_ms: Arc::new(AtomicI64::new(now_ms)),
            changed: Arc::new(tokio::sync::watch::Sender::new(now_ms)),
        }
    }

    /// Sets the time. Moving backwards is allowed: tests use it to model a wall-clock step.
    pub fn set_ms(&self, now_ms: i64) {
        self.now_ms.store(now_ms, Ordering::SeqCst);
        self.changed.send_replace(now_ms);
    }

    /// Moves the time forward by `delta_ms`.
    pub fn advance_ms(&self, delta_ms: i64) {
        let previous = self.now_ms.fetch_add(delta_ms, Ordering::SeqCst);
        self.changed.send_replace(previous + delta_ms);
    }
}

impl Clock for ManualClock {
    fn now_ms(&self) -> i64 {
        self.now_ms.load(Ordering::SeqCst)
    }

    fn changes(&self) -> Option<tokio::sync::watch::Receiver<i64>> {
        Some(self.changed.subscribe())
    }
}

/// Measures elapsed durations with the monotonic clock (latency metrics, benchmarks).
#[derive(Debug, Clone, Copy)]
pub struct Stopwatch {
    started: Instant,
}

impl Stopwatch {
    /// Starts measuring now.
    #[must_use]
    pub fn start() -> Stopwatch {
        Stopwatch {
            started: Instant::now(),
        }
    }

    /// Time since [`Stopwatch::start`].
    #[must_use]
    pub fn elapsed(&self) -> Duration {
        self.started.elapsed()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn manual_clock_moves_only_when_told() {
        let clock = ManualClock::new(1_000);
        let shared = clock.clone();
        assert_eq!(clock.now_ms(), 1_000);
        shared.advance_ms(500);
        assert_eq!(clock.now_ms(), 1_500);
        clock.set_ms(10);
        assert_eq!(shared.now_ms(), 10);
    }

    #[test]
    fn system_clock_is_after_2020() {
        assert!(SystemClock.now_ms() > 1_577_836_800_000);
    }
}
