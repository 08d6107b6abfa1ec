//! Through the real btleplug: a glucose meter whose device clock was set hours wrong shows that
//! time in its Current Time; a meter left unset does not.
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
use relais_bluez_sim::{DbusDaemon, GlucoseMeterSim, Simulator, sig_uuid};
use relais_protocol::time::CurrentTime;
use relais_protocol::{DateTime, uuid as sig};
use uuid::Uuid;

const WRONG: &str = "C0:FF:EE:00:00:61";
const UNSET: &str = "C0:FF:EE:00:00:62";

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
async fn btleplug_reads_a_wrong_and_an_unset_device_clock() {
    let bus = DbusDaemon::start().expect("dbus-daemon (Debian package `dbus`) must be installed");
    use_bus(&bus);
    let wrong_time = DateTime::new(2031, 1, 1, 3, 0, 0).unwrap();
    let wrong = GlucoseMeterSim::with_records(WRONG, 1)
        .unwrap()
        .with_device_clock(&wrong_time)
        .unwrap();
    let unset = GlucoseMeterSim::with_records(UNSET, 1).unwrap();
    let _sim = Simulator::start(bus.address(), vec![Box::new(wrong), Box::new(unset)])
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
        while peripherals.len() < 2 {
            if let Some(CentralEvent::DeviceDiscovered(id)) = events.next().await {
                let p = central.peripheral(&id).await.unwrap();
                let address = p.properties().await.unwrap().unwrap().address.to_string();
                peripherals.insert(address, p);
            }
        }
    })
    .await
    .expect("two meters");
    central.stop_scan().await.unwrap();

    let bytes = current_time(&peripherals[WRONG]).await.unwrap();
    let time = CurrentTime::decode(&bytes).unwrap().value;
    let dt = time.date_time();
    assert_eq!(
        (dt.year, dt.month, dt.day, dt.hours),
        (wrong_time.year, wrong_time.month, wrong_time.day, 3),
        "{time:?}"
    );

    let unset = current_time(&peripherals[UNSET]).await;
    let shown = unset
        .as_ref()
        .ok()
        .and_then(|b| CurrentTime::decode(b).ok())
        .map(|t| t.value.date_time().year);
    assert_ne!(shown, Some(wrong_time.year), "{unset:?}");
}
