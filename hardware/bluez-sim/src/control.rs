//! Fault injection: a handle on a running [`crate::Simulator`] that drops links, fails the next
//! operation on a characteristic with an ATT error, loses or delays notifications, and switches
//! the adapter off, each seen by a D-Bus client (btleplug) as bluetoothd would show it.

use std::collections::HashMap;
use std::sync::{Arc, Weak};
use std::time::Duration;

use relais_firmware::gatt::AttError;
use zbus::zvariant::Value;

use crate::link::{Emission, LinkTiming};
use crate::sim::{ADAPTER_PATH, CharFault, World, emit_changed, lock};

/// Why a fault could not be injected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ControlError {
    /// The simulator was dropped.
    #[error("the simulator is stopped")]
    Stopped,
    /// No virtual device has this address.
    #[error("no device at {0}")]
    UnknownDevice(String),
    /// The device's GATT table has no characteristic with this UUID.
    #[error("no characteristic {uuid} on {address}")]
    UnknownCharacteristic {
        /// The device.
        address: String,
        /// The UUID asked for.
        uuid: String,
    },
    /// The device is not connected (for faults that need a link).
    #[error("{0} is not connected")]
    NotConnected(String),
    /// The simulator failed to carry the fault out (bus or firmware error).
    #[error("cannot inject the fault: {0}")]
    Failed(String),
}

/// Injects faults into a running simulator; cheap to clone, inert once the simulator is dropped.
#[derive(Debug, Clone)]
pub struct Control {
    world: Weak<World>,
}

fn failed(e: impl std::fmt::Debug) -> ControlError {
    ControlError::Failed(format!("{e:?}"))
}

impl Control {
    pub(crate) fn new(world: &Arc<World>) -> Self {
        Self {
            world: Arc::downgrade(world),
        }
    }

    fn world(&self) -> Result<Arc<World>, ControlError> {
        self.world.upgrade().ok_or(ControlError::Stopped)
    }

    /// Switches the adapter off (as rfkill would): `Powered` and `Discovering` become false,
    /// every link drops, setting `Powered` fails, `StartDiscovery` and `Connect` fail with
    /// `org.bluez.Error.NotReady "Resource Not Ready"`.
    pub async fn power_off(&self) -> Result<(), ControlError> {
        let world = self.world()?;
        let mut state = world.state.lock().await;
        let (was_powered, was_discovering) = {
            let mut adapter = lock(&world.adapter);
            adapter.blocked = true;
            (
                std::mem::replace(&mut adapter.powered, false),
                std::mem::replace(&mut adapter.discovering, false),
            )
        };
        for index in 0..state.len() {
            state.drop_link(&world, index).await.map_err(failed)?;
        }
        let conn = world.conn().map_err(failed)?;
        let mut changed = HashMap::new();
        if was_discovering {
            changed.insert("Discovering", Value::from(false));
        }
        if was_powered {
            changed.insert("Powered", Value::from(false));
        }
        if !changed.is_empty() {
            emit_changed(conn, ADAPTER_PATH, "org.bluez.Adapter1", changed)
                .await
                .map_err(failed)?;
        }
        Ok(())
    }

    /// Lets the adapter be powered again (a client sets `Powered`, as btleplug's scan does).
    pub async fn power_on(&self) -> Result<(), ControlError> {
        let world = self.world()?;
        lock(&world.adapter).blocked = false;
        Ok(())
    }

    /// Whether the adapter is currently switched off by [`Control::power_off`].
    pub async fn is_powered_off(&self) -> Result<bool, ControlError> {
        Ok(lock(&self.world()?.adapter).blocked)
    }

    /// Drops the link to the device at `address` now: the firmware sees a disconnection, the
    /// client sees `Notifying=false`, `ServicesResolved=false` and `Connected=false`.
    pub async fn drop_link(&self, address: &str) -> Result<(), ControlError> {
        let world = self.world()?;
        let mut state = world.state.lock().await;
        let index = state
            .find(address)
            .ok_or_else(|| ControlError::UnknownDevice(address.to_owned()))?;
        if !state.is_connected(index) {
            return Err(ControlError::NotConnected(address.to_owned()));
        }
        state.drop_link(&world, index).await.map_err(failed)
    }

    /// Drops the link to the device at `address` once it has sent `n` more notifications or
    /// indications (any characteristic): the `n + 1`-th is never sent. Use it to cut a RACP
    /// record transfer in the middle. Stays armed across connections until it fires.
    pub async fn drop_link_after_notifications(
        &self,
        address: &str,
        n: u32,
    ) -> Result<(), ControlError> {
        let world = self.world()?;
        let mut state = world.state.lock().await;
        let index = state
            .find(address)
            .ok_or_else(|| ControlError::UnknownDevice(address.to_owned()))?;
        state.arm_drop_after(index, Some(n));
        Ok(())
    }

    /// Fails the next `ReadValue`, `WriteValue` or first `StartNotify` on the characteristic
    /// `uuid` (128-bit string, e.g. from [`crate::sig_uuid`]) of the device at `address` with
    /// the ATT error `error`, mapped to BlueZ's error name and text as bluetoothd does (e.g.
    /// `Failed "Operation failed with ATT error: 0x0e"`). The firmware never sees that operation.
    pub async fn fail_next(
        &self,
        address: &str,
        uuid: &str,
        error: AttError,
    ) -> Result<(), ControlError> {
        self.arm(address, uuid, CharFault::FailNext(error)).await
    }

    /// Loses the next `count` notifications or indications of the characteristic: they are
    /// never emitted (an indication is still confirmed to the firmware, so it goes on). Zero
    /// clears the fault.
    pub async fn lose_notifications(
        &self,
        address: &str,
        uuid: &str,
        count: u32,
    ) -> Result<(), ControlError> {
        self.arm(address, uuid, CharFault::Lose(count)).await
    }

    /// Emits every notification or indication of the characteristic `delay` late (dropped if
    /// the link goes down meanwhile). `Duration::ZERO` clears the fault.
    pub async fn delay_notifications(
        &self,
        address: &str,
        uuid: &str,
        delay: Duration,
    ) -> Result<(), ControlError> {
        self.arm(address, uuid, CharFault::Delay(delay)).await
    }

    /// Sets how fast every link carries notifications and indications (default
    /// [`LinkTiming::FAST`]); takes effect at once, a link's banked packets included at the next
    /// connection event.
    pub async fn set_link_timing(&self, timing: LinkTiming) -> Result<(), ControlError> {
        *lock(&self.world()?.link) = timing;
        Ok(())
    }

    /// The links' current pace.
    pub async fn link_timing(&self) -> Result<LinkTiming, ControlError> {
        Ok(*lock(&self.world()?.link))
    }

    /// Every notification and indication emitted on the bus from now on, with the instant it
    /// was emitted, for latency measurements. The log keeps 8,192 emissions for a receiver that
    /// lags (it then gets `RecvError::Lagged`); once the simulator is dropped, or if it already
    /// is, the receiver gets `RecvError::Closed`.
    pub fn subscribe_emissions(&self) -> tokio::sync::broadcast::Receiver<Emission> {
        match self.world.upgrade() {
            Some(world) => world.emissions.subscribe(),
            // A channel whose sender is gone: closed from the start.
            None => tokio::sync::broadcast::channel(1).1,
        }
    }

    async fn arm(&self, address: &str, uuid: &str, fault: CharFault) -> Result<(), ControlError> {
        let world = self.world()?;
        let mut state = world.state.lock().await;
        let index = state
            .find(address)
            .ok_or_else(|| ControlError::UnknownDevice(address.to_owned()))?;
        if state.arm(index, uuid, fault) {
            Ok(())
        } else {
            Err(ControlError::UnknownCharacteristic {
                address: address.to_owned(),
                uuid: uuid.to_owned(),
            })
        }
    }
}

/// The errors of `org.bluezsim.Control1`, under the `org.bluezsim.Error` prefix.
#[derive(Debug, zbus::DBusError)]
#[zbus(prefix = "org.bluezsim.Error")]
pub enum ControlDbusError {
    /// A D-Bus level failure.
    #[zbus(error)]
    ZBus(zbus::Error),
    /// `org.bluezsim.Error.DoesNotExist`: no such device or characteristic.
    DoesNotExist(String),
    /// `org.bluezsim.Error.InvalidArguments`: e.g. an ATT error code the firmware never sends.
    InvalidArguments(String),
    /// `org.bluezsim.Error.Failed`.
    Failed(String),
}

impl From<ControlError> for ControlDbusError {
    fn from(e: ControlError) -> Self {
        match e {
            ControlError::UnknownDevice(_) | ControlError::UnknownCharacteristic { .. } => {
                Self::DoesNotExist(e.to_string())
            }
            other => Self::Failed(other.to_string()),
        }
    }
}

/// Where `org.bluezsim.Control1` is served.
pub const CONTROL_PATH: &str = "/org/bluezsim";

/// `org.bluezsim.Control1` at [`CONTROL_PATH`]: the [`Control`] methods over D-Bus, for a
/// process that did not start the simulator (the `bluez-sim` binary's clients).
pub(crate) struct Control1 {
    pub control: Control,
}

#[zbus::interface(name = "org.bluezsim.Control1")]
impl Control1 {
    /// [`Control::power_off`].
    async fn power_off(&self) -> Result<(), ControlDbusError> {
        Ok(self.control.power_off().await?)
    }

    /// [`Control::power_on`].
    async fn power_on(&self) -> Result<(), ControlDbusError> {
        Ok(self.control.power_on().await?)
    }

    /// [`Control::drop_link`].
    async fn drop_link(&self, address: String) -> Result<(), ControlDbusError> {
        Ok(self.control.drop_link(&address).await?)
    }

    /// [`Control::drop_link_after_notifications`].
    async fn drop_link_after_notifications(
        &self,
        address: String,
        count: u32,
    ) -> Result<(), ControlDbusError> {
        Ok(self
            .control
            .drop_link_after_notifications(&address, count)
            .await?)
    }

    /// [`Control::fail_next`], the ATT error given by its code (e.g. 0x0e).
    async fn fail_next(
        &self,
        address: String,
        uuid: String,
        att_error: u8,
    ) -> Result<(), ControlDbusError> {
        let error = AttError::from_code(att_error).ok_or_else(|| {
            ControlDbusError::InvalidArguments(format!("unknown ATT error 0x{att_error:02x}"))
        })?;
        Ok(self.control.fail_next(&address, &uuid, error).await?)
    }

    /// [`Control::lose_notifications`].
    async fn lose_notifications(
        &self,
        address: String,
        uuid: String,
        count: u32,
    ) -> Result<(), ControlDbusError> {
        Ok(self
            .control
            .lose_notifications(&address, &uuid, count)
            .await?)
    }

    /// [`Control::delay_notifications`], the delay in milliseconds (0 clears it).
    async fn delay_notifications(
        &self,
        address: String,
        uuid: String,
        delay_ms: u32,
    ) -> Result<(), ControlDbusError> {
        let delay = Duration::from_millis(u64::from(delay_ms));
        Ok(self
            .control
            .delay_notifications(&address, &uuid, delay)
            .await?)
    }

    /// [`Control::set_link_timing`]: the connection interval in microseconds (not 0), packets
    /// per connection event.
    async fn set_link_timing(
        &self,
        interval_us: u32,
        packets_per_event: u32,
    ) -> Result<(), ControlDbusError> {
        if interval_us == 0 {
            return Err(ControlDbusError::InvalidArguments(
                "a connection interval of 0".into(),
            ));
        }
        let timing = LinkTiming {
            connection_interval: Duration::from_micros(u64::from(interval_us)),
            packets_per_event,
        };
        Ok(self.control.set_link_timing(timing).await?)
    }

    /// Whether the adapter is switched off by a fault.
    #[zbus(property)]
    async fn powered_off(&self) -> Result<bool, zbus::fdo::Error> {
        self.control
            .is_powered_off()
            .await
            .map_err(|e| zbus::fdo::Error::Failed(e.to_string()))
    }
}
