//! The Bluetooth LE layer: btleplug (BlueZ over D-Bus on Linux) stays inside this module.
//!
//! - [`kind`]: what a device is, from its advertised services.
//! - [`central`]: the first adapter, scanning with the health-service filter, connecting.
//! - [`device`]: a connected device, its identity (Device Information) and GATT helpers.
//! - [`glucose_session`]: the glucose catch-up as a sans-I/O state machine.
//! - [`glucose`]: its btleplug driver.
//! - [`scale`]: weight measurement indications.
//! - [`listen`]: every known measurement characteristic of a device, decoded.
//! - [`pairing`]: a BlueZ agent and `Device1.Pair` over D-Bus (btleplug cannot pair).
//! - [`clock`]: device clock skew measurement and correction.
//! - [`error`]: the typed errors.

pub mod central;
pub mod clock;
pub mod device;
pub mod error;
pub mod glucose;
pub mod glucose_session;
pub mod kind;
pub mod listen;
pub mod pairing;
pub mod scale;

pub use central::{Central, Seen};
pub use device::{Device, Identity};
pub use error::BleError;
pub use kind::DeviceKind;
