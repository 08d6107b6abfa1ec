//! What the emulated adapter sees of a peripheral: its advertisement and a GATT behaviour that
//! takes the firmware's events and returns its actions.

use std::collections::HashMap;

use relais_firmware::gatt::{Action, Event, Table};

use crate::error::DeviceFault;

/// The 128-bit string form of a SIG 16-bit UUID, as BlueZ spells it.
pub fn sig_uuid(short: u16) -> String {
    format!("0000{short:04x}-0000-1000-8000-00805f9b34fb")
}

/// What a device advertises, as Device1 properties.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Advertisement {
    /// Public address, `AA:BB:CC:DD:EE:FF`.
    pub address: String,
    /// Local name.
    pub name: String,
    /// Advertised service UUIDs (128-bit strings, lower case).
    pub service_uuids: Vec<String>,
    /// Service data by service UUID.
    pub service_data: HashMap<String, Vec<u8>>,
    /// Manufacturer data by company id.
    pub manufacturer_data: HashMap<u16, Vec<u8>>,
    /// Received signal strength, dBm.
    pub rssi: i16,
}

/// A peripheral the emulated adapter can discover and connect to.
///
/// The emulator speaks for one central (the gateway), so a device sees at most one connection.
pub trait VirtualDevice: Send + 'static {
    /// The advertisement.
    fn advertisement(&self) -> &Advertisement;
    /// The GATT table, whose handles name the D-Bus objects.
    fn table(&self) -> &'static Table;
    /// Whether the device is bonded with the adapter from the start (paired out of band, as a
    /// gateway does with bluetoothctl).
    fn initially_paired(&self) -> bool;
    /// Whether a central can connect; an advertising-only device (a Xiaomi scale) refuses
    /// `Connect` with `Failed "le-connection-abort-by-local"`, as bluetoothd reports a connection
    /// that never completes.
    fn connectable(&self) -> bool {
        true
    }
    /// Feeds one BLE event to the firmware.
    fn handle(&mut self, event: Event<'_>) -> Result<Vec<Action>, DeviceFault>;
    /// Runs the firmware's main loop at `now_ms` (monotonic).
    fn poll(&mut self, now_ms: u64) -> Result<Vec<Action>, DeviceFault>;
}
