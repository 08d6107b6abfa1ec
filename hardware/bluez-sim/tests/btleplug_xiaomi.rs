//! Through the real btleplug: an advertising-only Xiaomi Mi Smart Scale. Its service data on
//! 0x181D, from btleplug's ServiceDataAdvertisement events, decodes with relais-protocol and
//! follows a person stepping on (settling, stabilized) and off (removed); Connect fails.
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
use relais_bluez_sim::{DbusDaemon, Simulator, Weighing, XiaomiScaleSim, sig_uuid};
use relais_protocol::xiaomi::MiSmartScale;
use relais_protocol::{MedValue, Quantity, Unit};
use uuid::Uuid;

#[allow(unsafe_code)]
fn use_bus(bus: &DbusDaemon) {
    // SAFETY: set before btleplug's libdbus first reads it; no other thread reads it here.
    unsafe { std::env::set_var("DBUS_SYSTEM_BUS_ADDRESS", bus.address()) };
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn btleplug_decodes_a_xiaomi_scale_advertisement() {
    let bus = DbusDaemon::start().expect("dbus-daemon (Debian package `dbus`) must be installed");
    use_bus(&bus);
    let scale = XiaomiScaleSim::new("C0:FF:EE:00:00:31")
        .unwrap()
        .with_weighing(Weighing {
            on_ms: 1_000,
            off_ms: 3_500,
            mass_kg: 72.4,
        });
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
    central.start_scan(ScanFilter::default()).await.unwrap();
    let service = Uuid::parse_str(&sig_uuid(MiSmartScale::SERVICE_UUID)).unwrap();
    let mut seen = Vec::new();
    let id = tokio::time::timeout(Duration::from_secs(15), async {
        loop {
            if let Some(CentralEvent::ServiceDataAdvertisement { id, service_data }) =
                events.next().await
                && let Some(data) = service_data.get(&service)
            {
                let advert = MiSmartScale::decode(data).unwrap().value;
                let done = seen
                    .iter()
                    .any(|a: &MiSmartScale| a.stabilized && !a.weight_removed)
                    && advert.weight_removed
                    && advert.stabilized;
                seen.push(advert);
                if done {
                    return id;
                }
            }
        }
    })
    .await
    .expect("the weighing is broadcast, then removed");
    let weight = Quantity::new(MedValue::number(72_400, -3), Unit::Kilogram);
    assert!(
        seen.iter()
            .any(|a| a.stabilized && !a.weight_removed && a.weight == weight),
        "{seen:?}"
    );
    assert!(seen.last().is_some_and(|a| a.weight == weight));
    // Never connectable.
    let peripheral = central.peripheral(&id).await.unwrap();
    let text = format!(
        "{:?}",
        peripheral.connect().await.expect_err("not connectable")
    );
    assert!(text.contains("le-connection-abort-by-local"), "{text}");
    central.stop_scan().await.unwrap();
}
