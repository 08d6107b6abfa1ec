//! `bluez-sim`: starts a private system bus with an emulated BlueZ and one glucose meter, prints
//! the address for `DBUS_SYSTEM_BUS_ADDRESS`, and runs until Ctrl-C.
//!
//! Usage: `bluez-sim [RECORDS]` (stored glucose records, default 3).
//!
//! Faults are injected through `org.bluezsim.Control1` at `/org/bluezsim` on the same bus (see
//! the crate's README).

use relais_bluez_sim::{DbusDaemon, GlucoseMeterSim, Simulator};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let records = match std::env::args().nth(1) {
        Some(arg) => arg.parse::<u32>()?,
        None => 3,
    };
    let bus = DbusDaemon::start()?;
    let meter = GlucoseMeterSim::with_records("C0:FF:EE:00:00:01", records)?;
    let _sim = Simulator::start(bus.address(), vec![Box::new(meter)]).await?;
    println!("DBUS_SYSTEM_BUS_ADDRESS={}", bus.address());
    tokio::signal::ctrl_c().await?;
    Ok(())
}
