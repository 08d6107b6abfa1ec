//! Health Thermometer (0x1809): Temperature Measurement (0x2A1C), Temperature Type (0x2A1D),
//! Intermediate Temperature (0x2A1E) and Measurement Interval (0x2A21).

use crate::characteristic::Characteristic;
use crate::error::{DecodeError, EncodeError};
use crate::float::{Decimal, decode_float, encode_float};
use crate::macros::code_enum;
use crate::quantity::{Quantity, Unit};
use crate::quirks::Quirks;
use crate::reading::{DeviceTime, Kind, Reading, Readings, ToReadings};
use crate::time::DateTime;
use crate::uuid;
use crate::wire::{Decoded, Reader, Writer};

const UNITS_FAHRENHEIT: u8 = 1 << 0;
const TIME_STAMP: u8 = 1 << 1;
const TEMPERATURE_TYPE: u8 = 1 << 2;
const DEFINED_FLAGS: u8 = 0x07;

code_enum! {
    /// Where the temperature was taken (field of 0x2A1C and characteristic 0x2A1D).
    pub enum TemperatureType: u8 {
        Armpit = 1 => "armpit",
        Body = 2 => "body",
        Ear = 3 => "ear",
        Finger = 4 => "finger",
        GastrointestinalTract = 5 => "gastrointestinal_tract",
        Mouth = 6 => "mouth",
        Rectum = 7 => "rectum",
        Toe = 8 => "toe",
        Tympanum = 9 => "tympanum",
    }
}

/// Temperature Type (0x2A1D): the one site a thermometer always measures at. Reserved codes
/// are kept as `Reserved(code)` and written back unchanged.
impl Characteristic for TemperatureType {
    const UUID: u16 = uuid::TEMPERATURE_TYPE;
    const NAME: &'static str = "temperature_type";
    const MAX_LEN: usize = 1;

    fn decode_with(bytes: &[u8], _quirks: Quirks) -> Result<Decoded<Self>, DecodeError> {
        let mut r = Reader::new(bytes);
        let code = r.u8("temperature_type")?;
        Ok(r.finish(Self::from_code(code), 0))
    }

    fn encode_with(&self, out: &mut [u8], _quirks: Quirks) -> Result<usize, EncodeError> {
        let mut w = Writer::new(out);
        w.u8(self.code())?;
        Ok(w.len())
    }
}

fn announced_len(flags: u8) -> usize {
    let mut len = 1 + 4;
    if flags & TIME_STAMP != 0 {
        len += DateTime::LEN;
    }
    if flags & TEMPERATURE_TYPE != 0 {
        len += 1;
    }
    len
}

/// Temperature Measurement (0x2A1C), indicated once per completed measurement.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
pub struct TemperatureMeasurement {
    /// The Temperature Measurement Value, in `Cel` or `[degF]` (the unit flag follows it).
    pub temperature: Quantity,
    /// When the device took it, on its own clock.
    pub time_stamp: Option<DateTime>,
    /// Where it was taken, when the device says so in the measurement itself.
    pub temperature_type: Option<TemperatureType>,
}

impl Characteristic for TemperatureMeasurement {
    const UUID: u16 = uuid::TEMPERATURE_MEASUREMENT;
    const NAME: &'static str = "temperature_measurement";
    const MAX_LEN: usize = 13;

    fn decode_with(bytes: &[u8], _quirks: Quirks) -> Result<Decoded<Self>, DecodeError> {
        let mut r = Reader::new(bytes);
        let flags = r.u8("flags")?;
        r.announce(announced_len(flags));
        let unit = if flags & UNITS_FAHRENHEIT != 0 {
            Unit::Fahrenheit
        } else {
            Unit::Celsius
        };
        let temperature = Quantity::new(decode_float(r.u32("temperature")?), unit);
        let time_stamp = if flags & TIME_STAMP != 0 {
            Some(DateTime::read(&mut r, "time_stamp")?)
        } else {
            None
        };
        let temperature_type = if flags & TEMPERATURE_TYPE != 0 {
            Some(TemperatureType::from_code(r.u8("temperature_type")?))
        } else {
            None
        };
        let value = Self {
            temperature,
            time_stamp,
            temperature_type,
        };
        Ok(r.finish(value, u32::from(flags & !DEFINED_FLAGS)))
    }

    fn encode_with(&self, out: &mut [u8], _quirks: Quirks) -> Result<usize, EncodeError> {
        let mut flags = match self.temperature.unit {
            Unit::Celsius => 0,
            Unit::Fahrenheit => UNITS_FAHRENHEIT,
            _ => {
                return Err(EncodeError::Unrepresentable {
                    field: "temperature",
                    reason: "temperature must be in Cel or [degF]",
                });
            }
        };
        if self.time_stamp.is_some() {
            flags |= TIME_STAMP;
        }
        if self.temperature_type.is_some() {
            flags |= TEMPERATURE_TYPE;
        }
        let mut w = Writer::new(out);
        w.reserve(announced_len(flags))?;
        w.u8(flags)?;
        w.u32(encode_float(self.temperature.value, "temperature")?)?;
        if let Some(ts) = &self.time_stamp {
            ts.write(&mut w, "time_stamp")?;
        }
        if let Some(site) = self.temperature_type {
            w.u8(site.code())?;
        }
        Ok(w.len())
    }
}

impl ToReadings for TemperatureMeasurement {
    fn readings(&self) -> Readings {
        let mut reading = Reading::new(Kind::BodyTemperature, self.temperature)
            .at(DeviceTime::from_time_stamp(self.time_stamp));
        reading.context.temperature_type = self.temperature_type;
        let mut out = Readings::new();
        let _ = out.push(reading);
        out
    }
}

/// Intermediate Temperature (0x2A1E): the same format as Temperature Measurement, notified
/// while the thermometer is still settling. Its readings are marked intermediate.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
pub struct IntermediateTemperature(pub TemperatureMeasurement);

impl Characteristic for IntermediateTemperature {
    const UUID: u16 = uuid::INTERMEDIATE_TEMPERATURE;
    const NAME: &'static str = "intermediate_temperature";
    const MAX_LEN: usize = TemperatureMeasurement::MAX_LEN;

    fn decode_with(bytes: &[u8], quirks: Quirks) -> Result<Decoded<Self>, DecodeError> {
        let d = TemperatureMeasurement::decode_with(bytes, quirks)?;
        Ok(Decoded {
            value: Self(d.value),
            trailing: d.trailing,
            reserved_flags: d.reserved_flags,
        })
    }

    fn encode_with(&self, out: &mut [u8], quirks: Quirks) -> Result<usize, EncodeError> {
        self.0.encode_with(out, quirks)
    }
}

impl ToReadings for IntermediateTemperature {
    fn readings(&self) -> Readings {
        let mut out = self.0.readings();
        for reading in &mut out {
            reading.status.intermediate = true;
        }
        out
    }
}

/// Measurement Interval (0x2A21): seconds between periodic measurements; 0 means the
/// thermometer does not measure periodically.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
pub struct MeasurementInterval {
    /// A whole number of seconds, 0..=65535, in `s`.
    pub measurement_interval: Quantity,
}

impl MeasurementInterval {
    /// An interval of `seconds` (0 for "no periodic measurement").
    pub const fn from_seconds(seconds: u16) -> Self {
        Self {
            measurement_interval: Quantity::decimal(Decimal::new(seconds as i64, 0), Unit::Second),
        }
    }

    /// The interval in whole seconds, when it is one that fits the wire.
    pub fn seconds(&self) -> Option<u16> {
        if self.measurement_interval.unit != Unit::Second {
            return None;
        }
        let raw = self
            .measurement_interval
            .value
            .decimal()?
            .as_multiple_of(Decimal::new(1, 0))?;
        u16::try_from(raw).ok()
    }

    /// False when the interval is 0: the thermometer only measures on demand.
    pub fn is_periodic(&self) -> bool {
        self.seconds() != Some(0)
    }
}

impl Characteristic for MeasurementInterval {
    const UUID: u16 = uuid::MEASUREMENT_INTERVAL;
    const NAME: &'static str = "measurement_interval";
    const MAX_LEN: usize = 2;

    fn decode_with(bytes: &[u8], _quirks: Quirks) -> Result<Decoded<Self>, DecodeError> {
        let mut r = Reader::new(bytes);
        let seconds = r.u16("measurement_interval")?;
        Ok(r.finish(Self::from_seconds(seconds), 0))
    }

    fn encode_with(&self, out: &mut [u8], _quirks: Quirks) -> Result<usize, EncodeError> {
        let seconds = self.seconds().ok_or(EncodeError::Unrepresentable {
            field: "measurement_interval",
            reason: "must be a whole number of seconds, 0..=65535, in s",
        })?;
        let mut w = Writer::new(out);
        w.u16(seconds)?;
        Ok(w.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::float::{MedValue, Special};
    use crate::test_support::{date_time, float, roundtrip};
    use proptest::prelude::*;

    fn celsius(m: i64, e: i8) -> Quantity {
        Quantity::decimal(Decimal::new(m, e), Unit::Celsius)
    }

    #[test]
    fn decodes_celsius_with_time_stamp_and_type() {
        // flags: time stamp, type; 36.7 °C (367e-1: 6F 01 00 FF); 2024-03-05 08:30:15; ear.
        let bytes = [
            0x06, 0x6F, 0x01, 0x00, 0xFF, 0xE8, 0x07, 0x03, 0x05, 0x08, 0x1E, 0x0F, 0x03,
        ];
        let d = TemperatureMeasurement::decode(&bytes).unwrap();
        assert_eq!(d.trailing, 0);
        assert_eq!(d.reserved_flags, 0);
        assert_eq!(d.value.temperature, celsius(367, -1));
        assert_eq!(d.value.time_stamp, DateTime::new(2024, 3, 5, 8, 30, 15));
        assert_eq!(d.value.temperature_type, Some(TemperatureType::Ear));
    }

    #[test]
    fn decodes_a_bare_fahrenheit_value() {
        // 98.6 °F, nothing else.
        let d = TemperatureMeasurement::decode(&[0x01, 0xDA, 0x03, 0x00, 0xFF]).unwrap();
        let t = d.value.temperature;
        assert_eq!(
            t,
            Quantity::decimal(Decimal::new(986, -1), Unit::Fahrenheit)
        );
        assert_eq!(d.value.time_stamp, None);
        assert_eq!(d.value.temperature_type, None);
    }

    #[test]
    fn type_without_time_stamp_follows_the_temperature() {
        let d = TemperatureMeasurement::decode(&[0x04, 0x6F, 0x01, 0x00, 0xFF, 0x06]).unwrap();
        assert_eq!(d.value.temperature_type, Some(TemperatureType::Mouth));
        assert_eq!(d.value.time_stamp, None);
    }

    #[test]
    fn fahrenheit_readings_are_converted_to_celsius_with_context() {
        let m = TemperatureMeasurement::decode(&[0x05, 0xDA, 0x03, 0x00, 0xFF, 0x02])
            .unwrap()
            .value;
        let r = m.readings();
        assert_eq!(r.len(), 1);
        assert_eq!(r[0].kind, Kind::BodyTemperature);
        assert_eq!(*r[0].value.primary(), celsius(370, -1));
        assert_eq!(r[0].context.temperature_type, Some(TemperatureType::Body));
        assert_eq!(r[0].time, DeviceTime::Absent);
        assert!(!r[0].status.intermediate);
    }

    #[test]
    fn names_the_missing_field_with_byte_counts() {
        // Flags announce a time stamp (12 bytes in all) but the value stops after 8.
        let err = TemperatureMeasurement::decode(&[0x02, 0x6F, 0x01, 0x00, 0xFF, 0xE8, 0x07, 0x03])
            .unwrap_err();
        assert_eq!(
            err,
            DecodeError::Truncated {
                field: "time_stamp",
                needed: 12,
                present: 8
            }
        );
        let err = TemperatureMeasurement::decode(&[0x04, 0x6F, 0x01, 0x00, 0xFF]).unwrap_err();
        assert_eq!(
            err,
            DecodeError::Truncated {
                field: "temperature_type",
                needed: 6,
                present: 5
            }
        );
        let err = TemperatureMeasurement::decode(&[0x00, 0x6F, 0x01]).unwrap_err();
        assert_eq!(err.field(), "temperature");
    }

    #[test]
    fn accepts_and_reports_trailing_bytes_and_reserved_flags() {
        let d =
            TemperatureMeasurement::decode(&[0x80, 0x6F, 0x01, 0x00, 0xFF, 0xAA, 0xBB]).unwrap();
        assert_eq!(d.trailing, 2);
        assert_eq!(d.reserved_flags, 0x80);
    }

    #[test]
    fn keeps_special_values_special() {
        let d = TemperatureMeasurement::decode(&[0x01, 0xFF, 0xFF, 0x7F, 0x00]).unwrap();
        assert_eq!(d.value.temperature.value, MedValue::Special(Special::NaN));
        // A special in °F stays special in the Celsius reading.
        let r = d.value.readings();
        assert_eq!(
            *r[0].value.primary(),
            Quantity::special(Special::NaN, Unit::Celsius)
        );
    }

    #[test]
    fn reserved_temperature_type_is_kept() {
        let d = TemperatureMeasurement::decode(&[0x04, 0x6F, 0x01, 0x00, 0xFF, 0x00]).unwrap();
        assert_eq!(d.value.temperature_type, Some(TemperatureType::Reserved(0)));
        assert_eq!(
            TemperatureType::decode(&[0x0A]).unwrap().value,
            TemperatureType::Reserved(10)
        );
    }

    #[test]
    fn refuses_to_encode_a_temperature_in_another_unit() {
        let m = TemperatureMeasurement {
            temperature: Quantity::decimal(Decimal::new(310, 0), Unit::Kilogram),
            time_stamp: None,
            temperature_type: None,
        };
        let err = m.encode(&mut [0u8; 13]).unwrap_err();
        assert!(matches!(
            err,
            EncodeError::Unrepresentable {
                field: "temperature",
                ..
            }
        ));
    }

    #[test]
    fn intermediate_temperature_is_a_progress_reading() {
        let bytes = [0x00, 0x6F, 0x01, 0x00, 0xFF];
        let it = IntermediateTemperature::decode(&bytes).unwrap().value;
        assert_eq!(it.0.temperature, celsius(367, -1));
        let r = it.readings();
        assert_eq!(r[0].kind, Kind::BodyTemperature);
        assert!(r[0].status.intermediate);
        let mut out = [0u8; 13];
        let n = it.encode(&mut out).unwrap();
        assert_eq!(&out[..n], &bytes);
    }

    #[test]
    fn temperature_type_characteristic_is_one_byte() {
        let d = TemperatureType::decode(&[0x09, 0x00]).unwrap();
        assert_eq!(d.value, TemperatureType::Tympanum);
        assert_eq!(d.trailing, 1);
        let err = TemperatureType::decode(&[]).unwrap_err();
        assert_eq!(
            err,
            DecodeError::Truncated {
                field: "temperature_type",
                needed: 1,
                present: 0
            }
        );
    }

    #[test]
    fn measurement_interval_zero_means_not_periodic() {
        let d = MeasurementInterval::decode(&[0x00, 0x00]).unwrap();
        assert!(!d.value.is_periodic());
        let d = MeasurementInterval::decode(&[0x2C, 0x01]).unwrap();
        assert_eq!(d.value.seconds(), Some(300));
        assert!(d.value.is_periodic());
        assert_eq!(
            d.value.measurement_interval,
            Quantity::decimal(Decimal::new(300, 0), Unit::Second)
        );
        let err = MeasurementInterval::decode(&[0x2C]).unwrap_err();
        assert_eq!(
            err,
            DecodeError::Truncated {
                field: "measurement_interval",
                needed: 2,
                present: 1
            }
        );
    }

    #[test]
    fn measurement_interval_encodes_whole_seconds_only() {
        let mut out = [0u8; 2];
        let tenth = MeasurementInterval {
            measurement_interval: Quantity::decimal(Decimal::new(15, -1), Unit::Second),
        };
        assert!(tenth.encode(&mut out).is_err());
        let minutes = MeasurementInterval {
            measurement_interval: Quantity::decimal(Decimal::new(5, 0), Unit::Minute),
        };
        assert!(minutes.encode(&mut out).is_err());
        // 3.0e2 s is a whole 300 s, whatever its exponent.
        let scaled = MeasurementInterval {
            measurement_interval: Quantity::decimal(Decimal::new(3, 2), Unit::Second),
        };
        assert_eq!(scaled.encode(&mut out).unwrap(), 2);
        assert_eq!(out, [0x2C, 0x01]);
    }

    fn measurement() -> impl Strategy<Value = TemperatureMeasurement> {
        let unit = prop_oneof![Just(Unit::Celsius), Just(Unit::Fahrenheit)];
        (
            unit,
            float(),
            proptest::option::of(date_time()),
            proptest::option::of(any::<u8>().prop_map(TemperatureType::from_code)),
        )
            .prop_map(|(unit, value, time_stamp, temperature_type)| {
                TemperatureMeasurement {
                    temperature: Quantity::new(value, unit),
                    time_stamp,
                    temperature_type,
                }
            })
    }

    proptest! {
        #[test]
        fn measurement_roundtrips(m in measurement()) {
            roundtrip(&m, Quirks::NONE)?;
        }

        #[test]
        fn intermediate_temperature_roundtrips(m in measurement()) {
            roundtrip(&IntermediateTemperature(m), Quirks::NONE)?;
        }

        #[test]
        fn temperature_type_roundtrips(code in any::<u8>()) {
            roundtrip(&TemperatureType::from_code(code), Quirks::NONE)?;
        }

        #[test]
        fn measurement_interval_roundtrips(seconds in any::<u16>()) {
            roundtrip(&MeasurementInterval::from_seconds(seconds), Quirks::NONE)?;
        }

        #[test]
        fn decoding_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..32)) {
            let _ = TemperatureMeasurement::decode(&bytes);
            let _ = IntermediateTemperature::decode(&bytes);
            let _ = TemperatureType::decode(&bytes);
            let _ = MeasurementInterval::decode(&bytes);
        }
    }
}
