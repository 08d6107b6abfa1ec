//! `relais decode` as a device maker runs it: the real binary, its JSON, its exit status and its
//! one-line errors.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

use std::process::{Command, Output};

use serde_json::{Value, json};

fn relais(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_relais"))
        .args(args)
        .output()
        .expect("relais runs")
}

fn decode_ok(args: &[&str]) -> Value {
    let out = relais(args);
    assert!(
        out.status.success(),
        "relais {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("one JSON object")
}

/// Exit status 1 and exactly one line on stderr; returns that line.
fn decode_err(args: &[&str]) -> String {
    let out = relais(args);
    assert_eq!(out.status.code(), Some(1), "relais {args:?} should fail");
    assert!(out.stdout.is_empty());
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert_eq!(stderr.lines().count(), 1, "one line on stderr: {stderr:?}");
    stderr.trim_end().to_owned()
}

const BPM: &str = "1E 78 00 50 00 5D 00 E8 07 03 05 08 1E 0F 48 00 02 04 00";

#[test]
fn blood_pressure_follows_the_json_contract() {
    let v = decode_ok(&["decode", "2A35", BPM]);
    assert_eq!(v["characteristic"], "blood_pressure_measurement");
    assert_eq!(v["systolic"], json!({"value": 120, "unit": "mm[Hg]"}));
    assert_eq!(v["diastolic"], json!({"value": 80, "unit": "mm[Hg]"}));
    assert_eq!(
        v["mean_arterial_pressure"],
        json!({"value": 93, "unit": "mm[Hg]"})
    );
    assert_eq!(v["pulse_rate"], json!({"value": 72, "unit": "/min"}));
    assert_eq!(v["user_id"], 2);
    assert_eq!(v["measurement_status"]["irregular_pulse_detected"], true);
    assert_eq!(v["measurement_status"]["pulse_rate_range"], "within_range");
    assert_eq!(
        v["time_stamp"],
        json!({"year": 2024, "month": 3, "day": 5, "hours": 8, "minutes": 30, "seconds": 15})
    );
    assert_eq!(v["measured_at"], "2024-03-05T08:30:15");
    assert_eq!(v["trailing_bytes"], 0);
    assert_eq!(v["readings"][0]["kind"], "blood_pressure");
}

#[test]
fn uuid_and_hex_may_be_written_many_ways() {
    let a = decode_ok(&["decode", "2a35", &BPM.replace(' ', "")]);
    let b = decode_ok(&["decode", "00002a35-0000-1000-8000-00805f9b34fb", BPM]);
    let parts: Vec<&str> = BPM.split(' ').collect();
    let mut args = vec!["decode", "0x2A35"];
    args.extend(parts);
    let c = decode_ok(&args);
    assert_eq!(a, b);
    assert_eq!(a, c);
}

#[test]
fn a_short_value_names_the_missing_field_and_byte_counts() {
    let line = decode_err(&["decode", "2A35", "02 78 00 50 00 5D 00 E8 07"]);
    assert_eq!(
        line,
        "error: blood_pressure_measurement: field `time_stamp` is missing: expected 14 bytes, 9 present"
    );
}

#[test]
fn special_values_are_null_with_their_name() {
    let v = decode_ok(&["decode", "2A35", "00 FF 07 00 08 FE 07"]);
    assert_eq!(
        v["systolic"],
        json!({"value": null, "unit": "mm[Hg]", "special": "NaN"})
    );
    assert_eq!(v["diastolic"]["special"], "NRes");
    assert_eq!(v["mean_arterial_pressure"]["special"], "+INF");
    assert_eq!(v["measured_at"], Value::Null);
}

#[test]
fn unknown_date_parts_are_null_and_measured_at_too() {
    let v = decode_ok(&["decode", "2A9D", "02 3C 36 00 00 03 05 08 1E 0F"]);
    assert_eq!(v["time_stamp"]["year"], Value::Null);
    assert_eq!(v["time_stamp"]["month"], 3);
    assert_eq!(v["measured_at"], Value::Null);
    assert_eq!(v["weight"], json!({"value": 69.42, "unit": "kg"}));
}

#[test]
fn glucose_measured_at_applies_the_time_offset() {
    // Base time 2024-03-05 08:30:15, offset +5 min, 100 mg/dL as 100e-5 kg/L.
    let v = decode_ok(&["decode", "2A18", "1B 0100 E8070305081E0F 0500 64B0 11 0000"]);
    assert_eq!(v["concentration"], json!({"value": 0.001, "unit": "kg/L"}));
    assert_eq!(v["type"], "capillary_whole_blood");
    assert_eq!(v["sample_location"], "finger");
    assert_eq!(v["sequence_number"], 1);
    assert_eq!(v["time_offset"], 5);
    assert_eq!(v["measured_at"], "2024-03-05T08:35:15");
    let reading = &v["readings"][0];
    assert_eq!(
        reading["value"]["single"],
        json!({"value": 100, "unit": "mg/dL"})
    );
}

#[test]
fn trailing_bytes_are_accepted_and_reported() {
    let v = decode_ok(&["decode", "2A35", "00 78 00 50 00 5D 00 AA BB"]);
    assert_eq!(v["trailing_bytes"], 2);
}

#[test]
fn quirks_are_named_and_explicit() {
    let beurer = "14 78 00 50 00 5D 00 00 48 00 04 01";
    let plain = decode_ok(&["decode", "2A35", beurer]);
    let quirked = decode_ok(&[
        "decode",
        "--quirk",
        "beurer-big-endian-pulse-status",
        "2A35",
        beurer,
    ]);
    assert_ne!(plain["pulse_rate"], quirked["pulse_rate"]);
    assert_eq!(quirked["pulse_rate"], json!({"value": 72, "unit": "/min"}));
    assert_eq!(quirked["trailing_bytes"], 0);
    let line = decode_err(&["decode", "--quirk", "guess", "2A35", beurer]);
    assert!(line.contains("unknown quirk `guess`"), "{line}");
}

#[test]
fn xiaomi_advertisements_decode_from_service_data() {
    let v = decode_ok(&[
        "decode",
        "--service-data",
        "181D",
        "22 2C 2A E8 07 03 05 08 1E 0F",
    ]);
    assert_eq!(v["characteristic"], "xiaomi_mi_smart_scale");
    assert_eq!(v["weight"], json!({"value": 53.98, "unit": "kg"}));
    assert_eq!(v["stabilized"], true);
    assert_eq!(v["readings"][0]["kind"], "body_weight");
    let v2 = decode_ok(&[
        "decode",
        "--service-data",
        "181B",
        "02 26 E8 07 03 05 08 1E 0F F4 01 2C 2A",
    ]);
    assert_eq!(v2["impedance"], json!({"value": 500, "unit": "Ohm"}));
    assert_eq!(v2["weight"], json!({"value": 53.98, "unit": "kg"}));
}

#[test]
fn every_listed_characteristic_is_decodable_or_refused_cleanly() {
    let out = relais(&["decode", "--list"]);
    assert!(out.status.success());
    let list = String::from_utf8(out.stdout).unwrap();
    let uuids: Vec<&str> = list
        .lines()
        .take_while(|l| !l.starts_with("Advertisement"))
        .filter_map(|l| l.split_whitespace().next())
        .filter(|w| w.len() == 4)
        .collect();
    assert!(uuids.len() >= 35, "{list}");
    for uuid in uuids {
        // An empty value (valid for a string, invalid for a measurement) and a short garbage
        // value: either one JSON object, or one clean error line with status 1. Never a panic.
        for hex in ["", "FF", "01 02 03"] {
            let out = relais(&["decode", uuid, hex]);
            match out.status.code() {
                Some(0) => {
                    let v: Value = serde_json::from_slice(&out.stdout).expect("JSON");
                    assert_eq!(v["uuid"].as_str().unwrap().to_uppercase(), uuid);
                }
                Some(1) => {
                    let stderr = String::from_utf8(out.stderr).unwrap();
                    assert_eq!(stderr.lines().count(), 1, "{uuid} {hex}: {stderr}");
                    assert!(stderr.starts_with("error: "), "{stderr}");
                }
                other => panic!("relais decode {uuid} {hex:?} exited with {other:?}"),
            }
        }
    }
    for quirk in [
        "beurer-big-endian-pulse-status",
        "ketone-meal-code",
        "reversed-sequence-numbers",
    ] {
        assert!(list.contains(quirk));
    }
}

#[test]
fn unknown_characteristics_and_bad_hex_are_refused() {
    let line = decode_err(&["decode", "2A00", "00"]);
    assert!(line.contains("0x2A00 is not one relais decodes"), "{line}");
    let line = decode_err(&["decode", "2A35", "1E 7"]);
    assert!(line.contains("odd number of digits"), "{line}");
    let line = decode_err(&["decode", "2A35", "zz"]);
    assert!(line.contains("not a hex digit"), "{line}");
    let line = decode_err(&["decode", "not-a-uuid", "00"]);
    assert!(
        line.contains("is not a 16-bit or Bluetooth Base UUID"),
        "{line}"
    );
}

#[test]
fn a_reader_that_goes_away_ends_the_command_quietly() {
    // `relais decode --list | head -1`: the pipe closes before everything is written.
    let mut child = Command::new(env!("CARGO_BIN_EXE_relais"))
        .args(["decode", "--list"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    drop(child.stdout.take());
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "{:?}", out.status);
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert!(!stderr.contains("panicked"), "{stderr}");
}
