//! The blood-pressure cuff through the supervisor and the real btleplug: the firmware's cuff
//! inflates and deflates after its button is pressed; the intermediate cuff pressures arrive
//! as live progress, the final measurement as one delivery with its readings.
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

use relais::ble::DeviceKind;
use relais::ble::supervisor::Status;
use relais::payload::Origin;
use relais_bluez_sim::{CuffSim, Simulator};
use relais_board_sim::cuff::Subject;
use relais_protocol::{Kind, ReadingValue, uuid};

const CUFF: &str = "C0:FF:EE:00:01:21";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cuff_shows_progress_then_delivers_its_measurement() {
    let bus = common::bus();
    let cuff = CuffSim::new(CUFF)
        .with_subject(Subject {
            systolic_mmhg: 132.0,
            diastolic_mmhg: 86.0,
            heart_rate_bpm: 70.0,
            ..Subject::typical()
        })
        .with_speed(10);
    let button = cuff.button();
    let _sim = Simulator::start(bus.address(), vec![Box::new(cuff.spawn().unwrap())])
        .await
        .unwrap();

    let mut pressed = false;
    let watched = common::watch(
        common::quick(),
        |_| {
            let mut plan = common::plan();
            plan.linger = Duration::from_secs(3);
            Some(plan)
        },
        Duration::from_secs(60),
        move |w| {
            // The user presses start once the hub is connected.
            if !pressed
                && w.statuses
                    .iter()
                    .any(|s| matches!(s, Status::Connected { .. }))
            {
                button.press(Some(1));
                pressed = true;
            }
            !w.deliveries.is_empty()
        },
    )
    .await;

    let live: Vec<_> = watched
        .live
        .iter()
        .filter(|(a, p)| {
            a == CUFF && p.origin == Origin::Characteristic(uuid::INTERMEDIATE_CUFF_PRESSURE)
        })
        .collect();
    assert!(live.len() >= 5, "progress shown: {} values", live.len());
    let [delivery] = &watched.from(CUFF)[..] else {
        panic!("{:?}", watched.deliveries)
    };
    assert_eq!(delivery.kind, DeviceKind::BloodPressureMonitor);
    assert_eq!(
        delivery.record.origin(),
        Some(Origin::Characteristic(uuid::BLOOD_PRESSURE_MEASUREMENT))
    );
    let pressure = delivery
        .readings
        .iter()
        .find(|r| r.kind == Kind::BloodPressure)
        .unwrap();
    let ReadingValue::BloodPressure {
        systolic,
        diastolic,
        ..
    } = pressure.value
    else {
        panic!("{pressure:?}")
    };
    // The firmware's oscillometric estimate, within what a validated cuff tolerates.
    let (sys, dia) = (systolic.to_f64().unwrap(), diastolic.to_f64().unwrap());
    assert!((sys - 132.0).abs() <= 8.0, "{sys}");
    assert!((dia - 86.0).abs() <= 8.0, "{dia}");
    assert_eq!(pressure.user, Some(1));
    assert!(
        delivery.readings.iter().any(|r| r.kind == Kind::PulseRate),
        "{:?}",
        delivery.readings
    );
}
