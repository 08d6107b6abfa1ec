//! relais-protocol: the bytes of Bluetooth SIG health devices, decoded and encoded.
//!
//! `no_std`, no allocation, no I/O, no `unsafe`. Every decoder checks the length its flags
//! announce and returns a [`DecodeError`] naming the field at fault; extra trailing bytes are
//! accepted and reported in [`Decoded::trailing`]. Every decoded type has an encoder, so device
//! firmware and simulators produce bytes with the same code the hub reads them with.
//!
//! Measurements turn into [`Reading`]s, the normalised form the rest of the hub consumes.
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

mod macros;

pub mod blood_pressure;
pub mod body_composition;
pub mod cgm;
pub mod characteristic;
pub mod crc;
pub mod device_information;
pub mod error;
pub mod float;
pub mod glucose;
pub mod heart_rate;
pub mod pulse_oximeter;
pub mod quantity;
pub mod quirks;
pub mod racp;
pub mod reading;
pub mod thermometer;
pub mod time;
pub mod uuid;
pub mod weight_scale;
pub mod wire;
pub mod xiaomi;

pub use characteristic::Characteristic;
pub use error::{DecodeError, EncodeError};
pub use float::{Decimal, MedValue, Special};
pub use quantity::{Quantity, Unit};
pub use quirks::Quirks;
pub use reading::{
    DeviceTime, Kind, MAX_READINGS, Reading, ReadingStatus, ReadingValue, Readings, ToReadings,
};
pub use time::DateTime;
pub use wire::Decoded;

/// The README's example, compiled and run as a doctest so it stays true.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeExample;

#[cfg(test)]
extern crate std;
#[cfg(test)]
mod test_support;
