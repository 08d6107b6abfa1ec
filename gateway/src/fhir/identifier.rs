//! Identifiers: OIDs, EUI-64 and EUI-48 device addresses, the Device `ifNoneExist` condition MES
//! checks with a regular expression, and the PHD-style deduplication key.

use std::fmt;
use std::str::FromStr;

/// The pattern MES applies to `Bundle.entry.request.ifNoneExist` of the Device (reference §2.1).
/// relais checks it with [`matches_if_none_exist`] (no regex engine at run time); the tests check
/// that function against this very pattern.
pub const MES_IF_NONE_EXIST_PATTERN: &str =
    r"identifier=urn:oid:([0-9]+[\.[0-9]+]+)\|([a-zA-Z0-9]+[-[a-zA-Z0-9]+]+)";

/// Whether `condition` matches [`MES_IF_NONE_EXIST_PATTERN`] as a whole (as Java's `matches`
/// would): an OID made of digits, dots and `+`, starting with a digit, at least two characters;
/// then a value of letters, digits, `-` and `+`, starting with a letter or digit, at least two
/// characters.
pub fn matches_if_none_exist(condition: &str) -> bool {
    let Some(rest) = condition.strip_prefix("identifier=urn:oid:") else {
        return false;
    };
    let Some((oid, value)) = rest.split_once('|') else {
        return false;
    };
    let run = |s: &str, first: fn(char) -> bool, rest: fn(char) -> bool| {
        let mut chars = s.chars();
        chars.next().is_some_and(first) && s.len() >= 2 && chars.all(rest)
    };
    run(
        oid,
        |c| c.is_ascii_digit(),
        |c| c.is_ascii_digit() || c == '.' || c == '+',
    ) && run(
        value,
        |c| c.is_ascii_alphanumeric(),
        |c| c.is_ascii_alphanumeric() || c == '-' || c == '+',
    )
}

/// An ISO object identifier such as `1.2.250.1.213.1.4.8`: at least two arcs of decimal digits,
/// without leading zeros.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Oid(String);

/// Text that is not an OID.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{0}` is not an OID (decimal arcs separated by dots, e.g. 1.2.250.1.213)")]
pub struct InvalidOid(pub String);

impl Oid {
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// `urn:oid:<oid>`, the form FHIR systems and `meta.source` use.
    pub fn urn(&self) -> String {
        format!("urn:oid:{}", self.0)
    }
}

impl FromStr for Oid {
    type Err = InvalidOid;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let s = s.trim();
        let s = s.strip_prefix("urn:oid:").unwrap_or(s);
        let arc_ok = |arc: &str| {
            !arc.is_empty()
                && arc.bytes().all(|b| b.is_ascii_digit())
                && (arc == "0" || !arc.starts_with('0'))
        };
        if s.split('.').count() >= 2 && s.split('.').all(arc_ok) {
            Ok(Self(s.to_owned()))
        } else {
            Err(InvalidOid(s.to_owned()))
        }
    }
}

impl fmt::Display for Oid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Text that is not a hardware address of the expected length.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{text}` is not an {bytes}-byte address (hex bytes, optionally separated by - or :)")]
pub struct InvalidAddress {
    pub text: String,
    pub bytes: usize,
}

fn parse_bytes<const N: usize>(text: &str) -> Result<[u8; N], InvalidAddress> {
    let err = || InvalidAddress {
        text: text.to_owned(),
        bytes: N,
    };
    let digits: Vec<u8> = text
        .trim()
        .chars()
        .filter(|c| !matches!(c, '-' | ':' | ' '))
        .map(|c| c.to_digit(16).and_then(|d| u8::try_from(d).ok()))
        .collect::<Option<_>>()
        .ok_or_else(err)?;
    if digits.len() != 2 * N {
        return Err(err());
    }
    let mut out = [0u8; N];
    for (byte, pair) in out.iter_mut().zip(digits.chunks_exact(2)) {
        if let [high, low] = *pair {
            *byte = high << 4 | low;
        }
    }
    Ok(out)
}

fn write_dashed(f: &mut fmt::Formatter<'_>, bytes: &[u8]) -> fmt::Result {
    for (i, byte) in bytes.iter().enumerate() {
        if i > 0 {
            f.write_str("-")?;
        }
        write!(f, "{byte:02X}")?;
    }
    Ok(())
}

/// An IEEE EUI-64 in its usual byte order (OUI first), e.g. a Bluetooth System ID
/// (`relais_protocol::device_information::SystemId::eui64`). Printed `FE-ED-AB-AA-DE-AD-77-C5`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Eui64(pub [u8; 8]);

impl Eui64 {
    /// The 16 hex digits without dashes (the `device` part of a PHD identifier).
    pub fn compact(&self) -> String {
        self.0.iter().map(|b| format!("{b:02X}")).collect()
    }
}

impl FromStr for Eui64 {
    type Err = InvalidAddress;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        parse_bytes(s).map(Self)
    }
}

impl fmt::Display for Eui64 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write_dashed(f, &self.0)
    }
}

/// A Bluetooth device address (IEEE EUI-48), most significant byte first as people write it.
/// Printed `AA-BB-CC-DD-EE-FF`, the form of the PHD `BTMAC` identifier.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Eui48(pub [u8; 6]);

impl Eui48 {
    /// The EUI-64 that encapsulates this EUI-48 (IEEE rule: `FF-FE` inserted after the three
    /// OUI bytes), so a device known only by its address still gets an identifier under the
    /// IEEE EUI-64 OID, the only system the MES `ifNoneExist` examples use.
    pub fn to_eui64(&self) -> Eui64 {
        let [a, b, c, d, e, f] = self.0;
        Eui64([a, b, c, 0xFF, 0xFE, d, e, f])
    }
}

impl FromStr for Eui48 {
    type Err = InvalidAddress;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        parse_bytes(s).map(Self)
    }
}

impl fmt::Display for Eui48 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write_dashed(f, &self.0)
    }
}

/// `text` reduced to what an `ifNoneExist` value allows: ASCII letters and digits, other runs
/// turned into one `-`, no dash at either end. `None` when fewer than two characters remain.
pub fn identifier_value(text: &str) -> Option<String> {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if c.is_ascii_alphanumeric() {
            out.push(c);
        } else if !out.is_empty() && !out.ends_with('-') {
            out.push('-');
        }
    }
    while out.ends_with('-') {
        out.pop();
    }
    (out.len() >= 2).then_some(out)
}

/// The parts of a PHD STU1-style observation identifier
/// (`device-patient-type-value-units-reportedTimestamp[-supplemental]`, reference §3.3).
///
/// relais keeps it as a local deduplication key and does not send it: STU1 uses it only for
/// an Observation conditional create, which MES does not document, and an `Observation.identifier`
/// MES has never been tested with could turn a good reading into a 422. It contains the idPe and
/// the value: it belongs in the local ledger, not in logs.
#[derive(Debug, Clone, Copy)]
pub struct DedupKey<'a> {
    /// The device identifier value, without dashes (EUI-64 hex, or the hub-assigned value).
    pub device: &'a str,
    /// `<idPe>-urn:oid:<assigning authority>`: STU1's `Patient.identifier.value-system`.
    pub patient: &'a str,
    /// The Observation code sent (LOINC or NOS), where STU1 has the MDC type.
    pub code: &'a str,
    /// The value(s) exactly as reported; a blood pressure is `systolic-diastolic`.
    pub value: &'a str,
    /// The UCUM unit sent.
    pub unit: &'a str,
    /// The device's own, uncorrected time stamp (`YYYYMMDDTHHMMSS.00`), or the hub's instant in
    /// UTC with a `Z` when the device gave none.
    pub reported: &'a str,
    /// Anything that tells apart two observations sharing all of the above (the number-of-days
    /// code of a CGM aggregate).
    pub supplemental: Option<&'a str>,
}

impl fmt::Display for DedupKey<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}-{}-{}-{}-{}-{}",
            self.device, self.patient, self.code, self.value, self.unit, self.reported
        )?;
        if let Some(s) = self.supplemental {
            write!(f, "-{s}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;
    use regex::Regex;

    use super::*;

    fn mes_regex() -> Regex {
        Regex::new(&format!("^(?:{MES_IF_NONE_EXIST_PATTERN})$")).unwrap()
    }

    #[test]
    fn the_reference_example_matches_the_mes_pattern() {
        let example =
            "identifier=urn:oid:1.2.840.10004.1.1.1.0.0.1.0.0.1.2680|FE-ED-AB-AA-DE-AD-77-C5";
        assert!(mes_regex().is_match(example));
        assert!(matches_if_none_exist(example));
    }

    #[test]
    fn conditions_mes_refuses_are_refused() {
        for bad in [
            "identifier=http://hl7.org/fhir/sid/eui-48/bluetooth|AA-BB-CC-DD-EE-FF",
            "identifier=urn:oid:1.2.3|AA:BB:CC",
            "identifier=urn:oid:1.2.3|-AB",
            "identifier=urn:oid:1|AB",
            "identifier=urn:oid:1.2.3|A",
            "identifier=urn:oid:.1.2|AB",
            "identifier=urn:oid:1.2.3",
            "urn:oid:1.2.3|AB",
        ] {
            assert!(!mes_regex().is_match(bad), "{bad}");
            assert!(!matches_if_none_exist(bad), "{bad}");
        }
    }

    proptest! {
        #[test]
        fn the_hand_written_check_agrees_with_the_mes_regex(
            oid in "[0-9.+a|]{0,8}",
            value in "[-a-zA-Z0-9+:|_ ]{0,8}",
            prefix in prop::sample::select(vec!["identifier=urn:oid:", "identifier=urn:oid", ""]),
        ) {
            let condition = format!("{prefix}{oid}|{value}");
            prop_assert_eq!(
                matches_if_none_exist(&condition),
                mes_regex().is_match(&condition),
                "{}", condition
            );
        }
    }

    #[test]
    fn oids_are_validated() {
        assert_eq!(
            "1.2.250.1.213".parse::<Oid>().unwrap().as_str(),
            "1.2.250.1.213"
        );
        assert_eq!(
            "urn:oid:1.2.250".parse::<Oid>().unwrap().urn(),
            "urn:oid:1.2.250"
        );
        assert_eq!("0.9.2342".parse::<Oid>().unwrap().as_str(), "0.9.2342");
        for bad in ["", "1", "1..2", "1.2.", "1.02", "1.a", "1.2 .3"] {
            assert!(bad.parse::<Oid>().is_err(), "{bad}");
        }
    }

    #[test]
    fn addresses_parse_and_print_with_dashes() {
        let eui: Eui64 = "fe:ed:ab:aa:de:ad:77:c5".parse().unwrap();
        assert_eq!(eui.to_string(), "FE-ED-AB-AA-DE-AD-77-C5");
        assert_eq!(eui.compact(), "FEEDABAADEAD77C5");
        assert_eq!("FEEDABAADEAD77C5".parse::<Eui64>().unwrap(), eui);
        let mac: Eui48 = "AA:BB:CC:DD:EE:FF".parse().unwrap();
        assert_eq!(mac.to_string(), "AA-BB-CC-DD-EE-FF");
        assert!("AA:BB:CC:DD:EE".parse::<Eui48>().is_err());
        assert!("AA:BB:CC:DD:EE:FG".parse::<Eui48>().is_err());
        assert!("FE-ED-AB-AA-DE-AD-77".parse::<Eui64>().is_err());
    }

    #[test]
    fn a_bluetooth_address_becomes_an_eui64_by_inserting_ff_fe() {
        let mac: Eui48 = "AA-BB-CC-DD-EE-FF".parse().unwrap();
        assert_eq!(mac.to_eui64().to_string(), "AA-BB-CC-FF-FE-DD-EE-FF");
    }

    #[test]
    fn free_text_is_reduced_to_an_identifier_value() {
        assert_eq!(
            identifier_value("A&D Medical UA-651BLE #5012").as_deref(),
            Some("A-D-Medical-UA-651BLE-5012")
        );
        assert_eq!(identifier_value("--SN 42--").as_deref(), Some("SN-42"));
        assert_eq!(identifier_value("é"), None);
        assert_eq!(identifier_value("7"), None);
    }

    #[test]
    fn the_dedup_key_joins_its_parts_with_dashes() {
        let key = DedupKey {
            device: "FEEDABAADEAD77C5",
            patient: "pe-1-urn:oid:1.2.3",
            code: "29463-7",
            value: "72.35",
            unit: "kg",
            reported: "20240305T083015.00",
            supplemental: None,
        };
        assert_eq!(
            key.to_string(),
            "FEEDABAADEAD77C5-pe-1-urn:oid:1.2.3-29463-7-72.35-kg-20240305T083015.00"
        );
        let with = DedupKey {
            supplemental: Some("GEN-275"),
            ..key
        };
        assert!(with.to_string().ends_with("-GEN-275"));
    }
}
