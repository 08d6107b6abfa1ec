//! The reference blood-pressure cuff: Blood Pressure service (0x1810) plus Device Information and
//! Current Time.
//!
//! During a cycle the cuff pressure is notified as Intermediate Cuff Pressure (progress for the
//! user); the result is indicated as a Blood Pressure Measurement. A result taken while no gateway
//! listens waits, one deep, until a gateway subscribes and confirms it.

use embedded_hal::delay::DelayNs;
use embedded_hal::digital::{InputPin, OutputPin};
use relais_protocol::Characteristic as Encode;
use relais_protocol::blood_pressure::BloodPressureMeasurement;
use relais_protocol::uuid as sig;

use super::{
    DeviceActions, DeviceError, FIRST_HANDLE, ReadOnlyValue, extend, indicate_to_one, notify_all,
    reference_information,
};
use crate::cuff::{BloodPressureCuff, CuffEvent, ErrorOf};
use crate::gatt::{Characteristic, ConnId, Event, Properties, Server, Service, Table, Uuid};
use crate::gatt_table;
use crate::services::current_time;
use crate::services::device_information::{self, DeviceInformation};

const INFORMATION: DeviceInformation = reference_information("RS-CUFF");
const DIS: [Characteristic; 6] = INFORMATION.characteristics();
const MEASUREMENT: Uuid = Uuid::sig(sig::BLOOD_PRESSURE_MEASUREMENT);
const INTERMEDIATE: Uuid = Uuid::sig(sig::INTERMEDIATE_CUFF_PRESSURE);
const FEATURE: Uuid = Uuid::sig(sig::BLOOD_PRESSURE_FEATURE);

const BLOOD_PRESSURE: Service = Service::primary(
    Uuid::sig(sig::BLOOD_PRESSURE_SERVICE),
    &[
        Characteristic::new(MEASUREMENT, Properties::INDICATE),
        Characteristic::new(INTERMEDIATE, Properties::NOTIFY),
        Characteristic::new(FEATURE, Properties::READ),
    ],
);

/// The cuff's attribute table.
pub const TABLE: Table = gatt_table!(
    FIRST_HANDLE,
    &[
        device_information::service(&DIS),
        current_time::SERVICE,
        BLOOD_PRESSURE
    ]
);

/// Why the cuff device failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CuffDeviceError<ECuff> {
    /// The cycle failed or was aborted for safety (the cuff is vented).
    Cuff(ECuff),
    Gatt(DeviceError),
}

/// A blood-pressure cuff bound to the GATT server core.
#[derive(Debug)]
pub struct CuffDevice<Clock, Data, Delay, Pump, Valve> {
    cuff: BloodPressureCuff<Clock, Data, Delay, Pump, Valve>,
    server: Server,
    pending: Option<BloodPressureMeasurement>,
    /// The connection a result was indicated to, and that result, until it confirms.
    in_flight: Option<(ConnId, BloodPressureMeasurement)>,
}

type Error<C, D, P, V> = CuffDeviceError<ErrorOf<C, D, P, V>>;

impl<Clock, Data, Delay, Pump, Valve> CuffDevice<Clock, Data, Delay, Pump, Valve>
where
    Clock: OutputPin,
    Data: InputPin,
    Delay: DelayNs,
    Pump: OutputPin,
    Valve: OutputPin,
{
    pub fn new(cuff: BloodPressureCuff<Clock, Data, Delay, Pump, Valve>) -> Self {
        Self {
            cuff,
            server: Server::new(TABLE),
            pending: None,
            in_flight: None,
        }
    }

    /// Starts a measurement cycle (the user pressed the button).
    pub fn start(
        &mut self,
        now_ms: u64,
        user_id: Option<u8>,
    ) -> Result<(), Error<Clock, Data, Pump, Valve>> {
        self.cuff
            .start(now_ms, user_id)
            .map_err(CuffDeviceError::Cuff)
    }

    /// Feeds a BLE event; returns what the board must do.
    pub fn handle(
        &mut self,
        event: Event<'_>,
    ) -> Result<DeviceActions, Error<Clock, Data, Pump, Valve>> {
        match event {
            Event::IndicationConfirmed { conn } => {
                if let Some((_, sent)) = self.in_flight.filter(|(to, _)| *to == conn) {
                    self.in_flight = None;
                    if self.pending == Some(sent) {
                        self.pending = None;
                    }
                }
            }
            Event::Disconnected { conn } if self.in_flight.is_some_and(|(to, _)| to == conn) => {
                self.in_flight = None;
            }
            _ => {}
        }
        let mut feature = [0u8; 2];
        // The feature of a built cuff always encodes.
        let _ = self.cuff.feature().encode(&mut feature);
        let mut actions = DeviceActions::new();
        extend(
            &mut actions,
            self.server.handle(
                event,
                &mut ReadOnlyValue {
                    uuid: FEATURE,
                    bytes: &feature,
                },
            ),
        );
        self.send_pending(&mut actions)?;
        Ok(actions)
    }

    /// Runs the cycle (call it at the ADC's rate or faster) and the server's clock.
    pub fn poll(&mut self, now_ms: u64) -> Result<DeviceActions, Error<Clock, Data, Pump, Valve>> {
        let mut actions = self.handle(Event::Tick { now_ms })?;
        match self
            .cuff
            .poll(now_ms, self.server.now())
            .map_err(CuffDeviceError::Cuff)?
        {
            Some(CuffEvent::Intermediate(pressure)) => {
                let sent = notify_all(&mut self.server, INTERMEDIATE, &pressure)
                    .map_err(CuffDeviceError::Gatt)?;
                extend(&mut actions, sent);
            }
            Some(CuffEvent::Measurement(measurement)) => {
                // A newer result replaces one never delivered: the user sees the newest.
                self.pending = Some(measurement);
                self.send_pending(&mut actions)?;
            }
            None => {}
        }
        Ok(actions)
    }

    fn send_pending(
        &mut self,
        actions: &mut DeviceActions,
    ) -> Result<(), Error<Clock, Data, Pump, Valve>> {
        let (None, Some(measurement)) = (self.in_flight, self.pending) else {
            return Ok(());
        };
        if let Some((conn, sent)) =
            indicate_to_one(&mut self.server, &TABLE, MEASUREMENT, &measurement)
                .map_err(CuffDeviceError::Gatt)?
        {
            self.in_flight = Some((conn, measurement));
            extend(actions, sent);
        }
        Ok(())
    }

    /// The result not yet confirmed by a gateway, if any.
    pub fn pending(&self) -> Option<&BloodPressureMeasurement> {
        self.pending.as_ref()
    }

    pub fn cuff(&self) -> &BloodPressureCuff<Clock, Data, Delay, Pump, Valve> {
        &self.cuff
    }

    pub fn server(&self) -> &Server {
        &self.server
    }
}
