//! What a weighing leaves behind: the `Weighing` record the scale queues and stores, and its
//! Weight Measurement (0x2A9D) as the GATT layer indicates it.
//!
//! The record is small (it waits in RAM and in flash until the gateway confirms it) and already
//! holds the wire's fixed-point weight in the unit shown on the display, so what the gateway
//! receives is exactly what the user read.

use core::num::{NonZeroU8, NonZeroU16};

use relais_protocol::weight_scale::{
    HeightResolution, WeightMeasurement, WeightResolution, WeightScaleFeature,
};
use relais_protocol::{DateTime, Decimal, Quantity, Special, Unit};
use serde::{Deserialize, Serialize};

/// Pounds per kilogram (the international avoirdupois pound is exactly 0.453 592 37 kg).
pub const POUNDS_PER_KG: f32 = 1.0 / 0.453_592_37;
/// The Weight field's value meaning "Measurement Unsuccessful".
pub const UNSUCCESSFUL: u16 = 0xFFFF;
/// User ID meaning "unknown user".
pub const UNKNOWN_USER: u8 = 255;

/// The unit on the display, and so of the Weight Measurement.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub enum WeightUnit {
    /// SI: the Weight field in steps of 0.005 kg.
    #[default]
    Kilogram,
    /// Imperial: the Weight field in steps of 0.01 lb.
    Pound,
}

impl WeightUnit {
    /// The Weight field's step: 0.005 kg or 0.01 lb, whatever the scale's resolution.
    const fn field_step(self) -> Decimal {
        match self {
            Self::Kilogram => Decimal::new(5, -3),
            Self::Pound => Decimal::new(1, -2),
        }
    }

    const fn protocol_unit(self) -> Unit {
        match self {
            Self::Kilogram => Unit::Kilogram,
            Self::Pound => Unit::Pound,
        }
    }

    /// How many field steps one display step is at `resolution`: e.g. 0.05 kg is 10 steps of
    /// 0.005 kg, 0.1 lb is 10 steps of 0.01 lb. `None` for resolutions a scale cannot claim.
    pub const fn steps_per_display_step(self, resolution: WeightResolution) -> Option<u16> {
        let (kg, lb) = match resolution {
            WeightResolution::Kg0_5OrLb1 => (100, 100),
            WeightResolution::Kg0_2OrLb0_5 => (40, 50),
            WeightResolution::Kg0_1OrLb0_2 => (20, 20),
            WeightResolution::Kg0_05OrLb0_1 => (10, 10),
            WeightResolution::Kg0_02OrLb0_05 => (4, 5),
            WeightResolution::Kg0_01OrLb0_02 => (2, 2),
            WeightResolution::Kg0_005OrLb0_01 => (1, 1),
            WeightResolution::NotSpecified | WeightResolution::Reserved(_) => return None,
        };
        Some(match self {
            Self::Kilogram => kg,
            Self::Pound => lb,
        })
    }
}

/// A device-clock time stamp, stored field by field (the protocol's `DateTime` has no serde).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Stamp {
    /// 0 when not known, as on the wire.
    pub year: u16,
    /// 1 to 12, 0 when not known.
    pub month: u8,
    /// 1 to 31, 0 when not known.
    pub day: u8,
    /// 0 to 23.
    pub hours: u8,
    /// 0 to 59.
    pub minutes: u8,
    /// 0 to 59.
    pub seconds: u8,
}

impl From<DateTime> for Stamp {
    fn from(dt: DateTime) -> Self {
        Self {
            year: dt.year.map_or(0, NonZeroU16::get),
            month: dt.month.map_or(0, NonZeroU8::get),
            day: dt.day.map_or(0, NonZeroU8::get),
            hours: dt.hours,
            minutes: dt.minutes,
            seconds: dt.seconds,
        }
    }
}

impl From<Stamp> for DateTime {
    fn from(stamp: Stamp) -> Self {
        Self {
            year: NonZeroU16::new(stamp.year),
            month: NonZeroU8::new(stamp.month),
            day: NonZeroU8::new(stamp.day),
            hours: stamp.hours,
            minutes: stamp.minutes,
            seconds: stamp.seconds,
        }
    }
}

/// One weighing, as queued for the gateway and kept in flash.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Weighing {
    /// The Weight field: steps of 0.005 kg or 0.01 lb (per `unit`), or `UNSUCCESSFUL`.
    pub raw_weight: u16,
    /// The display unit when the weighing was taken: the unit it is sent in.
    pub unit: WeightUnit,
    /// User index (0 to 3), or `UNKNOWN_USER`.
    pub user_id: u8,
    /// `None` when the device clock was not set.
    pub time_stamp: Option<Stamp>,
}

impl Weighing {
    /// A successful weighing of `kg`, rounded to the display step of `resolution` in `unit`.
    /// `None` when the weight cannot be sent (negative, beyond the field, unclaimable resolution).
    pub fn of(
        kg: f32,
        unit: WeightUnit,
        resolution: WeightResolution,
        user_id: u8,
        time_stamp: Option<DateTime>,
    ) -> Option<Self> {
        let display_step = f32::from(unit.steps_per_display_step(resolution)?);
        let field_steps = match unit {
            WeightUnit::Kilogram => kg / 0.005,
            WeightUnit::Pound => kg * POUNDS_PER_KG / 0.01,
        };
        let raw = libm::roundf(field_steps / display_step) * display_step;
        if !(0.0..f32::from(UNSUCCESSFUL)).contains(&raw) {
            return None;
        }
        Some(Self {
            raw_weight: raw as u16,
            unit,
            user_id,
            time_stamp: time_stamp.map(Stamp::from),
        })
    }

    /// A weighing that failed (overload): sent as "Measurement Unsuccessful".
    pub fn unsuccessful(unit: WeightUnit, user_id: u8, time_stamp: Option<DateTime>) -> Self {
        Self {
            raw_weight: UNSUCCESSFUL,
            unit,
            user_id,
            time_stamp: time_stamp.map(Stamp::from),
        }
    }

    /// The characteristic value. The User ID field is always present: the scale supports
    /// multiple users, and 255 says the user is unknown.
    pub fn to_measurement(&self) -> WeightMeasurement {
        let unit = self.unit.protocol_unit();
        let weight = if self.raw_weight == UNSUCCESSFUL {
            Quantity::special(Special::NaN, unit)
        } else {
            let value = Decimal::scaled(i64::from(self.raw_weight), self.unit.field_step());
            Quantity::decimal(value, unit)
        };
        WeightMeasurement {
            weight,
            time_stamp: self.time_stamp.map(DateTime::from),
            user_id: Some(self.user_id),
            bmi: None,
            height: None,
        }
    }
}

/// The Weight Scale Feature (0x2A9E) of this scale: time stamps, several users, no BMI, and the
/// weight resolution it rounds to.
pub fn feature(resolution: WeightResolution) -> WeightScaleFeature {
    WeightScaleFeature {
        time_stamp_supported: true,
        multiple_users_supported: true,
        bmi_supported: false,
        weight_resolution: resolution,
        height_resolution: HeightResolution::NotSpecified,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use relais_protocol::Characteristic;

    #[test]
    fn kilograms_round_to_the_display_step_and_encode_in_0_005_kg_steps() {
        let w = Weighing::of(
            72.4749,
            WeightUnit::Kilogram,
            WeightResolution::Kg0_05OrLb0_1,
            2,
            None,
        )
        .unwrap();
        assert_eq!(w.raw_weight, 14_490); // 72.45 kg
        let m = w.to_measurement();
        assert_eq!(
            m.weight,
            Quantity::decimal(Decimal::new(72_450, -3), Unit::Kilogram)
        );
        let mut bytes = [0u8; WeightMeasurement::MAX_LEN];
        let n = m.encode(&mut bytes).unwrap();
        // Flags: user ID present; 14490 = 0x389A; user 2.
        assert_eq!(&bytes[..n], &[0x04, 0x9A, 0x38, 0x02]);
    }

    #[test]
    fn pounds_are_converted_and_rounded_to_a_tenth() {
        // 80 kg = 176.37 lb -> 176.4 lb.
        let w = Weighing::of(
            80.0,
            WeightUnit::Pound,
            WeightResolution::Kg0_05OrLb0_1,
            255,
            None,
        )
        .unwrap();
        assert_eq!(w.raw_weight, 17_640);
        let m = w.to_measurement();
        assert_eq!(
            m.weight,
            Quantity::decimal(Decimal::new(17_640, -2), Unit::Pound)
        );
        let mut bytes = [0u8; 15];
        let n = m.encode(&mut bytes).unwrap();
        assert_eq!(bytes[0] & 0x01, 0x01, "imperial flag");
        let decoded = WeightMeasurement::decode(&bytes[..n]).unwrap();
        assert_eq!(decoded.value, m);
    }

    #[test]
    fn time_stamp_is_sent_only_when_the_clock_is_set() {
        let at = DateTime::new(2025, 11, 26, 7, 45, 3).unwrap();
        let with = Weighing::of(
            60.0,
            WeightUnit::Kilogram,
            WeightResolution::Kg0_05OrLb0_1,
            0,
            Some(at),
        )
        .unwrap()
        .to_measurement();
        assert_eq!(with.time_stamp, Some(at));
        let without = Weighing::of(
            60.0,
            WeightUnit::Kilogram,
            WeightResolution::Kg0_05OrLb0_1,
            0,
            None,
        )
        .unwrap()
        .to_measurement();
        let mut bytes = [0u8; 15];
        assert_eq!(without.encode(&mut bytes), Ok(4));
        assert_eq!(bytes[0] & 0x02, 0);
    }

    #[test]
    fn unsuccessful_weighing_is_the_0xffff_special() {
        let m = Weighing::unsuccessful(WeightUnit::Kilogram, 1, None).to_measurement();
        assert!(m.measurement_unsuccessful());
        let mut bytes = [0u8; 15];
        let n = m.encode(&mut bytes).unwrap();
        assert_eq!(&bytes[..n], &[0x04, 0xFF, 0xFF, 0x01]);
    }

    #[test]
    fn weights_the_field_cannot_hold_are_refused() {
        let res = WeightResolution::Kg0_05OrLb0_1;
        assert_eq!(Weighing::of(-0.2, WeightUnit::Kilogram, res, 0, None), None);
        assert_eq!(
            Weighing::of(400.0, WeightUnit::Kilogram, res, 0, None),
            None
        );
        assert_eq!(
            Weighing::of(
                70.0,
                WeightUnit::Kilogram,
                WeightResolution::NotSpecified,
                0,
                None
            ),
            None
        );
    }

    #[test]
    fn feature_announces_time_stamps_users_and_the_resolution() {
        let bits = feature(WeightResolution::Kg0_05OrLb0_1).bits().unwrap();
        assert_eq!(bits, 0b1 | 0b10 | (4 << 3));
    }
}
