//! Current Time Service (0x1805) and the device clock behind it.
//!
//! The clock counts milliseconds since 2000-01-01 00:00:00 *local* time (CTS carries local
//! wall-clock time without a zone), anchored to the board's monotonic time from
//! [`Event::Tick`](crate::gatt::Event::Tick). It starts unset; a client sets it by writing
//! Current Time (0x2A2B), and personalities time-stamp measurements with [`DeviceClock::now`]
//! (`None` while unset, so a record says "no time stamp" rather than a wrong one).
//!
//! Decisions (also in `GATT.md`):
//! - **Unset clock, read:** CTS has no "unknown" value, but Date Time does: year, month and
//!   day 0 mean "not known". An unset clock reads as ten zero bytes (unknown date, 00:00:00,
//!   day of week unknown, no adjust reason), which every reader decodes as "not known".
//! - **Write of the wrong length** (not exactly 10 bytes): 0x0D Invalid Attribute Value Length.
//! - **Write of an impossible or unusable time** (month 13, 30 February, hour 24, a zero
//!   "unknown" year/month/day, a day of week that contradicts the date, a year outside
//!   2000..=2135): 0xFF Out of Range, the Core Specification Supplement's code for a value
//!   outside the allowed range. CTS's own 0x80 "Data field ignored" means the server *accepted*
//!   the write but ignored some fields; this server never ignores a field (fractions are
//!   kept, the adjust reason is stored, the day of week is checked), so it never sends 0x80.
//!   A refused write changes nothing.
//! - **Adjust Reason** is stored as written (reserved bits dropped) and read back until the next
//!   change.

use relais_protocol::time::{
    AdjustReason, CurrentTime, DateTime, DayDateTime, DayOfWeek, ExactTime256,
};
use relais_protocol::{DecodeError, uuid};

use super::BuiltIn;
use crate::gatt::{AttError, Characteristic, Properties, Service, Uuid, ValueSource};

/// The service: Current Time, readable, writable and notifiable.
pub const SERVICE: Service = Service::primary(
    Uuid::sig(uuid::CURRENT_TIME_SERVICE),
    &[Characteristic::new(
        Uuid::sig(uuid::CURRENT_TIME),
        Properties::READ
            .and(Properties::WRITE)
            .and(Properties::NOTIFY),
    )
    .with_value(ValueSource::BuiltIn(BuiltIn::CurrentTime))],
);

/// Year of the clock's epoch (1 January, 00:00:00 local time).
pub const EPOCH_YEAR: u16 = 2000;
/// Last year the clock accepts: its seconds fit a `u32` until February 2136.
pub const LAST_YEAR: u16 = 2135;

const MS_PER_DAY: u64 = 86_400_000;
/// Days from 1970-01-01 to 2000-01-01.
const EPOCH_DAYS_AFTER_1970: u32 = 10_957;

/// Why a time was refused. The clock is unchanged.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClockError {
    /// A Current Time value is 10 bytes.
    WrongLength { len: usize },
    /// The decoder found an impossible field (month 13, 30 February, hour 24...).
    Invalid(DecodeError),
    /// Year, month or day is 0 ("not known"): a clock cannot be set to an unknown date.
    UnknownDate,
    /// The year lies outside `EPOCH_YEAR..=LAST_YEAR`.
    YearOutOfRange { year: u16 },
    /// The day of week contradicts the date.
    WrongDayOfWeek { written: u8, actual: u8 },
}

impl ClockError {
    /// The ATT error a CTS write gets for this refusal.
    pub const fn att_error(&self) -> AttError {
        match self {
            Self::WrongLength { .. } => AttError::InvalidAttributeValueLength,
            Self::Invalid(_)
            | Self::UnknownDate
            | Self::YearOutOfRange { .. }
            | Self::WrongDayOfWeek { .. } => AttError::OutOfRange,
        }
    }
}

/// When the clock was last set: local time since the epoch at a moment of board time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Anchor {
    epoch_ms: u64,
    uptime_ms: u64,
}

/// The device's wall clock: set over CTS, kept running by the board's monotonic ticks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DeviceClock {
    uptime_ms: u64,
    anchor: Option<Anchor>,
    adjust_reason: AdjustReason,
}

impl Default for DeviceClock {
    fn default() -> Self {
        Self::new()
    }
}

impl DeviceClock {
    /// An unset clock at board time 0.
    pub const fn new() -> Self {
        Self {
            uptime_ms: 0,
            anchor: None,
            adjust_reason: AdjustReason::from_bits(0),
        }
    }

    /// Advances board time. Time never runs backwards: an older value is ignored.
    pub fn tick(&mut self, now_ms: u64) {
        self.uptime_ms = self.uptime_ms.max(now_ms);
    }

    /// Board time of the last tick, in milliseconds.
    pub const fn uptime_ms(&self) -> u64 {
        self.uptime_ms
    }

    /// Whether a client (or the board) has set the clock.
    pub const fn is_set(&self) -> bool {
        self.anchor.is_some()
    }

    /// Forgets the time, e.g. after a battery change the board could not bridge.
    pub fn unset(&mut self) {
        self.anchor = None;
        self.adjust_reason = AdjustReason::default();
    }

    /// Milliseconds since the epoch, local time; `None` while unset.
    pub fn epoch_ms(&self) -> Option<u64> {
        let anchor = self.anchor?;
        let elapsed = self.uptime_ms.saturating_sub(anchor.uptime_ms);
        Some(anchor.epoch_ms.saturating_add(elapsed))
    }

    /// Whole seconds since 2000-01-01 00:00:00 local time; `None` while unset (or after 2136).
    pub fn seconds_since_epoch(&self) -> Option<u32> {
        u32::try_from(self.epoch_ms()? / 1000).ok()
    }

    /// The local date and time, to time-stamp a measurement; `None` while unset.
    pub fn now(&self) -> Option<DateTime> {
        self.current_time()
            .map(|ct| ct.exact_time_256.day_date_time.date_time)
    }

    /// The full Current Time value (day of week, 1/256 s, adjust reason); `None` while unset.
    pub fn current_time(&self) -> Option<CurrentTime> {
        let ms = self.epoch_ms()?;
        let days = u32::try_from(ms / MS_PER_DAY).ok()?;
        let ms_of_day = ms % MS_PER_DAY;
        let seconds_of_day = u32::try_from(ms_of_day / 1000).ok()?;
        let (year, month, day) = civil_from_days(days);
        let date_time = DateTime::new(
            year,
            month,
            day,
            u8::try_from(seconds_of_day / 3600).ok()?,
            u8::try_from(seconds_of_day / 60 % 60).ok()?,
            u8::try_from(seconds_of_day % 60).ok()?,
        )?;
        Some(CurrentTime {
            exact_time_256: ExactTime256 {
                day_date_time: DayDateTime {
                    date_time,
                    day_of_week: weekday(days),
                },
                fractions256: u8::try_from(ms_of_day % 1000 * 256 / 1000).ok()?,
            },
            adjust_reason: self.adjust_reason,
        })
    }

    /// The 10 bytes a client reads: the current time, or zeros ("not known") while unset.
    pub fn read_current_time(&self) -> [u8; CurrentTime::LEN] {
        let mut out = [0; CurrentTime::LEN];
        if let Some(time) = self.current_time() {
            // A time built from the clock always encodes; on the impossible failure the value
            // stays "not known".
            if time.encode(&mut out).is_err() {
                out = [0; CurrentTime::LEN];
            }
        }
        out
    }

    /// Sets the clock from a client's Current Time write. Refused writes change nothing.
    pub fn write_current_time(&mut self, bytes: &[u8]) -> Result<(), ClockError> {
        if bytes.len() != CurrentTime::LEN {
            return Err(ClockError::WrongLength { len: bytes.len() });
        }
        let time = CurrentTime::decode(bytes)
            .map_err(ClockError::Invalid)?
            .value;
        self.set(&time)
    }

    /// Sets the clock to `time` (a CTS value, e.g. from the board's RTC at boot).
    pub fn set(&mut self, time: &CurrentTime) -> Result<(), ClockError> {
        let day_date_time = time.exact_time_256.day_date_time;
        let date_time = day_date_time.date_time;
        let (Some(year), Some(month), Some(day)) = (date_time.year, date_time.month, date_time.day)
        else {
            return Err(ClockError::UnknownDate);
        };
        let year = year.get();
        if !(EPOCH_YEAR..=LAST_YEAR).contains(&year) {
            return Err(ClockError::YearOutOfRange { year });
        }
        // The decoder and `DateTime::new` already refuse impossible days, hours and minutes;
        // check again so a hand-built `CurrentTime` cannot set garbage.
        let Some(checked) = DateTime::new(
            year,
            month.get(),
            day.get(),
            date_time.hours,
            date_time.minutes,
            date_time.seconds,
        ) else {
            return Err(ClockError::Invalid(DecodeError::Invalid {
                field: "date_time",
                value: 0,
                expected: "a date and time that exist",
            }));
        };
        let days = days_since_epoch(year, month.get(), day.get());
        let actual = weekday(days);
        let written = day_date_time.day_of_week;
        if written != DayOfWeek::Unknown && written != actual {
            return Err(ClockError::WrongDayOfWeek {
                written: written.code(),
                actual: actual.code(),
            });
        }
        let seconds = u64::from(days) * 86_400
            + u64::from(checked.hours) * 3600
            + u64::from(checked.minutes) * 60
            + u64::from(checked.seconds);
        let fraction_ms = u64::from(time.exact_time_256.fractions256) * 1000 / 256;
        self.anchor = Some(Anchor {
            epoch_ms: seconds * 1000 + fraction_ms,
            uptime_ms: self.uptime_ms,
        });
        self.adjust_reason = AdjustReason::from_bits(time.adjust_reason.bits());
        Ok(())
    }

    /// Sets the clock to `seconds` since the epoch, e.g. from an RTC counter kept across reset.
    pub fn set_seconds_since_epoch(&mut self, seconds: u32, reason: AdjustReason) {
        self.anchor = Some(Anchor {
            epoch_ms: u64::from(seconds) * 1000,
            uptime_ms: self.uptime_ms,
        });
        self.adjust_reason = reason;
    }
}

/// Days from 2000-01-01 to a date of `EPOCH_YEAR..=LAST_YEAR` (Hinnant's `days_from_civil`,
/// unsigned because no date before the epoch reaches it).
fn days_since_epoch(year: u16, month: u8, day: u8) -> u32 {
    let (month, day) = (u32::from(month), u32::from(day));
    let year = u32::from(year) - u32::from(month <= 2);
    let era = year / 400;
    let year_of_era = year - era * 400;
    let day_of_year = (153 * ((month + 9) % 12) + 2) / 5 + day - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    // 719_468 days from 0000-03-01 to 1970-01-01.
    (era * 146_097 + day_of_era).saturating_sub(719_468 + EPOCH_DAYS_AFTER_1970)
}

/// The date `days` after 2000-01-01 (Hinnant's `civil_from_days`).
fn civil_from_days(days: u32) -> (u16, u8, u8) {
    let z = days + EPOCH_DAYS_AFTER_1970 + 719_468;
    let era = z / 146_097;
    let day_of_era = z - era * 146_097;
    let year_of_era =
        (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let shifted_month = (5 * day_of_year + 2) / 153;
    let day = day_of_year - (153 * shifted_month + 2) / 5 + 1;
    let month = if shifted_month < 10 {
        shifted_month + 3
    } else {
        shifted_month - 9
    };
    let year = year_of_era + era * 400 + u32::from(month <= 2);
    (
        u16::try_from(year).unwrap_or(u16::MAX),
        u8::try_from(month).unwrap_or(0),
        u8::try_from(day).unwrap_or(0),
    )
}

/// Day of week of the date `days` after 2000-01-01, a Saturday.
fn weekday(days: u32) -> DayOfWeek {
    let monday_zero = (days + 5) % 7;
    DayOfWeek::from_code(u8::try_from(monday_zero).unwrap_or(0) + 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn calendar_conversions_agree_both_ways_over_the_whole_range() {
        let last = days_since_epoch(LAST_YEAR, 12, 31);
        for days in 0..=last {
            let (y, m, d) = civil_from_days(days);
            assert_eq!(days_since_epoch(y, m, d), days, "{y}-{m}-{d}");
        }
        assert_eq!(civil_from_days(0), (2000, 1, 1));
        assert_eq!(civil_from_days(59), (2000, 2, 29));
        assert_eq!(days_since_epoch(2024, 3, 1), 8826);
        assert_eq!(weekday(0), DayOfWeek::Saturday);
        assert_eq!(weekday(days_since_epoch(2026, 5, 14)), DayOfWeek::Thursday);
    }
}
