//! The scale session through the real btleplug: a weighing taken while no gateway was
//! connected is received, decoded, when the gateway subscribes.
//!
//! One test per binary (libdbus reads the bus address once per process). Needs `dbus-daemon`.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::time::Duration;

use relais::ble::Central;
use relais::ble::DeviceKind;
use relais::ble::device::Timeouts;
use relais::ble::session::{Plan, run_accepting};
use relais_bluez_sim::{DbusDaemon, ScaleSim, Simulator, Weighing};
use relais_protocol::Kind;

const ADDRESS: &str = "C0:FF:EE:00:00:05";

#[allow(unsafe_code)]
fn use_bus(bus: &DbusDaemon) {
    // SAFETY: set before btleplug's libdbus first reads it; no other thread reads it here.
    unsafe { std::env::set_var("DBUS_SYSTEM_BUS_ADDRESS", bus.address()) };
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_scale_session_receives_the_offline_weighing() {
    let bus = DbusDaemon::start().expect("dbus-daemon (Debian package `dbus`) must be installed");
    use_bus(&bus);
    let scale = ScaleSim::new(ADDRESS)
        .with_weighing(Weighing {
            on_ms: 5_000,
            off_ms: 20_000,
            mass_kg: 72.0,
        })
        .run_before_start(25_000)
        .spawn()
        .unwrap();
    let _sim = Simulator::start(bus.address(), vec![Box::new(scale)])
        .await
        .unwrap();

    let central = Central::first_adapter().await.unwrap();
    central.scan(Duration::from_secs(2), |_| {}).await.unwrap();
    let device = central.connect(ADDRESS, Timeouts::default()).await.unwrap();
    let mut plan = Plan::new(jiff::tz::TimeZone::UTC);
    plan.linger = Duration::from_secs(2);
    let mut weights = Vec::new();
    let outcome = run_accepting(
        &device,
        DeviceKind::WeightScale,
        &plan,
        |d| {
            weights.push(d.clone());
            true
        },
        |_| {},
    )
    .await
    .unwrap();
    assert_eq!(outcome.delivered, 1);
    assert_eq!(weights[0].readings[0].kind, Kind::BodyWeight);
    let relais_protocol::ReadingValue::Single(weight) = weights[0].readings[0].value else {
        panic!("{:?}", weights[0].readings[0])
    };
    let kg = weight.to_f64().unwrap();
    // Nominal calibration, as in bluez-sim's own test.
    assert!((kg - 72.0).abs() < 8.0, "{kg}");
    device.disconnect().await.unwrap();
}
