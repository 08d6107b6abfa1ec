//! The scale personality on the simulated board: the real HX711 driver reading the pin-level
//! HX711 simulation, fed by the simulated load cells with noise, zero drift, creep, and people
//! who bounce, sway, shift their weight and step off. The firmware sees counts only; the tests
//! read the true mass from the simulator to judge the result.
//!
//! Run with `--nocapture` to see the accuracy figures of the panel.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

use core::cell::RefCell;

use relais_board_sim::hx71x::{ClockPin, DataPin, Hx71x};
use relais_board_sim::load_cell::LoadCell;
use relais_board_sim::{RamFlash, SimClock, SimDelay};
use relais_firmware::drivers::hx711::{Gain, Hx711};
use relais_firmware::record_log::{RecordLog, WhenFull};
use relais_firmware::scale::{
    Calibration, CalibrationStore, Phase, RamOnly, Scale, ScaleEvent, UNKNOWN_USER,
    WeighingArchive, WeightUnit,
};
use relais_protocol::weight_scale::{WeightMeasurement, WeightResolution};
use relais_protocol::{Characteristic, DateTime, Unit};

/// The HX711's RATE pin low: 10 conversions per second.
const RATE_HZ: u32 = 10;
/// The reference mass used to calibrate each unit.
const CALIBRATION_KG: f32 = 50.0;
/// What the scale promises: the one measurement of a weighing within 50 g of the true mass.
const TOLERANCE_KG: f64 = 0.050;
/// How often the firmware's main loop polls the scale.
const POLL_MS: u64 = 5;

type Chip<'c> = RefCell<Hx71x<'c, LoadCell>>;
type SimScale<'a, 'c, A = RamOnly> =
    Scale<ClockPin<'a, 'c, LoadCell>, DataPin<'a, 'c, LoadCell>, SimDelay<'c>, A>;

/// A board: simulated time and an HX711 under the load cells.
struct Board {
    clock: SimClock,
}

impl Board {
    fn new() -> Self {
        Self {
            clock: SimClock::new(),
        }
    }

    fn chip(&self, cell: LoadCell) -> Chip<'_> {
        RefCell::new(Hx71x::new(&self.clock, cell, RATE_HZ))
    }

    fn now_ms(&self) -> u64 {
        self.clock.now_ms()
    }

    /// Boots the scale firmware on `chip` with `calibration`, keeping weighings in RAM only.
    fn boot<'a, 'c>(&'c self, chip: &'a Chip<'c>, calibration: Calibration) -> SimScale<'a, 'c> {
        self.boot_with(chip, calibration, RamOnly)
    }

    /// Boots the scale firmware on `chip` with `calibration` and an archive for the weighings.
    fn boot_with<'a, 'c, A: WeighingArchive>(
        &'c self,
        chip: &'a Chip<'c>,
        calibration: Calibration,
        archive: A,
    ) -> SimScale<'a, 'c, A>
    where
        A::Error: core::fmt::Debug,
    {
        let adc = Hx711::new(
            ClockPin(chip),
            DataPin(chip),
            self.clock.delay(),
            Gain::ChannelA128,
        )
        .unwrap();
        Scale::new(adc, calibration, archive).unwrap()
    }

    /// Runs the firmware's main loop until `until_ms`, with the device clock set when
    /// `clock_set`; returns what the scale reported, with the time.
    fn run<A: WeighingArchive>(
        &self,
        scale: &mut SimScale<'_, '_, A>,
        until_ms: u64,
        clock_set: bool,
    ) -> Vec<(u64, ScaleEvent)>
    where
        A::Error: core::fmt::Debug,
    {
        let mut events = Vec::new();
        while self.clock.now_ms() < until_ms {
            self.clock.advance_ms(POLL_MS);
            let wall_clock = clock_set.then(|| wall_clock(self.clock.now_ms()));
            if let Some(event) = scale.poll(wall_clock).unwrap() {
                events.push((self.clock.now_ms(), event));
            }
        }
        events
    }

    /// The factory calibration: empty platform, then the reference mass put down gently and
    /// lifted off again.
    fn calibrate(&self, chip: &Chip<'_>, scale: &mut SimScale<'_, '_>) -> Calibration {
        scale.begin_calibration(CALIBRATION_KG).unwrap();
        let start = self.now_ms();
        chip.borrow_mut()
            .front_end_mut()
            .place(start + 3_000, f64::from(CALIBRATION_KG))
            .unwrap();
        let events = self.run(scale, start + 8_000, false);
        let calibrations: Vec<_> = events
            .iter()
            .filter_map(|(_, e)| match e {
                ScaleEvent::Calibrated(c) => Some(*c),
                _ => None,
            })
            .collect();
        assert_eq!(calibrations.len(), 1, "{events:?}");
        chip.borrow_mut()
            .front_end_mut()
            .lift(start + 8_000)
            .unwrap();
        let after = self.run(scale, start + 10_000, false);
        assert!(
            after.is_empty(),
            "lifting the reference mass is no weighing: {after:?}"
        );
        calibrations[0]
    }
}

/// A device clock set to 2025-11-26 07:00:00 at power-on.
fn wall_clock(now_ms: u64) -> DateTime {
    let s = now_ms / 1000;
    DateTime::new(
        2025,
        11,
        26,
        7 + (s / 3600) as u8,
        (s / 60 % 60) as u8,
        (s % 60) as u8,
    )
    .unwrap()
}

/// The measurements among `events`.
fn measurements(events: &[(u64, ScaleEvent)]) -> Vec<(u64, WeightMeasurement)> {
    events
        .iter()
        .filter_map(|(t, e)| match e {
            ScaleEvent::Measured(m) => Some((*t, *m)),
            _ => None,
        })
        .collect()
}

/// A measurement's weight in kg, whatever its unit.
fn kg(m: &WeightMeasurement) -> f64 {
    let value = m
        .weight
        .to_f64()
        .expect("a number, not 'measurement unsuccessful'");
    match m.weight.unit {
        Unit::Kilogram => value,
        Unit::Pound => value * 0.453_592_37,
        other => panic!("weight in {other:?}"),
    }
}

/// A unit calibrated at the factory and left on, ready for a person.
fn calibrated_unit<'a, 'c>(board: &'c Board, chip: &'a Chip<'c>) -> SimScale<'a, 'c> {
    let mut scale = board.boot(chip, Calibration::NOMINAL);
    board.run(&mut scale, 3_000, false);
    board.calibrate(chip, &mut scale);
    scale
}

/// One person of the panel.
struct Weighed {
    mass_kg: f64,
    error_kg: f64,
    /// From stepping on to the measurement.
    latency_ms: u64,
}

/// Person `i` of the panel (3 to 150 kg) steps on a freshly calibrated unit after the unit has
/// stood empty for between 5 s and 20 min, stays 15 s and steps off.
fn weigh_panel_member(i: u64, resolution: WeightResolution) -> Weighed {
    let board = Board::new();
    let chip = board.chip(LoadCell::new(1_000 + i));
    let mut scale = calibrated_unit(&board, &chip);
    scale.set_resolution(resolution).unwrap();
    let unit = if i % 3 == 2 {
        WeightUnit::Pound
    } else {
        WeightUnit::Kilogram
    };
    scale.set_unit(unit);
    let user = (i % 5 < 4).then_some((i % 5) as u8);
    scale.select_user(user).unwrap();
    let clock_set = i.is_multiple_of(2);

    let mass_kg = 3.0 + 147.0 * i as f64 / 39.0 - 0.137 * (i % 7) as f64;
    let mass_kg = mass_kg.clamp(3.0, 150.0);
    let idle_ms = [5_000, 60_000, 300_000, 1_200_000][(i % 4) as usize];
    let on_ms = board.now_ms() + idle_ms;
    let off_ms = on_ms + 15_000;
    chip.borrow_mut()
        .front_end_mut()
        .step_on(on_ms, mass_kg)
        .unwrap()
        .step_off(off_ms)
        .unwrap();
    let events = board.run(&mut scale, off_ms + 3_000, clock_set);
    let taken = measurements(&events);
    assert_eq!(taken.len(), 1, "person {i} ({mass_kg:.3} kg): {events:?}");
    let (at_ms, m) = taken[0];
    assert!(
        at_ms > on_ms && at_ms < off_ms,
        "person {i} measured at {at_ms} ms"
    );
    assert_eq!(
        m.weight.unit,
        match unit {
            WeightUnit::Kilogram => Unit::Kilogram,
            WeightUnit::Pound => Unit::Pound,
        }
    );
    assert_eq!(m.user_id, Some(user.unwrap_or(UNKNOWN_USER)));
    assert_eq!(m.time_stamp, clock_set.then(|| wall_clock(at_ms)));
    assert_eq!(scale.pending(), Some(m));
    let mut bytes = [0u8; WeightMeasurement::MAX_LEN];
    let n = m.encode(&mut bytes).unwrap();
    assert_eq!(WeightMeasurement::decode(&bytes[..n]).unwrap().value, m);
    Weighed {
        mass_kg,
        error_kg: kg(&m) - chip.borrow().front_end().true_mass_kg(at_ms),
        latency_ms: at_ms - on_ms,
    }
}

/// Worst and mean absolute error over the panel of 40 people.
fn panel(resolution: WeightResolution) -> (f64, f64) {
    let results: Vec<Weighed> = (0..40).map(|i| weigh_panel_member(i, resolution)).collect();
    let latency = |r: &Weighed| r.latency_ms;
    eprintln!(
        "stepping on to measurement: mean {} ms, longest {} ms",
        results.iter().map(latency).sum::<u64>() / results.len() as u64,
        results.iter().map(latency).max().unwrap_or(0)
    );
    let worst = results.iter().map(|r| r.error_kg.abs()).fold(0.0, f64::max);
    let mean = results.iter().map(|r| r.error_kg.abs()).sum::<f64>() / results.len() as f64;
    for (i, r) in results.iter().enumerate() {
        assert!(
            r.error_kg.abs() <= TOLERANCE_KG,
            "person {i}: {:.3} kg measured {:+.1} g off",
            r.mass_kg,
            r.error_kg * 1000.0
        );
    }
    (worst, mean)
}

#[test]
fn every_person_of_the_panel_is_weighed_once_within_50_g() {
    let (worst, mean) = panel(relais_firmware::scale::DEFAULT_RESOLUTION);
    eprintln!(
        "panel at 0.05 kg / 0.1 lb: worst error {:.1} g, mean absolute error {:.1} g",
        worst * 1000.0,
        mean * 1000.0
    );
}

#[test]
fn before_rounding_to_the_display_the_scale_measures_to_a_few_tens_of_grams() {
    // The finest resolution the field has: what the scale measures, before it rounds to what it
    // announces. This is what justifies announcing 0.05 kg.
    let (worst, mean) = panel(WeightResolution::Kg0_005OrLb0_01);
    eprintln!(
        "panel at 0.005 kg / 0.01 lb: worst error {:.1} g, mean absolute error {:.1} g",
        worst * 1000.0,
        mean * 1000.0
    );
    assert!(worst < 0.030, "worst {worst} kg");
}

#[test]
fn a_person_shifting_their_weight_is_weighed_only_once_they_hold_still() {
    for seed in 0..8 {
        let board = Board::new();
        let chip = board.chip(LoadCell::new(2_000 + seed));
        let mut scale = calibrated_unit(&board, &chip);
        let on_ms = board.now_ms() + 2_000;
        let still_from = on_ms + 15_000;
        chip.borrow_mut()
            .front_end_mut()
            .step_on(on_ms, 82.4)
            .unwrap()
            .shift_weight(on_ms + 1_000, still_from, 1.0)
            .unwrap()
            .step_off(on_ms + 25_000)
            .unwrap();
        let events = board.run(&mut scale, on_ms + 28_000, false);
        let taken = measurements(&events);
        assert_eq!(taken.len(), 1, "seed {seed}: {events:?}");
        let (at_ms, m) = taken[0];
        assert!(
            at_ms > still_from,
            "seed {seed}: measured at {at_ms}, still from {still_from}"
        );
        assert!(
            (kg(&m) - 82.4).abs() <= TOLERANCE_KG,
            "seed {seed}: {}",
            kg(&m)
        );
    }
}

#[test]
fn someone_stepping_off_quickly_is_not_weighed() {
    for seed in 0..10 {
        let board = Board::new();
        let chip = board.chip(LoadCell::new(3_000 + seed));
        let mut scale = calibrated_unit(&board, &chip);
        let on_ms = board.now_ms() + 2_000;
        chip.borrow_mut()
            .front_end_mut()
            .step_on(on_ms, 40.0 + 10.0 * seed as f64)
            .unwrap()
            .step_off(on_ms + 1_500)
            .unwrap();
        let events = board.run(&mut scale, on_ms + 6_000, false);
        assert!(measurements(&events).is_empty(), "seed {seed}: {events:?}");
        assert_eq!(scale.pending(), None);
        assert_eq!(scale.phase(), Phase::Empty);
    }
}

#[test]
fn standing_on_for_a_minute_gives_one_measurement_and_the_next_person_gets_theirs() {
    let board = Board::new();
    // Strong creep, so a long stay shows it: 0.05 % of the load.
    let chip = board.chip(LoadCell::new(4_000).with_creep(0.0005, 120.0));
    let mut scale = calibrated_unit(&board, &chip);
    let first_on = board.now_ms() + 2_000;
    let second_on = first_on + 70_000;
    chip.borrow_mut()
        .front_end_mut()
        .step_on(first_on, 95.0)
        .unwrap()
        .step_off(first_on + 60_000)
        .unwrap()
        .step_on(second_on, 61.3)
        .unwrap()
        .step_off(second_on + 10_000)
        .unwrap();
    let events = board.run(&mut scale, second_on + 12_000, false);
    let taken = measurements(&events);
    assert_eq!(taken.len(), 2, "{events:?}");
    assert!((kg(&taken[0].1) - 95.0).abs() <= TOLERANCE_KG);
    assert!((kg(&taken[1].1) - 61.3).abs() <= TOLERANCE_KG);
    assert!(taken[1].0 > second_on);
}

#[test]
fn auto_zero_tracking_follows_the_zero_drifting_while_the_scale_stands_empty() {
    let board = Board::new();
    // 0.3 kg of drift over half an hour: far more than the 50 g tolerance.
    let chip = board.chip(LoadCell::new(5_000).with_zero_drift(0.3, 600.0));
    let mut scale = calibrated_unit(&board, &chip);
    let on_ms = 1_800_000;
    let drift = chip.borrow().front_end().zero_drift_kg(on_ms)
        - chip.borrow().front_end().zero_drift_kg(board.now_ms());
    assert!(
        drift.abs() > 0.2,
        "the zero moved {drift} kg since the calibration"
    );
    chip.borrow_mut()
        .front_end_mut()
        .step_on(on_ms, 70.0)
        .unwrap()
        .step_off(on_ms + 10_000)
        .unwrap();
    let taken = measurements(&board.run(&mut scale, on_ms + 12_000, false));
    assert_eq!(taken.len(), 1);
    assert!(
        (kg(&taken[0].1) - 70.0).abs() <= TOLERANCE_KG,
        "{}",
        kg(&taken[0].1)
    );
}

#[test]
fn tare_removes_the_drift_that_nothing_tracked() {
    let board = Board::new();
    let chip = board.chip(LoadCell::new(6_000).with_zero_drift(0.3, 600.0));
    let mut scale = calibrated_unit(&board, &chip);
    scale.set_auto_zero_tracking(false);
    let first_on = 1_800_000;
    chip.borrow_mut()
        .front_end_mut()
        .step_on(first_on, 70.0)
        .unwrap()
        .step_off(first_on + 10_000)
        .unwrap();
    let untared = measurements(&board.run(&mut scale, first_on + 12_000, false));
    assert_eq!(untared.len(), 1);
    let error = kg(&untared[0].1) - 70.0;
    assert!(
        error.abs() > 0.1,
        "without tracking or tare the drift shows: {error} kg"
    );

    scale.tare();
    let second_on = first_on + 20_000;
    chip.borrow_mut()
        .front_end_mut()
        .step_on(second_on, 70.0)
        .unwrap()
        .step_off(second_on + 10_000)
        .unwrap();
    let tared = measurements(&board.run(&mut scale, second_on + 12_000, false));
    assert_eq!(tared.len(), 1);
    assert!(
        (kg(&tared[0].1) - 70.0).abs() <= TOLERANCE_KG,
        "{}",
        kg(&tared[0].1)
    );
}

#[test]
fn calibration_survives_a_reboot() {
    let board = Board::new();
    let chip = board.chip(LoadCell::new(7_000));
    let mut flash = RamFlash::<4>::new();
    let calibration = {
        let mut scale = board.boot(&chip, Calibration::NOMINAL);
        board.run(&mut scale, 3_000, false);
        let calibration = board.calibrate(&chip, &mut scale);
        CalibrationStore::new(&mut flash, 4096)
            .unwrap()
            .save(&calibration)
            .unwrap();
        calibration
    };
    // Reboot: new firmware state, the same flash and the same platform.
    let loaded = CalibrationStore::new(&mut flash, 4096)
        .unwrap()
        .load()
        .unwrap();
    assert_eq!(loaded, Some(calibration));
    let mut scale = board.boot(&chip, loaded.unwrap());
    let on_ms = board.now_ms() + 5_000;
    chip.borrow_mut()
        .front_end_mut()
        .step_on(on_ms, 88.8)
        .unwrap()
        .step_off(on_ms + 10_000)
        .unwrap();
    let taken = measurements(&board.run(&mut scale, on_ms + 12_000, false));
    assert_eq!(taken.len(), 1);
    assert!(
        (kg(&taken[0].1) - 88.8).abs() <= TOLERANCE_KG,
        "{}",
        kg(&taken[0].1)
    );
}

#[test]
fn an_uncalibrated_unit_is_off_by_its_cell_tolerance() {
    // Why the calibration matters: the nominal sensitivity is only right to ±10 %.
    let board = Board::new();
    let cell = LoadCell::new(7_001);
    let true_sensitivity = cell.characteristics().counts_per_kg;
    let chip = board.chip(cell);
    let mut scale = board.boot(&chip, Calibration::NOMINAL);
    chip.borrow_mut()
        .front_end_mut()
        .step_on(5_000, 80.0)
        .unwrap()
        .step_off(15_000)
        .unwrap();
    let taken = measurements(&board.run(&mut scale, 17_000, false));
    let expected_kg = 80.0 * true_sensitivity / f64::from(Calibration::NOMINAL.counts_per_kg);
    if expected_kg > 1.5 {
        assert_eq!(taken.len(), 1);
        assert!((kg(&taken[0].1) - expected_kg).abs() < 0.1);
    } else {
        // Reversed polarity: the load reads negative and is never weighed.
        assert!(taken.is_empty());
    }
}

#[test]
fn measurements_taken_offline_are_handed_out_in_order_until_each_is_confirmed() {
    let board = Board::new();
    let chip = board.chip(LoadCell::new(8_000));
    let mut scale = calibrated_unit(&board, &chip);
    let masses = [(0, 58.2), (1, 91.35), (2, 24.9)];
    let mut t = board.now_ms() + 2_000;
    for (user, mass) in masses {
        scale.select_user(Some(user)).unwrap();
        chip.borrow_mut()
            .front_end_mut()
            .step_on(t, mass)
            .unwrap()
            .step_off(t + 8_000)
            .unwrap();
        board.run(&mut scale, t + 10_000, true);
        t += 12_000;
    }
    assert_eq!(scale.pending_count(), 3);
    for (user, mass) in masses {
        let next = scale.pending().unwrap();
        // The link drops before the confirmation: the same measurement is offered again.
        assert_eq!(scale.pending(), Some(next));
        assert_eq!(next.user_id, Some(user));
        assert!((kg(&next) - mass).abs() <= TOLERANCE_KG);
        assert!(next.time_stamp.is_some());
        scale.delivered().unwrap();
    }
    assert_eq!(scale.pending(), None);
    assert_eq!(scale.pending_count(), 0);
}

#[test]
fn measurements_not_yet_delivered_survive_a_reboot_in_the_record_log() {
    // Flash: pages 0-1 hold the calibration, pages 2-5 the weighings.
    const LOG: core::ops::Range<u32> = 2 * 4096..6 * 4096;
    let board = Board::new();
    let chip = board.chip(LoadCell::new(8_500));
    let mut flash = RamFlash::<6>::new();
    let calibration = {
        let mut scale = board.boot(&chip, Calibration::NOMINAL);
        board.run(&mut scale, 3_000, false);
        let calibration = board.calibrate(&chip, &mut scale);
        CalibrationStore::new(&mut flash, 0)
            .unwrap()
            .save(&calibration)
            .unwrap();
        calibration
    };
    let masses = [71.2, 104.65, 33.3];
    {
        let log = RecordLog::mount(&mut flash, LOG, WhenFull::Refuse).unwrap();
        let mut scale = board.boot_with(&chip, calibration, log);
        let mut t = board.now_ms() + 2_000;
        for mass in masses {
            chip.borrow_mut()
                .front_end_mut()
                .step_on(t, mass)
                .unwrap()
                .step_off(t + 8_000)
                .unwrap();
            board.run(&mut scale, t + 10_000, true);
            t += 12_000;
        }
        // The gateway confirmed the first one; then the battery was pulled.
        assert_eq!(scale.pending_count(), 3);
        scale.delivered().unwrap();
    }
    let loaded = CalibrationStore::new(&mut flash, 0)
        .unwrap()
        .load()
        .unwrap()
        .unwrap();
    let log = RecordLog::mount(&mut flash, LOG, WhenFull::Refuse).unwrap();
    let mut scale = board.boot_with(&chip, loaded, log);
    assert_eq!(scale.pending_count(), 2);
    for mass in &masses[1..] {
        let next = scale.pending().unwrap();
        assert!(
            (kg(&next) - mass).abs() <= TOLERANCE_KG,
            "{} for {mass}",
            kg(&next)
        );
        assert!(next.time_stamp.is_some());
        scale.delivered().unwrap();
    }
    assert_eq!(scale.pending(), None);
}

#[test]
fn an_overload_is_sent_as_measurement_unsuccessful() {
    let board = Board::new();
    let chip = board.chip(LoadCell::new(9_000));
    let mut scale = calibrated_unit(&board, &chip);
    let on_ms = board.now_ms() + 2_000;
    chip.borrow_mut()
        .front_end_mut()
        .step_on(on_ms, 195.0)
        .unwrap()
        .step_off(on_ms + 10_000)
        .unwrap();
    let taken = measurements(&board.run(&mut scale, on_ms + 12_000, false));
    assert_eq!(taken.len(), 1);
    assert!(taken[0].1.measurement_unsuccessful());
    assert_eq!(taken[0].1.user_id, Some(UNKNOWN_USER));
}

#[test]
fn the_feature_announces_what_the_measurements_carry() {
    let board = Board::new();
    let chip = board.chip(LoadCell::new(10_000));
    let scale = board.boot(&chip, Calibration::NOMINAL);
    let feature = scale.feature();
    assert!(feature.time_stamp_supported && feature.multiple_users_supported);
    assert!(!feature.bmi_supported);
    assert_eq!(feature.weight_resolution, WeightResolution::Kg0_05OrLb0_1);
    let mut bytes = [0u8; 4];
    feature.encode(&mut bytes).unwrap();
    assert_eq!(u32::from_le_bytes(bytes), 0b10_0011);
}
