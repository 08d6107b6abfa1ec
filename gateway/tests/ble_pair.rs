//! Pairing through relais's BlueZ agent against bluez-sim's unpaired glucose meter: its
//! encrypted characteristics answer "Not paired" until `Device1.Pair`, which asks the agent for
//! the passkey; afterwards they can be subscribed to, and pairing again is "already paired".
//!
//! One test per binary (libdbus reads the bus address once per process). Needs `dbus-daemon`.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use relais::ble::Central;
use relais::ble::device::Timeouts;
use relais::ble::pairing::{self, Capability, Paired, PasskeySource};
use relais_bluez_sim::{DbusDaemon, GlucoseMeterSim, Simulator};
use relais_protocol::uuid;

const ADDRESS: &str = "C0:FF:EE:00:00:03";

#[allow(unsafe_code)]
fn use_bus(bus: &DbusDaemon) {
    // SAFETY: set before btleplug's libdbus and zbus first read it; no other thread reads it.
    unsafe { std::env::set_var("DBUS_SYSTEM_BUS_ADDRESS", bus.address()) };
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pairing_with_a_passkey_opens_the_encrypted_characteristics() {
    let bus = DbusDaemon::start().expect("dbus-daemon (Debian package `dbus`) must be installed");
    use_bus(&bus);
    let meter = GlucoseMeterSim::with_records(ADDRESS, 1)
        .unwrap()
        .unpaired();
    let _sim = Simulator::start(bus.address(), vec![Box::new(meter)])
        .await
        .unwrap();

    let central = Central::first_adapter().await.unwrap();
    central.scan(Duration::from_secs(2), |_| {}).await.unwrap();
    let device = central.connect(ADDRESS, Timeouts::default()).await.unwrap();
    for c in [uuid::RECORD_ACCESS_CONTROL_POINT, uuid::GLUCOSE_MEASUREMENT] {
        let refused = device.subscribe(c).await;
        let text = format!("{refused:?}");
        assert!(text.contains("Not paired"), "0x{c:04X}: {text}");
    }

    let asked = Arc::new(AtomicU32::new(0));
    let counter = Arc::clone(&asked);
    let passkey: PasskeySource = Arc::new(move |device: &str| {
        assert_eq!(device, "/org/bluez/hci0/dev_C0_FF_EE_00_00_03");
        counter.fetch_add(1, Ordering::SeqCst);
        Some(123_456)
    });
    let outcome = pairing::pair(
        ADDRESS,
        Capability::KeyboardOnly,
        Arc::clone(&passkey),
        Duration::from_secs(10),
    )
    .await
    .unwrap();
    assert_eq!(outcome, Paired::Now);
    assert_eq!(
        asked.load(Ordering::SeqCst),
        1,
        "the agent gave the passkey"
    );

    for c in [uuid::RECORD_ACCESS_CONTROL_POINT, uuid::GLUCOSE_MEASUREMENT] {
        device
            .subscribe(c)
            .await
            .unwrap_or_else(|e| panic!("0x{c:04X} after pairing: {e}"));
    }

    let again = pairing::pair(
        ADDRESS,
        Capability::KeyboardDisplay,
        passkey,
        Duration::from_secs(10),
    )
    .await
    .unwrap();
    assert_eq!(again, Paired::Already);
    assert_eq!(asked.load(Ordering::SeqCst), 1);
    device.disconnect().await.unwrap();
}
