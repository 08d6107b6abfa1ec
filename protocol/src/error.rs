//! Typed errors: every decoder names the field at fault and the byte counts involved.

use core::fmt;

/// Why a value could not be decoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DecodeError {
    /// The value ends before `field`. `needed` is the length its flags announce (or, for
    /// variable-length values, the length needed to hold `field`); `present` is what arrived.
    Truncated {
        field: &'static str,
        needed: usize,
        present: usize,
    },
    /// `field` holds a value the specification does not allow here.
    Invalid {
        field: &'static str,
        value: u32,
        expected: &'static str,
    },
    /// An end-to-end CRC did not match the bytes it protects.
    Crc {
        field: &'static str,
        received: u16,
        computed: u16,
    },
}

impl DecodeError {
    /// The SIG field name (snake_case) at fault.
    pub fn field(&self) -> &'static str {
        match self {
            Self::Truncated { field, .. }
            | Self::Invalid { field, .. }
            | Self::Crc { field, .. } => field,
        }
    }
}

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Truncated {
                field,
                needed,
                present,
            } => write!(
                f,
                "field `{field}` is missing: expected {needed} bytes, {present} present"
            ),
            Self::Invalid {
                field,
                value,
                expected,
            } => write!(
                f,
                "field `{field}` has invalid value {value} (0x{value:x}): expected {expected}"
            ),
            Self::Crc {
                field,
                received,
                computed,
            } => write!(
                f,
                "field `{field}` does not match: received 0x{received:04x}, computed 0x{computed:04x}"
            ),
        }
    }
}

impl core::error::Error for DecodeError {}

/// Why a value could not be encoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EncodeError {
    /// The output buffer is smaller than the encoded value.
    BufferTooSmall { needed: usize, available: usize },
    /// `field` cannot be represented on the wire (out of range, wrong unit, not a multiple of the
    /// field's resolution, or inconsistent with another field).
    Unrepresentable {
        field: &'static str,
        reason: &'static str,
    },
}

impl fmt::Display for EncodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::BufferTooSmall { needed, available } => write!(
                f,
                "output buffer too small: {needed} bytes needed, {available} available"
            ),
            Self::Unrepresentable { field, reason } => {
                write!(f, "field `{field}` cannot be encoded: {reason}")
            }
        }
    }
}

impl core::error::Error for EncodeError {}
