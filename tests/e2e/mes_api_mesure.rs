//! The hub's FHIR mapping against mes-sandbox, the strict emulator of Mon espace santé: every
//! reading kind the hub sends is accepted and stored; every rule a wrong payload breaks is
//! refused as MES refuses it; Paris daylight-saving transitions; and, for any measurement a
//! device can send, either a Bundle MES accepts or a typed reason.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

use std::collections::BTreeSet;
use std::str::FromStr;

use jiff::{SignedDuration, Timestamp};
use proptest::prelude::*;
use relais::fhir::{
    self, ClockContext, DeviceIdentity, DeviceKind, Eui64, HubSettings, MappedReading, MeasureKind,
    Oid, Pairing, Unsendable,
};
use relais_e2e::{HUB_OID, Session, World};
use relais_protocol::blood_pressure::BloodPressureMeasurement;
use relais_protocol::glucose::{
    GlucoseMeasurement, GlucoseMeasurementContext, GlucoseRecord, GlucoseSampleLocation,
    GlucoseType, Meal,
};
use relais_protocol::heart_rate::HeartRateMeasurement;
use relais_protocol::pulse_oximeter::PlxSpotCheckMeasurement;
use relais_protocol::thermometer::TemperatureMeasurement;
use relais_protocol::weight_scale::WeightMeasurement;
use relais_protocol::{Characteristic, DateTime, Reading, ToReadings};
use serde_json::{Value, json};

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap()
}

fn hub() -> HubSettings {
    HubSettings::new(Oid::from_str(HUB_OID).unwrap()).unwrap()
}

fn pairing(session: &Session) -> Pairing {
    Pairing {
        assigning_authority: Oid::from_str(&session.assigning_authority).unwrap(),
        id_pe: session.id_pe.clone(),
    }
}

fn device(kind: DeviceKind) -> DeviceIdentity {
    DeviceIdentity {
        kind,
        system_id: Some(Eui64([0xFE, 0xED, 0xAB, 0xAA, 0xDE, 0xAD, 0x77, 0xC5])),
        manufacturer: Some("Relais reference design".into()),
        model: Some("RS-1".into()),
        serial: Some("0001".into()),
        ..DeviceIdentity::default()
    }
}

/// Received a minute after the device time of `BASE`, read by a device whose clock is right.
fn clock() -> ClockContext {
    ClockContext::new(Timestamp::from_str("2024-03-05T07:31:15Z").unwrap())
}

fn at(hours: u8, minutes: u8) -> DateTime {
    DateTime::new(2024, 3, 5, hours, minutes, 15).unwrap()
}

/// The readings a device's value yields once it has crossed the air: encoded, then decoded.
fn over_the_air<T: Characteristic + ToReadings>(value: &T) -> Vec<Reading> {
    let mut buf = [0u8; 64];
    let n = value.encode(&mut buf).unwrap();
    T::decode(&buf[..n]).unwrap().value.readings().to_vec()
}

fn sfloat(m: i64, e: i8, unit: relais_protocol::Unit) -> relais_protocol::Quantity {
    relais_protocol::Quantity::new(relais_protocol::MedValue::number(m, e), unit)
}

/// One value per kind the hub sends, as real devices send them.
fn readings_of_every_kind() -> Vec<(DeviceKind, Reading)> {
    use relais_protocol::Unit::*;
    let mut out = Vec::new();
    let weight = WeightMeasurement {
        weight: sfloat(14_470, -3, Kilogram),
        time_stamp: Some(at(8, 30)),
        user_id: Some(1),
        bmi: Some(sfloat(236, -1, KilogramPerSquareMetre)),
        height: Some(sfloat(1_750, -3, Metre)),
    };
    // 72.35 kg as 14 470 steps of 0.005 kg.
    let weight = WeightMeasurement {
        weight: relais_protocol::Quantity::decimal(
            relais_protocol::Decimal::scaled(14_470, relais_protocol::Decimal::new(5, -3)),
            Kilogram,
        ),
        ..weight
    };
    for r in over_the_air(&weight) {
        out.push((DeviceKind::WeightScale, r));
    }
    let bp = BloodPressureMeasurement {
        systolic: sfloat(128, 0, MillimetreOfMercury),
        diastolic: sfloat(84, 0, MillimetreOfMercury),
        mean_arterial_pressure: sfloat(99, 0, MillimetreOfMercury),
        time_stamp: Some(at(8, 20)),
        pulse_rate: Some(sfloat(67, 0, PerMinute)),
        user_id: Some(1),
        measurement_status: None,
    };
    for r in over_the_air(&bp) {
        out.push((DeviceKind::BloodPressureCuff, r));
    }
    let glucose = GlucoseMeasurement {
        sequence_number: 41,
        base_time: at(7, 55),
        time_offset: Some(5),
        glucose_concentration: Some(sfloat(104, -5, KilogramPerLitre)),
        glucose_type: Some(GlucoseType::CapillaryWholeBlood),
        sample_location: Some(GlucoseSampleLocation::Finger),
        sensor_status_annunciation: None,
        context_information_follows: true,
    };
    let context = GlucoseMeasurementContext {
        sequence_number: 41,
        extended_flags: None,
        carbohydrate_id: None,
        carbohydrate: None,
        meal: Some(Meal::Fasting),
        blood_ketone: false,
        tester: None,
        health: None,
        exercise_duration: None,
        exercise_intensity: None,
        medication_id: None,
        medication: None,
        hba1c: None,
    };
    let record = GlucoseRecord {
        measurement: glucose,
        context: Some(context),
    };
    for r in record.readings() {
        out.push((DeviceKind::GlucoseMeter, r));
    }
    let temperature = TemperatureMeasurement {
        temperature: relais_protocol::Quantity::new(
            relais_protocol::MedValue::number(372, -1),
            Celsius,
        ),
        time_stamp: Some(at(8, 0)),
        temperature_type: Some(relais_protocol::thermometer::TemperatureType::Ear),
    };
    for r in over_the_air(&temperature) {
        out.push((DeviceKind::Thermometer, r));
    }
    let spot_check = PlxSpotCheckMeasurement::decode(&[
        0x01, 0x61, 0x00, 0x48, 0x00, 0xE8, 0x07, 0x03, 0x05, 0x08, 0x10, 0x00,
    ])
    .unwrap()
    .value;
    for r in spot_check.readings() {
        out.push((DeviceKind::PulseOximeter, r));
    }
    out
}

#[test]
fn every_reading_kind_the_hub_sends_is_accepted_and_stored() {
    runtime().block_on(async {
        let world = World::start().await;
        let session = world.pair("patient-1", true, true).await;
        let mut sent = BTreeSet::new();
        let mut refused = Vec::new();
        let mut accepted = 0;
        for (kind, reading) in readings_of_every_kind() {
            match fhir::map_reading(
                &reading,
                &device(kind),
                &pairing(&session),
                &hub(),
                &clock(),
            ) {
                Ok(mapped) => {
                    let (status, answer) = world.post(&session, &mapped.bundle).await;
                    assert_eq!(status, 200, "{:?}: {answer:#}", mapped.measure);
                    assert_eq!(
                        answer["entry"][0]["response"]["status"].as_str().unwrap(),
                        "201 Created"
                    );
                    sent.insert(format!("{:?}", mapped.measure));
                    accepted += 1;
                }
                Err(reason) => refused.push((reading.kind, reason)),
            }
        }
        // Heart rate from a chest strap, a live reading without a time of its own.
        let strap = HeartRateMeasurement::decode(&[0x00, 0x48]).unwrap().value;
        let mut live = hub();
        live.use_reception_time_for_undated = true;
        for r in strap.readings() {
            let mapped = fhir::map_reading(
                &r,
                &device(DeviceKind::Generic),
                &pairing(&session),
                &live,
                &clock(),
            )
            .unwrap();
            let (status, answer) = world.post(&session, &mapped.bundle).await;
            assert_eq!(status, 200, "{answer:#}");
            sent.insert(format!("{:?}", mapped.measure));
            accepted += 1;
        }
        // Waist circumference (entered, no BLE source) and a CGM's 14-day aggregates.
        let waist = fhir::Measurement::waist_circumference(
            relais_protocol::Decimal::new(840, -1),
            fhir::MeasurementTime::Instant(Timestamp::from_str("2024-03-05T07:00:00Z").unwrap()),
        );
        let mapped = fhir::map_measurement(
            &waist,
            &device(DeviceKind::Generic),
            &pairing(&session),
            &hub(),
            &clock(),
        )
        .unwrap();
        assert_eq!(world.post(&session, &mapped.bundle).await.0, 200);
        sent.insert(format!("{:?}", mapped.measure));
        accepted += 1;
        let end = Timestamp::from_str("2024-03-05T07:00:00Z").unwrap();
        let series: Vec<(Timestamp, f64)> = (0..14 * 288)
            .map(|i| {
                (
                    end - SignedDuration::from_mins(5 * i),
                    120.0 + (i % 30) as f64,
                )
            })
            .collect();
        let aggregate = fhir::cgm::aggregate(&series, fhir::CgmWindow::Days14, end).unwrap();
        for mapped in fhir::map_cgm_aggregate(
            &aggregate,
            &device(DeviceKind::ContinuousGlucoseMonitor),
            &pairing(&session),
            &hub(),
            &clock(),
        )
        .unwrap()
        {
            let (status, answer) = world.post(&session, &mapped.bundle).await;
            assert_eq!(status, 200, "{answer:#}");
            sent.insert(format!("{:?}", mapped.measure));
            accepted += 1;
        }
        let every_kind: BTreeSet<String> = [
            MeasureKind::BodyWeight,
            MeasureKind::BodyHeight,
            MeasureKind::WaistCircumference,
            MeasureKind::BloodPressure,
            MeasureKind::HeartRate,
            MeasureKind::BloodGlucose,
            MeasureKind::InterstitialGlucose,
            MeasureKind::GlucoseManagementIndicator,
            MeasureKind::BodyTemperature,
            MeasureKind::OxygenSaturation,
        ]
        .iter()
        .map(|k| format!("{k:?}"))
        .collect();
        assert_eq!(sent, every_kind);
        // BMI is never sent: MES computes it and refuses it.
        assert_eq!(refused.len(), 1, "{refused:?}");
        assert!(matches!(refused[0].1, Unsendable::NotAccepted { .. }));
        assert_eq!(world.stored(&session.id_pe).await.len(), accepted);
    });
}

fn mapped_weight(session: &Session) -> MappedReading {
    let (kind, reading) = readings_of_every_kind().remove(0);
    fhir::map_reading(&reading, &device(kind), &pairing(session), &hub(), &clock()).unwrap()
}

/// A rule broken on purpose: its name, how to break it, the status and a diagnostics excerpt.
type RuleCase = (&'static str, Box<dyn Fn(&mut Value)>, u16, &'static str);

fn diagnostics(answer: &Value) -> String {
    answer["issue"]
        .as_array()
        .map(|issues| {
            issues
                .iter()
                .map(|i| i["diagnostics"].as_str().unwrap_or_default().to_owned())
                .collect::<Vec<_>>()
                .join(" | ")
        })
        .unwrap_or_default()
}

#[test]
fn payloads_that_break_a_mes_rule_are_refused_as_mes_refuses_them() {
    runtime().block_on(async {
        let world = World::start().await;
        let session = world.pair("patient-1", true, true).await;
        let bundle = mapped_weight(&session).bundle;
        let cases: Vec<RuleCase> = vec![
            (
                "no meta.profile",
                Box::new(|b| {
                    b["entry"][0]["resource"]["meta"].as_object_mut().unwrap().remove("profile");
                }),
                422,
                "meta.profile",
            ),
            (
                "another patient's idPe",
                Box::new(|b| b["entry"][0]["resource"]["subject"]["identifier"]["value"] = json!("idpe-patient-2")),
                403,
                "idPe requested do not match authorized idPe.",
            ),
            (
                "BMI",
                Box::new(|b| {
                    let o = &mut b["entry"][0]["resource"];
                    o["meta"]["profile"] = json!(["https://interop.esante.gouv.fr/ig/fhir/mesures/StructureDefinition/mesures-fr-observation-bmi"]);
                    o["code"]["coding"][0]["code"] = json!("39156-5");
                    o["valueQuantity"]["code"] = json!("kg/m2");
                    o["valueQuantity"]["unit"] = json!("kg/m2");
                }),
                422,
                "",
            ),
            (
                "no value",
                Box::new(|b| {
                    b["entry"][0]["resource"].as_object_mut().unwrap().remove("valueQuantity");
                }),
                422,
                "Observation value quantity not provided.",
            ),
            (
                "ifNoneExist off the MES pattern",
                Box::new(|b| b["entry"][1]["request"]["ifNoneExist"] = json!("identifier=FE-ED")),
                422,
                "",
            ),
            (
                "device link broken",
                Box::new(|b| b["entry"][0]["resource"]["device"]["reference"] = json!("Device/other")),
                422,
                "",
            ),
            (
                "a time without offset",
                Box::new(|b| b["entry"][0]["resource"]["effectiveDateTime"] = json!("2024-03-05T08:30:15")),
                422,
                "",
            ),
            (
                "a pound weight",
                Box::new(|b| b["entry"][0]["resource"]["valueQuantity"]["code"] = json!("[lb_av]")),
                422,
                "",
            ),
        ];
        for (name, mutate, status, text) in cases {
            let mut broken = bundle.clone();
            mutate(&mut broken);
            let (got, answer) = world.post(&session, &broken).await;
            assert_eq!(got, status, "{name}: {answer:#}");
            assert_eq!(answer["resourceType"], "OperationOutcome", "{name}");
            assert!(diagnostics(&answer).contains(text), "{name}: {answer:#}");
        }
        // Nothing refused was stored; the intact Bundle still goes through.
        assert!(world.stored(&session.id_pe).await.is_empty());
        assert_eq!(world.post(&session, &bundle).await.0, 200);

        // A pairing without write consent cannot send.
        let reader = world.pair("patient-2", true, false).await;
        let theirs = mapped_weight(&reader).bundle;
        let (status, answer) = world.post(&reader, &theirs).await;
        assert_eq!(status, 403, "{answer:#}");
        assert!(diagnostics(&answer).contains("Consent not given"), "{answer:#}");
    });
}

#[test]
fn paris_daylight_saving_transitions_reach_mes_with_the_right_offset() {
    runtime().block_on(async {
        let world = World::start().await;
        let session = world.pair("patient-1", true, true).await;
        // Device-local times: winter, the spring gap, summer, the autumn fold.
        let cases = [
            ((2024, 1, 15, 8, 0), "2024-01-15T08:00:00+01:00"),
            ((2024, 3, 31, 2, 30), "2024-03-31T03:30:00+02:00"),
            ((2024, 7, 14, 21, 5), "2024-07-14T21:05:00+02:00"),
            ((2024, 10, 27, 2, 30), "2024-10-27T02:30:00+02:00"),
        ];
        for ((y, mo, d, h, mi), expected) in cases {
            let weight = WeightMeasurement {
                weight: sfloat(70_000, -3, relais_protocol::Unit::Kilogram),
                time_stamp: Some(DateTime::new(y, mo, d, h, mi, 0).unwrap()),
                user_id: None,
                bmi: None,
                height: None,
            };
            let reading = over_the_air(&WeightMeasurement {
                weight: relais_protocol::Quantity::decimal(
                    relais_protocol::Decimal::new(70, 0),
                    relais_protocol::Unit::Kilogram,
                ),
                ..weight
            })
            .remove(0);
            let received = ClockContext::new(Timestamp::from_str("2024-12-31T00:00:00Z").unwrap());
            let mapped = fhir::map_reading(
                &reading,
                &device(DeviceKind::WeightScale),
                &pairing(&session),
                &hub(),
                &received,
            )
            .unwrap();
            assert_eq!(
                mapped.bundle["entry"][0]["resource"]["effectiveDateTime"],
                expected
            );
            assert_eq!(world.post(&session, &mapped.bundle).await.0, 200);
        }
        let stored = world.stored(&session.id_pe).await;
        assert_eq!(stored.len(), 4);
    });
}

/// Decoders whose readings may go to MES, with the device kind that sends them.
const DECODERS: &[(u16, DeviceKind)] = &[
    (0x2A9D, DeviceKind::WeightScale),
    (0x2A9C, DeviceKind::BodyCompositionAnalyser),
    (0x2A35, DeviceKind::BloodPressureCuff),
    (0x2A18, DeviceKind::GlucoseMeter),
    (0x2A1C, DeviceKind::Thermometer),
    (0x2A37, DeviceKind::Generic),
    (0x2A5E, DeviceKind::PulseOximeter),
    (0x2A5F, DeviceKind::PulseOximeter),
];

fn decode(uuid: u16, bytes: &[u8]) -> Option<Vec<Reading>> {
    use relais_protocol::body_composition::BodyCompositionMeasurement;
    use relais_protocol::pulse_oximeter::PlxContinuousMeasurement;
    fn go<T: Characteristic + ToReadings>(bytes: &[u8]) -> Option<Vec<Reading>> {
        T::decode(bytes).ok().map(|d| d.value.readings().to_vec())
    }
    match uuid {
        0x2A9D => go::<WeightMeasurement>(bytes),
        0x2A9C => go::<BodyCompositionMeasurement>(bytes),
        0x2A35 => go::<BloodPressureMeasurement>(bytes),
        0x2A18 => go::<GlucoseMeasurement>(bytes),
        0x2A1C => go::<TemperatureMeasurement>(bytes),
        0x2A37 => go::<HeartRateMeasurement>(bytes),
        0x2A5E => go::<PlxSpotCheckMeasurement>(bytes),
        _ => go::<PlxContinuousMeasurement>(bytes),
    }
}

#[test]
fn any_decodable_measurement_gives_a_bundle_mes_accepts_or_a_typed_reason() {
    let rt = runtime();
    let (world, session) = rt.block_on(async {
        let world = World::start().await;
        let session = world.pair("patient-1", true, true).await;
        (world, session)
    });
    let accepted = std::cell::Cell::new(0u32);
    let refused = std::cell::Cell::new(0u32);
    let mut config = ProptestConfig::with_cases(400);
    config.failure_persistence = None;
    // Received at the end of time: a random device date is then never "in the future". Live
    // readings without a date of their own (most random flag bytes announce none) are dated
    // by their reception, as the hub allows for live readings.
    let late = ClockContext::new(Timestamp::from_str("9999-12-30T00:00:00Z").unwrap());
    let mut live = hub();
    live.use_reception_time_for_undated = true;
    let reasons = std::cell::RefCell::new(std::collections::BTreeMap::<String, u32>::new());
    proptest!(config, |(which in 0..DECODERS.len(), bytes in proptest::collection::vec(any::<u8>(), 0..20))| {
        let (uuid, kind) = DECODERS[which];
        if let Some(readings) = decode(uuid, &bytes) {
            for reading in readings {
                match fhir::map_reading(&reading, &device(kind), &pairing(&session), &live, &late) {
                    Ok(mapped) => {
                        let (status, answer) = rt.block_on(world.post(&session, &mapped.bundle));
                        prop_assert_eq!(status, 200, "{:?} from {:02x?}: {:#}", reading, bytes, answer);
                        accepted.set(accepted.get() + 1);
                    }
                    Err(reason) => {
                        refused.set(refused.get() + 1);
                        let name = format!("{reason:?}");
                        let name = name.split([' ', '(', '{']).next().unwrap_or_default().to_owned();
                        *reasons.borrow_mut().entry(name).or_default() += 1;
                    }
                }
            }
        }
    });
    println!(
        "property: {} bundles accepted by the sandbox, {} readings refused with a reason: {:?}",
        accepted.get(),
        refused.get(),
        reasons.borrow()
    );
    assert!(accepted.get() > 0, "the property never reached the sandbox");
}
