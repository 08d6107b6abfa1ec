//! A glucose catch-up cut by a dropped link, through the supervisor and the real btleplug:
//! the session fails, the supervisor retries after its backoff, the next session resumes
//! after the last accepted record, and every record arrives exactly once, in order.
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

use relais::ble::supervisor::{Ended, Status};
use relais_bluez_sim::{GlucoseMeterSim, Simulator};

const METER: &str = "C0:FF:EE:00:01:01";
const RECORDS: u16 = 120;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dropped_catch_up_resumes_without_gap_or_duplicate() {
    let bus = common::bus();
    let meter = GlucoseMeterSim::with_records(METER, u32::from(RECORDS)).unwrap();
    let sim = Simulator::start(bus.address(), vec![Box::new(meter)])
        .await
        .unwrap();
    // 71 values: 35 records with their contexts and the measurement of the 36th.
    sim.control()
        .drop_link_after_notifications(METER, 71)
        .await
        .unwrap();

    let watched = common::watch(
        common::quick(),
        |_| Some(common::plan()),
        Duration::from_secs(40),
        |w| w.done(METER) >= 1,
    )
    .await;

    let sequences: Vec<u16> = watched
        .from(METER)
        .iter()
        .map(|d| d.readings[0].sequence_number.unwrap())
        .collect();
    assert_eq!(sequences, (0..RECORDS).collect::<Vec<u16>>());
    assert!(
        watched
            .from(METER)
            .iter()
            .all(|d| d.record.payloads.len() == 2),
        "every record with its context"
    );
    let ended = watched.ended(METER);
    assert!(matches!(ended[0], Ended::Failed(_)), "{ended:?}");
    let Some(Ended::Done(outcome)) = ended.last() else {
        panic!("{ended:?}")
    };
    assert_eq!(outcome.last_glucose_sequence, Some(RECORDS - 1));
    // The retry waited for the backoff (300 ms, up to 25 % jitter).
    let retry = watched
        .statuses
        .iter()
        .find_map(|s| match s {
            Status::Ended {
                result: Ended::Failed(_),
                retry_in_ms,
                ..
            } => Some(*retry_in_ms),
            _ => None,
        })
        .unwrap();
    assert!((300..=375).contains(&retry), "{retry}");
}
