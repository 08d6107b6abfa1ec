//! One blood-pressure measurement, as a state machine without I/O: pressure samples and the time
//! go in, the wanted state of pump and valve and the events come out.
//!
//! ```text
//! Idle -start-> Venting (valve open, 2 s) -> Zeroing (16 samples, vented cuff = 0 mmHg)
//!      -> Inflating (pump on) until the oscillations have faded above systolic, plus a margin
//!      -> Deflating (pump off, valve shut: the bleed lets the cuff down at 2-4 mmHg/s), recording
//!         each beat's amplitude, until the envelope is well below its diastolic level
//!      -> Dumping (valve open) until the cuff is vented -> Idle, with the result.
//! ```
//!
//! Inflation stops [`INFLATION_MARGIN_MMHG`] above the pressure where the oscillations fade:
//! at least [`VANISH_ABOVE_PEAK_MMHG`] above the largest one (seen above 40 mmHg, and at least
//! twice the noise floor), the first of two beats in a row below [`VANISH_RATIO`] of the largest;
//! or, when no beat at all comes for 3 s, where the pressure is then. Subjects' systolic ratios
//! are above [`VANISH_RATIO`], so the deflation starts above systolic. While the pump runs, its
//! vibration raises the detector's noise floor to 0.3 mmHg.
//!
//! Deflation stops once two beats in a row are below [`STOP_RATIO`] of the envelope's maximum,
//! below the pressure of that maximum, and the oscillogram brackets the diastolic crossing (see
//! `oscillometry.rs`); or at [`DEFLATION_FLOOR_MMHG`].
//!
//! Safety: any sample above [`CycleConfig::over_pressure_mmhg`] (300 mmHg) while the valve is
//! shut, a cycle longer than [`CycleConfig::max_cycle_ms`], a silent sensor, a cuff that does not
//! fill, or an unstable zero aborts the cycle: pump off and valve open at once, the abort
//! reported, and the valve kept open until the cuff is vented. A pressure that keeps rising with
//! the pump off is a pump driver stuck on (which also spoils the zero, so the over-pressure limit
//! alone would act late): the valve then stays open for good ([`Phase::Fault`]).
//!
//! Body movement: a beat larger than [`ARTEFACT_MMHG`] (no artery gives that in an adult cuff), or
//! during deflation one more than [`ARTEFACT_JUMP`] times the larger of the last three beats (an
//! envelope never grows that fast between beats at these amplitudes), is an artefact: it is
//! left out, so are the beats of the next [`ARTEFACT_GUARD_MS`] (the filters ring after a spike),
//! and the measurement is flagged.

use super::oscillometry::{self, EstimateError, Oscillogram, Point};
use super::pulse::{Beat, PulseDetector, QUIET_NOISE_FLOOR_MMHG};
use super::rhythm;

/// Oscillation, as a fraction of the largest seen while inflating, below which the pulse has
/// faded above systolic.
pub const VANISH_RATIO: f32 = 0.4;
/// The fade must be this far above the pressure of the largest oscillation, mmHg.
pub const VANISH_ABOVE_PEAK_MMHG: f32 = 10.0;
/// Inflation goes this far past the fade, mmHg.
pub const INFLATION_MARGIN_MMHG: f32 = 10.0;
/// Beats in a row below the fade ratio that make a fade.
const FADED_BEATS: u8 = 2;
/// No beat at all for this long past the peak is a fade too (a pulse too weak to see), ms: two
/// beats at the slowest heart rate.
const FADED_SILENCE_MS: u64 = 3_000;
/// Beats below this cuff pressure do not count while inflating: no adult's mean arterial pressure
/// is that low, and the start of the pump disturbs the signal.
const LOWEST_MAP_MMHG: f32 = 40.0;
/// Smallest rise taken for a beat while the pump runs (its vibration reaches the sensor), mmHg.
const PUMPING_NOISE_FLOOR_MMHG: f32 = 0.3;
/// The largest oscillation while inflating must be at least this (twice the noise floor) before
/// its fading means anything, mmHg.
const CLEAR_PULSE_MMHG: f32 = 2.0 * PUMPING_NOISE_FLOOR_MMHG;
/// Deflation ends after two beats below this fraction of the envelope's maximum (the diastolic
/// ratio is well above it)...
pub const STOP_RATIO: f32 = 0.55;
/// ...at least this far below the largest one, mmHg...
pub const STOP_BELOW_PEAK_MMHG: f32 = 5.0;
/// ...and only when the largest is at least this, three times the detector's quiet noise floor
/// (mmHg): noise above systolic is not an envelope.
pub const CLEAR_BEAT_MMHG: f32 = 3.0 * QUIET_NOISE_FLOOR_MMHG;
/// Deflation ends here at the latest, mmHg.
pub const DEFLATION_FLOOR_MMHG: f32 = 30.0;
/// Larger oscillations are artefacts, mmHg.
pub const ARTEFACT_MMHG: f32 = 6.0;
/// A beat this many times larger than the last three is an artefact...
pub const ARTEFACT_JUMP: f32 = 2.5;
/// ...when it is larger than this, mmHg.
pub const ARTEFACT_JUMP_FLOOR_MMHG: f32 = 1.5;
/// Beats this soon after an artefact are left out, ms.
pub const ARTEFACT_GUARD_MS: u64 = 1_500;

/// While deflating, the smoothed pressure staying this far above its lowest...
const PUMP_RUNS_ON_RISE_MMHG: f32 = 8.0;
/// ...for this long means the pump is still running, ms.
const PUMP_RUNS_ON_MS: u64 = 3_000;
/// Valve open before zeroing, ms.
const VENT_MS: u64 = 2_000;
/// Samples averaged for the zero.
const ZERO_SAMPLES: u16 = 16;
/// Largest spread of the zero samples, mmHg: more means the cuff is being squeezed.
const ZERO_SPREAD_MMHG: f32 = 1.0;
/// Longest wait for a steady zero, ms.
const ZERO_TIMEOUT_MS: u64 = 5_000;
/// Beats are ignored this long after the pump starts or stops (the filters settle), ms.
const SETTLE_MS: u64 = 1_000;
/// A sensor silent this long is dead, ms.
const SENSOR_SILENT_MS: u64 = 500;
/// The cuff must reach this within [`FILL_TIMEOUT_MS`] of pumping, mmHg...
const FILL_CHECK_MMHG: f32 = 20.0;
/// ...ms; otherwise it is not connected or leaks.
const FILL_TIMEOUT_MS: u64 = 10_000;
/// The inflation time from [`FILL_CHECK_MMHG`] to this pressure tells a loose cuff, mmHg.
const LOOSE_CHECK_MMHG: f32 = 60.0;
/// Below this the cuff is vented, mmHg...
const VENTED_MMHG: f32 = 3.0;
/// ...for this long, ms.
const VENTED_FOR_MS: u64 = 500;
/// A dump with a silent sensor ends after this, ms.
const DUMP_MAX_MS: u64 = 8_000;
/// Smoothing of the intermediate cuff pressure (two stages), s.
const INTERMEDIATE_TIME_CONSTANT_S: f32 = 0.4;
/// Longest beat interval kept, ms (30 bpm).
const MAX_INTERVAL_MS: u64 = 2_000;

/// Settings of the cycle for one board.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct CycleConfig {
    /// Sensor sensitivity from the factory calibration, ADC counts per mmHg.
    pub counts_per_mmhg: f32,
    /// ADC conversion rate, Hz (the HX710B's 40 Hz mode).
    pub sample_rate_hz: f32,
    /// Any sample above this aborts the cycle, mmHg.
    pub over_pressure_mmhg: f32,
    /// Inflation never goes past this, mmHg.
    pub max_inflation_mmhg: f32,
    /// The whole cycle, venting to end of deflation, ms.
    pub max_cycle_ms: u64,
    /// Period of the intermediate cuff pressure, ms.
    pub intermediate_period_ms: u64,
    /// Inflating from 20 to 60 mmHg slower than this means the cuff is wrapped too loosely, ms
    /// (the reference pump does it in about 3 s on a snug cuff).
    pub loose_cuff_rise_ms: u64,
}

impl CycleConfig {
    /// The reference board's settings with this unit's sensor sensitivity.
    pub const fn new(counts_per_mmhg: f32) -> Self {
        Self {
            counts_per_mmhg,
            sample_rate_hz: 40.0,
            over_pressure_mmhg: 300.0,
            max_inflation_mmhg: 280.0,
            max_cycle_ms: 180_000,
            intermediate_period_ms: 500,
            loose_cuff_rise_ms: 4_500,
        }
    }
}

/// Where the cycle is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// No measurement; pump off, valve shut.
    Idle,
    /// Letting any air out before zeroing.
    Venting,
    /// Measuring the sensor's zero on the vented cuff.
    Zeroing,
    /// Pumping up.
    Inflating,
    /// Letting the cuff down through the bleed, recording beats.
    Deflating,
    /// Valve open until the cuff is vented.
    Dumping,
    /// The pump runs on with its pin off: the valve stays open for good (until the next
    /// `start`, which will find the same fault).
    Fault,
}

/// Wanted state of the pump and the valve.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Actuators {
    /// Pump running.
    pub pump_on: bool,
    /// Dump valve open.
    pub valve_open: bool,
}

/// A finished measurement.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Outcome {
    /// mmHg.
    pub systolic_mmhg: f32,
    /// mmHg.
    pub diastolic_mmhg: f32,
    /// mmHg.
    pub mean_arterial_mmhg: f32,
    /// Beats per minute, when enough beats were timed.
    pub pulse_rate_bpm: Option<f32>,
    /// Artefacts were seen in the signal.
    pub body_movement: bool,
    /// The beat intervals were irregular.
    pub irregular_pulse: bool,
    /// The cuff filled too slowly: wrapped too loosely.
    pub cuff_too_loose: bool,
}

/// Why a cycle stopped without a measurement.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Abort {
    /// The cuff pressure went above the safety limit.
    OverPressure {
        /// The sample that did it, mmHg.
        pressure_mmhg: f32,
    },
    /// The cycle ran past its maximum duration.
    CycleTooLong {
        /// Time since the start, ms.
        elapsed_ms: u64,
    },
    /// No sample from the pressure ADC for too long.
    SensorSilent {
        /// Time of the last sample, ms.
        last_sample_ms: u64,
    },
    /// The vented cuff's pressure did not hold still long enough to zero the sensor.
    ZeroUnstable,
    /// The pump ran but the cuff did not fill: not connected, or leaking.
    CuffDoesNotFill {
        /// Pressure reached, mmHg.
        pressure_mmhg: f32,
    },
    /// The pressure kept rising with the pump switched off: its driver is stuck on.
    PumpRunsOn {
        /// Pressure reached (smoothed), mmHg.
        pressure_mmhg: f32,
    },
    /// The deflation did not give a blood pressure.
    NoMeasurement(EstimateError),
}

/// What a step of the cycle reports.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum CycleEvent {
    /// The current cuff pressure (smoothed), every `intermediate_period_ms` while inflating and
    /// deflating.
    CuffPressure {
        /// mmHg.
        pressure_mmhg: f32,
    },
    /// The measurement, once the cuff is vented.
    Finished(Outcome),
    /// The cycle stopped; the valve is open.
    Aborted(Abort),
}

/// A measurement is already under way.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Busy;

#[derive(Debug, Clone, Copy, PartialEq)]
enum State {
    Idle,
    Venting {
        until_ms: u64,
    },
    Zeroing {
        since_ms: u64,
        sum: i64,
        samples: u16,
        low: i32,
        high: i32,
    },
    Inflating {
        since_ms: u64,
        filled_at_ms: Option<u64>,
        fit_checked: bool,
    },
    Deflating,
    /// The pump cannot be stopped: the valve stays open.
    Fault,
    Dumping {
        since_ms: u64,
        vented_since_ms: Option<u64>,
        result: Option<Result<Outcome, Abort>>,
    },
}

/// Follows the oscillations while inflating, to know when to stop.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
struct InflationWatch {
    largest_mmhg: f32,
    cuff_at_largest_mmhg: f32,
    /// Pressure of the first of the faded beats in a row, and how many there are.
    faded_from_mmhg: f32,
    faded_beats: u8,
    last_beat_ms: u64,
    target_mmhg: Option<f32>,
}

impl InflationWatch {
    /// A beat, reported at `now_ms` (the detector reports a few hundred ms late).
    fn beat(&mut self, now_ms: u64, beat: &Beat) {
        self.last_beat_ms = now_ms;
        if beat.cuff_mmhg < LOWEST_MAP_MMHG {
            return;
        }
        let amplitude = beat.amplitude_mmhg;
        if amplitude > self.largest_mmhg {
            self.largest_mmhg = amplitude;
            self.cuff_at_largest_mmhg = beat.cuff_mmhg;
            self.faded_beats = 0;
        } else if self.past_the_peak(beat.cuff_mmhg) && amplitude < VANISH_RATIO * self.largest_mmhg
        {
            if self.faded_beats == 0 {
                self.faded_from_mmhg = beat.cuff_mmhg;
            }
            self.faded_beats = self.faded_beats.saturating_add(1);
            if self.faded_beats >= FADED_BEATS {
                self.set_target(self.faded_from_mmhg + INFLATION_MARGIN_MMHG);
            }
        } else {
            self.faded_beats = 0;
        }
    }

    /// No beat for a while: above the peak, the pulse has faded below what can be seen.
    fn quiet(&mut self, now_ms: u64, cuff_mmhg: f32) {
        if self.past_the_peak(cuff_mmhg)
            && now_ms.saturating_sub(self.last_beat_ms) > FADED_SILENCE_MS
        {
            // The fade is somewhere in the silence, well below here: stop now.
            self.set_target(cuff_mmhg);
        }
    }

    fn past_the_peak(&self, cuff_mmhg: f32) -> bool {
        self.largest_mmhg >= CLEAR_PULSE_MMHG
            && cuff_mmhg > self.cuff_at_largest_mmhg + VANISH_ABOVE_PEAK_MMHG
    }

    fn set_target(&mut self, target_mmhg: f32) {
        if self.target_mmhg.is_none() {
            self.target_mmhg = Some(target_mmhg);
        }
    }
}

/// What the deflation makes of a beat.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Verdict {
    /// A good beat, with the interval since the previous good one when they are consecutive.
    Accepted { interval_ms: Option<u16> },
    /// Motion.
    Artefact,
    /// Too close after an artefact or a filter reset to trust.
    Skipped,
}

/// Sorts the deflation's beats and follows the envelope, to know when to stop.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
struct DeflationWatch {
    recent_mmhg: [f32; 3],
    recent: usize,
    previous_ms: Option<u64>,
    guard_until_ms: u64,
    previous_mmhg: Option<f32>,
    largest_mmhg: f32,
    cuff_at_largest_mmhg: f32,
    beats_below: u8,
    lowest_mmhg: Option<f32>,
    rising_since_ms: Option<u64>,
}

impl DeflationWatch {
    /// Follows the smoothed pressure; true once it has stayed [`PUMP_RUNS_ON_RISE_MMHG`] above
    /// its lowest for [`PUMP_RUNS_ON_MS`]: more than a moving arm does.
    fn rising(&mut self, now_ms: u64, smoothed_mmhg: f32) -> bool {
        let lowest = self
            .lowest_mmhg
            .map_or(smoothed_mmhg, |l| l.min(smoothed_mmhg));
        self.lowest_mmhg = Some(lowest);
        if smoothed_mmhg <= lowest + PUMP_RUNS_ON_RISE_MMHG {
            self.rising_since_ms = None;
            return false;
        }
        let since = *self.rising_since_ms.get_or_insert(now_ms);
        now_ms.saturating_sub(since) > PUMP_RUNS_ON_MS
    }

    fn judge(&mut self, beat: &Beat) -> Verdict {
        if beat.time_ms < self.guard_until_ms {
            self.previous_ms = None;
            return Verdict::Skipped;
        }
        let amplitude = beat.amplitude_mmhg;
        let recent_largest = self
            .recent_mmhg
            .iter()
            .take(self.recent)
            .fold(0.0f32, |a, &b| a.max(b));
        let jump = self.recent > 0
            && amplitude > ARTEFACT_JUMP_FLOOR_MMHG
            && amplitude > ARTEFACT_JUMP * recent_largest;
        if amplitude > ARTEFACT_MMHG || jump {
            self.guard_until_ms = beat.time_ms + ARTEFACT_GUARD_MS;
            self.previous_ms = None;
            return Verdict::Artefact;
        }
        let interval_ms = self
            .previous_ms
            .map(|previous| beat.time_ms.saturating_sub(previous))
            .filter(|&interval| interval <= MAX_INTERVAL_MS)
            .map(|interval| interval as u16);
        self.previous_ms = Some(beat.time_ms);
        self.recent_mmhg.rotate_right(1);
        if let Some(newest) = self.recent_mmhg.first_mut() {
            *newest = amplitude;
        }
        self.recent = (self.recent + 1).min(self.recent_mmhg.len());
        Verdict::Accepted { interval_ms }
    }

    /// Follows the envelope; true once it is well below its diastolic level.
    fn past_diastolic(&mut self, beat: &Beat) -> bool {
        let amplitude = beat.amplitude_mmhg;
        let smoothed = self
            .previous_mmhg
            .map_or(amplitude, |previous| 0.5 * (previous + amplitude));
        self.previous_mmhg = Some(amplitude);
        if smoothed > self.largest_mmhg {
            self.largest_mmhg = smoothed;
            self.cuff_at_largest_mmhg = beat.cuff_mmhg;
            self.beats_below = 0;
        } else if self.largest_mmhg >= CLEAR_BEAT_MMHG
            && smoothed < STOP_RATIO * self.largest_mmhg
            && beat.cuff_mmhg < self.cuff_at_largest_mmhg - STOP_BELOW_PEAK_MMHG
        {
            self.beats_below = self.beats_below.saturating_add(1);
        } else {
            self.beats_below = 0;
        }
        self.beats_below >= 2
    }
}

/// The measurement cycle of the blood-pressure cuff.
#[derive(Debug, Clone)]
pub struct MeasurementCycle {
    config: CycleConfig,
    state: State,
    started_ms: u64,
    last_sample_ms: u64,
    zero_counts: f32,
    settle_until_ms: u64,
    smoothed_mmhg: [f32; 2],
    next_intermediate_ms: u64,
    detector: PulseDetector,
    inflation: InflationWatch,
    deflation: DeflationWatch,
    oscillogram: Oscillogram,
    body_movement: bool,
    cuff_too_loose: bool,
}

impl MeasurementCycle {
    /// An idle cycle.
    pub fn new(config: CycleConfig) -> Self {
        Self {
            config,
            state: State::Idle,
            started_ms: 0,
            last_sample_ms: 0,
            zero_counts: 0.0,
            settle_until_ms: 0,
            smoothed_mmhg: [0.0; 2],
            next_intermediate_ms: 0,
            detector: PulseDetector::new(config.sample_rate_hz),
            inflation: InflationWatch::default(),
            deflation: DeflationWatch::default(),
            oscillogram: Oscillogram::new(),
            body_movement: false,
            cuff_too_loose: false,
        }
    }

    /// The settings.
    pub fn config(&self) -> &CycleConfig {
        &self.config
    }

    /// Starts a measurement.
    pub fn start(&mut self, now_ms: u64) -> Result<(), Busy> {
        if !matches!(self.state, State::Idle | State::Fault) {
            return Err(Busy);
        }
        *self = Self::new(self.config);
        self.started_ms = now_ms;
        self.last_sample_ms = now_ms;
        self.state = State::Venting {
            until_ms: now_ms + VENT_MS,
        };
        Ok(())
    }

    /// Stops the measurement (the user pressed stop): the cuff is vented, nothing is reported.
    pub fn cancel(&mut self, now_ms: u64) {
        if !matches!(self.state, State::Idle | State::Fault) {
            self.state = State::Dumping {
                since_ms: now_ms,
                vented_since_ms: None,
                result: None,
            };
        }
    }

    /// Where the cycle is.
    pub fn phase(&self) -> Phase {
        match self.state {
            State::Idle => Phase::Idle,
            State::Venting { .. } => Phase::Venting,
            State::Zeroing { .. } => Phase::Zeroing,
            State::Inflating { .. } => Phase::Inflating,
            State::Deflating => Phase::Deflating,
            State::Dumping { .. } => Phase::Dumping,
            State::Fault => Phase::Fault,
        }
    }

    /// How pump and valve should be now.
    pub fn actuators(&self) -> Actuators {
        let (pump_on, valve_open) = match self.state {
            State::Idle | State::Deflating => (false, false),
            State::Venting { .. }
            | State::Zeroing { .. }
            | State::Dumping { .. }
            | State::Fault => (false, true),
            State::Inflating { .. } => (true, false),
        };
        Actuators {
            pump_on,
            valve_open,
        }
    }

    /// The beats recorded so far in this cycle's deflation.
    pub fn oscillogram(&self) -> &Oscillogram {
        &self.oscillogram
    }

    /// Time passes without a sample: watches for a silent sensor and the cycle's length.
    pub fn on_tick(&mut self, now_ms: u64) -> Option<CycleEvent> {
        let silent = now_ms.saturating_sub(self.last_sample_ms) > SENSOR_SILENT_MS;
        match self.state {
            State::Idle | State::Fault => None,
            State::Dumping {
                since_ms, result, ..
            } => {
                if silent && now_ms.saturating_sub(since_ms) >= DUMP_MAX_MS {
                    self.state = State::Idle;
                    return result.map(Self::report);
                }
                None
            }
            _ if silent => self.abort(
                now_ms,
                Abort::SensorSilent {
                    last_sample_ms: self.last_sample_ms,
                },
            ),
            _ => self.check_duration(now_ms),
        }
    }

    /// A conversion of the pressure ADC, taken at `now_ms`.
    pub fn on_sample(&mut self, now_ms: u64, counts: i32) -> Option<CycleEvent> {
        if matches!(self.state, State::Idle | State::Fault) {
            return None;
        }
        self.last_sample_ms = now_ms;
        if let Some(event) = self.check_duration(now_ms) {
            return Some(event);
        }
        match self.state {
            State::Idle | State::Fault => None,
            State::Venting { until_ms } => {
                if now_ms >= until_ms {
                    self.state = State::Zeroing {
                        since_ms: now_ms,
                        sum: 0,
                        samples: 0,
                        low: i32::MAX,
                        high: i32::MIN,
                    };
                }
                None
            }
            State::Zeroing { .. } => self.zero(now_ms, counts),
            State::Inflating { .. } | State::Deflating | State::Dumping { .. } => {
                let pressure_mmhg =
                    (counts as f32 - self.zero_counts) / self.config.counts_per_mmhg;
                let closed = matches!(self.state, State::Inflating { .. } | State::Deflating);
                if closed && pressure_mmhg > self.config.over_pressure_mmhg {
                    return self.abort(now_ms, Abort::OverPressure { pressure_mmhg });
                }
                match self.state {
                    State::Inflating { .. } => self.inflate(now_ms, pressure_mmhg),
                    State::Deflating => self.deflate(now_ms, pressure_mmhg),
                    _ => self.dump(now_ms, pressure_mmhg),
                }
            }
        }
    }

    fn check_duration(&mut self, now_ms: u64) -> Option<CycleEvent> {
        let elapsed_ms = now_ms.saturating_sub(self.started_ms);
        let measuring = !matches!(
            self.state,
            State::Idle | State::Dumping { .. } | State::Fault
        );
        if measuring && elapsed_ms > self.config.max_cycle_ms {
            return self.abort(now_ms, Abort::CycleTooLong { elapsed_ms });
        }
        None
    }

    fn abort(&mut self, now_ms: u64, abort: Abort) -> Option<CycleEvent> {
        self.state = match abort {
            // Venting would end, and the valve close, while the pump still runs.
            Abort::PumpRunsOn { .. } => State::Fault,
            _ => State::Dumping {
                since_ms: now_ms,
                vented_since_ms: None,
                result: None,
            },
        };
        Some(CycleEvent::Aborted(abort))
    }

    fn report(result: Result<Outcome, Abort>) -> CycleEvent {
        match result {
            Ok(outcome) => CycleEvent::Finished(outcome),
            Err(abort) => CycleEvent::Aborted(abort),
        }
    }

    fn zero(&mut self, now_ms: u64, counts: i32) -> Option<CycleEvent> {
        let State::Zeroing {
            since_ms,
            sum,
            samples,
            low,
            high,
        } = &mut self.state
        else {
            return None;
        };
        *sum += i64::from(counts);
        *samples += 1;
        *low = (*low).min(counts);
        *high = (*high).max(counts);
        if *samples < ZERO_SAMPLES {
            return None;
        }
        let spread_mmhg = (*high as f32 - *low as f32) / self.config.counts_per_mmhg;
        if spread_mmhg <= ZERO_SPREAD_MMHG {
            // Integer mean: a count is 1/20 000 mmHg, and f64 would cost the soft-float library.
            self.zero_counts = (*sum / i64::from(*samples)) as f32;
            self.state = State::Inflating {
                since_ms: now_ms,
                filled_at_ms: None,
                fit_checked: false,
            };
            self.settle_until_ms = now_ms + SETTLE_MS;
            self.detector.set_noise_floor(PUMPING_NOISE_FLOOR_MMHG);
            self.next_intermediate_ms = now_ms;
            self.smoothed_mmhg = [0.0; 2];
            return None;
        }
        if now_ms.saturating_sub(*since_ms) > ZERO_TIMEOUT_MS {
            return self.abort(now_ms, Abort::ZeroUnstable);
        }
        *sum = 0;
        *samples = 0;
        *low = i32::MAX;
        *high = i32::MIN;
        None
    }

    fn inflate(&mut self, now_ms: u64, pressure_mmhg: f32) -> Option<CycleEvent> {
        let State::Inflating {
            since_ms,
            filled_at_ms,
            fit_checked,
        } = &mut self.state
        else {
            return None;
        };
        match *filled_at_ms {
            None if pressure_mmhg >= FILL_CHECK_MMHG => *filled_at_ms = Some(now_ms),
            None if now_ms.saturating_sub(*since_ms) > FILL_TIMEOUT_MS => {
                return self.abort(now_ms, Abort::CuffDoesNotFill { pressure_mmhg });
            }
            Some(filled_ms) if pressure_mmhg >= LOOSE_CHECK_MMHG && !*fit_checked => {
                *fit_checked = true;
                self.cuff_too_loose =
                    now_ms.saturating_sub(filled_ms) > self.config.loose_cuff_rise_ms;
            }
            _ => {}
        }
        if let Some(beat) = self.detector.push(now_ms, pressure_mmhg)
            && beat.time_ms >= self.settle_until_ms
        {
            if beat.amplitude_mmhg > ARTEFACT_MMHG {
                self.body_movement = true;
            } else {
                self.inflation.beat(now_ms, &beat);
            }
        }
        self.inflation.quiet(now_ms, pressure_mmhg);
        let limit = self
            .inflation
            .target_mmhg
            .map_or(self.config.max_inflation_mmhg, |target| {
                target.min(self.config.max_inflation_mmhg)
            });
        if pressure_mmhg >= limit {
            self.state = State::Deflating;
            self.detector.reset();
            self.settle_until_ms = now_ms + SETTLE_MS;
        }
        self.intermediate(now_ms, pressure_mmhg)
    }

    fn deflate(&mut self, now_ms: u64, pressure_mmhg: f32) -> Option<CycleEvent> {
        if pressure_mmhg < DEFLATION_FLOOR_MMHG {
            return self.finish(now_ms);
        }
        let [_, smoothed_mmhg] = self.smoothed_mmhg;
        if now_ms >= self.settle_until_ms && self.deflation.rising(now_ms, smoothed_mmhg) {
            return self.abort(
                now_ms,
                Abort::PumpRunsOn {
                    pressure_mmhg: smoothed_mmhg,
                },
            );
        }
        if let Some(beat) = self.detector.push(now_ms, pressure_mmhg) {
            if beat.time_ms < self.settle_until_ms {
                return self.intermediate(now_ms, pressure_mmhg);
            }
            match self.deflation.judge(&beat) {
                Verdict::Accepted { interval_ms } => {
                    self.oscillogram.record(Point {
                        cuff_mmhg: beat.cuff_mmhg,
                        amplitude_mmhg: beat.amplitude_mmhg,
                        interval_ms,
                    });
                    // Past diastolic by the envelope's shape; a dip from a disturbed beat that
                    // the estimate sees through does not end the deflation.
                    if self.deflation.past_diastolic(&beat)
                        && oscillometry::estimate(&self.oscillogram)
                            != Err(EstimateError::DiastolicNotBracketed)
                    {
                        return self.finish(now_ms);
                    }
                }
                Verdict::Artefact => self.body_movement = true,
                Verdict::Skipped => {}
            }
        }
        self.intermediate(now_ms, pressure_mmhg)
    }

    fn finish(&mut self, now_ms: u64) -> Option<CycleEvent> {
        let result = oscillometry::estimate(&self.oscillogram)
            .map(|estimate| {
                let rhythm = rhythm::analyse(&self.oscillogram, estimate.max_amplitude_mmhg);
                Outcome {
                    systolic_mmhg: estimate.systolic_mmhg,
                    diastolic_mmhg: estimate.diastolic_mmhg,
                    mean_arterial_mmhg: estimate.mean_arterial_mmhg,
                    pulse_rate_bpm: rhythm.map(|r| r.pulse_rate_bpm),
                    body_movement: self.body_movement,
                    irregular_pulse: rhythm.is_some_and(|r| r.irregular),
                    cuff_too_loose: self.cuff_too_loose,
                }
            })
            .map_err(Abort::NoMeasurement);
        self.state = State::Dumping {
            since_ms: now_ms,
            vented_since_ms: None,
            result: Some(result),
        };
        None
    }

    fn dump(&mut self, now_ms: u64, pressure_mmhg: f32) -> Option<CycleEvent> {
        let State::Dumping {
            vented_since_ms,
            result,
            ..
        } = &mut self.state
        else {
            return None;
        };
        if pressure_mmhg >= VENTED_MMHG {
            *vented_since_ms = None;
            return None;
        }
        let since = *vented_since_ms.get_or_insert(now_ms);
        if now_ms.saturating_sub(since) < VENTED_FOR_MS {
            return None;
        }
        let result = *result;
        self.state = State::Idle;
        result.map(Self::report)
    }

    /// Smooths the pressure and reports it when its period is up.
    fn intermediate(&mut self, now_ms: u64, pressure_mmhg: f32) -> Option<CycleEvent> {
        let dt = 1.0 / self.config.sample_rate_hz.max(1.0);
        let alpha = dt / (INTERMEDIATE_TIME_CONSTANT_S + dt);
        let [first, second] = &mut self.smoothed_mmhg;
        *first += alpha * (pressure_mmhg - *first);
        *second += alpha * (*first - *second);
        if now_ms < self.next_intermediate_ms {
            return None;
        }
        self.next_intermediate_ms = now_ms + self.config.intermediate_period_ms;
        Some(CycleEvent::CuffPressure {
            pressure_mmhg: *second,
        })
    }
}

#[cfg(test)]
mod tests {
    extern crate std;

    use std::vec::Vec;

    use super::*;

    const COUNTS_PER_MMHG: f32 = 1_000.0;
    const ZERO_COUNTS: i32 = 5_000;
    const SAMPLE_MS: u64 = 25;

    /// A cycle fed plain pressures at 40 Hz.
    struct Bench {
        cycle: MeasurementCycle,
        now_ms: u64,
    }

    impl Bench {
        fn new(config: CycleConfig) -> Self {
            let mut cycle = MeasurementCycle::new(config);
            cycle.start(0).unwrap();
            Self { cycle, now_ms: 0 }
        }

        fn started() -> Self {
            Self::new(CycleConfig::new(COUNTS_PER_MMHG))
        }

        fn sample(&mut self, mmhg: f32) -> Option<CycleEvent> {
            self.now_ms += SAMPLE_MS;
            let counts = ZERO_COUNTS + (mmhg * COUNTS_PER_MMHG) as i32;
            self.cycle.on_sample(self.now_ms, counts)
        }

        /// Feeds `mmhg(seconds since now)` for `seconds`, collecting the events.
        fn feed(&mut self, seconds: f32, mmhg: impl Fn(f32) -> f32) -> Vec<CycleEvent> {
            let start = self.now_ms;
            let mut events = Vec::new();
            while ((self.now_ms - start) as f32) < seconds * 1000.0 {
                let t = (self.now_ms - start) as f32 / 1000.0;
                events.extend(self.sample(mmhg(t)));
            }
            events
        }

        /// Vents and zeroes on a quiet sensor: the cycle is then inflating.
        fn inflating() -> Self {
            let mut bench = Self::started();
            bench.feed(2.5, |_| 0.0);
            assert_eq!(bench.cycle.phase(), Phase::Inflating);
            bench
        }

        fn actuators(&self) -> (bool, bool) {
            let a = self.cycle.actuators();
            (a.pump_on, a.valve_open)
        }
    }

    fn aborts(events: &[CycleEvent]) -> Vec<Abort> {
        events
            .iter()
            .filter_map(|e| match e {
                CycleEvent::Aborted(abort) => Some(*abort),
                _ => None,
            })
            .collect()
    }

    #[test]
    fn vents_then_zeroes_then_pumps_with_the_valve_shut() {
        let mut bench = Bench::started();
        assert_eq!(bench.cycle.phase(), Phase::Venting);
        assert_eq!(bench.actuators(), (false, true));
        bench.feed(2.0, |_| 0.0);
        assert_eq!(bench.cycle.phase(), Phase::Zeroing);
        assert_eq!(bench.actuators(), (false, true));
        bench.feed(0.5, |_| 0.0);
        assert_eq!(bench.cycle.phase(), Phase::Inflating);
        assert_eq!(bench.actuators(), (true, false));
    }

    #[test]
    fn a_second_start_while_measuring_is_refused() {
        let mut bench = Bench::inflating();
        assert_eq!(bench.cycle.start(bench.now_ms), Err(Busy));
    }

    #[test]
    fn the_zero_is_taken_from_the_vented_cuff() {
        let mut bench = Bench::started();
        // The sensor reads 7 mmHg worth of offset on a vented cuff: that is the new zero.
        bench.feed(2.5, |_| 7.0);
        let events = bench.feed(0.6, |t| 7.0 + 10.0 * t);
        let reported = events.iter().find_map(|e| match e {
            CycleEvent::CuffPressure { pressure_mmhg } => Some(*pressure_mmhg),
            _ => None,
        });
        assert!(reported.is_some_and(|p| p.abs() < 1.0), "{reported:?}");
    }

    #[test]
    fn an_unsteady_zero_aborts() {
        let mut bench = Bench::started();
        let events = bench.feed(8.0, |t| {
            if ((t * 40.0) as u32).is_multiple_of(2) {
                0.0
            } else {
                3.0
            }
        });
        assert_eq!(aborts(&events), [Abort::ZeroUnstable]);
        assert_eq!(bench.actuators(), (false, true));
    }

    #[test]
    fn the_cuff_pressure_is_reported_every_500_ms_while_inflating() {
        let mut bench = Bench::inflating();
        let events = bench.feed(5.0, |t| 15.0 * t);
        let pressures: Vec<f32> = events
            .iter()
            .filter_map(|e| match e {
                CycleEvent::CuffPressure { pressure_mmhg } => Some(*pressure_mmhg),
                _ => None,
            })
            .collect();
        assert_eq!(pressures.len(), 10, "{pressures:?}");
        assert!(pressures.windows(2).all(|w| w[1] > w[0]), "{pressures:?}");
    }

    #[test]
    fn a_sample_over_the_limit_stops_the_pump_and_opens_the_valve() {
        let mut bench = Bench::inflating();
        assert_eq!(
            bench.sample(301.0),
            Some(CycleEvent::Aborted(Abort::OverPressure {
                pressure_mmhg: 301.0
            }))
        );
        assert_eq!(bench.cycle.phase(), Phase::Dumping);
        assert_eq!(bench.actuators(), (false, true));
        // Once vented, back to idle with nothing more to report.
        let events = bench.feed(1.0, |_| 0.0);
        assert!(events.is_empty(), "{events:?}");
        assert_eq!(bench.cycle.phase(), Phase::Idle);
        assert_eq!(bench.actuators(), (false, false));
    }

    #[test]
    fn a_silent_sensor_aborts() {
        let mut bench = Bench::inflating();
        let last = bench.now_ms;
        assert_eq!(bench.cycle.on_tick(last + 400), None);
        assert_eq!(
            bench.cycle.on_tick(last + 600),
            Some(CycleEvent::Aborted(Abort::SensorSilent {
                last_sample_ms: last
            }))
        );
        assert_eq!(bench.actuators(), (false, true));
        // The valve stays open a while even without a sensor, then the cycle gives up.
        assert_eq!(bench.cycle.on_tick(last + 5_000), None);
        assert_eq!(bench.cycle.phase(), Phase::Dumping);
        assert_eq!(bench.cycle.on_tick(last + 9_000), None);
        assert_eq!(bench.cycle.phase(), Phase::Idle);
    }

    #[test]
    fn a_cycle_past_its_maximum_duration_aborts() {
        let config = CycleConfig {
            max_cycle_ms: 10_000,
            ..CycleConfig::new(COUNTS_PER_MMHG)
        };
        let mut bench = Bench::new(config);
        bench.feed(2.5, |_| 0.0);
        // A slow pump that never reaches its target in time.
        let events = bench.feed(10.0, |t| 21.0 + 2.0 * t);
        assert!(
            matches!(aborts(&events)[..], [Abort::CycleTooLong { elapsed_ms }] if elapsed_ms > 10_000),
            "{events:?}"
        );
    }

    #[test]
    fn a_cuff_that_stays_empty_while_pumping_aborts() {
        let mut bench = Bench::inflating();
        let events = bench.feed(11.0, |_| 2.0);
        assert!(
            matches!(aborts(&events)[..], [Abort::CuffDoesNotFill { .. }]),
            "{events:?}"
        );
    }

    #[test]
    fn a_slow_fill_from_20_to_60_mmhg_marks_the_cuff_too_loose() {
        let mut bench = Bench::inflating();
        bench.feed(1.0, |t| 20.0 * t);
        // 40 mmHg in 8 s, where the reference pump takes 3.
        bench.feed(8.5, |t| 20.0 + 5.0 * t);
        assert!(bench.cycle.cuff_too_loose);
        let mut snug = Bench::inflating();
        snug.feed(5.0, |t| 15.0 * t);
        assert!(!snug.cycle.cuff_too_loose);
    }

    #[test]
    fn pressure_rising_with_the_pump_off_is_a_stuck_pump_and_the_valve_stays_open() {
        let mut bench = Bench::inflating();
        // No pulse at all: the inflation goes to its ceiling, then the pump is switched off...
        bench.feed(18.8, |t| 15.0 * t);
        assert_eq!(bench.cycle.phase(), Phase::Deflating);
        assert_eq!(bench.actuators(), (false, false));
        // ...but the pressure keeps rising.
        let events = bench.feed(6.0, |t| 282.0 + 3.0 * t);
        assert!(
            matches!(aborts(&events)[..], [Abort::PumpRunsOn { .. }]),
            "{events:?}"
        );
        assert_eq!(bench.cycle.phase(), Phase::Fault);
        assert_eq!(bench.actuators(), (false, true));
        // Venting does not end the fault: the valve stays open.
        bench.feed(3.0, |_| 0.0);
        assert_eq!(bench.actuators(), (false, true));
        assert!(bench.cycle.start(bench.now_ms).is_ok());
    }

    #[test]
    fn cancel_vents_the_cuff_and_reports_nothing() {
        let mut bench = Bench::inflating();
        bench.feed(2.0, |t| 15.0 * t);
        bench.cycle.cancel(bench.now_ms);
        assert_eq!(bench.actuators(), (false, true));
        let events = bench.feed(1.0, |_| 0.0);
        assert!(events.is_empty(), "{events:?}");
        assert_eq!(bench.cycle.phase(), Phase::Idle);
    }

    #[test]
    fn the_cycle_state_fits_in_a_kilobyte_and_a_half() {
        let size = size_of::<MeasurementCycle>();
        assert!(size <= 1_536, "{size} bytes");
    }
}
