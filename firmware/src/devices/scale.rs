//! The reference scale: Weight Scale service (0x181D) plus Device Information and Current Time.
//!
//! Weighings go into the scale's queue first (RAM, and flash through its archive); the oldest one
//! is indicated to a subscribed gateway and forgotten only when the gateway confirms it, so a
//! weighing taken while no gateway is connected, or whose indication is lost with the link, is
//! sent on the next connection.

use embedded_hal::delay::DelayNs;
use embedded_hal::digital::{InputPin, OutputPin};
use relais_protocol::Characteristic as Encode;
use relais_protocol::uuid as sig;

use super::{
    DeviceActions, DeviceError, FIRST_HANDLE, ReadOnlyValue, extend, indicate_to_one,
    reference_information,
};
use crate::gatt::{Characteristic, ConnId, Event, Properties, Server, Service, Table, Uuid};
use crate::gatt_table;
use crate::scale::{ErrorOf, Scale, ScaleEvent, WeighingArchive};
use crate::services::current_time;
use crate::services::device_information::{self, DeviceInformation};

const INFORMATION: DeviceInformation = reference_information("RS-SCALE");
const DIS: [Characteristic; 6] = INFORMATION.characteristics();
const WEIGHT_MEASUREMENT: Uuid = Uuid::sig(sig::WEIGHT_MEASUREMENT);
const WEIGHT_SCALE_FEATURE: Uuid = Uuid::sig(sig::WEIGHT_SCALE_FEATURE);

const WEIGHT_SCALE: Service = Service::primary(
    Uuid::sig(sig::WEIGHT_SCALE_SERVICE),
    &[
        Characteristic::new(WEIGHT_SCALE_FEATURE, Properties::READ),
        Characteristic::new(WEIGHT_MEASUREMENT, Properties::INDICATE),
    ],
);

/// The scale's attribute table.
pub const TABLE: Table = gatt_table!(
    FIRST_HANDLE,
    &[
        device_information::service(&DIS),
        current_time::SERVICE,
        WEIGHT_SCALE
    ]
);

/// Why the scale device failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ScaleDeviceError<EScale> {
    Scale(EScale),
    Gatt(DeviceError),
}

/// A scale bound to the GATT server core.
#[derive(Debug)]
pub struct ScaleDevice<Clock, Data, Delay, Archive> {
    scale: Scale<Clock, Data, Delay, Archive>,
    server: Server,
    /// The connection the oldest pending weighing was indicated to, awaiting its confirmation.
    in_flight: Option<ConnId>,
}

impl<Clock, Data, Delay, Archive> ScaleDevice<Clock, Data, Delay, Archive>
where
    Clock: OutputPin,
    Data: InputPin,
    Delay: DelayNs,
    Archive: WeighingArchive,
{
    pub fn new(scale: Scale<Clock, Data, Delay, Archive>) -> Self {
        Self {
            scale,
            server: Server::new(TABLE),
            in_flight: None,
        }
    }

    /// Feeds a BLE event; returns what the board must do.
    pub fn handle(
        &mut self,
        event: Event<'_>,
    ) -> Result<DeviceActions, ScaleDeviceError<ErrorOf<Clock, Data, Archive>>> {
        let mut actions = DeviceActions::new();
        match event {
            Event::IndicationConfirmed { conn } if self.in_flight == Some(conn) => {
                self.in_flight = None;
                self.scale.delivered().map_err(ScaleDeviceError::Scale)?;
            }
            Event::Disconnected { conn } if self.in_flight == Some(conn) => {
                // Not confirmed: the weighing stays queued for the next connection.
                self.in_flight = None;
            }
            _ => {}
        }
        let feature = encode_feature(&self.scale);
        let mut values = ReadOnlyValue {
            uuid: WEIGHT_SCALE_FEATURE,
            bytes: &feature,
        };
        extend(&mut actions, self.server.handle(event, &mut values));
        self.send_pending(&mut actions)?;
        Ok(actions)
    }

    /// Runs the scale (call it more often than the ADC's 10 Hz) and the server's clock.
    pub fn poll(
        &mut self,
        now_ms: u64,
    ) -> Result<DeviceActions, ScaleDeviceError<ErrorOf<Clock, Data, Archive>>> {
        let mut actions = self.handle(Event::Tick { now_ms })?;
        if let Some(ScaleEvent::Measured(_)) = self
            .scale
            .poll(self.server.now())
            .map_err(ScaleDeviceError::Scale)?
        {
            self.send_pending(&mut actions)?;
        }
        Ok(actions)
    }

    /// Indicates the oldest undelivered weighing when a gateway listens and none is in flight.
    fn send_pending(
        &mut self,
        actions: &mut DeviceActions,
    ) -> Result<(), ScaleDeviceError<ErrorOf<Clock, Data, Archive>>> {
        if self.in_flight.is_some() {
            return Ok(());
        }
        let Some(measurement) = self.scale.pending() else {
            return Ok(());
        };
        if let Some((conn, sent)) =
            indicate_to_one(&mut self.server, &TABLE, WEIGHT_MEASUREMENT, &measurement)
                .map_err(ScaleDeviceError::Gatt)?
        {
            self.in_flight = Some(conn);
            extend(actions, sent);
        }
        Ok(())
    }

    pub fn scale(&self) -> &Scale<Clock, Data, Delay, Archive> {
        &self.scale
    }

    pub fn scale_mut(&mut self) -> &mut Scale<Clock, Data, Delay, Archive> {
        &mut self.scale
    }

    pub fn server(&self) -> &Server {
        &self.server
    }
}

fn encode_feature<C, D, L, A>(scale: &Scale<C, D, L, A>) -> [u8; 4]
where
    C: OutputPin,
    D: InputPin,
    L: DelayNs,
    A: WeighingArchive,
{
    let mut out = [0u8; 4];
    // A feature built from a valid resolution always encodes; zeros would announce nothing.
    let _ = scale.feature().encode(&mut out);
    out
}
