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
    #[inline(always)]
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

    #[inline(always)]
    fn decode(&self, raw: u32) -> MedValue {
        let bits = self.mantissa_bits;
        let mask = (1u32 << bits) - 1;
        let mantissa = sign_extend(raw & mask, bits);
        let exponent = sign_extend(
            (raw >> bits) & ((1 << self.exponent_bits) - 1),
            self.exponent_bits,
        );
        if exponent == 0
            && let Some(special) = self.special(i64::from(mantissa))
        {
            return MedValue::Special(special);
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
        let limit = if exponent == 0 {
            self.max_ordinary
        } else {
            top
        };
        let low = if exponent == 0 {
            -self.max_ordinary
        } else {
            -top - 1
        };
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

/// Decodes a 16-bit SFLOAT from its raw little-endian value. Inlined: returned through memory,
/// the value costs a store-forwarding stall in every measurement decoder.
#[inline(always)]
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
#[inline(always)]
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

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn sfloat_specials_stay_special() {
        assert_eq!(decode_sfloat(0x07FF), MedValue::Special(Special::NaN));
        assert_eq!(decode_sfloat(0x0800), MedValue::Special(Special::NRes));
        assert_eq!(
            decode_sfloat(0x07FE),
            MedValue::Special(Special::PositiveInfinity)
        );
        assert_eq!(
            decode_sfloat(0x0802),
            MedValue::Special(Special::NegativeInfinity)
        );
        assert_eq!(decode_sfloat(0x0801), MedValue::Special(Special::Reserved));
        // The same mantissas at another exponent are ordinary numbers.
        assert_eq!(decode_sfloat(0xF7FF), MedValue::number(2047, -1));
    }

    #[test]
    fn float_specials_stay_special() {
        assert_eq!(decode_float(0x007F_FFFF), MedValue::Special(Special::NaN));
        assert_eq!(decode_float(0x0080_0000), MedValue::Special(Special::NRes));
        assert_eq!(
            decode_float(0x007F_FFFE),
            MedValue::Special(Special::PositiveInfinity)
        );
        assert_eq!(
            decode_float(0x0080_0002),
            MedValue::Special(Special::NegativeInfinity)
        );
        assert_eq!(
            decode_float(0x0080_0001),
            MedValue::Special(Special::Reserved)
        );
    }

    #[test]
    fn exponents_are_sign_extended_not_biased() {
        // `0A 70`: exponent +7, mantissa 10 = 1e8. A biased reading gives 1.0.
        assert_eq!(decode_sfloat(0x700A), MedValue::number(10, 7));
        // `20 75 38 7B` is exponent 0x7B = +123, not 37.0.
        assert_eq!(decode_float(0x7B38_7520), MedValue::number(0x38_7520, 123));
        // 36.4 °C as a thermometer sends it: FF 6C 01 00 -> mantissa 364, exponent -1.
        assert_eq!(decode_float(0xFF00_016C), MedValue::number(364, -1));
        // Negative mantissa: 0xFFF (-1) at exponent -2.
        assert_eq!(decode_sfloat(0xEFFF), MedValue::number(-1, -2));
    }

    #[test]
    fn encoder_picks_the_most_precise_exponent() {
        let raw = |x: f64| encode_sfloat(sfloat_from_f64(x).unwrap(), "x").unwrap();
        assert_eq!(raw(100.0).to_le_bytes(), [0x64, 0x00]);
        assert_eq!(raw(123.45).to_le_bytes(), [0xD3, 0xF4]); // 1235e-1 = 123.5
        assert_eq!(raw(-0.5), 0xFFFB); // -5e-1
        assert_eq!(raw(120.0), 0x0078);
        assert_eq!(sfloat_from_f64(1e12), None);
        let f = encode_float(float_from_f64(36.4).unwrap(), "x").unwrap();
        assert_eq!(decode_float(f).to_f64(), Some(36.4));
    }

    #[test]
    fn encoder_rounds_only_when_the_value_does_not_fit() {
        // 2045 fits at exponent 0; 12345 needs exponent 1: 1235e1 (half away from zero).
        assert_eq!(
            encode_sfloat(MedValue::number(2045, 0), "x").unwrap(),
            0x07FD
        );
        assert_eq!(
            encode_sfloat(MedValue::number(12345, 0), "x").unwrap(),
            0x14D3
        );
        assert_eq!(
            encode_sfloat(MedValue::number(-12345, 0), "x").unwrap(),
            0x1B2D
        );
        assert!(encode_sfloat(MedValue::number(99_999_999_999, 0), "x").is_err());
    }

    #[test]
    fn decimals_convert_to_the_nearest_binary_float() {
        assert_eq!(Decimal::new(1234, -2).to_f64(), 12.34);
        assert_eq!(
            Decimal::scaled(14_001, Decimal::new(5, -3)).to_f64(),
            70.005
        );
        assert_eq!(Decimal::new(5, 2).to_f64(), 500.0);
    }

    #[test]
    fn decimals_print_exactly() {
        extern crate std;
        use std::string::ToString;
        assert_eq!(Decimal::new(7005, -2).to_string(), "70.05");
        assert_eq!(Decimal::new(-5, -3).to_string(), "-0.005");
        assert_eq!(Decimal::new(12, 2).to_string(), "1200");
    }

    proptest! {
        #[test]
        fn every_sfloat_roundtrips_bit_exactly_except_specials_spelled_otherwise(raw in any::<u16>()) {
            let v = decode_sfloat(raw);
            let back = encode_sfloat(v, "x").unwrap();
            prop_assert_eq!(decode_sfloat(back), v);
        }

        #[test]
        fn every_float_roundtrips(raw in any::<u32>()) {
            let v = decode_float(raw);
            let back = encode_float(v, "x").unwrap();
            prop_assert_eq!(decode_float(back), v);
        }

        #[test]
        fn nearest_sfloat_is_within_half_a_step(x in -2.0e10f64..2.0e10) {
            let v = sfloat_from_f64(x).unwrap();
            let d = v.decimal().unwrap();
            let step = Decimal::new(1, d.exponent).to_f64();
            prop_assert!((d.to_f64() - x).abs() <= step / 2.0 + 1e-9 * x.abs());
        }
    }
}
