//! Physical quantities: a value (decimal or 11073 special) with its UCUM unit.

use crate::float::{Decimal, MedValue, Special};

/// UCUM units that health devices report.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Unit {
    Kilogram,
    Pound,
    Gram,
    Milligram,
    Metre,
    Centimetre,
    Inch,
    KilogramPerSquareMetre,
    Percent,
    Kilojoule,
    Ohm,
    MillimetreOfMercury,
    Kilopascal,
    PerMinute,
    Celsius,
    Fahrenheit,
    KilogramPerLitre,
    MolePerLitre,
    MilligramPerDecilitre,
    MillimolePerLitre,
    MilligramPerDecilitrePerMinute,
    Millilitre,
    Second,
    Minute,
}

impl Unit {
    /// The UCUM case-sensitive code.
    pub const fn ucum(self) -> &'static str {
        match self {
            Self::Kilogram => "kg",
            Self::Pound => "[lb_av]",
            Self::Gram => "g",
            Self::Milligram => "mg",
            Self::Metre => "m",
            Self::Centimetre => "cm",
            Self::Inch => "[in_i]",
            Self::KilogramPerSquareMetre => "kg/m2",
            Self::Percent => "%",
            Self::Kilojoule => "kJ",
            Self::Ohm => "Ohm",
            Self::MillimetreOfMercury => "mm[Hg]",
            Self::Kilopascal => "kPa",
            Self::PerMinute => "/min",
            Self::Celsius => "Cel",
            Self::Fahrenheit => "[degF]",
            Self::KilogramPerLitre => "kg/L",
            Self::MolePerLitre => "mol/L",
            Self::MilligramPerDecilitre => "mg/dL",
            Self::MillimolePerLitre => "mmol/L",
            Self::MilligramPerDecilitrePerMinute => "mg/dL/min",
            Self::Millilitre => "mL",
            Self::Second => "s",
            Self::Minute => "min",
        }
    }
}

/// A measured value and its unit, exactly as the device reported it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Quantity {
    pub value: MedValue,
    pub unit: Unit,
}

impl Quantity {
    pub const fn new(value: MedValue, unit: Unit) -> Self {
        Self { value, unit }
    }

    pub const fn decimal(value: Decimal, unit: Unit) -> Self {
        Self::new(MedValue::Number(value), unit)
    }

    pub const fn special(special: Special, unit: Unit) -> Self {
        Self::new(MedValue::Special(special), unit)
    }

    pub fn to_f64(&self) -> Option<f64> {
        self.value.to_f64()
    }
}

#[cfg(feature = "serde")]
impl serde::Serialize for Quantity {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let mut map = s.serialize_map(None)?;
        match self.value {
            MedValue::Number(d) => map.serialize_entry("value", &DecimalNumber(d))?,
            MedValue::Special(_) => map.serialize_entry("value", &())?,
        }
        map.serialize_entry("unit", self.unit.ucum())?;
        if let MedValue::Special(special) = self.value {
            map.serialize_entry("special", special.name())?;
        }
        map.end()
    }
}

/// A decimal printed as an integer when it is one, else as the nearest binary float (which JSON
/// printers render with the shortest digits that round-trip, e.g. `72.35`).
#[cfg(feature = "serde")]
struct DecimalNumber(Decimal);

#[cfg(feature = "serde")]
impl serde::Serialize for DecimalNumber {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let d = self.0;
        if d.exponent >= 0
            && let Some(v) = 10i64
                .checked_pow(u32::from(d.exponent.unsigned_abs()))
                .and_then(|p| d.mantissa.checked_mul(p))
        {
            return s.serialize_i64(v);
        }
        s.serialize_f64(d.to_f64())
    }
}
