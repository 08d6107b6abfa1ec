//! Clock sync through the real btleplug against bluez-sim's glucose meter whose clock is an
//! hour and a half ahead: the skew measured matches the offset, and after the sync the device
//! clock reads back the hub's time.
//!
//! One test per binary (libdbus reads the bus address once per process). Needs `dbus-daemon`.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::time::Duration;

use jiff::{SignedDuration, ToSpan as _};
use relais::ble::Central;
use relais::ble::clock::{self, DEFAULT_THRESHOLD, DEFAULT_ZONE};
use relais::ble::device::Timeouts;
use relais_bluez_sim::{DbusDaemon, GlucoseMeterSim, Simulator};
use relais_protocol::{DateTime, Quirks, uuid};

const ADDRESS: &str = "C0:FF:EE:00:00:63";

#[allow(unsafe_code)]
fn use_bus(bus: &DbusDaemon) {
    // SAFETY: set before btleplug's libdbus first reads it; no other thread reads it here.
    unsafe { std::env::set_var("DBUS_SYSTEM_BUS_ADDRESS", bus.address()) };
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_clock_is_measured_and_set() {
    let bus = DbusDaemon::start().expect("dbus-daemon (Debian package `dbus`) must be installed");
    use_bus(&bus);
    let zone = clock::zone(DEFAULT_ZONE).unwrap();
    let offset = SignedDuration::from_secs(90 * 60);
    let wrong = clock::hub_now(&zone).checked_add(90.minutes()).unwrap();
    let meter = GlucoseMeterSim::with_records(ADDRESS, 1)
        .unwrap()
        .with_device_clock(&DateTime::from_civil(wrong).unwrap())
        .unwrap();
    let _sim = Simulator::start(bus.address(), vec![Box::new(meter)])
        .await
        .unwrap();

    let central = Central::first_adapter().await.unwrap();
    central.scan(Duration::from_secs(2), |_| {}).await.unwrap();
    let device = central.connect(ADDRESS, Timeouts::default()).await.unwrap();
    let sync = clock::sync_clock(&device, Quirks::NONE, &zone, DEFAULT_THRESHOLD)
        .await
        .unwrap();
    let skew = sync.skew.expect("the clock was set");
    assert!(
        (skew - offset).unsigned_abs() <= Duration::from_secs(2),
        "skew {skew:?}, offset {offset:?}"
    );
    assert!(sync.written, "{sync:?}");

    let bytes = device.read(uuid::CURRENT_TIME).await.unwrap();
    let now = clock::hub_now(&zone);
    let after = clock::skew(
        &clock::decode_time(&bytes, uuid::CURRENT_TIME).unwrap(),
        now,
    )
    .expect("the clock is set");
    assert!(
        after.unsigned_abs() <= Duration::from_secs(2),
        "after the sync: {after:?}"
    );

    let again = clock::sync_clock(&device, Quirks::NONE, &zone, DEFAULT_THRESHOLD)
        .await
        .unwrap();
    assert!(!again.written, "{again:?}");
    device.disconnect().await.unwrap();
}
