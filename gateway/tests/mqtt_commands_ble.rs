//! MQTT commands end to end on a running hub: a real Mosquitto, bluez-sim's unpaired glucose
//! meter on a private bus. `scan` lists the meter, `pair` bonds with it (passkey through the
//! hub's agent) and its records come out on MQTT as unassigned, `assign` files one under a
//! member and it is published again there; `sync` and `unpair` answer.
//!
//! One test per binary (libdbus reads the bus address once per process). Needs `dbus-daemon`,
//! `mosquitto` and `mosquitto-clients`.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod common;
mod mqtt_common;

use std::time::Duration;

use relais::hub::config::Config;
use relais::hub::control::Control;
use relais_bluez_sim::{GlucoseMeterSim, Simulator};
use serde_json::Value;
use tokio_util::sync::CancellationToken;

use mqtt_common::Broker;

const METER: &str = "C0:FF:EE:00:07:01";

/// The answers on `relais/response/<id>`, waiting until one has a `result` or an error.
fn final_answer(sub: &mqtt_common::Subscriber, id: &str) -> (Vec<Value>, Value) {
    let topic = format!("relais/response/{id}");
    sub.wait_for(&format!("the answer to {id}"), |lines| {
        lines.iter().any(|l| {
            l.topic == topic
                && serde_json::from_str::<Value>(&l.payload)
                    .is_ok_and(|v| v.get("result").is_some() || v["ok"] == false)
        })
    });
    let all = sub.json(&topic);
    let last = all.last().unwrap().clone();
    (all, last)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mqtt_commands_scan_pair_assign_sync_and_unpair_on_a_running_hub() {
    let bus = common::bus();
    let meter = GlucoseMeterSim::with_records(METER, 3).unwrap().unpaired();
    let _sim = Simulator::start(bus.address(), vec![Box::new(meter)])
        .await
        .unwrap();
    let broker = Broker::start();
    let sub = broker.subscribe("checker", &["relais/#"]);
    let dir = tempfile::tempdir().unwrap();
    let config = Config::from_text(
        &format!(
            "[hub]\ndatabase = \"{}\"\ntime_zone = \"UTC\"\n[ble]\nlinger_seconds = 1\n\
             rest_seconds = 600\n[mes]\nenabled = false\n[mqtt]\nenabled = true\n\
             port = {}\nclient_id = \"relais-ble-test\"\nprotocol = \"5\"\n\
             discovery_prefix = \"\"\ncommands = true\n",
            dir.path().join("hub.sqlite").display(),
            broker.port
        ),
        None,
        &[],
    )
    .unwrap();
    let mut store = relais::hub::open_store(&config).unwrap();
    let alice = store.add_member("Alice").unwrap();
    let control = Control::new(relais::hub::shared(store));
    let stop = CancellationToken::new();
    let hub = {
        let (control, stop) = (control.clone(), stop.clone());
        tokio::spawn(async move { relais::hub::run_with(&config, control, stop, None).await })
    };
    sub.wait_for("the hub online", |lines| {
        lines
            .iter()
            .any(|l| l.topic == "relais/status" && l.payload == "online")
    });
    // The bridge subscribes before it says `online`.

    broker.publish("relais/command/scan", r#"{"id":"s1","seconds":2}"#, &[]);
    let (answers, done) = final_answer(&sub, "s1");
    assert_eq!(done["ok"], true, "{done}");
    let devices = done["result"]["devices"].as_array().unwrap();
    let meter = devices.iter().find(|d| d["address"] == METER).unwrap();
    assert_eq!(meter["kind"], "glucose_meter");
    assert_eq!(meter["paired"], false);
    assert!(
        answers
            .iter()
            .any(|a| a["progress"]["found"]["address"] == METER),
        "{answers:?}"
    );

    broker.publish(
        "relais/command/pair",
        &format!(r#"{{"id":"p1","address":"{METER}","passkey":123456}}"#),
        &[],
    );
    let (_, paired) = final_answer(&sub, "p1");
    assert_eq!(paired["ok"], true, "{paired}");
    assert_eq!(paired["result"]["already_paired"], false);

    // Its records come out as unassigned readings.
    sub.wait_for("the meter's readings", |lines| {
        lines
            .iter()
            .filter(|l| l.topic == "relais/unassigned/blood_glucose")
            .count()
            >= 3
    });
    let first = &sub.json("relais/unassigned/blood_glucose")[0];
    let id = first["measurement_id"].as_i64().unwrap();
    assert_eq!(first["device"]["address"], METER);

    broker.publish(
        "relais/command/assign",
        &format!(r#"{{"id":"a1","measurement":{id},"member":{}}}"#, alice.0),
        &[],
    );
    let (_, assigned) = final_answer(&sub, "a1");
    assert_eq!(assigned["ok"], true, "{assigned}");
    sub.wait_for("the reading under Alice", |lines| {
        lines
            .iter()
            .any(|l| l.topic == "relais/alice/blood_glucose")
    });
    assert_eq!(
        sub.json("relais/alice/blood_glucose")[0]["measurement_id"],
        id
    );

    broker.publish(
        "relais/command/sync",
        &format!(r#"{{"id":"y1","address":"{METER}"}}"#),
        &[],
    );
    let (_, synced) = final_answer(&sub, "y1");
    assert_eq!(synced["ok"], true, "{synced}");
    broker.publish(
        "relais/command/sync",
        r#"{"id":"y2","address":"C0:FF:EE:00:07:99"}"#,
        &[],
    );
    let (_, unknown) = final_answer(&sub, "y2");
    assert_eq!(unknown["error"], "unknown_device");

    broker.publish(
        "relais/command/unpair",
        &format!(r#"{{"id":"u1","address":"{METER}"}}"#),
        &[],
    );
    let (_, unpaired) = final_answer(&sub, "u1");
    assert_eq!(unpaired["ok"], true, "{unpaired}");

    // Eight commands at most run at once: a ninth scan while eight last is answered `busy`.
    for i in 0..9 {
        broker.publish(
            "relais/command/scan",
            &format!(r#"{{"id":"b{i}","seconds":4}}"#),
            &[],
        );
    }
    let outcomes: Vec<Value> = (0..9)
        .map(|i| final_answer(&sub, &format!("b{i}")).1)
        .collect();
    let busy = outcomes.iter().filter(|a| a["error"] == "busy").count();
    let done = outcomes.iter().filter(|a| a["ok"] == true).count();
    assert_eq!((busy, done), (1, 8), "{outcomes:?}");

    stop.cancel();
    tokio::time::timeout(Duration::from_secs(30), hub)
        .await
        .unwrap()
        .unwrap()
        .unwrap();
}
