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
use relais::ble::device::Timeouts;
use relais::ble::scale::receive_weights;
use relais_bluez_sim::{DbusDaemon, ScaleSim, Simulator, Weighing};

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
    let mut weights = Vec::new();
    let count = receive_weights(&device, Duration::from_secs(10), |w| {
        weights.push(w);
        false
    })
    .await
    .unwrap();
    assert_eq!(count, 1);
    let kg = weights[0].weight.to_f64().unwrap();
    // Nominal calibration, as in bluez-sim's own test.
    assert!((kg - 72.0).abs() < 8.0, "{kg}");
    device.disconnect().await.unwrap();
}
