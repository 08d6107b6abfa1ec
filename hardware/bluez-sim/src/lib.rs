//! An emulated BlueZ: `org.bluez` served on a private D-Bus, whose virtual devices run the
//! reference firmware of `relais-firmware`, so the gateway's real btleplug stack runs in CI
//! against the firmware's bytes.
//!
//! ```no_run
//! # async fn demo() -> Result<(), relais_bluez_sim::SimError> {
//! use relais_bluez_sim::{DbusDaemon, GlucoseMeterSim, Simulator};
//! let bus = DbusDaemon::start()?;
//! // Set DBUS_SYSTEM_BUS_ADDRESS = bus.address() before the first btleplug call.
//! let meter = GlucoseMeterSim::with_records("C0:00:00:00:00:01", 3)?;
//! let sim = Simulator::start(bus.address(), vec![Box::new(meter)]).await?;
//! # drop(sim); Ok(()) }
//! ```
//!
//! What is modelled follows `shared/reference/bluez-emulation.md`: exact property types,
//! Introspect-discoverable `service*`/`char*`/`desc*` nodes, `ServicesResolved`, per-sender
//! notify sessions, indications presented as notifications and confirmed at once, CCCD writes
//! refused, BlueZ error names.

mod bluez;
pub mod control;
pub mod cuff;
pub mod device;
pub mod error;
pub mod glucose;
pub mod harness;
pub mod link;
pub mod scale;
pub mod scripted;
mod sim;
pub mod threaded;
pub mod xiaomi;

use std::sync::Arc;

use tokio::task::JoinHandle;
use zbus::fdo::ObjectManager;

pub use control::{CONTROL_PATH, Control, ControlDbusError, ControlError};
pub use cuff::{CuffButton, CuffSim};
pub use device::{Advertisement, VirtualDevice, sig_uuid};
pub use error::{BluezError, DeviceFault, SimError};
pub use glucose::GlucoseMeterSim;
pub use harness::DbusDaemon;
pub use link::{Emission, LinkTiming};
pub use scale::{ScaleSim, Weighing};
pub use scripted::ScriptedDevice;
pub use sim::ADAPTER_PATH;
pub use threaded::{Firmware, Requests, ThreadedDevice};
pub use xiaomi::XiaomiScaleSim;

use crate::bluez::{Adapter1, AgentManager1, WorldRef};
use crate::sim::{TICK, World};

/// A running emulated bluetoothd: owns `org.bluez` on the bus and ticks the firmware.
#[derive(Debug)]
pub struct Simulator {
    world: Arc<World>,
    ticker: JoinHandle<()>,
}

impl Simulator {
    /// Serves `org.bluez` on the bus at `address` with these devices (exported when a
    /// discovery starts), and starts ticking their firmware in real time. Faults can be injected
    /// with [`Simulator::control`] or, from another process, through `org.bluezsim.Control1` at
    /// [`CONTROL_PATH`] on the same bus name.
    pub async fn start(
        address: &str,
        devices: Vec<Box<dyn VirtualDevice>>,
    ) -> Result<Self, SimError> {
        let world = Arc::new(World::new(devices));
        let conn = zbus::connection::Builder::address(address)?
            .serve_at("/", ObjectManager)?
            .serve_at(
                "/org/bluez",
                AgentManager1 {
                    world: WorldRef::new(&world),
                },
            )?
            .serve_at(
                ADAPTER_PATH,
                Adapter1 {
                    world: WorldRef::new(&world),
                    props: Arc::clone(&world.adapter),
                },
            )?
            .serve_at(
                CONTROL_PATH,
                control::Control1 {
                    control: Control::new(&world),
                },
            )?
            .name("org.bluez")?
            .build()
            .await?;
        // Set once, right here; a second set cannot happen.
        let _ = world.conn.set(conn);
        let ticking = Arc::clone(&world);
        let ticker = tokio::spawn(async move {
            let mut interval = tokio::time::interval(TICK);
            interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                interval.tick().await;
                let mut state = ticking.state.lock().await;
                // A failing tick (bus gone, firmware error) must not stop the others.
                let _ = state.tick(&ticking).await;
            }
        });
        Ok(Self { world, ticker })
    }

    /// Adds a device; exported at once when a discovery runs.
    pub async fn add_device(&self, device: Box<dyn VirtualDevice>) -> Result<(), SimError> {
        let discovering = sim::lock(&self.world.adapter).discovering;
        let mut state = self.world.state.lock().await;
        state.add(&self.world, device, discovering).await
    }

    /// A handle to inject faults (links dropped, ATT errors, lost or delayed notifications,
    /// adapter off).
    pub fn control(&self) -> Control {
        Control::new(&self.world)
    }

    /// The simulator's own bus connection.
    pub fn connection(&self) -> Option<&zbus::Connection> {
        self.world.conn.get()
    }
}

impl Drop for Simulator {
    fn drop(&mut self) {
        self.ticker.abort();
    }
}
