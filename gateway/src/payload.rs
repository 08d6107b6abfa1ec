//! One measurement as a device sent it, and the readings it yields.
//!
//! The bytes are the source of truth: a [`Record`] keeps every value of one measurement as
//! received (a glucose measurement and its context, a weight and the body composition packets
//! of the same weighing, an advertisement's service data), and [`Record::readings`] decodes
//! them again whenever needed. The BLE sessions build records, `relais fhir` decodes them, and
//! the store keeps them.

use std::fmt;

use relais_protocol::body_composition::{
    BodyCompositionMeasurement, CompositionAssembler, merged_readings,
};
use relais_protocol::glucose::{GlucoseMeasurement, GlucoseMeasurementContext, GlucoseRecord};
use relais_protocol::weight_scale::WeightMeasurement;
use relais_protocol::{
    Characteristic, DecodeError, Quirks, Reading, ToReadings, blood_pressure, cgm, heart_rate,
    pulse_oximeter, thermometer, uuid, xiaomi,
};
use serde::{Deserialize, Serialize};

use crate::fhir::DeviceKind;

/// Where a value came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "source", content = "uuid")]
pub enum Origin {
    /// A characteristic value (read, notified or indicated), by 16-bit UUID.
    Characteristic(u16),
    /// The service data of an advertisement, by 16-bit service UUID.
    ServiceData(u16),
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Characteristic(u) => write!(f, "characteristic 0x{u:04X}"),
            Self::ServiceData(u) => write!(f, "service data 0x{u:04X}"),
        }
    }
}

/// One value as received.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Payload {
    /// Where it came from.
    pub origin: Origin,
    /// The bytes, untouched.
    pub bytes: Vec<u8>,
}

impl Payload {
    /// A characteristic value.
    pub fn characteristic(uuid: u16, bytes: impl Into<Vec<u8>>) -> Self {
        Self {
            origin: Origin::Characteristic(uuid),
            bytes: bytes.into(),
        }
    }

    /// Advertisement service data.
    pub fn service_data(uuid: u16, bytes: impl Into<Vec<u8>>) -> Self {
        Self {
            origin: Origin::ServiceData(uuid),
            bytes: bytes.into(),
        }
    }
}

/// Why a record yields no readings.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PayloadError {
    /// The record holds no value.
    #[error("the record is empty")]
    Empty,
    /// A value does not decode.
    #[error("{name}: {error}")]
    Malformed {
        /// The characteristic or advertisement format.
        name: &'static str,
        /// Why.
        error: DecodeError,
    },
    /// Not a measurement relais turns into readings.
    #[error("{0} is not a measurement relais turns into readings")]
    NotAMeasurement(Origin),
    /// A glucose context that belongs to another measurement.
    #[error("the context is for sequence number {context}, the measurement has {measurement}")]
    ContextMismatch {
        /// The measurement's sequence number.
        measurement: u16,
        /// The context's.
        context: u16,
    },
    /// The values cannot be one measurement.
    #[error("these values are not one measurement: {0}")]
    Mismatch(&'static str),
}

/// One measurement: its values in arrival order, the first one saying what it is.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Record {
    /// The values.
    pub payloads: Vec<Payload>,
}

fn decode<C: Characteristic>(bytes: &[u8], quirks: Quirks) -> Result<C, PayloadError> {
    C::decode_with(bytes, quirks)
        .map(|d| d.value)
        .map_err(|error| PayloadError::Malformed {
            name: C::NAME,
            error,
        })
}

fn readings_of<C: Characteristic + ToReadings>(
    bytes: &[u8],
    quirks: Quirks,
) -> Result<Vec<Reading>, PayloadError> {
    Ok(decode::<C>(bytes, quirks)?.readings().to_vec())
}

impl Record {
    /// A record of one value.
    pub fn single(payload: Payload) -> Self {
        Self {
            payloads: vec![payload],
        }
    }

    /// What the first value is.
    pub fn origin(&self) -> Option<Origin> {
        self.payloads.first().map(|p| p.origin)
    }

    /// The kind of device that sends such a record (the 11073 specialization MES is told).
    pub fn device_kind(&self) -> DeviceKind {
        let has = |u| {
            self.payloads
                .iter()
                .any(|p| p.origin == Origin::Characteristic(u))
        };
        match self.origin() {
            Some(Origin::Characteristic(u)) => match u {
                uuid::BLOOD_PRESSURE_MEASUREMENT | uuid::INTERMEDIATE_CUFF_PRESSURE => {
                    DeviceKind::BloodPressureCuff
                }
                uuid::WEIGHT_MEASUREMENT if has(uuid::BODY_COMPOSITION_MEASUREMENT) => {
                    DeviceKind::BodyCompositionAnalyser
                }
                uuid::WEIGHT_MEASUREMENT => DeviceKind::WeightScale,
                uuid::BODY_COMPOSITION_MEASUREMENT => DeviceKind::BodyCompositionAnalyser,
                uuid::GLUCOSE_MEASUREMENT => DeviceKind::GlucoseMeter,
                uuid::TEMPERATURE_MEASUREMENT | uuid::INTERMEDIATE_TEMPERATURE => {
                    DeviceKind::Thermometer
                }
                uuid::PLX_SPOT_CHECK_MEASUREMENT | uuid::PLX_CONTINUOUS_MEASUREMENT => {
                    DeviceKind::PulseOximeter
                }
                uuid::CGM_MEASUREMENT => DeviceKind::ContinuousGlucoseMonitor,
                _ => DeviceKind::Generic,
            },
            Some(Origin::ServiceData(xiaomi::MiBodyCompositionScale::SERVICE_UUID)) => {
                DeviceKind::BodyCompositionAnalyser
            }
            Some(Origin::ServiceData(xiaomi::MiSmartScale::SERVICE_UUID)) => {
                DeviceKind::WeightScale
            }
            _ => DeviceKind::Generic,
        }
    }

    /// The readings of the record, decoded again from its bytes.
    pub fn readings(&self, quirks: Quirks) -> Result<Vec<Reading>, PayloadError> {
        let (first, rest) = self.payloads.split_first().ok_or(PayloadError::Empty)?;
        let bytes = first.bytes.as_slice();
        let single = |r: Result<Vec<Reading>, PayloadError>| {
            if rest.is_empty() {
                r
            } else {
                Err(PayloadError::Mismatch("only one value expected"))
            }
        };
        match first.origin {
            Origin::Characteristic(u) => match u {
                uuid::GLUCOSE_MEASUREMENT => glucose(bytes, rest, quirks),
                uuid::WEIGHT_MEASUREMENT => weight(bytes, rest, quirks),
                uuid::BODY_COMPOSITION_MEASUREMENT => Ok(body_composition(&self.payloads, quirks)?
                    .readings()
                    .to_vec()),
                uuid::BLOOD_PRESSURE_MEASUREMENT => single(readings_of::<
                    blood_pressure::BloodPressureMeasurement,
                >(bytes, quirks)),
                uuid::INTERMEDIATE_CUFF_PRESSURE => single(readings_of::<
                    blood_pressure::IntermediateCuffPressure,
                >(bytes, quirks)),
                uuid::TEMPERATURE_MEASUREMENT => single(readings_of::<
                    thermometer::TemperatureMeasurement,
                >(bytes, quirks)),
                uuid::INTERMEDIATE_TEMPERATURE => single(readings_of::<
                    thermometer::IntermediateTemperature,
                >(bytes, quirks)),
                uuid::HEART_RATE_MEASUREMENT => single(readings_of::<
                    heart_rate::HeartRateMeasurement,
                >(bytes, quirks)),
                uuid::PLX_SPOT_CHECK_MEASUREMENT => single(readings_of::<
                    pulse_oximeter::PlxSpotCheckMeasurement,
                >(bytes, quirks)),
                uuid::PLX_CONTINUOUS_MEASUREMENT => single(readings_of::<
                    pulse_oximeter::PlxContinuousMeasurement,
                >(bytes, quirks)),
                uuid::CGM_MEASUREMENT => cgm_readings(bytes, rest, quirks),
                _ => Err(PayloadError::NotAMeasurement(first.origin)),
            },
            Origin::ServiceData(xiaomi::MiSmartScale::SERVICE_UUID) => {
                let decoded = xiaomi::MiSmartScale::decode(bytes).map_err(|error| {
                    PayloadError::Malformed {
                        name: "Mi Smart Scale advertisement",
                        error,
                    }
                })?;
                single(Ok(decoded.value.readings().to_vec()))
            }
            Origin::ServiceData(xiaomi::MiBodyCompositionScale::SERVICE_UUID) => {
                let decoded = xiaomi::MiBodyCompositionScale::decode(bytes).map_err(|error| {
                    PayloadError::Malformed {
                        name: "Mi Body Composition Scale advertisement",
                        error,
                    }
                })?;
                single(Ok(decoded.value.readings().to_vec()))
            }
            Origin::ServiceData(_) => Err(PayloadError::NotAMeasurement(first.origin)),
        }
    }
}

/// A glucose measurement, with the context that followed it when there is one.
fn glucose(bytes: &[u8], rest: &[Payload], quirks: Quirks) -> Result<Vec<Reading>, PayloadError> {
    let measurement = decode::<GlucoseMeasurement>(bytes, quirks)?;
    let context = match rest {
        [] => None,
        [p] if p.origin == Origin::Characteristic(uuid::GLUCOSE_MEASUREMENT_CONTEXT) => {
            let context = decode::<GlucoseMeasurementContext>(&p.bytes, quirks)?;
            if context.sequence_number != measurement.sequence_number {
                return Err(PayloadError::ContextMismatch {
                    measurement: measurement.sequence_number,
                    context: context.sequence_number,
                });
            }
            Some(context)
        }
        _ => {
            return Err(PayloadError::Mismatch(
                "a glucose measurement is followed by at most its context",
            ));
        }
    };
    Ok(GlucoseRecord {
        measurement,
        context,
    }
    .readings()
    .to_vec())
}

/// A CGM notification, timed from the session start time read at connection when there is one.
fn cgm_readings(
    bytes: &[u8],
    rest: &[Payload],
    quirks: Quirks,
) -> Result<Vec<Reading>, PayloadError> {
    let measurement = decode::<cgm::CgmMeasurement>(bytes, quirks)?;
    let start = match rest {
        [] => None,
        [p] if p.origin == Origin::Characteristic(uuid::CGM_SESSION_START_TIME) => {
            Some(decode::<cgm::CgmSessionStartTime>(&p.bytes, quirks)?)
        }
        _ => {
            return Err(PayloadError::Mismatch(
                "a CGM measurement is followed by at most its session start time",
            ));
        }
    };
    Ok(measurement.readings_since(start.as_ref()).collect())
}

/// A weight, merged with the body composition of the same weighing when one followed.
fn weight(bytes: &[u8], rest: &[Payload], quirks: Quirks) -> Result<Vec<Reading>, PayloadError> {
    let weight = decode::<WeightMeasurement>(bytes, quirks)?;
    if rest.is_empty() {
        return Ok(weight.readings().to_vec());
    }
    let body = body_composition(rest, quirks)?;
    merged_readings(&weight, &body)
        .map(|r| r.to_vec())
        .ok_or(PayloadError::Mismatch(
            "the weight and the body composition have different users or time stamps",
        ))
}

/// The packets of one body composition measurement, joined.
fn body_composition(
    packets: &[Payload],
    quirks: Quirks,
) -> Result<BodyCompositionMeasurement, PayloadError> {
    let mut assembler = CompositionAssembler::new();
    let mut whole = None;
    for packet in packets {
        if packet.origin != Origin::Characteristic(uuid::BODY_COMPOSITION_MEASUREMENT) {
            return Err(PayloadError::Mismatch(
                "only body composition packets may follow",
            ));
        }
        if whole.is_some() {
            return Err(PayloadError::Mismatch(
                "a packet follows the last packet of the measurement",
            ));
        }
        whole = assembler.push(decode::<BodyCompositionMeasurement>(&packet.bytes, quirks)?);
    }
    // Packets whose last one never came still count: some scales flag every packet.
    whole
        .or_else(|| assembler.flush())
        .ok_or(PayloadError::Empty)
}

#[cfg(test)]
mod tests {
    use super::*;
    use relais_protocol::Kind;

    fn hex(s: &str) -> Vec<u8> {
        crate::hex::parse_hex(s).unwrap()
    }

    #[test]
    fn a_glucose_record_takes_its_meal_from_the_context() {
        let record = Record {
            payloads: vec![
                Payload::characteristic(
                    uuid::GLUCOSE_MEASUREMENT,
                    hex("13 05 00 E8 07 03 01 08 00 00 00 00 5A B0 F1"),
                ),
                Payload::characteristic(uuid::GLUCOSE_MEASUREMENT_CONTEXT, hex("02 05 00 03")),
            ],
        };
        let readings = record.readings(Quirks::NONE).unwrap();
        assert_eq!(readings.len(), 1);
        assert!(readings[0].context.meal.is_some());
        assert_eq!(record.device_kind(), DeviceKind::GlucoseMeter);
    }

    #[test]
    fn a_context_of_another_record_is_refused() {
        let record = Record {
            payloads: vec![
                Payload::characteristic(
                    uuid::GLUCOSE_MEASUREMENT,
                    hex("13 05 00 E8 07 03 01 08 00 00 00 00 5A B0 F1"),
                ),
                Payload::characteristic(uuid::GLUCOSE_MEASUREMENT_CONTEXT, hex("02 06 00 03")),
            ],
        };
        assert_eq!(
            record.readings(Quirks::NONE),
            Err(PayloadError::ContextMismatch {
                measurement: 5,
                context: 6
            })
        );
    }

    #[test]
    fn weight_and_body_composition_merge_into_one_weighing() {
        // 70.00 kg; body fat 20.0 % with a 70.00 kg weight in the body composition too.
        let record = Record {
            payloads: vec![
                Payload::characteristic(uuid::WEIGHT_MEASUREMENT, hex("00 AC 0D")),
                Payload::characteristic(uuid::BODY_COMPOSITION_MEASUREMENT, hex("00 00 C8 00")),
            ],
        };
        let readings = record.readings(Quirks::NONE).unwrap();
        let kinds: Vec<Kind> = readings.iter().map(|r| r.kind).collect();
        assert!(kinds.contains(&Kind::BodyWeight), "{kinds:?}");
        assert!(kinds.contains(&Kind::BodyFatPercentage), "{kinds:?}");
        assert_eq!(record.device_kind(), DeviceKind::BodyCompositionAnalyser);
    }

    #[test]
    fn a_single_value_record_refuses_extra_values() {
        let record = Record {
            payloads: vec![
                Payload::characteristic(uuid::HEART_RATE_MEASUREMENT, vec![0x00, 0x48]),
                Payload::characteristic(uuid::HEART_RATE_MEASUREMENT, vec![0x00, 0x49]),
            ],
        };
        assert!(matches!(
            record.readings(Quirks::NONE),
            Err(PayloadError::Mismatch(_))
        ));
    }

    #[test]
    fn truncated_bytes_are_malformed_and_unknown_origins_are_named() {
        let truncated = Record::single(Payload::characteristic(uuid::WEIGHT_MEASUREMENT, vec![0]));
        assert!(matches!(
            truncated.readings(Quirks::NONE),
            Err(PayloadError::Malformed { .. })
        ));
        let battery = Record::single(Payload::characteristic(0x2A19, vec![50]));
        assert_eq!(
            battery.readings(Quirks::NONE),
            Err(PayloadError::NotAMeasurement(Origin::Characteristic(
                0x2A19
            )))
        );
        assert_eq!(
            Record { payloads: vec![] }.readings(Quirks::NONE),
            Err(PayloadError::Empty)
        );
    }

    #[test]
    fn records_survive_a_json_round_trip() {
        let record = Record::single(Payload::service_data(0x181D, vec![1, 2, 3]));
        let json = serde_json::to_string(&record).unwrap();
        assert_eq!(serde_json::from_str::<Record>(&json).unwrap(), record);
    }
}
