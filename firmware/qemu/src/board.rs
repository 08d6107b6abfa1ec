//! The mps2-an386 board as a relais port sees it: GPIO pins, a busy-wait delay and a NOR flash
//! region. This is the HAL glue: the only place with `unsafe`, for volatile register access.
//!
//! A real port (nRF52840) takes the same three things from its HAL crate: `nrf-hal`'s GPIO pins,
//! a timer delay and the NVMC flash.

use core::convert::Infallible;
use core::ptr;

use embedded_hal::delay::DelayNs;
use embedded_hal::digital::{ErrorType, InputPin, OutputPin};
use embedded_storage::nor_flash::{
    ErrorType as FlashErrorType, NorFlash, NorFlashError, NorFlashErrorKind, ReadNorFlash,
};

/// CMSDK GPIO block registers (ARM CMSDK APB GPIO): data in, data out.
const GPIO_DATA: usize = 0x000;
const GPIO_DATAOUT: usize = 0x004;
/// The two GPIO blocks of the AN386 image.
pub const GPIO0: usize = 0x4001_0000;
pub const GPIO1: usize = 0x4001_1000;

/// One GPIO line.
#[derive(Debug)]
pub struct GpioPin {
    block: usize,
    mask: u32,
}

impl GpioPin {
    /// Line `bit` (0..16) of the GPIO block at `block`.
    pub const fn new(block: usize, bit: u8) -> Self {
        Self {
            block,
            mask: 1 << (bit & 15),
        }
    }

    fn read(&self, offset: usize) -> u32 {
        // SAFETY: `block + offset` is a CMSDK GPIO register of the AN386 memory map, always
        // mapped and readable with 32-bit accesses.
        unsafe { ptr::read_volatile((self.block + offset) as *const u32) }
    }

    fn write(&self, offset: usize, value: u32) {
        // SAFETY: as in `read`; the data-out register accepts any 32-bit value.
        unsafe { ptr::write_volatile((self.block + offset) as *mut u32, value) }
    }
}

impl ErrorType for GpioPin {
    type Error = Infallible;
}

impl OutputPin for GpioPin {
    fn set_high(&mut self) -> Result<(), Infallible> {
        let out = self.read(GPIO_DATAOUT);
        self.write(GPIO_DATAOUT, out | self.mask);
        Ok(())
    }

    fn set_low(&mut self) -> Result<(), Infallible> {
        let out = self.read(GPIO_DATAOUT);
        self.write(GPIO_DATAOUT, out & !self.mask);
        Ok(())
    }
}

impl InputPin for GpioPin {
    fn is_high(&mut self) -> Result<bool, Infallible> {
        Ok(self.read(GPIO_DATA) & self.mask != 0)
    }

    fn is_low(&mut self) -> Result<bool, Infallible> {
        self.is_high().map(|high| !high)
    }
}

/// Busy-wait delay for the AN386's 25 MHz core clock.
#[derive(Debug, Clone, Copy)]
pub struct BusyDelay;

impl DelayNs for BusyDelay {
    fn delay_ns(&mut self, ns: u32) {
        cortex_m::asm::delay((ns / 40).max(1));
    }
}

/// NOR flash semantics over a memory region (on the nRF52840 this is the NVMC): erase sets
/// 4 KiB pages to 0xFF, writes clear bits, 4-byte aligned.
#[derive(Debug)]
pub struct MemoryFlash {
    base: usize,
    len: usize,
}

/// An access outside the region or not aligned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FlashError(NorFlashErrorKind);

impl NorFlashError for FlashError {
    fn kind(&self) -> NorFlashErrorKind {
        self.0
    }
}

impl MemoryFlash {
    /// The region `base..base + len`; the caller gives each instance its own region.
    pub const fn new(base: usize, len: usize) -> Self {
        Self { base, len }
    }

    fn check(&self, offset: u32, len: usize, align: usize) -> Result<usize, FlashError> {
        let offset = offset as usize;
        if offset % align != 0 || len % align != 0 {
            return Err(FlashError(NorFlashErrorKind::NotAligned));
        }
        if offset.checked_add(len).is_none_or(|end| end > self.len) {
            return Err(FlashError(NorFlashErrorKind::OutOfBounds));
        }
        Ok(self.base + offset)
    }
}

impl FlashErrorType for MemoryFlash {
    type Error = FlashError;
}

impl ReadNorFlash for MemoryFlash {
    const READ_SIZE: usize = 1;

    fn read(&mut self, offset: u32, bytes: &mut [u8]) -> Result<(), FlashError> {
        let start = self.check(offset, bytes.len(), 1)?;
        for (i, byte) in bytes.iter_mut().enumerate() {
            // SAFETY: `check` keeps `start + i` inside the region this instance owns.
            *byte = unsafe { ptr::read_volatile((start + i) as *const u8) };
        }
        Ok(())
    }

    fn capacity(&self) -> usize {
        self.len
    }
}

impl NorFlash for MemoryFlash {
    const WRITE_SIZE: usize = 4;
    const ERASE_SIZE: usize = 4096;

    fn erase(&mut self, from: u32, to: u32) -> Result<(), FlashError> {
        let len = to.saturating_sub(from) as usize;
        let start = self.check(from, len, Self::ERASE_SIZE)?;
        for i in 0..len {
            // SAFETY: inside the region, as checked.
            unsafe { ptr::write_volatile((start + i) as *mut u8, 0xFF) };
        }
        Ok(())
    }

    fn write(&mut self, offset: u32, bytes: &[u8]) -> Result<(), FlashError> {
        let start = self.check(offset, bytes.len(), Self::WRITE_SIZE)?;
        for (i, byte) in bytes.iter().enumerate() {
            let at = (start + i) as *mut u8;
            // SAFETY: inside the region, as checked. NOR writes only clear bits.
            unsafe { ptr::write_volatile(at, ptr::read_volatile(at) & byte) };
        }
        Ok(())
    }
}
