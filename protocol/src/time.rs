//! Time structures of the SIG specifications: Date Time (also the "Time Stamp" and "Base Time"
//! fields of most measurements), Day Date Time, Exact Time 256, Current Time, Local Time
//! Information. A zero year, month or day means "not known", which is not an error.

use core::num::{NonZeroU8, NonZeroU16};

use jiff::civil;

use crate::error::{DecodeError, EncodeError};
use crate::macros::{bit_flags, code_enum};
use crate::wire::{Decoded, Reader, Writer};

/// Date Time (0x2A08): a device's local wall-clock time, without a zone.
///
/// "Not known" parts are `None`; `NonZero` makes that free, so the value is the same 7 bytes as on
/// the wire and moves through registers (the decoders' throughput depends on it).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
#[repr(C, align(8))]
pub struct DateTime {
    /// 1582..=9999; `None` when the device sent 0 ("not known").
    pub year: Option<NonZeroU16>,
    /// 1..=12; `None` when 0.
    pub month: Option<NonZeroU8>,
    /// 1..=31; `None` when 0.
    pub day: Option<NonZeroU8>,
    pub hours: u8,
    pub minutes: u8,
    pub seconds: u8,
}

impl DateTime {
    pub const LEN: usize = 7;

    /// A fully known date and time; `None` if any part is out of range.
    pub fn new(year: u16, month: u8, day: u8, hours: u8, minutes: u8, seconds: u8) -> Option<Self> {
        let dt = Self {
            year: NonZeroU16::new(year),
            month: NonZeroU8::new(month),
            day: NonZeroU8::new(day),
            hours,
            minutes,
            seconds,
        };
        // Zeros would mean "not known": a fully known time has none.
        (dt.year.is_some() && dt.month.is_some() && dt.day.is_some() && dt.check().is_ok())
            .then_some(dt)
    }

    pub fn from_civil(dt: civil::DateTime) -> Option<Self> {
        Self::new(
            u16::try_from(dt.year()).ok()?,
            dt.month().unsigned_abs(),
            dt.day().unsigned_abs(),
            dt.hour().unsigned_abs(),
            dt.minute().unsigned_abs(),
            dt.second().unsigned_abs(),
        )
    }

    /// The wall-clock time when year, month and day are all known.
    pub fn to_civil(&self) -> Option<civil::DateTime> {
        let (year, month, day) = (self.year?.get(), self.month?.get(), self.day?.get());
        civil::DateTime::new(
            i16::try_from(year).ok()?,
            i8::try_from(month).ok()?,
            i8::try_from(day).ok()?,
            i8::try_from(self.hours).ok()?,
            i8::try_from(self.minutes).ok()?,
            i8::try_from(self.seconds).ok()?,
            0,
        )
        .ok()
    }

    /// The time shifted by `minutes` (the glucose Time Offset); `None` when the date is not
    /// fully known or the result leaves the representable years.
    pub fn plus_minutes(&self, minutes: i32) -> Option<civil::DateTime> {
        let span = jiff::Span::new().try_minutes(minutes).ok()?;
        self.to_civil()?.checked_add(span).ok()
    }

    /// Whether day `d` exists in the month, as far as the known parts tell (a 29 February of an
    /// unknown year may exist).
    /// Takes the parts by value: borrowing `self` here would force every decoded time stamp out of
    /// registers onto the stack.
    #[cold]
    fn day_exists(year: Option<NonZeroU16>, month: Option<NonZeroU8>, d: u8) -> bool {
        let leap_year = 2000; // Stands in for an unknown year: it has a 29 February.
        let year = year.map_or(leap_year, |y| y.get() as i16);
        match month {
            Some(m) => civil::Date::new(year, m.get() as i8, d as i8).is_ok(),
            None => true,
        }
    }

    #[inline(always)]
    fn check(&self) -> Result<(), (&'static str, u32, &'static str)> {
        if let Some(y) = self.year.map(NonZeroU16::get)
            && !(1582..=9999).contains(&y)
        {
            return Err(("year", y.into(), "a year of 0 (not known) or 1582..=9999"));
        }
        if let Some(m) = self.month.map(NonZeroU8::get)
            && !(1..=12).contains(&m)
        {
            return Err(("month", m.into(), "a month of 0 (not known) or 1..=12"));
        }
        if let Some(d) = self.day.map(NonZeroU8::get) {
            if !(1..=31).contains(&d) {
                return Err(("day", d.into(), "a day of 0 (not known) or 1..=31"));
            }
            // Days up to 28 exist in every month; only later ones need the calendar.
            if d > 28 && !Self::day_exists(self.year, self.month, d) {
                return Err(("day", d.into(), "a day that exists in that month"));
            }
        }
        if self.hours > 23 {
            return Err(("hours", self.hours.into(), "hours 0..=23"));
        }
        if self.minutes > 59 {
            return Err(("minutes", self.minutes.into(), "minutes 0..=59"));
        }
        if self.seconds > 59 {
            return Err(("seconds", self.seconds.into(), "seconds 0..=59"));
        }
        Ok(())
    }

    /// Reads the 7-byte structure. `field` names the enclosing field in errors. Inlined: a time
    /// stamp returned through memory costs a store-forwarding stall on every measurement.
    #[inline(always)]
    pub fn read(r: &mut Reader<'_>, field: &'static str) -> Result<Self, DecodeError> {
        let &[y0, y1, month, day, hours, minutes, seconds] = r.array::<{ Self::LEN }>(field)?;
        let year = u16::from_le_bytes([y0, y1]);
        let dt = Self {
            year: NonZeroU16::new(year),
            month: NonZeroU8::new(month),
            day: NonZeroU8::new(day),
            hours,
            minutes,
            seconds,
        };
        dt.check()
            .map_err(|(_, value, expected)| DecodeError::Invalid {
                field,
                value,
                expected,
            })?;
        Ok(dt)
    }

    pub fn write(&self, w: &mut Writer<'_>, field: &'static str) -> Result<(), EncodeError> {
        self.check()
            .map_err(|(_, _, reason)| EncodeError::Unrepresentable { field, reason })?;
        w.u16(self.year.map_or(0, NonZeroU16::get))?;
        w.u8(self.month.map_or(0, NonZeroU8::get))?;
        w.u8(self.day.map_or(0, NonZeroU8::get))?;
        w.u8(self.hours)?;
        w.u8(self.minutes)?;
        w.u8(self.seconds)
    }

    /// Decodes a Date Time characteristic value.
    pub fn decode(bytes: &[u8]) -> Result<Decoded<Self>, DecodeError> {
        let mut r = Reader::new(bytes);
        r.announce(Self::LEN);
        let dt = Self::read(&mut r, "date_time")?;
        Ok(r.finish(dt, 0))
    }

    pub fn encode(&self, out: &mut [u8]) -> Result<usize, EncodeError> {
        let mut w = Writer::new(out);
        w.reserve(Self::LEN)?;
        self.write(&mut w, "date_time")?;
        Ok(w.len())
    }
}

code_enum! {
    /// Day of Week: 0 means "not known".
    pub enum DayOfWeek: u8 {
        Unknown = 0 => "unknown",
        Monday = 1 => "monday",
        Tuesday = 2 => "tuesday",
        Wednesday = 3 => "wednesday",
        Thursday = 4 => "thursday",
        Friday = 5 => "friday",
        Saturday = 6 => "saturday",
        Sunday = 7 => "sunday",
    }
}

impl DayOfWeek {
    pub fn from_civil(date: civil::Date) -> Self {
        Self::from_code(date.weekday().to_monday_one_offset().unsigned_abs())
    }
}

/// Day Date Time: Date Time plus the day of the week.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
pub struct DayDateTime {
    pub date_time: DateTime,
    pub day_of_week: DayOfWeek,
}

impl DayDateTime {
    pub const LEN: usize = 8;

    pub fn read(r: &mut Reader<'_>, field: &'static str) -> Result<Self, DecodeError> {
        let date_time = DateTime::read(r, field)?;
        let day_of_week = r.u8(field)?;
        if day_of_week > 7 {
            return Err(DecodeError::Invalid {
                field: "day_of_week",
                value: day_of_week.into(),
                expected: "0 (not known) or 1 (Monday)..=7 (Sunday)",
            });
        }
        Ok(Self {
            date_time,
            day_of_week: DayOfWeek::from_code(day_of_week),
        })
    }

    pub fn write(&self, w: &mut Writer<'_>, field: &'static str) -> Result<(), EncodeError> {
        if let DayOfWeek::Reserved(_) = self.day_of_week {
            return Err(EncodeError::Unrepresentable {
                field: "day_of_week",
                reason: "must be 0..=7",
            });
        }
        self.date_time.write(w, field)?;
        w.u8(self.day_of_week.code())
    }
}

/// Exact Time 256: Day Date Time plus fractions of a second in 1/256 s.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
pub struct ExactTime256 {
    pub day_date_time: DayDateTime,
    pub fractions256: u8,
}

impl ExactTime256 {
    pub const LEN: usize = 9;

    pub fn read(r: &mut Reader<'_>, field: &'static str) -> Result<Self, DecodeError> {
        Ok(Self {
            day_date_time: DayDateTime::read(r, field)?,
            fractions256: r.u8("fractions256")?,
        })
    }

    pub fn write(&self, w: &mut Writer<'_>, field: &'static str) -> Result<(), EncodeError> {
        self.day_date_time.write(w, field)?;
        w.u8(self.fractions256)
    }
}

bit_flags! {
    /// Adjust Reason of the Current Time characteristic: why the clock last changed.
    pub struct AdjustReason: u8 {
        manual_time_update = 0,
        external_reference_time_update = 1,
        change_of_time_zone = 2,
        change_of_dst = 3,
    }
}

/// Current Time (0x2A2B), 10 bytes: what a Current Time Service reads, notifies and accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
pub struct CurrentTime {
    pub exact_time_256: ExactTime256,
    pub adjust_reason: AdjustReason,
}

impl CurrentTime {
    pub const LEN: usize = 10;

    pub fn date_time(&self) -> &DateTime {
        &self.exact_time_256.day_date_time.date_time
    }

    /// A Current Time value for a known wall-clock time, with the day of week filled in.
    pub fn from_civil(dt: civil::DateTime, adjust_reason: AdjustReason) -> Option<Self> {
        Some(Self {
            exact_time_256: ExactTime256 {
                day_date_time: DayDateTime {
                    date_time: DateTime::from_civil(dt)?,
                    day_of_week: DayOfWeek::from_civil(dt.date()),
                },
                fractions256: u8::try_from(i64::from(dt.subsec_nanosecond()) * 256 / 1_000_000_000)
                    .unwrap_or(u8::MAX),
            },
            adjust_reason,
        })
    }

    /// Decodes a Current Time value. With `quirks.omron_day_of_week_zero`, a day of week of 0
    /// on a fully known date is replaced by the weekday of that date.
    pub fn decode_with(bytes: &[u8], quirks: crate::Quirks) -> Result<Decoded<Self>, DecodeError> {
        let mut r = Reader::new(bytes);
        r.announce(Self::LEN);
        let mut exact_time_256 = ExactTime256::read(&mut r, "exact_time_256")?;
        let reason = r.u8("adjust_reason")?;
        let ddt = &mut exact_time_256.day_date_time;
        if quirks.omron_day_of_week_zero
            && ddt.day_of_week == DayOfWeek::Unknown
            && let Some(dt) = ddt.date_time.to_civil()
        {
            ddt.day_of_week = DayOfWeek::from_civil(dt.date());
        }
        let value = Self {
            exact_time_256,
            adjust_reason: AdjustReason::from_bits(reason),
        };
        Ok(r.finish(value, u32::from(reason & !AdjustReason::DEFINED)))
    }

    pub fn decode(bytes: &[u8]) -> Result<Decoded<Self>, DecodeError> {
        Self::decode_with(bytes, crate::Quirks::NONE)
    }

    pub fn encode(&self, out: &mut [u8]) -> Result<usize, EncodeError> {
        let mut w = Writer::new(out);
        w.reserve(Self::LEN)?;
        self.exact_time_256.write(&mut w, "exact_time_256")?;
        w.u8(self.adjust_reason.bits())?;
        Ok(w.len())
    }
}

/// Time Zone of Local Time Information: offset from UTC in 15-minute steps, -48..=56, or
/// -128 for "not known".
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TimeZone {
    Unknown,
    QuarterHours(i8),
}

#[cfg(feature = "serde")]
impl serde::Serialize for TimeZone {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            // Minutes east of UTC: what an integrator wants to read.
            Self::QuarterHours(q) => s.serialize_i16(i16::from(*q) * 15),
            Self::Unknown => s.serialize_none(),
        }
    }
}

code_enum! {
    /// DST Offset of Local Time Information.
    pub enum DstOffset: u8 {
        StandardTime = 0 => "standard_time",
        HalfHourDaylightTime = 2 => "half_an_hour_daylight_time",
        DaylightTime = 4 => "daylight_time",
        DoubleDaylightTime = 8 => "double_daylight_time",
        Unknown = 255 => "unknown",
    }
}

/// Local Time Information (0x2A0F): the zone and DST offset a device applies.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
pub struct LocalTimeInformation {
    /// Minutes east of UTC in JSON; `null` when not known.
    pub time_zone: TimeZone,
    pub dst_offset: DstOffset,
}

impl LocalTimeInformation {
    pub const LEN: usize = 2;

    pub fn decode(bytes: &[u8]) -> Result<Decoded<Self>, DecodeError> {
        let mut r = Reader::new(bytes);
        r.announce(Self::LEN);
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
        let dst = DstOffset::from_code(r.u8("dst_offset")?);
        if let DstOffset::Reserved(code) = dst {
            return Err(DecodeError::Invalid {
                field: "dst_offset",
                value: code.into(),
                expected: "0, 2, 4, 8 or 255",
            });
        }
        Ok(r.finish(
            Self {
                time_zone,
                dst_offset: dst,
            },
            0,
        ))
    }

    pub fn encode(&self, out: &mut [u8]) -> Result<usize, EncodeError> {
        let mut w = Writer::new(out);
        w.reserve(Self::LEN)?;
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
        if let DstOffset::Reserved(_) = self.dst_offset {
            return Err(EncodeError::Unrepresentable {
                field: "dst_offset",
                reason: "must be 0, 2, 4, 8 or 255",
            });
        }
        w.i8(tz)?;
        w.u8(self.dst_offset.code())?;
        Ok(w.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_support::date_time;
    use proptest::prelude::*;

    #[test]
    fn zero_year_month_day_mean_not_known() {
        let dt = DateTime::decode(&[0, 0, 0, 0, 8, 30, 0]).unwrap().value;
        assert_eq!((dt.year, dt.month, dt.day), (None, None, None));
        assert_eq!(dt.hours, 8);
        assert_eq!(dt.to_civil(), None);
    }

    #[test]
    fn impossible_dates_are_refused_with_the_field_named() {
        let err = DateTime::decode(&[0xE8, 0x07, 13, 1, 0, 0, 0]).unwrap_err();
        assert_eq!(err.field(), "date_time");
        assert!(matches!(err, DecodeError::Invalid { value: 13, .. }));
        // 30 February.
        assert!(DateTime::decode(&[0xE8, 0x07, 2, 30, 0, 0, 0]).is_err());
        assert!(DateTime::decode(&[0xE8, 0x07, 2, 29, 24, 0, 0]).is_err());
    }

    #[test]
    fn time_offset_crosses_midnight_and_years() {
        let dt = DateTime::new(2024, 12, 31, 23, 50, 0).unwrap();
        let later = dt.plus_minutes(20).unwrap();
        assert_eq!(later, civil::date(2025, 1, 1).at(0, 10, 0, 0));
        assert_eq!(dt.plus_minutes(-24 * 60).unwrap().day(), 30);
    }

    #[test]
    fn current_time_keeps_day_of_week_and_adjust_reason() {
        // 2024-03-05 08:30:15, Tuesday, 128/256 s, manual update + DST change.
        let bytes = [0xE8, 0x07, 3, 5, 8, 30, 15, 2, 0x80, 0x09];
        let ct = CurrentTime::decode(&bytes).unwrap().value;
        assert_eq!(
            ct.exact_time_256.day_date_time.day_of_week,
            DayOfWeek::Tuesday
        );
        assert_eq!(ct.exact_time_256.fractions256, 128);
        assert!(ct.adjust_reason.manual_time_update && ct.adjust_reason.change_of_dst);
        let mut out = [0u8; 10];
        assert_eq!(ct.encode(&mut out).unwrap(), 10);
        assert_eq!(out, bytes);
    }

    #[test]
    fn omron_day_of_week_zero_is_taken_from_the_date_only_with_the_quirk() {
        let bytes = [0xE8, 0x07, 3, 5, 8, 30, 15, 0, 0, 0];
        let plain = CurrentTime::decode(&bytes).unwrap().value;
        assert_eq!(
            plain.exact_time_256.day_date_time.day_of_week,
            DayOfWeek::Unknown
        );
        let quirks = crate::Quirks {
            omron_day_of_week_zero: true,
            ..crate::Quirks::NONE
        };
        let omron = CurrentTime::decode_with(&bytes, quirks).unwrap().value;
        assert_eq!(
            omron.exact_time_256.day_date_time.day_of_week,
            DayOfWeek::Tuesday
        );
    }

    #[test]
    fn current_time_from_a_clock_fills_the_weekday() {
        let now = civil::date(2026, 11, 26).at(21, 57, 18, 500_000_000);
        let ct = CurrentTime::from_civil(now, AdjustReason::from_bits(1)).unwrap();
        assert_eq!(
            ct.exact_time_256.day_date_time.day_of_week,
            DayOfWeek::Thursday
        );
        assert_eq!(ct.exact_time_256.fractions256, 128);
    }

    #[test]
    fn local_time_information_checks_its_ranges() {
        let lti = LocalTimeInformation::decode(&[4, 4]).unwrap().value;
        assert_eq!(lti.time_zone, TimeZone::QuarterHours(4));
        assert_eq!(lti.dst_offset, DstOffset::DaylightTime);
        assert_eq!(
            LocalTimeInformation::decode(&[0x80, 255])
                .unwrap()
                .value
                .time_zone,
            TimeZone::Unknown
        );
        assert!(LocalTimeInformation::decode(&[57, 0]).is_err());
        assert!(LocalTimeInformation::decode(&[0, 3]).is_err());
        assert_eq!(
            LocalTimeInformation::decode(&[0]).unwrap_err(),
            DecodeError::Truncated {
                field: "dst_offset",
                needed: 2,
                present: 1
            }
        );
    }

    proptest! {
        #[test]
        fn date_time_roundtrips(dt in date_time()) {
            let mut buf = [0u8; 7];
            dt.encode(&mut buf).unwrap();
            prop_assert_eq!(DateTime::decode(&buf).unwrap().value, dt);
        }

        #[test]
        fn current_time_roundtrips(dt in date_time(), dow in 0u8..=7, frac in any::<u8>(), reason in 0u8..16) {
            let ct = CurrentTime {
                exact_time_256: ExactTime256 {
                    day_date_time: DayDateTime { date_time: dt, day_of_week: DayOfWeek::from_code(dow) },
                    fractions256: frac,
                },
                adjust_reason: AdjustReason::from_bits(reason),
            };
            let mut buf = [0u8; 10];
            ct.encode(&mut buf).unwrap();
            prop_assert_eq!(CurrentTime::decode(&buf).unwrap().value, ct);
        }

        #[test]
        fn local_time_information_roundtrips(tz in -48i8..=56, unknown in any::<bool>(), dst in prop::sample::select(&[0u8, 2, 4, 8, 255][..])) {
            let lti = LocalTimeInformation {
                time_zone: if unknown { TimeZone::Unknown } else { TimeZone::QuarterHours(tz) },
                dst_offset: DstOffset::from_code(dst),
            };
            let mut buf = [0u8; 2];
            lti.encode(&mut buf).unwrap();
            prop_assert_eq!(LocalTimeInformation::decode(&buf).unwrap().value, lti);
        }

        #[test]
        fn time_decoders_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..12)) {
            let _ = DateTime::decode(&bytes);
            let _ = CurrentTime::decode(&bytes);
            let _ = LocalTimeInformation::decode(&bytes);
        }
    }
}
