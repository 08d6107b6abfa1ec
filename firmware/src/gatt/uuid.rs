//! Attribute types: the 16-bit UUIDs the Bluetooth SIG assigns, and 128-bit ones for vendor
//! services. Both are plain values so a table of them can live in flash.

use super::event::Value;

/// The type of an attribute: a service, a characteristic or a descriptor.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Uuid {
    /// A SIG-assigned 16-bit UUID (on the Bluetooth Base UUID).
    Sig(u16),
    /// A 128-bit UUID, little-endian as it travels on the wire. Build it with [`Uuid::vendor`].
    Vendor([u8; 16]),
}

impl Uuid {
    /// Primary Service declaration (0x2800).
    pub const PRIMARY_SERVICE: Self = Self::Sig(0x2800);
    /// Characteristic declaration (0x2803).
    pub const CHARACTERISTIC: Self = Self::Sig(0x2803);
    /// Client Characteristic Configuration descriptor (0x2902).
    pub const CLIENT_CHARACTERISTIC_CONFIGURATION: Self = Self::Sig(0x2902);

    /// A SIG-assigned 16-bit UUID.
    pub const fn sig(short: u16) -> Self {
        Self::Sig(short)
    }

    /// A 128-bit UUID written as one number (`0x6e400001_b5a3_f393_e0a9_e50e24dcca9e`). A UUID on
    /// the Bluetooth Base UUID becomes its 16-bit form, so both spellings compare equal.
    pub const fn vendor(uuid: u128) -> Self {
        match relais_protocol::uuid::from_u128(uuid) {
            Some(short) => Self::Sig(short),
            None => Self::Vendor(uuid.to_le_bytes()),
        }
    }

    /// Equality usable in `const` items (e.g. looking a handle up at compile time).
    pub const fn same_as(&self, other: &Self) -> bool {
        match (self, other) {
            (Self::Sig(a), Self::Sig(b)) => *a == *b,
            (Self::Vendor(a), Self::Vendor(b)) => {
                u128::from_le_bytes(*a) == u128::from_le_bytes(*b)
            }
            _ => false,
        }
    }

    /// Bytes on the wire: 2 for a SIG UUID, 16 for a vendor one.
    pub const fn wire_len(&self) -> usize {
        match self {
            Self::Sig(_) => 2,
            Self::Vendor(_) => 16,
        }
    }

    /// Appends the little-endian wire form; `false` when `out` has no room.
    pub(crate) fn append_to(&self, out: &mut Value) -> bool {
        match self {
            Self::Sig(short) => out.extend_from_slice(&short.to_le_bytes()).is_ok(),
            Self::Vendor(bytes) => out.extend_from_slice(bytes).is_ok(),
        }
    }
}
