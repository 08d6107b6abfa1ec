//! Through the real btleplug: the emission log tells, per device and characteristic, when each
//! notification and indication was emitted on the bus, in the order btleplug receives them, so
//! a client can measure its latency.
//!
//! One test per binary (libdbus reads the bus address once per process). Needs `dbus-daemon`.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::time::{Duration, Instant};

use btleplug::api::{Central, CentralEvent, Manager as _, Peripheral as _, ScanFilter, WriteType};
use btleplug::platform::Manager;
use futures::StreamExt;
use relais_bluez_sim::{DbusDaemon, GlucoseMeterSim, Simulator, sig_uuid};
use relais_protocol::racp::RacpRequest;
use relais_protocol::{Characteristic as _, Quirks, uuid as sig};
use tokio::sync::broadcast::error::RecvError;
use uuid::Uuid;

const ADDRESS: &str = "C0:FF:EE:00:00:81";
const RECORDS: u32 = 5;

fn uuid16(short: u16) -> Uuid {
    Uuid::parse_str(&sig_uuid(short)).unwrap()
}

#[allow(unsafe_code)]
fn use_bus(bus: &DbusDaemon) {
    // SAFETY: set before btleplug's libdbus first reads it; no other thread reads it here.
    unsafe { std::env::set_var("DBUS_SYSTEM_BUS_ADDRESS", bus.address()) };
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_emission_log_times_each_notification_and_indication() {
    let bus = DbusDaemon::start().expect("dbus-daemon (Debian package `dbus`) must be installed");
    use_bus(&bus);
    let meter = GlucoseMeterSim::with_records(ADDRESS, RECORDS).unwrap();
    let sim = Simulator::start(bus.address(), vec![Box::new(meter)])
        .await
        .unwrap();
    let control = sim.control();
    let mut emissions = control.subscribe_emissions();

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
    let racp = find(sig::RECORD_ACCESS_CONTROL_POINT);
    let mut notifications = peripheral.notifications().await.unwrap();
    for short in [
        sig::GLUCOSE_MEASUREMENT,
        sig::GLUCOSE_MEASUREMENT_CONTEXT,
        sig::RECORD_ACCESS_CONTROL_POINT,
    ] {
        peripheral.subscribe(find(short)).await.unwrap();
    }
    let mut request = [0u8; 8];
    let n = RacpRequest::records_after(None, Quirks::NONE)
        .encode(&mut request)
        .unwrap();
    peripheral
        .write(racp, &request[..n], WriteType::WithResponse)
        .await
        .unwrap();
    // Measurement and context per record, then the RACP indication.
    let expected = 2 * RECORDS as usize + 1;
    let mut received = Vec::new();
    tokio::time::timeout(Duration::from_secs(10), async {
        while received.len() < expected {
            let n = notifications.next().await.unwrap();
            received.push((n.uuid, n.value.len(), Instant::now()));
        }
    })
    .await
    .expect("the report");

    let mut logged = Vec::new();
    while logged.len() < expected {
        logged.push(
            emissions
                .try_recv()
                .expect("one emission per value received"),
        );
    }
    assert!(emissions.try_recv().is_err(), "nothing else was emitted");
    for (emission, (uuid, len, received_at)) in logged.iter().zip(&received) {
        assert_eq!(emission.address, ADDRESS);
        assert_eq!(uuid16(emission.characteristic), *uuid);
        assert_eq!(emission.uuid, uuid.to_string());
        assert_eq!(emission.len, *len);
        assert!(emission.at <= *received_at, "emitted before received");
        println!(
            "{:04x} {} bytes: {:?} on the way",
            emission.characteristic,
            emission.len,
            received_at.duration_since(emission.at)
        );
    }
    assert!(logged.windows(2).all(|w| w[0].at <= w[1].at));
    let kinds: Vec<(u16, bool)> = logged
        .iter()
        .map(|e| (e.characteristic, e.indication))
        .collect();
    assert_eq!(kinds[0], (sig::GLUCOSE_MEASUREMENT, false));
    assert_eq!(kinds[1], (sig::GLUCOSE_MEASUREMENT_CONTEXT, false));
    assert_eq!(
        kinds.last(),
        Some(&(sig::RECORD_ACCESS_CONTROL_POINT, true))
    );

    // A lost notification never reaches the bus, so it is not logged.
    control
        .lose_notifications(ADDRESS, &sig_uuid(sig::GLUCOSE_MEASUREMENT), 1)
        .await
        .unwrap();
    peripheral
        .write(racp, &request[..n], WriteType::WithResponse)
        .await
        .unwrap();
    let mut measurements = 0;
    loop {
        let e = tokio::time::timeout(Duration::from_secs(10), emissions.recv())
            .await
            .unwrap()
            .unwrap();
        if e.characteristic == sig::GLUCOSE_MEASUREMENT {
            measurements += 1;
        }
        if e.indication {
            break;
        }
    }
    assert_eq!(measurements, RECORDS - 1);

    peripheral.disconnect().await.unwrap();
    drop(sim);
    let closed = tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            match emissions.recv().await {
                Err(RecvError::Closed) => return,
                Ok(_) | Err(RecvError::Lagged(_)) => {}
            }
        }
    })
    .await;
    assert!(closed.is_ok(), "the log closes with the simulator");
    assert!(matches!(
        control.subscribe_emissions().recv().await,
        Err(RecvError::Closed)
    ));
}
