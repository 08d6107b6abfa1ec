//! Device Information Service (0x180A), served from a `const` description of the device.
//!
//! The strings are UTF-8 bytes kept in flash and served as they are: that is exactly what
//! `relais_protocol`'s string encoders produce (they copy the text), without building their
//! 248-byte buffer on the stack for every read. System ID and PnP ID are encoded on each read
//! by `relais_protocol::device_information`'s encoders. The tests check every served value
//! against those encoders and decoders.
//!
//! ```
//! use relais_firmware::gatt::Characteristic;
//! use relais_firmware::services::device_information::{self, DeviceInformation};
//! use relais_protocol::device_information::{PnpId, SystemId, VendorIdSource};
//!
//! const INFO: DeviceInformation = DeviceInformation {
//!     manufacturer_name: "Relais",
//!     model_number: "RS-1",
//!     serial_number: "0001",
//!     firmware_revision: "0.1.0",
//!     system_id: SystemId::from_eui64([0x00, 0x1B, 0xC5, 0xFF, 0xFE, 0x00, 0x00, 0x01]),
//!     pnp_id: PnpId {
//!         vendor_id_source: VendorIdSource::BluetoothSig,
//!         vendor_id: 0xFFFF,
//!         product_id: 1,
//!         product_version: 0x0100,
//!     },
//! };
//! const CHARACTERISTICS: [Characteristic; 6] = INFO.characteristics();
//! const SERVICE: relais_firmware::gatt::Service = device_information::service(&CHARACTERISTICS);
//! ```

use relais_protocol::device_information::{PnpId, SystemId};
use relais_protocol::uuid;

use super::BuiltIn;
use crate::gatt::{Characteristic, Properties, Service, Uuid, ValueSource};

/// What the device says about itself. `const`, so it lives in flash.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DeviceInformation {
    /// Manufacturer Name String (0x2A29).
    pub manufacturer_name: &'static str,
    /// Model Number String (0x2A24).
    pub model_number: &'static str,
    /// Serial Number String (0x2A25).
    pub serial_number: &'static str,
    /// Firmware Revision String (0x2A26).
    pub firmware_revision: &'static str,
    /// System ID (0x2A23): the device's EUI-64, as IEEE 11073 managers identify it.
    pub system_id: SystemId,
    /// PnP ID (0x2A50): vendor, product and version.
    pub pnp_id: PnpId,
}

impl DeviceInformation {
    /// The six read-only characteristics, in the order they take handles.
    pub const fn characteristics(&self) -> [Characteristic; 6] {
        [
            text(uuid::MANUFACTURER_NAME_STRING, self.manufacturer_name),
            text(uuid::MODEL_NUMBER_STRING, self.model_number),
            text(uuid::SERIAL_NUMBER_STRING, self.serial_number),
            text(uuid::FIRMWARE_REVISION_STRING, self.firmware_revision),
            Characteristic::new(Uuid::sig(uuid::SYSTEM_ID), Properties::READ)
                .with_value(ValueSource::BuiltIn(BuiltIn::SystemId(self.system_id))),
            Characteristic::new(Uuid::sig(uuid::PNP_ID), Properties::READ)
                .with_value(ValueSource::BuiltIn(BuiltIn::PnpId(self.pnp_id))),
        ]
    }
}

/// The service around the characteristics of [`DeviceInformation::characteristics`] (kept in a
/// `const` of the device's own, which gives them their `'static` home).
pub const fn service(characteristics: &'static [Characteristic; 6]) -> Service {
    Service::primary(Uuid::sig(uuid::DEVICE_INFORMATION_SERVICE), characteristics)
}

const fn text(characteristic: u16, value: &'static str) -> Characteristic {
    Characteristic::new(Uuid::sig(characteristic), Properties::READ)
        .with_static_value(value.as_bytes())
}
