//! The reference board's blood-pressure cuff, simulated: the air in the cuff, the pump that fills
//! it, the valve and bleed that empty it, the pressure sensor behind an HX710B, and the arm inside
//! with its beating artery.
//!
//! The firmware sees only what the real board gives it: ADC counts from the HX710B (through
//! [`PressureSensor`], an [`AnalogFrontEnd`] for [`crate::hx71x::Hx71x`]) and two output pins,
//! [`PumpPin`] and [`ValvePin`]. The subject's true pressures stay in here, for the tests to
//! compare against.
//!
//! # The numbers
//!
//! Air (cuff, tubing, pump and valve of the reference design):
//! - Pump: raises the pressure by `18 × (1 − P / 600)` mmHg/s (a diaphragm pump stalls near
//!   600 mmHg), so with the bleed running it nets about 15 mmHg/s on an empty cuff and 6 mmHg/s
//!   at 300 mmHg.
//! - Bleed: a constant-flow orifice, open all the time, as in classic deflation-measuring
//!   monitors: a linear fall of [`CuffConfig::bleed_mmhg_per_s`] (3 mmHg/s by default), tapering
//!   off below 5 mmHg as the flow chokes.
//! - Valve: a solenoid dump valve, open when its pin is high: the pressure falls exponentially with
//!   a 0.4 s time constant (250 mmHg to under 5 mmHg in about 1.6 s).
//! - A loosely wrapped cuff ([`CuffFit::Loose`]) holds twice the air per mmHg: pump and bleed move
//!   the pressure half as fast, and the arm's pulses come through at 70 % of their amplitude.
//!
//! Sensor and ADC: a piezoresistive gauge bridge of about 2.8 mV/V span at 300 mmHg on 3.3 V,
//! into the HX710B (gain 128, input range ±12.9 mV, 8 388 608 counts each side):
//! [`COUNTS_PER_MMHG`] = 20 000 counts per mmHg, so 300 mmHg reads about 6 M counts and the ADC
//! saturates near 400 mmHg. The zero offset is per unit ([`CuffConfig::zero_offset_counts`],
//! ±12.5 mmHg worth in production); the firmware zeroes itself with the cuff vented. Noise:
//! 0.05 mmHg rms from bridge and ADC, plus 0.1 mmHg rms of pump vibration while the pump runs.
//! Pulses 25 and 27 both select the differential (pressure) input; 26 selects the HX710B's
//! supply-difference input, which reads a constant.
//!
//! Arm (see [`Subject`]): the arterial pulse pushes on the cuff, adding an oscillation of
//! amplitude `A(Pc)` to the cuff pressure `Pc`. The envelope `A` is the classic asymmetric bell
//! peaking at the mean arterial pressure: a Gaussian on each side, on top of a 4 % floor
//! (the suprasystolic pulse of the cuff's upper edge), with the widths chosen so that
//! `A(systolic) = systolic_ratio × Amax` and `A(diastolic) = diastolic_ratio × Amax`. Each beat
//! rises in 120 ms (half cosine), decays exponentially to the next beat's foot and carries a
//! small dicrotic wave. Beat to beat: 2 % rms random interval variation, 3 % respiratory sinus
//! arrhythmia, 3 % amplitude variation, 6 % respiratory amplitude modulation and a 0.15 mmHg
//! respiratory baseline swing. An irregular rhythm draws each interval uniformly in 60-140 % of
//! the mean (atrial-fibrillation-like) and scales each beat's amplitude with its filling time.
//! Body movement ([`Cuff::inject_motion`]) adds 2 to 4 half-sine spikes of 6 to 25 mmHg and 150
//! to 450 ms within 1.5 s.
//!
//! Everything random comes from one seeded generator: a seed and a sequence of pin and ADC
//! events always give the same counts.

use core::cell::RefCell;
use core::convert::Infallible;
use core::f64::consts::PI;

use embedded_hal::digital::{ErrorType, OutputPin};
use rand_core::{Rng, SeedableRng};
use rand_xoshiro::Xoshiro256PlusPlus;

use crate::clock::SimClock;
use crate::hx71x::AnalogFrontEnd;

/// Sensor sensitivity after factory calibration, counts per mmHg (see the module notes).
pub const COUNTS_PER_MMHG: f64 = 20_000.0;

/// What the HX710B's supply-difference input (26 pulses) reads.
pub const SUPPLY_CHANNEL_COUNTS: i32 = 1_650_000;

/// Integration step of the air and the heart.
const STEP_US: u64 = 1_000;
/// Pump rise on an empty cuff, mmHg/s, before the bleed takes its share.
const PUMP_RATE_AT_ZERO: f64 = 18.0;
/// Pressure at which the pump stalls.
const PUMP_STALL_MMHG: f64 = 600.0;
/// Below this the bleed's flow chokes and the fall tapers off.
const BLEED_TAPER_MMHG: f64 = 5.0;
/// Time constant of the open dump valve.
const DUMP_TIME_CONSTANT_S: f64 = 0.4;
/// Noise of bridge and ADC, mmHg rms.
const SENSOR_NOISE_MMHG: f64 = 0.05;
/// Pump vibration reaching the sensor, mmHg rms.
const PUMP_NOISE_MMHG: f64 = 0.1;
/// Suprasystolic floor of the oscillation envelope, as a fraction of its maximum.
const ENVELOPE_FLOOR: f64 = 0.04;
/// Below a few mmHg the cuff no longer touches the arm: the envelope fades out.
const SLACK_CUFF_MMHG: f64 = 8.0;
/// Systolic upstroke of one beat.
const UPSTROKE_S: f64 = 0.12;
/// Dicrotic wave: delay after the peak, width, and height as a fraction of the beat.
const DICROTIC_DELAY_S: f64 = 0.18;
const DICROTIC_WIDTH_S: f64 = 0.04;
const DICROTIC_HEIGHT: f64 = 0.1;
/// Beat-to-beat variability of a regular rhythm.
const INTERVAL_JITTER: f64 = 0.02;
const SINUS_ARRHYTHMIA: f64 = 0.03;
const AMPLITUDE_JITTER: f64 = 0.03;
/// Respiration: amplitude modulation and baseline swing.
const RESPIRATORY_MODULATION: f64 = 0.06;
const RESPIRATORY_BASELINE_MMHG: f64 = 0.15;
/// Irregular rhythm: intervals uniform within ±40 % of the mean; amplitude follows filling time.
const IRREGULAR_SPREAD: f64 = 0.4;
const FILLING_GAIN: f64 = 0.25;
/// Motion spikes kept at once.
const MAX_SPIKES: usize = 8;

/// The person in the cuff: true pressures and how their artery shows in the cuff.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Subject {
    /// True systolic pressure, mmHg.
    pub systolic_mmhg: f64,
    /// True diastolic pressure, mmHg.
    pub diastolic_mmhg: f64,
    /// Where the mean arterial pressure sits between diastolic (0) and systolic (1); about 1/3.
    pub map_fraction: f64,
    /// Mean heart rate, beats per minute.
    pub heart_rate_bpm: f64,
    /// Oscillation amplitude at the systolic pressure, as a fraction of the maximum.
    pub systolic_ratio: f64,
    /// Oscillation amplitude at the diastolic pressure, as a fraction of the maximum.
    pub diastolic_ratio: f64,
    /// Peak-to-trough oscillation at the mean arterial pressure, mmHg.
    pub max_oscillation_mmhg: f64,
    /// Breathing rate, breaths per minute.
    pub breaths_per_min: f64,
    /// Irregular rhythm (atrial-fibrillation-like random intervals).
    pub irregular_rhythm: bool,
}

impl Subject {
    /// A healthy adult at rest: 120/80 mmHg, 70 bpm.
    pub const fn typical() -> Self {
        Self {
            systolic_mmhg: 120.0,
            diastolic_mmhg: 80.0,
            map_fraction: 1.0 / 3.0,
            heart_rate_bpm: 70.0,
            systolic_ratio: 0.55,
            diastolic_ratio: 0.77,
            max_oscillation_mmhg: 2.0,
            breaths_per_min: 15.0,
            irregular_rhythm: false,
        }
    }

    /// True mean arterial pressure, where the oscillation envelope peaks.
    pub fn mean_arterial_pressure_mmhg(&self) -> f64 {
        self.diastolic_mmhg + self.map_fraction * (self.systolic_mmhg - self.diastolic_mmhg)
    }

    /// Oscillation amplitude (peak to trough, mmHg) at cuff pressure `cuff_mmhg`, before
    /// beat-to-beat variation.
    pub fn envelope_mmhg(&self, cuff_mmhg: f64) -> f64 {
        if cuff_mmhg <= 0.0 {
            return 0.0;
        }
        let map = self.mean_arterial_pressure_mmhg();
        let (edge, ratio) = if cuff_mmhg >= map {
            (self.systolic_mmhg, self.systolic_ratio)
        } else {
            (self.diastolic_mmhg, self.diastolic_ratio)
        };
        // floor + (1 - floor) * gauss(edge) = ratio fixes the Gaussian's width on this side.
        let gauss_at_edge = ((ratio - ENVELOPE_FLOOR) / (1.0 - ENVELOPE_FLOOR)).clamp(1e-6, 0.999);
        let sigma = libm::fabs(edge - map) / libm::sqrt(-2.0 * libm::log(gauss_at_edge));
        let z = (cuff_mmhg - map) / sigma.max(1e-3);
        let bell = ENVELOPE_FLOOR + (1.0 - ENVELOPE_FLOOR) * libm::exp(-0.5 * z * z);
        let slack = 1.0 - libm::exp(-cuff_mmhg / SLACK_CUFF_MMHG);
        self.max_oscillation_mmhg * bell * slack
    }
}

/// How the cuff is wrapped around the arm.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum CuffFit {
    /// Snug, as the instructions say.
    #[default]
    Snug,
    /// Too loose: twice the air per mmHg, weaker pulses.
    Loose,
}

impl CuffFit {
    fn air_per_mmhg(self) -> f64 {
        match self {
            Self::Snug => 1.0,
            Self::Loose => 2.0,
        }
    }

    fn pulse_transmission(self) -> f64 {
        match self {
            Self::Snug => 1.0,
            Self::Loose => 0.7,
        }
    }
}

/// The hardware around the subject: one unit of the reference board and its cuff.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct CuffConfig {
    /// Fall through the constant-flow bleed on a snug cuff, mmHg/s.
    pub bleed_mmhg_per_s: f64,
    /// How the cuff is wrapped.
    pub fit: CuffFit,
    /// Sensor reading at 0 mmHg (this unit's bridge offset), counts.
    pub zero_offset_counts: i32,
    /// Fault: the pump's driver is shorted on, the pump runs whatever its pin says.
    pub pump_stuck_on: bool,
}

impl Default for CuffConfig {
    fn default() -> Self {
        Self {
            bleed_mmhg_per_s: 3.0,
            fit: CuffFit::Snug,
            zero_offset_counts: 180_000,
            pump_stuck_on: false,
        }
    }
}

/// One motion spike: a half sine on the cuff pressure.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Spike {
    start_us: u64,
    duration_us: u64,
    height_mmhg: f64,
}

impl Spike {
    fn at(&self, now_us: u64) -> f64 {
        let Some(into) = now_us.checked_sub(self.start_us) else {
            return 0.0;
        };
        if into >= self.duration_us {
            return 0.0;
        }
        self.height_mmhg * libm::sin(PI * into as f64 / self.duration_us as f64)
    }
}

/// The beat under way.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Beat {
    onset_us: u64,
    interval_s: f64,
    amplitude_mmhg: f64,
}

/// The simulated cuff on the simulated arm. Share it with `RefCell` between the sensor and the
/// two pins.
#[derive(Debug)]
pub struct Cuff<'c> {
    clock: &'c SimClock,
    subject: Subject,
    config: CuffConfig,
    rng: Xoshiro256PlusPlus,
    /// Air pressure in the cuff (without the arterial oscillation), mmHg.
    air_mmhg: f64,
    highest_air_mmhg: f64,
    updated_us: u64,
    pump_pin_high: bool,
    valve_open: bool,
    beat: Beat,
    beats: u32,
    breathing_phase: f64,
    spikes: [Option<Spike>; MAX_SPIKES],
    next_spike: usize,
}

impl<'c> Cuff<'c> {
    /// A vented cuff on `subject`'s arm; `seed` fixes every random draw.
    pub fn new(clock: &'c SimClock, subject: Subject, config: CuffConfig, seed: u64) -> Self {
        let mut rng = Xoshiro256PlusPlus::seed_from_u64(seed);
        let mean_interval_s = 60.0 / subject.heart_rate_bpm.max(1.0);
        let first_onset_s = uniform(&mut rng, 0.0, mean_interval_s);
        let breathing_phase = uniform(&mut rng, 0.0, 2.0 * PI);
        let now_us = clock.now_us();
        Self {
            clock,
            subject,
            config,
            rng,
            air_mmhg: 0.0,
            highest_air_mmhg: 0.0,
            updated_us: now_us,
            pump_pin_high: false,
            valve_open: false,
            // A beat that ends at the first onset, with no amplitude yet.
            beat: Beat {
                onset_us: now_us,
                interval_s: first_onset_s.max(0.001),
                amplitude_mmhg: 0.0,
            },
            beats: 0,
            breathing_phase,
            spikes: [None; MAX_SPIKES],
            next_spike: 0,
        }
    }

    /// The subject, with the true pressures the firmware is trying to measure.
    pub fn subject(&self) -> &Subject {
        &self.subject
    }

    /// Changes the subject's rhythm from now on (arrhythmia on demand).
    pub fn set_irregular_rhythm(&mut self, irregular: bool) {
        self.advance();
        self.subject.irregular_rhythm = irregular;
    }

    /// Air pressure in the cuff now, without the pulse, mmHg.
    pub fn air_pressure_mmhg(&mut self) -> f64 {
        self.advance();
        self.air_mmhg
    }

    /// Highest air pressure the cuff has held, mmHg: what the safety tests check.
    pub fn highest_air_pressure_mmhg(&mut self) -> f64 {
        self.advance();
        self.highest_air_mmhg
    }

    /// True while the pump runs (pin high, or the stuck-on fault).
    pub fn pump_running(&self) -> bool {
        self.pump_pin_high || self.config.pump_stuck_on
    }

    /// True while the dump valve is open.
    pub fn valve_open(&self) -> bool {
        self.valve_open
    }

    /// Heart beats so far.
    pub fn beats(&self) -> u32 {
        self.beats
    }

    /// The subject moves their arm now: 2 to 4 large pressure spikes within the next 1.5 s.
    pub fn inject_motion(&mut self) {
        self.advance();
        let now_us = self.updated_us;
        let count = 2 + (self.rng.next_u32() % 3) as usize;
        for _ in 0..count {
            let spike = Spike {
                start_us: now_us + uniform(&mut self.rng, 0.0, 1_500_000.0) as u64,
                duration_us: uniform(&mut self.rng, 150_000.0, 450_000.0) as u64,
                height_mmhg: uniform(&mut self.rng, 6.0, 25.0),
            };
            if let Some(slot) = self.spikes.get_mut(self.next_spike) {
                *slot = Some(spike);
            }
            self.next_spike = (self.next_spike + 1) % MAX_SPIKES;
        }
    }

    /// What the sensor sees now: air, pulse, breathing, motion and noise, in mmHg.
    pub fn sensed_pressure_mmhg(&mut self, now_us: u64) -> f64 {
        self.advance_to(now_us);
        let t_s = self.updated_us as f64 / 1e6;
        let breathing = libm::sin(self.breathing_phase_at(t_s));
        let motion: f64 = self.spikes.iter().flatten().map(|s| s.at(now_us)).sum();
        let noise_rms = if self.pump_running() {
            libm::sqrt(SENSOR_NOISE_MMHG * SENSOR_NOISE_MMHG + PUMP_NOISE_MMHG * PUMP_NOISE_MMHG)
        } else {
            SENSOR_NOISE_MMHG
        };
        let noise = noise_rms * gaussian(&mut self.rng);
        self.air_mmhg
            + self.pulse_mmhg(now_us)
            + RESPIRATORY_BASELINE_MMHG * breathing
            + motion
            + noise
    }

    fn set_pump(&mut self, on: bool) {
        self.advance();
        self.pump_pin_high = on;
    }

    fn set_valve(&mut self, open: bool) {
        self.advance();
        self.valve_open = open;
    }

    fn advance(&mut self) {
        self.advance_to(self.clock.now_us());
    }

    /// Integrates air and heart up to `now_us` in 1 ms steps.
    fn advance_to(&mut self, now_us: u64) {
        while self.updated_us < now_us {
            let step_us = (now_us - self.updated_us).min(STEP_US);
            self.step_air(step_us as f64 / 1e6);
            self.updated_us += step_us;
            self.step_heart();
        }
    }

    fn step_air(&mut self, dt_s: f64) {
        let air_per_mmhg = self.config.fit.air_per_mmhg();
        let p = self.air_mmhg;
        let mut rate = -self.config.bleed_mmhg_per_s * (p / BLEED_TAPER_MMHG).min(1.0);
        if self.pump_running() {
            rate += PUMP_RATE_AT_ZERO * (1.0 - p / PUMP_STALL_MMHG).max(0.0);
        }
        let mut next = p + rate * dt_s / air_per_mmhg;
        if self.valve_open {
            next *= libm::exp(-dt_s / DUMP_TIME_CONSTANT_S);
        }
        self.air_mmhg = next.max(0.0);
        self.highest_air_mmhg = self.highest_air_mmhg.max(self.air_mmhg);
    }

    fn breathing_phase_at(&self, t_s: f64) -> f64 {
        self.breathing_phase + 2.0 * PI * self.subject.breaths_per_min / 60.0 * t_s
    }

    /// Starts the next beat once the current one is over.
    fn step_heart(&mut self) {
        let end_us = self.beat.onset_us + (self.beat.interval_s * 1e6) as u64;
        if self.updated_us < end_us {
            return;
        }
        let filling_s = self.beat.interval_s;
        let t_s = end_us as f64 / 1e6;
        let breathing = libm::sin(self.breathing_phase_at(t_s));
        let mean_s = 60.0 / self.subject.heart_rate_bpm.max(1.0);
        let (interval_s, strength) = if self.subject.irregular_rhythm {
            let interval = mean_s
                * uniform(
                    &mut self.rng,
                    1.0 - IRREGULAR_SPREAD,
                    1.0 + IRREGULAR_SPREAD,
                );
            let strength = 1.0 + FILLING_GAIN * (filling_s / mean_s - 1.0).clamp(-0.6, 0.6);
            (interval, strength)
        } else {
            let jitter = 1.0 + INTERVAL_JITTER * gaussian(&mut self.rng);
            let interval = mean_s * jitter * (1.0 + SINUS_ARRHYTHMIA * breathing);
            let strength = 1.0 + AMPLITUDE_JITTER * gaussian(&mut self.rng);
            (interval, strength)
        };
        let amplitude = self.subject.envelope_mmhg(self.air_mmhg)
            * strength
            * (1.0 + RESPIRATORY_MODULATION * breathing)
            * self.config.fit.pulse_transmission();
        self.beat = Beat {
            onset_us: end_us,
            interval_s: interval_s.max(0.25),
            amplitude_mmhg: amplitude.max(0.0),
        };
        self.beats += 1;
    }

    /// The oscillation the beat under way adds to the cuff pressure.
    fn pulse_mmhg(&self, now_us: u64) -> f64 {
        let beat = &self.beat;
        let tau = now_us.saturating_sub(beat.onset_us) as f64 / 1e6;
        let rr = beat.interval_s;
        let upstroke = UPSTROKE_S.min(0.3 * rr);
        let shape = if tau < upstroke {
            0.5 * (1.0 - libm::cos(PI * tau / upstroke))
        } else {
            // Exponential run-off that reaches the next foot exactly at the end of the beat.
            let decay_s = 0.35 * (rr - upstroke).max(0.01);
            let end = libm::exp(-(rr - upstroke) / decay_s);
            let runoff = ((libm::exp(-(tau - upstroke) / decay_s) - end) / (1.0 - end)).max(0.0);
            let d = (tau - upstroke - DICROTIC_DELAY_S) / DICROTIC_WIDTH_S;
            runoff + DICROTIC_HEIGHT * libm::exp(-d * d)
        };
        beat.amplitude_mmhg * shape
    }
}

/// A uniform draw in `[low, high)`.
fn uniform(rng: &mut Xoshiro256PlusPlus, low: f64, high: f64) -> f64 {
    let unit = (rng.next_u64() >> 11) as f64 * (1.0 / (1u64 << 53) as f64);
    low + (high - low) * unit
}

/// A standard normal draw (Box-Muller).
fn gaussian(rng: &mut Xoshiro256PlusPlus) -> f64 {
    let u1 = uniform(rng, 0.0, 1.0).max(1e-300);
    let u2 = uniform(rng, 0.0, 1.0);
    libm::sqrt(-2.0 * libm::log(u1)) * libm::cos(2.0 * PI * u2)
}

/// The pressure sensor and its bridge, as the HX710B's analogue input.
#[derive(Debug)]
pub struct PressureSensor<'a, 'c>(pub &'a RefCell<Cuff<'c>>);

impl AnalogFrontEnd for PressureSensor<'_, '_> {
    fn counts(&mut self, now_us: u64, pulses: u8) -> i32 {
        if pulses == 26 {
            return SUPPLY_CHANNEL_COUNTS;
        }
        let mut cuff = self.0.borrow_mut();
        let mmhg = cuff.sensed_pressure_mmhg(now_us);
        let counts = f64::from(cuff.config.zero_offset_counts) + COUNTS_PER_MMHG * mmhg;
        libm::round(counts).clamp(f64::from(i32::MIN), f64::from(i32::MAX)) as i32
    }
}

/// The pump's driver pin: high runs the pump.
#[derive(Debug)]
pub struct PumpPin<'a, 'c>(pub &'a RefCell<Cuff<'c>>);

/// The dump valve's driver pin: high opens the valve.
#[derive(Debug)]
pub struct ValvePin<'a, 'c>(pub &'a RefCell<Cuff<'c>>);

impl ErrorType for PumpPin<'_, '_> {
    type Error = Infallible;
}

impl ErrorType for ValvePin<'_, '_> {
    type Error = Infallible;
}

impl OutputPin for PumpPin<'_, '_> {
    fn set_high(&mut self) -> Result<(), Infallible> {
        self.0.borrow_mut().set_pump(true);
        Ok(())
    }

    fn set_low(&mut self) -> Result<(), Infallible> {
        self.0.borrow_mut().set_pump(false);
        Ok(())
    }
}

impl OutputPin for ValvePin<'_, '_> {
    fn set_high(&mut self) -> Result<(), Infallible> {
        self.0.borrow_mut().set_valve(true);
        Ok(())
    }

    fn set_low(&mut self) -> Result<(), Infallible> {
        self.0.borrow_mut().set_valve(false);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pins<'a, 'c>(cuff: &'a RefCell<Cuff<'c>>) -> (PumpPin<'a, 'c>, ValvePin<'a, 'c>) {
        (PumpPin(cuff), ValvePin(cuff))
    }

    #[test]
    fn the_pump_inflates_at_5_to_15_mmhg_per_second_and_slows_as_pressure_rises() {
        let clock = SimClock::new();
        let cuff = RefCell::new(Cuff::new(
            &clock,
            Subject::typical(),
            CuffConfig::default(),
            1,
        ));
        let (mut pump, _) = pins(&cuff);
        pump.set_high().unwrap();
        clock.advance_ms(1_000);
        let first_second = cuff.borrow_mut().air_pressure_mmhg();
        assert!(
            (13.0..16.0).contains(&first_second),
            "{first_second} mmHg after 1 s"
        );
        while cuff.borrow_mut().air_pressure_mmhg() < 290.0 {
            clock.advance_ms(100);
        }
        let before = cuff.borrow_mut().air_pressure_mmhg();
        clock.advance_ms(1_000);
        let rate_at_290 = cuff.borrow_mut().air_pressure_mmhg() - before;
        assert!(
            (5.0..8.0).contains(&rate_at_290),
            "{rate_at_290} mmHg/s at 290 mmHg"
        );
    }

    #[test]
    fn the_bleed_deflates_linearly_and_the_valve_dumps_fast() {
        let clock = SimClock::new();
        let cuff = RefCell::new(Cuff::new(
            &clock,
            Subject::typical(),
            CuffConfig::default(),
            2,
        ));
        let (mut pump, mut valve) = pins(&cuff);
        pump.set_high().unwrap();
        while cuff.borrow_mut().air_pressure_mmhg() < 200.0 {
            clock.advance_ms(10);
        }
        pump.set_low().unwrap();
        let start = cuff.borrow_mut().air_pressure_mmhg();
        clock.advance_ms(10_000);
        let fallen = start - cuff.borrow_mut().air_pressure_mmhg();
        assert!((29.9..30.1).contains(&fallen), "{fallen} mmHg in 10 s");
        valve.set_high().unwrap();
        clock.advance_ms(2_000);
        assert!(cuff.borrow_mut().air_pressure_mmhg() < 5.0);
    }

    #[test]
    fn a_loose_cuff_inflates_half_as_fast() {
        let clock = SimClock::new();
        let config = CuffConfig {
            fit: CuffFit::Loose,
            ..CuffConfig::default()
        };
        let cuff = RefCell::new(Cuff::new(&clock, Subject::typical(), config, 3));
        PumpPin(&cuff).set_high().unwrap();
        clock.advance_ms(1_000);
        let p = cuff.borrow_mut().air_pressure_mmhg();
        assert!((6.5..8.0).contains(&p), "{p} mmHg after 1 s");
    }

    #[test]
    fn the_envelope_peaks_at_map_and_meets_the_subjects_ratios() {
        let subject = Subject {
            systolic_mmhg: 150.0,
            diastolic_mmhg: 90.0,
            systolic_ratio: 0.5,
            diastolic_ratio: 0.8,
            max_oscillation_mmhg: 3.0,
            ..Subject::typical()
        };
        let map = subject.mean_arterial_pressure_mmhg();
        assert!((map - 110.0).abs() < 1e-9);
        let peak = subject.envelope_mmhg(map);
        assert!((peak - 3.0).abs() < 0.01, "{peak}");
        assert!((subject.envelope_mmhg(150.0) / peak - 0.5).abs() < 0.01);
        assert!((subject.envelope_mmhg(90.0) / peak - 0.8).abs() < 0.01);
        assert!(subject.envelope_mmhg(120.0) < peak && subject.envelope_mmhg(100.0) < peak);
        assert!(subject.envelope_mmhg(250.0) < 0.1 * peak);
    }

    /// Cuff held at `hold_mmhg` (bleed off), sensor sampled at 40 Hz for `seconds`.
    fn trace(subject: Subject, hold_mmhg: f64, seconds: u64, seed: u64) -> ([f64; 1200], usize) {
        let clock = SimClock::new();
        let config = CuffConfig {
            bleed_mmhg_per_s: 0.0,
            ..CuffConfig::default()
        };
        let mut cuff = Cuff::new(&clock, subject, config, seed);
        cuff.air_mmhg = hold_mmhg;
        let mut out = [0.0; 1200];
        let n = (seconds * 40) as usize;
        for slot in out.iter_mut().take(n) {
            clock.advance_ms(25);
            *slot = cuff.sensed_pressure_mmhg(clock.now_us());
        }
        (out, n)
    }

    #[test]
    fn the_pulse_oscillates_by_the_envelope_amplitude_at_the_heart_rate() {
        let subject = Subject::typical();
        let map = subject.mean_arterial_pressure_mmhg();
        let (samples, n) = trace(subject, map, 20, 4);
        let samples = &samples[..n];
        let max = samples.iter().cloned().fold(f64::MIN, f64::max);
        let min = samples.iter().cloned().fold(f64::MAX, f64::min);
        assert!((1.8..2.8).contains(&(max - min)), "swing {}", max - min);
        // Count rises through 3/4 of the swing, re-armed below 1/4: one per beat.
        let (high, low) = (min + 0.75 * (max - min), min + 0.25 * (max - min));
        let mut armed = false;
        let mut beats = 0;
        for &p in samples {
            if armed && p > high {
                beats += 1;
                armed = false;
            } else if p < low {
                armed = true;
            }
        }
        assert!(
            (21..=26).contains(&beats),
            "{beats} beats in 20 s at 70 bpm"
        );
    }

    #[test]
    fn the_same_seed_gives_the_same_signal_and_another_seed_another() {
        let a = trace(Subject::typical(), 100.0, 5, 7).0;
        let b = trace(Subject::typical(), 100.0, 5, 7).0;
        let c = trace(Subject::typical(), 100.0, 5, 8).0;
        assert_eq!(a, b);
        assert_ne!(a, c);
    }

    #[test]
    fn motion_adds_large_spikes() {
        let clock = SimClock::new();
        let config = CuffConfig {
            bleed_mmhg_per_s: 0.0,
            ..CuffConfig::default()
        };
        let mut cuff = Cuff::new(&clock, Subject::typical(), config, 9);
        cuff.air_mmhg = 100.0;
        cuff.inject_motion();
        let mut highest: f64 = 0.0;
        for _ in 0..80 {
            clock.advance_ms(25);
            highest = highest.max(cuff.sensed_pressure_mmhg(clock.now_us()));
        }
        assert!(highest > 105.0, "{highest}");
    }

    #[test]
    fn the_sensor_reads_offset_plus_sensitivity_times_pressure() {
        let clock = SimClock::new();
        let config = CuffConfig {
            bleed_mmhg_per_s: 0.0,
            ..CuffConfig::default()
        };
        let subject = Subject {
            max_oscillation_mmhg: 0.0,
            ..Subject::typical()
        };
        let cuff = RefCell::new(Cuff::new(&clock, subject, config, 10));
        cuff.borrow_mut().air_mmhg = 150.0;
        let mut sensor = PressureSensor(&cuff);
        let counts = sensor.counts(0, 25);
        let expected = 180_000.0 + 150.0 * COUNTS_PER_MMHG;
        assert!(
            (f64::from(counts) - expected).abs() < 0.5 * COUNTS_PER_MMHG,
            "{counts}"
        );
        assert_eq!(sensor.counts(0, 26), SUPPLY_CHANNEL_COUNTS);
    }

    #[test]
    fn a_stuck_pump_runs_with_its_pin_low() {
        let clock = SimClock::new();
        let config = CuffConfig {
            pump_stuck_on: true,
            ..CuffConfig::default()
        };
        let cuff = RefCell::new(Cuff::new(&clock, Subject::typical(), config, 11));
        PumpPin(&cuff).set_low().unwrap();
        clock.advance_ms(5_000);
        assert!(cuff.borrow().pump_running());
        assert!(cuff.borrow_mut().air_pressure_mmhg() > 50.0);
    }
}
