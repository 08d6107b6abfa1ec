//! End-to-end timings of the gateway's BLE layer through the real btleplug stack against
//! bluez-sim (one private dbus-daemon, one process: libdbus reads the bus address once).
//!
//! 1. A glucose catch-up of 1,000 records, or as many as bluez-sim's meter holds (its RAM
//!    flash log is full at 469 records with contexts): wall time of `catch_up` on a connected,
//!    discovered meter, with every sequence number 0..N received exactly once, in order.
//! 2. Scale indication latency: bluez-sim offers no hook at its emission point
//!    (`PropertiesChanged(Value)` in its `sim.rs`), so the measured quantity is: arrival of
//!    that signal at a second, independent D-Bus connection in this process (zbus, match rule
//!    on `PropertiesChanged`) -> `receive_weights` handing the decoded weighing to its
//!    callback. Both stamped with `std::time::Instant`.
//!
//! Run: `cargo bench -p relais --bench ble`. Needs `dbus-daemon`.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures::StreamExt;
use relais::ble::Central;
use relais::ble::DeviceKind;
use relais::ble::device::Timeouts;
use relais::ble::session::{self, Event, Plan};
use relais_bluez_sim::{DbusDaemon, GlucoseMeterSim, ScaleSim, Simulator, Weighing};
use relais_protocol::ReadingValue;

const METER: &str = "C0:FF:EE:00:00:01";
const SCALE: &str = "C0:FF:EE:00:00:05";
/// Records asked for; bluez-sim's meter (8 x 4 KiB of RAM flash) may hold fewer.
const WANTED_RECORDS: u16 = 1_000;
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

/// Sorted copy; min, median, max (and the nearest-rank percentile `p`).
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
    // The largest record count the simulated meter's log holds, up to WANTED_RECORDS.
    let (mut lo, mut hi) = (1u16, WANTED_RECORDS);
    while lo < hi {
        let mid = lo + (hi - lo).div_ceil(2);
        if GlucoseMeterSim::with_records(METER, u32::from(mid)).is_ok() {
            lo = mid;
        } else {
            hi = mid - 1;
        }
    }
    let records = lo;
    if records < WANTED_RECORDS {
        println!(
            "bluez-sim's meter holds at most {records} records with contexts (log full beyond); \
             measuring {records}"
        );
    }
    let meter = GlucoseMeterSim::with_records(METER, u32::from(records)).unwrap();
    let sim = Simulator::start(bus.address(), vec![Box::new(meter)])
        .await
        .unwrap();
    let sim_started = Instant::now();

    let central = Central::first_adapter().await.unwrap();
    central.scan(Duration::from_secs(2), |_| {}).await.unwrap();

    // 1. Glucose catch-up.
    println!("glucose catch-up, {records} records with contexts, {CATCH_UP_RUNS} runs");
    let mut catch_up_ms = Vec::new();
    let plan = Plan::new(jiff::tz::TimeZone::UTC);
    for run in 0..CATCH_UP_RUNS {
        let device = central.connect(METER, Timeouts::default()).await.unwrap();
        let mut sequences: Vec<u16> = Vec::with_capacity(usize::from(records));
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
        let last = outcome.last_glucose_sequence;
        let elapsed = start.elapsed();
        assert_eq!(
            sequences,
            (0..records).collect::<Vec<u16>>(),
            "gap, duplicate or reordering"
        );
        assert_eq!(last, Some(records - 1));
        assert_eq!(with_context, usize::from(records));
        println!(
            "  run {}: {:.1} ms, {} records, sequences 0..={} exactly once, {} contexts",
            run + 1,
            ms(elapsed),
            sequences.len(),
            records - 1,
            with_context
        );
        catch_up_ms.push(ms(elapsed));
        device.disconnect().await.unwrap();
    }
    let (min, median, max, _) = summary(&catch_up_ms, 100.0);
    println!("  min {min:.1} ms, median {median:.1} ms, max {max:.1} ms (target <= 2000 ms)");

    // 2. Scale indication latency.
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

    // The observer: a second connection on the bus, stamping PropertiesChanged(Value) of the
    // scale's characteristics as they arrive.
    let observer = zbus::connection::Builder::address(bus.address())
        .unwrap()
        .build()
        .await
        .unwrap();
    let rule = zbus::MatchRule::builder()
        .msg_type(zbus::message::Type::Signal)
        .interface("org.freedesktop.DBus.Properties")
        .unwrap()
        .member("PropertiesChanged")
        .unwrap()
        .build();
    let mut stream = zbus::MessageStream::for_match_rule(rule, &observer, None)
        .await
        .unwrap();
    let seen: Arc<Mutex<Vec<Instant>>> = Arc::new(Mutex::new(Vec::new()));
    let armed = Arc::new(Mutex::new(false));
    let observer_task = {
        let seen = Arc::clone(&seen);
        let armed = Arc::clone(&armed);
        let device_path = format!("dev_{}", SCALE.replace(':', "_"));
        tokio::spawn(async move {
            while let Some(Ok(msg)) = stream.next().await {
                let at = Instant::now();
                let header = msg.header();
                let Some(path) = header.path() else { continue };
                if !path.as_str().contains(&device_path) {
                    continue;
                }
                let Ok((interface, changed, _)) = msg.body().deserialize::<(
                    String,
                    HashMap<String, zbus::zvariant::OwnedValue>,
                    Vec<String>,
                )>() else {
                    continue;
                };
                if interface == "org.bluez.GattCharacteristic1"
                    && changed.contains_key("Value")
                    && *armed.lock().unwrap()
                {
                    seen.lock().unwrap().push(at);
                }
            }
        })
    };

    central.scan(Duration::from_secs(2), |_| {}).await.unwrap();
    let device = central.connect(SCALE, Timeouts::default()).await.unwrap();
    *armed.lock().unwrap() = true;
    let mut received: Vec<(Instant, f64)> = Vec::new();
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
    while let Some(event) = output.recv().await {
        if let Event::Measurement { delivery, accepted } = event {
            let kg = match delivery.readings.first().map(|r| r.value) {
                Some(ReadingValue::Single(q)) => q.to_f64().unwrap_or(f64::NAN),
                _ => f64::NAN,
            };
            received.push((Instant::now(), kg));
            let _ = accepted.send(true);
            if received.len() == WEIGHINGS {
                break;
            }
        }
    }
    let count = received.len();
    drop(output);
    let (device, _) = session.await.unwrap();
    device.disconnect().await.unwrap();
    observer_task.abort();
    let seen = seen.lock().unwrap().clone();
    println!(
        "scale indication latency: {count} weighings received, {} Value signals observed",
        seen.len()
    );
    assert_eq!(seen.len(), received.len(), "every indication observed once");
    let mut latencies = Vec::new();
    for (i, ((at, kg), emitted)) in received.iter().zip(&seen).enumerate() {
        // Signed: negative when the gateway's layer had it before the observer connection.
        let latency = match at.checked_duration_since(*emitted) {
            Some(d) => ms(d),
            None => -ms(emitted.duration_since(*at)),
        };
        println!("  weighing {}: {kg:.2} kg, {latency:.3} ms", i + 1);
        latencies.push(latency);
    }
    let (min, median, max, p99) = summary(&latencies, 99.0);
    println!(
        "  min {min:.3} ms, median {median:.3} ms, p99 {p99:.3} ms, max {max:.3} ms (target <= 50 ms)"
    );
}
