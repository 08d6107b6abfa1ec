//! The hub's sense of time for retries: the system clock, or a virtual one whose sleeps
//! return at once having moved time forward, so a day of outage runs in seconds in a test.

use std::fmt::Debug;
use std::sync::Mutex;
use std::time::Duration;

use futures::future::BoxFuture;
use jiff::{SignedDuration, Timestamp};

/// Now, and waiting.
pub trait Clock: Send + Sync + Debug {
    /// The current time.
    fn now(&self) -> Timestamp;
    /// Waits `duration`.
    fn sleep(&self, duration: Duration) -> BoxFuture<'static, ()>;
}

/// The system clock and tokio's timers.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> Timestamp {
        Timestamp::now()
    }

    fn sleep(&self, duration: Duration) -> BoxFuture<'static, ()> {
        Box::pin(tokio::time::sleep(duration))
    }
}

/// A clock that moves only when slept on (each sleep advances it and yields to other tasks).
#[derive(Debug)]
pub struct VirtualClock {
    now: Mutex<Timestamp>,
}

impl VirtualClock {
    /// A virtual clock starting at `start`.
    pub fn starting_at(start: Timestamp) -> Self {
        Self {
            now: Mutex::new(start),
        }
    }

    /// Moves time forward by `by`.
    pub fn advance(&self, by: Duration) {
        if let Ok(mut now) = self.now.lock() {
            let by = SignedDuration::try_from(by).unwrap_or(SignedDuration::MAX);
            *now = now.checked_add(by).unwrap_or(Timestamp::MAX);
        }
    }
}

impl Clock for VirtualClock {
    fn now(&self) -> Timestamp {
        self.now.lock().map_or_else(|p| *p.into_inner(), |now| *now)
    }

    fn sleep(&self, duration: Duration) -> BoxFuture<'static, ()> {
        self.advance(duration);
        Box::pin(tokio::task::yield_now())
    }
}
