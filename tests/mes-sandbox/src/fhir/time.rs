//! FHIR date and dateTime handling: `effectiveDateTime` values and `date` search bounds.
//!
//! The regular expressions are compiled once at start (see [`Patterns`]) so that no request
//! path can fail on them.

use jiff::Timestamp;
use jiff::civil::Date;
use jiff::tz::TimeZone;
use regex::Regex;

/// The `ifNoneExist` pattern published by MES (spec v1.5.2 §2.2.2.1), kept verbatim and
/// anchored on both ends.
const IF_NONE_EXIST: &str =
    r"^identifier=urn:oid:([0-9]+[\.[0-9]+]+)\|([a-zA-Z0-9]+[-[a-zA-Z0-9]+]+)$";

/// A FHIR dateTime with a time, seconds and an offset (FHIR requires the offset when a time
/// is given).
const DATE_TIME: &str = r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,9})?(Z|[+-]\d{2}:\d{2})$";

/// A FHIR date of day precision.
const DATE: &str = r"^\d{4}-\d{2}-\d{2}$";

/// Compiled regular expressions.
#[derive(Debug, Clone)]
pub(crate) struct Patterns {
    pub(crate) if_none_exist: Regex,
    date_time: Regex,
    date: Regex,
}

impl Patterns {
    /// Compiles the patterns.
    pub(crate) fn new() -> Result<Self, regex::Error> {
        Ok(Self {
            if_none_exist: Regex::new(IF_NONE_EXIST)?,
            date_time: Regex::new(DATE_TIME)?,
            date: Regex::new(DATE)?,
        })
    }

    /// The `(oid, identifier)` of a valid `ifNoneExist`.
    pub(crate) fn parse_if_none_exist<'a>(&self, s: &'a str) -> Option<(&'a str, &'a str)> {
        let caps = self.if_none_exist.captures(s)?;
        Some((caps.get(1)?.as_str(), caps.get(2)?.as_str()))
    }

    /// Milliseconds since the epoch of a dateTime with time and offset.
    pub(crate) fn parse_date_time(&self, s: &str) -> Option<i64> {
        if !self.date_time.is_match(s) {
            return None;
        }
        s.parse::<Timestamp>().ok().map(Timestamp::as_millisecond)
    }

    /// The `[start, end)` instants (ms) a search value covers: a whole UTC day for a date, one
    /// second (or the exact instant when fractional seconds are given) for a dateTime.
    pub(crate) fn search_range(&self, s: &str) -> Option<(i64, i64)> {
        if self.date.is_match(s) {
            let date: Date = s.parse().ok()?;
            let start = date.to_zoned_datetime(TimeZone::UTC).ok()?.timestamp();
            let end = date
                .tomorrow()
                .ok()?
                .to_zoned_datetime(TimeZone::UTC)
                .ok()?
                .timestamp();
            return Some((start.as_millisecond(), end.as_millisecond()));
        }
        let start = self.parse_date_time(s)?;
        let width = if s.contains('.') { 1 } else { 1000 };
        Some((start, start.checked_add(width)?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn if_none_exist_accepts_the_published_example() {
        let p = Patterns::new().unwrap();
        let got = p.parse_if_none_exist(
            "identifier=urn:oid:1.2.840.10004.1.1.1.0.0.1.0.0.1.2680|FE-ED-AB-AA-DE-AD-77-C5",
        );
        assert_eq!(
            got,
            Some((
                "1.2.840.10004.1.1.1.0.0.1.0.0.1.2680",
                "FE-ED-AB-AA-DE-AD-77-C5"
            ))
        );
    }

    #[test]
    fn if_none_exist_refuses_other_shapes() {
        let p = Patterns::new().unwrap();
        for bad in [
            "identifier=1.2.3|ABC",
            "identifier=urn:oid:1.2.3|",
            "identifier=urn:oid:1.2.3|AB_C",
            "identifier=urn:oid:abc|ABC",
            "urn:oid:1.2.3|ABC",
            "identifier=urn:oid:1.2.3|ABC&x=1",
        ] {
            assert_eq!(p.parse_if_none_exist(bad), None, "{bad}");
        }
    }

    #[test]
    fn effective_date_time_needs_time_seconds_and_offset() {
        let p = Patterns::new().unwrap();
        assert!(p.parse_date_time("2022-08-22T01:56:16+01:00").is_some());
        assert!(p.parse_date_time("2022-08-22T00:56:16Z").is_some());
        assert!(p.parse_date_time("2022-08-22T00:56:16.250Z").is_some());
        assert_eq!(
            p.parse_date_time("2022-08-22T01:56:16+01:00"),
            p.parse_date_time("2022-08-22T00:56:16Z")
        );
        for bad in [
            "2022-08-22",
            "2022-08-22T01:56:16",
            "2022-08-22T01:56+01:00",
            "2022-13-22T01:56:16Z",
            "2022-08-22 01:56:16Z",
        ] {
            assert_eq!(p.parse_date_time(bad), None, "{bad}");
        }
    }

    #[test]
    fn date_search_value_covers_the_utc_day() {
        let p = Patterns::new().unwrap();
        let (start, end) = p.search_range("2022-09-04").unwrap();
        assert_eq!(end - start, 86_400_000);
        assert_eq!(Some(start), p.parse_date_time("2022-09-04T00:00:00Z"));
    }
}
