//! Heart Rate Service (0x180D): Heart Rate Measurement (0x2A37), Body Sensor Location (0x2A38)
//! and Heart Rate Control Point (0x2A39).

use crate::characteristic::Characteristic;
use crate::error::{DecodeError, EncodeError};
use crate::float::Decimal;
use crate::macros::code_enum;
use crate::quantity::{Quantity, Unit};
use crate::quirks::Quirks;
use crate::reading::{Kind, Reading, ReadingStatus, Readings, ToReadings};
use crate::uuid;
use crate::wire::{Decoded, Reader, Writer};

/// Heart Rate Control Point (0x2A39). Not (yet) in [`crate::uuid`], so defined here.
pub const HEART_RATE_CONTROL_POINT_UUID: u16 = 0x2A39;

const VALUE_UINT16: u8 = 1 << 0;
const SENSOR_CONTACT_SHIFT: u8 = 1;
const ENERGY_EXPENDED: u8 = 1 << 3;
const RR_INTERVALS: u8 = 1 << 4;
const DEFINED_FLAGS: u8 = 0x1F;

/// Most RR-intervals one value can carry: an ATT value holds at most 512 bytes, and the
/// shortest header before the intervals is flags + an 8-bit heart rate, so (512 - 2) / 2 = 255.
pub const MAX_RR_INTERVALS: usize = 255;

/// Longest encoded value: the 512-byte ATT maximum.
const MAX_VALUE_LEN: usize = 512;

/// How the heart rate value was sent, kept so a value re-encodes to the same bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(
    feature = "serde",
    derive(serde::Serialize),
    serde(rename_all = "snake_case")
)]
pub enum HeartRateValueFormat {
    /// Flag bit 0 clear: one byte, 0..=255 /min.
    Uint8,
    /// Flag bit 0 set: two bytes, 0..=65535 /min.
    Uint16,
}

/// Sensor Contact Status (flag bits 1-2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SensorContact {
    /// Code 0: the sensor cannot tell whether it touches the skin.
    NotSupported,
    /// Code 1: also "not supported" per the specification; kept apart so it re-encodes as 1.
    NotSupportedCode1,
    /// Code 2: contact detection works, and there is no contact.
    NoContact,
    /// Code 3: contact detection works, and the sensor touches the skin.
    ContactDetected,
}

impl SensorContact {
    /// From the two status bits (only the low two bits of `code` count).
    pub const fn from_code(code: u8) -> Self {
        match code & 0b11 {
            0 => Self::NotSupported,
            1 => Self::NotSupportedCode1,
            2 => Self::NoContact,
            _ => Self::ContactDetected,
        }
    }

    /// The two status bits.
    pub const fn code(self) -> u8 {
        match self {
            Self::NotSupported => 0,
            Self::NotSupportedCode1 => 1,
            Self::NoContact => 2,
            Self::ContactDetected => 3,
        }
    }

    /// snake_case name, as printed in JSON: both "not supported" codes print the same.
    pub const fn name(self) -> &'static str {
        match self {
            Self::NotSupported | Self::NotSupportedCode1 => "not_supported",
            Self::NoContact => "supported_no_contact",
            Self::ContactDetected => "contact_detected",
        }
    }

    /// `Some(touching)` when the sensor can detect contact, else `None`.
    pub const fn contact(self) -> Option<bool> {
        match self {
            Self::NotSupported | Self::NotSupportedCode1 => None,
            Self::NoContact => Some(false),
            Self::ContactDetected => Some(true),
        }
    }
}

#[cfg(feature = "serde")]
impl serde::Serialize for SensorContact {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.name())
    }
}

/// One RR-interval (time between two R-waves), kept as the raw count of 1/1024 s so a value
/// costs two bytes, not a whole [`Quantity`]; [`RrInterval::seconds`] gives the quantity.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct RrInterval(pub u16);

impl RrInterval {
    /// 1/1024 s = 0.0009765625 s, exactly.
    const STEP: Decimal = Decimal::new(9_765_625, -10);

    /// The interval in seconds, as an exact decimal (raw × 0.0009765625 s).
    pub const fn seconds(self) -> Quantity {
        Quantity::decimal(Decimal::scaled(self.0 as i64, Self::STEP), Unit::Second)
    }
}

#[cfg(feature = "serde")]
impl serde::Serialize for RrInterval {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.seconds().serialize(s)
    }
}

/// The RR-intervals of one measurement, oldest first.
pub type RrIntervals = heapless::Vec<RrInterval, MAX_RR_INTERVALS>;

/// Heart Rate Measurement (0x2A37), notified about once a second.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
pub struct HeartRateMeasurement {
    /// Beats per minute, a whole number in `/min`.
    pub heart_rate_measurement_value: Quantity,
    /// Whether the value travels as 8 or 16 bits.
    pub value_format: HeartRateValueFormat,
    /// Whether the sensor can tell it touches the skin, and whether it does.
    pub sensor_contact: SensorContact,
    /// Energy expended since the last reset, a whole number of `kJ` (65535 means "at least").
    pub energy_expended: Option<Quantity>,
    /// RR-intervals since the last notification, oldest first; empty when none were sent.
    #[cfg_attr(feature = "serde", serde(serialize_with = "serialize_rr_intervals"))]
    pub rr_intervals: RrIntervals,
}

/// A JSON array of quantities in seconds (heapless is built without its serde feature).
#[cfg(feature = "serde")]
fn serialize_rr_intervals<S: serde::Serializer>(rr: &RrIntervals, s: S) -> Result<S::Ok, S::Error> {
    s.collect_seq(rr.iter())
}

/// `q` as a whole number of `unit` no larger than `max`.
fn whole(
    q: &Quantity,
    unit: Unit,
    max: u16,
    field: &'static str,
    reason: &'static str,
) -> Result<u16, EncodeError> {
    let err = EncodeError::Unrepresentable { field, reason };
    if q.unit != unit {
        return Err(err);
    }
    let raw = q
        .value
        .decimal()
        .and_then(|d| d.as_multiple_of(Decimal::new(1, 0)))
        .ok_or(err)?;
    u16::try_from(raw).ok().filter(|&v| v <= max).ok_or(err)
}

fn announced_len(flags: u8) -> usize {
    let mut len = 1 + if flags & VALUE_UINT16 != 0 { 2 } else { 1 };
    if flags & ENERGY_EXPENDED != 0 {
        len += 2;
    }
    // RR-intervals run to the end of the value, so they add nothing fixed.
    len
}

impl Characteristic for HeartRateMeasurement {
    const UUID: u16 = uuid::HEART_RATE_MEASUREMENT;
    const NAME: &'static str = "heart_rate_measurement";
    const MAX_LEN: usize = MAX_VALUE_LEN;

    /// With the RR flag set, RR-intervals are read until fewer than two bytes remain; a last
    /// odd byte is reported as trailing, and a flag with no interval behind it is accepted.
    fn decode_with(bytes: &[u8], _quirks: Quirks) -> Result<Decoded<Self>, DecodeError> {
        let mut r = Reader::new(bytes);
        let flags = r.u8("flags")?;
        r.announce(announced_len(flags));
        let (value_format, bpm) = if flags & VALUE_UINT16 != 0 {
            (
                HeartRateValueFormat::Uint16,
                r.u16("heart_rate_measurement_value")?,
            )
        } else {
            let bpm = r.u8("heart_rate_measurement_value")?;
            (HeartRateValueFormat::Uint8, u16::from(bpm))
        };
        let energy_expended = if flags & ENERGY_EXPENDED != 0 {
            let kj = r.u16("energy_expended")?;
            Some(Quantity::decimal(
                Decimal::new(i64::from(kj), 0),
                Unit::Kilojoule,
            ))
        } else {
            None
        };
        let mut rr_intervals = RrIntervals::new();
        if flags & RR_INTERVALS != 0 {
            while r.remaining() >= 2 {
                let raw = r.u16("rr_intervals")?;
                if rr_intervals.push(RrInterval(raw)).is_err() {
                    return Err(DecodeError::Invalid {
                        field: "rr_intervals",
                        value: u32::try_from(bytes.len()).unwrap_or(u32::MAX),
                        expected: "a value of at most 512 bytes (255 RR-intervals)",
                    });
                }
            }
        }
        let value = Self {
            heart_rate_measurement_value: Quantity::decimal(
                Decimal::new(i64::from(bpm), 0),
                Unit::PerMinute,
            ),
            value_format,
            sensor_contact: SensorContact::from_code(flags >> SENSOR_CONTACT_SHIFT),
            energy_expended,
            rr_intervals,
        };
        Ok(r.finish(value, u32::from(flags & !DEFINED_FLAGS)))
    }

    fn encode_with(&self, out: &mut [u8], _quirks: Quirks) -> Result<usize, EncodeError> {
        let max = match self.value_format {
            HeartRateValueFormat::Uint8 => u16::from(u8::MAX),
            HeartRateValueFormat::Uint16 => u16::MAX,
        };
        let bpm = whole(
            &self.heart_rate_measurement_value,
            Unit::PerMinute,
            max,
            "heart_rate_measurement_value",
            "must be a whole number of /min that fits the value format",
        )?;
        let energy = self
            .energy_expended
            .as_ref()
            .map(|e| {
                whole(
                    e,
                    Unit::Kilojoule,
                    u16::MAX,
                    "energy_expended",
                    "must be 0..=65535 whole kJ",
                )
            })
            .transpose()?;
        let mut flags = self.sensor_contact.code() << SENSOR_CONTACT_SHIFT;
        if self.value_format == HeartRateValueFormat::Uint16 {
            flags |= VALUE_UINT16;
        }
        if energy.is_some() {
            flags |= ENERGY_EXPENDED;
        }
        if !self.rr_intervals.is_empty() {
            flags |= RR_INTERVALS;
        }
        let total = announced_len(flags) + 2 * self.rr_intervals.len();
        if total > MAX_VALUE_LEN {
            return Err(EncodeError::Unrepresentable {
                field: "rr_intervals",
                reason: "too many RR-intervals for a 512-byte value",
            });
        }
        let mut w = Writer::new(out);
        w.reserve(total)?;
        w.u8(flags)?;
        match self.value_format {
            // `whole` capped it at 255 above.
            HeartRateValueFormat::Uint8 => w.u8(u8::try_from(bpm).unwrap_or(u8::MAX))?,
            HeartRateValueFormat::Uint16 => w.u16(bpm)?,
        }
        if let Some(kj) = energy {
            w.u16(kj)?;
        }
        for rr in &self.rr_intervals {
            w.u16(rr.0)?;
        }
        Ok(w.len())
    }
}

impl ToReadings for HeartRateMeasurement {
    fn readings(&self) -> Readings {
        let status = ReadingStatus {
            no_contact: self.sensor_contact == SensorContact::NoContact,
            ..ReadingStatus::default()
        };
        let mut out = Readings::new();
        let hr = Reading::new(Kind::HeartRate, self.heart_rate_measurement_value).status(status);
        let _ = out.push(hr);
        if let Some(energy) = self.energy_expended {
            let _ = out.push(Reading::new(Kind::EnergyExpended, energy));
        }
        out
    }
}

code_enum! {
    /// Body Sensor Location (0x2A38): where the heart rate sensor is worn.
    pub enum BodySensorLocation: u8 {
        Other = 0 => "other",
        Chest = 1 => "chest",
        Wrist = 2 => "wrist",
        Finger = 3 => "finger",
        Hand = 4 => "hand",
        EarLobe = 5 => "ear_lobe",
        Foot = 6 => "foot",
    }
}

impl Characteristic for BodySensorLocation {
    const UUID: u16 = uuid::BODY_SENSOR_LOCATION;
    const NAME: &'static str = "body_sensor_location";
    const MAX_LEN: usize = 1;

    fn decode_with(bytes: &[u8], _quirks: Quirks) -> Result<Decoded<Self>, DecodeError> {
        let mut r = Reader::new(bytes);
        let code = r.u8("body_sensor_location")?;
        Ok(r.finish(Self::from_code(code), 0))
    }

    fn encode_with(&self, out: &mut [u8], _quirks: Quirks) -> Result<usize, EncodeError> {
        let mut w = Writer::new(out);
        w.u8(self.code())?;
        Ok(w.len())
    }
}

code_enum! {
    /// Heart Rate Control Point (0x2A39): the one command a client writes. Sensors answer
    /// other codes with ATT error 0x80 (Control Point value not supported).
    pub enum HeartRateControlPoint: u8 {
        /// Restart the Energy Expended count from 0.
        ResetEnergyExpended = 1 => "reset_energy_expended",
    }
}

impl Characteristic for HeartRateControlPoint {
    const UUID: u16 = HEART_RATE_CONTROL_POINT_UUID;
    const NAME: &'static str = "heart_rate_control_point";
    const MAX_LEN: usize = 1;

    fn decode_with(bytes: &[u8], _quirks: Quirks) -> Result<Decoded<Self>, DecodeError> {
        let mut r = Reader::new(bytes);
        let code = r.u8("heart_rate_control_point")?;
        Ok(r.finish(Self::from_code(code), 0))
    }

    fn encode_with(&self, out: &mut [u8], _quirks: Quirks) -> Result<usize, EncodeError> {
        let mut w = Writer::new(out);
        w.u8(self.code())?;
        Ok(w.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_support::roundtrip;
    use proptest::prelude::*;

    fn bpm(v: i64) -> Quantity {
        Quantity::decimal(Decimal::new(v, 0), Unit::PerMinute)
    }

    #[test]
    fn decodes_an_8_bit_value_without_contact_detection() {
        let d = HeartRateMeasurement::decode(&[0x00, 0x48]).unwrap();
        assert_eq!(d.trailing, 0);
        let m = d.value;
        assert_eq!(m.heart_rate_measurement_value, bpm(72));
        assert_eq!(m.value_format, HeartRateValueFormat::Uint8);
        assert_eq!(m.sensor_contact, SensorContact::NotSupported);
        assert_eq!(m.sensor_contact.contact(), None);
        assert_eq!(m.energy_expended, None);
        assert!(m.rr_intervals.is_empty());
    }

    #[test]
    fn decodes_16_bit_value_energy_and_rr_intervals() {
        // flags: u16 value, contact detected, energy, RR; 300 bpm; 1000 kJ; RR 1024 and 512.
        let bytes = [0x1F, 0x2C, 0x01, 0xE8, 0x03, 0x00, 0x04, 0x00, 0x02];
        let d = HeartRateMeasurement::decode(&bytes).unwrap();
        assert_eq!(d.trailing, 0);
        let m = d.value;
        assert_eq!(m.heart_rate_measurement_value, bpm(300));
        assert_eq!(m.value_format, HeartRateValueFormat::Uint16);
        assert_eq!(m.sensor_contact, SensorContact::ContactDetected);
        assert_eq!(
            m.energy_expended,
            Some(Quantity::decimal(Decimal::new(1000, 0), Unit::Kilojoule))
        );
        assert_eq!(
            m.rr_intervals.as_slice(),
            &[RrInterval(1024), RrInterval(512)]
        );
    }

    #[test]
    fn rr_intervals_are_exact_decimal_seconds() {
        let s = |raw| RrInterval(raw).seconds().value.decimal().unwrap();
        assert!(s(1024).numeric_eq(Decimal::new(1, 0)));
        assert!(s(512).numeric_eq(Decimal::new(5, -1)));
        // 1/1024 s exactly, no binary rounding.
        assert_eq!(s(1), Decimal::new(9_765_625, -10));
        assert_eq!(s(u16::MAX), Decimal::new(639_990_234_375, -10));
        assert_eq!(RrInterval(7).seconds().unit, Unit::Second);
    }

    #[test]
    fn keeps_both_not_supported_codes_apart() {
        let m = HeartRateMeasurement::decode(&[0x02, 0x48]).unwrap().value;
        assert_eq!(m.sensor_contact, SensorContact::NotSupportedCode1);
        assert_eq!(m.sensor_contact.name(), "not_supported");
        let mut out = [0u8; 2];
        m.encode(&mut out).unwrap();
        assert_eq!(out, [0x02, 0x48]);
    }

    #[test]
    fn no_contact_is_flagged_on_the_heart_rate_reading_only() {
        let m = HeartRateMeasurement::decode(&[0x0C, 0x00, 0x10, 0x00])
            .unwrap()
            .value;
        assert_eq!(m.sensor_contact, SensorContact::NoContact);
        let r = m.readings();
        assert_eq!(r.len(), 2);
        assert_eq!(r[0].kind, Kind::HeartRate);
        assert_eq!(*r[0].value.primary(), bpm(0));
        assert!(r[0].status.no_contact);
        assert_eq!(r[1].kind, Kind::EnergyExpended);
        assert!(!r[1].status.no_contact);
        let contact = HeartRateMeasurement::decode(&[0x06, 0x48]).unwrap().value;
        assert!(!contact.readings()[0].status.no_contact);
    }

    #[test]
    fn names_the_missing_field_with_byte_counts() {
        let err = HeartRateMeasurement::decode(&[0x01, 0x48]).unwrap_err();
        assert_eq!(
            err,
            DecodeError::Truncated {
                field: "heart_rate_measurement_value",
                needed: 3,
                present: 2
            }
        );
        let err = HeartRateMeasurement::decode(&[0x08, 0x48, 0x10]).unwrap_err();
        assert_eq!(
            err,
            DecodeError::Truncated {
                field: "energy_expended",
                needed: 4,
                present: 3
            }
        );
        let err = HeartRateMeasurement::decode(&[]).unwrap_err();
        assert_eq!(err.field(), "flags");
    }

    #[test]
    fn reports_trailing_bytes_and_an_odd_rr_byte() {
        let d = HeartRateMeasurement::decode(&[0x00, 0x48, 0xAA, 0xBB]).unwrap();
        assert_eq!(d.trailing, 2);
        assert!(d.value.rr_intervals.is_empty());
        let d = HeartRateMeasurement::decode(&[0x10, 0x48, 0x00, 0x04, 0xAA]).unwrap();
        assert_eq!(d.trailing, 1);
        assert_eq!(d.value.rr_intervals.as_slice(), &[RrInterval(1024)]);
    }

    #[test]
    fn accepts_an_rr_flag_with_no_interval_behind_it() {
        let d = HeartRateMeasurement::decode(&[0x10, 0x48]).unwrap();
        assert!(d.value.rr_intervals.is_empty());
        assert_eq!(d.trailing, 0);
    }

    #[test]
    fn reports_reserved_flag_bits() {
        let d = HeartRateMeasurement::decode(&[0xE0, 0x48]).unwrap();
        assert_eq!(d.reserved_flags, 0xE0);
    }

    #[test]
    fn holds_the_most_rr_intervals_a_512_byte_value_carries() {
        let mut bytes = std::vec![0x10, 0x48];
        bytes.extend(core::iter::repeat_n([0x00, 0x04], MAX_RR_INTERVALS).flatten());
        assert_eq!(bytes.len(), 512);
        let m = HeartRateMeasurement::decode(&bytes).unwrap().value;
        assert_eq!(m.rr_intervals.len(), MAX_RR_INTERVALS);
        let mut out = [0u8; 512];
        assert_eq!(m.encode(&mut out).unwrap(), 512);
        assert_eq!(&out[..], &bytes[..]);
        // One more interval is beyond any ATT value.
        bytes.extend([0x00, 0x04]);
        let err = HeartRateMeasurement::decode(&bytes).unwrap_err();
        assert!(matches!(
            err,
            DecodeError::Invalid {
                field: "rr_intervals",
                value: 514,
                ..
            }
        ));
    }

    #[test]
    fn refuses_values_the_format_cannot_carry() {
        let mut out = [0u8; 16];
        let mut m = HeartRateMeasurement::decode(&[0x00, 0x48]).unwrap().value;
        m.heart_rate_measurement_value = bpm(256);
        let err = m.encode(&mut out).unwrap_err();
        assert!(matches!(
            err,
            EncodeError::Unrepresentable {
                field: "heart_rate_measurement_value",
                ..
            }
        ));
        m.value_format = HeartRateValueFormat::Uint16;
        assert_eq!(m.encode(&mut out).unwrap(), 3);
        assert_eq!(&out[..3], &[0x01, 0x00, 0x01]);
        m.heart_rate_measurement_value = Quantity::decimal(Decimal::new(725, -1), Unit::PerMinute);
        assert!(m.encode(&mut out).is_err());
        m.heart_rate_measurement_value = bpm(72);
        m.energy_expended = Some(Quantity::decimal(Decimal::new(1, 0), Unit::Kilogram));
        let err = m.encode(&mut out).unwrap_err();
        assert!(matches!(
            err,
            EncodeError::Unrepresentable {
                field: "energy_expended",
                ..
            }
        ));
    }

    #[test]
    fn body_sensor_location_decodes_codes_and_keeps_reserved_ones() {
        assert_eq!(
            BodySensorLocation::decode(&[0x01]).unwrap().value,
            BodySensorLocation::Chest
        );
        assert_eq!(
            BodySensorLocation::decode(&[0x05]).unwrap().value.name(),
            "ear_lobe"
        );
        assert_eq!(
            BodySensorLocation::decode(&[0x07]).unwrap().value,
            BodySensorLocation::Reserved(7)
        );
        assert_eq!(
            BodySensorLocation::decode(&[0x02, 0x00]).unwrap().trailing,
            1
        );
        let err = BodySensorLocation::decode(&[]).unwrap_err();
        assert_eq!(
            err,
            DecodeError::Truncated {
                field: "body_sensor_location",
                needed: 1,
                present: 0
            }
        );
    }

    #[test]
    fn control_point_writes_reset_energy_expended() {
        let mut out = [0u8; 1];
        assert_eq!(
            HeartRateControlPoint::ResetEnergyExpended
                .encode(&mut out)
                .unwrap(),
            1
        );
        assert_eq!(out, [0x01]);
        assert_eq!(
            HeartRateControlPoint::decode(&[0x02]).unwrap().value,
            HeartRateControlPoint::Reserved(2)
        );
    }

    fn measurement() -> impl Strategy<Value = HeartRateMeasurement> {
        (
            any::<bool>(),
            any::<u16>(),
            0u8..4,
            proptest::option::of(any::<u16>()),
            proptest::collection::vec(any::<u16>(), 0..=MAX_RR_INTERVALS),
        )
            .prop_map(|(wide, raw, contact, energy, rr)| {
                let (value_format, raw) = if wide {
                    (HeartRateValueFormat::Uint16, raw)
                } else {
                    (HeartRateValueFormat::Uint8, raw & 0xFF)
                };
                HeartRateMeasurement {
                    heart_rate_measurement_value: bpm(i64::from(raw)),
                    value_format,
                    sensor_contact: SensorContact::from_code(contact),
                    energy_expended: energy.map(|kj| {
                        Quantity::decimal(Decimal::new(i64::from(kj), 0), Unit::Kilojoule)
                    }),
                    rr_intervals: rr.into_iter().map(RrInterval).collect(),
                }
            })
    }

    proptest! {
        #[test]
        fn measurement_roundtrips(m in measurement()) {
            // The longest (u16 value and energy) cannot hold all 255 intervals.
            let room = (MAX_VALUE_LEN - announced_len(0x09)) / 2;
            let mut m = m;
            m.rr_intervals.truncate(room);
            roundtrip(&m, Quirks::NONE)?;
        }

        #[test]
        fn body_sensor_location_roundtrips(code in any::<u8>()) {
            roundtrip(&BodySensorLocation::from_code(code), Quirks::NONE)?;
        }

        #[test]
        fn control_point_roundtrips(code in any::<u8>()) {
            roundtrip(&HeartRateControlPoint::from_code(code), Quirks::NONE)?;
        }

        #[test]
        fn decoding_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..600)) {
            let _ = HeartRateMeasurement::decode(&bytes);
            let _ = BodySensorLocation::decode(&bytes);
            let _ = HeartRateControlPoint::decode(&bytes);
        }
    }
}
