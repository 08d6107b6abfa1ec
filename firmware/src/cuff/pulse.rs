//! Beats in the cuff pressure. The artery's pulse rides on the cuff pressure as a small
//! oscillation (a few mmHg) on a large, moving baseline (the inflation or deflation ramp).
//!
//! The detector high-passes the pressure at 0.5 Hz, which turns any steady ramp into a constant
//! and leaves the pulses, and smooths it with a [1 2 1]/4 kernel against sensor noise. A beat is
//! an upstroke: a rise above the lowest of the last 150 ms by more than the noise floor and 30 %
//! of the recent beats' amplitude (a steep rise: the filter's slow recovery after a beat, a
//! dicrotic wave or noise do not make one), followed up to its peak and confirmed once the signal
//! has fallen back by a quarter of the rise. Its amplitude is peak minus foot, its time the moment
//! the upstroke crossed half that amplitude (interpolated between samples: steadier than the foot
//! or the peak), its cuff pressure the (smoothed) pressure at its foot. Two candidates closer than
//! the refractory period are one beat (the larger wins), so a beat is given out only once that
//! period has passed. The running amplitude halves when no beat comes for 1.5 s, so a large
//! disturbance cannot raise the threshold above the pulses for good.

use heapless::{Deque, Vec};

/// High-pass corner: below the slowest heart rate (45 bpm = 0.75 Hz), above breathing drift.
const HIGH_PASS_HZ: f32 = 0.5;
/// Smallest rise taken for a beat by default, mmHg: well above the filtered sensor noise
/// (≈0.03 mmHg rms) of a quiet cuff.
pub const QUIET_NOISE_FLOOR_MMHG: f32 = 0.12;
/// A rise must also reach this fraction of the recent beats' amplitude.
const RISE_FRACTION: f32 = 0.3;
/// A peak is confirmed once the signal has fallen back by this fraction of the rise.
const FALL_FRACTION: f32 = 0.25;
/// Weight of a new beat in the running amplitude.
const AMPLITUDE_SMOOTHING: f32 = 0.3;
/// Without a beat for this long, the running amplitude halves, ms (beyond the slowest beat).
const QUIET_HALVING_MS: u64 = 1_500;
/// Beats closer than this are one beat (240 bpm).
const REFRACTORY_MS: u64 = 250;
/// An upstroke must clear the threshold within this window: the slow recovery of the filter after
/// a beat does not (150 ms at 40 Hz).
const WINDOW_SAMPLES: usize = 6;
/// Samples of an upstroke kept to time its midpoint (600 ms at 40 Hz).
const UPSTROKE_SAMPLES: usize = 24;
/// A rise that goes on longer than this is drift (a filter settling), not an upstroke: the
/// detector starts over from where it is.
const MAX_RISE_MS: u64 = 600;

/// One heartbeat seen in the cuff.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Beat {
    /// When the upstroke crossed half its height, ms (the same clock as the samples).
    pub time_ms: u64,
    /// Cuff pressure at the beat's foot, mmHg.
    pub cuff_mmhg: f32,
    /// Peak-to-trough height of the oscillation, mmHg.
    pub amplitude_mmhg: f32,
}

/// Where the detector is within a beat.
#[derive(Debug, Clone, Copy, PartialEq)]
enum State {
    /// Watching the last few samples for a steep enough rise.
    SeekingFoot,
    /// On an upstroke that has cleared the threshold, following it up to its peak.
    Rising { foot: Sample, peak: f32 },
}

/// One filtered sample.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Sample {
    /// High-passed, smoothed pressure, mmHg.
    level: f32,
    time_ms: u64,
    /// Smoothed cuff pressure, mmHg.
    cuff_mmhg: f32,
}

/// Finds beats in a stream of cuff-pressure samples taken at a steady rate.
#[derive(Debug, Clone)]
pub struct PulseDetector {
    sample_rate_hz: f32,
    sample_period_ms: f32,
    high_pass_gain: f32,
    previous_input: Option<f32>,
    high_passed: [f32; 3],
    raw: [f32; 3],
    state: State,
    recent: Deque<Sample, WINDOW_SAMPLES>,
    upstroke: Vec<f32, UPSTROKE_SAMPLES>,
    typical_amplitude: f32,
    /// When a candidate beat last came (or the running amplitude was last halved).
    last_candidate_ms: u64,
    noise_floor_mmhg: f32,
    pending: Option<Beat>,
}

impl PulseDetector {
    /// A detector for samples arriving at `sample_rate_hz` (the ADC's conversion rate).
    pub fn new(sample_rate_hz: f32) -> Self {
        let rate = sample_rate_hz.max(1.0);
        let dt = 1.0 / rate;
        let rc = 1.0 / (2.0 * core::f32::consts::PI * HIGH_PASS_HZ);
        Self {
            sample_rate_hz: rate,
            sample_period_ms: 1000.0 * dt,
            high_pass_gain: rc / (rc + dt),
            previous_input: None,
            high_passed: [0.0; 3],
            raw: [0.0; 3],
            state: State::SeekingFoot,
            recent: Deque::new(),
            upstroke: Vec::new(),
            typical_amplitude: 0.0,
            last_candidate_ms: 0,
            noise_floor_mmhg: QUIET_NOISE_FLOOR_MMHG,
            pending: None,
        }
    }

    /// Forgets the signal so far, e.g. when the pump stops and the ramp changes direction.
    pub fn reset(&mut self) {
        *self = Self::new(self.sample_rate_hz);
    }

    /// Sets the smallest rise taken for a beat: higher while a pump shakes the sensor.
    pub fn set_noise_floor(&mut self, mmhg: f32) {
        self.noise_floor_mmhg = mmhg;
    }

    /// Feeds one sample; returns a beat once it is certain: a few hundred ms after its upstroke,
    /// so that a larger candidate within the refractory period can replace it.
    pub fn push(&mut self, time_ms: u64, pressure_mmhg: f32) -> Option<Beat> {
        let previous = self.previous_input.replace(pressure_mmhg)?;
        let [h0, h1, _] = self.high_passed;
        let high = self.high_pass_gain * (h0 + pressure_mmhg - previous);
        self.high_passed = [high, h0, h1];
        let [r0, r1, _] = self.raw;
        self.raw = [pressure_mmhg, r0, r1];
        // [1 2 1]/4 smoothing: its output belongs to the previous sample.
        let level = (self.high_passed[0] + 2.0 * self.high_passed[1] + self.high_passed[2]) / 4.0;
        let cuff_mmhg = (self.raw[0] + 2.0 * self.raw[1] + self.raw[2]) / 4.0;
        let time_ms = time_ms.saturating_sub(libm::roundf(self.sample_period_ms) as u64);
        if time_ms.saturating_sub(self.last_candidate_ms) > QUIET_HALVING_MS {
            // No beat for a while: the threshold was set by something large (movement); let it
            // come down to what is there now.
            self.typical_amplitude *= 0.5;
            self.last_candidate_ms = time_ms;
        }
        match self.step(time_ms, level, cuff_mmhg) {
            Some(beat) => Some(beat),
            None => self.release(time_ms),
        }
    }

    /// Gives the held beat out once no later candidate can replace it: the refractory period has
    /// passed and no upstroke is under way (a new one's midpoint will come later still).
    fn release(&mut self, time_ms: u64) -> Option<Beat> {
        let held_long_enough = self
            .pending
            .is_some_and(|pending| time_ms >= pending.time_ms + REFRACTORY_MS);
        if held_long_enough && self.state == State::SeekingFoot {
            return self.pending.take();
        }
        None
    }

    fn step(&mut self, time_ms: u64, level: f32, cuff_mmhg: f32) -> Option<Beat> {
        let sample = Sample {
            level,
            time_ms,
            cuff_mmhg,
        };
        match self.state {
            State::SeekingFoot => {
                if self.recent.is_full() {
                    self.recent.pop_front();
                }
                let _ = self.recent.push_back(sample);
                let lowest = self
                    .recent
                    .iter()
                    .copied()
                    .reduce(|low, s| if s.level < low.level { s } else { low });
                if let Some(foot) = lowest
                    && level - foot.level > self.rise_threshold()
                {
                    // An upstroke: keep it from its foot, to time its midpoint.
                    self.upstroke.clear();
                    for s in self.recent.iter().filter(|s| s.time_ms >= foot.time_ms) {
                        let _ = self.upstroke.push(s.level);
                    }
                    self.state = State::Rising { foot, peak: level };
                }
                None
            }
            State::Rising { foot, peak } => {
                let _ = self.upstroke.push(level);
                if level > peak {
                    self.state = if time_ms.saturating_sub(foot.time_ms) > MAX_RISE_MS {
                        self.restart_at(sample);
                        State::SeekingFoot
                    } else {
                        State::Rising { foot, peak: level }
                    };
                    return None;
                }
                let height = peak - foot.level;
                if peak - level <= FALL_FRACTION * height {
                    return None;
                }
                let beat = Beat {
                    time_ms: self.upstroke_midpoint_ms(&foot, height),
                    cuff_mmhg: foot.cuff_mmhg,
                    amplitude_mmhg: height,
                };
                self.restart_at(sample);
                self.state = State::SeekingFoot;
                self.offer(beat)
            }
        }
    }

    /// Starts looking for the next foot from `sample` on.
    fn restart_at(&mut self, sample: Sample) {
        self.recent.clear();
        let _ = self.recent.push_back(sample);
    }

    fn rise_threshold(&self) -> f32 {
        self.noise_floor_mmhg
            .max(RISE_FRACTION * self.typical_amplitude)
    }

    /// When the upstroke crossed half its height, interpolated between the two samples around it.
    fn upstroke_midpoint_ms(&self, foot: &Sample, height: f32) -> u64 {
        let half = foot.level + 0.5 * height;
        let mut before = foot.level;
        for (index, &level) in self.upstroke.iter().enumerate().skip(1) {
            if level >= half {
                let fraction = if level > before {
                    (half - before) / (level - before)
                } else {
                    0.0
                };
                let offset = (index as f32 - 1.0 + fraction) * self.sample_period_ms;
                return foot.time_ms + libm::roundf(offset.max(0.0)) as u64;
            }
            before = level;
        }
        // The upstroke outlasted the buffer: take the end of what was kept.
        let kept = self.upstroke.len().saturating_sub(1) as f32;
        foot.time_ms + libm::roundf(kept * self.sample_period_ms) as u64
    }

    /// Holds a beat back for one refractory period; a larger beat within it replaces it.
    fn offer(&mut self, beat: Beat) -> Option<Beat> {
        self.last_candidate_ms = beat.time_ms;
        // A running amplitude for the threshold, slow to follow a sudden jump (an artefact).
        let bounded = beat
            .amplitude_mmhg
            .min(2.0 * self.typical_amplitude + self.noise_floor_mmhg);
        self.typical_amplitude += AMPLITUDE_SMOOTHING * (bounded - self.typical_amplitude);
        match self.pending {
            Some(pending) if beat.time_ms.saturating_sub(pending.time_ms) < REFRACTORY_MS => {
                if beat.amplitude_mmhg > pending.amplitude_mmhg {
                    self.pending = Some(beat);
                }
                None
            }
            pending => {
                self.pending = Some(beat);
                pending
            }
        }
    }
}

#[cfg(test)]
mod tests {
    extern crate std;

    use super::*;

    /// A clean pulse train: foot-to-foot `interval_ms`, `amplitude` mmHg, on a ramp of
    /// `slope` mmHg/s from `start` mmHg, sampled at 40 Hz.
    fn pulse_train(
        interval_ms: u64,
        amplitude: f32,
        start: f32,
        slope: f32,
        seconds: u64,
    ) -> impl Iterator<Item = (u64, f32)> {
        (0..seconds * 40).map(move |n| {
            let t = n * 25;
            let into = (t % interval_ms) as f32 / 1000.0;
            let rr = interval_ms as f32 / 1000.0;
            let shape = if into < 0.12 {
                0.5 * (1.0 - libm::cosf(core::f32::consts::PI * into / 0.12))
            } else {
                1.0 - (into - 0.12) / (rr - 0.12)
            };
            (t, start + slope * t as f32 / 1000.0 + amplitude * shape)
        })
    }

    fn beats_of(samples: impl Iterator<Item = (u64, f32)>) -> std::vec::Vec<Beat> {
        let mut detector = PulseDetector::new(40.0);
        samples.filter_map(|(t, p)| detector.push(t, p)).collect()
    }

    #[test]
    fn finds_every_beat_and_its_amplitude_on_a_deflation_ramp() {
        let beats = beats_of(pulse_train(800, 2.0, 150.0, -3.0, 20));
        // 25 beats in 20 s; the first may be lost to the filter settling.
        assert!((23..=25).contains(&beats.len()), "{} beats", beats.len());
        for beat in &beats[2..] {
            assert!((1.7..2.4).contains(&beat.amplitude_mmhg), "{beat:?}");
        }
        for pair in beats[2..].windows(2) {
            let interval = pair[1].time_ms - pair[0].time_ms;
            assert!((790..=810).contains(&interval), "{interval} ms");
            assert!(pair[1].cuff_mmhg < pair[0].cuff_mmhg);
        }
    }

    #[test]
    fn finds_beats_while_the_pump_inflates() {
        let beats = beats_of(pulse_train(500, 1.0, 20.0, 12.0, 10));
        assert!((17..=19).contains(&beats.len()), "{} beats", beats.len());
        for beat in &beats[2..] {
            assert!((0.8..1.3).contains(&beat.amplitude_mmhg), "{beat:?}");
        }
    }

    #[test]
    fn ignores_noise_below_the_floor() {
        // A flat cuff with ±0.05 mmHg of deterministic jitter.
        let samples = (0..400u64).map(|n| (n * 25, 100.0 + 0.05 * libm::sinf(n as f32 * 2.7)));
        assert!(beats_of(samples).is_empty());
    }

    #[test]
    fn merges_candidates_within_the_refractory_period() {
        let mut detector = PulseDetector::new(40.0);
        let first = Beat {
            time_ms: 1000,
            cuff_mmhg: 100.0,
            amplitude_mmhg: 0.5,
        };
        let second = Beat {
            time_ms: 1100,
            cuff_mmhg: 100.0,
            amplitude_mmhg: 1.5,
        };
        let third = Beat {
            time_ms: 1900,
            cuff_mmhg: 98.0,
            amplitude_mmhg: 1.4,
        };
        assert_eq!(detector.offer(first), None);
        assert_eq!(detector.offer(second), None);
        assert_eq!(detector.offer(third), Some(second));
    }
}
