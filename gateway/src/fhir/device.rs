//! The Device resource (HL7 PHD `PhdDevice`, STU1, reference §1.3 and §3.2) and the identifier
//! its conditional create uses.
//!
//! Identification, in order of preference:
//! 1. the device's System ID (an EUI-64, Device Information 0x2A23): identifier `SYSID` under the
//!    IEEE EUI-64 OID, and the `ifNoneExist` uses it;
//! 2. else its Bluetooth address: identifier `BTMAC` (system `.../eui-48/bluetooth`) plus, since
//!    MES wants an `urn:oid` system in `ifNoneExist` and STU1 requires the SYSID slice, a `SYSID`
//!    identifier holding the EUI-64 that encapsulates the address (`FF-FE` inserted after the
//!    OUI, IEEE rule). The hub must pass the device's identity address, not a rotating private
//!    one;
//! 3. else its serial number under the hub's own source OID (the MES text: "the vendor solution's
//!    OID"), the value being `manufacturer-model-serial` reduced to letters, digits and dashes.
//!    No SYSID then: PHD's all-zero placeholder would make every such device the same one.
//!
//! With none of these the reading cannot be sent: a Device that MES cannot tell from another
//! would merge their histories. `manufacturer` and `modelNumber` are required by PhdDevice and
//! are never made up either.

use relais_protocol::thermometer::TemperatureType;
use serde_json::{Map, Value, json};
use uuid::Uuid;

use super::Unsendable;
use super::codes::{
    BLUETOOTH_EUI48, CONTINUA_DEVICE_IDENTIFIERS, Coding, IEEE_EUI64_OID, MDC,
    MDC_PERSONAL_HEALTH_DEVICE, PHD_DEVICE_PROFILE,
};
use super::identifier::{Eui48, Eui64, Oid, identifier_value};

/// What kind of device took a reading: its PHD specialization.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum DeviceKind {
    WeightScale,
    BloodPressureCuff,
    GlucoseMeter,
    ContinuousGlucoseMonitor,
    Thermometer,
    PulseOximeter,
    BodyCompositionAnalyser,
    /// A heart rate sensor (Bluetooth HRS) or anything else: 11073 has no specialization for it
    /// that MES lists, so it is a generic 20601 device.
    #[default]
    Generic,
}

impl DeviceKind {
    /// The MDC specialization code (partition INFRA: 8 × 2^16 + term).
    pub const fn specialization(self) -> u32 {
        match self {
            Self::WeightScale => 528_399,
            Self::BloodPressureCuff => 528_391,
            Self::GlucoseMeter => 528_401,
            Self::ContinuousGlucoseMonitor => 528_409,
            Self::Thermometer => 528_392,
            Self::PulseOximeter => 528_388,
            Self::BodyCompositionAnalyser => 528_404,
            Self::Generic => 528_457,
        }
    }
}

/// The version written in `specialization.version`. A Bluetooth device reports no 11073
/// specialization version; relais maps it onto the first version of the specialization, as a
/// transcoding gateway does (PHD: "the version is an integer").
pub const SPECIALIZATION_VERSION: &str = "1";

/// Where a blood pressure cuff sits (JDV J149 has arm and wrist). Bluetooth does not say.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum CuffSite {
    #[default]
    Arm,
    Wrist,
}

/// What the hub knows about the device that took a reading.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct DeviceIdentity {
    pub kind: DeviceKind,
    /// The System ID as an EUI-64, OUI first.
    pub system_id: Option<Eui64>,
    /// The Bluetooth identity address.
    pub address: Option<Eui48>,
    pub manufacturer: Option<String>,
    pub model: Option<String>,
    pub serial: Option<String>,
    /// The thermometer's Temperature Type characteristic (0x2A1D), used when a measurement does
    /// not carry its own.
    pub temperature_type: Option<TemperatureType>,
    /// Where the cuff sits; arm unless the hub knows better.
    pub cuff_site: CuffSite,
}

/// The identifier the Device is found by: what goes in `ifNoneExist` and the dedup key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeviceKey {
    /// The OID of the identifier system.
    pub oid: String,
    /// The identifier value, e.g. `FE-ED-AB-AA-DE-AD-77-C5`.
    pub value: String,
}

impl DeviceKey {
    /// `identifier=urn:oid:<oid>|<value>`.
    pub fn if_none_exist(&self) -> String {
        format!("identifier=urn:oid:{}|{}", self.oid, self.value)
    }

    /// The value without dashes, for the dedup key.
    pub fn compact(&self) -> String {
        self.value.chars().filter(|c| *c != '-').collect()
    }
}

fn typed_identifier(code: &'static str, system: &str, value: &str) -> Value {
    json!({
        "type": Coding::new(CONTINUA_DEVICE_IDENTIFIERS, code).concept(),
        "system": system,
        "value": value,
    })
}

impl DeviceIdentity {
    /// The key the Device is found by, per the preference order of the module doc.
    pub fn key(&self, hub_oid: &Oid) -> Result<DeviceKey, Unsendable> {
        let eui64 = self.system_id.or(self.address.map(|a| a.to_eui64()));
        if let Some(eui64) = eui64 {
            return Ok(DeviceKey {
                oid: IEEE_EUI64_OID.to_owned(),
                value: eui64.to_string(),
            });
        }
        let serial = self
            .serial
            .as_deref()
            .ok_or(Unsendable::UnidentifiedDevice)?;
        let text = [
            self.manufacturer.as_deref(),
            self.model.as_deref(),
            Some(serial),
        ]
        .into_iter()
        .flatten()
        .collect::<Vec<_>>()
        .join("-");
        let value = identifier_value(&text).ok_or(Unsendable::UnidentifiedDevice)?;
        Ok(DeviceKey {
            oid: hub_oid.as_str().to_owned(),
            value,
        })
    }

    /// A device of `kind` known by nothing yet.
    pub fn new(kind: DeviceKind) -> Self {
        Self {
            kind,
            ..Self::default()
        }
    }

    /// The Device resource with id `id`, and its key.
    pub fn resource(&self, id: Uuid, hub_oid: &Oid) -> Result<(Value, DeviceKey), Unsendable> {
        let manufacturer = non_empty(self.manufacturer.as_deref())
            .ok_or(Unsendable::IncompleteDevice("manufacturer"))?;
        let model =
            non_empty(self.model.as_deref()).ok_or(Unsendable::IncompleteDevice("model number"))?;
        let key = self.key(hub_oid)?;

        let mut identifiers = Vec::new();
        if key.oid == IEEE_EUI64_OID {
            identifiers.push(typed_identifier(
                "SYSID",
                &format!("urn:oid:{IEEE_EUI64_OID}"),
                &key.value,
            ));
        } else {
            identifiers.push(json!({"system": format!("urn:oid:{}", key.oid), "value": key.value}));
        }
        if let Some(address) = self.address {
            identifiers.push(typed_identifier(
                "BTMAC",
                BLUETOOTH_EUI48,
                &address.to_string(),
            ));
        }

        let mut device = Map::new();
        device.insert("resourceType".into(), json!("Device"));
        device.insert("id".into(), json!(id.to_string()));
        device.insert("meta".into(), json!({"profile": [PHD_DEVICE_PROFILE]}));
        device.insert("identifier".into(), Value::Array(identifiers));
        device.insert("manufacturer".into(), json!(manufacturer));
        if let Some(serial) = non_empty(self.serial.as_deref()) {
            device.insert("serialNumber".into(), json!(serial));
        }
        device.insert("modelNumber".into(), json!(model));
        device.insert(
            "type".into(),
            Coding::new(MDC, MDC_PERSONAL_HEALTH_DEVICE).concept(),
        );
        let specialization = self.kind.specialization().to_string();
        device.insert(
            "specialization".into(),
            json!([{
                "systemType": {"coding": [{"system": MDC, "code": specialization}]},
                "version": SPECIALIZATION_VERSION,
            }]),
        );
        Ok((Value::Object(device), key))
    }
}

fn non_empty(s: Option<&str>) -> Option<&str> {
    s.map(str::trim).filter(|s| !s.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hub() -> Oid {
        "1.2.250.1.999.1".parse().unwrap()
    }

    fn identity() -> DeviceIdentity {
        DeviceIdentity {
            kind: DeviceKind::WeightScale,
            system_id: Some("FE-ED-AB-AA-DE-AD-77-C5".parse().unwrap()),
            address: None,
            manufacturer: Some("OMRONHEALTHCARE".into()),
            model: Some("HEM-9200T".into()),
            serial: None,
            ..DeviceIdentity::default()
        }
    }

    fn id() -> Uuid {
        Uuid::from_u128(0xd36bfdb6_b1b1_4efd_9cb9_d217a8696575)
    }

    #[test]
    fn a_system_id_gives_the_sysid_identifier_and_key() {
        let (device, key) = identity().resource(id(), &hub()).unwrap();
        assert_eq!(
            device["identifier"],
            json!([{
                "type": {"coding": [{"system": "http://hl7.org/fhir/uv/phd/CodeSystem/ContinuaDeviceIdentifiers", "code": "SYSID"}]},
                "system": "urn:oid:1.2.840.10004.1.1.1.0.0.1.0.0.1.2680",
                "value": "FE-ED-AB-AA-DE-AD-77-C5",
            }])
        );
        assert_eq!(
            key.if_none_exist(),
            "identifier=urn:oid:1.2.840.10004.1.1.1.0.0.1.0.0.1.2680|FE-ED-AB-AA-DE-AD-77-C5"
        );
        assert_eq!(key.compact(), "FEEDABAADEAD77C5");
    }

    #[test]
    fn an_address_alone_gives_btmac_and_a_derived_sysid() {
        let identity = DeviceIdentity {
            system_id: None,
            address: Some("C4:7C:8D:6A:3E:12".parse().unwrap()),
            ..identity()
        };
        let (device, key) = identity.resource(id(), &hub()).unwrap();
        assert_eq!(key.value, "C4-7C-8D-FF-FE-6A-3E-12");
        assert_eq!(device["identifier"][0]["value"], "C4-7C-8D-FF-FE-6A-3E-12");
        assert_eq!(
            device["identifier"][0]["type"]["coding"][0]["code"],
            "SYSID"
        );
        assert_eq!(
            device["identifier"][1],
            json!({
                "type": {"coding": [{"system": "http://hl7.org/fhir/uv/phd/CodeSystem/ContinuaDeviceIdentifiers", "code": "BTMAC"}]},
                "system": "http://hl7.org/fhir/sid/eui-48/bluetooth",
                "value": "C4-7C-8D-6A-3E-12",
            })
        );
    }

    #[test]
    fn the_system_id_wins_over_the_address_which_is_still_listed() {
        let identity = DeviceIdentity {
            address: Some("C4:7C:8D:6A:3E:12".parse().unwrap()),
            ..identity()
        };
        let (device, key) = identity.resource(id(), &hub()).unwrap();
        assert_eq!(key.value, "FE-ED-AB-AA-DE-AD-77-C5");
        assert_eq!(device["identifier"].as_array().unwrap().len(), 2);
    }

    #[test]
    fn a_serial_number_alone_is_keyed_under_the_hub_oid() {
        let identity = DeviceIdentity {
            system_id: None,
            serial: Some("SN 0042/B".into()),
            ..identity()
        };
        let (device, key) = identity.resource(id(), &hub()).unwrap();
        assert_eq!(
            key.if_none_exist(),
            "identifier=urn:oid:1.2.250.1.999.1|OMRONHEALTHCARE-HEM-9200T-SN-0042-B"
        );
        assert_eq!(
            device["identifier"],
            json!([{"system": "urn:oid:1.2.250.1.999.1", "value": "OMRONHEALTHCARE-HEM-9200T-SN-0042-B"}])
        );
        assert_eq!(device["serialNumber"], "SN 0042/B");
    }

    #[test]
    fn a_device_nothing_identifies_is_refused() {
        let identity = DeviceIdentity {
            system_id: None,
            ..identity()
        };
        assert_eq!(
            identity.resource(id(), &hub()),
            Err(Unsendable::UnidentifiedDevice)
        );
    }

    #[test]
    fn manufacturer_and_model_are_required_not_invented() {
        let no_maker = DeviceIdentity {
            manufacturer: Some("  ".into()),
            ..identity()
        };
        assert_eq!(
            no_maker.resource(id(), &hub()),
            Err(Unsendable::IncompleteDevice("manufacturer"))
        );
        let no_model = DeviceIdentity {
            model: None,
            ..identity()
        };
        assert_eq!(
            no_model.resource(id(), &hub()),
            Err(Unsendable::IncompleteDevice("model number"))
        );
    }

    #[test]
    fn every_kind_has_its_specialization_code() {
        for (kind, code) in [
            (DeviceKind::WeightScale, 528_399),
            (DeviceKind::BloodPressureCuff, 528_391),
            (DeviceKind::GlucoseMeter, 528_401),
            (DeviceKind::ContinuousGlucoseMonitor, 528_409),
            (DeviceKind::Thermometer, 528_392),
            (DeviceKind::PulseOximeter, 528_388),
            (DeviceKind::BodyCompositionAnalyser, 528_404),
            (DeviceKind::Generic, 528_457),
        ] {
            assert_eq!(kind.specialization(), code);
            let identity = DeviceIdentity { kind, ..identity() };
            let (device, _) = identity.resource(id(), &hub()).unwrap();
            assert_eq!(
                device["specialization"],
                json!([{"systemType": {"coding": [{"system": "urn:iso:std:iso:11073:10101", "code": code.to_string()}]}, "version": "1"}])
            );
        }
    }
}
