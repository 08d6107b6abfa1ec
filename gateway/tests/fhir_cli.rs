//! `relais fhir` as an integrator runs it: the real binary, the Bundles it prints, the reasons it
//! gives for readings MES cannot take, and its exit status.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

use std::process::{Command, Output};

use regex::Regex;
use serde_json::{Value, json};

const PAIRING: [&str; 6] = [
    "--idpe",
    "patient-externe-id-2",
    "--assign-auth-oid",
    "1.2.250.1.213.1.4.8",
    "--source-oid",
    "1.2.250.1.999.1",
];

const DEVICE: [&str; 6] = [
    "--system-id",
    "FE-ED-AB-AA-DE-AD-77-C5",
    "--manufacturer",
    "ACME",
    "--model",
    "M-1",
];

/// Blood pressure 120/80, pulse 72, 2024-03-05 08:30:15, user 2, irregular pulse.
const BPM: &str = "1E 78 00 50 00 5D 00 E8 07 03 05 08 1E 0F 48 00 02 04 00";
/// Weight 72.35 kg, BMI 23.1, height 1.770 m, 2024-03-05 08:30:15.
const WEIGHT_BMI_HEIGHT: &str = "0A 86 38 E8 07 03 05 08 1E 0F E7 00 EA 06";

fn relais(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_relais"))
        .args(args)
        .output()
        .expect("relais runs")
}

fn fhir(value: &[&str], extra: &[&str]) -> Output {
    let mut args = vec!["fhir"];
    args.extend_from_slice(value);
    args.extend_from_slice(&PAIRING);
    args.extend_from_slice(&DEVICE);
    args.extend_from_slice(extra);
    relais(&args)
}

/// The Bundles printed by a successful run, and its stderr lines.
fn mapped(out: &Output) -> (Vec<Value>, Vec<String>) {
    assert!(
        out.status.success(),
        "relais fhir failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: Value = serde_json::from_slice(&out.stdout).expect("one JSON array");
    let stderr = String::from_utf8(out.stderr.clone()).unwrap();
    (
        v.as_array().expect("an array").clone(),
        stderr.lines().map(str::to_owned).collect(),
    )
}

fn observation(bundle: &Value) -> &Value {
    &bundle["entry"][0]["resource"]
}

#[test]
fn a_blood_pressure_measurement_gives_a_pressure_then_a_heart_rate_bundle() {
    let (bundles, stderr) = mapped(&fhir(&["2A35", BPM], &[]));
    assert!(stderr.is_empty(), "{stderr:?}");
    assert_eq!(bundles.len(), 2);
    let bp = observation(&bundles[0]);
    assert_eq!(bp["code"]["coding"][0]["code"], "85354-9");
    assert_eq!(bp["component"][0]["valueQuantity"]["value"], 120);
    assert_eq!(bp["component"][1]["valueQuantity"]["value"], 80);
    assert_eq!(bp["component"].as_array().unwrap().len(), 2);
    assert!(bp.get("valueQuantity").is_none());
    assert_eq!(bp["bodySite"]["coding"][0]["code"], "24890");
    assert_eq!(bp["effectiveDateTime"], "2024-03-05T08:30:15+01:00");
    assert_eq!(
        bp["subject"],
        json!({"identifier": {"system": "urn:oid:1.2.250.1.213.1.4.8", "value": "patient-externe-id-2"}})
    );
    assert_eq!(bp["meta"]["source"], "urn:oid:1.2.250.1.999.1");
    let hr = observation(&bundles[1]);
    assert_eq!(hr["code"]["coding"][0]["code"], "8867-4");
    assert_eq!(hr["valueQuantity"]["value"], 72);
    assert_eq!(hr["valueQuantity"]["code"], "/min");
    // The pattern MES applies to the Device condition, anchored as Java's `matches` does.
    let mes =
        Regex::new(r"^identifier=urn:oid:([0-9]+[\.[0-9]+]+)\|([a-zA-Z0-9]+[-[a-zA-Z0-9]+]+)$")
            .unwrap();
    for b in &bundles {
        assert_eq!(b["type"], "transaction");
        let device = &b["entry"][1]["resource"];
        assert_eq!(
            device["specialization"][0]["systemType"]["coding"][0]["code"],
            "528391"
        );
        let condition = b["entry"][1]["request"]["ifNoneExist"].as_str().unwrap();
        assert!(mes.is_match(condition), "{condition}");
        assert_eq!(
            observation(b)["device"]["reference"],
            format!("Device/{}", device["id"].as_str().unwrap())
        );
    }
}

#[test]
fn bmi_is_refused_on_stderr_while_weight_and_height_are_sent() {
    let (bundles, stderr) = mapped(&fhir(&["2A9D", WEIGHT_BMI_HEIGHT], &[]));
    let codes: Vec<_> = bundles
        .iter()
        .map(|b| observation(b)["code"]["coding"][0]["code"].clone())
        .collect();
    assert_eq!(codes, [json!("29463-7"), json!("8302-2")]);
    assert_eq!(
        observation(&bundles[0])["valueQuantity"],
        json!({"value": 72.35, "unit": "kg", "system": "http://unitsofmeasure.org", "code": "kg"})
    );
    assert_eq!(observation(&bundles[1])["valueQuantity"]["value"], 177.0);
    assert_eq!(stderr.len(), 1, "{stderr:?}");
    assert!(
        stderr[0].starts_with("reading 2 (body_mass_index): not sent: MES does not accept"),
        "{}",
        stderr[0]
    );
}

#[test]
fn a_glucose_measurement_takes_its_moment_from_the_context() {
    let measurement = ["2A18", "12 01 00 E8 07 03 05 08 1E 0F 5F B0 11"];
    let (alone, _) = mapped(&fhir(&measurement, &[]));
    let (with_context, _) = mapped(&fhir(&measurement, &["--context", "02 01 00 01"]));
    let moment = |b: &Value| {
        observation(b)["extension"][0]["valueCodeableConcept"]["coding"][0]["code"].clone()
    };
    assert_eq!(moment(&alone[0]), "LA46-8");
    assert_eq!(moment(&with_context[0]), "88365-2");
    let o = observation(&with_context[0]);
    assert_eq!(
        o["code"]["coding"][0]["system"],
        "https://mos.esante.gouv.fr/NOS/TRE_A04-Loinc/FHIR/TRE-A04-Loinc"
    );
    assert_eq!(o["valueQuantity"]["value"], 95);
    assert_eq!(o["valueQuantity"]["code"], "mg/dL");
}

#[test]
fn a_context_for_another_measurement_is_an_error() {
    let out = fhir(
        &["2A18", "12 01 00 E8 07 03 05 08 1E 0F 5F B0 11"],
        &["--context", "02 02 00 01"],
    );
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("sequence number 2"));
}

#[test]
fn a_thermometer_reading_carries_its_body_site() {
    let (bundles, _) = mapped(&fhir(
        &["2A1C", "06 74 01 00 FF E8 07 03 05 08 1E 0F 01"],
        &[],
    ));
    let o = observation(&bundles[0]);
    assert_eq!(o["valueQuantity"]["value"], 37.2);
    assert_eq!(o["valueQuantity"]["code"], "Cel");
    assert_eq!(o["bodySite"]["coding"][0]["display"], "Aisselle");
}

#[test]
fn a_heart_rate_without_time_needs_a_reception_time() {
    let out = fhir(&["2A37", "00 48"], &[]);
    assert_eq!(out.status.code(), Some(1));
    assert!(out.stdout.is_empty());
    let stderr = String::from_utf8(out.stderr).unwrap();
    let lines: Vec<_> = stderr.lines().collect();
    assert_eq!(lines.len(), 2, "{stderr}");
    assert_eq!(
        lines[0],
        "reading 1 (heart_rate): not sent: no usable date: the reading has no time stamp"
    );
    assert!(
        lines[1].starts_with("error: none of the 1 reading(s)"),
        "{}",
        lines[1]
    );

    let (bundles, _) = mapped(&fhir(
        &["2A37", "00 48"],
        &["--received-at", "2024-07-14T10:00:00+02:00"],
    ));
    assert_eq!(
        observation(&bundles[0])["effectiveDateTime"],
        "2024-07-14T10:00:00+02:00"
    );
}

#[test]
fn the_clock_skew_and_the_time_zone_are_applied() {
    // The scale's clock shows 08:32:20 and is 125 s fast.
    let value = ["2A9D", "02 86 38 E8 07 03 05 08 20 14"];
    let (bundles, _) = mapped(&fhir(&value, &["--clock-skew", "125"]));
    assert_eq!(
        observation(&bundles[0])["effectiveDateTime"],
        "2024-03-05T08:30:15+01:00"
    );
    let (bundles, _) = mapped(&fhir(
        &value,
        &["--clock-skew", "-35", "--tz", "America/Martinique"],
    ));
    assert_eq!(
        observation(&bundles[0])["effectiveDateTime"],
        "2024-03-05T08:32:55-04:00"
    );
}

#[test]
fn a_reading_in_the_spring_gap_is_moved_forward() {
    // 2024-03-31 02:30, an hour that did not exist in Paris.
    let (bundles, _) = mapped(&fhir(&["2A9D", "02 86 38 E8 07 03 1F 02 1E 00"], &[]));
    assert_eq!(
        observation(&bundles[0])["effectiveDateTime"],
        "2024-03-31T03:30:00+02:00"
    );
}

#[test]
fn the_profile_flag_picks_the_url_generation() {
    let (bundles, _) = mapped(&fhir(&["2A35", BPM], &["--profile", "ens"]));
    assert_eq!(
        observation(&bundles[0])["meta"]["profile"][0],
        "http://esante.gouv.fr/ci-sis/fhir/StructureDefinition/ENS_FrObservationBp"
    );
    let (bundles, _) = mapped(&fhir(&["2A35", BPM], &["--profile", "mes"]));
    assert_eq!(
        observation(&bundles[0])["meta"]["profile"][0],
        "https://fhir.monespacesante.fr/ref/mesure/StructureDefinition/mes-observation-bp"
    );
}

#[test]
fn a_failed_weighing_is_not_sent() {
    // Weight 0xFFFF: "measurement unsuccessful".
    let out = fhir(&["2A9D", "00 FF FF"], &[]);
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert!(
        stderr.starts_with(
            "reading 1 (body_weight): not sent: the device marks the reading measurement_unsuccessful"
        ),
        "{stderr}"
    );
}

#[test]
fn without_a_model_the_device_cannot_be_described() {
    let out = relais(&[
        "fhir",
        "2A35",
        BPM,
        "--idpe",
        "p",
        "--assign-auth-oid",
        "1.2.3",
        "--source-oid",
        "1.2.4",
        "--address",
        "AA:BB:CC:DD:EE:FF",
        "--manufacturer",
        "ACME",
    ]);
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert!(
        stderr.contains("not sent: the device's model number is unknown"),
        "{stderr}"
    );
}

#[test]
fn a_bluetooth_address_alone_identifies_the_device() {
    let out = relais(&[
        "fhir",
        "2A35",
        BPM,
        "--idpe",
        "p",
        "--assign-auth-oid",
        "1.2.3",
        "--source-oid",
        "1.2.4",
        "--address",
        "AA:BB:CC:DD:EE:FF",
        "--manufacturer",
        "ACME",
        "--model",
        "BP",
        "--compact",
    ]);
    let (bundles, _) = mapped(&out);
    assert_eq!(
        bundles[0]["entry"][1]["request"]["ifNoneExist"],
        "identifier=urn:oid:1.2.840.10004.1.1.1.0.0.1.0.0.1.2680|AA-BB-CC-FF-FE-DD-EE-FF"
    );
    // One line of JSON.
    assert_eq!(String::from_utf8(out.stdout).unwrap().lines().count(), 1);
}

#[test]
fn bad_arguments_are_refused_before_anything_is_mapped() {
    let out = relais(&[
        "fhir",
        "2A35",
        BPM,
        "--idpe",
        "p",
        "--assign-auth-oid",
        "not-an-oid",
        "--source-oid",
        "1.2.4",
    ]);
    assert_eq!(out.status.code(), Some(2), "clap usage error");
    assert!(String::from_utf8_lossy(&out.stderr).contains("is not an OID"));

    let out = fhir(&["2A19", "64"], &[]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("0x2A19 is not a measurement"));

    let out = fhir(&["2A35", BPM], &["--tz", "Mars/Olympus"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("not an IANA time zone"));
}
