//! Scales through the supervisor and the real btleplug: a combined Weight Scale + Body
//! Composition scale whose two halves of each weighing become one measurement (one of them sent
//! in two packets); a scale that lies about its features and sends truncated and garbage values
//! among good ones; and the firmware scale whose clock is two hours ahead, measured, corrected,
//! and its stored weighing given the skew.
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

use jiff::SignedDuration;
use relais::ble::supervisor::Ended;
use relais::payload::Origin;
use relais_bluez_sim::{ScaleSim, ScriptedDevice, Simulator, VirtualDevice, Weighing};
use relais_protocol::body_composition::BodyCompositionMeasurement;
use relais_protocol::weight_scale::WeightMeasurement;
use relais_protocol::{DateTime, Kind, MedValue, Quantity, ReadingValue, Unit, uuid};

const BODY: &str = "C0:FF:EE:00:04:01";
const LIAR: &str = "C0:FF:EE:00:04:02";
const AHEAD: &str = "C0:FF:EE:00:04:03";

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

fn single(value: ReadingValue) -> f64 {
    match value {
        ReadingValue::Single(q) => q.to_f64().unwrap(),
        other => panic!("{other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scales_merge_halves_survive_lies_and_get_their_clock_fixed() {
    let bus = common::bus();
    let (w1, b1) = weighing(724, 7);
    let (w2, b2) = weighing(731, 8);
    let body = ScriptedDevice::body_composition_scale(BODY)
        .with_weighing(&w1, &b1)
        .unwrap()
        .with_split_weighing(&w2, &b2)
        .unwrap();
    let liar = ScriptedDevice::lying_weight_scale(LIAR).unwrap();
    // Two hours ahead of the hub (the plan's zone is UTC).
    let ahead_by = SignedDuration::from_hours(2);
    let device_now =
        jiff::tz::TimeZone::UTC.to_datetime(jiff::Timestamp::now().checked_add(ahead_by).unwrap());
    let clock = DateTime::from_civil(device_now).unwrap();
    let ahead = ScaleSim::new(AHEAD)
        .with_device_clock(&clock)
        .unwrap()
        .with_weighing(Weighing {
            on_ms: 5_000,
            off_ms: 20_000,
            mass_kg: 72.0,
        })
        .run_before_start(25_000)
        .spawn()
        .unwrap();
    let devices: Vec<Box<dyn VirtualDevice>> =
        vec![Box::new(body), Box::new(liar), Box::new(ahead)];
    let _sim = Simulator::start(bus.address(), devices).await.unwrap();

    let watched = common::watch(
        common::quick(),
        |_| Some(common::plan()),
        Duration::from_secs(40),
        |w| [BODY, LIAR, AHEAD].iter().all(|a| w.done(a) >= 1),
    )
    .await;

    // Combined scale: one measurement per weighing, weight first, with its body composition
    // (the second weighing's in two packets).
    let merged = watched.from(BODY);
    assert_eq!(merged.len(), 2, "{merged:#?}");
    let shapes: Vec<Vec<Origin>> = merged
        .iter()
        .map(|d| d.record.payloads.iter().map(|p| p.origin).collect())
        .collect();
    let w = Origin::Characteristic(uuid::WEIGHT_MEASUREMENT);
    let b = Origin::Characteristic(uuid::BODY_COMPOSITION_MEASUREMENT);
    assert_eq!(shapes, [vec![w, b], vec![w, b, b]]);
    for (d, kg) in merged.iter().zip([72.4, 73.1]) {
        let kinds: Vec<Kind> = d.readings.iter().map(|r| r.kind).collect();
        assert!(kinds.contains(&Kind::BodyFatPercentage), "{kinds:?}");
        let weight = d
            .readings
            .iter()
            .find(|r| r.kind == Kind::BodyWeight)
            .unwrap();
        assert!((single(weight.value) - kg).abs() < 1e-9);
        assert_eq!(weight.user, Some(1));
    }

    // The liar: its two good weighings, the truncated and the garbage values skipped with a
    // reason, its session ended well.
    let kept: Vec<f64> = watched
        .from(LIAR)
        .iter()
        .map(|d| single(d.readings[0].value))
        .collect();
    assert_eq!(kept, [72.4, 72.6]);
    let skipped: Vec<&(String, u16, String)> = watched
        .skipped
        .iter()
        .filter(|(a, _, _)| a == LIAR)
        .collect();
    assert_eq!(skipped.len(), 2, "{skipped:?}");
    assert!(matches!(watched.ended(LIAR)[..], [Ended::Done(_)]));

    // The scale two hours ahead: measured, set, and its stored weighing given the skew.
    let [stored] = &watched.from(AHEAD)[..] else {
        panic!("{:?}", watched.from(AHEAD))
    };
    let skew = stored.clock_skew.unwrap();
    assert!(
        (skew - ahead_by).abs() < SignedDuration::from_secs(120),
        "{skew:?}"
    );
    let Some(Ended::Done(outcome)) = watched.ended(AHEAD).first().copied() else {
        panic!("{:?}", watched.ended(AHEAD))
    };
    assert!(outcome.clock.set_at.is_some(), "the clock was set");
}
