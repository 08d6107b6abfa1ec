//! The HX711 / HX710 family of bit-banged 24-bit ADCs, simulated at the pin level: a PD_SCK
//! `OutputPin` and a DOUT `InputPin` sharing one chip, which converts whatever analogue front end
//! it is given (a load cell, a pressure sensor).
//!
//! Behaviour copied from the datasheet: a conversion every `period` (10 Hz or 80 Hz); DOUT low when
//! one is ready; each PD_SCK rising edge shifts out one bit, MSB first; pulses 25 to 27 choose the
//! channel and gain of the next conversion and release DOUT high; PD_SCK high for more than 60 µs
//! powers the chip down, and on power-up it restarts at channel A, gain 128, with a settling time.

use core::cell::RefCell;
use core::convert::Infallible;

use embedded_hal::digital::{ErrorType, InputPin, OutputPin};

use crate::clock::SimClock;

/// What the chip converts: the analogue input, as ADC counts, at a time and for a gain.
pub trait AnalogFrontEnd {
    /// Counts for the conversion that completes at `now_us`. `pulses` (25, 26 or 27) is how
    /// the channel and gain of this conversion were selected: 25 = A/128, 26 = B/32, 27 = A/64.
    fn counts(&mut self, now_us: u64, pulses: u8) -> i32;
}

/// Power-down threshold of PD_SCK high time.
const POWER_DOWN_US: u64 = 60;

/// One simulated chip. Share it between its two pins with `RefCell`.
#[derive(Debug)]
pub struct Hx71x<'c, A> {
    clock: &'c SimClock,
    front_end: A,
    period_us: u64,
    settling_us: u64,
    powered: bool,
    clock_high_since_us: Option<u64>,
    /// Pulses of the current read-out (0 when none is under way).
    pulses: u8,
    /// Pulse count that selected the conversion being made.
    selected: u8,
    latched: Option<u32>,
    next_ready_us: u64,
    /// Number of complete read-outs, for tests.
    reads: u32,
}

impl<'c, A: AnalogFrontEnd> Hx71x<'c, A> {
    /// A chip converting at `rate_hz` (10 or 80 for an HX711).
    pub fn new(clock: &'c SimClock, front_end: A, rate_hz: u32) -> Self {
        let period_us = 1_000_000 / u64::from(rate_hz.max(1));
        Self {
            clock,
            front_end,
            period_us,
            settling_us: 4 * period_us,
            powered: true,
            clock_high_since_us: None,
            pulses: 0,
            selected: 25,
            latched: None,
            next_ready_us: clock.now_us() + 4 * period_us,
            reads: 0,
        }
    }

    pub fn front_end(&self) -> &A {
        &self.front_end
    }

    pub fn front_end_mut(&mut self) -> &mut A {
        &mut self.front_end
    }

    pub fn is_powered(&self) -> bool {
        self.powered
    }

    /// Complete read-outs so far.
    pub fn reads(&self) -> u32 {
        self.reads
    }

    /// The pulse count (25, 26, 27) that selected the next conversion.
    pub fn selected_pulses(&self) -> u8 {
        self.selected
    }

    /// Starts the next conversion's output once its time has come.
    fn update(&mut self) {
        let now = self.clock.now_us();
        if !self.powered || now < self.next_ready_us {
            return;
        }
        if self.pulses >= 25 {
            // The previous read-out is over.
            self.pulses = 0;
            self.latched = None;
        }
        if self.pulses != 0 || self.latched.is_some() {
            return;
        }
        let counts = self.front_end.counts(now, self.selected);
        let clamped = counts.clamp(-0x80_0000, 0x7F_FFFF);
        self.latched = Some(clamped as u32 & 0xFF_FFFF);
    }

    fn dout_high(&mut self) -> bool {
        let now = self.clock.now_us();
        if self
            .clock_high_since_us
            .is_some_and(|since| now.saturating_sub(since) > POWER_DOWN_US)
        {
            return true; // Powered down by a long PD_SCK high.
        }
        self.update();
        match (self.latched, self.pulses) {
            (Some(word), 1..=24) => word >> (24 - u32::from(self.pulses)) & 1 == 1,
            (Some(_), 0) => false,
            _ => true,
        }
    }

    fn clock_rise(&mut self) {
        let now = self.clock.now_us();
        self.clock_high_since_us = Some(now);
        self.update();
        if !self.powered {
            return;
        }
        if self.latched.is_some() && self.pulses < 27 {
            self.pulses += 1;
        }
    }

    fn clock_fall(&mut self) {
        let now = self.clock.now_us();
        let high_for = self
            .clock_high_since_us
            .take()
            .map_or(0, |since| now.saturating_sub(since));
        if high_for > POWER_DOWN_US || !self.powered {
            // Held high: the chip powered down; going low powers it up in its reset state.
            self.powered = true;
            self.pulses = 0;
            self.selected = 25;
            self.latched = None;
            self.next_ready_us = now + self.settling_us;
            return;
        }
        if self.pulses >= 25 {
            // Pulses 25 to 27 select the next conversion, which starts now.
            self.selected = self.pulses;
            self.next_ready_us = now + self.period_us;
            if self.pulses == 25 {
                self.reads += 1;
            }
        }
    }

    /// Simulates the chip powered off (unplugged, broken wire): DOUT stays high.
    pub fn cut_power(&mut self) {
        self.powered = false;
        self.latched = None;
        self.pulses = 0;
    }
}

/// The PD_SCK pin of a simulated chip.
#[derive(Debug)]
pub struct ClockPin<'a, 'c, A>(pub &'a RefCell<Hx71x<'c, A>>);

/// The DOUT pin of a simulated chip.
#[derive(Debug)]
pub struct DataPin<'a, 'c, A>(pub &'a RefCell<Hx71x<'c, A>>);

impl<A> ErrorType for ClockPin<'_, '_, A> {
    type Error = Infallible;
}

impl<A> ErrorType for DataPin<'_, '_, A> {
    type Error = Infallible;
}

impl<A: AnalogFrontEnd> OutputPin for ClockPin<'_, '_, A> {
    fn set_high(&mut self) -> Result<(), Infallible> {
        let mut chip = self.0.borrow_mut();
        if chip.clock_high_since_us.is_none() {
            chip.clock_rise();
        }
        Ok(())
    }

    fn set_low(&mut self) -> Result<(), Infallible> {
        let mut chip = self.0.borrow_mut();
        if chip.clock_high_since_us.is_some() {
            chip.clock_fall();
        }
        Ok(())
    }
}

impl<A: AnalogFrontEnd> InputPin for DataPin<'_, '_, A> {
    fn is_high(&mut self) -> Result<bool, Infallible> {
        Ok(self.0.borrow_mut().dout_high())
    }

    fn is_low(&mut self) -> Result<bool, Infallible> {
        self.is_high().map(|high| !high)
    }
}
