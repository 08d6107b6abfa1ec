//! A bonded scale, through the supervisor and the real btleplug, with a rest between sessions
//! much longer than the sessions: weighings are taken while the hub is away. The bonded scale
//! indicates a stored weighing as soon as the link comes up (its bond restores the
//! subscription) and forgets it once bluetoothd confirms it; every weighing must still reach
//! the hub, exactly once, in order.
//!
//! One test per binary (libdbus reads the bus address once per process). Needs `dbus-daemon`.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod common;

use std::sync::Arc;
use std::time::Duration;

use relais::ble::Central;
use relais::ble::pairing::{self, Capability, Paired, PasskeySource};
use relais_bluez_sim::{ScaleSim, Simulator, Weighing};
use relais_protocol::{Kind, ReadingValue};

const SCALE: &str = "C0:FF:EE:00:02:05";
/// Who steps on, in order (kg); a weighing lasts 10 s on the scale's clock (wall-clock speed).
const MASSES: [f64; 3] = [60.0, 75.0, 90.0];
const FIRST_ON_MS: u64 = 12_000;
const EVERY_MS: u64 = 15_000;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn weighings_taken_between_sessions_of_a_bonded_scale_are_all_delivered_once() {
    let bus = common::bus();
    let mut scale = ScaleSim::new(SCALE);
    for (i, mass_kg) in (0u64..).zip(MASSES) {
        let on_ms = FIRST_ON_MS + i * EVERY_MS;
        scale = scale.with_weighing(Weighing {
            on_ms,
            off_ms: on_ms + 10_000,
            mass_kg,
        });
    }
    let _sim = Simulator::start(bus.address(), vec![Box::new(scale.spawn().unwrap())])
        .await
        .unwrap();

    let central = Central::first_adapter().await.unwrap();
    central.scan(Duration::from_secs(2), |_| {}).await.unwrap();
    let passkey: PasskeySource = Arc::new(|_: &str| Some(123_456));
    let paired = pairing::pair(
        SCALE,
        Capability::KeyboardOnly,
        passkey,
        Duration::from_secs(10),
    )
    .await
    .unwrap();
    assert_eq!(paired, Paired::Now);

    // Sessions of about a second (linger 1 s), 8 s apart: most of each weighing happens while
    // the hub is away.
    let config = relais::ble::supervisor::Config {
        rest: Duration::from_secs(8),
        ..common::quick()
    };
    // Watched until one more session has ended after the last weighing arrived, so a weighing
    // sent again would be seen.
    let mut sessions_at_last = None;
    let watched = common::watch(
        config,
        |_| Some(common::plan()),
        Duration::from_secs(75),
        move |w| {
            if w.from(SCALE).len() < MASSES.len() {
                return false;
            }
            let ended = w.ended(SCALE).len();
            ended > *sessions_at_last.get_or_insert(ended)
        },
    )
    .await;

    let kgs: Vec<f64> = watched
        .from(SCALE)
        .iter()
        .map(|d| {
            assert_eq!(d.readings[0].kind, Kind::BodyWeight);
            let ReadingValue::Single(weight) = d.readings[0].value else {
                panic!("{:?}", d.readings[0])
            };
            weight.to_f64().unwrap()
        })
        .collect();
    let sessions = watched.done(SCALE);
    assert_eq!(
        kgs.len(),
        MASSES.len(),
        "{kgs:?} delivered over {sessions} sessions"
    );
    // Nominal calibration, as in the scale session test: each within 8 kg, in order.
    for (kg, mass) in kgs.iter().zip(MASSES) {
        assert!((kg - mass).abs() < 8.0, "{kgs:?}");
    }
    assert!(kgs.windows(2).all(|w| w[0] < w[1]), "{kgs:?}");
    // The weighings came across several sessions, not one long connection.
    assert!(sessions >= MASSES.len(), "{sessions} sessions");
}
