//! While discovering, the adapter keeps reporting what devices advertise, with the types
//! btleplug needs: RssiUpdate, ServiceDataAdvertisement, ManufacturerDataAdvertisement.
//!
//! One test per binary (libdbus reads the bus address once per process). Needs `dbus-daemon`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::Duration;

use btleplug::api::{Central, CentralEvent, Manager as _, ScanFilter};
use btleplug::platform::Manager;
use futures::StreamExt;
use relais_bluez_sim::{DbusDaemon, GlucoseMeterSim, Simulator, sig_uuid};
use relais_protocol::uuid as sig;
use uuid::Uuid;

#[allow(unsafe_code)]
fn use_bus(bus: &DbusDaemon) {
    // SAFETY: set before btleplug's libdbus first reads it; no other thread reads it here.
    unsafe { std::env::set_var("DBUS_SYSTEM_BUS_ADDRESS", bus.address()) };
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_scan_keeps_reporting_advertisements() {
    let bus = DbusDaemon::start().expect("dbus-daemon (Debian package `dbus`) must be installed");
    use_bus(&bus);
    let service = sig_uuid(sig::GLUCOSE_SERVICE);
    let meter = GlucoseMeterSim::with_records("C0:FF:EE:00:00:07", 0)
        .unwrap()
        .with_service_data(&service, &[0xAB])
        .with_manufacturer_data(0xFFFF, &[1, 2, 3]);
    let _sim = Simulator::start(bus.address(), vec![Box::new(meter)])
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
    let service = Uuid::parse_str(&service).unwrap();
    let (mut rssi, mut service_data, mut manufacturer) = (false, false, false);
    tokio::time::timeout(Duration::from_secs(10), async {
        while !(rssi && service_data && manufacturer) {
            match events.next().await.expect("event stream open") {
                CentralEvent::RssiUpdate { rssi: r, .. } => rssi |= r == -60,
                CentralEvent::ServiceDataAdvertisement {
                    service_data: d, ..
                } => {
                    service_data |= d.get(&service) == Some(&vec![0xAB]);
                }
                CentralEvent::ManufacturerDataAdvertisement {
                    manufacturer_data: d,
                    ..
                } => manufacturer |= d.get(&0xFFFF) == Some(&vec![1, 2, 3]),
                _ => {}
            }
        }
    })
    .await
    .unwrap_or_else(|_| {
        panic!("rssi {rssi}, service data {service_data}, manufacturer data {manufacturer}")
    });
    central.stop_scan().await.unwrap();
}
