//! The personalities bound to the GATT core, driven as a BLE stack would drive them: the bytes
//! a gateway receives, when it receives them, and what happens when the link drops.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

use core::cell::RefCell;

use relais_board_sim::SimClock;
use relais_board_sim::cuff::{
    COUNTS_PER_MMHG, Cuff, CuffConfig, PressureSensor, PumpPin, Subject, ValvePin,
};
use relais_board_sim::hx71x::{ClockPin, DataPin, Hx71x};
use relais_board_sim::load_cell::LoadCell;
use relais_firmware::cuff::{BloodPressureCuff, CycleConfig};
use relais_firmware::devices::{DeviceActions, cuff, scale};
use relais_firmware::drivers::hx711::{Gain, Hx711};
use relais_firmware::gatt::{Action, BondId, ConnId, Event, Handle, Uuid, WriteKind};
use relais_firmware::scale::{Calibration, RamOnly, Scale};
use relais_protocol::blood_pressure::{
    BloodPressureFeature, BloodPressureMeasurement, IntermediateCuffPressure,
};
use relais_protocol::weight_scale::{WeightMeasurement, WeightScaleFeature};
use relais_protocol::{Characteristic, uuid};

const GATEWAY: ConnId = ConnId(7);

fn value_handle(table: &relais_firmware::gatt::Table, id: u16) -> Handle {
    table.value_handle(Uuid::sig(id)).unwrap()
}

fn subscribe(value: Handle, bits: u16) -> Event<'static> {
    let data: &'static [u8] = if bits == 1 { &[1, 0] } else { &[2, 0] };
    Event::Write {
        conn: GATEWAY,
        handle: Handle(value.0 + 1),
        data,
        kind: WriteKind::Request,
    }
}

fn indications(actions: &DeviceActions, handle: Handle) -> Vec<Vec<u8>> {
    actions
        .iter()
        .filter_map(|a| match a {
            Action::Indicate {
                conn,
                handle: h,
                value,
            } if *conn == GATEWAY && *h == handle => Some(value.to_vec()),
            _ => None,
        })
        .collect()
}

fn notifications(actions: &DeviceActions, handle: Handle) -> Vec<Vec<u8>> {
    actions
        .iter()
        .filter_map(|a| match a {
            Action::Notify {
                conn,
                handle: h,
                value,
            } if *conn == GATEWAY && *h == handle => Some(value.to_vec()),
            _ => None,
        })
        .collect()
}

fn read_response(actions: &DeviceActions) -> Vec<u8> {
    actions
        .iter()
        .find_map(|a| match a {
            Action::Respond { result: Ok(v), .. } => Some(v.to_vec()),
            _ => None,
        })
        .expect("a read response")
}

#[test]
fn a_weighing_taken_offline_is_indicated_on_the_next_connection_until_confirmed() {
    let clock = SimClock::new();
    let mut cell = LoadCell::new(11);
    cell.step_on(5_000, 72.0).unwrap();
    cell.step_off(20_000).unwrap();
    let chip = RefCell::new(Hx71x::new(&clock, cell, 10));
    let adc = Hx711::new(
        ClockPin(&chip),
        DataPin(&chip),
        clock.delay(),
        Gain::ChannelA128,
    )
    .unwrap();
    let mut device =
        scale::ScaleDevice::new(Scale::new(adc, Calibration::NOMINAL, RamOnly).unwrap());
    let measurement = value_handle(&scale::TABLE, uuid::WEIGHT_MEASUREMENT);

    // Nobody connected while the person stands on the scale.
    while clock.now_ms() < 25_000 {
        clock.advance_ms(5);
        let actions = device.poll(clock.now_ms()).unwrap();
        assert!(actions.is_empty(), "nothing to send to: {actions:?}");
    }
    assert_eq!(device.scale().pending_count(), 1);

    // The gateway connects and subscribes: the weighing is indicated at once.
    device
        .handle(Event::Connected {
            conn: GATEWAY,
            bond: None,
        })
        .unwrap();
    let actions = device.handle(subscribe(measurement, 2)).unwrap();
    let sent = indications(&actions, measurement);
    assert_eq!(sent.len(), 1, "{actions:?}");
    let weight = WeightMeasurement::decode(&sent[0]).unwrap().value;
    let kg = weight.weight.to_f64().unwrap();
    assert!((kg - 72.0).abs() < 8.0, "{kg} kg (uncalibrated unit)");

    // The link drops before the confirmation: the weighing is kept and sent again.
    device
        .handle(Event::Disconnected { conn: GATEWAY })
        .unwrap();
    assert_eq!(device.scale().pending_count(), 1);
    device
        .handle(Event::Connected {
            conn: GATEWAY,
            bond: None,
        })
        .unwrap();
    let again = indications(
        &device.handle(subscribe(measurement, 2)).unwrap(),
        measurement,
    );
    assert_eq!(again, sent);

    // Confirmed: delivered, nothing more to send.
    let actions = device
        .handle(Event::IndicationConfirmed { conn: GATEWAY })
        .unwrap();
    assert!(indications(&actions, measurement).is_empty());
    assert_eq!(device.scale().pending_count(), 0);
}

#[test]
fn the_scale_serves_its_feature_and_refuses_writes_to_it() {
    let clock = SimClock::new();
    let chip = RefCell::new(Hx71x::new(&clock, LoadCell::new(12), 10));
    let adc = Hx711::new(
        ClockPin(&chip),
        DataPin(&chip),
        clock.delay(),
        Gain::ChannelA128,
    )
    .unwrap();
    let mut device =
        scale::ScaleDevice::new(Scale::new(adc, Calibration::NOMINAL, RamOnly).unwrap());
    let feature = value_handle(&scale::TABLE, uuid::WEIGHT_SCALE_FEATURE);
    device
        .handle(Event::Connected {
            conn: GATEWAY,
            bond: Some(BondId(1)),
        })
        .unwrap();
    let bytes = read_response(
        &device
            .handle(Event::Read {
                conn: GATEWAY,
                handle: feature,
                offset: 0,
            })
            .unwrap(),
    );
    let decoded = WeightScaleFeature::decode(&bytes).unwrap().value;
    assert_eq!(decoded, device.scale().feature());
    let refused = device
        .handle(Event::Write {
            conn: GATEWAY,
            handle: feature,
            data: &[0; 4],
            kind: WriteKind::Request,
        })
        .unwrap();
    assert!(matches!(
        refused.first(),
        Some(Action::Respond { result: Err(_), .. })
    ));
}

#[test]
fn a_cuff_cycle_notifies_the_pressure_then_indicates_the_result() {
    let clock = SimClock::new();
    let subject = Subject {
        systolic_mmhg: 132.0,
        diastolic_mmhg: 86.0,
        heart_rate_bpm: 70.0,
        ..Subject::typical()
    };
    let sim = RefCell::new(Cuff::new(&clock, subject, CuffConfig::default(), 5));
    let chip = RefCell::new(Hx71x::new(&clock, PressureSensor(&sim), 40));
    let adc = Hx711::new(
        ClockPin(&chip),
        DataPin(&chip),
        clock.delay(),
        Gain::ChannelA128,
    )
    .unwrap();
    let config = CycleConfig::new(COUNTS_PER_MMHG as f32);
    let bp = BloodPressureCuff::new(adc, PumpPin(&sim), ValvePin(&sim), config).unwrap();
    let mut device = cuff::CuffDevice::new(bp);
    let measurement = value_handle(&cuff::TABLE, uuid::BLOOD_PRESSURE_MEASUREMENT);
    let intermediate = value_handle(&cuff::TABLE, uuid::INTERMEDIATE_CUFF_PRESSURE);
    let feature = value_handle(&cuff::TABLE, uuid::BLOOD_PRESSURE_FEATURE);

    device
        .handle(Event::Connected {
            conn: GATEWAY,
            bond: None,
        })
        .unwrap();
    device.handle(subscribe(measurement, 2)).unwrap();
    device.handle(subscribe(intermediate, 1)).unwrap();
    let bytes = read_response(
        &device
            .handle(Event::Read {
                conn: GATEWAY,
                handle: feature,
                offset: 0,
            })
            .unwrap(),
    );
    assert!(
        BloodPressureFeature::decode(&bytes)
            .unwrap()
            .value
            .body_movement_detection
    );

    device.start(clock.now_ms(), Some(1)).unwrap();
    let mut pressures = Vec::new();
    let mut results = Vec::new();
    while results.is_empty() {
        clock.advance_ms(1);
        assert!(clock.now_ms() < 300_000, "the cycle never ended");
        let actions = device.poll(clock.now_ms()).unwrap();
        for bytes in notifications(&actions, intermediate) {
            let icp = IntermediateCuffPressure::decode(&bytes).unwrap().value;
            pressures.push(icp.current_cuff_pressure.to_f64().unwrap());
        }
        results.extend(indications(&actions, measurement));
    }
    assert!(
        pressures.len() > 20,
        "{} progress notifications",
        pressures.len()
    );
    assert!(pressures.iter().cloned().fold(0.0, f64::max) > 132.0);
    let result = BloodPressureMeasurement::decode(&results[0]).unwrap().value;
    let systolic = result.systolic.to_f64().unwrap();
    let diastolic = result.diastolic.to_f64().unwrap();
    assert!((systolic - 132.0).abs() <= 10.0, "{systolic}");
    assert!((diastolic - 86.0).abs() <= 10.0, "{diastolic}");
    assert_eq!(result.user_id, Some(1));
    assert!(device.pending().is_some());
    device
        .handle(Event::IndicationConfirmed { conn: GATEWAY })
        .unwrap();
    assert!(device.pending().is_none());
}

#[test]
fn a_cuff_result_without_a_gateway_waits_for_one() {
    let clock = SimClock::new();
    let sim = RefCell::new(Cuff::new(
        &clock,
        Subject::typical(),
        CuffConfig::default(),
        9,
    ));
    let chip = RefCell::new(Hx71x::new(&clock, PressureSensor(&sim), 40));
    let adc = Hx711::new(
        ClockPin(&chip),
        DataPin(&chip),
        clock.delay(),
        Gain::ChannelA128,
    )
    .unwrap();
    let config = CycleConfig::new(COUNTS_PER_MMHG as f32);
    let bp = BloodPressureCuff::new(adc, PumpPin(&sim), ValvePin(&sim), config).unwrap();
    let mut device = cuff::CuffDevice::new(bp);
    let measurement = value_handle(&cuff::TABLE, uuid::BLOOD_PRESSURE_MEASUREMENT);
    device.start(clock.now_ms(), None).unwrap();
    while device.pending().is_none() {
        clock.advance_ms(1);
        assert!(clock.now_ms() < 300_000, "the cycle never ended");
        assert!(device.poll(clock.now_ms()).unwrap().is_empty());
    }
    device
        .handle(Event::Connected {
            conn: GATEWAY,
            bond: None,
        })
        .unwrap();
    let sent = indications(
        &device.handle(subscribe(measurement, 2)).unwrap(),
        measurement,
    );
    assert_eq!(sent.len(), 1);
    assert_eq!(
        BloodPressureMeasurement::decode(&sent[0]).unwrap().value,
        *device.pending().unwrap()
    );
}

mod glucose {
    use super::*;
    use relais_board_sim::RamFlash;
    use relais_firmware::devices::glucose_meter::{self as device, GlucoseMeterDevice};
    use relais_firmware::gatt::AttError;
    use relais_firmware::glucose_meter::GlucoseMeter;
    use relais_firmware::record_log::{RecordLog, WhenFull};
    use relais_protocol::glucose::{
        GlucoseMeasurement, GlucoseMeasurementContext, GlucoseSampleLocation, GlucoseType, Meal,
    };
    use relais_protocol::racp::{RacpRequest, RacpResponse, ResponseCode};
    use relais_protocol::{DateTime, MedValue, Quantity, Quirks, Unit};

    fn meter_with(records: u32) -> GlucoseMeterDevice<RamFlash<8>> {
        let log = RecordLog::mount(RamFlash::<8>::new(), 0..8 * 4096, WhenFull::Refuse).unwrap();
        let mut device = GlucoseMeterDevice::new(GlucoseMeter::new(log));
        for i in 0..records {
            let measurement = GlucoseMeasurement {
                sequence_number: 0,
                base_time: DateTime::new(2024, 3, 1, (i % 24) as u8, 0, 0).unwrap(),
                time_offset: None,
                glucose_concentration: Some(Quantity::new(
                    MedValue::number(i64::from(90 + i), -5),
                    Unit::KilogramPerLitre,
                )),
                glucose_type: Some(GlucoseType::CapillaryWholeBlood),
                sample_location: Some(GlucoseSampleLocation::Finger),
                sensor_status_annunciation: None,
                context_information_follows: false,
            };
            let context = GlucoseMeasurementContext {
                sequence_number: 0,
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
            device.record(measurement, Some(context)).unwrap();
        }
        device
    }

    fn handles() -> (Handle, Handle, Handle) {
        (
            value_handle(&device::TABLE, uuid::GLUCOSE_MEASUREMENT),
            value_handle(&device::TABLE, uuid::GLUCOSE_MEASUREMENT_CONTEXT),
            value_handle(&device::TABLE, uuid::RECORD_ACCESS_CONTROL_POINT),
        )
    }

    fn racp_write(bytes: &[u8]) -> Event<'_> {
        Event::Write {
            conn: GATEWAY,
            handle: handles().2,
            data: bytes,
            kind: WriteKind::Request,
        }
    }

    fn bonded_and_subscribed(device: &mut GlucoseMeterDevice<RamFlash<8>>) {
        let (measurement, context, racp) = handles();
        device
            .handle(Event::Connected {
                conn: GATEWAY,
                bond: Some(BondId(3)),
            })
            .unwrap();
        device
            .handle(Event::Bonded {
                conn: GATEWAY,
                bond: BondId(3),
            })
            .unwrap();
        device.handle(subscribe(measurement, 1)).unwrap();
        device.handle(subscribe(context, 1)).unwrap();
        device.handle(subscribe(racp, 2)).unwrap();
    }

    #[test]
    fn a_catch_up_streams_each_record_with_its_context_then_ends_with_the_racp_indication() {
        let mut device = meter_with(30);
        bonded_and_subscribed(&mut device);
        let (measurement, context, racp) = handles();
        let mut out = [0u8; 8];
        let n = RacpRequest::records_after(Some(9), Quirks::NONE)
            .encode(&mut out)
            .unwrap();
        let mut actions = device.handle(racp_write(&out[..n])).unwrap();
        assert!(matches!(
            actions.first(),
            Some(Action::Respond { result: Ok(_), .. })
        ));
        let (mut records, mut contexts, mut end) = (Vec::new(), Vec::new(), None);
        let mut now = 0;
        while end.is_none() {
            for bytes in notifications(&actions, measurement) {
                records.push(
                    GlucoseMeasurement::decode(&bytes)
                        .unwrap()
                        .value
                        .sequence_number,
                );
            }
            contexts.extend(notifications(&actions, context));
            if let Some(bytes) = indications(&actions, racp).first() {
                end = Some(RacpResponse::decode(bytes).unwrap().value);
            }
            now += 5;
            assert!(now < 10_000, "the report never ended");
            actions = device.poll(now).unwrap();
        }
        assert_eq!(records, (10..30).collect::<Vec<u16>>());
        assert_eq!(contexts.len(), 20);
        assert_eq!(
            end,
            Some(RacpResponse::ResponseCode {
                request_op_code: relais_protocol::racp::OpCode::ReportStoredRecords,
                response_code: ResponseCode::Success,
            })
        );
        device
            .handle(Event::IndicationConfirmed { conn: GATEWAY })
            .unwrap();
        assert!(!device.meter().is_busy());
    }

    #[test]
    fn an_unbonded_gateway_is_refused_and_nothing_is_sent() {
        let mut device = meter_with(3);
        let (measurement, _, racp) = handles();
        device
            .handle(Event::Connected {
                conn: GATEWAY,
                bond: None,
            })
            .unwrap();
        let refused = device.handle(subscribe(measurement, 1)).unwrap();
        assert!(matches!(
            refused.first(),
            Some(Action::Respond {
                result: Err(AttError::InsufficientAuthentication),
                ..
            })
        ));
        let refused = device.handle(subscribe(racp, 2)).unwrap();
        assert!(matches!(
            refused.first(),
            Some(Action::Respond { result: Err(_), .. })
        ));
        let actions = device.handle(racp_write(&[0x01, 0x01])).unwrap();
        assert_eq!(actions.len(), 1, "{actions:?}");
        assert!(matches!(
            actions.first(),
            Some(Action::Respond {
                result: Err(AttError::InsufficientAuthentication),
                ..
            })
        ));
    }

    #[test]
    fn a_new_measurement_is_notified_live_to_a_subscribed_gateway() {
        let mut device = meter_with(2);
        bonded_and_subscribed(&mut device);
        let (measurement_handle, _, _) = handles();
        let measurement = GlucoseMeasurement {
            sequence_number: 0,
            base_time: DateTime::new(2024, 3, 2, 7, 30, 0).unwrap(),
            time_offset: None,
            glucose_concentration: Some(Quantity::new(
                MedValue::number(104, -5),
                Unit::KilogramPerLitre,
            )),
            glucose_type: Some(GlucoseType::CapillaryWholeBlood),
            sample_location: Some(GlucoseSampleLocation::Finger),
            sensor_status_annunciation: None,
            context_information_follows: false,
        };
        let (seq, actions) = device.record(measurement, None).unwrap();
        let sent = notifications(&actions, measurement_handle);
        assert_eq!(sent.len(), 1);
        let live = GlucoseMeasurement::decode(&sent[0]).unwrap().value;
        assert_eq!(u32::from(live.sequence_number), seq.get());
    }
}
