//! Client Characteristic Configuration: whether one client wants a characteristic's
//! notifications and/or indications. Kept per connection, two bits per subscribable
//! characteristic, in one 32-bit word.
//!
//! What a CCCD write may contain (settled here, documented in `GATT.md`):
//! - exactly 2 bytes, else 0x0D Invalid Attribute Value Length;
//! - bit 0 (notifications) only if the characteristic has NOTIFY, bit 1 (indications) only if it
//!   has INDICATE, no other bit; else 0x13 Value Not Allowed. Both bits together (0x0003) are
//!   accepted when the characteristic supports both, as the Core specification allows.
//!
//! 0x13 rather than 0xFD: the Core Specification Supplement defines 0xFD "CCCD Improperly
//! Configured" as the answer to a *procedure* started while the CCCD is not set as the profile
//! requires (e.g. writing a control point without indications on), not to a bad value written
//! into the CCCD itself, which is a parameter value the attribute does not allow.

use super::att::AttError;
use super::table::Properties;

/// One client's configuration of one characteristic.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Cccd {
    /// The client wants notifications.
    pub notifications: bool,
    /// The client wants indications.
    pub indications: bool,
}

impl Cccd {
    /// Nothing enabled: the state of every CCCD on a new connection.
    pub const OFF: Self = Self {
        notifications: false,
        indications: false,
    };
    /// Notifications enabled (value 0x0001).
    pub const NOTIFICATIONS: Self = Self {
        notifications: true,
        indications: false,
    };
    /// Indications enabled (value 0x0002).
    pub const INDICATIONS: Self = Self {
        notifications: false,
        indications: true,
    };

    const NOTIFY_BIT: u16 = 0x0001;
    const INDICATE_BIT: u16 = 0x0002;

    /// Parses a CCCD write for a characteristic with `properties`, refusing what it cannot do.
    pub fn parse(data: &[u8], properties: Properties) -> Result<Self, AttError> {
        let &[low, high] = data else {
            return Err(AttError::InvalidAttributeValueLength);
        };
        let value = u16::from_le_bytes([low, high]);
        let mut allowed = 0;
        if properties.contains(Properties::NOTIFY) {
            allowed |= Self::NOTIFY_BIT;
        }
        if properties.contains(Properties::INDICATE) {
            allowed |= Self::INDICATE_BIT;
        }
        if value & !allowed != 0 {
            return Err(AttError::ValueNotAllowed);
        }
        Ok(Self::from_bits(value))
    }

    /// The 2-byte value a client reads back.
    pub const fn to_le_bytes(self) -> [u8; 2] {
        self.bits().to_le_bytes()
    }

    /// Whether anything is enabled.
    pub const fn is_on(self) -> bool {
        self.notifications || self.indications
    }

    const fn bits(self) -> u16 {
        (self.notifications as u16) | ((self.indications as u16) << 1)
    }

    const fn from_bits(bits: u16) -> Self {
        Self {
            notifications: bits & Self::NOTIFY_BIT != 0,
            indications: bits & Self::INDICATE_BIT != 0,
        }
    }
}

/// Every CCCD of one client: two bits per subscribable characteristic, indexed by the slot
/// the table gives it. This is what a bond keeps across connections.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, Default, serde::Serialize, serde::Deserialize,
)]
pub struct Subscriptions(u32);

impl Subscriptions {
    /// No CCCD set.
    pub const NONE: Self = Self(0);

    /// The configuration in `slot`; `OFF` for a slot beyond the table.
    pub const fn get(self, slot: u8) -> Cccd {
        let shift = 2 * (slot as u32);
        if shift >= u32::BITS {
            return Cccd::OFF;
        }
        Cccd::from_bits(((self.0 >> shift) & 0b11) as u16)
    }

    /// Sets the configuration in `slot`; a slot beyond 15 is ignored (tables never have one).
    pub fn set(&mut self, slot: u8, cccd: Cccd) {
        let shift = 2 * u32::from(slot);
        if shift >= u32::BITS {
            return;
        }
        self.0 = (self.0 & !(0b11 << shift)) | (u32::from(cccd.bits()) << shift);
    }

    /// Whether any CCCD is on.
    pub const fn any(self) -> bool {
        self.0 != 0
    }
}
