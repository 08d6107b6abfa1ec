//! Fault injection seen through the real btleplug 0.13.5: an injected ATT error on a read, a lost
//! measurement notification, a delayed RACP indication, a link dropped in the middle of a RACP
//! transfer (a disconnect event, the records received a prefix), the adapter switched off
//! (the link drops, connect and scan fail).
//!
//! One test per binary (libdbus reads the bus address once per process). Needs `dbus-daemon`.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::pin::Pin;
use std::time::{Duration, Instant};

use btleplug::api::{
    Central, CentralEvent, Characteristic, Manager as _, Peripheral as _, ScanFilter,
    ValueNotification, WriteType,
};
use btleplug::platform::{Manager, Peripheral};
use futures::{Stream, StreamExt};
use relais_bluez_sim::{DbusDaemon, GlucoseMeterSim, Simulator, sig_uuid};
use relais_firmware::gatt::AttError;
use relais_protocol::glucose::GlucoseMeasurement;
use relais_protocol::racp::{RacpRequest, RacpResponse};
use relais_protocol::{Characteristic as _, Quirks, uuid as sig};
use uuid::Uuid;

const ADDRESS: &str = "C0:FF:EE:00:00:0F";
const RECORDS: u32 = 6;

type Notifications = Pin<Box<dyn Stream<Item = ValueNotification> + Send>>;

fn uuid16(short: u16) -> Uuid {
    Uuid::parse_str(&sig_uuid(short)).unwrap()
}

#[allow(unsafe_code)]
fn use_bus(bus: &DbusDaemon) {
    // SAFETY: set before btleplug's libdbus first reads it; no other thread reads it here.
    unsafe { std::env::set_var("DBUS_SYSTEM_BUS_ADDRESS", bus.address()) };
}

async fn report_all(peripheral: &Peripheral, racp: &Characteristic) {
    let mut request = [0u8; 8];
    let n = RacpRequest::records_after(None, Quirks::NONE)
        .encode(&mut request)
        .unwrap();
    peripheral
        .write(racp, &request[..n], WriteType::WithResponse)
        .await
        .unwrap();
}

/// The measurements' sequence numbers up to the RACP indication, and when it came.
async fn collect_report(notifications: &mut Notifications) -> (Vec<u16>, Instant) {
    let measurement = uuid16(sig::GLUCOSE_MEASUREMENT);
    let racp = uuid16(sig::RECORD_ACCESS_CONTROL_POINT);
    let mut sequence_numbers = Vec::new();
    tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            let n = notifications.next().await.expect("stream open");
            if n.uuid == measurement {
                let m = GlucoseMeasurement::decode(&n.value).unwrap().value;
                sequence_numbers.push(m.sequence_number);
            } else if n.uuid == racp {
                RacpResponse::decode(&n.value).unwrap();
                return;
            }
        }
    })
    .await
    .expect("the report ends with the RACP indication");
    (sequence_numbers, Instant::now())
}

async fn connect_and_subscribe(peripheral: &Peripheral) -> Vec<Characteristic> {
    peripheral.connect().await.unwrap();
    peripheral.discover_services().await.unwrap();
    let chars: Vec<Characteristic> = peripheral.characteristics().into_iter().collect();
    for short in [
        sig::GLUCOSE_MEASUREMENT,
        sig::GLUCOSE_MEASUREMENT_CONTEXT,
        sig::RECORD_ACCESS_CONTROL_POINT,
    ] {
        let c = chars.iter().find(|c| c.uuid == uuid16(short)).unwrap();
        peripheral.subscribe(c).await.unwrap();
    }
    chars
}

async fn wait_disconnected(
    events: &mut Pin<Box<dyn Stream<Item = CentralEvent> + Send>>,
    peripheral: &Peripheral,
) {
    tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            if let Some(CentralEvent::DeviceDisconnected(id)) = events.next().await
                && id == peripheral.id()
            {
                return;
            }
        }
    })
    .await
    .expect("a disconnect event");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn btleplug_sees_injected_faults() {
    let bus = DbusDaemon::start().expect("dbus-daemon (Debian package `dbus`) must be installed");
    use_bus(&bus);
    let meter = GlucoseMeterSim::with_records(ADDRESS, RECORDS).unwrap();
    let sim = Simulator::start(bus.address(), vec![Box::new(meter)])
        .await
        .unwrap();
    let control = sim.control();
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
    let mut notifications: Notifications = peripheral.notifications().await.unwrap();
    let chars = connect_and_subscribe(&peripheral).await;
    let find = |short: u16| chars.iter().find(|c| c.uuid == uuid16(short)).unwrap();
    let racp = find(sig::RECORD_ACCESS_CONTROL_POINT).clone();

    // An injected ATT error fails the next read only, with bluetoothd's error text.
    control
        .fail_next(
            ADDRESS,
            &sig_uuid(sig::GLUCOSE_FEATURE),
            AttError::UnlikelyError,
        )
        .await
        .unwrap();
    let feature = find(sig::GLUCOSE_FEATURE);
    let text = format!("{:?}", peripheral.read(feature).await.expect_err("0x0e"));
    assert!(text.contains("0x0e"), "{text}");
    assert_eq!(peripheral.read(feature).await.unwrap().len(), 2);

    // The reference report.
    report_all(&peripheral, &racp).await;
    let (all, _) = collect_report(&mut notifications).await;
    assert_eq!(all.len(), RECORDS as usize, "{all:?}");

    // A lost notification is never received.
    control
        .lose_notifications(ADDRESS, &sig_uuid(sig::GLUCOSE_MEASUREMENT), 1)
        .await
        .unwrap();
    report_all(&peripheral, &racp).await;
    let (lossy, _) = collect_report(&mut notifications).await;
    assert_eq!(lossy, all[1..], "the first measurement is lost");

    // A delayed indication comes late.
    let delay = Duration::from_millis(400);
    control
        .delay_notifications(ADDRESS, &sig_uuid(sig::RECORD_ACCESS_CONTROL_POINT), delay)
        .await
        .unwrap();
    let asked = Instant::now();
    report_all(&peripheral, &racp).await;
    let (late, at) = collect_report(&mut notifications).await;
    assert_eq!(late, all);
    assert!(at.duration_since(asked) >= delay, "{:?}", at - asked);
    control
        .delay_notifications(
            ADDRESS,
            &sig_uuid(sig::RECORD_ACCESS_CONTROL_POINT),
            Duration::ZERO,
        )
        .await
        .unwrap();

    // The link drops after 3 notifications of a RACP transfer: a disconnect event, a prefix.
    control
        .drop_link_after_notifications(ADDRESS, 3)
        .await
        .unwrap();
    // The write may or may not be answered before the link goes.
    let mut request = [0u8; 8];
    let n = RacpRequest::records_after(None, Quirks::NONE)
        .encode(&mut request)
        .unwrap();
    let _ = peripheral
        .write(&racp, &request[..n], WriteType::WithResponse)
        .await;
    wait_disconnected(&mut events, &peripheral).await;
    assert!(!peripheral.is_connected().await.unwrap());
    let mut prefix = Vec::new();
    let measurement = uuid16(sig::GLUCOSE_MEASUREMENT);
    while let Ok(Some(n)) =
        tokio::time::timeout(Duration::from_millis(300), notifications.next()).await
    {
        if n.uuid == measurement {
            prefix.push(
                GlucoseMeasurement::decode(&n.value)
                    .unwrap()
                    .value
                    .sequence_number,
            );
        }
        assert_ne!(n.uuid, racp.uuid, "the transfer never completes");
    }
    assert!(!prefix.is_empty() && prefix.len() < all.len(), "{prefix:?}");
    assert_eq!(prefix, all[..prefix.len()]);

    // The adapter goes off: the link drops, connect and scan fail.
    connect_and_subscribe(&peripheral).await;
    control.power_off().await.unwrap();
    wait_disconnected(&mut events, &peripheral).await;
    let text = format!("{:?}", peripheral.connect().await.expect_err("adapter off"));
    assert!(
        text.contains("NotReady") || text.contains("Not Ready"),
        "{text}"
    );
    assert!(central.start_scan(ScanFilter::default()).await.is_err());

    // Back on: btleplug powers it again when it scans.
    control.power_on().await.unwrap();
    central.start_scan(ScanFilter::default()).await.unwrap();
    central.stop_scan().await.unwrap();
    peripheral.connect().await.unwrap();
    peripheral.disconnect().await.unwrap();
}
