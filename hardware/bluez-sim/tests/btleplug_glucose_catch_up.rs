//! Through the real btleplug: a meter holding 1,000 records with contexts is caught up with one
//! "report all records": every measurement arrives once, in order, each with its context, then
//! the RACP indication. Prints how long the report took (not asserted: the machine varies).
//!
//! One test per binary (libdbus reads the bus address once per process). Needs `dbus-daemon`.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::time::{Duration, Instant};

use btleplug::api::{
    Central, CentralEvent, Characteristic, Manager as _, Peripheral as _, ScanFilter,
    ValueNotification, WriteType,
};
use btleplug::platform::{Manager, Peripheral};
use futures::StreamExt;
use relais_bluez_sim::{DbusDaemon, GlucoseMeterSim, LinkTiming, Simulator, sig_uuid};
use relais_protocol::glucose::{GlucoseMeasurement, GlucoseMeasurementContext};
use relais_protocol::racp::{OpCode, RacpRequest, RacpResponse, ResponseCode};
use relais_protocol::{Characteristic as _, Quirks, uuid as sig};
use uuid::Uuid;

const ADDRESS: &str = "C0:FF:EE:00:00:71";
const RECORDS: u32 = 1_000;

fn uuid16(short: u16) -> Uuid {
    Uuid::parse_str(&sig_uuid(short)).unwrap()
}

#[allow(unsafe_code)]
fn use_bus(bus: &DbusDaemon) {
    // SAFETY: set before btleplug's libdbus first reads it; no other thread reads it here.
    unsafe { std::env::set_var("DBUS_SYSTEM_BUS_ADDRESS", bus.address()) };
}

/// "Report all records", checked: every measurement once, in order, with its context, then the
/// RACP success. Returns how long it took from the write.
async fn catch_up(
    peripheral: &Peripheral,
    notifications: &mut (impl futures::Stream<Item = ValueNotification> + Unpin),
    measurement: &Characteristic,
    context: &Characteristic,
    racp: &Characteristic,
) -> Duration {
    let mut request = [0u8; 8];
    let n = RacpRequest::records_after(None, Quirks::NONE)
        .encode(&mut request)
        .unwrap();
    let started = Instant::now();
    peripheral
        .write(racp, &request[..n], WriteType::WithResponse)
        .await
        .unwrap();
    let mut measurements = Vec::new();
    let mut contexts = Vec::new();
    let end = tokio::time::timeout(Duration::from_secs(60), async {
        loop {
            let n = notifications
                .next()
                .await
                .expect("notification stream open");
            if n.uuid == measurement.uuid {
                measurements.push(GlucoseMeasurement::decode(&n.value).unwrap().value);
            } else if n.uuid == context.uuid {
                let c = GlucoseMeasurementContext::decode(&n.value).unwrap().value;
                contexts.push(c.sequence_number);
            } else if n.uuid == racp.uuid {
                return RacpResponse::decode(&n.value).unwrap().value;
            }
        }
    })
    .await
    .expect("the report ends with the RACP indication");
    let elapsed = started.elapsed();
    assert_eq!(
        end,
        RacpResponse::ResponseCode {
            request_op_code: OpCode::ReportStoredRecords,
            response_code: ResponseCode::Success,
        }
    );
    let sequence_numbers: Vec<u16> = measurements.iter().map(|m| m.sequence_number).collect();
    assert_eq!(sequence_numbers.len(), RECORDS as usize);
    // No gap, no duplicate: consecutive sequence numbers from the first.
    let first = sequence_numbers[0];
    assert!(
        sequence_numbers
            .iter()
            .enumerate()
            .all(|(i, &s)| usize::from(s.wrapping_sub(first)) == i),
        "{sequence_numbers:?}"
    );
    assert!(measurements.iter().all(|m| m.context_information_follows));
    assert_eq!(
        contexts, sequence_numbers,
        "each measurement with its context"
    );
    elapsed
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn btleplug_catches_up_a_thousand_records_without_gap_or_duplicate() {
    let bus = DbusDaemon::start().expect("dbus-daemon (Debian package `dbus`) must be installed");
    use_bus(&bus);
    let meter = GlucoseMeterSim::with_records(ADDRESS, RECORDS).unwrap();
    assert_eq!(meter.firmware().meter().log().count(), RECORDS);
    let sim = Simulator::start(bus.address(), vec![Box::new(meter)])
        .await
        .unwrap();

    let central = Manager::new()
        .await
        .unwrap()
        .adapters()
        .await
        .unwrap()
        .into_iter()
        .next()
        .unwrap();
    let mut events = central.events().await.unwrap();
    central.start_scan(ScanFilter::default()).await.unwrap();
    let id = tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            if let Some(CentralEvent::DeviceDiscovered(id)) = events.next().await {
                return id;
            }
        }
    })
    .await
    .expect("the meter is discovered");
    central.stop_scan().await.unwrap();
    let peripheral = central.peripheral(&id).await.unwrap();
    peripheral.connect().await.unwrap();
    peripheral.discover_services().await.unwrap();
    let chars = peripheral.characteristics();
    let find = |short: u16| chars.iter().find(|c| c.uuid == uuid16(short)).unwrap();
    let measurement = find(sig::GLUCOSE_MEASUREMENT);
    let context = find(sig::GLUCOSE_MEASUREMENT_CONTEXT);
    let racp = find(sig::RECORD_ACCESS_CONTROL_POINT);
    let mut notifications = peripheral.notifications().await.unwrap();
    for c in [measurement, context, racp] {
        peripheral.subscribe(c).await.unwrap();
    }

    let control = sim.control();
    for (name, timing) in [
        ("default (7.5 ms, 12 packets per event)", LinkTiming::FAST),
        (
            "one firmware call per 5 ms tick",
            LinkTiming::ONE_CALL_PER_TICK,
        ),
        ("unlimited", LinkTiming::UNLIMITED),
    ] {
        control.set_link_timing(timing).await.unwrap();
        let elapsed = catch_up(&peripheral, &mut notifications, measurement, context, racp).await;
        println!(
            "catch-up of {RECORDS} records, {name}: {elapsed:?} ({:?} per record)",
            elapsed / RECORDS
        );
    }
    peripheral.disconnect().await.unwrap();
}
