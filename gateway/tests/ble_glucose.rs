//! The glucose session's catch-up through the real btleplug against bluez-sim's firmware meter: 200
//! stored records, the 150 oldest already committed; exactly the 50 newer ones arrive, in
//! order, each with its context, as many as the meter announced, and the new last sequence
//! number is the newest's.
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
use relais::ble::session::{Event, Plan, run_accepting};
use relais::payload::Origin;
use relais_bluez_sim::{DbusDaemon, GlucoseMeterSim, Simulator};
use relais_protocol::glucose::Meal;
use relais_protocol::uuid;

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

    let mut plan = Plan::new(jiff::tz::TimeZone::UTC);
    plan.last_glucose_sequence = Some(149);
    let mut records = Vec::new();
    let mut announced = Vec::new();
    let outcome = run_accepting(
        &device,
        DeviceKind::GlucoseMeter,
        &plan,
        |d| {
            records.push(d.clone());
            true
        },
        |event| {
            if let Event::CatchUp { expected, .. } = event {
                announced.push(expected);
            }
        },
    )
    .await
    .unwrap();
    let sequences: Vec<u16> = records
        .iter()
        .map(|d| d.readings[0].sequence_number.unwrap())
        .collect();
    assert_eq!(sequences, (150..200).collect::<Vec<u16>>());
    assert_eq!(announced, [50], "the count comes first, once");
    for delivery in &records {
        // The bytes as the meter sent them: the measurement, then its context.
        let origins: Vec<Origin> = delivery.record.payloads.iter().map(|p| p.origin).collect();
        assert_eq!(
            origins,
            [
                Origin::Characteristic(uuid::GLUCOSE_MEASUREMENT),
                Origin::Characteristic(uuid::GLUCOSE_MEASUREMENT_CONTEXT)
            ]
        );
        assert_eq!(delivery.readings[0].context.meal, Some(Meal::Fasting));
        assert_eq!(delivery.device.model.as_deref(), Some("RS-GLUCOSE"));
    }
    assert_eq!(outcome.last_glucose_sequence, Some(199));
    assert_eq!(outcome.delivered, 50);

    // Nothing newer: a count of 0 is done, with the same sequence number.
    plan.last_glucose_sequence = outcome.last_glucose_sequence;
    let mut announced = Vec::new();
    let again = run_accepting(
        &device,
        DeviceKind::GlucoseMeter,
        &plan,
        |_| panic!("no record expected"),
        |event| {
            if let Event::CatchUp { expected, .. } = event {
                announced.push(expected);
            }
        },
    )
    .await
    .unwrap();
    assert_eq!(again.last_glucose_sequence, Some(199));
    assert_eq!(again.delivered, 0);
    assert_eq!(announced, [0]);
    device.disconnect().await.unwrap();
}
