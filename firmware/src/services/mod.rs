//! The SIG services every device carries, served by the GATT core itself: Device Information
//! (0x180A) from a `const` description, Current Time (0x1805) from the device clock. A device's
//! own services (weight scale, blood pressure, glucose) are declared by its personality.

pub mod current_time;
pub mod device_information;

use relais_protocol::device_information::{PnpId, SystemId};

use crate::gatt::{AttError, MAX_VALUE_LEN, Value};
use current_time::DeviceClock;

/// A characteristic value the core computes rather than stores or asks the application for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BuiltIn {
    /// Current Time (0x2A2B), from the device clock; writable.
    CurrentTime,
    /// System ID (0x2A23), encoded by `relais_protocol`.
    SystemId(SystemId),
    /// PnP ID (0x2A50), encoded by `relais_protocol`.
    PnpId(PnpId),
}

impl BuiltIn {
    /// The value a client reads.
    pub(crate) fn read(&self, clock: &DeviceClock) -> Result<Value, AttError> {
        match self {
            Self::CurrentTime => {
                Value::from_slice(&clock.read_current_time()).map_err(|_| AttError::UnlikelyError)
            }
            Self::SystemId(id) => encoded(id),
            Self::PnpId(id) => encoded(id),
        }
    }

    /// Applies a client's write; only Current Time is writable (the table refuses writes to
    /// the others before they get here).
    pub(crate) fn write(&self, clock: &mut DeviceClock, data: &[u8]) -> Result<(), AttError> {
        match self {
            Self::CurrentTime => clock.write_current_time(data).map_err(|e| e.att_error()),
            Self::SystemId(_) | Self::PnpId(_) => Err(AttError::WriteNotPermitted),
        }
    }
}

/// A value through its `relais_protocol` encoder. An encoder failure is a wrong `const`
/// configuration (e.g. a System ID wider than 40 bits): the read fails with Unlikely Error.
fn encoded(value: &impl relais_protocol::Characteristic) -> Result<Value, AttError> {
    let mut buffer = [0u8; MAX_VALUE_LEN];
    let len = value
        .encode(&mut buffer)
        .map_err(|_| AttError::UnlikelyError)?;
    let bytes = buffer.get(..len).ok_or(AttError::UnlikelyError)?;
    Value::from_slice(bytes).map_err(|_| AttError::UnlikelyError)
}
