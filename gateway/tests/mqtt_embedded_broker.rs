//! `[mqtt] embedded_broker = true`: the hub starts rumqttd on loopback and the bridge publishes
//! to it. Checked with an independent client, `mosquitto_sub` (Debian `mosquitto-clients`;
//! without it this test fails).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use jiff::Timestamp;
use relais::ble::device::Identity;
use relais::ble::kind::DeviceKind;
use relais::ble::session::Delivery;
use relais::hub::{self, config::Config};
use relais::payload::{Payload, Record};
use relais_protocol::{Quirks, uuid};
use serde_json::Value;
use tokio_util::sync::CancellationToken;

const SCALE: &str = "C0:FF:EE:00:04:01";

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// The retained message on `topic`, if any (a fresh client, 1 s at most).
fn retained(port: u16, topic: &str) -> Option<String> {
    let out = Command::new("mosquitto_sub")
        .args(["-h", "127.0.0.1", "-p", &port.to_string()])
        .args(["-t", topic, "-C", "1", "-W", "1", "--retained-only"])
        .output()
        .expect("mosquitto_sub is missing: apt-get install mosquitto-clients");
    let text = String::from_utf8_lossy(&out.stdout).trim_end().to_owned();
    (!text.is_empty()).then_some(text)
}

fn wait_retained(port: u16, topic: &str, expected: &str) {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let got = retained(port, topic);
        if got.as_deref() == Some(expected) {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{topic} is {got:?}, expected {expected}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// `mosquitto_sub -v` on `filter`, its lines in a file.
struct Subscriber {
    child: Child,
    path: std::path::PathBuf,
}

impl Subscriber {
    fn start(port: u16, filter: &str, dir: &Path) -> Self {
        let path = dir.join("sub.out");
        let child = Command::new("mosquitto_sub")
            .args(["-h", "127.0.0.1", "-p", &port.to_string()])
            .args(["-q", "1", "-v", "-t", filter])
            .stdout(std::fs::File::create(&path).unwrap())
            .stderr(Stdio::null())
            .spawn()
            .expect("mosquitto_sub is missing: apt-get install mosquitto-clients");
        Self { child, path }
    }

    /// The payload of the first message on `topic`.
    fn first_on(&self, topic: &str) -> Option<String> {
        std::fs::read_to_string(&self.path)
            .unwrap_or_default()
            .lines()
            .find_map(|l| l.strip_prefix(&format!("{topic} ")).map(str::to_owned))
    }
}

impl Drop for Subscriber {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A 70.5 kg weighing by the scale's user 1.
fn weighing() -> Delivery {
    let raw: u16 = 14_100; // x 5 g
    let mut bytes = vec![0x02 | 0x04];
    bytes.extend(raw.to_le_bytes());
    bytes.extend([0xE8, 0x07, 0x03, 0x01, 7, 30, 0x00]);
    bytes.push(1);
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_hub_publishes_to_its_embedded_broker() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let mut config = Config::default();
    config.hub.database = dir.path().join("hub.sqlite");
    config.ble.enabled = false;
    config.mes.enabled = false;
    config.mqtt.enabled = true;
    config.mqtt.embedded_broker = true;
    config.mqtt.port = port;
    config.mqtt.client_id = "relais-embedded-test".into();
    let store = hub::shared(hub::open_store(&config).unwrap());
    {
        let mut store = store.lock().unwrap();
        store
            .note_device(&scale(), DeviceKind::WeightScale)
            .unwrap();
        let camille = store.add_member("Camille").unwrap();
        store.map_device_user(SCALE, Some(1), camille).unwrap();
    }
    let stop = CancellationToken::new();
    let hub = {
        let (store, stop) = (std::sync::Arc::clone(&store), stop.clone());
        tokio::spawn(async move { hub::run(&config, store, stop, None).await })
    };

    // Nothing else listens on that port: what answers is the hub's broker.
    wait_retained(port, "relais/status", "online");
    let subscriber = Subscriber::start(port, "relais/#", dir.path());
    tokio::time::sleep(Duration::from_millis(500)).await;
    store.lock().unwrap().commit(&[weighing()]).unwrap();
    // Nothing wakes the bridge for a commit made behind the hub's back: it finds the row on
    // its next look at the outbox.
    let deadline = Instant::now() + Duration::from_secs(90);
    let reading = loop {
        if let Some(payload) = subscriber.first_on("relais/camille/body_weight") {
            break payload;
        }
        assert!(Instant::now() < deadline, "no reading published");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let reading: Value = serde_json::from_str(&reading).unwrap();
    assert_eq!(reading["kind"], "body_weight");
    assert_eq!(reading["value"]["value"], 70.5, "{reading}");
    assert_eq!(reading["value"]["unit"], "kg", "{reading}");

    stop.cancel();
    hub.await.unwrap().unwrap();
    // The broker outlives the hub in this process: the bridge's goodbye is there to read.
    wait_retained(port, "relais/status", "offline");
}
