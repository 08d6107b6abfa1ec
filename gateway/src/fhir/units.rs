//! Quantities as FHIR writes them: a UCUM `valueQuantity` whose JSON number carries the digits
//! the device reported and no others.
//!
//! # Numbers
//! A [`Decimal`] is exact (`7235 × 10^-2`). JSON text is produced by `serde_json` without its
//! `arbitrary_precision` feature (which would change `Value` for the whole workspace), so the
//! number goes through an `f64`:
//! - a decimal with a non-negative exponent is an integer and is written as one (`120`);
//! - otherwise the nearest `f64` is written, which `serde_json` prints with the shortest digits
//!   that read back as the same `f64`. Any decimal of at most 15 significant digits survives the
//!   trip, so those digits are exactly the reported ones (`72.35`, never `72.35000000000001`),
//!   less trailing zeros after the first decimal place (`72.350` → `72.35`, `37.0` stays `37.0`).
//! - a decimal of more than 15 significant digits (after dropping trailing zeros) cannot be
//!   written exactly this way and is refused rather than rounded.
//!
//! # Rounding
//! None here. relais-protocol already converted the reported unit to the canonical one keeping
//! the reported number of significant digits (150.00 lb → 68.039 kg, 98.6 °F → 37.0 Cel), so each
//! measure is sent at the device's own resolution: weight as the scale's step (e.g. 0.05 kg),
//! pressures and rates as integers, temperature to 0.1 Cel or finer, SpO2 in whole percent.
//! Only the hub-computed CGM aggregates are rounded (see [`super::cgm`]).

use relais_protocol::Decimal;
use serde_json::{Number, Value, json};

use super::codes::UCUM;

/// Most significant digits an `f64` round-trips.
const MAX_EXACT_DIGITS: u32 = 15;

/// `d` without trailing zeros in its mantissa (`72350e-3` → `7235e-2`); zero stays `0e0`.
pub fn normalized(d: Decimal) -> Decimal {
    if d.mantissa == 0 {
        return Decimal::new(0, 0);
    }
    let (mut mantissa, mut exponent) = (d.mantissa, d.exponent);
    while mantissa % 10 == 0 {
        let Some(e) = exponent.checked_add(1) else {
            break;
        };
        mantissa /= 10;
        exponent = e;
    }
    Decimal::new(mantissa, exponent)
}

/// The JSON number for `d`, or `None` when it cannot be written exactly (see the module doc).
pub fn json_number(d: Decimal) -> Option<Number> {
    if d.exponent >= 0 {
        let integer = 10i64
            .checked_pow(u32::from(d.exponent.unsigned_abs()))
            .and_then(|p| d.mantissa.checked_mul(p));
        if let Some(integer) = integer {
            return Some(Number::from(integer));
        }
    }
    if normalized(d).significant_digits() > MAX_EXACT_DIGITS {
        return None;
    }
    Number::from_f64(d.to_f64())
}

/// `{"value", "unit", "system": UCUM, "code"}`, with the UCUM code as the human unit too (as the
/// published examples do); `None` when the number cannot be written exactly.
pub fn quantity(value: Decimal, ucum: &'static str) -> Option<Value> {
    let number = json_number(value)?;
    Some(json!({"value": number, "unit": ucum, "system": UCUM, "code": ucum}))
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn text(d: Decimal) -> String {
        serde_json::to_string(&json_number(d).unwrap()).unwrap()
    }

    #[test]
    fn decimals_keep_their_reported_digits() {
        assert_eq!(text(Decimal::new(7235, -2)), "72.35");
        assert_eq!(text(Decimal::new(72350, -3)), "72.35");
        assert_eq!(text(Decimal::new(68039, -3)), "68.039");
        assert_eq!(text(Decimal::new(370, -1)), "37.0");
        assert_eq!(text(Decimal::new(-125, -1)), "-12.5");
        assert_eq!(text(Decimal::new(1, -3)), "0.001");
        assert_eq!(text(Decimal::new(3, -1)), "0.3");
    }

    #[test]
    fn integers_stay_integers() {
        assert_eq!(text(Decimal::new(120, 0)), "120");
        assert_eq!(text(Decimal::new(12, 1)), "120");
        assert_eq!(text(Decimal::new(0, 0)), "0");
    }

    #[test]
    fn more_digits_than_a_float_holds_are_refused() {
        assert!(json_number(Decimal::new(1_234_567_890_123_456, -3)).is_none());
        // Trailing zeros do not count.
        assert!(json_number(Decimal::new(1_000_000_000_000_000, -3)).is_some());
    }

    #[test]
    fn quantity_carries_ucum_system_and_code() {
        assert_eq!(
            quantity(Decimal::new(71, 0), "kg").unwrap(),
            json!({"value": 71, "unit": "kg", "system": "http://unitsofmeasure.org", "code": "kg"})
        );
    }

    /// Reads a JSON number's text back as (mantissa, exponent) without going through floats.
    fn parse_decimal_text(s: &str) -> Decimal {
        let (body, exp) = match s.split_once(['e', 'E']) {
            Some((b, e)) => (b, e.parse::<i32>().unwrap()),
            None => (s, 0),
        };
        let (int, frac) = body.split_once('.').unwrap_or((body, ""));
        let digits: i64 = format!("{int}{frac}").parse().unwrap();
        let exponent = exp - frac.len() as i32;
        normalized(Decimal::new(digits, i8::try_from(exponent).unwrap()))
    }

    proptest! {
        #[test]
        fn any_decimal_of_up_to_15_digits_is_written_with_exactly_its_digits(
            mantissa in -999_999_999_999_999i64..=999_999_999_999_999,
            exponent in -9i8..=3,
        ) {
            let d = Decimal::new(mantissa, exponent);
            let written = text(d);
            prop_assert_eq!(parse_decimal_text(&written), normalized(d), "{}", written);
        }
    }
}
