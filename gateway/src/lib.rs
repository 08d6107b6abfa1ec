//! relais: the hub daemon and its command-line tools.
//!
//! For now it holds the byte-level tools device makers use: [`decode`] turns a characteristic
//! value or an advertisement into the JSON contract documented in the README. [`ble`] is the
//! Bluetooth LE layer (scan, connect, glucose catch-up, scale, generic listening) over btleplug.
#![cfg_attr(
    test,
    allow(
        clippy::unwrap_used,
        clippy::expect_used,
        clippy::indexing_slicing,
        clippy::panic
    )
)]

pub mod ble;
pub mod decode;
pub mod fhir;
pub mod hex;
pub mod mes;
pub mod payload;
