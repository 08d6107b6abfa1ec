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
            .args(["listen", "--seconds", "8"])
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
    let glucose: Vec<&Value> = lines
        .iter()
        .filter(|l| l["characteristic"] == "0x2A18")
        .collect();
    assert_eq!(glucose.len(), 5, "{stdout}");
    for (i, line) in glucose.iter().enumerate() {
        assert_eq!(line["device"]["address"], "C0:FF:EE:00:00:01");
        assert_eq!(line["device"]["model"], "RS-GLUCOSE");
        assert_eq!(line["value"]["measurement"]["sequence_number"], i);
        assert!(line["value"]["context"].is_object(), "{line}");
    }
    let weights: Vec<&Value> = lines
        .iter()
        .filter(|l| l["characteristic"] == "0x2A9D")
        .collect();
    assert_eq!(weights.len(), 1, "{stdout}");
    assert_eq!(weights[0]["device"]["address"], "C0:FF:EE:00:00:05");
    assert!(weights[0]["value"]["readings"].is_array(), "{}", weights[0]);
}
