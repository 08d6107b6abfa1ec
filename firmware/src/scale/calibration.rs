//! Calibration: how this unit's counts become kilograms.
//!
//! Load cells differ by ±10 % in sensitivity and the bridge's zero is anywhere within tens of
//! thousands of counts, so every unit is calibrated with two points: the empty platform and a
//! known mass. `TwoPointCalibration` is the procedure, driven by the stable readings the weigher
//! sees; `Calibration` is the result, kept in flash by `CalibrationStore`.

use serde::{Deserialize, Serialize};

/// A unit's conversion from counts to kg: `kg = (counts - zero_counts) / counts_per_kg`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Calibration {
    /// Counts with the platform empty when the unit was calibrated. The weigher's zero starts
    /// here and then follows tare and auto-zero tracking.
    pub zero_counts: i32,
    /// Counts per kg; negative when the bridge happens to be wired the other way round.
    pub counts_per_kg: f32,
}

/// Sensitivities below this are a broken or unconnected bridge, not a calibration: the board's
/// cells give about 10 700 counts per kg.
pub const MIN_COUNTS_PER_KG: f32 = 1_000.0;

impl Calibration {
    /// What an uncalibrated unit of the reference board assumes: cells rated 1 mV/V at 200 kg
    /// into an HX711 at gain 128 (see `relais_board_sim::load_cell` for the derivation). The
    /// zero is found at power-on, so only the sensitivity matters, and it is right to ±10 %.
    pub const NOMINAL: Self = Self {
        zero_counts: 0,
        counts_per_kg: 10_737.0,
    };

    /// The calibration from the mean counts with the platform empty and with `known_mass_kg` on
    /// it.
    pub fn from_two_points(
        zero_counts: f32,
        loaded_counts: f32,
        known_mass_kg: f32,
    ) -> Result<Self, CalibrationError> {
        if !is_positive_finite(known_mass_kg) {
            return Err(CalibrationError::KnownMassNotPositive);
        }
        let counts_per_kg = (loaded_counts - zero_counts) / known_mass_kg;
        if !(counts_per_kg.is_finite() && counts_per_kg.abs().total_cmp(&MIN_COUNTS_PER_KG).is_ge())
        {
            return Err(CalibrationError::TooLittleSpan { counts_per_kg });
        }
        let zero = libm::roundf(zero_counts);
        if !(zero.is_finite() && zero.abs().total_cmp(&8_388_608.0).is_lt()) {
            return Err(CalibrationError::ZeroOutOfRange);
        }
        Ok(Self {
            zero_counts: zero as i32,
            counts_per_kg,
        })
    }

    /// Kilograms for `counts` relative to `zero_counts` (the zero in use, which tare may have
    /// moved away from the calibration's).
    pub fn kg(&self, counts: f32, zero_counts: f32) -> f32 {
        (counts - zero_counts) / self.counts_per_kg
    }

    /// `kg` expressed in counts: for bands and thresholds given in grams.
    pub fn counts_for(&self, kg: f32) -> f32 {
        kg * self.counts_per_kg.abs()
    }
}

/// A mass that can be put on a platform.
fn is_positive_finite(kg: f32) -> bool {
    kg.is_finite() && kg > 0.0
}

/// Why a calibration was refused.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum CalibrationError {
    /// The reference mass must weigh something.
    KnownMassNotPositive,
    /// The known mass moved the reading by too little: it was not on the platform, or the
    /// bridge is disconnected.
    TooLittleSpan { counts_per_kg: f32 },
    /// The empty-platform reading is outside the ADC's range.
    ZeroOutOfRange,
}

/// Where the two-point procedure stands.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum CalibrationStep {
    /// Waiting for the empty platform to hold still.
    EmptyPlatform,
    /// Zero taken; waiting for the known mass to be put on and to hold still.
    KnownMass { zero_counts: f32 },
}

/// The two-point procedure: empty platform, then the known mass, each held still.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TwoPointCalibration {
    known_mass_kg: f32,
    step: CalibrationStep,
}

impl TwoPointCalibration {
    /// Starts a calibration with a reference mass of `known_mass_kg`; the platform must be
    /// empty first.
    pub fn new(known_mass_kg: f32) -> Result<Self, CalibrationError> {
        if !is_positive_finite(known_mass_kg) {
            return Err(CalibrationError::KnownMassNotPositive);
        }
        Ok(Self {
            known_mass_kg,
            step: CalibrationStep::EmptyPlatform,
        })
    }

    /// What the procedure waits for, for the display.
    pub fn step(&self) -> CalibrationStep {
        self.step
    }

    /// Takes the mean counts of a still platform. Returns the result once the known mass has
    /// been seen; until then, a still reading that has not moved by at least `MIN_COUNTS_PER_KG`
    /// per kg of the known mass counts as the empty platform (a newer zero).
    pub fn on_still(&mut self, mean_counts: f32) -> Option<Result<Calibration, CalibrationError>> {
        match self.step {
            CalibrationStep::EmptyPlatform => {
                self.step = CalibrationStep::KnownMass {
                    zero_counts: mean_counts,
                };
                None
            }
            CalibrationStep::KnownMass { zero_counts } => {
                let min_span = MIN_COUNTS_PER_KG * self.known_mass_kg;
                if (mean_counts - zero_counts).abs() < min_span {
                    self.step = CalibrationStep::KnownMass {
                        zero_counts: mean_counts,
                    };
                    return None;
                }
                Some(Calibration::from_two_points(
                    zero_counts,
                    mean_counts,
                    self.known_mass_kg,
                ))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn two_points_give_offset_and_sensitivity_of_either_polarity() {
        let cal = Calibration::from_two_points(40_000.0, 577_000.0, 50.0).unwrap();
        assert_eq!(cal.zero_counts, 40_000);
        assert_eq!(cal.counts_per_kg, 10_740.0);
        assert_eq!(cal.kg(40_000.0 + 10_740.0 * 72.5, 40_000.0), 72.5);
        let reversed = Calibration::from_two_points(40_000.0, -497_000.0, 50.0).unwrap();
        assert_eq!(reversed.counts_per_kg, -10_740.0);
        assert_eq!(reversed.kg(40_000.0 - 10_740.0 * 20.0, 40_000.0), 20.0);
        assert_eq!(reversed.counts_for(0.05), 537.0);
    }

    #[test]
    fn refuses_a_mass_that_did_not_move_the_reading() {
        let err = Calibration::from_two_points(40_000.0, 40_500.0, 50.0).unwrap_err();
        assert_eq!(
            err,
            CalibrationError::TooLittleSpan {
                counts_per_kg: 10.0
            }
        );
        assert_eq!(
            TwoPointCalibration::new(0.0).unwrap_err(),
            CalibrationError::KnownMassNotPositive
        );
    }

    #[test]
    fn procedure_takes_the_empty_platform_then_the_known_mass() {
        let mut procedure = TwoPointCalibration::new(20.0).unwrap();
        assert_eq!(procedure.step(), CalibrationStep::EmptyPlatform);
        assert_eq!(procedure.on_still(1_000.0), None);
        // The empty platform again (a newer zero), not the mass.
        assert_eq!(procedure.on_still(1_010.0), None);
        assert_eq!(
            procedure.step(),
            CalibrationStep::KnownMass {
                zero_counts: 1_010.0
            }
        );
        let cal = procedure
            .on_still(1_010.0 + 20.0 * 11_000.0)
            .unwrap()
            .unwrap();
        assert_eq!(cal.zero_counts, 1_010);
        assert_eq!(cal.counts_per_kg, 11_000.0);
    }
}
