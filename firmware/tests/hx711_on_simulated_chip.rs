//! The HX711 driver against the pin-level chip simulation: bits, sign, gain selection by pulse
//! count, power-down and the timeout.
#![allow(clippy::unwrap_used)]

use core::cell::RefCell;

use relais_board_sim::SimClock;
use relais_board_sim::hx71x::{AnalogFrontEnd, ClockPin, DataPin, Hx71x};
use relais_firmware::drivers::hx711::{Error, Gain, Hx711};

/// Counts that say which channel/gain was selected, so the test can see the selection.
struct ByGain;

impl AnalogFrontEnd for ByGain {
    fn counts(&mut self, _now_us: u64, pulses: u8) -> i32 {
        match pulses {
            25 => -1_234_567,
            26 => 4_000,
            _ => 8_388_000,
        }
    }
}

#[test]
fn reads_signed_24_bit_values_and_selects_the_gain_by_pulse_count() {
    let clock = SimClock::new();
    let chip = RefCell::new(Hx71x::new(&clock, ByGain, 10));
    let mut adc = Hx711::new(
        ClockPin(&chip),
        DataPin(&chip),
        clock.delay(),
        Gain::ChannelB32,
    )
    .unwrap();
    // The chip starts at channel A, gain 128.
    assert_eq!(adc.read().unwrap(), -1_234_567);
    assert_eq!(adc.read().unwrap(), 4_000);
    adc.set_gain(Gain::ChannelA64);
    assert_eq!(adc.read().unwrap(), 4_000);
    assert_eq!(adc.read().unwrap(), 8_388_000);
    assert_eq!(chip.borrow().reads(), 4);
}

#[test]
fn conversions_come_at_the_chip_rate() {
    let clock = SimClock::new();
    let chip = RefCell::new(Hx71x::new(&clock, ByGain, 80));
    let mut adc = Hx711::new(
        ClockPin(&chip),
        DataPin(&chip),
        clock.delay(),
        Gain::ChannelA128,
    )
    .unwrap();
    adc.read().unwrap();
    let t0 = clock.now_us();
    for _ in 0..8 {
        adc.read().unwrap();
    }
    let per_read = (clock.now_us() - t0) / 8;
    assert!(
        (12_500..12_700).contains(&per_read),
        "{per_read} µs per conversion at 80 Hz"
    );
}

#[test]
fn power_down_resets_the_chip_to_channel_a_gain_128() {
    let clock = SimClock::new();
    let chip = RefCell::new(Hx71x::new(&clock, ByGain, 10));
    let mut adc = Hx711::new(
        ClockPin(&chip),
        DataPin(&chip),
        clock.delay(),
        Gain::ChannelB32,
    )
    .unwrap();
    adc.read().unwrap();
    assert_eq!(chip.borrow().selected_pulses(), 26);
    adc.power_down().unwrap();
    assert!(!adc.is_ready().unwrap());
    adc.power_up().unwrap();
    assert_eq!(chip.borrow().selected_pulses(), 25);
    assert_eq!(adc.read().unwrap(), -1_234_567);
}

#[test]
fn a_dead_chip_times_out_instead_of_hanging() {
    let clock = SimClock::new();
    let chip = RefCell::new(Hx71x::new(&clock, ByGain, 10));
    chip.borrow_mut().cut_power();
    let mut adc = Hx711::new(
        ClockPin(&chip),
        DataPin(&chip),
        clock.delay(),
        Gain::ChannelA128,
    )
    .unwrap();
    adc.set_timeout_us(50_000);
    assert_eq!(adc.read(), Err(Error::Timeout));
    assert!(clock.now_us() >= 50_000 && clock.now_us() < 60_000);
}
