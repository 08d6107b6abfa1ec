//! The platform of a bathroom scale: four 50 kg half-bridge load cells wired as one Wheatstone
//! bridge into an HX711 (channel A, gain 128), with the person standing on it.
//!
//! A scenario says what lands on the platform and when (`step_on`, `step_off`, `place`, `lift`,
//! `shift_weight`); the front end turns the resulting force into ADC counts with the flaws of
//! real parts: electrical noise, a zero that drifts with temperature, and creep. Everything random
//! comes from one seed, so a scenario replays exactly.
//!
//! The firmware only ever sees counts. `true_mass_kg` exists for the tests that judge it.
//!
//! # Numbers
//!
//! - **Sensitivity.** Cells rated 1.0 mV/V at 200 kg (4 × 50 kg). The bridge is excited from the
//!   HX711's AVDD, and the HX711's full-scale input at gain 128 is ±0.5·AVDD/128, so the supply
//!   cancels out (ratiometric): counts per kg = (1.0 mV/V ÷ 200 kg) × 2 × 128 × 2²³ ≈ 10 737.
//!   200 kg is then 2.15 M counts, a quarter of the ±8.39 M range. Each unit gets its own
//!   tolerance of ±10 % and a random polarity (how E±/A± happened to be wired).
//! - **Offset.** Bridge imbalance up to ±60 000 counts, plus the top plate's 1.5 to 3 kg of dead
//!   load: tens of thousands of counts, unknown until the scale is calibrated.
//! - **Noise.** The HX711 datasheet gives 50 nV rms input noise at 10 Hz and gain 128; with AVDD
//!   = 4.3 V one count is 2.0 nV, so 25 counts. Each unit draws 15 to 40 counts rms (1.4 to 3.7 g).
//! - **Zero drift.** Warm-up after power-on of 10 to 40 g (time constant 2 to 10 min), plus the
//!   room's temperature swinging the zero by 10 to 30 g over 1 to 3 hours.
//! - **Creep.** Under a constant load the reading rises by 0.02 to 0.05 % of the load with a time
//!   constant of 2 to 5 min, and recovers the same way once the load is gone.
//! - **A person stepping on.** One foot then the other over 0.4 to 1.0 s, then a bounce of 0.15 to
//!   0.5 kg (for 75 kg; scaled with the mass) at 1 to 3 Hz that decays with a time constant of
//!   0.3 to 0.6 s, then body sway: 8 to 25 g at 0.2 to 0.6 Hz plus 3 to 10 g at 1 to 1.5 Hz
//!   (heartbeat), scaled with the mass. Stepping off takes 0.3 to 0.7 s.

use core::f64::consts::TAU;

use libm::{cos, exp, log, round, sin, sqrt};
use rand_core::{Rng, SeedableRng};
use rand_xoshiro::Xoshiro256PlusPlus;

use crate::hx71x::AnalogFrontEnd;

/// Rated capacity of the four cells together.
pub const CAPACITY_KG: f64 = 200.0;
/// Rated output of the bridge at capacity, in V per V of excitation.
pub const RATED_OUTPUT_V_PER_V: f64 = 1.0e-3;
/// Counts per kg of a nominal unit at channel A, gain 128 (see the module documentation).
pub const NOMINAL_COUNTS_PER_KG: f64 =
    RATED_OUTPUT_V_PER_V / CAPACITY_KG * 2.0 * 128.0 * 8_388_608.0;

/// How many loads (people, objects) one scenario can hold.
pub const MAX_LOADS: usize = 16;

/// One scripted change on the platform, for `LoadCell::scripted`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Event {
    /// A person steps on: feet one after the other, a bounce, then sway.
    StepOn {
        /// When the first foot lands.
        at_ms: u64,
        /// The person's mass.
        mass_kg: f64,
    },
    /// The person who stepped on last steps off.
    StepOff {
        /// When the person starts to leave.
        at_ms: u64,
    },
    /// An object is put down gently: no bounce, no sway (a calibration mass).
    Place {
        /// When the object starts to touch the platform.
        at_ms: u64,
        /// The object's mass.
        mass_kg: f64,
    },
    /// The load put on last is lifted off.
    Lift {
        /// When the object starts to be lifted.
        at_ms: u64,
    },
    /// The load put on last keeps shifting by ±`amplitude_kg` between the two times.
    ShiftWeight {
        /// When the shifting starts.
        from_ms: u64,
        /// When the person holds still again.
        until_ms: u64,
        /// Peak change of the force on the platform.
        amplitude_kg: f64,
    },
}

/// Why a scenario step was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ScenarioError {
    /// More than `MAX_LOADS` loads in one scenario.
    Full,
    /// Nothing is on the platform to step off, lift or shift.
    NothingOn,
    /// The step is earlier than the load it refers to arrived.
    OutOfOrder,
}

/// A sine component of a load's movement.
#[derive(Debug, Clone, Copy, Default)]
struct Wave {
    amplitude_kg: f64,
    hz: f64,
    phase: f64,
}

impl Wave {
    fn at(&self, t_s: f64) -> f64 {
        self.amplitude_kg * sin(TAU * self.hz * t_s + self.phase)
    }
}

/// A period of deliberate weight shifting.
#[derive(Debug, Clone, Copy)]
struct Shift {
    from_ms: f64,
    until_ms: f64,
    wave: Wave,
}

/// Ramps in and out of a weight shift, so it starts and stops like a person does.
const SHIFT_TAPER_MS: f64 = 300.0;

impl Shift {
    fn at(&self, t_ms: f64) -> f64 {
        if t_ms < self.from_ms || t_ms > self.until_ms {
            return 0.0;
        }
        let taper = smoothstep((t_ms - self.from_ms) / SHIFT_TAPER_MS)
            * smoothstep((self.until_ms - t_ms) / SHIFT_TAPER_MS);
        taper * self.wave.at((t_ms - self.from_ms) / 1000.0)
    }
}

/// One person or object on the platform, from arrival to departure.
#[derive(Debug, Clone, Copy)]
struct Load {
    on_ms: f64,
    mass_kg: f64,
    ramp_on_ms: f64,
    /// Share of the mass on the first foot (1 for an object).
    first_foot: f64,
    bounce: Wave,
    bounce_decay_ms: f64,
    sway: [Wave; 2],
    shift: Option<Shift>,
    /// Departure time and how long it takes.
    off: Option<(f64, f64)>,
}

impl Load {
    /// Force on the platform at `t_ms`, in kg.
    fn kg_at(&self, t_ms: f64) -> f64 {
        if t_ms < self.on_ms {
            return 0.0;
        }
        let since_on = t_ms - self.on_ms;
        let half_ramp = self.ramp_on_ms / 2.0;
        let arrived = self.first_foot * smoothstep(since_on / half_ramp)
            + (1.0 - self.first_foot) * smoothstep((since_on - half_ramp) / half_ramp);
        let mut kg = self.mass_kg * arrived;
        if since_on > self.ramp_on_ms {
            let since_ramp = since_on - self.ramp_on_ms;
            kg += exp(-since_ramp / self.bounce_decay_ms) * self.bounce.at(since_ramp / 1000.0);
        }
        let t_s = t_ms / 1000.0;
        kg += arrived * self.sway.iter().map(|w| w.at(t_s)).sum::<f64>();
        if let Some(shift) = &self.shift {
            kg += shift.at(t_ms);
        }
        if let Some((off_ms, ramp_off_ms)) = self.off
            && t_ms >= off_ms
        {
            kg *= 1.0 - smoothstep((t_ms - off_ms) / ramp_off_ms);
        }
        kg
    }
}

/// 0 below 0, 1 above 1, a smooth S in between.
fn smoothstep(x: f64) -> f64 {
    let x = x.clamp(0.0, 1.0);
    x * x * (3.0 - 2.0 * x)
}

/// The flaws of one unit, drawn from the seed (see the module documentation for the ranges).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Characteristics {
    /// Counts with nothing on the platform, at power-on.
    pub offset_counts: f64,
    /// Counts per kg on the platform (negative when the bridge is wired the other way round).
    pub counts_per_kg: f64,
    /// Standard deviation of the electrical noise.
    pub noise_rms_counts: f64,
    /// Zero shift once the electronics have warmed up, in kg.
    pub warm_up_kg: f64,
    /// How fast the warm-up drift settles (63 % after this long).
    pub warm_up_time_constant_s: f64,
    /// Amplitude of the zero's swing with the room's temperature, in kg.
    pub ambient_kg: f64,
    /// Period of the room's temperature swing.
    pub ambient_period_s: f64,
    /// Where in its swing the room's temperature is at power-on, in radians.
    pub ambient_phase: f64,
    /// Creep at equilibrium, as a fraction of the load.
    pub creep_fraction: f64,
    /// How fast creep builds up under a load and recovers without it.
    pub creep_time_constant_s: f64,
}

/// The simulated platform and bridge: an `AnalogFrontEnd` for `Hx71x`.
#[derive(Debug, Clone)]
pub struct LoadCell {
    rng: Xoshiro256PlusPlus,
    unit: Characteristics,
    loads: [Option<Load>; MAX_LOADS],
    /// Creep of the bridge, as kg it adds to the reading.
    creep_kg: f64,
    last_conversion_ms: Option<f64>,
}

impl LoadCell {
    /// A unit with its own flaws and an empty platform; `seed` fixes everything random.
    pub fn new(seed: u64) -> Self {
        let mut rng = Xoshiro256PlusPlus::seed_from_u64(seed);
        let polarity = if rng.next_u32() & 1 == 0 { 1.0 } else { -1.0 };
        let counts_per_kg = polarity * NOMINAL_COUNTS_PER_KG * uniform(&mut rng, 0.9, 1.1);
        let plate_kg = uniform(&mut rng, 1.5, 3.0);
        let imbalance = uniform(&mut rng, -60_000.0, 60_000.0);
        let unit = Characteristics {
            offset_counts: imbalance + plate_kg * counts_per_kg,
            counts_per_kg,
            noise_rms_counts: uniform(&mut rng, 15.0, 40.0),
            warm_up_kg: signed(&mut rng, 0.010, 0.040),
            warm_up_time_constant_s: uniform(&mut rng, 120.0, 600.0),
            ambient_kg: uniform(&mut rng, 0.010, 0.030),
            ambient_period_s: uniform(&mut rng, 3_600.0, 10_800.0),
            ambient_phase: uniform(&mut rng, 0.0, TAU),
            creep_fraction: uniform(&mut rng, 0.0002, 0.0005),
            creep_time_constant_s: uniform(&mut rng, 120.0, 300.0),
        };
        Self {
            rng,
            unit,
            loads: [None; MAX_LOADS],
            creep_kg: 0.0,
            last_conversion_ms: None,
        }
    }

    /// A unit running a whole scripted scenario.
    pub fn scripted(seed: u64, events: &[Event]) -> Result<Self, ScenarioError> {
        let mut cell = Self::new(seed);
        for event in events {
            cell.apply(*event)?;
        }
        Ok(cell)
    }

    /// Applies one scripted event.
    pub fn apply(&mut self, event: Event) -> Result<&mut Self, ScenarioError> {
        match event {
            Event::StepOn { at_ms, mass_kg } => self.step_on(at_ms, mass_kg),
            Event::StepOff { at_ms } => self.step_off(at_ms),
            Event::Place { at_ms, mass_kg } => self.place(at_ms, mass_kg),
            Event::Lift { at_ms } => self.lift(at_ms),
            Event::ShiftWeight {
                from_ms,
                until_ms,
                amplitude_kg,
            } => self.shift_weight(from_ms, until_ms, amplitude_kg),
        }
    }

    /// A person of `mass_kg` steps on at `at_ms`.
    pub fn step_on(&mut self, at_ms: u64, mass_kg: f64) -> Result<&mut Self, ScenarioError> {
        let rng = &mut self.rng;
        let bounce_scale = (mass_kg / 75.0).clamp(0.2, 1.5);
        let sway_scale = (mass_kg / 80.0).clamp(0.25, 1.25);
        let load = Load {
            on_ms: at_ms as f64,
            mass_kg,
            ramp_on_ms: uniform(rng, 400.0, 1_000.0),
            first_foot: uniform(rng, 0.4, 0.7),
            bounce: Wave {
                amplitude_kg: bounce_scale * uniform(rng, 0.15, 0.5),
                hz: uniform(rng, 1.0, 3.0),
                phase: 0.0,
            },
            bounce_decay_ms: uniform(rng, 300.0, 600.0),
            sway: [
                Wave {
                    amplitude_kg: sway_scale * uniform(rng, 0.008, 0.025),
                    hz: uniform(rng, 0.2, 0.6),
                    phase: uniform(rng, 0.0, TAU),
                },
                Wave {
                    amplitude_kg: sway_scale * uniform(rng, 0.003, 0.010),
                    hz: uniform(rng, 1.0, 1.5),
                    phase: uniform(rng, 0.0, TAU),
                },
            ],
            shift: None,
            off: None,
        };
        self.add(load)
    }

    /// The person (or object) that arrived last and is still on leaves, starting at `at_ms`.
    pub fn step_off(&mut self, at_ms: u64) -> Result<&mut Self, ScenarioError> {
        let ramp_off_ms = uniform(&mut self.rng, 300.0, 700.0);
        self.end_last(at_ms, ramp_off_ms)
    }

    /// An object of `mass_kg` is put down gently over half a second, starting at `at_ms`.
    pub fn place(&mut self, at_ms: u64, mass_kg: f64) -> Result<&mut Self, ScenarioError> {
        let load = Load {
            on_ms: at_ms as f64,
            mass_kg,
            ramp_on_ms: 500.0,
            first_foot: 1.0,
            bounce: Wave::default(),
            bounce_decay_ms: 1.0,
            sway: [Wave::default(); 2],
            shift: None,
            off: None,
        };
        self.add(load)
    }

    /// The object that arrived last is lifted off over 0.3 s, starting at `at_ms`.
    pub fn lift(&mut self, at_ms: u64) -> Result<&mut Self, ScenarioError> {
        self.end_last(at_ms, 300.0)
    }

    /// The load that arrived last shifts its weight by ±`amplitude_kg`, at 0.3 to 0.8 Hz,
    /// between `from_ms` and `until_ms`.
    pub fn shift_weight(
        &mut self,
        from_ms: u64,
        until_ms: u64,
        amplitude_kg: f64,
    ) -> Result<&mut Self, ScenarioError> {
        let wave = Wave {
            amplitude_kg,
            hz: uniform(&mut self.rng, 0.3, 0.8),
            phase: 0.0,
        };
        let load = self.last_on_mut()?;
        if (from_ms as f64) < load.on_ms || until_ms < from_ms {
            return Err(ScenarioError::OutOfOrder);
        }
        load.shift = Some(Shift {
            from_ms: from_ms as f64,
            until_ms: until_ms as f64,
            wave,
        });
        Ok(self)
    }

    /// Replaces the drawn warm-up drift: the zero moves by `kg` with this time constant.
    pub fn with_zero_drift(mut self, kg: f64, time_constant_s: f64) -> Self {
        self.unit.warm_up_kg = kg;
        self.unit.warm_up_time_constant_s = time_constant_s;
        self
    }

    /// Replaces the drawn noise.
    pub fn with_noise_rms_counts(mut self, counts: f64) -> Self {
        self.unit.noise_rms_counts = counts;
        self
    }

    /// Replaces the drawn creep.
    pub fn with_creep(mut self, fraction: f64, time_constant_s: f64) -> Self {
        self.unit.creep_fraction = fraction;
        self.unit.creep_time_constant_s = time_constant_s;
        self
    }

    /// The flaws of this unit, for tests that explain a result.
    pub fn characteristics(&self) -> &Characteristics {
        &self.unit
    }

    /// The force on the platform at `at_ms`, in kg, sway and bounce included. For tests only:
    /// the firmware sees counts.
    pub fn true_load_kg(&self, at_ms: u64) -> f64 {
        self.load_kg(at_ms as f64)
    }

    /// The mass of everything standing on the platform at `at_ms`: what a perfect scale shows
    /// once the bounce and sway have been averaged away. For tests only.
    pub fn true_mass_kg(&self, at_ms: u64) -> f64 {
        let t_ms = at_ms as f64;
        self.loads
            .iter()
            .flatten()
            .filter(|load| load.on_ms <= t_ms && load.off.is_none_or(|(off_ms, _)| t_ms < off_ms))
            .map(|load| load.mass_kg)
            .sum()
    }

    /// How far the zero has moved since power-on at `at_ms`, in kg. For tests only.
    pub fn zero_drift_kg(&self, at_ms: u64) -> f64 {
        let t_s = at_ms as f64 / 1000.0;
        let unit = &self.unit;
        let warm_up = unit.warm_up_kg * (1.0 - exp(-t_s / unit.warm_up_time_constant_s));
        let ambient = unit.ambient_kg
            * (sin(TAU * t_s / unit.ambient_period_s + unit.ambient_phase)
                - sin(unit.ambient_phase));
        warm_up + ambient
    }

    fn load_kg(&self, t_ms: f64) -> f64 {
        self.loads
            .iter()
            .flatten()
            .map(|load| load.kg_at(t_ms))
            .sum()
    }

    fn add(&mut self, load: Load) -> Result<&mut Self, ScenarioError> {
        let slot = self
            .loads
            .iter_mut()
            .find(|slot| slot.is_none())
            .ok_or(ScenarioError::Full)?;
        *slot = Some(load);
        Ok(self)
    }

    fn last_on_mut(&mut self) -> Result<&mut Load, ScenarioError> {
        self.loads
            .iter_mut()
            .flatten()
            .filter(|load| load.off.is_none())
            .max_by(|a, b| a.on_ms.total_cmp(&b.on_ms))
            .ok_or(ScenarioError::NothingOn)
    }

    fn end_last(&mut self, at_ms: u64, ramp_off_ms: f64) -> Result<&mut Self, ScenarioError> {
        let load = self.last_on_mut()?;
        if (at_ms as f64) < load.on_ms {
            return Err(ScenarioError::OutOfOrder);
        }
        load.off = Some((at_ms as f64, ramp_off_ms));
        Ok(self)
    }

    /// Moves the creep towards its equilibrium for the load now on the platform.
    fn creep_towards(&mut self, t_ms: f64, load_kg: f64) {
        let dt_s = self
            .last_conversion_ms
            .map_or(0.0, |last| (t_ms - last).max(0.0) / 1000.0);
        self.last_conversion_ms = Some(t_ms);
        let target = self.unit.creep_fraction * load_kg;
        let follow = 1.0 - exp(-dt_s / self.unit.creep_time_constant_s);
        self.creep_kg += (target - self.creep_kg) * follow;
    }

    fn gaussian(&mut self) -> f64 {
        // Box-Muller; the +0.5 keeps the logarithm away from zero.
        let u1 = ((self.rng.next_u64() >> 11) as f64 + 0.5) / (1u64 << 53) as f64;
        let u2 = (self.rng.next_u64() >> 11) as f64 / (1u64 << 53) as f64;
        sqrt(-2.0 * log(u1)) * cos(TAU * u2)
    }
}

impl AnalogFrontEnd for LoadCell {
    fn counts(&mut self, now_us: u64, pulses: u8) -> i32 {
        let t_ms = now_us as f64 / 1000.0;
        let load_kg = self.load_kg(t_ms);
        self.creep_towards(t_ms, load_kg);
        let noise = self.gaussian() * self.unit.noise_rms_counts;
        let at_gain_128 = self.unit.offset_counts
            + self.unit.counts_per_kg
                * (load_kg + self.creep_kg + self.zero_drift_kg(now_us / 1000));
        let counts = match pulses {
            // Channel A at gain 128.
            25 => at_gain_128 + noise,
            // Channel A at gain 64: half the counts, the same input noise.
            27 => (at_gain_128 + noise) / 2.0,
            // Channel B: not connected on this board, so noise around zero.
            _ => noise / 4.0,
        };
        round(counts).clamp(i32::MIN as f64, i32::MAX as f64) as i32
    }
}

fn uniform(rng: &mut Xoshiro256PlusPlus, low: f64, high: f64) -> f64 {
    let unit = (rng.next_u64() >> 11) as f64 / (1u64 << 53) as f64;
    low + (high - low) * unit
}

/// Magnitude between `low` and `high`, either sign.
fn signed(rng: &mut Xoshiro256PlusPlus, low: f64, high: f64) -> f64 {
    let sign = if rng.next_u32() & 1 == 0 { 1.0 } else { -1.0 };
    sign * uniform(rng, low, high)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mean_and_rms<const N: usize>(samples: &[f64; N]) -> (f64, f64) {
        let mean = samples.iter().sum::<f64>() / N as f64;
        let var = samples.iter().map(|s| (s - mean) * (s - mean)).sum::<f64>() / N as f64;
        (mean, sqrt(var))
    }

    #[test]
    fn nominal_sensitivity_follows_from_the_rated_output_and_the_gain() {
        assert!((NOMINAL_COUNTS_PER_KG - 10_737.4).abs() < 0.1);
    }

    #[test]
    fn the_same_seed_replays_the_same_counts() {
        let script = [
            Event::StepOn {
                at_ms: 1_000,
                mass_kg: 70.0,
            },
            Event::StepOff { at_ms: 8_000 },
        ];
        let mut a = LoadCell::scripted(3, &script).unwrap();
        let mut b = LoadCell::scripted(3, &script).unwrap();
        let mut c = LoadCell::scripted(4, &script).unwrap();
        let mut differs = false;
        for i in 0..100 {
            let t = i * 100_000;
            let ca = a.counts(t, 25);
            assert_eq!(ca, b.counts(t, 25));
            differs |= ca != c.counts(t, 25);
        }
        assert!(differs);
    }

    #[test]
    fn counts_follow_offset_plus_sensitivity_times_mass_with_the_drawn_noise() {
        let mut cell = LoadCell::new(11).with_creep(0.0, 100.0);
        cell.place(0, 50.0).unwrap();
        let unit = *cell.characteristics();
        let mut samples = [0.0; 400];
        for (i, s) in samples.iter_mut().enumerate() {
            // One conversion every 100 ms, starting once the mass is down.
            let t_ms = 1_000 + i as u64 * 100;
            let expected =
                unit.offset_counts + unit.counts_per_kg * (50.0 + cell.zero_drift_kg(t_ms));
            *s = f64::from(cell.counts(t_ms * 1000, 25)) - expected;
        }
        let (mean, rms) = mean_and_rms(&samples);
        assert!(mean.abs() < 6.0, "mean error {mean} counts");
        assert!(
            (rms / unit.noise_rms_counts - 1.0).abs() < 0.15,
            "rms {rms}"
        );
    }

    #[test]
    fn a_person_bounces_after_stepping_on_then_sways_by_tens_of_grams() {
        let mut cell = LoadCell::new(5);
        cell.step_on(0, 80.0).unwrap();
        let mut peak: f64 = 0.0;
        for t in 0..2_000 {
            peak = peak.max(cell.true_load_kg(t) - 80.0);
        }
        assert!((0.03..=0.8).contains(&peak), "overshoot {peak} kg");
        let mut sway: f64 = 0.0;
        for t in 4_000..20_000 {
            sway = sway.max((cell.true_load_kg(t) - 80.0).abs());
        }
        assert!((0.005..0.06).contains(&sway), "sway {sway} kg");
        assert_eq!(cell.true_mass_kg(10_000), 80.0);
    }

    #[test]
    fn stepping_off_empties_the_platform() {
        let mut cell = LoadCell::new(6);
        cell.step_on(0, 60.0).unwrap().step_off(5_000).unwrap();
        assert_eq!(cell.true_mass_kg(4_999), 60.0);
        assert_eq!(cell.true_mass_kg(5_000), 0.0);
        assert_eq!(cell.true_load_kg(6_000), 0.0);
    }

    #[test]
    fn creep_raises_the_reading_under_a_constant_load() {
        let mut cell = LoadCell::new(7)
            .with_noise_rms_counts(0.0)
            .with_zero_drift(0.0, 100.0)
            .with_creep(0.0005, 180.0);
        cell.unit.ambient_kg = 0.0;
        cell.place(0, 100.0).unwrap();
        let early = f64::from(cell.counts(1_000_000, 25));
        let late = f64::from(cell.counts(1_800_000_000, 25));
        let rise_kg = (late - early) / cell.unit.counts_per_kg;
        // 0.05 % of 100 kg at equilibrium: 50 g.
        assert!((0.045..0.051).contains(&rise_kg), "creep {rise_kg} kg");
    }

    #[test]
    fn refuses_to_step_off_an_empty_platform_or_before_arriving() {
        let mut cell = LoadCell::new(1);
        assert_eq!(cell.step_off(0).err(), Some(ScenarioError::NothingOn));
        cell.step_on(5_000, 70.0).unwrap();
        assert_eq!(cell.step_off(4_000).err(), Some(ScenarioError::OutOfOrder));
        for i in 1..MAX_LOADS as u64 {
            cell.place(10_000 + i, 1.0).unwrap();
        }
        assert_eq!(cell.place(20_000, 1.0).err(), Some(ScenarioError::Full));
    }
}
