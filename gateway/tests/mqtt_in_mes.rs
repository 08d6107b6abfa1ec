//! Readings from other gateways all the way to Mon espace santé: a real Mosquitto, the bridge
//! taking Theengs Gateway's and relais's messages, the MES upload loop against mes-sandbox.
//! Every message is sent twice (and a Xiaomi weighing, as the scale repeats it, three times):
//! MES stores each reading once.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod mes_common;
mod mqtt_common;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use relais::hub::clock::SystemClock;
use relais::hub::config::MqttSource;
use relais::hub::control::Control;
use relais::hub::upload;
use relais::mes::RetryPolicy;
use relais::mqtt::{self, Settings, sources};
use relais::store::{Sink, Store};
use tokio::sync::{Notify, mpsc};
use tokio_util::sync::CancellationToken;

use mqtt_common::Broker;

const THEENGS: &str = "home/TheengsGateway/BTtoMQTT";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replayed_external_readings_reach_mes_once() {
    let world = mes_common::World::start().await;
    let broker = Broker::start();
    let sub = broker.subscribe("checker", &["relais/#"]);
    let dir = tempfile::tempdir().unwrap();
    let mut store = Store::open(&dir.path().join("hub.sqlite")).unwrap();
    store.set_sinks(&[Sink::Mes, Sink::Mqtt]);
    let member = store.add_member("patient-1").unwrap();
    store
        .link_mes(member, &world.pair("patient-1").await)
        .unwrap();
    let store = relais::hub::shared(store);

    let configured = [
        MqttSource {
            name: "bathroom".into(),
            topic: format!("{THEENGS}/+"),
            format: "theengs".into(),
            member: "patient-1".into(),
            devices: BTreeMap::new(),
        },
        MqttSource {
            name: "lab".into(),
            topic: String::new(),
            format: "relais".into(),
            member: "patient-1".into(),
            devices: BTreeMap::new(),
        },
    ];
    let settings = Settings {
        sources: sources::from_config("relais", &configured).unwrap(),
        discovery: None,
        // The household's, as `relais run` sets it: the FHIR mapping reads local times in it.
        zone: jiff::tz::TimeZone::get(relais::fhir::DEFAULT_TIME_ZONE).unwrap(),
        ..broker.settings()
    };
    let stop = CancellationToken::new();
    let (_statuses, heard) = mpsc::channel(16);
    let bridge = tokio::spawn(mqtt::run_with(
        Control::without_bluetooth(Arc::clone(&store)),
        settings,
        Arc::new(Notify::new()),
        heard,
        stop.clone(),
    ));
    let mut fhir = relais::fhir::HubSettings::new(mes_common::HUB_OID.parse().unwrap()).unwrap();
    fhir.use_reception_time_for_undated = false;
    let upload_settings = upload::Settings {
        retry: RetryPolicy {
            min_delay: Duration::from_millis(50),
            max_delay: Duration::from_millis(400),
            ..RetryPolicy::default()
        },
        idle: Duration::from_millis(200),
        ..upload::Settings::new(fhir)
    };
    let uploader = tokio::spawn(upload::run(
        Arc::clone(&store),
        world.config.clone(),
        upload_settings,
        Arc::new(SystemClock),
        Arc::new(Notify::new()),
        stop.clone(),
    ));
    sub.wait_for("the bridge online", |lines| {
        lines
            .iter()
            .any(|l| l.topic == "relais/status" && l.payload == "online")
    });

    let scale = r#"{"id":"C4:7C:8D:6A:12:34","model_id":"XMTZC02HM/XMTZC05HM","weighing_mode":"person","unit":"kg","weight":61.2,"impedance":503}"#;
    let cuff = r#"{"version":1,"device":{"address":"C0:FF:EE:00:09:02","manufacturer":"Acme","model":"BP-1"},"kind":"blood_pressure","systolic":{"value":121,"unit":"mm[Hg]"},"diastolic":{"value":79,"unit":"mm[Hg]"},"mean_arterial_pressure":{"value":93,"unit":"mm[Hg]"},"measured_at":"2026-02-28T07:31:00"}"#;
    let topic = format!("{THEENGS}/C47C8D6A1234");
    for _ in 0..3 {
        broker.publish(&topic, scale, &[]);
    }
    for _ in 0..2 {
        broker.publish("relais/ingest/lab", cuff, &[]);
    }
    sub.wait_for("the repeats refused", |lines| {
        lines
            .iter()
            .filter(|l| l.topic == "relais/error" && l.payload.contains("\"duplicate\""))
            .count()
            >= 3
    });
    let drained = || {
        let b = store.lock().unwrap().backlog(Sink::Mes).unwrap();
        b.pending == 0 && b.sending == 0 && b.sent > 0
    };
    let deadline = Instant::now() + Duration::from_secs(30);
    while !drained() {
        assert!(Instant::now() < deadline, "the MES backlog did not drain");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // Sent again after the upload: still nothing new.
    broker.publish("relais/ingest/lab", cuff, &[]);
    sub.wait_for("the late replay refused", |lines| {
        lines
            .iter()
            .filter(|l| l.topic == "relais/error" && l.payload.contains("\"duplicate\""))
            .count()
            >= 4
    });
    tokio::time::sleep(Duration::from_millis(600)).await;
    let backlog = store.lock().unwrap().backlog(Sink::Mes).unwrap();
    assert_eq!(backlog.pending, 0, "{backlog:?}");

    let stored = world.stored("idpe-patient-1").await;
    let codes: Vec<String> = stored
        .iter()
        .map(|o| {
            o["code"]["coding"][0]["code"]
                .as_str()
                .unwrap_or("?")
                .to_owned()
        })
        .collect();
    assert_eq!(
        stored.len() as u64,
        backlog.sent,
        "each sent row is one observation in MES: {codes:?}"
    );
    // The weighing (its impedance is not for MES) and the blood pressure, once each.
    assert_eq!(stored.len(), 2, "{stored:#?}");
    assert_eq!(store.lock().unwrap().measurement_count().unwrap(), 2);
    stop.cancel();
    bridge.await.unwrap();
    uploader.await.unwrap().unwrap();
}
