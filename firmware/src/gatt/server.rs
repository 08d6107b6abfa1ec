//! The GATT server state machine: events in, actions out, no I/O.
//!
//! It answers reads and writes from the table, the built-in services and the device's
//! [`Application`]; keeps each connection's CCCDs, MTU and indication queue; keeps bonded
//! peers' CCCDs across connections; and turns the application's values into notifications and
//! indications for exactly the connections that asked for them.
//!
//! Flow control: one indication in flight per connection (ATT allows no more), released by the
//! client's confirmation; later ones wait in a queue of [`INDICATION_QUEUE_LEN`], and beyond
//! that [`Server::indicate`] refuses with [`SendError::QueueFull`], changing nothing. An
//! indication unconfirmed for [`ATT_TIMEOUT_MS`] closes the connection, as ATT requires.

use relais_protocol::time::{CurrentTime, DateTime};

use super::att::AttError;
use super::bonds::{BondRecord, Bonds};
use super::cccd::{Cccd, Subscriptions};
use super::event::{
    Action, Actions, BondId, ConnId, DEFAULT_ATT_MTU, DisconnectReason, Event, MAX_ATT_MTU,
    MAX_CONNECTIONS, Value, WriteKind, emit,
};
use super::table::{
    AttributeKind, Characteristic, Handle, Properties, Security, Table, ValueSource,
};
use super::uuid::Uuid;
use crate::services::current_time::{ClockError, DeviceClock};

/// Indications that may wait behind the one in flight, per connection.
pub const INDICATION_QUEUE_LEN: usize = 3;

/// ATT transaction timeout (Core Vol 3, Part F, 3.3.3): an indication unconfirmed this long
/// ends the connection.
pub const ATT_TIMEOUT_MS: u64 = 30_000;

/// Longest notification or indication payload the server ever sends (ATT_MTU - 3 at
/// [`MAX_ATT_MTU`]).
pub const MAX_NOTIFICATION_LEN: usize = MAX_ATT_MTU as usize - 3;

/// The device's side of the server: values it computes and writes it acts on, for the
/// characteristics it declared with [`ValueSource::Application`].
///
/// The core has already checked the handle, the properties, the link's security and (for
/// control points) the writer's CCCD. Work that sends data (a RACP report, a measurement)
/// happens after [`Server::handle`] returns, through [`Server::notify`] and
/// [`Server::indicate`]: the write's response then goes out before the data it triggered.
pub trait Application {
    /// The whole current value of a characteristic; the core cuts it for Read Blob and the
    /// MTU. An error is sent to the client as it is.
    fn read(&mut self, request: &ReadRequest) -> Result<Value, AttError>;

    /// A write to a characteristic. `Ok` means the write is accepted; an error goes back to
    /// the client (for a Write Request; a Write Command is dropped silently either way).
    fn write(&mut self, request: &WriteRequest<'_>) -> Result<(), AttError>;

    /// A client's CCCD changed, by its own write or restored from its bond on reconnection
    /// (e.g. to send stored measurements once indications are on). Nothing by default.
    fn subscription_changed(&mut self, change: &SubscriptionChange) {
        let _ = change;
    }
}

/// A read the application must answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReadRequest {
    /// Who reads.
    pub conn: ConnId,
    /// The value handle.
    pub handle: Handle,
    /// The characteristic type, so the application can match on it.
    pub uuid: Uuid,
}

/// A write the application must accept or refuse.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WriteRequest<'a> {
    /// Who writes.
    pub conn: ConnId,
    /// The value handle.
    pub handle: Handle,
    /// The characteristic type.
    pub uuid: Uuid,
    /// The bytes written.
    pub data: &'a [u8],
    /// Write Request or Write Command.
    pub kind: WriteKind,
}

/// A client's new configuration of one characteristic.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SubscriptionChange {
    /// Whose.
    pub conn: ConnId,
    /// The value handle of the characteristic.
    pub handle: Handle,
    /// The characteristic type.
    pub uuid: Uuid,
    /// What is now enabled.
    pub cccd: Cccd,
}

/// Which characteristic to send: by value handle, or by type (the first in the table).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CharacteristicRef {
    /// The value handle.
    Handle(Handle),
    /// The characteristic type.
    Uuid(Uuid),
}

impl From<Handle> for CharacteristicRef {
    fn from(handle: Handle) -> Self {
        Self::Handle(handle)
    }
}

impl From<Uuid> for CharacteristicRef {
    fn from(uuid: Uuid) -> Self {
        Self::Uuid(uuid)
    }
}

/// Who a notification or indication is for (among the connections subscribed to it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Recipients {
    /// Every subscribed connection (a new measurement).
    All,
    /// One connection (the answer to its own control-point write).
    Only(ConnId),
}

/// Why a notification or indication was refused. Nothing was sent or queued.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SendError {
    /// No characteristic value has this handle or type.
    UnknownCharacteristic(CharacteristicRef),
    /// The characteristic lacks the NOTIFY (or INDICATE) property.
    MissingProperty {
        handle: Handle,
        property: Properties,
    },
    /// The value is longer than the server ever sends ([`MAX_NOTIFICATION_LEN`]).
    TooLong { len: usize, max: usize },
    /// The value does not fit this subscribed connection's ATT_MTU - 3. Values are refused
    /// rather than cut (as ATT would): a cut health record decodes as another one or not at
    /// all. Split it (Body Composition's multiple-packet flag) or wait for a larger MTU.
    TooLongForMtu {
        conn: ConnId,
        len: usize,
        max: usize,
    },
    /// This subscribed connection already has an indication in flight and a full queue.
    QueueFull { conn: ConnId },
    /// [`Recipients::Only`] names a connection the server does not know.
    NotConnected { conn: ConnId },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum SendKind {
    Notification,
    Indication,
}

impl SendKind {
    const fn property(self) -> Properties {
        match self {
            Self::Notification => Properties::NOTIFY,
            Self::Indication => Properties::INDICATE,
        }
    }
}

/// An indication waiting for the one in flight to be confirmed.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Pending {
    handle: Handle,
    slot: u8,
    value: Value,
}

/// What the server knows about one connection.
#[derive(Debug, Clone)]
struct Connection {
    conn: ConnId,
    bond: Option<BondId>,
    encrypted: bool,
    mtu: u16,
    subscriptions: Subscriptions,
    /// Board time at which the indication in flight was handed to the binding.
    in_flight_since: Option<u64>,
    queue: heapless::Deque<Pending, INDICATION_QUEUE_LEN>,
    /// The ATT bearer timed out: nothing more may be sent.
    dead: bool,
}

impl Connection {
    fn new(conn: ConnId, bond: Option<BondId>, subscriptions: Subscriptions) -> Self {
        Self {
            conn,
            bond,
            encrypted: false,
            mtu: DEFAULT_ATT_MTU,
            subscriptions,
            in_flight_since: None,
            queue: heapless::Deque::new(),
            dead: false,
        }
    }

    /// Whether the link allows access to `characteristic`, and if not, the error that tells
    /// the client what to do (pair, or encrypt with its bond).
    fn check_security(&self, characteristic: &Characteristic) -> Result<(), AttError> {
        match characteristic.security {
            Security::Open => Ok(()),
            Security::Encrypted if self.encrypted => Ok(()),
            Security::Encrypted if self.bond.is_some() => Err(AttError::InsufficientEncryption),
            Security::Encrypted => Err(AttError::InsufficientAuthentication),
        }
    }

    fn wants(&self, kind: SendKind, slot: u8, characteristic: &Characteristic) -> bool {
        let cccd = self.subscriptions.get(slot);
        let enabled = match kind {
            SendKind::Notification => cccd.notifications,
            SendKind::Indication => cccd.indications,
        };
        enabled && !self.dead && self.check_security(characteristic).is_ok()
    }

    fn max_payload(&self) -> usize {
        usize::from(self.mtu).saturating_sub(3)
    }
}

/// The GATT server core for `CONNECTIONS` simultaneous connections (at most
/// [`MAX_CONNECTIONS`]) and `BONDS` remembered bonds.
#[derive(Debug, Clone)]
pub struct Server<const CONNECTIONS: usize = 2, const BONDS: usize = 4> {
    table: Table,
    clock: DeviceClock,
    connections: heapless::Vec<Connection, CONNECTIONS>,
    bonds: Bonds<BONDS>,
}

impl<const CONNECTIONS: usize, const BONDS: usize> Server<CONNECTIONS, BONDS> {
    /// A server with no connection, no bond and an unset clock. `const`, so it can live in a
    /// `static`.
    pub const fn new(table: Table) -> Self {
        const {
            assert!(
                CONNECTIONS >= 1 && CONNECTIONS <= MAX_CONNECTIONS,
                "CONNECTIONS must be 1..=MAX_CONNECTIONS"
            );
        }
        Self {
            table,
            clock: DeviceClock::new(),
            connections: heapless::Vec::new(),
            bonds: Bonds::new(),
        }
    }

    /// The attribute table.
    pub const fn table(&self) -> &Table {
        &self.table
    }

    /// The device clock (set over CTS).
    pub const fn clock(&self) -> &DeviceClock {
        &self.clock
    }

    /// The local date and time to stamp a measurement with; `None` while the clock is unset.
    pub fn now(&self) -> Option<DateTime> {
        self.clock.now()
    }

    /// Processes one event; the binding carries out the returned actions in order.
    /// `app` is a trait object: the three devices share one copy of this code in the image
    /// instead of one each (4 KiB of flash).
    pub fn handle(&mut self, event: Event<'_>, app: &mut dyn Application) -> Actions {
        let mut actions = Actions::new();
        match event {
            Event::Connected { conn, bond } => self.connected(conn, bond, app, &mut actions),
            Event::Disconnected { conn } => self.disconnected(conn),
            Event::Mtu { conn, mtu } => {
                if let Some(c) = self.connection_mut(conn) {
                    c.mtu = mtu.clamp(DEFAULT_ATT_MTU, MAX_ATT_MTU);
                }
            }
            Event::Read {
                conn,
                handle,
                offset,
            } => {
                let result = self.read(conn, handle, offset, app);
                emit(&mut actions, Action::Respond { conn, result });
            }
            Event::Write {
                conn,
                handle,
                data,
                kind,
            } => {
                let result = self.write(conn, handle, data, kind, app);
                if kind == WriteKind::Request {
                    let result = result.map(|_| Value::new());
                    emit(&mut actions, Action::Respond { conn, result });
                }
                if let Ok(Some(changed)) = result {
                    self.broadcast_builtin(changed, Some(conn), &mut actions);
                }
            }
            Event::IndicationConfirmed { conn } => self.confirmed(conn, &mut actions),
            Event::Bonded { conn, bond } => self.bonded(conn, bond, app),
            Event::Tick { now_ms } => self.tick(now_ms, &mut actions),
        }
        actions
    }

    /// Notifies `value` to the `to` connections that enabled notifications on the
    /// characteristic. Unsubscribed connections get nothing (an empty action list is success).
    pub fn notify(
        &mut self,
        to: Recipients,
        characteristic: impl Into<CharacteristicRef>,
        value: &[u8],
    ) -> Result<Actions, SendError> {
        self.send(SendKind::Notification, to, characteristic.into(), value)
    }

    /// Indicates `value` to the `to` connections that enabled indications: at once where no
    /// indication is in flight, queued behind it elsewhere. All or nothing: if one subscribed
    /// connection cannot take it, no connection gets it.
    pub fn indicate(
        &mut self,
        to: Recipients,
        characteristic: impl Into<CharacteristicRef>,
        value: &[u8],
    ) -> Result<Actions, SendError> {
        self.send(SendKind::Indication, to, characteristic.into(), value)
    }

    /// Sets the device clock (e.g. from the board's RTC) and notifies Current Time subscribers.
    pub fn set_time(&mut self, time: &CurrentTime) -> Result<Actions, ClockError> {
        self.clock.set(time)?;
        let mut actions = Actions::new();
        if let Some(handle) = self
            .table
            .value_handle(Uuid::sig(relais_protocol::uuid::CURRENT_TIME))
        {
            self.broadcast_builtin(handle, None, &mut actions);
        }
        Ok(actions)
    }

    /// The connections the server knows, in connection order.
    pub fn connections(&self) -> impl Iterator<Item = ConnId> + '_ {
        self.connections.iter().map(|c| c.conn)
    }

    /// `conn`'s configuration of the characteristic whose value handle is `handle`.
    pub fn cccd(&self, conn: ConnId, handle: Handle) -> Option<Cccd> {
        let connection = self.connection(conn)?;
        match self.table.attribute(handle)?.kind {
            AttributeKind::Value {
                slot: Some(slot), ..
            } => Some(connection.subscriptions.get(slot)),
            _ => None,
        }
    }

    /// The ATT_MTU in force on `conn`.
    pub fn mtu(&self, conn: ConnId) -> Option<u16> {
        self.connection(conn).map(|c| c.mtu)
    }

    /// The longest value `conn` can take in one notification or indication (ATT_MTU - 3).
    pub fn max_notification_len(&self, conn: ConnId) -> Option<usize> {
        self.connection(conn).map(Connection::max_payload)
    }

    /// Indications not yet confirmed by `conn`: the one in flight plus those queued.
    pub fn indications_pending(&self, conn: ConnId) -> Option<usize> {
        self.connection(conn)
            .map(|c| usize::from(c.in_flight_since.is_some()) + c.queue.len())
    }

    /// Bonded peers' CCCDs, stalest first: what a board persists.
    pub fn bond_records(&self) -> &[BondRecord] {
        self.bonds.records()
    }

    /// Changes whenever the bond records change: persist them when it differs from the last
    /// value persisted.
    pub const fn bonds_generation(&self) -> u32 {
        self.bonds.generation()
    }

    /// Loads persisted bond records (at boot, before any connection). Beyond `BONDS` records,
    /// the earliest are dropped.
    pub fn restore_bonds(&mut self, records: &[BondRecord]) {
        for record in records {
            self.bonds.store(record.bond, record.subscriptions);
        }
    }

    /// Forgets a bond's CCCDs (the stack deleted the bond).
    pub fn forget_bond(&mut self, bond: BondId) {
        self.bonds.forget(bond);
    }

    fn connection(&self, conn: ConnId) -> Option<&Connection> {
        self.connections.iter().find(|c| c.conn == conn)
    }

    fn connection_mut(&mut self, conn: ConnId) -> Option<&mut Connection> {
        self.connections.iter_mut().find(|c| c.conn == conn)
    }

    fn connected(
        &mut self,
        conn: ConnId,
        bond: Option<BondId>,
        app: &mut dyn Application,
        actions: &mut Actions,
    ) {
        // A stale entry under the same handle means a missed disconnection: start afresh.
        self.disconnected(conn);
        let subscriptions = bond
            .and_then(|b| self.bonds.get(b))
            .unwrap_or(Subscriptions::NONE);
        if self
            .connections
            .push(Connection::new(conn, bond, subscriptions))
            .is_err()
        {
            emit(
                actions,
                Action::Disconnect {
                    conn,
                    reason: DisconnectReason::TooManyConnections,
                },
            );
            return;
        }
        self.report_subscriptions(conn, subscriptions, app);
    }

    fn disconnected(&mut self, conn: ConnId) {
        let Some(index) = self.connections.iter().position(|c| c.conn == conn) else {
            return;
        };
        let connection = self.connections.swap_remove(index);
        if let Some(bond) = connection.bond {
            self.bonds.store(bond, connection.subscriptions);
        }
    }

    fn bonded(&mut self, conn: ConnId, bond: BondId, app: &mut dyn Application) {
        let stored = self.bonds.get(bond);
        let Some(connection) = self.connections.iter_mut().find(|c| c.conn == conn) else {
            return;
        };
        connection.encrypted = true;
        if connection.bond == Some(bond) {
            return; // Recognised at connection: its CCCDs are already back.
        }
        connection.bond = Some(bond);
        match stored {
            // A bonded peer the stack identified only now: its stored CCCDs come back, unless it
            // already configured some on this connection (its latest word wins).
            Some(subscriptions) if !connection.subscriptions.any() => {
                connection.subscriptions = subscriptions;
                self.report_subscriptions(conn, subscriptions, app);
            }
            _ => {
                let current = connection.subscriptions;
                self.bonds.store(bond, current);
            }
        }
    }

    /// Tells the application about every CCCD that is on, after a restore.
    fn report_subscriptions(
        &self,
        conn: ConnId,
        subscriptions: Subscriptions,
        app: &mut dyn Application,
    ) {
        if !subscriptions.any() {
            return;
        }
        for attribute in self.table.attributes() {
            if let AttributeKind::Value {
                characteristic,
                slot: Some(slot),
            } = attribute.kind
            {
                let cccd = subscriptions.get(slot);
                if cccd.is_on() {
                    app.subscription_changed(&SubscriptionChange {
                        conn,
                        handle: attribute.handle,
                        uuid: characteristic.uuid,
                        cccd,
                    });
                }
            }
        }
    }

    fn read(
        &self,
        conn: ConnId,
        handle: Handle,
        offset: u16,
        app: &mut dyn Application,
    ) -> Result<Value, AttError> {
        // Every request comes on a connection the binding announced; anything else is a
        // binding bug the client cannot fix.
        let connection = self.connection(conn).ok_or(AttError::UnlikelyError)?;
        let attribute = self
            .table
            .attribute(handle)
            .ok_or(AttError::InvalidHandle)?;
        let max = usize::from(connection.mtu).saturating_sub(1);
        match attribute.kind {
            AttributeKind::PrimaryService(_) | AttributeKind::CharacteristicDeclaration { .. } => {
                let value = attribute
                    .declaration_value()
                    .ok_or(AttError::UnlikelyError)?;
                window(&value, offset, max)
            }
            AttributeKind::Cccd { slot, .. } => window(
                &connection.subscriptions.get(slot).to_le_bytes(),
                offset,
                max,
            ),
            AttributeKind::Value { characteristic, .. } => {
                if !characteristic.properties.contains(Properties::READ) {
                    return Err(AttError::ReadNotPermitted);
                }
                connection.check_security(characteristic)?;
                match characteristic.value {
                    ValueSource::Static(bytes) => window(bytes, offset, max),
                    ValueSource::BuiltIn(built_in) => {
                        window(&built_in.read(&self.clock)?, offset, max)
                    }
                    ValueSource::Application => {
                        let value = app.read(&ReadRequest {
                            conn,
                            handle,
                            uuid: characteristic.uuid,
                        })?;
                        window(&value, offset, max)
                    }
                }
            }
        }
    }

    /// Applies a write. `Ok(Some(handle))` when a built-in value changed and its other
    /// subscribers must hear of it.
    fn write(
        &mut self,
        conn: ConnId,
        handle: Handle,
        data: &[u8],
        kind: WriteKind,
        app: &mut dyn Application,
    ) -> Result<Option<Handle>, AttError> {
        let attribute = self
            .table
            .attribute(handle)
            .ok_or(AttError::InvalidHandle)?;
        let connection = self
            .connections
            .iter_mut()
            .find(|c| c.conn == conn)
            .ok_or(AttError::UnlikelyError)?;
        match attribute.kind {
            AttributeKind::PrimaryService(_) | AttributeKind::CharacteristicDeclaration { .. } => {
                Err(AttError::WriteNotPermitted)
            }
            AttributeKind::Cccd {
                characteristic,
                value_handle,
                slot,
            } => {
                connection.check_security(characteristic)?;
                let cccd = Cccd::parse(data, characteristic.properties)?;
                connection.subscriptions.set(slot, cccd);
                if !cccd.indications {
                    connection.queue.retain(|p| p.slot != slot);
                }
                if let Some(bond) = connection.bond {
                    // Saved at once, so a reset before disconnection loses nothing.
                    let current = connection.subscriptions;
                    self.bonds.store(bond, current);
                }
                app.subscription_changed(&SubscriptionChange {
                    conn,
                    handle: value_handle,
                    uuid: characteristic.uuid,
                    cccd,
                });
                Ok(None)
            }
            AttributeKind::Value {
                characteristic,
                slot,
            } => {
                let needed = match kind {
                    WriteKind::Request => Properties::WRITE,
                    WriteKind::Command => Properties::WRITE_WITHOUT_RESPONSE,
                };
                if !characteristic.properties.contains(needed) {
                    return Err(AttError::WriteNotPermitted);
                }
                connection.check_security(characteristic)?;
                if characteristic.control_point {
                    let indications_on =
                        slot.is_some_and(|s| connection.subscriptions.get(s).indications);
                    if !indications_on {
                        return Err(AttError::CccdImproperlyConfigured);
                    }
                }
                match characteristic.value {
                    ValueSource::Static(_) => Err(AttError::WriteNotPermitted),
                    ValueSource::BuiltIn(built_in) => {
                        built_in.write(&mut self.clock, data)?;
                        Ok(Some(handle))
                    }
                    ValueSource::Application => {
                        app.write(&WriteRequest {
                            conn,
                            handle,
                            uuid: characteristic.uuid,
                            data,
                            kind,
                        })?;
                        Ok(None)
                    }
                }
            }
        }
    }

    /// Notifies the new value of a built-in characteristic (Current Time) to its subscribers,
    /// except the connection that changed it (its write response says so).
    fn broadcast_builtin(&mut self, handle: Handle, except: Option<ConnId>, actions: &mut Actions) {
        let Some(attribute) = self.table.attribute(handle) else {
            return;
        };
        let AttributeKind::Value {
            characteristic,
            slot: Some(slot),
        } = attribute.kind
        else {
            return;
        };
        let ValueSource::BuiltIn(built_in) = characteristic.value else {
            return;
        };
        let Ok(value) = built_in.read(&self.clock) else {
            return;
        };
        for connection in &self.connections {
            if Some(connection.conn) != except
                && connection.wants(SendKind::Notification, slot, characteristic)
                && value.len() <= connection.max_payload()
            {
                emit(
                    actions,
                    Action::Notify {
                        conn: connection.conn,
                        handle,
                        value: value.clone(),
                    },
                );
            }
        }
    }

    fn send(
        &mut self,
        kind: SendKind,
        to: Recipients,
        characteristic_ref: CharacteristicRef,
        bytes: &[u8],
    ) -> Result<Actions, SendError> {
        let handle = match characteristic_ref {
            CharacteristicRef::Handle(handle) => handle,
            CharacteristicRef::Uuid(uuid) => self
                .table
                .value_handle(uuid)
                .ok_or(SendError::UnknownCharacteristic(characteristic_ref))?,
        };
        let Some(AttributeKind::Value {
            characteristic,
            slot,
        }) = self.table.attribute(handle).map(|a| a.kind)
        else {
            return Err(SendError::UnknownCharacteristic(characteristic_ref));
        };
        let property = kind.property();
        let (true, Some(slot)) = (characteristic.properties.contains(property), slot) else {
            return Err(SendError::MissingProperty { handle, property });
        };
        let too_long = SendError::TooLong {
            len: bytes.len(),
            max: MAX_NOTIFICATION_LEN,
        };
        if bytes.len() > MAX_NOTIFICATION_LEN {
            return Err(too_long);
        }
        let value = Value::from_slice(bytes).map_err(|_| too_long)?;
        if let Recipients::Only(conn) = to
            && self.connection(conn).is_none()
        {
            return Err(SendError::NotConnected { conn });
        }
        let is_recipient = |c: &Connection| match to {
            Recipients::All => true,
            Recipients::Only(conn) => c.conn == conn,
        };

        // First every check, so a refusal leaves every connection as it was.
        for connection in &self.connections {
            if !is_recipient(connection) || !connection.wants(kind, slot, characteristic) {
                continue;
            }
            let max = connection.max_payload();
            if value.len() > max {
                return Err(SendError::TooLongForMtu {
                    conn: connection.conn,
                    len: value.len(),
                    max,
                });
            }
            if kind == SendKind::Indication
                && connection.in_flight_since.is_some()
                && connection.queue.is_full()
            {
                return Err(SendError::QueueFull {
                    conn: connection.conn,
                });
            }
        }

        let now = self.clock.uptime_ms();
        let mut actions = Actions::new();
        for connection in &mut self.connections {
            if !is_recipient(connection) || !connection.wants(kind, slot, characteristic) {
                continue;
            }
            let conn = connection.conn;
            match kind {
                SendKind::Notification => emit(
                    &mut actions,
                    Action::Notify {
                        conn,
                        handle,
                        value: value.clone(),
                    },
                ),
                SendKind::Indication if connection.in_flight_since.is_none() => {
                    connection.in_flight_since = Some(now);
                    emit(
                        &mut actions,
                        Action::Indicate {
                            conn,
                            handle,
                            value: value.clone(),
                        },
                    );
                }
                SendKind::Indication => {
                    // Checked above: the queue has room.
                    let _ = connection.queue.push_back(Pending {
                        handle,
                        slot,
                        value: value.clone(),
                    });
                }
            }
        }
        Ok(actions)
    }

    fn confirmed(&mut self, conn: ConnId, actions: &mut Actions) {
        let now = self.clock.uptime_ms();
        let Some(connection) = self.connection_mut(conn) else {
            return;
        };
        if connection.in_flight_since.take().is_none() {
            return; // A confirmation for nothing: ignore it.
        }
        // The next queued indication whose CCCD is still on goes out.
        while let Some(pending) = connection.queue.pop_front() {
            if connection.subscriptions.get(pending.slot).indications && !connection.dead {
                connection.in_flight_since = Some(now);
                emit(
                    actions,
                    Action::Indicate {
                        conn,
                        handle: pending.handle,
                        value: pending.value,
                    },
                );
                break;
            }
        }
    }

    fn tick(&mut self, now_ms: u64, actions: &mut Actions) {
        self.clock.tick(now_ms);
        let now = self.clock.uptime_ms();
        for connection in &mut self.connections {
            let Some(since) = connection.in_flight_since else {
                continue;
            };
            if !connection.dead && now.saturating_sub(since) >= ATT_TIMEOUT_MS {
                connection.dead = true;
                connection.queue.clear();
                emit(
                    actions,
                    Action::Disconnect {
                        conn: connection.conn,
                        reason: DisconnectReason::IndicationTimeout,
                    },
                );
            }
        }
    }
}

/// The part of `value` a Read (Blob) Response carries: from `offset`, at most `max` bytes.
fn window(value: &[u8], offset: u16, max: usize) -> Result<Value, AttError> {
    let rest = value
        .get(usize::from(offset)..)
        .ok_or(AttError::InvalidOffset)?;
    let shown = rest.get(..max.min(rest.len())).unwrap_or(rest);
    Value::from_slice(shown).map_err(|_| AttError::UnlikelyError)
}
