//! The glucose meter's RACP server against the real record log on the simulated flash, driven
//! as a gateway drives it: every op code and operator, streaming order, deletion that survives a
//! remount, abort, the ATT refusals, bad operands, the procedure timeout, and a 200-record
//! catch-up. Fixtures and the client side use `relais-protocol`'s encoders and decoders.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

use std::collections::VecDeque;

use relais_board_sim::RamFlash;
use relais_board_sim::flash::PAGE_SIZE;
use relais_firmware::gatt::{AttError, Uuid};
use relais_firmware::glucose_meter::{
    Action, Error, GLUCOSE_MEASUREMENT, GLUCOSE_MEASUREMENT_CONTEXT, GlucoseMeter, Link,
    PROCEDURE_TIMEOUT_MS, RECORD_ACCESS_CONTROL_POINT,
};
use relais_firmware::record_log::{RecordLog, SequenceNumber, WhenFull};
use relais_protocol::glucose::{
    ContextMatcher, GlucoseMeasurement, GlucoseMeasurementContext, GlucoseRecord,
    GlucoseSampleLocation, GlucoseType, Health, MatchEvent, Meal, Tester,
};
use relais_protocol::racp::{Filter, RacpRequest, Records};
use relais_protocol::{Characteristic, DateTime, MedValue, Quantity, Quirks, Unit};

const PAGES: usize = 8;
type Flash = RamFlash<PAGES>;
type Meter<'f> = GlucoseMeter<&'f mut Flash>;

fn meter(flash: &mut Flash) -> Meter<'_> {
    let region = 0..(PAGES * PAGE_SIZE) as u32;
    GlucoseMeter::new(RecordLog::mount(flash, region, WhenFull::Refuse).unwrap())
}

/// The i-th measurement a patient takes: 80 + i mg/dL, once an hour.
fn measurement(i: u32) -> GlucoseMeasurement {
    GlucoseMeasurement {
        sequence_number: 0,
        base_time: DateTime::new(2024, 3, 1 + (i / 24 % 28) as u8, (i % 24) as u8, 15, 0).unwrap(),
        time_offset: Some(-60),
        glucose_concentration: Some(Quantity::new(
            MedValue::number(i64::from(80 + i % 300), -5),
            Unit::KilogramPerLitre,
        )),
        glucose_type: Some(GlucoseType::CapillaryPlasma),
        sample_location: Some(GlucoseSampleLocation::Finger),
        sensor_status_annunciation: None,
        context_information_follows: false,
    }
}

/// Its context: a meal and the tester, for two measurements in three.
fn context(i: u32) -> Option<GlucoseMeasurementContext> {
    (i % 3 != 2).then_some(GlucoseMeasurementContext {
        sequence_number: 0,
        extended_flags: None,
        carbohydrate_id: None,
        carbohydrate: None,
        meal: Some(if i.is_multiple_of(2) {
            Meal::Preprandial
        } else {
            Meal::Postprandial
        }),
        blood_ketone: false,
        tester: Some(Tester::SelfTest),
        health: Some(Health::NoHealthIssues),
        exercise_duration: None,
        exercise_intensity: None,
        medication_id: None,
        medication: None,
        hba1c: None,
    })
}

/// The record a gateway should receive for the i-th measurement stored under `seq`.
fn expected(i: u32, seq: u16) -> GlucoseRecord {
    let context = context(i).map(|c| GlucoseMeasurementContext {
        sequence_number: seq,
        ..c
    });
    GlucoseRecord {
        measurement: GlucoseMeasurement {
            sequence_number: seq,
            context_information_follows: context.is_some(),
            ..measurement(i)
        },
        context,
    }
}

/// A meter with measurements 0..n stored (no client connected).
fn stored(flash: &mut Flash, n: u32) -> Vec<SequenceNumber> {
    let mut meter = meter(flash);
    (0..n)
        .map(|i| meter.record(measurement(i), context(i), None).unwrap().0)
        .collect()
}

fn bytes(request: RacpRequest) -> Vec<u8> {
    let mut out = [0u8; 32];
    let n = request.encode(&mut out).unwrap();
    out[..n].to_vec()
}

fn seq_filter(n: u16) -> Filter {
    Filter::SequenceNumber(n)
}

/// What the client saw during one procedure.
#[derive(Debug, Default)]
struct Exchange {
    write: Option<Result<(), AttError>>,
    notifications: Vec<(Uuid, Vec<u8>)>,
    indications: Vec<Vec<u8>>,
}

impl Exchange {
    /// The notifications paired as a gateway pairs them.
    fn records(&self) -> Vec<GlucoseRecord> {
        let mut matcher = ContextMatcher::new();
        let mut records = Vec::new();
        let mut take = |events: &[MatchEvent]| {
            for event in events {
                if let MatchEvent::Record(r) = event {
                    records.push(*r);
                }
            }
        };
        for (uuid, value) in &self.notifications {
            if *uuid == GLUCOSE_MEASUREMENT {
                let m = GlucoseMeasurement::decode(value).unwrap();
                assert_eq!(m.trailing, 0);
                take(&matcher.measurement(m.value));
            } else {
                assert_eq!(*uuid, GLUCOSE_MEASUREMENT_CONTEXT);
                let c = GlucoseMeasurementContext::decode(value).unwrap().value;
                take(&[matcher.context(c)]);
            }
        }
        records.extend(matcher.flush());
        records
    }

    fn sequence_numbers(&self) -> Vec<u16> {
        self.records()
            .iter()
            .map(|r| r.measurement.sequence_number)
            .collect()
    }
}

/// Writes `request` and plays a well-behaved client: every notification goes out and every
/// indication is confirmed, until the meter is idle.
fn exchange(meter: &mut Meter<'_>, request: &[u8], link: Link) -> Exchange {
    let mut seen = Exchange::default();
    let mut pending: VecDeque<Action> = meter.racp_write(request, link).into_iter().collect();
    while let Some(action) = pending.pop_front() {
        match action {
            Action::AcceptWrite => seen.write = Some(Ok(())),
            Action::RefuseWrite(e) => seen.write = Some(Err(e)),
            Action::Notify { uuid, value } => {
                seen.notifications.push((uuid, value.to_vec()));
                pending.extend(meter.notification_sent());
            }
            Action::Indicate { uuid, value } => {
                assert_eq!(uuid, RECORD_ACCESS_CONTROL_POINT);
                seen.indications.push(value.to_vec());
                pending.extend(meter.indication_confirmed());
            }
        }
    }
    assert!(!meter.is_busy());
    seen
}

/// Every stored record, read back through the meter.
fn contents(meter: &mut Meter<'_>) -> Vec<(u32, GlucoseRecord)> {
    let exchange = exchange(meter, &[0x01, 0x01], Link::READY);
    exchange
        .records()
        .into_iter()
        .map(|r| (u32::from(r.measurement.sequence_number), r))
        .collect()
}

#[test]
fn report_all_streams_each_measurement_then_its_context_then_success() {
    let mut flash = Flash::new();
    stored(&mut flash, 20);
    let mut meter = meter(&mut flash);
    let seen = exchange(
        &mut meter,
        &bytes(RacpRequest::ReportStoredRecords(Records::All)),
        Link::READY,
    );
    assert_eq!(seen.write, Some(Ok(())));
    assert_eq!(seen.indications, [[0x06, 0x00, 0x01, 0x01]]);
    // Strict order: measurement i, then its context, then measurement i + 1.
    let order: Vec<(Uuid, u16)> = seen
        .notifications
        .iter()
        .map(|(uuid, value)| (*uuid, u16::from_le_bytes([value[1], value[2]])))
        .collect();
    let mut wanted = Vec::new();
    for i in 0..20u16 {
        wanted.push((GLUCOSE_MEASUREMENT, i));
        if context(u32::from(i)).is_some() {
            wanted.push((GLUCOSE_MEASUREMENT_CONTEXT, i));
        }
    }
    assert_eq!(order, wanted);
    let records = seen.records();
    let expect: Vec<_> = (0..20).map(|i| expected(i, i as u16)).collect();
    assert_eq!(records, expect);
}

#[test]
fn report_operators_select_records_by_sequence_number() {
    let mut flash = Flash::new();
    stored(&mut flash, 20);
    let mut meter = meter(&mut flash);
    let cases: [(Records, Vec<u16>); 9] = [
        (Records::All, (0..20).collect()),
        (Records::LessThanOrEqualTo(seq_filter(5)), (0..=5).collect()),
        (
            Records::GreaterThanOrEqualTo(seq_filter(15)),
            (15..20).collect(),
        ),
        (
            Records::WithinRangeOf {
                min: seq_filter(3),
                max: seq_filter(7),
            },
            (3..=7).collect(),
        ),
        (
            Records::WithinRangeOf {
                min: seq_filter(9),
                max: seq_filter(9),
            },
            vec![9],
        ),
        (Records::First, vec![0]),
        (Records::Last, vec![19]),
        (Records::GreaterThanOrEqualTo(seq_filter(20)), vec![]),
        (
            Records::WithinRangeOf {
                min: seq_filter(100),
                max: seq_filter(200),
            },
            vec![],
        ),
    ];
    for (records, wanted) in cases {
        let seen = exchange(
            &mut meter,
            &bytes(RacpRequest::ReportStoredRecords(records)),
            Link::READY,
        );
        assert_eq!(seen.sequence_numbers(), wanted, "{records:?}");
        let code = if wanted.is_empty() { 0x06 } else { 0x01 };
        assert_eq!(seen.indications, [[0x06, 0x00, 0x01, code]], "{records:?}");
    }
}

#[test]
fn count_answers_the_number_of_matching_records() {
    let mut flash = Flash::new();
    stored(&mut flash, 20);
    let mut meter = meter(&mut flash);
    let cases: [(Records, u16); 8] = [
        (Records::All, 20),
        (Records::LessThanOrEqualTo(seq_filter(5)), 6),
        (Records::GreaterThanOrEqualTo(seq_filter(15)), 5),
        (
            Records::WithinRangeOf {
                min: seq_filter(3),
                max: seq_filter(7),
            },
            5,
        ),
        (Records::First, 1),
        (Records::Last, 1),
        (Records::GreaterThanOrEqualTo(seq_filter(100)), 0),
        (Records::LessThanOrEqualTo(seq_filter(0)), 1),
    ];
    for (records, count) in cases {
        let seen = exchange(
            &mut meter,
            &bytes(RacpRequest::ReportNumberOfStoredRecords(records)),
            Link::READY,
        );
        let [lo, hi] = count.to_le_bytes();
        assert_eq!(seen.indications, [[0x05, 0x00, lo, hi]], "{records:?}");
        assert!(seen.notifications.is_empty());
    }
    // Counting needs no measurement notifications.
    let quiet = Link {
        measurement_notifications: false,
        ..Link::READY
    };
    assert_eq!(
        exchange(&mut meter, &[0x04, 0x01], quiet).indications,
        [[0x05, 0x00, 20, 0]]
    );
    let mut empty = Flash::new();
    let mut meter = self::meter(&mut empty);
    assert_eq!(
        exchange(&mut meter, &[0x04, 0x05], Link::READY).indications,
        [[0x05, 0x00, 0, 0]]
    );
}

#[test]
fn delete_removes_matching_records_and_they_stay_gone_after_remount() {
    let mut flash = Flash::new();
    stored(&mut flash, 20);
    let mut meter = meter(&mut flash);
    let steps: [(Records, u8); 7] = [
        (
            Records::WithinRangeOf {
                min: seq_filter(3),
                max: seq_filter(7),
            },
            0x01,
        ),
        (Records::First, 0x01),
        (Records::Last, 0x01),
        (Records::LessThanOrEqualTo(seq_filter(1)), 0x01),
        (Records::GreaterThanOrEqualTo(seq_filter(17)), 0x01),
        (
            Records::WithinRangeOf {
                min: seq_filter(4),
                max: seq_filter(6),
            },
            0x06,
        ),
        (Records::GreaterThanOrEqualTo(seq_filter(50)), 0x06),
    ];
    for (records, code) in steps {
        let seen = exchange(
            &mut meter,
            &bytes(RacpRequest::DeleteStoredRecords(records)),
            Link::READY,
        );
        assert_eq!(seen.indications, [[0x06, 0x00, 0x02, code]], "{records:?}");
    }
    let left: Vec<u32> = [2].into_iter().chain(8..=16).collect();
    let mut meter = self::meter(&mut flash);
    assert_eq!(
        contents(&mut meter).iter().map(|r| r.0).collect::<Vec<_>>(),
        left
    );
    assert_eq!(
        exchange(&mut meter, &[0x04, 0x01], Link::READY).indications,
        [[0x05, 0x00, 10, 0]]
    );

    let seen = exchange(&mut meter, &bytes(RacpRequest::delete_all()), Link::READY);
    assert_eq!(seen.indications, [[0x06, 0x00, 0x02, 0x01]]);
    let mut meter = self::meter(&mut flash);
    assert_eq!(meter.log().count(), 0);
    let (seq, _) = meter.record(measurement(20), context(20), None).unwrap();
    assert_eq!(
        seq.get(),
        20,
        "numbers are never reused, even after everything was deleted"
    );
}

#[test]
fn abort_stops_a_report_mid_stream_and_answers_success() {
    let mut flash = Flash::new();
    stored(&mut flash, 20);
    let mut meter = meter(&mut flash);
    let start = meter.racp_write(&[0x01, 0x01], Link::READY);
    assert!(matches!(
        &start[..],
        [Action::AcceptWrite, Action::Notify { .. }]
    ));
    let context_0 = meter.notification_sent();
    assert!(
        matches!(&context_0[..], [Action::Notify { uuid, .. }] if *uuid == GLUCOSE_MEASUREMENT_CONTEXT)
    );
    let measurement_1 = meter.notification_sent();
    assert!(
        matches!(&measurement_1[..], [Action::Notify { uuid, .. }] if *uuid == GLUCOSE_MEASUREMENT)
    );

    let abort = meter.racp_write(&bytes(RacpRequest::abort()), Link::READY);
    assert_eq!(abort.len(), 2);
    assert_eq!(abort[0], Action::AcceptWrite);
    assert!(
        matches!(&abort[1], Action::Indicate { value, .. } if value[..] == [0x06, 0x00, 0x03, 0x01])
    );
    assert!(
        meter.notification_sent().is_empty(),
        "the measurement that was out is the last"
    );
    assert!(meter.indication_confirmed().is_empty());
    assert!(!meter.is_busy());
    assert_eq!(meter.log().count(), 20, "abort deletes nothing");

    // Abort with nothing running also succeeds: there is nothing left to stop.
    let idle = exchange(&mut meter, &[0x03, 0x00], Link::READY);
    assert_eq!(idle.indications, [[0x06, 0x00, 0x03, 0x01]]);
}

#[test]
fn abort_while_the_final_indication_awaits_confirmation_is_answered_after_it() {
    let mut flash = Flash::new();
    stored(&mut flash, 1);
    let mut meter = meter(&mut flash);
    meter.racp_write(&[0x04, 0x01], Link::READY);
    let abort = meter.racp_write(&[0x03, 0x00], Link::READY);
    assert_eq!(&abort[..], [Action::AcceptWrite]);
    let after = meter.indication_confirmed();
    assert!(
        matches!(&after[..], [Action::Indicate { value, .. }] if value[..] == [0x06, 0x00, 0x03, 0x01])
    );
    assert!(meter.indication_confirmed().is_empty());
    assert!(!meter.is_busy());
}

#[test]
fn a_request_during_a_procedure_is_refused_with_procedure_already_in_progress() {
    let mut flash = Flash::new();
    stored(&mut flash, 20);
    let mut meter = meter(&mut flash);
    meter.racp_write(&[0x01, 0x01], Link::READY);
    for request in [
        &[0x04, 0x01][..],
        &[0x02, 0x01],
        &[0x01, 0x05],
        &[0x03, 0x01],
        &[0x42],
    ] {
        let refused = meter.racp_write(request, Link::READY);
        assert_eq!(
            &refused[..],
            [Action::RefuseWrite(AttError::ProcedureAlreadyInProgress)]
        );
        assert_eq!(AttError::ProcedureAlreadyInProgress.code(), 0xFE);
    }
    // The report goes on to the end, untouched.
    let mut sent = 1;
    let mut last = meter.notification_sent();
    while let [Action::Notify { .. }] = &last[..] {
        sent += 1;
        last = meter.notification_sent();
    }
    assert_eq!(sent, 20 + 14, "20 measurements, 14 contexts");
    assert!(
        matches!(&last[..], [Action::Indicate { value, .. }] if value[..] == [0x06, 0x00, 0x01, 0x01])
    );
    // Still in progress until the client confirms.
    assert_eq!(
        &meter.racp_write(&[0x04, 0x01], Link::READY)[..],
        [Action::RefuseWrite(AttError::ProcedureAlreadyInProgress)]
    );
    meter.indication_confirmed();
    assert_eq!(
        exchange(&mut meter, &[0x04, 0x01], Link::READY).indications,
        [[0x05, 0x00, 20, 0]]
    );
    assert_eq!(meter.log().count(), 20);
}

#[test]
fn an_unbonded_link_is_refused_with_insufficient_authentication() {
    let mut flash = Flash::new();
    stored(&mut flash, 5);
    let mut meter = meter(&mut flash);
    let stranger = Link {
        bonded: false,
        ..Link::READY
    };
    for request in [
        &[0x01, 0x01][..],
        &[0x02, 0x01],
        &[0x04, 0x01],
        &[0x03, 0x00],
    ] {
        let seen = exchange(&mut meter, request, stranger);
        assert_eq!(seen.write, Some(Err(AttError::InsufficientAuthentication)));
        assert_eq!(AttError::InsufficientAuthentication.code(), 0x05);
        assert!(seen.notifications.is_empty() && seen.indications.is_empty());
    }
    assert_eq!(meter.log().count(), 5);
    // Nor does a stranger get live measurements.
    let (_, live) = meter
        .record(measurement(5), context(5), Some(stranger))
        .unwrap();
    assert!(live.is_empty());
}

#[test]
fn racp_without_indications_is_refused_with_cccd_improperly_configured() {
    let mut flash = Flash::new();
    stored(&mut flash, 5);
    let mut meter = meter(&mut flash);
    let no_indications = Link {
        racp_indications: false,
        ..Link::READY
    };
    let seen = exchange(&mut meter, &[0x02, 0x01], no_indications);
    assert_eq!(seen.write, Some(Err(AttError::CccdImproperlyConfigured)));
    assert_eq!(AttError::CccdImproperlyConfigured.code(), 0xFD);
    // A report needs Glucose Measurement notifications too.
    let no_notifications = Link {
        measurement_notifications: false,
        ..Link::READY
    };
    let seen = exchange(&mut meter, &[0x01, 0x01], no_notifications);
    assert_eq!(seen.write, Some(Err(AttError::CccdImproperlyConfigured)));
    assert_eq!(meter.log().count(), 5);
}

#[test]
fn contexts_are_left_out_when_the_client_did_not_enable_them() {
    let mut flash = Flash::new();
    stored(&mut flash, 6);
    let mut meter = meter(&mut flash);
    let no_contexts = Link {
        context_notifications: false,
        ..Link::READY
    };
    let seen = exchange(&mut meter, &[0x01, 0x01], no_contexts);
    assert!(
        seen.notifications
            .iter()
            .all(|(uuid, _)| *uuid == GLUCOSE_MEASUREMENT)
    );
    assert_eq!(seen.notifications.len(), 6);
}

#[test]
fn bad_requests_get_the_right_response_code_and_change_nothing() {
    let mut flash = Flash::new();
    stored(&mut flash, 20);
    let mut meter = meter(&mut flash);
    let before = contents(&mut meter);
    let time = [0xE8, 0x07, 0x03, 0x05, 0x08, 0x1E, 0x0F];
    let facing_time = |op: u8| [&[op, 0x03, 0x02][..], &time].concat();
    let cases: Vec<(Vec<u8>, [u8; 4])> = vec![
        (vec![0x01, 0x00], [0x06, 0x00, 0x01, 0x03]),
        (vec![0x02, 0x00], [0x06, 0x00, 0x02, 0x03]),
        (vec![0x01, 0x07], [0x06, 0x00, 0x01, 0x04]),
        (vec![0x02, 0xFF], [0x06, 0x00, 0x02, 0x04]),
        (vec![0x02, 0x02], [0x06, 0x00, 0x02, 0x05]),
        (vec![0x02, 0x03, 0x01, 0x05], [0x06, 0x00, 0x02, 0x05]),
        (
            vec![0x02, 0x04, 0x01, 20, 0, 10, 0],
            [0x06, 0x00, 0x02, 0x05],
        ),
        (vec![0x02, 0x01, 0x00], [0x06, 0x00, 0x02, 0x05]),
        (vec![0x02, 0x03, 0x07, 0x01, 0x00], [0x06, 0x00, 0x02, 0x09]),
        (facing_time(0x02), [0x06, 0x00, 0x02, 0x09]),
        (facing_time(0x01), [0x06, 0x00, 0x01, 0x09]),
        (facing_time(0x04), [0x06, 0x00, 0x04, 0x09]),
        (vec![0x03, 0x01], [0x06, 0x00, 0x03, 0x03]),
        (vec![0x09, 0x01], [0x06, 0x00, 0x09, 0x02]),
        (vec![0x05, 0x00, 0x01, 0x00], [0x06, 0x00, 0x05, 0x02]),
        (vec![], [0x06, 0x00, 0x00, 0x02]),
    ];
    for (request, response) in cases {
        let seen = exchange(&mut meter, &request, Link::READY);
        assert_eq!(seen.write, Some(Ok(())), "{request:02x?}");
        assert_eq!(seen.indications, [response], "{request:02x?}");
        assert!(seen.notifications.is_empty(), "{request:02x?}");
    }
    assert_eq!(contents(&mut meter), before);
    let mut remounted = self::meter(&mut flash);
    assert_eq!(
        contents(&mut remounted),
        before,
        "nothing changed in flash either"
    );
}

#[test]
fn a_stalled_procedure_is_abandoned_after_30_seconds() {
    let mut flash = Flash::new();
    stored(&mut flash, 20);
    let mut meter = meter(&mut flash);
    meter.tick(1_000);
    meter.racp_write(&[0x01, 0x01], Link::READY);
    meter.tick(21_000);
    meter.notification_sent(); // progress restarts the clock
    assert!(!meter.tick(21_000 + PROCEDURE_TIMEOUT_MS - 1));
    assert!(meter.is_busy());
    assert!(meter.tick(21_000 + PROCEDURE_TIMEOUT_MS));
    assert!(!meter.is_busy());
    assert!(
        meter.notification_sent().is_empty(),
        "a late acknowledgement changes nothing"
    );
    let seen = exchange(&mut meter, &[0x04, 0x01], Link::READY);
    assert_eq!(seen.indications, [[0x05, 0x00, 20, 0]]);
}

#[test]
fn disconnecting_ends_the_procedure() {
    let mut flash = Flash::new();
    stored(&mut flash, 3);
    let mut meter = meter(&mut flash);
    meter.racp_write(&[0x01, 0x01], Link::READY);
    meter.disconnected();
    assert!(!meter.is_busy());
    assert!(meter.notification_sent().is_empty());
    assert_eq!(
        exchange(&mut meter, &[0x01, 0x01], Link::READY).sequence_numbers(),
        [0, 1, 2]
    );
}

#[test]
fn a_new_measurement_is_notified_live_to_a_bonded_subscribed_client() {
    let mut flash = Flash::new();
    stored(&mut flash, 3);
    let mut meter = meter(&mut flash);
    let (seq, live) = meter
        .record(measurement(3), context(3), Some(Link::READY))
        .unwrap();
    assert_eq!(seq.get(), 3);
    let seen = Exchange {
        notifications: live
            .iter()
            .map(|a| match a {
                Action::Notify { uuid, value } => (*uuid, value.to_vec()),
                other => panic!("{other:?}"),
            })
            .collect(),
        ..Exchange::default()
    };
    assert_eq!(seen.records(), [expected(3, 3)]);
    assert_eq!(meter.read(seq).unwrap(), Some(expected(3, 3)));

    let no_contexts = Link {
        context_notifications: false,
        ..Link::READY
    };
    let (_, live) = meter
        .record(measurement(4), context(4), Some(no_contexts))
        .unwrap();
    assert_eq!(live.len(), 1);
    let (_, live) = meter.record(measurement(5), context(5), None).unwrap();
    assert!(live.is_empty(), "nobody connected");

    // During a report a new measurement is stored quietly; the report sends it.
    meter.racp_write(&[0x01, 0x03, 0x01, 5, 0], Link::READY);
    let (late, live) = meter
        .record(measurement(6), context(6), Some(Link::READY))
        .unwrap();
    assert!(live.is_empty());
    let mut reported = vec![];
    let mut next = meter.notification_sent();
    while let [Action::Notify { uuid, value }] = &next[..] {
        if *uuid == GLUCOSE_MEASUREMENT {
            reported.push(u16::from_le_bytes([value[1], value[2]]));
        }
        next = meter.notification_sent();
    }
    assert_eq!(
        reported,
        [late.get() as u16],
        "5 went first; 6 came in during the report"
    );
}

#[test]
fn a_gateway_catches_up_200_records_from_the_last_sequence_number_it_saw() {
    let mut flash = Flash::new();
    stored(&mut flash, 200);
    let mut meter = meter(&mut flash);
    // The gateway stored up to 57 last time; it asks for the rest, as relais' gateway does.
    let request = RacpRequest::records_after(Some(57), Quirks::NONE);
    assert_eq!(bytes(request), [0x01, 0x03, 0x01, 58, 0]);
    let count = exchange(&mut meter, &[0x04, 0x03, 0x01, 58, 0], Link::READY);
    assert_eq!(count.indications, [[0x05, 0x00, 142, 0]]);
    let seen = exchange(&mut meter, &bytes(request), Link::READY);
    assert_eq!(seen.indications, [[0x06, 0x00, 0x01, 0x01]]);
    let expect: Vec<_> = (58..200).map(|i| expected(i, i as u16)).collect();
    assert_eq!(seen.records(), expect);
    // Then it deletes what it holds; the next catch-up finds nothing new.
    let delete = RacpRequest::DeleteStoredRecords(Records::LessThanOrEqualTo(seq_filter(199)));
    let deleted = exchange(&mut meter, &bytes(delete), Link::READY);
    assert_eq!(deleted.indications, [[0x06, 0x00, 0x02, 0x01]]);
    let mut meter = self::meter(&mut flash);
    let again = exchange(
        &mut meter,
        &bytes(RacpRequest::records_after(Some(199), Quirks::NONE)),
        Link::READY,
    );
    assert_eq!(again.indications, [[0x06, 0x00, 0x01, 0x06]]);
    assert!(again.notifications.is_empty());
    let (next, _) = meter.record(measurement(200), None, None).unwrap();
    assert_eq!(next.get(), 200);
}

#[test]
fn measurements_that_cannot_be_encoded_are_refused_and_spend_no_number() {
    let mut flash = Flash::new();
    let mut meter = meter(&mut flash);
    let wrong_unit = GlucoseMeasurement {
        glucose_concentration: Some(Quantity::new(MedValue::number(5, 0), Unit::Gram)),
        ..measurement(0)
    };
    assert!(matches!(
        meter.record(wrong_unit, None, None),
        Err(Error::Encode(_))
    ));
    assert_eq!(meter.record(measurement(0), None, None).unwrap().0.get(), 0);
}

#[test]
fn the_meter_refuses_a_65537th_measurement_rather_than_reuse_a_number() {
    let mut flash = RamFlash::<3>::new();
    let region = 0..(3 * PAGE_SIZE) as u32;
    let log = RecordLog::mount(&mut flash, region, WhenFull::DropOldest).unwrap();
    let mut meter = GlucoseMeter::new(log);
    for i in 0..=u32::from(u16::MAX) {
        meter.record(measurement(i), None, None).unwrap();
    }
    assert_eq!(meter.log().last().unwrap().get(), 0xFFFF);
    assert_eq!(
        meter.record(measurement(0), None, None),
        Err(Error::SequenceNumbersExhausted)
    );
}
