//! From a [`Reading`] to the measure MES takes, and from that measure to the Observation of its
//! profile (reference table 1.2 and §1.4).
//!
//! What is sent, per measure:
//!
//! | measure | code | unit | also |
//! |---|---|---|---|
//! | body weight | LOINC 29463-7 | kg | |
//! | body height | LOINC 8302-2 | cm | |
//! | waist circumference | LOINC 8280-0 | cm | no Bluetooth source: [`Measurement::waist_circumference`] |
//! | blood pressure | LOINC 85354-9 | | components 8480-6 and 8462-4 in `mm[Hg]`, no mean, no value; bodySite J149 (arm unless told wrist) |
//! | heart rate | LOINC 8867-4 | /min | from heart rate sensors and from the pulse of cuffs and oximeters |
//! | blood glucose | NOS-LOINC 2345-7 | mg/dL | moment extension (J157) always, number-of-days never |
//! | body temperature | LOINC 8310-5 | Cel | bodySite J151 |
//! | oxygen saturation | LOINC 2708-6 | % | ANS 3.x profile only |
//! | interstitial glucose mean, GMI | NOS-TAASIP MED-969, MED-972 | mg/dL, % | number-of-days extension, no moment ([`super::cgm`]) |
//!
//! Glucose moment, from the Glucose Measurement Context's meal: preprandial → 88365-2 "before
//! meal", postprandial → 16915-1, fasting → 53049-3, casual, bedtime, a reserved code or no
//! context → LA46-8 "other" (MES requires the extension, and "other" claims nothing).
//!
//! Temperature site, from the Temperature Type: armpit → FMA 24864, ear and tympanum → 52780,
//! mouth → 49184, rectum → 14544. JDV J151 is a required binding with only these (plus temple and
//! forehead, which Bluetooth cannot express), so "body (general)", finger, toe and
//! gastrointestinal tract cannot be sent, nor a reading whose site nobody reported.
//!
//! Refused, with a typed reason ([`Unsendable`]): kinds without an MES profile (BMI, which MES
//! computes itself and refuses; body composition other than weight and height; impedance;
//! intermediate cuff pressure; energy expended; pulse amplitude index; ketone; single CGM
//! points), specials (NaN, NRes, ±INF), and readings the device marks unusable (see
//! [`UNUSABLE`]). Quality warnings that leave the value meaningful (body movement, cuff too
//! loose, irregular pulse, improper position, low battery, sensor temperature) do not stop a
//! reading; MES profiles have no element for them.

use jiff::Timestamp;
use jiff::civil;
use relais_protocol::glucose::Meal;
use relais_protocol::thermometer::TemperatureType;
use relais_protocol::{
    Decimal, DeviceTime, Kind, MedValue, Quantity, Reading, ReadingStatus, ReadingValue,
};
use serde_json::{Map, Value, json};

use super::Unsendable;
use super::cgm::CgmWindow;
use super::codes::{self, Coding, MeasureKind};
use super::device::CuffSite;
use super::units::quantity;

/// Why a reading carries no usable time.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Undated {
    #[error("the reading has no time stamp")]
    NoTimeStamp,
    #[error("the time stamp's year, month or day is unknown")]
    IncompleteTimeStamp,
    #[error("the device says its clock is not set")]
    ClockNotSet,
    #[error("the device reports a time fault")]
    TimeFault,
}

/// When a measurement was taken, as far as the hub knows before any correction.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MeasurementTime {
    /// The device's wall clock, uncorrected.
    Device(civil::DateTime),
    /// No usable device time.
    Undated(Undated),
    /// A true instant computed by the hub (the end of a CGM aggregate window).
    Instant(Timestamp),
}

/// The moment of a blood glucose measurement (JDV J157).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum GlucoseMoment {
    BeforeMeal,
    AfterMeal,
    Fasting,
    Other,
}

impl GlucoseMoment {
    /// The moment a Glucose Measurement Context's meal stands for (see the module doc).
    pub fn from_meal(meal: Option<Meal>) -> Self {
        match meal {
            Some(Meal::Preprandial) => Self::BeforeMeal,
            Some(Meal::Postprandial) => Self::AfterMeal,
            Some(Meal::Fasting) => Self::Fasting,
            Some(Meal::Casual | Meal::Bedtime | Meal::Reserved(_)) | None => Self::Other,
        }
    }

    pub const fn coding(self) -> Coding {
        match self {
            Self::BeforeMeal => codes::MOMENT_BEFORE_MEAL,
            Self::AfterMeal => codes::MOMENT_AFTER_MEAL,
            Self::Fasting => codes::MOMENT_FASTING,
            Self::Other => codes::MOMENT_OTHER,
        }
    }
}

/// A value MES takes, in its profile's unit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Measure {
    BodyWeight(Decimal),
    BodyHeight(Decimal),
    WaistCircumference(Decimal),
    BloodPressure {
        systolic: Decimal,
        diastolic: Decimal,
    },
    HeartRate(Decimal),
    BloodGlucose {
        value: Decimal,
        moment: GlucoseMoment,
    },
    /// `site` is the measurement's own Temperature Type; the device's is used when absent.
    BodyTemperature {
        value: Decimal,
        site: Option<TemperatureType>,
    },
    OxygenSaturation(Decimal),
    /// Mean interstitial glucose (mg/dL) over a window.
    InterstitialGlucoseMean {
        value: Decimal,
        window: CgmWindow,
    },
    /// Glucose management indicator (%) over a window.
    GlucoseManagementIndicator {
        value: Decimal,
        window: CgmWindow,
    },
}

impl Measure {
    pub const fn kind(&self) -> MeasureKind {
        match self {
            Self::BodyWeight(_) => MeasureKind::BodyWeight,
            Self::BodyHeight(_) => MeasureKind::BodyHeight,
            Self::WaistCircumference(_) => MeasureKind::WaistCircumference,
            Self::BloodPressure { .. } => MeasureKind::BloodPressure,
            Self::HeartRate(_) => MeasureKind::HeartRate,
            Self::BloodGlucose { .. } => MeasureKind::BloodGlucose,
            Self::BodyTemperature { .. } => MeasureKind::BodyTemperature,
            Self::OxygenSaturation(_) => MeasureKind::OxygenSaturation,
            Self::InterstitialGlucoseMean { .. } => MeasureKind::InterstitialGlucose,
            Self::GlucoseManagementIndicator { .. } => MeasureKind::GlucoseManagementIndicator,
        }
    }

    /// The value as text for the dedup key: the exact decimal, `systolic-diastolic` for a blood
    /// pressure.
    pub fn value_text(&self) -> String {
        match *self {
            Self::BloodPressure {
                systolic,
                diastolic,
            } => format!("{systolic}-{diastolic}"),
            Self::BodyWeight(v)
            | Self::BodyHeight(v)
            | Self::WaistCircumference(v)
            | Self::HeartRate(v)
            | Self::OxygenSaturation(v)
            | Self::BloodGlucose { value: v, .. }
            | Self::BodyTemperature { value: v, .. }
            | Self::InterstitialGlucoseMean { value: v, .. }
            | Self::GlucoseManagementIndicator { value: v, .. } => v.to_string(),
        }
    }

    /// The number-of-days code of a CGM aggregate.
    pub const fn window(&self) -> Option<CgmWindow> {
        match *self {
            Self::InterstitialGlucoseMean { window, .. }
            | Self::GlucoseManagementIndicator { window, .. } => Some(window),
            _ => None,
        }
    }
}

/// A measure with its time: what [`super::map_measurement`] turns into a Bundle.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Measurement {
    pub measure: Measure,
    pub time: MeasurementTime,
    /// Sent from the device's memory rather than live: such a reading is never dated by its
    /// reception.
    pub from_storage: bool,
}

/// Status flags that make a value unusable, by name. A pulse rate flagged out of range is
/// unusable too (the cuff's blood pressure beside it is not).
pub const UNUSABLE: [&str; 9] = [
    "intermediate",
    "measurement_unsuccessful",
    "control_solution",
    "device_fault",
    "sample_problem",
    "questionable",
    "above_range",
    "below_range",
    "no_contact",
];

fn unusable_flag(kind: Kind, s: &ReadingStatus) -> Option<&'static str> {
    let flags = [
        s.intermediate,
        s.measurement_unsuccessful,
        s.control_solution,
        s.device_fault,
        s.sample_problem,
        s.questionable,
        s.above_range,
        s.below_range,
        s.no_contact,
    ];
    let found = UNUSABLE
        .into_iter()
        .zip(flags)
        .find_map(|(name, set)| set.then_some(name));
    found
        .or((kind == Kind::PulseRate && s.pulse_rate_out_of_range)
            .then_some("pulse_rate_out_of_range"))
}

/// Why MES has no place for a kind of reading; `None` for kinds it takes.
fn not_accepted(kind: Kind) -> Option<&'static str> {
    Some(match kind {
        Kind::BodyWeight
        | Kind::BodyHeight
        | Kind::BloodPressure
        | Kind::PulseRate
        | Kind::HeartRate
        | Kind::BloodGlucose
        | Kind::BodyTemperature
        | Kind::OxygenSaturation => return None,
        Kind::BodyMassIndex => {
            "MES computes BMI from weight and height and refuses it (422 NOTSUPPORTED)"
        }
        Kind::BodyFatPercentage
        | Kind::BasalMetabolism
        | Kind::MusclePercentage
        | Kind::MuscleMass
        | Kind::FatFreeMass
        | Kind::SoftLeanMass
        | Kind::BodyWaterMass
        | Kind::Impedance => "no MES profile for body composition beyond weight and height",
        Kind::CuffPressure => "an intermediate cuff pressure is progress, not a result",
        Kind::EnergyExpended => "no MES profile for energy expended",
        Kind::PulseAmplitudeIndex => "no MES profile for the pulse amplitude index",
        Kind::BloodKetone => "no MES profile for ketones",
        Kind::InterstitialGlucose => {
            "MES takes CGM aggregates over 7 to 90 days (see fhir::cgm), not single points"
        }
    })
}

/// The name of a reading kind, as relais prints it.
pub const fn kind_name(kind: Kind) -> &'static str {
    match kind {
        Kind::BodyWeight => "body_weight",
        Kind::BodyHeight => "body_height",
        Kind::BodyMassIndex => "body_mass_index",
        Kind::BodyFatPercentage => "body_fat_percentage",
        Kind::BasalMetabolism => "basal_metabolism",
        Kind::MusclePercentage => "muscle_percentage",
        Kind::MuscleMass => "muscle_mass",
        Kind::FatFreeMass => "fat_free_mass",
        Kind::SoftLeanMass => "soft_lean_mass",
        Kind::BodyWaterMass => "body_water_mass",
        Kind::Impedance => "impedance",
        Kind::BloodPressure => "blood_pressure",
        Kind::CuffPressure => "cuff_pressure",
        Kind::PulseRate => "pulse_rate",
        Kind::HeartRate => "heart_rate",
        Kind::EnergyExpended => "energy_expended",
        Kind::BloodGlucose => "blood_glucose",
        Kind::BloodKetone => "blood_ketone",
        Kind::InterstitialGlucose => "interstitial_glucose",
        Kind::BodyTemperature => "body_temperature",
        Kind::OxygenSaturation => "oxygen_saturation",
        Kind::PulseAmplitudeIndex => "pulse_amplitude_index",
    }
}

/// The decimal of `q`, which must be in `kind`'s canonical unit.
fn number(kind: Kind, q: &Quantity) -> Result<Decimal, Unsendable> {
    let expected = kind.canonical_unit();
    if q.unit != expected {
        return Err(Unsendable::UnexpectedUnit {
            found: q.unit.ucum(),
            expected: expected.ucum(),
        });
    }
    match q.value {
        MedValue::Number(d) => Ok(d),
        MedValue::Special(s) => Err(Unsendable::SpecialValue(s.name())),
    }
}

impl Measurement {
    /// The measurement a reading stands for, or why MES cannot take it.
    pub fn from_reading(reading: &Reading) -> Result<Self, Unsendable> {
        let kind = reading.kind;
        if let Some(why) = not_accepted(kind) {
            return Err(Unsendable::NotAccepted { kind, why });
        }
        if let Some(flag) = unusable_flag(kind, &reading.status) {
            return Err(Unsendable::UnusableStatus(flag));
        }
        let measure = match (kind, &reading.value) {
            (
                Kind::BloodPressure,
                ReadingValue::BloodPressure {
                    systolic,
                    diastolic,
                    ..
                },
            ) => {
                // The mean is not sent, so a special mean (common) does not matter.
                Measure::BloodPressure {
                    systolic: number(kind, systolic)?,
                    diastolic: number(kind, diastolic)?,
                }
            }
            (Kind::BloodPressure, ReadingValue::Single(_))
            | (_, ReadingValue::BloodPressure { .. }) => {
                return Err(Unsendable::Malformed("value shape does not match the kind"));
            }
            (_, ReadingValue::Single(q)) => {
                let v = number(kind, q)?;
                match kind {
                    Kind::BodyWeight => Measure::BodyWeight(v),
                    Kind::BodyHeight => Measure::BodyHeight(v),
                    Kind::PulseRate | Kind::HeartRate => Measure::HeartRate(v),
                    Kind::BloodGlucose => Measure::BloodGlucose {
                        value: v,
                        moment: GlucoseMoment::from_meal(reading.context.meal),
                    },
                    Kind::BodyTemperature => Measure::BodyTemperature {
                        value: v,
                        site: reading.context.temperature_type,
                    },
                    Kind::OxygenSaturation => Measure::OxygenSaturation(v),
                    _ => return Err(Unsendable::Malformed("kind without a measure")),
                }
            }
        };
        let time = if reading.status.clock_not_set {
            MeasurementTime::Undated(Undated::ClockNotSet)
        } else if reading.status.time_fault {
            MeasurementTime::Undated(Undated::TimeFault)
        } else {
            match reading.time {
                DeviceTime::Known(dt) => MeasurementTime::Device(dt),
                DeviceTime::Incomplete(_) => MeasurementTime::Undated(Undated::IncompleteTimeStamp),
                DeviceTime::Absent => MeasurementTime::Undated(Undated::NoTimeStamp),
            }
        };
        Ok(Self {
            measure,
            time,
            from_storage: reading.status.from_storage,
        })
    }

    /// A waist circumference in cm (no Bluetooth device reports one; a manual entry or another
    /// source can).
    pub fn waist_circumference(centimetres: Decimal, time: MeasurementTime) -> Self {
        Self {
            measure: Measure::WaistCircumference(centimetres),
            time,
            from_storage: false,
        }
    }
}

fn temperature_site(t: TemperatureType) -> Option<Coding> {
    match t {
        TemperatureType::Armpit => Some(codes::SITE_ARMPIT),
        TemperatureType::Ear | TemperatureType::Tympanum => Some(codes::SITE_EAR),
        TemperatureType::Mouth => Some(codes::SITE_MOUTH),
        TemperatureType::Rectum => Some(codes::SITE_RECTUM),
        TemperatureType::Body
        | TemperatureType::Finger
        | TemperatureType::GastrointestinalTract
        | TemperatureType::Toe
        | TemperatureType::Reserved(_) => None,
    }
}

/// What an Observation says besides its measure.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Context<'a> {
    pub id: &'a str,
    pub profile: &'static str,
    pub source: &'a str,
    /// `{"system": "urn:oid:<assigning authority>", "value": "<idPe>"}`.
    pub subject: &'a Value,
    pub effective: &'a str,
    pub device_id: &'a str,
    pub cuff_site: CuffSite,
    pub device_temperature_type: Option<TemperatureType>,
}

fn value_quantity(value: Decimal, kind: MeasureKind) -> Result<Value, Unsendable> {
    quantity(value, kind.ucum()).ok_or(Unsendable::ValueOutOfRange)
}

fn extension(url: &str, coding: Coding) -> Value {
    json!({"url": url, "valueCodeableConcept": coding.concept()})
}

/// The Observation for `measure`, elements in FHIR's order.
pub(crate) fn observation(measure: &Measure, ctx: &Context<'_>) -> Result<Value, Unsendable> {
    let kind = measure.kind();
    let mut o = Map::new();
    o.insert("resourceType".into(), json!("Observation"));
    o.insert("id".into(), json!(ctx.id));
    o.insert(
        "meta".into(),
        json!({"source": ctx.source, "profile": [ctx.profile]}),
    );
    match *measure {
        Measure::BloodGlucose { moment, .. } => {
            o.insert(
                "extension".into(),
                json!([extension(codes::EXT_MOMENT_OF_MEASUREMENT, moment.coding())]),
            );
        }
        Measure::InterstitialGlucoseMean { window, .. }
        | Measure::GlucoseManagementIndicator { window, .. } => {
            o.insert(
                "extension".into(),
                json!([extension(codes::EXT_NUMBER_OF_DAYS, window.coding())]),
            );
        }
        _ => {}
    }
    o.insert("status".into(), json!("final"));
    o.insert("category".into(), json!([codes::VITAL_SIGNS.concept()]));
    o.insert("code".into(), kind.code().concept());
    o.insert("subject".into(), json!({"identifier": ctx.subject}));
    o.insert("effectiveDateTime".into(), json!(ctx.effective));
    let mut components = None;
    match *measure {
        Measure::BloodPressure {
            systolic,
            diastolic,
        } => {
            let site = match ctx.cuff_site {
                CuffSite::Arm => codes::SITE_ARM,
                CuffSite::Wrist => codes::SITE_WRIST,
            };
            o.insert("bodySite".into(), site.concept());
            components = Some(json!([
                {"code": codes::SYSTOLIC.concept(), "valueQuantity": value_quantity(systolic, kind)?},
                {"code": codes::DIASTOLIC.concept(), "valueQuantity": value_quantity(diastolic, kind)?},
            ]));
        }
        Measure::BodyTemperature { value, site } => {
            o.insert("valueQuantity".into(), value_quantity(value, kind)?);
            let site = site
                .or(ctx.device_temperature_type)
                .ok_or(Unsendable::MissingTemperatureSite)?;
            let coding = temperature_site(site)
                .ok_or(Unsendable::UnsupportedTemperatureSite(site.name()))?;
            o.insert("bodySite".into(), coding.concept());
        }
        Measure::BodyWeight(v)
        | Measure::BodyHeight(v)
        | Measure::WaistCircumference(v)
        | Measure::HeartRate(v)
        | Measure::OxygenSaturation(v)
        | Measure::BloodGlucose { value: v, .. }
        | Measure::InterstitialGlucoseMean { value: v, .. }
        | Measure::GlucoseManagementIndicator { value: v, .. } => {
            o.insert("valueQuantity".into(), value_quantity(v, kind)?);
        }
    }
    o.insert(
        "device".into(),
        json!({"reference": format!("Device/{}", ctx.device_id)}),
    );
    if let Some(components) = components {
        o.insert("component".into(), components);
    }
    Ok(Value::Object(o))
}

#[cfg(test)]
mod tests {
    use relais_protocol::Unit;
    use relais_protocol::float::Special;
    use relais_protocol::glucose::Meal;

    use super::*;

    fn q(m: i64, e: i8, unit: Unit) -> Quantity {
        Quantity::decimal(Decimal::new(m, e), unit)
    }

    #[test]
    fn the_glucose_matrix_maps_every_meal() {
        for (meal, code) in [
            (Some(Meal::Preprandial), "88365-2"),
            (Some(Meal::Postprandial), "16915-1"),
            (Some(Meal::Fasting), "53049-3"),
            (Some(Meal::Casual), "LA46-8"),
            (Some(Meal::Bedtime), "LA46-8"),
            (Some(Meal::Reserved(9)), "LA46-8"),
            (None, "LA46-8"),
        ] {
            assert_eq!(
                GlucoseMoment::from_meal(meal).coding().code,
                code,
                "{meal:?}"
            );
        }
    }

    #[test]
    fn pulse_rate_and_heart_rate_both_become_heart_rate() {
        for kind in [Kind::PulseRate, Kind::HeartRate] {
            let m =
                Measurement::from_reading(&Reading::new(kind, q(72, 0, Unit::PerMinute))).unwrap();
            assert_eq!(m.measure, Measure::HeartRate(Decimal::new(72, 0)));
        }
    }

    #[test]
    fn kinds_without_a_profile_are_not_accepted() {
        for (kind, unit) in [
            (Kind::BodyMassIndex, Unit::KilogramPerSquareMetre),
            (Kind::BodyFatPercentage, Unit::Percent),
            (Kind::Impedance, Unit::Ohm),
            (Kind::CuffPressure, Unit::MillimetreOfMercury),
            (Kind::EnergyExpended, Unit::Kilojoule),
            (Kind::PulseAmplitudeIndex, Unit::Percent),
            (Kind::BloodKetone, Unit::MillimolePerLitre),
            (Kind::InterstitialGlucose, Unit::MilligramPerDecilitre),
            (Kind::MuscleMass, Unit::Kilogram),
        ] {
            let r = Reading::new(kind, q(10, 0, unit));
            assert!(
                matches!(Measurement::from_reading(&r), Err(Unsendable::NotAccepted { kind: k, .. }) if k == kind),
                "{kind:?}"
            );
        }
    }

    #[test]
    fn a_special_mean_pressure_does_not_stop_a_blood_pressure() {
        let r = Reading::blood_pressure(
            q(120, 0, Unit::MillimetreOfMercury),
            q(80, 0, Unit::MillimetreOfMercury),
            Quantity::special(Special::NaN, Unit::MillimetreOfMercury),
        );
        let m = Measurement::from_reading(&r).unwrap();
        assert_eq!(
            m.measure,
            Measure::BloodPressure {
                systolic: Decimal::new(120, 0),
                diastolic: Decimal::new(80, 0)
            }
        );
    }

    #[test]
    fn a_special_systolic_stops_a_blood_pressure() {
        let r = Reading::blood_pressure(
            Quantity::special(Special::NRes, Unit::MillimetreOfMercury),
            q(80, 0, Unit::MillimetreOfMercury),
            q(93, 0, Unit::MillimetreOfMercury),
        );
        assert_eq!(
            Measurement::from_reading(&r),
            Err(Unsendable::SpecialValue("NRes"))
        );
    }

    #[test]
    fn a_value_in_another_unit_is_refused() {
        // to_unit leaves units it cannot convert as reported.
        let mut r = Reading::new(Kind::BodyWeight, q(70, 0, Unit::Kilogram));
        r.value = ReadingValue::Single(q(70, 0, Unit::Gram));
        assert_eq!(
            Measurement::from_reading(&r),
            Err(Unsendable::UnexpectedUnit {
                found: "g",
                expected: "kg"
            })
        );
    }

    #[test]
    fn unusable_flags_stop_a_reading_and_warnings_do_not() {
        let base = Reading::new(Kind::BloodGlucose, q(95, 0, Unit::MilligramPerDecilitre));
        for (set, name) in [
            (
                ReadingStatus {
                    measurement_unsuccessful: true,
                    ..Default::default()
                },
                "measurement_unsuccessful",
            ),
            (
                ReadingStatus {
                    intermediate: true,
                    ..Default::default()
                },
                "intermediate",
            ),
            (
                ReadingStatus {
                    control_solution: true,
                    ..Default::default()
                },
                "control_solution",
            ),
            (
                ReadingStatus {
                    above_range: true,
                    ..Default::default()
                },
                "above_range",
            ),
            (
                ReadingStatus {
                    questionable: true,
                    ..Default::default()
                },
                "questionable",
            ),
        ] {
            assert_eq!(
                Measurement::from_reading(&base.status(set)),
                Err(Unsendable::UnusableStatus(name))
            );
        }
        let warned = ReadingStatus {
            battery_low: true,
            body_movement: true,
            irregular_pulse: true,
            temperature_out_of_range: true,
            from_storage: true,
            ..Default::default()
        };
        assert!(Measurement::from_reading(&base.status(warned)).is_ok());
    }

    #[test]
    fn an_out_of_range_pulse_is_refused_but_not_the_pressure_beside_it() {
        let status = ReadingStatus {
            pulse_rate_out_of_range: true,
            ..Default::default()
        };
        let pulse = Reading::new(Kind::PulseRate, q(210, 0, Unit::PerMinute)).status(status);
        assert_eq!(
            Measurement::from_reading(&pulse),
            Err(Unsendable::UnusableStatus("pulse_rate_out_of_range"))
        );
        let bp = Reading::blood_pressure(
            q(120, 0, Unit::MillimetreOfMercury),
            q(80, 0, Unit::MillimetreOfMercury),
            q(93, 0, Unit::MillimetreOfMercury),
        )
        .status(status);
        assert!(Measurement::from_reading(&bp).is_ok());
    }

    #[test]
    fn times_the_device_cannot_vouch_for_are_undated() {
        let dt = civil::date(2024, 3, 5).at(8, 30, 15, 0);
        let r = Reading::new(Kind::BodyWeight, q(70, 0, Unit::Kilogram));
        let time = |r: Reading| Measurement::from_reading(&r).unwrap().time;
        assert_eq!(
            time(r.at(DeviceTime::Known(dt))),
            MeasurementTime::Device(dt)
        );
        assert_eq!(time(r), MeasurementTime::Undated(Undated::NoTimeStamp));
        let stamp = relais_protocol::DateTime {
            year: None,
            ..relais_protocol::DateTime::from_civil(dt).unwrap()
        };
        assert_eq!(
            time(r.at(DeviceTime::Incomplete(stamp))),
            MeasurementTime::Undated(Undated::IncompleteTimeStamp)
        );
        let not_set = ReadingStatus {
            clock_not_set: true,
            ..Default::default()
        };
        assert_eq!(
            time(r.at(DeviceTime::Known(dt)).status(not_set)),
            MeasurementTime::Undated(Undated::ClockNotSet)
        );
    }

    #[test]
    fn temperature_sites_follow_jdv_j151() {
        for (t, code) in [
            (TemperatureType::Armpit, Some("24864")),
            (TemperatureType::Ear, Some("52780")),
            (TemperatureType::Tympanum, Some("52780")),
            (TemperatureType::Mouth, Some("49184")),
            (TemperatureType::Rectum, Some("14544")),
            (TemperatureType::Body, None),
            (TemperatureType::Finger, None),
            (TemperatureType::Toe, None),
            (TemperatureType::GastrointestinalTract, None),
        ] {
            assert_eq!(temperature_site(t).map(|c| c.code), code, "{t:?}");
        }
    }
}
