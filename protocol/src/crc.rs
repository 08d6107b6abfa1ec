//! CRC-16/MCRF4XX (polynomial 0x1021 reflected, seed 0xFFFF, no final XOR): the E2E-CRC of the
//! CGM and other SIG medical profiles.

/// CRC-16/MCRF4XX of `bytes`.
pub fn crc16_mcrf4xx(bytes: &[u8]) -> u16 {
    let mut crc: u16 = 0xFFFF;
    for &b in bytes {
        crc ^= u16::from(b);
        for _ in 0..8 {
            crc = if crc & 1 != 0 {
                (crc >> 1) ^ 0x8408
            } else {
                crc >> 1
            };
        }
    }
    crc
}

#[cfg(test)]
mod tests {
    #[test]
    fn matches_the_catalogue_check_value() {
        // Check value of CRC-16/MCRF4XX over "123456789".
        assert_eq!(super::crc16_mcrf4xx(b"123456789"), 0x6F91);
    }
}
