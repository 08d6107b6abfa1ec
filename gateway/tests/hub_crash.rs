//! Crash safety of the whole hub: `relais run` as a child process against bluez-sim (a glucose
//! meter that keeps taking measurements, an advertising Xiaomi scale with a weighing every 10 s)
//! and mes-sandbox, killed with SIGKILL at random moments 50 times while the devices keep
//! producing, restarted each time. At the end MES holds every reading exactly once and the
//! database passes `PRAGMA integrity_check`.
//!
//! One test per binary (libdbus reads the bus address once per process). Needs `dbus-daemon`.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod common;
mod mes_common;

use std::collections::BTreeMap;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use relais::ble::device::Identity;
use relais::ble::kind::DeviceKind;
use relais::store::{Sink, Store};
use relais_bluez_sim::{GlucoseMeterSim, Simulator, Weighing, XiaomiScaleSim};

const METER: &str = "C0:FF:EE:00:03:01";
const SCALE: &str = "C0:FF:EE:00:03:02";
const KILLS: usize = 50;
const STORED_RECORDS: u32 = 150;
const NEW_RECORDS: u32 = 120;
const NEW_RECORD_EVERY_MS: u64 = 400;
/// Each weighing stays on the platform 8 s, so several hub lives see it (an advertising scale
/// keeps nothing: a weighing taken entirely while no hub listens is gone, whatever the hub does).
const WEIGHINGS: u32 = 6;

/// A small deterministic generator: the kill moments are random but the run repeatable.
struct Lcg(u64);

impl Lcg {
    fn next_ms(&mut self, lo: u64, hi: u64) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        lo + (self.0 >> 33) % (hi - lo)
    }
}

fn terminate(child: &mut Child) {
    let _ = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
    for _ in 0..100 {
        if let Ok(Some(_)) = child.try_wait() {
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let _ = child.kill();
    let _ = child.wait();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fifty_sigkills_lose_nothing_and_duplicate_nothing() {
    let bus = common::bus();
    let meter = GlucoseMeterSim::with_records(METER, STORED_RECORDS)
        .unwrap()
        .with_new_records(NEW_RECORD_EVERY_MS, NEW_RECORDS);
    let mut scale = XiaomiScaleSim::new(SCALE).unwrap();
    for i in 0..WEIGHINGS {
        let on_ms = 2_000 + u64::from(i) * 10_000;
        scale = scale.with_weighing(Weighing {
            on_ms,
            off_ms: on_ms + 8_000,
            mass_kg: 60.0 + f64::from(i) * 0.5,
        });
    }
    let _sim = Simulator::start(bus.address(), vec![Box::new(meter), Box::new(scale)])
        .await
        .unwrap();
    let world = mes_common::World::start().await;

    // The household: one member, linked, owning both devices.
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("hub.sqlite");
    {
        let mut store = Store::open(&db).unwrap();
        let camille = store.add_member("Camille").unwrap();
        let tokens = world.pair("patient-1").await;
        store.link_mes(camille, &tokens).unwrap();
        for (address, kind) in [
            (METER, DeviceKind::GlucoseMeter),
            (SCALE, DeviceKind::WeightScale),
        ] {
            let identity = Identity {
                address: address.into(),
                ..Identity::default()
            };
            store.note_device(&identity, kind).unwrap();
            store.map_device_user(address, None, camille).unwrap();
        }
    }
    let config = dir.path().join("relais.toml");
    std::fs::write(
        &config,
        format!(
            "[hub]\ndatabase = {db:?}\noid = \"{oid}\"\n\n\
             [ble]\nrest_seconds = 1\nlinger_seconds = 1\nmax_backoff_seconds = 2\n\n\
             [mes]\nbase_url = \"{base}\"\nfhir_base_url = \"{fhir}\"\nmax_backoff_seconds = 2\n",
            oid = mes_common::HUB_OID,
            base = world.sandbox.base_url(),
            fhir = world.sandbox.fhir_base_url(),
        ),
    )
    .unwrap();
    let log_path = dir.path().join("hub.log");
    let log = std::fs::File::create(&log_path).unwrap();
    let spawn = || {
        Command::new(env!("CARGO_BIN_EXE_relais"))
            .args(["run", "--config"])
            .arg(&config)
            .env("DBUS_SYSTEM_BUS_ADDRESS", bus.address())
            .env("RELAIS_LOG", "info")
            .env("NO_COLOR", "1")
            .stdout(Stdio::null())
            .stderr(log.try_clone().unwrap())
            .spawn()
            .unwrap()
    };
    // A life counts from the hub's "running" line: on a loaded machine a debug build takes a
    // while to start, and killing it before would test nothing.
    let running = || {
        std::fs::read_to_string(&log_path)
            .unwrap_or_default()
            .matches("relais hub running")
            .count()
    };

    let mut rng = Lcg(0x5EED);
    for life in 0..KILLS {
        let mut child = spawn();
        for _ in 0..200 {
            if running() > life {
                break;
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        tokio::time::sleep(Duration::from_millis(rng.next_ms(150, 1_200))).await;
        child.kill().unwrap(); // SIGKILL
        child.wait().unwrap();
    }

    // The kills came while the hub was working: some readings made it, not all.
    let expected = (STORED_RECORDS + NEW_RECORDS + WEIGHINGS) as usize;
    let during = world.stored("idpe-patient-1").await.len();
    let committed = Store::open(&db).unwrap().measurement_count().unwrap();
    eprintln!(
        "after {KILLS} kills: {committed} measurements committed, {during} in MES of {expected}"
    );
    assert!(during > 0 && during < expected, "{during} of {expected}");
    let mut child = spawn();
    let mut stored = Vec::new();
    for _ in 0..1_500 {
        stored = world.stored("idpe-patient-1").await;
        if stored.len() >= expected {
            // A little longer: a duplicate would show up now.
            tokio::time::sleep(Duration::from_secs(2)).await;
            stored = world.stored("idpe-patient-1").await;
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    terminate(&mut child);

    let mut glucose: BTreeMap<i64, usize> = BTreeMap::new();
    let mut weights: BTreeMap<i64, usize> = BTreeMap::new();
    for o in &stored {
        let value = o["resource"]["valueQuantity"]["value"].as_f64().unwrap();
        let tally = match o["code"].as_str().unwrap() {
            "29463-7" => &mut weights,
            _ => &mut glucose,
        };
        *tally.entry((value * 100.0).round() as i64).or_default() += 1;
    }
    let log = std::fs::read_to_string(&log_path).unwrap_or_default();
    let tail: String = log
        .lines()
        .filter(|l| !l.contains("INFO"))
        .rev()
        .take(30)
        .collect::<Vec<_>>()
        .join("\n");
    assert!(
        glucose.values().all(|&n| n == 1) && weights.values().all(|&n| n == 1),
        "duplicates: glucose {glucose:?} weights {weights:?}"
    );
    let expected_glucose: Vec<i64> = (0..STORED_RECORDS + NEW_RECORDS)
        .map(|i| i64::from(90 + i) * 100)
        .collect();
    assert_eq!(
        glucose.keys().copied().collect::<Vec<_>>(),
        expected_glucose,
        "every glucose record; hub log tail:\n{tail}"
    );
    let expected_weights: Vec<i64> = (0..WEIGHINGS).map(|i| 6_000 + i64::from(i) * 50).collect();
    assert_eq!(
        weights.keys().copied().collect::<Vec<_>>(),
        expected_weights,
        "every weighing; hub log tail:\n{tail}"
    );
    let store = Store::open(&db).unwrap();
    store.integrity_check().unwrap();
    let backlog = store.backlog(Sink::Mes).unwrap();
    assert_eq!(backlog.sent as usize, expected, "{backlog:?}");
}
