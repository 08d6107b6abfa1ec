//! `relais decode`: any characteristic value or advertisement relais knows, as one JSON object.
//!
//! The contract (documented in the README): SIG field names in snake_case; physical quantities as
//! `{"value", "unit"}` with `"special"` for 11073 special values; time stamps as objects whose
//! unknown parts are null; a top-level `measured_at` (device local time) or null; bit fields as
//! objects of named booleans or enum strings; plus `readings`, what the hub makes of the value.

use std::fmt;

use relais_protocol::{
    Characteristic, DecodeError, Decoded, DeviceTime, Quirks, Readings, ToReadings, blood_pressure,
    body_composition, cgm, device_information, glucose, heart_rate, pulse_oximeter, racp,
    thermometer, time, uuid, weight_scale, xiaomi,
};
use serde::Serialize;
use serde_json::{Map, Value, json};

/// What a decoder knows: its UUID, name and whether it yields readings.
#[derive(Debug, Clone, Copy)]
pub struct Entry {
    pub uuid: u16,
    pub name: &'static str,
    pub kind: EntryKind,
    decode: fn(&[u8], Quirks) -> Result<Value, DecodeError>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EntryKind {
    Characteristic,
    ServiceData,
}

/// Why a value was not decoded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DecodeFailure {
    UnknownCharacteristic(u16),
    UnknownServiceData(u16),
    Malformed {
        name: &'static str,
        error: DecodeError,
    },
}

impl fmt::Display for DecodeFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::UnknownCharacteristic(u) => write!(
                f,
                "characteristic 0x{u:04X} is not one relais decodes (see `relais decode --list`)"
            ),
            Self::UnknownServiceData(u) => write!(
                f,
                "service data of 0x{u:04X} is not a format relais decodes (see `relais decode --list`)"
            ),
            Self::Malformed { name, error } => write!(f, "{name}: {error}"),
        }
    }
}

impl std::error::Error for DecodeFailure {}

fn json_of<T: Serialize>(value: &T) -> Map<String, Value> {
    match serde_json::to_value(value) {
        Ok(Value::Object(map)) => map,
        Ok(other) => Map::from_iter([("value".to_owned(), other)]),
        // Serialising our own plain data types cannot fail; keep the output valid regardless.
        Err(e) => Map::from_iter([("serialization_error".to_owned(), json!(e.to_string()))]),
    }
}

fn local_time(dt: jiff::civil::DateTime) -> Value {
    json!(dt.strftime("%Y-%m-%dT%H:%M:%S").to_string())
}

/// The device-local time of the first reading that has a complete one.
fn measured_at(readings: &Readings) -> Value {
    readings
        .iter()
        .find_map(|r| match r.time {
            DeviceTime::Known(dt) => Some(local_time(dt)),
            _ => None,
        })
        .unwrap_or(Value::Null)
}

fn finish(
    name: &'static str,
    uuid: u16,
    mut fields: Map<String, Value>,
    trailing: usize,
    reserved_flags: u32,
    measured_at: Value,
    readings: Option<&Readings>,
) -> Value {
    let mut out = Map::new();
    out.insert("characteristic".into(), json!(name));
    out.insert("uuid".into(), json!(format!("{uuid:04x}")));
    out.append(&mut fields);
    out.insert("measured_at".into(), measured_at);
    out.insert("trailing_bytes".into(), json!(trailing));
    out.insert("reserved_flags".into(), json!(reserved_flags));
    if let Some(readings) = readings {
        out.insert("readings".into(), json!(readings.as_slice()));
    }
    Value::Object(out)
}

fn plain<T: Characteristic + Serialize>(
    bytes: &[u8],
    quirks: Quirks,
) -> Result<Value, DecodeError> {
    let Decoded {
        value,
        trailing,
        reserved_flags,
    } = T::decode_with(bytes, quirks)?;
    Ok(finish(
        T::NAME,
        T::UUID,
        json_of(&value),
        trailing,
        reserved_flags,
        Value::Null,
        None,
    ))
}

fn measurement<T: Characteristic + Serialize + ToReadings>(
    bytes: &[u8],
    quirks: Quirks,
) -> Result<Value, DecodeError> {
    let Decoded {
        value,
        trailing,
        reserved_flags,
    } = T::decode_with(bytes, quirks)?;
    let readings = value.readings();
    Ok(finish(
        T::NAME,
        T::UUID,
        json_of(&value),
        trailing,
        reserved_flags,
        measured_at(&readings),
        Some(&readings),
    ))
}

macro_rules! entry {
    (plain $ty:ty) => {
        Entry {
            uuid: <$ty as Characteristic>::UUID,
            name: <$ty as Characteristic>::NAME,
            kind: EntryKind::Characteristic,
            decode: plain::<$ty>,
        }
    };
    (measurement $ty:ty) => {
        Entry {
            uuid: <$ty as Characteristic>::UUID,
            name: <$ty as Characteristic>::NAME,
            kind: EntryKind::Characteristic,
            decode: measurement::<$ty>,
        }
    };
}

fn mi_smart_scale(bytes: &[u8], _quirks: Quirks) -> Result<Value, DecodeError> {
    let d = xiaomi::MiSmartScale::decode(bytes)?;
    let readings = d.value.readings();
    Ok(finish(
        "xiaomi_mi_smart_scale",
        xiaomi::MiSmartScale::SERVICE_UUID,
        json_of(&d.value),
        d.trailing,
        d.reserved_flags,
        measured_at(&readings),
        Some(&readings),
    ))
}

fn mi_body_composition_scale(bytes: &[u8], _quirks: Quirks) -> Result<Value, DecodeError> {
    let d = xiaomi::MiBodyCompositionScale::decode(bytes)?;
    let readings = d.value.readings();
    Ok(finish(
        "xiaomi_mi_body_composition_scale",
        xiaomi::MiBodyCompositionScale::SERVICE_UUID,
        json_of(&d.value),
        d.trailing,
        d.reserved_flags,
        measured_at(&readings),
        Some(&readings),
    ))
}

/// Record Access Control Point values go both ways: op codes 5 and 6 are what a server
/// indicates, anything else is a request a client writes.
fn record_access_control_point(bytes: &[u8], quirks: Quirks) -> Result<Value, DecodeError> {
    match bytes.first() {
        Some(5 | 6) => plain::<racp::RacpResponse>(bytes, quirks),
        _ => plain::<racp::RacpRequest>(bytes, quirks),
    }
}

/// The CGM Specific Ops Control Point too: requests and responses have distinct op codes, so a
/// value that is not a valid request is read as a response.
fn cgm_specific_ops_control_point(bytes: &[u8], quirks: Quirks) -> Result<Value, DecodeError> {
    plain::<cgm::CgmSocpRequest>(bytes, quirks).or_else(|request_error| {
        plain::<cgm::CgmSocpResponse>(bytes, quirks).map_err(|_| request_error)
    })
}

fn date_time(bytes: &[u8], _quirks: Quirks) -> Result<Value, DecodeError> {
    let d = time::DateTime::decode(bytes)?;
    // A Date Time value is itself a time: measured_at says which.
    let at = d.value.to_civil().map_or(Value::Null, local_time);
    Ok(finish(
        "date_time",
        uuid::DATE_TIME,
        json_of(&d.value),
        d.trailing,
        0,
        at,
        None,
    ))
}

fn current_time(bytes: &[u8], quirks: Quirks) -> Result<Value, DecodeError> {
    let d = time::CurrentTime::decode_with(bytes, quirks)?;
    let at = d
        .value
        .date_time()
        .to_civil()
        .map_or(Value::Null, local_time);
    Ok(finish(
        "current_time",
        uuid::CURRENT_TIME,
        json_of(&d.value),
        d.trailing,
        d.reserved_flags,
        at,
        None,
    ))
}

fn local_time_information(bytes: &[u8], _quirks: Quirks) -> Result<Value, DecodeError> {
    let d = time::LocalTimeInformation::decode(bytes)?;
    Ok(finish(
        "local_time_information",
        uuid::LOCAL_TIME_INFORMATION,
        json_of(&d.value),
        d.trailing,
        0,
        Value::Null,
        None,
    ))
}

/// Every format `relais decode` knows, characteristics first.
pub fn entries() -> &'static [Entry] {
    const ENTRIES: &[Entry] = &[
        Entry {
            uuid: uuid::DATE_TIME,
            name: "date_time",
            kind: EntryKind::Characteristic,
            decode: date_time,
        },
        Entry {
            uuid: uuid::CURRENT_TIME,
            name: "current_time",
            kind: EntryKind::Characteristic,
            decode: current_time,
        },
        Entry {
            uuid: uuid::LOCAL_TIME_INFORMATION,
            name: "local_time_information",
            kind: EntryKind::Characteristic,
            decode: local_time_information,
        },
        entry!(measurement blood_pressure::BloodPressureMeasurement),
        entry!(measurement blood_pressure::IntermediateCuffPressure),
        entry!(plain blood_pressure::BloodPressureFeature),
        entry!(measurement weight_scale::WeightMeasurement),
        entry!(plain weight_scale::WeightScaleFeature),
        entry!(measurement body_composition::BodyCompositionMeasurement),
        entry!(plain body_composition::BodyCompositionFeature),
        entry!(measurement glucose::GlucoseMeasurement),
        entry!(plain glucose::GlucoseMeasurementContext),
        entry!(plain glucose::GlucoseFeature),
        entry!(measurement thermometer::TemperatureMeasurement),
        entry!(measurement thermometer::IntermediateTemperature),
        entry!(plain thermometer::TemperatureType),
        entry!(plain thermometer::MeasurementInterval),
        entry!(measurement heart_rate::HeartRateMeasurement),
        entry!(plain heart_rate::BodySensorLocation),
        entry!(plain heart_rate::HeartRateControlPoint),
        entry!(plain device_information::ManufacturerNameString),
        entry!(plain device_information::ModelNumberString),
        entry!(plain device_information::SerialNumberString),
        entry!(plain device_information::HardwareRevisionString),
        entry!(plain device_information::FirmwareRevisionString),
        entry!(plain device_information::SoftwareRevisionString),
        entry!(plain device_information::SystemId),
        entry!(plain device_information::RegulatoryCertificationDataList),
        entry!(plain device_information::PnpId),
        entry!(measurement pulse_oximeter::PlxSpotCheckMeasurement),
        entry!(measurement pulse_oximeter::PlxContinuousMeasurement),
        entry!(plain pulse_oximeter::PlxFeatures),
        entry!(measurement cgm::CgmMeasurement),
        entry!(plain cgm::CgmFeature),
        entry!(plain cgm::CgmStatus),
        entry!(plain cgm::CgmSessionStartTime),
        entry!(plain cgm::CgmSessionRunTime),
        Entry {
            uuid: uuid::CGM_SPECIFIC_OPS_CONTROL_POINT,
            name: "cgm_specific_ops_control_point",
            kind: EntryKind::Characteristic,
            decode: cgm_specific_ops_control_point,
        },
        Entry {
            uuid: uuid::RECORD_ACCESS_CONTROL_POINT,
            name: "record_access_control_point",
            kind: EntryKind::Characteristic,
            decode: record_access_control_point,
        },
        Entry {
            uuid: xiaomi::MiSmartScale::SERVICE_UUID,
            name: "xiaomi_mi_smart_scale",
            kind: EntryKind::ServiceData,
            decode: mi_smart_scale,
        },
        Entry {
            uuid: xiaomi::MiBodyCompositionScale::SERVICE_UUID,
            name: "xiaomi_mi_body_composition_scale",
            kind: EntryKind::ServiceData,
            decode: mi_body_composition_scale,
        },
    ];
    ENTRIES
}

fn find(uuid: u16, kind: EntryKind) -> Option<&'static Entry> {
    entries().iter().find(|e| e.uuid == uuid && e.kind == kind)
}

/// Decodes a characteristic value.
pub fn characteristic(uuid: u16, bytes: &[u8], quirks: Quirks) -> Result<Value, DecodeFailure> {
    let entry =
        find(uuid, EntryKind::Characteristic).ok_or(DecodeFailure::UnknownCharacteristic(uuid))?;
    (entry.decode)(bytes, quirks).map_err(|error| DecodeFailure::Malformed {
        name: entry.name,
        error,
    })
}

/// Decodes the service data of an advertisement.
pub fn service_data(uuid: u16, bytes: &[u8], quirks: Quirks) -> Result<Value, DecodeFailure> {
    let entry =
        find(uuid, EntryKind::ServiceData).ok_or(DecodeFailure::UnknownServiceData(uuid))?;
    (entry.decode)(bytes, quirks).map_err(|error| DecodeFailure::Malformed {
        name: entry.name,
        error,
    })
}
