//! The central role: the first adapter, a scan filtered on the health services, connections.

use std::collections::BTreeMap;
use std::time::Duration;

use btleplug::api::{Central as _, CentralEvent, Manager as _, Peripheral as _, ScanFilter};
use btleplug::platform::{Adapter, Manager, Peripheral, PeripheralId};
use futures::StreamExt;
use serde::Serialize;

use crate::ble::device::{self, Device, Timeouts};
use crate::ble::error::{BleError, within};
use crate::ble::kind::{DeviceKind, HEALTH_SERVICES};

/// A health device seen while scanning.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Seen {
    /// The Bluetooth address, `AA:BB:CC:DD:EE:FF`.
    pub address: String,
    /// The advertised local name.
    pub name: Option<String>,
    /// What it is, from its advertised services.
    pub kind: DeviceKind,
    /// The last RSSI, dBm.
    pub rssi: Option<i16>,
    /// Whether BlueZ holds a bond with it (`Device1.Paired`); `None`: BlueZ cannot tell.
    pub paired: Option<bool>,
    /// Decodable measurement service data in its advertisements: it is never connected to.
    #[serde(skip)]
    pub advertises_measurements: bool,
}

/// The first Bluetooth adapter of the system bus's BlueZ.
#[derive(Debug)]
pub struct Central {
    adapter: Adapter,
    /// For what btleplug does not expose (bonds); `None` when the system bus refused.
    bus: Option<zbus::Connection>,
}

/// The 16-bit SIG UUID of a full UUID, if it is one.
pub(crate) fn short_uuid(uuid: &uuid::Uuid) -> Option<u16> {
    relais_protocol::uuid::from_u128(uuid.as_u128())
}

/// The full UUID of a 16-bit SIG UUID.
pub(crate) fn full_uuid(short: u16) -> uuid::Uuid {
    uuid::Uuid::from_u128(relais_protocol::uuid::to_u128(short))
}

impl Central {
    /// Opens the first adapter.
    pub async fn first_adapter() -> Result<Self, BleError> {
        let manager = Manager::new().await?;
        let adapter = manager
            .adapters()
            .await?
            .into_iter()
            .next()
            .ok_or(BleError::NoAdapter)?;
        let bus = match zbus::Connection::system().await {
            Ok(bus) => Some(bus),
            Err(e) => {
                tracing::warn!("no system bus connection for bond states: {e}");
                None
            }
        };
        Ok(Self { adapter, bus })
    }

    pub(crate) fn adapter(&self) -> &Adapter {
        &self.adapter
    }

    /// The scan filter: the health services.
    pub(crate) fn health_filter() -> ScanFilter {
        ScanFilter {
            services: HEALTH_SERVICES.iter().map(|&s| full_uuid(s)).collect(),
        }
    }

    /// Scans for `duration`, calling `on_seen` for every new health device and every change of
    /// one (RSSI, name); returns the devices seen, by address.
    pub async fn scan(
        &self,
        duration: Duration,
        mut on_seen: impl FnMut(&Seen),
    ) -> Result<Vec<Seen>, BleError> {
        let mut events = self.adapter.events().await?;
        self.adapter.start_scan(Self::health_filter()).await?;
        let mut seen: BTreeMap<String, Seen> = BTreeMap::new();
        // Devices BlueZ already knows are reported once, before any event.
        for peripheral in self.adapter.peripherals().await? {
            self.note(&peripheral, &mut seen, &mut on_seen).await;
        }
        let deadline = tokio::time::Instant::now() + duration;
        loop {
            let event = match tokio::time::timeout_at(deadline, events.next()).await {
                Ok(Some(event)) => event,
                Ok(None) | Err(_) => break,
            };
            if let CentralEvent::DeviceDiscovered(id) | CentralEvent::DeviceUpdated(id) = event
                && let Ok(peripheral) = self.adapter.peripheral(&id).await
            {
                self.note(&peripheral, &mut seen, &mut on_seen).await;
            }
        }
        if let Err(e) = self.adapter.stop_scan().await {
            tracing::warn!("stopping the scan failed: {e}");
        }
        Ok(seen.into_values().collect())
    }

    async fn note(
        &self,
        peripheral: &Peripheral,
        seen: &mut BTreeMap<String, Seen>,
        on_seen: &mut impl FnMut(&Seen),
    ) {
        let Some(device) = self.describe(peripheral).await else {
            return;
        };
        if seen.get(&device.address) != Some(&device) {
            tracing::debug!(address = %device.address, kind = device.kind.as_str(), "health device seen");
            on_seen(&device);
            seen.insert(device.address.clone(), device);
        }
    }

    /// What a peripheral is, if it is a health device.
    pub(crate) async fn describe(&self, peripheral: &Peripheral) -> Option<Seen> {
        let props = peripheral.properties().await.ok()??;
        // The filter is applied again here: BlueZ reports devices other clients discovered.
        let services: Vec<u16> = props.services.iter().filter_map(short_uuid).collect();
        let kind = DeviceKind::from_services(&services)?;
        let address = props.address.to_string();
        let paired = match &self.bus {
            Some(bus) => crate::ble::pairing::is_paired(bus, &address).await,
            None => None,
        };
        let advertises_measurements = props.service_data.iter().any(|(uuid, bytes)| {
            short_uuid(uuid).is_some_and(|short| {
                crate::payload::Record::single(crate::payload::Payload::service_data(
                    short,
                    bytes.clone(),
                ))
                .readings(relais_protocol::Quirks::NONE)
                .is_ok()
            })
        });
        Some(Seen {
            address,
            name: props.local_name,
            kind,
            rssi: props.rssi,
            paired,
            advertises_measurements,
        })
    }

    pub(crate) async fn peripheral(
        &self,
        address: &str,
    ) -> Result<(PeripheralId, Peripheral), BleError> {
        for peripheral in self.adapter.peripherals().await? {
            if peripheral
                .address()
                .to_string()
                .eq_ignore_ascii_case(address)
            {
                return Ok((peripheral.id(), peripheral));
            }
        }
        Err(BleError::UnknownDevice(address.to_owned()))
    }

    /// Connects to a device seen before, discovers its services and reads its identity.
    pub async fn connect(&self, address: &str, timeouts: Timeouts) -> Result<Device, BleError> {
        let (_, peripheral) = self.peripheral(address).await?;
        let name = peripheral.properties().await?.and_then(|p| p.local_name);
        // Opened before Connect: what the device sends as the link comes up is kept for the
        // session.
        let from_connection = device::notifications(&peripheral).await?;
        if !peripheral.is_connected().await? {
            within("connect", timeouts.connect, peripheral.connect()).await?;
        }
        within(
            "service discovery",
            timeouts.discover,
            peripheral.discover_services(),
        )
        .await?;
        Device::new(
            peripheral,
            address.to_owned(),
            name,
            timeouts,
            from_connection,
        )
        .await
    }
}
