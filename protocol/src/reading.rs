//! The normalised `Reading`: what the rest of the hub consumes, whatever characteristic it came
//! from. One value per reading in a canonical UCUM unit, the device-local time (or "unknown"), the
//! device's user index and sequence number, and the status and context the device reported.

use jiff::civil;

use crate::float::{Decimal, MedValue};
use crate::glucose::{GlucoseSampleLocation, GlucoseType, Health, Meal, Tester};
use crate::macros::bit_flags;
use crate::quantity::{Quantity, Unit};
use crate::thermometer::TemperatureType;
use crate::time::DateTime;

/// What was measured.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(
    feature = "serde",
    derive(serde::Serialize),
    serde(rename_all = "snake_case")
)]
pub enum Kind {
    BodyWeight,
    BodyHeight,
    BodyMassIndex,
    BodyFatPercentage,
    BasalMetabolism,
    MusclePercentage,
    MuscleMass,
    FatFreeMass,
    SoftLeanMass,
    BodyWaterMass,
    Impedance,
    /// Systolic, diastolic and mean arterial pressure together.
    BloodPressure,
    /// Cuff pressure during a measurement cycle (progress, not a result).
    CuffPressure,
    /// Pulse rate from a cuff or an oximeter.
    PulseRate,
    HeartRate,
    EnergyExpended,
    BloodGlucose,
    /// Blood ketone, from meters that flag it through a quirk.
    BloodKetone,
    InterstitialGlucose,
    BodyTemperature,
    OxygenSaturation,
    PulseAmplitudeIndex,
}

impl Kind {
    /// The unit every reading of this kind is expressed in.
    pub const fn canonical_unit(self) -> Unit {
        match self {
            Self::BodyWeight
            | Self::MuscleMass
            | Self::FatFreeMass
            | Self::SoftLeanMass
            | Self::BodyWaterMass => Unit::Kilogram,
            Self::BodyHeight => Unit::Centimetre,
            Self::BodyMassIndex => Unit::KilogramPerSquareMetre,
            Self::BodyFatPercentage
            | Self::MusclePercentage
            | Self::OxygenSaturation
            | Self::PulseAmplitudeIndex => Unit::Percent,
            Self::BasalMetabolism | Self::EnergyExpended => Unit::Kilojoule,
            Self::Impedance => Unit::Ohm,
            Self::BloodPressure | Self::CuffPressure => Unit::MillimetreOfMercury,
            Self::PulseRate | Self::HeartRate => Unit::PerMinute,
            Self::BloodGlucose | Self::InterstitialGlucose => Unit::MilligramPerDecilitre,
            Self::BloodKetone => Unit::MillimolePerLitre,
            Self::BodyTemperature => Unit::Celsius,
        }
    }
}

/// The measured value(s), in the kind's canonical unit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(
    feature = "serde",
    derive(serde::Serialize),
    serde(rename_all = "snake_case")
)]
pub enum ReadingValue {
    Single(Quantity),
    BloodPressure {
        systolic: Quantity,
        diastolic: Quantity,
        mean_arterial_pressure: Quantity,
    },
}

impl ReadingValue {
    /// The single value, or the systolic pressure.
    pub fn primary(&self) -> &Quantity {
        match self {
            Self::Single(q) => q,
            Self::BloodPressure { systolic, .. } => systolic,
        }
    }

    /// True when any value is an 11073 special (NaN, NRes, ...).
    pub fn has_special(&self) -> bool {
        let special = |q: &Quantity| matches!(q.value, MedValue::Special(_));
        match self {
            Self::Single(q) => special(q),
            Self::BloodPressure {
                systolic,
                diastolic,
                mean_arterial_pressure,
            } => special(systolic) || special(diastolic) || special(mean_arterial_pressure),
        }
    }
}

/// When the device says the measurement was taken, on its own wall clock.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DeviceTime {
    /// A complete local date and time, any time offset already applied.
    Known(civil::DateTime),
    /// The device sent a time stamp with the year, month or day "not known".
    Incomplete(DateTime),
    /// The measurement carries no time stamp.
    Absent,
}

impl DeviceTime {
    pub fn from_time_stamp(ts: Option<DateTime>) -> Self {
        match ts {
            None => Self::Absent,
            Some(dt) => dt.to_civil().map_or(Self::Incomplete(dt), Self::Known),
        }
    }

    pub fn known(&self) -> Option<civil::DateTime> {
        match self {
            Self::Known(dt) => Some(*dt),
            _ => None,
        }
    }
}

#[cfg(feature = "serde")]
impl serde::Serialize for DeviceTime {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self.known() {
            Some(dt) => s.collect_str(&dt.strftime("%Y-%m-%dT%H:%M:%S")),
            None => s.serialize_none(),
        }
    }
}

bit_flags! {
    /// What the device said about the quality of a reading, in terms shared by all profiles.
    pub struct ReadingStatus: u32 {
        /// A progress value during a measurement (cuff pressure, intermediate temperature).
        intermediate = 0,
        /// The device reports the measurement failed (e.g. weight 0xFFFF).
        measurement_unsuccessful = 1,
        body_movement = 2,
        cuff_too_loose = 3,
        irregular_pulse = 4,
        pulse_rate_out_of_range = 5,
        improper_measurement_position = 6,
        /// Above what the device can measure.
        above_range = 7,
        /// Below what the device can measure.
        below_range = 8,
        device_fault = 9,
        battery_low = 10,
        sample_problem = 11,
        temperature_out_of_range = 12,
        time_fault = 13,
        /// The device sent this record from its storage, not live.
        from_storage = 14,
        /// The device marks the value questionable, invalid or uncalibrated.
        questionable = 15,
        /// A control-solution test, not a patient sample.
        control_solution = 16,
        /// The sensor reports no skin contact.
        no_contact = 17,
        /// The device says its clock is not set.
        clock_not_set = 18,
    }
}

/// Context a device attaches to a reading.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
pub struct Context {
    pub meal: Option<Meal>,
    pub glucose_type: Option<GlucoseType>,
    pub sample_location: Option<GlucoseSampleLocation>,
    pub tester: Option<Tester>,
    pub health: Option<Health>,
    pub temperature_type: Option<TemperatureType>,
}

/// One normalised reading.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
pub struct Reading {
    pub kind: Kind,
    pub value: ReadingValue,
    pub time: DeviceTime,
    /// The device's user index; `None` when absent or 255 ("unknown user").
    pub user: Option<u8>,
    pub sequence_number: Option<u16>,
    pub status: ReadingStatus,
    pub context: Context,
}

impl Reading {
    /// A reading of `kind` with value `reported`, converted to the kind's canonical unit.
    pub fn new(kind: Kind, reported: Quantity) -> Self {
        Self {
            kind,
            value: ReadingValue::Single(to_unit(reported, kind.canonical_unit())),
            time: DeviceTime::Absent,
            user: None,
            sequence_number: None,
            status: ReadingStatus::default(),
            context: Context::default(),
        }
    }

    pub fn blood_pressure(systolic: Quantity, diastolic: Quantity, mean: Quantity) -> Self {
        let mmhg = |q| to_unit(q, Unit::MillimetreOfMercury);
        Self {
            value: ReadingValue::BloodPressure {
                systolic: mmhg(systolic),
                diastolic: mmhg(diastolic),
                mean_arterial_pressure: mmhg(mean),
            },
            ..Self::new(Kind::BloodPressure, systolic)
        }
    }

    pub fn at(mut self, time: DeviceTime) -> Self {
        self.time = time;
        self
    }

    pub fn user(mut self, user: Option<u8>) -> Self {
        self.user = user.filter(|&u| u != 0xFF);
        self
    }

    pub fn status(mut self, status: ReadingStatus) -> Self {
        self.status = status;
        self
    }
}

/// Most readings one characteristic value yields: a CGM notification carries up to 41 records at
/// the 247-byte ATT MTU (a body composition measurement gives up to eleven).
pub const MAX_READINGS: usize = crate::cgm::MAX_CGM_RECORDS;

/// The readings one characteristic value yields.
pub type Readings = heapless::Vec<Reading, MAX_READINGS>;

/// Measurement types that produce normalised readings.
pub trait ToReadings {
    fn readings(&self) -> Readings;
}

/// How a reported unit maps onto a canonical one.
enum Conversion {
    /// A power of ten: only the exponent moves, every reported digit is kept.
    Shift(i8),
    /// An exact decimal factor; the product is rounded to the reported significant digits.
    Scale(Decimal),
    /// An affine or irrational conversion, in floating point, rounded the same way.
    Affine(fn(f64) -> f64),
}

fn conversion(from: Unit, to: Unit) -> Option<Conversion> {
    use Conversion::{Affine, Scale, Shift};
    use Unit::*;
    Some(match (from, to) {
        (a, b) if a == b => Shift(0),
        (Pound, Kilogram) => Scale(Decimal::new(45_359_237, -8)),
        (Gram, Kilogram) => Shift(-3),
        (Metre, Centimetre) => Shift(2),
        (Inch, Centimetre) => Scale(Decimal::new(254, -2)),
        (KilogramPerLitre, MilligramPerDecilitre) => Shift(5),
        // 180.16 g/mol: 1 mol/L = 18 016 mg/dL.
        (MolePerLitre, MilligramPerDecilitre) => Scale(Decimal::new(18_016, 0)),
        (MolePerLitre, MillimolePerLitre) => Shift(3),
        (Kilopascal, MillimetreOfMercury) => Affine(|kpa| kpa / 0.133_322_387_415),
        (Fahrenheit, Celsius) => Affine(|f| (f - 32.0) * 5.0 / 9.0),
        _ => return None,
    })
}

/// `q` expressed in `unit`, never with more significant digits than were reported: a reading
/// of 16.0 kPa becomes 120 mm[Hg], not 120.0098 mm[Hg]. Specials stay specials. A unit with no
/// conversion to `unit` is left as reported.
pub fn to_unit(q: Quantity, unit: Unit) -> Quantity {
    let Some(conv) = conversion(q.unit, unit) else {
        return q;
    };
    let MedValue::Number(d) = q.value else {
        return Quantity::new(q.value, unit);
    };
    let digits = d.significant_digits();
    let converted = match conv {
        Conversion::Shift(n) => i8::try_from(i16::from(d.exponent) + i16::from(n))
            .ok()
            .map(|e| Decimal::new(d.mantissa, e)),
        Conversion::Scale(factor) => d.mantissa.checked_mul(factor.mantissa).and_then(|m| {
            let e = i8::try_from(i16::from(d.exponent) + i16::from(factor.exponent)).ok()?;
            Some(round_to_digits(Decimal::new(m, e), digits))
        }),
        Conversion::Affine(f) => {
            let x = f(d.to_f64());
            i8::try_from(order_of_magnitude(x) - digits as i32 + 1)
                .ok()
                .and_then(|e| Decimal::from_f64_at(x, e))
        }
    };
    match converted {
        Some(d) => Quantity::decimal(d, unit),
        None => q,
    }
}

/// Rounds half away from zero to `digits` significant digits, exactly and in one step (rounding
/// digit by digit would round twice: 75.0015 would become 75.002).
fn round_to_digits(d: Decimal, digits: u32) -> Decimal {
    let drop = d.significant_digits().saturating_sub(digits);
    let (Some(divisor), Ok(shift)) = (10i64.checked_pow(drop), i8::try_from(drop)) else {
        return d;
    };
    let Some(exponent) = d.exponent.checked_add(shift) else {
        return d;
    };
    let (q, r) = (d.mantissa / divisor, d.mantissa % divisor);
    let mantissa = if r.unsigned_abs() * 2 >= divisor.unsigned_abs() {
        q + d.mantissa.signum()
    } else {
        q
    };
    Decimal::new(mantissa, exponent)
}

fn order_of_magnitude(x: f64) -> i32 {
    let mut x = if x < 0.0 { -x } else { x };
    if x == 0.0 || !x.is_finite() {
        return 0;
    }
    let mut m = 0;
    while x >= 10.0 {
        x /= 10.0;
        m += 1;
    }
    while x < 1.0 {
        x *= 10.0;
        m -= 1;
    }
    m
}

#[cfg(test)]
mod tests {
    use super::*;

    fn q(m: i64, e: i8, unit: Unit) -> Quantity {
        Quantity::decimal(Decimal::new(m, e), unit)
    }

    #[test]
    fn pounds_become_kilograms_with_the_reported_digits() {
        // 150.00 lb = 68.0388555 kg: five significant digits were reported.
        assert_eq!(
            to_unit(q(15_000, -2, Unit::Pound), Unit::Kilogram),
            q(68_039, -3, Unit::Kilogram)
        );
    }

    #[test]
    fn conversions_round_once() {
        // 165.35 lb = 75.0014879... kg; five digits: 75.001 (rounding twice would give 75.002).
        assert_eq!(
            to_unit(q(16_535, -2, Unit::Pound), Unit::Kilogram),
            q(75_001, -3, Unit::Kilogram)
        );
        // 99.995 lb = 45.3569... kg -> 45.357.
        assert_eq!(
            to_unit(q(99_995, -3, Unit::Pound), Unit::Kilogram),
            q(45_357, -3, Unit::Kilogram)
        );
    }

    #[test]
    fn glucose_in_mol_per_litre_becomes_mg_per_decilitre() {
        // 0.0055 mol/L = 99.088 mg/dL, reported with two digits.
        let mgdl = to_unit(q(55, -4, Unit::MolePerLitre), Unit::MilligramPerDecilitre);
        assert_eq!(mgdl, q(99, 0, Unit::MilligramPerDecilitre));
    }

    #[test]
    fn kilopascals_keep_their_significant_digits() {
        // 16.0 kPa is 120.0 mm[Hg] to three digits: 120.
        let mmhg = to_unit(q(160, -1, Unit::Kilopascal), Unit::MillimetreOfMercury);
        assert_eq!(mmhg, q(120, 0, Unit::MillimetreOfMercury));
    }

    #[test]
    fn fahrenheit_become_celsius_without_invented_precision() {
        assert_eq!(
            to_unit(q(986, -1, Unit::Fahrenheit), Unit::Celsius),
            q(370, -1, Unit::Celsius)
        );
    }

    #[test]
    fn metres_become_centimetres() {
        assert_eq!(
            to_unit(q(1750, -3, Unit::Metre), Unit::Centimetre),
            q(1750, -1, Unit::Centimetre)
        );
    }
}
