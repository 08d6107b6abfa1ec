//! The bytes the record log puts in flash: page headers, records, the commit and deletion
//! marks, and where each one sits for a given flash geometry. Nothing here touches the flash.
//!
//! ```text
//! page:    [magic "RLG1"][epoch u32][first_seq u32][crc u32] pad [commit] [record] [record] ...
//! record:  [seq u32][len u16][!len u16][payload: len bytes][crc u32] pad [commit] [deletion]
//! ```
//! All integers little-endian. `pad` is 0xFF up to a write unit; `[commit]` and `[deletion]` are
//! one write unit each (`unit` = the flash's write size, at least 4 bytes). A CRC covers the bytes
//! before it (for a record: header and payload). A page or record exists only once its commit
//! unit reads back exactly as [`COMMIT`]; a record is deleted once its deletion unit has any bit
//! cleared.

use crc::{CRC_32_ISCSI, Crc, NoTable};

/// Longest payload (postcard bytes) a record carries.
///
/// Big enough for any measurement of the three personalities with its context (a glucose
/// measurement and context take 37 bytes), small enough that `append` stays a short stack
/// frame on a Cortex-M0.
pub const MAX_PAYLOAD_LEN: usize = 128;

/// Largest write unit supported: STM32H7 programs 32 bytes at a time.
pub(super) const MAX_UNIT: usize = 32;
/// Smallest write unit used, even on byte-writable flash, so marks are whole words.
pub(super) const MIN_UNIT: usize = 4;
/// Page header bytes before padding and the commit unit.
pub(super) const PAGE_HEADER_LEN: usize = 16;
/// Record header bytes: sequence number, length and its complement.
pub(super) const RECORD_HEADER_LEN: usize = 8;
/// Bytes of a CRC.
pub(super) const CRC_LEN: usize = 4;
/// Erased flash.
pub(super) const ERASED: u8 = 0xFF;
/// Format version 1 of the log. A different magic is not our page.
const PAGE_MAGIC: [u8; 4] = *b"RLG1";
/// The commit mark, repeated to fill a write unit. Mixed bits, so neither erased flash (all
/// ones) nor a write torn part-way (a prefix, the rest still ones) can read as it.
pub(super) const COMMIT: [u8; 4] = [0xC0, 0x33, 0x17, 0xED];

/// CRC-32C (Castagnoli). 32 bits rather than 16: mount reads every record of the log after every
/// reboot for years, so a 1-in-65 536 chance of accepting a damaged record is too high; and
/// CRC-32C keeps Hamming distance 6 over the record lengths used here (better than the IEEE
/// polynomial). Bitwise, no lookup table: 1 KiB of flash saved, records are short.
pub(super) const CRC: Crc<u32, NoTable> = Crc::<u32, NoTable>::new(&CRC_32_ISCSI);

/// `n` rounded up to a multiple of `unit` (a power of two).
pub(super) const fn align_up(n: u32, unit: u32) -> u32 {
    (n + unit - 1) & !(unit - 1)
}

/// What a page header says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct PageHeader {
    /// How many pages were opened before this one: orders the pages of the ring.
    pub epoch: u32,
    /// The sequence number the first record of this page gets: the log's counter when the page
    /// was opened, so the counter survives even when every record is gone.
    pub first_seq: u32,
}

impl PageHeader {
    pub(super) fn encode(&self) -> [u8; PAGE_HEADER_LEN] {
        let mut out = [0u8; PAGE_HEADER_LEN];
        let (fields, crc) = out.split_at_mut(PAGE_HEADER_LEN - CRC_LEN);
        for (dst, src) in fields.iter_mut().zip(
            PAGE_MAGIC
                .iter()
                .chain(&self.epoch.to_le_bytes())
                .chain(&self.first_seq.to_le_bytes()),
        ) {
            *dst = *src;
        }
        crc.copy_from_slice(&CRC.checksum(fields).to_le_bytes());
        out
    }

    /// The header, if the magic and CRC are right.
    pub(super) fn decode(bytes: &[u8; PAGE_HEADER_LEN]) -> Option<Self> {
        let [
            m0,
            m1,
            m2,
            m3,
            e0,
            e1,
            e2,
            e3,
            s0,
            s1,
            s2,
            s3,
            c0,
            c1,
            c2,
            c3,
        ] = *bytes;
        let (fields, _) = bytes.split_at(PAGE_HEADER_LEN - CRC_LEN);
        let valid = [m0, m1, m2, m3] == PAGE_MAGIC
            && CRC.checksum(fields) == u32::from_le_bytes([c0, c1, c2, c3]);
        valid.then_some(Self {
            epoch: u32::from_le_bytes([e0, e1, e2, e3]),
            first_seq: u32::from_le_bytes([s0, s1, s2, s3]),
        })
    }
}

/// What a record header says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct RecordHeader {
    pub seq: u32,
    pub len: u16,
}

impl RecordHeader {
    pub(super) fn encode(&self) -> [u8; RECORD_HEADER_LEN] {
        let [s0, s1, s2, s3] = self.seq.to_le_bytes();
        let [l0, l1] = self.len.to_le_bytes();
        let [n0, n1] = (!self.len).to_le_bytes();
        [s0, s1, s2, s3, l0, l1, n0, n1]
    }

    /// The header, if the length and its complement agree (a torn or erased header does not).
    pub(super) fn decode(bytes: &[u8; RECORD_HEADER_LEN]) -> Option<Self> {
        let [s0, s1, s2, s3, l0, l1, n0, n1] = *bytes;
        let len = u16::from_le_bytes([l0, l1]);
        (!len == u16::from_le_bytes([n0, n1])).then_some(Self {
            seq: u32::from_le_bytes([s0, s1, s2, s3]),
            len,
        })
    }
}

/// Where things sit in the log's flash region; all offsets in bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Geometry {
    /// Flash offset of the region's first page.
    pub base: u32,
    /// Pages in the region (at least 2).
    pub pages: u32,
    /// Erase size of the flash.
    pub page_size: u32,
    /// Write unit: the flash's write size, at least [`MIN_UNIT`], at most [`MAX_UNIT`].
    pub unit: u32,
}

impl Geometry {
    pub(super) fn page_start(&self, slot: u32) -> u32 {
        self.base + slot * self.page_size
    }

    /// Offset of the first record in a page: header, padding, commit unit.
    pub(super) fn header_len(&self) -> u32 {
        align_up(PAGE_HEADER_LEN as u32, self.unit) + self.unit
    }

    /// Offset of the page header's commit unit within the page.
    pub(super) fn header_commit_at(&self) -> u32 {
        align_up(PAGE_HEADER_LEN as u32, self.unit)
    }

    /// Header, payload and CRC, padded: where the commit unit of a record starts.
    pub(super) fn body_len(&self, payload_len: u16) -> u32 {
        align_up(
            (RECORD_HEADER_LEN + usize::from(payload_len) + CRC_LEN) as u32,
            self.unit,
        )
    }

    /// Flash a record takes: body, commit unit, deletion unit.
    pub(super) fn footprint(&self, payload_len: u16) -> u32 {
        self.body_len(payload_len) + 2 * self.unit
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const GEOMETRY: Geometry = Geometry {
        base: 0,
        pages: 4,
        page_size: 4096,
        unit: 4,
    };

    #[test]
    fn page_header_round_trips_and_rejects_any_single_bit_flip() {
        let header = PageHeader {
            epoch: 7,
            first_seq: 1234,
        };
        let bytes = header.encode();
        assert_eq!(&bytes[..4], b"RLG1");
        assert_eq!(PageHeader::decode(&bytes), Some(header));
        for bit in 0..PAGE_HEADER_LEN * 8 {
            let mut damaged = bytes;
            damaged[bit / 8] ^= 1 << (bit % 8);
            assert_eq!(PageHeader::decode(&damaged), None, "bit {bit}");
        }
    }

    /// A torn header either fails to decode or, when the bytes it lacks are 0xFF anyway, is
    /// exactly the header meant: its length can be trusted whenever it decodes.
    #[test]
    fn a_torn_record_header_never_decodes_to_another_length() {
        assert_eq!(RecordHeader::decode(&[ERASED; RECORD_HEADER_LEN]), None);
        for len in [0u16, 1, 40, 0x00FF, 0x0100, MAX_PAYLOAD_LEN as u16, 0xFFFF] {
            let header = RecordHeader { seq: 9, len };
            let bytes = header.encode();
            assert_eq!(RecordHeader::decode(&bytes), Some(header));
            for torn in 0..RECORD_HEADER_LEN {
                let mut prefix = [ERASED; RECORD_HEADER_LEN];
                prefix[..torn].copy_from_slice(&bytes[..torn]);
                let decoded = RecordHeader::decode(&prefix);
                assert!(
                    decoded.is_none() || decoded == Some(header),
                    "{len} torn after {torn}"
                );
            }
            let mut damaged = bytes;
            damaged[4] ^= 0x01;
            assert_eq!(RecordHeader::decode(&damaged), None, "a flipped length bit");
        }
    }

    #[test]
    fn records_are_whole_units_with_room_for_both_marks() {
        assert_eq!(GEOMETRY.header_len(), 20);
        assert_eq!(GEOMETRY.body_len(36), 48);
        assert_eq!(GEOMETRY.footprint(36), 56);
        let wide = Geometry {
            unit: 32,
            ..GEOMETRY
        };
        assert_eq!(wide.header_len(), 64);
        assert_eq!(wide.footprint(1), 96);
    }

    #[test]
    fn commit_mark_is_neither_erased_nor_any_torn_prefix() {
        assert_ne!(COMMIT, [ERASED; 4]);
        for torn in 0..COMMIT.len() {
            let mut prefix = [ERASED; 4];
            prefix[..torn].copy_from_slice(&COMMIT[..torn]);
            assert_ne!(prefix, COMMIT);
        }
    }

    #[test]
    fn crc_is_crc32c() {
        assert_eq!(CRC.checksum(b"123456789"), 0xE306_9283);
    }
}
