//! relais: the hub daemon and its command-line tools.
//!
//! - [`decode`]: any characteristic value or advertisement as the JSON contract of the README.
//! - [`payload`]: a measurement as received, and the readings it yields.
//! - [`ble`]: the Bluetooth LE layer over btleplug (sessions, supervisor, pairing).
//! - [`fhir`]: readings mapped to the Bundles of MES API Mesure.
//! - [`store`]: the hub's SQLite database.
//! - [`mes`]: the MES client (pairing, upload).
//! - [`mqtt`]: the MQTT bridge (readings, device states, Home Assistant discovery).
//! - [`hub`]: the daemon wiring them together.
//! - [`web`]: the household's web page and its JSON API.
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
pub mod hub;
pub mod mes;
pub mod mqtt;
pub mod payload;
pub mod store;
pub mod web;
