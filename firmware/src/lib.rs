//! relais-firmware: the reference firmware of a Bluetooth LE health device.
//!
//! `no_std`, no allocation, board-agnostic: drivers are generic over embedded-hal 1.0, storage
//! over embedded-storage's `NorFlash`, and the GATT server core is transport-agnostic, so a BLE
//! stack (TrouBLE, SoftDevice) binds to it without touching the measurement logic.
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

pub mod cuff;
pub mod devices;
pub mod drivers;
pub mod gatt;
pub mod glucose_meter;
pub mod record_log;
pub mod scale;
pub mod services;
