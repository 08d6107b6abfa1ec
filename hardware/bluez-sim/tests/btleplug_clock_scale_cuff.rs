//! Through the real btleplug: a firmware scale and cuff whose device clocks were set wrong show
//! that time in their Current Time; a scale left unset reads as an unknown date.
//!
//! One test per binary (libdbus reads the bus address once per process). Needs `dbus-daemon`.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::collections::HashMap;
use std::time::Duration;

use btleplug::api::{Central, CentralEvent, Manager as _, Peripheral as _, ScanFilter};
use btleplug::platform::{Manager, Peripheral};
use futures::StreamExt;
use relais_bluez_sim::{CuffSim, DbusDaemon, ScaleSim, Simulator, sig_uuid};
use relais_protocol::time::CurrentTime;
use relais_protocol::{DateTime, uuid as sig};
use uuid::Uuid;

const SCALE: &str = "C0:FF:EE:00:00:63";
const CUFF: &str = "C0:FF:EE:00:00:64";
const UNSET: &str = "C0:FF:EE:00:00:65";

#[allow(unsafe_code)]
fn use_bus(bus: &DbusDaemon) {
    // SAFETY: set before btleplug's libdbus first reads it; no other thread reads it here.
    unsafe { std::env::set_var("DBUS_SYSTEM_BUS_ADDRESS", bus.address()) };
}

async fn current_time(peripheral: &Peripheral) -> Result<Vec<u8>, btleplug::Error> {
    peripheral.connect().await.unwrap();
    peripheral.discover_services().await.unwrap();
    let uuid = Uuid::parse_str(&sig_uuid(sig::CURRENT_TIME)).unwrap();
    let c = peripheral
        .characteristics()
        .into_iter()
        .find(|c| c.uuid == uuid)
        .unwrap();
    let value = peripheral.read(&c).await;
    peripheral.disconnect().await.unwrap();
    value
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn btleplug_reads_the_wrong_clocks_of_a_scale_and_a_cuff() {
    let bus = DbusDaemon::start().expect("dbus-daemon (Debian package `dbus`) must be installed");
    use_bus(&bus);
    let scale_time = DateTime::new(2031, 1, 1, 3, 0, 0).unwrap();
    let cuff_time = DateTime::new(2019, 6, 30, 23, 45, 0).unwrap();
    let scale = ScaleSim::new(SCALE)
        .with_device_clock(&scale_time)
        .unwrap()
        .spawn()
        .unwrap();
    let cuff = CuffSim::new(CUFF)
        .with_device_clock(&cuff_time)
        .unwrap()
        .spawn()
        .unwrap();
    let unset = ScaleSim::new(UNSET).spawn().unwrap();
    assert!(
        ScaleSim::new(UNSET)
            .with_device_clock(&DateTime::new(1999, 1, 1, 0, 0, 0).unwrap())
            .is_err(),
        "a year the firmware refuses"
    );
    let _sim = Simulator::start(
        bus.address(),
        vec![Box::new(scale), Box::new(cuff), Box::new(unset)],
    )
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
    let mut peripherals = HashMap::new();
    tokio::time::timeout(Duration::from_secs(10), async {
        while peripherals.len() < 3 {
            if let Some(CentralEvent::DeviceDiscovered(id)) = events.next().await {
                let p = central.peripheral(&id).await.unwrap();
                let address = p.properties().await.unwrap().unwrap().address.to_string();
                peripherals.insert(address, p);
            }
        }
    })
    .await
    .expect("three devices");
    central.stop_scan().await.unwrap();

    for (address, wrong) in [(SCALE, scale_time), (CUFF, cuff_time)] {
        let bytes = current_time(&peripherals[address]).await.unwrap();
        let time = CurrentTime::decode(&bytes).unwrap().value;
        let dt = time.date_time();
        // The clock runs on from the time set: compare down to the hour.
        assert_eq!(
            (dt.year, dt.month, dt.day, dt.hours),
            (wrong.year, wrong.month, wrong.day, wrong.hours),
            "{address}: {time:?}"
        );
    }

    let bytes = current_time(&peripherals[UNSET]).await.unwrap();
    let time = CurrentTime::decode(&bytes).unwrap().value;
    assert_eq!(time.date_time().year, None, "unset: unknown date, {time:?}");
}
