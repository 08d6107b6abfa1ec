//! IEEE 11073-20601 numbers: the 16-bit SFLOAT and the 32-bit FLOAT, decoded into exact
//! decimals. Special values (NaN, NRes, ±INF, reserved) stay special: they never become numbers.

use core::fmt;

use crate::error::EncodeError;

/// An exact decimal number `mantissa × 10^exponent`. Devices send decimals; keeping them as
/// decimals means no binary rounding creeps in between the wire and the patient record.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Decimal {
    pub mantissa: i64,
    pub exponent: i8,
}

impl Decimal {
    pub const fn new(mantissa: i64, exponent: i8) -> Self {
        Self { mantissa, exponent }
    }

    /// An integer count of `step`s, where `step` is itself a decimal (for fixed-point fields such
    /// as the weight's 0.005 kg).
    pub const fn scaled(raw: i64, step: Decimal) -> Self {
        Self::new(raw * step.mantissa, step.exponent)
    }

    /// The nearest `f64`. Negative exponents divide, so 1234e-2 gives exactly the `f64` nearest
    /// to 12.34.
    pub fn to_f64(self) -> f64 {
        let m = self.mantissa as f64;
        if self.exponent >= 0 {
            m * pow10(self.exponent.unsigned_abs())
        } else {
            m / pow10(self.exponent.unsigned_abs())
        }
    }

    /// `x` rounded (half away from zero) to a multiple of `10^exponent`; `None` when out of range.
    pub fn from_f64_at(x: f64, exponent: i8) -> Option<Self> {
        if !x.is_finite() {
            return None;
        }
        let scaled = if exponent >= 0 {
            x / pow10(exponent.unsigned_abs())
        } else {
            x * pow10(exponent.unsigned_abs())
        };
        let rounded = round_half_away(scaled);
        if rounded.abs() >= 9.0e18 {
            return None;
        }
        Some(Self::new(rounded as i64, exponent))
    }

    /// Number of significant decimal digits of the mantissa (at least 1).
    pub fn significant_digits(self) -> u32 {
        let mut m = self.mantissa.unsigned_abs();
        let mut digits = 1;
        while m >= 10 {
            m /= 10;
            digits += 1;
        }
        digits
    }

    /// The value as `raw × step` when it is an exact multiple of `step`, else `None`.
    pub fn as_multiple_of(self, step: Decimal) -> Option<i64> {
        // Bring both to the smaller exponent, then divide exactly.
        let e = self.exponent.min(step.exponent);
        let a = self
            .mantissa
            .checked_mul(checked_pow10(self.exponent.abs_diff(e))?)?;
        let b = step
            .mantissa
            .checked_mul(checked_pow10(step.exponent.abs_diff(e))?)?;
        if b == 0 || a % b != 0 {
            return None;
        }
        Some(a / b)
    }

    /// Numeric comparison, ignoring how many trailing zeros each side carries.
    pub fn numeric_eq(self, other: Decimal) -> bool {
        self.as_multiple_of(other.unit_step())
            .zip(other.as_multiple_of(other.unit_step()))
            .is_some_and(|(a, b)| a == b)
    }

    fn unit_step(self) -> Decimal {
        Decimal::new(1, self.exponent)
    }
}

impl fmt::Display for Decimal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let negative = self.mantissa < 0;
        let digits = self.mantissa.unsigned_abs();
        if negative {
            f.write_str("-")?;
        }
        if self.exponent >= 0 {
            write!(f, "{digits}")?;
            for _ in 0..self.exponent {
                f.write_str("0")?;
            }
            return Ok(());
        }
        let scale = checked_pow10(self.exponent.unsigned_abs()).map(|p| p as u64);
        match scale {
            Some(scale) => {
                let width = usize::from(self.exponent.unsigned_abs());
                write!(f, "{}.{:0width$}", digits / scale, digits % scale)
            }
            // Smaller than any i64 power of ten can express: fall back to scientific notation.
            None => write!(f, "{digits}e{}", self.exponent),
        }
    }
}

/// The special values of IEEE 11073-20601.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Special {
    /// Not a Number: the device has no valid value.
    NaN,
    /// Not at this Resolution: the value does not fit the encoding.
    NRes,
    PositiveInfinity,
    NegativeInfinity,
    /// Reserved for future use.
    Reserved,
}

impl Special {
    /// The name used in JSON: `NaN`, `NRes`, `+INF`, `-INF`, `reserved`.
    pub const fn name(self) -> &'static str {
        match self {
            Self::NaN => "NaN",
            Self::NRes => "NRes",
            Self::PositiveInfinity => "+INF",
            Self::NegativeInfinity => "-INF",
            Self::Reserved => "reserved",
        }
    }
}

/// A number as an 11073 device sends it: a decimal or a special value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MedValue {
    Number(Decimal),
    Special(Special),
}

impl MedValue {
    pub const fn number(mantissa: i64, exponent: i8) -> Self {
        Self::Number(Decimal::new(mantissa, exponent))
    }

    pub fn decimal(self) -> Option<Decimal> {
        match self {
            Self::Number(d) => Some(d),
            Self::Special(_) => None,
        }
    }

    pub fn to_f64(self) -> Option<f64> {
        self.decimal().map(Decimal::to_f64)
    }
}

/// Layout of one of the two 11073 float formats.
struct Format {
    out_of_range: &'static str,
    mantissa_bits: u32,
    exponent_bits: u32,
    min_exponent: i8,
    max_exponent: i8,
    /// Largest mantissa an encoder may produce at exponent 0 without colliding with a special.
    max_ordinary: i64,
}

const SFLOAT: Format = Format {
    out_of_range: "magnitude beyond the SFLOAT range",
    mantissa_bits: 12,
    exponent_bits: 4,
    min_exponent: -8,
    max_exponent: 7,
    max_ordinary: 0x07FD,
};

const FLOAT: Format = Format {
    out_of_range: "magnitude beyond the FLOAT range",
    mantissa_bits: 24,
    exponent_bits: 8,
    min_exponent: -128,
    max_exponent: 127,
    max_ordinary: 0x7F_FFFD,
};

impl Format {
    /// Specials sit at exponent 0, on the top five mantissa codes: +2047 NaN, -2048 NRes,
    /// +2046 +INF, -2046 -INF, -2047 reserved (scaled to the format's width).
    fn special(&self, mantissa: i64) -> Option<Special> {
        let top = (1i64 << (self.mantissa_bits - 1)) - 1;
        match mantissa {
            m if m == top => Some(Special::NaN),
            m if m == -top - 1 => Some(Special::NRes),
            m if m == top - 1 => Some(Special::PositiveInfinity),
            m if m == -top + 1 => Some(Special::NegativeInfinity),
            m if m == -top => Some(Special::Reserved),
            _ => None,
        }
    }

    fn special_mantissa(&self, special: Special) -> i64 {
        let top = (1i64 << (self.mantissa_bits - 1)) - 1;
        match special {
            Special::NaN => top,
            Special::NRes => -top - 1,
            Special::PositiveInfinity => top - 1,
            Special::NegativeInfinity => -top + 1,
            Special::Reserved => -top,
        }
    }

    fn decode(&self, raw: u32) -> MedValue {
        let bits = self.mantissa_bits;
        let mask = (1u32 << bits) - 1;
        let mantissa = sign_extend(raw & mask, bits);
        let exponent = sign_extend((raw >> bits) & ((1 << self.exponent_bits) - 1), self.exponent_bits);
        if exponent == 0 {
            if let Some(special) = self.special(i64::from(mantissa)) {
                return MedValue::Special(special);
            }
        }
        MedValue::number(i64::from(mantissa), exponent as i8)
    }

    fn pack(&self, mantissa: i64, exponent: i8) -> u32 {
        let bits = self.mantissa_bits;
        let mask = (1u32 << bits) - 1;
        let exp_mask = (1u32 << self.exponent_bits) - 1;
        ((exponent as u32 & exp_mask) << bits) | (mantissa as u32 & mask)
    }

    fn fits(&self, mantissa: i64, exponent: i8) -> bool {
        let top = (1i64 << (self.mantissa_bits - 1)) - 1;
        let limit = if exponent == 0 { self.max_ordinary } else { top };
        let low = if exponent == 0 { -self.max_ordinary } else { -top - 1 };
        (low..=limit).contains(&mantissa)
            && (self.min_exponent..=self.max_exponent).contains(&exponent)
    }

    /// Exact when the decimal fits as given; otherwise the most precise exponent that fits,
    /// rounding half away from zero.
    fn encode(&self, value: MedValue, field: &'static str) -> Result<u32, EncodeError> {
        let d = match value {
            MedValue::Special(s) => return Ok(self.pack(self.special_mantissa(s), 0)),
            MedValue::Number(d) => d,
        };
        let (mut m, mut e) = (d.mantissa, i16::from(d.exponent));
        // Too fine a resolution for the format: add precision in the exponent first.
        while e < i16::from(self.min_exponent) {
            m = div_round(m, 10);
            e += 1;
        }
        // Too many digits: drop the least significant ones until the mantissa fits.
        while !self.fits(m, e as i8) {
            if e >= i16::from(self.max_exponent) {
                return Err(EncodeError::Unrepresentable {
                    field,
                    reason: self.out_of_range,
                });
            }
            m = div_round(m, 10);
            e += 1;
        }
        Ok(self.pack(m, e as i8))
    }

    /// The most precise exponent for a binary float: the smallest exponent whose mantissa fits,
    /// without trailing zeros below the decimal point (100.0 is `100e0`, not `1000e-1`).
    fn nearest(&self, x: f64) -> Option<MedValue> {
        if x.is_nan() {
            return Some(MedValue::Special(Special::NaN));
        }
        if x.is_infinite() {
            return Some(MedValue::Special(if x > 0.0 {
                Special::PositiveInfinity
            } else {
                Special::NegativeInfinity
            }));
        }
        for e in self.min_exponent..=self.max_exponent {
            let Some(d) = Decimal::from_f64_at(x, e) else {
                continue;
            };
            if self.fits(d.mantissa, e) {
                let (mut m, mut e) = (d.mantissa, e);
                while e < 0 && m % 10 == 0 && self.fits(m / 10, e + 1) {
                    m /= 10;
                    e += 1;
                }
                return Some(MedValue::number(m, e));
            }
        }
        None
    }
}

fn sign_extend(value: u32, bits: u32) -> i32 {
    let shift = 32 - bits;
    ((value << shift) as i32) >> shift
}

fn div_round(m: i64, d: i64) -> i64 {
    let q = m / d;
    let r = m % d;
    if r.abs() * 2 >= d { q + m.signum() } else { q }
}

fn round_half_away(x: f64) -> f64 {
    let t = x as i64 as f64; // truncation toward zero; callers bound |x|
    let frac = x - t;
    if frac >= 0.5 {
        t + 1.0
    } else if frac <= -0.5 {
        t - 1.0
    } else {
        t
    }
}

fn pow10(n: u8) -> f64 {
    let mut p = 1.0;
    for _ in 0..n {
        p *= 10.0;
    }
    p
}

fn checked_pow10(n: u8) -> Option<i64> {
    10i64.checked_pow(u32::from(n))
}

/// Decodes a 16-bit SFLOAT from its raw little-endian value.
pub fn decode_sfloat(raw: u16) -> MedValue {
    SFLOAT.decode(u32::from(raw))
}

/// Encodes a value as SFLOAT: exact when it fits, else rounded to the most precise exponent.
pub fn encode_sfloat(value: MedValue, field: &'static str) -> Result<u16, EncodeError> {
    SFLOAT.encode(value, field).map(|raw| raw as u16)
}

/// The SFLOAT nearest to `x` at the most precise exponent; `None` beyond the SFLOAT range.
pub fn sfloat_from_f64(x: f64) -> Option<MedValue> {
    SFLOAT.nearest(x)
}

/// Decodes a 32-bit FLOAT from its raw little-endian value.
pub fn decode_float(raw: u32) -> MedValue {
    FLOAT.decode(raw)
}

/// Encodes a value as FLOAT: exact when it fits, else rounded to the most precise exponent.
pub fn encode_float(value: MedValue, field: &'static str) -> Result<u32, EncodeError> {
    FLOAT.encode(value, field)
}

/// The FLOAT nearest to `x` at the most precise exponent; `None` beyond the FLOAT range.
pub fn float_from_f64(x: f64) -> Option<MedValue> {
    FLOAT.nearest(x)
}
