//! Pulse rate and irregular pulse, from the intervals between the beats of the oscillogram.
//!
//! Only beats where the envelope is strong (at least [`RELIABLE_FRACTION`] of its maximum) are
//! used: far above systolic and far below diastolic the oscillation is small and a beat is easily
//! missed. An interval outside 0.5 to 1.6 times the median is a missed or a doubled beat and is
//! left out.
//! - Pulse rate: 60 000 / the mean of the remaining intervals (ms).
//! - Irregular pulse: when at least [`IRREGULAR_SHARE`] of the intervals, and at least three, lie
//!   more than [`IRREGULAR_DEVIATION`] from the median. Sinus rhythm, breathing included, varies
//!   by a few percent; atrial fibrillation by tens of percent. One premature beat (a short
//!   interval and its compensatory pause) is not enough.

use heapless::Vec;

use super::oscillometry::{MAX_BEATS, Oscillogram};

/// Beats whose amplitude is at least this fraction of the envelope's maximum are timed.
pub const RELIABLE_FRACTION: f32 = 0.3;
/// An interval further than this from the median (as a fraction of it) is irregular.
pub const IRREGULAR_DEVIATION: f32 = 0.15;
/// Share of irregular intervals that makes the pulse irregular.
pub const IRREGULAR_SHARE: f32 = 0.2;
/// Fewest intervals a pulse rate is given from.
const MIN_INTERVALS: usize = 3;
/// Fewest irregular intervals that make the pulse irregular.
const MIN_IRREGULAR: usize = 3;

/// What the beat intervals say.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Rhythm {
    /// Beats per minute.
    pub pulse_rate_bpm: f32,
    /// The intervals vary more than sinus rhythm does.
    pub irregular: bool,
}

/// Pulse rate and regularity of the beats with an amplitude of at least
/// `RELIABLE_FRACTION × max_amplitude_mmhg`; `None` with fewer than three usable intervals.
pub fn analyse(oscillogram: &Oscillogram, max_amplitude_mmhg: f32) -> Option<Rhythm> {
    let floor = RELIABLE_FRACTION * max_amplitude_mmhg;
    let mut intervals: Vec<u16, MAX_BEATS> = oscillogram
        .points()
        .filter(|point| point.amplitude_mmhg >= floor)
        .filter_map(|point| point.interval_ms)
        .collect();
    super::small_sort::insertion_sort_by(&mut intervals, |a, b| a < b);
    let median = f32::from(*intervals.get(intervals.len() / 2)?);
    let plausible = |interval: &&u16| {
        let ratio = f32::from(**interval) / median;
        (0.5..=1.6).contains(&ratio)
    };
    let count = intervals.iter().filter(plausible).count();
    if count < MIN_INTERVALS {
        return None;
    }
    let sum: f32 = intervals
        .iter()
        .filter(plausible)
        .map(|&i| f32::from(i))
        .sum();
    let irregular_count = intervals
        .iter()
        .filter(plausible)
        .filter(|&&i| libm::fabsf(f32::from(i) - median) > IRREGULAR_DEVIATION * median)
        .count();
    Some(Rhythm {
        pulse_rate_bpm: 60_000.0 * count as f32 / sum,
        irregular: irregular_count >= MIN_IRREGULAR
            && irregular_count as f32 >= IRREGULAR_SHARE * count as f32,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cuff::oscillometry::Point;

    fn oscillogram_of(intervals: &[u16]) -> Oscillogram {
        let mut oscillogram = Oscillogram::new();
        for (n, &interval) in intervals.iter().enumerate() {
            oscillogram.record(Point {
                cuff_mmhg: 150.0 - 2.0 * n as f32,
                amplitude_mmhg: 1.0,
                interval_ms: Some(interval),
            });
        }
        oscillogram
    }

    #[test]
    fn the_pulse_rate_is_sixty_over_the_mean_interval() {
        let rhythm = analyse(&oscillogram_of(&[800, 810, 790, 805, 795, 800]), 1.0).unwrap();
        assert!((rhythm.pulse_rate_bpm - 75.0).abs() < 0.2, "{rhythm:?}");
        assert!(!rhythm.irregular);
    }

    #[test]
    fn a_missed_beat_does_not_halve_the_rate_nor_make_the_pulse_irregular() {
        let rhythm = analyse(&oscillogram_of(&[600, 610, 1_205, 595, 600, 605, 598]), 1.0).unwrap();
        assert!((rhythm.pulse_rate_bpm - 100.0).abs() < 0.5, "{rhythm:?}");
        assert!(!rhythm.irregular);
    }

    #[test]
    fn random_intervals_are_an_irregular_pulse() {
        let rhythm = analyse(
            &oscillogram_of(&[700, 1_050, 620, 900, 560, 1_000, 780, 640]),
            1.0,
        )
        .unwrap();
        assert!(rhythm.irregular, "{rhythm:?}");
    }

    #[test]
    fn one_premature_beat_is_not_an_irregular_pulse() {
        let rhythm = analyse(
            &oscillogram_of(&[800, 805, 560, 1_040, 800, 795, 810, 800, 790, 805]),
            1.0,
        )
        .unwrap();
        assert!(!rhythm.irregular, "{rhythm:?}");
    }

    #[test]
    fn weak_beats_are_not_timed() {
        let mut oscillogram = oscillogram_of(&[800, 800, 800, 800]);
        oscillogram.record(Point {
            cuff_mmhg: 60.0,
            amplitude_mmhg: 0.1,
            interval_ms: Some(300),
        });
        oscillogram.record(Point {
            cuff_mmhg: 58.0,
            amplitude_mmhg: 0.1,
            interval_ms: Some(1_300),
        });
        let rhythm = analyse(&oscillogram, 1.0).unwrap();
        assert!((rhythm.pulse_rate_bpm - 75.0).abs() < 0.1);
        assert_eq!(analyse(&oscillogram_of(&[800, 800]), 1.0), None);
    }
}
