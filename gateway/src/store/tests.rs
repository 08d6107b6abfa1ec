use jiff::Timestamp;
use relais_protocol::{Quirks, uuid};

use super::*;
use crate::ble::device::Identity;
use crate::ble::kind::DeviceKind;
use crate::ble::session::Delivery;
use crate::mes::Tokens;
use crate::payload::{Payload, Record};

const SCALE: &str = "C0:FF:EE:00:00:05";
const METER: &str = "C0:FF:EE:00:00:01";

fn delivery(address: &str, kind: DeviceKind, payloads: Vec<Payload>) -> Delivery {
    let record = Record { payloads };
    Delivery {
        device: Identity {
            address: address.into(),
            model: Some("RS".into()),
            ..Identity::default()
        },
        kind,
        readings: record.readings(Quirks::NONE).unwrap(),
        record,
        quirks: Quirks::NONE,
        received_at: Timestamp::now(),
        clock_skew: None,
    }
}

/// A weighing in kg x 200 (resolution 5 g), with a user index when given.
fn weighing(raw: u16, user: Option<u8>) -> Delivery {
    let mut bytes = vec![if user.is_some() { 0x04 } else { 0x00 }];
    bytes.extend(raw.to_le_bytes());
    bytes.extend(user);
    delivery(
        SCALE,
        DeviceKind::WeightScale,
        vec![Payload::characteristic(uuid::WEIGHT_MEASUREMENT, bytes)],
    )
}

/// A glucose measurement with sequence number `seq` (no context).
fn glucose(seq: u16) -> Delivery {
    let mut bytes = vec![0x02];
    bytes.extend(seq.to_le_bytes());
    bytes.extend([0xE8, 0x07, 0x03, 0x01, 0x08, 0x00, 0x00, 0x5A, 0xB0, 0x11]);
    delivery(
        METER,
        DeviceKind::GlucoseMeter,
        vec![Payload::characteristic(uuid::GLUCOSE_MEASUREMENT, bytes)],
    )
}

#[test]
fn the_file_is_private_in_wal_mode_and_survives_a_reopen() {
    use std::os::unix::fs::PermissionsExt as _;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("sub/relais.sqlite");
    {
        let mut store = Store::open(&path).unwrap();
        store.add_member("Camille").unwrap();
        let mode: String = store
            .conn()
            .pragma_query_value(None, "journal_mode", |r| r.get(0))
            .unwrap();
        assert_eq!(mode, "wal");
        let sync: i64 = store
            .conn()
            .pragma_query_value(None, "synchronous", |r| r.get(0))
            .unwrap();
        assert_eq!(sync, 2, "FULL");
    }
    let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);
    let store = Store::open(&path).unwrap();
    assert_eq!(store.members().unwrap()[0].display_name, "Camille");
    store.integrity_check().unwrap();
}

#[test]
fn a_damaged_file_or_a_newer_schema_is_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let garbage = dir.path().join("garbage.sqlite");
    std::fs::write(&garbage, vec![0x5Au8; 8192]).unwrap();
    let err = Store::open(&garbage).unwrap_err();
    assert!(matches!(err, StoreError::Corrupt { .. }), "{err:?}");
    assert!(err.to_string().contains("garbage.sqlite"), "{err}");

    let newer = dir.path().join("newer.sqlite");
    drop(Store::open(&newer).unwrap());
    let conn = Connection::open(&newer).unwrap();
    conn.pragma_update(None, "user_version", 99).unwrap();
    drop(conn);
    let err = Store::open(&newer).unwrap_err();
    assert!(
        matches!(err, StoreError::NewerSchema { found: 99, .. }),
        "{err:?}"
    );
}

#[test]
fn a_mapped_user_gets_its_readings_and_the_rest_waits_in_the_inbox() {
    let mut store = Store::open_in_memory().unwrap();
    store.set_sinks(&[Sink::Mes, Sink::Mqtt]);
    let camille = store.add_member("Camille").unwrap();
    store
        .note_device(
            &Identity {
                address: SCALE.into(),
                ..Identity::default()
            },
            DeviceKind::WeightScale,
        )
        .unwrap();
    store.map_device_user(SCALE, Some(1), camille).unwrap();

    let committed = store
        .commit(&[weighing(14_400, Some(1)), weighing(11_620, Some(2))])
        .unwrap();
    let [
        Committed::Stored {
            member: Some(first),
            ..
        },
        Committed::Stored {
            id: waiting,
            member: None,
        },
    ] = committed[..]
    else {
        panic!("{committed:?}")
    };
    assert_eq!(first, camille);
    assert_eq!(store.inbox().unwrap().len(), 1);
    // MES only for the assigned one; MQTT for both.
    assert_eq!(store.backlog(Sink::Mes).unwrap().pending, 1);
    assert_eq!(store.backlog(Sink::Mqtt).unwrap().pending, 2);

    // Mapping user 2 later assigns what waited.
    let jean = store.add_member("Jean").unwrap();
    assert_eq!(store.map_device_user(SCALE, Some(2), jean).unwrap(), 1);
    assert!(store.inbox().unwrap().is_empty());
    assert_eq!(store.measurement(waiting).unwrap().member, Some(jean));
    assert_eq!(store.backlog(Sink::Mes).unwrap().pending, 2);
    assert_eq!(
        store
            .next_for(Sink::Mqtt, Some(jean), 10, Timestamp::now())
            .unwrap()
            .len(),
        1,
        "the other sink's row follows the assignment"
    );
}

#[test]
fn the_same_bytes_from_the_same_device_are_stored_once() {
    let mut store = Store::open_in_memory().unwrap();
    let first = store.commit(&[weighing(14_400, None)]).unwrap();
    let again = store
        .commit(&[weighing(14_400, None), weighing(14_400, None)])
        .unwrap();
    let Committed::Stored { id, .. } = first[0] else {
        panic!()
    };
    assert_eq!(again, vec![Committed::Duplicate { id }; 2]);
    assert_eq!(store.measurement_count().unwrap(), 1);
}

#[test]
fn a_meter_progress_is_its_highest_committed_sequence_number() {
    let mut store = Store::open_in_memory().unwrap();
    assert_eq!(store.last_glucose_sequence(METER).unwrap(), None);
    store.commit(&[glucose(0), glucose(1), glucose(2)]).unwrap();
    assert_eq!(store.last_glucose_sequence(METER).unwrap(), Some(2));
    store.commit(&[glucose(1)]).unwrap();
    assert_eq!(store.last_glucose_sequence(METER).unwrap(), Some(2));
}

#[test]
fn an_unassigned_weighing_suggests_the_member_of_similar_weight_but_is_not_sent() {
    let mut store = Store::open_in_memory().unwrap();
    let camille = store.add_member("Camille").unwrap();
    let jean = store.add_member("Jean").unwrap();
    // Earlier weighings, assigned by hand: Camille 72 kg, Jean 58.1 kg.
    for (raw, member) in [(14_400u16, camille), (11_620, jean)] {
        let [Committed::Stored { id, .. }] = store.commit(&[weighing(raw, None)]).unwrap()[..]
        else {
            panic!()
        };
        store.assign(id, member).unwrap();
    }
    let [Committed::Stored { id, member: None }] =
        store.commit(&[weighing(14_300, None)]).unwrap()[..]
    else {
        panic!()
    };
    let stored = store.measurement(id).unwrap();
    assert_eq!(stored.suggested_member, Some(camille));
    assert_eq!(stored.primary_kind.as_deref(), Some("body_weight"));
    assert!((stored.primary_value.unwrap() - 71.5).abs() < 1e-9);
    assert_eq!(
        store.backlog(Sink::Mes).unwrap().pending,
        2,
        "not sent before confirmation"
    );
    // Nobody near 100 kg.
    let [Committed::Stored { id, .. }] = store.commit(&[weighing(20_000, None)]).unwrap()[..]
    else {
        panic!()
    };
    assert_eq!(store.measurement(id).unwrap().suggested_member, None);
}

#[test]
fn the_outbox_keeps_order_and_a_retry_holds_the_rows_behind_it() {
    let mut store = Store::open_in_memory().unwrap();
    let camille = store.add_member("Camille").unwrap();
    store
        .note_device(
            &Identity {
                address: METER.into(),
                ..Identity::default()
            },
            DeviceKind::GlucoseMeter,
        )
        .unwrap();
    store.map_device_user(METER, None, camille).unwrap();
    store.commit(&[glucose(0), glucose(1), glucose(2)]).unwrap();
    let rows = store
        .next_for(Sink::Mes, Some(camille), 10, Timestamp::now())
        .unwrap();
    assert_eq!(rows.len(), 3);
    assert!(rows.windows(2).all(|w| w[0].id < w[1].id));

    store.mark_sending(rows[0].id).unwrap();
    assert!(store.is_in_doubt(rows[0].id).unwrap());
    store.mark_sent(rows[0].id).unwrap();
    store.mark_sending(rows[1].id).unwrap();
    let later = Timestamp::now()
        .checked_add(jiff::SignedDuration::from_secs(60))
        .unwrap();
    store.mark_retry(rows[1].id, "HTTP 503", later).unwrap();
    assert!(
        store
            .next_for(Sink::Mes, Some(camille), 10, Timestamp::now())
            .unwrap()
            .is_empty(),
        "nothing overtakes a row waiting for its retry"
    );
    assert_eq!(
        store.next_attempt_at(Sink::Mes, Some(camille)).unwrap(),
        Some(later)
    );
    store
        .mark_retry(rows[1].id, "HTTP 503", Timestamp::now())
        .unwrap();
    let again = store
        .next_for(Sink::Mes, Some(camille), 10, Timestamp::now())
        .unwrap();
    assert_eq!(again[0].id, rows[1].id);
    assert_eq!(again[0].attempts, 2, "two failures");
    assert_eq!(again[0].last_error.as_deref(), Some("HTTP 503"));
    store
        .mark_quarantined(rows[1].id, "422: value out of range")
        .unwrap();
    store.mark_unsendable(rows[2].id, "no profile").unwrap();
    let backlog = store.backlog(Sink::Mes).unwrap();
    assert_eq!(
        (
            backlog.pending,
            backlog.sent,
            backlog.quarantined,
            backlog.unsendable
        ),
        (0, 1, 1, 1)
    );
    assert_eq!(store.refused(Sink::Mes, 10).unwrap().len(), 2);
    assert!(store.members_waiting(Sink::Mes).unwrap().is_empty());
}

#[test]
fn pairing_state_and_tokens_are_kept_and_audited() {
    let mut store = Store::open_in_memory().unwrap();
    let camille = store.add_member("Camille").unwrap();
    assert!(store.add_member(" Camille ").is_err(), "names are unique");
    assert!(store.add_member("  ").is_err());
    let tokens: Tokens = serde_json::from_value(serde_json::json!({
        "access_token": "secret-access",
        "refresh_token": "secret-refresh",
        "access_expires_at": "2026-11-27T10:00:00Z",
        "id_token": "secret-id",
        "id_pe": "idpe-patient-1",
        "assigning_authority": "2.999.42.1",
    }))
    .unwrap();
    store.link_mes(camille, &tokens).unwrap();
    let member = store.find_member("camille").unwrap();
    assert_eq!(member.mes_state, MesState::Linked);
    assert_eq!(member.id_pe.as_deref(), Some("idpe-patient-1"));
    assert_eq!(store.tokens(camille).unwrap(), Some(tokens.clone()));
    assert!(!format!("{tokens:?}").contains("secret"));

    store
        .set_mes_state(camille, MesState::ConsentWithdrawn, Some("HTTP 403"))
        .unwrap();
    assert_eq!(store.tokens(camille).unwrap(), None, "tokens dropped");
    let events: Vec<String> = store
        .audit_log()
        .unwrap()
        .into_iter()
        .map(|e| e.event)
        .collect();
    assert_eq!(
        events,
        ["member_added", "mes_linked", "mes_consent_withdrawn"]
    );
}

#[test]
fn stored_measurements_read_back_as_they_were_received() {
    let mut store = Store::open_in_memory().unwrap();
    let d = weighing(14_400, Some(3));
    let [Committed::Stored { id, .. }] = store.commit(std::slice::from_ref(&d)).unwrap()[..] else {
        panic!()
    };
    let stored = store.measurement(id).unwrap();
    assert_eq!(stored.record, d.record);
    assert_eq!(stored.user_index, Some(3));
    assert_eq!(stored.address, SCALE);
    assert_eq!(stored.received_at, d.received_at);
    assert_eq!(
        stored.record.readings(stored.quirks).unwrap(),
        d.readings,
        "the bytes decode again to the same readings"
    );
    assert_eq!(quirk_names_of(Quirks::NONE), Vec::<&str>::new());
}

fn quirk_names_of(q: Quirks) -> Vec<&'static str> {
    measurements::quirk_names(q)
}

#[test]
fn quirks_round_trip_by_name() {
    let mut q = Quirks::NONE;
    assert!(q.enable("roche-date-time-clock"));
    assert_eq!(quirk_names_of(q), ["roche-date-time-clock"]);
}

#[test]
fn a_clock_that_jumped_back_does_not_hold_the_queue() {
    let mut store = Store::open_in_memory().unwrap();
    let camille = store.add_member("Camille").unwrap();
    store
        .note_device(
            &Identity {
                address: METER.into(),
                ..Identity::default()
            },
            DeviceKind::GlucoseMeter,
        )
        .unwrap();
    store.map_device_user(METER, None, camille).unwrap();
    store.commit(&[glucose(0)]).unwrap();
    let row = store
        .next_for(Sink::Mes, Some(camille), 1, Timestamp::now())
        .unwrap()[0]
        .id;
    let now = Timestamp::now();
    let soon = now
        .checked_add(jiff::SignedDuration::from_mins(10))
        .unwrap();
    store.mark_retry(row, "HTTP 503", soon).unwrap();
    assert!(
        store
            .next_for(Sink::Mes, Some(camille), 1, now)
            .unwrap()
            .is_empty()
    );
    // The hub's clock jumps two days back: the retry planned 10 minutes ahead of the old
    // time is now two days ahead, which no retry delay gives.
    let jumped = now
        .checked_sub(jiff::SignedDuration::from_hours(48))
        .unwrap();
    assert_eq!(
        store
            .next_for(Sink::Mes, Some(camille), 1, jumped)
            .unwrap()
            .len(),
        1
    );
}

#[test]
fn a_full_disk_is_a_clear_error_and_nothing_is_half_stored() {
    let mut store = Store::open_in_memory().unwrap();
    let pages: i64 = store
        .conn()
        .pragma_query_value(None, "page_count", |r| r.get(0))
        .unwrap();
    store.limit_pages(u64::try_from(pages).unwrap()).unwrap();
    let batch: Vec<Delivery> = (0..200).map(glucose).collect();
    let err = store.commit(&batch).unwrap_err();
    assert!(matches!(err, StoreError::DiskFull), "{err:?}");
    assert!(err.to_string().contains("disk"), "{err}");
    assert_eq!(
        store.measurement_count().unwrap(),
        0,
        "the batch is all or nothing"
    );
    store.limit_pages(1_000_000).unwrap();
    assert_eq!(store.commit(&batch).unwrap().len(), 200);
}

#[test]
fn an_assignment_after_the_mqtt_publication_publishes_it_again_for_the_member() {
    let mut store = Store::open_in_memory().unwrap();
    store.set_sinks(&[Sink::Mes, Sink::Mqtt]);
    let [Committed::Stored { id, member: None }] =
        store.commit(&[weighing(14_400, None)]).unwrap()[..]
    else {
        panic!("an unmapped weighing waits in the inbox");
    };
    let published: Vec<OutboxId> = store
        .next_of_sink(Sink::Mqtt, None, 10)
        .unwrap()
        .iter()
        .map(|i| i.id)
        .collect();
    assert_eq!(published.len(), 1);
    store.mark_sent_many(&published).unwrap();
    let alice = store.add_member("Alice").unwrap();
    store.assign(id, alice).unwrap();
    let again = store
        .next_of_sink(Sink::Mqtt, published.last().copied(), 10)
        .unwrap();
    assert_eq!(again.len(), 1, "published again");
    assert_eq!((again[0].measurement, again[0].member), (id, Some(alice)));
    // Not yet published: the pending row follows the assignment, no second row.
    let [Committed::Stored { id: other, .. }] =
        store.commit(&[weighing(11_620, None)]).unwrap()[..]
    else {
        panic!("stored");
    };
    store.assign(other, alice).unwrap();
    assert_eq!(store.backlog(Sink::Mqtt).unwrap().pending, 2);
}

#[test]
fn saved_settings_are_replaced_by_key_forgotten_and_audited_without_their_value() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("hub.sqlite");
    {
        let mut store = Store::open(&path).unwrap();
        let pairs = |p: &[(&str, &str)]| -> Vec<(String, String)> {
            p.iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect()
        };
        store
            .save_settings(&pairs(&[
                ("mqtt.password", "\"s3cret\""),
                ("mqtt.port", "1884"),
            ]))
            .unwrap();
        store
            .save_settings(&pairs(&[("mqtt.port", "1885")]))
            .unwrap();
        assert!(store.remove_setting("mqtt.password").unwrap());
        assert!(!store.remove_setting("mqtt.password").unwrap());
    }
    let store = Store::open(&path).unwrap();
    assert_eq!(
        store.saved_settings().unwrap(),
        [("mqtt.port".to_owned(), "1885".to_owned())]
    );
    let log = store.audit_log().unwrap();
    let events: Vec<(&str, &str)> = log
        .iter()
        .filter(|e| e.event.starts_with("setting_"))
        .map(|e| (e.event.as_str(), e.detail.as_str()))
        .collect();
    assert_eq!(events.len(), 4, "{events:?}");
    assert!(events.contains(&("setting_removed", "mqtt.password")));
    assert!(log.iter().all(|e| !e.detail.contains("s3cret")));
}
