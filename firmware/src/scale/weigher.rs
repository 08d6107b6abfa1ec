//! The weighing state machine, sans I/O: conversions in, weighings out.
//!
//! ```text
//!  Zeroing ──still──► Empty ──load ≥ 1.5 kg──► Settling ──still──► Weighed
//!                      ▲  ▲                       │                  │
//!                      │  └──── load < 0.5 kg ────┘                  │
//!                      └──────────────── load < 0.5 kg ──────────────┘
//! ```
//!
//! - **Zeroing**: after power-on, the first still reading becomes the zero if it is within
//!   ±10 kg of the calibrated zero (otherwise someone is already standing on the scale, and the
//!   calibrated zero is kept).
//! - **Empty**: auto-zero tracking follows the slow drift of the zero while the platform is
//!   empty and still within ±0.25 kg, at most 2 g per conversion (20 g/s), so nothing put on the
//!   platform is mistaken for drift.
//! - **Settling**: a load arrived; nothing is reported while it moves. If it leaves before it
//!   held still (someone stepped off quickly), there is no weighing.
//! - **Weighed**: one weighing has been reported; there is no other until the platform has been
//!   emptied, whatever the person on it does.
//!
//! A calibration or a tare request takes over the next still reading.

use super::calibration::{Calibration, CalibrationError, CalibrationStep, TwoPointCalibration};
use super::filter::SpikeFilter;
use super::stability::StabilityWindow;

/// Still means every conversion of the stability window (the last 2 s) within ±50 g.
pub const STILL_HALF_BAND_KG: f32 = 0.050;
/// A load this heavy starts a weighing.
pub const LOAD_KG: f32 = 1.5;
/// Below this the platform counts as empty again (hysteresis against `LOAD_KG`).
pub const EMPTY_KG: f32 = 0.5;
/// Heavier than this is an overload: the weighing is reported as unsuccessful.
pub const CAPACITY_KG: f32 = 180.0;
/// Auto-zero tracking only corrects readings this close to zero.
pub const AUTO_ZERO_BAND_KG: f32 = 0.25;
/// Auto-zero tracking moves the zero by at most this much per conversion.
pub const AUTO_ZERO_STEP_KG: f32 = 0.002;
/// The power-on zero is only taken this close to the calibrated zero.
pub const POWER_ON_ZERO_RANGE_KG: f32 = 10.0;

/// What the weigher reports.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum WeigherEvent {
    /// A load held still: its weight, once per weighing.
    Weighed { kg: f32 },
    /// A load held still above `CAPACITY_KG`.
    Overloaded,
    /// The two-point calibration finished; the new calibration is in use.
    Calibrated(Calibration),
    /// The two-point calibration failed and was abandoned.
    CalibrationFailed(CalibrationError),
}

/// Where the weigher is in a weighing (see the module documentation).
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Phase {
    /// Just powered on: waiting for a still reading to take the zero from.
    Zeroing,
    /// Nothing on the platform; the zero is tracked.
    Empty,
    /// A load arrived and has not held still yet.
    Settling,
    /// The load was weighed; waiting for the platform to be emptied.
    Weighed,
    /// The two-point calibration is under way; nothing is weighed.
    Calibrating(TwoPointCalibration),
}

/// Conversions in, weighings out.
#[derive(Debug, Clone)]
pub struct Weigher {
    calibration: Calibration,
    /// The counts that read 0 kg now: the calibration's zero, moved by tare and tracking.
    zero_counts: f32,
    spikes: SpikeFilter,
    window: StabilityWindow,
    phase: Phase,
    tare_requested: bool,
    auto_zero_tracking: bool,
    /// The latest filtered conversion, for the display.
    latest_counts: Option<i32>,
}

impl Weigher {
    /// A weigher that finds its zero at the first still reading.
    pub fn new(calibration: Calibration) -> Self {
        Self {
            calibration,
            zero_counts: calibration.zero_counts as f32,
            spikes: SpikeFilter::new(),
            window: StabilityWindow::new(),
            phase: Phase::Zeroing,
            tare_requested: false,
            auto_zero_tracking: true,
            latest_counts: None,
        }
    }

    /// Takes one conversion; returns what it completed, if anything.
    pub fn on_conversion(&mut self, counts: i32) -> Option<WeigherEvent> {
        let filtered = self.spikes.push(counts);
        self.latest_counts = Some(filtered);
        self.window.push(filtered);
        let kg_now = self.kg(filtered as f32);
        let still = self
            .window
            .still_mean(self.calibration.counts_for(STILL_HALF_BAND_KG));
        if let Some(mean) = still
            && self.tare_requested
        {
            self.tare_requested = false;
            self.zero_counts = mean;
            if !matches!(self.phase, Phase::Calibrating(_)) {
                self.phase = Phase::Empty;
            }
            return None;
        }
        match self.phase {
            Phase::Zeroing => {
                if let Some(mean) = still {
                    let from_calibrated = self
                        .calibration
                        .kg(mean, self.calibration.zero_counts as f32);
                    if from_calibrated.abs() <= POWER_ON_ZERO_RANGE_KG {
                        self.zero_counts = mean;
                    }
                    self.phase = Phase::Empty;
                }
                None
            }
            Phase::Empty => {
                if kg_now >= LOAD_KG {
                    self.phase = Phase::Settling;
                } else if let Some(mean) = still {
                    self.track_zero(mean);
                }
                None
            }
            Phase::Settling => {
                if kg_now < EMPTY_KG {
                    self.phase = Phase::Empty;
                    return None;
                }
                let mean = still?;
                self.phase = Phase::Weighed;
                let kg = self.kg(mean);
                Some(if kg > CAPACITY_KG {
                    WeigherEvent::Overloaded
                } else {
                    WeigherEvent::Weighed { kg }
                })
            }
            Phase::Weighed => {
                if kg_now < EMPTY_KG {
                    self.phase = Phase::Empty;
                }
                None
            }
            Phase::Calibrating(mut procedure) => {
                let mean = still?;
                let outcome = procedure.on_still(mean);
                self.phase = Phase::Calibrating(procedure);
                match outcome? {
                    Ok(calibration) => {
                        self.set_calibration(calibration);
                        // The reference mass is still on: it is not a weighing.
                        self.phase = Phase::Weighed;
                        Some(WeigherEvent::Calibrated(calibration))
                    }
                    Err(error) => {
                        self.phase = Phase::Empty;
                        Some(WeigherEvent::CalibrationFailed(error))
                    }
                }
            }
        }
    }

    /// Zeroes the scale at the next still reading, whatever is on the platform.
    pub fn request_tare(&mut self) {
        self.tare_requested = true;
    }

    /// Starts the two-point calibration with a reference mass of `known_mass_kg`; weighing
    /// stops until it ends.
    pub fn begin_calibration(&mut self, known_mass_kg: f32) -> Result<(), CalibrationError> {
        self.phase = Phase::Calibrating(TwoPointCalibration::new(known_mass_kg)?);
        self.window.clear();
        Ok(())
    }

    /// Abandons a calibration under way; the previous calibration stays in use.
    pub fn cancel_calibration(&mut self) {
        if matches!(self.phase, Phase::Calibrating(_)) {
            self.phase = Phase::Empty;
        }
    }

    /// What a calibration under way waits for.
    pub fn calibration_step(&self) -> Option<CalibrationStep> {
        match &self.phase {
            Phase::Calibrating(procedure) => Some(procedure.step()),
            _ => None,
        }
    }

    /// Uses `calibration` from now on, with its zero.
    pub fn set_calibration(&mut self, calibration: Calibration) {
        self.calibration = calibration;
        self.zero_counts = calibration.zero_counts as f32;
    }

    /// The calibration in use.
    pub fn calibration(&self) -> Calibration {
        self.calibration
    }

    /// Turns auto-zero tracking on (the default) or off.
    pub fn set_auto_zero_tracking(&mut self, on: bool) {
        self.auto_zero_tracking = on;
    }

    /// Where the weighing stands.
    pub fn phase(&self) -> Phase {
        self.phase
    }

    /// The weight now, unfiltered by stillness: what the display shows while the load settles.
    pub fn live_kg(&self) -> Option<f32> {
        self.latest_counts.map(|counts| self.kg(counts as f32))
    }

    fn kg(&self, counts: f32) -> f32 {
        self.calibration.kg(counts, self.zero_counts)
    }

    fn track_zero(&mut self, still_mean: f32) {
        if !self.auto_zero_tracking || self.kg(still_mean).abs() > AUTO_ZERO_BAND_KG {
            return;
        }
        let max_step = self.calibration.counts_for(AUTO_ZERO_STEP_KG);
        self.zero_counts += (still_mean - self.zero_counts).clamp(-max_step, max_step);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scale::stability::WINDOW_LEN;

    const CAL: Calibration = Calibration {
        zero_counts: 50_000,
        counts_per_kg: 10_000.0,
    };

    fn counts(kg: f32) -> i32 {
        50_000 + (kg * 10_000.0) as i32
    }

    /// Feeds `n` conversions of `kg` and collects the events.
    fn feed(weigher: &mut Weigher, kg: f32, n: usize) -> heapless::Vec<WeigherEvent, 8> {
        let mut events = heapless::Vec::new();
        for _ in 0..n {
            if let Some(event) = weigher.on_conversion(counts(kg)) {
                events.push(event).unwrap();
            }
        }
        events
    }

    fn zeroed() -> Weigher {
        let mut weigher = Weigher::new(CAL);
        feed(&mut weigher, 0.0, WINDOW_LEN);
        assert_eq!(weigher.phase(), Phase::Empty);
        weigher
    }

    #[test]
    fn a_still_load_gives_exactly_one_weighing_until_the_platform_empties() {
        let mut weigher = zeroed();
        assert!(feed(&mut weigher, 72.3, WINDOW_LEN).is_empty());
        assert_eq!(
            feed(&mut weigher, 72.3, 1).as_slice(),
            &[WeigherEvent::Weighed { kg: 72.3 }]
        );
        assert!(feed(&mut weigher, 72.3, 100).is_empty());
        assert!(feed(&mut weigher, 0.0, 5).is_empty());
        assert_eq!(weigher.phase(), Phase::Empty);
        let again = feed(&mut weigher, 72.3, 2 * WINDOW_LEN);
        assert_eq!(again.len(), 1);
    }

    #[test]
    fn a_moving_load_is_not_weighed() {
        let mut weigher = zeroed();
        for i in 0..200 {
            let kg = if i % 6 < 3 { 70.0 } else { 70.2 };
            assert_eq!(weigher.on_conversion(counts(kg)), None);
        }
        assert_eq!(weigher.phase(), Phase::Settling);
    }

    #[test]
    fn leaving_before_holding_still_gives_no_weighing() {
        let mut weigher = zeroed();
        assert!(feed(&mut weigher, 50.0, WINDOW_LEN - 2).is_empty());
        assert!(feed(&mut weigher, 0.0, 3 * WINDOW_LEN).is_empty());
        assert_eq!(weigher.phase(), Phase::Empty);
    }

    #[test]
    fn power_on_zero_is_taken_near_the_calibrated_zero_only() {
        let mut weigher = Weigher::new(CAL);
        feed(&mut weigher, 1.2, WINDOW_LEN);
        assert!(weigher.live_kg().unwrap().abs() < 1e-3);
        let mut occupied = Weigher::new(CAL);
        let events = feed(&mut occupied, 64.0, 3 * WINDOW_LEN);
        assert_eq!(events.as_slice(), &[WeigherEvent::Weighed { kg: 64.0 }]);
    }

    #[test]
    fn auto_zero_tracking_follows_slow_drift_but_not_a_placed_object() {
        let mut weigher = zeroed();
        // 0.1 kg of drift: tracked away within a few seconds.
        feed(&mut weigher, 0.1, 10 * WINDOW_LEN);
        assert!(weigher.live_kg().unwrap().abs() < 0.002);
        // 0.4 kg is outside the band: it stays.
        feed(&mut weigher, 0.5, 10 * WINDOW_LEN);
        assert!((weigher.live_kg().unwrap() - 0.4).abs() < 0.002);
        weigher.set_auto_zero_tracking(false);
        let mut untracked = zeroed();
        untracked.set_auto_zero_tracking(false);
        feed(&mut untracked, 0.1, 10 * WINDOW_LEN);
        assert!((untracked.live_kg().unwrap() - 0.1).abs() < 0.002);
    }

    #[test]
    fn tare_zeroes_at_the_next_still_reading() {
        let mut weigher = zeroed();
        weigher.set_auto_zero_tracking(false);
        feed(&mut weigher, 0.8, 2 * WINDOW_LEN);
        weigher.request_tare();
        feed(&mut weigher, 0.8, WINDOW_LEN);
        assert!(weigher.live_kg().unwrap().abs() < 1e-3);
        let events = feed(&mut weigher, 60.8, 2 * WINDOW_LEN);
        assert_eq!(events.as_slice(), &[WeigherEvent::Weighed { kg: 60.0 }]);
    }

    #[test]
    fn overload_is_reported_once() {
        let mut weigher = zeroed();
        let events = feed(&mut weigher, 190.0, 3 * WINDOW_LEN);
        assert_eq!(events.as_slice(), &[WeigherEvent::Overloaded]);
    }

    #[test]
    fn calibration_takes_empty_then_known_mass_and_does_not_weigh_the_mass() {
        let mut weigher = zeroed();
        weigher.begin_calibration(20.0).unwrap();
        feed(&mut weigher, 0.0, WINDOW_LEN);
        assert!(matches!(
            weigher.calibration_step(),
            Some(CalibrationStep::KnownMass { .. })
        ));
        // The true sensitivity is 10 % above the assumed one: 20 kg reads as 22 kg.
        let events = feed(&mut weigher, 22.0, 3 * WINDOW_LEN);
        let expected = Calibration {
            zero_counts: 50_000,
            counts_per_kg: 11_000.0,
        };
        assert_eq!(events.as_slice(), &[WeigherEvent::Calibrated(expected)]);
        assert_eq!(weigher.phase(), Phase::Weighed);
        assert!((weigher.live_kg().unwrap() - 20.0).abs() < 1e-3);
    }
}
