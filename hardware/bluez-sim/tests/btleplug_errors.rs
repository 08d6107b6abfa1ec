//! Through the real btleplug: what BlueZ refuses (CCCD writes), what 0.13.5 tolerates
//! (unsubscribing twice), write commands, and a second connection after a disconnection with the
//! GATT objects kept (BlueZ's Cache=always).
//!
//! One test per binary (libdbus reads the bus address once per process). Needs `dbus-daemon`.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::time::Duration;

use btleplug::api::{Central, CentralEvent, Manager as _, Peripheral as _, ScanFilter, WriteType};
use btleplug::platform::Manager;
use futures::StreamExt;
use relais_bluez_sim::{DbusDaemon, GlucoseMeterSim, Simulator, sig_uuid};
use relais_protocol::uuid as sig;
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
async fn btleplug_sees_bluez_refusals_and_reconnects() {
    let bus = DbusDaemon::start().expect("dbus-daemon (Debian package `dbus`) must be installed");
    use_bus(&bus);
    let meter = GlucoseMeterSim::with_records("C0:FF:EE:00:00:04", 2).unwrap();
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
    let id = tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            if let Some(CentralEvent::DeviceDiscovered(id)) = events.next().await {
                return id;
            }
        }
    })
    .await
    .expect("discovered");
    let peripheral = central.peripheral(&id).await.unwrap();
    peripheral.connect().await.unwrap();
    peripheral.discover_services().await.unwrap();
    let chars = peripheral.characteristics();
    let racp = chars
        .iter()
        .find(|c| c.uuid == uuid16(sig::RECORD_ACCESS_CONTROL_POINT))
        .unwrap()
        .clone();
    let cccd = racp
        .descriptors
        .iter()
        .find(|d| d.uuid == uuid16(0x2902))
        .unwrap()
        .clone();

    // BlueZ owns the CCCDs: a direct write is refused.
    let refused = peripheral.write_descriptor(&cccd, &[2, 0]).await;
    let text = format!("{:?}", refused.expect_err("CCCD writes are refused"));
    assert!(text.contains("Write not permitted"), "{text}");

    // Unsubscribing what was never subscribed is fine in 0.13.5.
    peripheral.unsubscribe(&racp).await.unwrap();

    // A write command gets no answer, even one the firmware drops (RACP without indications).
    peripheral
        .write(&racp, &[0x01, 0x01], WriteType::WithoutResponse)
        .await
        .unwrap();
    // A write request gets the firmware's ATT error.
    let improperly = peripheral
        .write(&racp, &[0x01, 0x01], WriteType::WithResponse)
        .await;
    let text = format!("{:?}", improperly.expect_err("0xFD"));
    assert!(text.contains("0xfd"), "{text}");

    // Disconnect, then connect again: the same objects serve again.
    peripheral.disconnect().await.unwrap();
    assert!(!peripheral.is_connected().await.unwrap());
    peripheral.connect().await.unwrap();
    peripheral.discover_services().await.unwrap();
    let feature = peripheral
        .characteristics()
        .into_iter()
        .find(|c| c.uuid == uuid16(sig::GLUCOSE_FEATURE))
        .unwrap();
    assert_eq!(peripheral.read(&feature).await.unwrap().len(), 2);
    peripheral.subscribe(&racp).await.unwrap();
    peripheral.unsubscribe(&racp).await.unwrap();
    peripheral.disconnect().await.unwrap();
}
