//! The Bluetooth LE layer: btleplug (BlueZ over D-Bus on Linux) stays inside this module.
//!
//! - [`kind`]: what a device is, from its advertised services.
//! - [`central`]: the first adapter, scanning with the health-service filter, connecting.
//! - [`device`]: a connected device, its identity (Device Information) and GATT helpers.
//! - [`glucose_session`]: the glucose catch-up as a sans-I/O state machine.
//! - [`assembler`]: notifications into measurements, as a sans-I/O state machine.
//! - [`session`]: one device session (clock, subscriptions, catch-up, acceptance), the driver
//!   of both.
//! - [`supervisor`]: watching for devices, sessions with reconnection and backoff,
//!   advertisement-only scales.
//! - [`pairing`]: a BlueZ agent and `Device1.Pair` over D-Bus (btleplug cannot pair).
//! - [`clock`]: device clock skew measurement and correction.
//! - [`error`]: the typed errors.

pub mod assembler;
pub mod central;
pub mod clock;
pub mod device;
pub mod error;
pub mod glucose_session;
pub mod kind;
pub mod pairing;
pub mod session;
pub mod supervisor;

pub use central::{Central, Seen};
pub use device::{Device, Identity};
pub use error::BleError;
pub use kind::DeviceKind;
