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
/// A weighing every 10 s, each on the platform 8 s, for as long as the test can last. An
/// advertising scale keeps nothing: a weighing taken while no hub listens long enough is gone
/// whatever the hub does, so completeness is checked for the weighings the last, unkilled hub
/// could see, and exactly-once for all.
const WEIGHINGS: u32 = 60;
const WEIGHING_EVERY_MS: u64 = 10_000;
const WEIGHING_ON_MS: u64 = 8_000;
/// Weighings the last hub must see in full before the test ends.
const FINAL_WEIGHINGS: u64 = 2;

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
        let on_ms = 2_000 + u64::from(i) * WEIGHING_EVERY_MS;
        scale = scale.with_weighing(Weighing {
            on_ms,
            off_ms: on_ms + WEIGHING_ON_MS,
            mass_kg: 60.0 + f64::from(i) * 0.5,
        });
    }
    let sim_started = std::time::Instant::now();
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
    let records = (STORED_RECORDS + NEW_RECORDS) as usize;
    let during = world.stored("idpe-patient-1").await.len();
    let committed = Store::open(&db).unwrap().measurement_count().unwrap();
    eprintln!(
        "after {KILLS} kills: {committed} measurements committed, {during} in MES \
         ({records} glucose records in the meter by the end)"
    );
    assert!(during > 0, "nothing reached MES during the kills");
    // The last hub lives until every glucose record is in and it has seen whole weighings.
    let final_start_ms = u64::try_from(sim_started.elapsed().as_millis()).unwrap();
    let first_seen_whole = final_start_ms
        .saturating_sub(2_000)
        .div_ceil(WEIGHING_EVERY_MS)
        + 1;
    let required: Vec<u32> = (first_seen_whole..first_seen_whole + FINAL_WEIGHINGS)
        .map(|i| u32::try_from(i).unwrap())
        .collect();
    assert!(
        required.iter().all(|&i| i < WEIGHINGS),
        "the test outlived its weighings"
    );
    let weighing_kg100 = |i: u32| 6_000 + i64::from(i) * 50;
    let mut child = spawn();
    let mut stored = Vec::new();
    for _ in 0..1_500 {
        stored = world.stored("idpe-patient-1").await;
        let glucose_in = stored.iter().filter(|o| o["code"] != "29463-7").count();
        let weighed: Vec<i64> = stored
            .iter()
            .filter(|o| o["code"] == "29463-7")
            .map(|o| {
                (o["resource"]["valueQuantity"]["value"].as_f64().unwrap() * 100.0).round() as i64
            })
            .collect();
        if glucose_in >= records
            && required
                .iter()
                .all(|&i| weighed.contains(&weighing_kg100(i)))
        {
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
    let scheduled: Vec<i64> = (0..WEIGHINGS).map(weighing_kg100).collect();
    assert!(
        weights.keys().all(|w| scheduled.contains(w)),
        "only scheduled weighings: {weights:?}"
    );
    for i in &required {
        assert!(
            weights.contains_key(&weighing_kg100(*i)),
            "weighing {i}, on while the last hub ran: {weights:?}; hub log tail:\n{tail}"
        );
    }
    eprintln!(
        "{} glucose records and {} weighings in MES, each once ({} weighings were on the \
         scale before the last hub started)",
        glucose.len(),
        weights.len(),
        first_seen_whole
    );
    let store = Store::open(&db).unwrap();
    store.integrity_check().unwrap();
    let backlog = store.backlog(Sink::Mes).unwrap();
    assert_eq!(backlog.sent as usize, stored.len(), "{backlog:?}");
    assert_eq!((backlog.pending, backlog.sending), (0, 0), "{backlog:?}");
}
