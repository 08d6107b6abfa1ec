//! What the emulated adapter sees of a peripheral: its advertisement and a GATT behaviour that
//! takes the firmware's events and returns its actions.

use std::collections::HashMap;

use relais_firmware::gatt::{Action, ConnId, Event, Table, WriteKind};
use relais_firmware::services::current_time::DeviceClock;
use relais_protocol::{DateTime, uuid};

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

/// The Current Time value that sets a device clock to `time`: Exact Time 256 (day of week
/// unknown, fractions 0), adjust reason "manual time update". Checked as the firmware's clock
/// checks a write, so a time it would refuse fails here.
pub(crate) fn clock_value(time: &DateTime) -> Result<[u8; 10], DeviceFault> {
    let [y0, y1] = time.year.map_or(0, u16::from).to_le_bytes();
    let value = [
        y0,
        y1,
        time.month.map_or(0, u8::from),
        time.day.map_or(0, u8::from),
        time.hours,
        time.minutes,
        time.seconds,
        0,
        0,
        0x01,
    ];
    DeviceClock::new()
        .write_current_time(&value)
        .map_err(|e| DeviceFault(format!("the device refuses the clock: {e:?}")))?;
    Ok(value)
}

/// Writes `value` to the Current Time of the firmware behind `feed` over a connection of its
/// own, as an earlier gateway or the user would have set it before the device is served.
pub(crate) fn set_clock(
    table: &Table,
    value: &[u8],
    mut feed: impl FnMut(Event<'_>) -> Result<Vec<Action>, DeviceFault>,
) -> Result<(), DeviceFault> {
    let handle = table
        .value_handle(relais_firmware::gatt::Uuid::sig(uuid::CURRENT_TIME))
        .ok_or_else(|| DeviceFault("the device has no Current Time".into()))?;
    // A connection id the simulator's central never uses.
    let conn = ConnId(9);
    feed(Event::Connected { conn, bond: None })?;
    let answer = feed(Event::Write {
        conn,
        handle,
        data: value,
        kind: WriteKind::Request,
    })?;
    feed(Event::Disconnected { conn })?;
    for action in answer {
        if let Action::Respond { result: Err(e), .. } = action {
            return Err(DeviceFault(format!("the device refused its clock: {e:?}")));
        }
    }
    Ok(())
}
