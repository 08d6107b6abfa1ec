//! Blood pressure from the oscillogram: the beats' oscillation amplitudes against the cuff
//! pressure at which they were seen, recorded while the cuff deflates.
//!
//! The amplitude is largest when the cuff pressure equals the mean arterial pressure (MAP), and
//! falls off on both sides. The fixed-ratio method (the classic oscillometric algorithm):
//! - MAP: the cuff pressure at the maximum of the smoothed envelope (refined by a parabola through
//!   the maximum and its two neighbours);
//! - systolic: above MAP, the cuff pressure where the envelope has fallen to
//!   [`SYSTOLIC_RATIO`] (0.55) of its maximum;
//! - diastolic: below MAP, where it has fallen to [`DIASTOLIC_RATIO`] (0.77).
//!
//! Both crossings are interpolated linearly between the two beats that bracket them. The ratios
//! are the centres of the published ranges (about 0.45 to 0.65 on the systolic side and 0.65 to
//! 0.85 on the diastolic side); a subject whose own ratios differ from them is misread by the
//! envelope's slope times the difference, which is the method's inherent error.
//!
//! The envelope is smoothed with a triangular kernel over the cuff pressure (half-width 4 mmHg,
//! or 1.5 beat spacings when beats are sparse), which evens out breathing and beat-to-beat
//! variation without moving the crossings. Beats 40 % off the median of their five-beat
//! neighbourhood (movement that got past the cycle's artefact check, a missed upstroke) are left
//! out of it, and a crossing is where the envelope stays below the level, not a one-beat dip.

use heapless::Vec;

/// Envelope fraction at the systolic pressure.
pub const SYSTOLIC_RATIO: f32 = 0.55;
/// Envelope fraction at the diastolic pressure.
pub const DIASTOLIC_RATIO: f32 = 0.77;
/// Beats the oscillogram holds; when full it keeps every other beat (and from then on records
/// every other one), so a slow deflation at a fast heart rate still fits.
pub const MAX_BEATS: usize = 128;
/// Fewest beats from which an estimate is attempted.
const MIN_BEATS: usize = 5;
/// An envelope smaller than this is no pulse at all, mmHg.
const MIN_PULSE_MMHG: f32 = 0.1;
/// Smallest half-width of the smoothing kernel, mmHg.
const MIN_KERNEL_MMHG: f32 = 4.0;
/// Kernel half-width in beat spacings when beats are sparse.
const KERNEL_SPACINGS: f32 = 1.5;
/// A beat further than this fraction from its neighbourhood's median is an outlier.
pub const OUTLIER_FRACTION: f32 = 0.4;

/// One recorded beat.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Point {
    /// Cuff pressure at the beat, mmHg.
    pub cuff_mmhg: f32,
    /// Oscillation amplitude, mmHg.
    pub amplitude_mmhg: f32,
    /// Time since the previous beat, when that beat was seen too (ms).
    pub interval_ms: Option<u16>,
}

/// A point packed into 6 bytes: 0.01 mmHg, 0.001 mmHg, ms (0 = unknown).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Packed {
    cuff_centi_mmhg: u16,
    amplitude_milli_mmhg: u16,
    interval_ms: u16,
}

impl Packed {
    fn pack(point: Point) -> Self {
        let scale =
            |value: f32, per_unit: f32| libm::roundf(value * per_unit).clamp(0.0, 65_535.0) as u16;
        Self {
            cuff_centi_mmhg: scale(point.cuff_mmhg, 100.0),
            amplitude_milli_mmhg: scale(point.amplitude_mmhg, 1000.0),
            interval_ms: point.interval_ms.unwrap_or(0),
        }
    }

    fn unpack(self) -> Point {
        Point {
            cuff_mmhg: f32::from(self.cuff_centi_mmhg) / 100.0,
            amplitude_mmhg: f32::from(self.amplitude_milli_mmhg) / 1000.0,
            interval_ms: (self.interval_ms != 0).then_some(self.interval_ms),
        }
    }
}

/// The beats of one deflation, in the order they came (falling cuff pressure).
#[derive(Debug, Clone, Default)]
pub struct Oscillogram {
    beats: Vec<Packed, MAX_BEATS>,
    /// Record one beat in `stride`.
    stride: u16,
    /// Beats passed over since the last recorded one.
    passed: u16,
}

impl Oscillogram {
    /// An empty oscillogram.
    pub fn new() -> Self {
        Self {
            beats: Vec::new(),
            stride: 1,
            passed: 0,
        }
    }

    /// Records a beat (or passes over it, once thinning has started).
    pub fn record(&mut self, point: Point) {
        self.passed += 1;
        if self.passed < self.stride {
            return;
        }
        self.passed = 0;
        if self.beats.is_full() {
            let mut index = 0;
            self.beats.retain(|_| {
                index += 1;
                index % 2 == 1
            });
            self.stride = self.stride.saturating_mul(2);
        }
        let _ = self.beats.push(Packed::pack(point));
    }

    /// Recorded beats.
    pub fn len(&self) -> usize {
        self.beats.len()
    }

    /// True before the first beat.
    pub fn is_empty(&self) -> bool {
        self.beats.is_empty()
    }

    /// The `index`th recorded beat.
    pub fn point(&self, index: usize) -> Option<Point> {
        self.beats.get(index).map(|packed| packed.unpack())
    }

    /// All recorded beats, oldest first.
    pub fn points(&self) -> impl Iterator<Item = Point> + '_ {
        self.beats.iter().map(|packed| packed.unpack())
    }

    /// Envelope amplitude at beat `index`, smoothed over neighbouring cuff pressures; outliers
    /// do not count (an outlier's own value comes from its neighbours).
    pub fn smoothed_amplitude(&self, index: usize) -> Option<f32> {
        let centre = self.point(index)?;
        let half_width = self.kernel_half_width();
        let mut weighted = 0.0;
        let mut weights = 0.0;
        for (other, point) in self.points().enumerate() {
            let weight = 1.0 - libm::fabsf(point.cuff_mmhg - centre.cuff_mmhg) / half_width;
            if weight > 0.0 && !self.is_outlier(other) {
                weighted += weight * point.amplitude_mmhg;
                weights += weight;
            }
        }
        Some(if weights > 0.0 {
            weighted / weights
        } else {
            centre.amplitude_mmhg
        })
    }

    /// True when beat `index` is further than [`OUTLIER_FRACTION`] from the median of itself and
    /// its two neighbours on each side: a beat spoilt by movement or a missed upstroke. A
    /// monotonic run, however steep, has its median in the middle and never has outliers.
    pub fn is_outlier(&self, index: usize) -> bool {
        let Some(point) = self.point(index) else {
            return false;
        };
        let mut window: Vec<f32, 5> = (index.saturating_sub(2)..=index + 2)
            .filter_map(|i| self.point(i))
            .map(|p| p.amplitude_mmhg)
            .collect();
        if window.len() < 3 {
            return false;
        }
        super::small_sort::insertion_sort_by(&mut window, |a, b| a.total_cmp(b).is_lt());
        let median = window.get(window.len() / 2).copied().unwrap_or(0.0);
        libm::fabsf(point.amplitude_mmhg - median) > OUTLIER_FRACTION * median
    }

    fn kernel_half_width(&self) -> f32 {
        let (Some(first), Some(last)) = (self.point(0), self.point(self.len().saturating_sub(1)))
        else {
            return MIN_KERNEL_MMHG;
        };
        let spacing =
            (first.cuff_mmhg - last.cuff_mmhg) / self.len().saturating_sub(1).max(1) as f32;
        MIN_KERNEL_MMHG.max(KERNEL_SPACINGS * spacing)
    }
}

/// The three pressures the oscillogram gives.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Estimate {
    /// mmHg.
    pub systolic_mmhg: f32,
    /// mmHg.
    pub diastolic_mmhg: f32,
    /// Mean arterial pressure, mmHg.
    pub mean_arterial_mmhg: f32,
    /// Maximum of the smoothed envelope, mmHg: the reference for the ratios.
    pub max_amplitude_mmhg: f32,
}

/// Why the oscillogram gives no blood pressure.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EstimateError {
    /// Too few beats were recorded to draw an envelope.
    TooFewBeats {
        /// Beats recorded.
        beats: usize,
    },
    /// No oscillation worth the name: the cuff is not on an arm.
    NoPulse,
    /// The envelope had not fallen to the systolic ratio at the top of the deflation: the cuff
    /// was not inflated high enough.
    SystolicNotBracketed,
    /// The envelope had not fallen to the diastolic ratio when the deflation ended.
    DiastolicNotBracketed,
}

/// Systolic, diastolic and mean arterial pressure from a deflation's oscillogram.
pub fn estimate(oscillogram: &Oscillogram) -> Result<Estimate, EstimateError> {
    let beats = oscillogram.len();
    if beats < MIN_BEATS {
        return Err(EstimateError::TooFewBeats { beats });
    }
    let envelope: Vec<f32, MAX_BEATS> = (0..beats)
        .map(|index| oscillogram.smoothed_amplitude(index).unwrap_or(0.0))
        .collect();
    let at = |index: usize| envelope.get(index).copied().unwrap_or(0.0);
    let cuff = |index: usize| oscillogram.point(index).map_or(0.0, |p| p.cuff_mmhg);
    let (peak, max_amplitude) =
        envelope
            .iter()
            .copied()
            .enumerate()
            .fold(
                (0, f32::MIN),
                |best, next| if next.1 > best.1 { next } else { best },
            );
    if max_amplitude < MIN_PULSE_MMHG {
        return Err(EstimateError::NoPulse);
    }
    let mean_arterial_mmhg = match (peak.checked_sub(1), peak + 1 < beats) {
        (Some(above), true) => parabola_vertex(
            (cuff(above), at(above)),
            (cuff(peak), max_amplitude),
            (cuff(peak + 1), at(peak + 1)),
        ),
        _ => cuff(peak),
    };
    // A crossing is where the envelope goes below the level for good: the beat beyond is below
    // too, or there is none.
    let below = |index: usize, level: f32| at(index) < level;
    // Systolic: walk up the pressures (back in time) from the peak.
    let systolic_level = SYSTOLIC_RATIO * max_amplitude;
    let systolic_mmhg = (0..peak)
        .rev()
        .find(|&i| below(i, systolic_level) && (i == 0 || below(i - 1, systolic_level)))
        .map(|i| crossing(systolic_level, (cuff(i), at(i)), (cuff(i + 1), at(i + 1))))
        .ok_or(EstimateError::SystolicNotBracketed)?;
    // Diastolic: walk down the pressures from the peak.
    let diastolic_level = DIASTOLIC_RATIO * max_amplitude;
    let last = beats - 1;
    let diastolic_mmhg = (peak + 1..beats)
        .find(|&i| below(i, diastolic_level) && (i == last || below(i + 1, diastolic_level)))
        .map(|i| crossing(diastolic_level, (cuff(i), at(i)), (cuff(i - 1), at(i - 1))))
        .ok_or(EstimateError::DiastolicNotBracketed)?;
    Ok(Estimate {
        systolic_mmhg,
        diastolic_mmhg,
        mean_arterial_mmhg,
        max_amplitude_mmhg: max_amplitude,
    })
}

/// The cuff pressure at which the envelope crosses `level` between a beat below it and a beat
/// at or above it, by linear interpolation.
fn crossing(level: f32, below: (f32, f32), above: (f32, f32)) -> f32 {
    let (cuff_below, amplitude_below) = below;
    let (cuff_above, amplitude_above) = above;
    let rise = amplitude_above - amplitude_below;
    if rise <= 0.0 {
        return cuff_above;
    }
    let fraction = ((level - amplitude_below) / rise).clamp(0.0, 1.0);
    cuff_below + fraction * (cuff_above - cuff_below)
}

/// Abscissa of the vertex of the parabola through three points, kept between the outer two.
fn parabola_vertex(a: (f32, f32), b: (f32, f32), c: (f32, f32)) -> f32 {
    let ((x1, y1), (x2, y2), (x3, y3)) = (a, b, c);
    let denominator = (x1 - x2) * (x1 - x3) * (x2 - x3);
    if libm::fabsf(denominator) < 1e-6 {
        return x2;
    }
    let curvature = (x3 * (y2 - y1) + x2 * (y1 - y3) + x1 * (y3 - y2)) / denominator;
    let slope = (x3 * x3 * (y1 - y2) + x2 * x2 * (y3 - y1) + x1 * x1 * (y2 - y3)) / denominator;
    if curvature >= 0.0 {
        return x2;
    }
    let vertex = -slope / (2.0 * curvature);
    vertex.clamp(x1.min(x3), x1.max(x3))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An oscillogram sampled every `step` mmHg from `top` down to `bottom` off an asymmetric
    /// Gaussian envelope that meets exactly the firmware's ratios at `systolic` and `diastolic`.
    fn gaussian_deflation(
        systolic: f32,
        diastolic: f32,
        top: f32,
        bottom: f32,
        step: f32,
    ) -> Oscillogram {
        let map = diastolic + (systolic - diastolic) / 3.0;
        let sigma =
            |edge: f32, ratio: f32| libm::fabsf(edge - map) / libm::sqrtf(-2.0 * libm::logf(ratio));
        let (sigma_s, sigma_d) = (
            sigma(systolic, SYSTOLIC_RATIO),
            sigma(diastolic, DIASTOLIC_RATIO),
        );
        let mut oscillogram = Oscillogram::new();
        let mut cuff = top;
        while cuff >= bottom {
            let sigma = if cuff >= map { sigma_s } else { sigma_d };
            let z = (cuff - map) / sigma;
            let amplitude = 2.0 * libm::expf(-0.5 * z * z);
            oscillogram.record(Point {
                cuff_mmhg: cuff,
                amplitude_mmhg: amplitude,
                interval_ms: Some(800),
            });
            cuff -= step;
        }
        oscillogram
    }

    #[test]
    fn reads_an_envelope_that_meets_the_ratios_within_a_millimetre() {
        let estimate = estimate(&gaussian_deflation(130.0, 85.0, 170.0, 60.0, 2.0)).unwrap();
        assert!((estimate.systolic_mmhg - 130.0).abs() < 1.0, "{estimate:?}");
        assert!((estimate.diastolic_mmhg - 85.0).abs() < 1.0, "{estimate:?}");
        assert!(
            (estimate.mean_arterial_mmhg - 100.0).abs() < 1.5,
            "{estimate:?}"
        );
    }

    #[test]
    fn interpolates_between_sparse_beats() {
        // A slow heart: one beat every 5 mmHg.
        let estimate = estimate(&gaussian_deflation(180.0, 110.0, 215.0, 80.0, 5.0)).unwrap();
        assert!((estimate.systolic_mmhg - 180.0).abs() < 2.5, "{estimate:?}");
        assert!(
            (estimate.diastolic_mmhg - 110.0).abs() < 2.5,
            "{estimate:?}"
        );
    }

    #[test]
    fn a_deflation_that_starts_below_systolic_is_refused() {
        let result = estimate(&gaussian_deflation(150.0, 90.0, 140.0, 60.0, 2.0));
        assert_eq!(result, Err(EstimateError::SystolicNotBracketed));
    }

    #[test]
    fn a_deflation_that_stops_above_diastolic_is_refused() {
        let result = estimate(&gaussian_deflation(150.0, 90.0, 180.0, 95.0, 2.0));
        assert_eq!(result, Err(EstimateError::DiastolicNotBracketed));
    }

    #[test]
    fn a_flat_line_is_no_pulse() {
        let mut oscillogram = Oscillogram::new();
        for n in 0..20 {
            oscillogram.record(Point {
                cuff_mmhg: 180.0 - 3.0 * n as f32,
                amplitude_mmhg: 0.02,
                interval_ms: None,
            });
        }
        assert_eq!(estimate(&oscillogram), Err(EstimateError::NoPulse));
        assert_eq!(
            estimate(&Oscillogram::new()),
            Err(EstimateError::TooFewBeats { beats: 0 })
        );
    }

    #[test]
    fn a_full_oscillogram_thins_itself_and_keeps_the_whole_deflation() {
        let oscillogram = gaussian_deflation(150.0, 90.0, 200.0, 40.0, 0.5);
        assert!(oscillogram.len() <= MAX_BEATS);
        let first = oscillogram.point(0).unwrap().cuff_mmhg;
        let last = oscillogram.point(oscillogram.len() - 1).unwrap().cuff_mmhg;
        assert_eq!(first, 200.0);
        assert!(last < 42.0, "{last}");
        let estimate = estimate(&oscillogram).unwrap();
        assert!((estimate.systolic_mmhg - 150.0).abs() < 1.5, "{estimate:?}");
    }

    #[test]
    fn a_beat_spoilt_by_movement_moves_neither_crossing() {
        let clean = estimate(&gaussian_deflation(150.0, 90.0, 185.0, 70.0, 3.0)).unwrap();
        let mut spoilt = Oscillogram::new();
        for (index, mut point) in gaussian_deflation(150.0, 90.0, 185.0, 70.0, 3.0)
            .points()
            .enumerate()
        {
            // Between systolic and MAP: one beat halved, one doubled.
            if index == 14 {
                point.amplitude_mmhg *= 0.5;
            }
            if index == 17 {
                point.amplitude_mmhg *= 2.0;
            }
            spoilt.record(point);
        }
        assert!(spoilt.is_outlier(14) && spoilt.is_outlier(17));
        assert!(!spoilt.is_outlier(13) && !spoilt.is_outlier(16));
        let estimate = estimate(&spoilt).unwrap();
        assert!(
            (estimate.systolic_mmhg - clean.systolic_mmhg).abs() < 0.5,
            "{estimate:?}"
        );
        assert!(
            (estimate.diastolic_mmhg - clean.diastolic_mmhg).abs() < 0.5,
            "{estimate:?}"
        );
    }

    #[test]
    fn points_survive_packing_to_their_resolution() {
        let point = Point {
            cuff_mmhg: 123.456,
            amplitude_mmhg: 1.2345,
            interval_ms: Some(812),
        };
        let back = Packed::pack(point).unpack();
        assert!((back.cuff_mmhg - 123.46).abs() < 1e-3);
        assert!(
            (back.amplitude_mmhg - 1.235).abs() < 1e-3
                || (back.amplitude_mmhg - 1.234).abs() < 1e-3
        );
        assert_eq!(back.interval_ms, Some(812));
        let unknown = Point {
            interval_ms: None,
            ..point
        };
        assert_eq!(Packed::pack(unknown).unpack().interval_ms, None);
    }
}
