//! What the gateway's BLE tests share: the private bus, and a consumer of the supervisor that
//! accepts every measurement, records every report, and resumes glucose catch-ups after the
//! last sequence number it accepted, as the store does.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use relais::ble::session::{Delivery, Event, Plan};
use relais::ble::supervisor::{self, Config, Ended, Report, Status};
use relais::ble::{Central, Seen};
use relais::payload::Payload;
use relais_bluez_sim::DbusDaemon;
use tokio::sync::{Notify, mpsc};

/// Points btleplug (libdbus) and zbus at the private bus.
#[allow(unsafe_code)]
pub fn use_bus(bus: &DbusDaemon) {
    // SAFETY: set before libdbus first reads it; one test per process, no other thread reads it.
    unsafe { std::env::set_var("DBUS_SYSTEM_BUS_ADDRESS", bus.address()) };
}

/// Starts the private bus, or fails the test: these tests must not skip.
pub fn bus() -> DbusDaemon {
    let bus = DbusDaemon::start().expect("dbus-daemon (Debian package `dbus`) must be installed");
    use_bus(&bus);
    bus
}

/// Everything the supervisor reported, in order.
#[derive(Debug, Default)]
pub struct Watched {
    pub deliveries: Vec<Delivery>,
    pub live: Vec<(String, Payload)>,
    pub skipped: Vec<(String, u16, String)>,
    /// Glucose catch-ups announced: address, records expected.
    pub catch_ups: Vec<(String, u16)>,
    pub statuses: Vec<Status>,
}

impl Watched {
    /// The deliveries from `address`.
    pub fn from(&self, address: &str) -> Vec<&Delivery> {
        self.deliveries
            .iter()
            .filter(|d| d.device.address == address)
            .collect()
    }

    /// How the sessions on `address` ended, in order.
    pub fn ended(&self, address: &str) -> Vec<&Ended> {
        self.statuses
            .iter()
            .filter_map(|s| match s {
                Status::Ended {
                    address: a, result, ..
                } if a == address => Some(result),
                _ => None,
            })
            .collect()
    }

    /// Sessions on `address` that went through.
    pub fn done(&self, address: &str) -> usize {
        self.ended(address)
            .iter()
            .filter(|e| matches!(e, Ended::Done(_)))
            .count()
    }
}

/// A supervisor configuration for tests: quick retries, quick ticks.
pub fn quick() -> Config {
    Config {
        backoff: supervisor::Backoff {
            initial: Duration::from_millis(300),
            max: Duration::from_secs(2),
        },
        tick: Duration::from_millis(100),
        scan_retry: Duration::from_millis(500),
        ..Config::default()
    }
}

/// A plan for tests: UTC, short waits.
pub fn plan() -> Plan {
    let mut plan = Plan::new(jiff::tz::TimeZone::UTC);
    plan.linger = Duration::from_secs(1);
    plan.halves_wait = Duration::from_millis(500);
    plan.glucose_idle = Duration::from_secs(3);
    plan
}

/// Runs the supervisor until `done` says so (then lets the sessions under way finish) or
/// `limit` passes, accepting every measurement.
pub async fn watch(
    config: Config,
    plan_for: impl Fn(&Seen) -> Option<Plan> + Send + Sync + 'static,
    limit: Duration,
    mut done: impl FnMut(&Watched) -> bool,
) -> Watched {
    let central = Arc::new(Central::first_adapter().await.unwrap());
    let last_sequence: Arc<Mutex<HashMap<String, u16>>> = Arc::default();
    let planner = {
        let last_sequence = Arc::clone(&last_sequence);
        move |seen: &Seen| {
            let mut plan = plan_for(seen)?;
            plan.last_glucose_sequence = last_sequence.lock().unwrap().get(&seen.address).copied();
            Some(plan)
        }
    };
    let (reports, mut received) = mpsc::channel(256);
    let stop = Arc::new(Notify::new());
    let stopped = {
        let stop = Arc::clone(&stop);
        async move { stop.notified().await }
    };
    let supervisor = tokio::spawn(supervisor::run(
        central,
        config,
        Arc::new(planner),
        reports,
        stopped,
    ));
    let mut watched = Watched::default();
    let deadline = tokio::time::Instant::now() + limit;
    let mut stopping = false;
    loop {
        let report = if stopping {
            received.recv().await
        } else {
            match tokio::time::timeout_at(deadline, received.recv()).await {
                Ok(report) => report,
                Err(_) => {
                    stop.notify_one();
                    stopping = true;
                    continue;
                }
            }
        };
        let Some(report) = report else { break };
        match report {
            Report::Session(Event::Measurement { delivery, accepted }) => {
                if let Some(sequence) = delivery.readings.iter().find_map(|r| r.sequence_number) {
                    last_sequence
                        .lock()
                        .unwrap()
                        .insert(delivery.device.address.clone(), sequence);
                }
                watched.deliveries.push(*delivery);
                let _ = accepted.send(true);
            }
            Report::Session(Event::Live { address, payload }) => {
                watched.live.push((address, payload));
            }
            Report::Session(Event::Skipped {
                address,
                characteristic,
                reason,
            }) => watched.skipped.push((address, characteristic, reason)),
            Report::Session(Event::CatchUp { address, expected }) => {
                watched.catch_ups.push((address, expected));
            }
            Report::Status(status) => watched.statuses.push(status),
        }
        if !stopping && done(&watched) {
            stop.notify_one();
            stopping = true;
        }
    }
    supervisor.await.unwrap().unwrap();
    watched
}
