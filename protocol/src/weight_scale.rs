//! Weight Scale Service (0x181D): Weight Measurement (0x2A9D) and Weight Scale Feature (0x2A9E).
//!
//! Also the fixed-point helpers the Body Composition Service shares: both services send masses in
//! steps of 0.005 kg or 0.01 lb and heights in steps of 0.001 m or 0.1 in, whatever resolution the
//! Feature characteristic announces (the resolution says how precise the scale is, not how the
//! field is scaled).

use crate::characteristic::Characteristic;
use crate::error::{DecodeError, EncodeError};
use crate::float::{Decimal, MedValue, Special};
use crate::macros::code_enum;
use crate::quantity::{Quantity, Unit};
use crate::quirks::Quirks;
use crate::reading::{DeviceTime, Kind, Reading, Readings, ToReadings};
use crate::time::DateTime;
use crate::uuid;
use crate::wire::{Decoded, Reader, Writer};

const IMPERIAL: u8 = 1 << 0;
const TIME_STAMP: u8 = 1 << 1;
const USER_ID: u8 = 1 << 2;
const BMI_AND_HEIGHT: u8 = 1 << 3;
const DEFINED_FLAGS: u8 = 0x0F;

/// Raw weight meaning "Measurement Unsuccessful".
const UNSUCCESSFUL: u16 = 0xFFFF;

/// A uint16 fixed-point field: `raw × step` in `unit`.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Fixed {
    unit: Unit,
    step: Decimal,
    /// Why a quantity in another unit is refused, for the encoder's error.
    wrong_unit: &'static str,
}

impl Fixed {
    pub(crate) const fn new(unit: Unit, step: Decimal, wrong_unit: &'static str) -> Self {
        Self {
            unit,
            step,
            wrong_unit,
        }
    }

    pub(crate) fn decode(self, raw: u16) -> Quantity {
        Quantity::decimal(Decimal::scaled(i64::from(raw), self.step), self.unit)
    }

    /// The raw value of `q`, refusing specials, other units, values between steps and raw
    /// values above `max` (which the caller lowers when 0xFFFF is a special value).
    pub(crate) fn encode(
        self,
        q: &Quantity,
        field: &'static str,
        max: u16,
    ) -> Result<u16, EncodeError> {
        let err = |reason| EncodeError::Unrepresentable { field, reason };
        if q.unit != self.unit {
            return Err(err(self.wrong_unit));
        }
        let MedValue::Number(d) = q.value else {
            return Err(err("this field has no special values"));
        };
        let raw = d
            .as_multiple_of(self.step)
            .ok_or(err("not a multiple of the field's resolution"))?;
        u16::try_from(raw)
            .ok()
            .filter(|&r| r <= max)
            .ok_or(err("outside the field's range"))
    }
}

const MASS_UNIT: &str = "masses must be in kg (SI) or [lb_av] (imperial), in one unit system";
const HEIGHT_UNIT: &str = "height must be in m with kg, or in [in_i] with [lb_av]";

/// Bit 0 of the WSS and BCS flags: SI (kg, m) or imperial (lb, in).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum UnitSystem {
    Si,
    Imperial,
}

impl UnitSystem {
    pub(crate) const fn from_flag(imperial: bool) -> Self {
        if imperial { Self::Imperial } else { Self::Si }
    }

    pub(crate) const fn is_imperial(self) -> bool {
        matches!(self, Self::Imperial)
    }

    /// The system a mass or height unit belongs to; `None` for any other unit.
    pub(crate) const fn of(unit: Unit) -> Option<Self> {
        match unit {
            Unit::Kilogram | Unit::Metre => Some(Self::Si),
            Unit::Pound | Unit::Inch => Some(Self::Imperial),
            _ => None,
        }
    }

    /// 0.005 kg or 0.01 lb.
    pub(crate) const fn mass(self) -> Fixed {
        match self {
            Self::Si => Fixed::new(Unit::Kilogram, Decimal::new(5, -3), MASS_UNIT),
            Self::Imperial => Fixed::new(Unit::Pound, Decimal::new(1, -2), MASS_UNIT),
        }
    }

    /// 0.001 m or 0.1 in.
    pub(crate) const fn height(self) -> Fixed {
        match self {
            Self::Si => Fixed::new(Unit::Metre, Decimal::new(1, -3), HEIGHT_UNIT),
            Self::Imperial => Fixed::new(Unit::Inch, Decimal::new(1, -1), HEIGHT_UNIT),
        }
    }
}

/// BMI: 0.1 kg/m2 in both unit systems.
const BMI: Fixed = Fixed::new(
    Unit::KilogramPerSquareMetre,
    Decimal::new(1, -1),
    "BMI must be in kg/m2",
);

fn announced_len(flags: u8) -> usize {
    let mut len = 1 + 2;
    if flags & TIME_STAMP != 0 {
        len += DateTime::LEN;
    }
    if flags & USER_ID != 0 {
        len += 1;
    }
    if flags & BMI_AND_HEIGHT != 0 {
        len += 4;
    }
    len
}

/// Weight Measurement (0x2A9D), indicated once per weighing.
///
/// A "Measurement Unsuccessful" weight (raw 0xFFFF) is the 11073 special NaN in the unit the
/// flags name, so it round-trips and serializes as `{"value":null,"unit":"kg","special":"NaN"}`.
/// The specification then disables every optional field but the time stamp and the user ID: the
/// encoder enforces that; the decoder keeps whatever a device sends anyway.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
pub struct WeightMeasurement {
    /// In kg or `[lb_av]`; its unit selects the unit system of the whole value.
    pub weight: Quantity,
    pub time_stamp: Option<DateTime>,
    /// 255 means "unknown user".
    pub user_id: Option<u8>,
    /// Sent together with `height`: both or neither.
    pub bmi: Option<Quantity>,
    /// In m with a weight in kg, in `[in_i]` with a weight in `[lb_av]`.
    pub height: Option<Quantity>,
}

impl WeightMeasurement {
    /// True when the scale reports "Measurement Unsuccessful" (weight 0xFFFF).
    pub fn measurement_unsuccessful(&self) -> bool {
        matches!(self.weight.value, MedValue::Special(_))
    }
}

impl Characteristic for WeightMeasurement {
    const UUID: u16 = uuid::WEIGHT_MEASUREMENT;
    const NAME: &'static str = "weight_measurement";
    const MAX_LEN: usize = 15;

    fn decode_with(bytes: &[u8], _quirks: Quirks) -> Result<Decoded<Self>, DecodeError> {
        let mut r = Reader::new(bytes);
        let flags = r.u8("flags")?;
        r.announce(announced_len(flags));
        let system = UnitSystem::from_flag(flags & IMPERIAL != 0);
        let raw = r.u16("weight")?;
        let weight = if raw == UNSUCCESSFUL {
            Quantity::special(Special::NaN, system.mass().unit)
        } else {
            system.mass().decode(raw)
        };
        let time_stamp = if flags & TIME_STAMP != 0 {
            Some(DateTime::read(&mut r, "time_stamp")?)
        } else {
            None
        };
        let user_id = if flags & USER_ID != 0 {
            Some(r.u8("user_id")?)
        } else {
            None
        };
        let (bmi, height) = if flags & BMI_AND_HEIGHT != 0 {
            let bmi = BMI.decode(r.u16("bmi")?);
            let height = system.height().decode(r.u16("height")?);
            (Some(bmi), Some(height))
        } else {
            (None, None)
        };
        let value = Self {
            weight,
            time_stamp,
            user_id,
            bmi,
            height,
        };
        Ok(r.finish(value, u32::from(flags & !DEFINED_FLAGS)))
    }

    fn encode_with(&self, out: &mut [u8], _quirks: Quirks) -> Result<usize, EncodeError> {
        let system = UnitSystem::of(self.weight.unit).ok_or(EncodeError::Unrepresentable {
            field: "weight",
            reason: "weight must be in kg or [lb_av]",
        })?;
        let raw_weight = match self.weight.value {
            MedValue::Special(Special::NaN) => {
                if self.weight.unit != system.mass().unit {
                    return Err(EncodeError::Unrepresentable {
                        field: "weight",
                        reason: "weight must be in kg or [lb_av]",
                    });
                }
                UNSUCCESSFUL
            }
            MedValue::Special(_) => {
                return Err(EncodeError::Unrepresentable {
                    field: "weight",
                    reason: "the only special weight is NaN (measurement unsuccessful)",
                });
            }
            MedValue::Number(_) => {
                system
                    .mass()
                    .encode(&self.weight, "weight", UNSUCCESSFUL - 1)?
            }
        };
        let bmi_and_height = match (&self.bmi, &self.height) {
            (Some(bmi), Some(height)) => Some((bmi, height)),
            (None, None) => None,
            (_, None) => {
                return Err(EncodeError::Unrepresentable {
                    field: "height",
                    reason: "BMI and height are sent together",
                });
            }
            (None, _) => {
                return Err(EncodeError::Unrepresentable {
                    field: "bmi",
                    reason: "BMI and height are sent together",
                });
            }
        };
        if raw_weight == UNSUCCESSFUL && bmi_and_height.is_some() {
            return Err(EncodeError::Unrepresentable {
                field: "bmi",
                reason: "an unsuccessful measurement carries no BMI or height",
            });
        }
        let mut flags = if system.is_imperial() { IMPERIAL } else { 0 };
        if self.time_stamp.is_some() {
            flags |= TIME_STAMP;
        }
        if self.user_id.is_some() {
            flags |= USER_ID;
        }
        if bmi_and_height.is_some() {
            flags |= BMI_AND_HEIGHT;
        }
        let mut w = Writer::new(out);
        w.reserve(announced_len(flags))?;
        w.u8(flags)?;
        w.u16(raw_weight)?;
        if let Some(ts) = &self.time_stamp {
            ts.write(&mut w, "time_stamp")?;
        }
        if let Some(user) = self.user_id {
            w.u8(user)?;
        }
        if let Some((bmi, height)) = bmi_and_height {
            w.u16(BMI.encode(bmi, "bmi", u16::MAX)?)?;
            w.u16(system.height().encode(height, "height", u16::MAX)?)?;
        }
        Ok(w.len())
    }
}

impl ToReadings for WeightMeasurement {
    /// Weight, then BMI and height. An unsuccessful weight gives one reading, its special value
    /// flagged `measurement_unsuccessful`; a BMI or height sent with it anyway is dropped, since
    /// the specification disables them.
    fn readings(&self) -> Readings {
        let time = DeviceTime::from_time_stamp(self.time_stamp);
        let reading = |kind, q| Reading::new(kind, q).at(time).user(self.user_id);
        let mut out = Readings::new();
        let mut weight = reading(Kind::BodyWeight, self.weight);
        if self.measurement_unsuccessful() {
            weight.status.measurement_unsuccessful = true;
            let _ = out.push(weight);
            return out;
        }
        let _ = out.push(weight);
        if let Some(bmi) = self.bmi {
            let _ = out.push(reading(Kind::BodyMassIndex, bmi));
        }
        if let Some(height) = self.height {
            let _ = out.push(reading(Kind::BodyHeight, height));
        }
        out
    }
}

code_enum! {
    /// Weight (or mass) measurement resolution of the Weight Scale and Body Composition Feature
    /// characteristics: how precise the scale is, in kg or lb depending on the unit system.
    #[derive(Default)]
    pub enum WeightResolution: u8 {
        #[default]
        NotSpecified = 0 => "not_specified",
        Kg0_5OrLb1 = 1 => "0_5_kg_or_1_lb",
        Kg0_2OrLb0_5 = 2 => "0_2_kg_or_0_5_lb",
        Kg0_1OrLb0_2 = 3 => "0_1_kg_or_0_2_lb",
        Kg0_05OrLb0_1 = 4 => "0_05_kg_or_0_1_lb",
        Kg0_02OrLb0_05 = 5 => "0_02_kg_or_0_05_lb",
        Kg0_01OrLb0_02 = 6 => "0_01_kg_or_0_02_lb",
        Kg0_005OrLb0_01 = 7 => "0_005_kg_or_0_01_lb",
    }
}

code_enum! {
    /// Height measurement resolution of the Weight Scale and Body Composition Feature
    /// characteristics, in m or in depending on the unit system.
    #[derive(Default)]
    pub enum HeightResolution: u8 {
        #[default]
        NotSpecified = 0 => "not_specified",
        M0_01OrIn1 = 1 => "0_01_m_or_1_in",
        M0_005OrIn0_5 = 2 => "0_005_m_or_0_5_in",
        M0_001OrIn0_1 = 3 => "0_001_m_or_0_1_in",
    }
}

/// `code` placed at `shift` in a field of `width` bits; an error for reserved codes, which a
/// device must not announce (codes too wide for the field could not be sent at all).
fn resolution_bits(
    code: u8,
    reserved: bool,
    shift: u32,
    width: u32,
    field: &'static str,
) -> Result<u32, EncodeError> {
    if reserved {
        return Err(EncodeError::Unrepresentable {
            field,
            reason: "reserved resolution codes are not sent",
        });
    }
    Ok((u32::from(code) & ((1 << width) - 1)) << shift)
}

impl WeightResolution {
    /// The 4-bit field of a feature value, at `shift`; reserved codes are refused.
    pub(crate) fn feature_bits(self, shift: u32, field: &'static str) -> Result<u32, EncodeError> {
        resolution_bits(
            self.code(),
            matches!(self, Self::Reserved(_)),
            shift,
            4,
            field,
        )
    }
}

impl HeightResolution {
    /// The 3-bit field of a feature value, at `shift`; reserved codes are refused.
    pub(crate) fn feature_bits(self, shift: u32, field: &'static str) -> Result<u32, EncodeError> {
        resolution_bits(
            self.code(),
            matches!(self, Self::Reserved(_)),
            shift,
            3,
            field,
        )
    }
}

/// Weight Scale Feature (0x2A9E): what the scale sends and how precise it is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
pub struct WeightScaleFeature {
    pub time_stamp_supported: bool,
    pub multiple_users_supported: bool,
    pub bmi_supported: bool,
    /// Bits 3-6.
    pub weight_resolution: WeightResolution,
    /// Bits 7-9.
    pub height_resolution: HeightResolution,
}

impl WeightScaleFeature {
    /// The bits this struct names; the others are reserved.
    pub const DEFINED: u32 = 0x3FF;

    /// Reads the named bits, ignoring reserved ones.
    pub const fn from_bits(bits: u32) -> Self {
        Self {
            time_stamp_supported: bits & 1 != 0,
            multiple_users_supported: bits & (1 << 1) != 0,
            bmi_supported: bits & (1 << 2) != 0,
            weight_resolution: WeightResolution::from_code(((bits >> 3) & 0xF) as u8),
            height_resolution: HeightResolution::from_code(((bits >> 7) & 0x7) as u8),
        }
    }

    /// The value on the wire; reserved resolution codes cannot be sent.
    pub fn bits(&self) -> Result<u32, EncodeError> {
        Ok(u32::from(self.time_stamp_supported)
            | u32::from(self.multiple_users_supported) << 1
            | u32::from(self.bmi_supported) << 2
            | self
                .weight_resolution
                .feature_bits(3, "weight_resolution")?
            | self
                .height_resolution
                .feature_bits(7, "height_resolution")?)
    }
}

impl Characteristic for WeightScaleFeature {
    const UUID: u16 = uuid::WEIGHT_SCALE_FEATURE;
    const NAME: &'static str = "weight_scale_feature";
    const MAX_LEN: usize = 4;

    fn decode_with(bytes: &[u8], _quirks: Quirks) -> Result<Decoded<Self>, DecodeError> {
        let mut r = Reader::new(bytes);
        let bits = r.u32("weight_scale_feature")?;
        Ok(r.finish(Self::from_bits(bits), bits & !Self::DEFINED))
    }

    fn encode_with(&self, out: &mut [u8], _quirks: Quirks) -> Result<usize, EncodeError> {
        let bits = self.bits()?;
        let mut w = Writer::new(out);
        w.u32(bits)?;
        Ok(w.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ReadingValue;
    use crate::test_support::{date_time, roundtrip, user_id};
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

    #[test]
    fn decodes_an_si_measurement_with_every_field() {
        // Flags: time stamp, user, BMI and height. 75.000 kg (15000 × 0.005), 2024-03-05
        // 08:30:15, user 1, BMI 24.5, height 1.750 m.
        let bytes = [
            0x0E, 0x98, 0x3A, 0xE8, 0x07, 0x03, 0x05, 0x08, 0x1E, 0x0F, 0x01, 0xF5, 0x00, 0xD6,
            0x06,
        ];
        let d = WeightMeasurement::decode(&bytes).unwrap();
        assert_eq!((d.trailing, d.reserved_flags), (0, 0));
        let m = d.value;
        assert_eq!(m.weight, q(75_000, -3, Unit::Kilogram));
        assert_eq!(m.time_stamp, DateTime::new(2024, 3, 5, 8, 30, 15));
        assert_eq!(m.user_id, Some(1));
        assert_eq!(m.bmi, Some(q(245, -1, Unit::KilogramPerSquareMetre)));
        assert_eq!(m.height, Some(q(1750, -3, Unit::Metre)));
        let mut out = [0u8; 15];
        assert_eq!(m.encode(&mut out), Ok(15));
        assert_eq!(out, bytes);
    }

    #[test]
    fn imperial_flag_gives_pounds_and_inches() {
        // 165.00 lb, BMI 24.4, 69.0 in.
        let bytes = [0x09, 0x74, 0x40, 0xF4, 0x00, 0xB2, 0x02];
        let m = WeightMeasurement::decode(&bytes).unwrap().value;
        assert_eq!(m.weight, q(16_500, -2, Unit::Pound));
        assert_eq!(m.height, Some(q(690, -1, Unit::Inch)));
        let readings = m.readings();
        assert_eq!(readings.len(), 3);
        // 165.00 lb = 74.843 kg to five digits; 69.0 in = 175 cm to three.
        assert_eq!(value(&readings[0]), q(74_843, -3, Unit::Kilogram));
        assert_eq!(readings[2].kind, Kind::BodyHeight);
        assert_eq!(value(&readings[2]), q(175, 0, Unit::Centimetre));
    }

    #[test]
    fn unsuccessful_weight_stays_special_and_keeps_its_unit() {
        let si = WeightMeasurement::decode(&[0x00, 0xFF, 0xFF])
            .unwrap()
            .value;
        assert_eq!(si.weight, Quantity::special(Special::NaN, Unit::Kilogram));
        assert!(si.measurement_unsuccessful());
        let imperial = WeightMeasurement::decode(&[0x01, 0xFF, 0xFF])
            .unwrap()
            .value;
        assert_eq!(
            imperial.weight,
            Quantity::special(Special::NaN, Unit::Pound)
        );
        let mut out = [0u8; 3];
        assert_eq!(imperial.encode(&mut out), Ok(3));
        assert_eq!(out, [0x01, 0xFF, 0xFF]);
    }

    #[test]
    fn unsuccessful_weight_gives_one_flagged_reading_with_time_and_user() {
        // Time stamp and user are still allowed; BMI and height sent anyway are dropped.
        let bytes = [
            0x0E, 0xFF, 0xFF, 0xE8, 0x07, 0x03, 0x05, 0x08, 0x1E, 0x0F, 0x02, 0xF5, 0x00, 0xD6,
            0x06,
        ];
        let m = WeightMeasurement::decode(&bytes).unwrap().value;
        let readings = m.readings();
        assert_eq!(readings.len(), 1);
        let r = &readings[0];
        assert_eq!(r.kind, Kind::BodyWeight);
        assert!(r.status.measurement_unsuccessful);
        assert!(r.value.has_special());
        assert_eq!(r.user, Some(2));
        assert!(r.time.known().is_some());
    }

    #[test]
    fn encoder_refuses_bmi_or_height_with_an_unsuccessful_weight() {
        let m = WeightMeasurement {
            weight: Quantity::special(Special::NaN, Unit::Kilogram),
            time_stamp: None,
            user_id: Some(1),
            bmi: Some(q(245, -1, Unit::KilogramPerSquareMetre)),
            height: Some(q(1750, -3, Unit::Metre)),
        };
        let err = m.encode(&mut [0u8; 15]).unwrap_err();
        assert!(matches!(
            err,
            EncodeError::Unrepresentable { field: "bmi", .. }
        ));
    }

    #[test]
    fn encoder_refuses_bmi_without_height_and_mixed_unit_systems() {
        let mut m = WeightMeasurement {
            weight: q(75_000, -3, Unit::Kilogram),
            time_stamp: None,
            user_id: None,
            bmi: Some(q(245, -1, Unit::KilogramPerSquareMetre)),
            height: None,
        };
        let err = m.encode(&mut [0u8; 15]).unwrap_err();
        assert!(matches!(
            err,
            EncodeError::Unrepresentable {
                field: "height",
                ..
            }
        ));
        m.height = Some(q(690, -1, Unit::Inch));
        let err = m.encode(&mut [0u8; 15]).unwrap_err();
        assert!(matches!(
            err,
            EncodeError::Unrepresentable {
                field: "height",
                ..
            }
        ));
    }

    #[test]
    fn encoder_refuses_weights_between_steps_and_beyond_range() {
        let mut m = WeightMeasurement {
            weight: q(75_001, -3, Unit::Kilogram),
            time_stamp: None,
            user_id: None,
            bmi: None,
            height: None,
        };
        assert!(m.encode(&mut [0u8; 15]).is_err());
        // 0xFFFF × 0.005 kg would collide with "measurement unsuccessful".
        m.weight = q(65_535 * 5, -3, Unit::Kilogram);
        assert!(m.encode(&mut [0u8; 15]).is_err());
        m.weight = q(65_534 * 5, -3, Unit::Kilogram);
        assert_eq!(m.encode(&mut [0u8; 15]), Ok(3));
    }

    #[test]
    fn names_the_missing_field_with_byte_counts() {
        // Flags announce a time stamp: 10 bytes in all, 6 present.
        let err = WeightMeasurement::decode(&[0x02, 0x98, 0x3A, 0xE8, 0x07, 0x03]).unwrap_err();
        assert_eq!(
            err,
            DecodeError::Truncated {
                field: "time_stamp",
                needed: 10,
                present: 6
            }
        );
        let err = WeightMeasurement::decode(&[0x08, 0x98, 0x3A, 0xF5, 0x00]).unwrap_err();
        assert_eq!(
            err,
            DecodeError::Truncated {
                field: "height",
                needed: 7,
                present: 5
            }
        );
    }

    #[test]
    fn reports_trailing_bytes_and_reserved_flags() {
        let d = WeightMeasurement::decode(&[0xF0, 0x98, 0x3A, 0xAA]).unwrap();
        assert_eq!(d.trailing, 1);
        assert_eq!(d.reserved_flags, 0xF0);
        assert_eq!(d.value.weight, q(75_000, -3, Unit::Kilogram));
    }

    #[test]
    fn feature_decodes_support_bits_and_resolutions() {
        // Time stamp, multiple users, BMI; 0.005 kg; 0.001 m; a reserved bit 10.
        let d = WeightScaleFeature::decode(&[0xBF, 0x05, 0x00, 0x00]).unwrap();
        let f = d.value;
        assert!(f.time_stamp_supported && f.multiple_users_supported && f.bmi_supported);
        assert_eq!(f.weight_resolution, WeightResolution::Kg0_005OrLb0_01);
        assert_eq!(f.height_resolution, HeightResolution::M0_001OrIn0_1);
        assert_eq!(d.reserved_flags, 0x400);
        assert_eq!(f.weight_resolution.name(), "0_005_kg_or_0_01_lb");
    }

    #[test]
    fn feature_keeps_reserved_resolutions_but_does_not_send_them() {
        let f = WeightScaleFeature::decode(&[0x40, 0x00, 0x00, 0x00])
            .unwrap()
            .value;
        assert_eq!(f.weight_resolution, WeightResolution::Reserved(8));
        assert!(f.encode(&mut [0u8; 4]).is_err());
        let f = WeightScaleFeature::decode(&[0x00, 0x02, 0x00, 0x00])
            .unwrap()
            .value;
        assert_eq!(f.height_resolution, HeightResolution::Reserved(4));
        assert!(f.encode(&mut [0u8; 4]).is_err());
    }

    #[test]
    fn truncated_feature_names_the_field() {
        let err = WeightScaleFeature::decode(&[0x01, 0x00]).unwrap_err();
        assert_eq!(
            err,
            DecodeError::Truncated {
                field: "weight_scale_feature",
                needed: 4,
                present: 2
            }
        );
    }

    fn measurement() -> impl Strategy<Value = WeightMeasurement> {
        (
            any::<bool>(),
            any::<u16>(),
            proptest::option::of(date_time()),
            user_id(),
            proptest::option::of((any::<u16>(), any::<u16>())),
        )
            .prop_map(|(imperial, raw, time_stamp, user_id, bmi_height)| {
                let system = UnitSystem::from_flag(imperial);
                let unsuccessful = raw == UNSUCCESSFUL;
                let weight = if unsuccessful {
                    Quantity::special(Special::NaN, system.mass().unit)
                } else {
                    system.mass().decode(raw)
                };
                let bmi_height = bmi_height.filter(|_| !unsuccessful);
                WeightMeasurement {
                    weight,
                    time_stamp,
                    user_id,
                    bmi: bmi_height.map(|(b, _)| BMI.decode(b)),
                    height: bmi_height.map(|(_, h)| system.height().decode(h)),
                }
            })
    }

    proptest! {
        #[test]
        fn measurement_roundtrips(m in measurement()) {
            roundtrip(&m, Quirks::NONE)?;
        }

        #[test]
        fn feature_roundtrips(bits in any::<u32>(), weight in 0u32..8, height in 0u32..4) {
            let bits = (bits & 0x7) | weight << 3 | height << 7;
            roundtrip(&WeightScaleFeature::from_bits(bits), Quirks::NONE)?;
        }

        #[test]
        fn decoding_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..24)) {
            let _ = WeightMeasurement::decode(&bytes);
            let _ = WeightScaleFeature::decode(&bytes);
        }
    }
}
