//! Glucose Service (0x1808): Glucose Measurement (0x2A18), Glucose Measurement Context (0x2A34)
//! and Glucose Feature (0x2A51); [`GlucoseRecord`] pairs a measurement with its context, and
//! [`ContextMatcher`] does the pairing as notifications arrive.

use crate::characteristic::Characteristic;
use crate::error::{DecodeError, EncodeError};
use crate::float::{Decimal, MedValue, Special, decode_sfloat, encode_sfloat};
use crate::macros::{bit_flags, code_enum};
use crate::quantity::{Quantity, Unit};
use crate::quirks::Quirks;
use crate::reading::{DeviceTime, Kind, Reading, ReadingStatus, Readings, ToReadings};
use crate::time::DateTime;
use crate::uuid;
use crate::wire::{Decoded, Reader, Writer};

code_enum! {
    /// Type of the sample (low nibble of the Type-Sample Location octet).
    pub enum GlucoseType: u8 {
        CapillaryWholeBlood = 1 => "capillary_whole_blood",
        CapillaryPlasma = 2 => "capillary_plasma",
        VenousWholeBlood = 3 => "venous_whole_blood",
        VenousPlasma = 4 => "venous_plasma",
        ArterialWholeBlood = 5 => "arterial_whole_blood",
        ArterialPlasma = 6 => "arterial_plasma",
        UndeterminedWholeBlood = 7 => "undetermined_whole_blood",
        UndeterminedPlasma = 8 => "undetermined_plasma",
        InterstitialFluid = 9 => "interstitial_fluid",
        ControlSolution = 10 => "control_solution",
    }
}

code_enum! {
    /// Sample location (high nibble of the Type-Sample Location octet).
    pub enum GlucoseSampleLocation: u8 {
        Finger = 1 => "finger",
        AlternateSiteTest = 2 => "alternate_site_test",
        Earlobe = 3 => "earlobe",
        ControlSolution = 4 => "control_solution",
        NotAvailable = 15 => "not_available",
    }
}

code_enum! {
    /// Meal of the Glucose Measurement Context.
    pub enum Meal: u8 {
        Preprandial = 1 => "preprandial",
        Postprandial = 2 => "postprandial",
        Fasting = 3 => "fasting",
        Casual = 4 => "casual",
        Bedtime = 5 => "bedtime",
    }
}

code_enum! {
    /// Tester (low nibble of the Tester-Health octet).
    pub enum Tester: u8 {
        SelfTest = 1 => "self",
        HealthCareProfessional = 2 => "health_care_professional",
        LabTest = 3 => "lab_test",
        NotAvailable = 15 => "not_available",
    }
}

code_enum! {
    /// Health (high nibble of the Tester-Health octet).
    pub enum Health: u8 {
        MinorHealthIssues = 1 => "minor_health_issues",
        MajorHealthIssues = 2 => "major_health_issues",
        DuringMenses = 3 => "during_menses",
        UnderStress = 4 => "under_stress",
        NoHealthIssues = 5 => "no_health_issues",
        NotAvailable = 15 => "not_available",
    }
}

code_enum! {
    /// Carbohydrate ID of the Glucose Measurement Context: which meal the carbohydrate was for.
    pub enum CarbohydrateId: u8 {
        Breakfast = 1 => "breakfast",
        Lunch = 2 => "lunch",
        Dinner = 3 => "dinner",
        Snack = 4 => "snack",
        Drink = 5 => "drink",
        Supper = 6 => "supper",
        Brunch = 7 => "brunch",
    }
}

code_enum! {
    /// Medication ID of the Glucose Measurement Context.
    pub enum MedicationId: u8 {
        RapidActingInsulin = 1 => "rapid_acting_insulin",
        ShortActingInsulin = 2 => "short_acting_insulin",
        IntermediateActingInsulin = 3 => "intermediate_acting_insulin",
        LongActingInsulin = 4 => "long_acting_insulin",
        PreMixedInsulin = 5 => "pre_mixed_insulin",
    }
}

// Glucose Measurement flags.
const TIME_OFFSET: u8 = 1 << 0;
const CONCENTRATION: u8 = 1 << 1;
const UNITS_MOL_PER_LITRE: u8 = 1 << 2;
const SENSOR_STATUS: u8 = 1 << 3;
const CONTEXT_FOLLOWS: u8 = 1 << 4;
const MEASUREMENT_FLAGS: u8 = 0x1F;

// Glucose Measurement Context flags (all eight bits are defined).
const CARBOHYDRATE: u8 = 1 << 0;
const MEAL: u8 = 1 << 1;
const TESTER_HEALTH: u8 = 1 << 2;
const EXERCISE: u8 = 1 << 3;
const MEDICATION: u8 = 1 << 4;
const MEDICATION_LITRES: u8 = 1 << 5;
const HBA1C: u8 = 1 << 6;
const EXTENDED_FLAGS: u8 = 1 << 7;

/// The reserved Meal code CareSens meters use to mark a blood ketone reading.
const KETONE_MEAL_CODE: u8 = 0x06;
/// Exercise Duration 0xFFFF: the duration overran the field.
const EXERCISE_OVERRUN: u16 = 0xFFFF;

bit_flags! {
    /// Sensor Status Annunciation of a glucose measurement. Bit 5 is "higher", bit 6 "lower"
    /// than the device can process (the SIG table; some public parsers swap them).
    pub struct SensorStatusAnnunciation: u16 {
        /// b0: device battery low at the time of measurement.
        device_battery_low = 0,
        /// b1: sensor malfunction or faulting at the time of measurement.
        sensor_malfunction = 1,
        /// b2: sample size for blood or control solution insufficient.
        sample_size_insufficient = 2,
        /// b3: strip insertion error.
        strip_insertion_error = 3,
        /// b4: strip type incorrect for the device.
        strip_type_incorrect = 4,
        /// b5: sensor result HIGHER than the device can process.
        result_too_high = 5,
        /// b6: sensor result LOWER than the device can process.
        result_too_low = 6,
        /// b7: sensor temperature too high for a valid result.
        temperature_too_high = 7,
        /// b8: sensor temperature too low for a valid result.
        temperature_too_low = 8,
        /// b9: read interrupted because the strip was pulled too soon.
        read_interrupted = 9,
        /// b10: general device fault in the sensor.
        general_device_fault = 10,
        /// b11: time fault; the time may be inaccurate.
        time_fault = 11,
    }
}

impl SensorStatusAnnunciation {
    fn reading_status(&self) -> ReadingStatus {
        ReadingStatus {
            battery_low: self.device_battery_low,
            device_fault: self.sensor_malfunction || self.general_device_fault,
            sample_problem: self.sample_size_insufficient
                || self.strip_insertion_error
                || self.strip_type_incorrect
                || self.read_interrupted,
            above_range: self.result_too_high,
            below_range: self.result_too_low,
            temperature_out_of_range: self.temperature_too_high || self.temperature_too_low,
            time_fault: self.time_fault,
            ..ReadingStatus::default()
        }
    }
}

/// A 4-bit code for one half of a shared octet; reserved codes above 15 cannot be sent.
fn nibble(code: u8, field: &'static str) -> Result<u8, EncodeError> {
    if code > 0x0F {
        return Err(EncodeError::Unrepresentable {
            field,
            reason: "the code must fit in 4 bits",
        });
    }
    Ok(code)
}

/// Two optional fields that one flag announces together: both or neither.
fn both<A, B>(
    a: Option<A>,
    b: Option<B>,
    field: &'static str,
    reason: &'static str,
) -> Result<Option<(A, B)>, EncodeError> {
    match (a, b) {
        (Some(a), Some(b)) => Ok(Some((a, b))),
        (None, None) => Ok(None),
        _ => Err(EncodeError::Unrepresentable { field, reason }),
    }
}

/// `value` in a unit `10^by` times smaller: only the exponent moves, so every digit is kept.
fn shift(value: MedValue, by: i8) -> Option<MedValue> {
    match value {
        MedValue::Special(_) => Some(value),
        MedValue::Number(d) => i8::try_from(i16::from(d.exponent) + i16::from(by))
            .ok()
            .map(|e| MedValue::Number(Decimal::new(d.mantissa, e))),
    }
}

/// Power of ten from a mass unit to the kilograms the wire carries.
fn to_kilograms(unit: Unit) -> Option<i8> {
    match unit {
        Unit::Kilogram => Some(0),
        Unit::Gram => Some(-3),
        Unit::Milligram => Some(-6),
        _ => None,
    }
}

/// Encodes `q` as an SFLOAT in the wire's unit, `10^by` times larger than the quantity's.
fn sfloat_shifted(q: Quantity, by: i8, field: &'static str) -> Result<u16, EncodeError> {
    let value = shift(q.value, by).ok_or(EncodeError::Unrepresentable {
        field,
        reason: "exponent out of range",
    })?;
    encode_sfloat(value, field)
}

/// Glucose Measurement (0x2A18), notified once per record, live or from storage via RACP.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
pub struct GlucoseMeasurement {
    /// Links the record to its context and is the key for catch-up and deduplication.
    pub sequence_number: u16,
    /// Device-local time of the record, before the time offset.
    pub base_time: DateTime,
    /// Minutes to add to the base time (the device's clock corrections since).
    pub time_offset: Option<i16>,
    /// In kg/L or mol/L, as the units flag says.
    #[cfg_attr(feature = "serde", serde(rename = "concentration"))]
    pub glucose_concentration: Option<Quantity>,
    /// Low nibble of the Type-Sample Location octet; present with the concentration.
    #[cfg_attr(feature = "serde", serde(rename = "type"))]
    pub glucose_type: Option<GlucoseType>,
    /// High nibble of the Type-Sample Location octet; present with the concentration.
    pub sample_location: Option<GlucoseSampleLocation>,
    /// What the meter noticed about the sample, strip and itself.
    pub sensor_status_annunciation: Option<SensorStatusAnnunciation>,
    /// A Glucose Measurement Context with the same sequence number follows.
    pub context_information_follows: bool,
}

fn measurement_len(flags: u8) -> usize {
    let mut len = 1 + 2 + DateTime::LEN;
    if flags & TIME_OFFSET != 0 {
        len += 2;
    }
    if flags & CONCENTRATION != 0 {
        len += 3;
    }
    if flags & SENSOR_STATUS != 0 {
        len += 2;
    }
    len
}

impl GlucoseMeasurement {
    /// Base time plus time offset. A base time with an unknown year, month or day cannot take
    /// the offset and is kept as it came ([`DeviceTime::Incomplete`]); so is a result beyond
    /// the representable years.
    pub fn device_time(&self) -> DeviceTime {
        match self.time_offset {
            None => DeviceTime::from_time_stamp(Some(self.base_time)),
            Some(offset) => self
                .base_time
                .plus_minutes(i32::from(offset))
                .map_or(DeviceTime::Incomplete(self.base_time), DeviceTime::Known),
        }
    }
}

impl Characteristic for GlucoseMeasurement {
    const UUID: u16 = uuid::GLUCOSE_MEASUREMENT;
    const NAME: &'static str = "glucose_measurement";
    const MAX_LEN: usize = 17;

    fn decode_with(bytes: &[u8], _quirks: Quirks) -> Result<Decoded<Self>, DecodeError> {
        let mut r = Reader::new(bytes);
        let flags = r.u8("flags")?;
        r.announce(measurement_len(flags));
        let sequence_number = r.u16("sequence_number")?;
        let base_time = DateTime::read(&mut r, "base_time")?;
        let time_offset = if flags & TIME_OFFSET != 0 {
            Some(r.i16("time_offset")?)
        } else {
            None
        };
        let (glucose_concentration, glucose_type, sample_location) = if flags & CONCENTRATION != 0 {
            let unit = if flags & UNITS_MOL_PER_LITRE != 0 {
                Unit::MolePerLitre
            } else {
                Unit::KilogramPerLitre
            };
            let concentration = decode_sfloat(r.u16("glucose_concentration")?);
            let type_location = r.u8("glucose_type")?;
            (
                Some(Quantity::new(concentration, unit)),
                Some(GlucoseType::from_code(type_location & 0x0F)),
                Some(GlucoseSampleLocation::from_code(type_location >> 4)),
            )
        } else {
            (None, None, None)
        };
        let sensor_status_annunciation = if flags & SENSOR_STATUS != 0 {
            let bits = r.u16("sensor_status_annunciation")?;
            Some(SensorStatusAnnunciation::from_bits(bits))
        } else {
            None
        };
        let value = Self {
            sequence_number,
            base_time,
            time_offset,
            glucose_concentration,
            glucose_type,
            sample_location,
            sensor_status_annunciation,
            context_information_follows: flags & CONTEXT_FOLLOWS != 0,
        };
        Ok(r.finish(value, u32::from(flags & !MEASUREMENT_FLAGS)))
    }

    fn encode_with(&self, out: &mut [u8], _quirks: Quirks) -> Result<usize, EncodeError> {
        let mut flags = 0;
        if self.time_offset.is_some() {
            flags |= TIME_OFFSET;
        }
        let sample = match (
            self.glucose_concentration,
            self.glucose_type,
            self.sample_location,
        ) {
            (Some(concentration), Some(kind), Some(location)) => {
                flags |= CONCENTRATION;
                match concentration.unit {
                    Unit::KilogramPerLitre => {}
                    Unit::MolePerLitre => flags |= UNITS_MOL_PER_LITRE,
                    _ => {
                        return Err(EncodeError::Unrepresentable {
                            field: "glucose_concentration",
                            reason: "glucose concentration must be in kg/L or mol/L",
                        });
                    }
                }
                let octet = nibble(kind.code(), "glucose_type")?
                    | nibble(location.code(), "sample_location")? << 4;
                Some((
                    encode_sfloat(concentration.value, "glucose_concentration")?,
                    octet,
                ))
            }
            (None, None, None) => None,
            _ => {
                return Err(EncodeError::Unrepresentable {
                    field: "glucose_concentration",
                    reason: "concentration, type and sample location come together or not at all",
                });
            }
        };
        if self.sensor_status_annunciation.is_some() {
            flags |= SENSOR_STATUS;
        }
        if self.context_information_follows {
            flags |= CONTEXT_FOLLOWS;
        }
        let mut w = Writer::new(out);
        w.reserve(measurement_len(flags))?;
        w.u8(flags)?;
        w.u16(self.sequence_number)?;
        self.base_time.write(&mut w, "base_time")?;
        if let Some(offset) = self.time_offset {
            w.i16(offset)?;
        }
        if let Some((concentration, octet)) = sample {
            w.u16(concentration)?;
            w.u8(octet)?;
        }
        if let Some(status) = &self.sensor_status_annunciation {
            w.u16(status.bits())?;
        }
        Ok(w.len())
    }
}

impl ToReadings for GlucoseMeasurement {
    /// The readings of the measurement alone, as if no context came with it.
    fn readings(&self) -> Readings {
        GlucoseRecord {
            measurement: *self,
            context: None,
        }
        .readings()
    }
}

/// Glucose Measurement Context (0x2A34): what the patient did around a measurement. It follows
/// the measurement with the same sequence number.
///
/// Units: the SIG gives Carbohydrate in kilograms and Medication in kilograms or litres (the
/// SFLOAT carries its own exponent, typically -3 and -6). relais shifts only the exponent, so
/// no digit changes: carbohydrate is reported in g, medication in mg or mL. A device that puts
/// grams on the wire (as Nordic's parser assumes) therefore reads 1000 times too large; relais
/// follows the SIG.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
pub struct GlucoseMeasurementContext {
    /// The sequence number of the measurement this context belongs to.
    pub sequence_number: u16,
    /// Extended Flags: every bit is reserved; kept so a value round-trips.
    pub extended_flags: Option<u8>,
    /// Which meal the carbohydrate was for; present with the carbohydrate.
    pub carbohydrate_id: Option<CarbohydrateId>,
    /// In g (kg on the wire); present with the carbohydrate ID.
    pub carbohydrate: Option<Quantity>,
    /// `None` when the meal octet is the ketone marker (see `blood_ketone`).
    pub meal: Option<Meal>,
    /// The reading is a blood ketone, not a glucose: set only when decoded with
    /// `Quirks::ketone_meal_code` from Meal 0x06, and sent back as Meal 0x06.
    pub blood_ketone: bool,
    /// Low nibble of the Tester-Health octet; present with the health.
    pub tester: Option<Tester>,
    /// High nibble of the Tester-Health octet; present with the tester.
    pub health: Option<Health>,
    /// In s; +INF when the device reports an overrun (0xFFFF). Present with the intensity.
    pub exercise_duration: Option<Quantity>,
    /// In %; present with the duration.
    pub exercise_intensity: Option<Quantity>,
    /// Which insulin; present with the medication.
    pub medication_id: Option<MedicationId>,
    /// In mg (kg on the wire) or mL (L on the wire); present with the medication ID.
    pub medication: Option<Quantity>,
    /// HbA1c in %.
    pub hba1c: Option<Quantity>,
}

fn context_len(flags: u8) -> usize {
    let mut len = 1 + 2;
    for (flag, n) in [
        (EXTENDED_FLAGS, 1),
        (CARBOHYDRATE, 3),
        (MEAL, 1),
        (TESTER_HEALTH, 1),
        (EXERCISE, 3),
        (MEDICATION, 3),
        (HBA1C, 2),
    ] {
        if flags & flag != 0 {
            len += n;
        }
    }
    len
}

fn carbohydrate_from_wire(raw: u16) -> Quantity {
    // kg -> g: exponent + 3; wire exponents are -8..=7, so this cannot overflow.
    let value = decode_sfloat(raw);
    Quantity::new(shift(value, 3).unwrap_or(value), Unit::Gram)
}

fn medication_from_wire(raw: u16, litres: bool) -> Quantity {
    let value = decode_sfloat(raw);
    let (by, unit) = if litres {
        (3, Unit::Millilitre)
    } else {
        (6, Unit::Milligram)
    };
    Quantity::new(shift(value, by).unwrap_or(value), unit)
}

fn exercise_duration_from_wire(raw: u16) -> Quantity {
    let value = if raw == EXERCISE_OVERRUN {
        MedValue::Special(Special::PositiveInfinity)
    } else {
        MedValue::number(i64::from(raw), 0)
    };
    Quantity::new(value, Unit::Second)
}

/// The meal and ketone marker a Meal octet stands for under `quirks`.
fn meal_from_wire(code: u8, quirks: Quirks) -> (Option<Meal>, bool) {
    if quirks.ketone_meal_code && code == KETONE_MEAL_CODE {
        (None, true)
    } else {
        (Some(Meal::from_code(code)), false)
    }
}

/// A whole number of `unit` within `max`, for the integer fields of the context.
fn integer(q: Quantity, unit: Unit, max: u16, field: &'static str) -> Result<u16, EncodeError> {
    let reason = match q.value {
        _ if q.unit != unit => "wrong unit",
        MedValue::Number(d) => match d.as_multiple_of(Decimal::new(1, 0)) {
            Some(n) => match u16::try_from(n) {
                Ok(n) if n <= max => return Ok(n),
                _ => "out of range",
            },
            None => "must be a whole number",
        },
        MedValue::Special(_) => "special values cannot be sent",
    };
    Err(EncodeError::Unrepresentable { field, reason })
}

impl Characteristic for GlucoseMeasurementContext {
    const UUID: u16 = uuid::GLUCOSE_MEASUREMENT_CONTEXT;
    const NAME: &'static str = "glucose_measurement_context";
    const MAX_LEN: usize = 17;

    /// The flags octet has no reserved bit; set bits of the (wholly reserved) Extended Flags
    /// are reported in `reserved_flags` bits 8-15.
    fn decode_with(bytes: &[u8], quirks: Quirks) -> Result<Decoded<Self>, DecodeError> {
        let mut r = Reader::new(bytes);
        let flags = r.u8("flags")?;
        r.announce(context_len(flags));
        let sequence_number = r.u16("sequence_number")?;
        let extended_flags = if flags & EXTENDED_FLAGS != 0 {
            Some(r.u8("extended_flags")?)
        } else {
            None
        };
        let (carbohydrate_id, carbohydrate) = if flags & CARBOHYDRATE != 0 {
            let id = CarbohydrateId::from_code(r.u8("carbohydrate_id")?);
            (
                Some(id),
                Some(carbohydrate_from_wire(r.u16("carbohydrate")?)),
            )
        } else {
            (None, None)
        };
        let (meal, blood_ketone) = if flags & MEAL != 0 {
            meal_from_wire(r.u8("meal")?, quirks)
        } else {
            (None, false)
        };
        let (tester, health) = if flags & TESTER_HEALTH != 0 {
            let octet = r.u8("tester")?;
            (
                Some(Tester::from_code(octet & 0x0F)),
                Some(Health::from_code(octet >> 4)),
            )
        } else {
            (None, None)
        };
        let (exercise_duration, exercise_intensity) = if flags & EXERCISE != 0 {
            let duration = exercise_duration_from_wire(r.u16("exercise_duration")?);
            let intensity = r.u8("exercise_intensity")?;
            let intensity = Quantity::new(MedValue::number(intensity.into(), 0), Unit::Percent);
            (Some(duration), Some(intensity))
        } else {
            (None, None)
        };
        let (medication_id, medication) = if flags & MEDICATION != 0 {
            let id = MedicationId::from_code(r.u8("medication_id")?);
            let raw = r.u16("medication")?;
            (
                Some(id),
                Some(medication_from_wire(raw, flags & MEDICATION_LITRES != 0)),
            )
        } else {
            (None, None)
        };
        let hba1c = if flags & HBA1C != 0 {
            Some(Quantity::new(decode_sfloat(r.u16("hba1c")?), Unit::Percent))
        } else {
            None
        };
        let value = Self {
            sequence_number,
            extended_flags,
            carbohydrate_id,
            carbohydrate,
            meal,
            blood_ketone,
            tester,
            health,
            exercise_duration,
            exercise_intensity,
            medication_id,
            medication,
            hba1c,
        };
        Ok(r.finish(value, u32::from(extended_flags.unwrap_or(0)) << 8))
    }

    fn encode_with(&self, out: &mut [u8], quirks: Quirks) -> Result<usize, EncodeError> {
        let mut flags = 0;
        if self.extended_flags.is_some() {
            flags |= EXTENDED_FLAGS;
        }
        let carbohydrate = both(
            self.carbohydrate_id,
            self.carbohydrate,
            "carbohydrate",
            "carbohydrate ID and carbohydrate come together or not at all",
        )?
        .map(|(id, amount)| {
            let by = to_kilograms(amount.unit).ok_or(EncodeError::Unrepresentable {
                field: "carbohydrate",
                reason: "carbohydrate must be a mass in kg, g or mg",
            })?;
            Ok::<_, EncodeError>((id.code(), sfloat_shifted(amount, by, "carbohydrate")?))
        })
        .transpose()?;
        if carbohydrate.is_some() {
            flags |= CARBOHYDRATE;
        }
        let meal = match (self.meal, self.blood_ketone) {
            (None, false) => None,
            (Some(_), true) => {
                return Err(EncodeError::Unrepresentable {
                    field: "meal",
                    reason: "a blood ketone marker replaces the meal",
                });
            }
            (None, true) if quirks.ketone_meal_code => Some(KETONE_MEAL_CODE),
            (None, true) => {
                return Err(EncodeError::Unrepresentable {
                    field: "meal",
                    reason: "the blood ketone marker exists only with the ketone_meal_code quirk",
                });
            }
            (Some(meal), false) => {
                if quirks.ketone_meal_code && meal.code() == KETONE_MEAL_CODE {
                    return Err(EncodeError::Unrepresentable {
                        field: "meal",
                        reason: "meal 0x06 means blood ketone under the ketone_meal_code quirk",
                    });
                }
                Some(meal.code())
            }
        };
        if meal.is_some() {
            flags |= MEAL;
        }
        let tester_health = both(
            self.tester,
            self.health,
            "tester",
            "tester and health come together or not at all",
        )?
        .map(|(tester, health)| {
            Ok::<_, EncodeError>(
                nibble(tester.code(), "tester")? | nibble(health.code(), "health")? << 4,
            )
        })
        .transpose()?;
        if tester_health.is_some() {
            flags |= TESTER_HEALTH;
        }
        let exercise = both(
            self.exercise_duration,
            self.exercise_intensity,
            "exercise_duration",
            "exercise duration and intensity come together or not at all",
        )?
        .map(|(duration, intensity)| {
            let duration = match duration.value {
                MedValue::Special(Special::PositiveInfinity) if duration.unit == Unit::Second => {
                    EXERCISE_OVERRUN
                }
                _ => integer(
                    duration,
                    Unit::Second,
                    EXERCISE_OVERRUN - 1,
                    "exercise_duration",
                )?,
            };
            let intensity = integer(intensity, Unit::Percent, 0xFF, "exercise_intensity")?;
            Ok::<_, EncodeError>((duration, intensity as u8))
        })
        .transpose()?;
        if exercise.is_some() {
            flags |= EXERCISE;
        }
        let medication = both(
            self.medication_id,
            self.medication,
            "medication",
            "medication ID and medication come together or not at all",
        )?
        .map(|(id, amount)| {
            let by = match amount.unit {
                Unit::Millilitre => {
                    flags |= MEDICATION_LITRES;
                    -3
                }
                unit => to_kilograms(unit).ok_or(EncodeError::Unrepresentable {
                    field: "medication",
                    reason: "medication must be a mass (kg, g, mg) or a volume (mL)",
                })?,
            };
            Ok::<_, EncodeError>((id.code(), sfloat_shifted(amount, by, "medication")?))
        })
        .transpose()?;
        if medication.is_some() {
            flags |= MEDICATION;
        }
        let hba1c = self
            .hba1c
            .map(|q| {
                if q.unit != Unit::Percent {
                    return Err(EncodeError::Unrepresentable {
                        field: "hba1c",
                        reason: "HbA1c must be in %",
                    });
                }
                encode_sfloat(q.value, "hba1c")
            })
            .transpose()?;
        if hba1c.is_some() {
            flags |= HBA1C;
        }

        let mut w = Writer::new(out);
        w.reserve(context_len(flags))?;
        w.u8(flags)?;
        w.u16(self.sequence_number)?;
        if let Some(extended) = self.extended_flags {
            w.u8(extended)?;
        }
        if let Some((id, amount)) = carbohydrate {
            w.u8(id)?;
            w.u16(amount)?;
        }
        if let Some(meal) = meal {
            w.u8(meal)?;
        }
        if let Some(octet) = tester_health {
            w.u8(octet)?;
        }
        if let Some((duration, intensity)) = exercise {
            w.u16(duration)?;
            w.u8(intensity)?;
        }
        if let Some((id, amount)) = medication {
            w.u8(id)?;
            w.u16(amount)?;
        }
        if let Some(hba1c) = hba1c {
            w.u16(hba1c)?;
        }
        Ok(w.len())
    }
}

bit_flags! {
    /// Glucose Feature (0x2A51): which sensor checks the meter performs.
    pub struct GlucoseFeature: u16 {
        low_battery_detection = 0,
        sensor_malfunction_detection = 1,
        sensor_sample_size = 2,
        sensor_strip_insertion_error_detection = 3,
        sensor_strip_type_error_detection = 4,
        sensor_result_high_low_detection = 5,
        sensor_temperature_high_low_detection = 6,
        sensor_read_interrupt_detection = 7,
        general_device_fault = 8,
        time_fault = 9,
        multiple_bond = 10,
    }
}

impl Characteristic for GlucoseFeature {
    const UUID: u16 = uuid::GLUCOSE_FEATURE;
    const NAME: &'static str = "glucose_feature";
    const MAX_LEN: usize = 2;

    fn decode_with(bytes: &[u8], _quirks: Quirks) -> Result<Decoded<Self>, DecodeError> {
        let mut r = Reader::new(bytes);
        let bits = r.u16("glucose_feature")?;
        Ok(r.finish(Self::from_bits(bits), u32::from(bits & !Self::DEFINED)))
    }

    fn encode_with(&self, out: &mut [u8], _quirks: Quirks) -> Result<usize, EncodeError> {
        let mut w = Writer::new(out);
        w.u16(self.bits())?;
        Ok(w.len())
    }
}

/// A glucose measurement with the context that followed it, if any: the unit a gateway turns
/// into readings. [`ContextMatcher`] builds these with matching sequence numbers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
pub struct GlucoseRecord {
    /// The measurement, which sets the value, time and sequence number.
    pub measurement: GlucoseMeasurement,
    /// Its context, with the same sequence number, when one came.
    pub context: Option<GlucoseMeasurementContext>,
}

impl ToReadings for GlucoseRecord {
    /// One reading: blood glucose in mg/dL (interstitial glucose for an ISF sample; blood
    /// ketone in mmol/L when the context carries the ketone marker). A measurement without a
    /// concentration yields NaN with `measurement_unsuccessful`, so its sensor status is kept.
    /// A ketone in kg/L stays in kg/L and is marked `questionable`: with no molar mass on the
    /// wire, relais cannot convert it to mmol/L.
    fn readings(&self) -> Readings {
        let m = &self.measurement;
        let ketone = self.context.is_some_and(|c| c.blood_ketone);
        let kind = if ketone {
            Kind::BloodKetone
        } else if m.glucose_type == Some(GlucoseType::InterstitialFluid) {
            Kind::InterstitialGlucose
        } else {
            Kind::BloodGlucose
        };
        let mut status = m
            .sensor_status_annunciation
            .map(|s| s.reading_status())
            .unwrap_or_default();
        let reported = m.glucose_concentration.unwrap_or_else(|| {
            status.measurement_unsuccessful = true;
            Quantity::special(Special::NaN, kind.canonical_unit())
        });
        if ketone && reported.unit == Unit::KilogramPerLitre {
            status.questionable = true;
        }
        status.control_solution = m.glucose_type == Some(GlucoseType::ControlSolution)
            || m.sample_location == Some(GlucoseSampleLocation::ControlSolution);
        let mut reading = Reading::new(kind, reported)
            .at(m.device_time())
            .status(status);
        reading.sequence_number = Some(m.sequence_number);
        reading.context.glucose_type = m.glucose_type;
        reading.context.sample_location = m.sample_location;
        if let Some(context) = &self.context {
            reading.context.meal = context.meal;
            reading.context.tester = context.tester;
            reading.context.health = context.health;
        }
        let mut out = Readings::new();
        let _ = out.push(reading);
        out
    }
}

/// What [`ContextMatcher`] hands back.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(
    feature = "serde",
    derive(serde::Serialize),
    serde(rename_all = "snake_case")
)]
pub enum MatchEvent {
    /// A complete record, with its context or without one.
    Record(GlucoseRecord),
    /// A context whose measurement is not the one held: logged, never attached by guess.
    OrphanContext(GlucoseMeasurementContext),
}

/// Up to two events for one input: a released held record, then the new one.
pub type MatchEvents = heapless::Vec<MatchEvent, 2>;

/// Pairs Glucose Measurements with the Contexts that follow them, sans I/O and without
/// allocation: it holds at most one measurement.
///
/// - A measurement without `context_information_follows` is emitted at once.
/// - A measurement with it is held until the context with the same sequence number arrives.
/// - A context that does not match the held measurement (or arrives when none is held) is an
///   orphan; the held measurement stays held.
/// - A measurement arriving while one is held releases the held one without context first
///   (the meter skipped the context it announced; the record itself is still good).
/// - At the end of a transfer (RACP response, timeout, disconnection) call [`Self::flush`].
#[derive(Debug, Clone, Copy, Default)]
pub struct ContextMatcher {
    pending: Option<GlucoseMeasurement>,
}

impl ContextMatcher {
    /// A matcher holding nothing.
    pub const fn new() -> Self {
        Self { pending: None }
    }

    /// Feeds a measurement; returns the held record it releases, if any, then this one if it
    /// needs no context.
    pub fn measurement(&mut self, measurement: GlucoseMeasurement) -> MatchEvents {
        let mut out = MatchEvents::new();
        if let Some(held) = self.pending.take() {
            let _ = out.push(MatchEvent::Record(GlucoseRecord {
                measurement: held,
                context: None,
            }));
        }
        if measurement.context_information_follows {
            self.pending = Some(measurement);
        } else {
            let _ = out.push(MatchEvent::Record(GlucoseRecord {
                measurement,
                context: None,
            }));
        }
        out
    }

    /// Feeds a context: the held record completed by it, or the context as an orphan.
    pub fn context(&mut self, context: GlucoseMeasurementContext) -> MatchEvent {
        match self.pending {
            Some(held) if held.sequence_number == context.sequence_number => {
                self.pending = None;
                MatchEvent::Record(GlucoseRecord {
                    measurement: held,
                    context: Some(context),
                })
            }
            _ => MatchEvent::OrphanContext(context),
        }
    }

    /// Releases the held measurement, without context, when no more notifications will come.
    pub fn flush(&mut self) -> Option<GlucoseRecord> {
        self.pending.take().map(|measurement| GlucoseRecord {
            measurement,
            context: None,
        })
    }

    /// The measurement waiting for its context.
    pub fn pending(&self) -> Option<&GlucoseMeasurement> {
        self.pending.as_ref()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ReadingValue;
    use crate::test_support::{date_time, roundtrip, sfloat};
    use jiff::civil;
    use proptest::prelude::*;

    const KETONE: Quirks = Quirks {
        ketone_meal_code: true,
        ..Quirks::NONE
    };

    fn value(readings: &Readings) -> Quantity {
        match readings[0].value {
            ReadingValue::Single(q) => q,
            ReadingValue::BloodPressure { .. } => panic!("not a single value"),
        }
    }

    fn q(m: i64, e: i8, unit: Unit) -> Quantity {
        Quantity::decimal(Decimal::new(m, e), unit)
    }

    /// Flags time offset + concentration (kg/L) + status; seq 1; 2024-03-05 08:30:15; +5 min;
    /// 100e-5 kg/L; capillary plasma at the finger; no status bit.
    const FULL: [u8; 17] = [
        0x0B, 0x01, 0x00, 0xE8, 0x07, 0x03, 0x05, 0x08, 0x1E, 0x0F, 0x05, 0x00, 0x64, 0xB0, 0x12,
        0x00, 0x00,
    ];

    fn with_status(bits: u16) -> GlucoseMeasurement {
        let mut bytes = FULL;
        bytes[15..].copy_from_slice(&bits.to_le_bytes());
        GlucoseMeasurement::decode(&bytes).unwrap().value
    }

    #[test]
    fn decodes_a_full_measurement() {
        let d = GlucoseMeasurement::decode(&FULL).unwrap();
        assert_eq!((d.trailing, d.reserved_flags), (0, 0));
        let m = d.value;
        assert_eq!(m.sequence_number, 1);
        assert_eq!(Some(m.base_time), DateTime::new(2024, 3, 5, 8, 30, 15));
        assert_eq!(m.time_offset, Some(5));
        assert_eq!(
            m.glucose_concentration,
            Some(q(100, -5, Unit::KilogramPerLitre))
        );
        assert_eq!(m.glucose_type, Some(GlucoseType::CapillaryPlasma));
        assert_eq!(m.sample_location, Some(GlucoseSampleLocation::Finger));
        assert_eq!(
            m.sensor_status_annunciation,
            Some(SensorStatusAnnunciation::default())
        );
        assert!(!m.context_information_follows);
    }

    #[test]
    fn reads_type_from_the_low_nibble_and_location_from_the_high_nibble() {
        let mut bytes = FULL;
        bytes[14] = 0x2A; // location 2 (AST), type 10 (control solution)
        let m = GlucoseMeasurement::decode(&bytes).unwrap().value;
        assert_eq!(m.glucose_type, Some(GlucoseType::ControlSolution));
        assert_eq!(
            m.sample_location,
            Some(GlucoseSampleLocation::AlternateSiteTest)
        );
    }

    #[test]
    fn status_bit_5_is_higher_and_bit_6_lower_than_the_device_can_process() {
        // Nordic's parser swaps these two; the SIG table (and Cordio, Wireshark) do not.
        let high = with_status(0x0020);
        let status = high.sensor_status_annunciation.unwrap();
        assert!(status.result_too_high && !status.result_too_low);
        let r = high.readings();
        assert!(r[0].status.above_range && !r[0].status.below_range);

        let low = with_status(0x0040);
        let status = low.sensor_status_annunciation.unwrap();
        assert!(status.result_too_low && !status.result_too_high);
        let r = low.readings();
        assert!(r[0].status.below_range && !r[0].status.above_range);
    }

    #[test]
    fn sensor_status_bits_map_onto_reading_status() {
        type Check = fn(&ReadingStatus) -> bool;
        let cases: [(u16, Check); 12] = [
            (1 << 0, |s| s.battery_low),
            (1 << 1, |s| s.device_fault),
            (1 << 2, |s| s.sample_problem),
            (1 << 3, |s| s.sample_problem),
            (1 << 4, |s| s.sample_problem),
            (1 << 5, |s| s.above_range),
            (1 << 6, |s| s.below_range),
            (1 << 7, |s| s.temperature_out_of_range),
            (1 << 8, |s| s.temperature_out_of_range),
            (1 << 9, |s| s.sample_problem),
            (1 << 10, |s| s.device_fault),
            (1 << 11, |s| s.time_fault),
        ];
        for (bit, check) in cases {
            let status = with_status(bit).readings()[0].status;
            assert!(check(&status), "bit {bit:#06x}");
            assert_eq!(status.bits().count_ones(), 1, "bit {bit:#06x}");
        }
    }

    #[test]
    fn reading_is_glucose_in_mg_per_dl_at_base_time_plus_offset() {
        let r = GlucoseMeasurement::decode(&FULL).unwrap().value.readings();
        assert_eq!(r.len(), 1);
        assert_eq!(r[0].kind, Kind::BloodGlucose);
        assert_eq!(value(&r), q(100, 0, Unit::MilligramPerDecilitre));
        assert_eq!(
            r[0].time,
            DeviceTime::Known(civil::date(2024, 3, 5).at(8, 35, 15, 0))
        );
        assert_eq!(r[0].sequence_number, Some(1));
        assert_eq!(r[0].user, None);
        assert_eq!(
            r[0].context.glucose_type,
            Some(GlucoseType::CapillaryPlasma)
        );
        assert_eq!(
            r[0].context.sample_location,
            Some(GlucoseSampleLocation::Finger)
        );
        assert!(!r[0].status.control_solution);
    }

    #[test]
    fn negative_time_offset_crosses_midnight() {
        let mut bytes = FULL;
        bytes[10..12].copy_from_slice(&(-600i16).to_le_bytes());
        let r = GlucoseMeasurement::decode(&bytes).unwrap().value.readings();
        assert_eq!(
            r[0].time,
            DeviceTime::Known(civil::date(2024, 3, 4).at(22, 30, 15, 0))
        );
    }

    #[test]
    fn unknown_date_keeps_the_base_time_incomplete() {
        let mut bytes = FULL;
        bytes[3..5].copy_from_slice(&[0, 0]); // year not known
        let m = GlucoseMeasurement::decode(&bytes).unwrap().value;
        assert_eq!(m.readings()[0].time, DeviceTime::Incomplete(m.base_time));
    }

    #[test]
    fn mol_per_litre_becomes_mg_per_dl() {
        // Flags concentration + mol/L; 55e-4 mol/L = 5.5 mmol/L = 99 mg/dL (two digits).
        let bytes = [
            0x06, 0x02, 0x00, 0xE8, 0x07, 0x03, 0x05, 0x08, 0x1E, 0x0F, 0x37, 0xC0, 0x11,
        ];
        let m = GlucoseMeasurement::decode(&bytes).unwrap().value;
        assert_eq!(m.glucose_concentration, Some(q(55, -4, Unit::MolePerLitre)));
        assert_eq!(m.time_offset, None);
        let r = m.readings();
        assert_eq!(value(&r), q(99, 0, Unit::MilligramPerDecilitre));
        assert_eq!(
            r[0].time,
            DeviceTime::Known(civil::date(2024, 3, 5).at(8, 30, 15, 0))
        );
    }

    #[test]
    fn control_solution_is_flagged_and_isf_is_interstitial() {
        let mut bytes = FULL;
        bytes[14] = 0x1A; // finger, control solution
        let r = GlucoseMeasurement::decode(&bytes).unwrap().value.readings();
        assert!(r[0].status.control_solution);
        bytes[14] = 0x41; // control solution location, capillary whole blood type
        let r = GlucoseMeasurement::decode(&bytes).unwrap().value.readings();
        assert!(r[0].status.control_solution);
        bytes[14] = 0x29; // AST, interstitial fluid
        let r = GlucoseMeasurement::decode(&bytes).unwrap().value.readings();
        assert_eq!(r[0].kind, Kind::InterstitialGlucose);
    }

    #[test]
    fn measurement_without_concentration_is_an_unsuccessful_nan() {
        // Status only: strip insertion error.
        let bytes = [
            0x08, 0x07, 0x00, 0xE8, 0x07, 0x03, 0x05, 0x08, 0x1E, 0x0F, 0x08, 0x00,
        ];
        let r = GlucoseMeasurement::decode(&bytes).unwrap().value.readings();
        assert_eq!(
            value(&r),
            Quantity::special(Special::NaN, Unit::MilligramPerDecilitre)
        );
        assert!(r[0].status.measurement_unsuccessful && r[0].status.sample_problem);
    }

    #[test]
    fn names_the_missing_measurement_field_with_byte_counts() {
        let err = GlucoseMeasurement::decode(&FULL[..11]).unwrap_err();
        assert_eq!(
            err,
            DecodeError::Truncated {
                field: "time_offset",
                needed: 17,
                present: 11
            }
        );
        let err = GlucoseMeasurement::decode(&FULL[..14]).unwrap_err();
        assert_eq!(err.field(), "glucose_type");
        let err = GlucoseMeasurement::decode(&FULL[..5]).unwrap_err();
        assert_eq!(err.field(), "base_time");
    }

    #[test]
    fn measurement_trailing_bytes_and_reserved_flags_are_reported() {
        let mut bytes = [0u8; 19];
        bytes[..17].copy_from_slice(&FULL);
        bytes[0] |= 0x80;
        let d = GlucoseMeasurement::decode(&bytes).unwrap();
        assert_eq!((d.trailing, d.reserved_flags), (2, 0x80));
    }

    #[test]
    fn special_concentrations_stay_special() {
        let mut bytes = FULL;
        bytes[12..14].copy_from_slice(&[0xFE, 0x07]);
        let m = GlucoseMeasurement::decode(&bytes).unwrap().value;
        let special = Quantity::special(Special::PositiveInfinity, Unit::KilogramPerLitre);
        assert_eq!(m.glucose_concentration, Some(special));
        let r = m.readings();
        assert_eq!(
            value(&r),
            Quantity::special(Special::PositiveInfinity, Unit::MilligramPerDecilitre)
        );
    }

    #[test]
    fn measurement_encoder_rejects_inconsistent_values() {
        let mut m = GlucoseMeasurement::decode(&FULL).unwrap().value;
        let mut out = [0u8; 20];
        m.glucose_type = None;
        assert!(matches!(
            m.encode(&mut out),
            Err(EncodeError::Unrepresentable {
                field: "glucose_concentration",
                ..
            })
        ));
        m.glucose_type = Some(GlucoseType::Reserved(16));
        assert!(matches!(
            m.encode(&mut out),
            Err(EncodeError::Unrepresentable {
                field: "glucose_type",
                ..
            })
        ));
        m.glucose_type = Some(GlucoseType::CapillaryPlasma);
        m.glucose_concentration = Some(q(100, 0, Unit::MilligramPerDecilitre));
        assert!(matches!(
            m.encode(&mut out),
            Err(EncodeError::Unrepresentable {
                field: "glucose_concentration",
                ..
            })
        ));
    }

    /// Every context field: carbohydrate breakfast 50e-3 kg; preprandial; self, no health
    /// issues; 1800 s at 50 %; rapid-acting insulin 10e-6 kg; HbA1c 6.5 %.
    const CONTEXT: [u8; 16] = [
        0x5F, 0x01, 0x00, 0x01, 0x32, 0xD0, 0x01, 0x51, 0x08, 0x07, 0x32, 0x01, 0x0A, 0xA0, 0x41,
        0xF0,
    ];

    #[test]
    fn decodes_a_full_context_in_sig_units() {
        let d = GlucoseMeasurementContext::decode(&CONTEXT).unwrap();
        assert_eq!((d.trailing, d.reserved_flags), (0, 0));
        let c = d.value;
        assert_eq!(c.sequence_number, 1);
        assert_eq!(c.extended_flags, None);
        assert_eq!(c.carbohydrate_id, Some(CarbohydrateId::Breakfast));
        assert_eq!(c.carbohydrate, Some(q(50, 0, Unit::Gram)));
        assert_eq!(c.meal, Some(Meal::Preprandial));
        assert!(!c.blood_ketone);
        assert_eq!(c.tester, Some(Tester::SelfTest));
        assert_eq!(c.health, Some(Health::NoHealthIssues));
        assert_eq!(c.exercise_duration, Some(q(1800, 0, Unit::Second)));
        assert_eq!(c.exercise_intensity, Some(q(50, 0, Unit::Percent)));
        assert_eq!(c.medication_id, Some(MedicationId::RapidActingInsulin));
        assert_eq!(c.medication, Some(q(10, 0, Unit::Milligram)));
        assert_eq!(c.hba1c, Some(q(65, -1, Unit::Percent)));
        let mut out = [0u8; 20];
        let n = c.encode(&mut out).unwrap();
        assert_eq!(&out[..n], &CONTEXT);
    }

    #[test]
    fn medication_in_litres_is_reported_in_millilitres() {
        // Flags medication + litres; seq 2; long-acting insulin 2e-3 L.
        let c = GlucoseMeasurementContext::decode(&[0x30, 0x02, 0x00, 0x04, 0x02, 0xD0])
            .unwrap()
            .value;
        assert_eq!(c.medication_id, Some(MedicationId::LongActingInsulin));
        assert_eq!(c.medication, Some(q(2, 0, Unit::Millilitre)));
    }

    #[test]
    fn extended_flags_come_before_the_carbohydrate() {
        let d =
            GlucoseMeasurementContext::decode(&[0x81, 0x03, 0x00, 0x40, 0x02, 0x32, 0xD0]).unwrap();
        assert_eq!(d.value.extended_flags, Some(0x40));
        assert_eq!(d.reserved_flags, 0x40 << 8);
        assert_eq!(d.value.carbohydrate_id, Some(CarbohydrateId::Lunch));
        assert_eq!(d.value.carbohydrate, Some(q(50, 0, Unit::Gram)));
    }

    #[test]
    fn tester_is_the_low_nibble_and_health_the_high_nibble() {
        let c = GlucoseMeasurementContext::decode(&[0x04, 0x01, 0x00, 0x23])
            .unwrap()
            .value;
        assert_eq!(c.tester, Some(Tester::LabTest));
        assert_eq!(c.health, Some(Health::MajorHealthIssues));
    }

    #[test]
    fn exercise_overrun_is_positive_infinity() {
        let c = GlucoseMeasurementContext::decode(&[0x08, 0x01, 0x00, 0xFF, 0xFF, 0x64])
            .unwrap()
            .value;
        assert_eq!(
            c.exercise_duration,
            Some(Quantity::special(Special::PositiveInfinity, Unit::Second))
        );
        let mut out = [0u8; 8];
        let n = c.encode(&mut out).unwrap();
        assert_eq!(&out[..n], &[0x08, 0x01, 0x00, 0xFF, 0xFF, 0x64]);
    }

    #[test]
    fn names_the_missing_context_field_with_byte_counts() {
        let err = GlucoseMeasurementContext::decode(&CONTEXT[..9]).unwrap_err();
        assert_eq!(
            err,
            DecodeError::Truncated {
                field: "exercise_duration",
                needed: 16,
                present: 9
            }
        );
        let err = GlucoseMeasurementContext::decode(&[0x80, 0x01, 0x00]).unwrap_err();
        assert_eq!(
            err,
            DecodeError::Truncated {
                field: "extended_flags",
                needed: 4,
                present: 3
            }
        );
    }

    #[test]
    fn context_trailing_bytes_are_reported() {
        let d = GlucoseMeasurementContext::decode(&[0x02, 0x01, 0x00, 0x03, 0xAA]).unwrap();
        assert_eq!(d.trailing, 1);
        assert_eq!(d.value.meal, Some(Meal::Fasting));
    }

    #[test]
    fn meal_6_is_reserved_unless_the_ketone_quirk_is_on() {
        let bytes = [0x02, 0x09, 0x00, 0x06];
        let plain = GlucoseMeasurementContext::decode(&bytes).unwrap().value;
        assert_eq!(plain.meal, Some(Meal::Reserved(6)));
        assert!(!plain.blood_ketone);
        let ketone = GlucoseMeasurementContext::decode_with(&bytes, KETONE)
            .unwrap()
            .value;
        assert_eq!(ketone.meal, None);
        assert!(ketone.blood_ketone);
        let mut out = [0u8; 8];
        let n = ketone.encode_with(&mut out, KETONE).unwrap();
        assert_eq!(&out[..n], &bytes);
        assert!(ketone.encode(&mut out).is_err());
        assert!(plain.encode_with(&mut out, KETONE).is_err());
    }

    fn measurement_with_context(concentration: [u8; 2], mol: bool) -> GlucoseMeasurement {
        let flags = 0x12 | if mol { UNITS_MOL_PER_LITRE } else { 0 };
        let bytes = [
            flags,
            0x09,
            0x00,
            0xE8,
            0x07,
            0x03,
            0x05,
            0x08,
            0x1E,
            0x0F,
            concentration[0],
            concentration[1],
            0x11,
        ];
        GlucoseMeasurement::decode(&bytes).unwrap().value
    }

    #[test]
    fn ketone_in_mol_per_litre_becomes_mmol_per_litre() {
        let measurement = measurement_with_context([0x0C, 0xC0], true); // 12e-4 mol/L
        let context = GlucoseMeasurementContext::decode_with(&[0x02, 0x09, 0x00, 0x06], KETONE)
            .unwrap()
            .value;
        let r = GlucoseRecord {
            measurement,
            context: Some(context),
        }
        .readings();
        assert_eq!(r[0].kind, Kind::BloodKetone);
        assert_eq!(value(&r), q(12, -1, Unit::MillimolePerLitre));
        assert!(!r[0].status.questionable);
        assert_eq!(r[0].context.meal, None);
    }

    #[test]
    fn ketone_in_kg_per_litre_keeps_its_unit_and_is_questionable() {
        let measurement = measurement_with_context([0x0C, 0xB0], false);
        let context = GlucoseMeasurementContext::decode_with(&[0x02, 0x09, 0x00, 0x06], KETONE)
            .unwrap()
            .value;
        let r = GlucoseRecord {
            measurement,
            context: Some(context),
        }
        .readings();
        assert_eq!(r[0].kind, Kind::BloodKetone);
        assert_eq!(value(&r), q(12, -5, Unit::KilogramPerLitre));
        assert!(r[0].status.questionable);
    }

    #[test]
    fn record_readings_carry_the_context() {
        let measurement = measurement_with_context([0x64, 0xB0], false);
        let context = GlucoseMeasurementContext::decode(&CONTEXT).unwrap().value;
        let r = GlucoseRecord {
            measurement,
            context: Some(context),
        }
        .readings();
        assert_eq!(r[0].kind, Kind::BloodGlucose);
        assert_eq!(r[0].context.meal, Some(Meal::Preprandial));
        assert_eq!(r[0].context.tester, Some(Tester::SelfTest));
        assert_eq!(r[0].context.health, Some(Health::NoHealthIssues));
        assert_eq!(
            r[0].context.glucose_type,
            Some(GlucoseType::CapillaryWholeBlood)
        );
        assert_eq!(
            r[0].context.sample_location,
            Some(GlucoseSampleLocation::Finger)
        );
    }

    #[test]
    fn decodes_the_feature_bits() {
        let d = GlucoseFeature::decode(&[0x21, 0x84]).unwrap();
        assert!(d.value.low_battery_detection);
        assert!(d.value.sensor_result_high_low_detection);
        assert!(d.value.multiple_bond);
        assert!(!d.value.time_fault);
        assert_eq!(d.reserved_flags, 0x8000);
    }

    fn measurement_seq(seq: u16, follows: bool) -> GlucoseMeasurement {
        GlucoseMeasurement {
            sequence_number: seq,
            context_information_follows: follows,
            ..measurement_with_context([0x64, 0xB0], false)
        }
    }

    fn context_seq(seq: u16) -> GlucoseMeasurementContext {
        GlucoseMeasurementContext {
            sequence_number: seq,
            ..GlucoseMeasurementContext::decode(&CONTEXT).unwrap().value
        }
    }

    fn record(m: GlucoseMeasurement, c: Option<GlucoseMeasurementContext>) -> MatchEvent {
        MatchEvent::Record(GlucoseRecord {
            measurement: m,
            context: c,
        })
    }

    #[test]
    fn matcher_emits_a_measurement_without_context_at_once() {
        let mut matcher = ContextMatcher::new();
        let m = measurement_seq(1, false);
        assert_eq!(matcher.measurement(m).as_slice(), &[record(m, None)]);
        assert!(matcher.pending().is_none());
    }

    #[test]
    fn matcher_holds_a_measurement_until_its_context() {
        let mut matcher = ContextMatcher::new();
        let m = measurement_seq(7, true);
        assert!(matcher.measurement(m).is_empty());
        assert_eq!(matcher.pending(), Some(&m));
        let c = context_seq(7);
        assert_eq!(matcher.context(c), record(m, Some(c)));
        assert!(matcher.flush().is_none());
    }

    #[test]
    fn matcher_reports_a_mismatched_context_as_orphan_and_keeps_holding() {
        let mut matcher = ContextMatcher::new();
        let m = measurement_seq(7, true);
        let _ = matcher.measurement(m);
        let stray = context_seq(6);
        assert_eq!(matcher.context(stray), MatchEvent::OrphanContext(stray));
        assert_eq!(matcher.pending(), Some(&m));
        assert_eq!(
            ContextMatcher::new().context(stray),
            MatchEvent::OrphanContext(stray)
        );
    }

    #[test]
    fn matcher_releases_the_held_measurement_when_a_new_one_arrives() {
        let mut matcher = ContextMatcher::new();
        let first = measurement_seq(7, true);
        let second = measurement_seq(8, false);
        let _ = matcher.measurement(first);
        assert_eq!(
            matcher.measurement(second).as_slice(),
            &[record(first, None), record(second, None)]
        );
        let third = measurement_seq(9, true);
        let _ = matcher.measurement(third);
        assert_eq!(
            matcher.flush(),
            Some(GlucoseRecord {
                measurement: third,
                context: None
            })
        );
    }

    fn measurement() -> impl Strategy<Value = GlucoseMeasurement> {
        let sample = (sfloat(), any::<bool>(), 0u8..16, 0u8..16);
        (
            any::<u16>(),
            date_time(),
            proptest::option::of(any::<i16>()),
            proptest::option::of(sample),
            proptest::option::of(any::<u16>()),
            any::<bool>(),
        )
            .prop_map(
                |(sequence_number, base_time, time_offset, sample, status, follows)| {
                    let unit = |mol| {
                        if mol {
                            Unit::MolePerLitre
                        } else {
                            Unit::KilogramPerLitre
                        }
                    };
                    GlucoseMeasurement {
                        sequence_number,
                        base_time,
                        time_offset,
                        glucose_concentration: sample
                            .map(|(v, mol, _, _)| Quantity::new(v, unit(mol))),
                        glucose_type: sample.map(|(_, _, t, _)| GlucoseType::from_code(t)),
                        sample_location: sample
                            .map(|(_, _, _, l)| GlucoseSampleLocation::from_code(l)),
                        sensor_status_annunciation: status.map(SensorStatusAnnunciation::from_bits),
                        context_information_follows: follows,
                    }
                },
            )
    }

    fn context(quirks: Quirks) -> impl Strategy<Value = GlucoseMeasurementContext> {
        (
            (any::<u16>(), proptest::option::of(any::<u8>())),
            proptest::option::of((any::<u8>(), any::<u16>())),
            proptest::option::of(any::<u8>()),
            proptest::option::of((0u8..16, 0u8..16)),
            proptest::option::of((any::<u16>(), any::<u8>())),
            proptest::option::of((any::<u8>(), any::<u16>(), any::<bool>())),
            proptest::option::of(sfloat()),
        )
            .prop_map(
                move |((seq, extended_flags), carb, meal, tester, exercise, medication, hba1c)| {
                    let (meal, blood_ketone) =
                        meal.map_or((None, false), |m| meal_from_wire(m, quirks));
                    GlucoseMeasurementContext {
                        sequence_number: seq,
                        extended_flags,
                        carbohydrate_id: carb.map(|(id, _)| CarbohydrateId::from_code(id)),
                        carbohydrate: carb.map(|(_, raw)| carbohydrate_from_wire(raw)),
                        meal,
                        blood_ketone,
                        tester: tester.map(|(t, _)| Tester::from_code(t)),
                        health: tester.map(|(_, h)| Health::from_code(h)),
                        exercise_duration: exercise.map(|(d, _)| exercise_duration_from_wire(d)),
                        exercise_intensity: exercise.map(|(_, i)| {
                            Quantity::new(MedValue::number(i.into(), 0), Unit::Percent)
                        }),
                        medication_id: medication.map(|(id, _, _)| MedicationId::from_code(id)),
                        medication: medication.map(|(_, raw, l)| medication_from_wire(raw, l)),
                        hba1c: hba1c.map(|v| Quantity::new(v, Unit::Percent)),
                    }
                },
            )
    }

    #[derive(Debug, Clone)]
    enum Input {
        Measurement(u16, bool),
        Context(u16),
    }

    proptest! {
        #[test]
        fn measurement_roundtrips(m in measurement()) {
            roundtrip(&m, Quirks::NONE)?;
        }

        #[test]
        fn context_roundtrips(c in context(Quirks::NONE)) {
            roundtrip(&c, Quirks::NONE)?;
        }

        #[test]
        fn context_roundtrips_with_the_ketone_quirk(c in context(KETONE)) {
            roundtrip(&c, KETONE)?;
        }

        #[test]
        fn feature_roundtrips(bits in any::<u16>()) {
            roundtrip(&GlucoseFeature::from_bits(bits), Quirks::NONE)?;
        }

        #[test]
        fn decoding_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..32)) {
            let _ = GlucoseMeasurement::decode(&bytes).map(|d| d.value.readings());
            let _ = GlucoseMeasurementContext::decode(&bytes);
            let _ = GlucoseMeasurementContext::decode_with(&bytes, KETONE);
            let _ = GlucoseFeature::decode(&bytes);
        }

        #[test]
        fn matcher_emits_every_measurement_exactly_once(
            inputs in proptest::collection::vec(
                prop_oneof![
                    (0u16..4, any::<bool>()).prop_map(|(s, f)| Input::Measurement(s, f)),
                    (0u16..4).prop_map(Input::Context),
                ],
                0..24,
            )
        ) {
            let mut matcher = ContextMatcher::new();
            let (mut fed, mut records, mut contexts, mut orphans) = (0, 0, 0, 0);
            let count = |e: &MatchEvent, records: &mut usize, orphans: &mut usize| match e {
                MatchEvent::Record(r) => {
                    *records += 1;
                    if let Some(c) = r.context {
                        assert_eq!(c.sequence_number, r.measurement.sequence_number);
                    }
                }
                MatchEvent::OrphanContext(_) => *orphans += 1,
            };
            let mut attached = 0;
            for input in inputs {
                match input {
                    Input::Measurement(s, f) => {
                        fed += 1;
                        for e in &matcher.measurement(measurement_seq(s, f)) {
                            count(e, &mut records, &mut orphans);
                        }
                    }
                    Input::Context(s) => {
                        contexts += 1;
                        let e = matcher.context(context_seq(s));
                        if matches!(e, MatchEvent::Record(_)) {
                            attached += 1;
                        }
                        count(&e, &mut records, &mut orphans);
                    }
                }
            }
            records += usize::from(matcher.flush().is_some());
            prop_assert_eq!(records, fed);
            prop_assert_eq!(attached + orphans, contexts);
        }
    }
}
