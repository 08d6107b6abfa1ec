//! The hub's MES upload loop against mes-sandbox: readings committed in the store arrive in
//! MES once each, in order, whatever the sandbox does (lost answers, refusals, withdrawn
//! consent, expired tokens, a day-long outage on a virtual clock).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod mes_common;

use std::sync::Arc;
use std::time::Duration;

use jiff::Timestamp;
use relais::ble::device::Identity;
use relais::ble::kind::DeviceKind;
use relais::ble::session::Delivery;
use relais::hub::clock::{Clock, SystemClock, VirtualClock};
use relais::hub::ingest::SharedStore;
use relais::hub::upload::{self, Settings};
use relais::mes::RetryPolicy;
use relais::payload::{Payload, Record};
use relais::store::{MemberId, MesState, Sink, Store};
use relais_mes_sandbox::{ConsentRevocation, Faults};
use relais_protocol::{Quirks, uuid};
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

const SCALE: &str = "C0:FF:EE:00:02:01";

/// A weighing taken `minutes` after 2024-03-01 07:00 (device time), `raw` x 5 g, by device
/// user `user`; with BMI and height when `bmi`.
fn weighing(minutes: u32, raw: u16, user: u8, bmi: bool) -> Delivery {
    let flags = 0x02 | 0x04 | if bmi { 0x08 } else { 0 };
    let mut bytes = vec![flags];
    bytes.extend(raw.to_le_bytes());
    let (hour, minute) = (7 + minutes / 60, minutes % 60);
    bytes.extend([0xE8, 0x07, 0x03, 0x01, hour as u8, minute as u8, 0x00]);
    bytes.push(user);
    if bmi {
        bytes.extend(236u16.to_le_bytes()); // 23.6
        bytes.extend(1750u16.to_le_bytes()); // 1.750 m
    }
    let record = Record::single(Payload::characteristic(uuid::WEIGHT_MEASUREMENT, bytes));
    Delivery {
        device: Identity {
            address: SCALE.into(),
            manufacturer: Some("Relais reference design".into()),
            model: Some("RS-SCALE".into()),
            serial: Some("0001".into()),
            ..Identity::default()
        },
        kind: DeviceKind::WeightScale,
        readings: record.readings(Quirks::NONE).unwrap(),
        record,
        quirks: Quirks::NONE,
        received_at: Timestamp::now(),
        clock_skew: None,
    }
}

struct Hub {
    store: SharedStore,
    world: mes_common::World,
    members: Vec<MemberId>,
    _dir: tempfile::TempDir,
}

/// A store with one member per sandbox login, each linked, each a user of the scale.
async fn hub(logins: &[&str]) -> Hub {
    let world = mes_common::World::start().await;
    let dir = tempfile::tempdir().unwrap();
    let mut store = Store::open(&dir.path().join("hub.sqlite")).unwrap();
    store.set_sinks(&[Sink::Mes]);
    store
        .note_device(
            &Identity {
                address: SCALE.into(),
                ..Identity::default()
            },
            DeviceKind::WeightScale,
        )
        .unwrap();
    let mut members = Vec::new();
    for (i, login) in logins.iter().enumerate() {
        let member = store.add_member(login).unwrap();
        let tokens = world.pair(login).await;
        store.link_mes(member, &tokens).unwrap();
        store
            .map_device_user(SCALE, Some(u8::try_from(i + 1).unwrap()), member)
            .unwrap();
        members.push(member);
    }
    Hub {
        store: relais::hub::shared(store),
        world,
        members,
        _dir: dir,
    }
}

fn settings(oid: &str) -> Settings {
    let mut hub = relais::fhir::HubSettings::new(oid.parse().unwrap()).unwrap();
    hub.use_reception_time_for_undated = false;
    Settings {
        retry: RetryPolicy {
            min_delay: Duration::from_millis(50),
            max_delay: Duration::from_millis(400),
            ..RetryPolicy::default()
        },
        idle: Duration::from_millis(200),
        ..Settings::new(hub)
    }
}

impl Hub {
    fn commit(&self, deliveries: &[Delivery]) {
        self.store.lock().unwrap().commit(deliveries).unwrap();
    }

    fn backlog(&self) -> relais::store::outbox::Backlog {
        self.store.lock().unwrap().backlog(Sink::Mes).unwrap()
    }

    /// Runs the loop until `done` or `limit` (wall time).
    async fn upload_until(
        &self,
        settings: Settings,
        clock: Arc<dyn Clock>,
        limit: Duration,
        mut done: impl FnMut(&Hub) -> bool,
    ) {
        let stop = CancellationToken::new();
        let task = tokio::spawn(upload::run(
            Arc::clone(&self.store),
            self.world.config.clone(),
            settings,
            clock,
            Arc::new(Notify::new()),
            stop.clone(),
        ));
        let deadline = tokio::time::Instant::now() + limit;
        while !done(self) && tokio::time::Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        stop.cancel();
        task.await.unwrap().unwrap();
    }
}

fn drained(hub: &Hub) -> bool {
    let b = hub.backlog();
    b.pending == 0 && b.sending == 0
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_reading_arrives_once_and_what_mes_cannot_take_keeps_its_reason() {
    let hub = hub(&["patient-1", "patient-2"]).await;
    hub.commit(&[
        weighing(0, 14_400, 1, true),
        weighing(1, 11_620, 2, false),
        weighing(2, 14_380, 1, false),
    ]);
    hub.upload_until(
        settings(mes_common::HUB_OID),
        Arc::new(SystemClock),
        Duration::from_secs(20),
        drained,
    )
    .await;
    let backlog = hub.backlog();
    // Weight, BMI, height; weight; weight. BMI is refused by MES by design.
    assert_eq!((backlog.sent, backlog.unsendable), (4, 1), "{backlog:?}");
    let refused = hub.store.lock().unwrap().refused(Sink::Mes, 10).unwrap();
    assert!(
        refused[0].last_error.as_deref().unwrap().contains("BMI"),
        "{refused:?}"
    );
    let camille = hub.world.stored("idpe-patient-1").await;
    let jean = hub.world.stored("idpe-patient-2").await;
    assert_eq!((camille.len(), jean.len()), (3, 1));
    let codes: Vec<&str> = camille
        .iter()
        .map(|o| o["code"].as_str().unwrap())
        .collect();
    assert_eq!(codes, ["29463-7", "8302-2", "29463-7"], "in commit order");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lost_answer_is_checked_in_mes_not_sent_twice() {
    let hub = hub(&["patient-1"]).await;
    // MES stores the first two writes, then the connection drops before the answer.
    hub.world
        .sandbox
        .set_faults(Faults {
            reset_next: 2,
            ..Faults::default()
        })
        .unwrap();
    hub.commit(&[weighing(0, 14_400, 1, false), weighing(5, 14_420, 1, false)]);
    hub.upload_until(
        settings(mes_common::HUB_OID),
        Arc::new(SystemClock),
        Duration::from_secs(20),
        drained,
    )
    .await;
    assert_eq!(hub.backlog().sent, 2);
    let stored = hub.world.stored("idpe-patient-1").await;
    assert_eq!(stored.len(), 2, "no duplicate: {stored:#?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_withdrawn_consent_stops_sending_and_keeps_the_readings() {
    let hub = hub(&["patient-1"]).await;
    hub.world
        .sandbox
        .set_faults(Faults {
            consent_revoked: vec![ConsentRevocation {
                id_pe: "idpe-patient-1".into(),
                read: true,
                write: true,
            }],
            ..Faults::default()
        })
        .unwrap();
    hub.commit(&[weighing(0, 14_400, 1, false), weighing(5, 14_420, 1, false)]);
    let member = hub.members[0];
    hub.upload_until(
        settings(mes_common::HUB_OID),
        Arc::new(SystemClock),
        Duration::from_secs(10),
        |h| h.store.lock().unwrap().member(member).unwrap().mes_state != MesState::Linked,
    )
    .await;
    let store = hub.store.lock().unwrap();
    let m = store.member(member).unwrap();
    assert_eq!(m.mes_state, MesState::ConsentWithdrawn);
    assert!(m.mes_state_detail.unwrap().contains("403"));
    assert_eq!(
        store.backlog(Sink::Mes).unwrap().pending,
        2,
        "kept, not sent"
    );
    assert_eq!(store.tokens(member).unwrap(), None, "tokens forgotten");
    assert!(
        store
            .audit_log()
            .unwrap()
            .iter()
            .any(|e| e.event == "mes_consent_withdrawn")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_expired_access_token_is_refreshed_and_the_new_tokens_kept() {
    let hub = hub(&["patient-1"]).await;
    let member = hub.members[0];
    let before = hub.store.lock().unwrap().tokens(member).unwrap().unwrap();
    hub.world
        .sandbox
        .set_faults(Faults {
            access_token_max_age_secs: Some(0),
            ..Faults::default()
        })
        .unwrap();
    hub.commit(&[weighing(0, 14_400, 1, false)]);
    // The token dies at once; lift the fault after the first refusal so the refreshed one
    // lives.
    let sandbox_faults = async {
        tokio::time::sleep(Duration::from_millis(300)).await;
        hub.world.sandbox.set_faults(Faults::default()).unwrap();
    };
    let upload = hub.upload_until(
        settings(mes_common::HUB_OID),
        Arc::new(SystemClock),
        Duration::from_secs(15),
        drained,
    );
    tokio::join!(sandbox_faults, upload);
    assert_eq!(hub.backlog().sent, 1);
    let after = hub.store.lock().unwrap().tokens(member).unwrap().unwrap();
    assert_ne!(
        before.refresh_token(),
        after.refresh_token(),
        "rotated and stored"
    );
    assert_eq!(hub.world.stored("idpe-patient-1").await.len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refused_bundles_are_quarantined_with_the_reason_and_the_queue_goes_on() {
    let hub = hub(&["patient-1"]).await;
    hub.commit(&[weighing(0, 14_400, 1, false), weighing(5, 14_420, 1, false)]);
    // An OID outside the partner's: MES refuses every Observation's meta.source (422).
    hub.upload_until(
        settings("1.2.250.1.999.7"),
        Arc::new(SystemClock),
        Duration::from_secs(10),
        drained,
    )
    .await;
    let backlog = hub.backlog();
    assert_eq!((backlog.quarantined, backlog.sent), (2, 0), "{backlog:?}");
    let refused = hub.store.lock().unwrap().refused(Sink::Mes, 10).unwrap();
    assert!(
        refused[0]
            .last_error
            .as_deref()
            .unwrap()
            .contains("meta.source"),
        "{refused:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_day_of_outage_delays_but_loses_nothing_and_keeps_the_order() {
    const READINGS: u32 = 10_000;
    let hub = hub(&["patient-1", "patient-2"]).await;
    let batch: Vec<Delivery> = (0..READINGS)
        .map(|i| {
            weighing(
                i % 600,
                12_000 + (i / 600) as u16 * 7 + (i % 7) as u16,
                (i % 2 + 1) as u8,
                false,
            )
        })
        .collect();
    hub.commit(&batch);
    let committed = hub.backlog().pending;
    assert_eq!(committed, u64::from(READINGS));

    let start = Timestamp::now();
    let clock = Arc::new(VirtualClock::starting_at(start));
    let day = jiff::SignedDuration::from_hours(24);
    let recovery = start.checked_add(day).unwrap();
    hub.world
        .sandbox
        .set_faults(Faults {
            server_error_rate: 1.0,
            ..Faults::default()
        })
        .unwrap();
    let mut settings = settings(mes_common::HUB_OID);
    settings.retry = RetryPolicy::default();
    // Between retries the loop sleeps until the next is due (the virtual clock jumps there).
    settings.idle = Duration::from_secs(3600);
    let max_delay = settings.retry.max_delay;
    let mut recovered: Option<Timestamp> = None;
    let mut first_sent: Option<Timestamp> = None;
    let watch_clock = Arc::clone(&clock);
    hub.upload_until(settings, clock, Duration::from_secs(300), |h| {
        let now = watch_clock.now();
        // The sandbox comes back when the watch first sees the day over; on a loaded
        // machine the virtual clock may be past it by then.
        if recovered.is_none() && now >= recovery {
            h.world.sandbox.set_faults(Faults::default()).unwrap();
            recovered = Some(now);
        }
        if first_sent.is_none() && h.backlog().sent > 0 {
            first_sent = Some(now);
        }
        drained(h)
    })
    .await;
    let recovered = recovered.expect("the virtual day passed");
    let backlog = hub.backlog();
    assert_eq!(backlog.sent, u64::from(READINGS), "{backlog:?}");
    for (login, user) in [("idpe-patient-1", 1u8), ("idpe-patient-2", 2)] {
        let stored = hub.world.stored(login).await;
        let sent: Vec<f64> = stored
            .iter()
            .map(|o| o["resource"]["valueQuantity"]["value"].as_f64().unwrap())
            .collect();
        let expected: Vec<f64> = batch
            .iter()
            .filter(|d| d.readings[0].user == Some(user))
            .map(|d| match d.readings[0].value {
                relais_protocol::ReadingValue::Single(q) => q.to_f64().unwrap(),
                _ => panic!(),
            })
            .collect();
        assert_eq!(sent, expected, "all of {login}'s readings, in commit order");
    }
    // Nothing went out during the outage, and the first reading went out no later than the
    // longest retry delay (plus its jitter, up to as much again) after the sandbox came back.
    let first_sent = first_sent.unwrap();
    assert!(first_sent >= recovered, "{first_sent} before {recovered}");
    let lag = first_sent.duration_since(recovered).unsigned_abs();
    assert!(lag <= max_delay * 2 + Duration::from_secs(60), "{lag:?}");
}
