use relais_protocol::glucose::{
    GlucoseMeasurement, GlucoseMeasurementContext, GlucoseSampleLocation, GlucoseType, Meal,
};
use relais_protocol::racp::{OpCode, RacpResponse, ResponseCode};
use relais_protocol::{Characteristic as _, DateTime, MedValue, Quantity, Quirks, Unit, uuid};

use super::{AbortReason, GlucoseSession, Input, Output};

fn measurement(sequence: u16, context_follows: bool) -> Vec<u8> {
    let m = GlucoseMeasurement {
        sequence_number: sequence,
        base_time: DateTime::new(2024, 3, 1, 8, 0, 0).unwrap(),
        time_offset: None,
        glucose_concentration: Some(Quantity::new(
            MedValue::number(95, -5),
            Unit::KilogramPerLitre,
        )),
        glucose_type: Some(GlucoseType::CapillaryWholeBlood),
        sample_location: Some(GlucoseSampleLocation::Finger),
        sensor_status_annunciation: None,
        context_information_follows: context_follows,
    };
    let mut buf = [0u8; 64];
    let n = m.encode(&mut buf).unwrap();
    buf[..n].to_vec()
}

fn context(sequence: u16) -> Vec<u8> {
    let c = GlucoseMeasurementContext {
        sequence_number: sequence,
        extended_flags: None,
        carbohydrate_id: None,
        carbohydrate: None,
        meal: Some(Meal::Fasting),
        blood_ketone: false,
        tester: None,
        health: None,
        exercise_duration: None,
        exercise_intensity: None,
        medication_id: None,
        medication: None,
        hba1c: None,
    };
    let mut buf = [0u8; 64];
    let n = c.encode(&mut buf).unwrap();
    buf[..n].to_vec()
}

fn racp(code: ResponseCode) -> Vec<u8> {
    let r = RacpResponse::ResponseCode {
        request_op_code: OpCode::ReportStoredRecords,
        response_code: code,
    };
    let mut buf = [0u8; 8];
    let n = r.encode(&mut buf).unwrap();
    buf[..n].to_vec()
}

fn count(records: u16) -> Vec<u8> {
    let mut buf = [0u8; 8];
    let n = RacpResponse::NumberOfStoredRecords(records)
        .encode(&mut buf)
        .unwrap();
    buf[..n].to_vec()
}

/// Starts `s` and answers its count request: the report request follows.
fn counted(s: &mut GlucoseSession, records: u16) -> Vec<Output> {
    s.start();
    s.handle(note(uuid::RECORD_ACCESS_CONTROL_POINT, &count(records)))
}

fn note(uuid: u16, value: &[u8]) -> Input<'_> {
    Input::Notification { uuid, value }
}

fn records(outputs: &[Output]) -> Vec<u16> {
    outputs
        .iter()
        .filter_map(|o| match o {
            Output::Record { record, .. } => Some(record.measurement.sequence_number),
            _ => None,
        })
        .collect()
}

#[test]
fn start_counts_then_asks_for_records_after_the_last_committed_one() {
    let mut s = GlucoseSession::new(Some(41), Quirks::NONE);
    // 04 03 01 <42 LE>: report the number of stored records >= sequence number 42.
    assert_eq!(
        s.start(),
        vec![Output::WriteRacp(vec![0x04, 0x03, 0x01, 42, 0])]
    );
    assert!(s.start().is_empty(), "only once");
    // 01 03 01 <42 LE>: report stored records, greater than or equal to, sequence number.
    assert_eq!(
        s.handle(note(uuid::RECORD_ACCESS_CONTROL_POINT, &count(5))),
        vec![
            Output::Expected(5),
            Output::WriteRacp(vec![0x01, 0x03, 0x01, 42, 0])
        ]
    );
    assert_eq!(s.expected(), Some(5));
}

#[test]
fn a_count_of_zero_is_done_without_a_report() {
    let mut s = GlucoseSession::new(Some(7), Quirks::NONE);
    assert_eq!(
        counted(&mut s, 0),
        vec![
            Output::Expected(0),
            Output::Done {
                last_sequence: Some(7)
            }
        ]
    );
    assert!(s.is_finished());
}

#[test]
fn a_meter_that_cannot_count_is_caught_up_anyway() {
    let mut s = GlucoseSession::new(None, Quirks::NONE);
    s.start();
    let refused = RacpResponse::ResponseCode {
        request_op_code: OpCode::ReportNumberOfStoredRecords,
        response_code: ResponseCode::OpCodeNotSupported,
    };
    let mut buf = [0u8; 8];
    let n = refused.encode(&mut buf).unwrap();
    assert_eq!(
        s.handle(note(uuid::RECORD_ACCESS_CONTROL_POINT, &buf[..n])),
        vec![Output::WriteRacp(vec![0x01, 0x01])]
    );
    assert_eq!(s.expected(), None);
    assert_eq!(
        records(&s.handle(note(uuid::GLUCOSE_MEASUREMENT, &measurement(1, false)))),
        vec![1]
    );
}

#[test]
fn fewer_records_than_announced_still_end_the_catch_up() {
    let mut s = GlucoseSession::new(None, Quirks::NONE);
    counted(&mut s, 3);
    s.handle(note(uuid::GLUCOSE_MEASUREMENT, &measurement(1, false)));
    s.handle(note(uuid::GLUCOSE_MEASUREMENT, &measurement(3, false)));
    s.handle(Input::Accepted(1));
    s.handle(Input::Accepted(3));
    s.handle(note(
        uuid::RECORD_ACCESS_CONTROL_POINT,
        &racp(ResponseCode::Success),
    ));
    assert_eq!(
        s.handle(Input::Timeout),
        vec![Output::Done {
            last_sequence: Some(3)
        }]
    );
    assert_eq!((s.expected(), s.received()), (Some(3), 2));
}

#[test]
fn a_timeout_while_counting_aborts() {
    let mut s = GlucoseSession::new(Some(4), Quirks::NONE);
    s.start();
    let out = s.handle(Input::Timeout);
    assert!(out.contains(&Output::Aborted {
        reason: AbortReason::Timeout,
        last_sequence: Some(4)
    }));
}

#[test]
fn a_context_is_attached_to_its_measurement_and_done_waits_for_acceptance() {
    let mut s = GlucoseSession::new(None, Quirks::NONE);
    counted(&mut s, 3);
    assert!(
        s.handle(note(uuid::GLUCOSE_MEASUREMENT, &measurement(1, true)))
            .is_empty(),
        "held until its context"
    );
    let out = s.handle(note(uuid::GLUCOSE_MEASUREMENT_CONTEXT, &context(1)));
    let [Output::Record { record, raw }] = out.as_slice() else {
        panic!("{out:?}")
    };
    assert_eq!(record.context.unwrap().meal, Some(Meal::Fasting));
    // The bytes as received travel with the record.
    assert_eq!(
        raw.payloads,
        vec![
            crate::payload::Payload::characteristic(
                uuid::GLUCOSE_MEASUREMENT,
                measurement(1, true)
            ),
            crate::payload::Payload::characteristic(uuid::GLUCOSE_MEASUREMENT_CONTEXT, context(1)),
        ]
    );
    let out = s.handle(note(uuid::GLUCOSE_MEASUREMENT, &measurement(2, false)));
    assert_eq!(records(&out), vec![2]);
    // The report ends before the consumer accepted: no Done yet.
    assert!(
        s.handle(note(
            uuid::RECORD_ACCESS_CONTROL_POINT,
            &racp(ResponseCode::Success)
        ))
        .is_empty()
    );
    assert!(s.is_settling());
    // A record overtaken by the response is still taken while settling.
    let late = s.handle(note(uuid::GLUCOSE_MEASUREMENT, &measurement(3, false)));
    assert_eq!(records(&late), vec![3]);
    assert!(
        s.handle(Input::Timeout).is_empty(),
        "settled, still unaccepted"
    );
    assert!(s.handle(Input::Accepted(1)).is_empty());
    assert!(s.handle(Input::Accepted(2)).is_empty());
    assert_eq!(
        s.handle(Input::Accepted(3)),
        vec![Output::Done {
            last_sequence: Some(3)
        }]
    );
    assert!(s.is_finished());
}

#[test]
fn no_records_found_is_done_with_the_same_sequence_number() {
    let mut s = GlucoseSession::new(Some(7), Quirks::NONE);
    counted(&mut s, 3);
    assert_eq!(
        s.handle(note(
            uuid::RECORD_ACCESS_CONTROL_POINT,
            &racp(ResponseCode::NoRecordsFound)
        )),
        vec![Output::Done {
            last_sequence: Some(7)
        }]
    );
}

#[test]
fn a_timeout_aborts_and_leaves_an_incomplete_record_for_the_next_catch_up() {
    let mut s = GlucoseSession::new(None, Quirks::NONE);
    counted(&mut s, 3);
    s.handle(note(uuid::GLUCOSE_MEASUREMENT, &measurement(1, true)));
    let out = s.handle(Input::Timeout);
    // Its announced context never came: handing it over would store it without its meal,
    // and the next catch-up would not ask for it again.
    assert!(records(&out).is_empty(), "{out:?}");
    assert!(out.contains(&Output::WriteRacp(vec![0x03, 0x00])));
    assert!(out.contains(&Output::Aborted {
        reason: AbortReason::Timeout,
        last_sequence: None
    }));
    assert!(s.is_finished());
    assert!(s.handle(Input::Timeout).is_empty());
}

#[test]
fn a_refusal_aborts() {
    let mut s = GlucoseSession::new(None, Quirks::NONE);
    counted(&mut s, 3);
    let out = s.handle(note(
        uuid::RECORD_ACCESS_CONTROL_POINT,
        &racp(ResponseCode::OpCodeNotSupported),
    ));
    assert_eq!(
        out,
        vec![Output::Aborted {
            reason: AbortReason::Refused(ResponseCode::OpCodeNotSupported),
            last_sequence: None
        }]
    );
}

#[test]
fn garbage_is_skipped_without_stalling() {
    let mut s = GlucoseSession::new(None, Quirks::NONE);
    counted(&mut s, 3);
    assert!(
        s.handle(note(uuid::GLUCOSE_MEASUREMENT, &[0x00, 0x01]))
            .is_empty()
    );
    assert!(
        s.handle(note(uuid::RECORD_ACCESS_CONTROL_POINT, &[0xFF]))
            .is_empty()
    );
    // A read result of another characteristic is ignored.
    assert!(s.handle(note(uuid::MODEL_NUMBER_STRING, b"RS")).is_empty());
    assert_eq!(s.skipped(), 2);
    let out = s.handle(note(uuid::GLUCOSE_MEASUREMENT, &measurement(3, false)));
    assert_eq!(records(&out), vec![3]);
    s.handle(Input::Accepted(3));
    assert!(
        s.handle(note(
            uuid::RECORD_ACCESS_CONTROL_POINT,
            &racp(ResponseCode::Success)
        ))
        .is_empty()
    );
    assert_eq!(
        s.handle(Input::Timeout),
        vec![Output::Done {
            last_sequence: Some(3)
        }]
    );
}

#[test]
fn old_and_repeated_records_are_dropped() {
    let mut s = GlucoseSession::new(Some(10), Quirks::NONE);
    counted(&mut s, 3);
    let mut seen = Vec::new();
    for sequence in [9, 10, 11, 11, 12, 12] {
        seen.extend(records(&s.handle(note(
            uuid::GLUCOSE_MEASUREMENT,
            &measurement(sequence, false),
        ))));
    }
    assert_eq!(seen, vec![11, 12]);
}
