//! Through the real btleplug: the scripted devices (no firmware) built from relais-protocol
//! encoders. A thermometer's Temperature Measurement indication, a pulse oximeter's PLX
//! spot-check indication, a CGM's measurement notifications and readable session start time,
//! each decoded with relais-protocol.
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

use btleplug::api::{
    Central, CentralEvent, Manager as _, Peripheral as _, ScanFilter, ValueNotification,
};
use btleplug::platform::{Manager, Peripheral};
use futures::StreamExt;
use relais_bluez_sim::{DbusDaemon, ScriptedDevice, Simulator, sig_uuid};
use relais_protocol::blood_pressure::BloodPressureMeasurement;
use relais_protocol::cgm::{
    CgmMeasurement, CgmMeasurementRecord, CgmSessionStartTime, SensorStatusAnnunciation,
};
use relais_protocol::pulse_oximeter::PlxSpotCheckMeasurement;
use relais_protocol::thermometer::TemperatureMeasurement;
use relais_protocol::time::{DstOffset, TimeZone};
use relais_protocol::{
    Characteristic as _, DateTime, MedValue, Quantity, Quirks, Unit, uuid as sig,
};
use uuid::Uuid;

const THERMOMETER: &str = "C0:FF:EE:00:00:41";
const OXIMETER: &str = "C0:FF:EE:00:00:42";
const CGM: &str = "C0:FF:EE:00:00:43";
const BEURER: &str = "C0:FF:EE:00:00:44";

fn uuid16(short: u16) -> Uuid {
    Uuid::parse_str(&sig_uuid(short)).unwrap()
}

#[allow(unsafe_code)]
fn use_bus(bus: &DbusDaemon) {
    // SAFETY: set before btleplug's libdbus first reads it; no other thread reads it here.
    unsafe { std::env::set_var("DBUS_SYSTEM_BUS_ADDRESS", bus.address()) };
}

fn at(hour: u8) -> DateTime {
    DateTime::new(2024, 3, 1, hour, 0, 0).unwrap()
}

fn cgm_record(mg_dl: i64, time_offset: u16) -> CgmMeasurementRecord {
    CgmMeasurementRecord {
        glucose_concentration: Quantity::new(
            MedValue::number(mg_dl, 0),
            Unit::MilligramPerDecilitre,
        ),
        time_offset,
        sensor_status_annunciation: SensorStatusAnnunciation::default(),
        trend_information: None,
        quality: None,
        e2e_crc: false,
    }
}

/// Subscribes to `characteristic` of the device at `address` and returns the first `count`
/// values it sends.
async fn receive(
    peripherals: &HashMap<String, Peripheral>,
    address: &str,
    characteristic: u16,
    count: usize,
) -> (Peripheral, Vec<Vec<u8>>) {
    let peripheral = peripherals[address].clone();
    peripheral.connect().await.unwrap();
    peripheral.discover_services().await.unwrap();
    let c = peripheral
        .characteristics()
        .into_iter()
        .find(|c| c.uuid == uuid16(characteristic))
        .unwrap();
    let mut notifications = peripheral.notifications().await.unwrap();
    peripheral.subscribe(&c).await.unwrap();
    let mut values = Vec::new();
    tokio::time::timeout(Duration::from_secs(10), async {
        while values.len() < count {
            let n: ValueNotification = notifications.next().await.unwrap();
            if n.uuid == c.uuid {
                values.push(n.value);
            }
        }
    })
    .await
    .expect("the scripted values");
    (peripheral, values)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn btleplug_decodes_the_scripted_devices() {
    let bus = DbusDaemon::start().expect("dbus-daemon (Debian package `dbus`) must be installed");
    use_bus(&bus);
    let temperature = TemperatureMeasurement {
        temperature: Quantity::new(MedValue::number(3712, -2), Unit::Celsius),
        time_stamp: Some(at(7)),
        temperature_type: None,
    };
    let spot_check = PlxSpotCheckMeasurement {
        spo2: Quantity::new(MedValue::number(97, 0), Unit::Percent),
        pulse_rate: Quantity::new(MedValue::number(64, 0), Unit::PerMinute),
        timestamp: Some(at(8)),
        measurement_status: None,
        device_and_sensor_status: None,
        pulse_amplitude_index: None,
        device_clock_not_set: false,
    };
    let session = CgmSessionStartTime {
        session_start_time: at(6),
        time_zone: TimeZone::QuarterHours(4),
        dst_offset: DstOffset::StandardTime,
        e2e_crc: false,
    };
    let records = [cgm_record(101, 0), cgm_record(104, 5), cgm_record(110, 10)];
    let mut cgm = ScriptedDevice::cgm(CGM).with_value(&session).unwrap();
    for r in records {
        cgm = cgm.with(&CgmMeasurement::from(r)).unwrap();
    }
    let beurer = Quirks {
        beurer_big_endian_pulse_status: true,
        ..Quirks::NONE
    };
    let pressure = |mmhg| Quantity::new(MedValue::number(mmhg, 0), Unit::MillimetreOfMercury);
    let bp = BloodPressureMeasurement {
        systolic: pressure(128),
        diastolic: pressure(84),
        mean_arterial_pressure: pressure(99),
        time_stamp: Some(at(9)),
        pulse_rate: Some(Quantity::new(MedValue::number(0x0102, 0), Unit::PerMinute)),
        user_id: None,
        measurement_status: None,
    };
    let devices: Vec<Box<dyn relais_bluez_sim::VirtualDevice>> = vec![
        Box::new(
            ScriptedDevice::blood_pressure(BEURER)
                .with_quirks(&bp, beurer)
                .unwrap(),
        ),
        Box::new(
            ScriptedDevice::thermometer(THERMOMETER)
                .with(&temperature)
                .unwrap(),
        ),
        Box::new(
            ScriptedDevice::pulse_oximeter(OXIMETER)
                .with(&spot_check)
                .unwrap(),
        ),
        Box::new(cgm),
    ];
    let _sim = Simulator::start(bus.address(), devices).await.unwrap();
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
        while peripherals.len() < 4 {
            if let Some(CentralEvent::DeviceDiscovered(id)) = events.next().await {
                let p = central.peripheral(&id).await.unwrap();
                let address = p.properties().await.unwrap().unwrap().address.to_string();
                peripherals.insert(address, p);
            }
        }
    })
    .await
    .expect("four devices");
    central.stop_scan().await.unwrap();

    let (p, values) = receive(&peripherals, THERMOMETER, sig::TEMPERATURE_MEASUREMENT, 1).await;
    assert_eq!(
        TemperatureMeasurement::decode(&values[0]).unwrap().value,
        temperature
    );
    p.disconnect().await.unwrap();

    let (p, values) = receive(&peripherals, OXIMETER, sig::PLX_SPOT_CHECK_MEASUREMENT, 1).await;
    assert_eq!(
        PlxSpotCheckMeasurement::decode(&values[0]).unwrap().value,
        spot_check
    );
    p.disconnect().await.unwrap();

    let (p, values) = receive(&peripherals, BEURER, sig::BLOOD_PRESSURE_MEASUREMENT, 1).await;
    assert_ne!(
        BloodPressureMeasurement::decode(&values[0])
            .map(|d| d.value)
            .ok(),
        Some(bp),
        "the quirk changes the bytes"
    );
    assert_eq!(
        BloodPressureMeasurement::decode_with(&values[0], beurer)
            .unwrap()
            .value,
        bp
    );
    p.disconnect().await.unwrap();

    let (p, values) = receive(&peripherals, CGM, sig::CGM_MEASUREMENT, 3).await;
    let got: Vec<CgmMeasurementRecord> = values
        .iter()
        .flat_map(|v| CgmMeasurement::decode(v).unwrap().value.records)
        .collect();
    assert_eq!(got, records);
    let start = p
        .characteristics()
        .into_iter()
        .find(|c| c.uuid == uuid16(sig::CGM_SESSION_START_TIME))
        .unwrap();
    let read = p.read(&start).await.unwrap();
    assert_eq!(CgmSessionStartTime::decode(&read).unwrap().value, session);
    p.disconnect().await.unwrap();
}
