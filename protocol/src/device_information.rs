//! Device Information Service (0x180A): who made the device and what it runs. The six strings
//! (0x2A24-0x2A29), System ID (0x2A23), IEEE 11073-20601 Regulatory Certification Data List
//! (0x2A2A) and PnP ID (0x2A50). These describe the device, not a measurement: no readings.

use core::fmt;

use crate::characteristic::Characteristic;
use crate::error::{DecodeError, EncodeError};
use crate::macros::code_enum;
use crate::quirks::Quirks;
use crate::uuid;
use crate::wire::{Decoded, Reader, Writer};

/// Capacity, in bytes, of a decoded string or certification list. An ATT value can reach 512
/// bytes through Read Blob, but one Read Response carries at most 246 (ATT_MTU 247, the largest
/// that fits a single LE data-length-extended PDU); 248 covers that while keeping the types
/// small on a microcontroller. Longer values (after NUL trimming) are rejected as `Invalid`,
/// never cut short. Real DIS strings are a few dozen bytes.
pub const VALUE_CAPACITY: usize = 248;

fn too_long(field: &'static str, len: usize) -> DecodeError {
    DecodeError::Invalid {
        field,
        value: u32::try_from(len).unwrap_or(u32::MAX),
        expected: "a value of at most 248 bytes",
    }
}

/// UTF-8 text of a Device Information string, without the NUL padding some devices add.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
pub struct DeviceString(heapless::String<VALUE_CAPACITY>);

impl DeviceString {
    /// `text` as a device string; `None` when longer than [`VALUE_CAPACITY`] bytes.
    pub fn new(text: &str) -> Option<Self> {
        heapless::String::try_from(text).ok().map(Self)
    }

    /// The text, padding removed.
    pub fn as_str(&self) -> &str {
        self.0.as_str()
    }

    /// Decodes the whole value as UTF-8. The specification gives the string no terminator,
    /// but devices pad with NULs: trailing NULs are dropped and counted as trailing bytes.
    fn decode(bytes: &[u8], field: &'static str) -> Result<Decoded<Self>, DecodeError> {
        let len = bytes
            .iter()
            .rposition(|&b| b != 0)
            .map_or(0, |last| last + 1);
        let mut r = Reader::new(bytes);
        let text = r.take(field, len)?;
        let text = core::str::from_utf8(text).map_err(|e| DecodeError::Invalid {
            field,
            value: text.get(e.valid_up_to()).copied().map_or(0, u32::from),
            expected: "UTF-8 text",
        })?;
        let value = Self::new(text).ok_or_else(|| too_long(field, text.len()))?;
        Ok(r.finish(value, 0))
    }

    fn encode(&self, out: &mut [u8], field: &'static str) -> Result<usize, EncodeError> {
        if self.0.ends_with('\0') {
            return Err(EncodeError::Unrepresentable {
                field,
                reason: "a trailing NUL would be read back as padding",
            });
        }
        let mut w = Writer::new(out);
        w.reserve(self.0.len())?;
        w.bytes(self.0.as_bytes())?;
        Ok(w.len())
    }
}

impl fmt::Display for DeviceString {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(feature = "serde")]
impl serde::Serialize for DeviceString {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

/// One newtype per string characteristic, all sharing [`DeviceString`]'s codec.
macro_rules! device_strings {
    ($( $(#[$meta:meta])* $name:ident = $uuid:path, $text:literal; )+) => {$(
        $(#[$meta])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
        #[cfg_attr(feature = "serde", derive(serde::Serialize))]
        pub struct $name(pub DeviceString);

        impl $name {
            /// `text` as this characteristic; `None` when longer than [`VALUE_CAPACITY`] bytes.
            pub fn new(text: &str) -> Option<Self> {
                DeviceString::new(text).map(Self)
            }

            /// The text, padding removed.
            pub fn as_str(&self) -> &str {
                self.0.as_str()
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                self.0.fmt(f)
            }
        }

        impl Characteristic for $name {
            const UUID: u16 = $uuid;
            const NAME: &'static str = $text;
            const MAX_LEN: usize = VALUE_CAPACITY;

            fn decode_with(bytes: &[u8], _quirks: Quirks) -> Result<Decoded<Self>, DecodeError> {
                let d = DeviceString::decode(bytes, $text)?;
                Ok(Decoded {
                    value: Self(d.value),
                    trailing: d.trailing,
                    reserved_flags: d.reserved_flags,
                })
            }

            fn encode_with(&self, out: &mut [u8], _quirks: Quirks) -> Result<usize, EncodeError> {
                self.0.encode(out, $text)
            }
        }
    )+};
}

device_strings! {
    /// Manufacturer Name String (0x2A29).
    ManufacturerNameString = uuid::MANUFACTURER_NAME_STRING, "manufacturer_name_string";
    /// Model Number String (0x2A24).
    ModelNumberString = uuid::MODEL_NUMBER_STRING, "model_number_string";
    /// Serial Number String (0x2A25).
    SerialNumberString = uuid::SERIAL_NUMBER_STRING, "serial_number_string";
    /// Hardware Revision String (0x2A27).
    HardwareRevisionString = uuid::HARDWARE_REVISION_STRING, "hardware_revision_string";
    /// Firmware Revision String (0x2A26).
    FirmwareRevisionString = uuid::FIRMWARE_REVISION_STRING, "firmware_revision_string";
    /// Software Revision String (0x2A28).
    SoftwareRevisionString = uuid::SOFTWARE_REVISION_STRING, "software_revision_string";
}

/// System ID (0x2A23): a 40-bit manufacturer-defined identifier and the 24-bit IEEE OUI of the
/// company, together an EUI-64. On the wire the whole is one little-endian 64-bit number,
/// `OUI << 40 | manufacturer identifier`: bytes 0-4 are the identifier, least significant
/// first, bytes 5-7 the OUI, least significant first. The EUI-64 is that number big-endian,
/// i.e. the wire bytes reversed: OUI first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct SystemId {
    /// 40 bits: 0..=0xFF_FFFF_FFFF.
    pub manufacturer_identifier: u64,
    /// 24 bits: 0..=0xFF_FFFF.
    pub organizationally_unique_identifier: u32,
}

impl SystemId {
    const MANUFACTURER_MAX: u64 = (1 << 40) - 1;
    const OUI_MAX: u32 = (1 << 24) - 1;

    /// The 8 bytes in EUI-64 order (OUI first), as IEEE 11073 / PHD device identifiers use.
    pub const fn eui64(&self) -> [u8; 8] {
        let oui = (self.organizationally_unique_identifier & Self::OUI_MAX) as u64;
        let id = self.manufacturer_identifier & Self::MANUFACTURER_MAX;
        ((oui << 40) | id).to_be_bytes()
    }

    /// The System ID of an EUI-64 given in its usual order (OUI first).
    pub const fn from_eui64(eui64: [u8; 8]) -> Self {
        let n = u64::from_be_bytes(eui64);
        Self {
            manufacturer_identifier: n & Self::MANUFACTURER_MAX,
            organizationally_unique_identifier: (n >> 40) as u32,
        }
    }
}

/// The EUI-64 in the form MES / PHD device identifiers use: `FE-ED-AB-AA-DE-AD-77-C5`.
impl fmt::Display for SystemId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, byte) in self.eui64().iter().enumerate() {
            if i > 0 {
                f.write_str("-")?;
            }
            write!(f, "{byte:02X}")?;
        }
        Ok(())
    }
}

/// Both fields, plus `eui64` in its printed form so consumers need not reorder bytes.
#[cfg(feature = "serde")]
impl serde::Serialize for SystemId {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeStruct;
        let mut st = s.serialize_struct("SystemId", 3)?;
        st.serialize_field("manufacturer_identifier", &self.manufacturer_identifier)?;
        st.serialize_field(
            "organizationally_unique_identifier",
            &self.organizationally_unique_identifier,
        )?;
        st.serialize_field("eui64", &format_args!("{self}"))?;
        st.end()
    }
}

impl Characteristic for SystemId {
    const UUID: u16 = uuid::SYSTEM_ID;
    const NAME: &'static str = "system_id";
    const MAX_LEN: usize = 8;

    fn decode_with(bytes: &[u8], _quirks: Quirks) -> Result<Decoded<Self>, DecodeError> {
        let mut r = Reader::new(bytes);
        r.announce(8);
        let &[a, b, c, d, e] = r.array("manufacturer_identifier")?;
        let manufacturer_identifier = u64::from_le_bytes([a, b, c, d, e, 0, 0, 0]);
        let organizationally_unique_identifier = r.u24("organizationally_unique_identifier")?;
        let value = Self {
            manufacturer_identifier,
            organizationally_unique_identifier,
        };
        Ok(r.finish(value, 0))
    }

    fn encode_with(&self, out: &mut [u8], _quirks: Quirks) -> Result<usize, EncodeError> {
        if self.manufacturer_identifier > Self::MANUFACTURER_MAX {
            return Err(EncodeError::Unrepresentable {
                field: "manufacturer_identifier",
                reason: "must fit 40 bits",
            });
        }
        if self.organizationally_unique_identifier > Self::OUI_MAX {
            return Err(EncodeError::Unrepresentable {
                field: "organizationally_unique_identifier",
                reason: "must fit 24 bits",
            });
        }
        let mut w = Writer::new(out);
        w.reserve(8)?;
        let [a, b, c, d, e, ..] = self.manufacturer_identifier.to_le_bytes();
        w.bytes(&[a, b, c, d, e])?;
        w.u24(self.organizationally_unique_identifier)?;
        Ok(w.len())
    }
}

/// IEEE 11073-20601 Regulatory Certification Data List (0x2A2A): an opaque 11073 structure
/// (certifying bodies and continua certifications), kept as the raw bytes.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
pub struct RegulatoryCertificationDataList(pub heapless::Vec<u8, VALUE_CAPACITY>);

/// Lowercase hex, two digits a byte.
impl fmt::Display for RegulatoryCertificationDataList {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.iter().try_for_each(|b| write!(f, "{b:02x}"))
    }
}

/// A lowercase hex string.
#[cfg(feature = "serde")]
impl serde::Serialize for RegulatoryCertificationDataList {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl Characteristic for RegulatoryCertificationDataList {
    const UUID: u16 = uuid::REGULATORY_CERTIFICATION_DATA_LIST;
    const NAME: &'static str = "ieee_11073_20601_regulatory_certification_data_list";
    const MAX_LEN: usize = VALUE_CAPACITY;

    fn decode_with(bytes: &[u8], _quirks: Quirks) -> Result<Decoded<Self>, DecodeError> {
        let mut r = Reader::new(bytes);
        let data = r.rest();
        let list = heapless::Vec::from_slice(data)
            .map_err(|_| too_long("regulatory_certification_data_list", data.len()))?;
        Ok(r.finish(Self(list), 0))
    }

    fn encode_with(&self, out: &mut [u8], _quirks: Quirks) -> Result<usize, EncodeError> {
        let mut w = Writer::new(out);
        w.reserve(self.0.len())?;
        w.bytes(&self.0)?;
        Ok(w.len())
    }
}

code_enum! {
    /// Who assigned the PnP ID's vendor ID.
    pub enum VendorIdSource: u8 {
        /// A Bluetooth SIG company identifier.
        BluetoothSig = 1 => "bluetooth_sig",
        /// A USB Implementers Forum vendor ID.
        UsbImplementersForum = 2 => "usb_implementers_forum",
    }
}

/// PnP ID (0x2A50), 7 bytes: the vendor, product and version as USB and Bluetooth
/// device-identification records use them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
pub struct PnpId {
    /// Which registry `vendor_id` comes from.
    pub vendor_id_source: VendorIdSource,
    /// Company identifier (SIG) or USB vendor ID.
    pub vendor_id: u16,
    /// Assigned by the vendor.
    pub product_id: u16,
    /// Binary-coded 0xJJMN: major JJ, minor M, sub-minor N.
    pub product_version: u16,
}

impl Characteristic for PnpId {
    const UUID: u16 = uuid::PNP_ID;
    const NAME: &'static str = "pnp_id";
    const MAX_LEN: usize = 7;

    fn decode_with(bytes: &[u8], _quirks: Quirks) -> Result<Decoded<Self>, DecodeError> {
        let mut r = Reader::new(bytes);
        r.announce(7);
        let value = Self {
            vendor_id_source: VendorIdSource::from_code(r.u8("vendor_id_source")?),
            vendor_id: r.u16("vendor_id")?,
            product_id: r.u16("product_id")?,
            product_version: r.u16("product_version")?,
        };
        Ok(r.finish(value, 0))
    }

    fn encode_with(&self, out: &mut [u8], _quirks: Quirks) -> Result<usize, EncodeError> {
        let mut w = Writer::new(out);
        w.reserve(7)?;
        w.u8(self.vendor_id_source.code())?;
        w.u16(self.vendor_id)?;
        w.u16(self.product_id)?;
        w.u16(self.product_version)?;
        Ok(w.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_support::roundtrip;
    use proptest::prelude::*;
    use std::string::ToString;

    #[test]
    fn decodes_a_plain_utf8_string() {
        let d = ManufacturerNameString::decode("Relais Santé".as_bytes()).unwrap();
        assert_eq!(d.value.as_str(), "Relais Santé");
        assert_eq!(d.trailing, 0);
    }

    #[test]
    fn trims_nul_padding_and_counts_it_as_trailing() {
        let d = ModelNumberString::decode(b"BM85\0\0\0").unwrap();
        assert_eq!(d.value.as_str(), "BM85");
        assert_eq!(d.trailing, 3);
        // An interior NUL is text, not padding.
        let d = SerialNumberString::decode(b"A\0B\0").unwrap();
        assert_eq!(d.value.as_str(), "A\0B");
        assert_eq!(d.trailing, 1);
        let d = FirmwareRevisionString::decode(b"\0\0").unwrap();
        assert_eq!(d.value.as_str(), "");
        assert_eq!(d.trailing, 2);
    }

    #[test]
    fn empty_value_is_an_empty_string() {
        let d = HardwareRevisionString::decode(&[]).unwrap();
        assert_eq!(d.value.as_str(), "");
        let mut out = [0u8; 4];
        assert_eq!(d.value.encode(&mut out).unwrap(), 0);
    }

    #[test]
    fn invalid_utf8_names_the_field_and_the_offending_byte() {
        let err = SoftwareRevisionString::decode(b"v1.\xFF2").unwrap_err();
        assert_eq!(
            err,
            DecodeError::Invalid {
                field: "software_revision_string",
                value: 0xFF,
                expected: "UTF-8 text"
            }
        );
        // A multi-byte sequence cut short by the end of the value.
        let err = ManufacturerNameString::decode(b"Sant\xC3").unwrap_err();
        assert!(matches!(
            err,
            DecodeError::Invalid {
                field: "manufacturer_name_string",
                value: 0xC3,
                ..
            }
        ));
    }

    #[test]
    fn rejects_strings_beyond_capacity_but_not_long_padding() {
        let long = [b'x'; VALUE_CAPACITY + 1];
        let err = ModelNumberString::decode(&long).unwrap_err();
        assert!(matches!(
            err,
            DecodeError::Invalid {
                field: "model_number_string",
                value: 249,
                ..
            }
        ));
        let mut padded = [0u8; 512];
        padded[..VALUE_CAPACITY].fill(b'x');
        let d = ModelNumberString::decode(&padded).unwrap();
        assert_eq!(d.value.as_str().len(), VALUE_CAPACITY);
        assert_eq!(d.trailing, 512 - VALUE_CAPACITY);
        assert!(ModelNumberString::new(core::str::from_utf8(&long).unwrap()).is_none());
    }

    #[test]
    fn refuses_to_encode_a_trailing_nul() {
        let s = SerialNumberString::new("1234\0").unwrap();
        let err = s.encode(&mut [0u8; 8]).unwrap_err();
        assert!(matches!(
            err,
            EncodeError::Unrepresentable {
                field: "serial_number_string",
                ..
            }
        ));
    }

    #[test]
    fn each_string_characteristic_has_its_own_uuid_and_name() {
        assert_eq!(ManufacturerNameString::UUID, 0x2A29);
        assert_eq!(ModelNumberString::UUID, 0x2A24);
        assert_eq!(SerialNumberString::UUID, 0x2A25);
        assert_eq!(HardwareRevisionString::UUID, 0x2A27);
        assert_eq!(FirmwareRevisionString::UUID, 0x2A26);
        assert_eq!(SoftwareRevisionString::UUID, 0x2A28);
        assert_eq!(FirmwareRevisionString::NAME, "firmware_revision_string");
    }

    #[test]
    fn system_id_wire_bytes_reversed_are_the_eui64() {
        // The DIS example: OUI 0x123456, manufacturer identifier 0xFFFE9ABCDE gives System ID
        // 0x123456FFFE9ABCDE, sent least significant byte first.
        let wire = [0xDE, 0xBC, 0x9A, 0xFE, 0xFF, 0x56, 0x34, 0x12];
        let d = SystemId::decode(&wire).unwrap();
        assert_eq!(d.trailing, 0);
        let id = d.value;
        assert_eq!(id.manufacturer_identifier, 0xFF_FE9A_BCDE);
        assert_eq!(id.organizationally_unique_identifier, 0x12_3456);
        assert_eq!(id.eui64(), [0x12, 0x34, 0x56, 0xFF, 0xFE, 0x9A, 0xBC, 0xDE]);
        let mut reversed = wire;
        reversed.reverse();
        assert_eq!(id.eui64(), reversed);
        assert_eq!(id.to_string(), "12-34-56-FF-FE-9A-BC-DE");
    }

    #[test]
    fn system_id_prints_the_mes_device_identifier() {
        let wire = [0xC5, 0x77, 0xAD, 0xDE, 0xAA, 0xAB, 0xED, 0xFE];
        let id = SystemId::decode(&wire).unwrap().value;
        assert_eq!(id.organizationally_unique_identifier, 0xFE_EDAB);
        assert_eq!(id.to_string(), "FE-ED-AB-AA-DE-AD-77-C5");
        assert_eq!(SystemId::from_eui64(id.eui64()), id);
        let mut out = [0u8; 8];
        assert_eq!(id.encode(&mut out).unwrap(), 8);
        assert_eq!(out, wire);
    }

    #[test]
    fn system_id_names_the_missing_field_with_byte_counts() {
        let err = SystemId::decode(&[1, 2, 3, 4, 5, 6]).unwrap_err();
        assert_eq!(
            err,
            DecodeError::Truncated {
                field: "organizationally_unique_identifier",
                needed: 8,
                present: 6
            }
        );
        let err = SystemId::decode(&[1, 2, 3]).unwrap_err();
        assert_eq!(err.field(), "manufacturer_identifier");
    }

    #[test]
    fn system_id_refuses_identifiers_wider_than_their_fields() {
        let mut out = [0u8; 8];
        let wide = SystemId {
            manufacturer_identifier: 1 << 40,
            organizationally_unique_identifier: 0,
        };
        assert!(wide.encode(&mut out).is_err());
        let wide = SystemId {
            manufacturer_identifier: 0,
            organizationally_unique_identifier: 1 << 24,
        };
        assert!(wide.encode(&mut out).is_err());
    }

    #[test]
    fn pnp_id_decodes_its_four_fields() {
        // USB vendor 0x0590 (Omron), product 0x0028, version 1.2.3.
        let d = PnpId::decode(&[0x02, 0x90, 0x05, 0x28, 0x00, 0x23, 0x01, 0xEE]).unwrap();
        assert_eq!(d.trailing, 1);
        assert_eq!(
            d.value,
            PnpId {
                vendor_id_source: VendorIdSource::UsbImplementersForum,
                vendor_id: 0x0590,
                product_id: 0x0028,
                product_version: 0x0123,
            }
        );
        let reserved = PnpId::decode(&[0x00, 0, 0, 0, 0, 0, 0]).unwrap().value;
        assert_eq!(reserved.vendor_id_source, VendorIdSource::Reserved(0));
        let err = PnpId::decode(&[0x01, 0x0D, 0x00, 0x01]).unwrap_err();
        assert_eq!(
            err,
            DecodeError::Truncated {
                field: "product_id",
                needed: 7,
                present: 4
            }
        );
    }

    #[test]
    fn regulatory_list_is_kept_opaque() {
        let bytes = [0x00, 0x02, 0x00, 0x0A, 0x02, 0x01, 0x00];
        let d = RegulatoryCertificationDataList::decode(&bytes).unwrap();
        assert_eq!(d.trailing, 0);
        assert_eq!(d.value.0.as_slice(), &bytes);
        assert_eq!(d.value.to_string(), "0002000a020100");
        let err = RegulatoryCertificationDataList::decode(&[0u8; VALUE_CAPACITY + 1]).unwrap_err();
        assert!(matches!(err, DecodeError::Invalid { value: 249, .. }));
    }

    fn text() -> impl Strategy<Value = DeviceString> {
        // Any UTF-8 text that fits and does not end in NUL.
        "\\PC{0,60}".prop_filter_map("too long or NUL-terminated", |s: std::string::String| {
            DeviceString::new(&s).filter(|d| !d.as_str().ends_with('\0'))
        })
    }

    proptest! {
        #[test]
        fn strings_roundtrip(s in text()) {
            roundtrip(&ManufacturerNameString(s.clone()), Quirks::NONE)?;
            roundtrip(&ModelNumberString(s.clone()), Quirks::NONE)?;
            roundtrip(&SerialNumberString(s.clone()), Quirks::NONE)?;
            roundtrip(&HardwareRevisionString(s.clone()), Quirks::NONE)?;
            roundtrip(&FirmwareRevisionString(s.clone()), Quirks::NONE)?;
            roundtrip(&SoftwareRevisionString(s), Quirks::NONE)?;
        }

        #[test]
        fn system_id_roundtrips(wire in any::<[u8; 8]>()) {
            let id = SystemId::decode(&wire).unwrap().value;
            roundtrip(&id, Quirks::NONE)?;
            prop_assert_eq!(SystemId::from_eui64(id.eui64()), id);
        }

        #[test]
        fn regulatory_list_roundtrips(bytes in proptest::collection::vec(any::<u8>(), 0..=VALUE_CAPACITY)) {
            let list = RegulatoryCertificationDataList(heapless::Vec::from_slice(&bytes).unwrap());
            roundtrip(&list, Quirks::NONE)?;
        }

        #[test]
        fn pnp_id_roundtrips(source in any::<u8>(), vid in any::<u16>(), pid in any::<u16>(), version in any::<u16>()) {
            let id = PnpId {
                vendor_id_source: VendorIdSource::from_code(source),
                vendor_id: vid,
                product_id: pid,
                product_version: version,
            };
            roundtrip(&id, Quirks::NONE)?;
        }

        #[test]
        fn decoding_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..300)) {
            let _ = ManufacturerNameString::decode(&bytes);
            let _ = SystemId::decode(&bytes);
            let _ = RegulatoryCertificationDataList::decode(&bytes);
            let _ = PnpId::decode(&bytes);
        }
    }
}
