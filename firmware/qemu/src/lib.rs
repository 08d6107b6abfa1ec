//! Board glue for QEMU's mps2-an386 and the on-target test harness.
//!
//! This is the only code of relais that uses `unsafe` (through cortex-m-rt's entry and exception
//! macros) and semihosting: it stands in for a real board's HAL crate.
#![no_std]

pub mod board;

use cortex_m_semihosting::{debug, hprintln};

/// Prints the panic and ends the QEMU run with a failure status. Only the test image prints:
/// formatting the message would add about 10 KiB of `core::fmt` to the product image, whose
/// panic handler stops without a word (`footprint`).
#[cfg(feature = "print-panics")]
#[panic_handler]
fn panic(info: &core::panic::PanicInfo<'_>) -> ! {
    hprintln!("PANIC: {}", info);
    debug::exit(debug::EXIT_FAILURE);
    loop {
        cortex_m::asm::bkpt();
    }
}

/// Stops the core: a product's watchdog then resets it.
#[cfg(not(feature = "print-panics"))]
#[panic_handler]
fn panic(_info: &core::panic::PanicInfo<'_>) -> ! {
    debug::exit(debug::EXIT_FAILURE);
    loop {
        cortex_m::asm::bkpt();
    }
}

/// Runs named checks, prints one line each and a summary, and ends the QEMU run with the
/// matching status.
pub struct Harness {
    passed: u32,
    failed: u32,
}

impl Harness {
    pub const fn new() -> Self {
        Self {
            passed: 0,
            failed: 0,
        }
    }

    pub fn check(&mut self, name: &str, result: Result<(), &'static str>) {
        match result {
            Ok(()) => {
                self.passed += 1;
                hprintln!("test {} ... ok", name);
            }
            Err(why) => {
                self.failed += 1;
                hprintln!("test {} ... FAILED: {}", name, why);
            }
        }
    }

    pub fn finish(self) -> ! {
        hprintln!("{} passed, {} failed", self.passed, self.failed);
        debug::exit(if self.failed == 0 {
            debug::EXIT_SUCCESS
        } else {
            debug::EXIT_FAILURE
        });
        loop {
            cortex_m::asm::bkpt();
        }
    }
}

impl Default for Harness {
    fn default() -> Self {
        Self::new()
    }
}

/// `Err(message)` unless `condition` holds.
pub fn ensure(condition: bool, message: &'static str) -> Result<(), &'static str> {
    if condition { Ok(()) } else { Err(message) }
}
