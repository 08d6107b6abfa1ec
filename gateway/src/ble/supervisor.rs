//! The hub's watch over its devices: a continuous scan filtered on the health services, a
//! session for each device that shows up (one at a time per device), reconnection with
//! exponential backoff and jitter after a failure, a rest after a success, and the
//! measurements of advertisement-only scales, deduplicated.
//!
//! What the hub knows of each device (which to serve, its last stored glucose sequence
//! number) comes from a [`Planner`] asked before every session: the consumer that stores the
//! measurements is the one that knows how far each device got.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use btleplug::api::{Central as _, CentralEvent, CentralState, Peripheral as _};
use futures::StreamExt;
use jiff::Timestamp;
use relais_protocol::Quirks;
use serde::Serialize;
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinSet;
use tokio::time::Instant;

use crate::ble::central::{Central, Seen, short_uuid};
use crate::ble::device::{Identity, Timeouts};
use crate::ble::error::BleError;
use crate::ble::kind::DeviceKind;
use crate::ble::session::{self, Delivery, Event, Outcome, Plan};
use crate::payload::{Payload, Record};

/// Decides, before each session, whether and how to serve a device.
pub trait Planner: Send + Sync {
    /// The plan for `seen`, or `None` to leave it alone.
    fn plan(&self, seen: &Seen) -> Option<Plan>;
}

impl<F: Fn(&Seen) -> Option<Plan> + Send + Sync> Planner for F {
    fn plan(&self, seen: &Seen) -> Option<Plan> {
        self(seen)
    }
}

/// Retry delays after failed sessions: `initial`, doubled per failure up to `max`, each with
/// up to a quarter of random jitter so devices that failed together do not retry together.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backoff {
    /// After the first failure.
    pub initial: Duration,
    /// The longest delay.
    pub max: Duration,
}

impl Backoff {
    /// The delay after `failures` consecutive failures (at least one), without jitter.
    pub fn delay(&self, failures: u32) -> Duration {
        let doublings = failures.saturating_sub(1).min(20);
        self.initial.saturating_mul(1u32 << doublings).min(self.max)
    }

    /// [`Self::delay`] plus up to 25 % jitter.
    fn jittered(&self, failures: u32) -> Duration {
        let delay = self.delay(failures);
        let jitter = delay.mul_f64(rand_fraction() * 0.25);
        delay.saturating_add(jitter)
    }
}

/// A fraction in [0, 1) from the clock's nanoseconds: jitter needs no better randomness.
fn rand_fraction() -> f64 {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    f64::from(nanos % 1_000_000) / 1_000_000.0
}

/// How the supervisor works.
#[derive(Debug, Clone)]
pub struct Config {
    /// Connection and GATT operation limits.
    pub timeouts: Timeouts,
    /// Retry delays after failures.
    pub backoff: Backoff,
    /// How long a device is left alone after a successful session.
    pub rest: Duration,
    /// How long an advertised measurement is remembered, so its repetitions are dropped.
    pub advert_memory: Duration,
    /// How often devices waiting for their retry are looked at again.
    pub tick: Duration,
    /// How often a scan that could not start (adapter off) is tried again.
    pub scan_retry: Duration,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            timeouts: Timeouts::default(),
            backoff: Backoff {
                initial: Duration::from_secs(2),
                max: Duration::from_secs(300),
            },
            rest: Duration::from_secs(60),
            advert_memory: Duration::from_secs(24 * 3600),
            tick: Duration::from_secs(1),
            scan_retry: Duration::from_secs(2),
        }
    }
}

/// What the supervisor reports besides the sessions' own events.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum Status {
    /// A health device was seen, or changed (name, bond, kind).
    Seen(Seen),
    /// A session started on a connected device.
    Connected {
        /// Who.
        device: Identity,
        /// What it is.
        kind: DeviceKind,
    },
    /// A session ended.
    Ended {
        /// The device's address.
        address: String,
        /// How it went: the outcome, or the error in words.
        #[serde(flatten)]
        result: Ended,
        /// When the device will be served again.
        retry_in_ms: u64,
    },
    /// The adapter was switched off or on.
    Adapter {
        /// Powered.
        powered: bool,
    },
}

/// How a session ended.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Ended {
    /// It went through.
    Done(Outcome),
    /// It failed.
    Failed(String),
}

/// What the supervisor hands its consumer: session events and its own statuses.
#[derive(Debug)]
pub enum Report {
    /// From a session.
    Session(Event),
    /// From the supervisor.
    Status(Status),
}

/// What the rest of the hub may ask of a running supervisor.
#[derive(Debug)]
pub enum Command {
    /// The health devices it knows now.
    Known(oneshot::Sender<Vec<Seen>>),
    /// Serve a device now, whatever its backoff or rest.
    SyncNow {
        /// The device's address.
        address: String,
        /// What was done.
        reply: oneshot::Sender<SyncNow>,
    },
    /// Forget a device BlueZ no longer knows (unpaired): its state and backoff.
    Forget {
        /// The device's address.
        address: String,
    },
    /// A bond was made or removed (BlueZ tells no event for it): reported as a change.
    Bonded {
        /// The device's address.
        address: String,
        /// Paired now.
        paired: bool,
    },
}

/// The answer to [`Command::SyncNow`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum SyncNow {
    /// Its session starts now.
    Started,
    /// A session is already under way.
    AlreadyRunning,
    /// Never seen (or forgotten).
    Unknown,
    /// A scale that only advertises: its readings arrive by themselves.
    AdvertisesOnly,
    /// The planner leaves it alone (not in `ble.only`, or its progress is unreadable).
    NotServed,
}

#[derive(Debug, Default)]
struct DeviceState {
    failures: u32,
    next_attempt: Option<Instant>,
    last_seen: Option<Seen>,
}

/// Watches for devices until `stop` resolves; the consumer gets every [`Report`] on `reports`.
/// Returns once the sessions under way have ended.
pub async fn run(
    central: Arc<Central>,
    config: Config,
    planner: Arc<dyn Planner>,
    reports: mpsc::Sender<Report>,
    stop: impl Future<Output = ()>,
) -> Result<(), BleError> {
    let (_nobody, commands) = mpsc::channel(1);
    run_with_commands(central, config, planner, reports, commands, stop).await
}

/// [`run`], also answering the [`Command`]s received on `commands`.
pub async fn run_with_commands(
    central: Arc<Central>,
    config: Config,
    planner: Arc<dyn Planner>,
    reports: mpsc::Sender<Report>,
    mut commands: mpsc::Receiver<Command>,
    stop: impl Future<Output = ()>,
) -> Result<(), BleError> {
    let mut commands_open = true;
    let adapter = central.adapter().clone();
    let mut events = adapter.events().await?;
    let mut scanning = start_scan(&central).await;
    let mut next_scan_try = Instant::now() + config.scan_retry;
    let mut devices: HashMap<String, DeviceState> = HashMap::new();
    let mut running: HashSet<String> = HashSet::new();
    let mut sessions: JoinSet<(String, Result<Outcome, BleError>)> = JoinSet::new();
    let mut adverts = AdvertMemory::new(config.advert_memory);
    let mut tick = tokio::time::interval(config.tick);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    tokio::pin!(stop);

    // Devices BlueZ already knows are looked at once, before any event.
    for peripheral in adapter.peripherals().await? {
        if let Some(seen) = central.describe(&peripheral).await {
            note(&mut devices, &seen, &reports).await;
        }
    }
    loop {
        // An adapter that was off may be back: the scan powers it when rfkill allows.
        if !scanning && Instant::now() >= next_scan_try {
            scanning = start_scan(&central).await;
            next_scan_try = Instant::now() + config.scan_retry;
        }
        // Start what is due: known devices whose wait is over.
        let due: Vec<Seen> = devices
            .values()
            .filter(|d| d.next_attempt.is_none_or(|t| t <= Instant::now()))
            .filter_map(|d| d.last_seen.clone())
            .filter(|s| !running.contains(&s.address) && !s.advertises_measurements)
            .collect();
        for seen in due {
            let Some(plan) = planner.plan(&seen) else {
                continue;
            };
            running.insert(seen.address.clone());
            sessions.spawn(serve(
                Arc::clone(&central),
                seen.address.clone(),
                seen.kind,
                config.timeouts,
                plan,
                reports.clone(),
            ));
        }

        tokio::select! {
            () = &mut stop => break,
            _ = tick.tick() => {}
            command = commands.recv(), if commands_open => match command {
                Some(command) => {
                    if let Some(changed) = obey(command, &mut devices, &running, planner.as_ref()) {
                        send(&reports, Report::Status(Status::Seen(changed))).await;
                    }
                }
                None => commands_open = false,
            },
            event = events.next() => {
                let Some(event) = event else { break };
                match event {
                    CentralEvent::DeviceDiscovered(id) | CentralEvent::DeviceUpdated(id) => {
                        if let Ok(peripheral) = adapter.peripheral(&id).await
                            && let Some(seen) = central.describe(&peripheral).await {
                            note(&mut devices, &seen, &reports).await;
                        }
                    }
                    CentralEvent::ServiceDataAdvertisement { id, service_data } => {
                        let Ok(peripheral) = adapter.peripheral(&id).await else { continue };
                        let address = peripheral.address().to_string();
                        for (uuid, bytes) in service_data {
                            let Some(short) = short_uuid(&uuid) else { continue };
                            if let Some(delivery) = adverts.measurement(&address, short, bytes) {
                                deliver_advertised(delivery, &reports).await;
                            }
                        }
                    }
                    CentralEvent::StateUpdate(state) => {
                        let powered = state == CentralState::PoweredOn;
                        send(&reports, Report::Status(Status::Adapter { powered })).await;
                        // Discovery stops with the adapter and is started again with it.
                        if !powered {
                            scanning = false;
                        } else if !scanning {
                            scanning = start_scan(&central).await;
                        }
                    }
                    _ => {}
                }
            }
            Some(joined) = sessions.join_next(), if !sessions.is_empty() => {
                let Ok((address, result)) = joined else { continue };
                running.remove(&address);
                let state = devices.entry(address.clone()).or_default();
                let (ended, wait) = match result {
                    Ok(outcome) => {
                        state.failures = 0;
                        (Ended::Done(outcome), config.rest)
                    }
                    Err(e) => {
                        state.failures = state.failures.saturating_add(1);
                        tracing::warn!(%address, failures = state.failures, "session failed: {e}");
                        (Ended::Failed(e.to_string()), config.backoff.jittered(state.failures))
                    }
                };
                state.next_attempt = Some(Instant::now() + wait);
                let retry_in_ms = u64::try_from(wait.as_millis()).unwrap_or(u64::MAX);
                send(&reports, Report::Status(Status::Ended { address, result: ended, retry_in_ms })).await;
            }
        }
    }
    if let Err(e) = adapter.stop_scan().await {
        tracing::debug!("stopping the scan: {e}");
    }
    // Sessions under way finish what they handed over; none is cut mid-transfer.
    while let Some(joined) = sessions.join_next().await {
        if let Ok((address, Err(e))) = joined {
            tracing::warn!(%address, "session failed while stopping: {e}");
        }
    }
    Ok(())
}

/// Answers a command; a session asked for starts at the top of the next loop. Returns a
/// device whose description changed, to report.
fn obey(
    command: Command,
    devices: &mut HashMap<String, DeviceState>,
    running: &HashSet<String>,
    planner: &dyn Planner,
) -> Option<Seen> {
    match command {
        Command::Known(reply) => {
            let known = devices
                .values()
                .filter_map(|d| d.last_seen.clone())
                .collect();
            let _ = reply.send(known);
        }
        Command::SyncNow { address, reply } => {
            let key = devices
                .keys()
                .find(|a| a.eq_ignore_ascii_case(&address))
                .cloned();
            let state = key.and_then(|k| devices.get_mut(&k));
            let answer = match state {
                None => SyncNow::Unknown,
                Some(state) => match &state.last_seen {
                    None => SyncNow::Unknown,
                    Some(seen) if seen.advertises_measurements => SyncNow::AdvertisesOnly,
                    Some(seen) if running.contains(&seen.address) => SyncNow::AlreadyRunning,
                    Some(seen) if planner.plan(seen).is_none() => SyncNow::NotServed,
                    Some(_) => {
                        state.next_attempt = None;
                        state.failures = 0;
                        SyncNow::Started
                    }
                },
            };
            let _ = reply.send(answer);
        }
        Command::Forget { address } => {
            devices.retain(|a, _| !a.eq_ignore_ascii_case(&address));
        }
        Command::Bonded { address, paired } => {
            let seen = devices
                .iter_mut()
                .find(|(a, _)| a.eq_ignore_ascii_case(&address))
                .and_then(|(_, state)| state.last_seen.as_mut())?;
            if seen.paired != Some(paired) {
                seen.paired = Some(paired);
                return Some(seen.clone());
            }
        }
    }
    None
}

/// Starts discovery; `false` (logged) when the adapter refuses, to be tried again.
async fn start_scan(central: &Central) -> bool {
    match central.adapter().start_scan(Central::health_filter()).await {
        Ok(()) => true,
        Err(e) => {
            tracing::warn!("starting the scan failed (adapter off?): {e}");
            false
        }
    }
}

async fn send(reports: &mpsc::Sender<Report>, report: Report) {
    if reports.send(report).await.is_err() {
        tracing::debug!("nobody listens to the supervisor's reports");
    }
}

/// Remembers a device; reports it when it is new or changed (RSSI alone is not a change).
async fn note(
    devices: &mut HashMap<String, DeviceState>,
    seen: &Seen,
    reports: &mpsc::Sender<Report>,
) {
    let state = devices.entry(seen.address.clone()).or_default();
    let changed = state.last_seen.as_ref().is_none_or(|last| {
        Seen {
            rssi: seen.rssi,
            ..last.clone()
        } != *seen
    });
    state.last_seen = Some(seen.clone());
    if changed {
        send(reports, Report::Status(Status::Seen(seen.clone()))).await;
    }
}

/// One session on `address`: connect, run, release.
async fn serve(
    central: Arc<Central>,
    address: String,
    kind: DeviceKind,
    timeouts: Timeouts,
    plan: Plan,
    reports: mpsc::Sender<Report>,
) -> (String, Result<Outcome, BleError>) {
    let result = async {
        let device = central.connect(&address, timeouts).await?;
        send(
            &reports,
            Report::Status(Status::Connected {
                device: device.identity().clone(),
                kind,
            }),
        )
        .await;
        let (events, mut received) = mpsc::channel(64);
        let forward = {
            let reports = reports.clone();
            async move {
                while let Some(event) = received.recv().await {
                    send(&reports, Report::Session(event)).await;
                }
            }
        };
        let session = async move {
            let outcome = session::run(&device, kind, &plan, &events).await;
            drop(events);
            if let Err(e) = device.disconnect().await {
                tracing::debug!("releasing the device: {e}");
            }
            outcome
        };
        let (outcome, ()) = tokio::join!(session, forward);
        outcome
    }
    .await;
    (address, result)
}

/// Deduplicates the measurements advertisement-only scales repeat in every advertisement.
#[derive(Debug)]
struct AdvertMemory {
    remember: Duration,
    /// (address, readings as JSON) -> when first seen.
    seen: HashMap<(String, String), Instant>,
}

impl AdvertMemory {
    fn new(remember: Duration) -> Self {
        Self {
            remember,
            seen: HashMap::new(),
        }
    }

    /// A delivery for a new advertised measurement; `None` for repetitions, values that are
    /// not measurements, and weighings still settling.
    fn measurement(&mut self, address: &str, service: u16, bytes: Vec<u8>) -> Option<Delivery> {
        let record = Record::single(Payload::service_data(service, bytes));
        let readings = record.readings(Quirks::NONE).ok()?;
        if readings.is_empty() {
            return None;
        }
        // The same weighing is advertised over and over, its control byte changing as the
        // impedance comes: what it measured identifies it, not its bytes.
        let key = (address.to_owned(), serde_json::to_string(&readings).ok()?);
        let now = Instant::now();
        self.seen
            .retain(|_, first| now.duration_since(*first) < self.remember);
        if self.seen.contains_key(&key) {
            return None;
        }
        self.seen.insert(key, now);
        // An advertising scale has no Device Information: its format says what it is.
        let model = match service {
            relais_protocol::xiaomi::MiBodyCompositionScale::SERVICE_UUID => {
                "Mi Body Composition Scale 2"
            }
            _ => "Mi Smart Scale",
        };
        Some(Delivery {
            device: Identity {
                address: address.to_owned(),
                manufacturer: Some("Xiaomi".to_owned()),
                model: Some(model.to_owned()),
                ..Identity::default()
            },
            kind: DeviceKind::WeightScale,
            record,
            quirks: Quirks::NONE,
            readings,
            received_at: Timestamp::now(),
            clock_skew: None,
        })
    }
}

/// Hands an advertised measurement over. Nothing can be told to the device, so the acceptance
/// is only logged.
async fn deliver_advertised(delivery: Delivery, reports: &mpsc::Sender<Report>) {
    let (accepted, answer) = oneshot::channel();
    let address = delivery.device.address.clone();
    send(
        reports,
        Report::Session(Event::Measurement {
            delivery: Box::new(delivery),
            accepted,
        }),
    )
    .await;
    tokio::spawn(async move {
        if !matches!(answer.await, Ok(true)) {
            tracing::warn!(%address, "an advertised measurement was not accepted");
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_up_to_its_ceiling() {
        let b = Backoff {
            initial: Duration::from_secs(2),
            max: Duration::from_secs(60),
        };
        let delays: Vec<u64> = (1..=7).map(|f| b.delay(f).as_secs()).collect();
        assert_eq!(delays, [2, 4, 8, 16, 32, 60, 60]);
        assert_eq!(b.delay(u32::MAX), Duration::from_secs(60));
        for failures in 1..=7 {
            let j = b.jittered(failures);
            assert!(j >= b.delay(failures) && j <= b.delay(failures).mul_f64(1.25));
        }
    }

    #[test]
    fn an_advertised_weighing_is_delivered_once() {
        let mut memory = AdvertMemory::new(Duration::from_secs(60));
        // Mi Smart Scale: stabilized (0x20), 72.00 kg (14400 x 5 g), 2024-03-05 08:30:15.
        let stable = vec![0x20, 0x40, 0x38, 0xE8, 0x07, 0x03, 0x05, 0x08, 0x1E, 0x0F];
        let first = memory.measurement("AA:BB:CC:DD:EE:FF", 0x181D, stable.clone());
        assert!(first.is_some());
        assert!(
            memory
                .measurement("AA:BB:CC:DD:EE:FF", 0x181D, stable.clone())
                .is_none()
        );
        // The same weighing from another scale is another measurement.
        assert!(
            memory
                .measurement("AA:BB:CC:DD:EE:00", 0x181D, stable)
                .is_some()
        );
        // Garbage is no measurement.
        assert!(
            memory
                .measurement("AA:BB:CC:DD:EE:FF", 0x181D, vec![1])
                .is_none()
        );
    }
}
