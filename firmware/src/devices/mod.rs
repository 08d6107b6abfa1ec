//! The three reference devices: a personality bound to the GATT server core. Each module declares
//! the device's attribute table (Device Information, Current Time, its health service), serves
//! its values, and turns what the personality measures into notifications and indications, so a
//! board only feeds BLE events in and carries the actions out (see `firmware/GATT.md`).

pub mod cuff;
pub mod glucose_meter;
pub mod scale;

use heapless::Vec;
use relais_protocol::Characteristic as Encode;
use relais_protocol::device_information::{PnpId, SystemId, VendorIdSource};

use crate::gatt::{
    Action, Actions, Application, AttError, ConnId, Handle, ReadRequest, Recipients, SendError,
    Server, Table, Uuid, Value, WriteRequest,
};
use crate::services::device_information::DeviceInformation;

/// First attribute handle after the BLE stack's own GAP and GATT services.
pub const FIRST_HANDLE: u16 = 10;

/// Most actions one call of a device returns: the server's own plus what the device sends.
pub const MAX_DEVICE_ACTIONS: usize = 12;

/// Actions of one device call, for the board to carry out in order.
pub type DeviceActions = Vec<Action, MAX_DEVICE_ACTIONS>;

/// Identity every reference device reports; a product replaces it with its own.
pub const fn reference_information(model_number: &'static str) -> DeviceInformation {
    DeviceInformation {
        manufacturer_name: "Relais reference design",
        model_number,
        serial_number: "0001",
        firmware_revision: env!("CARGO_PKG_VERSION"),
        system_id: SystemId {
            manufacturer_identifier: 0x00_0000_0001,
            organizationally_unique_identifier: 0x00_1B_C5,
        },
        pnp_id: PnpId {
            vendor_id_source: VendorIdSource::BluetoothSig,
            vendor_id: 0xFFFF,
            product_id: 0x0001,
            product_version: 0x0100,
        },
    }
}

/// The application side of a device whose only dynamic value is one read-only characteristic
/// (the scale's and the cuff's Feature); every write is refused.
pub(crate) struct ReadOnlyValue<'a> {
    pub uuid: Uuid,
    pub bytes: &'a [u8],
}

impl Application for ReadOnlyValue<'_> {
    fn read(&mut self, request: &ReadRequest) -> Result<Value, AttError> {
        if request.uuid == self.uuid {
            Value::from_slice(self.bytes).map_err(|_| AttError::UnlikelyError)
        } else {
            Err(AttError::ReadNotPermitted)
        }
    }

    fn write(&mut self, _request: &WriteRequest<'_>) -> Result<(), AttError> {
        Err(AttError::WriteNotPermitted)
    }
}

/// Appends `more` to `actions`; an action that does not fit is dropped and counted.
pub(crate) fn extend(actions: &mut DeviceActions, more: Actions) -> usize {
    let mut dropped = 0;
    for action in more {
        if actions.push(action).is_err() {
            dropped += 1;
        }
    }
    dropped
}

/// The first connection that enabled indications on `value_handle`.
pub(crate) fn indication_subscriber<const C: usize, const B: usize>(
    server: &Server<C, B>,
    value_handle: Handle,
) -> Option<ConnId> {
    server.connections().find(|&conn| {
        server
            .cccd(conn, value_handle)
            .is_some_and(|c| c.indications)
    })
}

/// Encodes `value` and indicates it to one subscriber. `Ok(None)` when no one listens yet: the
/// value then waits for the next connection.
pub(crate) fn indicate_to_one<const C: usize, const B: usize, T: Encode>(
    server: &mut Server<C, B>,
    table: &Table,
    uuid: Uuid,
    value: &T,
) -> Result<Option<(ConnId, Actions)>, DeviceError> {
    let handle =
        table
            .value_handle(uuid)
            .ok_or(DeviceError::Send(SendError::UnknownCharacteristic(
                uuid.into(),
            )))?;
    let Some(conn) = indication_subscriber(server, handle) else {
        return Ok(None);
    };
    let mut buf = [0u8; 32];
    let n = value.encode(&mut buf).map_err(|_| DeviceError::Encode)?;
    let bytes = buf.get(..n).ok_or(DeviceError::Encode)?;
    let actions = server
        .indicate(Recipients::Only(conn), uuid, bytes)
        .map_err(DeviceError::Send)?;
    Ok(Some((conn, actions)))
}

/// Encodes `value` and notifies it to every subscriber (none is fine).
pub(crate) fn notify_all<const C: usize, const B: usize, T: Encode>(
    server: &mut Server<C, B>,
    uuid: Uuid,
    value: &T,
) -> Result<Actions, DeviceError> {
    let mut buf = [0u8; 32];
    let n = value.encode(&mut buf).map_err(|_| DeviceError::Encode)?;
    let bytes = buf.get(..n).ok_or(DeviceError::Encode)?;
    server
        .notify(Recipients::All, uuid, bytes)
        .map_err(DeviceError::Send)
}

/// What can go wrong between a personality and the GATT core (the personality's own errors are
/// reported separately by each device).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeviceError {
    /// A measurement could not be encoded (a personality produced an impossible value).
    Encode,
    /// The GATT core refused to send.
    Send(SendError),
}
