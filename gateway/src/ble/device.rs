//! A connected device: its identity (Device Information, read at connection) and the GATT
//! operations the sessions use, by 16-bit characteristic UUID.

use std::pin::Pin;
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use btleplug::api::{Characteristic, Peripheral as _, WriteType};
use btleplug::platform::Peripheral;
use futures::{Stream, StreamExt};
use relais_protocol::device_information::{
    ManufacturerNameString, ModelNumberString, SerialNumberString, SystemId,
};
use serde::Serialize;

use crate::ble::central::{full_uuid, short_uuid};
use crate::ble::error::{BleError, within};

/// Limits for connection steps and single GATT operations.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timeouts {
    /// `Connect`.
    pub connect: Duration,
    /// Service discovery.
    pub discover: Duration,
    /// One read, write or subscription.
    pub operation: Duration,
}

impl Default for Timeouts {
    fn default() -> Self {
        Self {
            connect: Duration::from_secs(30),
            discover: Duration::from_secs(30),
            operation: Duration::from_secs(10),
        }
    }
}

/// Who a device is: its address and advertised name, and what its Device Information service
/// says (each field `None` when absent or unreadable).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Identity {
    /// The Bluetooth address.
    pub address: String,
    /// The advertised local name.
    pub name: Option<String>,
    /// Manufacturer Name String (0x2A29).
    pub manufacturer: Option<String>,
    /// Model Number String (0x2A24).
    pub model: Option<String>,
    /// Serial Number String (0x2A25).
    pub serial: Option<String>,
    /// System ID (0x2A23) as an EUI-64, `FE-ED-...`.
    pub system_id: Option<String>,
}

/// A notification or indication: the characteristic's 16-bit UUID and the value.
pub type Notifications = Pin<Box<dyn Stream<Item = (u16, Vec<u8>)> + Send>>;

/// A connected device whose services were discovered.
pub struct Device {
    peripheral: Peripheral,
    identity: Identity,
    timeouts: Timeouts,
    /// The stream opened before connecting, until a session takes it.
    from_connection: Mutex<Option<Notifications>>,
}

impl std::fmt::Debug for Device {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Device")
            .field("peripheral", &self.peripheral)
            .field("identity", &self.identity)
            .field("timeouts", &self.timeouts)
            .finish_non_exhaustive()
    }
}

impl Device {
    /// `from_connection` was opened before `Connect`: see [`Device::notifications`].
    pub(crate) async fn new(
        peripheral: Peripheral,
        address: String,
        name: Option<String>,
        timeouts: Timeouts,
        from_connection: Notifications,
    ) -> Result<Self, BleError> {
        let mut device = Self {
            peripheral,
            identity: Identity {
                address,
                name,
                ..Identity::default()
            },
            timeouts,
            from_connection: Mutex::new(Some(from_connection)),
        };
        device.identity.manufacturer = device
            .read_decoded::<ManufacturerNameString>()
            .await
            .map(|v| v.as_str().to_owned());
        device.identity.model = device
            .read_decoded::<ModelNumberString>()
            .await
            .map(|v| v.as_str().to_owned());
        device.identity.serial = device
            .read_decoded::<SerialNumberString>()
            .await
            .map(|v| v.as_str().to_owned());
        device.identity.system_id = device
            .read_decoded::<SystemId>()
            .await
            .map(|v| v.to_string());
        Ok(device)
    }

    /// Reads and decodes a characteristic; `None` (logged) when absent, unreadable or
    /// malformed.
    async fn read_decoded<C: relais_protocol::Characteristic>(&self) -> Option<C> {
        if !self.has(C::UUID) {
            return None;
        }
        match self.read(C::UUID).await {
            Ok(bytes) => match C::decode(&bytes) {
                Ok(decoded) => Some(decoded.value),
                Err(e) => {
                    tracing::warn!(address = %self.identity.address, "{} does not decode: {e}", C::NAME);
                    None
                }
            },
            Err(e) => {
                tracing::warn!(address = %self.identity.address, "reading {} failed: {e}", C::NAME);
                None
            }
        }
    }

    /// Who the device is.
    pub fn identity(&self) -> &Identity {
        &self.identity
    }

    /// The 16-bit UUIDs of the services discovered.
    pub fn services(&self) -> Vec<u16> {
        self.peripheral
            .services()
            .iter()
            .filter_map(|s| short_uuid(&s.uuid))
            .collect()
    }

    /// Whether the device has this characteristic.
    pub fn has(&self, characteristic: u16) -> bool {
        self.characteristic(characteristic).is_ok()
    }

    fn characteristic(&self, short: u16) -> Result<Characteristic, BleError> {
        let full = full_uuid(short);
        self.peripheral
            .characteristics()
            .into_iter()
            .find(|c| c.uuid == full)
            .ok_or(BleError::MissingCharacteristic(short))
    }

    /// Reads a characteristic.
    pub async fn read(&self, characteristic: u16) -> Result<Vec<u8>, BleError> {
        let c = self.characteristic(characteristic)?;
        within("read", self.timeouts.operation, self.peripheral.read(&c)).await
    }

    /// Writes with response (ATT Write Request).
    pub async fn write(&self, characteristic: u16, value: &[u8]) -> Result<(), BleError> {
        let c = self.characteristic(characteristic)?;
        within(
            "write",
            self.timeouts.operation,
            self.peripheral.write(&c, value, WriteType::WithResponse),
        )
        .await
    }

    /// Enables notifications or indications.
    pub async fn subscribe(&self, characteristic: u16) -> Result<(), BleError> {
        let c = self.characteristic(characteristic)?;
        within(
            "subscribe",
            self.timeouts.operation,
            self.peripheral.subscribe(&c),
        )
        .await
    }

    /// The device's notifications and indications (of SIG 16-bit characteristics). The first
    /// call gets everything since the connection began: a bonded device indicates at once, to
    /// the subscriptions bluetoothd kept from the last connection, and its confirmed indication
    /// is not sent again. Later calls get what comes from then on. Open it before subscribing
    /// so nothing is missed.
    pub async fn notifications(&self) -> Result<Notifications, BleError> {
        let taken = self
            .from_connection
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        match taken {
            Some(stream) => Ok(stream),
            None => notifications(&self.peripheral).await,
        }
    }

    /// Disconnects.
    pub async fn disconnect(&self) -> Result<(), BleError> {
        within(
            "disconnect",
            self.timeouts.operation,
            self.peripheral.disconnect(),
        )
        .await
    }
}

/// Opens `peripheral`'s stream of notifications and indications.
pub(crate) async fn notifications(peripheral: &Peripheral) -> Result<Notifications, BleError> {
    let stream = peripheral.notifications().await?;
    Ok(Box::pin(stream.filter_map(|n| async move {
        short_uuid(&n.uuid).map(|short| (short, n.value))
    })))
}
