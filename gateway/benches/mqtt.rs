//! MQTT bridge throughput: readings committed in the store published from the outbox to a
//! local Mosquitto at QoS 1 (each row marked sent after its PUBACKs), against `mosquitto_pub -l`
//! publishing the same number of messages of the same size at QoS 1 on one connection, in the
//! same run. Needs `mosquitto` and `mosquitto-clients`.
//!
//! Run: `cargo bench -p relais --bench mqtt`.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

use std::io::Write as _;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use jiff::Timestamp;
use relais::ble::device::Identity;
use relais::ble::kind::DeviceKind;
use relais::ble::session::Delivery;
use relais::hub;
use relais::mqtt::{self, Settings};
use relais::payload::{Payload, Record};
use relais::store::{Sink, Store};
use relais_protocol::{Quirks, uuid};

const READINGS: u32 = 5_000;

fn weighing(i: u32) -> Delivery {
    let mut bytes = vec![0x02 | 0x04];
    bytes.extend(u16::try_from(10_000 + i % 20_000).unwrap().to_le_bytes());
    let (day, hour, minute, second) = (1 + i / 86_400, (i / 3_600) % 24, (i / 60) % 60, i % 60);
    bytes.extend([
        0xE8,
        0x07,
        0x03,
        day as u8,
        hour as u8,
        minute as u8,
        second as u8,
    ]);
    bytes.push(1);
    let record = Record::single(Payload::characteristic(uuid::WEIGHT_MEASUREMENT, bytes));
    Delivery {
        device: Identity {
            address: "C0:FF:EE:00:02:01".into(),
            model: Some("RS-SCALE".into()),
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

fn main() {
    let dir = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let conf = dir.path().join("mosquitto.conf");
    std::fs::write(
        &conf,
        format!("listener {port} 127.0.0.1\nallow_anonymous true\nuser root\n"),
    )
    .unwrap();
    let mut broker = Command::new("mosquitto")
        .arg("-c")
        .arg(&conf)
        .stderr(Stdio::null())
        .spawn()
        .expect("mosquitto is missing: apt-get install mosquitto mosquitto-clients");
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        std::thread::sleep(Duration::from_millis(50));
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();

    let mut store = Store::open(&dir.path().join("hub.sqlite")).unwrap();
    store.set_sinks(&[Sink::Mqtt]);
    let member = store.add_member("Camille").unwrap();
    let deliveries: Vec<Delivery> = (0..READINGS).map(weighing).collect();
    store
        .note_device(&deliveries[0].device, DeviceKind::WeightScale)
        .unwrap();
    store
        .map_device_user("C0:FF:EE:00:02:01", Some(1), member)
        .unwrap();
    for chunk in deliveries.chunks(500) {
        store.commit(chunk).unwrap();
    }
    let store = hub::shared(store);

    let (elapsed, sample) = runtime.block_on(async {
        let stop = tokio_util::sync::CancellationToken::new();
        let (_statuses, heard) = tokio::sync::mpsc::channel(1);
        let mut settings = Settings::new("127.0.0.1", port, "relais-bench");
        settings.discovery = None;
        let start = Instant::now();
        let bridge = tokio::spawn(mqtt::run(
            Arc::clone(&store),
            settings,
            Arc::new(tokio::sync::Notify::new()),
            heard,
            stop.clone(),
        ));
        loop {
            let sent = store.lock().unwrap().backlog(Sink::Mqtt).unwrap().sent;
            if sent >= u64::from(READINGS) {
                break;
            }
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        let elapsed = start.elapsed();
        stop.cancel();
        bridge.await.unwrap();
        let m = store
            .lock()
            .unwrap()
            .measurement(relais::store::MeasurementId(1))
            .unwrap();
        let readings = m.record.readings(m.quirks).unwrap();
        let sample = mqtt::payload::reading(&m, 0, &readings[0], None, None);
        (elapsed, serde_json::to_string(&sample).unwrap())
    });

    // The same number of messages of the same size, QoS 1, one connection.
    let lines = dir.path().join("lines.txt");
    let mut file = std::fs::File::create(&lines).unwrap();
    for _ in 0..READINGS {
        writeln!(file, "{sample}").unwrap();
    }
    drop(file);
    let start = Instant::now();
    let status = Command::new("mosquitto_pub")
        .args(["-h", "127.0.0.1", "-p", &port.to_string()])
        .args(["-q", "1", "-t", "relais/bench/body_weight", "-l"])
        .stdin(std::fs::File::open(&lines).unwrap())
        .status()
        .expect("mosquitto_pub is missing: apt-get install mosquitto-clients");
    let baseline = start.elapsed();
    assert!(status.success());
    let _ = broker.kill();
    let _ = broker.wait();

    let rate = f64::from(READINGS) / elapsed.as_secs_f64();
    let base = f64::from(READINGS) / baseline.as_secs_f64();
    println!(
        "mqtt: {READINGS} readings, payload {} bytes, QoS 1, Mosquitto on loopback",
        sample.len()
    );
    println!(
        "  bridge (outbox -> PUBACK -> marked sent, 2 messages per reading): {:.2} s, \
         {rate:.0} readings/s, {:.0} messages/s",
        elapsed.as_secs_f64(),
        rate * 2.0
    );
    println!(
        "  mosquitto_pub -q 1 -l, {READINGS} messages: {:.2} s, {base:.0} messages/s",
        baseline.as_secs_f64()
    );
    println!(
        "  bridge readings/s / mosquitto_pub messages/s = {:.2} (messages: {:.2})",
        rate / base,
        rate * 2.0 / base
    );
}
