//! The glucose catch-up through the real btleplug against bluez-sim's firmware meter: 200
//! stored records, the 150 oldest already committed; exactly the 50 newer ones arrive, in
//! order, each with its context, and the new last sequence number is the newest's.
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
use relais::ble::glucose::catch_up;
use relais_bluez_sim::{DbusDaemon, GlucoseMeterSim, Simulator};
use relais_protocol::Quirks;
use relais_protocol::glucose::Meal;

const ADDRESS: &str = "C0:FF:EE:00:00:01";

#[allow(unsafe_code)]
fn use_bus(bus: &DbusDaemon) {
    // SAFETY: set before btleplug's libdbus first reads it; no other thread reads it here.
    unsafe { std::env::set_var("DBUS_SYSTEM_BUS_ADDRESS", bus.address()) };
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn catch_up_gets_exactly_the_newer_records_with_their_contexts() {
    let bus = DbusDaemon::start().expect("dbus-daemon (Debian package `dbus`) must be installed");
    use_bus(&bus);
    let meter = GlucoseMeterSim::with_records(ADDRESS, 200).unwrap();
    let _sim = Simulator::start(bus.address(), vec![Box::new(meter)])
        .await
        .unwrap();

    let central = Central::first_adapter().await.unwrap();
    central.scan(Duration::from_secs(2), |_| {}).await.unwrap();
    let device = central.connect(ADDRESS, Timeouts::default()).await.unwrap();
    assert_eq!(
        device.identity().manufacturer.as_deref(),
        Some("Relais reference design")
    );
    assert_eq!(device.identity().model.as_deref(), Some("RS-GLUCOSE"));

    let mut records = Vec::new();
    let last = catch_up(
        &device,
        Some(149),
        Quirks::NONE,
        Duration::from_secs(10),
        |r| {
            records.push(r);
            true
        },
    )
    .await
    .unwrap();
    let sequences: Vec<u16> = records
        .iter()
        .map(|r| r.measurement.sequence_number)
        .collect();
    assert_eq!(sequences, (150..200).collect::<Vec<u16>>());
    assert!(
        records
            .iter()
            .all(|r| r.context.and_then(|c| c.meal) == Some(Meal::Fasting))
    );
    assert_eq!(last, Some(199));

    // Nothing newer: "no records found" is done, with the same sequence number.
    let again = catch_up(&device, last, Quirks::NONE, Duration::from_secs(10), |_| {
        panic!("no record expected")
    })
    .await
    .unwrap();
    assert_eq!(again, Some(199));
    device.disconnect().await.unwrap();
}
