//! The hub's control handle against a running hub and bluez-sim's unpaired glucose meter: the
//! scan lists it as not paired, its sessions fail until it is paired through the control (the
//! passkey answered by the hub's agent), whose session then stores its records; sync and unpair
//! answer in plain errors for devices the hub does not know.
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

use relais::ble::pairing::Paired;
use relais::hub::config::Config;
use relais::hub::control::{Control, ControlError, ScanEvent, Synced};
use relais_bluez_sim::{GlucoseMeterSim, Simulator};
use tokio_util::sync::CancellationToken;

const METER: &str = "C0:FF:EE:00:06:01";

async fn stored(control: &Control) -> u64 {
    let store = std::sync::Arc::clone(control.store());
    tokio::task::spawn_blocking(move || store.lock().unwrap().measurement_count().unwrap())
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pairing_through_the_control_lets_the_hub_read_the_meter() {
    let bus = common::bus();
    let meter = GlucoseMeterSim::with_records(METER, 3).unwrap().unpaired();
    let _sim = Simulator::start(bus.address(), vec![Box::new(meter)])
        .await
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let config = Config::from_text(
        &format!(
            "[hub]\ndatabase = \"{}\"\ntime_zone = \"UTC\"\n[ble]\nlinger_seconds = 1\n\
             rest_seconds = 600\nmax_backoff_seconds = 600\n[mes]\nenabled = false\n",
            dir.path().join("hub.sqlite").display()
        ),
        None,
        &[],
    )
    .unwrap();
    let store = relais::hub::shared(relais::hub::open_store(&config).unwrap());
    let control = Control::new(store);
    let stop = CancellationToken::new();
    let hub = {
        let (control, stop) = (control.clone(), stop.clone());
        tokio::spawn(async move { relais::hub::run_with(&config, control, stop, None).await })
    };

    // The scan lists the meter, not paired.
    let mut scan = control.scan(Duration::from_secs(3)).await.unwrap();
    let mut found = Vec::new();
    let finished = loop {
        match tokio::time::timeout(Duration::from_secs(10), scan.recv()).await {
            Ok(Some(ScanEvent::Found(seen))) => found.push(seen),
            Ok(Some(ScanEvent::Finished { devices })) => break devices,
            other => panic!("the scan did not finish: {other:?}"),
        }
    };
    let meter = finished
        .iter()
        .find(|s| s.address == METER)
        .unwrap_or_else(|| panic!("the meter was not found: {finished:?}"));
    assert_eq!(meter.paired, Some(false));
    assert!(found.iter().any(|s| s.address == METER));

    // Encrypted characteristics: nothing can be read before the bond.
    assert_eq!(stored(&control).await, 0);
    assert_eq!(
        control.sync_now("C0:FF:EE:00:06:99").await,
        Err(ControlError::UnknownDevice("C0:FF:EE:00:06:99".into()))
    );
    assert!(matches!(
        control.pair("C0:FF:EE:00:06:99", Some(1)).await,
        Err(ControlError::UnknownDevice(_))
    ));

    // Paired, it is served (at once: the control asks for a session) and its records stored.
    assert_eq!(
        control.pair(METER, Some(123_456)).await.unwrap(),
        Paired::Now
    );
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    while stored(&control).await < 3 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "{} of 3 records stored after pairing",
            stored(&control).await
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    // The bond is known at once (BlueZ sends no event for it), in the hub's device list and
    // in the store.
    let devices = control.devices().await.unwrap();
    let meter = devices.iter().find(|s| s.address == METER).unwrap();
    assert_eq!(meter.paired, Some(true));
    // Asked again while resting: served again now (nothing new to store).
    let again = control.sync_now(METER).await.unwrap();
    assert!(
        matches!(again, Synced::Started | Synced::AlreadyRunning),
        "{again:?}"
    );

    control.unpair(METER).await.unwrap();
    let bonded = {
        let store = std::sync::Arc::clone(control.store());
        tokio::task::spawn_blocking(move || {
            let deadline = std::time::Instant::now() + Duration::from_secs(10);
            loop {
                let devices = store.lock().unwrap().devices().unwrap();
                let bonded = devices
                    .iter()
                    .find(|d| d.identity.address == METER)
                    .and_then(|d| d.bonded);
                if bonded == Some(false) || std::time::Instant::now() > deadline {
                    return bonded;
                }
                std::thread::sleep(Duration::from_millis(50));
            }
        })
        .await
        .unwrap()
    };
    assert_eq!(bonded, Some(false), "the store learns the bond is gone");
    assert_eq!(stored(&control).await, 3, "a sync stores nothing twice");

    stop.cancel();
    tokio::time::timeout(Duration::from_secs(30), hub)
        .await
        .unwrap()
        .unwrap()
        .unwrap();
}
