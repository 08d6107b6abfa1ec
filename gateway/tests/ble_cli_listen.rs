//! `relais listen` run as a process against bluez-sim: the glucose meter's stored records
//! (caught up) and the scale's offline weighing come out as JSON lines with the device identity.
//!
//! Needs `dbus-daemon`.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use relais_bluez_sim::{DbusDaemon, GlucoseMeterSim, ScaleSim, Simulator, Weighing};
use serde_json::Value;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn relais_listen_prints_glucose_records_and_the_weighing() {
    let bus = DbusDaemon::start().expect("dbus-daemon (Debian package `dbus`) must be installed");
    let meter = GlucoseMeterSim::with_records("C0:FF:EE:00:00:01", 5).unwrap();
    let scale = ScaleSim::new("C0:FF:EE:00:00:05")
        .with_weighing(Weighing {
            on_ms: 5_000,
            off_ms: 20_000,
            mass_kg: 72.0,
        })
        .run_before_start(25_000)
        .spawn()
        .unwrap();
    let _sim = Simulator::start(bus.address(), vec![Box::new(meter), Box::new(scale)])
        .await
        .unwrap();

    let address = bus.address().to_owned();
    let output = tokio::task::spawn_blocking(move || {
        std::process::Command::new(env!("CARGO_BIN_EXE_relais"))
            .args(["listen", "--seconds", "8", "--linger", "2"])
            .env("DBUS_SYSTEM_BUS_ADDRESS", address)
            .output()
    })
    .await
    .unwrap()
    .unwrap();
    let stdout = String::from_utf8(output.stdout).unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stdout}\n{stderr}");
    let lines: Vec<Value> = stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let measurements = |kind: &str| -> Vec<&Value> {
        lines
            .iter()
            .filter(|l| l["event"] == "measurement" && l["kind"] == kind)
            .collect()
    };
    let glucose = measurements("glucose_meter");
    assert_eq!(glucose.len(), 5, "{stdout}");
    for (i, line) in glucose.iter().enumerate() {
        assert_eq!(line["device"]["address"], "C0:FF:EE:00:00:01");
        assert_eq!(line["device"]["model"], "RS-GLUCOSE");
        let values = line["values"].as_array().unwrap();
        assert_eq!(values[0]["characteristic"], "0x2A18");
        assert_eq!(values[0]["decoded"]["sequence_number"], i);
        assert_eq!(values[1]["characteristic"], "0x2A34");
        assert_eq!(line["readings"][0]["sequence_number"], i);
        // The hex reads back through `relais decode`.
        assert!(
            values[0]["hex"].as_str().unwrap().starts_with("1"),
            "{line}"
        );
    }
    let weights = measurements("weight_scale");
    assert_eq!(weights.len(), 1, "{stdout}");
    assert_eq!(weights[0]["device"]["address"], "C0:FF:EE:00:00:05");
    assert_eq!(weights[0]["values"][0]["characteristic"], "0x2A9D");
    assert_eq!(
        weights[0]["readings"][0]["kind"], "body_weight",
        "{}",
        weights[0]
    );
    // Both devices were seen and both sessions ended well.
    let ended: Vec<&Value> = lines.iter().filter(|l| l["event"] == "ended").collect();
    assert_eq!(ended.len(), 2, "{stdout}");
    assert!(ended.iter().all(|l| l["done"].is_object()), "{stdout}");
    assert!(
        lines
            .iter()
            .any(|l| l["event"] == "seen" && l["paired"] == true),
        "the bonded meter shows as paired: {stdout}"
    );
}
