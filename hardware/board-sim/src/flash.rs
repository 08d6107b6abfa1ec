//! NOR flash in RAM, with the failure a storage layer must survive: power lost in the middle of
//! a write or an erase.
//!
//! Geometry of the reference board's nRF52 NVMC: writes of whole 4-byte words, erases of whole
//! 4 KiB pages, reads of any byte. NOR semantics: an erase sets every byte of a page to 0xFF; a
//! write can only clear bits, so writing over data already written ANDs the new bytes into the
//! old ones (what the silicon does). That makes this flash a [`MultiwriteNorFlash`]; code that
//! must also run on flash that forbids a second write to a word (ECC flash: STM32L4, H7) can
//! check [`RamFlash::rewrites`] stays 0.
//!
//! Power cuts: [`RamFlash::cut_power_after`] gives the device a budget of bytes it may still
//! change. Each byte a write programs costs one, and each byte an erase resets costs one (an
//! erase costs [`PAGE_SIZE`]). The operation that exhausts the budget stops part-way and returns
//! [`FlashError::PowerLost`]; from then on every read, write and erase fails and changes nothing,
//! as the device is dead, until [`RamFlash::restore_power`] (the reboot). What a cut leaves:
//! - a write: the first `k` bytes are programmed, the rest of the write is untouched;
//! - an erase: `k` bytes of the page are 0xFF and the others keep their old content. Which bytes
//!   go first is [`InterruptedErase`]: from the start of the page (the default) or from its end.
//!   Real chips give no order at all; the two orders let a test show a storage layer depends on
//!   neither.
//!
//! No allocation: the contents are a fixed array, `PAGES` pages of [`PAGE_SIZE`] bytes. (A page
//! count, not a byte size, is the const parameter so that the per-page counters are arrays too.)

use embedded_storage::nor_flash::{
    ErrorType, MultiwriteNorFlash, NorFlash, NorFlashError, NorFlashErrorKind, ReadNorFlash,
    check_erase, check_read, check_write,
};

/// Bytes in an erase page (nRF52: 4 KiB).
pub const PAGE_SIZE: usize = 4096;
/// Bytes in a write word (nRF52 NVMC: one 32-bit word).
pub const WORD_SIZE: usize = 4;
/// Words in a page.
const WORDS_PER_PAGE: usize = PAGE_SIZE / WORD_SIZE;

/// Why a flash operation failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FlashError {
    /// Offset or length not a multiple of the write (or erase) size.
    NotAligned,
    /// Beyond the end of the flash, or an erase range that ends before it starts.
    OutOfBounds,
    /// The power was cut: the operation stopped part-way, or the device is off.
    PowerLost,
}

impl NorFlashError for FlashError {
    fn kind(&self) -> NorFlashErrorKind {
        match self {
            Self::NotAligned => NorFlashErrorKind::NotAligned,
            Self::OutOfBounds => NorFlashErrorKind::OutOfBounds,
            Self::PowerLost => NorFlashErrorKind::Other,
        }
    }
}

impl From<NorFlashErrorKind> for FlashError {
    fn from(kind: NorFlashErrorKind) -> Self {
        match kind {
            NorFlashErrorKind::NotAligned => Self::NotAligned,
            _ => Self::OutOfBounds,
        }
    }
}

/// Which bytes of a page an erase resets first, as seen when the power is cut during it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum InterruptedErase {
    /// The first bytes of the page are 0xFF, the rest unchanged (the header goes first).
    #[default]
    FromStart,
    /// The last bytes of the page are 0xFF, the rest unchanged (the header survives).
    FromEnd,
}

/// Whether the device has power, and how much it may still change before it loses it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Power {
    On,
    /// On, until this many more bytes have been programmed or erased.
    OnFor(usize),
    Off,
}

/// `PAGES` pages of NOR flash in RAM, with wear counters and power-cut injection.
#[derive(Debug, Clone)]
pub struct RamFlash<const PAGES: usize> {
    pages: [[u8; PAGE_SIZE]; PAGES],
    /// One bit per word: written since the page was last erased (to count rewrites).
    programmed: [[u32; WORDS_PER_PAGE / 32]; PAGES],
    erases: [u32; PAGES],
    bytes_written: u64,
    rewrites: u64,
    power: Power,
    interrupted_erase: InterruptedErase,
}

impl<const PAGES: usize> Default for RamFlash<PAGES> {
    fn default() -> Self {
        Self::new()
    }
}

impl<const PAGES: usize> RamFlash<PAGES> {
    /// Bytes of flash.
    pub const CAPACITY: usize = PAGES * PAGE_SIZE;

    /// A flash fresh from the factory: every byte 0xFF, no wear, power on.
    pub const fn new() -> Self {
        Self {
            pages: [[0xFF; PAGE_SIZE]; PAGES],
            programmed: [[0; WORDS_PER_PAGE / 32]; PAGES],
            erases: [0; PAGES],
            bytes_written: 0,
            rewrites: 0,
            power: Power::On,
            interrupted_erase: InterruptedErase::FromStart,
        }
    }

    /// The power goes off once `bytes` more bytes have been programmed or erased: the
    /// operation in progress then stops after its first `bytes` bytes (the remaining budget).
    /// `cut_power_after(0)` makes the very next write or erase change nothing.
    pub fn cut_power_after(&mut self, bytes: usize) {
        if self.power != Power::Off {
            self.power = Power::OnFor(bytes);
        }
    }

    /// The reboot after a power cut: the device works again, with no cut scheduled.
    pub fn restore_power(&mut self) {
        self.power = Power::On;
    }

    /// Whether a power cut has happened and not been restored.
    pub fn is_power_lost(&self) -> bool {
        self.power == Power::Off
    }

    /// Chooses which bytes an interrupted erase resets.
    pub fn set_interrupted_erase(&mut self, order: InterruptedErase) {
        self.interrupted_erase = order;
    }

    /// Erases of each page so far, complete or interrupted: the wear.
    pub fn erase_counts(&self) -> &[u32; PAGES] {
        &self.erases
    }

    /// Erases of all pages so far.
    pub fn total_erases(&self) -> u64 {
        self.erases.iter().map(|&n| u64::from(n)).sum()
    }

    /// Bytes programmed by writes so far (interrupted writes count the bytes they reached).
    pub fn bytes_written(&self) -> u64 {
        self.bytes_written
    }

    /// Bytes programmed plus bytes erased so far: the unit of [`Self::cut_power_after`], so a
    /// test can measure an operation's cost and then cut the power at every byte of it.
    pub fn bytes_changed(&self) -> u64 {
        self.bytes_written + self.total_erases() * PAGE_SIZE as u64
    }

    /// Writes to a word already written since its page was erased. Legal on this flash (the
    /// bits AND), illegal on flash with ECC: a storage layer that claims plain [`NorFlash`]
    /// keeps this at 0.
    pub fn rewrites(&self) -> u64 {
        self.rewrites
    }

    /// The raw contents, for tests that inspect or damage them.
    pub fn as_bytes(&self) -> &[[u8; PAGE_SIZE]; PAGES] {
        &self.pages
    }

    /// Overwrites raw contents without NOR rules or power accounting: bit rot, foreign data.
    pub fn corrupt(&mut self, offset: usize, bytes: &[u8]) {
        for (i, &b) in bytes.iter().enumerate() {
            let at = offset + i;
            if let Some(byte) = self
                .pages
                .get_mut(at / PAGE_SIZE)
                .and_then(|p| p.get_mut(at % PAGE_SIZE))
            {
                *byte = b;
            }
        }
    }

    /// How many of `wanted` bytes may change before the power goes; turns the power off when
    /// that is fewer than wanted.
    fn spend(&mut self, wanted: usize) -> Result<usize, FlashError> {
        match self.power {
            Power::Off => Err(FlashError::PowerLost),
            Power::On => Ok(wanted),
            Power::OnFor(left) if left >= wanted => {
                self.power = Power::OnFor(left - wanted);
                Ok(wanted)
            }
            Power::OnFor(left) => {
                self.power = Power::Off;
                Ok(left)
            }
        }
    }

    fn mark_programmed(&mut self, offset: usize) {
        let (page, word) = (offset / PAGE_SIZE, offset % PAGE_SIZE / WORD_SIZE);
        if let Some(bits) = self
            .programmed
            .get_mut(page)
            .and_then(|p| p.get_mut(word / 32))
        {
            let bit = 1u32 << (word % 32);
            if *bits & bit != 0 {
                self.rewrites += 1;
            }
            *bits |= bit;
        }
    }
}

impl<const PAGES: usize> ErrorType for RamFlash<PAGES> {
    type Error = FlashError;
}

impl<const PAGES: usize> ReadNorFlash for RamFlash<PAGES> {
    const READ_SIZE: usize = 1;

    fn read(&mut self, offset: u32, bytes: &mut [u8]) -> Result<(), FlashError> {
        check_read(self, offset, bytes.len())?;
        if self.power == Power::Off {
            return Err(FlashError::PowerLost);
        }
        let mut at = offset as usize;
        for out in bytes.chunks_mut(PAGE_SIZE) {
            // Page by page, so each piece is one copy.
            let (page, from) = (at / PAGE_SIZE, at % PAGE_SIZE);
            let here = out.len().min(PAGE_SIZE - from);
            let (head, tail) = out.split_at_mut(here);
            let source = self.pages.get(page).and_then(|p| p.get(from..from + here));
            head.copy_from_slice(source.ok_or(FlashError::OutOfBounds)?);
            if !tail.is_empty() {
                let next = self.pages.get(page + 1).and_then(|p| p.get(..tail.len()));
                tail.copy_from_slice(next.ok_or(FlashError::OutOfBounds)?);
            }
            at += out.len();
        }
        Ok(())
    }

    fn capacity(&self) -> usize {
        Self::CAPACITY
    }
}

impl<const PAGES: usize> NorFlash for RamFlash<PAGES> {
    const WRITE_SIZE: usize = WORD_SIZE;
    const ERASE_SIZE: usize = PAGE_SIZE;

    /// Erases whole pages; a power cut leaves the page it hit partly erased (see the module).
    fn erase(&mut self, from: u32, to: u32) -> Result<(), FlashError> {
        check_erase(self, from, to)?;
        for page in (from as usize / PAGE_SIZE)..(to as usize / PAGE_SIZE) {
            let done = self.spend(PAGE_SIZE)?;
            if let Some(count) = self.erases.get_mut(page) {
                *count += 1;
            }
            // A partly erased page keeps its marks: a later write there may be a rewrite.
            if let Some(bits) = self.programmed.get_mut(page).filter(|_| done == PAGE_SIZE) {
                *bits = [0; WORDS_PER_PAGE / 32];
            }
            let order = self.interrupted_erase;
            let Some(content) = self.pages.get_mut(page) else {
                return Err(FlashError::OutOfBounds);
            };
            let reset = match order {
                InterruptedErase::FromStart => content.get_mut(..done),
                InterruptedErase::FromEnd => content.get_mut(PAGE_SIZE - done..),
            };
            reset.unwrap_or_default().fill(0xFF);
            if done < PAGE_SIZE {
                return Err(FlashError::PowerLost);
            }
        }
        Ok(())
    }

    /// Programs whole words, ANDing into what is there; a power cut stops it after the
    /// budget's bytes.
    fn write(&mut self, offset: u32, bytes: &[u8]) -> Result<(), FlashError> {
        check_write(self, offset, bytes.len())?;
        let done = self.spend(bytes.len())?;
        for (i, &b) in bytes.iter().take(done).enumerate() {
            let at = offset as usize + i;
            if i % WORD_SIZE == 0 {
                self.mark_programmed(at);
            }
            if let Some(byte) = self
                .pages
                .get_mut(at / PAGE_SIZE)
                .and_then(|p| p.get_mut(at % PAGE_SIZE))
            {
                *byte &= b;
            }
        }
        self.bytes_written += done as u64;
        if done < bytes.len() {
            return Err(FlashError::PowerLost);
        }
        Ok(())
    }
}

/// True of this simulation: a second write ANDs into the first.
impl<const PAGES: usize> MultiwriteNorFlash for RamFlash<PAGES> {}

#[cfg(test)]
mod tests {
    use super::*;

    type Flash = RamFlash<2>;

    fn byte(flash: &Flash, at: usize) -> u8 {
        flash.as_bytes()[at / PAGE_SIZE][at % PAGE_SIZE]
    }

    #[test]
    fn starts_erased_and_reads_back_writes() {
        let mut flash = Flash::new();
        let mut out = [0u8; 8];
        flash.read(4, &mut out).unwrap();
        assert_eq!(out, [0xFF; 8]);
        flash.write(4, &[1, 2, 3, 4, 5, 6, 7, 8]).unwrap();
        flash.read(4, &mut out).unwrap();
        assert_eq!(out, [1, 2, 3, 4, 5, 6, 7, 8]);
        assert_eq!(flash.bytes_written(), 8);
    }

    #[test]
    fn writes_only_clear_bits_and_count_rewrites() {
        let mut flash = Flash::new();
        flash.write(0, &[0b1100_1100; 4]).unwrap();
        assert_eq!(flash.rewrites(), 0);
        flash.write(0, &[0b1010_1010; 4]).unwrap();
        assert_eq!(byte(&flash, 0), 0b1000_1000);
        assert_eq!(flash.rewrites(), 1);
    }

    #[test]
    fn erase_resets_a_page_and_counts_wear() {
        let mut flash = Flash::new();
        flash.write(PAGE_SIZE as u32, &[0; 4]).unwrap();
        flash.erase(PAGE_SIZE as u32, 2 * PAGE_SIZE as u32).unwrap();
        assert_eq!(byte(&flash, PAGE_SIZE), 0xFF);
        assert_eq!(flash.erase_counts(), &[0, 1]);
        flash.write(PAGE_SIZE as u32, &[0; 4]).unwrap();
        assert_eq!(flash.rewrites(), 0, "an erase makes words writable again");
    }

    #[test]
    fn rejects_unaligned_and_out_of_bounds_operations() {
        let mut flash = Flash::new();
        assert_eq!(flash.write(2, &[0; 4]), Err(FlashError::NotAligned));
        assert_eq!(flash.write(0, &[0; 3]), Err(FlashError::NotAligned));
        assert_eq!(
            flash.write(Flash::CAPACITY as u32, &[0; 4]),
            Err(FlashError::OutOfBounds)
        );
        assert_eq!(flash.erase(0, 100), Err(FlashError::NotAligned));
        assert_eq!(
            flash.erase(PAGE_SIZE as u32, 0),
            Err(FlashError::OutOfBounds)
        );
    }

    #[test]
    fn a_power_cut_stops_a_write_part_way_and_kills_the_device() {
        let mut flash = Flash::new();
        flash.cut_power_after(6);
        assert_eq!(flash.write(0, &[0; 4]), Ok(()));
        assert_eq!(flash.write(4, &[0; 8]), Err(FlashError::PowerLost));
        assert!(flash.is_power_lost());
        assert_eq!(
            (byte(&flash, 5), byte(&flash, 6)),
            (0x00, 0xFF),
            "2 bytes of the budget were left"
        );
        assert_eq!(flash.write(12, &[0; 4]), Err(FlashError::PowerLost));
        assert_eq!(flash.erase(0, PAGE_SIZE as u32), Err(FlashError::PowerLost));
        assert_eq!(flash.read(0, &mut [0; 4]), Err(FlashError::PowerLost));
        assert_eq!(byte(&flash, 12), 0xFF);
        flash.restore_power();
        let mut out = [0u8; 12];
        flash.read(0, &mut out).unwrap();
        assert_eq!(out, [0, 0, 0, 0, 0, 0, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF]);
    }

    #[test]
    fn a_cut_at_the_last_byte_lets_the_write_finish() {
        let mut flash = Flash::new();
        flash.cut_power_after(4);
        assert_eq!(flash.write(0, &[0; 4]), Ok(()));
        assert_eq!(flash.write(4, &[0; 4]), Err(FlashError::PowerLost));
        assert_eq!(byte(&flash, 4), 0xFF);
    }

    #[test]
    fn an_interrupted_erase_resets_part_of_the_page_in_the_chosen_order() {
        for (order, erased, kept) in [
            (InterruptedErase::FromStart, 0, PAGE_SIZE - 1),
            (InterruptedErase::FromEnd, PAGE_SIZE - 1, 0),
        ] {
            let mut flash = Flash::new();
            flash.set_interrupted_erase(order);
            flash.write(0, &[0; 4]).unwrap();
            flash.write(PAGE_SIZE as u32 - 4, &[0; 4]).unwrap();
            flash.cut_power_after(100);
            assert_eq!(flash.erase(0, PAGE_SIZE as u32), Err(FlashError::PowerLost));
            flash.restore_power();
            assert_eq!(byte(&flash, erased), 0xFF, "{order:?}");
            assert_eq!(byte(&flash, kept), 0x00, "{order:?}");
            assert_eq!(flash.erase_counts(), &[1, 0]);
        }
    }

    #[test]
    fn bytes_changed_counts_writes_and_erases_in_the_cut_budget_unit() {
        let mut flash = Flash::new();
        flash.write(0, &[0; 8]).unwrap();
        flash.erase(0, PAGE_SIZE as u32).unwrap();
        assert_eq!(flash.bytes_changed(), 8 + PAGE_SIZE as u64);
    }
}
