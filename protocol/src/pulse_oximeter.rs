//! Pulse Oximeter Service (0x1822): PLX Spot-check Measurement (0x2A5E), PLX Continuous
//! Measurement (0x2A5F) and PLX Features (0x2A60).

use crate::characteristic::Characteristic;
use crate::error::{DecodeError, EncodeError};
use crate::float::{decode_sfloat, encode_sfloat};
use crate::macros::bit_flags;
use crate::quantity::{Quantity, Unit};
use crate::quirks::Quirks;
use crate::reading::{DeviceTime, Kind, Reading, ReadingStatus, Readings, ToReadings};
use crate::time::DateTime;
use crate::uuid;
use crate::wire::{Decoded, Reader, Writer};

// Spot-check flags.
const TIMESTAMP: u8 = 1 << 0;
const SPOT_MEASUREMENT_STATUS: u8 = 1 << 1;
const SPOT_DEVICE_AND_SENSOR_STATUS: u8 = 1 << 2;
const SPOT_PULSE_AMPLITUDE_INDEX: u8 = 1 << 3;
const DEVICE_CLOCK_NOT_SET: u8 = 1 << 4;
const SPOT_DEFINED_FLAGS: u8 = 0x1F;

// Continuous flags.
const SPO2PR_FAST: u8 = 1 << 0;
const SPO2PR_SLOW: u8 = 1 << 1;
const CONT_MEASUREMENT_STATUS: u8 = 1 << 2;
const CONT_DEVICE_AND_SENSOR_STATUS: u8 = 1 << 3;
const CONT_PULSE_AMPLITUDE_INDEX: u8 = 1 << 4;
const CONT_DEFINED_FLAGS: u8 = 0x1F;

// PLX Features: the two presence bits of the optional support fields.
const MEASUREMENT_STATUS_SUPPORT: u16 = 1 << 0;
const DEVICE_AND_SENSOR_STATUS_SUPPORT: u16 = 1 << 1;

bit_flags! {
    /// Measurement Status (16 bits) of a PLX measurement; bits 0-4 are reserved.
    pub struct PlxMeasurementStatus: u16 {
        measurement_ongoing = 5,
        early_estimated_data = 6,
        validated_data = 7,
        fully_qualified_data = 8,
        data_from_measurement_storage = 9,
        data_for_demonstration = 10,
        data_for_testing = 11,
        calibration_ongoing = 12,
        measurement_unavailable = 13,
        questionable_measurement_detected = 14,
        invalid_measurement_detected = 15,
    }
}

bit_flags! {
    /// Device and Sensor Status (24 bits on the wire) of a PLX measurement; bits 16-23 are
    /// reserved.
    pub struct PlxDeviceAndSensorStatus: u32 {
        extended_display_update_ongoing = 0,
        equipment_malfunction_detected = 1,
        signal_processing_irregularity_detected = 2,
        inadequate_signal_detected = 3,
        poor_signal_detected = 4,
        low_perfusion_detected = 5,
        erratic_signal_detected = 6,
        nonpulsatile_signal_detected = 7,
        questionable_pulse_detected = 8,
        signal_analysis_ongoing = 9,
        sensor_interference_detected = 10,
        sensor_unconnected_to_user = 11,
        unknown_sensor_connected = 12,
        sensor_displaced = 13,
        sensor_malfunctioning = 14,
        sensor_disconnected = 15,
    }
}

impl PlxMeasurementStatus {
    fn reading_status(&self) -> ReadingStatus {
        ReadingStatus {
            from_storage: self.data_from_measurement_storage,
            measurement_unsuccessful: self.measurement_unavailable,
            // Anything short of a real, settled patient value is flagged for review.
            questionable: self.questionable_measurement_detected
                || self.invalid_measurement_detected
                || self.early_estimated_data
                || self.calibration_ongoing
                || self.data_for_demonstration
                || self.data_for_testing,
            ..ReadingStatus::default()
        }
    }
}

impl PlxDeviceAndSensorStatus {
    fn reading_status(&self) -> ReadingStatus {
        ReadingStatus {
            device_fault: self.equipment_malfunction_detected
                || self.sensor_malfunctioning
                || self.unknown_sensor_connected,
            no_contact: self.sensor_unconnected_to_user
                || self.sensor_displaced
                || self.sensor_disconnected,
            questionable: self.signal_processing_irregularity_detected
                || self.inadequate_signal_detected
                || self.poor_signal_detected
                || self.low_perfusion_detected
                || self.erratic_signal_detected
                || self.nonpulsatile_signal_detected
                || self.questionable_pulse_detected
                || self.sensor_interference_detected,
            ..ReadingStatus::default()
        }
    }
}

/// Bitwise union of two statuses.
fn merge(a: ReadingStatus, b: ReadingStatus) -> ReadingStatus {
    ReadingStatus::from_bits(a.bits() | b.bits())
}

/// The status fields shared by both measurements, as one reading status.
fn statuses(
    measurement_status: Option<PlxMeasurementStatus>,
    device_and_sensor_status: Option<PlxDeviceAndSensorStatus>,
) -> ReadingStatus {
    merge(
        measurement_status
            .map(|s| s.reading_status())
            .unwrap_or_default(),
        device_and_sensor_status
            .map(|s| s.reading_status())
            .unwrap_or_default(),
    )
}

fn read_quantity(
    r: &mut Reader<'_>,
    field: &'static str,
    unit: Unit,
) -> Result<Quantity, DecodeError> {
    Ok(Quantity::new(decode_sfloat(r.u16(field)?), unit))
}

fn write_quantity(
    w: &mut Writer<'_>,
    q: &Quantity,
    field: &'static str,
    unit: Unit,
    reason: &'static str,
) -> Result<(), EncodeError> {
    if q.unit != unit {
        return Err(EncodeError::Unrepresentable { field, reason });
    }
    w.u16(encode_sfloat(q.value, field)?)
}

fn write_spo2pr(w: &mut Writer<'_>, v: &SpO2Pr, field: &'static str) -> Result<(), EncodeError> {
    write_quantity(w, &v.spo2, field, Unit::Percent, "SpO2 must be in %")?;
    write_quantity(
        w,
        &v.pulse_rate,
        field,
        Unit::PerMinute,
        "pulse rate must be in /min",
    )
}

fn read_spo2pr(r: &mut Reader<'_>, field: &'static str) -> Result<SpO2Pr, DecodeError> {
    Ok(SpO2Pr {
        spo2: read_quantity(r, field, Unit::Percent)?,
        pulse_rate: read_quantity(r, field, Unit::PerMinute)?,
    })
}

fn read_status(
    r: &mut Reader<'_>,
    present: bool,
) -> Result<Option<PlxMeasurementStatus>, DecodeError> {
    if !present {
        return Ok(None);
    }
    let bits = r.u16("measurement_status")?;
    Ok(Some(PlxMeasurementStatus::from_bits(bits)))
}

fn read_device_status(
    r: &mut Reader<'_>,
    present: bool,
) -> Result<Option<PlxDeviceAndSensorStatus>, DecodeError> {
    if !present {
        return Ok(None);
    }
    let bits = r.u24("device_and_sensor_status")?;
    Ok(Some(PlxDeviceAndSensorStatus::from_bits(bits)))
}

fn read_pai(r: &mut Reader<'_>, present: bool) -> Result<Option<Quantity>, DecodeError> {
    if !present {
        return Ok(None);
    }
    read_quantity(r, "pulse_amplitude_index", Unit::Percent).map(Some)
}

fn write_pai(w: &mut Writer<'_>, pai: &Option<Quantity>) -> Result<(), EncodeError> {
    match pai {
        Some(q) => write_quantity(w, q, "pulse_amplitude_index", Unit::Percent, "must be in %"),
        None => Ok(()),
    }
}

/// The readings both measurements yield: SpO2, pulse rate and, when sent, the PAI.
fn plx_readings(
    spo2pr: &SpO2Pr,
    pulse_amplitude_index: Option<Quantity>,
    time: DeviceTime,
    status: ReadingStatus,
) -> Readings {
    let mut out = Readings::new();
    let mut push = |kind, q| {
        let _ = out.push(Reading::new(kind, q).at(time).status(status));
    };
    push(Kind::OxygenSaturation, spo2pr.spo2);
    push(Kind::PulseRate, spo2pr.pulse_rate);
    if let Some(pai) = pulse_amplitude_index {
        push(Kind::PulseAmplitudeIndex, pai);
    }
    out
}

/// An SpO2 (%) and pulse rate (/min) pair, as the continuous measurement sends three of them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
pub struct SpO2Pr {
    pub spo2: Quantity,
    pub pulse_rate: Quantity,
}

/// PLX Spot-check Measurement (0x2A5E), indicated once per completed spot check.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
pub struct PlxSpotCheckMeasurement {
    /// SpO2 in %.
    pub spo2: Quantity,
    /// Pulse rate in /min.
    pub pulse_rate: Quantity,
    pub timestamp: Option<DateTime>,
    pub measurement_status: Option<PlxMeasurementStatus>,
    pub device_and_sensor_status: Option<PlxDeviceAndSensorStatus>,
    /// Pulse amplitude index in %.
    pub pulse_amplitude_index: Option<Quantity>,
    /// The device says its clock is not set, so the timestamp is not to be trusted.
    pub device_clock_not_set: bool,
}

impl PlxSpotCheckMeasurement {
    fn flags(&self) -> u8 {
        let mut flags = 0;
        if self.timestamp.is_some() {
            flags |= TIMESTAMP;
        }
        if self.measurement_status.is_some() {
            flags |= SPOT_MEASUREMENT_STATUS;
        }
        if self.device_and_sensor_status.is_some() {
            flags |= SPOT_DEVICE_AND_SENSOR_STATUS;
        }
        if self.pulse_amplitude_index.is_some() {
            flags |= SPOT_PULSE_AMPLITUDE_INDEX;
        }
        if self.device_clock_not_set {
            flags |= DEVICE_CLOCK_NOT_SET;
        }
        flags
    }
}

fn spot_check_len(flags: u8) -> usize {
    let mut len = 1 + 4;
    if flags & TIMESTAMP != 0 {
        len += DateTime::LEN;
    }
    if flags & SPOT_MEASUREMENT_STATUS != 0 {
        len += 2;
    }
    if flags & SPOT_DEVICE_AND_SENSOR_STATUS != 0 {
        len += 3;
    }
    if flags & SPOT_PULSE_AMPLITUDE_INDEX != 0 {
        len += 2;
    }
    len
}

impl Characteristic for PlxSpotCheckMeasurement {
    const UUID: u16 = uuid::PLX_SPOT_CHECK_MEASUREMENT;
    const NAME: &'static str = "plx_spot_check_measurement";
    const MAX_LEN: usize = 19;

    fn decode_with(bytes: &[u8], _quirks: Quirks) -> Result<Decoded<Self>, DecodeError> {
        let mut r = Reader::new(bytes);
        let flags = r.u8("flags")?;
        r.announce(spot_check_len(flags));
        let spo2 = read_quantity(&mut r, "spo2", Unit::Percent)?;
        let pulse_rate = read_quantity(&mut r, "pulse_rate", Unit::PerMinute)?;
        let timestamp = if flags & TIMESTAMP != 0 {
            Some(DateTime::read(&mut r, "timestamp")?)
        } else {
            None
        };
        let measurement_status = read_status(&mut r, flags & SPOT_MEASUREMENT_STATUS != 0)?;
        let device_and_sensor_status =
            read_device_status(&mut r, flags & SPOT_DEVICE_AND_SENSOR_STATUS != 0)?;
        let pulse_amplitude_index = read_pai(&mut r, flags & SPOT_PULSE_AMPLITUDE_INDEX != 0)?;
        let value = Self {
            spo2,
            pulse_rate,
            timestamp,
            measurement_status,
            device_and_sensor_status,
            pulse_amplitude_index,
            device_clock_not_set: flags & DEVICE_CLOCK_NOT_SET != 0,
        };
        Ok(r.finish(value, u32::from(flags & !SPOT_DEFINED_FLAGS)))
    }

    fn encode_with(&self, out: &mut [u8], _quirks: Quirks) -> Result<usize, EncodeError> {
        let flags = self.flags();
        let mut w = Writer::new(out);
        w.reserve(spot_check_len(flags))?;
        w.u8(flags)?;
        write_quantity(&mut w, &self.spo2, "spo2", Unit::Percent, "must be in %")?;
        write_quantity(
            &mut w,
            &self.pulse_rate,
            "pulse_rate",
            Unit::PerMinute,
            "must be in /min",
        )?;
        if let Some(ts) = &self.timestamp {
            ts.write(&mut w, "timestamp")?;
        }
        if let Some(status) = &self.measurement_status {
            w.u16(status.bits())?;
        }
        if let Some(status) = &self.device_and_sensor_status {
            w.u24(status.bits())?;
        }
        write_pai(&mut w, &self.pulse_amplitude_index)?;
        Ok(w.len())
    }
}

impl ToReadings for PlxSpotCheckMeasurement {
    fn readings(&self) -> Readings {
        let mut status = statuses(self.measurement_status, self.device_and_sensor_status);
        status.clock_not_set = self.device_clock_not_set;
        let spo2pr = SpO2Pr {
            spo2: self.spo2,
            pulse_rate: self.pulse_rate,
        };
        let time = DeviceTime::from_time_stamp(self.timestamp);
        plx_readings(&spo2pr, self.pulse_amplitude_index, time, status)
    }
}

/// PLX Continuous Measurement (0x2A5F), notified periodically. The Normal pair is always sent;
/// the Fast and Slow pairs are the same values averaged over shorter or longer windows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
pub struct PlxContinuousMeasurement {
    pub spo2pr_normal: SpO2Pr,
    pub spo2pr_fast: Option<SpO2Pr>,
    pub spo2pr_slow: Option<SpO2Pr>,
    pub measurement_status: Option<PlxMeasurementStatus>,
    pub device_and_sensor_status: Option<PlxDeviceAndSensorStatus>,
    /// Pulse amplitude index in %.
    pub pulse_amplitude_index: Option<Quantity>,
}

impl PlxContinuousMeasurement {
    fn flags(&self) -> u8 {
        let mut flags = 0;
        if self.spo2pr_fast.is_some() {
            flags |= SPO2PR_FAST;
        }
        if self.spo2pr_slow.is_some() {
            flags |= SPO2PR_SLOW;
        }
        if self.measurement_status.is_some() {
            flags |= CONT_MEASUREMENT_STATUS;
        }
        if self.device_and_sensor_status.is_some() {
            flags |= CONT_DEVICE_AND_SENSOR_STATUS;
        }
        if self.pulse_amplitude_index.is_some() {
            flags |= CONT_PULSE_AMPLITUDE_INDEX;
        }
        flags
    }
}

fn continuous_len(flags: u8) -> usize {
    let mut len = 1 + 4;
    if flags & SPO2PR_FAST != 0 {
        len += 4;
    }
    if flags & SPO2PR_SLOW != 0 {
        len += 4;
    }
    if flags & CONT_MEASUREMENT_STATUS != 0 {
        len += 2;
    }
    if flags & CONT_DEVICE_AND_SENSOR_STATUS != 0 {
        len += 3;
    }
    if flags & CONT_PULSE_AMPLITUDE_INDEX != 0 {
        len += 2;
    }
    len
}

impl Characteristic for PlxContinuousMeasurement {
    const UUID: u16 = uuid::PLX_CONTINUOUS_MEASUREMENT;
    const NAME: &'static str = "plx_continuous_measurement";
    const MAX_LEN: usize = 20;

    fn decode_with(bytes: &[u8], _quirks: Quirks) -> Result<Decoded<Self>, DecodeError> {
        let mut r = Reader::new(bytes);
        let flags = r.u8("flags")?;
        r.announce(continuous_len(flags));
        let spo2pr_normal = read_spo2pr(&mut r, "spo2pr_normal")?;
        let spo2pr_fast = if flags & SPO2PR_FAST != 0 {
            Some(read_spo2pr(&mut r, "spo2pr_fast")?)
        } else {
            None
        };
        let spo2pr_slow = if flags & SPO2PR_SLOW != 0 {
            Some(read_spo2pr(&mut r, "spo2pr_slow")?)
        } else {
            None
        };
        let measurement_status = read_status(&mut r, flags & CONT_MEASUREMENT_STATUS != 0)?;
        let device_and_sensor_status =
            read_device_status(&mut r, flags & CONT_DEVICE_AND_SENSOR_STATUS != 0)?;
        let pulse_amplitude_index = read_pai(&mut r, flags & CONT_PULSE_AMPLITUDE_INDEX != 0)?;
        let value = Self {
            spo2pr_normal,
            spo2pr_fast,
            spo2pr_slow,
            measurement_status,
            device_and_sensor_status,
            pulse_amplitude_index,
        };
        Ok(r.finish(value, u32::from(flags & !CONT_DEFINED_FLAGS)))
    }

    fn encode_with(&self, out: &mut [u8], _quirks: Quirks) -> Result<usize, EncodeError> {
        let flags = self.flags();
        let mut w = Writer::new(out);
        w.reserve(continuous_len(flags))?;
        w.u8(flags)?;
        write_spo2pr(&mut w, &self.spo2pr_normal, "spo2pr_normal")?;
        if let Some(fast) = &self.spo2pr_fast {
            write_spo2pr(&mut w, fast, "spo2pr_fast")?;
        }
        if let Some(slow) = &self.spo2pr_slow {
            write_spo2pr(&mut w, slow, "spo2pr_slow")?;
        }
        if let Some(status) = &self.measurement_status {
            w.u16(status.bits())?;
        }
        if let Some(status) = &self.device_and_sensor_status {
            w.u24(status.bits())?;
        }
        write_pai(&mut w, &self.pulse_amplitude_index)?;
        Ok(w.len())
    }
}

impl ToReadings for PlxContinuousMeasurement {
    /// The Normal pair only: Fast and Slow are alternative averages of the same signal.
    fn readings(&self) -> Readings {
        let status = statuses(self.measurement_status, self.device_and_sensor_status);
        plx_readings(
            &self.spo2pr_normal,
            self.pulse_amplitude_index,
            DeviceTime::Absent,
            status,
        )
    }
}

bit_flags! {
    /// Supported Features of PLX Features, without bits 0 and 1: those announce the two
    /// support fields and are derived from [`PlxFeatures`]' options.
    pub struct PlxSupportedFeatures: u16 {
        spot_check_measurement_storage = 2,
        spot_check_timestamp = 3,
        spo2pr_fast = 4,
        spo2pr_slow = 5,
        pulse_amplitude_index = 6,
        multiple_bonds = 7,
    }
}

/// PLX Features (0x2A60): what the oximeter can report. A support field is present exactly when
/// the device supports the corresponding status field.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
pub struct PlxFeatures {
    pub supported_features: PlxSupportedFeatures,
    /// Which Measurement Status bits the device can set.
    pub measurement_status_support: Option<PlxMeasurementStatus>,
    /// Which Device and Sensor Status bits the device can set.
    pub device_and_sensor_status_support: Option<PlxDeviceAndSensorStatus>,
}

fn features_len(bits: u16) -> usize {
    let mut len = 2;
    if bits & MEASUREMENT_STATUS_SUPPORT != 0 {
        len += 2;
    }
    if bits & DEVICE_AND_SENSOR_STATUS_SUPPORT != 0 {
        len += 3;
    }
    len
}

impl Characteristic for PlxFeatures {
    const UUID: u16 = uuid::PLX_FEATURES;
    const NAME: &'static str = "plx_features";
    const MAX_LEN: usize = 7;

    fn decode_with(bytes: &[u8], _quirks: Quirks) -> Result<Decoded<Self>, DecodeError> {
        let mut r = Reader::new(bytes);
        let bits = r.u16("supported_features")?;
        r.announce(features_len(bits));
        let measurement_status_support = if bits & MEASUREMENT_STATUS_SUPPORT != 0 {
            Some(PlxMeasurementStatus::from_bits(
                r.u16("measurement_status_support")?,
            ))
        } else {
            None
        };
        let device_and_sensor_status_support = if bits & DEVICE_AND_SENSOR_STATUS_SUPPORT != 0 {
            Some(PlxDeviceAndSensorStatus::from_bits(
                r.u24("device_and_sensor_status_support")?,
            ))
        } else {
            None
        };
        let value = Self {
            supported_features: PlxSupportedFeatures::from_bits(bits),
            measurement_status_support,
            device_and_sensor_status_support,
        };
        let defined = PlxSupportedFeatures::DEFINED
            | MEASUREMENT_STATUS_SUPPORT
            | DEVICE_AND_SENSOR_STATUS_SUPPORT;
        Ok(r.finish(value, u32::from(bits & !defined)))
    }

    fn encode_with(&self, out: &mut [u8], _quirks: Quirks) -> Result<usize, EncodeError> {
        let mut bits = self.supported_features.bits();
        if self.measurement_status_support.is_some() {
            bits |= MEASUREMENT_STATUS_SUPPORT;
        }
        if self.device_and_sensor_status_support.is_some() {
            bits |= DEVICE_AND_SENSOR_STATUS_SUPPORT;
        }
        let mut w = Writer::new(out);
        w.reserve(features_len(bits))?;
        w.u16(bits)?;
        if let Some(support) = &self.measurement_status_support {
            w.u16(support.bits())?;
        }
        if let Some(support) = &self.device_and_sensor_status_support {
            w.u24(support.bits())?;
        }
        Ok(w.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ReadingValue;
    use crate::float::{Decimal, MedValue, Special};
    use crate::test_support::{date_time, roundtrip, sfloat};
    use proptest::prelude::*;

    fn pct(m: i64, e: i8) -> Quantity {
        Quantity::decimal(Decimal::new(m, e), Unit::Percent)
    }

    fn per_min(m: i64, e: i8) -> Quantity {
        Quantity::decimal(Decimal::new(m, e), Unit::PerMinute)
    }

    // SpeziBluetooth's spot-check vector: 94.0 %, 147.0 /min, 2024-11-29 23:08:57, measurement
    // ongoing + questionable, equipment malfunction + low perfusion, PAI 8.70 %.
    const SPOT_CHECK: [u8; 19] = [
        0x0F, 0xAC, 0xF3, 0xBE, 0xF5, 0xE8, 0x07, 0x0B, 0x1D, 0x17, 0x08, 0x39, 0x20, 0x40, 0x22,
        0x00, 0x00, 0x66, 0xE3,
    ];

    #[test]
    fn decodes_a_full_spot_check() {
        let d = PlxSpotCheckMeasurement::decode(&SPOT_CHECK).unwrap();
        assert_eq!(d.trailing, 0);
        assert_eq!(d.reserved_flags, 0);
        let m = d.value;
        assert_eq!(m.spo2, pct(940, -1));
        assert_eq!(m.pulse_rate, per_min(1470, -1));
        assert_eq!(m.timestamp, DateTime::new(2024, 11, 29, 23, 8, 57));
        let status = m.measurement_status.unwrap();
        assert!(status.measurement_ongoing && status.questionable_measurement_detected);
        assert_eq!(status.bits(), 0x4020);
        let device = m.device_and_sensor_status.unwrap();
        assert!(device.equipment_malfunction_detected && device.low_perfusion_detected);
        assert_eq!(device.bits(), 0x22);
        assert_eq!(m.pulse_amplitude_index, Some(pct(870, -2)));
        assert!(!m.device_clock_not_set);
        let mut out = [0u8; 19];
        assert_eq!(m.encode(&mut out), Ok(19));
        assert_eq!(out, SPOT_CHECK);
    }

    #[test]
    fn spot_check_readings_carry_time_and_status() {
        let m = PlxSpotCheckMeasurement::decode(&SPOT_CHECK).unwrap().value;
        let r = m.readings();
        assert_eq!(r.len(), 3);
        assert_eq!(r[0].kind, Kind::OxygenSaturation);
        assert_eq!(r[0].value, ReadingValue::Single(pct(940, -1)));
        assert_eq!(r[1].kind, Kind::PulseRate);
        assert_eq!(r[2].kind, Kind::PulseAmplitudeIndex);
        let when = DateTime::new(2024, 11, 29, 23, 8, 57)
            .unwrap()
            .to_civil()
            .unwrap();
        assert_eq!(r[0].time, DeviceTime::Known(when));
        assert!(r[0].status.questionable);
        assert!(r[0].status.device_fault);
        assert!(!r[0].status.clock_not_set);
    }

    #[test]
    fn minimal_spot_check_with_clock_not_set() {
        // Flags: device clock not set; 98 %, 60 /min.
        let m = PlxSpotCheckMeasurement::decode(&[0x10, 0x62, 0x00, 0x3C, 0x00])
            .unwrap()
            .value;
        assert!(m.device_clock_not_set);
        assert_eq!(m.timestamp, None);
        assert_eq!(m.spo2, pct(98, 0));
        let r = m.readings();
        assert_eq!(r.len(), 2);
        assert!(r[0].status.clock_not_set);
        assert_eq!(r[0].time, DeviceTime::Absent);
    }

    #[test]
    fn spot_check_truncation_names_the_field() {
        // Flags announce the timestamp (12 bytes in all); it stops after 2 of its 7 bytes.
        let err = PlxSpotCheckMeasurement::decode(&[0x01, 0x62, 0x00, 0x3C, 0x00, 0xE8, 0x07])
            .unwrap_err();
        assert_eq!(
            err,
            DecodeError::Truncated {
                field: "timestamp",
                needed: 12,
                present: 7
            }
        );
        let err = PlxSpotCheckMeasurement::decode(&[0x00, 0x62, 0x00, 0x3C]).unwrap_err();
        assert_eq!(
            err,
            DecodeError::Truncated {
                field: "pulse_rate",
                needed: 5,
                present: 4
            }
        );
    }

    #[test]
    fn spot_check_reports_trailing_bytes_and_reserved_flags() {
        let d = PlxSpotCheckMeasurement::decode(&[0xE0, 0x62, 0x00, 0x3C, 0x00, 0xAA]).unwrap();
        assert_eq!(d.trailing, 1);
        assert_eq!(d.reserved_flags, 0xE0);
    }

    #[test]
    fn spot_check_keeps_special_values_special() {
        // SpO2 NaN, pulse rate NRes: the oximeter had no reading.
        let m = PlxSpotCheckMeasurement::decode(&[0x00, 0xFF, 0x07, 0x00, 0x08])
            .unwrap()
            .value;
        assert_eq!(m.spo2.value, MedValue::Special(Special::NaN));
        assert_eq!(m.pulse_rate.value, MedValue::Special(Special::NRes));
        let r = m.readings();
        assert!(r[0].value.has_special());
    }

    #[test]
    fn spot_check_rejects_a_wrong_unit() {
        let mut m = PlxSpotCheckMeasurement::decode(&SPOT_CHECK).unwrap().value;
        m.pulse_rate.unit = Unit::Percent;
        let mut out = [0u8; 19];
        assert!(matches!(
            m.encode(&mut out),
            Err(EncodeError::Unrepresentable {
                field: "pulse_rate",
                ..
            })
        ));
    }

    #[test]
    fn decodes_a_continuous_measurement_with_statuses_and_pai() {
        // SpeziBluetooth: 95 %, 90 /min, measurement ongoing, no device status bits, PAI 8.7 %.
        let bytes = [
            0x1C, 0x5F, 0x00, 0x5A, 0x00, 0x20, 0x00, 0x00, 0x00, 0x00, 0x57, 0xF0,
        ];
        let d = PlxContinuousMeasurement::decode(&bytes).unwrap();
        assert_eq!(d.trailing, 0);
        let m = d.value;
        assert_eq!(m.spo2pr_normal.spo2, pct(95, 0));
        assert_eq!(m.spo2pr_normal.pulse_rate, per_min(90, 0));
        assert_eq!(m.spo2pr_fast, None);
        assert!(m.measurement_status.unwrap().measurement_ongoing);
        assert_eq!(
            m.device_and_sensor_status,
            Some(PlxDeviceAndSensorStatus::default())
        );
        assert_eq!(m.pulse_amplitude_index, Some(pct(87, -1)));
        let mut out = [0u8; 20];
        let n = m.encode(&mut out).unwrap();
        assert_eq!(&out[..n], &bytes);
    }

    #[test]
    fn decodes_a_full_continuous_measurement_and_reads_the_normal_pair() {
        // SpeziBluetooth: normal 99/97, fast 97/137, slow 98/69, ongoing + fully qualified,
        // PAI 8.9 %. Values at the most precise SFLOAT exponent.
        let bytes = [
            0x1F, 0xDE, 0xF3, 0xCA, 0xF3, 0xCA, 0xF3, 0x5A, 0xF5, 0xD4, 0xF3, 0xB2, 0xF2, 0x20,
            0x01, 0x00, 0x00, 0x00, 0x7A, 0xE3,
        ];
        let m = PlxContinuousMeasurement::decode(&bytes).unwrap().value;
        assert_eq!(m.spo2pr_normal.spo2, pct(990, -1));
        assert_eq!(m.spo2pr_fast.unwrap().pulse_rate, per_min(1370, -1));
        assert_eq!(m.spo2pr_slow.unwrap().pulse_rate, per_min(690, -1));
        assert!(m.measurement_status.unwrap().fully_qualified_data);
        let r = m.readings();
        assert_eq!(r.len(), 3);
        assert_eq!(r[0].value, ReadingValue::Single(pct(990, -1)));
        assert_eq!(r[1].value, ReadingValue::Single(per_min(970, -1)));
        assert_eq!(r[0].time, DeviceTime::Absent);
        assert_eq!(r[0].status, ReadingStatus::default());
    }

    #[test]
    fn continuous_truncation_names_the_slow_pair() {
        // Fast and slow announced (13 bytes); the slow pair is cut short.
        let bytes = [0x03, 0x5F, 0x00, 0x5A, 0x00, 0x5F, 0x00, 0x5A, 0x00, 0x5F];
        assert_eq!(
            PlxContinuousMeasurement::decode(&bytes).unwrap_err(),
            DecodeError::Truncated {
                field: "spo2pr_slow",
                needed: 13,
                present: 10
            }
        );
    }

    #[test]
    fn continuous_reports_trailing_bytes() {
        let d =
            PlxContinuousMeasurement::decode(&[0x00, 0x5F, 0x00, 0x5A, 0x00, 0x01, 0x02]).unwrap();
        assert_eq!(d.trailing, 2);
    }

    #[test]
    fn continuous_status_maps_sensor_off_and_storage() {
        let m = PlxContinuousMeasurement {
            spo2pr_normal: SpO2Pr {
                spo2: pct(97, 0),
                pulse_rate: per_min(70, 0),
            },
            spo2pr_fast: None,
            spo2pr_slow: None,
            measurement_status: Some(PlxMeasurementStatus {
                data_from_measurement_storage: true,
                ..PlxMeasurementStatus::default()
            }),
            device_and_sensor_status: Some(PlxDeviceAndSensorStatus {
                sensor_disconnected: true,
                ..PlxDeviceAndSensorStatus::default()
            }),
            pulse_amplitude_index: None,
        };
        let s = m.readings()[0].status;
        assert!(s.from_storage && s.no_contact);
        assert!(!s.device_fault && !s.questionable);
    }

    #[test]
    fn decodes_features_with_both_support_fields() {
        // SpeziBluetooth: both support fields, SpO2PR-Slow, multiple bonds; calibration ongoing
        // + early estimate; nonpulsatile + questionable pulse.
        let bytes = [0xA3, 0x00, 0x40, 0x10, 0x80, 0x01, 0x00];
        let d = PlxFeatures::decode(&bytes).unwrap();
        assert_eq!(d.trailing, 0);
        let f = d.value;
        assert!(f.supported_features.spo2pr_slow && f.supported_features.multiple_bonds);
        assert!(!f.supported_features.spo2pr_fast);
        let ms = f.measurement_status_support.unwrap();
        assert!(ms.calibration_ongoing && ms.early_estimated_data);
        let ds = f.device_and_sensor_status_support.unwrap();
        assert!(ds.nonpulsatile_signal_detected && ds.questionable_pulse_detected);
        let mut out = [0u8; 7];
        assert_eq!(f.encode(&mut out), Ok(7));
        assert_eq!(out, bytes);
    }

    #[test]
    fn features_truncation_and_trailing() {
        assert_eq!(
            PlxFeatures::decode(&[0x02, 0x00, 0x80]).unwrap_err(),
            DecodeError::Truncated {
                field: "device_and_sensor_status_support",
                needed: 5,
                present: 3
            }
        );
        let d = PlxFeatures::decode(&[0x08, 0x01, 0xFF]).unwrap();
        assert!(d.value.supported_features.spot_check_timestamp);
        assert_eq!(d.reserved_flags, 0x0100);
        assert_eq!(d.trailing, 1);
    }

    fn spo2pr() -> impl Strategy<Value = SpO2Pr> {
        (sfloat(), sfloat()).prop_map(|(s, p)| SpO2Pr {
            spo2: Quantity::new(s, Unit::Percent),
            pulse_rate: Quantity::new(p, Unit::PerMinute),
        })
    }

    fn measurement_status() -> impl Strategy<Value = Option<PlxMeasurementStatus>> {
        proptest::option::of(any::<u16>().prop_map(PlxMeasurementStatus::from_bits))
    }

    fn device_status() -> impl Strategy<Value = Option<PlxDeviceAndSensorStatus>> {
        proptest::option::of((0u32..1 << 24).prop_map(PlxDeviceAndSensorStatus::from_bits))
    }

    fn pai() -> impl Strategy<Value = Option<Quantity>> {
        proptest::option::of(sfloat().prop_map(|v| Quantity::new(v, Unit::Percent)))
    }

    proptest! {
        #[test]
        fn spot_check_roundtrips(
            pair in spo2pr(),
            timestamp in proptest::option::of(date_time()),
            measurement_status in measurement_status(),
            device_and_sensor_status in device_status(),
            pulse_amplitude_index in pai(),
            device_clock_not_set in any::<bool>(),
        ) {
            let m = PlxSpotCheckMeasurement {
                spo2: pair.spo2,
                pulse_rate: pair.pulse_rate,
                timestamp,
                measurement_status,
                device_and_sensor_status,
                pulse_amplitude_index,
                device_clock_not_set,
            };
            roundtrip(&m, Quirks::NONE)?;
        }

        #[test]
        fn continuous_roundtrips(
            spo2pr_normal in spo2pr(),
            spo2pr_fast in proptest::option::of(spo2pr()),
            spo2pr_slow in proptest::option::of(spo2pr()),
            measurement_status in measurement_status(),
            device_and_sensor_status in device_status(),
            pulse_amplitude_index in pai(),
        ) {
            let m = PlxContinuousMeasurement {
                spo2pr_normal,
                spo2pr_fast,
                spo2pr_slow,
                measurement_status,
                device_and_sensor_status,
                pulse_amplitude_index,
            };
            roundtrip(&m, Quirks::NONE)?;
        }

        #[test]
        fn features_roundtrip(
            bits in any::<u16>(),
            measurement_status_support in measurement_status(),
            device_and_sensor_status_support in device_status(),
        ) {
            let f = PlxFeatures {
                supported_features: PlxSupportedFeatures::from_bits(bits),
                measurement_status_support,
                device_and_sensor_status_support,
            };
            roundtrip(&f, Quirks::NONE)?;
        }

        #[test]
        fn decoding_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..32)) {
            let _ = PlxSpotCheckMeasurement::decode(&bytes);
            let _ = PlxContinuousMeasurement::decode(&bytes);
            let _ = PlxFeatures::decode(&bytes);
        }
    }
}
