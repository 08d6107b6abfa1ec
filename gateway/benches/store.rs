//! Durable ingest throughput and latency: deliveries pushed into the hub's ingest loop as fast
//! as the BLE layer could hand them over, each acknowledged once its group commit returned
//! (WAL, `synchronous=FULL`, a file on this machine's disk). Compared, in the same run, with
//! a bare SQLite insert loop of rows of the same size under the same settings and the same
//! batch sizes.
//!
//! Run: `cargo bench -p relais --bench store`.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

use std::sync::Arc;
use std::time::Instant;

use jiff::Timestamp;
use relais::ble::device::Identity;
use relais::ble::kind::DeviceKind;
use relais::ble::session::{Delivery, Event};
use relais::ble::supervisor::Report;
use relais::hub;
use relais::hub::ingest::{self, Ingested};
use relais::payload::{Payload, Record};
use relais::store::{Sink, Store};
use relais_protocol::{Quirks, uuid};
use tokio::sync::{mpsc, oneshot};

const READINGS: usize = 20_000;
/// Deliveries in flight at most, as several devices' sessions would have.
const IN_FLIGHT: usize = 64;

fn glucose(seq: u32) -> Delivery {
    let seq16 = u16::try_from(seq % 65_536).unwrap();
    let mut bytes = vec![0x02];
    bytes.extend(seq16.to_le_bytes());
    bytes.extend([0xE8, 0x07, 0x03, 0x01, 0x08, 0x00, 0x00, 0x5A, 0xB0, 0x11]);
    let record = Record::single(Payload::characteristic(uuid::GLUCOSE_MEASUREMENT, bytes));
    Delivery {
        device: Identity {
            // A meter per 60,000 records keeps sequence numbers distinct.
            address: format!("C0:FF:EE:00:{:02X}:01", seq / 60_000),
            manufacturer: Some("Relais reference design".into()),
            model: Some("RS-GLUCOSE".into()),
            ..Identity::default()
        },
        kind: DeviceKind::GlucoseMeter,
        readings: record.readings(Quirks::NONE).unwrap(),
        record,
        quirks: Quirks::NONE,
        received_at: Timestamp::now(),
        clock_skew: None,
    }
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    let rank = ((p / 100.0) * sorted.len() as f64).ceil().max(1.0) as usize;
    sorted[rank.min(sorted.len()) - 1]
}

#[path = "../tests/mes_common/mod.rs"]
mod mes_common;

/// Readings committed one at a time at a steady pace while the upload loop runs.
const UPLOADED: usize = 500;
const UPLOAD_PACE: std::time::Duration = std::time::Duration::from_millis(10);

fn main() {
    let dir = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let (rate, batch, latencies) = runtime.block_on(ingest_run(&dir.path().join("hub.sqlite")));
    let bare = bare_loop(
        &dir.path().join("bare.sqlite"),
        batch.round().max(1.0) as usize,
    );
    let single = bare_loop(&dir.path().join("single.sqlite"), 1);
    println!("ingest: {READINGS} glucose records, {IN_FLIGHT} in flight");
    println!("  {rate:.0} readings/s committed, mean batch {batch:.1}");
    println!(
        "  notification -> commit: p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms",
        percentile(&latencies, 50.0),
        percentile(&latencies, 99.0),
        latencies[latencies.len() - 1]
    );
    println!(
        "bare SQLite insert loop, same settings and batches of {}: {bare:.0} rows/s",
        batch.round()
    );
    println!("  ingest / bare = {:.2}", rate / bare);
    println!("bare SQLite insert loop, one transaction per row: {single:.0} rows/s");
    println!("  ingest / bare one per transaction = {:.1}", rate / single);
    let mut to_mes = runtime.block_on(commit_to_mes(&dir.path().join("mes.sqlite")));
    to_mes.sort_by(f64::total_cmp);
    println!(
        "commit -> MES acknowledgement (mes-sandbox on loopback), {UPLOADED} readings at {} per s:",
        1_000 / UPLOAD_PACE.as_millis()
    );
    println!(
        "  p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms",
        percentile(&to_mes, 50.0),
        percentile(&to_mes, 99.0),
        to_mes[to_mes.len() - 1]
    );
}

/// Commits readings one by one while the MES upload loop runs against mes-sandbox; each
/// reading's time from its commit to MES's acknowledgement (the outbox row marked sent).
async fn commit_to_mes(path: &std::path::Path) -> Vec<f64> {
    use relais::hub::clock::SystemClock;
    use relais::hub::upload;
    let world = mes_common::World::start().await;
    let mut store = Store::open(path).unwrap();
    store.set_sinks(&[Sink::Mes]);
    let member = store.add_member("Camille").unwrap();
    let tokens = world.pair("patient-1").await;
    store.link_mes(member, &tokens).unwrap();
    let meter = Identity {
        address: "C0:FF:EE:00:00:01".into(),
        ..Identity::default()
    };
    store.note_device(&meter, DeviceKind::GlucoseMeter).unwrap();
    store.map_device_user(&meter.address, None, member).unwrap();
    let store = hub::shared(store);
    let wake = Arc::new(tokio::sync::Notify::new());
    let stop = tokio_util::sync::CancellationToken::new();
    let hub_settings =
        relais::fhir::HubSettings::new(mes_common::HUB_OID.parse().unwrap()).unwrap();
    let uploader = tokio::spawn(upload::run(
        Arc::clone(&store),
        world.config.clone(),
        upload::Settings::new(hub_settings),
        Arc::new(SystemClock),
        Arc::clone(&wake),
        stop.clone(),
    ));
    let mut committed_at = std::collections::HashMap::new();
    for seq in 0..UPLOADED as u32 {
        let delivery = glucose(seq);
        let results = store.lock().unwrap().commit(&[delivery]).unwrap();
        let relais::store::Committed::Stored { id, .. } = results[0] else {
            panic!("{results:?}")
        };
        committed_at.insert(id, Timestamp::now());
        wake.notify_one();
        tokio::time::sleep(UPLOAD_PACE).await;
    }
    loop {
        let backlog = store.lock().unwrap().backlog(Sink::Mes).unwrap();
        if backlog.sent as usize == UPLOADED {
            break;
        }
        if backlog.quarantined + backlog.unsendable > 0 {
            let refused = store.lock().unwrap().refused(Sink::Mes, 1).unwrap();
            panic!("{backlog:?}: {refused:?}");
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    stop.cancel();
    uploader.await.unwrap().unwrap();
    let delivered = store.lock().unwrap().delivered(Sink::Mes).unwrap();
    assert_eq!(world.stored("idpe-patient-1").await.len(), UPLOADED);
    delivered
        .iter()
        .map(|(id, at)| at.duration_since(committed_at[id]).as_secs_f64() * 1000.0)
        .collect()
}

async fn ingest_run(path: &std::path::Path) -> (f64, f64, Vec<f64>) {
    let mut store = Store::open(path).unwrap();
    store.set_sinks(&[Sink::Mes]);
    // Each meter is someone's, as in use: every reading gets its MES outbox row.
    let member = store.add_member("Camille").unwrap();
    for meter in 0..=(READINGS as u32 / 60_000) {
        let identity = Identity {
            address: format!("C0:FF:EE:00:{meter:02X}:01"),
            ..Identity::default()
        };
        store
            .note_device(&identity, DeviceKind::GlucoseMeter)
            .unwrap();
        store
            .map_device_user(&identity.address, None, member)
            .unwrap();
    }
    let store = hub::shared(store);
    let (reports, received) = mpsc::channel(1024);
    let (notify, mut notified) = mpsc::channel(100_000);
    let ingest = tokio::spawn(ingest::run(Arc::clone(&store), received, Some(notify)));
    let deliveries: Vec<Delivery> = (0..READINGS as u32).map(glucose).collect();
    let start = Instant::now();
    let mut waiting = futures::stream::FuturesUnordered::new();
    let mut latencies = Vec::with_capacity(READINGS);
    for delivery in deliveries {
        if waiting.len() >= IN_FLIGHT {
            use futures::StreamExt as _;
            latencies.push(waiting.next().await.unwrap());
        }
        let (accepted, answer) = oneshot::channel();
        let sent = Instant::now();
        reports
            .send(Report::Session(Event::Measurement {
                delivery: Box::new(delivery),
                accepted,
            }))
            .await
            .unwrap();
        waiting.push(async move {
            assert!(answer.await.unwrap(), "refused");
            sent.elapsed().as_secs_f64() * 1000.0
        });
    }
    {
        use futures::StreamExt as _;
        while let Some(l) = waiting.next().await {
            latencies.push(l);
        }
    }
    let elapsed = start.elapsed();
    drop(reports);
    ingest.await.unwrap();
    let mut commits = 0usize;
    let mut committed = 0usize;
    while let Ok(event) = notified.try_recv() {
        if let Ingested::Committed { stored, .. } = event {
            commits += 1;
            committed += stored;
        }
    }
    assert_eq!(committed, READINGS);
    store.lock().unwrap().integrity_check().unwrap();
    latencies.sort_by(f64::total_cmp);
    (
        READINGS as f64 / elapsed.as_secs_f64(),
        committed as f64 / commits as f64,
        latencies,
    )
}

/// Rows of the size a stored measurement takes, inserted in transactions of `batch`.
fn bare_loop(path: &std::path::Path, batch: usize) -> f64 {
    let conn = rusqlite::Connection::open(path).unwrap();
    conn.pragma_update(None, "journal_mode", "WAL").unwrap();
    conn.pragma_update(None, "synchronous", "FULL").unwrap();
    conn.execute_batch("CREATE TABLE t (id INTEGER PRIMARY KEY, body TEXT NOT NULL)")
        .unwrap();
    let body = "x".repeat(900);
    let start = Instant::now();
    let mut conn = conn;
    for chunk in (0..READINGS).collect::<Vec<_>>().chunks(batch) {
        let tx = conn.transaction().unwrap();
        {
            let mut stmt = tx
                .prepare_cached("INSERT INTO t (body) VALUES (?1)")
                .unwrap();
            for _ in chunk {
                stmt.execute([&body]).unwrap();
            }
        }
        tx.commit().unwrap();
    }
    READINGS as f64 / start.elapsed().as_secs_f64()
}
