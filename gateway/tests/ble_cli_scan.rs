//! `relais scan` run as a process against bluez-sim (the child gets the private bus through
//! `DBUS_SYSTEM_BUS_ADDRESS`) lists the meter and the scale.
//!
//! Needs `dbus-daemon`.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use relais_bluez_sim::{DbusDaemon, GlucoseMeterSim, ScaleSim, Simulator};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn relais_scan_lists_the_simulated_devices() {
    let bus = DbusDaemon::start().expect("dbus-daemon (Debian package `dbus`) must be installed");
    let meter = GlucoseMeterSim::with_records("C0:FF:EE:00:00:01", 3).unwrap();
    let scale = ScaleSim::new("C0:FF:EE:00:00:05").spawn().unwrap();
    let _sim = Simulator::start(bus.address(), vec![Box::new(meter), Box::new(scale)])
        .await
        .unwrap();

    let address = bus.address().to_owned();
    let output = tokio::task::spawn_blocking(move || {
        std::process::Command::new(env!("CARGO_BIN_EXE_relais"))
            .args(["scan", "--seconds", "3"])
            .env("DBUS_SYSTEM_BUS_ADDRESS", address)
            .output()
    })
    .await
    .unwrap()
    .unwrap();
    let stdout = String::from_utf8(output.stdout).unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stdout}\n{stderr}");
    let line = |address: &str| {
        stdout
            .lines()
            .find(|l| l.starts_with(address))
            .unwrap_or_else(|| panic!("{address} in {stdout}"))
    };
    let meter = line("C0:FF:EE:00:00:01");
    assert!(meter.contains("RS-GLUCOSE"), "{meter}");
    assert!(meter.contains("glucose_meter"), "{meter}");
    assert!(meter.contains("-60 dBm"), "{meter}");
    assert!(line("C0:FF:EE:00:00:05").contains("weight_scale"));
}
