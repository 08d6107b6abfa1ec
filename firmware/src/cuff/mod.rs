//! The blood-pressure cuff personality: an HX710B reading the cuff's pressure sensor, a pump and a
//! dump valve, measuring by oscillometry.
//!
//! `BloodPressureCuff` owns the hardware and hands each pressure conversion to the
//! `MeasurementCycle` (`cycle.rs`: vent, zero, inflate, deflate, dump, with the safety limits),
//! then sets pump and valve as the cycle wants. The cycle finds the beats (`pulse.rs`), keeps
//! their oscillogram and reads the pressures off it (`oscillometry.rs`), and times the beats
//! (`rhythm.rs`). What comes out is what the Blood Pressure Service sends: an Intermediate Cuff
//! Pressure every 500 ms while the cuff inflates and deflates, and a Blood Pressure Measurement
//! once the cuff is vented.
//!
//! Inputs the cuff does not own come in as plain values: the time in milliseconds (any
//! monotonic clock), the wall clock for the time stamp (when the device clock is set), the user.
//! Accuracy against simulated subjects: `firmware/tests/cuff_accuracy.rs`.

pub mod cycle;
pub mod oscillometry;
pub mod pulse;
pub mod rhythm;
mod small_sort;

use embedded_hal::delay::DelayNs;
use embedded_hal::digital::{InputPin, OutputPin};
use relais_protocol::blood_pressure::{
    BloodPressureFeature, BloodPressureMeasurement, IntermediateCuffPressure, MeasurementStatus,
    PulseRateRange,
};
use relais_protocol::{DateTime, Decimal, MedValue, Quantity, Special, Unit};

use crate::drivers::hx711::{self, Gain, Hx711};
pub use cycle::{Abort, Actuators, CycleConfig, CycleEvent, MeasurementCycle, Outcome, Phase};

/// Pulse rates outside this range are flagged in the measurement status, bpm.
pub const PULSE_RATE_RANGE_BPM: (f32, f32) = (40.0, 180.0);

/// What a poll produced: the values to notify or indicate.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum CuffEvent {
    /// The cuff pressure while inflating and deflating: notify it.
    Intermediate(IntermediateCuffPressure),
    /// The finished measurement: indicate it.
    Measurement(BloodPressureMeasurement),
}

/// Why the cuff could not do its work.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum CuffError<EClock, EData, EPump, EValve> {
    /// The ADC did not answer.
    Adc(hx711::Error<EClock, EData>),
    /// The pump's pin failed.
    Pump(EPump),
    /// The valve's pin failed.
    Valve(EValve),
    /// The measurement stopped; the valve is open and stays open until the cuff is vented, so
    /// keep polling.
    Aborted(Abort),
    /// A measurement is already under way.
    Busy,
}

/// The error type of a cuff's operations, spelled out once.
pub type ErrorOf<Clock, Data, Pump, Valve> = CuffError<
    <Clock as embedded_hal::digital::ErrorType>::Error,
    <Data as embedded_hal::digital::ErrorType>::Error,
    <Pump as embedded_hal::digital::ErrorType>::Error,
    <Valve as embedded_hal::digital::ErrorType>::Error,
>;

/// The cuff: pressure ADC, pump, valve and the measurement cycle.
#[derive(Debug)]
pub struct BloodPressureCuff<Clock, Data, Delay, Pump, Valve> {
    adc: Hx711<Clock, Data, Delay>,
    pump: Pump,
    valve: Valve,
    cycle: MeasurementCycle,
    /// What the pins were last set to (`None` until they are set).
    driven: Option<Actuators>,
    user_id: Option<u8>,
}

impl<Clock, Data, Delay, Pump, Valve> BloodPressureCuff<Clock, Data, Delay, Pump, Valve>
where
    Clock: OutputPin,
    Data: InputPin,
    Delay: DelayNs,
    Pump: OutputPin,
    Valve: OutputPin,
{
    /// A cuff over an HX710B on `adc`, a pump (high = running) and a dump valve (high = open).
    /// The ADC is switched to 27 pulses, the HX710B's differential input at 40 Hz; pump and
    /// valve are switched off.
    pub fn new(
        mut adc: Hx711<Clock, Data, Delay>,
        pump: Pump,
        valve: Valve,
        config: CycleConfig,
    ) -> Result<Self, ErrorOf<Clock, Data, Pump, Valve>> {
        adc.set_gain(Gain::ChannelA64);
        let mut cuff = Self {
            adc,
            pump,
            valve,
            cycle: MeasurementCycle::new(config),
            driven: None,
            user_id: None,
        };
        cuff.drive()?;
        Ok(cuff)
    }

    /// Starts a measurement for `user_id` (`None`: unknown user).
    pub fn start(
        &mut self,
        now_ms: u64,
        user_id: Option<u8>,
    ) -> Result<(), ErrorOf<Clock, Data, Pump, Valve>> {
        self.cycle.start(now_ms).map_err(|_| CuffError::Busy)?;
        self.user_id = user_id;
        self.drive()
    }

    /// Stops the measurement under way and vents the cuff; nothing is reported.
    pub fn cancel(&mut self, now_ms: u64) -> Result<(), ErrorOf<Clock, Data, Pump, Valve>> {
        self.cycle.cancel(now_ms);
        self.drive()
    }

    /// Reads the ADC if a conversion is ready and runs the cycle. Call it more often than the
    /// ADC converts (every few ms; it never waits). `wall_clock` is the device's local time,
    /// `None` while its clock is not set: the measurement then has no time stamp.
    pub fn poll(
        &mut self,
        now_ms: u64,
        wall_clock: Option<DateTime>,
    ) -> Result<Option<CuffEvent>, ErrorOf<Clock, Data, Pump, Valve>> {
        let event = if self.adc.is_ready().map_err(CuffError::Adc)? {
            let counts = self.adc.read().map_err(CuffError::Adc)?;
            self.cycle.on_sample(now_ms, counts)
        } else {
            self.cycle.on_tick(now_ms)
        };
        self.drive()?;
        match event {
            None => Ok(None),
            Some(CycleEvent::CuffPressure { pressure_mmhg }) => Ok(Some(CuffEvent::Intermediate(
                self.intermediate(pressure_mmhg),
            ))),
            Some(CycleEvent::Finished(outcome)) => Ok(Some(CuffEvent::Measurement(
                self.measurement(&outcome, wall_clock),
            ))),
            Some(CycleEvent::Aborted(abort)) => Err(CuffError::Aborted(abort)),
        }
    }

    /// Where the measurement stands.
    pub fn phase(&self) -> Phase {
        self.cycle.phase()
    }

    /// The Blood Pressure Feature value to serve: what this cuff detects.
    pub fn feature(&self) -> BloodPressureFeature {
        BloodPressureFeature {
            body_movement_detection: true,
            cuff_fit_detection: true,
            irregular_pulse_detection: true,
            pulse_rate_range_detection: true,
            ..BloodPressureFeature::default()
        }
    }

    /// The cycle, for its oscillogram (diagnostics, a display's bar graph).
    pub fn cycle(&self) -> &MeasurementCycle {
        &self.cycle
    }

    /// Gives the ADC, the pump and the valve back.
    pub fn release(self) -> (Hx711<Clock, Data, Delay>, Pump, Valve) {
        (self.adc, self.pump, self.valve)
    }

    /// Sets pump and valve as the cycle wants, when that changed. The pump stops before the
    /// valve opens and starts only after it has shut.
    fn drive(&mut self) -> Result<(), ErrorOf<Clock, Data, Pump, Valve>> {
        let wanted = self.cycle.actuators();
        if self.driven == Some(wanted) {
            return Ok(());
        }
        if wanted.pump_on {
            self.valve.set_low().map_err(CuffError::Valve)?;
            self.pump.set_high().map_err(CuffError::Pump)?;
        } else {
            self.pump.set_low().map_err(CuffError::Pump)?;
            if wanted.valve_open {
                self.valve.set_high().map_err(CuffError::Valve)?;
            } else {
                self.valve.set_low().map_err(CuffError::Valve)?;
            }
        }
        self.driven = Some(wanted);
        Ok(())
    }

    fn intermediate(&self, pressure_mmhg: f32) -> IntermediateCuffPressure {
        IntermediateCuffPressure {
            current_cuff_pressure: mmhg(pressure_mmhg, -1),
            time_stamp: None,
            pulse_rate: None,
            user_id: self.user_id,
            measurement_status: None,
        }
    }

    fn measurement(
        &self,
        outcome: &Outcome,
        wall_clock: Option<DateTime>,
    ) -> BloodPressureMeasurement {
        let (low, high) = PULSE_RATE_RANGE_BPM;
        let pulse_rate_range = match outcome.pulse_rate_bpm {
            Some(bpm) if bpm > high => PulseRateRange::ExceedsUpperLimit,
            Some(bpm) if bpm < low => PulseRateRange::BelowLowerLimit,
            _ => PulseRateRange::WithinRange,
        };
        BloodPressureMeasurement {
            systolic: mmhg(outcome.systolic_mmhg, 0),
            diastolic: mmhg(outcome.diastolic_mmhg, 0),
            mean_arterial_pressure: mmhg(outcome.mean_arterial_mmhg, 0),
            time_stamp: wall_clock,
            pulse_rate: outcome
                .pulse_rate_bpm
                .map(|bpm| Quantity::new(decimal(bpm, 0), Unit::PerMinute)),
            user_id: self.user_id,
            measurement_status: Some(MeasurementStatus {
                body_movement_detected: outcome.body_movement,
                cuff_too_loose: outcome.cuff_too_loose,
                irregular_pulse_detected: outcome.irregular_pulse,
                pulse_rate_range,
                improper_measurement_position: false,
            }),
        }
    }
}

/// A pressure in mmHg, rounded to `10^exponent`.
fn mmhg(value: f32, exponent: i8) -> Quantity {
    Quantity::new(decimal(value, exponent), Unit::MillimetreOfMercury)
}

/// `value` rounded to `10^exponent`; NaN when it is not a number. In `f32`: double precision
/// would pull the soft-float library into the image, and a cuff reads to 0.1 mmHg.
fn decimal(value: f32, exponent: i8) -> MedValue {
    let mut scale = 1.0f32;
    for _ in 0..exponent.unsigned_abs() {
        scale *= 10.0;
    }
    let scaled = if exponent < 0 {
        value * scale
    } else {
        value / scale
    };
    let rounded = libm::roundf(scaled);
    if !rounded.is_finite() || libm::fabsf(rounded) > 1.0e9 {
        return MedValue::Special(Special::NaN);
    }
    MedValue::Number(Decimal::new(rounded as i64, exponent))
}
