//! The interface every characteristic value type implements.

use crate::error::{DecodeError, EncodeError};
use crate::quirks::Quirks;
use crate::wire::Decoded;

/// A characteristic value that relais decodes and encodes.
pub trait Characteristic: Sized {
    /// The 16-bit UUID of the characteristic.
    const UUID: u16;
    /// The SIG name in snake_case, e.g. `blood_pressure_measurement`.
    const NAME: &'static str;
    /// Longest value an encoder produces (so callers can size buffers).
    const MAX_LEN: usize;

    /// Decodes a value, tolerating the vendor deviations `quirks` allows.
    fn decode_with(bytes: &[u8], quirks: Quirks) -> Result<Decoded<Self>, DecodeError>;

    /// Encodes the value into `out`, reproducing the deviations `quirks` names (device
    /// simulators use this to behave like the vendor's device). Returns the length written.
    fn encode_with(&self, out: &mut [u8], quirks: Quirks) -> Result<usize, EncodeError>;

    fn decode(bytes: &[u8]) -> Result<Decoded<Self>, DecodeError> {
        Self::decode_with(bytes, Quirks::NONE)
    }

    fn encode(&self, out: &mut [u8]) -> Result<usize, EncodeError> {
        self.encode_with(out, Quirks::NONE)
    }
}
