//! Shared proptest strategies and the round-trip check used by every module's tests.

use proptest::prelude::*;
use proptest::test_runner::TestCaseError;

use crate::characteristic::Characteristic;
use crate::float::{MedValue, decode_float, decode_sfloat};
use crate::quirks::Quirks;
use crate::time::DateTime;

/// Any SFLOAT the wire can carry, specials included.
pub fn sfloat() -> impl Strategy<Value = MedValue> {
    any::<u16>().prop_map(decode_sfloat)
}

/// Any FLOAT the wire can carry, specials included.
#[allow(dead_code)] // used by the thermometer and CGM tests
pub fn float() -> impl Strategy<Value = MedValue> {
    any::<u32>().prop_map(decode_float)
}

/// Any valid Date Time, with year, month and day each possibly "not known".
pub fn date_time() -> impl Strategy<Value = DateTime> {
    (
        prop_oneof![
            Just(None),
            (1582u16..=9999).prop_map(core::num::NonZeroU16::new)
        ],
        prop_oneof![Just(None), (1u8..=12).prop_map(core::num::NonZeroU8::new)],
        prop_oneof![Just(None), (1u8..=28).prop_map(core::num::NonZeroU8::new)],
        0u8..24,
        0u8..60,
        0u8..60,
    )
        .prop_map(|(year, month, day, hours, minutes, seconds)| DateTime {
            year,
            month,
            day,
            hours,
            minutes,
            seconds,
        })
}

pub fn user_id() -> impl Strategy<Value = Option<u8>> {
    proptest::option::of(any::<u8>())
}

/// encode → decode gives the value back, with nothing trailing and the length within MAX_LEN.
pub fn roundtrip<T>(value: &T, quirks: Quirks) -> Result<(), TestCaseError>
where
    T: Characteristic + PartialEq + core::fmt::Debug,
{
    let mut buf = [0u8; 512];
    let n = value
        .encode_with(&mut buf, quirks)
        .map_err(|e| TestCaseError::fail(std::format!("encode: {e}")))?;
    prop_assert!(n <= T::MAX_LEN, "{} bytes exceed MAX_LEN {}", n, T::MAX_LEN);
    let decoded = T::decode_with(&buf[..n], quirks)
        .map_err(|e| TestCaseError::fail(std::format!("decode: {e}")))?;
    prop_assert_eq!(decoded.trailing, 0);
    prop_assert_eq!(&decoded.value, value);
    Ok(())
}
