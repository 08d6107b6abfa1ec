//! relais-board-sim: the reference board, simulated.
//!
//! embedded-hal 1.0 and embedded-storage implementations whose behaviour follows the physics and
//! the chips of the reference board, so the firmware's drivers and personalities run unmodified on
//! a PC or under QEMU. `no_std` and allocation-free, so the same simulation runs on the target
//! instruction set. Time is simulated: it advances only when the firmware waits (`DelayNs`) or a
//! test moves it, so every run is deterministic and fast.
#![no_std]
#![forbid(unsafe_code)]
#![cfg_attr(
    test,
    allow(
        clippy::unwrap_used,
        clippy::expect_used,
        clippy::indexing_slicing,
        clippy::panic
    )
)]

pub mod clock;
pub mod cuff;
pub mod flash;
pub mod hx71x;
pub mod load_cell;

pub use clock::{SimClock, SimDelay};
pub use flash::RamFlash;
