//! On-target tests: the record log, the three personalities and the devices, executed on the
//! Cortex-M4 instruction set under QEMU, against the same simulated board as the host tests
//! (`firmware/tests/`), which hold the exhaustive versions.
#![no_std]
#![no_main]

use core::cell::RefCell;

use cortex_m_rt::entry;
use relais_board_sim::cuff::{
    COUNTS_PER_MMHG, Cuff, CuffConfig, PressureSensor, PumpPin, Subject, ValvePin,
};
use relais_board_sim::hx71x::{AnalogFrontEnd, ClockPin, DataPin, Hx71x};
use relais_board_sim::load_cell::LoadCell;
use relais_board_sim::{RamFlash, SimClock};
use relais_firmware::cuff::{BloodPressureCuff, CuffEvent, CycleConfig};
use relais_firmware::devices::scale::{self as scale_device, ScaleDevice};
use relais_firmware::drivers::hx711::{Gain, Hx711};
use relais_firmware::gatt::{Action, ConnId, Event, Uuid, WriteKind};
use relais_firmware::record_log::{RecordLog, WhenFull};
use relais_firmware::scale::{Calibration, RamOnly, Scale, ScaleEvent};
use relais_firmware_qemu::{Harness, ensure};
use relais_protocol::blood_pressure::BloodPressureMeasurement;
use relais_protocol::weight_scale::WeightMeasurement;
use relais_protocol::{Characteristic, uuid};

struct Constant(i32);

impl AnalogFrontEnd for Constant {
    fn counts(&mut self, _now_us: u64, _pulses: u8) -> i32 {
        self.0
    }
}

fn hx711_reads_a_negative_value() -> Result<(), &'static str> {
    let clock = SimClock::new();
    let chip = RefCell::new(Hx71x::new(&clock, Constant(-654_321), 80));
    let mut adc = Hx711::new(
        ClockPin(&chip),
        DataPin(&chip),
        clock.delay(),
        Gain::ChannelA128,
    )
    .map_err(|_| "pins")?;
    ensure(adc.read() == Ok(-654_321), "wrong value")
}

fn protocol_roundtrips_a_blood_pressure_measurement() -> Result<(), &'static str> {
    let bytes = [
        0x1E, 0x78, 0x00, 0x50, 0x00, 0x5D, 0x00, 0xE8, 0x07, 0x03, 0x05, 0x08, 0x1E, 0x0F, 0x48,
        0x00, 0x02, 0x04, 0x00,
    ];
    let decoded = BloodPressureMeasurement::decode(&bytes).map_err(|_| "decode")?;
    let mut out = [0u8; 20];
    let n = decoded.value.encode(&mut out).map_err(|_| "encode")?;
    ensure(out.get(..n) == Some(&bytes[..]), "bytes differ")
}

const LOG_PAGES: usize = 4;
const LOG_RANGE: core::ops::Range<u32> = 0..(LOG_PAGES as u32 * 4096);

fn record_log_keeps_records_across_a_remount() -> Result<(), &'static str> {
    let flash = RamFlash::<LOG_PAGES>::new();
    let mut log = RecordLog::mount(flash, LOG_RANGE, WhenFull::Refuse).map_err(|_| "mount")?;
    for i in 0..50u32 {
        log.append(&(i, i * 3)).map_err(|_| "append")?;
    }
    let flash = log.into_inner();
    let mut log = RecordLog::mount(flash, LOG_RANGE, WhenFull::Refuse).map_err(|_| "remount")?;
    ensure(log.count() == 50, "count after remount")?;
    let mut buf = [0u8; 64];
    let mut expected = 0u32;
    for item in log.iter::<(u32, u32)>(&mut buf) {
        let (_, (i, tripled)) = item.map_err(|_| "read")?;
        ensure(i == expected && tripled == i * 3, "record content")?;
        expected += 1;
    }
    ensure(expected == 50, "records iterated")
}

fn record_log_survives_a_power_cut_at_every_byte_of_a_write() -> Result<(), &'static str> {
    // Size of one record's write, measured on a fresh log.
    let mut probe = RecordLog::mount(RamFlash::<LOG_PAGES>::new(), LOG_RANGE, WhenFull::Refuse)
        .map_err(|_| "mount")?;
    probe.append(&0u32).map_err(|_| "append")?;
    let before = probe.flash().bytes_written();
    probe.append(&1u32).map_err(|_| "append")?;
    let write_len = (probe.flash().bytes_written() - before) as usize;
    for cut in 0..write_len {
        let mut log = RecordLog::mount(RamFlash::<LOG_PAGES>::new(), LOG_RANGE, WhenFull::Refuse)
            .map_err(|_| "mount")?;
        for i in 0..5u32 {
            log.append(&i).map_err(|_| "append")?;
        }
        let mut flash = log.into_inner();
        flash.cut_power_after(cut);
        let mut log = RecordLog::mount(flash, LOG_RANGE, WhenFull::Refuse).map_err(|_| "mount")?;
        ensure(log.append(&99u32).is_err(), "the cut write fails")?;
        let mut flash = log.into_inner();
        flash.restore_power();
        let mut log = RecordLog::mount(flash, LOG_RANGE, WhenFull::Refuse).map_err(|_| "reboot")?;
        ensure(
            log.count() == 5,
            "committed records intact, torn one absent",
        )?;
        let last = log.last().ok_or("records lost")?;
        let next = log.append(&6u32).map_err(|_| "append after reboot")?;
        ensure(next > last, "sequence numbers never reused")?;
    }
    ensure(write_len > 8, "a write was measured")
}

fn scale_weighs_a_person_within_50_g_after_calibration() -> Result<(), &'static str> {
    let clock = SimClock::new();
    let chip = RefCell::new(Hx71x::new(&clock, LoadCell::new(77), 10));
    let adc = Hx711::new(
        ClockPin(&chip),
        DataPin(&chip),
        clock.delay(),
        Gain::ChannelA128,
    )
    .map_err(|_| "pins")?;
    let mut scale = Scale::new(adc, Calibration::NOMINAL, RamOnly).map_err(|_| "scale")?;
    let run = |scale: &mut Scale<_, _, _, _>,
               until_ms: u64|
     -> Result<Option<ScaleEvent>, &'static str> {
        let mut last = None;
        while clock.now_ms() < until_ms {
            clock.advance_ms(5);
            if let Some(event) = scale.poll(None).map_err(|_| "poll")? {
                last = Some(event);
            }
        }
        Ok(last)
    };
    // Factory calibration with a 50 kg reference mass.
    run(&mut scale, 5_000)?;
    scale.begin_calibration(50.0).map_err(|_| "calibration")?;
    let start = clock.now_ms();
    chip.borrow_mut()
        .front_end_mut()
        .place(start + 3_000, 50.0)
        .map_err(|_| "place")?;
    ensure(
        matches!(
            run(&mut scale, start + 8_000)?,
            Some(ScaleEvent::Calibrated(_))
        ),
        "calibrated",
    )?;
    chip.borrow_mut()
        .front_end_mut()
        .lift(start + 8_000)
        .map_err(|_| "lift")?;
    run(&mut scale, start + 11_000)?;
    // A person of 83.4 kg.
    let on = clock.now_ms() + 1_000;
    chip.borrow_mut()
        .front_end_mut()
        .step_on(on, 83.4)
        .map_err(|_| "step on")?;
    let Some(ScaleEvent::Measured(m)) = run(&mut scale, on + 10_000)? else {
        return Err("no measurement");
    };
    let kg = m.weight.to_f64().ok_or("special")?;
    ensure((kg - 83.4).abs() <= 0.050, "more than 50 g off")
}

fn cuff_measures_within_10_mmhg() -> Result<(), &'static str> {
    let clock = SimClock::new();
    let subject = Subject {
        systolic_mmhg: 141.0,
        diastolic_mmhg: 92.0,
        heart_rate_bpm: 66.0,
        ..Subject::typical()
    };
    let sim = RefCell::new(Cuff::new(&clock, subject, CuffConfig::default(), 3));
    let chip = RefCell::new(Hx71x::new(&clock, PressureSensor(&sim), 40));
    let adc = Hx711::new(
        ClockPin(&chip),
        DataPin(&chip),
        clock.delay(),
        Gain::ChannelA128,
    )
    .map_err(|_| "pins")?;
    let config = CycleConfig::new(COUNTS_PER_MMHG as f32);
    let mut bp =
        BloodPressureCuff::new(adc, PumpPin(&sim), ValvePin(&sim), config).map_err(|_| "cuff")?;
    bp.start(clock.now_ms(), Some(2)).map_err(|_| "start")?;
    let mut intermediates = 0;
    loop {
        clock.advance_ms(1);
        ensure(clock.now_ms() < 300_000, "the cycle never ended")?;
        match bp.poll(clock.now_ms(), None).map_err(|_| "cycle failed")? {
            Some(CuffEvent::Intermediate(_)) => intermediates += 1,
            Some(CuffEvent::Measurement(m)) => {
                let s = m.systolic.to_f64().ok_or("special")?;
                let d = m.diastolic.to_f64().ok_or("special")?;
                ensure(intermediates > 20, "progress notifications")?;
                ensure((s - 141.0).abs() <= 10.0, "systolic off")?;
                return ensure((d - 92.0).abs() <= 10.0, "diastolic off");
            }
            None => {}
        }
    }
}

fn scale_device_indicates_a_weighing_to_a_subscribed_gateway() -> Result<(), &'static str> {
    let clock = SimClock::new();
    let mut cell = LoadCell::new(5);
    cell.step_on(5_000, 64.0).map_err(|_| "step on")?;
    let chip = RefCell::new(Hx71x::new(&clock, cell, 10));
    let adc = Hx711::new(
        ClockPin(&chip),
        DataPin(&chip),
        clock.delay(),
        Gain::ChannelA128,
    )
    .map_err(|_| "pins")?;
    let scale = Scale::new(adc, Calibration::NOMINAL, RamOnly).map_err(|_| "scale")?;
    let mut device = ScaleDevice::new(scale);
    let gateway = ConnId(1);
    let handle = scale_device::TABLE
        .value_handle(Uuid::sig(uuid::WEIGHT_MEASUREMENT))
        .ok_or("no handle")?;
    device
        .handle(Event::Connected {
            conn: gateway,
            bond: None,
        })
        .map_err(|_| "connect")?;
    device
        .handle(Event::Write {
            conn: gateway,
            handle: relais_firmware::gatt::Handle(handle.0 + 1),
            data: &[2, 0],
            kind: WriteKind::Request,
        })
        .map_err(|_| "subscribe")?;
    while clock.now_ms() < 20_000 {
        clock.advance_ms(5);
        for action in device.poll(clock.now_ms()).map_err(|_| "poll")? {
            if let Action::Indicate { value, .. } = action {
                let m = WeightMeasurement::decode(&value)
                    .map_err(|_| "bytes")?
                    .value;
                let kg = m.weight.to_f64().ok_or("special")?;
                return ensure((kg - 64.0).abs() < 7.0, "weight");
            }
        }
    }
    Err("no indication")
}

fn glucose_meter_streams_a_catch_up_over_the_gatt_core() -> Result<(), &'static str> {
    use relais_firmware::devices::glucose_meter::{self as device, GlucoseMeterDevice};
    use relais_firmware::gatt::BondId;
    use relais_firmware::glucose_meter::GlucoseMeter;
    use relais_protocol::glucose::{GlucoseMeasurement, GlucoseSampleLocation, GlucoseType};
    use relais_protocol::racp::RacpRequest;
    use relais_protocol::{DateTime, MedValue, Quantity, Quirks, Unit};

    let log = RecordLog::mount(RamFlash::<8>::new(), 0..8 * 4096, WhenFull::Refuse)
        .map_err(|_| "mount")?;
    let mut meter = GlucoseMeterDevice::new(GlucoseMeter::new(log));
    for i in 0..40u32 {
        let m = GlucoseMeasurement {
            sequence_number: 0,
            base_time: DateTime::new(2024, 3, 1, (i % 24) as u8, 0, 0).ok_or("date")?,
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
        meter.record(m, None).map_err(|_| "record")?;
    }
    let gateway = ConnId(1);
    let handle = |id| device::TABLE.value_handle(Uuid::sig(id)).ok_or("no handle");
    let (measurement, racp) = (
        handle(uuid::GLUCOSE_MEASUREMENT)?,
        handle(uuid::RECORD_ACCESS_CONTROL_POINT)?,
    );
    let cccd = |h: relais_firmware::gatt::Handle| relais_firmware::gatt::Handle(h.0 + 1);
    meter
        .handle(Event::Connected {
            conn: gateway,
            bond: Some(BondId(1)),
        })
        .map_err(|_| "connect")?;
    meter
        .handle(Event::Bonded {
            conn: gateway,
            bond: BondId(1),
        })
        .map_err(|_| "bond")?;
    for (h, v) in [(cccd(measurement), [1u8, 0]), (cccd(racp), [2, 0])] {
        meter
            .handle(Event::Write {
                conn: gateway,
                handle: h,
                data: &v,
                kind: WriteKind::Request,
            })
            .map_err(|_| "subscribe")?;
    }
    let mut request = [0u8; 8];
    let n = RacpRequest::records_after(Some(24), Quirks::NONE)
        .encode(&mut request)
        .map_err(|_| "request")?;
    let mut actions = meter
        .handle(Event::Write {
            conn: gateway,
            handle: racp,
            data: request.get(..n).ok_or("request")?,
            kind: WriteKind::Request,
        })
        .map_err(|_| "write")?;
    let (mut records, mut now) = (0u32, 0u64);
    loop {
        for action in &actions {
            match action {
                Action::Notify {
                    handle: h, value, ..
                } if *h == measurement => {
                    let m = GlucoseMeasurement::decode(value)
                        .map_err(|_| "bytes")?
                        .value;
                    ensure(u32::from(m.sequence_number) == 25 + records, "order")?;
                    records += 1;
                }
                Action::Indicate {
                    handle: h, value, ..
                } if *h == racp => {
                    ensure(value.as_slice() == [6, 0, 1, 1], "RACP success")?;
                    return ensure(records == 15, "records 25..=39");
                }
                _ => {}
            }
        }
        now += 5;
        ensure(now < 10_000, "the report never ended")?;
        actions = meter.poll(now).map_err(|_| "poll")?;
    }
}

#[entry]
fn main() -> ! {
    let mut h = Harness::new();
    h.check(
        "hx711_reads_a_negative_value",
        hx711_reads_a_negative_value(),
    );
    h.check(
        "protocol_roundtrips_a_blood_pressure_measurement",
        protocol_roundtrips_a_blood_pressure_measurement(),
    );
    h.check(
        "record_log_keeps_records_across_a_remount",
        record_log_keeps_records_across_a_remount(),
    );
    h.check(
        "record_log_survives_a_power_cut_at_every_byte_of_a_write",
        record_log_survives_a_power_cut_at_every_byte_of_a_write(),
    );
    h.check(
        "scale_weighs_a_person_within_50_g_after_calibration",
        scale_weighs_a_person_within_50_g_after_calibration(),
    );
    h.check(
        "cuff_measures_within_10_mmhg",
        cuff_measures_within_10_mmhg(),
    );
    h.check(
        "scale_device_indicates_a_weighing_to_a_subscribed_gateway",
        scale_device_indicates_a_weighing_to_a_subscribed_gateway(),
    );
    h.check(
        "glucose_meter_streams_a_catch_up_over_the_gatt_core",
        glucose_meter_streams_a_catch_up_over_the_gatt_core(),
    );
    h.finish()
}
