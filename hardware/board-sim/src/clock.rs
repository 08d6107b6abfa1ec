//! Simulated time: a clock that moves when the firmware waits.

use core::cell::Cell;

use embedded_hal::delay::DelayNs;

/// Nanoseconds since the simulation started.
#[derive(Debug, Default)]
pub struct SimClock {
    now_ns: Cell<u64>,
}

impl SimClock {
    pub const fn new() -> Self {
        Self {
            now_ns: Cell::new(0),
        }
    }

    pub fn now_ns(&self) -> u64 {
        self.now_ns.get()
    }

    pub fn now_us(&self) -> u64 {
        self.now_ns.get() / 1_000
    }

    pub fn now_ms(&self) -> u64 {
        self.now_ns.get() / 1_000_000
    }

    pub fn advance_ns(&self, ns: u64) {
        self.now_ns.set(self.now_ns.get().saturating_add(ns));
    }

    pub fn advance_ms(&self, ms: u64) {
        self.advance_ns(ms.saturating_mul(1_000_000));
    }

    /// A delay provider whose waits move this clock.
    pub fn delay(&self) -> SimDelay<'_> {
        SimDelay { clock: self }
    }
}

/// `DelayNs` on simulated time: waiting is instantaneous, the clock jumps.
#[derive(Debug, Clone, Copy)]
pub struct SimDelay<'a> {
    clock: &'a SimClock,
}

impl DelayNs for SimDelay<'_> {
    fn delay_ns(&mut self, ns: u32) {
        self.clock.advance_ns(u64::from(ns));
    }
}
