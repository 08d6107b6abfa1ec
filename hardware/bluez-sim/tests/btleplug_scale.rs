//! The firmware scale on the simulated board (HX711, load cell) through the real btleplug: a
//! weighing taken while no gateway was connected is indicated when the gateway subscribes.
//!
//! One test per binary (libdbus reads the bus address once per process). Needs `dbus-daemon`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::Duration;

use btleplug::api::{Central, CentralEvent, Manager as _, Peripheral as _, ScanFilter};
use btleplug::platform::Manager;
use futures::StreamExt;
use relais_bluez_sim::{DbusDaemon, ScaleSim, Simulator, Weighing, sig_uuid};
use relais_protocol::weight_scale::{WeightMeasurement, WeightScaleFeature};
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
async fn an_offline_weighing_is_indicated_through_btleplug() {
    let bus = DbusDaemon::start().expect("dbus-daemon (Debian package `dbus`) must be installed");
    use_bus(&bus);
    let scale = ScaleSim::new("C0:FF:EE:00:00:05")
        .with_weighing(Weighing {
            on_ms: 5_000,
            off_ms: 20_000,
            mass_kg: 72.0,
        })
        .run_before_start(25_000)
        .spawn()
        .unwrap();
    let _sim = Simulator::start(bus.address(), vec![Box::new(scale)])
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
    central
        .start_scan(ScanFilter {
            services: vec![uuid16(sig::WEIGHT_SCALE_SERVICE)],
        })
        .await
        .unwrap();
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
    let find = |short: u16| {
        chars
            .iter()
            .find(|c| c.uuid == uuid16(short))
            .unwrap()
            .clone()
    };

    let feature = peripheral
        .read(&find(sig::WEIGHT_SCALE_FEATURE))
        .await
        .unwrap();
    assert!(WeightScaleFeature::decode(&feature).is_ok());

    let measurement = find(sig::WEIGHT_MEASUREMENT);
    let mut notifications = peripheral.notifications().await.unwrap();
    peripheral.subscribe(&measurement).await.unwrap();
    let bytes = tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            let n = notifications.next().await.expect("stream open");
            if n.uuid == measurement.uuid {
                return n.value;
            }
        }
    })
    .await
    .expect("the queued weighing is indicated");
    let weight = WeightMeasurement::decode(&bytes).unwrap().value;
    let kg = weight.weight.to_f64().unwrap();
    // Nominal calibration, as in the firmware's own test.
    assert!((kg - 72.0).abs() < 8.0, "{kg}");
    peripheral.disconnect().await.unwrap();
}
