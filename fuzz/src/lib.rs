//! The check every fuzz target runs: decoding arbitrary bytes never panics, and whatever decodes
//! encodes back to bytes that decode to the same value.

use relais_protocol::{Characteristic, EncodeError, Quirks};

/// Quirk sets tried on every input: none, and each decoding quirk alone.
pub const QUIRK_SETS: [Quirks; 3] = [
    Quirks::NONE,
    Quirks {
        beurer_big_endian_pulse_status: true,
        ..Quirks::NONE
    },
    Quirks {
        omron_day_of_week_zero: true,
        ketone_meal_code: true,
        ..Quirks::NONE
    },
];

pub fn check<T: Characteristic + PartialEq + core::fmt::Debug>(data: &[u8]) {
    for quirks in QUIRK_SETS {
        let Ok(decoded) = T::decode_with(data, quirks) else {
            continue;
        };
        let mut buf = [0u8; 1024];
        match decoded.value.encode_with(&mut buf, quirks) {
            Ok(n) => {
                let again = T::decode_with(&buf[..n], quirks)
                    .unwrap_or_else(|e| panic!("re-decoding {:02x?} failed: {e}", &buf[..n]));
                assert_eq!(again.value, decoded.value, "value changed through encode");
                assert_eq!(again.trailing, 0);
            }
            // Some decoded values carry codes the specification reserves; encoders refuse to
            // emit those, by design.
            Err(EncodeError::Unrepresentable { .. }) => {}
            Err(e) => panic!("encoding a decoded value failed: {e}"),
        }
    }
}
