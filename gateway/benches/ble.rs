//! End-to-end timings of the gateway's BLE layer through the real btleplug stack against
//! bluez-sim (one private dbus-daemon, one process: libdbus reads the bus address once).
//!
//! 1. A glucose catch-up of 1,000 records with their contexts: wall time of a glucose session
//!    (subscriptions, RACP request, every record handed over and accepted) on a connected,
//!    discovered meter, with every sequence number 0..999 received exactly once, in order.
//!    bluez-sim paces the link as a short-interval BLE link would (`LinkTiming::FAST`: 7.5 ms
//!    connection events of 12 packets); the run is repeated with the pace that only bounds
//!    D-Bus (`LinkTiming::UNLIMITED`) to show what the layer itself costs.
//! 2. Scale indication latency: bluez-sim's emission log stamps each Weight Measurement
//!    indication when it is handed to the bus; the layer's output is the consumer's end of
//!    the session's channel, stamped on receipt. Both `std::time::Instant`.
//!
//! Run: `cargo bench -p relais --bench ble`. Needs `dbus-daemon`.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

use std::time::{Duration, Instant};

use relais::ble::Central;
use relais::ble::DeviceKind;
use relais::ble::device::Timeouts;
use relais::ble::session::{self, Event, Plan};
use relais_bluez_sim::{DbusDaemon, GlucoseMeterSim, LinkTiming, ScaleSim, Simulator, Weighing};
use relais_protocol::{ReadingValue, uuid};

const METER: &str = "C0:FF:EE:00:00:01";
const SCALE: &str = "C0:FF:EE:00:00:05";
const RECORDS: u16 = 1_000;
const CATCH_UP_RUNS: usize = 5;
const WEIGHINGS: usize = 20;
/// Simulated time of the scale runs this many times faster than the wall clock.
const SCALE_SPEED: u64 = 10;
/// One weighing per this many simulated ms (on for `ON_MS`).
const CYCLE_MS: u64 = 12_000;
const ON_MS: u64 = 7_000;

#[allow(unsafe_code)]
fn use_bus(bus: &DbusDaemon) {
    // SAFETY: set before btleplug's libdbus first reads it; no other thread reads it here.
    unsafe { std::env::set_var("DBUS_SYSTEM_BUS_ADDRESS", bus.address()) };
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1_000.0
}

/// Min, median, max and the nearest-rank percentile `p`.
fn summary(values: &[f64], p: f64) -> (f64, f64, f64, f64) {
    let mut v = values.to_vec();
    v.sort_by(f64::total_cmp);
    let n = v.len();
    let median = if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    };
    let rank = ((p / 100.0) * n as f64).ceil().max(1.0) as usize;
    (v[0], median, v[n - 1], v[rank.min(n) - 1])
}

fn main() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(bench());
}

async fn bench() {
    let bus = DbusDaemon::start().expect("dbus-daemon (Debian package `dbus`) must be installed");
    use_bus(&bus);
    let meter = GlucoseMeterSim::with_records(METER, u32::from(RECORDS)).unwrap();
    let sim = Simulator::start(bus.address(), vec![Box::new(meter)])
        .await
        .unwrap();
    let sim_started = Instant::now();
    let central = Central::first_adapter().await.unwrap();
    central.scan(Duration::from_secs(2), |_| {}).await.unwrap();

    for (pace, timing) in [
        ("FAST (7.5 ms events, 12 packets)", LinkTiming::FAST),
        ("UNLIMITED", LinkTiming::UNLIMITED),
    ] {
        sim.control().set_link_timing(timing).await.unwrap();
        catch_up(&central, pace).await;
    }
    sim.control()
        .set_link_timing(LinkTiming::FAST)
        .await
        .unwrap();
    scale_latency(&sim, &central, sim_started).await;
}

async fn catch_up(central: &Central, pace: &str) {
    println!(
        "glucose catch-up, {RECORDS} records with contexts, link {pace}, {CATCH_UP_RUNS} runs"
    );
    let plan = Plan::new(jiff::tz::TimeZone::UTC);
    let mut times = Vec::new();
    for run in 0..CATCH_UP_RUNS {
        let device = central.connect(METER, Timeouts::default()).await.unwrap();
        let mut sequences: Vec<u16> = Vec::with_capacity(usize::from(RECORDS));
        let mut with_context = 0usize;
        let start = Instant::now();
        let outcome = session::run_accepting(
            &device,
            DeviceKind::GlucoseMeter,
            &plan,
            |d| {
                sequences.extend(d.readings.iter().filter_map(|r| r.sequence_number));
                if d.record.payloads.len() == 2 {
                    with_context += 1;
                }
                true
            },
            |_| {},
        )
        .await
        .unwrap();
        let elapsed = start.elapsed();
        assert_eq!(
            sequences,
            (0..RECORDS).collect::<Vec<u16>>(),
            "gap, duplicate or reordering"
        );
        assert_eq!(outcome.last_glucose_sequence, Some(RECORDS - 1));
        assert_eq!(with_context, usize::from(RECORDS));
        println!(
            "  run {}: {:.1} ms, sequences 0..={} exactly once, {with_context} contexts",
            run + 1,
            ms(elapsed),
            RECORDS - 1,
        );
        times.push(ms(elapsed));
        device.disconnect().await.unwrap();
    }
    let (min, median, max, _) = summary(&times, 100.0);
    println!("  min {min:.1} ms, median {median:.1} ms, max {max:.1} ms (target <= 2000 ms)");
}

async fn scale_latency(sim: &Simulator, central: &Central, sim_started: Instant) {
    // The simulator polls the scale with its own clock (since `Simulator::start`): weighings
    // start a few wall seconds after the scale is added.
    let now_sim_ms = (sim_started.elapsed().as_millis() as u64 + 6_000) * SCALE_SPEED;
    let mut scale = ScaleSim::new(SCALE).with_speed(SCALE_SPEED);
    for i in 0..WEIGHINGS as u64 {
        let on_ms = now_sim_ms + i * CYCLE_MS;
        scale = scale.with_weighing(Weighing {
            on_ms,
            off_ms: on_ms + ON_MS,
            mass_kg: 60.0 + i as f64,
        });
    }
    sim.add_device(Box::new(scale.spawn().unwrap()))
        .await
        .unwrap();
    let mut emissions = sim.control().subscribe_emissions();
    central.scan(Duration::from_secs(2), |_| {}).await.unwrap();
    let device = central.connect(SCALE, Timeouts::default()).await.unwrap();

    let wall_budget = Duration::from_millis((WEIGHINGS as u64 * CYCLE_MS) / SCALE_SPEED + 15_000);
    let mut plan = Plan::new(jiff::tz::TimeZone::UTC);
    plan.linger = wall_budget;
    plan.max_duration = wall_budget;
    let (events, mut output) = tokio::sync::mpsc::channel(64);
    let session = tokio::spawn(async move {
        let outcome = session::run(&device, DeviceKind::WeightScale, &plan, &events).await;
        (device, outcome)
    });
    // The layer's output: the consumer's end of the session's channel.
    let mut received: Vec<(Instant, f64)> = Vec::new();
    let deadline = tokio::time::Instant::now() + wall_budget;
    while received.len() < WEIGHINGS {
        let Ok(Some(event)) = tokio::time::timeout_at(deadline, output.recv()).await else {
            break;
        };
        if let Event::Measurement { delivery, accepted } = event {
            let at = Instant::now();
            let kg = match delivery.readings.first().map(|r| r.value) {
                Some(ReadingValue::Single(q)) => q.to_f64().unwrap_or(f64::NAN),
                _ => f64::NAN,
            };
            received.push((at, kg));
            let _ = accepted.send(true);
        }
    }
    drop(output);
    let (device, _) = session.await.unwrap();
    device.disconnect().await.unwrap();
    let mut emitted = Vec::new();
    while let Ok(e) = emissions.try_recv() {
        if e.address == SCALE && e.characteristic == uuid::WEIGHT_MEASUREMENT {
            emitted.push(e.at);
        }
    }
    println!(
        "scale indication latency: {} weighings emitted, {} received by the layer's consumer",
        emitted.len(),
        received.len()
    );
    assert_eq!(
        emitted.len(),
        received.len(),
        "every indication received once"
    );
    let mut latencies = Vec::new();
    for (i, ((at, kg), emitted)) in received.iter().zip(&emitted).enumerate() {
        let latency = ms(at.duration_since(*emitted));
        println!("  weighing {}: {kg:.2} kg, {latency:.3} ms", i + 1);
        latencies.push(latency);
    }
    let (min, median, max, p99) = summary(&latencies, 99.0);
    println!(
        "  min {min:.3} ms, median {median:.3} ms, p99 {p99:.3} ms, max {max:.3} ms (target <= 50 ms)"
    );
}
