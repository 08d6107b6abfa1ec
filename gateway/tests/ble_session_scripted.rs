//! The thermometer, pulse oximeter and CGM sessions through the supervisor and the real
//! btleplug, and a thermometer that sends garbage first: each measurement is delivered with its
//! readings (the CGM's timed from its session start), the garbage is skipped with a reason,
//! and no session stalls on it.
//!
//! One test per binary (libdbus reads the bus address once per process). Needs `dbus-daemon`.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod common;

use std::time::Duration;

use relais::ble::DeviceKind;
use relais::ble::supervisor::Ended;
use relais_bluez_sim::{ScriptedDevice, Simulator};
use relais_protocol::cgm::{
    CgmMeasurement, CgmMeasurementRecord, CgmSessionStartTime, SensorStatusAnnunciation,
};
use relais_protocol::pulse_oximeter::PlxSpotCheckMeasurement;
use relais_protocol::thermometer::TemperatureMeasurement;
use relais_protocol::time::{DstOffset, TimeZone};
use relais_protocol::{DateTime, DeviceTime, Kind, MedValue, Quantity, Unit, uuid};

const THERMOMETER: &str = "C0:FF:EE:00:01:31";
const OXIMETER: &str = "C0:FF:EE:00:01:32";
const CGM: &str = "C0:FF:EE:00:01:33";
const GARBAGE: &str = "C0:FF:EE:00:01:34";

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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_scripted_kind_is_delivered_and_garbage_skipped() {
    let bus = common::bus();
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
    let start = CgmSessionStartTime {
        session_start_time: at(6),
        time_zone: TimeZone::QuarterHours(4),
        dst_offset: DstOffset::StandardTime,
        e2e_crc: false,
    };
    let mut cgm = ScriptedDevice::cgm(CGM).with_value(&start).unwrap();
    for (mg_dl, minutes) in [(101, 0), (104, 5), (110, 10)] {
        cgm = cgm
            .with(&CgmMeasurement::from(cgm_record(mg_dl, minutes)))
            .unwrap();
    }
    let devices: Vec<Box<dyn relais_bluez_sim::VirtualDevice>> = vec![
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
        Box::new(
            ScriptedDevice::thermometer(GARBAGE)
                // Flags say a time stamp follows; the value ends after the temperature.
                .with_raw(
                    uuid::TEMPERATURE_MEASUREMENT,
                    &[0x02, 0x74, 0x0E, 0x00, 0xFE],
                )
                .unwrap()
                .with_raw(uuid::TEMPERATURE_MEASUREMENT, &[0xFF])
                .unwrap()
                .with(&temperature)
                .unwrap(),
        ),
    ];
    let _sim = Simulator::start(bus.address(), devices).await.unwrap();

    let watched = common::watch(
        common::quick(),
        |_| Some(common::plan()),
        Duration::from_secs(30),
        |w| {
            [THERMOMETER, OXIMETER, CGM, GARBAGE]
                .iter()
                .all(|a| w.done(a) >= 1)
        },
    )
    .await;

    let [thermo] = &watched.from(THERMOMETER)[..] else {
        panic!("{:?}", watched.deliveries)
    };
    assert_eq!(thermo.kind, DeviceKind::Thermometer);
    assert_eq!(thermo.readings[0].kind, Kind::BodyTemperature);

    let [oxi] = &watched.from(OXIMETER)[..] else {
        panic!("{:?}", watched.deliveries)
    };
    let kinds: Vec<Kind> = oxi.readings.iter().map(|r| r.kind).collect();
    assert!(kinds.contains(&Kind::OxygenSaturation), "{kinds:?}");

    let cgm = watched.from(CGM);
    assert_eq!(cgm.len(), 3, "one delivery per notification");
    // Timed from the session start read at connection: 06:00, 06:05, 06:10.
    let times: Vec<String> = cgm
        .iter()
        .map(|d| match d.readings[0].time {
            DeviceTime::Known(t) => t.to_string(),
            other => panic!("untimed CGM reading {other:?}"),
        })
        .collect();
    assert_eq!(
        times,
        [
            "2024-03-01T06:00:00",
            "2024-03-01T06:05:00",
            "2024-03-01T06:10:00"
        ]
    );

    let skipped: Vec<_> = watched
        .skipped
        .iter()
        .filter(|(a, _, _)| a == GARBAGE)
        .collect();
    assert_eq!(skipped.len(), 2, "{skipped:?}");
    assert!(
        skipped
            .iter()
            .all(|(_, c, _)| *c == uuid::TEMPERATURE_MEASUREMENT)
    );
    assert!(skipped[0].2.contains("time_stamp"), "{}", skipped[0].2);
    // No health value in the reason.
    assert!(!skipped[0].2.contains("37"), "{}", skipped[0].2);
    // The good value after the garbage still arrives, and the session ends well.
    assert_eq!(watched.from(GARBAGE).len(), 1);
    let Some(Ended::Done(outcome)) = watched.ended(GARBAGE).first().copied() else {
        panic!("{:?}", watched.ended(GARBAGE))
    };
    assert_eq!((outcome.delivered, outcome.skipped), (1, 2));
}
