//! The hub's ingest in degraded mode: when the disk is full, measurements are kept in memory,
//! their sessions are not told they were accepted, the failure is reported, and everything is
//! committed and accepted once space comes back. And a second `relais run` on the same database
//! is refused with a clear message.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::sync::Arc;
use std::time::Duration;

use jiff::Timestamp;
use relais::ble::device::Identity;
use relais::ble::kind::DeviceKind;
use relais::ble::session::{Delivery, Event};
use relais::ble::supervisor::Report;
use relais::hub::ingest::{self, Ingested};
use relais::payload::{Payload, Record};
use relais::store::Store;
use relais_protocol::{Quirks, uuid};
use tokio::sync::{mpsc, oneshot};

fn glucose(seq: u16) -> Delivery {
    let mut bytes = vec![0x02];
    bytes.extend(seq.to_le_bytes());
    bytes.extend([0xE8, 0x07, 0x03, 0x01, 0x08, 0x00, 0x00, 0x5A, 0xB0, 0x11]);
    let record = Record::single(Payload::characteristic(uuid::GLUCOSE_MEASUREMENT, bytes));
    Delivery {
        device: Identity {
            address: "C0:FF:EE:00:05:01".into(),
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_disk_holds_measurements_until_space_comes_back() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&dir.path().join("hub.sqlite")).unwrap();
    // No room to grow: the first rows may still fit in the tables' empty pages.
    store.limit_pages(1).unwrap();
    let store = relais::hub::shared(store);
    let (reports, received) = mpsc::channel(64);
    let (notify, mut notified) = mpsc::channel(64);
    let ingest = tokio::spawn(ingest::run(Arc::clone(&store), received, Some(notify)));

    let mut answers = Vec::new();
    for seq in 0..300 {
        let (accepted, answer) = oneshot::channel();
        reports
            .send(Report::Session(Event::Measurement {
                delivery: Box::new(glucose(seq)),
                accepted,
            }))
            .await
            .unwrap();
        answers.push(answer);
    }
    // The failure is reported; only what was committed before the disk filled is accepted.
    let failing = tokio::time::timeout(Duration::from_secs(5), async {
        loop {
            if let Some(Ingested::Failing(why)) = notified.recv().await {
                return why;
            }
        }
    })
    .await
    .unwrap();
    assert!(failing.contains("disk"), "{failing}");
    let mut waiting = Vec::new();
    let mut accepted_early = 0u64;
    for mut answer in answers {
        match answer.try_recv() {
            Ok(true) => accepted_early += 1,
            Ok(false) => panic!("refused"),
            Err(_) => waiting.push(answer),
        }
    }
    let committed = store.lock().unwrap().measurement_count().unwrap();
    assert_eq!(accepted_early, committed, "accepted means committed");
    assert!(!waiting.is_empty(), "the disk filled before the end");
    // Space comes back: the rest is committed and accepted.
    store.lock().unwrap().limit_pages(1_000_000).unwrap();
    for answer in waiting {
        let accepted = tokio::time::timeout(Duration::from_secs(10), answer)
            .await
            .unwrap()
            .unwrap();
        assert!(accepted);
    }
    assert_eq!(store.lock().unwrap().measurement_count().unwrap(), 300);
    drop(reports);
    ingest.await.unwrap();
}

#[test]
fn a_second_hub_on_the_same_database_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("hub.sqlite");
    let first = relais::hub::lock_daemon(&db).unwrap();
    let err = relais::hub::lock_daemon(&db).unwrap_err().to_string();
    assert!(err.contains("another `relais run`"), "{err}");
    drop(first);
    relais::hub::lock_daemon(&db).unwrap();
}
