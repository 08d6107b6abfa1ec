//! Continuous Glucose Monitoring Service (0x181F): CGM Measurement (0x2AA7), CGM Feature
//! (0x2AA8), CGM Status (0x2AA9), CGM Session Start Time (0x2AAA), CGM Session Run Time
//! (0x2AAB) and CGM Specific Ops Control Point (0x2AAC).
//!
//! E2E-CRC (CRC-16/MCRF4XX over the preceding bytes): CGM Feature bit 12 announces it for the
//! whole service, but a decoder sees one value at a time. So each value says for itself:
//! a CGM Measurement record through its Size field, the other characteristics through their
//! length (two bytes after the last field are the CRC). A CRC found is always verified, and
//! every type keeps an `e2e_crc` flag so that it encodes back to the same bytes.

use jiff::civil;

use crate::characteristic::Characteristic;
use crate::crc::crc16_mcrf4xx;
use crate::error::{DecodeError, EncodeError};
use crate::float::{decode_sfloat, encode_sfloat};
use crate::glucose::{GlucoseSampleLocation, GlucoseType};
use crate::macros::{bit_flags, code_enum};
use crate::quantity::{Quantity, Unit};
use crate::quirks::Quirks;
use crate::reading::{DeviceTime, Kind, Reading, ReadingStatus, Readings, ToReadings};
use crate::time::{DateTime, DstOffset, TimeZone};
use crate::uuid;
use crate::wire::{Decoded, Reader, Writer};

const CRC_LEN: usize = 2;

// CGM Measurement record flags.
const TREND_INFORMATION: u8 = 1 << 0;
const QUALITY: u8 = 1 << 1;
const WARNING_OCTET: u8 = 1 << 5;
const CAL_TEMP_OCTET: u8 = 1 << 6;
const STATUS_OCTET: u8 = 1 << 7;
const DEFINED_RECORD_FLAGS: u8 = 0xE3;

/// Verifies the E2E-CRC that follows `bytes[start..]` (everything read since `start`).
fn read_crc(r: &mut Reader<'_>, bytes: &[u8], start: usize) -> Result<(), DecodeError> {
    let computed = crc16_mcrf4xx(bytes.get(start..r.position()).unwrap_or_default());
    let received = r.u16("e2e_crc")?;
    if received != computed {
        return Err(DecodeError::Crc {
            field: "e2e_crc",
            received,
            computed,
        });
    }
    Ok(())
}

/// For values without a Size field: two more bytes after the fields are the E2E-CRC.
fn read_optional_crc(r: &mut Reader<'_>, bytes: &[u8]) -> Result<bool, DecodeError> {
    if r.remaining() < CRC_LEN {
        return Ok(false);
    }
    read_crc(r, bytes, 0)?;
    Ok(true)
}

/// Appends the E2E-CRC of everything written since `start`.
fn write_crc(w: &mut Writer<'_>, start: usize) -> Result<(), EncodeError> {
    let crc = crc16_mcrf4xx(w.written().get(start..).unwrap_or_default());
    w.u16(crc)
}

fn crc_len(e2e_crc: bool) -> usize {
    if e2e_crc { CRC_LEN } else { 0 }
}

fn read_sfloat(
    r: &mut Reader<'_>,
    field: &'static str,
    unit: Unit,
) -> Result<Quantity, DecodeError> {
    Ok(Quantity::new(decode_sfloat(r.u16(field)?), unit))
}

fn write_sfloat(
    w: &mut Writer<'_>,
    q: &Quantity,
    field: &'static str,
    unit: Unit,
) -> Result<(), EncodeError> {
    if q.unit != unit {
        let reason = match unit {
            Unit::MilligramPerDecilitrePerMinute => "must be in mg/dL/min",
            Unit::Percent => "must be in %",
            _ => "must be in mg/dL",
        };
        return Err(EncodeError::Unrepresentable { field, reason });
    }
    w.u16(encode_sfloat(q.value, field)?)
}

/// Splits a Type-Sample Location octet: type in the low nibble, location in the high one.
fn split_type_location(b: u8) -> (GlucoseType, GlucoseSampleLocation) {
    (
        GlucoseType::from_code(b & 0x0F),
        GlucoseSampleLocation::from_code(b >> 4),
    )
}

fn join_type_location(
    t: GlucoseType,
    l: GlucoseSampleLocation,
    type_field: &'static str,
    location_field: &'static str,
) -> Result<u8, EncodeError> {
    if t.code() > 0x0F {
        return Err(EncodeError::Unrepresentable {
            field: type_field,
            reason: "the type is a 4-bit code",
        });
    }
    if l.code() > 0x0F {
        return Err(EncodeError::Unrepresentable {
            field: location_field,
            reason: "the sample location is a 4-bit code",
        });
    }
    Ok(t.code() | l.code() << 4)
}

bit_flags! {
    /// Status-Octet of the Sensor Status Annunciation (bits 0-7 of the 24-bit field).
    pub struct CgmStatusOctet: u8 {
        session_stopped = 0,
        device_battery_low = 1,
        sensor_type_incorrect = 2,
        sensor_malfunction = 3,
        device_specific_alert = 4,
        general_device_fault = 5,
    }
}

bit_flags! {
    /// Cal/Temp-Octet of the Sensor Status Annunciation (bits 8-15 of the 24-bit field).
    pub struct CgmCalTempOctet: u8 {
        time_synchronization_required = 0,
        calibration_not_allowed = 1,
        calibration_recommended = 2,
        calibration_required = 3,
        sensor_temperature_too_high = 4,
        sensor_temperature_too_low = 5,
    }
}

bit_flags! {
    /// Warning-Octet of the Sensor Status Annunciation (bits 16-23 of the 24-bit field).
    pub struct CgmWarningOctet: u8 {
        below_patient_low = 0,
        above_patient_high = 1,
        below_hypo = 2,
        above_hyper = 3,
        rate_of_decrease_exceeded = 4,
        rate_of_increase_exceeded = 5,
        below_device_range = 6,
        above_device_range = 7,
    }
}

/// Sensor Status Annunciation of a CGM Measurement record: each octet is present or not on its
/// own (flags b7, b6, b5), and an octet sent with all bits clear stays `Some`.
///
/// Wire order: the octets follow in order of increasing flag bit, Warning (b5), then Cal/Temp
/// (b6), then Status (b7). Sources disagree here: Nordic's Android library and Cypress read the
/// first octet (flag b5) as the Status bits, the nRF Connect SDK writes Status, Cal/Temp,
/// Warning. Flag order is the project reference's recommendation; it has not been checked
/// against the CGMS specification text. The choice is confined to `CgmMeasurementRecord`'s
/// reader and writer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
pub struct SensorStatusAnnunciation {
    pub status: Option<CgmStatusOctet>,
    pub cal_temp: Option<CgmCalTempOctet>,
    pub warning: Option<CgmWarningOctet>,
}

impl SensorStatusAnnunciation {
    /// The 24-bit field (Status in bits 0-7, Cal/Temp 8-15, Warning 16-23); absent octets are 0.
    pub fn bits(&self) -> u32 {
        u32::from(self.status.unwrap_or_default().bits())
            | u32::from(self.cal_temp.unwrap_or_default().bits()) << 8
            | u32::from(self.warning.unwrap_or_default().bits()) << 16
    }

    /// All three octets, as the CGM Status characteristic carries them.
    pub fn from_bits(bits: u32) -> Self {
        let [status, cal_temp, warning, _] = bits.to_le_bytes();
        Self {
            status: Some(CgmStatusOctet::from_bits(status)),
            cal_temp: Some(CgmCalTempOctet::from_bits(cal_temp)),
            warning: Some(CgmWarningOctet::from_bits(warning)),
        }
    }

    /// The annunciations that say something about the reading itself. The patient alert levels
    /// (low, high, hypo, hyper, rates) judge the value, not the measurement: they have no
    /// `ReadingStatus` counterpart and stay in the record only.
    pub fn reading_status(&self) -> ReadingStatus {
        let s = self.status.unwrap_or_default();
        let c = self.cal_temp.unwrap_or_default();
        let w = self.warning.unwrap_or_default();
        ReadingStatus {
            above_range: w.above_device_range,
            below_range: w.below_device_range,
            device_fault: s.sensor_malfunction || s.general_device_fault || s.sensor_type_incorrect,
            battery_low: s.device_battery_low,
            temperature_out_of_range: c.sensor_temperature_too_high || c.sensor_temperature_too_low,
            time_fault: c.time_synchronization_required,
            // A sensor that needs calibration, or a stopped session, yields unreliable values.
            questionable: c.calibration_required || s.session_stopped,
            ..ReadingStatus::default()
        }
    }
}

/// One record of a CGM Measurement notification.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
pub struct CgmMeasurementRecord {
    /// Glucose concentration in mg/dL.
    pub glucose_concentration: Quantity,
    /// Minutes since the session started.
    pub time_offset: u16,
    pub sensor_status_annunciation: SensorStatusAnnunciation,
    /// Trend in mg/dL/min.
    pub trend_information: Option<Quantity>,
    /// Quality in %.
    pub quality: Option<Quantity>,
    /// The record ends with an E2E-CRC (verified when decoding, computed when encoding).
    pub e2e_crc: bool,
}

impl CgmMeasurementRecord {
    /// Shortest record: size, flags, glucose concentration, time offset.
    pub const MIN_LEN: usize = 6;
    /// Longest record: every optional field and the E2E-CRC.
    pub const MAX_LEN: usize = 15;

    fn flags(&self) -> u8 {
        let a = &self.sensor_status_annunciation;
        let mut flags = 0;
        if self.trend_information.is_some() {
            flags |= TREND_INFORMATION;
        }
        if self.quality.is_some() {
            flags |= QUALITY;
        }
        if a.warning.is_some() {
            flags |= WARNING_OCTET;
        }
        if a.cal_temp.is_some() {
            flags |= CAL_TEMP_OCTET;
        }
        if a.status.is_some() {
            flags |= STATUS_OCTET;
        }
        flags
    }

    /// Length its flags imply, without the CRC.
    fn fields_len(flags: u8) -> usize {
        let bit = |mask: u8| usize::from(flags & mask != 0);
        Self::MIN_LEN
            + bit(WARNING_OCTET)
            + bit(CAL_TEMP_OCTET)
            + bit(STATUS_OCTET)
            + 2 * bit(TREND_INFORMATION)
            + 2 * bit(QUALITY)
    }

    /// Encoded length, the value of its Size field.
    pub fn encoded_len(&self) -> usize {
        Self::fields_len(self.flags()) + crc_len(self.e2e_crc)
    }

    /// Reads one record starting at the reader's position; returns it with its reserved flags.
    fn read(r: &mut Reader<'_>, bytes: &[u8]) -> Result<(Self, u8), DecodeError> {
        let start = r.position();
        let size = r.u8("size")?;
        r.announce(start + usize::from(size));
        let flags = r.u8("flags")?;
        let len = Self::fields_len(flags);
        let e2e_crc = match usize::from(size) {
            s if s == len => false,
            s if s == len + CRC_LEN => true,
            _ => {
                return Err(DecodeError::Invalid {
                    field: "size",
                    value: size.into(),
                    expected: "the record length its flags imply, plus 2 with an E2E-CRC",
                });
            }
        };
        let glucose_concentration =
            read_sfloat(r, "glucose_concentration", Unit::MilligramPerDecilitre)?;
        let time_offset = r.u16("time_offset")?;
        let mut octet = |mask: u8| -> Result<Option<u8>, DecodeError> {
            if flags & mask == 0 {
                return Ok(None);
            }
            r.u8("sensor_status_annunciation").map(Some)
        };
        let warning = octet(WARNING_OCTET)?.map(CgmWarningOctet::from_bits);
        let cal_temp = octet(CAL_TEMP_OCTET)?.map(CgmCalTempOctet::from_bits);
        let status = octet(STATUS_OCTET)?.map(CgmStatusOctet::from_bits);
        let trend_information = if flags & TREND_INFORMATION != 0 {
            Some(read_sfloat(
                r,
                "trend_information",
                Unit::MilligramPerDecilitrePerMinute,
            )?)
        } else {
            None
        };
        let quality = if flags & QUALITY != 0 {
            Some(read_sfloat(r, "quality", Unit::Percent)?)
        } else {
            None
        };
        if e2e_crc {
            read_crc(r, bytes, start)?;
        }
        let record = Self {
            glucose_concentration,
            time_offset,
            sensor_status_annunciation: SensorStatusAnnunciation {
                status,
                cal_temp,
                warning,
            },
            trend_information,
            quality,
            e2e_crc,
        };
        Ok((record, flags & !DEFINED_RECORD_FLAGS))
    }

    fn write(&self, w: &mut Writer<'_>) -> Result<(), EncodeError> {
        let start = w.len();
        // At most 15, so the cast is lossless.
        w.u8(self.encoded_len() as u8)?;
        w.u8(self.flags())?;
        write_sfloat(
            w,
            &self.glucose_concentration,
            "glucose_concentration",
            Unit::MilligramPerDecilitre,
        )?;
        w.u16(self.time_offset)?;
        let a = &self.sensor_status_annunciation;
        for octet in [
            a.warning.map(|o| o.bits()),
            a.cal_temp.map(|o| o.bits()),
            a.status.map(|o| o.bits()),
        ]
        .into_iter()
        .flatten()
        {
            w.u8(octet)?;
        }
        if let Some(trend) = &self.trend_information {
            write_sfloat(
                w,
                trend,
                "trend_information",
                Unit::MilligramPerDecilitrePerMinute,
            )?;
        }
        if let Some(quality) = &self.quality {
            write_sfloat(w, quality, "quality", Unit::Percent)?;
        }
        if self.e2e_crc {
            write_crc(w, start)?;
        }
        Ok(())
    }

    /// The interstitial glucose reading of this record. Its time is `session_start` plus the
    /// time offset when the session start is given and fully known, else absent.
    pub fn reading(&self, session_start: Option<&CgmSessionStartTime>) -> Reading {
        let time = session_start
            .and_then(|s| s.at_offset(self.time_offset))
            .map_or(DeviceTime::Absent, DeviceTime::Known);
        Reading::new(Kind::InterstitialGlucose, self.glucose_concentration)
            .at(time)
            .status(self.sensor_status_annunciation.reading_status())
    }
}

/// Most records one CGM Measurement notification can hold: the smallest record is 6 bytes and a
/// 247-byte ATT MTU carries at most 247 / 6 = 41 of them (a notification's payload, MTU - 3 =
/// 244 bytes, holds 40, so 41 leaves a margin).
pub const MAX_CGM_RECORDS: usize = 41;

/// CGM Measurement (0x2AA7): one notification carrying one or more records.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
pub struct CgmMeasurement {
    /// The records in the order received (at least one in a valid value).
    pub records: heapless::Vec<CgmMeasurementRecord, MAX_CGM_RECORDS>,
}

impl From<CgmMeasurementRecord> for CgmMeasurement {
    fn from(record: CgmMeasurementRecord) -> Self {
        let mut records = heapless::Vec::new();
        let _ = records.push(record);
        Self { records }
    }
}

impl CgmMeasurement {
    /// The readings of all records, timed from `session_start` (see
    /// [`CgmMeasurementRecord::reading`]). Unlike [`ToReadings`], never truncated.
    pub fn readings_since<'a>(
        &'a self,
        session_start: Option<&'a CgmSessionStartTime>,
    ) -> impl Iterator<Item = Reading> + 'a {
        self.records.iter().map(move |r| r.reading(session_start))
    }
}

impl Characteristic for CgmMeasurement {
    const UUID: u16 = uuid::CGM_MEASUREMENT;
    const NAME: &'static str = "cgm_measurement";
    const MAX_LEN: usize = MAX_CGM_RECORDS * CgmMeasurementRecord::MAX_LEN;

    /// Records follow each other to the end of the value, so there are never trailing bytes:
    /// extra bytes are read as a further record and fail as one.
    fn decode_with(bytes: &[u8], _quirks: Quirks) -> Result<Decoded<Self>, DecodeError> {
        let mut r = Reader::new(bytes);
        let mut records = heapless::Vec::new();
        let mut reserved = 0u8;
        loop {
            if records.is_full() {
                return Err(DecodeError::Invalid {
                    field: "size",
                    value: (MAX_CGM_RECORDS + 1) as u32,
                    expected: "at most 41 records in one CGM Measurement",
                });
            }
            let (record, reserved_flags) = CgmMeasurementRecord::read(&mut r, bytes)?;
            reserved |= reserved_flags;
            // Cannot fail: fullness was checked above.
            let _ = records.push(record);
            if r.remaining() == 0 {
                break;
            }
        }
        Ok(r.finish(Self { records }, u32::from(reserved)))
    }

    fn encode_with(&self, out: &mut [u8], _quirks: Quirks) -> Result<usize, EncodeError> {
        if self.records.is_empty() {
            return Err(EncodeError::Unrepresentable {
                field: "records",
                reason: "a CGM Measurement carries at least one record",
            });
        }
        let mut w = Writer::new(out);
        w.reserve(
            self.records
                .iter()
                .map(CgmMeasurementRecord::encoded_len)
                .sum(),
        )?;
        for record in &self.records {
            record.write(&mut w)?;
        }
        Ok(w.len())
    }
}

impl ToReadings for CgmMeasurement {
    /// Readings without a session start, so untimed; [`CgmMeasurement::readings_since`] times
    /// them. `Readings` holds as many readings as a packet holds records.
    fn readings(&self) -> Readings {
        self.readings_since(None).collect()
    }
}

bit_flags! {
    /// CGM Feature bits (24 on the wire): what the sensor supports.
    pub struct CgmFeatures: u32 {
        calibration_supported = 0,
        patient_high_low_alerts_supported = 1,
        hypo_alerts_supported = 2,
        hyper_alerts_supported = 3,
        rate_of_increase_decrease_alerts_supported = 4,
        device_specific_alert_supported = 5,
        sensor_malfunction_detection_supported = 6,
        sensor_temperature_high_low_detection_supported = 7,
        sensor_result_high_low_detection_supported = 8,
        low_battery_detection_supported = 9,
        sensor_type_error_detection_supported = 10,
        general_device_fault_supported = 11,
        /// Every CGM characteristic of this sensor carries an E2E-CRC.
        e2e_crc_supported = 12,
        multiple_bond_supported = 13,
        multiple_sessions_supported = 14,
        cgm_trend_information_supported = 15,
        cgm_quality_supported = 16,
    }
}

/// CGM Feature (0x2AA8), 6 bytes. Its E2E-CRC field is always sent: the CRC when
/// `e2e_crc_supported`, else 0xFFFF (not checked, since it protects nothing).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
pub struct CgmFeature {
    pub cgm_feature: CgmFeatures,
    /// The sample type the sensor measures (low nibble of the Type-Sample Location octet).
    pub cgm_type: GlucoseType,
    /// Where the sensor sits (high nibble).
    pub cgm_sample_location: GlucoseSampleLocation,
}

impl Characteristic for CgmFeature {
    const UUID: u16 = uuid::CGM_FEATURE;
    const NAME: &'static str = "cgm_feature";
    const MAX_LEN: usize = 6;

    fn decode_with(bytes: &[u8], _quirks: Quirks) -> Result<Decoded<Self>, DecodeError> {
        let mut r = Reader::new(bytes);
        r.announce(Self::MAX_LEN);
        let bits = r.u24("cgm_feature")?;
        let (cgm_type, cgm_sample_location) = split_type_location(r.u8("cgm_type")?);
        let cgm_feature = CgmFeatures::from_bits(bits);
        if cgm_feature.e2e_crc_supported {
            read_crc(&mut r, bytes, 0)?;
        } else {
            r.u16("e2e_crc")?;
        }
        let value = Self {
            cgm_feature,
            cgm_type,
            cgm_sample_location,
        };
        Ok(r.finish(value, bits & !CgmFeatures::DEFINED))
    }

    fn encode_with(&self, out: &mut [u8], _quirks: Quirks) -> Result<usize, EncodeError> {
        let mut w = Writer::new(out);
        w.reserve(Self::MAX_LEN)?;
        w.u24(self.cgm_feature.bits())?;
        w.u8(join_type_location(
            self.cgm_type,
            self.cgm_sample_location,
            "cgm_type",
            "cgm_sample_location",
        )?)?;
        if self.cgm_feature.e2e_crc_supported {
            write_crc(&mut w, 0)?;
        } else {
            w.u16(0xFFFF)?;
        }
        Ok(w.len())
    }
}

/// CGM Status (0x2AA9): the sensor's current annunciations, all three octets, as a 24-bit field
/// (Status, Cal/Temp, Warning in little-endian order).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
pub struct CgmStatus {
    /// Minutes since the session started.
    pub time_offset: u16,
    pub status: CgmStatusOctet,
    pub cal_temp: CgmCalTempOctet,
    pub warning: CgmWarningOctet,
    pub e2e_crc: bool,
}

impl CgmStatus {
    /// The three octets in the form a measurement record carries them.
    pub fn annunciation(&self) -> SensorStatusAnnunciation {
        SensorStatusAnnunciation {
            status: Some(self.status),
            cal_temp: Some(self.cal_temp),
            warning: Some(self.warning),
        }
    }
}

impl Characteristic for CgmStatus {
    const UUID: u16 = uuid::CGM_STATUS;
    const NAME: &'static str = "cgm_status";
    const MAX_LEN: usize = 7;

    fn decode_with(bytes: &[u8], _quirks: Quirks) -> Result<Decoded<Self>, DecodeError> {
        let mut r = Reader::new(bytes);
        r.announce(5);
        let time_offset = r.u16("time_offset")?;
        let a = SensorStatusAnnunciation::from_bits(r.u24("status")?);
        let e2e_crc = read_optional_crc(&mut r, bytes)?;
        let value = Self {
            time_offset,
            status: a.status.unwrap_or_default(),
            cal_temp: a.cal_temp.unwrap_or_default(),
            warning: a.warning.unwrap_or_default(),
            e2e_crc,
        };
        Ok(r.finish(value, 0))
    }

    fn encode_with(&self, out: &mut [u8], _quirks: Quirks) -> Result<usize, EncodeError> {
        let mut w = Writer::new(out);
        w.reserve(5 + crc_len(self.e2e_crc))?;
        w.u16(self.time_offset)?;
        w.u24(self.annunciation().bits())?;
        if self.e2e_crc {
            write_crc(&mut w, 0)?;
        }
        Ok(w.len())
    }
}

/// CGM Session Start Time (0x2AAA): when the session began, in the local time the collector
/// set, with the zone and DST offset in force then.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
pub struct CgmSessionStartTime {
    pub session_start_time: DateTime,
    /// Minutes east of UTC in JSON; `null` when not known.
    pub time_zone: TimeZone,
    pub dst_offset: DstOffset,
    pub e2e_crc: bool,
}

impl CgmSessionStartTime {
    const FIELDS_LEN: usize = DateTime::LEN + 2;

    /// The local wall-clock start of the session, when its date is fully known.
    pub fn to_civil(&self) -> Option<civil::DateTime> {
        self.session_start_time.to_civil()
    }

    /// The local wall-clock time `time_offset` minutes into the session (the time of a record
    /// or status carrying that offset).
    pub fn at_offset(&self, time_offset: u16) -> Option<civil::DateTime> {
        self.session_start_time.plus_minutes(i32::from(time_offset))
    }
}

impl Characteristic for CgmSessionStartTime {
    const UUID: u16 = uuid::CGM_SESSION_START_TIME;
    const NAME: &'static str = "cgm_session_start_time";
    const MAX_LEN: usize = Self::FIELDS_LEN + CRC_LEN;

    fn decode_with(bytes: &[u8], _quirks: Quirks) -> Result<Decoded<Self>, DecodeError> {
        let mut r = Reader::new(bytes);
        r.announce(Self::FIELDS_LEN);
        let session_start_time = DateTime::read(&mut r, "session_start_time")?;
        let tz = r.i8("time_zone")?;
        let time_zone = match tz {
            -128 => TimeZone::Unknown,
            -48..=56 => TimeZone::QuarterHours(tz),
            other => {
                return Err(DecodeError::Invalid {
                    field: "time_zone",
                    value: u32::from(other as u8),
                    expected: "-48..=56 quarter hours, or -128 (not known)",
                });
            }
        };
        let dst_offset = DstOffset::from_code(r.u8("dst_offset")?);
        let e2e_crc = read_optional_crc(&mut r, bytes)?;
        let value = Self {
            session_start_time,
            time_zone,
            dst_offset,
            e2e_crc,
        };
        Ok(r.finish(value, 0))
    }

    fn encode_with(&self, out: &mut [u8], _quirks: Quirks) -> Result<usize, EncodeError> {
        let tz = match self.time_zone {
            TimeZone::Unknown => -128,
            TimeZone::QuarterHours(q @ -48..=56) => q,
            TimeZone::QuarterHours(_) => {
                return Err(EncodeError::Unrepresentable {
                    field: "time_zone",
                    reason: "must be -48..=56 quarter hours",
                });
            }
        };
        let mut w = Writer::new(out);
        w.reserve(Self::FIELDS_LEN + crc_len(self.e2e_crc))?;
        self.session_start_time
            .write(&mut w, "session_start_time")?;
        w.i8(tz)?;
        w.u8(self.dst_offset.code())?;
        if self.e2e_crc {
            write_crc(&mut w, 0)?;
        }
        Ok(w.len())
    }
}

/// CGM Session Run Time (0x2AAB): how long the session is expected to run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
pub struct CgmSessionRunTime {
    /// Hours.
    pub cgm_session_run_time: u16,
    pub e2e_crc: bool,
}

impl Characteristic for CgmSessionRunTime {
    const UUID: u16 = uuid::CGM_SESSION_RUN_TIME;
    const NAME: &'static str = "cgm_session_run_time";
    const MAX_LEN: usize = 2 + CRC_LEN;

    fn decode_with(bytes: &[u8], _quirks: Quirks) -> Result<Decoded<Self>, DecodeError> {
        let mut r = Reader::new(bytes);
        r.announce(2);
        let cgm_session_run_time = r.u16("cgm_session_run_time")?;
        let e2e_crc = read_optional_crc(&mut r, bytes)?;
        let value = Self {
            cgm_session_run_time,
            e2e_crc,
        };
        Ok(r.finish(value, 0))
    }

    fn encode_with(&self, out: &mut [u8], _quirks: Quirks) -> Result<usize, EncodeError> {
        let mut w = Writer::new(out);
        w.reserve(2 + crc_len(self.e2e_crc))?;
        w.u16(self.cgm_session_run_time)?;
        if self.e2e_crc {
            write_crc(&mut w, 0)?;
        }
        Ok(w.len())
    }
}

code_enum! {
    /// Op Code of the CGM Specific Ops Control Point, both directions.
    pub enum CgmSocpOpCode: u8 {
        SetCgmCommunicationInterval = 1 => "set_cgm_communication_interval",
        GetCgmCommunicationInterval = 2 => "get_cgm_communication_interval",
        CgmCommunicationIntervalResponse = 3 => "cgm_communication_interval_response",
        SetGlucoseCalibrationValue = 4 => "set_glucose_calibration_value",
        GetGlucoseCalibrationValue = 5 => "get_glucose_calibration_value",
        GlucoseCalibrationValueResponse = 6 => "glucose_calibration_value_response",
        SetPatientHighAlertLevel = 7 => "set_patient_high_alert_level",
        GetPatientHighAlertLevel = 8 => "get_patient_high_alert_level",
        PatientHighAlertLevelResponse = 9 => "patient_high_alert_level_response",
        SetPatientLowAlertLevel = 10 => "set_patient_low_alert_level",
        GetPatientLowAlertLevel = 11 => "get_patient_low_alert_level",
        PatientLowAlertLevelResponse = 12 => "patient_low_alert_level_response",
        SetHypoAlertLevel = 13 => "set_hypo_alert_level",
        GetHypoAlertLevel = 14 => "get_hypo_alert_level",
        HypoAlertLevelResponse = 15 => "hypo_alert_level_response",
        SetHyperAlertLevel = 16 => "set_hyper_alert_level",
        GetHyperAlertLevel = 17 => "get_hyper_alert_level",
        HyperAlertLevelResponse = 18 => "hyper_alert_level_response",
        SetRateOfDecreaseAlertLevel = 19 => "set_rate_of_decrease_alert_level",
        GetRateOfDecreaseAlertLevel = 20 => "get_rate_of_decrease_alert_level",
        RateOfDecreaseAlertLevelResponse = 21 => "rate_of_decrease_alert_level_response",
        SetRateOfIncreaseAlertLevel = 22 => "set_rate_of_increase_alert_level",
        GetRateOfIncreaseAlertLevel = 23 => "get_rate_of_increase_alert_level",
        RateOfIncreaseAlertLevelResponse = 24 => "rate_of_increase_alert_level_response",
        ResetDeviceSpecificAlert = 25 => "reset_device_specific_alert",
        StartTheSession = 26 => "start_the_session",
        StopTheSession = 27 => "stop_the_session",
        ResponseCode = 28 => "response_code",
    }
}

code_enum! {
    /// Response Code Value of the CGM Specific Ops Control Point.
    pub enum CgmSocpResponseCode: u8 {
        Success = 1 => "success",
        OpCodeNotSupported = 2 => "op_code_not_supported",
        InvalidOperand = 3 => "invalid_operand",
        ProcedureNotCompleted = 4 => "procedure_not_completed",
        ParameterOutOfRange = 5 => "parameter_out_of_range",
    }
}

/// The six alert levels the control point sets and reads. Each has three consecutive op codes:
/// set, get, response.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(
    feature = "serde",
    derive(serde::Serialize),
    serde(rename_all = "snake_case")
)]
pub enum CgmAlert {
    PatientHigh,
    PatientLow,
    Hypo,
    Hyper,
    RateOfDecrease,
    RateOfIncrease,
}

/// What an alert op code does with its alert.
#[derive(Clone, Copy, PartialEq, Eq)]
enum AlertOp {
    Set,
    Get,
    Response,
}

impl CgmAlert {
    /// In op code order.
    pub const ALL: [CgmAlert; 6] = [
        Self::PatientHigh,
        Self::PatientLow,
        Self::Hypo,
        Self::Hyper,
        Self::RateOfDecrease,
        Self::RateOfIncrease,
    ];

    /// The unit of the level: mg/dL, or mg/dL/min for the rates.
    pub const fn unit(self) -> Unit {
        match self {
            Self::RateOfDecrease | Self::RateOfIncrease => Unit::MilligramPerDecilitrePerMinute,
            _ => Unit::MilligramPerDecilitre,
        }
    }

    const fn set_op_code(self) -> u8 {
        match self {
            Self::PatientHigh => 7,
            Self::PatientLow => 10,
            Self::Hypo => 13,
            Self::Hyper => 16,
            Self::RateOfDecrease => 19,
            Self::RateOfIncrease => 22,
        }
    }

    fn op_code(self, op: AlertOp) -> u8 {
        self.set_op_code()
            + match op {
                AlertOp::Set => 0,
                AlertOp::Get => 1,
                AlertOp::Response => 2,
            }
    }

    fn from_op_code(code: u8) -> Option<(Self, AlertOp)> {
        let i = code.checked_sub(7)?;
        let alert = *Self::ALL.get(usize::from(i / 3))?;
        let op = match i % 3 {
            0 => AlertOp::Set,
            1 => AlertOp::Get,
            _ => AlertOp::Response,
        };
        Some((alert, op))
    }
}

fn read_level(r: &mut Reader<'_>, alert: CgmAlert) -> Result<Quantity, DecodeError> {
    read_sfloat(r, "level", alert.unit())
}

bit_flags! {
    /// Calibration Status of a calibration record.
    pub struct CgmCalibrationStatus: u8 {
        calibration_data_rejected = 0,
        calibration_data_out_of_range = 1,
        calibration_process_pending = 2,
    }
}

/// Calibration Value operand of the control point (10 bytes).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
pub struct CgmCalibrationRecord {
    /// Reference glucose concentration in mg/dL.
    pub glucose_concentration_of_calibration: Quantity,
    /// Minutes since session start when the reference sample was taken.
    pub calibration_time: u16,
    /// Type of the reference sample (low nibble).
    pub calibration_type: GlucoseType,
    /// Where the reference sample was taken (high nibble).
    pub calibration_sample_location: GlucoseSampleLocation,
    /// Minutes since session start when the next calibration is due.
    pub next_calibration_time: u16,
    /// Which stored calibration this is.
    pub calibration_data_record_number: u16,
    pub calibration_status: CgmCalibrationStatus,
}

impl CgmCalibrationRecord {
    const LEN: usize = 10;

    fn read(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let glucose_concentration_of_calibration = read_sfloat(
            r,
            "glucose_concentration_of_calibration",
            Unit::MilligramPerDecilitre,
        )?;
        let calibration_time = r.u16("calibration_time")?;
        let (calibration_type, calibration_sample_location) =
            split_type_location(r.u8("calibration_type")?);
        Ok(Self {
            glucose_concentration_of_calibration,
            calibration_time,
            calibration_type,
            calibration_sample_location,
            next_calibration_time: r.u16("next_calibration_time")?,
            calibration_data_record_number: r.u16("calibration_data_record_number")?,
            calibration_status: CgmCalibrationStatus::from_bits(r.u8("calibration_status")?),
        })
    }

    fn write(&self, w: &mut Writer<'_>) -> Result<(), EncodeError> {
        write_sfloat(
            w,
            &self.glucose_concentration_of_calibration,
            "glucose_concentration_of_calibration",
            Unit::MilligramPerDecilitre,
        )?;
        w.u16(self.calibration_time)?;
        w.u8(join_type_location(
            self.calibration_type,
            self.calibration_sample_location,
            "calibration_type",
            "calibration_sample_location",
        )?)?;
        w.u16(self.next_calibration_time)?;
        w.u16(self.calibration_data_record_number)?;
        w.u8(self.calibration_status.bits())
    }
}

/// A request written to the CGM Specific Ops Control Point: the op code with its operand.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(
    feature = "serde",
    derive(serde::Serialize),
    serde(rename_all = "snake_case")
)]
pub enum CgmSocpRequestOp {
    /// Minutes between measurements; 0 disables periodic notification, 255 is the fastest the
    /// sensor supports.
    SetCgmCommunicationInterval {
        communication_interval: u8,
    },
    GetCgmCommunicationInterval,
    SetGlucoseCalibrationValue(CgmCalibrationRecord),
    /// 0xFFFF asks for the last stored calibration.
    GetGlucoseCalibrationValue {
        calibration_data_record_number: u16,
    },
    SetAlertLevel {
        alert: CgmAlert,
        level: Quantity,
    },
    GetAlertLevel {
        alert: CgmAlert,
    },
    ResetDeviceSpecificAlert,
    StartTheSession,
    StopTheSession,
    /// An op code the specification reserves. Its operand is unknown, so the bytes after it
    /// are reported as trailing; a server answers "op code not supported".
    Reserved(u8),
}

/// CGM Specific Ops Control Point (0x2AAC), collector to sensor.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
pub struct CgmSocpRequest {
    pub op_code: CgmSocpRequestOp,
    pub e2e_crc: bool,
}

impl CgmSocpRequestOp {
    fn code(&self) -> u8 {
        use CgmSocpOpCode as Op;
        match self {
            Self::SetCgmCommunicationInterval { .. } => Op::SetCgmCommunicationInterval.code(),
            Self::GetCgmCommunicationInterval => Op::GetCgmCommunicationInterval.code(),
            Self::SetGlucoseCalibrationValue(_) => Op::SetGlucoseCalibrationValue.code(),
            Self::GetGlucoseCalibrationValue { .. } => Op::GetGlucoseCalibrationValue.code(),
            Self::SetAlertLevel { alert, .. } => alert.op_code(AlertOp::Set),
            Self::GetAlertLevel { alert } => alert.op_code(AlertOp::Get),
            Self::ResetDeviceSpecificAlert => Op::ResetDeviceSpecificAlert.code(),
            Self::StartTheSession => Op::StartTheSession.code(),
            Self::StopTheSession => Op::StopTheSession.code(),
            Self::Reserved(code) => *code,
        }
    }

    fn operand_len(&self) -> usize {
        match self {
            Self::SetCgmCommunicationInterval { .. } => 1,
            Self::SetGlucoseCalibrationValue(_) => CgmCalibrationRecord::LEN,
            Self::GetGlucoseCalibrationValue { .. } | Self::SetAlertLevel { .. } => 2,
            _ => 0,
        }
    }
}

impl Characteristic for CgmSocpRequest {
    const UUID: u16 = uuid::CGM_SPECIFIC_OPS_CONTROL_POINT;
    const NAME: &'static str = "cgm_specific_ops_control_point";
    const MAX_LEN: usize = 1 + CgmCalibrationRecord::LEN + CRC_LEN;

    fn decode_with(bytes: &[u8], _quirks: Quirks) -> Result<Decoded<Self>, DecodeError> {
        use CgmSocpOpCode as Op;
        let mut r = Reader::new(bytes);
        let code = r.u8("op_code")?;
        let op_code = match Op::from_code(code) {
            Op::SetCgmCommunicationInterval => {
                r.announce(1 + 1);
                CgmSocpRequestOp::SetCgmCommunicationInterval {
                    communication_interval: r.u8("communication_interval")?,
                }
            }
            Op::GetCgmCommunicationInterval => CgmSocpRequestOp::GetCgmCommunicationInterval,
            Op::SetGlucoseCalibrationValue => {
                r.announce(1 + CgmCalibrationRecord::LEN);
                CgmSocpRequestOp::SetGlucoseCalibrationValue(CgmCalibrationRecord::read(&mut r)?)
            }
            Op::GetGlucoseCalibrationValue => {
                r.announce(1 + 2);
                CgmSocpRequestOp::GetGlucoseCalibrationValue {
                    calibration_data_record_number: r.u16("calibration_data_record_number")?,
                }
            }
            Op::ResetDeviceSpecificAlert => CgmSocpRequestOp::ResetDeviceSpecificAlert,
            Op::StartTheSession => CgmSocpRequestOp::StartTheSession,
            Op::StopTheSession => CgmSocpRequestOp::StopTheSession,
            Op::Reserved(code) => {
                let value = CgmSocpRequest {
                    op_code: CgmSocpRequestOp::Reserved(code),
                    e2e_crc: false,
                };
                return Ok(r.finish(value, 0));
            }
            _ => match CgmAlert::from_op_code(code) {
                Some((alert, AlertOp::Set)) => {
                    r.announce(1 + 2);
                    CgmSocpRequestOp::SetAlertLevel {
                        alert,
                        level: read_level(&mut r, alert)?,
                    }
                }
                Some((alert, AlertOp::Get)) => CgmSocpRequestOp::GetAlertLevel { alert },
                _ => {
                    return Err(DecodeError::Invalid {
                        field: "op_code",
                        value: code.into(),
                        expected: "a request op code (responses are 3, 6, 9, ..., 24 and 28)",
                    });
                }
            },
        };
        let e2e_crc = read_optional_crc(&mut r, bytes)?;
        Ok(r.finish(Self { op_code, e2e_crc }, 0))
    }

    fn encode_with(&self, out: &mut [u8], _quirks: Quirks) -> Result<usize, EncodeError> {
        if let CgmSocpRequestOp::Reserved(code) = self.op_code {
            if !matches!(CgmSocpOpCode::from_code(code), CgmSocpOpCode::Reserved(_)) {
                return Err(EncodeError::Unrepresentable {
                    field: "op_code",
                    reason: "a defined op code must be sent through its own variant",
                });
            }
            if self.e2e_crc {
                return Err(EncodeError::Unrepresentable {
                    field: "e2e_crc",
                    reason: "a reserved op code has no known operand, so no place for a CRC",
                });
            }
        }
        let mut w = Writer::new(out);
        w.reserve(1 + self.op_code.operand_len() + crc_len(self.e2e_crc))?;
        w.u8(self.op_code.code())?;
        match &self.op_code {
            CgmSocpRequestOp::SetCgmCommunicationInterval {
                communication_interval,
            } => w.u8(*communication_interval)?,
            CgmSocpRequestOp::SetGlucoseCalibrationValue(record) => record.write(&mut w)?,
            CgmSocpRequestOp::GetGlucoseCalibrationValue {
                calibration_data_record_number,
            } => w.u16(*calibration_data_record_number)?,
            CgmSocpRequestOp::SetAlertLevel { alert, level } => {
                write_sfloat(&mut w, level, "level", alert.unit())?;
            }
            _ => {}
        }
        if self.e2e_crc {
            write_crc(&mut w, 0)?;
        }
        Ok(w.len())
    }
}

/// A response indicated by the CGM Specific Ops Control Point: the op code with its operand.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(
    feature = "serde",
    derive(serde::Serialize),
    serde(rename_all = "snake_case")
)]
pub enum CgmSocpResponseOp {
    /// Minutes between measurements (0 = off, 255 = fastest).
    CgmCommunicationIntervalResponse {
        communication_interval: u8,
    },
    GlucoseCalibrationValueResponse(CgmCalibrationRecord),
    AlertLevelResponse {
        alert: CgmAlert,
        level: Quantity,
    },
    /// The outcome of a request that has no dedicated response.
    ResponseCode {
        request_op_code: CgmSocpOpCode,
        response_code: CgmSocpResponseCode,
    },
    /// An op code the specification reserves; the bytes after it are reported as trailing.
    Reserved(u8),
}

/// CGM Specific Ops Control Point (0x2AAC), sensor to collector.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
pub struct CgmSocpResponse {
    pub op_code: CgmSocpResponseOp,
    pub e2e_crc: bool,
}

impl CgmSocpResponseOp {
    fn code(&self) -> u8 {
        use CgmSocpOpCode as Op;
        match self {
            Self::CgmCommunicationIntervalResponse { .. } => {
                Op::CgmCommunicationIntervalResponse.code()
            }
            Self::GlucoseCalibrationValueResponse(_) => Op::GlucoseCalibrationValueResponse.code(),
            Self::AlertLevelResponse { alert, .. } => alert.op_code(AlertOp::Response),
            Self::ResponseCode { .. } => Op::ResponseCode.code(),
            Self::Reserved(code) => *code,
        }
    }

    fn operand_len(&self) -> usize {
        match self {
            Self::CgmCommunicationIntervalResponse { .. } => 1,
            Self::GlucoseCalibrationValueResponse(_) => CgmCalibrationRecord::LEN,
            Self::AlertLevelResponse { .. } | Self::ResponseCode { .. } => 2,
            Self::Reserved(_) => 0,
        }
    }
}

impl Characteristic for CgmSocpResponse {
    const UUID: u16 = uuid::CGM_SPECIFIC_OPS_CONTROL_POINT;
    const NAME: &'static str = "cgm_specific_ops_control_point";
    const MAX_LEN: usize = 1 + CgmCalibrationRecord::LEN + CRC_LEN;

    fn decode_with(bytes: &[u8], _quirks: Quirks) -> Result<Decoded<Self>, DecodeError> {
        use CgmSocpOpCode as Op;
        let mut r = Reader::new(bytes);
        let code = r.u8("op_code")?;
        let op_code = match Op::from_code(code) {
            Op::CgmCommunicationIntervalResponse => {
                r.announce(1 + 1);
                CgmSocpResponseOp::CgmCommunicationIntervalResponse {
                    communication_interval: r.u8("communication_interval")?,
                }
            }
            Op::GlucoseCalibrationValueResponse => {
                r.announce(1 + CgmCalibrationRecord::LEN);
                CgmSocpResponseOp::GlucoseCalibrationValueResponse(CgmCalibrationRecord::read(
                    &mut r,
                )?)
            }
            Op::ResponseCode => {
                r.announce(1 + 2);
                CgmSocpResponseOp::ResponseCode {
                    request_op_code: Op::from_code(r.u8("request_op_code")?),
                    response_code: CgmSocpResponseCode::from_code(r.u8("response_code")?),
                }
            }
            Op::Reserved(code) => {
                let value = CgmSocpResponse {
                    op_code: CgmSocpResponseOp::Reserved(code),
                    e2e_crc: false,
                };
                return Ok(r.finish(value, 0));
            }
            _ => match CgmAlert::from_op_code(code) {
                Some((alert, AlertOp::Response)) => {
                    r.announce(1 + 2);
                    CgmSocpResponseOp::AlertLevelResponse {
                        alert,
                        level: read_level(&mut r, alert)?,
                    }
                }
                _ => {
                    return Err(DecodeError::Invalid {
                        field: "op_code",
                        value: code.into(),
                        expected: "a response op code (3, 6, 9, ..., 24 or 28)",
                    });
                }
            },
        };
        let e2e_crc = read_optional_crc(&mut r, bytes)?;
        Ok(r.finish(Self { op_code, e2e_crc }, 0))
    }

    fn encode_with(&self, out: &mut [u8], _quirks: Quirks) -> Result<usize, EncodeError> {
        if let CgmSocpResponseOp::Reserved(code) = self.op_code {
            if !matches!(CgmSocpOpCode::from_code(code), CgmSocpOpCode::Reserved(_)) {
                return Err(EncodeError::Unrepresentable {
                    field: "op_code",
                    reason: "a defined op code must be sent through its own variant",
                });
            }
            if self.e2e_crc {
                return Err(EncodeError::Unrepresentable {
                    field: "e2e_crc",
                    reason: "a reserved op code has no known operand, so no place for a CRC",
                });
            }
        }
        let mut w = Writer::new(out);
        w.reserve(1 + self.op_code.operand_len() + crc_len(self.e2e_crc))?;
        w.u8(self.op_code.code())?;
        match &self.op_code {
            CgmSocpResponseOp::CgmCommunicationIntervalResponse {
                communication_interval,
            } => w.u8(*communication_interval)?,
            CgmSocpResponseOp::GlucoseCalibrationValueResponse(record) => record.write(&mut w)?,
            CgmSocpResponseOp::AlertLevelResponse { alert, level } => {
                write_sfloat(&mut w, level, "level", alert.unit())?;
            }
            CgmSocpResponseOp::ResponseCode {
                request_op_code,
                response_code,
            } => {
                w.u8(request_op_code.code())?;
                w.u8(response_code.code())?;
            }
            CgmSocpResponseOp::Reserved(_) => {}
        }
        if self.e2e_crc {
            write_crc(&mut w, 0)?;
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

    fn mgdl(m: i64, e: i8) -> Quantity {
        Quantity::decimal(Decimal::new(m, e), Unit::MilligramPerDecilitre)
    }

    fn encode<T: Characteristic>(value: &T) -> std::vec::Vec<u8> {
        let mut buf = [0u8; 1024];
        let n = value.encode(&mut buf).unwrap();
        buf[..n].to_vec()
    }

    /// A record with nothing optional: 120 mg/dL at `time_offset`.
    fn plain(time_offset: u16) -> CgmMeasurementRecord {
        CgmMeasurementRecord {
            glucose_concentration: mgdl(12, 1),
            time_offset,
            sensor_status_annunciation: SensorStatusAnnunciation::default(),
            trend_information: None,
            quality: None,
            e2e_crc: false,
        }
    }

    // Nordic's published full record (Android-BLE-Common-Library CGM test): every optional
    // field, octets 02 / 14 / FF, 12.34 mg/dL, offset 5, trend 0.2, quality 99.7, CRC 0x3F8E.
    const NORDIC_RECORD: [u8; 15] = [
        0x0F, 0xE3, 0xD2, 0xE4, 0x05, 0x00, 0x02, 0x14, 0xFF, 0x02, 0xF0, 0xE5, 0xF3, 0x8E, 0x3F,
    ];

    #[test]
    fn decodes_nordics_full_record_with_its_crc() {
        let d = CgmMeasurement::decode(&NORDIC_RECORD).unwrap();
        assert_eq!(d.trailing, 0);
        assert_eq!(d.reserved_flags, 0);
        assert_eq!(d.value.records.len(), 1);
        let rec = d.value.records[0];
        assert_eq!(rec.glucose_concentration, mgdl(1234, -2));
        assert_eq!(rec.time_offset, 5);
        assert_eq!(
            rec.trend_information,
            Some(Quantity::decimal(
                Decimal::new(2, -1),
                Unit::MilligramPerDecilitrePerMinute
            ))
        );
        assert_eq!(
            rec.quality,
            Some(Quantity::decimal(Decimal::new(997, -1), Unit::Percent))
        );
        assert!(rec.e2e_crc);
        // Octets in flag order: Warning 0x02, Cal/Temp 0x14, Status 0xFF (reserved b6-7 dropped).
        let a = rec.sensor_status_annunciation;
        assert_eq!(a.warning.unwrap().bits(), 0x02);
        assert!(a.warning.unwrap().above_patient_high);
        let c = a.cal_temp.unwrap();
        assert!(c.calibration_recommended && c.sensor_temperature_too_high);
        assert_eq!(a.status.unwrap().bits(), 0x3F);
        // Re-encoding drops the reserved status bits, so only the CRC and that octet differ.
        let again = encode(&d.value);
        assert_eq!(again[..8], NORDIC_RECORD[..8]);
        assert_eq!(again[8], 0x3F);
        assert_eq!(again[9..13], NORDIC_RECORD[9..13]);
    }

    #[test]
    fn pins_a_crc_computed_by_hand() {
        // 120 mg/dL (0x100C) at offset 6 with a CRC. CRC-16/MCRF4XX of 08 00 0C 10 06 00, computed
        // outside this crate, is 0x6F59.
        let bytes = [0x08, 0x00, 0x0C, 0x10, 0x06, 0x00, 0x59, 0x6F];
        let m = CgmMeasurement::from(CgmMeasurementRecord {
            e2e_crc: true,
            ..plain(6)
        });
        assert_eq!(encode(&m), bytes);
        assert_eq!(CgmMeasurement::decode(&bytes).unwrap().value, m);
    }

    #[test]
    fn rejects_a_record_with_a_wrong_crc() {
        // Nordic's CRC-error vector: the CRC sent is 0x6F58, one off.
        let bytes = [0x08, 0x00, 0x0C, 0x10, 0x06, 0x00, 0x58, 0x6F];
        assert_eq!(
            CgmMeasurement::decode(&bytes).unwrap_err(),
            DecodeError::Crc {
                field: "e2e_crc",
                received: 0x6F58,
                computed: 0x6F59
            }
        );
    }

    #[test]
    fn decodes_several_records_in_one_notification() {
        let bytes = [
            0x06, 0x00, 0x0C, 0x10, 0x05, 0x00, 0x06, 0x00, 0x0C, 0x10, 0x06, 0x00,
        ];
        let m = CgmMeasurement::decode(&bytes).unwrap().value;
        assert_eq!(m.records.as_slice(), &[plain(5), plain(6)]);
        assert_eq!(encode(&m), bytes);
    }

    #[test]
    fn size_that_matches_neither_layout_is_an_error() {
        // Size 7 with no optional field: neither 6 (no CRC) nor 8 (CRC).
        let bytes = [0x07, 0x00, 0x0C, 0x10, 0x06, 0x00, 0x00];
        assert_eq!(
            CgmMeasurement::decode(&bytes).unwrap_err(),
            DecodeError::Invalid {
                field: "size",
                value: 7,
                expected: "the record length its flags imply, plus 2 with an E2E-CRC"
            }
        );
    }

    #[test]
    fn truncated_record_names_the_field_and_the_size() {
        // Size 15, all flags, cut inside the trend.
        let err = CgmMeasurement::decode(&NORDIC_RECORD[..10]).unwrap_err();
        assert_eq!(
            err,
            DecodeError::Truncated {
                field: "trend_information",
                needed: 15,
                present: 10
            }
        );
        // A second record cut after its flags: needed counts from the start of the value.
        let err = CgmMeasurement::decode(&[0x06, 0x00, 0x0C, 0x10, 0x05, 0x00, 0x06, 0x00, 0x0C])
            .unwrap_err();
        assert_eq!(
            err,
            DecodeError::Truncated {
                field: "glucose_concentration",
                needed: 12,
                present: 9
            }
        );
    }

    #[test]
    fn extra_bytes_are_read_as_a_further_record_not_trailing() {
        let err = CgmMeasurement::decode(&[0x06, 0x00, 0x0C, 0x10, 0x05, 0x00, 0xAA]).unwrap_err();
        assert_eq!(err.field(), "flags");
    }

    #[test]
    fn reports_reserved_record_flags() {
        let d = CgmMeasurement::decode(&[0x06, 0x1C, 0x0C, 0x10, 0x05, 0x00]).unwrap();
        assert_eq!(d.reserved_flags, 0x1C);
        assert_eq!(d.value.records[0], plain(5));
    }

    #[test]
    fn empty_octets_keep_their_presence() {
        let rec = CgmMeasurementRecord {
            sensor_status_annunciation: SensorStatusAnnunciation {
                status: None,
                cal_temp: Some(CgmCalTempOctet::default()),
                warning: None,
            },
            ..plain(1)
        };
        let bytes = encode(&CgmMeasurement::from(rec));
        assert_eq!(bytes, [0x07, CAL_TEMP_OCTET, 0x0C, 0x10, 0x01, 0x00, 0x00]);
        assert_eq!(
            CgmMeasurement::decode(&bytes).unwrap().value.records[0],
            rec
        );
    }

    #[test]
    fn holds_41_records_and_refuses_a_42nd() {
        let record = [0x06, 0x00, 0x0C, 0x10, 0x05, 0x00];
        let many: std::vec::Vec<u8> = record.iter().copied().cycle().take(6 * 42).collect();
        let d = CgmMeasurement::decode(&many[..6 * 41]).unwrap();
        assert_eq!(d.value.records.len(), 41);
        assert_eq!(
            CgmMeasurement::decode(&many).unwrap_err(),
            DecodeError::Invalid {
                field: "size",
                value: 42,
                expected: "at most 41 records in one CGM Measurement"
            }
        );
    }

    #[test]
    fn keeps_special_values_special() {
        // Concentration NaN, trend +INF.
        let bytes = [0x08, TREND_INFORMATION, 0xFF, 0x07, 0x05, 0x00, 0xFE, 0x07];
        let rec = CgmMeasurement::decode(&bytes).unwrap().value.records[0];
        assert_eq!(
            rec.glucose_concentration.value,
            MedValue::Special(Special::NaN)
        );
        assert_eq!(
            rec.trend_information.unwrap().value,
            MedValue::Special(Special::PositiveInfinity)
        );
        assert!(rec.reading(None).value.has_special());
    }

    #[test]
    fn encoding_rejects_a_concentration_not_in_mg_per_dl() {
        let rec = CgmMeasurementRecord {
            glucose_concentration: Quantity::decimal(Decimal::new(55, -1), Unit::MillimolePerLitre),
            ..plain(1)
        };
        let mut out = [0u8; 16];
        assert!(matches!(
            CgmMeasurement::from(rec).encode(&mut out),
            Err(EncodeError::Unrepresentable {
                field: "glucose_concentration",
                ..
            })
        ));
        assert!(matches!(
            CgmMeasurement::default().encode(&mut out),
            Err(EncodeError::Unrepresentable {
                field: "records",
                ..
            })
        ));
    }

    #[test]
    fn reading_is_timed_from_the_session_start() {
        let start = CgmSessionStartTime {
            session_start_time: DateTime::new(2024, 3, 5, 23, 30, 0).unwrap(),
            time_zone: TimeZone::QuarterHours(4),
            dst_offset: DstOffset::StandardTime,
            e2e_crc: false,
        };
        let rec = plain(45);
        let timed = rec.reading(Some(&start));
        assert_eq!(timed.kind, Kind::InterstitialGlucose);
        assert_eq!(timed.value, ReadingValue::Single(mgdl(12, 1)));
        let expected = DateTime::new(2024, 3, 6, 0, 15, 0)
            .unwrap()
            .to_civil()
            .unwrap();
        assert_eq!(timed.time, DeviceTime::Known(expected));
        assert_eq!(timed.sequence_number, None);
        assert_eq!(rec.reading(None).time, DeviceTime::Absent);
        let unknown_year = CgmSessionStartTime {
            session_start_time: DateTime {
                year: None,
                ..start.session_start_time
            },
            ..start
        };
        assert_eq!(rec.reading(Some(&unknown_year)).time, DeviceTime::Absent);
        let m = CgmMeasurement::from(rec);
        assert_eq!(m.readings()[0].time, DeviceTime::Absent);
        assert_eq!(m.readings_since(Some(&start)).next(), Some(timed));
    }

    #[test]
    fn annunciations_map_to_reading_status() {
        let rec = CgmMeasurement::decode(&NORDIC_RECORD)
            .unwrap()
            .value
            .records[0];
        let s = rec.reading(None).status;
        assert!(s.battery_low && s.device_fault && s.temperature_out_of_range && s.questionable);
        assert!(!s.above_range && !s.below_range && !s.time_fault);
        let high = SensorStatusAnnunciation {
            warning: Some(CgmWarningOctet {
                above_device_range: true,
                ..CgmWarningOctet::default()
            }),
            ..SensorStatusAnnunciation::default()
        };
        let s = high.reading_status();
        assert!(s.above_range && !s.below_range && !s.questionable);
    }

    #[test]
    fn a_full_packet_gives_one_reading_per_record() {
        let mut m = CgmMeasurement::default();
        for i in 0..MAX_CGM_RECORDS as u16 {
            m.records.push(plain(i)).unwrap();
        }
        assert_eq!(m.readings().len(), MAX_CGM_RECORDS);
    }

    #[test]
    fn decodes_nordics_feature_with_crc() {
        let bits: u32 = 0b1_1001_1110_0110_1110;
        let bytes = [0x6E, 0x9E, 0x01, 0x16, 0x8A, 0xC1];
        assert_eq!(bytes[..3], bits.to_le_bytes()[..3]);
        let d = CgmFeature::decode(&bytes).unwrap();
        assert_eq!(d.trailing, 0);
        let f = d.value;
        assert!(f.cgm_feature.e2e_crc_supported && f.cgm_feature.cgm_quality_supported);
        assert!(!f.cgm_feature.calibration_supported);
        assert_eq!(f.cgm_type, GlucoseType::ArterialPlasma);
        assert_eq!(f.cgm_sample_location, GlucoseSampleLocation::Finger);
        assert_eq!(encode(&f), bytes);
        let mut bad = bytes;
        bad[4] = 0xAF;
        assert!(matches!(
            CgmFeature::decode(&bad),
            Err(DecodeError::Crc { .. })
        ));
    }

    #[test]
    fn feature_without_crc_support_sends_ffff() {
        // E2E-CRC bit clear, reserved bit 20 set, one trailing byte.
        let bytes = [0x01, 0x00, 0x10, 0xF9, 0xFF, 0xFF, 0x00];
        let d = CgmFeature::decode(&bytes).unwrap();
        assert!(d.value.cgm_feature.calibration_supported);
        assert_eq!(d.value.cgm_type, GlucoseType::InterstitialFluid);
        assert_eq!(
            d.value.cgm_sample_location,
            GlucoseSampleLocation::NotAvailable
        );
        assert_eq!(d.reserved_flags, 1 << 20);
        assert_eq!(d.trailing, 1);
        assert_eq!(encode(&d.value), [0x01, 0x00, 0x00, 0xF9, 0xFF, 0xFF]);
        assert_eq!(
            CgmFeature::decode(&bytes[..4]).unwrap_err(),
            DecodeError::Truncated {
                field: "e2e_crc",
                needed: 6,
                present: 4
            }
        );
    }

    #[test]
    fn decodes_nordics_status_with_and_without_crc() {
        let with_crc = [0x05, 0x00, 0x3F, 0x3F, 0xFF, 0xA7, 0xE0];
        let s = CgmStatus::decode(&with_crc).unwrap().value;
        assert_eq!(s.time_offset, 5);
        assert!(s.e2e_crc);
        assert_eq!(s.annunciation().bits(), 0xFF_3F3F);
        assert!(s.status.session_stopped && s.warning.above_device_range);
        assert_eq!(encode(&s), with_crc);
        let plain = CgmStatus::decode(&[0x06, 0x00, 0x01, 0x01, 0x01])
            .unwrap()
            .value;
        assert!(!plain.e2e_crc);
        assert!(plain.status.session_stopped);
        assert!(plain.cal_temp.time_synchronization_required);
        assert!(plain.warning.below_patient_low);
        // Nordic's bad-CRC vector.
        assert!(matches!(
            CgmStatus::decode(&[0x06, 0x00, 0x01, 0x01, 0x01, 0xA7, 0xE0]),
            Err(DecodeError::Crc { .. })
        ));
    }

    #[test]
    fn status_truncation_and_trailing() {
        assert_eq!(
            CgmStatus::decode(&[0x06, 0x00, 0x01]).unwrap_err(),
            DecodeError::Truncated {
                field: "status",
                needed: 5,
                present: 3
            }
        );
        // One byte more than the fields cannot be a CRC: trailing.
        let d = CgmStatus::decode(&[0x06, 0x00, 0x01, 0x01, 0x01, 0x00]).unwrap();
        assert!(!d.value.e2e_crc);
        assert_eq!(d.trailing, 1);
    }

    #[test]
    fn decodes_nordics_session_start_time() {
        // 2018-04-24 13:08:24, zone +2 h (8 quarter hours), daylight time, CRC 0xC2E0.
        let bytes = [
            0xE2, 0x07, 0x04, 0x18, 0x0D, 0x08, 0x18, 0x08, 0x04, 0xE0, 0xC2,
        ];
        let s = CgmSessionStartTime::decode(&bytes).unwrap().value;
        assert_eq!(
            s.session_start_time,
            DateTime::new(2018, 4, 24, 13, 8, 24).unwrap()
        );
        assert_eq!(s.time_zone, TimeZone::QuarterHours(8));
        assert_eq!(s.dst_offset, DstOffset::DaylightTime);
        assert!(s.e2e_crc);
        let later = DateTime::new(2018, 4, 24, 14, 8, 24).unwrap().to_civil();
        assert_eq!(s.at_offset(60), later);
        assert_eq!(encode(&s), bytes);
        let mut bad = bytes;
        bad[10] = 0xC3;
        assert!(matches!(
            CgmSessionStartTime::decode(&bad),
            Err(DecodeError::Crc { .. })
        ));
        // Nordic's second vector: no CRC, the year not known, half an hour of DST.
        let s = CgmSessionStartTime::decode(&[0, 0, 4, 24, 13, 8, 24, 8, 2])
            .unwrap()
            .value;
        assert_eq!(s.dst_offset, DstOffset::HalfHourDaylightTime);
        assert_eq!(s.session_start_time.year, None);
        assert_eq!(s.to_civil(), None);
        assert!(!s.e2e_crc);
    }

    #[test]
    fn session_start_time_errors_name_their_field() {
        let bytes = [0xE2, 0x07, 0x04, 0x18, 0x0D, 0x08, 0x18, 0x40, 0x00];
        assert!(matches!(
            CgmSessionStartTime::decode(&bytes),
            Err(DecodeError::Invalid {
                field: "time_zone",
                value: 0x40,
                ..
            })
        ));
        assert_eq!(
            CgmSessionStartTime::decode(&[0xE2, 0x07, 4, 24, 13, 8, 24, 8]).unwrap_err(),
            DecodeError::Truncated {
                field: "dst_offset",
                needed: 9,
                present: 8
            }
        );
        // A reserved DST code is kept, not refused; one extra byte is trailing.
        let d =
            CgmSessionStartTime::decode(&[0xE2, 0x07, 4, 24, 13, 8, 24, 0x80, 0x03, 0x00]).unwrap();
        assert_eq!(d.value.dst_offset, DstOffset::Reserved(3));
        assert_eq!(d.value.time_zone, TimeZone::Unknown);
        assert_eq!(d.trailing, 1);
    }

    #[test]
    fn session_run_time_with_and_without_crc() {
        let r = CgmSessionRunTime {
            cgm_session_run_time: 336,
            e2e_crc: false,
        };
        assert_eq!(encode(&r), [0x50, 0x01]);
        let with_crc = CgmSessionRunTime { e2e_crc: true, ..r };
        let bytes = encode(&with_crc);
        assert_eq!(bytes.len(), 4);
        assert_eq!(CgmSessionRunTime::decode(&bytes).unwrap().value, with_crc);
        assert_eq!(
            CgmSessionRunTime::decode(&[0x50]).unwrap_err(),
            DecodeError::Truncated {
                field: "cgm_session_run_time",
                needed: 2,
                present: 1
            }
        );
        assert_eq!(
            CgmSessionRunTime::decode(&[0x50, 0x01, 0x00])
                .unwrap()
                .trailing,
            1
        );
    }

    #[test]
    fn decodes_nordics_socp_responses() {
        let ok = CgmSocpResponse::decode(&[28, 2, 1, 0x3C, 0x3B])
            .unwrap()
            .value;
        assert_eq!(
            ok,
            CgmSocpResponse {
                op_code: CgmSocpResponseOp::ResponseCode {
                    request_op_code: CgmSocpOpCode::GetCgmCommunicationInterval,
                    response_code: CgmSocpResponseCode::Success,
                },
                e2e_crc: true,
            }
        );
        assert_eq!(encode(&ok), [28, 2, 1, 0x3C, 0x3B]);
        assert!(matches!(
            CgmSocpResponse::decode(&[28, 2, 2, 0xA7, 0x01]),
            Err(DecodeError::Crc { .. })
        ));
        let interval = CgmSocpResponse::decode(&[3, 10, 0x8A, 0x75]).unwrap().value;
        assert_eq!(
            interval.op_code,
            CgmSocpResponseOp::CgmCommunicationIntervalResponse {
                communication_interval: 10
            }
        );
        // Patient low alert level 0.0011 mg/dL (mantissa 11, exponent -4), with CRC.
        let low = CgmSocpResponse::decode(&[12, 11, 0xC0, 0x34, 0xBE])
            .unwrap()
            .value;
        assert_eq!(
            low.op_code,
            CgmSocpResponseOp::AlertLevelResponse {
                alert: CgmAlert::PatientLow,
                level: mgdl(11, -4),
            }
        );
        let rate = CgmSocpResponse::decode(&[21, 1, 16]).unwrap().value;
        assert_eq!(
            rate.op_code,
            CgmSocpResponseOp::AlertLevelResponse {
                alert: CgmAlert::RateOfDecrease,
                level: Quantity::decimal(Decimal::new(1, 1), Unit::MilligramPerDecilitrePerMinute),
            }
        );
    }

    #[test]
    fn decodes_nordics_calibration_value_response() {
        // 100 mg/dL at minute 10, capillary plasma from the earlobe, next at 20, record 1,
        // process pending, CRC 0xB2BF.
        let bytes = [6, 0x01, 0x20, 10, 0, 0x32, 20, 0, 1, 0, 0b100, 0xBF, 0xB2];
        let d = CgmSocpResponse::decode(&bytes).unwrap();
        assert_eq!(d.trailing, 0);
        let CgmSocpResponseOp::GlucoseCalibrationValueResponse(c) = d.value.op_code else {
            panic!("not a calibration value");
        };
        assert_eq!(c.glucose_concentration_of_calibration, mgdl(1, 2));
        assert_eq!(c.calibration_time, 10);
        assert_eq!(c.calibration_type, GlucoseType::CapillaryPlasma);
        assert_eq!(
            c.calibration_sample_location,
            GlucoseSampleLocation::Earlobe
        );
        assert_eq!(c.next_calibration_time, 20);
        assert_eq!(c.calibration_data_record_number, 1);
        assert!(c.calibration_status.calibration_process_pending);
        assert_eq!(encode(&d.value), bytes);
        assert_eq!(
            CgmSocpResponse::decode(&bytes[..6]).unwrap_err(),
            DecodeError::Truncated {
                field: "next_calibration_time",
                needed: 11,
                present: 6
            }
        );
    }

    #[test]
    fn socp_requests_encode_as_the_spec_lays_them_out() {
        let req = |op_code| CgmSocpRequest {
            op_code,
            e2e_crc: false,
        };
        assert_eq!(
            encode(&req(CgmSocpRequestOp::SetCgmCommunicationInterval {
                communication_interval: 5
            })),
            [1, 5]
        );
        assert_eq!(encode(&req(CgmSocpRequestOp::StartTheSession)), [26]);
        assert_eq!(encode(&req(CgmSocpRequestOp::StopTheSession)), [27]);
        assert_eq!(
            encode(&req(CgmSocpRequestOp::GetAlertLevel {
                alert: CgmAlert::Hyper
            })),
            [17]
        );
        assert_eq!(
            encode(&req(CgmSocpRequestOp::SetAlertLevel {
                alert: CgmAlert::Hypo,
                level: mgdl(70, 0),
            })),
            [13, 70, 0]
        );
        assert_eq!(
            encode(&req(CgmSocpRequestOp::GetGlucoseCalibrationValue {
                calibration_data_record_number: 0xFFFF
            })),
            [5, 0xFF, 0xFF]
        );
        let with_crc = CgmSocpRequest {
            op_code: CgmSocpRequestOp::SetCgmCommunicationInterval {
                communication_interval: 10,
            },
            e2e_crc: true,
        };
        assert_eq!(encode(&with_crc)[..2], [1, 10]);
        assert_eq!(
            CgmSocpRequest::decode(&encode(&with_crc)).unwrap().value,
            with_crc
        );
    }

    #[test]
    fn socp_requests_refuse_response_op_codes_and_keep_reserved_ones() {
        assert!(matches!(
            CgmSocpRequest::decode(&[28, 1, 1]),
            Err(DecodeError::Invalid {
                field: "op_code",
                value: 28,
                ..
            })
        ));
        assert!(matches!(
            CgmSocpRequest::decode(&[9, 0, 0]),
            Err(DecodeError::Invalid {
                field: "op_code",
                value: 9,
                ..
            })
        ));
        assert!(matches!(
            CgmSocpResponse::decode(&[26]),
            Err(DecodeError::Invalid {
                field: "op_code",
                value: 26,
                ..
            })
        ));
        let d = CgmSocpRequest::decode(&[0x40, 1, 2]).unwrap();
        assert_eq!(d.value.op_code, CgmSocpRequestOp::Reserved(0x40));
        assert_eq!(d.trailing, 2);
        let mut out = [0u8; 16];
        let bad = CgmSocpRequest {
            op_code: CgmSocpRequestOp::Reserved(26),
            e2e_crc: false,
        };
        assert!(matches!(
            bad.encode(&mut out),
            Err(EncodeError::Unrepresentable {
                field: "op_code",
                ..
            })
        ));
    }

    #[test]
    fn socp_truncation_names_the_operand_field() {
        assert_eq!(
            CgmSocpRequest::decode(&[7, 0x64]).unwrap_err(),
            DecodeError::Truncated {
                field: "level",
                needed: 3,
                present: 2
            }
        );
        assert_eq!(
            CgmSocpResponse::decode(&[28, 4]).unwrap_err(),
            DecodeError::Truncated {
                field: "response_code",
                needed: 3,
                present: 2
            }
        );
        assert_eq!(CgmSocpRequest::decode(&[26, 0]).unwrap().trailing, 1);
    }

    // Strategies, from raw wire values so every value is representable.

    fn annunciation() -> impl Strategy<Value = SensorStatusAnnunciation> {
        (
            proptest::option::of(any::<u8>()),
            proptest::option::of(any::<u8>()),
            proptest::option::of(any::<u8>()),
        )
            .prop_map(|(s, c, w)| SensorStatusAnnunciation {
                status: s.map(CgmStatusOctet::from_bits),
                cal_temp: c.map(CgmCalTempOctet::from_bits),
                warning: w.map(CgmWarningOctet::from_bits),
            })
    }

    fn record() -> impl Strategy<Value = CgmMeasurementRecord> {
        (
            sfloat(),
            any::<u16>(),
            annunciation(),
            proptest::option::of(sfloat()),
            proptest::option::of(sfloat()),
            any::<bool>(),
        )
            .prop_map(|(g, time_offset, a, trend, quality, e2e_crc)| {
                CgmMeasurementRecord {
                    glucose_concentration: Quantity::new(g, Unit::MilligramPerDecilitre),
                    time_offset,
                    sensor_status_annunciation: a,
                    trend_information: trend
                        .map(|t| Quantity::new(t, Unit::MilligramPerDecilitrePerMinute)),
                    quality: quality.map(|q| Quantity::new(q, Unit::Percent)),
                    e2e_crc,
                }
            })
    }

    fn calibration() -> impl Strategy<Value = CgmCalibrationRecord> {
        (
            sfloat(),
            any::<u16>(),
            any::<u8>(),
            any::<u16>(),
            any::<u16>(),
            any::<u8>(),
        )
            .prop_map(
                |(g, calibration_time, tl, next_calibration_time, number, status)| {
                    let (calibration_type, calibration_sample_location) = split_type_location(tl);
                    CgmCalibrationRecord {
                        glucose_concentration_of_calibration: Quantity::new(
                            g,
                            Unit::MilligramPerDecilitre,
                        ),
                        calibration_time,
                        calibration_type,
                        calibration_sample_location,
                        next_calibration_time,
                        calibration_data_record_number: number,
                        calibration_status: CgmCalibrationStatus::from_bits(status),
                    }
                },
            )
    }

    fn alert() -> impl Strategy<Value = CgmAlert> {
        proptest::sample::select(CgmAlert::ALL.to_vec())
    }

    fn level(alert: CgmAlert) -> impl Strategy<Value = Quantity> {
        sfloat().prop_map(move |v| Quantity::new(v, alert.unit()))
    }

    fn request_op() -> impl Strategy<Value = CgmSocpRequestOp> {
        prop_oneof![
            any::<u8>().prop_map(|communication_interval| {
                CgmSocpRequestOp::SetCgmCommunicationInterval {
                    communication_interval,
                }
            }),
            Just(CgmSocpRequestOp::GetCgmCommunicationInterval),
            calibration().prop_map(CgmSocpRequestOp::SetGlucoseCalibrationValue),
            any::<u16>().prop_map(|n| CgmSocpRequestOp::GetGlucoseCalibrationValue {
                calibration_data_record_number: n
            }),
            alert().prop_flat_map(|alert| level(alert)
                .prop_map(move |level| CgmSocpRequestOp::SetAlertLevel { alert, level })),
            alert().prop_map(|alert| CgmSocpRequestOp::GetAlertLevel { alert }),
            Just(CgmSocpRequestOp::ResetDeviceSpecificAlert),
            Just(CgmSocpRequestOp::StartTheSession),
            Just(CgmSocpRequestOp::StopTheSession),
        ]
    }

    fn response_op() -> impl Strategy<Value = CgmSocpResponseOp> {
        prop_oneof![
            any::<u8>().prop_map(|communication_interval| {
                CgmSocpResponseOp::CgmCommunicationIntervalResponse {
                    communication_interval,
                }
            }),
            calibration().prop_map(CgmSocpResponseOp::GlucoseCalibrationValueResponse),
            alert().prop_flat_map(|alert| level(alert)
                .prop_map(move |level| CgmSocpResponseOp::AlertLevelResponse { alert, level })),
            (any::<u8>(), any::<u8>()).prop_map(|(op, code)| CgmSocpResponseOp::ResponseCode {
                request_op_code: CgmSocpOpCode::from_code(op),
                response_code: CgmSocpResponseCode::from_code(code),
            }),
        ]
    }

    proptest! {
        #[test]
        fn measurement_roundtrips(records in proptest::collection::vec(record(), 1..=8)) {
            let m = CgmMeasurement { records: records.into_iter().collect() };
            roundtrip(&m, Quirks::NONE)?;
        }

        #[test]
        fn feature_roundtrips(bits in 0u32..1 << 24, tl in any::<u8>()) {
            let (cgm_type, cgm_sample_location) = split_type_location(tl);
            let f = CgmFeature {
                cgm_feature: CgmFeatures::from_bits(bits),
                cgm_type,
                cgm_sample_location,
            };
            roundtrip(&f, Quirks::NONE)?;
        }

        #[test]
        fn status_roundtrips(time_offset in any::<u16>(), bits in 0u32..1 << 24, e2e_crc in any::<bool>()) {
            let a = SensorStatusAnnunciation::from_bits(bits);
            let s = CgmStatus {
                time_offset,
                status: a.status.unwrap_or_default(),
                cal_temp: a.cal_temp.unwrap_or_default(),
                warning: a.warning.unwrap_or_default(),
                e2e_crc,
            };
            roundtrip(&s, Quirks::NONE)?;
        }

        #[test]
        fn session_start_time_roundtrips(
            session_start_time in date_time(),
            tz in prop_oneof![Just(-128i8), -48i8..=56],
            dst in any::<u8>(),
            e2e_crc in any::<bool>(),
        ) {
            let s = CgmSessionStartTime {
                session_start_time,
                time_zone: if tz == -128 { TimeZone::Unknown } else { TimeZone::QuarterHours(tz) },
                dst_offset: DstOffset::from_code(dst),
                e2e_crc,
            };
            roundtrip(&s, Quirks::NONE)?;
        }

        #[test]
        fn session_run_time_roundtrips(hours in any::<u16>(), e2e_crc in any::<bool>()) {
            roundtrip(&CgmSessionRunTime { cgm_session_run_time: hours, e2e_crc }, Quirks::NONE)?;
        }

        #[test]
        fn socp_request_roundtrips(op_code in request_op(), e2e_crc in any::<bool>()) {
            roundtrip(&CgmSocpRequest { op_code, e2e_crc }, Quirks::NONE)?;
        }

        #[test]
        fn socp_reserved_request_roundtrips(code in prop_oneof![Just(0u8), 29u8..=255]) {
            let req = CgmSocpRequest { op_code: CgmSocpRequestOp::Reserved(code), e2e_crc: false };
            roundtrip(&req, Quirks::NONE)?;
        }

        #[test]
        fn socp_response_roundtrips(op_code in response_op(), e2e_crc in any::<bool>()) {
            roundtrip(&CgmSocpResponse { op_code, e2e_crc }, Quirks::NONE)?;
        }

        #[test]
        fn decoding_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..64)) {
            let _ = CgmMeasurement::decode(&bytes);
            let _ = CgmFeature::decode(&bytes);
            let _ = CgmStatus::decode(&bytes);
            let _ = CgmSessionStartTime::decode(&bytes);
            let _ = CgmSessionRunTime::decode(&bytes);
            let _ = CgmSocpRequest::decode(&bytes);
            let _ = CgmSocpResponse::decode(&bytes);
        }
    }
}
