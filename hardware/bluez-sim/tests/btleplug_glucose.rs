//! The real btleplug 0.13.5 (bluez-async, libdbus) against the emulated BlueZ and the firmware
//! glucose meter: adapter, scan, connect, GATT discovery, Device Information, a RACP report.
//!
//! One test per binary: libdbus reads `DBUS_SYSTEM_BUS_ADDRESS` once per process. It needs
//! `dbus-daemon` and fails without it.
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
use relais_protocol::device_information::{ManufacturerNameString, ModelNumberString};
use relais_protocol::glucose::GlucoseMeasurement;
use relais_protocol::racp::{OpCode, RacpRequest, RacpResponse, ResponseCode};
use relais_protocol::{Characteristic as _, Quirks, uuid as sig};
use uuid::Uuid;

const ADDRESS: &str = "C0:FF:EE:00:00:01";
const RECORDS: u32 = 7;

fn uuid16(short: u16) -> Uuid {
    Uuid::parse_str(&sig_uuid(short)).unwrap()
}

#[allow(unsafe_code)]
fn use_bus(bus: &DbusDaemon) {
    // SAFETY: set before any other thread of this test reads the environment (btleplug's
    // libdbus reads it at its first connection, below).
    unsafe { std::env::set_var("DBUS_SYSTEM_BUS_ADDRESS", bus.address()) };
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn btleplug_scans_connects_reads_and_receives_a_glucose_racp_report() {
    let bus = DbusDaemon::start().expect("dbus-daemon (Debian package `dbus`) must be installed");
    use_bus(&bus);
    let meter = GlucoseMeterSim::with_records(ADDRESS, RECORDS)
        .unwrap()
        .with_service_data(&sig_uuid(sig::GLUCOSE_SERVICE), &[0x01, 0x02]);
    let _sim = Simulator::start(bus.address(), vec![Box::new(meter)])
        .await
        .unwrap();

    // Adapters.
    let manager = Manager::new().await.unwrap();
    let adapters = manager.adapters().await.unwrap();
    assert_eq!(adapters.len(), 1, "the emulated hci0");
    let central = adapters.into_iter().next().unwrap();
    assert!(central.adapter_info().await.unwrap().contains("hci0"));

    // Scan with a service filter: the meter appears with its advertisement.
    let mut events = central.events().await.unwrap();
    central
        .start_scan(ScanFilter {
            services: vec![uuid16(sig::GLUCOSE_SERVICE)],
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
    .expect("the meter is discovered");
    central.stop_scan().await.unwrap();
    let peripheral = central.peripheral(&id).await.unwrap();
    let props = peripheral.properties().await.unwrap().unwrap();
    assert_eq!(props.address.to_string(), ADDRESS);
    assert_eq!(props.local_name.as_deref(), Some("RS-GLUCOSE"));
    assert_eq!(props.rssi, Some(-60));
    assert!(props.services.contains(&uuid16(sig::GLUCOSE_SERVICE)));
    assert_eq!(
        props.service_data.get(&uuid16(sig::GLUCOSE_SERVICE)),
        Some(&vec![0x01, 0x02])
    );

    // Connect and discover the firmware's table.
    peripheral.connect().await.unwrap();
    assert!(peripheral.is_connected().await.unwrap());
    peripheral.discover_services().await.unwrap();
    let services: Vec<Uuid> = peripheral.services().iter().map(|s| s.uuid).collect();
    for service in [
        sig::DEVICE_INFORMATION_SERVICE,
        sig::CURRENT_TIME_SERVICE,
        sig::GLUCOSE_SERVICE,
    ] {
        assert!(
            services.contains(&uuid16(service)),
            "{service:04x} in {services:?}"
        );
    }
    let chars = peripheral.characteristics();
    let find = |short: u16| {
        chars
            .iter()
            .find(|c| c.uuid == uuid16(short))
            .unwrap_or_else(|| panic!("characteristic {short:04x}"))
            .clone()
    };
    let racp = find(sig::RECORD_ACCESS_CONTROL_POINT);
    let cccd = Uuid::parse_str(&sig_uuid(0x2902)).unwrap();
    assert!(racp.descriptors.iter().any(|d| d.uuid == cccd));

    // Device Information, decoded (the manufacturer name needs a long read).
    let manufacturer = peripheral
        .read(&find(sig::MANUFACTURER_NAME_STRING))
        .await
        .unwrap();
    assert_eq!(
        ManufacturerNameString::decode(&manufacturer)
            .unwrap()
            .value
            .as_str(),
        "Relais reference design"
    );
    let model = peripheral
        .read(&find(sig::MODEL_NUMBER_STRING))
        .await
        .unwrap();
    assert_eq!(
        ModelNumberString::decode(&model).unwrap().value.as_str(),
        "RS-GLUCOSE"
    );

    // Subscribe, then "report all records": the measurements, then the RACP indication.
    let measurement = find(sig::GLUCOSE_MEASUREMENT);
    let mut notifications = peripheral.notifications().await.unwrap();
    for c in [&measurement, &find(sig::GLUCOSE_MEASUREMENT_CONTEXT), &racp] {
        peripheral.subscribe(c).await.unwrap();
    }
    let mut request = [0u8; 8];
    let n = RacpRequest::records_after(None, Quirks::NONE)
        .encode(&mut request)
        .unwrap();
    peripheral
        .write(&racp, &request[..n], WriteType::WithResponse)
        .await
        .unwrap();
    let mut sequence_numbers = Vec::new();
    let end = tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            let n = notifications
                .next()
                .await
                .expect("notification stream open");
            if n.uuid == measurement.uuid {
                let m = GlucoseMeasurement::decode(&n.value).unwrap().value;
                sequence_numbers.push(m.sequence_number);
            } else if n.uuid == racp.uuid {
                return RacpResponse::decode(&n.value).unwrap().value;
            }
        }
    })
    .await
    .expect("the report ends with the RACP indication");
    assert_eq!(
        end,
        RacpResponse::ResponseCode {
            request_op_code: OpCode::ReportStoredRecords,
            response_code: ResponseCode::Success,
        }
    );
    assert_eq!(
        sequence_numbers.len(),
        RECORDS as usize,
        "{sequence_numbers:?}"
    );
    assert!(sequence_numbers.windows(2).all(|w| w[0] < w[1]));

    // Unsubscribe and disconnect.
    peripheral.unsubscribe(&measurement).await.unwrap();
    peripheral.disconnect().await.unwrap();
    assert!(!peripheral.is_connected().await.unwrap());
}
