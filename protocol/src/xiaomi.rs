//! Xiaomi scales that broadcast each weighing in their advertisements, without a connection:
//! the Mi Smart Scale (XMTZC01HM/XMTZC04HM) as service data on 0x181D and the Mi Body
//! Composition Scale 2 (XMTZC02HM/XMTZC05HM) as service data on 0x181B.
//!
//! These are vendor layouts that borrow SIG service UUIDs, not GATT characteristics, so the
//! types do not implement [`Characteristic`](crate::Characteristic). `decode` takes the service
//! data after the 16-bit UUID. Nothing is published by Xiaomi: the layouts come from openScale,
//! bleparser and Theengs. Every bit no public source explains is kept, so any advertisement
//! re-encodes to the same bytes.
//!
//! Weights are `raw / 200` kg in the kg mode and `raw / 100` lb or jin in the lb and jin modes.
//! Jin (catty) has no UCUM unit: 1 jin is exactly 0.5 kg, so a jin weight is given in kg as
//! `raw × 0.005 kg`, exactly, while [`UnitMode`] keeps the unit the scale displays.
//!
//! The scale's clock is sent as raw bytes ([`ScaleDateTime`]): a scale whose clock was never set
//! sends dates such as 1970-01-30, and a garbled one must not cost the weighing.

use crate::error::{DecodeError, EncodeError};
use crate::float::Decimal;
use crate::macros::code_enum;
use crate::quantity::{Quantity, Unit};
use crate::reading::{DeviceTime, Kind, Reading, ReadingStatus, Readings, ToReadings};
use crate::time::DateTime;
use crate::uuid;
use crate::weight_scale::Fixed;
use crate::wire::{Decoded, Reader, Writer};

const WEIGHT_UNIT: &str =
    "the weight must be in kg in the kg and jin modes, in [lb_av] in the lb mode";
const KILOGRAMS: Fixed = Fixed::new(Unit::Kilogram, Decimal::new(5, -3), WEIGHT_UNIT);
const POUNDS: Fixed = Fixed::new(Unit::Pound, Decimal::new(1, -2), WEIGHT_UNIT);
const OHMS: Fixed = Fixed::new(Unit::Ohm, Decimal::new(1, 0), "impedance must be in Ohm");

/// Unit bits, in the control byte (Mi Smart Scale) or the unit byte (Body Composition Scale 2).
const POUND_BIT: u8 = 1 << 0;
const JIN_BIT: u8 = 1 << 4;

code_enum! {
    /// The unit the scale displays, from its lb bit (0) and jin bit (4). Both bits set is
    /// `Reserved(3)`: no source explains it.
    pub enum UnitMode: u8 {
        Kilogram = 0 => "kg",
        Pound = 1 => "lb",
        Jin = 2 => "jin",
    }
}

impl UnitMode {
    fn from_byte(byte: u8) -> Self {
        Self::from_code((byte & POUND_BIT) | ((byte & JIN_BIT) >> 3))
    }

    fn bits(self, field: &'static str) -> Result<u8, EncodeError> {
        match self.code() {
            code @ 0..=3 => Ok((code & 1) | ((code & 2) << 3)),
            _ => Err(EncodeError::Unrepresentable {
                field,
                reason: "the unit mode is two bits: kg, lb, jin, or both bits (reserved 3)",
            }),
        }
    }
}

/// `raw` as a weight in kg or `[lb_av]`.
fn weight(raw: u16, pounds: bool) -> Quantity {
    if pounds {
        POUNDS.decode(raw)
    } else {
        KILOGRAMS.decode(raw)
    }
}

fn raw_weight(q: &Quantity, pounds: bool) -> Result<u16, EncodeError> {
    let format = if pounds { POUNDS } else { KILOGRAMS };
    format.encode(q, "weight", u16::MAX)
}

/// Named bits and reserved bits of one byte must not overlap, or encoding would be ambiguous.
fn check_reserved(reserved: u8, named: u8, field: &'static str) -> Result<(), EncodeError> {
    if reserved & named != 0 {
        return Err(EncodeError::Unrepresentable {
            field,
            reason: "reserved bits overlap bits that have a field of their own",
        });
    }
    Ok(())
}

/// The scale's clock as sent: year (u16), month, day, hours, minutes, seconds, any values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
pub struct ScaleDateTime {
    pub year: u16,
    pub month: u8,
    pub day: u8,
    pub hours: u8,
    pub minutes: u8,
    pub seconds: u8,
}

impl ScaleDateTime {
    /// Bytes on the wire.
    pub const LEN: usize = 7;

    /// The raw fields of `dt` (0 for a part "not known").
    pub fn from_date_time(dt: &DateTime) -> Self {
        Self {
            year: dt.year.map_or(0, |v| v.get()),
            month: dt.month.map_or(0, |v| v.get()),
            day: dt.day.map_or(0, |v| v.get()),
            hours: dt.hours,
            minutes: dt.minutes,
            seconds: dt.seconds,
        }
    }

    /// The clock as a SIG Date Time (a zero year, month or day meaning "not known"); `None`
    /// when a field is out of range.
    pub fn date_time(&self) -> Option<DateTime> {
        let [y0, y1] = self.year.to_le_bytes();
        let bytes = [
            y0,
            y1,
            self.month,
            self.day,
            self.hours,
            self.minutes,
            self.seconds,
        ];
        DateTime::decode(&bytes).ok().map(|d| d.value)
    }

    fn read(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(Self {
            year: r.u16("date_time")?,
            month: r.u8("date_time")?,
            day: r.u8("date_time")?,
            hours: r.u8("date_time")?,
            minutes: r.u8("date_time")?,
            seconds: r.u8("date_time")?,
        })
    }

    fn write(&self, w: &mut Writer<'_>) -> Result<(), EncodeError> {
        w.u16(self.year)?;
        w.bytes(&[self.month, self.day, self.hours, self.minutes, self.seconds])
    }
}

/// The reading of a stabilized weighing still on the scale, else nothing: the scale
/// advertises while the weight settles and after the person steps off, and those values are not
/// measurements. An unexplained unit (both unit bits) marks the reading questionable.
fn weight_readings(
    stabilized: bool,
    removed: bool,
    unit_mode: UnitMode,
    weight: Quantity,
    impedance: Option<Quantity>,
    date_time: &ScaleDateTime,
) -> Readings {
    let mut out = Readings::new();
    if !stabilized || removed {
        return out;
    }
    let status = ReadingStatus {
        questionable: matches!(unit_mode, UnitMode::Reserved(_)),
        ..ReadingStatus::default()
    };
    let time = DeviceTime::from_time_stamp(date_time.date_time());
    let reading = |kind, q| Reading::new(kind, q).at(time).status(status);
    let _ = out.push(reading(Kind::BodyWeight, weight));
    if let Some(impedance) = impedance {
        let _ = out.push(reading(Kind::Impedance, impedance));
    }
    out
}

const V1_STABILIZED: u8 = 1 << 5;
const V1_REMOVED: u8 = 1 << 7;
const V1_NAMED: u8 = POUND_BIT | JIN_BIT | V1_STABILIZED | V1_REMOVED;

/// Mi Smart Scale (XMTZC01HM, XMTZC04HM) service data on 0x181D, 10 bytes: control byte,
/// weight (u16), date time.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
pub struct MiSmartScale {
    /// Control bits 0 (lb) and 4 (jin).
    pub unit_mode: UnitMode,
    /// Control bit 5: the weight has settled.
    pub stabilized: bool,
    /// Control bit 7: the person stepped off; the weight is the last one shown.
    pub weight_removed: bool,
    /// Control bits 1, 2, 3 and 6, which no source explains; reported as reserved flags.
    pub reserved_bits: u8,
    /// In kg (kg and jin modes) or `[lb_av]` (lb mode, and both unit bits, as bleparser reads them).
    pub weight: Quantity,
    pub date_time: ScaleDateTime,
}

impl MiSmartScale {
    /// The 16-bit service UUID the service data is sent under.
    pub const SERVICE_UUID: u16 = uuid::WEIGHT_SCALE_SERVICE;
    /// Length of the service data.
    pub const LEN: usize = 10;

    fn pounds(unit_mode: UnitMode) -> bool {
        matches!(unit_mode, UnitMode::Pound | UnitMode::Reserved(_))
    }

    /// Decodes the service data (without the UUID).
    pub fn decode(service_data: &[u8]) -> Result<Decoded<Self>, DecodeError> {
        let mut r = Reader::new(service_data);
        r.announce(Self::LEN);
        let control = r.u8("control_byte")?;
        let unit_mode = UnitMode::from_byte(control);
        let weight = weight(r.u16("weight")?, Self::pounds(unit_mode));
        let date_time = ScaleDateTime::read(&mut r)?;
        let reserved_bits = control & !V1_NAMED;
        let value = Self {
            unit_mode,
            stabilized: control & V1_STABILIZED != 0,
            weight_removed: control & V1_REMOVED != 0,
            reserved_bits,
            weight,
            date_time,
        };
        Ok(r.finish(value, u32::from(reserved_bits)))
    }

    /// Encodes the service data (without the UUID); returns the length written.
    pub fn encode(&self, out: &mut [u8]) -> Result<usize, EncodeError> {
        check_reserved(self.reserved_bits, V1_NAMED, "reserved_bits")?;
        let control = self.unit_mode.bits("unit_mode")?
            | if self.stabilized { V1_STABILIZED } else { 0 }
            | if self.weight_removed { V1_REMOVED } else { 0 }
            | self.reserved_bits;
        let raw = raw_weight(&self.weight, Self::pounds(self.unit_mode))?;
        let mut w = Writer::new(out);
        w.reserve(Self::LEN)?;
        w.u8(control)?;
        w.u16(raw)?;
        self.date_time.write(&mut w)?;
        Ok(w.len())
    }
}

impl ToReadings for MiSmartScale {
    /// A body weight, only for a stabilized weighing not yet removed; otherwise none.
    fn readings(&self) -> Readings {
        weight_readings(
            self.stabilized,
            self.weight_removed,
            self.unit_mode,
            self.weight,
            None,
            &self.date_time,
        )
    }
}

const V2_IMPEDANCE: u8 = 1 << 1;
const V2_STABILIZED: u8 = 1 << 5;
const V2_BIT6: u8 = 1 << 6;
const V2_REMOVED: u8 = 1 << 7;
const V2_CONTROL_NAMED: u8 = V2_IMPEDANCE | V2_STABILIZED | V2_BIT6 | V2_REMOVED;
const V2_UNIT_NAMED: u8 = POUND_BIT | JIN_BIT;

/// Mi Body Composition Scale 2 (XMTZC02HM, XMTZC05HM) service data on 0x181B, 13 bytes: unit
/// byte, control byte, date time, impedance (u16, Ohm), weight (u16).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
pub struct MiBodyCompositionScale {
    /// Unit-byte bits 0 (lb) and 4 (jin). bleparser reads the whole byte instead: 2 kg, 3 lb,
    /// jin bit 4 first; both agree on the bytes real scales send.
    pub unit_mode: UnitMode,
    /// Unit-byte bits other than 0 and 4 (real scales set bit 1); reported as reserved flags.
    pub unit_reserved_bits: u8,
    /// Control bit 1: `impedance` holds a measurement.
    pub impedance_present: bool,
    /// Control bit 5: the weight has settled.
    pub stabilized: bool,
    /// Control bit 6, meaning unknown: openScale reads it both as "date invalid" (and drops the
    /// weighing) and as "catty unit", so it is kept raw and not interpreted.
    pub control_bit6: bool,
    /// Control bit 7: the person stepped off.
    pub weight_removed: bool,
    /// Control bits 0, 2, 3 and 4, which no source explains; reported as reserved flags
    /// (shifted left by 8, after the unit byte's).
    pub control_reserved_bits: u8,
    pub date_time: ScaleDateTime,
    /// In Ohm, as sent even when `impedance_present` is clear (then scales send e.g. 0 or 65533).
    pub impedance: Quantity,
    /// In kg (kg and jin modes, and both unit bits, as bleparser reads them) or `[lb_av]`.
    pub weight: Quantity,
}

impl MiBodyCompositionScale {
    /// The 16-bit service UUID the service data is sent under.
    pub const SERVICE_UUID: u16 = uuid::BODY_COMPOSITION_SERVICE;
    /// Length of the service data.
    pub const LEN: usize = 13;

    fn pounds(unit_mode: UnitMode) -> bool {
        unit_mode == UnitMode::Pound
    }

    /// Decodes the service data (without the UUID).
    pub fn decode(service_data: &[u8]) -> Result<Decoded<Self>, DecodeError> {
        let mut r = Reader::new(service_data);
        r.announce(Self::LEN);
        let unit = r.u8("unit_byte")?;
        let control = r.u8("control_byte")?;
        let date_time = ScaleDateTime::read(&mut r)?;
        let impedance = OHMS.decode(r.u16("impedance")?);
        let unit_mode = UnitMode::from_byte(unit);
        let weight = weight(r.u16("weight")?, Self::pounds(unit_mode));
        let unit_reserved_bits = unit & !V2_UNIT_NAMED;
        let control_reserved_bits = control & !V2_CONTROL_NAMED;
        let value = Self {
            unit_mode,
            unit_reserved_bits,
            impedance_present: control & V2_IMPEDANCE != 0,
            stabilized: control & V2_STABILIZED != 0,
            control_bit6: control & V2_BIT6 != 0,
            weight_removed: control & V2_REMOVED != 0,
            control_reserved_bits,
            date_time,
            impedance,
            weight,
        };
        let reserved = u32::from(unit_reserved_bits) | u32::from(control_reserved_bits) << 8;
        Ok(r.finish(value, reserved))
    }

    /// Encodes the service data (without the UUID); returns the length written.
    pub fn encode(&self, out: &mut [u8]) -> Result<usize, EncodeError> {
        check_reserved(self.unit_reserved_bits, V2_UNIT_NAMED, "unit_reserved_bits")?;
        check_reserved(
            self.control_reserved_bits,
            V2_CONTROL_NAMED,
            "control_reserved_bits",
        )?;
        let unit = self.unit_mode.bits("unit_mode")? | self.unit_reserved_bits;
        let bit = |set: bool, mask: u8| if set { mask } else { 0 };
        let control = bit(self.impedance_present, V2_IMPEDANCE)
            | bit(self.stabilized, V2_STABILIZED)
            | bit(self.control_bit6, V2_BIT6)
            | bit(self.weight_removed, V2_REMOVED)
            | self.control_reserved_bits;
        let impedance = OHMS.encode(&self.impedance, "impedance", u16::MAX)?;
        let raw = raw_weight(&self.weight, Self::pounds(self.unit_mode))?;
        let mut w = Writer::new(out);
        w.reserve(Self::LEN)?;
        w.u8(unit)?;
        w.u8(control)?;
        self.date_time.write(&mut w)?;
        w.u16(impedance)?;
        w.u16(raw)?;
        Ok(w.len())
    }
}

impl ToReadings for MiBodyCompositionScale {
    /// A body weight, plus the impedance when present, only for a stabilized weighing not yet
    /// removed; otherwise none. `control_bit6` is ignored (see its documentation).
    fn readings(&self) -> Readings {
        weight_readings(
            self.stabilized,
            self.weight_removed,
            self.unit_mode,
            self.weight,
            self.impedance_present.then_some(self.impedance),
            &self.date_time,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ReadingValue;
    use proptest::prelude::*;

    fn q(mantissa: i64, exponent: i8, unit: Unit) -> Quantity {
        Quantity::decimal(Decimal::new(mantissa, exponent), unit)
    }

    fn value(reading: &Reading) -> Quantity {
        match reading.value {
            ReadingValue::Single(q) => q,
            ReadingValue::BloodPressure { .. } => panic!("not a single value"),
        }
    }

    fn v1(hex: &[u8]) -> MiSmartScale {
        let d = MiSmartScale::decode(hex).unwrap();
        assert_eq!(d.trailing, 0);
        let mut out = [0u8; 10];
        assert_eq!(d.value.encode(&mut out), Ok(10));
        assert_eq!(out, hex, "re-encodes to the same bytes");
        d.value
    }

    fn v2(hex: &[u8]) -> MiBodyCompositionScale {
        let d = MiBodyCompositionScale::decode(hex).unwrap();
        assert_eq!(d.trailing, 0);
        let mut out = [0u8; 13];
        assert_eq!(d.value.encode(&mut out), Ok(13));
        assert_eq!(out, hex, "re-encodes to the same bytes");
        d.value
    }

    // The weights below were checked against bleparser 3.x `parse_miscale` on the same bytes.

    #[test]
    fn mi_smart_scale_stabilized_kg_weight_agrees_with_bleparser() {
        // 22 98 3a ...: kg, stabilized (bit 5) and an unexplained bit 1; bleparser: 75.0 kg.
        let m = v1(&[0x22, 0x98, 0x3A, 0xE8, 0x07, 0x03, 0x05, 0x08, 0x1E, 0x0F]);
        assert_eq!(m.unit_mode, UnitMode::Kilogram);
        assert_eq!(m.weight, q(75_000, -3, Unit::Kilogram));
        assert_eq!(m.reserved_bits, 0x02);
        assert_eq!(
            m.date_time.date_time(),
            DateTime::new(2024, 3, 5, 8, 30, 15)
        );
        let readings = m.readings();
        assert_eq!(readings.len(), 1);
        assert_eq!(readings[0].kind, Kind::BodyWeight);
        assert_eq!(value(&readings[0]), q(75_000, -3, Unit::Kilogram));
        assert!(readings[0].time.known().is_some());
    }

    #[test]
    fn mi_smart_scale_pound_weight_agrees_with_bleparser() {
        // bleparser: 162.79 lbs.
        let m = v1(&[0x23, 0x97, 0x3F, 0xE8, 0x07, 0x03, 0x05, 0x08, 0x1E, 0x0F]);
        assert_eq!(m.unit_mode, UnitMode::Pound);
        assert_eq!(m.weight, q(16_279, -2, Unit::Pound));
        assert_eq!(m.readings().len(), 1);
    }

    #[test]
    fn mi_smart_scale_jin_weight_is_given_in_kg_and_unsettled_weighings_give_no_reading() {
        // bleparser: 150.0 jin, not stabilized: 150 jin = 75 kg.
        let m = v1(&[0x12, 0x98, 0x3A, 0xE8, 0x07, 0x03, 0x05, 0x08, 0x1E, 0x0F]);
        assert_eq!(m.unit_mode, UnitMode::Jin);
        assert_eq!(m.weight, q(75_000, -3, Unit::Kilogram));
        assert!(!m.stabilized);
        assert!(m.readings().is_empty());
    }

    #[test]
    fn mi_smart_scale_removed_weight_gives_no_reading() {
        // bleparser: 75.0 kg, "weight removed", no "weight" key.
        let m = v1(&[0xA2, 0x98, 0x3A, 0xE8, 0x07, 0x03, 0x05, 0x08, 0x1E, 0x0F]);
        assert!(m.stabilized && m.weight_removed);
        assert!(m.readings().is_empty());
    }

    #[test]
    fn mi_smart_scale_with_both_unit_bits_reads_pounds_as_questionable() {
        let m = v1(&[0x31, 0x10, 0x27, 0xE8, 0x07, 0x03, 0x05, 0x08, 0x1E, 0x0F]);
        assert_eq!(m.unit_mode, UnitMode::Reserved(3));
        assert_eq!(m.weight, q(10_000, -2, Unit::Pound));
        assert!(m.readings()[0].status.questionable);
    }

    #[test]
    fn body_composition_scale_real_advertisement_agrees_with_bleparser() {
        // Theengs' sample 0224b207011e042522fdffcc0b: kg, stabilized, no impedance (bit 1 clear,
        // 0xFFFD sent), clock never set (1970-01-30 04:37:34). bleparser: 15.1 kg.
        let m = v2(&[
            0x02, 0x24, 0xB2, 0x07, 0x01, 0x1E, 0x04, 0x25, 0x22, 0xFD, 0xFF, 0xCC, 0x0B,
        ]);
        assert_eq!(m.unit_mode, UnitMode::Kilogram);
        assert_eq!(m.weight, q(15_100, -3, Unit::Kilogram));
        assert!(m.stabilized && !m.impedance_present && !m.control_bit6);
        assert_eq!(m.impedance, q(65_533, 0, Unit::Ohm));
        assert_eq!(
            (m.unit_reserved_bits, m.control_reserved_bits),
            (0x02, 0x04)
        );
        let readings = m.readings();
        assert_eq!(readings.len(), 1);
        assert_eq!(value(&readings[0]), q(15_100, -3, Unit::Kilogram));
        assert_eq!(readings[0].time.known().map(|t| t.year()), Some(1970));
    }

    #[test]
    fn body_composition_scale_pounds_with_impedance_agree_with_bleparser() {
        // bleparser: 160.0 lbs, impedance 500.
        let m = v2(&[
            0x03, 0x26, 0xE8, 0x07, 0x03, 0x05, 0x0A, 0x0B, 0x0C, 0xF4, 0x01, 0x80, 0x3E,
        ]);
        assert_eq!(m.unit_mode, UnitMode::Pound);
        assert_eq!(m.weight, q(16_000, -2, Unit::Pound));
        let readings = m.readings();
        assert_eq!(readings.len(), 2);
        // 160.00 lb = 72.575 kg to five digits.
        assert_eq!(value(&readings[0]), q(72_575, -3, Unit::Kilogram));
        assert_eq!(readings[1].kind, Kind::Impedance);
        assert_eq!(value(&readings[1]), q(500, 0, Unit::Ohm));
    }

    #[test]
    fn body_composition_scale_with_both_unit_bits_reads_jin_as_bleparser_does() {
        // bleparser checks the jin bit first: 40.0 jin, i.e. 20 kg.
        let m = v2(&[
            0x13, 0x22, 0xE8, 0x07, 0x03, 0x05, 0x0A, 0x0B, 0x0C, 0x00, 0x00, 0xA0, 0x0F,
        ]);
        assert_eq!(m.unit_mode, UnitMode::Reserved(3));
        assert_eq!(m.weight, q(20_000, -3, Unit::Kilogram));
        assert!(m.readings()[0].status.questionable);
    }

    #[test]
    fn body_composition_scale_removed_jin_weight_gives_no_reading() {
        // bleparser: 40.0 jin, weight removed. 40 jin = 20 kg.
        let m = v2(&[
            0x12, 0xA6, 0xE8, 0x07, 0x03, 0x05, 0x0A, 0x0B, 0x0C, 0x00, 0x00, 0xA0, 0x0F,
        ]);
        assert_eq!(m.unit_mode, UnitMode::Jin);
        assert_eq!(m.weight, q(20_000, -3, Unit::Kilogram));
        assert!(m.readings().is_empty());
    }

    #[test]
    fn body_composition_scale_keeps_bit6_raw_and_still_reads_the_weight() {
        let m = v2(&[
            0x02, 0x62, 0xE8, 0x07, 0x03, 0x05, 0x0A, 0x0B, 0x0C, 0xF4, 0x01, 0x98, 0x3A,
        ]);
        assert!(m.control_bit6);
        assert_eq!(m.readings().len(), 2);
    }

    #[test]
    fn reports_unexplained_bits_as_reserved_flags() {
        let d = MiSmartScale::decode(&[0x4E, 0, 0, 0, 0, 0, 0, 0, 0, 0]).unwrap();
        assert_eq!(d.reserved_flags, 0x4E);
        let d =
            MiBodyCompositionScale::decode(&[0x02, 0x24, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]).unwrap();
        assert_eq!(d.reserved_flags, 0x0402);
    }

    #[test]
    fn an_out_of_range_clock_is_kept_raw_and_gives_an_absent_time() {
        let m = v1(&[0x22, 0x98, 0x3A, 0xFF, 0xFF, 0x0D, 0x20, 0x19, 0x3C, 0x3C]);
        assert_eq!(m.date_time.month, 13);
        assert_eq!(m.date_time.date_time(), None);
        assert_eq!(m.readings()[0].time, DeviceTime::Absent);
    }

    #[test]
    fn names_the_missing_field_with_byte_counts() {
        let err = MiSmartScale::decode(&[0x22, 0x98, 0x3A, 0xE8, 0x07, 0x03, 0x05, 0x08, 0x1E])
            .unwrap_err();
        assert_eq!(
            err,
            DecodeError::Truncated {
                field: "date_time",
                needed: 10,
                present: 9
            }
        );
        let err = MiBodyCompositionScale::decode(&[0x02, 0x24, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0])
            .unwrap_err();
        assert_eq!(
            err,
            DecodeError::Truncated {
                field: "weight",
                needed: 13,
                present: 12
            }
        );
    }

    #[test]
    fn accepts_and_reports_trailing_bytes() {
        let d = MiSmartScale::decode(&[0x22, 0x98, 0x3A, 0, 0, 0, 0, 0, 0, 0, 0xAA]).unwrap();
        assert_eq!(d.trailing, 1);
    }

    #[test]
    fn encoder_refuses_a_weight_unit_that_contradicts_the_unit_mode() {
        let mut m = v1(&[0x22, 0x98, 0x3A, 0xE8, 0x07, 0x03, 0x05, 0x08, 0x1E, 0x0F]);
        m.unit_mode = UnitMode::Pound;
        let err = m.encode(&mut [0u8; 10]).unwrap_err();
        assert!(matches!(
            err,
            EncodeError::Unrepresentable {
                field: "weight",
                ..
            }
        ));
        m.unit_mode = UnitMode::Kilogram;
        m.reserved_bits = V1_STABILIZED;
        let err = m.encode(&mut [0u8; 10]).unwrap_err();
        assert!(matches!(
            err,
            EncodeError::Unrepresentable {
                field: "reserved_bits",
                ..
            }
        ));
        m.reserved_bits = 0;
        m.weight = q(75_001, -3, Unit::Kilogram);
        assert!(m.encode(&mut [0u8; 10]).is_err());
        m.weight = q(75_000, -3, Unit::Kilogram);
        assert_eq!(
            m.encode(&mut [0u8; 9]),
            Err(EncodeError::BufferTooSmall {
                needed: 10,
                available: 9
            })
        );
    }

    proptest! {
        #[test]
        fn mi_smart_scale_reencodes_every_advertisement_exactly(bytes in any::<[u8; 10]>()) {
            let d = MiSmartScale::decode(&bytes).unwrap();
            let mut out = [0u8; 10];
            prop_assert_eq!(d.value.encode(&mut out), Ok(10));
            prop_assert_eq!(out, bytes);
            prop_assert_eq!(MiSmartScale::decode(&out).unwrap().value, d.value);
        }

        #[test]
        fn body_composition_scale_reencodes_every_advertisement_exactly(bytes in any::<[u8; 13]>()) {
            let d = MiBodyCompositionScale::decode(&bytes).unwrap();
            let mut out = [0u8; 13];
            prop_assert_eq!(d.value.encode(&mut out), Ok(13));
            prop_assert_eq!(out, bytes);
            prop_assert_eq!(MiBodyCompositionScale::decode(&out).unwrap().value, d.value);
        }

        #[test]
        fn decoding_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..20)) {
            let _ = MiSmartScale::decode(&bytes).map(|d| d.value.readings());
            let _ = MiBodyCompositionScale::decode(&bytes).map(|d| d.value.readings());
        }
    }
}
