//! Through the real btleplug: a scripted body composition scale (Weight Scale and Body
//! Composition services) sending a Weight Measurement and a Body Composition Measurement per
//! weighing, one of them split in two packets; and a weight scale whose feature lies, with a
//! truncated and a garbage measurement. Decoded with relais-protocol.
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
use relais_bluez_sim::{DbusDaemon, ScriptedDevice, Simulator, sig_uuid};
use relais_protocol::body_composition::{
    BodyCompositionFeature, BodyCompositionMeasurement, CompositionAssembler,
};
use relais_protocol::weight_scale::{
    HeightResolution, WeightMeasurement, WeightResolution, WeightScaleFeature,
};
use relais_protocol::{Characteristic as _, DateTime, MedValue, Quantity, Unit, uuid as sig};
use uuid::Uuid;

const BODY: &str = "C0:FF:EE:00:00:91";
const LIAR: &str = "C0:FF:EE:00:00:92";

fn uuid16(short: u16) -> Uuid {
    Uuid::parse_str(&sig_uuid(short)).unwrap()
}

#[allow(unsafe_code)]
fn use_bus(bus: &DbusDaemon) {
    // SAFETY: set before btleplug's libdbus first reads it; no other thread reads it here.
    unsafe { std::env::set_var("DBUS_SYSTEM_BUS_ADDRESS", bus.address()) };
}

fn q(mantissa: i64, exponent: i8, unit: Unit) -> Quantity {
    Quantity::new(MedValue::number(mantissa, exponent), unit)
}

fn weighing(decigrams: i64, hour: u8) -> (WeightMeasurement, BodyCompositionMeasurement) {
    let time_stamp = Some(DateTime::new(2024, 3, 1, hour, 0, 0).unwrap());
    let weight = WeightMeasurement {
        weight: q(decigrams, -1, Unit::Kilogram),
        time_stamp,
        user_id: Some(1),
        bmi: None,
        height: None,
    };
    let body = BodyCompositionMeasurement {
        body_fat_percentage: q(214, -1, Unit::Percent),
        time_stamp,
        user_id: Some(1),
        basal_metabolism: Some(q(6900, 0, Unit::Kilojoule)),
        muscle_percentage: Some(q(412, -1, Unit::Percent)),
        muscle_mass: Some(q(298, -1, Unit::Kilogram)),
        fat_free_mass: Some(q(569, -1, Unit::Kilogram)),
        soft_lean_mass: None,
        body_water_mass: Some(q(412, -1, Unit::Kilogram)),
        impedance: Some(q(5123, -1, Unit::Ohm)),
        weight: None,
        height: None,
        multiple_packet_measurement: false,
    };
    (weight, body)
}

/// Connects, subscribes to `subscribe` (in that order) and returns the next `count` values,
/// each with its characteristic's 16-bit UUID.
async fn receive(peripheral: &Peripheral, subscribe: &[u16], count: usize) -> Vec<(u16, Vec<u8>)> {
    peripheral.connect().await.unwrap();
    peripheral.discover_services().await.unwrap();
    let chars = peripheral.characteristics();
    let mut notifications = peripheral.notifications().await.unwrap();
    for short in subscribe {
        let c = chars.iter().find(|c| c.uuid == uuid16(*short)).unwrap();
        peripheral.subscribe(c).await.unwrap();
    }
    let mut values = Vec::new();
    tokio::time::timeout(Duration::from_secs(10), async {
        while values.len() < count {
            let n = notifications.next().await.unwrap();
            let short = subscribe
                .iter()
                .find(|s| uuid16(**s) == n.uuid)
                .copied()
                .unwrap();
            values.push((short, n.value));
        }
    })
    .await
    .expect("the scripted values");
    values
}

async fn read(peripheral: &Peripheral, short: u16) -> Vec<u8> {
    let c = peripheral
        .characteristics()
        .into_iter()
        .find(|c| c.uuid == uuid16(short))
        .unwrap();
    peripheral.read(&c).await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn btleplug_decodes_a_body_composition_scale_and_a_lying_weight_scale() {
    let bus = DbusDaemon::start().expect("dbus-daemon (Debian package `dbus`) must be installed");
    use_bus(&bus);
    let (weight_1, body_1) = weighing(724, 7);
    let (weight_2, body_2) = weighing(726, 8);
    let body_feature = BodyCompositionFeature {
        time_stamp_supported: true,
        multiple_users_supported: true,
        basal_metabolism_supported: true,
        muscle_percentage_supported: true,
        muscle_mass_supported: true,
        fat_free_mass_supported: true,
        body_water_mass_supported: true,
        impedance_supported: true,
        mass_resolution: WeightResolution::Kg0_1OrLb0_2,
        ..BodyCompositionFeature::default()
    };
    let weight_feature = WeightScaleFeature {
        time_stamp_supported: true,
        multiple_users_supported: true,
        weight_resolution: WeightResolution::Kg0_1OrLb0_2,
        ..WeightScaleFeature::default()
    };
    let body = ScriptedDevice::body_composition_scale(BODY)
        .with_value(&body_feature)
        .unwrap()
        .with_value(&weight_feature)
        .unwrap()
        .with_weighing(&weight_1, &body_1)
        .unwrap()
        .with_split_weighing(&weight_2, &body_2)
        .unwrap();
    let liar = ScriptedDevice::lying_weight_scale(LIAR).unwrap();
    let _sim = Simulator::start(bus.address(), vec![Box::new(body), Box::new(liar)])
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
    .expect("two scales");
    central.stop_scan().await.unwrap();

    // The body composition scale advertises both services.
    let scale = &peripherals[BODY];
    let services = scale.properties().await.unwrap().unwrap().services;
    assert!(services.contains(&uuid16(sig::BODY_COMPOSITION_SERVICE)));
    assert!(services.contains(&uuid16(sig::WEIGHT_SCALE_SERVICE)));
    let values = receive(
        scale,
        &[sig::WEIGHT_MEASUREMENT, sig::BODY_COMPOSITION_MEASUREMENT],
        5,
    )
    .await;
    let order: Vec<u16> = values.iter().map(|(c, _)| *c).collect();
    assert_eq!(
        order,
        [
            sig::WEIGHT_MEASUREMENT,
            sig::BODY_COMPOSITION_MEASUREMENT,
            sig::WEIGHT_MEASUREMENT,
            sig::BODY_COMPOSITION_MEASUREMENT,
            sig::BODY_COMPOSITION_MEASUREMENT,
        ]
    );
    assert_eq!(
        BodyCompositionFeature::decode(&read(scale, sig::BODY_COMPOSITION_FEATURE).await)
            .unwrap()
            .value,
        body_feature
    );
    assert_eq!(
        WeightScaleFeature::decode(&read(scale, sig::WEIGHT_SCALE_FEATURE).await)
            .unwrap()
            .value,
        weight_feature
    );
    // What the scale meant, as a one-packet decode gives it.
    let expected = |body: &BodyCompositionMeasurement| {
        let mut bytes = [0u8; 32];
        let n = body.encode(&mut bytes).unwrap();
        BodyCompositionMeasurement::decode(&bytes[..n])
            .unwrap()
            .value
    };
    let weights: Vec<WeightMeasurement> = [&values[0].1, &values[2].1]
        .iter()
        .map(|b| WeightMeasurement::decode(b).unwrap().value)
        .collect();
    assert_eq!(weights[0].time_stamp, weight_1.time_stamp);
    assert_eq!(weights[1].time_stamp, weight_2.time_stamp);
    let mut assembler = CompositionAssembler::new();
    let packets: Vec<BodyCompositionMeasurement> = [&values[1].1, &values[3].1, &values[4].1]
        .iter()
        .map(|b| BodyCompositionMeasurement::decode(b).unwrap().value)
        .collect();
    assert!(!packets[0].multiple_packet_measurement);
    assert!(packets[1].multiple_packet_measurement, "first of two");
    assert!(!packets[2].multiple_packet_measurement, "last of two");
    assert!(packets[1].impedance.is_none() && packets[2].basal_metabolism.is_none());
    assert_eq!(assembler.push(packets[0]), Some(expected(&body_1)));
    assert_eq!(assembler.push(packets[1]), None);
    assert_eq!(assembler.push(packets[2]), Some(expected(&body_2)));
    scale.disconnect().await.unwrap();

    // The lying scale: BMI and height announced, never sent; a truncated and a garbage value.
    let liar = &peripherals[LIAR];
    let values = receive(liar, &[sig::WEIGHT_MEASUREMENT], 4).await;
    let feature = WeightScaleFeature::decode(&read(liar, sig::WEIGHT_SCALE_FEATURE).await)
        .unwrap()
        .value;
    assert!(feature.bmi_supported);
    assert_eq!(feature.height_resolution, HeightResolution::M0_01OrIn1);
    let decoded: Vec<_> = values
        .iter()
        .map(|(_, b)| WeightMeasurement::decode(b))
        .collect();
    let first = decoded[0].as_ref().unwrap().value;
    assert_eq!((first.bmi, first.height), (None, None));
    assert_eq!(values[1].1.len(), 5);
    assert!(decoded[1].is_err(), "truncated: {:?}", decoded[1]);
    assert!(decoded[2].is_err(), "garbage: {:?}", decoded[2]);
    let last = decoded[3].as_ref().unwrap().value;
    assert_eq!((last.bmi, last.height), (None, None));
    liar.disconnect().await.unwrap();
}
