//! The calibration in flash, safe against a power cut at any instant.
//!
//! Two slots, each in its own erase sector. A save erases and writes the slot that does *not*
//! hold the newest record, with the next sequence number; a load reads both and takes the valid
//! one with the higher sequence. A cut during the erase or the write leaves a slot whose CRC
//! fails, and the other slot still holds the previous calibration.
//!
//! Slot layout: `len: u8`, `len` bytes of postcard (`StoredCalibration`), CRC-32C (little
//! endian) of the length byte and the payload, padding of 0xFF up to the write size. Erased flash
//! (`len` = 0xFF) is an empty slot.

use crc::{CRC_32_ISCSI, Crc, NoTable};
use embedded_storage::nor_flash::NorFlash;
use serde::{Deserialize, Serialize};

use super::calibration::Calibration;

/// Bytes read from and written to a slot: room for the record and any common write size.
const SLOT_BYTES: usize = 64;
/// The longest payload: the length byte and the CRC take the rest of a slot's first bytes.
const MAX_PAYLOAD: usize = 32;
/// Format version, so a later firmware can tell an old record from a new one.
const VERSION: u8 = 1;
/// CRC-32C without a lookup table: a record is a few bytes, flash space is scarce.
const CRC32C: Crc<u32, NoTable> = Crc::<u32, NoTable>::new(&CRC_32_ISCSI);

/// What one slot holds.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
struct StoredCalibration {
    version: u8,
    /// Higher is newer.
    sequence: u32,
    calibration: Calibration,
}

/// Why the calibration could not be read or written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StoreError<E> {
    /// The flash driver failed.
    Flash(E),
    /// The two sectors from `base` are not sector-aligned or not inside the flash.
    Misplaced { base: u32 },
    /// The flash's read or write size does not divide the store's 64-byte slot header.
    UnsupportedGeometry,
    /// The record did not serialize (a bug: the record is fixed-size).
    Encode,
    /// What was read back after a save is not what was written.
    VerifyFailed,
}

/// Two erase sectors of flash that keep the newest calibration.
#[derive(Debug)]
pub struct CalibrationStore<F> {
    flash: F,
    base: u32,
}

impl<F: NorFlash> CalibrationStore<F> {
    /// Uses the two erase sectors starting at `base`, which nothing else may use.
    pub fn new(flash: F, base: u32) -> Result<Self, StoreError<F::Error>> {
        let sector = F::ERASE_SIZE as u64;
        let end = u64::from(base) + 2 * sector;
        if sector == 0 || u64::from(base) % sector != 0 || end > flash.capacity() as u64 {
            return Err(StoreError::Misplaced { base });
        }
        let fits = |size: usize| size != 0 && SLOT_BYTES.is_multiple_of(size);
        if !fits(F::READ_SIZE) || !fits(F::WRITE_SIZE) || F::ERASE_SIZE < SLOT_BYTES {
            return Err(StoreError::UnsupportedGeometry);
        }
        Ok(Self { flash, base })
    }

    /// The newest valid calibration, or `None` on a unit never calibrated (or whose both slots
    /// are damaged).
    pub fn load(&mut self) -> Result<Option<Calibration>, StoreError<F::Error>> {
        Ok(self.newest()?.map(|(_, record)| record.calibration))
    }

    /// Saves `calibration` over the older slot; the previous one stays valid until this one is
    /// complete.
    pub fn save(&mut self, calibration: &Calibration) -> Result<(), StoreError<F::Error>> {
        let (target, sequence) = match self.newest()? {
            Some((slot, record)) => (1 - slot, record.sequence.wrapping_add(1)),
            None => (0, 0),
        };
        let record = StoredCalibration {
            version: VERSION,
            sequence,
            calibration: *calibration,
        };
        let mut frame = [0xFF; SLOT_BYTES];
        let len = encode_frame(&record, &mut frame)?;
        let written = round_up(len, F::WRITE_SIZE);
        let bytes = frame.get(..written).ok_or(StoreError::Encode)?;
        let start = self.slot_address(target);
        self.flash
            .erase(start, start + F::ERASE_SIZE as u32)
            .map_err(StoreError::Flash)?;
        self.flash.write(start, bytes).map_err(StoreError::Flash)?;
        match self.read_slot(target)? {
            Some(read_back) if read_back == record => Ok(()),
            _ => Err(StoreError::VerifyFailed),
        }
    }

    /// Gives the flash back.
    pub fn release(self) -> F {
        self.flash
    }

    fn slot_address(&self, slot: usize) -> u32 {
        self.base + (slot as u32) * F::ERASE_SIZE as u32
    }

    /// The slot (0 or 1) holding the newest valid record, and the record.
    fn newest(&mut self) -> Result<Option<(usize, StoredCalibration)>, StoreError<F::Error>> {
        let first = self.read_slot(0)?;
        let second = self.read_slot(1)?;
        Ok(match (first, second) {
            (Some(a), Some(b)) if is_newer(b.sequence, a.sequence) => Some((1, b)),
            (Some(a), _) => Some((0, a)),
            (None, Some(b)) => Some((1, b)),
            (None, None) => None,
        })
    }

    fn read_slot(
        &mut self,
        slot: usize,
    ) -> Result<Option<StoredCalibration>, StoreError<F::Error>> {
        let mut frame = [0u8; SLOT_BYTES];
        self.flash
            .read(self.slot_address(slot), &mut frame)
            .map_err(StoreError::Flash)?;
        Ok(decode_frame(&frame))
    }
}

/// Sequence comparison that survives the (theoretical) wrap of a u32.
fn is_newer(a: u32, b: u32) -> bool {
    a != b && a.wrapping_sub(b) < u32::MAX / 2
}

fn round_up(len: usize, multiple: usize) -> usize {
    len.div_ceil(multiple.max(1)) * multiple.max(1)
}

/// Writes length, payload and CRC into `frame`; returns the bytes used.
fn encode_frame<E>(
    record: &StoredCalibration,
    frame: &mut [u8; SLOT_BYTES],
) -> Result<usize, StoreError<E>> {
    let (len_byte, rest) = frame.split_first_mut().ok_or(StoreError::Encode)?;
    let payload_room = rest.get_mut(..MAX_PAYLOAD).ok_or(StoreError::Encode)?;
    let len = postcard::to_slice(record, payload_room)
        .map_err(|_| StoreError::Encode)?
        .len();
    *len_byte = u8::try_from(len).map_err(|_| StoreError::Encode)?;
    let covered = frame.get(..1 + len).ok_or(StoreError::Encode)?;
    let crc = CRC32C.checksum(covered).to_le_bytes();
    frame
        .get_mut(1 + len..1 + len + 4)
        .ok_or(StoreError::Encode)?
        .copy_from_slice(&crc);
    Ok(1 + len + 4)
}

/// The record in `frame`, if its length, CRC and version are right.
fn decode_frame(frame: &[u8; SLOT_BYTES]) -> Option<StoredCalibration> {
    let len = usize::from(*frame.first()?);
    if len > MAX_PAYLOAD {
        return None;
    }
    let covered = frame.get(..1 + len)?;
    let stored_crc = frame.get(1 + len..1 + len + 4)?;
    if CRC32C.checksum(covered).to_le_bytes() != stored_crc {
        return None;
    }
    let record: StoredCalibration = postcard::from_bytes(covered.get(1..)?).ok()?;
    (record.version == VERSION).then_some(record)
}

#[cfg(test)]
mod tests {
    use super::*;
    use relais_board_sim::RamFlash;
    use relais_board_sim::flash::{InterruptedErase, PAGE_SIZE};

    type Flash = RamFlash<3>;

    fn calibration(counts_per_kg: f32) -> Calibration {
        Calibration {
            zero_counts: 12_345,
            counts_per_kg,
        }
    }

    fn load(flash: &mut Flash) -> Option<Calibration> {
        CalibrationStore::new(flash, PAGE_SIZE as u32)
            .unwrap()
            .load()
            .unwrap()
    }

    fn save(
        flash: &mut Flash,
        calibration: &Calibration,
    ) -> Result<(), StoreError<relais_board_sim::flash::FlashError>> {
        CalibrationStore::new(flash, PAGE_SIZE as u32)
            .unwrap()
            .save(calibration)
    }

    #[test]
    fn a_blank_flash_holds_no_calibration_and_the_newest_save_wins() {
        let mut flash = Flash::new();
        assert_eq!(load(&mut flash), None);
        for n in 1..=5 {
            save(&mut flash, &calibration(10_000.0 + n as f32)).unwrap();
            assert_eq!(load(&mut flash), Some(calibration(10_000.0 + n as f32)));
        }
        // Saves alternate between the two sectors and never touch the page before them.
        assert_eq!(flash.erase_counts(), &[0, 3, 2]);
        assert_eq!(flash.rewrites(), 0);
    }

    #[test]
    fn a_power_cut_at_any_byte_of_a_save_leaves_the_old_or_the_new_calibration() {
        let (old, new) = (calibration(10_500.0), calibration(-9_800.0));
        for order in [InterruptedErase::FromStart, InterruptedErase::FromEnd] {
            let mut before = Flash::new();
            before.set_interrupted_erase(order);
            save(&mut before, &calibration(1.0e4)).unwrap();
            save(&mut before, &old).unwrap();
            let mut measure = before.clone();
            save(&mut measure, &new).unwrap();
            let cost = (measure.bytes_changed() - before.bytes_changed()) as usize;
            for cut in 0..=cost {
                let mut flash = before.clone();
                flash.cut_power_after(cut);
                let outcome = save(&mut flash, &new);
                flash.restore_power();
                let loaded = load(&mut flash);
                if outcome.is_ok() {
                    assert_eq!(loaded, Some(new), "cut at {cut} of {cost}, {order:?}");
                } else {
                    assert!(
                        loaded == Some(old) || loaded == Some(new),
                        "cut at {cut}: {loaded:?}"
                    );
                }
                // The store works again after the reboot.
                save(&mut flash, &calibration(11_111.0)).unwrap();
                assert_eq!(load(&mut flash), Some(calibration(11_111.0)));
            }
        }
    }

    #[test]
    fn refuses_a_region_off_the_sector_grid_or_beyond_the_flash() {
        let mut flash = Flash::new();
        assert_eq!(
            CalibrationStore::new(&mut flash, 100).err(),
            Some(StoreError::Misplaced { base: 100 })
        );
        let last = 2 * PAGE_SIZE as u32;
        assert_eq!(
            CalibrationStore::new(&mut flash, last).err(),
            Some(StoreError::Misplaced { base: last })
        );
    }

    fn record(sequence: u32) -> StoredCalibration {
        StoredCalibration {
            version: VERSION,
            sequence,
            calibration: Calibration {
                zero_counts: -31_000,
                counts_per_kg: 10_512.5,
            },
        }
    }

    #[test]
    fn a_frame_round_trips_and_any_flipped_bit_is_caught() {
        let mut frame = [0xFF; SLOT_BYTES];
        let len = encode_frame::<()>(&record(7), &mut frame).unwrap();
        assert!(len <= 1 + MAX_PAYLOAD + 4);
        assert_eq!(decode_frame(&frame), Some(record(7)));
        for byte in 0..len {
            for bit in 0..8 {
                let mut damaged = frame;
                damaged[byte] ^= 1 << bit;
                assert_eq!(decode_frame(&damaged), None, "byte {byte} bit {bit}");
            }
        }
    }

    #[test]
    fn erased_flash_holds_no_record() {
        assert_eq!(decode_frame(&[0xFF; SLOT_BYTES]), None);
        assert_eq!(decode_frame(&[0x00; SLOT_BYTES]), None);
    }

    #[test]
    fn newer_sequence_wins_even_across_the_wrap() {
        assert!(is_newer(1, 0));
        assert!(!is_newer(0, 1));
        assert!(is_newer(0, u32::MAX));
        assert!(!is_newer(5, 5));
    }
}
