//! The emulated radio link's pace and what it emitted: how many notifications and indications a
//! connection carries per connection event, and a log of each one's emission on the bus.

use std::time::{Duration, Instant};

/// How fast a link carries queued notifications and indications.
///
/// A firmware sends a few notifications per main-loop call (as its transmit buffers allow), and
/// a real board calls it again as soon as buffers free up. The simulator ticks every 5 ms and,
/// within a tick, polls a device again while it keeps sending and the link still has room: up
/// to `packets_per_event` per `connection_interval`, averaged over ticks. A device is polled at
/// least once per tick whatever the budget (its main loop must run).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LinkTiming {
    /// Time between connection events (BLE: 7.5 ms to 4 s, in 1.25 ms steps).
    pub connection_interval: Duration,
    /// Link-layer packets (one notification or indication each) per connection event.
    pub packets_per_event: u32,
}

impl LinkTiming {
    /// A short-interval link as a central asks for during a bulk transfer: 7.5 ms, 12 packets
    /// per event (2M PHY, event length extension: a ~25-byte PDU with its empty ack and
    /// inter-frame spaces takes about 0.5 ms). The default.
    pub const FAST: Self = Self {
        connection_interval: Duration::from_micros(7_500),
        packets_per_event: 12,
    };

    /// One firmware call per tick, as the simulator did before links were paced (4
    /// notifications per 5 ms from the glucose meter).
    pub const ONE_CALL_PER_TICK: Self = Self {
        connection_interval: Duration::from_millis(5),
        packets_per_event: 0,
    };

    /// No link-layer limit: a device is polled until it stops sending (what bounds it then is
    /// the bus and the client).
    pub const UNLIMITED: Self = Self {
        connection_interval: Duration::from_micros(7_500),
        packets_per_event: u32::MAX,
    };
}

impl Default for LinkTiming {
    fn default() -> Self {
        Self::FAST
    }
}

/// Most polls of one device in one tick, so a device that never stops sending cannot hold the
/// simulator.
pub(crate) const MAX_POLLS_PER_TICK: u32 = 256;

/// A connection's packet budget: refilled per connection event, spent per packet sent.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Budget {
    /// Packets the link can still carry (negative: a firmware call overshot it).
    packets: i64,
    /// Simulator microseconds the budget was last refilled for (a whole number of events).
    refilled_us: u64,
}

impl Budget {
    /// A fresh link at `now_us`: one event's worth.
    pub(crate) fn new(timing: LinkTiming, now_us: u64) -> Self {
        Self {
            packets: i64::from(timing.packets_per_event),
            refilled_us: now_us,
        }
    }

    /// Adds the events elapsed since the last refill; at most two events' worth is banked, as
    /// an idle link's events carry nothing.
    pub(crate) fn refill(&mut self, timing: LinkTiming, now_us: u64) {
        let interval_us = u64::try_from(timing.connection_interval.as_micros())
            .unwrap_or(u64::MAX)
            .max(1);
        let events = now_us.saturating_sub(self.refilled_us) / interval_us;
        if events == 0 {
            return;
        }
        self.refilled_us = self
            .refilled_us
            .saturating_add(events.saturating_mul(interval_us));
        let per_event = i64::from(timing.packets_per_event);
        let gained = i64::try_from(events)
            .unwrap_or(i64::MAX)
            .saturating_mul(per_event);
        self.packets = self
            .packets
            .saturating_add(gained)
            .min(per_event.saturating_mul(2));
    }

    pub(crate) fn spend(&mut self) {
        self.packets = self.packets.saturating_sub(1);
    }

    pub(crate) fn packets(&self) -> i64 {
        self.packets
    }
}

/// A notification or indication as it was emitted on the bus (PropertiesChanged(Value) of a
/// subscribed characteristic), for latency measurements: compare `at` with when the client
/// received it. Lost notifications are not emitted; delayed ones are logged when emitted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Emission {
    /// The device's address, as advertised (`AA:BB:CC:DD:EE:FF`).
    pub address: String,
    /// The characteristic's 16-bit SIG UUID (0 for a vendor UUID: see `uuid`).
    pub characteristic: u16,
    /// The characteristic's UUID, 128-bit lower case as BlueZ spells it.
    pub uuid: String,
    /// An indication (else a notification).
    pub indication: bool,
    /// The value's length in bytes.
    pub len: usize,
    /// When the signal was handed to the bus connection.
    pub at: Instant,
}

/// Emissions kept for a receiver that lags; older ones are dropped for it (it sees `Lagged`).
pub(crate) const EMISSION_BACKLOG: usize = 8192;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_budget_refills_per_event_and_banks_at_most_two() {
        let timing = LinkTiming::FAST;
        let mut b = Budget::new(timing, 0);
        assert_eq!(b.packets(), 12);
        for _ in 0..12 {
            b.spend();
        }
        b.refill(timing, 5_000);
        assert_eq!(b.packets(), 0, "no event yet");
        b.refill(timing, 10_000);
        assert_eq!(b.packets(), 12, "one event at 7.5 ms");
        b.refill(timing, 1_000_000);
        assert_eq!(b.packets(), 24, "an idle link banks two events");
    }

    #[test]
    fn unlimited_does_not_overflow() {
        let mut b = Budget::new(LinkTiming::UNLIMITED, 0);
        b.refill(LinkTiming::UNLIMITED, u64::MAX);
        assert!(b.packets() > 1_000_000);
    }
}
