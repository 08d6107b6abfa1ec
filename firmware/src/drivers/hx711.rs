//! Driver for the HX711 24-bit load-cell ADC and its bit-banged siblings (HX710A/B for pressure
//! sensors): two wires, PD_SCK (an output) and DOUT (an input).
//!
//! DOUT goes low when a conversion is ready. Each PD_SCK pulse shifts out one bit, most
//! significant first: 24 bits of two's complement, then 1 to 3 more pulses that choose the channel
//! and gain of the *next* conversion. Holding PD_SCK high for more than 60 µs powers the chip down;
//! bringing it low again powers it up, back at channel A, gain 128.

use embedded_hal::delay::DelayNs;
use embedded_hal::digital::{InputPin, OutputPin};

/// Channel and gain of the next conversion, chosen by the pulses after the 24 data bits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Gain {
    /// Channel A, gain 128: 25 pulses in all.
    ChannelA128,
    /// Channel B, gain 32: 26 pulses (on an HX710B, the supply-voltage channel).
    ChannelB32,
    /// Channel A, gain 64: 27 pulses (on an HX710B, the differential input at 40 Hz).
    ChannelA64,
}

impl Gain {
    /// PD_SCK pulses after the 24 data bits that select this gain.
    pub const fn extra_pulses(self) -> u8 {
        match self {
            Self::ChannelA128 => 1,
            Self::ChannelB32 => 2,
            Self::ChannelA64 => 3,
        }
    }
}

/// What went wrong talking to the chip. Pin errors keep the HAL's own error types.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Error<EClock, EData> {
    Clock(EClock),
    Data(EData),
    /// DOUT did not go low within the timeout: the chip is absent, unpowered or broken.
    Timeout,
}

/// Longest PD_SCK high time within a bit: well under the 60 µs that would power the chip down.
const HALF_PERIOD_US: u32 = 1;
/// How often DOUT is polled while waiting for a conversion.
const POLL_US: u32 = 100;
/// Default wait for a conversion: the chip converts at 10 Hz, so 4 periods is ample.
pub const DEFAULT_TIMEOUT_US: u32 = 400_000;
/// PD_SCK high this long powers the chip down.
const POWER_DOWN_US: u32 = 80;

/// An HX711 (or HX710) on two pins.
#[derive(Debug)]
pub struct Hx711<Clock, Data, Delay> {
    clock: Clock,
    data: Data,
    delay: Delay,
    gain: Gain,
    timeout_us: u32,
}

impl<Clock, Data, Delay> Hx711<Clock, Data, Delay>
where
    Clock: OutputPin,
    Data: InputPin,
    Delay: DelayNs,
{
    /// Takes the pins; PD_SCK is driven low so the chip runs. The first conversion uses channel A,
    /// gain 128, whatever `gain` says; `gain` applies from the second one.
    pub fn new(
        mut clock: Clock,
        data: Data,
        delay: Delay,
        gain: Gain,
    ) -> Result<Self, Error<Clock::Error, Data::Error>> {
        clock.set_low().map_err(Error::Clock)?;
        Ok(Self {
            clock,
            data,
            delay,
            gain,
            timeout_us: DEFAULT_TIMEOUT_US,
        })
    }

    /// How long `read` waits for a conversion before giving up.
    pub fn set_timeout_us(&mut self, timeout_us: u32) {
        self.timeout_us = timeout_us;
    }

    /// Chooses the channel and gain of the conversions after the next one.
    pub fn set_gain(&mut self, gain: Gain) {
        self.gain = gain;
    }

    pub fn gain(&self) -> Gain {
        self.gain
    }

    /// True when a conversion is waiting (DOUT low).
    pub fn is_ready(&mut self) -> Result<bool, Error<Clock::Error, Data::Error>> {
        self.data.is_low().map_err(Error::Data)
    }

    /// Waits (up to the timeout) for a conversion and reads it, sign-extended.
    pub fn read(&mut self) -> Result<i32, Error<Clock::Error, Data::Error>> {
        let mut waited = 0;
        while !self.is_ready()? {
            if waited >= self.timeout_us {
                return Err(Error::Timeout);
            }
            self.delay.delay_us(POLL_US);
            waited += POLL_US;
        }
        let mut raw: u32 = 0;
        for _ in 0..24 {
            self.pulse()?;
            raw = (raw << 1) | u32::from(self.data.is_high().map_err(Error::Data)?);
        }
        for _ in 0..self.gain.extra_pulses() {
            self.pulse()?;
        }
        // 24-bit two's complement to i32.
        Ok(((raw << 8) as i32) >> 8)
    }

    /// The mean of `n` conversions (at least one), to average out noise.
    pub fn read_average(&mut self, n: u8) -> Result<i32, Error<Clock::Error, Data::Error>> {
        let n = n.max(1);
        let mut sum: i64 = 0;
        for _ in 0..n {
            sum += i64::from(self.read()?);
        }
        Ok((sum / i64::from(n)) as i32)
    }

    /// Powers the chip down (PD_SCK high for more than 60 µs); it draws under 1 µA until
    /// `power_up`.
    pub fn power_down(&mut self) -> Result<(), Error<Clock::Error, Data::Error>> {
        self.clock.set_low().map_err(Error::Clock)?;
        self.clock.set_high().map_err(Error::Clock)?;
        self.delay.delay_us(POWER_DOWN_US);
        Ok(())
    }

    /// Powers the chip up; it restarts at channel A, gain 128, so the gain is chosen again after
    /// the first conversion.
    pub fn power_up(&mut self) -> Result<(), Error<Clock::Error, Data::Error>> {
        self.clock.set_low().map_err(Error::Clock)
    }

    /// Gives the pins back.
    pub fn release(self) -> (Clock, Data, Delay) {
        (self.clock, self.data, self.delay)
    }

    fn pulse(&mut self) -> Result<(), Error<Clock::Error, Data::Error>> {
        self.clock.set_high().map_err(Error::Clock)?;
        self.delay.delay_us(HALF_PERIOD_US);
        self.clock.set_low().map_err(Error::Clock)?;
        self.delay.delay_us(HALF_PERIOD_US);
        Ok(())
    }
}
