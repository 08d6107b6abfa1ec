//! The mapper as the uploader will call it: one golden Bundle per measure, the published examples
//! of the reference compared element by element, the glucose matrix, DST, skew, refusals, the
//! MES `ifNoneExist` pattern, profile flavours, CGM aggregates, and no panic on any input.

use std::collections::{BTreeMap, BTreeSet};

use jiff::civil::{self, date};
use jiff::{SignedDuration, Timestamp};
use proptest::prelude::*;
use regex::Regex;
use relais_protocol::float::Special;
use relais_protocol::glucose::Meal;
use relais_protocol::thermometer::TemperatureType;
use relais_protocol::{
    Characteristic, Decimal, DeviceTime, Kind, MedValue, Quantity, Quirks, Reading, ReadingStatus,
    ReadingValue, ToReadings, Unit, blood_pressure, body_composition, cgm as ble_cgm, glucose,
    heart_rate, pulse_oximeter, thermometer, weight_scale,
};
use serde_json::{Value, json};

use super::identifier::MES_IF_NONE_EXIST_PATTERN;
use super::*;

// ---------------------------------------------------------------------------------------------
// Fixtures

const HUB_OID: &str = "1.2.250.1.999.1.1";
const ASSIGNING_AUTHORITY: &str = "1.2.250.1.213.1.4.8";
const ID_PE: &str = "patient-externe-id-2";

fn hub() -> HubSettings {
    HubSettings::new(HUB_OID.parse().unwrap()).unwrap()
}

fn pairing() -> Pairing {
    Pairing {
        assigning_authority: ASSIGNING_AUTHORITY.parse().unwrap(),
        id_pe: ID_PE.into(),
    }
}

fn device(kind: DeviceKind) -> DeviceIdentity {
    DeviceIdentity {
        kind,
        system_id: Some("FE-ED-AB-AA-DE-AD-77-C5".parse().unwrap()),
        manufacturer: Some("ACME".into()),
        model: Some("M-1".into()),
        ..DeviceIdentity::default()
    }
}

fn received() -> Timestamp {
    "2024-03-05T08:00:00Z".parse().unwrap()
}

fn clock() -> ClockContext {
    ClockContext::new(received())
}

fn local() -> civil::DateTime {
    date(2024, 3, 5).at(8, 30, 15, 0)
}

fn q(m: i64, e: i8, unit: Unit) -> Quantity {
    Quantity::decimal(Decimal::new(m, e), unit)
}

fn reading(kind: Kind, value: Quantity) -> Reading {
    Reading::new(kind, value).at(DeviceTime::Known(local()))
}

fn map(r: &Reading, kind: DeviceKind) -> Result<MappedReading, Unsendable> {
    map_reading(r, &device(kind), &pairing(), &hub(), &clock())
}

fn observation(m: &MappedReading) -> &Value {
    &m.bundle["entry"][0]["resource"]
}

fn device_resource(m: &MappedReading) -> &Value {
    &m.bundle["entry"][1]["resource"]
}

fn mes_regex() -> Regex {
    Regex::new(&format!("^(?:{MES_IF_NONE_EXIST_PATTERN})$")).unwrap()
}

// ---------------------------------------------------------------------------------------------
// Element-by-element comparison

/// Every leaf of a JSON value by its JSON-pointer path.
fn leaves(v: &Value) -> BTreeMap<String, Value> {
    fn walk(v: &Value, path: String, out: &mut BTreeMap<String, Value>) {
        match v {
            Value::Object(m) => m
                .iter()
                .for_each(|(k, x)| walk(x, format!("{path}/{k}"), out)),
            Value::Array(a) => a
                .iter()
                .enumerate()
                .for_each(|(i, x)| walk(x, format!("{path}/{i}"), out)),
            leaf => {
                out.insert(path, leaf.clone());
            }
        }
    }
    let mut out = BTreeMap::new();
    walk(v, String::new(), &mut out);
    out
}

/// Asserts `actual` has exactly the leaves of `expected`, naming the first path that differs.
fn assert_fields(actual: &Value, expected: &Value) {
    let (a, e) = (leaves(actual), leaves(expected));
    for (path, want) in &e {
        assert_eq!(a.get(path), Some(want), "at {path}");
    }
    for (path, got) in &a {
        assert!(e.contains_key(path), "unexpected {path} = {got}");
    }
}

#[derive(Debug, Default, PartialEq, Eq)]
struct Diff {
    only_in_example: BTreeSet<String>,
    only_in_ours: BTreeSet<String>,
    differing: BTreeSet<String>,
}

fn diff(example: &Value, ours: &Value) -> Diff {
    let (e, o) = (leaves(example), leaves(ours));
    let mut d = Diff::default();
    for (path, value) in &e {
        match o.get(path) {
            None => {
                d.only_in_example.insert(path.clone());
            }
            Some(v) if v != value => {
                d.differing.insert(path.clone());
            }
            Some(_) => {}
        }
    }
    d.only_in_ours = o.keys().filter(|p| !e.contains_key(*p)).cloned().collect();
    d
}

fn set(paths: &[&str]) -> BTreeSet<String> {
    paths.iter().map(|p| (*p).to_owned()).collect()
}

// ---------------------------------------------------------------------------------------------
// Golden Bundles, one per measure

const ANS: &str = "https://interop.esante.gouv.fr/ig/fhir/mesures/StructureDefinition/";

/// The Observation every measure shares, plus `specific`.
fn golden(m: &MappedReading, profile: &str, specific: Value) -> Value {
    let mut o = json!({
        "resourceType": "Observation",
        "id": observation(m)["id"],
        "meta": {"source": format!("urn:oid:{HUB_OID}"), "profile": [format!("{ANS}{profile}")]},
        "status": "final",
        "category": [{"coding": [{"system": "http://terminology.hl7.org/CodeSystem/observation-category", "code": "vital-signs"}]}],
        "subject": {"identifier": {"system": format!("urn:oid:{ASSIGNING_AUTHORITY}"), "value": ID_PE}},
        "effectiveDateTime": "2024-03-05T08:30:15+01:00",
        "device": {"reference": format!("Device/{}", device_resource(m)["id"].as_str().unwrap())},
    });
    if let (Some(o), Value::Object(specific)) = (o.as_object_mut(), specific) {
        o.extend(specific);
    }
    o
}

fn ucum(value: Value, code: &str) -> Value {
    json!({"value": value, "unit": code, "system": "http://unitsofmeasure.org", "code": code})
}

#[test]
fn body_weight_golden() {
    let m = map(
        &reading(Kind::BodyWeight, q(72350, -3, Unit::Kilogram)),
        DeviceKind::WeightScale,
    )
    .unwrap();
    assert_eq!(m.measure, MeasureKind::BodyWeight);
    assert_fields(
        observation(&m),
        &golden(
            &m,
            "mesures-fr-observation-body-weight",
            json!({
                "code": {"coding": [{"system": "http://loinc.org", "code": "29463-7", "display": "Poids corporel [Masse] Patient ; Numérique"}]},
                "valueQuantity": ucum(json!(72.35), "kg"),
            }),
        ),
    );
    // The number is written with the reported digits, not a float's.
    assert!(
        serde_json::to_string(&m.bundle)
            .unwrap()
            .contains(r#""value":72.35,"#)
    );
}

#[test]
fn body_height_golden() {
    let m = map(
        &reading(Kind::BodyHeight, q(1755, -1, Unit::Centimetre)),
        DeviceKind::WeightScale,
    )
    .unwrap();
    assert_fields(
        observation(&m),
        &golden(
            &m,
            "mesures-fr-observation-bodyheight",
            json!({
                "code": {"coding": [{"system": "http://loinc.org", "code": "8302-2"}]},
                "valueQuantity": ucum(json!(175.5), "cm"),
            }),
        ),
    );
}

#[test]
fn waist_circumference_golden() {
    let waist =
        Measurement::waist_circumference(Decimal::new(84, 0), MeasurementTime::Device(local()));
    let m = map_measurement(
        &waist,
        &device(DeviceKind::Generic),
        &pairing(),
        &hub(),
        &clock(),
    )
    .unwrap();
    assert_fields(
        observation(&m),
        &golden(
            &m,
            "mesures-observation-waist-circumference",
            json!({
                "code": {"coding": [{"system": "http://loinc.org", "code": "8280-0"}]},
                "valueQuantity": ucum(json!(84), "cm"),
            }),
        ),
    );
}

#[test]
fn blood_pressure_golden() {
    let bp = Reading::blood_pressure(
        q(120, 0, Unit::MillimetreOfMercury),
        q(80, 0, Unit::MillimetreOfMercury),
        q(93, 0, Unit::MillimetreOfMercury),
    )
    .at(DeviceTime::Known(local()));
    let m = map(&bp, DeviceKind::BloodPressureCuff).unwrap();
    assert_fields(
        observation(&m),
        &golden(
            &m,
            "mesures-fr-observation-bp",
            json!({
                "code": {"coding": [{"system": "http://loinc.org", "code": "85354-9"}]},
                "bodySite": {"coding": [{"system": "https://mos.esante.gouv.fr/NOS/TRE_R309-FMA/FHIR/TRE-R309-FMA", "code": "24890", "display": "Bras"}]},
                "component": [
                    {"code": {"coding": [{"system": "http://loinc.org", "code": "8480-6", "display": "Systolic blood pressure"}]},
                     "valueQuantity": ucum(json!(120), "mm[Hg]")},
                    {"code": {"coding": [{"system": "http://loinc.org", "code": "8462-4", "display": "Diastolic blood pressure"}]},
                     "valueQuantity": ucum(json!(80), "mm[Hg]")},
                ],
            }),
        ),
    );
}

#[test]
fn a_wrist_cuff_says_wrist() {
    let bp = Reading::blood_pressure(
        q(120, 0, Unit::MillimetreOfMercury),
        q(80, 0, Unit::MillimetreOfMercury),
        q(93, 0, Unit::MillimetreOfMercury),
    )
    .at(DeviceTime::Known(local()));
    let wrist = DeviceIdentity {
        cuff_site: CuffSite::Wrist,
        ..device(DeviceKind::BloodPressureCuff)
    };
    let m = map_reading(&bp, &wrist, &pairing(), &hub(), &clock()).unwrap();
    assert_eq!(observation(&m)["bodySite"]["coding"][0]["code"], "24922");
    assert_eq!(
        observation(&m)["bodySite"]["coding"][0]["display"],
        "Poignet"
    );
}

#[test]
fn heart_rate_golden() {
    let m = map(
        &reading(Kind::PulseRate, q(72, 0, Unit::PerMinute)),
        DeviceKind::BloodPressureCuff,
    )
    .unwrap();
    assert_fields(
        observation(&m),
        &golden(
            &m,
            "mesures-fr-observation-heartrate",
            json!({
                "code": {"coding": [{"system": "http://loinc.org", "code": "8867-4"}]},
                "valueQuantity": ucum(json!(72), "/min"),
            }),
        ),
    );
}

#[test]
fn blood_glucose_golden() {
    let mut r = reading(Kind::BloodGlucose, q(95, 0, Unit::MilligramPerDecilitre));
    r.context.meal = Some(Meal::Preprandial);
    let m = map(&r, DeviceKind::GlucoseMeter).unwrap();
    assert_fields(
        observation(&m),
        &golden(
            &m,
            "mesures-observation-glucose",
            json!({
                "extension": [{
                    "url": "https://interop.esante.gouv.fr/ig/fhir/mesures/StructureDefinition/mesures-moment-of-measurement",
                    "valueCodeableConcept": {"coding": [{"system": "https://mos.esante.gouv.fr/NOS/TRE_A04-Loinc/FHIR/TRE-A04-Loinc", "code": "88365-2", "display": "Avant repas"}]},
                }],
                "code": {"coding": [{"system": "https://mos.esante.gouv.fr/NOS/TRE_A04-Loinc/FHIR/TRE-A04-Loinc", "code": "2345-7", "display": "Glucose sanguin"}]},
                "valueQuantity": ucum(json!(95), "mg/dL"),
            }),
        ),
    );
}

#[test]
fn body_temperature_golden() {
    let mut r = reading(Kind::BodyTemperature, q(372, -1, Unit::Celsius));
    r.context.temperature_type = Some(TemperatureType::Armpit);
    let m = map(&r, DeviceKind::Thermometer).unwrap();
    assert_fields(
        observation(&m),
        &golden(
            &m,
            "mesures-fr-observation-body-temperature",
            json!({
                "code": {"coding": [{"system": "http://loinc.org", "code": "8310-5"}]},
                "valueQuantity": ucum(json!(37.2), "Cel"),
                "bodySite": {"coding": [{"system": "https://mos.esante.gouv.fr/NOS/TRE_R309-FMA/FHIR/TRE-R309-FMA", "code": "24864", "display": "Aisselle"}]},
            }),
        ),
    );
}

#[test]
fn oxygen_saturation_golden() {
    let m = map(
        &reading(Kind::OxygenSaturation, q(97, 0, Unit::Percent)),
        DeviceKind::PulseOximeter,
    )
    .unwrap();
    assert_fields(
        observation(&m),
        &golden(
            &m,
            "mesures-fr-observation-oxygen-sat",
            json!({
                "code": {"coding": [{"system": "http://loinc.org", "code": "2708-6"}]},
                "valueQuantity": ucum(json!(97), "%"),
            }),
        ),
    );
}

fn cgm_end() -> Timestamp {
    "2024-03-05T07:00:00Z".parse().unwrap()
}

fn cgm_aggregate(window: CgmWindow, mg_per_dl: f64) -> CgmAggregate {
    let n = i64::from(window.expected_slots());
    let samples: Vec<_> = (0..n)
        .map(|i| (cgm_end() - SignedDuration::from_mins(5 * i), mg_per_dl))
        .collect();
    cgm::aggregate(&samples, window, cgm_end()).unwrap()
}

#[test]
fn cgm_aggregate_goldens() {
    let aggregate = cgm_aggregate(CgmWindow::Days14, 154.0);
    let [mean, gmi] = map_cgm_aggregate(
        &aggregate,
        &device(DeviceKind::ContinuousGlucoseMonitor),
        &pairing(),
        &hub(),
        &clock(),
    )
    .unwrap();
    let days = json!([{
        "url": "https://interop.esante.gouv.fr/ig/fhir/mesures/StructureDefinition/mesures-number-of-days",
        "valueCodeableConcept": {"coding": [{"system": "https://mos.esante.gouv.fr/NOS/TRE_R308-TAASIP/FHIR/TRE-R308-TAASIP", "code": "GEN-276", "display": "14j"}]},
    }]);
    let mut expected_mean = golden(
        &mean,
        "mesures-observation-glucose",
        json!({
            "extension": days,
            "code": {"coding": [{"system": "https://mos.esante.gouv.fr/NOS/TRE_R308-TAASIP/FHIR/TRE-R308-TAASIP", "code": "MED-969", "display": "Glucose interstitiel"}]},
            "valueQuantity": ucum(json!(154), "mg/dL"),
        }),
    );
    expected_mean["effectiveDateTime"] = json!("2024-03-05T08:00:00+01:00");
    assert_fields(observation(&mean), &expected_mean);
    let mut expected_gmi = golden(
        &gmi,
        "mesures-observation-glucose",
        json!({
            "extension": days,
            "code": {"coding": [{"system": "https://mos.esante.gouv.fr/NOS/TRE_R308-TAASIP/FHIR/TRE-R308-TAASIP", "code": "MED-972", "display": "Index de gestion de glycémie (IGG)"}]},
            "valueQuantity": ucum(json!(7.0), "%"),
        }),
    );
    expected_gmi["effectiveDateTime"] = json!("2024-03-05T08:00:00+01:00");
    assert_fields(observation(&gmi), &expected_gmi);
    assert_eq!(mean.effective.source, TimeSource::Hub);
    assert_eq!(
        device_resource(&mean)["specialization"][0]["systemType"]["coding"][0]["code"],
        "528409"
    );
    assert_ne!(mean.dedup_key, gmi.dedup_key);
}

#[test]
fn cgm_windows_of_different_lengths_have_different_keys() {
    let map_mean = |w| {
        let [mean, _] = map_cgm_aggregate(
            &cgm_aggregate(w, 120.0),
            &device(DeviceKind::ContinuousGlucoseMonitor),
            &pairing(),
            &hub(),
            &clock(),
        )
        .unwrap();
        mean
    };
    let week = map_mean(CgmWindow::Days7);
    let fortnight = map_mean(CgmWindow::Days14);
    assert!(week.dedup_key.ends_with("-GEN-275"));
    assert!(fortnight.dedup_key.ends_with("-GEN-276"));
    assert_ne!(observation(&week)["id"], observation(&fortnight)["id"]);
}

#[test]
fn device_golden() {
    let m = map(
        &reading(Kind::BodyWeight, q(70, 0, Unit::Kilogram)),
        DeviceKind::WeightScale,
    )
    .unwrap();
    let id = device_resource(&m)["id"].as_str().unwrap().to_owned();
    assert_fields(
        device_resource(&m),
        &json!({
            "resourceType": "Device",
            "id": id,
            "meta": {"profile": ["http://hl7.org/fhir/uv/phd/StructureDefinition/PhdDevice"]},
            "identifier": [{
                "type": {"coding": [{"system": "http://hl7.org/fhir/uv/phd/CodeSystem/ContinuaDeviceIdentifiers", "code": "SYSID"}]},
                "system": "urn:oid:1.2.840.10004.1.1.1.0.0.1.0.0.1.2680",
                "value": "FE-ED-AB-AA-DE-AD-77-C5",
            }],
            "manufacturer": "ACME",
            "modelNumber": "M-1",
            "type": {"coding": [{"system": "urn:iso:std:iso:11073:10101", "code": "65573"}]},
            "specialization": [{"systemType": {"coding": [{"system": "urn:iso:std:iso:11073:10101", "code": "528399"}]}, "version": "1"}],
        }),
    );
    assert_eq!(
        m.bundle["entry"][1]["request"],
        json!({
            "method": "POST",
            "url": "Device",
            "ifNoneExist": "identifier=urn:oid:1.2.840.10004.1.1.1.0.0.1.0.0.1.2680|FE-ED-AB-AA-DE-AD-77-C5",
        })
    );
}

#[test]
fn bundle_links_observation_and_device_as_mes_requires() {
    let m = map(
        &reading(Kind::BodyWeight, q(70, 0, Unit::Kilogram)),
        DeviceKind::WeightScale,
    )
    .unwrap();
    let b = &m.bundle;
    assert_eq!(b["resourceType"], "Bundle");
    assert_eq!(b["type"], "transaction");
    let obs_id = observation(&m)["id"].as_str().unwrap();
    let dev_id = device_resource(&m)["id"].as_str().unwrap();
    assert_eq!(b["entry"][0]["fullUrl"], format!("urn:uuid:{obs_id}"));
    assert_eq!(b["entry"][1]["fullUrl"], format!("urn:uuid:{dev_id}"));
    assert_eq!(
        observation(&m)["device"]["reference"],
        format!("Device/{dev_id}")
    );
    // Bare uuids.
    assert!(uuid::Uuid::parse_str(obs_id).is_ok());
    assert!(uuid::Uuid::parse_str(dev_id).is_ok());
    assert_eq!(
        b["entry"][0]["request"],
        json!({"method": "POST", "url": "Observation"})
    );
}

#[test]
fn observation_elements_come_in_fhir_order() {
    let bp = Reading::blood_pressure(
        q(120, 0, Unit::MillimetreOfMercury),
        q(80, 0, Unit::MillimetreOfMercury),
        q(93, 0, Unit::MillimetreOfMercury),
    )
    .at(DeviceTime::Known(local()));
    let m = map(&bp, DeviceKind::BloodPressureCuff).unwrap();
    let keys: Vec<_> = observation(&m)
        .as_object()
        .unwrap()
        .keys()
        .cloned()
        .collect();
    assert_eq!(
        keys,
        [
            "resourceType",
            "id",
            "meta",
            "status",
            "category",
            "code",
            "subject",
            "effectiveDateTime",
            "bodySite",
            "device",
            "component"
        ]
    );
}

#[test]
fn the_same_reading_always_gives_the_same_bundle() {
    let r = reading(Kind::BodyWeight, q(7235, -2, Unit::Kilogram));
    let a = map(&r, DeviceKind::WeightScale).unwrap();
    let b = map(&r, DeviceKind::WeightScale).unwrap();
    assert_eq!(
        serde_json::to_string(&a.bundle).unwrap(),
        serde_json::to_string(&b.bundle).unwrap()
    );
    let other = map(
        &reading(Kind::BodyWeight, q(7236, -2, Unit::Kilogram)),
        DeviceKind::WeightScale,
    )
    .unwrap();
    assert_ne!(observation(&a)["id"], observation(&other)["id"]);
    assert_eq!(device_resource(&a)["id"], device_resource(&other)["id"]);
}

#[test]
fn the_dedup_key_uses_the_uncorrected_device_time() {
    let r = reading(Kind::BodyWeight, q(7235, -2, Unit::Kilogram));
    let skewed = ClockContext::new(received()).with_skew(SignedDuration::from_secs(600));
    let m = map_reading(
        &r,
        &device(DeviceKind::WeightScale),
        &pairing(),
        &hub(),
        &skewed,
    )
    .unwrap();
    assert_eq!(
        m.dedup_key,
        format!(
            "FEEDABAADEAD77C5-{ID_PE}-urn:oid:{ASSIGNING_AUTHORITY}-29463-7-72.35-kg-20240305T083015.00"
        )
    );
    assert_eq!(
        observation(&m)["effectiveDateTime"],
        "2024-03-05T08:20:15+01:00"
    );
    // Not sent.
    assert!(observation(&m).get("identifier").is_none());
}

// ---------------------------------------------------------------------------------------------
// The published examples of the reference, element by element

/// Reference §1.5 (a): the weight write Bundle of the ANS IG (text narrative left out there).
const EXAMPLE_WEIGHT_BUNDLE: &str = r#"{"resourceType":"Bundle","id":"example-mes-fr-bundle-body-weight",
"meta":{"profile":["https://interop.esante.gouv.fr/ig/fhir/mesures/StructureDefinition/mesures-bundle-flux-alimentation"]},
"type":"transaction",
"entry":[
{"fullUrl":"urn:uuid:5138af77-df7e-4b9d-ba17-07ba3ebb950a",
"resource":{"resourceType":"Observation","id":"5138af77-df7e-4b9d-ba17-07ba3ebb950a",
"meta":{"profile":["https://interop.esante.gouv.fr/ig/fhir/mesures/StructureDefinition/mesures-fr-observation-body-weight"]},
"extension":[{"url":"https://interop.esante.gouv.fr/ig/fhir/mesures/StructureDefinition/mesures-reason-for-measurement","valueString":"Mon nouveau poids !"}],
"status":"final",
"category":[{"coding":[{"system":"http://terminology.hl7.org/CodeSystem/observation-category","code":"vital-signs"}]}],
"code":{"coding":[{"system":"http://loinc.org","code":"29463-7","display":"Poids corporel [Masse] Patient ; Numérique"}]},
"subject":{"identifier":{"system":"urn:oid:1.2.840.10004.1.1.1.0.0.1.0.0.1.2560","value":"id-value"}},
"effectiveDateTime":"2022-08-22T01:56:16+01:00",
"valueQuantity":{"value":71,"unit":"kg","system":"http://unitsofmeasure.org","code":"kg"},
"device":{"reference":"Device/d36bfdb6-b1b1-4efd-9cb9-d217a8696575"}},
"request":{"method":"POST","url":"Observation"}},
{"fullUrl":"urn:uuid:d36bfdb6-b1b1-4efd-9cb9-d217a8696575",
"resource":{"resourceType":"Device","id":"d36bfdb6-b1b1-4efd-9cb9-d217a8696575",
"meta":{"profile":["http://hl7.org/fhir/uv/phd/StructureDefinition/PhdDevice"]},
"identifier":[{"type":{"coding":[{"system":"http://hl7.org/fhir/uv/phd/CodeSystem/ContinuaDeviceIdentifiers","code":"SYSID"}]},
"system":"urn:oid:1.2.840.10004.1.1.1.0.0.1.0.0.1.2680","value":"FE-ED-AB-AA-DE-AD-77-C5"}],
"manufacturer":"OMRONHEALTHCARE","deviceName":[{"name":"Ma balance","type":"patient-reported-name"}],
"modelNumber":"HEM-9200T",
"type":{"coding":[{"system":"urn:iso:std:iso:11073:10101","code":"65573"}]},
"specialization":[{"systemType":{"coding":[{"system":"urn:iso:std:iso:11073:10101","code":"528457"}]},"version":"2.3"}]},
"request":{"method":"POST","url":"Device"}}]}"#;

/// Reference §1.5 (b): the blood pressure Observation of the ANS IG (performer and
/// interpretation left out there).
const EXAMPLE_BP_OBSERVATION: &str = r#"{"resourceType":"Observation","id":"example-mes-fr-observation-bp-001",
"meta":{"profile":["https://interop.esante.gouv.fr/ig/fhir/mesures/StructureDefinition/mesures-fr-observation-bp"]},
"status":"final",
"category":[{"coding":[{"system":"http://terminology.hl7.org/CodeSystem/observation-category","code":"vital-signs"}]}],
"code":{"coding":[{"system":"http://loinc.org","code":"85354-9"}]},
"subject":{"reference":"Patient/example-mes-fr-patient-001","type":"Patient","display":"Pierre Durand"},
"effectiveDateTime":"2012-09-17",
"bodySite":{"coding":[{"system":"https://mos.esante.gouv.fr/NOS/TRE_R309-FMA/FHIR/TRE-R309-FMA","code":"24890","display":"Bras"}]},
"component":[
{"code":{"coding":[{"system":"http://loinc.org","code":"8480-6","display":"Systolic blood pressure"}]},
"valueQuantity":{"value":107,"unit":"mm[Hg]","system":"http://unitsofmeasure.org","code":"mm[Hg]"}},
{"code":{"coding":[{"system":"http://loinc.org","code":"8462-4","display":"Diastolic blood pressure"}]},
"valueQuantity":{"value":60,"unit":"mm[Hg]","system":"http://unitsofmeasure.org","code":"mm[Hg]"}}]}"#;

#[test]
fn the_published_weight_bundle_differs_only_where_documented() {
    let example: Value = serde_json::from_str(EXAMPLE_WEIGHT_BUNDLE).unwrap();
    // The example's inputs: 71 kg on 2022-08-22 01:56:16 at +01:00 (London in summer), the
    // placeholder subject, the example's generic device.
    let hub = HubSettings {
        time_zone: TimeZone::get("Europe/London").unwrap(),
        ..hub()
    };
    let pairing = Pairing {
        assigning_authority: "1.2.840.10004.1.1.1.0.0.1.0.0.1.2560".parse().unwrap(),
        id_pe: "id-value".into(),
    };
    let device = DeviceIdentity {
        kind: DeviceKind::Generic,
        system_id: Some("FE-ED-AB-AA-DE-AD-77-C5".parse().unwrap()),
        manufacturer: Some("OMRONHEALTHCARE".into()),
        model: Some("HEM-9200T".into()),
        ..DeviceIdentity::default()
    };
    let r = Reading::new(Kind::BodyWeight, q(71, 0, Unit::Kilogram))
        .at(DeviceTime::Known(date(2022, 8, 22).at(1, 56, 16, 0)));
    let clock = ClockContext::new("2022-08-22T01:00:00Z".parse().unwrap());
    let ours = map_reading(&r, &device, &pairing, &hub, &clock).unwrap();

    assert_eq!(
        diff(&example, &ours.bundle),
        Diff {
            // The IG's Bundle id and profile (MES shows neither), its free-text reason (relais
            // has none) and its patient-given device name (relais has none).
            only_in_example: set(&[
                "/id",
                "/meta/profile/0",
                "/entry/0/resource/extension/0/url",
                "/entry/0/resource/extension/0/valueString",
                "/entry/1/resource/deviceName/0/name",
                "/entry/1/resource/deviceName/0/type",
            ]),
            // meta.source (the hub's OID) and the conditional create MES requires.
            only_in_ours: set(&[
                "/entry/0/resource/meta/source",
                "/entry/1/request/ifNoneExist",
            ]),
            // Ids (name-based here), and the specialization version ("2.3" there, "1" here).
            differing: set(&[
                "/entry/0/fullUrl",
                "/entry/0/resource/id",
                "/entry/0/resource/device/reference",
                "/entry/1/fullUrl",
                "/entry/1/resource/id",
                "/entry/1/resource/specialization/0/version",
            ]),
        }
    );
    // The ids that differ are tied together the same way.
    let dev_id = ours.bundle["entry"][1]["resource"]["id"].as_str().unwrap();
    assert_eq!(
        ours.bundle["entry"][0]["resource"]["device"]["reference"],
        format!("Device/{dev_id}")
    );
    assert_eq!(
        ours.bundle["entry"][1]["fullUrl"],
        format!("urn:uuid:{dev_id}")
    );
}

#[test]
fn the_published_blood_pressure_observation_differs_only_where_documented() {
    let example: Value = serde_json::from_str(EXAMPLE_BP_OBSERVATION).unwrap();
    let bp = Reading::blood_pressure(
        q(107, 0, Unit::MillimetreOfMercury),
        q(60, 0, Unit::MillimetreOfMercury),
        q(76, 0, Unit::MillimetreOfMercury),
    )
    .at(DeviceTime::Known(date(2012, 9, 17).at(9, 0, 0, 0)));
    let ours = map(&bp, DeviceKind::BloodPressureCuff).unwrap();
    assert_eq!(
        diff(&example, observation(&ours)),
        Diff {
            // The IG subject is a Patient reference; MES requires subject.identifier.
            only_in_example: set(&["/subject/reference", "/subject/type", "/subject/display"]),
            only_in_ours: set(&[
                "/meta/source",
                "/subject/identifier/system",
                "/subject/identifier/value",
                "/device/reference",
            ]),
            // The example's id, and its date-only effectiveDateTime (ours has time and offset).
            differing: set(&["/id", "/effectiveDateTime"]),
        }
    );
    assert_eq!(
        observation(&ours)["effectiveDateTime"],
        "2012-09-17T09:00:00+02:00"
    );
}

// ---------------------------------------------------------------------------------------------
// The glucose matrix (reference §1.4)

#[test]
fn blood_glucose_has_a_moment_and_no_number_of_days() {
    for (meal, code) in [
        (Some(Meal::Preprandial), "88365-2"),
        (Some(Meal::Postprandial), "16915-1"),
        (Some(Meal::Fasting), "53049-3"),
        (Some(Meal::Casual), "LA46-8"),
        (Some(Meal::Bedtime), "LA46-8"),
        (None, "LA46-8"),
    ] {
        let mut r = reading(Kind::BloodGlucose, q(110, 0, Unit::MilligramPerDecilitre));
        r.context.meal = meal;
        let m = map(&r, DeviceKind::GlucoseMeter).unwrap();
        let o = observation(&m);
        let extensions = o["extension"].as_array().unwrap();
        assert_eq!(extensions.len(), 1, "{meal:?}");
        assert!(
            extensions[0]["url"]
                .as_str()
                .unwrap()
                .ends_with("mesures-moment-of-measurement")
        );
        assert_eq!(
            extensions[0]["valueCodeableConcept"]["coding"][0]["code"],
            code
        );
        assert_eq!(
            extensions[0]["valueCodeableConcept"]["coding"][0]["system"],
            "https://mos.esante.gouv.fr/NOS/TRE_A04-Loinc/FHIR/TRE-A04-Loinc"
        );
        assert_eq!(o["code"]["coding"][0]["code"], "2345-7");
        assert_eq!(o["valueQuantity"]["code"], "mg/dL");
    }
}

#[test]
fn cgm_aggregates_have_a_number_of_days_and_no_moment() {
    for window in CgmWindow::ALL {
        let pair = map_cgm_aggregate(
            &cgm_aggregate(window, 140.0),
            &device(DeviceKind::ContinuousGlucoseMonitor),
            &pairing(),
            &hub(),
            &clock(),
        )
        .unwrap();
        for (m, code, unit) in [(&pair[0], "MED-969", "mg/dL"), (&pair[1], "MED-972", "%")] {
            let o = observation(m);
            assert_eq!(o["code"]["coding"][0]["code"], code);
            assert_eq!(o["valueQuantity"]["code"], unit);
            let extensions = o["extension"].as_array().unwrap();
            assert_eq!(extensions.len(), 1);
            assert!(
                extensions[0]["url"]
                    .as_str()
                    .unwrap()
                    .ends_with("mesures-number-of-days")
            );
            assert_eq!(
                extensions[0]["valueCodeableConcept"]["coding"][0]["code"],
                window.coding().code
            );
        }
    }
}

#[test]
fn a_single_cgm_point_is_not_accepted() {
    let r = reading(
        Kind::InterstitialGlucose,
        q(120, 0, Unit::MilligramPerDecilitre),
    );
    assert!(matches!(
        map(&r, DeviceKind::ContinuousGlucoseMonitor),
        Err(Unsendable::NotAccepted {
            kind: Kind::InterstitialGlucose,
            ..
        })
    ));
}

// ---------------------------------------------------------------------------------------------
// Time: DST and skew through the whole mapper

fn weight_at(dt: civil::DateTime) -> Reading {
    Reading::new(Kind::BodyWeight, q(70, 0, Unit::Kilogram)).at(DeviceTime::Known(dt))
}

fn effective_of(r: &Reading, skew_secs: i64) -> Effective {
    let clock = ClockContext::new("2030-01-01T00:00:00Z".parse().unwrap())
        .with_skew(SignedDuration::from_secs(skew_secs));
    let m = map_reading(
        r,
        &device(DeviceKind::WeightScale),
        &pairing(),
        &hub(),
        &clock,
    )
    .unwrap();
    assert_eq!(
        observation(&m)["effectiveDateTime"],
        m.effective.date_time.as_str()
    );
    m.effective
}

#[test]
fn winter_and_summer_offsets_in_paris() {
    assert_eq!(
        effective_of(&weight_at(date(2024, 1, 15).at(7, 0, 0, 0)), 0).date_time,
        "2024-01-15T07:00:00+01:00"
    );
    assert_eq!(
        effective_of(&weight_at(date(2024, 8, 15).at(7, 0, 0, 0)), 0).date_time,
        "2024-08-15T07:00:00+02:00"
    );
}

#[test]
fn a_reading_in_the_spring_gap_is_moved_forward() {
    let e = effective_of(&weight_at(date(2024, 3, 31).at(2, 30, 0, 0)), 0);
    assert_eq!(e.date_time, "2024-03-31T03:30:00+02:00");
    assert_eq!(
        e.source,
        TimeSource::DeviceClock(LocalResolution::GapShiftedForward)
    );
}

#[test]
fn a_reading_in_the_autumn_fold_takes_the_earlier_instant() {
    let e = effective_of(&weight_at(date(2024, 10, 27).at(2, 30, 0, 0)), 0);
    assert_eq!(e.date_time, "2024-10-27T02:30:00+02:00");
    assert_eq!(
        e.source,
        TimeSource::DeviceClock(LocalResolution::FoldEarlier)
    );
}

#[test]
fn the_skew_measured_at_connection_corrects_the_reading() {
    // Device 2 min 5 s ahead.
    let e = effective_of(&weight_at(date(2024, 3, 5).at(8, 32, 20, 0)), 125);
    assert_eq!(e.date_time, "2024-03-05T08:30:15+01:00");
    // Device 1 h behind (never switched to summer time).
    let e = effective_of(&weight_at(date(2024, 7, 1).at(9, 0, 0, 0)), -3600);
    assert_eq!(e.date_time, "2024-07-01T10:00:00+02:00");
}

#[test]
fn a_reading_dated_after_its_reception_is_refused() {
    // Received at 08:00Z = 09:00+01:00; the device says 09:30 and its skew is unknown.
    let r = weight_at(date(2024, 3, 5).at(9, 30, 0, 0));
    assert!(matches!(
        map(&r, DeviceKind::WeightScale),
        Err(Unsendable::InTheFuture { .. })
    ));
    // Within the tolerance it is accepted.
    let r = weight_at(date(2024, 3, 5).at(9, 4, 0, 0));
    assert!(map(&r, DeviceKind::WeightScale).is_ok());
}

#[test]
fn an_undated_reading_is_refused_unless_the_hub_allows_reception_time() {
    let hr = Reading::new(Kind::HeartRate, q(64, 0, Unit::PerMinute));
    assert_eq!(
        map(&hr, DeviceKind::Generic),
        Err(Unsendable::Undated(Undated::NoTimeStamp))
    );
    let lenient = HubSettings {
        use_reception_time_for_undated: true,
        ..hub()
    };
    let m = map_reading(
        &hr,
        &device(DeviceKind::Generic),
        &pairing(),
        &lenient,
        &clock(),
    )
    .unwrap();
    assert_eq!(
        observation(&m)["effectiveDateTime"],
        "2024-03-05T09:00:00+01:00"
    );
    assert_eq!(m.effective.source, TimeSource::Reception);
    assert!(m.dedup_key.ends_with("-20240305T080000Z"));

    // A stored record is never dated by its reception.
    let stored = hr.status(ReadingStatus {
        from_storage: true,
        ..Default::default()
    });
    assert_eq!(
        map_reading(
            &stored,
            &device(DeviceKind::Generic),
            &pairing(),
            &lenient,
            &clock()
        ),
        Err(Unsendable::Undated(Undated::NoTimeStamp))
    );
}

#[test]
fn a_device_whose_clock_is_not_set_gives_undated_readings() {
    let r = reading(Kind::OxygenSaturation, q(97, 0, Unit::Percent)).status(ReadingStatus {
        clock_not_set: true,
        ..Default::default()
    });
    assert_eq!(
        map(&r, DeviceKind::PulseOximeter),
        Err(Unsendable::Undated(Undated::ClockNotSet))
    );
}

// ---------------------------------------------------------------------------------------------
// Refusals

#[test]
fn bmi_is_refused() {
    let r = reading(
        Kind::BodyMassIndex,
        q(231, -1, Unit::KilogramPerSquareMetre),
    );
    let err = map(&r, DeviceKind::WeightScale).unwrap_err();
    assert!(matches!(
        err,
        Unsendable::NotAccepted {
            kind: Kind::BodyMassIndex,
            ..
        }
    ));
    assert!(err.to_string().contains("body_mass_index"), "{err}");
}

#[test]
fn special_values_are_refused() {
    for special in [
        Special::NaN,
        Special::NRes,
        Special::PositiveInfinity,
        Special::NegativeInfinity,
        Special::Reserved,
    ] {
        let r = reading(
            Kind::BodyTemperature,
            Quantity::special(special, Unit::Celsius),
        );
        assert_eq!(
            map(&r, DeviceKind::Thermometer),
            Err(Unsendable::SpecialValue(special.name()))
        );
    }
}

#[test]
fn a_thermometer_site_comes_from_the_reading_or_the_device_and_must_be_in_j151() {
    let r = reading(Kind::BodyTemperature, q(375, -1, Unit::Celsius));
    assert_eq!(
        map(&r, DeviceKind::Thermometer),
        Err(Unsendable::MissingTemperatureSite)
    );
    let ear = DeviceIdentity {
        temperature_type: Some(TemperatureType::Tympanum),
        ..device(DeviceKind::Thermometer)
    };
    let m = map_reading(&r, &ear, &pairing(), &hub(), &clock()).unwrap();
    assert_eq!(observation(&m)["bodySite"]["coding"][0]["code"], "52780");
    let mut body = r;
    body.context.temperature_type = Some(TemperatureType::Body);
    assert_eq!(
        map_reading(&body, &ear, &pairing(), &hub(), &clock()),
        Err(Unsendable::UnsupportedTemperatureSite("body"))
    );
}

#[test]
fn a_pairing_without_idpe_is_refused() {
    let r = reading(Kind::BodyWeight, q(70, 0, Unit::Kilogram));
    let pairing = Pairing {
        id_pe: " ".into(),
        ..pairing()
    };
    assert_eq!(
        map_reading(
            &r,
            &device(DeviceKind::WeightScale),
            &pairing,
            &hub(),
            &clock()
        ),
        Err(Unsendable::MissingIdPe)
    );
}

// ---------------------------------------------------------------------------------------------
// ifNoneExist and flavours

#[test]
fn every_device_identification_gives_a_condition_mes_accepts() {
    let r = reading(Kind::BodyWeight, q(70, 0, Unit::Kilogram));
    let identities = [
        device(DeviceKind::WeightScale),
        DeviceIdentity {
            system_id: None,
            address: Some("F0:9F:C2:12:34:56".parse().unwrap()),
            ..device(DeviceKind::WeightScale)
        },
        DeviceIdentity {
            system_id: None,
            serial: Some("0042 / rev B".into()),
            ..device(DeviceKind::WeightScale)
        },
    ];
    let regex = mes_regex();
    for identity in identities {
        let m = map_reading(&r, &identity, &pairing(), &hub(), &clock()).unwrap();
        let condition = m.bundle["entry"][1]["request"]["ifNoneExist"]
            .as_str()
            .unwrap();
        assert!(regex.is_match(condition), "{condition}");
        // The Device carries the identifier its condition searches for.
        let (system, value) = condition
            .strip_prefix("identifier=")
            .unwrap()
            .split_once('|')
            .unwrap();
        let identifiers = device_resource(&m)["identifier"].as_array().unwrap();
        assert!(
            identifiers
                .iter()
                .any(|i| i["system"] == system && i["value"] == value),
            "{condition}"
        );
    }
}

#[test]
fn each_flavour_sets_its_profile_urls() {
    let r = reading(Kind::BodyWeight, q(70, 0, Unit::Kilogram));
    for (flavour, url) in [
        (
            ProfileFlavour::Ans,
            "https://interop.esante.gouv.fr/ig/fhir/mesures/StructureDefinition/mesures-fr-observation-body-weight",
        ),
        (
            ProfileFlavour::Mes,
            "https://fhir.monespacesante.fr/ref/mesure/StructureDefinition/mes-observation-bodyweight",
        ),
        (
            ProfileFlavour::Ens,
            "http://esante.gouv.fr/ci-sis/fhir/StructureDefinition/ENS_FrObservationBodyWeight",
        ),
    ] {
        let hub = HubSettings {
            profiles: flavour,
            ..hub()
        };
        let m = map_reading(
            &r,
            &device(DeviceKind::WeightScale),
            &pairing(),
            &hub,
            &clock(),
        )
        .unwrap();
        assert_eq!(observation(&m)["meta"]["profile"], json!([url]));
        // The Device profile does not depend on the flavour.
        assert_eq!(
            device_resource(&m)["meta"]["profile"],
            json!(["http://hl7.org/fhir/uv/phd/StructureDefinition/PhdDevice"])
        );
    }
}

#[test]
fn oxygen_saturation_needs_the_ans_flavour() {
    let r = reading(Kind::OxygenSaturation, q(97, 0, Unit::Percent));
    for flavour in [ProfileFlavour::Mes, ProfileFlavour::Ens] {
        let hub = HubSettings {
            profiles: flavour,
            ..hub()
        };
        assert_eq!(
            map_reading(
                &r,
                &device(DeviceKind::PulseOximeter),
                &pairing(),
                &hub,
                &clock()
            ),
            Err(Unsendable::NoProfileInFlavour {
                measure: MeasureKind::OxygenSaturation,
                flavour
            })
        );
    }
}

// ---------------------------------------------------------------------------------------------
// Never a panic, never a half-valid Bundle

/// What every Bundle the mapper returns must satisfy.
fn check_bundle(m: &MappedReading) -> Result<(), TestCaseError> {
    let b = &m.bundle;
    prop_assert_eq!(&b["type"], "transaction");
    let entries = b["entry"].as_array().unwrap();
    prop_assert_eq!(entries.len(), 2);
    let (o, d) = (&entries[0]["resource"], &entries[1]["resource"]);
    let dev_id = d["id"].as_str().unwrap();
    prop_assert_eq!(
        &o["device"]["reference"],
        &json!(format!("Device/{dev_id}"))
    );
    prop_assert_eq!(&entries[1]["fullUrl"], &json!(format!("urn:uuid:{dev_id}")));
    prop_assert_eq!(&o["status"], "final");
    prop_assert!(o["meta"]["profile"][0].is_string());
    prop_assert!(o["subject"]["identifier"]["value"].is_string());
    prop_assert!(o["valueQuantity"]["value"].is_number() ^ o["component"].is_array());
    let effective = o["effectiveDateTime"].as_str().unwrap();
    prop_assert!(effective.parse::<Timestamp>().is_ok(), "{}", effective);
    let condition = entries[1]["request"]["ifNoneExist"].as_str().unwrap();
    prop_assert!(mes_regex().is_match(condition), "{}", condition);
    prop_assert!(d["manufacturer"].is_string() && d["modelNumber"].is_string());
    Ok(())
}

const ALL_KINDS: [Kind; 22] = [
    Kind::BodyWeight,
    Kind::BodyHeight,
    Kind::BodyMassIndex,
    Kind::BodyFatPercentage,
    Kind::BasalMetabolism,
    Kind::MusclePercentage,
    Kind::MuscleMass,
    Kind::FatFreeMass,
    Kind::SoftLeanMass,
    Kind::BodyWaterMass,
    Kind::Impedance,
    Kind::BloodPressure,
    Kind::CuffPressure,
    Kind::PulseRate,
    Kind::HeartRate,
    Kind::EnergyExpended,
    Kind::BloodGlucose,
    Kind::BloodKetone,
    Kind::InterstitialGlucose,
    Kind::BodyTemperature,
    Kind::OxygenSaturation,
    Kind::PulseAmplitudeIndex,
];

fn any_quantity(unit: Unit) -> impl Strategy<Value = Quantity> {
    prop_oneof![
        4 => (any::<i64>(), -20i8..=10).prop_map(move |(m, e)| q(m, e, unit)),
        4 => (-5000i64..5000, -3i8..=1).prop_map(move |(m, e)| q(m, e, unit)),
        1 => prop::sample::select(vec![Special::NaN, Special::NRes, Special::PositiveInfinity])
            .prop_map(move |s| Quantity::new(MedValue::Special(s), unit)),
    ]
}

fn any_reading() -> impl Strategy<Value = Reading> {
    (
        prop::sample::select(ALL_KINDS.to_vec()),
        any::<bool>(),
        (1990i16..2035, 1i8..=12, 1i8..=28, 0i8..24, 0i8..60, 0i8..60),
        0u8..3,
        any::<u32>(),
        prop::option::of(0u8..8),
        prop::option::of(0u8..12),
    )
        .prop_flat_map(
            |(kind, bp_shape, (y, mo, d, h, mi, s), time, bits, meal, temp)| {
                let unit = kind.canonical_unit();
                (any_quantity(unit), any_quantity(unit), any_quantity(unit)).prop_map(
                    move |(a, b, c)| {
                        let value = if kind == Kind::BloodPressure || (bp_shape && bits % 7 == 0) {
                            ReadingValue::BloodPressure {
                                systolic: a,
                                diastolic: b,
                                mean_arterial_pressure: c,
                            }
                        } else {
                            ReadingValue::Single(a)
                        };
                        let dt = civil::DateTime::new(y, mo, d, h, mi, s, 0).unwrap();
                        let mut r = Reading::new(kind, a).at(match time {
                            0 => DeviceTime::Known(dt),
                            1 => DeviceTime::Absent,
                            _ => DeviceTime::Incomplete(relais_protocol::DateTime {
                                day: None,
                                ..relais_protocol::DateTime::from_civil(dt).unwrap()
                            }),
                        });
                        r.value = value;
                        // Mostly clean statuses, so that Bundles come out too.
                        r.status = ReadingStatus::from_bits(if bits % 3 == 0 { bits } else { 0 });
                        r.context.meal = meal.map(Meal::from_code);
                        r.context.temperature_type = temp.map(TemperatureType::from_code);
                        r
                    },
                )
            },
        )
}

fn any_identity() -> impl Strategy<Value = DeviceIdentity> {
    (
        prop::option::of(any::<[u8; 8]>()),
        prop::option::of(any::<[u8; 6]>()),
        prop::option::of("[ -~]{0,12}"),
        prop::option::of("[ -~]{0,12}"),
        prop::option::of("[ -~]{0,12}"),
        prop::option::of(0u8..12),
    )
        .prop_map(
            |(sysid, mac, manufacturer, model, serial, temp)| DeviceIdentity {
                kind: DeviceKind::Generic,
                system_id: sysid.map(Eui64),
                address: mac.map(Eui48),
                manufacturer,
                model,
                serial,
                temperature_type: temp.map(TemperatureType::from_code),
                cuff_site: CuffSite::Arm,
            },
        )
}

fn any_hub() -> impl Strategy<Value = HubSettings> {
    (
        prop::sample::select(ProfileFlavour::ALL.to_vec()),
        prop::sample::select(vec![
            "Europe/Paris",
            "America/New_York",
            "Pacific/Chatham",
            "UTC",
        ]),
        any::<bool>(),
    )
        .prop_map(|(profiles, zone, lenient)| HubSettings {
            profiles,
            time_zone: TimeZone::get(zone).unwrap(),
            use_reception_time_for_undated: lenient,
            ..hub()
        })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn any_reading_gives_a_valid_bundle_or_a_typed_reason(
        r in any_reading(),
        identity in any_identity(),
        hub in any_hub(),
        skew in prop_oneof![-4000i64..4000, any::<i64>()],
        received in 0i64..2_100_000_000,
    ) {
        let clock = ClockContext {
            skew: SignedDuration::from_secs(skew),
            received_at: Timestamp::from_second(received).unwrap(),
        };
        match map_reading(&r, &identity, &pairing(), &hub, &clock) {
            Ok(m) => check_bundle(&m)?,
            Err(why) => prop_assert!(!why.to_string().is_empty()),
        }
    }
}

/// The readings of a value of `T` decoded from `bytes`, or none when it does not decode.
fn readings_of<T: Characteristic + ToReadings>(bytes: &[u8]) -> Vec<Reading> {
    T::decode_with(bytes, Quirks::NONE)
        .map(|d| d.value.readings().to_vec())
        .unwrap_or_default()
}

type Decoder = fn(&[u8]) -> Vec<Reading>;

fn decoders() -> Vec<(DeviceKind, Decoder)> {
    vec![
        (
            DeviceKind::BloodPressureCuff,
            readings_of::<blood_pressure::BloodPressureMeasurement>,
        ),
        (
            DeviceKind::BloodPressureCuff,
            readings_of::<blood_pressure::IntermediateCuffPressure>,
        ),
        (
            DeviceKind::WeightScale,
            readings_of::<weight_scale::WeightMeasurement>,
        ),
        (
            DeviceKind::BodyCompositionAnalyser,
            readings_of::<body_composition::BodyCompositionMeasurement>,
        ),
        (
            DeviceKind::GlucoseMeter,
            readings_of::<glucose::GlucoseMeasurement>,
        ),
        (
            DeviceKind::Thermometer,
            readings_of::<thermometer::TemperatureMeasurement>,
        ),
        (
            DeviceKind::Thermometer,
            readings_of::<thermometer::IntermediateTemperature>,
        ),
        (
            DeviceKind::Generic,
            readings_of::<heart_rate::HeartRateMeasurement>,
        ),
        (
            DeviceKind::PulseOximeter,
            readings_of::<pulse_oximeter::PlxSpotCheckMeasurement>,
        ),
        (
            DeviceKind::PulseOximeter,
            readings_of::<pulse_oximeter::PlxContinuousMeasurement>,
        ),
        (
            DeviceKind::ContinuousGlucoseMonitor,
            readings_of::<ble_cgm::CgmMeasurement>,
        ),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(1024))]

    #[test]
    fn any_decodable_measurement_gives_bundles_or_typed_reasons(
        which in 0usize..11,
        bytes in prop::collection::vec(any::<u8>(), 1..40),
        lenient in any::<bool>(),
    ) {
        let (kind, decode) = decoders()[which];
        let hub = HubSettings { use_reception_time_for_undated: lenient, ..hub() };
        let clock = ClockContext::new("2030-01-01T00:00:00Z".parse().unwrap());
        for r in decode(&bytes) {
            let identity = DeviceIdentity { temperature_type: Some(TemperatureType::Mouth), ..device(kind) };
            match map_reading(&r, &identity, &pairing(), &hub, &clock) {
                Ok(m) => check_bundle(&m)?,
                Err(why) => prop_assert!(!why.to_string().is_empty()),
            }
        }
    }
}

#[test]
fn a_real_blood_pressure_notification_gives_two_bundles() {
    // The README's example: 120/80 mmHg, pulse 72, 2024-03-05 08:30:15, user 2.
    let bytes = [
        0x1E, 0x78, 0x00, 0x50, 0x00, 0x5D, 0x00, 0xE8, 0x07, 0x03, 0x05, 0x08, 0x1E, 0x0F, 0x48,
        0x00, 0x02, 0x04, 0x00,
    ];
    let readings = readings_of::<blood_pressure::BloodPressureMeasurement>(&bytes);
    let mapped: Vec<_> = readings
        .iter()
        .map(|r| map(r, DeviceKind::BloodPressureCuff).unwrap())
        .collect();
    assert_eq!(mapped.len(), 2);
    assert_eq!(mapped[0].measure, MeasureKind::BloodPressure);
    assert_eq!(mapped[1].measure, MeasureKind::HeartRate);
    for m in &mapped {
        assert_eq!(
            observation(m)["effectiveDateTime"],
            "2024-03-05T08:30:15+01:00"
        );
    }
    // Both share the cuff's Device.
    assert_eq!(device_resource(&mapped[0]), device_resource(&mapped[1]));
}
