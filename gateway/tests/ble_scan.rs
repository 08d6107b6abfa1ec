//! `Central::scan` against bluez-sim: the glucose meter and the scale are found and classified.
//!
//! One test per binary: libdbus reads `DBUS_SYSTEM_BUS_ADDRESS` once per process. Needs
//! `dbus-daemon`.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::time::Duration;

use relais::ble::{Central, DeviceKind};
use relais_bluez_sim::{DbusDaemon, GlucoseMeterSim, ScaleSim, Simulator};

#[allow(unsafe_code)]
fn use_bus(bus: &DbusDaemon) {
    // SAFETY: set before btleplug's libdbus first reads it; no other thread reads it here.
    unsafe { std::env::set_var("DBUS_SYSTEM_BUS_ADDRESS", bus.address()) };
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scan_finds_and_classifies_the_meter_and_the_scale() {
    let bus = DbusDaemon::start().expect("dbus-daemon (Debian package `dbus`) must be installed");
    use_bus(&bus);
    let meter = GlucoseMeterSim::with_records("C0:FF:EE:00:00:01", 3).unwrap();
    let scale = ScaleSim::new("C0:FF:EE:00:00:05").spawn().unwrap();
    let _sim = Simulator::start(bus.address(), vec![Box::new(meter), Box::new(scale)])
        .await
        .unwrap();

    let central = Central::first_adapter().await.unwrap();
    let mut live = Vec::new();
    let seen = central
        .scan(Duration::from_secs(3), |s| live.push(s.address.clone()))
        .await
        .unwrap();
    let kind_of = |address: &str| {
        seen.iter()
            .find(|s| s.address == address)
            .unwrap_or_else(|| panic!("{address} in {seen:?}"))
    };
    let meter = kind_of("C0:FF:EE:00:00:01");
    assert_eq!(meter.kind, DeviceKind::GlucoseMeter);
    assert_eq!(meter.name.as_deref(), Some("RS-GLUCOSE"));
    assert_eq!(meter.rssi, Some(-60));
    assert_eq!(kind_of("C0:FF:EE:00:00:05").kind, DeviceKind::WeightScale);
    assert_eq!(seen.len(), 2, "{seen:?}");
    assert!(live.contains(&"C0:FF:EE:00:00:01".to_owned()));
}
