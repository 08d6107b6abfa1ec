//! An advertisement-only Xiaomi scale through the supervisor and the real btleplug: each
//! settled weighing is delivered once although every advertisement repeats it, unsettled
//! weights are not delivered, and the scale is never connected to.
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
use relais::payload::Origin;
use relais_bluez_sim::{Simulator, Weighing, XiaomiScaleSim};
use relais_protocol::{Kind, ReadingValue};

const SCALE: &str = "C0:FF:EE:00:01:11";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_advertised_weighing_is_delivered_once() {
    let bus = common::bus();
    let scale = XiaomiScaleSim::new(SCALE)
        .unwrap()
        .with_weighing(Weighing {
            on_ms: 1_000,
            off_ms: 4_000,
            mass_kg: 72.4,
        })
        .with_weighing(Weighing {
            on_ms: 5_000,
            off_ms: 8_000,
            mass_kg: 58.1,
        });
    let _sim = Simulator::start(bus.address(), vec![Box::new(scale)])
        .await
        .unwrap();

    let watched = common::watch(
        common::quick(),
        |_| Some(common::plan()),
        Duration::from_secs(11),
        |_| false,
    )
    .await;

    let kilograms: Vec<f64> = watched
        .from(SCALE)
        .iter()
        .map(|d| {
            assert_eq!(
                d.record.origin(),
                Some(Origin::ServiceData(0x181D)),
                "{d:?}"
            );
            assert_eq!(d.readings[0].kind, Kind::BodyWeight);
            let ReadingValue::Single(q) = d.readings[0].value else {
                panic!("{d:?}")
            };
            q.to_f64().unwrap()
        })
        .collect();
    assert_eq!(kilograms.len(), 2, "{kilograms:?}");
    assert!((kilograms[0] - 72.4).abs() < 0.01, "{kilograms:?}");
    assert!((kilograms[1] - 58.1).abs() < 0.01, "{kilograms:?}");
    assert!(
        !watched
            .statuses
            .iter()
            .any(|s| matches!(s, Status::Connected { .. })),
        "an advertisement-only scale is never connected to"
    );
}
