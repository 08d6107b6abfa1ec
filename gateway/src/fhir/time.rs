//! `effectiveDateTime`: from the device's wall clock to an RFC 3339 date-time with offset.
//!
//! Devices report local civil time without a zone, on a clock that may be wrong. The hub
//! measures that clock at connection and passes the skew (device clock minus true time, both
//! read as wall clocks in the hub's zone). The time of a reading is then:
//!
//! 1. the device's civil time minus the skew, rounded to whole seconds (device clocks tick in
//!    seconds; sub-second skew is measurement noise), in civil arithmetic;
//! 2. resolved in the hub's IANA zone (default Europe/Paris), DST included:
//!    - a time in a spring-forward **gap** (2024-03-31 02:30 in Paris never happened) is moved
//!      forward by the length of the gap: 03:30+02:00. A device that did not switch to summer
//!      time yet shows such times for an hour; moving forward is what RFC 5545 and Temporal
//!      ("compatible") do.
//!    - a time in an autumn **fold** (2024-10-27 02:30 happened at +02:00 and again at +01:00)
//!      takes the earlier instant. Nothing in a single reading tells the two apart (the sequence
//!      number orders records but carries no time); the earlier instant is the one a device
//!      still on summer time means, and the choice is stable across retries.
//! 3. written with the zone's offset at that instant and whole seconds:
//!    `2024-03-05T08:30:15+01:00`.
//!
//! Known limit: the skew is applied as one civil duration. A device that does not follow DST
//! and whose skew was measured across a DST change is off by the hour for readings taken before
//! the change; the hub sets device clocks at each connection, which keeps that window short.

use jiff::civil;
use jiff::tz::{AmbiguousOffset, TimeZone};
use jiff::{SignedDuration, Timestamp, Unit};

/// What the mapper needs to know about time besides the reading: both are measured by the
/// caller, the mapper reads no clock.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClockContext {
    /// Device clock minus true time, measured at connection (positive: the device is ahead).
    pub skew: SignedDuration,
    /// When the hub received the reading. Used to refuse readings dated in the future and, when
    /// the hub setting allows it, to date live readings that carry no time.
    pub received_at: Timestamp,
}

impl ClockContext {
    /// A device whose clock is right, read at `received_at`.
    pub fn new(received_at: Timestamp) -> Self {
        Self {
            skew: SignedDuration::ZERO,
            received_at,
        }
    }

    pub fn with_skew(mut self, skew: SignedDuration) -> Self {
        self.skew = skew;
        self
    }
}

/// How a device's civil time met the zone's rules.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LocalResolution {
    /// The civil time happened exactly once.
    Unambiguous,
    /// The civil time fell in a spring-forward gap and was moved forward by the gap's length.
    GapShiftedForward,
    /// The civil time happened twice (autumn fold); the earlier instant was taken.
    FoldEarlier,
}

/// Where the effective time came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TimeSource {
    /// The device's time stamp, corrected by the skew.
    DeviceClock(LocalResolution),
    /// The hub's reception time, for a live reading without a usable time stamp.
    Reception,
    /// An instant the hub computed (the end of a CGM aggregate window).
    Hub,
}

/// The effective time of an Observation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Effective {
    pub instant: Timestamp,
    pub source: TimeSource,
    /// `effectiveDateTime`, e.g. `2024-03-05T08:30:15+01:00`.
    pub date_time: String,
}

/// Time arithmetic went out of jiff's range (years outside -9999..=9999).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("time out of range")]
pub struct TimeOutOfRange;

/// `instant` as an RFC 3339 date-time with the offset `tz` has at that instant, whole seconds.
pub fn rfc3339(instant: Timestamp, tz: &TimeZone) -> String {
    instant
        .to_zoned_datetime(tz.clone())
        .strftime("%Y-%m-%dT%H:%M:%S%:z")
        .to_string()
}

/// The instant a device's civil time stands for, corrected by `skew` and resolved in `tz` as
/// the module documentation says.
pub fn device_instant(
    local: civil::DateTime,
    skew: SignedDuration,
    tz: &TimeZone,
) -> Result<(Timestamp, LocalResolution), TimeOutOfRange> {
    let skew = skew.round(Unit::Second).map_err(|_| TimeOutOfRange)?;
    let corrected = local.checked_sub(skew).map_err(|_| TimeOutOfRange)?;
    let ambiguous = tz.to_ambiguous_timestamp(corrected);
    let resolution = match ambiguous.offset() {
        AmbiguousOffset::Unambiguous { .. } => LocalResolution::Unambiguous,
        AmbiguousOffset::Gap { .. } => LocalResolution::GapShiftedForward,
        AmbiguousOffset::Fold { .. } => LocalResolution::FoldEarlier,
    };
    // `compatible` is exactly the rule above: later side of a gap, earlier side of a fold.
    let instant = ambiguous.compatible().map_err(|_| TimeOutOfRange)?;
    Ok((instant, resolution))
}

/// [`device_instant`] as an [`Effective`].
pub fn from_device(
    local: civil::DateTime,
    skew: SignedDuration,
    tz: &TimeZone,
) -> Result<Effective, TimeOutOfRange> {
    let (instant, resolution) = device_instant(local, skew, tz)?;
    Ok(Effective {
        instant,
        source: TimeSource::DeviceClock(resolution),
        date_time: rfc3339(instant, tz),
    })
}

/// An instant known to the hub (reception time, aggregate end) as an [`Effective`], truncated to
/// whole seconds like every other effective time.
pub fn from_instant(instant: Timestamp, source: TimeSource, tz: &TimeZone) -> Effective {
    let instant = Timestamp::from_second(instant.as_second()).unwrap_or(instant);
    Effective {
        instant,
        source,
        date_time: rfc3339(instant, tz),
    }
}

#[cfg(test)]
mod tests {
    use jiff::civil::date;

    use super::*;

    fn paris() -> TimeZone {
        TimeZone::get("Europe/Paris").unwrap()
    }

    fn at(dt: civil::DateTime, skew_secs: i64) -> Effective {
        from_device(dt, SignedDuration::from_secs(skew_secs), &paris()).unwrap()
    }

    #[test]
    fn winter_time_is_written_at_plus_one() {
        let e = at(date(2024, 3, 5).at(8, 30, 15, 0), 0);
        assert_eq!(e.date_time, "2024-03-05T08:30:15+01:00");
        assert_eq!(e.instant.to_string(), "2024-03-05T07:30:15Z");
        assert_eq!(
            e.source,
            TimeSource::DeviceClock(LocalResolution::Unambiguous)
        );
    }

    #[test]
    fn summer_time_is_written_at_plus_two() {
        let e = at(date(2024, 7, 14).at(9, 0, 0, 0), 0);
        assert_eq!(e.date_time, "2024-07-14T09:00:00+02:00");
        assert_eq!(e.instant.to_string(), "2024-07-14T07:00:00Z");
    }

    #[test]
    fn a_time_in_the_spring_gap_moves_forward_by_the_gap() {
        // 2024-03-31 02:00 -> 03:00 in Paris: 02:30 never happened.
        let e = at(date(2024, 3, 31).at(2, 30, 0, 0), 0);
        assert_eq!(e.date_time, "2024-03-31T03:30:00+02:00");
        assert_eq!(e.instant.to_string(), "2024-03-31T01:30:00Z");
        assert_eq!(
            e.source,
            TimeSource::DeviceClock(LocalResolution::GapShiftedForward)
        );
    }

    #[test]
    fn the_edges_of_the_spring_gap_are_unambiguous() {
        let before = at(date(2024, 3, 31).at(1, 59, 59, 0), 0);
        assert_eq!(before.date_time, "2024-03-31T01:59:59+01:00");
        let after = at(date(2024, 3, 31).at(3, 0, 0, 0), 0);
        assert_eq!(after.date_time, "2024-03-31T03:00:00+02:00");
        assert_eq!(after.instant.as_second() - before.instant.as_second(), 1);
    }

    #[test]
    fn a_time_in_the_autumn_fold_takes_the_earlier_instant() {
        // 2024-10-27 03:00 -> 02:00 in Paris: 02:30 happened at +02:00, then at +01:00.
        let e = at(date(2024, 10, 27).at(2, 30, 0, 0), 0);
        assert_eq!(e.date_time, "2024-10-27T02:30:00+02:00");
        assert_eq!(e.instant.to_string(), "2024-10-27T00:30:00Z");
        assert_eq!(
            e.source,
            TimeSource::DeviceClock(LocalResolution::FoldEarlier)
        );
    }

    #[test]
    fn just_after_the_fold_is_winter_time() {
        let e = at(date(2024, 10, 27).at(3, 0, 0, 0), 0);
        assert_eq!(e.date_time, "2024-10-27T03:00:00+01:00");
    }

    #[test]
    fn a_fast_device_clock_is_set_back() {
        // The device is 5 min 30 s ahead.
        let e = at(date(2024, 3, 5).at(8, 35, 45, 0), 330);
        assert_eq!(e.date_time, "2024-03-05T08:30:15+01:00");
    }

    #[test]
    fn a_slow_device_clock_is_set_forward_across_midnight() {
        let e = at(date(2024, 12, 31).at(23, 59, 0, 0), -120);
        assert_eq!(e.date_time, "2025-01-01T00:01:00+01:00");
    }

    #[test]
    fn skew_correction_can_land_in_the_gap_and_is_then_shifted() {
        // 01:50 on a clock 40 min slow is 02:30 true wall time: inside the gap.
        let e = at(date(2024, 3, 31).at(1, 50, 0, 0), -2400);
        assert_eq!(e.date_time, "2024-03-31T03:30:00+02:00");
    }

    #[test]
    fn skew_correction_can_leave_the_fold() {
        // A clock one hour ahead showing 02:30 in the fold means 01:30, before it.
        let e = at(date(2024, 10, 27).at(2, 30, 0, 0), 3600);
        assert_eq!(e.date_time, "2024-10-27T01:30:00+02:00");
        assert_eq!(
            e.source,
            TimeSource::DeviceClock(LocalResolution::Unambiguous)
        );
    }

    #[test]
    fn sub_second_skew_rounds_to_the_nearest_second() {
        let dt = date(2024, 3, 5).at(8, 30, 15, 0);
        let e = from_device(dt, SignedDuration::from_millis(1_600), &paris()).unwrap();
        assert_eq!(e.date_time, "2024-03-05T08:30:13+01:00");
        let e = from_device(dt, SignedDuration::from_millis(-400), &paris()).unwrap();
        assert_eq!(e.date_time, "2024-03-05T08:30:15+01:00");
    }

    #[test]
    fn other_zones_use_their_own_rules() {
        let tz = TimeZone::get("America/Cayenne").unwrap();
        let e = from_device(date(2024, 7, 14).at(9, 0, 0, 0), SignedDuration::ZERO, &tz).unwrap();
        assert_eq!(e.date_time, "2024-07-14T09:00:00-03:00");
        let tz = TimeZone::get("Indian/Reunion").unwrap();
        let e = from_device(date(2024, 1, 1).at(9, 0, 0, 0), SignedDuration::ZERO, &tz).unwrap();
        assert_eq!(e.date_time, "2024-01-01T09:00:00+04:00");
    }

    #[test]
    fn an_absurd_skew_is_an_error_not_a_panic() {
        let dt = date(2024, 3, 5).at(8, 30, 15, 0);
        assert_eq!(
            from_device(dt, SignedDuration::MAX, &paris()),
            Err(TimeOutOfRange)
        );
        assert_eq!(
            from_device(dt, SignedDuration::from_hours(-24 * 365 * 9000), &paris()),
            Err(TimeOutOfRange)
        );
    }

    #[test]
    fn hub_instants_are_written_in_the_zone_at_whole_seconds() {
        let ts: Timestamp = "2024-03-05T07:30:15.900Z".parse().unwrap();
        let e = from_instant(ts, TimeSource::Reception, &paris());
        assert_eq!(e.date_time, "2024-03-05T08:30:15+01:00");
        assert_eq!(e.instant.subsec_nanosecond(), 0);
    }
}
