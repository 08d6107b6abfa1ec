//! Device clock: measuring its skew against the hub and setting it.
//!
//! The sans-I/O core ([`skew`], [`needs_sync`], [`encode_time`]) works on wall-clock (civil)
//! times in the hub's zone, so daylight saving changes never show up as skew; the thin driver
//! [`sync_clock`] reads the clock characteristic right after connection, measures, and writes
//! the hub's time when the clock is unset or off by more than the threshold.

use std::time::Duration;

use jiff::SignedDuration;
use jiff::civil;
use jiff::tz::TimeZone;
use relais_protocol::time::{AdjustReason, CurrentTime};
use relais_protocol::{DateTime, Quirks, uuid};

use crate::ble::device::Device;
use crate::ble::error::BleError;

/// The hub's default IANA time zone.
pub const DEFAULT_ZONE: &str = "Europe/Paris";

/// Skew beyond which the device clock is set.
pub const DEFAULT_THRESHOLD: Duration = Duration::from_secs(2);

/// Adjust Reason written with the hub's time: manual time update and external reference.
pub const ADJUST_REASON: AdjustReason = AdjustReason::from_bits(0b0000_0011);

/// ATT error "Data field ignored" (CTS 0x80): the device accepted the write but ignored it.
const DATA_FIELD_IGNORED: &str = "ATT error: 0x80";

/// What can go wrong synchronising a device clock.
#[derive(Debug, thiserror::Error)]
pub enum ClockError {
    /// Reading or writing the characteristic failed.
    #[error(transparent)]
    Ble(#[from] BleError),
    /// The clock value does not decode.
    #[error("the clock value 0x{characteristic:04X} does not decode: {reason}")]
    Malformed {
        /// The characteristic read.
        characteristic: u16,
        /// Why.
        reason: String,
    },
    /// The hub's time cannot be encoded (outside the years the characteristic holds).
    #[error("the hub time {0} cannot be encoded")]
    Unencodable(civil::DateTime),
    /// The hub's time zone is unknown.
    #[error("unknown time zone {0}")]
    UnknownZone(String),
}

/// The skew of a device clock: device time minus hub local time; `None` when the device
/// clock is not set (year, month or day unknown).
pub fn skew(device: &DateTime, hub_local: civil::DateTime) -> Option<SignedDuration> {
    device
        .to_civil()
        .map(|device| device.duration_since(hub_local))
}

/// Whether the clock must be set: unset, or off by more than `threshold` either way.
pub fn needs_sync(skew: Option<SignedDuration>, threshold: Duration) -> bool {
    match skew {
        None => true,
        Some(skew) => skew.unsigned_abs() > threshold,
    }
}

/// The value to write to `characteristic` (Current Time 0x2A2B or Date Time 0x2A08) to set
/// the device clock to `hub_local`.
pub fn encode_time(hub_local: civil::DateTime, characteristic: u16) -> Result<Vec<u8>, ClockError> {
    let unencodable = |_| ClockError::Unencodable(hub_local);
    if characteristic == uuid::DATE_TIME {
        let value = DateTime::from_civil(hub_local).ok_or(ClockError::Unencodable(hub_local))?;
        let mut out = [0u8; DateTime::LEN];
        let len = value.encode(&mut out).map_err(unencodable)?;
        Ok(out.get(..len).unwrap_or(&out).to_vec())
    } else {
        let value = CurrentTime::from_civil(hub_local, ADJUST_REASON)
            .ok_or(ClockError::Unencodable(hub_local))?;
        let mut out = [0u8; CurrentTime::LEN];
        let len = value.encode(&mut out).map_err(unencodable)?;
        Ok(out.get(..len).unwrap_or(&out).to_vec())
    }
}

/// Decodes the date and time of a clock characteristic value.
pub fn decode_time(bytes: &[u8], characteristic: u16) -> Result<DateTime, ClockError> {
    let malformed = |e: relais_protocol::DecodeError| ClockError::Malformed {
        characteristic,
        reason: e.to_string(),
    };
    if characteristic == uuid::DATE_TIME {
        Ok(DateTime::decode(bytes).map_err(malformed)?.value)
    } else {
        Ok(*CurrentTime::decode(bytes)
            .map_err(malformed)?
            .value
            .date_time())
    }
}

/// The hub's local wall-clock time in `zone`.
pub fn hub_now(zone: &TimeZone) -> civil::DateTime {
    zone.to_datetime(jiff::Timestamp::now())
}

/// The IANA zone `name` (e.g. [`DEFAULT_ZONE`]).
pub fn zone(name: &str) -> Result<TimeZone, ClockError> {
    TimeZone::get(name).map_err(|_| ClockError::UnknownZone(name.to_owned()))
}

/// Whether a failed write is the device's "Data field ignored" (ATT 0x80), which CTS allows
/// and which is not fatal.
pub fn is_data_field_ignored(error: &BleError) -> bool {
    error.to_string().contains(DATA_FIELD_IGNORED)
}

/// What [`sync_clock`] measured and did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClockSync {
    /// Device time minus hub time before any correction; `None`: the clock was not set.
    pub skew: Option<SignedDuration>,
    /// Whether the hub's time was written.
    pub written: bool,
    /// Whether the device answered the write with "Data field ignored" (0x80).
    pub ignored: bool,
}

/// Reads the device clock (Current Time, or Date Time with `quirks.roche_date_time_clock`),
/// measures its skew against the hub's time in `zone` and sets it when it is unset or off by
/// more than `threshold`. Returns the skew measured before the correction.
pub async fn sync_clock(
    device: &Device,
    quirks: Quirks,
    zone: &TimeZone,
    threshold: Duration,
) -> Result<ClockSync, ClockError> {
    let characteristic = quirks.clock_characteristic();
    let bytes = device.read(characteristic).await?;
    let hub = hub_now(zone);
    let measured = skew(&decode_time(&bytes, characteristic)?, hub);
    let mut sync = ClockSync {
        skew: measured,
        written: false,
        ignored: false,
    };
    if !needs_sync(measured, threshold) {
        return Ok(sync);
    }
    let value = encode_time(hub_now(zone), characteristic)?;
    match device.write(characteristic, &value).await {
        Ok(()) => sync.written = true,
        Err(e) if is_data_field_ignored(&e) => {
            tracing::info!(address = %device.identity().address, "the device ignored the time written (ATT 0x80)");
            sync.ignored = true;
        }
        Err(e) => return Err(e.into()),
    }
    Ok(sync)
}

/// A session's view of the device clock: the skew measured at connection and, when the hub
/// set the clock, when (hub local time).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct SessionClock {
    /// Device minus hub, measured before any write; `None`: unset or unreadable.
    pub measured: Option<SignedDuration>,
    /// When the hub wrote its time to the device.
    pub set_at: Option<civil::DateTime>,
}

/// Slack around the clock write for [`SessionClock::skew_for`].
const SET_TOLERANCE: SignedDuration = SignedDuration::from_secs(2);

impl SessionClock {
    /// The skew that applies to a measurement the device dated `device_time`, received at
    /// `received` (hub local time).
    ///
    /// Without a write, the measured skew applies to everything. After a write, a
    /// measurement taken with the corrected clock is dated between the write and its
    /// reception, and carries no skew; any other date was taken with the old clock and
    /// carries the measured skew. A device ahead of the hub by less than the time between a
    /// measurement and its reception is taken for corrected: the error is then at most that
    /// delay (seconds, for a scale indicating as the user steps off).
    pub fn skew_for(
        &self,
        device_time: Option<civil::DateTime>,
        received: civil::DateTime,
    ) -> Option<SignedDuration> {
        let Some(set_at) = self.set_at else {
            return self.measured;
        };
        let corrected = device_time.is_some_and(|t| {
            t.duration_since(set_at) >= -SET_TOLERANCE
                && t.duration_since(received) <= SET_TOLERANCE
        });
        if corrected {
            Some(SignedDuration::ZERO)
        } else {
            self.measured
        }
    }
}

/// Measures the device clock and sets it when needed; a clock that cannot be read or set
/// is logged and leaves the skew unknown, never failing the session.
pub async fn session_clock(
    device: &Device,
    quirks: Quirks,
    zone: &TimeZone,
    threshold: Duration,
) -> SessionClock {
    if !device.has(quirks.clock_characteristic()) {
        return SessionClock::default();
    }
    match sync_clock(device, quirks, zone, threshold).await {
        Ok(sync) => SessionClock {
            measured: sync.skew,
            set_at: sync.written.then(|| hub_now(zone)),
        },
        Err(e) => {
            tracing::warn!(address = %device.identity().address, "device clock not synchronised: {e}");
            SessionClock::default()
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    fn dt(y: u16, mo: u8, d: u8, h: u8, mi: u8, s: u8) -> DateTime {
        DateTime::new(y, mo, d, h, mi, s).unwrap()
    }

    #[test]
    fn skew_is_device_minus_hub() {
        let hub = civil::date(2026, 6, 1).at(12, 0, 0, 0);
        assert_eq!(
            skew(&dt(2026, 6, 1, 13, 0, 5), hub),
            Some(SignedDuration::from_secs(3605))
        );
        assert_eq!(
            skew(&dt(2026, 6, 1, 11, 59, 0), hub),
            Some(SignedDuration::from_secs(-60))
        );
    }

    #[test]
    fn an_unknown_date_is_an_unset_clock() {
        let hub = civil::date(2026, 6, 1).at(12, 0, 0, 0);
        let unset = DateTime {
            year: None,
            ..dt(2026, 6, 1, 12, 0, 0)
        };
        assert_eq!(skew(&unset, hub), None);
        assert!(needs_sync(None, DEFAULT_THRESHOLD));
    }

    #[test]
    fn the_threshold_applies_both_ways() {
        let t = DEFAULT_THRESHOLD;
        assert!(!needs_sync(Some(SignedDuration::from_secs(2)), t));
        assert!(!needs_sync(Some(SignedDuration::from_secs(-2)), t));
        assert!(needs_sync(Some(SignedDuration::from_secs(3)), t));
        assert!(needs_sync(Some(SignedDuration::from_secs(-3)), t));
        assert!(!needs_sync(Some(SignedDuration::ZERO), t));
    }

    #[test]
    fn dst_changes_are_not_skew() {
        // Paris springs forward at 02:00 on 2026-03-29: wall clocks on both sides agree.
        let hub = civil::date(2026, 3, 29).at(3, 0, 1, 0);
        assert_eq!(
            skew(&dt(2026, 3, 29, 3, 0, 1), hub),
            Some(SignedDuration::ZERO)
        );
        // Across the night: one wall-clock hour, whatever the UTC offsets.
        let before = civil::date(2026, 10, 25).at(1, 30, 0, 0);
        assert_eq!(
            skew(&dt(2026, 10, 25, 2, 30, 0), before),
            Some(SignedDuration::from_secs(3600))
        );
    }

    #[test]
    fn only_att_0x80_is_data_field_ignored() {
        let att = |code: &str| {
            BleError::Stack(btleplug::Error::Other(
                format!("Operation failed with ATT error: {code}").into(),
            ))
        };
        assert!(is_data_field_ignored(&att("0x80")));
        assert!(!is_data_field_ignored(&att("0x81")));
        assert!(!is_data_field_ignored(&BleError::NoAdapter));
    }

    #[test]
    fn the_time_is_encoded_for_either_characteristic() {
        let hub = civil::date(2026, 11, 27).at(1, 2, 3, 0);
        let ct = encode_time(hub, uuid::CURRENT_TIME).unwrap();
        assert_eq!(ct.len(), CurrentTime::LEN);
        assert_eq!(
            decode_time(&ct, uuid::CURRENT_TIME).unwrap(),
            dt(2026, 11, 27, 1, 2, 3)
        );
        let date_time = encode_time(hub, uuid::DATE_TIME).unwrap();
        assert_eq!(date_time, vec![0xEA, 0x07, 11, 27, 1, 2, 3]);
        assert_eq!(
            Quirks {
                roche_date_time_clock: true,
                ..Quirks::NONE
            }
            .clock_characteristic(),
            uuid::DATE_TIME
        );
    }

    #[test]
    fn measurements_after_the_clock_write_carry_no_skew() {
        let set_at = civil::date(2026, 6, 1).at(12, 0, 0, 0);
        let received = civil::date(2026, 6, 1).at(12, 0, 3, 0);
        let hour = SignedDuration::from_hours(1);
        let clock = SessionClock {
            measured: Some(hour),
            set_at: Some(set_at),
        };
        // Taken with the corrected clock, one second after the write.
        let after = civil::date(2026, 6, 1).at(12, 0, 1, 0);
        assert_eq!(
            clock.skew_for(Some(after), received),
            Some(SignedDuration::ZERO)
        );
        // Stored an hour ago by a clock an hour ahead: dated 12:00 minus a few seconds + 1 h.
        let stored = civil::date(2026, 6, 1).at(12, 59, 50, 0);
        assert_eq!(clock.skew_for(Some(stored), received), Some(hour));
        // Behind: a stored measurement is dated before the write.
        let behind = SessionClock {
            measured: Some(-hour),
            ..clock
        };
        let stored = civil::date(2026, 6, 1).at(10, 59, 0, 0);
        assert_eq!(behind.skew_for(Some(stored), received), Some(-hour));
        assert_eq!(behind.skew_for(None, received), Some(-hour));
        // No write: the measured skew everywhere.
        let unset = SessionClock {
            measured: Some(hour),
            set_at: None,
        };
        assert_eq!(unset.skew_for(Some(after), received), Some(hour));
    }
}
