//! Body Composition Service (0x181B): Body Composition Measurement (0x2A9C) and Body Composition
//! Feature (0x2A9B), plus what a gateway needs to join the pieces a scale sends separately: the
//! packets of a multiple-packet measurement ([`CompositionAssembler`]) and the Weight Measurement
//! of a combined WSS + BCS scale ([`merge`]).

use crate::characteristic::Characteristic;
use crate::error::{DecodeError, EncodeError};
use crate::float::{Decimal, MedValue, Special};
use crate::quantity::{Quantity, Unit};
use crate::quirks::Quirks;
use crate::reading::{DeviceTime, Kind, Reading, Readings, ToReadings};
use crate::time::DateTime;
use crate::uuid;
use crate::weight_scale::{
    Fixed, HeightResolution, UnitSystem, WeightMeasurement, WeightResolution,
};
use crate::wire::{Decoded, Reader, Writer};

const IMPERIAL: u16 = 1 << 0;
const TIME_STAMP: u16 = 1 << 1;
const USER_ID: u16 = 1 << 2;
const BASAL_METABOLISM: u16 = 1 << 3;
const MUSCLE_PERCENTAGE: u16 = 1 << 4;
const MUSCLE_MASS: u16 = 1 << 5;
const FAT_FREE_MASS: u16 = 1 << 6;
const SOFT_LEAN_MASS: u16 = 1 << 7;
const BODY_WATER_MASS: u16 = 1 << 8;
const IMPEDANCE: u16 = 1 << 9;
const WEIGHT: u16 = 1 << 10;
const HEIGHT: u16 = 1 << 11;
const MULTIPLE_PACKET: u16 = 1 << 12;
const DEFINED_FLAGS: u16 = 0x1FFF;
/// The flags of the nine optional uint16 fields (bits 3-11).
const U16_FIELDS: u16 = 0x0FF8;

/// Raw body fat percentage meaning "Measurement Unsuccessful".
const UNSUCCESSFUL: u16 = 0xFFFF;

const PERCENT: Fixed = Fixed::new(
    Unit::Percent,
    Decimal::new(1, -1),
    "percentages must be in %",
);
const KILOJOULE: Fixed = Fixed::new(
    Unit::Kilojoule,
    Decimal::new(1, 0),
    "basal metabolism must be in kJ",
);
const OHM: Fixed = Fixed::new(Unit::Ohm, Decimal::new(1, -1), "impedance must be in Ohm");

fn announced_len(flags: u16) -> usize {
    let mut len = 2 + 2;
    if flags & TIME_STAMP != 0 {
        len += DateTime::LEN;
    }
    if flags & USER_ID != 0 {
        len += 1;
    }
    len + 2 * (flags & U16_FIELDS).count_ones() as usize
}

/// Body Composition Measurement (0x2A9C), indicated once per measurement, or in several packets
/// when it does not fit one (see [`CompositionAssembler`]).
///
/// A "Measurement Unsuccessful" body fat percentage (raw 0xFFFF) is the 11073 special NaN in %.
/// Masses share one unit system, selected by their units (kg and m, or `[lb_av]` and `[in_i]`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
pub struct BodyCompositionMeasurement {
    /// In %, 0.1 % steps; mandatory in every packet.
    pub body_fat_percentage: Quantity,
    pub time_stamp: Option<DateTime>,
    /// 255 means "unknown user".
    pub user_id: Option<u8>,
    /// In kJ, 1 kJ steps.
    pub basal_metabolism: Option<Quantity>,
    /// In %, 0.1 % steps.
    pub muscle_percentage: Option<Quantity>,
    pub muscle_mass: Option<Quantity>,
    pub fat_free_mass: Option<Quantity>,
    pub soft_lean_mass: Option<Quantity>,
    pub body_water_mass: Option<Quantity>,
    /// In Ohm, 0.1 Ohm steps.
    pub impedance: Option<Quantity>,
    pub weight: Option<Quantity>,
    pub height: Option<Quantity>,
    /// Flag bit 12: this value is one packet of a measurement split over several indications.
    pub multiple_packet_measurement: bool,
}

impl BodyCompositionMeasurement {
    /// True when the scale reports "Measurement Unsuccessful" (body fat 0xFFFF).
    pub fn measurement_unsuccessful(&self) -> bool {
        matches!(self.body_fat_percentage.value, MedValue::Special(_))
    }

    /// The optional uint16 fields in wire order, with their flag and name.
    fn u16_fields(&self) -> [(u16, &'static str, Option<Quantity>); 9] {
        [
            (BASAL_METABOLISM, "basal_metabolism", self.basal_metabolism),
            (
                MUSCLE_PERCENTAGE,
                "muscle_percentage",
                self.muscle_percentage,
            ),
            (MUSCLE_MASS, "muscle_mass", self.muscle_mass),
            (FAT_FREE_MASS, "fat_free_mass", self.fat_free_mass),
            (SOFT_LEAN_MASS, "soft_lean_mass", self.soft_lean_mass),
            (BODY_WATER_MASS, "body_water_mass", self.body_water_mass),
            (IMPEDANCE, "impedance", self.impedance),
            (WEIGHT, "weight", self.weight),
            (HEIGHT, "height", self.height),
        ]
    }

    /// `self` completed with the fields only `later` carries. A field both carry keeps the
    /// value of `self`; a special body fat percentage gives way to a number.
    fn fill_from(mut self, later: &Self) -> Self {
        if self.measurement_unsuccessful() && !later.measurement_unsuccessful() {
            self.body_fat_percentage = later.body_fat_percentage;
        }
        self.time_stamp = self.time_stamp.or(later.time_stamp);
        self.user_id = self.user_id.or(later.user_id);
        self.basal_metabolism = self.basal_metabolism.or(later.basal_metabolism);
        self.muscle_percentage = self.muscle_percentage.or(later.muscle_percentage);
        self.muscle_mass = self.muscle_mass.or(later.muscle_mass);
        self.fat_free_mass = self.fat_free_mass.or(later.fat_free_mass);
        self.soft_lean_mass = self.soft_lean_mass.or(later.soft_lean_mass);
        self.body_water_mass = self.body_water_mass.or(later.body_water_mass);
        self.impedance = self.impedance.or(later.impedance);
        self.weight = self.weight.or(later.weight);
        self.height = self.height.or(later.height);
        self
    }
}

/// How the optional uint16 field with flag `flag` is scaled.
fn field_format(flag: u16, system: UnitSystem) -> Fixed {
    match flag {
        BASAL_METABOLISM => KILOJOULE,
        MUSCLE_PERCENTAGE => PERCENT,
        IMPEDANCE => OHM,
        HEIGHT => system.height(),
        _ => system.mass(),
    }
}

impl Characteristic for BodyCompositionMeasurement {
    const UUID: u16 = uuid::BODY_COMPOSITION_MEASUREMENT;
    const NAME: &'static str = "body_composition_measurement";
    const MAX_LEN: usize = 30;

    fn decode_with(bytes: &[u8], _quirks: Quirks) -> Result<Decoded<Self>, DecodeError> {
        let mut r = Reader::new(bytes);
        let flags = r.u16("flags")?;
        r.announce(announced_len(flags));
        let system = UnitSystem::from_flag(flags & IMPERIAL != 0);
        let raw_fat = r.u16("body_fat_percentage")?;
        let body_fat_percentage = if raw_fat == UNSUCCESSFUL {
            Quantity::special(Special::NaN, Unit::Percent)
        } else {
            PERCENT.decode(raw_fat)
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
        let mut field = |flag: u16, name: &'static str| -> Result<Option<Quantity>, DecodeError> {
            if flags & flag == 0 {
                return Ok(None);
            }
            Ok(Some(field_format(flag, system).decode(r.u16(name)?)))
        };
        let value = Self {
            body_fat_percentage,
            time_stamp,
            user_id,
            basal_metabolism: field(BASAL_METABOLISM, "basal_metabolism")?,
            muscle_percentage: field(MUSCLE_PERCENTAGE, "muscle_percentage")?,
            muscle_mass: field(MUSCLE_MASS, "muscle_mass")?,
            fat_free_mass: field(FAT_FREE_MASS, "fat_free_mass")?,
            soft_lean_mass: field(SOFT_LEAN_MASS, "soft_lean_mass")?,
            body_water_mass: field(BODY_WATER_MASS, "body_water_mass")?,
            impedance: field(IMPEDANCE, "impedance")?,
            weight: field(WEIGHT, "weight")?,
            height: field(HEIGHT, "height")?,
            multiple_packet_measurement: flags & MULTIPLE_PACKET != 0,
        };
        Ok(r.finish(value, u32::from(flags & !DEFINED_FLAGS)))
    }

    fn encode_with(&self, out: &mut [u8], _quirks: Quirks) -> Result<usize, EncodeError> {
        let fields = self.u16_fields();
        // The unit system is that of the first mass or height; the others must agree (each
        // field's encoder checks its unit).
        let system = fields
            .iter()
            .filter(|(flag, _, _)| {
                !matches!(*flag, BASAL_METABOLISM | MUSCLE_PERCENTAGE | IMPEDANCE)
            })
            .find_map(|(_, _, q)| q.map(|q| q.unit))
            .map_or(Some(UnitSystem::Si), UnitSystem::of)
            .ok_or(EncodeError::Unrepresentable {
                field: "weight",
                reason: "masses must be in kg or [lb_av], heights in m or [in_i]",
            })?;
        let raw_fat = match self.body_fat_percentage.value {
            MedValue::Special(Special::NaN) if self.body_fat_percentage.unit == Unit::Percent => {
                UNSUCCESSFUL
            }
            MedValue::Special(Special::NaN) => {
                return Err(EncodeError::Unrepresentable {
                    field: "body_fat_percentage",
                    reason: "percentages must be in %",
                });
            }
            MedValue::Special(_) => {
                return Err(EncodeError::Unrepresentable {
                    field: "body_fat_percentage",
                    reason: "the only special body fat percentage is NaN (measurement unsuccessful)",
                });
            }
            MedValue::Number(_) => PERCENT.encode(
                &self.body_fat_percentage,
                "body_fat_percentage",
                UNSUCCESSFUL - 1,
            )?,
        };
        let mut flags = if system.is_imperial() { IMPERIAL } else { 0 };
        if self.time_stamp.is_some() {
            flags |= TIME_STAMP;
        }
        if self.user_id.is_some() {
            flags |= USER_ID;
        }
        for (flag, _, q) in &fields {
            if q.is_some() {
                flags |= flag;
            }
        }
        if self.multiple_packet_measurement {
            flags |= MULTIPLE_PACKET;
        }
        let mut w = Writer::new(out);
        w.reserve(announced_len(flags))?;
        w.u16(flags)?;
        w.u16(raw_fat)?;
        if let Some(ts) = &self.time_stamp {
            ts.write(&mut w, "time_stamp")?;
        }
        if let Some(user) = self.user_id {
            w.u8(user)?;
        }
        for (flag, name, q) in &fields {
            if let Some(q) = q {
                w.u16(field_format(*flag, system).encode(q, name, u16::MAX)?)?;
            }
        }
        Ok(w.len())
    }
}

impl ToReadings for BodyCompositionMeasurement {
    /// One reading per field present, body fat first. An unsuccessful body fat percentage keeps
    /// its special value and is flagged `measurement_unsuccessful`. Call this on an assembled
    /// measurement, not on a single packet of a multiple-packet one.
    fn readings(&self) -> Readings {
        let time = DeviceTime::from_time_stamp(self.time_stamp);
        let reading = |kind, q| Reading::new(kind, q).at(time).user(self.user_id);
        let mut out = Readings::new();
        let mut fat = reading(Kind::BodyFatPercentage, self.body_fat_percentage);
        fat.status.measurement_unsuccessful = self.measurement_unsuccessful();
        let _ = out.push(fat);
        let kinds = [
            Kind::BasalMetabolism,
            Kind::MusclePercentage,
            Kind::MuscleMass,
            Kind::FatFreeMass,
            Kind::SoftLeanMass,
            Kind::BodyWaterMass,
            Kind::Impedance,
            Kind::BodyWeight,
            Kind::BodyHeight,
        ];
        for (kind, (_, _, q)) in kinds.into_iter().zip(self.u16_fields()) {
            if let Some(q) = q {
                let _ = out.push(reading(kind, q));
            }
        }
        out
    }
}

/// Joins the packets of a multiple-packet Body Composition Measurement.
///
/// A scale whose measurement exceeds one indication sends it as several values, each with its
/// own flags and body fat percentage and the Multiple Packet Measurement flag set; the last one
/// has the flag clear. Feed every decoded value to [`push`](Self::push) in arrival order, one
/// assembler per connection: a value with the flag clear completes the measurement (or is one on
/// its own). A field sent in more than one packet keeps its first value. Call
/// [`flush`](Self::flush) on disconnect or timeout to recover packets whose end never came, for
/// devices that set the flag on every packet. Holds one measurement; no allocation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct CompositionAssembler {
    pending: Option<BodyCompositionMeasurement>,
}

impl CompositionAssembler {
    /// An assembler with nothing pending.
    pub const fn new() -> Self {
        Self { pending: None }
    }

    /// Adds one packet. Returns the whole measurement, with `multiple_packet_measurement`
    /// cleared, when this packet ends it; `None` while more packets are expected.
    pub fn push(
        &mut self,
        packet: BodyCompositionMeasurement,
    ) -> Option<BodyCompositionMeasurement> {
        let merged = match self.pending.take() {
            Some(pending) => pending.fill_from(&packet),
            None => packet,
        };
        if packet.multiple_packet_measurement {
            self.pending = Some(merged);
            return None;
        }
        Some(BodyCompositionMeasurement {
            multiple_packet_measurement: false,
            ..merged
        })
    }

    /// Hands over the packets received so far, still marked `multiple_packet_measurement`
    /// because the last packet never came; `None` when nothing is pending.
    pub fn flush(&mut self) -> Option<BodyCompositionMeasurement> {
        self.pending.take()
    }

    /// True while packets of an unfinished measurement are held.
    pub fn is_pending(&self) -> bool {
        self.pending.is_some()
    }
}

/// True when both are known and differ (a user ID of 255 is "unknown user").
fn conflict<T: PartialEq>(a: Option<T>, b: Option<T>, unknown: Option<T>) -> bool {
    match (a, b) {
        (Some(a), Some(b)) => {
            a != b && Some(&a) != unknown.as_ref() && Some(&b) != unknown.as_ref()
        }
        _ => false,
    }
}

/// Joins the Weight Measurement and Body Composition Measurement a combined WSS + BCS scale
/// indicates separately for one weighing: the body composition completed with the weight, height,
/// time stamp and user ID it lacks. `None` when the two cannot be the same weighing: both carry
/// a user ID (other than 255) and they differ, or both carry a time stamp and they differ.
///
/// An unsuccessful weight is not carried over. The result may mix unit systems (a weight in
/// `[lb_av]` with masses in kg): it is meant for [`ToReadings`], which converts units, and
/// encoding it then fails. BMI has no BCM field: see [`merged_readings`].
pub fn merge(
    weight: &WeightMeasurement,
    body: &BodyCompositionMeasurement,
) -> Option<BodyCompositionMeasurement> {
    if conflict(weight.user_id, body.user_id, Some(0xFF))
        || conflict(weight.time_stamp, body.time_stamp, None)
    {
        return None;
    }
    let mut out = *body;
    out.time_stamp = body.time_stamp.or(weight.time_stamp);
    out.user_id = match body.user_id {
        Some(0xFF) | None => weight.user_id.or(body.user_id),
        known => known,
    };
    if out.weight.is_none() && !weight.measurement_unsuccessful() {
        out.weight = Some(weight.weight);
    }
    out.height = out.height.or(weight.height);
    Some(out)
}

/// The readings of [`merge`], plus the BMI of the Weight Measurement; `None` when the two
/// measurements cannot be the same weighing.
pub fn merged_readings(
    weight: &WeightMeasurement,
    body: &BodyCompositionMeasurement,
) -> Option<Readings> {
    let merged = merge(weight, body)?;
    let mut out = merged.readings();
    if let (Some(bmi), false) = (weight.bmi, weight.measurement_unsuccessful()) {
        let reading = Reading::new(Kind::BodyMassIndex, bmi)
            .at(DeviceTime::from_time_stamp(merged.time_stamp))
            .user(merged.user_id);
        let _ = out.push(reading);
    }
    Some(out)
}

/// Body Composition Feature (0x2A9B): which fields the analyzer sends and how precise it is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
pub struct BodyCompositionFeature {
    pub time_stamp_supported: bool,
    pub multiple_users_supported: bool,
    pub basal_metabolism_supported: bool,
    pub muscle_percentage_supported: bool,
    pub muscle_mass_supported: bool,
    pub fat_free_mass_supported: bool,
    pub soft_lean_mass_supported: bool,
    pub body_water_mass_supported: bool,
    pub impedance_supported: bool,
    pub weight_supported: bool,
    pub height_supported: bool,
    /// Bits 11-14, the Weight Scale Feature's table.
    pub mass_resolution: WeightResolution,
    /// Bits 15-17.
    pub height_resolution: HeightResolution,
}

impl BodyCompositionFeature {
    /// The bits this struct names; the others are reserved.
    pub const DEFINED: u32 = 0x3_FFFF;

    /// Reads the named bits, ignoring reserved ones.
    pub const fn from_bits(bits: u32) -> Self {
        const fn bit(bits: u32, n: u32) -> bool {
            bits & (1 << n) != 0
        }
        Self {
            time_stamp_supported: bit(bits, 0),
            multiple_users_supported: bit(bits, 1),
            basal_metabolism_supported: bit(bits, 2),
            muscle_percentage_supported: bit(bits, 3),
            muscle_mass_supported: bit(bits, 4),
            fat_free_mass_supported: bit(bits, 5),
            soft_lean_mass_supported: bit(bits, 6),
            body_water_mass_supported: bit(bits, 7),
            impedance_supported: bit(bits, 8),
            weight_supported: bit(bits, 9),
            height_supported: bit(bits, 10),
            mass_resolution: WeightResolution::from_code(((bits >> 11) & 0xF) as u8),
            height_resolution: HeightResolution::from_code(((bits >> 15) & 0x7) as u8),
        }
    }

    /// The value on the wire; reserved resolution codes cannot be sent.
    pub fn bits(&self) -> Result<u32, EncodeError> {
        let flags = [
            self.time_stamp_supported,
            self.multiple_users_supported,
            self.basal_metabolism_supported,
            self.muscle_percentage_supported,
            self.muscle_mass_supported,
            self.fat_free_mass_supported,
            self.soft_lean_mass_supported,
            self.body_water_mass_supported,
            self.impedance_supported,
            self.weight_supported,
            self.height_supported,
        ];
        let supported = flags
            .iter()
            .enumerate()
            .fold(0u32, |acc, (n, &set)| acc | u32::from(set) << n);
        Ok(supported
            | self.mass_resolution.feature_bits(11, "mass_resolution")?
            | self
                .height_resolution
                .feature_bits(15, "height_resolution")?)
    }
}

impl Characteristic for BodyCompositionFeature {
    const UUID: u16 = uuid::BODY_COMPOSITION_FEATURE;
    const NAME: &'static str = "body_composition_feature";
    const MAX_LEN: usize = 4;

    fn decode_with(bytes: &[u8], _quirks: Quirks) -> Result<Decoded<Self>, DecodeError> {
        let mut r = Reader::new(bytes);
        let bits = r.u32("body_composition_feature")?;
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

    /// Every field, SI: 22.5 %, 2024-03-05 08:30:15, user 3, 6500 kJ, 40.1 %, 55.000 kg,
    /// 58.100 kg, 52.000 kg, 40.000 kg, 500.0 Ohm, 75.000 kg, 1.750 m.
    const FULL: [u8; 30] = [
        0xFE, 0x0F, 0xE1, 0x00, 0xE8, 0x07, 0x03, 0x05, 0x08, 0x1E, 0x0F, 0x03, 0x64, 0x19, 0x91,
        0x01, 0xF8, 0x2A, 0x64, 0x2D, 0xA0, 0x28, 0x40, 0x1F, 0x88, 0x13, 0x98, 0x3A, 0xD6, 0x06,
    ];

    fn full() -> BodyCompositionMeasurement {
        BodyCompositionMeasurement::decode(&FULL).unwrap().value
    }

    #[test]
    fn decodes_every_field_in_flag_order() {
        let d = BodyCompositionMeasurement::decode(&FULL).unwrap();
        assert_eq!((d.trailing, d.reserved_flags), (0, 0));
        let m = d.value;
        assert_eq!(m.body_fat_percentage, q(225, -1, Unit::Percent));
        assert_eq!(m.time_stamp, DateTime::new(2024, 3, 5, 8, 30, 15));
        assert_eq!(m.user_id, Some(3));
        assert_eq!(m.basal_metabolism, Some(q(6500, 0, Unit::Kilojoule)));
        assert_eq!(m.muscle_percentage, Some(q(401, -1, Unit::Percent)));
        assert_eq!(m.muscle_mass, Some(q(55_000, -3, Unit::Kilogram)));
        assert_eq!(m.fat_free_mass, Some(q(58_100, -3, Unit::Kilogram)));
        assert_eq!(m.soft_lean_mass, Some(q(52_000, -3, Unit::Kilogram)));
        assert_eq!(m.body_water_mass, Some(q(40_000, -3, Unit::Kilogram)));
        assert_eq!(m.impedance, Some(q(5000, -1, Unit::Ohm)));
        assert_eq!(m.weight, Some(q(75_000, -3, Unit::Kilogram)));
        assert_eq!(m.height, Some(q(1750, -3, Unit::Metre)));
        assert!(!m.multiple_packet_measurement);
        let mut out = [0u8; 30];
        assert_eq!(m.encode(&mut out), Ok(30));
        assert_eq!(out, FULL);
    }

    #[test]
    fn imperial_flag_gives_pounds_and_inches() {
        // Weight and height: 165.00 lb, 69.0 in.
        let m =
            BodyCompositionMeasurement::decode(&[0x01, 0x0C, 0xE1, 0x00, 0x74, 0x40, 0xB2, 0x02])
                .unwrap()
                .value;
        assert_eq!(m.weight, Some(q(16_500, -2, Unit::Pound)));
        assert_eq!(m.height, Some(q(690, -1, Unit::Inch)));
    }

    #[test]
    fn yields_one_reading_per_field_in_canonical_units() {
        let readings = full().readings();
        let kinds: std::vec::Vec<Kind> = readings.iter().map(|r| r.kind).collect();
        assert_eq!(
            kinds,
            [
                Kind::BodyFatPercentage,
                Kind::BasalMetabolism,
                Kind::MusclePercentage,
                Kind::MuscleMass,
                Kind::FatFreeMass,
                Kind::SoftLeanMass,
                Kind::BodyWaterMass,
                Kind::Impedance,
                Kind::BodyWeight,
                Kind::BodyHeight,
            ]
        );
        assert!(
            readings
                .iter()
                .all(|r| r.user == Some(3) && r.time.known().is_some())
        );
        assert_eq!(value(&readings[9]), q(1750, -1, Unit::Centimetre));
    }

    #[test]
    fn unsuccessful_body_fat_stays_special_and_is_flagged() {
        let d = BodyCompositionMeasurement::decode(&[0x00, 0x00, 0xFF, 0xFF]).unwrap();
        let m = d.value;
        assert_eq!(
            m.body_fat_percentage,
            Quantity::special(Special::NaN, Unit::Percent)
        );
        let readings = m.readings();
        assert!(readings[0].status.measurement_unsuccessful);
        assert!(readings[0].value.has_special());
        let mut out = [0u8; 4];
        assert_eq!(m.encode(&mut out), Ok(4));
        assert_eq!(out, [0x00, 0x00, 0xFF, 0xFF]);
    }

    #[test]
    fn names_the_missing_field_with_byte_counts() {
        // Flags announce weight and height (8 bytes); the height is missing.
        let err =
            BodyCompositionMeasurement::decode(&[0x00, 0x0C, 0xE1, 0x00, 0x98, 0x3A]).unwrap_err();
        assert_eq!(
            err,
            DecodeError::Truncated {
                field: "height",
                needed: 8,
                present: 6
            }
        );
        let err = BodyCompositionMeasurement::decode(&FULL[..20]).unwrap_err();
        assert_eq!(
            err,
            DecodeError::Truncated {
                field: "soft_lean_mass",
                needed: 30,
                present: 20
            }
        );
    }

    #[test]
    fn reports_trailing_bytes_and_reserved_flags() {
        let d = BodyCompositionMeasurement::decode(&[0x00, 0xE0, 0xE1, 0x00, 0x01]).unwrap();
        assert_eq!(d.trailing, 1);
        assert_eq!(d.reserved_flags, 0xE000);
    }

    #[test]
    fn multiple_packet_flag_round_trips() {
        let bytes = [0x00, 0x14, 0xE1, 0x00, 0x98, 0x3A];
        let m = BodyCompositionMeasurement::decode(&bytes).unwrap().value;
        assert!(m.multiple_packet_measurement);
        let mut out = [0u8; 6];
        assert_eq!(m.encode(&mut out), Ok(6));
        assert_eq!(out, bytes);
    }

    #[test]
    fn encoder_refuses_mixed_unit_systems() {
        let mut m = full();
        m.height = Some(q(690, -1, Unit::Inch));
        let err = m.encode(&mut [0u8; 30]).unwrap_err();
        assert!(matches!(
            err,
            EncodeError::Unrepresentable {
                field: "height",
                ..
            }
        ));
        let mut m = full();
        m.muscle_mass = Some(q(12_000, -2, Unit::Pound));
        let err = m.encode(&mut [0u8; 30]).unwrap_err();
        assert!(matches!(
            err,
            EncodeError::Unrepresentable {
                field: "fat_free_mass",
                ..
            }
        ));
    }

    #[test]
    fn assembler_joins_packets_until_the_flag_clears() {
        // Packet 1: body fat, time stamp, user, basal metabolism... muscle percentage.
        let first = [
            0x1E, 0x10, 0xE1, 0x00, 0xE8, 0x07, 0x03, 0x05, 0x08, 0x1E, 0x0F, 0x03, 0x64, 0x19,
            0x91, 0x01,
        ];
        // Packet 2 (flag still set): muscle mass. Packet 3 (flag clear): weight and height.
        let second = [0x20, 0x10, 0xE1, 0x00, 0xF8, 0x2A];
        let third = [0x00, 0x0C, 0xE1, 0x00, 0x98, 0x3A, 0xD6, 0x06];
        let decode = |b: &[u8]| BodyCompositionMeasurement::decode(b).unwrap().value;
        let mut assembler = CompositionAssembler::new();
        assert_eq!(assembler.push(decode(&first)), None);
        assert_eq!(assembler.push(decode(&second)), None);
        assert!(assembler.is_pending());
        let whole = assembler.push(decode(&third)).unwrap();
        assert!(!assembler.is_pending());
        assert!(!whole.multiple_packet_measurement);
        assert_eq!(whole.user_id, Some(3));
        assert_eq!(whole.basal_metabolism, Some(q(6500, 0, Unit::Kilojoule)));
        assert_eq!(whole.muscle_mass, Some(q(55_000, -3, Unit::Kilogram)));
        assert_eq!(whole.weight, Some(q(75_000, -3, Unit::Kilogram)));
        assert_eq!(whole.height, Some(q(1750, -3, Unit::Metre)));
        assert_eq!(whole.readings().len(), 6);
    }

    #[test]
    fn assembler_passes_single_packets_through_and_flushes_unfinished_ones() {
        let mut assembler = CompositionAssembler::new();
        assert_eq!(assembler.push(full()), Some(full()));
        let part = BodyCompositionMeasurement {
            multiple_packet_measurement: true,
            ..full()
        };
        assert_eq!(assembler.push(part), None);
        assert_eq!(assembler.flush(), Some(part));
        assert_eq!(assembler.flush(), None);
    }

    #[test]
    fn merge_completes_body_composition_with_the_weight_measurement() {
        let body = BodyCompositionMeasurement::decode(&[
            0x06, 0x00, 0xE1, 0x00, 0xE8, 0x07, 0x03, 0x05, 0x08, 0x1E, 0x0F, 0x03,
        ])
        .unwrap()
        .value;
        let weight = WeightMeasurement {
            weight: q(75_000, -3, Unit::Kilogram),
            time_stamp: body.time_stamp,
            user_id: Some(3),
            bmi: Some(q(245, -1, Unit::KilogramPerSquareMetre)),
            height: Some(q(1750, -3, Unit::Metre)),
        };
        let merged = merge(&weight, &body).unwrap();
        assert_eq!(merged.weight, Some(weight.weight));
        assert_eq!(merged.height, weight.height);
        let readings = merged_readings(&weight, &body).unwrap();
        let kinds: std::vec::Vec<Kind> = readings.iter().map(|r| r.kind).collect();
        assert_eq!(
            kinds,
            [
                Kind::BodyFatPercentage,
                Kind::BodyWeight,
                Kind::BodyHeight,
                Kind::BodyMassIndex
            ]
        );
        // Another user's weighing is not merged; an unknown user (255) is.
        let other = WeightMeasurement {
            user_id: Some(4),
            ..weight
        };
        assert_eq!(merge(&other, &body), None);
        let unknown = WeightMeasurement {
            user_id: Some(0xFF),
            ..weight
        };
        assert_eq!(merge(&unknown, &body).unwrap().user_id, Some(3));
        // An unsuccessful weight is not carried over.
        let failed = WeightMeasurement {
            weight: Quantity::special(Special::NaN, Unit::Kilogram),
            bmi: None,
            height: None,
            ..weight
        };
        assert_eq!(merge(&failed, &body).unwrap().weight, None);
    }

    #[test]
    fn feature_decodes_support_bits_and_resolutions() {
        // All eleven fields; mass 0.05 kg (4); height 0.005 m (2); a reserved bit 18.
        let d = BodyCompositionFeature::decode(&[0xFF, 0x27, 0x05, 0x00]).unwrap();
        let f = d.value;
        assert!(f.time_stamp_supported && f.impedance_supported && f.height_supported);
        assert_eq!(f.mass_resolution, WeightResolution::Kg0_05OrLb0_1);
        assert_eq!(f.height_resolution, HeightResolution::M0_005OrIn0_5);
        assert_eq!(d.reserved_flags, 1 << 18);
        let mut out = [0u8; 4];
        assert_eq!(f.encode(&mut out), Ok(4));
        assert_eq!(out, [0xFF, 0x27, 0x01, 0x00]);
    }

    #[test]
    fn feature_does_not_send_reserved_resolutions() {
        let f = BodyCompositionFeature::decode(&[0x00, 0x00, 0x02, 0x00])
            .unwrap()
            .value;
        assert_eq!(f.height_resolution, HeightResolution::Reserved(4));
        let err = f.encode(&mut [0u8; 4]).unwrap_err();
        assert!(matches!(
            err,
            EncodeError::Unrepresentable {
                field: "height_resolution",
                ..
            }
        ));
    }

    fn measurement() -> impl Strategy<Value = BodyCompositionMeasurement> {
        (
            (any::<bool>(), any::<u16>(), any::<bool>()),
            proptest::option::of(date_time()),
            user_id(),
            proptest::collection::vec(proptest::option::of(any::<u16>()), 9),
        )
            .prop_map(|((imperial, fat, multiple), time_stamp, user_id, raws)| {
                let system = UnitSystem::from_flag(imperial);
                let body_fat_percentage = if fat == UNSUCCESSFUL {
                    Quantity::special(Special::NaN, Unit::Percent)
                } else {
                    PERCENT.decode(fat)
                };
                let flags = [
                    BASAL_METABOLISM,
                    MUSCLE_PERCENTAGE,
                    MUSCLE_MASS,
                    FAT_FREE_MASS,
                    SOFT_LEAN_MASS,
                    BODY_WATER_MASS,
                    IMPEDANCE,
                    WEIGHT,
                    HEIGHT,
                ];
                let f = |i: usize| raws[i].map(|raw| field_format(flags[i], system).decode(raw));
                BodyCompositionMeasurement {
                    body_fat_percentage,
                    time_stamp,
                    user_id,
                    basal_metabolism: f(0),
                    muscle_percentage: f(1),
                    muscle_mass: f(2),
                    fat_free_mass: f(3),
                    soft_lean_mass: f(4),
                    body_water_mass: f(5),
                    impedance: f(6),
                    weight: f(7),
                    height: f(8),
                    multiple_packet_measurement: multiple,
                }
            })
    }

    proptest! {
        #[test]
        fn measurement_roundtrips(m in measurement()) {
            roundtrip(&m, Quirks::NONE)?;
        }

        #[test]
        fn feature_roundtrips(bits in any::<u32>(), mass in 0u32..8, height in 0u32..4) {
            let bits = (bits & 0x7FF) | mass << 11 | height << 15;
            roundtrip(&BodyCompositionFeature::from_bits(bits), Quirks::NONE)?;
        }

        #[test]
        fn decoding_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..40)) {
            let _ = BodyCompositionMeasurement::decode(&bytes);
            let _ = BodyCompositionFeature::decode(&bytes);
        }

        #[test]
        fn assembling_split_packets_gives_the_whole(m in measurement()) {
            // Split into head (fat, time, user, first four fields) and tail (the rest).
            let whole = BodyCompositionMeasurement { multiple_packet_measurement: false, ..m };
            let head = BodyCompositionMeasurement {
                soft_lean_mass: None,
                body_water_mass: None,
                impedance: None,
                weight: None,
                height: None,
                multiple_packet_measurement: true,
                ..whole
            };
            let tail = BodyCompositionMeasurement {
                time_stamp: None,
                user_id: None,
                basal_metabolism: None,
                muscle_percentage: None,
                muscle_mass: None,
                fat_free_mass: None,
                ..whole
            };
            let mut assembler = CompositionAssembler::new();
            prop_assert_eq!(assembler.push(head), None);
            prop_assert_eq!(assembler.push(tail), Some(whole));
        }
    }
}
