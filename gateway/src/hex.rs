//! Parsing of the hex strings and UUIDs people paste from sniffers and logs.

use std::fmt;

/// A hex string that could not be read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HexError {
    OddDigits(usize),
    NotHex { position: usize, found: char },
}

impl fmt::Display for HexError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::OddDigits(n) => write!(f, "hex value has an odd number of digits ({n})"),
            Self::NotHex { position, found } => {
                write!(
                    f,
                    "hex value has {found:?} at position {position}, not a hex digit"
                )
            }
        }
    }
}

impl std::error::Error for HexError {}

/// Bytes as space-separated upper-case hex pairs, as `relais decode` takes them back.
pub fn to_hex(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len().saturating_mul(3));
    for (i, b) in bytes.iter().enumerate() {
        if i > 0 {
            out.push(' ');
        }
        out.push_str(&format!("{b:02X}"));
    }
    out
}

/// Bytes from hex digits; spaces, colons, dashes and a leading `0x` are allowed between bytes.
pub fn parse_hex(text: &str) -> Result<Vec<u8>, HexError> {
    let text = text.trim();
    let text = text
        .strip_prefix("0x")
        .or_else(|| text.strip_prefix("0X"))
        .unwrap_or(text);
    let mut digits = Vec::with_capacity(text.len());
    for (position, c) in text.chars().enumerate() {
        match c {
            ' ' | ':' | '-' | '\t' | '\n' => {}
            c => match c.to_digit(16) {
                Some(d) => digits.push(d as u8),
                None => return Err(HexError::NotHex { position, found: c }),
            },
        }
    }
    if digits.len() % 2 != 0 {
        return Err(HexError::OddDigits(digits.len()));
    }
    Ok(digits
        .chunks_exact(2)
        .filter_map(|pair| match *pair {
            [high, low] => Some(high << 4 | low),
            _ => None,
        })
        .collect())
}

/// A 16-bit UUID from `2A35`, `0x2a35` or the full form on the Bluetooth Base UUID.
pub fn parse_uuid16(text: &str) -> Option<u16> {
    let t = text.trim();
    let t = t
        .strip_prefix("0x")
        .or_else(|| t.strip_prefix("0X"))
        .unwrap_or(t);
    if t.len() <= 4 {
        return u16::from_str_radix(t, 16).ok();
    }
    let compact: String = t.chars().filter(|c| *c != '-').collect();
    if compact.len() != 32 {
        return None;
    }
    let full = u128::from_str_radix(&compact, 16).ok()?;
    relais_protocol::uuid::from_u128(full)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_hex_with_or_without_separators() {
        assert_eq!(parse_hex("1e 78 00").unwrap(), vec![0x1e, 0x78, 0]);
        assert_eq!(parse_hex("0x1E7800").unwrap(), vec![0x1e, 0x78, 0]);
        assert_eq!(parse_hex("1e:78:00").unwrap(), vec![0x1e, 0x78, 0]);
        assert_eq!(parse_hex("").unwrap(), Vec::<u8>::new());
    }

    #[test]
    fn says_where_the_hex_is_wrong() {
        assert_eq!(parse_hex("1e7"), Err(HexError::OddDigits(3)));
        assert_eq!(
            parse_hex("1g"),
            Err(HexError::NotHex {
                position: 1,
                found: 'g'
            })
        );
    }

    #[test]
    fn reads_short_and_full_uuids() {
        assert_eq!(parse_uuid16("2A35"), Some(0x2A35));
        assert_eq!(parse_uuid16("0x2a35"), Some(0x2A35));
        assert_eq!(
            parse_uuid16("00002a35-0000-1000-8000-00805f9b34fb"),
            Some(0x2A35)
        );
        assert_eq!(parse_uuid16("00002a2f-0000-3512-2118-0009af100700"), None);
        assert_eq!(parse_uuid16("zz"), None);
    }

    #[test]
    fn to_hex_reads_back() {
        let bytes = [0x00, 0x1E, 0xFF];
        assert_eq!(to_hex(&bytes), "00 1E FF");
        assert_eq!(parse_hex(&to_hex(&bytes)).unwrap(), bytes);
        assert_eq!(to_hex(&[]), "");
    }
}
