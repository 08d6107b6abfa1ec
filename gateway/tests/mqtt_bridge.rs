//! The MQTT bridge against a real Mosquitto (started per test on a free loopback port),
//! checked with an independent client, `mosquitto_sub`. Both come from the Debian packages
//! `mosquitto` and `mosquitto-clients`; without them these tests fail.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod mqtt_common;

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use jiff::Timestamp;
use relais::ble::device::Identity;
use relais::ble::kind::DeviceKind;
use relais::ble::session::Delivery;
use relais::hub::ingest::SharedStore;
use relais::mqtt::client::Protocol;
use relais::mqtt::{self, Settings};
use relais::payload::{Payload, Record};
use relais::store::{Sink, Store};
use relais_protocol::{Quirks, uuid};
use serde_json::Value;
use tokio::sync::{Notify, mpsc};
use tokio_util::sync::CancellationToken;

use mqtt_common::{Broker, CLIENT_ID};

const SCALE: &str = "C0:FF:EE:00:02:01";

/// A weighing `minutes` after 2024-03-01 07:00 (device time), `raw` x 5 g, by device user
/// `user`.
fn weighing(minutes: u32, raw: u16, user: u8) -> Delivery {
    let mut bytes = vec![0x02 | 0x04];
    bytes.extend(raw.to_le_bytes());
    let (hour, minute) = (7 + minutes / 60, minutes % 60);
    bytes.extend([0xE8, 0x07, 0x03, 0x01, hour as u8, minute as u8, 0x00]);
    bytes.push(user);
    let record = Record::single(Payload::characteristic(uuid::WEIGHT_MEASUREMENT, bytes));
    Delivery {
        device: scale(),
        kind: DeviceKind::WeightScale,
        readings: record.readings(Quirks::NONE).unwrap(),
        record,
        quirks: Quirks::NONE,
        received_at: Timestamp::now(),
        clock_skew: None,
    }
}

fn scale() -> Identity {
    Identity {
        address: SCALE.into(),
        manufacturer: Some("Relais reference design".into()),
        model: Some("RS-SCALE".into()),
        ..Identity::default()
    }
}

/// A store feeding MQTT, with Camille as user 1 of the scale.
fn store(dir: &Path) -> SharedStore {
    let mut store = Store::open(&dir.join("hub.sqlite")).unwrap();
    store.set_sinks(&[Sink::Mqtt]);
    store
        .note_device(&scale(), DeviceKind::WeightScale)
        .unwrap();
    let camille = store.add_member("Camille").unwrap();
    store.map_device_user(SCALE, Some(1), camille).unwrap();
    Arc::new(Mutex::new(store))
}

struct Bridge {
    store: SharedStore,
    wake: Arc<Notify>,
    stop: CancellationToken,
    task: tokio::task::JoinHandle<()>,
    _statuses: mpsc::Sender<Arc<relais::ble::supervisor::Status>>,
}

fn bridge(store: &SharedStore, settings: Settings) -> Bridge {
    let (wake, stop) = (Arc::new(Notify::new()), CancellationToken::new());
    let (statuses, heard) = mpsc::channel(16);
    let task = tokio::spawn(mqtt::run(
        Arc::clone(store),
        settings,
        Arc::clone(&wake),
        heard,
        stop.clone(),
    ));
    Bridge {
        store: Arc::clone(store),
        wake,
        stop,
        task,
        _statuses: statuses,
    }
}

impl Bridge {
    fn commit(&self, deliveries: &[Delivery]) {
        self.store.lock().unwrap().commit(deliveries).unwrap();
        self.wake.notify_one();
    }

    fn sent(&self) -> u64 {
        self.store.lock().unwrap().backlog(Sink::Mqtt).unwrap().sent
    }

    async fn wait_sent(&self, n: u64) {
        let deadline = Instant::now() + Duration::from_secs(30);
        while self.sent() < n {
            assert!(
                Instant::now() < deadline,
                "{} of {n} rows sent",
                self.sent()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

/// Measurement ids in the order first received, and how many arrived twice.
fn ids_in_order(payloads: &[Value]) -> (Vec<i64>, usize) {
    let mut seen = std::collections::HashSet::new();
    let mut order = Vec::new();
    for p in payloads {
        let id = p["measurement_id"].as_i64().unwrap();
        if seen.insert(id) {
            order.push(id);
        }
    }
    let duplicates = payloads.len() - order.len();
    (order, duplicates)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readings_arrive_in_order_with_the_documented_payload_topics_and_discovery() {
    let broker = Broker::start();
    let dir = tempfile::tempdir().unwrap();
    let store = store(dir.path());
    // A config left by a device this hub no longer knows: the bridge clears it.
    let stale = "homeassistant/sensor/relais_aabbccddeeff/weight/config";
    broker.publish_retained(stale, "{\"name\":\"Weight\"}");
    let sub = broker.subscribe("checker", &["relais/#", "homeassistant/#"]);
    let bridge = bridge(&store, broker.settings());
    let deliveries: Vec<Delivery> = (0..10)
        .map(|i| weighing(i, 14_000 + i as u16, if i % 2 == 0 { 1 } else { 2 }))
        .collect();
    bridge.commit(&deliveries);
    bridge.wait_sent(10).await;
    sub.wait_for("the readings", |lines| {
        lines
            .iter()
            .filter(|l| l.topic.ends_with("/body_weight"))
            .count()
            >= 20
    });

    let camille = sub.json("relais/camille/body_weight");
    let unassigned = sub.json("relais/unassigned/body_weight");
    assert_eq!(camille.len(), 5);
    assert_eq!(unassigned.len(), 5);
    let (order, _) = ids_in_order(&camille);
    assert!(order.windows(2).all(|w| w[0] < w[1]), "{order:?}");
    let first = &camille[0];
    assert_eq!(first["version"], 1);
    assert_eq!(first["kind"], "body_weight");
    assert_eq!(first["value"]["value"].as_f64(), Some(70.0));
    assert_eq!(first["value"]["unit"], "kg");
    assert_eq!(first["measured_at"], "2024-03-01T07:00:00");
    assert_eq!(first["member"]["slug"], "camille");
    assert_eq!(first["device"]["address"], SCALE);
    assert_eq!(first["device"]["model"], "RS-SCALE");
    assert_eq!(first["reading_index"], 0);
    assert!(first["received_at"].as_str().unwrap().ends_with('Z'));
    assert!(unassigned[0]["member"].is_null());
    // The schema names every required field the payload has.
    let schema: Value = serde_json::from_str(mqtt::payload::READING_SCHEMA).unwrap();
    for key in schema["required"].as_array().unwrap() {
        assert!(first.get(key.as_str().unwrap()).is_some(), "{key}");
    }
    // QoS 1 end to end, readings not retained.
    for l in sub
        .lines()
        .iter()
        .filter(|l| l.topic.ends_with("/body_weight"))
    {
        assert_eq!((l.qos, l.retained), (1, false), "{l:?}");
    }
    // Home Assistant's copy per device, and the retained state, schema and status.
    assert_eq!(sub.json("relais/device/c0ffee000201/body_weight").len(), 10);
    let state: Value =
        serde_json::from_str(&broker.retained("relais/device/c0ffee000201/state").unwrap())
            .unwrap();
    assert_eq!(state["kind"], "weight_scale");
    assert_eq!(state["model"], "RS-SCALE");
    assert!(state.get("battery").is_some() && state.get("paired").is_some());
    assert_eq!(
        broker.retained("relais/schema/reading").unwrap(),
        mqtt::payload::READING_SCHEMA.trim_end()
    );
    assert_eq!(broker.retained("relais/status").unwrap(), "online");
    let config: Value = serde_json::from_str(
        &broker
            .retained("homeassistant/sensor/relais_c0ffee000201/weight/config")
            .unwrap(),
    )
    .unwrap();
    assert_eq!(config["device_class"], "weight");
    assert_eq!(config["state_class"], "measurement");
    assert_eq!(config["unit_of_measurement"], "kg");
    assert_eq!(config["unique_id"], "relais_c0ffee000201_weight");
    assert_eq!(
        config["state_topic"],
        "relais/device/c0ffee000201/body_weight"
    );
    assert_eq!(config["device"]["identifiers"][0], "relais_c0ffee000201");
    assert_eq!(broker.retained(stale), None, "the stale config was removed");

    // A clean stop says offline.
    bridge.stop.cancel();
    bridge.task.await.unwrap();
    assert_eq!(broker.retained("relais/status").unwrap(), "offline");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_broker_restart_mid_stream_loses_nothing_and_the_rest_follows_in_order() {
    restart_mid_stream(Protocol::V311).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mqtt5_a_broker_restart_mid_stream_loses_nothing_and_the_rest_follows_in_order() {
    restart_mid_stream(Protocol::V5).await;
}

async fn restart_mid_stream(protocol: Protocol) {
    let mut broker = Broker::start();
    let dir = tempfile::tempdir().unwrap();
    let store = store(dir.path());
    // A persistent QoS 1 subscriber: the broker keeps its queue across the restart.
    let sub = broker.subscribe("checker", &["relais/camille/#"]);
    let bridge = bridge(
        &store,
        Settings {
            protocol,
            ..broker.settings()
        },
    );
    let total = 300u32;
    let batch = |from: u32| -> Vec<Delivery> {
        (from..from + 10)
            .map(|i| weighing(i, 10_000 + i as u16, 1))
            .collect()
    };
    for from in (0..150).step_by(10) {
        bridge.commit(&batch(from));
    }
    bridge.wait_sent(40).await;
    broker.down();
    // Committed while the broker is away.
    for from in (150..total).step_by(10) {
        bridge.commit(&batch(from));
    }
    tokio::time::sleep(Duration::from_millis(800)).await;
    let during = bridge.sent();
    assert!(during < u64::from(total), "nothing can be acknowledged now");
    broker.up();
    bridge.wait_sent(u64::from(total)).await;
    sub.wait_for("every reading", |lines| {
        let ids: std::collections::HashSet<&str> = lines
            .iter()
            .filter_map(|l| l.payload.split("\"measurement_id\":").nth(1))
            .filter_map(|rest| rest.split(',').next())
            .collect();
        ids.len() >= total as usize
    });
    let (order, duplicates) = ids_in_order(&sub.json("relais/camille/body_weight"));
    assert_eq!(order.len(), total as usize);
    assert!(
        order.windows(2).all(|w| w[0] < w[1]),
        "first arrivals in commit order"
    );
    // At least once: what was in flight at the cut may come twice, never more than a window.
    assert!(duplicates <= 64, "{duplicates} duplicates");
    let backlog = store.lock().unwrap().backlog(Sink::Mqtt).unwrap();
    assert_eq!((backlog.pending, backlog.sent), (0, u64::from(total)));
    bridge.stop.cancel();
    bridge.task.await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_persistent_qos1_session_under_a_stable_id_and_the_will_says_offline() {
    // Mosquitto logs the session flags: protocol 3.1.1 (p2), clean session off (c0).
    session_and_will(Protocol::V311, "p2").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mqtt5_a_persistent_qos1_session_under_a_stable_id_and_the_will_says_offline() {
    // MQTT 5 (p5): clean start off and a session expiry, so the session outlives the link.
    session_and_will(Protocol::V5, "p5").await;
}

async fn session_and_will(protocol: Protocol, flag: &str) {
    let broker = Broker::start();
    let dir = tempfile::tempdir().unwrap();
    let store = store(dir.path());
    let settings = Settings {
        protocol,
        ..broker.settings()
    };
    let bridge = bridge(&store, settings.clone());
    bridge.commit(&[weighing(0, 14_000, 1)]);
    bridge.wait_sent(1).await;
    let log = broker.log();
    assert!(
        log.contains(&format!("as {CLIENT_ID} ({flag}, c0, k30)")),
        "{log}"
    );
    assert_eq!(broker.retained("relais/status").unwrap(), "online");
    // A crash (no DISCONNECT): the broker publishes the will.
    bridge.task.abort();
    let _ = bridge.task.await;
    let deadline = Instant::now() + Duration::from_secs(10);
    while broker.retained("relais/status").as_deref() != Some("offline") {
        assert!(Instant::now() < deadline, "the will was not published");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // A subscriber that was away gets what was published meanwhile (its session and QoS 1).
    let sub = broker.subscribe("away", &["relais/camille/#"]);
    drop(sub);
    let again = self::bridge(&store, settings);
    again.commit(&[weighing(1, 14_100, 1), weighing(2, 14_200, 1)]);
    again.wait_sent(3).await;
    let sub = broker.subscribe("away", &["relais/camille/#"]);
    sub.wait_for("the queued readings", |lines| lines.len() >= 2);
    let (order, _) = ids_in_order(&sub.json("relais/camille/body_weight"));
    assert_eq!(order, [2, 3]);
    again.stop.cancel();
    again.task.await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cbor_readings_carry_the_same_structure_and_home_assistant_keeps_json() {
    let broker = Broker::start();
    let dir = tempfile::tempdir().unwrap();
    let store = store(dir.path());
    let hex_of = |topic: &str| {
        Command::new("mosquitto_sub")
            .args(["-h", "127.0.0.1", "-p", &broker.port.to_string()])
            .args(["-q", "1", "-t", topic, "-C", "1", "-W", "10", "-F", "%x"])
            .stdout(Stdio::piped())
            .spawn()
            .expect("mosquitto_sub is missing")
    };
    let member_topic = hex_of("relais/camille/body_weight");
    let device_topic = hex_of("relais/device/c0ffee000201/body_weight");
    std::thread::sleep(Duration::from_millis(300));
    let mut settings = broker.settings();
    settings.format = mqtt::payload::Format::Cbor;
    let bridge = bridge(&store, settings);
    bridge.commit(&[weighing(0, 14_000, 1)]);
    bridge.wait_sent(1).await;
    let bytes = |child: Child| {
        let out = child.wait_with_output().unwrap();
        let hex = String::from_utf8(out.stdout).unwrap();
        relais::hex::parse_hex(hex.trim()).unwrap()
    };
    let cbor: Value = ciborium::from_reader(bytes(member_topic).as_slice()).unwrap();
    assert_eq!(cbor["kind"], "body_weight");
    assert_eq!(cbor["value"]["unit"], "kg");
    assert_eq!(cbor["member"]["slug"], "camille");
    let json: Value = serde_json::from_slice(&bytes(device_topic)).unwrap();
    assert_eq!(json["measurement_id"], cbor["measurement_id"]);
    bridge.stop.cancel();
    bridge.task.await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mqtt5_a_publish_the_broker_refuses_is_quarantined_not_retried() {
    // The broker's ACL forbids Camille's topic: MQTT 5 PUBACKs say "not authorized".
    let broker = Broker::start_with(|dir| {
        let acl = dir.join("acl");
        std::fs::write(&acl, "topic deny relais/camille/#\ntopic readwrite #\n").unwrap();
        format!("acl_file {}", acl.display())
    });
    let dir = tempfile::tempdir().unwrap();
    let store = store(dir.path());
    let bridge = bridge(
        &store,
        Settings {
            protocol: Protocol::V5,
            ..broker.settings()
        },
    );
    // Two of Camille's (user 1), two unassigned (user 2).
    bridge.commit(&[
        weighing(0, 14_000, 1),
        weighing(1, 14_010, 2),
        weighing(2, 14_020, 1),
        weighing(3, 14_030, 2),
    ]);
    let deadline = Instant::now() + Duration::from_secs(20);
    let backlog = loop {
        let backlog = store.lock().unwrap().backlog(Sink::Mqtt).unwrap();
        if backlog.pending == 0 {
            break backlog;
        }
        assert!(Instant::now() < deadline, "{backlog:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!((backlog.sent, backlog.quarantined), (2, 2), "{backlog:?}");
    let refused = store.lock().unwrap().refused(Sink::Mqtt, 10).unwrap();
    for row in &refused {
        let why = row.last_error.as_deref().unwrap_or_default();
        assert!(why.contains("NotAuthorized"), "{why}");
    }
    // Not tried again: the broker saw each refused message once, even after more wake-ups.
    let denied = |log: &str| {
        log.lines()
            .filter(|l| l.contains("Denied PUBLISH") && l.contains("relais/camille/"))
            .count()
    };
    assert_eq!(denied(&broker.log()), 2, "{}", broker.log());
    bridge.commit(&[weighing(4, 14_040, 2)]);
    bridge.wait_sent(3).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(denied(&broker.log()), 2);
    bridge.stop.cancel();
    bridge.task.await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_to_a_broker_whose_certificate_chains_to_the_configured_ca() {
    // A CA and a server certificate for 127.0.0.1, made here.
    let ca_key = rcgen::KeyPair::generate().unwrap();
    let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    let ca = ca_params.self_signed(&ca_key).unwrap();
    let issuer = rcgen::Issuer::from_params(&ca_params, &ca_key);
    let server_key = rcgen::KeyPair::generate().unwrap();
    let server =
        rcgen::CertificateParams::new(vec!["127.0.0.1".to_owned(), "localhost".to_owned()])
            .unwrap()
            .signed_by(&server_key, &issuer)
            .unwrap();
    let broker = Broker::start_with(|dir| {
        std::fs::write(dir.join("server.pem"), server.pem()).unwrap();
        std::fs::write(dir.join("server.key"), server_key.serialize_pem()).unwrap();
        format!(
            "certfile {0}/server.pem\nkeyfile {0}/server.key",
            dir.display()
        )
    });
    let dir = tempfile::tempdir().unwrap();
    let store = store(dir.path());
    // Another CA: the broker's certificate is refused, nothing is sent.
    let stranger_key = rcgen::KeyPair::generate().unwrap();
    let mut stranger_params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    stranger_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    let stranger = stranger_params.self_signed(&stranger_key).unwrap();
    let untrusting = bridge(
        &store,
        Settings {
            tls: Some(mqtt::Tls {
                ca: stranger.pem().into_bytes(),
                client: None,
            }),
            ..broker.settings()
        },
    );
    untrusting.commit(&[weighing(0, 14_000, 1)]);
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(
        untrusting.sent(),
        0,
        "connected to a broker it cannot trust"
    );
    untrusting.stop.cancel();
    untrusting.task.await.unwrap();
    assert!(
        broker.log().contains("OpenSSL Error") || broker.log().contains("alert"),
        "the broker saw the handshake fail: {}",
        broker.log()
    );

    let trusting = bridge(
        &store,
        Settings {
            tls: Some(mqtt::Tls {
                ca: ca.pem().into_bytes(),
                client: None,
            }),
            ..broker.settings()
        },
    );
    trusting.wait_sent(1).await;
    trusting.commit(&[weighing(1, 14_010, 1)]);
    trusting.wait_sent(2).await;
    trusting.stop.cancel();
    trusting.task.await.unwrap();
}
