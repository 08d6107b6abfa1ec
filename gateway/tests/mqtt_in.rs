//! The MQTT bridge's "In" side against a real Mosquitto: readings from other gateways (relais's
//! input payload, Theengs Gateway's and OpenMQTTGateway's Xiaomi scale JSON) taken into the
//! store like the hub's own, refusals explained on `relais/error`, and commands answered on the
//! MQTT 5 response topic or the 3.1.1 fallback. Messages are sent with `mosquitto_pub`.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod mqtt_common;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use relais::hub::config::MqttSource;
use relais::hub::control::Control;
use relais::hub::ingest::SharedStore;
use relais::mqtt::client::Protocol;
use relais::mqtt::{self, Settings, sources};
use relais::store::{Sink, Store};
use serde_json::Value;
use tokio::sync::{Notify, mpsc};
use tokio_util::sync::CancellationToken;

use mqtt_common::Broker;

const THEENGS: &str = "home/TheengsGateway/BTtoMQTT";
const OMG: &str = "home/OpenMQTTGateway/BTtoMQTT";

fn source(name: &str, topic: &str, format: &str, member: &str) -> MqttSource {
    MqttSource {
        name: name.into(),
        topic: topic.into(),
        format: format.into(),
        member: member.into(),
        devices: BTreeMap::new(),
    }
}

/// A store feeding MES and MQTT with Alice and Bob, and a bridge taking readings from a Theengs
/// Gateway (one scale mapped to Alice), an OpenMQTTGateway (all Bob's), and relais's own input
/// on `relais/ingest/lab` (any member) and `relais/ingest/bobs` (Bob's only).
struct Hub {
    store: SharedStore,
    stop: CancellationToken,
    task: tokio::task::JoinHandle<()>,
    _statuses: mpsc::Sender<Arc<relais::ble::supervisor::Status>>,
}

fn hub(broker: &Broker, dir: &std::path::Path, protocol: Protocol) -> Hub {
    let mut store = Store::open(&dir.join("hub.sqlite")).unwrap();
    store.set_sinks(&[Sink::Mes, Sink::Mqtt]);
    store.add_member("Alice").unwrap();
    store.add_member("Bob").unwrap();
    bridge(broker, relais::hub::shared(store), protocol)
}

/// The bridge on `store`.
fn bridge(broker: &Broker, store: SharedStore, protocol: Protocol) -> Hub {
    let mut theengs = source("bathroom", &format!("{THEENGS}/+"), "theengs", "");
    theengs
        .devices
        .insert("C4:7C:8D:6A:12:34".into(), "Alice".into());
    let configured = [
        theengs,
        source("hall", &format!("{OMG}/+"), "openmqttgateway", "Bob"),
        source("lab", "", "relais", ""),
        source("bobs", "", "relais", "Bob"),
    ];
    let settings = Settings {
        sources: sources::from_config("relais", &configured).unwrap(),
        commands: true,
        discovery: None,
        protocol,
        ..broker.settings()
    };
    let stop = CancellationToken::new();
    let (statuses, heard) = mpsc::channel(16);
    let task = tokio::spawn(mqtt::run_with(
        Control::without_bluetooth(Arc::clone(&store)),
        settings,
        Arc::new(Notify::new()),
        heard,
        stop.clone(),
    ));
    Hub {
        store,
        stop,
        task,
        _statuses: statuses,
    }
}

impl Hub {
    fn count(&self) -> u64 {
        self.store.lock().unwrap().measurement_count().unwrap()
    }

    async fn stop(self) {
        self.stop.cancel();
        tokio::time::timeout(Duration::from_secs(10), self.task)
            .await
            .unwrap()
            .unwrap();
    }
}

/// Waits until the bridge is subscribed: its `online` is retained, and a reading sent on a
/// topic it listens to gets an answer on the error topic.
fn wait_until_listening(broker: &Broker, sub: &mqtt_common::Subscriber) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while broker.retained("relais/status").as_deref() != Some("online") {
        assert!(Instant::now() < deadline, "the bridge did not connect");
        std::thread::sleep(Duration::from_millis(100));
    }
    loop {
        broker.publish("relais/ingest/probe", "probe", &[]);
        std::thread::sleep(Duration::from_millis(200));
        if !sub.json("relais/error").is_empty() {
            return;
        }
        assert!(Instant::now() < deadline, "the bridge did not subscribe");
    }
}

fn weight(address: &str, kg: f64, at: &str, member: Option<&str>) -> String {
    let member = member.map_or(String::new(), |m| format!(",\"member\":\"{m}\""));
    format!(
        r#"{{"version":1,"device":{{"address":"{address}","manufacturer":"Acme","model":"W-1"}},"kind":"body_weight","value":{{"value":{kg},"unit":"kg"}},"measured_at":"{at}"{member}}}"#
    )
}

fn theengs(address: &str, kg: f64, impedance: Option<u32>) -> String {
    let impedance = impedance.map_or(String::new(), |i| format!(",\"impedance\":{i}"));
    format!(
        r#"{{"id":"{address}","name":"MIBFS","rssi":-70,"brand":"Xiaomi","model":"Mi_Body_Composition_Scale","model_id":"XMTZC02HM/XMTZC05HM","type":"SCALE","weighing_mode":"person","unit":"kg","weight":{kg}{impedance}}}"#
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readings_from_other_gateways_follow_the_ble_path_and_bad_ones_are_explained() {
    let broker = Broker::start();
    let dir = tempfile::tempdir().unwrap();
    let sub = broker.subscribe("checker", &["relais/#"]);
    let hub = hub(&broker, dir.path(), Protocol::V311);
    wait_until_listening(&broker, &sub);
    let errors_before = sub.json("relais/error").len();

    // Theengs: a mapped scale (Alice's), an unmapped one (inbox), the first one's repeat.
    broker.publish(
        &format!("{THEENGS}/C47C8D6A1234"),
        &theengs("C4:7C:8D:6A:12:34", 61.2, Some(503)),
        &[],
    );
    broker.publish(
        &format!("{THEENGS}/C47C8D6A9999"),
        &theengs("C4:7C:8D:6A:99:99", 80.4, None),
        &[],
    );
    broker.publish(
        &format!("{THEENGS}/C47C8D6A1234"),
        &theengs("C4:7C:8D:6A:12:34", 61.2, Some(503)),
        &[],
    );
    // A thermometer on the same wildcard: not for relais, no error.
    broker.publish(
        &format!("{THEENGS}/A4C138000001"),
        r#"{"id":"A4:C1:38:00:00:01","model_id":"LYWSD03MMC","tempc":21.5,"hum":40}"#,
        &[],
    );
    // OpenMQTTGateway's raw advertisement of a Mi Smart Scale: 72.00 kg, its own clock.
    broker.publish(
        &format!("{OMG}/C47C8D6A1236"),
        r#"{"id":"C4:7C:8D:6A:12:36","rssi":-60,"servicedatauuid":"0x181d","servicedata":"204038e8070305081e0f"}"#,
        &[],
    );
    // relais's input, naming Alice, then replayed.
    let mine = weight(
        "C0:FF:EE:00:09:01",
        70.25,
        "2026-02-28T07:30:00",
        Some("Alice"),
    );
    broker.publish("relais/ingest/lab", &mine, &[]);
    broker.publish("relais/ingest/lab", &mine, &[]);
    // Refused: garbage, too large, wrong schema, unknown member, topic no source takes, a
    // member the source may not file under.
    broker.publish("relais/ingest/lab", "{garbage", &[]);
    let large = format!("{{\"pad\":\"{}\"}}", "x".repeat(20_000));
    broker.publish("relais/ingest/lab", &large, &[]);
    broker.publish(
        "relais/ingest/lab",
        r#"{"version":1,"kind":"body_weight"}"#,
        &[],
    );
    broker.publish(
        "relais/ingest/lab",
        &weight(
            "C0:FF:EE:00:09:01",
            70.3,
            "2026-02-28T07:31:00",
            Some("Zoe"),
        ),
        &[],
    );
    broker.publish(
        "relais/ingest/elsewhere",
        &weight("C0:FF:EE:00:09:01", 70.3, "2026-02-28T07:32:00", None),
        &[],
    );
    broker.publish(
        "relais/ingest/bobs",
        &weight(
            "C0:FF:EE:00:09:02",
            90.0,
            "2026-02-28T07:33:00",
            Some("Alice"),
        ),
        &[],
    );
    // After all that, the bridge still takes a good one.
    broker.publish(
        "relais/ingest/bobs",
        &weight("C0:FF:EE:00:09:02", 90.0, "2026-02-28T07:34:00", None),
        &[],
    );

    let expected = [
        "duplicate",
        "duplicate",
        "garbage",
        "too_large",
        "schema",
        "unknown_member",
        "topic_not_allowed",
        "member_not_allowed",
    ];
    sub.wait_for("the refusals", |lines| {
        lines.iter().filter(|l| l.topic == "relais/error").count() >= errors_before + expected.len()
    });
    let deadline = Instant::now() + Duration::from_secs(20);
    while hub.count() < 5 {
        assert!(Instant::now() < deadline, "{} of 5 stored", hub.count());
        std::thread::sleep(Duration::from_millis(100));
    }
    std::thread::sleep(Duration::from_millis(500));
    let errors: Vec<Value> = sub.json("relais/error")[errors_before..].to_vec();
    let reasons: Vec<&str> = errors
        .iter()
        .map(|e| e["reason"].as_str().unwrap())
        .collect();
    assert_eq!(reasons, expected, "{errors:#?}");
    assert_eq!(errors[0]["topic"], format!("{THEENGS}/C47C8D6A1234"));
    assert_eq!(errors[6]["topic"], "relais/ingest/elsewhere");
    assert_eq!(errors[0]["version"], 1);
    assert!(
        errors
            .iter()
            .all(|e| !e["detail"].as_str().unwrap().is_empty())
    );

    // Five measurements, one waiting in the inbox, nothing twice.
    assert_eq!(hub.count(), 5);
    let (inbox, mes_rows, assigned_readings) = {
        let store = hub.store.lock().unwrap();
        let inbox = store.inbox().unwrap();
        let mut readings = 0;
        for m in store.recent_measurements(10).unwrap() {
            if m.member.is_some() {
                readings += m.readings.as_array().unwrap().len() as u64;
            }
        }
        (inbox, store.backlog(Sink::Mes).unwrap().pending, readings)
    };
    assert_eq!(inbox.len(), 1);
    assert_eq!(inbox[0].address, "C4:7C:8D:6A:99:99");
    // MES gets every reading of the assigned measurements once, the inbox's none.
    assert_eq!(mes_rows, assigned_readings);

    // Out again like BLE readings, under each member's topic.
    sub.wait_for("the readings out", |lines| {
        lines
            .iter()
            .filter(|l| l.topic.ends_with("/body_weight") && !l.topic.contains("/device/"))
            .count()
            >= 5
    });
    let alice = sub.json("relais/alice/body_weight");
    let weights: Vec<f64> = alice
        .iter()
        .map(|p| p["value"]["value"].as_f64().unwrap())
        .collect();
    assert!(
        weights.contains(&61.2) && weights.contains(&70.25),
        "{weights:?}"
    );
    assert_eq!(sub.json("relais/alice/impedance").len(), 1);
    let unassigned = sub.json("relais/unassigned/body_weight");
    assert_eq!(unassigned.len(), 1);
    assert_eq!(unassigned[0]["device"]["address"], "C4:7C:8D:6A:99:99");
    assert_eq!(unassigned[0]["device"]["manufacturer"], "Xiaomi");
    let bob = sub.json("relais/bob/body_weight");
    let bob_weights: Vec<f64> = bob
        .iter()
        .map(|p| p["value"]["value"].as_f64().unwrap())
        .collect();
    assert!(
        bob_weights.contains(&72.0) && bob_weights.contains(&90.0),
        "{bob_weights:?}"
    );
    assert_eq!(
        broker.retained("relais/schema/ingest").unwrap(),
        mqtt::ingest::INGEST_SCHEMA.trim_end()
    );
    // The scale's own clock came through OpenMQTTGateway's raw advertisement.
    let omg = bob.iter().find(|p| p["value"]["value"] == 72.0).unwrap();
    assert_eq!(omg["measured_at"], "2024-03-05T08:30:15");
    hub.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn commands_answer_on_the_response_topic_or_the_fallback_and_assign_republishes() {
    let broker = Broker::start();
    let dir = tempfile::tempdir().unwrap();
    let sub = broker.subscribe("checker", &["relais/#"]);
    let v5 = broker.subscribe_with(
        "checker5",
        &["answers/#"],
        &["-V", "mqttv5", "-F", "%t %D %p"],
    );
    // MQTT 5 for the bridge: requests from 3.1.1 clients carry no response topic.
    let hub = hub(&broker, dir.path(), Protocol::V5);
    wait_until_listening(&broker, &sub);

    // An unassigned reading, published as such.
    broker.publish(
        "relais/ingest/lab",
        &weight("C0:FF:EE:00:09:05", 64.5, "2026-02-28T08:00:00", None),
        &[],
    );
    sub.wait_for("the unassigned reading", |lines| {
        lines
            .iter()
            .any(|l| l.topic == "relais/unassigned/body_weight")
    });
    let id = hub.store.lock().unwrap().inbox().unwrap()[0].id.0;

    // From an MQTT 3.1.1 client: the answer on relais/response/<id>.
    broker.publish(
        "relais/command/assign",
        &format!(r#"{{"id":"req-1","measurement":{id},"member":"alice"}}"#),
        &[],
    );
    sub.wait_for("the answer", |lines| {
        lines.iter().any(|l| l.topic == "relais/response/req-1")
    });
    let answer = &sub.json("relais/response/req-1")[0];
    assert_eq!(answer["ok"], true, "{answer}");
    assert_eq!(answer["command"], "assign");
    assert_eq!(answer["id"], "req-1");
    assert_eq!(answer["result"]["measurement"], id);
    assert!(hub.store.lock().unwrap().inbox().unwrap().is_empty());
    // Published again, now under Alice's topic.
    sub.wait_for("the reading under Alice", |lines| {
        lines.iter().any(|l| l.topic == "relais/alice/body_weight")
    });
    let again = &sub.json("relais/alice/body_weight")[0];
    assert_eq!(again["measurement_id"], id);
    assert_eq!(again["member"]["slug"], "alice");

    // From an MQTT 5 client: the answer on its response topic, with its correlation data.
    let v5_args = |correlation: &str| {
        vec![
            "-V".to_owned(),
            "mqttv5".to_owned(),
            "-D".to_owned(),
            "publish".to_owned(),
            "response-topic".to_owned(),
            "answers/me".to_owned(),
            "-D".to_owned(),
            "publish".to_owned(),
            "correlation-data".to_owned(),
            correlation.to_owned(),
        ]
    };
    let args = v5_args("corr-42");
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    broker.publish(
        "relais/command/assign",
        &format!(r#"{{"measurement":{id},"member":"Bob"}}"#),
        &args,
    );
    let args = v5_args("corr-43");
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    broker.publish(
        "relais/command/sync",
        r#"{"address":"C0:FF:EE:00:00:01"}"#,
        &args,
    );
    let deadline = Instant::now() + Duration::from_secs(20);
    while v5.raw().lines().count() < 2 {
        assert!(Instant::now() < deadline, "MQTT 5 answers: {}", v5.raw());
        std::thread::sleep(Duration::from_millis(100));
    }
    let answers: BTreeMap<String, Value> = v5
        .raw()
        .lines()
        .map(|l| {
            let mut parts = l.splitn(3, ' ');
            assert_eq!(parts.next(), Some("answers/me"));
            let correlation = parts.next().unwrap().to_owned();
            (
                correlation,
                serde_json::from_str(parts.next().unwrap()).unwrap(),
            )
        })
        .collect();
    let refused = &answers["corr-42"];
    assert_eq!(refused["ok"], false);
    assert_eq!(refused["error"], "not_in_inbox");
    assert!(
        refused["message"]
            .as_str()
            .unwrap()
            .contains("already assigned")
    );
    assert_eq!(answers["corr-43"]["error"], "bluetooth_off");

    // Unknown commands and bad bodies are answered too; nothing crashes.
    broker.publish("relais/command/reboot", r#"{"id":"r"}"#, &[]);
    broker.publish("relais/command/assign", "{garbage", &[]);
    broker.publish(
        "relais/command/assign",
        r#"{"id":"b","measurement":"one"}"#,
        &[],
    );
    sub.wait_for("the refusals", |lines| {
        ["relais/response/r", "relais/response", "relais/response/b"]
            .iter()
            .all(|t| lines.iter().any(|l| l.topic == *t))
    });
    assert_eq!(sub.json("relais/response/r")[0]["error"], "unknown_command");
    assert_eq!(sub.json("relais/response")[0]["error"], "bad_request");
    assert_eq!(sub.json("relais/response/b")[0]["error"], "bad_request");
    hub.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mqtt5_a_message_over_the_packet_limit_is_dropped_by_the_broker_not_looped() {
    huge_message(Protocol::V5).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_message_over_the_packet_limit_is_refused_by_its_size_not_looped() {
    huge_message(Protocol::V311).await;
}

/// A message of 300 kB: MQTT 5 announces a 256 KiB limit, so the broker drops it; MQTT 3.1.1
/// cannot, so the bridge reads it and refuses it. Either way the connection stays up (a
/// connection ended by it would get it again on the next, for ever).
async fn huge_message(protocol: Protocol) {
    let broker = Broker::start();
    let dir = tempfile::tempdir().unwrap();
    let sub = broker.subscribe("checker", &["relais/#"]);
    let hub = hub(&broker, dir.path(), protocol);
    wait_until_listening(&broker, &sub);
    // Over the maximum packet size the bridge announces in its CONNECT (256 KiB).
    broker.publish("relais/ingest/lab", &"x".repeat(300_000), &[]);
    broker.publish(
        "relais/ingest/bobs",
        &weight("C0:FF:EE:00:09:02", 90.0, "2026-02-28T07:34:00", None),
        &[],
    );
    let deadline = Instant::now() + Duration::from_secs(20);
    while hub.count() < 1 {
        assert!(Instant::now() < deadline, "the next reading was not taken");
        std::thread::sleep(Duration::from_millis(100));
    }
    let log = broker.log();
    let connections = log.matches("as relais-test").count();
    assert_eq!(connections, 1, "the bridge reconnected: {log}");
    let errors = sub.json("relais/error");
    let too_large = errors.iter().filter(|e| e["reason"] == "too_large").count();
    assert_eq!(
        too_large,
        usize::from(protocol == Protocol::V311),
        "{errors:?}"
    );
    hub.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reading_is_acknowledged_to_the_broker_only_after_its_commit() {
    let broker = Broker::start();
    let dir = tempfile::tempdir().unwrap();
    let sub = broker.subscribe("checker", &["relais/#"]);
    let hub = hub(&broker, dir.path(), Protocol::V311);
    wait_until_listening(&broker, &sub);
    let errors_before = sub.json("relais/error").len();
    // The store busy: the bridge has the message but cannot commit it yet when it dies.
    let store = Arc::clone(&hub.store);
    {
        let held = store.lock().unwrap();
        broker.publish(
            "relais/ingest/lab",
            &weight("C0:FF:EE:00:09:07", 66.6, "2026-02-28T09:00:00", None),
            &[],
        );
        std::thread::sleep(Duration::from_millis(500));
        hub.task.abort();
        std::thread::sleep(Duration::from_millis(300));
        drop(held);
    }
    // The commit under way when it died still lands (it was in the store's hands).
    let deadline = Instant::now() + Duration::from_secs(20);
    while store.lock().unwrap().measurement_count().unwrap() < 1 {
        assert!(Instant::now() < deadline, "the reading was not stored");
        std::thread::sleep(Duration::from_millis(50));
    }
    // Not acknowledged: the broker sends it again to the next bridge, which knows it.
    let again = bridge(&broker, Arc::clone(&store), Protocol::V311);
    sub.wait_for("the redelivery", |lines| {
        lines
            .iter()
            .filter(|l| l.topic == "relais/error")
            .skip(errors_before)
            .any(|l| l.payload.contains("\"duplicate\""))
    });
    assert_eq!(store.lock().unwrap().measurement_count().unwrap(), 1);
    again.stop().await;
}
