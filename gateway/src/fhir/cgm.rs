//! Continuous glucose monitoring, as MES takes it: not every 5-minute point, but a mean
//! interstitial glucose (NOS MED-969, mg/dL) and a glucose management indicator (MED-972, %) over
//! 7, 14, 30 or 90 days, each with the number-of-days extension (GEN-275..GEN-278).
//!
//! [`aggregate`] computes both from the stored series, purely: the caller gives the samples and
//! the instant the window ends.
//!
//! - Window: samples with `end - days < time <= end`. Samples that are not finite or not
//!   positive are ignored (the uploader stores only usable values; this is a guard).
//! - Coverage: the window is cut into 5-minute slots counted back from `end` (2016 for 7 days).
//!   A slot is covered when at least one sample falls in it, so a sensor that reads every minute
//!   does not count five times. The aggregate exists only when at least **70 %** of the slots are
//!   covered: the consensus rule of CGM reports (Battelino et al., Diabetes Care 2019, "at least
//!   70 % of possible CGM readings over 14 days"), applied to every window length.
//! - Mean: the arithmetic mean of all samples in the window, rounded half away from zero to a
//!   whole mg/dL (CGM values are whole mg/dL).
//! - GMI: `3.31 + 0.02392 × mean` (Bergenstal et al., Diabetes Care 2018), from the unrounded mean,
//!   rounded to 0.1 %. Its authors advise at least 14 days of data; the 7-day GMI is computed all
//!   the same because MES has a code for it, and the caller chooses which windows to send.
//! - Time: `effectiveDateTime` is the window's end, in the hub's zone.

use jiff::{SignedDuration, Timestamp};
use relais_protocol::Decimal;

use super::codes::{self, Coding};
use super::observation::{Measure, Measurement, MeasurementTime};

/// One CGM slot.
pub const SLOT: SignedDuration = SignedDuration::from_secs(5 * 60);

/// The share of slots that must hold a reading, in percent.
pub const MIN_COVERAGE_PERCENT: u32 = 70;

/// The windows MES has a number-of-days code for (JDV J164).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CgmWindow {
    Days7,
    Days14,
    Days30,
    Days90,
}

impl CgmWindow {
    pub const ALL: [CgmWindow; 4] = [Self::Days7, Self::Days14, Self::Days30, Self::Days90];

    pub const fn days(self) -> u32 {
        match self {
            Self::Days7 => 7,
            Self::Days14 => 14,
            Self::Days30 => 30,
            Self::Days90 => 90,
        }
    }

    /// The number-of-days coding (GEN-275, -276, -277, -278).
    pub const fn coding(self) -> Coding {
        match self {
            Self::Days7 => codes::DAYS_7,
            Self::Days14 => codes::DAYS_14,
            Self::Days30 => codes::DAYS_30,
            Self::Days90 => codes::DAYS_90,
        }
    }

    /// 5-minute slots in the window (288 a day).
    pub const fn expected_slots(self) -> u32 {
        self.days() * 288
    }

    fn duration(self) -> SignedDuration {
        SignedDuration::from_hours(24 * self.days() as i64)
    }
}

/// The mean interstitial glucose and GMI of one window.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CgmAggregate {
    pub window: CgmWindow,
    /// The instant the window ends (included).
    pub end: Timestamp,
    /// Whole mg/dL.
    pub mean_mg_per_dl: Decimal,
    /// Percent, one decimal.
    pub gmi_percent: Decimal,
    /// Samples averaged.
    pub samples: usize,
    pub covered_slots: u32,
    pub expected_slots: u32,
}

/// Why no aggregate was computed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum CgmError {
    #[error(
        "CGM coverage too low: {covered} of {expected} 5-minute slots hold a reading (70 % needed)"
    )]
    InsufficientCoverage { covered: u32, expected: u32 },
    #[error("CGM values out of range")]
    OutOfRange,
}

/// The aggregate of `samples` (time, mg/dL) over `window` ending at `end`, when coverage allows
/// (see the module doc).
pub fn aggregate(
    samples: &[(Timestamp, f64)],
    window: CgmWindow,
    end: Timestamp,
) -> Result<CgmAggregate, CgmError> {
    let expected = window.expected_slots();
    let length = window.duration();
    let mut covered = vec![false; expected as usize];
    let (mut sum, mut count) = (0.0f64, 0usize);
    for &(at, value) in samples {
        if !value.is_finite() || value <= 0.0 || at > end {
            continue;
        }
        let age = end.duration_since(at);
        if age >= length {
            continue;
        }
        let slot = age.as_secs() / SLOT.as_secs();
        if let Some(covered) = usize::try_from(slot).ok().and_then(|s| covered.get_mut(s)) {
            *covered = true;
        }
        sum += value;
        count += 1;
    }
    let covered_slots = covered.iter().filter(|c| **c).count() as u32;
    if covered_slots * 100 < expected * MIN_COVERAGE_PERCENT {
        return Err(CgmError::InsufficientCoverage {
            covered: covered_slots,
            expected,
        });
    }
    let mean = sum / count as f64;
    let gmi = 3.31 + 0.02392 * mean;
    let mean_mg_per_dl = Decimal::from_f64_at(mean, 0).ok_or(CgmError::OutOfRange)?;
    let gmi_percent = Decimal::from_f64_at(gmi, -1).ok_or(CgmError::OutOfRange)?;
    Ok(CgmAggregate {
        window,
        end,
        mean_mg_per_dl,
        gmi_percent,
        samples: count,
        covered_slots,
        expected_slots: expected,
    })
}

impl CgmAggregate {
    /// The two measurements MES takes: mean interstitial glucose, then GMI, both dated `end`.
    pub fn measurements(&self) -> [Measurement; 2] {
        let time = MeasurementTime::Instant(self.end);
        [
            Measurement {
                measure: Measure::InterstitialGlucoseMean {
                    value: self.mean_mg_per_dl,
                    window: self.window,
                },
                time,
                from_storage: true,
            },
            Measurement {
                measure: Measure::GlucoseManagementIndicator {
                    value: self.gmi_percent,
                    window: self.window,
                },
                time,
                from_storage: true,
            },
        ]
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn end() -> Timestamp {
        "2024-03-15T12:00:00Z".parse().unwrap()
    }

    /// One sample every `every` minutes over the last `days`, value from `f(i)`.
    fn series(days: i64, every: i64, f: impl Fn(i64) -> f64) -> Vec<(Timestamp, f64)> {
        let n = days * 24 * 60 / every;
        (0..n)
            .map(|i| (end() - SignedDuration::from_mins(i * every), f(i)))
            .collect()
    }

    #[test]
    fn a_full_week_at_154_mg_per_dl_gives_gmi_7_0() {
        let a = aggregate(&series(7, 5, |_| 154.0), CgmWindow::Days7, end()).unwrap();
        assert_eq!(a.mean_mg_per_dl, Decimal::new(154, 0));
        // 3.31 + 0.02392 * 154 = 6.99368
        assert_eq!(a.gmi_percent, Decimal::new(70, -1));
        assert_eq!(a.covered_slots, 2016);
        assert_eq!(a.expected_slots, 2016);
        assert_eq!(a.samples, 2016);
    }

    #[test]
    fn the_mean_is_over_every_sample_and_rounds_half_away_from_zero() {
        // Alternating 100 and 101: mean 100.5 -> 101; GMI 3.31 + 2.40396 = 5.71396 -> 5.7.
        let a = aggregate(
            &series(14, 5, |i| if i % 2 == 0 { 100.0 } else { 101.0 }),
            CgmWindow::Days14,
            end(),
        )
        .unwrap();
        assert_eq!(a.mean_mg_per_dl, Decimal::new(101, 0));
        assert_eq!(a.gmi_percent, Decimal::new(57, -1));
    }

    #[test]
    fn exactly_70_percent_coverage_is_enough() {
        // 7 days = 2016 slots; 70 % = 1411.2, so 1412 slots are needed.
        let full = series(7, 5, |_| 120.0);
        let enough: Vec<_> = full.iter().copied().take(1412).collect();
        assert!(aggregate(&enough, CgmWindow::Days7, end()).is_ok());
        let short: Vec<_> = full.iter().copied().take(1411).collect();
        assert_eq!(
            aggregate(&short, CgmWindow::Days7, end()),
            Err(CgmError::InsufficientCoverage {
                covered: 1411,
                expected: 2016
            })
        );
    }

    #[test]
    fn a_sensor_reading_every_minute_does_not_count_five_times() {
        // Three days of 1-minute readings within a 7-day window: 864 slots, not 4320.
        let samples = series(3, 1, |_| 120.0);
        assert_eq!(
            aggregate(&samples, CgmWindow::Days7, end()),
            Err(CgmError::InsufficientCoverage {
                covered: 864,
                expected: 2016
            })
        );
    }

    #[test]
    fn a_week_of_data_is_not_enough_for_fourteen_days() {
        let week = series(7, 5, |_| 120.0);
        assert!(aggregate(&week, CgmWindow::Days7, end()).is_ok());
        assert!(matches!(
            aggregate(&week, CgmWindow::Days14, end()),
            Err(CgmError::InsufficientCoverage {
                covered: 2016,
                expected: 4032
            })
        ));
    }

    #[test]
    fn samples_outside_the_window_are_ignored() {
        let mut samples = series(7, 5, |_| 100.0);
        // After the end, and exactly one window before it: both outside.
        samples.push((end() + SignedDuration::from_mins(5), 400.0));
        samples.push((end() - SignedDuration::from_hours(24 * 7), 400.0));
        samples.push((end(), f64::NAN));
        samples.push((end(), -3.0));
        let a = aggregate(&samples, CgmWindow::Days7, end()).unwrap();
        assert_eq!(a.mean_mg_per_dl, Decimal::new(100, 0));
        assert_eq!(a.samples, 2016);
    }

    #[test]
    fn no_data_is_insufficient_coverage() {
        for window in CgmWindow::ALL {
            assert_eq!(
                aggregate(&[], window, end()),
                Err(CgmError::InsufficientCoverage {
                    covered: 0,
                    expected: window.expected_slots()
                })
            );
        }
    }

    #[test]
    fn windows_carry_their_number_of_days_codes() {
        let codes: Vec<_> = CgmWindow::ALL.iter().map(|w| w.coding().code).collect();
        assert_eq!(codes, ["GEN-275", "GEN-276", "GEN-277", "GEN-278"]);
        assert_eq!(CgmWindow::Days90.expected_slots(), 25_920);
    }

    #[test]
    fn an_aggregate_yields_the_mean_then_the_gmi_at_the_window_end() {
        let a = aggregate(&series(30, 5, |_| 154.0), CgmWindow::Days30, end()).unwrap();
        let [mean, gmi] = a.measurements();
        assert_eq!(
            mean.measure,
            Measure::InterstitialGlucoseMean {
                value: Decimal::new(154, 0),
                window: CgmWindow::Days30
            }
        );
        assert_eq!(
            gmi.measure,
            Measure::GlucoseManagementIndicator {
                value: Decimal::new(70, -1),
                window: CgmWindow::Days30
            }
        );
        assert_eq!(mean.time, MeasurementTime::Instant(end()));
    }

    proptest! {
        #[test]
        fn any_series_gives_an_aggregate_or_a_reason(
            samples in prop::collection::vec((-900_000i64..900_000, prop::num::f64::ANY), 0..300),
            window in prop::sample::select(CgmWindow::ALL.to_vec()),
        ) {
            let samples: Vec<_> = samples
                .into_iter()
                .map(|(s, v)| (end() + SignedDuration::from_secs(s * 10), v))
                .collect();
            if let Ok(a) = aggregate(&samples, window, end()) {
                prop_assert!(a.covered_slots * 100 >= a.expected_slots * MIN_COVERAGE_PERCENT);
            }
        }
    }
}
