//! Readings from other gateways: a message on a source's topic becomes a [`Delivery`], as if the
//! hub's own Bluetooth had received it, and follows the same path (store, dedup, inbox,
//! outboxes). Whatever does not fit is refused with a [`Rejection`], published on
//! `<prefix>/error`.
//!
//! The values are turned back into the bytes the device would have sent (a Weight Measurement,
//! a Xiaomi advertisement...) with relais-protocol's encoders, so that the store keeps one form,
//! the dedup key covers them, and every sink decodes them as usual.
//!
//! - `relais`: [`Input`], documented in `docs/mqtt/ingest.schema.json`; it carries the device's
//!   time, so a replay has the same bytes and the same dedup key.
//! - `theengs` / `openmqttgateway`: the JSON both publish for Xiaomi Mi Smart Scale
//!   (XMTZC01HM/XMTZC04HM) and Mi Body Composition Scale (XMTZC02HM/XMTZC05HM), decoded by
//!   Theengs Decoder (`weight`, `unit`, `weighing_mode` or `mode`, `impedance`); or, when the
//!   gateway publishes raw advertisements, `servicedata` and `servicedatauuid`, decoded here
//!   exactly as the hub's own scan does. Decoded values carry no time: the reception time is
//!   used, and the same value from the same scale within [`REPEAT_WINDOW`] is the same weighing
//!   (scales repeat it in every advertisement). Other devices on a wildcard topic are ignored.

use std::time::Duration;

use jiff::Timestamp;
use jiff::tz::TimeZone;
use relais_protocol::blood_pressure::BloodPressureMeasurement;
use relais_protocol::float::Decimal;
use relais_protocol::thermometer::{TemperatureMeasurement, TemperatureType};
use relais_protocol::time::DateTime;
use relais_protocol::weight_scale::WeightMeasurement;
use relais_protocol::xiaomi::{MiBodyCompositionScale, MiSmartScale, ScaleDateTime, UnitMode};
use relais_protocol::{Characteristic, Quantity, Quirks, Unit};
use serde::{Deserialize, Serialize};

use super::sources::{Source, source_of};
use crate::ble::Identity;
use crate::ble::kind::DeviceKind;
use crate::ble::session::Delivery;
use crate::hub::control::{Control, ControlError};
use crate::payload::{Payload, Record};
use crate::store::{Committed, MeasurementId, MemberId};

/// The JSON Schema of the `relais` input format, also published retained on
/// `<prefix>/schema/ingest`.
pub const INGEST_SCHEMA: &str = include_str!("../../../docs/mqtt/ingest.schema.json");

/// Largest message taken; larger ones are refused unread.
pub const MAX_MESSAGE: usize = 16 * 1024;

/// How long the same decoded value from the same scale counts as the same weighing.
pub const REPEAT_WINDOW: Duration = Duration::from_secs(10 * 60);

/// Why a message was refused (the `reason` of an error message).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Reason {
    /// Under `<prefix>/ingest/` but no source is configured for it.
    TopicNotAllowed,
    /// Over [`MAX_MESSAGE`] bytes.
    TooLarge,
    /// Not JSON (or not UTF-8).
    Garbage,
    /// JSON, but not the source's format: a field missing, unknown, of the wrong type or out of
    /// range.
    Schema,
    /// A kind or a unit relais cannot take from this format.
    Unsupported,
    /// Not a measurement: an object on the scale, a weighing still settling.
    NotAMeasurement,
    /// The member named (by the message or the configuration) does not exist.
    UnknownMember,
    /// The message names a member other than the one its source is configured for.
    MemberNotAllowed,
    /// Already stored: a replay.
    Duplicate,
    /// The store could not take it; nothing was written.
    StoreFailed,
}

/// A refused message: the reason and, in words, the detail.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Rejection {
    /// For machines.
    pub reason: Reason,
    /// For people.
    pub detail: String,
}

impl Rejection {
    /// A rejection for `reason`.
    pub fn new(reason: Reason, detail: impl Into<String>) -> Self {
        Self {
            reason,
            detail: detail.into(),
        }
    }
}

fn schema(detail: impl Into<String>) -> Rejection {
    Rejection::new(Reason::Schema, detail)
}

/// A reading from elsewhere, ready for the store.
#[derive(Debug, Clone)]
pub struct External {
    /// As if received over Bluetooth.
    pub delivery: Delivery,
    /// The member the message names, if any.
    pub member: Option<String>,
    /// The values carry no device time: repeats are found by value within [`REPEAT_WINDOW`].
    pub timeless: bool,
}

/// A quantity as the reading payload writes it.
#[derive(Debug, Clone, Copy, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
struct InputQuantity {
    value: f64,
    unit: UnitName,
}

/// The UCUM units the input takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
enum UnitName {
    #[serde(rename = "kg")]
    Kilogram,
    #[serde(rename = "[lb_av]")]
    Pound,
    #[serde(rename = "mm[Hg]")]
    MillimetreOfMercury,
    #[serde(rename = "kPa")]
    Kilopascal,
    #[serde(rename = "Cel")]
    Celsius,
    #[serde(rename = "[degF]")]
    Fahrenheit,
}

/// The device of an input reading.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
struct InputDevice {
    address: String,
    /// Required: MES's device profile needs it.
    manufacturer: String,
    /// Required: MES's device profile needs it.
    model: String,
}

/// The kinds the input takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
enum InputKind {
    BodyWeight,
    BloodPressure,
    BodyTemperature,
}

/// relais's input payload, version 1: one reading, close to the published one.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
struct Input {
    version: u64,
    device: InputDevice,
    kind: InputKind,
    #[serde(default)]
    value: Option<InputQuantity>,
    #[serde(default)]
    systolic: Option<InputQuantity>,
    #[serde(default)]
    diastolic: Option<InputQuantity>,
    #[serde(default)]
    mean_arterial_pressure: Option<InputQuantity>,
    measured_at: String,
    #[serde(default)]
    user_index: Option<u8>,
    #[serde(default)]
    member: Option<String>,
    /// Where a temperature was taken (Temperature Type names); MES requires it.
    #[serde(default)]
    site: Option<String>,
}

/// The fields relais reads from Theengs Decoder's (and OpenMQTTGateway's) JSON; the others
/// (`rssi`, `brand`, `name`...) are left alone.
#[derive(Debug, Clone, PartialEq, Deserialize)]
struct Decoded {
    id: String,
    #[serde(default)]
    model_id: Option<String>,
    #[serde(default)]
    model: Option<String>,
    #[serde(default)]
    weight: Option<f64>,
    #[serde(default)]
    unit: Option<String>,
    #[serde(default)]
    weighing_mode: Option<String>,
    #[serde(default)]
    mode: Option<String>,
    #[serde(default)]
    impedance: Option<f64>,
    #[serde(default)]
    servicedata: Option<String>,
    #[serde(default)]
    servicedatauuid: Option<String>,
}

/// Takes a message that arrived on `topic`: from a configured source, valid, not already
/// stored. `Ok(None)`: not for relais (another kind of device on a wildcard topic).
pub async fn take(
    control: &Control,
    sources: &[Source],
    zone: &TimeZone,
    topic: &str,
    payload: &[u8],
) -> Result<Option<(MeasurementId, Option<MemberId>)>, Rejection> {
    let source = source_of(sources, topic).ok_or_else(|| {
        Rejection::new(
            Reason::TopicNotAllowed,
            format!("no source in the [mqtt] configuration takes {topic}"),
        )
    })?;
    let Some(external) = parse(source.format, payload, zone, Timestamp::now())? else {
        return Ok(None);
    };
    let resolve = |name: String| async move {
        control.find_member(&name).await.map_err(|e| match e {
            ControlError::UnknownMember(_) => {
                Rejection::new(Reason::UnknownMember, format!("no household member {name}"))
            }
            other => Rejection::new(Reason::StoreFailed, other.to_string()),
        })
    };
    let configured = match source.member_for(&external.delivery.device.address) {
        Some(name) => Some(resolve(name.to_owned()).await?),
        None => None,
    };
    let member = match external.member {
        Some(named) => {
            let named = resolve(named).await?;
            // A source tied to one member cannot file readings under another.
            if source.member.is_some() && configured != Some(named) {
                return Err(Rejection::new(
                    Reason::MemberNotAllowed,
                    format!(
                        "source {} takes readings of its own member only",
                        source.name
                    ),
                ));
            }
            Some(named)
        }
        None => configured,
    };
    let repeats = external.timeless.then_some(REPEAT_WINDOW);
    match control.record(external.delivery, member, repeats).await {
        Ok(Committed::Stored { id, member }) => Ok(Some((id, member))),
        Ok(Committed::Duplicate { id }) => Err(Rejection::new(
            Reason::Duplicate,
            format!("already stored as measurement {}", id.0),
        )),
        Err(e) => Err(Rejection::new(Reason::StoreFailed, e.to_string())),
    }
}

/// Parses a message of `format`; `Ok(None)`: not for relais (another kind of device).
pub fn parse(
    format: super::sources::SourceFormat,
    payload: &[u8],
    zone: &TimeZone,
    now: Timestamp,
) -> Result<Option<External>, Rejection> {
    use super::sources::SourceFormat;
    if payload.len() > MAX_MESSAGE {
        return Err(Rejection::new(
            Reason::TooLarge,
            format!("{} bytes; at most {MAX_MESSAGE}", payload.len()),
        ));
    }
    let value: serde_json::Value = serde_json::from_slice(payload)
        .map_err(|e| Rejection::new(Reason::Garbage, format!("not JSON: {e}")))?;
    match format {
        SourceFormat::Relais => {
            let input: Input = serde_json::from_value(value).map_err(|e| schema(e.to_string()))?;
            input_reading(input, now).map(Some)
        }
        SourceFormat::Theengs | SourceFormat::OpenMqttGateway => {
            let decoded: Decoded =
                serde_json::from_value(value).map_err(|e| schema(e.to_string()))?;
            decoded_reading(decoded, zone, now)
        }
    }
}

/// `AA:BB:CC:DD:EE:FF`, upper case, or a schema error.
fn address(text: &str) -> Result<String, Rejection> {
    crate::ble::pairing::device_path(text).map_err(|_| {
        schema(format!(
            "{text:?} is not a Bluetooth address AA:BB:CC:DD:EE:FF"
        ))
    })?;
    Ok(text.to_ascii_uppercase())
}

/// A finite number within `range`, with `decimals` places at most kept.
fn decimal(x: f64, decimals: i8, what: &str, range: (f64, f64)) -> Result<Decimal, Rejection> {
    if !x.is_finite() || x < range.0 || x > range.1 {
        return Err(schema(format!(
            "{what} {x} is outside {} to {}",
            range.0, range.1
        )));
    }
    Decimal::from_f64_at(x, -decimals).ok_or_else(|| schema(format!("{what} {x} is unusable")))
}

fn delivery(
    address: String,
    kind: DeviceKind,
    manufacturer: Option<String>,
    model: Option<String>,
    payload: Payload,
    now: Timestamp,
) -> Result<Delivery, Rejection> {
    let record = Record::single(payload);
    let readings = record
        .readings(Quirks::NONE)
        .map_err(|e| schema(format!("the values do not make a reading: {e}")))?;
    if readings.is_empty() {
        return Err(Rejection::new(
            Reason::NotAMeasurement,
            "not a finished measurement",
        ));
    }
    Ok(Delivery {
        device: Identity {
            address,
            manufacturer,
            model,
            ..Identity::default()
        },
        kind,
        record,
        quirks: Quirks::NONE,
        readings,
        received_at: now,
        clock_skew: None,
    })
}

fn encode<C: Characteristic>(value: &C) -> Result<Payload, Rejection> {
    let mut out = [0u8; 32];
    let len = value
        .encode(&mut out)
        .map_err(|e| schema(format!("the values cannot be encoded: {e}")))?;
    let bytes = out
        .get(..len)
        .ok_or_else(|| schema("the values cannot be encoded"))?;
    Ok(Payload::characteristic(C::UUID, bytes))
}

fn input_reading(input: Input, now: Timestamp) -> Result<External, Rejection> {
    if input.version != 1 {
        return Err(schema(format!(
            "version {}: this hub reads version 1",
            input.version
        )));
    }
    let address = address(&input.device.address)?;
    for (name, text) in [
        ("device.manufacturer", &input.device.manufacturer),
        ("device.model", &input.device.model),
    ] {
        if text.trim().is_empty() || text.len() > 64 {
            return Err(schema(format!("{name}: 1 to 64 characters")));
        }
    }
    if input.site.is_some() && input.kind != InputKind::BodyTemperature {
        return Err(schema("site goes with body_temperature only"));
    }
    let measured: jiff::civil::DateTime = input
        .measured_at
        .parse()
        .map_err(|e| schema(format!("measured_at {:?}: {e}", input.measured_at)))?;
    let time = DateTime::from_civil(measured).ok_or_else(|| {
        schema(format!(
            "measured_at {:?} is out of range",
            input.measured_at
        ))
    })?;
    let user = input.user_index;
    if user == Some(255) {
        return Err(schema("user_index 255 means no user: leave it out"));
    }
    let single = |q: Option<InputQuantity>, name: &str| {
        q.ok_or_else(|| schema(format!("{name} is missing")))
    };
    let only = |unexpected: &[(&str, bool)]| -> Result<(), Rejection> {
        match unexpected.iter().find(|(_, present)| *present) {
            Some((name, _)) => Err(schema(format!("{name} does not go with this kind"))),
            None => Ok(()),
        }
    };
    let (kind, payload) = match input.kind {
        InputKind::BodyWeight => {
            only(&[
                ("systolic", input.systolic.is_some()),
                ("diastolic", input.diastolic.is_some()),
                (
                    "mean_arterial_pressure",
                    input.mean_arterial_pressure.is_some(),
                ),
            ])?;
            let q = single(input.value, "value")?;
            // The Weight Measurement's resolution: 5 g, or 0.01 lb.
            let weight = match q.unit {
                UnitName::Kilogram => {
                    let steps = decimal(q.value, 3, "the weight", (0.005, 327.0))?;
                    let raw = (steps.to_f64() * 200.0).round() as i64;
                    Quantity::decimal(Decimal::new(raw * 5, -3), Unit::Kilogram)
                }
                UnitName::Pound => {
                    let raw = (decimal(q.value, 2, "the weight", (0.01, 655.0))?.to_f64() * 100.0)
                        .round() as i64;
                    Quantity::decimal(Decimal::new(raw, -2), Unit::Pound)
                }
                other => {
                    return Err(Rejection::new(
                        Reason::Unsupported,
                        format!("a weight in {other:?}: kg or [lb_av]"),
                    ));
                }
            };
            let m = WeightMeasurement {
                weight,
                time_stamp: Some(time),
                user_id: user,
                bmi: None,
                height: None,
            };
            (DeviceKind::WeightScale, encode(&m)?)
        }
        InputKind::BloodPressure => {
            only(&[("value", input.value.is_some())])?;
            let s = single(input.systolic, "systolic")?;
            let d = single(input.diastolic, "diastolic")?;
            let m = single(input.mean_arterial_pressure, "mean_arterial_pressure")?;
            let unit = match (s.unit, d.unit, m.unit) {
                (
                    UnitName::MillimetreOfMercury,
                    UnitName::MillimetreOfMercury,
                    UnitName::MillimetreOfMercury,
                ) => Unit::MillimetreOfMercury,
                (UnitName::Kilopascal, UnitName::Kilopascal, UnitName::Kilopascal) => {
                    Unit::Kilopascal
                }
                _ => {
                    return Err(Rejection::new(
                        Reason::Unsupported,
                        "blood pressure: the three values in mm[Hg], or the three in kPa",
                    ));
                }
            };
            let pressure = |q: InputQuantity, what| {
                decimal(q.value, 1, what, (0.0, 400.0)).map(|v| Quantity::decimal(v, unit))
            };
            let m = BloodPressureMeasurement {
                systolic: pressure(s, "systolic")?,
                diastolic: pressure(d, "diastolic")?,
                mean_arterial_pressure: pressure(m, "mean_arterial_pressure")?,
                time_stamp: Some(time),
                pulse_rate: None,
                user_id: user,
                measurement_status: None,
            };
            (DeviceKind::BloodPressureMonitor, encode(&m)?)
        }
        InputKind::BodyTemperature => {
            only(&[
                ("systolic", input.systolic.is_some()),
                ("diastolic", input.diastolic.is_some()),
                (
                    "mean_arterial_pressure",
                    input.mean_arterial_pressure.is_some(),
                ),
            ])?;
            if user.is_some() {
                return Err(schema("a thermometer has no user index"));
            }
            let q = single(input.value, "value")?;
            let (unit, range) = match q.unit {
                UnitName::Celsius => (Unit::Celsius, (25.0, 45.0)),
                UnitName::Fahrenheit => (Unit::Fahrenheit, (77.0, 113.0)),
                other => {
                    return Err(Rejection::new(
                        Reason::Unsupported,
                        format!("a temperature in {other:?}: Cel or [degF]"),
                    ));
                }
            };
            let site = match &input.site {
                Some(name) => Some(temperature_site(name)?),
                None => None,
            };
            let m = TemperatureMeasurement {
                temperature: Quantity::decimal(
                    decimal(q.value, 2, "the temperature", range)?,
                    unit,
                ),
                time_stamp: Some(time),
                temperature_type: site,
            };
            (DeviceKind::Thermometer, encode(&m)?)
        }
    };
    Ok(External {
        delivery: delivery(
            address,
            kind,
            Some(input.device.manufacturer),
            Some(input.device.model),
            payload,
            now,
        )?,
        member: input.member,
        timeless: false,
    })
}

/// A Temperature Type by its name (`armpit`, `ear`, `mouth`...).
fn temperature_site(name: &str) -> Result<TemperatureType, Rejection> {
    (1..=9)
        .map(TemperatureType::from_code)
        .find(|t| t.name() == name)
        .ok_or_else(|| {
            schema(format!(
                "site {name:?}: armpit, body, ear, finger, gastrointestinal_tract, mouth, \
                 rectum, toe or tympanum"
            ))
        })
}

/// Which Xiaomi scale a Theengs `model_id` names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Xiaomi {
    /// Mi Smart Scale, service data on 0x181D.
    SmartScale,
    /// Mi Body Composition Scale, service data on 0x181B.
    BodyComposition,
}

fn xiaomi_model(model_id: &str) -> Option<Xiaomi> {
    match model_id {
        "XMTZC01HM/XMTZC04HM" | "XMTZC01HM" | "XMTZC04HM" => Some(Xiaomi::SmartScale),
        "XMTZC02HM/XMTZC05HM" | "XMTZC02HM" | "XMTZC05HM" => Some(Xiaomi::BodyComposition),
        _ => None,
    }
}

fn model_name(scale: Xiaomi) -> &'static str {
    match scale {
        Xiaomi::SmartScale => "Mi Smart Scale",
        Xiaomi::BodyComposition => "Mi Body Composition Scale 2",
    }
}

fn decoded_reading(
    d: Decoded,
    zone: &TimeZone,
    now: Timestamp,
) -> Result<Option<External>, Rejection> {
    // A raw advertisement: decoded as the hub's own scan decodes it.
    if let (Some(hex), Some(uuid)) = (&d.servicedata, &d.servicedatauuid) {
        let service = crate::hex::parse_uuid16(uuid)
            .ok_or_else(|| schema(format!("servicedatauuid {uuid:?} is not a 16-bit UUID")))?;
        let scale = match service {
            MiSmartScale::SERVICE_UUID => Xiaomi::SmartScale,
            MiBodyCompositionScale::SERVICE_UUID => Xiaomi::BodyComposition,
            _ => return Ok(None),
        };
        let bytes = crate::hex::parse_hex(hex)
            .map_err(|e| schema(format!("servicedata is not hexadecimal: {e}")))?;
        let address = address(&d.id)?;
        let payload = Payload::service_data(service, bytes);
        return delivery(
            address,
            DeviceKind::WeightScale,
            Some("Xiaomi".to_owned()),
            Some(model_name(scale).to_owned()),
            payload,
            now,
        )
        .map(|delivery| {
            Some(External {
                delivery,
                member: None,
                timeless: false,
            })
        });
    }
    let Some(scale) = d.model_id.as_deref().and_then(xiaomi_model) else {
        return Ok(None);
    };
    let address = address(&d.id)?;
    let weight = d
        .weight
        .ok_or_else(|| Rejection::new(Reason::NotAMeasurement, "no weight in the message"))?;
    match d.weighing_mode.as_deref().or(d.mode.as_deref()) {
        Some("person") => {}
        Some("object") => {
            return Err(Rejection::new(
                Reason::NotAMeasurement,
                "an object was weighed, not a person",
            ));
        }
        other => return Err(schema(format!("weighing_mode {other:?}: expected person"))),
    }
    let (unit_mode, unit, per) = match d.unit.as_deref() {
        Some("kg") => (UnitMode::Kilogram, Unit::Kilogram, 200.0),
        Some("lb" | "lbs") => (UnitMode::Pound, Unit::Pound, 100.0),
        other => {
            return Err(Rejection::new(
                Reason::Unsupported,
                format!("unit {other:?}: kg or lb"),
            ));
        }
    };
    let max = if unit == Unit::Kilogram { 300.0 } else { 660.0 };
    decimal(weight, 3, "the weight", (1.0 / per, max))?;
    // The scale sends a count of 5 g (or 0.01 lb) steps; Theengs divides it.
    let raw = (weight * per).round() as i64;
    let weight = if unit == Unit::Kilogram {
        Quantity::decimal(Decimal::new(raw * 5, -3), unit)
    } else {
        Quantity::decimal(Decimal::new(raw, -2), unit)
    };
    let local = zone.to_datetime(now);
    let date_time = DateTime::from_civil(local)
        .map(|t| ScaleDateTime::from_date_time(&t))
        .ok_or_else(|| Rejection::new(Reason::StoreFailed, "the hub's clock is out of range"))?;
    let mut out = [0u8; 16];
    let (service, len) = match scale {
        Xiaomi::SmartScale => {
            if d.impedance.is_some() {
                return Err(schema("a Mi Smart Scale measures no impedance"));
            }
            let m = MiSmartScale {
                unit_mode,
                stabilized: true,
                weight_removed: false,
                reserved_bits: 0,
                weight,
                date_time,
            };
            (MiSmartScale::SERVICE_UUID, m.encode(&mut out))
        }
        Xiaomi::BodyComposition => {
            let impedance = match d.impedance {
                Some(ohm) => Some(decimal(ohm, 0, "the impedance", (1.0, 3000.0))?),
                None => None,
            };
            let m = MiBodyCompositionScale {
                unit_mode,
                unit_reserved_bits: 0,
                impedance_present: impedance.is_some(),
                stabilized: true,
                control_bit6: false,
                weight_removed: false,
                control_reserved_bits: 0,
                date_time,
                impedance: Quantity::decimal(impedance.unwrap_or(Decimal::new(0, 0)), Unit::Ohm),
                weight,
            };
            (MiBodyCompositionScale::SERVICE_UUID, m.encode(&mut out))
        }
    };
    let len = len.map_err(|e| schema(format!("the values cannot be encoded: {e}")))?;
    let bytes = out
        .get(..len)
        .ok_or_else(|| schema("the values cannot be encoded"))?;
    let model = d
        .model
        .filter(|m| !m.is_empty())
        .unwrap_or_else(|| model_name(scale).to_owned());
    let delivery = delivery(
        address,
        DeviceKind::WeightScale,
        Some("Xiaomi".to_owned()),
        Some(model),
        Payload::service_data(service, bytes),
        now,
    )?;
    Ok(Some(External {
        delivery,
        member: None,
        timeless: true,
    }))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::panic)]

    use super::*;
    use crate::mqtt::sources::SourceFormat;

    fn take(format: SourceFormat, text: &str) -> Result<Option<External>, Rejection> {
        parse(
            format,
            text.as_bytes(),
            &TimeZone::UTC,
            "2026-03-01T08:00:00Z".parse().unwrap(),
        )
    }

    fn reason(format: SourceFormat, text: &str) -> Reason {
        match take(format, text) {
            Err(r) => r.reason,
            Ok(x) => panic!("accepted {text}: {x:?}"),
        }
    }

    fn first_value(e: &External) -> serde_json::Value {
        serde_json::to_value(e.delivery.readings[0]).unwrap()
    }

    #[test]
    fn theengs_xiaomi_scales_become_their_advertisements() {
        let text = r#"{"id":"C4:7C:8D:6A:12:34","name":"MIBFS","rssi":-70,"brand":"Xiaomi",
            "model":"Mi_Body_Composition_Scale","model_id":"XMTZC02HM/XMTZC05HM","type":"SCALE",
            "weighing_mode":"person","unit":"kg","weight":61.2,"impedance":503}"#;
        let e = take(SourceFormat::Theengs, text).unwrap().unwrap();
        assert!(e.timeless);
        assert_eq!(e.delivery.device.address, "C4:7C:8D:6A:12:34");
        let readings = serde_json::to_value(&e.delivery.readings).unwrap();
        assert_eq!(readings[0]["kind"], "body_weight");
        assert_eq!(readings[0]["value"]["single"]["value"].as_f64(), Some(61.2));
        assert_eq!(readings[1]["kind"], "impedance");
        assert_eq!(
            readings[1]["value"]["single"]["value"].as_f64(),
            Some(503.0)
        );
        assert_eq!(
            e.delivery.record.payloads[0].origin,
            crate::payload::Origin::ServiceData(0x181B)
        );
        // The v2 decoder's names, and the older scale in pounds.
        let v2 = r#"{"id":"C4:7C:8D:6A:12:34","model_id":"XMTZC05HM","mode":"person","unit":"kg","weight":70.05}"#;
        let e = take(SourceFormat::Theengs, v2).unwrap().unwrap();
        assert_eq!(
            first_value(&e)["value"]["single"]["value"].as_f64(),
            Some(70.05)
        );
        let v1 = r#"{"id":"c4:7c:8d:6a:12:35","model_id":"XMTZC01HM/XMTZC04HM","weighing_mode":"person","unit":"lb","weight":150.4}"#;
        let e = take(SourceFormat::OpenMqttGateway, v1).unwrap().unwrap();
        assert_eq!(e.delivery.device.address, "C4:7C:8D:6A:12:35");
        // Readings are in the kind's canonical unit.
        let kg = first_value(&e)["value"]["single"]["value"]
            .as_f64()
            .unwrap();
        assert!((kg - 150.4 * 0.453_592_37).abs() < 0.01, "{kg}");
        // Another kind of device on the same wildcard: not for relais.
        let thermo = r#"{"id":"A4:C1:38:00:00:01","model_id":"LYWSD03MMC","tempc":21.5}"#;
        assert!(take(SourceFormat::Theengs, thermo).unwrap().is_none());
    }

    #[test]
    fn raw_advertisements_decode_as_the_scan_decodes_them() {
        // Mi Smart Scale: stabilized, 72.00 kg, 2024-03-05 08:30:15.
        let text = r#"{"id":"C4:7C:8D:6A:12:36","rssi":-60,"servicedatauuid":"0x181d",
            "servicedata":"204038e8070305081e0f"}"#;
        let e = take(SourceFormat::OpenMqttGateway, text).unwrap().unwrap();
        assert!(!e.timeless, "the scale's own time is in the bytes");
        assert_eq!(
            first_value(&e)["value"]["single"]["value"].as_f64(),
            Some(72.0)
        );
        // Still settling: no measurement.
        let settling = text.replace("2040", "0040");
        assert_eq!(
            reason(SourceFormat::OpenMqttGateway, &settling),
            Reason::NotAMeasurement
        );
    }

    #[test]
    fn the_schema_names_what_the_parser_takes() {
        let schema: serde_json::Value = serde_json::from_str(INGEST_SCHEMA).unwrap();
        let full = r#"{"version":1,"device":{"address":"C0:FF:EE:00:09:01","manufacturer":"M","model":"W"},
            "kind":"body_weight","value":{"value":70,"unit":"kg"},"measured_at":"2026-02-28T07:30:00",
            "user_index":1,"member":"Alice"}"#;
        let mut message: serde_json::Value = serde_json::from_str(full).unwrap();
        take(SourceFormat::Relais, full).unwrap().unwrap();
        let properties = schema["properties"].as_object().unwrap();
        for key in message.as_object().unwrap().keys() {
            assert!(properties.contains_key(key), "{key} is not in the schema");
        }
        // The pressure fields the weighing has not are in the schema too, and nothing else.
        let mut names: Vec<&str> = properties.keys().map(String::as_str).collect();
        names.sort_unstable();
        assert_eq!(
            names,
            [
                "device",
                "diastolic",
                "kind",
                "mean_arterial_pressure",
                "measured_at",
                "member",
                "site",
                "systolic",
                "user_index",
                "value",
                "version"
            ]
        );
        message["extra"] = serde_json::json!(1);
        assert_eq!(
            reason(SourceFormat::Relais, &message.to_string()),
            Reason::Schema
        );
    }

    #[test]
    fn the_relais_input_is_strict() {
        let weight = r#"{"version":1,"device":{"address":"C0:FF:EE:00:09:01","manufacturer":"Acme","model":"W1"},
            "kind":"body_weight","value":{"value":72.4,"unit":"kg"},
            "measured_at":"2026-02-28T07:30:00","user_index":2}"#;
        let e = take(SourceFormat::Relais, weight).unwrap().unwrap();
        let r = first_value(&e);
        assert_eq!(r["value"]["single"]["value"].as_f64(), Some(72.4));
        assert_eq!(r["user"], 2);
        assert_eq!(e.delivery.kind, DeviceKind::WeightScale);
        let bp = r#"{"version":1,"device":{"address":"C0:FF:EE:00:09:02","manufacturer":"Acme","model":"BP1"},"kind":"blood_pressure",
            "systolic":{"value":121,"unit":"mm[Hg]"},"diastolic":{"value":79,"unit":"mm[Hg]"},
            "mean_arterial_pressure":{"value":93,"unit":"mm[Hg]"},"measured_at":"2026-02-28T07:31:00"}"#;
        let e = take(SourceFormat::Relais, bp).unwrap().unwrap();
        assert_eq!(e.delivery.kind, DeviceKind::BloodPressureMonitor);
        let t = r#"{"version":1,"device":{"address":"C0:FF:EE:00:09:03","manufacturer":"Acme","model":"T1"},"kind":"body_temperature",
            "value":{"value":37.2,"unit":"Cel"},"measured_at":"2026-02-28T07:32:00","member":"Alice","site":"ear"}"#;
        let e = take(SourceFormat::Relais, t).unwrap().unwrap();
        assert_eq!(e.member.as_deref(), Some("Alice"));

        assert_eq!(reason(SourceFormat::Relais, "{not json"), Reason::Garbage);
        assert_eq!(reason(SourceFormat::Relais, "\u{0}\u{1}"), Reason::Garbage);
        for bad in [
            weight.replace("\"version\":1", "\"version\":2"),
            weight.replace("72.4", "-3"),
            weight.replace("72.4", "1e9"),
            weight.replace("\"model\":\"W1\"", "\"colour\":\"red\""),
            weight.replace(",\"model\":\"W1\"", ""),
            weight.replace("\"Acme\"", "\"\""),
            weight.replace("\"user_index\":2", "\"user_index\":2,\"site\":\"ear\""),
            t.replace("\"ear\"", "\"elbow\""),
            weight.replace("C0:FF:EE:00:09:01", "scale-1"),
            weight.replace("2026-02-28T07:30:00", "yesterday"),
            weight.replace(",\"user_index\":2", ",\"user_index\":300"),
            weight.replace("\"value\":{\"value\":72.4,\"unit\":\"kg\"},", ""),
            t.replace("37.2", "99"),
            "[]".to_owned(),
        ] {
            assert_eq!(reason(SourceFormat::Relais, &bad), Reason::Schema, "{bad}");
        }
        assert_eq!(
            reason(SourceFormat::Relais, &weight.replace("\"kg\"", "\"Cel\"")),
            Reason::Unsupported
        );
        let big = format!("{{\"pad\":\"{}\"}}", "x".repeat(MAX_MESSAGE));
        assert_eq!(reason(SourceFormat::Relais, &big), Reason::TooLarge);
        let object = r#"{"id":"C4:7C:8D:6A:12:34","model_id":"XMTZC05HM","weighing_mode":"object","unit":"kg","weight":3.2}"#;
        assert_eq!(
            reason(SourceFormat::Theengs, object),
            Reason::NotAMeasurement
        );
    }
}
