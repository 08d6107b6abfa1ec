//! The reference glucose meter: Glucose service (0x1808) with its Record Access Control Point,
//! plus Device Information and Current Time.
//!
//! The measurement, context and RACP characteristics require an encrypted, bonded link (the GATT
//! core answers 0x05 / 0x0F otherwise). A RACP write goes to the meter's procedure; the records
//! it streams are notified a few per call, as a BLE stack's transmit buffers allow, and the
//! procedure ends with the RACP indication the gateway confirms.

use embedded_storage::nor_flash::NorFlash;
use relais_protocol::Characteristic as Encode;
use relais_protocol::glucose::{GlucoseFeature, GlucoseMeasurement, GlucoseMeasurementContext};
use relais_protocol::uuid as sig;

use super::{DeviceActions, DeviceError, FIRST_HANDLE, extend, reference_information};
use crate::gatt::{
    Application, AttError, Characteristic, ConnId, Event, Handle, Properties, ReadRequest,
    Recipients, Server, Service, Table, Uuid, Value, WriteRequest,
};
use crate::gatt_table;
use crate::glucose_meter::{
    self as meter, GLUCOSE_MEASUREMENT, GLUCOSE_MEASUREMENT_CONTEXT, GlucoseMeter, Link,
    RECORD_ACCESS_CONTROL_POINT,
};
use crate::record_log::SequenceNumber;
use crate::services::current_time;
use crate::services::device_information::{self, DeviceInformation};

const INFORMATION: DeviceInformation = reference_information("RS-GLUCOSE");
const DIS: [Characteristic; 6] = INFORMATION.characteristics();
const FEATURE: Uuid = Uuid::sig(sig::GLUCOSE_FEATURE);
/// What the reference meter checks: low battery, sample size, strip insertion and type, result
/// high/low, temperature high/low, read interrupted, general fault, time fault.
const FEATURE_VALUE: GlucoseFeature = GlucoseFeature::from_bits(0x0FFD);

const GLUCOSE: Service = Service::primary(
    Uuid::sig(sig::GLUCOSE_SERVICE),
    &[
        Characteristic::new(GLUCOSE_MEASUREMENT, Properties::NOTIFY).requiring_encryption(),
        Characteristic::new(GLUCOSE_MEASUREMENT_CONTEXT, Properties::NOTIFY).requiring_encryption(),
        Characteristic::new(FEATURE, Properties::READ),
        Characteristic::new(
            RECORD_ACCESS_CONTROL_POINT,
            Properties::WRITE.and(Properties::INDICATE),
        )
        .as_control_point()
        .requiring_encryption(),
    ],
);

/// The meter's attribute table.
pub const TABLE: Table = gatt_table!(
    FIRST_HANDLE,
    &[
        device_information::service(&DIS),
        current_time::SERVICE,
        GLUCOSE
    ]
);

/// Notifications sent per call at most: the rest of a report follows on the next `poll`.
pub const NOTIFICATIONS_PER_CALL: usize = 4;

/// Serves the feature and hands RACP writes to the meter, keeping what the write triggers.
struct Values<'m, F> {
    meter: &'m mut GlucoseMeter<F>,
    link: Link,
    triggered: meter::Actions,
}

impl<F: NorFlash> Application for Values<'_, F> {
    fn read(&mut self, request: &ReadRequest) -> Result<Value, AttError> {
        if request.uuid != FEATURE {
            return Err(AttError::ReadNotPermitted);
        }
        let mut out = [0u8; 2];
        FEATURE_VALUE
            .encode(&mut out)
            .map_err(|_| AttError::UnlikelyError)?;
        Value::from_slice(&out).map_err(|_| AttError::UnlikelyError)
    }

    fn write(&mut self, request: &WriteRequest<'_>) -> Result<(), AttError> {
        if request.uuid != RECORD_ACCESS_CONTROL_POINT {
            return Err(AttError::WriteNotPermitted);
        }
        let mut answer = Ok(());
        for action in self.meter.racp_write(request.data, self.link) {
            match action {
                meter::Action::AcceptWrite => answer = Ok(()),
                meter::Action::RefuseWrite(error) => answer = Err(error),
                other => {
                    let _ = self.triggered.push(other);
                }
            }
        }
        answer
    }
}

/// Adds the meter's actions to the backlog. The meter has one send out at a time, so the backlog
/// never holds more than the two actions of one input.
fn queue(backlog: &mut meter::Actions, more: meter::Actions) {
    for action in more {
        let _ = backlog.push(action);
    }
}

/// A glucose meter bound to the GATT server core.
#[derive(Debug)]
pub struct GlucoseMeterDevice<F> {
    meter: GlucoseMeter<F>,
    server: Server,
    /// The connection running a RACP procedure.
    client: Option<ConnId>,
    /// What the procedure asked for and is not sent yet (flow control).
    backlog: meter::Actions,
}

impl<F: NorFlash> GlucoseMeterDevice<F> {
    pub fn new(meter: GlucoseMeter<F>) -> Self {
        Self {
            meter,
            server: Server::new(TABLE),
            client: None,
            backlog: meter::Actions::new(),
        }
    }

    /// What `conn` has enabled, as the meter needs to know it. Writes reach the meter only over
    /// an encrypted, bonded link: the GATT core refuses the others first.
    fn link(&self, conn: ConnId) -> Link {
        let on = |uuid: Uuid| {
            TABLE
                .value_handle(uuid)
                .and_then(|h: Handle| self.server.cccd(conn, h))
                .unwrap_or_default()
        };
        Link {
            bonded: true,
            measurement_notifications: on(GLUCOSE_MEASUREMENT).notifications,
            context_notifications: on(GLUCOSE_MEASUREMENT_CONTEXT).notifications,
            racp_indications: on(RECORD_ACCESS_CONTROL_POINT).indications,
        }
    }

    /// Feeds a BLE event; returns what the board must do.
    pub fn handle(&mut self, event: Event<'_>) -> Result<DeviceActions, DeviceError> {
        let mut actions = DeviceActions::new();
        let racp = TABLE.value_handle(RECORD_ACCESS_CONTROL_POINT);
        let link = match event {
            Event::Write { conn, handle, .. } if Some(handle) == racp => {
                self.client = Some(conn);
                self.link(conn)
            }
            _ => Link::default(),
        };
        match event {
            Event::IndicationConfirmed { conn } if self.client == Some(conn) => {
                let next = self.meter.indication_confirmed();
                queue(&mut self.backlog, next);
            }
            Event::Disconnected { conn } if self.client == Some(conn) => {
                self.meter.disconnected();
                self.backlog.clear();
                self.client = None;
            }
            _ => {}
        }
        let mut values = Values {
            meter: &mut self.meter,
            link,
            triggered: meter::Actions::new(),
        };
        extend(&mut actions, self.server.handle(event, &mut values));
        let triggered = values.triggered;
        queue(&mut self.backlog, triggered);
        self.send_backlog(&mut actions)?;
        Ok(actions)
    }

    /// Runs the procedure's timeout and flow control, and the server's clock. Call it every few
    /// milliseconds while a report runs, and at least every second otherwise.
    pub fn poll(&mut self, now_ms: u64) -> Result<DeviceActions, DeviceError> {
        if self.meter.tick(now_ms) {
            self.backlog.clear();
        }
        self.handle(Event::Tick { now_ms })
    }

    /// Stores a new measurement; notified at once to a subscribed, bonded gateway that is not
    /// in the middle of a procedure.
    pub fn record(
        &mut self,
        measurement: GlucoseMeasurement,
        context: Option<GlucoseMeasurementContext>,
    ) -> Result<(SequenceNumber, DeviceActions), meter::Error<F::Error>> {
        let subscriber = TABLE.value_handle(GLUCOSE_MEASUREMENT).and_then(|h| {
            self.server
                .connections()
                .find(|&conn| self.server.cccd(conn, h).is_some_and(|c| c.notifications))
        });
        let link = subscriber.map(|conn| self.link(conn));
        let (seq, live) = self.meter.record(measurement, context, link)?;
        let mut actions = DeviceActions::new();
        if let Some(conn) = subscriber {
            for action in live {
                if let meter::Action::Notify { uuid, value } = action
                    && let Ok(sent) = self.server.notify(Recipients::Only(conn), uuid, &value)
                {
                    extend(&mut actions, sent);
                }
            }
        }
        Ok((seq, actions))
    }

    /// Sends what the procedure asked for: notifications up to the per-call budget (each one
    /// sent lets the meter produce the next), and the final indication.
    fn send_backlog(&mut self, actions: &mut DeviceActions) -> Result<(), DeviceError> {
        let Some(conn) = self.client else {
            self.backlog.clear();
            return Ok(());
        };
        let mut sent = 0;
        while sent < NOTIFICATIONS_PER_CALL {
            let Some(action) = (!self.backlog.is_empty()).then(|| self.backlog.remove(0)) else {
                break;
            };
            match action {
                meter::Action::Notify { uuid, value } => {
                    let out = self
                        .server
                        .notify(Recipients::Only(conn), uuid, &value)
                        .map_err(DeviceError::Send)?;
                    extend(actions, out);
                    sent += 1;
                    let next = self.meter.notification_sent();
                    queue(&mut self.backlog, next);
                }
                meter::Action::Indicate { uuid, value } => {
                    let out = self
                        .server
                        .indicate(Recipients::Only(conn), uuid, &value)
                        .map_err(DeviceError::Send)?;
                    extend(actions, out);
                }
                meter::Action::AcceptWrite | meter::Action::RefuseWrite(_) => {}
            }
        }
        Ok(())
    }

    pub fn meter(&self) -> &GlucoseMeter<F> {
        &self.meter
    }

    pub fn server(&self) -> &Server {
        &self.server
    }
}
