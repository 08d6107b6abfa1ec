//! The adapter switched off (rfkill) when the supervisor starts, and on again, through the real
//! btleplug: the scan that could not start is retried, powers the adapter once allowed, the
//! supervisor reports the adapter's state, and the scale's stored weighing is delivered.
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

use relais::ble::supervisor::Status;
use relais_bluez_sim::{ScaleSim, Simulator, Weighing};

const SCALE: &str = "C0:FF:EE:00:01:41";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn discovery_comes_back_with_the_adapter() {
    let bus = common::bus();
    let scale = ScaleSim::new(SCALE)
        .with_weighing(Weighing {
            on_ms: 5_000,
            off_ms: 20_000,
            mass_kg: 72.0,
        })
        .run_before_start(25_000)
        .spawn()
        .unwrap();
    let sim = Simulator::start(bus.address(), vec![Box::new(scale)])
        .await
        .unwrap();
    let control = sim.control();
    control.power_off().await.unwrap();
    let switch_on = tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(1_500)).await;
        control.power_on().await.unwrap();
    });

    let watched = common::watch(
        common::quick(),
        |_| Some(common::plan()),
        Duration::from_secs(30),
        |w| w.done(SCALE) >= 1,
    )
    .await;
    switch_on.await.unwrap();

    assert!(
        watched
            .statuses
            .contains(&Status::Adapter { powered: true }),
        "{:?}",
        watched.statuses
    );
    assert_eq!(watched.from(SCALE).len(), 1, "{:?}", watched.statuses);
}
