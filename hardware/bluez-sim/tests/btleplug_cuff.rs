//! Through the real btleplug: the firmware blood-pressure cuff on the simulated cuff of
//! board-sim. After the button is pressed, the cuff pressure is notified as it inflates and
//! deflates, then the Blood Pressure Measurement is indicated and decodes near the subject's.
//!
//! One test per binary (libdbus reads the bus address once per process). Needs `dbus-daemon`.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::time::Duration;

use btleplug::api::{Central, CentralEvent, Manager as _, Peripheral as _, ScanFilter};
use btleplug::platform::Manager;
use futures::StreamExt;
use relais_bluez_sim::{CuffSim, DbusDaemon, Simulator, sig_uuid};
use relais_board_sim::cuff::Subject;
use relais_protocol::blood_pressure::{BloodPressureMeasurement, IntermediateCuffPressure};
use relais_protocol::{Characteristic as _, uuid as sig};
use uuid::Uuid;

fn uuid16(short: u16) -> Uuid {
    Uuid::parse_str(&sig_uuid(short)).unwrap()
}

#[allow(unsafe_code)]
fn use_bus(bus: &DbusDaemon) {
    // SAFETY: set before btleplug's libdbus first reads it; no other thread reads it here.
    unsafe { std::env::set_var("DBUS_SYSTEM_BUS_ADDRESS", bus.address()) };
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn btleplug_receives_a_cuff_measurement_after_start() {
    let bus = DbusDaemon::start().expect("dbus-daemon (Debian package `dbus`) must be installed");
    use_bus(&bus);
    let cuff = CuffSim::new("C0:FF:EE:00:00:51")
        .with_subject(Subject {
            systolic_mmhg: 132.0,
            diastolic_mmhg: 86.0,
            heart_rate_bpm: 70.0,
            ..Subject::typical()
        })
        .with_speed(10);
    let button = cuff.button();
    let _sim = Simulator::start(bus.address(), vec![Box::new(cuff.spawn().unwrap())])
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
    .expect("discovered");
    central.stop_scan().await.unwrap();
    let peripheral = central.peripheral(&id).await.unwrap();
    peripheral.connect().await.unwrap();
    peripheral.discover_services().await.unwrap();
    let chars = peripheral.characteristics();
    let find = |short: u16| chars.iter().find(|c| c.uuid == uuid16(short)).unwrap();
    let mut notifications = peripheral.notifications().await.unwrap();
    peripheral
        .subscribe(find(sig::BLOOD_PRESSURE_MEASUREMENT))
        .await
        .unwrap();
    peripheral
        .subscribe(find(sig::INTERMEDIATE_CUFF_PRESSURE))
        .await
        .unwrap();

    button.press(Some(1));
    let mut pressures = 0;
    let result = tokio::time::timeout(Duration::from_secs(60), async {
        loop {
            let n = notifications.next().await.unwrap();
            if n.uuid == uuid16(sig::INTERMEDIATE_CUFF_PRESSURE) {
                IntermediateCuffPressure::decode(&n.value).unwrap();
                pressures += 1;
            } else if n.uuid == uuid16(sig::BLOOD_PRESSURE_MEASUREMENT) {
                return BloodPressureMeasurement::decode(&n.value).unwrap().value;
            }
        }
    })
    .await
    .expect("the measurement after the cycle");
    assert!(pressures > 20, "{pressures} cuff pressure notifications");
    let systolic = result.systolic.to_f64().unwrap();
    let diastolic = result.diastolic.to_f64().unwrap();
    assert!((systolic - 132.0).abs() <= 10.0, "{systolic}");
    assert!((diastolic - 86.0).abs() <= 10.0, "{diastolic}");
    assert_eq!(result.user_id, Some(1));
    peripheral.disconnect().await.unwrap();
}
