//! The simulator's state and the binding between D-Bus calls and the firmware: BLE events in,
//! actions out, carried out as method replies and `PropertiesChanged` signals.

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock, PoisonError};
use std::time::{Duration, Instant};

use relais_firmware::gatt::{
    Action, AttError, AttributeKind, BondId, ConnId, Event, Handle, MAX_ATT_MTU, Properties, Uuid,
    WriteKind,
};
use zbus::Connection;
use zbus::zvariant::Value;

use crate::bluez::{Device1, GattCharacteristic1, GattDescriptor1, GattService1, WorldRef};
use crate::device::{VirtualDevice, sig_uuid};
use crate::error::{BluezError, SimError};
use crate::link::{Budget, EMISSION_BACKLOG, Emission, LinkTiming, MAX_POLLS_PER_TICK};

/// Where the one emulated adapter lives.
pub const ADAPTER_PATH: &str = "/org/bluez/hci0";
/// The gateway's connection, as the firmware names it: the emulator is one central.
const CONN: ConnId = ConnId(1);
/// The bond the adapter holds with a paired device.
const BOND: BondId = BondId(1);
/// A read chunk this long may continue (Read Blob), as BlueZ's long reads do.
const FULL_READ_CHUNK: usize = MAX_ATT_MTU as usize - 1;
/// How often a discovering adapter reports the advertisements it keeps hearing.
const ADVERT_INTERVAL_MS: u64 = 500;
/// How often the firmware's main loop runs.
pub(crate) const TICK: Duration = Duration::from_millis(5);

/// A value shared between an exported object's property getters and the simulator; getters
/// only take this short lock, never the state's, so exporting objects cannot deadlock.
pub(crate) type Shared<T> = Arc<Mutex<T>>;

/// Locks a shared value; a poisoned lock still holds usable plain data.
pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Adapter1 state.
#[derive(Debug, Clone, Default)]
pub(crate) struct AdapterProps {
    pub powered: bool,
    pub discovering: bool,
    /// Fault: the adapter is off and stays off (as if rfkill-blocked): `Powered` cannot be set,
    /// discovery and connections fail with `NotReady`.
    pub blocked: bool,
}

/// Device1 state that changes.
#[derive(Debug, Clone, Default)]
pub(crate) struct DeviceProps {
    pub paired: bool,
    pub trusted: bool,
    pub connected: bool,
    pub services_resolved: bool,
}

/// GattCharacteristic1 state that changes.
#[derive(Debug, Clone, Default)]
pub(crate) struct CharProps {
    pub value: Vec<u8>,
    pub notifying: bool,
}

struct CharSlot {
    path: String,
    /// The UUID, 128-bit string and 16-bit SIG form (0 for a vendor UUID).
    uuid: String,
    short: u16,
    value_handle: Handle,
    properties: Properties,
    props: Shared<CharProps>,
    /// Unique bus names that called StartNotify.
    sessions: HashSet<String>,
}

struct Slot {
    path: String,
    device: Box<dyn VirtualDevice>,
    props: Shared<DeviceProps>,
    exported: bool,
    gatt_exported: bool,
    chars: Vec<CharSlot>,
    faults: SlotFaults,
    /// What the link can still carry in this tick.
    budget: Budget,
}

/// The faults armed on one device, characteristics named by their value handles.
#[derive(Debug, Default)]
struct SlotFaults {
    /// The next read, write or StartNotify on the characteristic fails with this ATT error.
    fail_next: HashMap<Handle, AttError>,
    /// So many of the next notifications/indications of the characteristic are lost.
    lose: HashMap<Handle, u32>,
    /// Notifications/indications of the characteristic are emitted this late.
    delay: HashMap<Handle, Duration>,
    /// The link drops once this many more notifications/indications have been emitted.
    drop_after: Option<u32>,
}

/// A notification or indication held back by a delay fault.
#[derive(Debug)]
struct Delayed {
    due_ms: u64,
    index: usize,
    handle: Handle,
    value: Vec<u8>,
    indication: bool,
}

/// A fault the control handle arms on one device.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum CharFault {
    /// Fail the next operation with this ATT error.
    FailNext(AttError),
    /// Lose the next `n` notifications/indications.
    Lose(u32),
    /// Delay every notification/indication (zero: no delay).
    Delay(Duration),
}

/// Everything the D-Bus objects share.
pub(crate) struct State {
    devices: Vec<Slot>,
    filter: Vec<String>,
    /// Registered Agent1 objects: (sender, path).
    pub agents: Vec<(String, String)>,
    pub default_agent: Option<(String, String)>,
    /// When advertisements were last reported (simulator milliseconds).
    last_advert_ms: u64,
    /// Notifications and indications held back by delay faults.
    delayed: Vec<Delayed>,
}

/// The simulator's world: state, adapter properties, the connection, the clock.
pub(crate) struct World {
    pub state: tokio::sync::Mutex<State>,
    pub adapter: Shared<AdapterProps>,
    pub conn: OnceLock<Connection>,
    /// The pace of every link.
    pub link: Shared<LinkTiming>,
    /// Every notification and indication emitted, for subscribers (none: nothing is kept).
    pub emissions: tokio::sync::broadcast::Sender<Emission>,
    start: Instant,
}

impl std::fmt::Debug for World {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("World").finish_non_exhaustive()
    }
}

/// Emits `PropertiesChanged(interface, changed, [])` on `path`.
pub(crate) async fn emit_changed(
    conn: &Connection,
    path: &str,
    interface: &str,
    changed: HashMap<&str, Value<'_>>,
) -> Result<(), zbus::Error> {
    conn.emit_signal(
        None::<zbus::names::BusName<'_>>,
        path,
        "org.freedesktop.DBus.Properties",
        "PropertiesChanged",
        &(interface, changed, Vec::<&str>::new()),
    )
    .await
}

/// The 128-bit string of a firmware UUID.
pub(crate) fn uuid_string(uuid: Uuid) -> String {
    match uuid {
        Uuid::Sig(short) => sig_uuid(short),
        Uuid::Vendor(bytes) => {
            let v = u128::from_le_bytes(bytes);
            format!(
                "{:08x}-{:04x}-{:04x}-{:04x}-{:012x}",
                v >> 96,
                (v >> 80) & 0xffff,
                (v >> 64) & 0xffff,
                (v >> 48) & 0xffff,
                v & 0xffff_ffff_ffff
            )
        }
    }
}

/// BlueZ's Flags strings for characteristic properties.
fn flags(properties: Properties) -> Vec<String> {
    [
        (Properties::READ, "read"),
        (Properties::WRITE_WITHOUT_RESPONSE, "write-without-response"),
        (Properties::WRITE, "write"),
        (Properties::NOTIFY, "notify"),
        (Properties::INDICATE, "indicate"),
    ]
    .iter()
    .filter(|(p, _)| properties.contains(*p))
    .map(|(_, name)| (*name).to_owned())
    .collect()
}

fn not_connected() -> BluezError {
    BluezError::Failed("Not connected".into())
}

impl World {
    pub(crate) fn new(devices: Vec<Box<dyn VirtualDevice>>) -> Self {
        let devices = devices.into_iter().map(slot).collect();
        Self {
            state: tokio::sync::Mutex::new(State {
                devices,
                filter: Vec::new(),
                agents: Vec::new(),
                default_agent: None,
                last_advert_ms: 0,
                delayed: Vec::new(),
            }),
            adapter: Arc::default(),
            conn: OnceLock::new(),
            link: Arc::default(),
            emissions: tokio::sync::broadcast::Sender::new(EMISSION_BACKLOG),
            start: Instant::now(),
        }
    }

    pub(crate) fn conn(&self) -> Result<&Connection, BluezError> {
        self.conn
            .get()
            .ok_or_else(|| BluezError::Failed("Not ready".into()))
    }

    /// Milliseconds since the simulator started (the firmware's monotonic clock).
    pub(crate) fn now_ms(&self) -> u64 {
        u64::try_from(self.start.elapsed().as_millis()).unwrap_or(u64::MAX)
    }

    /// Microseconds since the simulator started (the links' clock).
    pub(crate) fn now_us(&self) -> u64 {
        u64::try_from(self.start.elapsed().as_micros()).unwrap_or(u64::MAX)
    }
}

fn slot(device: Box<dyn VirtualDevice>) -> Slot {
    let ad = device.advertisement();
    let path = format!("{ADAPTER_PATH}/dev_{}", ad.address.replace(':', "_"));
    let props = DeviceProps {
        paired: device.initially_paired(),
        trusted: device.initially_paired(),
        ..DeviceProps::default()
    };
    Slot {
        path,
        device,
        props: Arc::new(Mutex::new(props)),
        exported: false,
        gatt_exported: false,
        chars: Vec::new(),
        faults: SlotFaults::default(),
        budget: Budget::default(),
    }
}

/// BlueZ's answer while the adapter is off.
pub(crate) fn not_ready() -> BluezError {
    BluezError::NotReady("Resource Not Ready".into())
}

impl State {
    /// Adds a device; it is exported at the next discovery (or now, if discovering).
    pub(crate) async fn add(
        &mut self,
        world: &Arc<World>,
        device: Box<dyn VirtualDevice>,
        discovering: bool,
    ) -> Result<(), SimError> {
        self.devices.push(slot(device));
        if discovering {
            self.export_discovered(world).await?;
        }
        Ok(())
    }

    pub(crate) fn set_filter(&mut self, uuids: Vec<String>) {
        self.filter = uuids.into_iter().map(|u| u.to_lowercase()).collect();
    }

    /// Exports Device1 for every device the current filter lets through ("advertisements seen").
    pub(crate) async fn export_discovered(
        &mut self,
        world: &Arc<World>,
    ) -> Result<(), zbus::Error> {
        let Some(conn) = world.conn.get() else {
            return Ok(());
        };
        for (index, slot) in self.devices.iter_mut().enumerate() {
            let ad = slot.device.advertisement();
            let wanted =
                self.filter.is_empty() || ad.service_uuids.iter().any(|u| self.filter.contains(u));
            if slot.exported || !wanted {
                continue;
            }
            let object = Device1 {
                world: WorldRef::new(world),
                index,
                advertisement: ad.clone(),
                props: Arc::clone(&slot.props),
            };
            conn.object_server().at(slot.path.as_str(), object).await?;
            slot.exported = true;
        }
        Ok(())
    }

    /// Forgets a device object (RemoveDevice): unexported until advertised again.
    pub(crate) async fn remove(&mut self, world: &World, path: &str) -> Result<(), BluezError> {
        let conn = world.conn()?;
        let index = self
            .devices
            .iter()
            .position(|s| s.path == path && s.exported)
            .ok_or_else(|| BluezError::DoesNotExist("Does Not Exist".into()))?;
        if self.connected(index) {
            self.link_lost(world, index).await?;
        }
        if let Some(slot) = self.devices.get_mut(index) {
            conn.object_server()
                .remove::<Device1, _>(slot.path.as_str())
                .await?;
            slot.exported = false;
        }
        Ok(())
    }

    fn slot(&mut self, index: usize) -> Result<&mut Slot, BluezError> {
        self.devices
            .get_mut(index)
            .ok_or_else(|| BluezError::DoesNotExist("Does Not Exist".into()))
    }

    fn connected(&self, index: usize) -> bool {
        self.devices
            .get(index)
            .is_some_and(|s| lock(&s.props).connected)
    }

    fn feed(&mut self, index: usize, event: Event<'_>) -> Result<Vec<Action>, BluezError> {
        Ok(self.slot(index)?.device.handle(event)?)
    }

    /// Device1.Connect: the link comes up, the GATT objects appear, services are resolved.
    pub(crate) async fn connect(
        &mut self,
        world: &Arc<World>,
        index: usize,
    ) -> Result<(), BluezError> {
        let conn = world.conn()?;
        if lock(&world.adapter).blocked {
            return Err(not_ready());
        }
        if !self.slot(index)?.device.connectable() {
            return Err(BluezError::Failed("le-connection-abort-by-local".into()));
        }
        if self.connected(index) {
            return Ok(());
        }
        let paired = lock(&self.slot(index)?.props).paired;
        let bond = paired.then_some(BOND);
        let mut actions = self.feed(index, Event::Connected { conn: CONN, bond })?;
        // bluetoothd negotiates the largest MTU; a bonded peer re-encrypts at once.
        actions.extend(self.feed(
            index,
            Event::Mtu {
                conn: CONN,
                mtu: MAX_ATT_MTU,
            },
        )?);
        if paired {
            actions.extend(self.feed(
                index,
                Event::Bonded {
                    conn: CONN,
                    bond: BOND,
                },
            )?);
        }
        let timing = *lock(&world.link);
        let path = {
            let slot = self.slot(index)?;
            lock(&slot.props).connected = true;
            slot.budget = Budget::new(timing, world.now_us());
            slot.path.clone()
        };
        emit_changed(
            conn,
            &path,
            "org.bluez.Device1",
            HashMap::from([("Connected", Value::from(true))]),
        )
        .await?;
        self.export_gatt(world, index).await?;
        actions.extend(self.resume_notify_sessions(world, index).await?);
        lock(&self.slot(index)?.props).services_resolved = true;
        emit_changed(
            conn,
            &path,
            "org.bluez.Device1",
            HashMap::from([("ServicesResolved", Value::from(true))]),
        )
        .await?;
        self.dispatch(world, index, actions).await?;
        Ok(())
    }

    /// Registers again, as bluetoothd does at connection (`btd_gatt_client_connected`), the
    /// notify sessions kept from earlier connections: each characteristic's CCCD is written and
    /// it is Notifying before anything the device sends on this link is carried out, so a bonded
    /// device that indicates at once is heard. Sessions of clients gone from the bus were
    /// dropped by bluetoothd when they left; a CCCD write the device refuses ends the sessions.
    /// Returns what the device answered besides the writes' responses.
    async fn resume_notify_sessions(
        &mut self,
        world: &World,
        index: usize,
    ) -> Result<Vec<Action>, BluezError> {
        let conn = world.conn()?;
        let bus = zbus::fdo::DBusProxy::new(conn).await?;
        let owners: HashSet<String> = self
            .slot(index)?
            .chars
            .iter()
            .flat_map(|c| c.sessions.iter().cloned())
            .collect();
        let mut gone = HashSet::new();
        for owner in owners {
            let alive = match zbus::names::BusName::try_from(owner.as_str()) {
                Ok(name) => bus.name_has_owner(name).await.unwrap_or(false),
                Err(_) => false,
            };
            if !alive {
                gone.insert(owner);
            }
        }
        let slot = self.slot(index)?;
        let mut actions = Vec::new();
        let mut now_notifying = Vec::new();
        for c in &mut slot.chars {
            c.sessions.retain(|owner| !gone.contains(owner));
            if c.sessions.is_empty() {
                continue;
            }
            let cccd: [u8; 2] = if c.properties.contains(Properties::NOTIFY) {
                [1, 0]
            } else {
                [2, 0]
            };
            let answered = slot.device.handle(Event::Write {
                conn: CONN,
                handle: Handle(c.value_handle.0.wrapping_add(1)),
                data: &cccd,
                kind: WriteKind::Request,
            })?;
            let mut refused = false;
            for action in answered {
                match action {
                    Action::Respond { result, .. } => refused |= result.is_err(),
                    other => actions.push(other),
                }
            }
            if refused {
                c.sessions.clear();
                continue;
            }
            lock(&c.props).notifying = true;
            now_notifying.push(c.path.clone());
        }
        for path in now_notifying {
            emit_changed(
                conn,
                &path,
                "org.bluez.GattCharacteristic1",
                HashMap::from([("Notifying", Value::from(true))]),
            )
            .await?;
        }
        Ok(actions)
    }

    /// Exports GattService1/GattCharacteristic1/GattDescriptor1 named by the table's handles,
    /// once: like BlueZ's default `Cache=always`, they stay after a disconnection.
    async fn export_gatt(&mut self, world: &Arc<World>, index: usize) -> Result<(), BluezError> {
        let conn = world.conn()?;
        let slot = self.slot(index)?;
        if slot.gatt_exported {
            return Ok(());
        }
        let server = conn.object_server();
        let mut service_path = String::new();
        let mut char_path = String::new();
        let mut chars = Vec::new();
        for attribute in slot.device.table().attributes() {
            let h = attribute.handle.0;
            match attribute.kind {
                AttributeKind::PrimaryService(service) => {
                    service_path = format!("{}/service{h:04x}", slot.path);
                    let object = GattService1 {
                        uuid: uuid_string(service.uuid),
                        device: slot.path.clone(),
                    };
                    server.at(service_path.as_str(), object).await?;
                }
                AttributeKind::CharacteristicDeclaration {
                    characteristic,
                    value_handle,
                } => {
                    char_path = format!("{service_path}/char{h:04x}");
                    let props = Arc::new(Mutex::new(CharProps::default()));
                    let object = GattCharacteristic1 {
                        world: WorldRef::new(world),
                        device: index,
                        index: chars.len(),
                        uuid: uuid_string(characteristic.uuid),
                        service: service_path.clone(),
                        flags: flags(characteristic.properties),
                        handle: value_handle.0,
                        subscribable: characteristic.properties.is_subscribable(),
                        props: Arc::clone(&props),
                    };
                    server.at(char_path.as_str(), object).await?;
                    let short = match characteristic.uuid {
                        Uuid::Sig(short) => short,
                        Uuid::Vendor(_) => 0,
                    };
                    chars.push(CharSlot {
                        path: char_path.clone(),
                        uuid: uuid_string(characteristic.uuid),
                        short,
                        value_handle,
                        properties: characteristic.properties,
                        props,
                        sessions: HashSet::new(),
                    });
                }
                AttributeKind::Value { .. } => {}
                AttributeKind::Cccd { .. } => {
                    let object = GattDescriptor1 {
                        world: WorldRef::new(world),
                        device: index,
                        handle: attribute.handle,
                        characteristic: char_path.clone(),
                        value: Arc::default(),
                    };
                    server
                        .at(format!("{char_path}/desc{h:04x}").as_str(), object)
                        .await?;
                }
            }
        }
        slot.chars = chars;
        slot.gatt_exported = true;
        Ok(())
    }

    /// Device1.Disconnect.
    pub(crate) async fn disconnect(
        &mut self,
        world: &World,
        index: usize,
    ) -> Result<(), BluezError> {
        if !self.connected(index) {
            return Err(BluezError::NotConnected("Not Connected".into()));
        }
        self.link_lost(world, index).await
    }

    /// The link is gone: the firmware learns it, the properties fall back, sessions end.
    async fn link_lost(&mut self, world: &World, index: usize) -> Result<(), BluezError> {
        let conn = world.conn()?;
        // What the firmware answers to a disconnection has nowhere to go.
        let _ = self.feed(index, Event::Disconnected { conn: CONN })?;
        // What was held back for this link is lost with it.
        self.delayed.retain(|d| d.index != index);
        let slot = self.slot(index)?;
        {
            let mut props = lock(&slot.props);
            props.connected = false;
            props.services_resolved = false;
        }
        // The notify sessions stay: bluetoothd keeps them until StopNotify or their client
        // leaves the bus, and registers them again at the next connection.
        for ch in &mut slot.chars {
            let was = std::mem::replace(&mut lock(&ch.props).notifying, false);
            if was {
                emit_changed(
                    conn,
                    &ch.path,
                    "org.bluez.GattCharacteristic1",
                    HashMap::from([("Notifying", Value::from(false))]),
                )
                .await?;
            }
        }
        emit_changed(
            conn,
            &slot.path,
            "org.bluez.Device1",
            HashMap::from([
                ("ServicesResolved", Value::from(false)),
                ("Connected", Value::from(false)),
            ]),
        )
        .await?;
        Ok(())
    }

    /// Device1.Pair: the default agent, when one is registered, is asked for the passkey
    /// (Agent1.RequestPasskey; its refusal rejects the pairing), then the bond is made. The
    /// firmware checks no passkey, so any number is accepted.
    pub(crate) async fn pair(
        &mut self,
        world: &Arc<World>,
        index: usize,
    ) -> Result<(), BluezError> {
        let conn = world.conn()?;
        let agent = self.default_agent.clone();
        let slot = self.slot(index)?;
        if lock(&slot.props).paired {
            return Err(BluezError::AlreadyExists("Already Exists".into()));
        }
        if let Some((owner, agent_path)) = agent {
            let device = zbus::zvariant::ObjectPath::try_from(slot.path.as_str())
                .map_err(|e| BluezError::Failed(e.to_string()))?;
            let reply = conn
                .call_method(
                    Some(owner.as_str()),
                    agent_path.as_str(),
                    Some("org.bluez.Agent1"),
                    "RequestPasskey",
                    &(device,),
                )
                .await;
            let passkey = reply.and_then(|m| m.body().deserialize::<u32>());
            if passkey.is_err() {
                return Err(BluezError::AuthenticationRejected(
                    "Authentication Rejected".into(),
                ));
            }
        }
        {
            let mut props = lock(&slot.props);
            props.paired = true;
            props.trusted = true;
        }
        let path = slot.path.clone();
        emit_changed(
            conn,
            &path,
            "org.bluez.Device1",
            HashMap::from([("Paired", Value::from(true)), ("Bonded", Value::from(true))]),
        )
        .await?;
        if self.connected(index) {
            let actions = self.feed(
                index,
                Event::Bonded {
                    conn: CONN,
                    bond: BOND,
                },
            )?;
            self.dispatch(world, index, actions).await?;
        }
        Ok(())
    }

    /// An ATT read, continued with Read Blob while chunks come full.
    pub(crate) async fn read(
        &mut self,
        world: &World,
        index: usize,
        handle: Handle,
    ) -> Result<Vec<u8>, BluezError> {
        if !self.connected(index) {
            return Err(not_connected());
        }
        self.injected_error(index, handle)?;
        let mut value = Vec::new();
        loop {
            let offset = u16::try_from(value.len())
                .map_err(|_| BluezError::Failed("Value too long".into()))?;
            let actions = self.feed(
                index,
                Event::Read {
                    conn: CONN,
                    handle,
                    offset,
                },
            )?;
            let chunk = match self.dispatch(world, index, actions).await? {
                Some(Ok(chunk)) => chunk,
                Some(Err(e)) => return Err(BluezError::from_att(e)),
                None => return Err(BluezError::Failed("Operation failed".into())),
            };
            value.extend_from_slice(&chunk);
            if chunk.len() < FULL_READ_CHUNK {
                return Ok(value);
            }
        }
    }

    /// An ATT write; a command is answered at once, whatever the peer does with it.
    pub(crate) async fn write(
        &mut self,
        world: &World,
        index: usize,
        handle: Handle,
        data: &[u8],
        kind: WriteKind,
    ) -> Result<(), BluezError> {
        if !self.connected(index) {
            return Err(not_connected());
        }
        self.injected_error(index, handle)?;
        let actions = self.feed(
            index,
            Event::Write {
                conn: CONN,
                handle,
                data,
                kind,
            },
        )?;
        match (self.dispatch(world, index, actions).await?, kind) {
            (Some(Err(e)), WriteKind::Request) => Err(BluezError::from_att(e)),
            (None, WriteKind::Request) => Err(BluezError::Failed("Operation failed".into())),
            _ => Ok(()),
        }
    }

    /// Sets a characteristic's cached Value after a read, with its PropertiesChanged.
    pub(crate) async fn cache_value(
        &mut self,
        world: &World,
        index: usize,
        ch: usize,
        value: &[u8],
    ) -> Result<(), BluezError> {
        let conn = world.conn()?;
        let slot = self.slot(index)?;
        let Some(ch) = slot.chars.get(ch) else {
            return Ok(());
        };
        lock(&ch.props).value = value.to_vec();
        emit_changed(
            conn,
            &ch.path,
            "org.bluez.GattCharacteristic1",
            HashMap::from([("Value", Value::from(value.to_vec()))]),
        )
        .await?;
        Ok(())
    }

    /// GattCharacteristic1.StartNotify for `sender`: the first session writes the CCCD
    /// (0x0001 when the characteristic notifies, else 0x0002, as BlueZ does).
    pub(crate) async fn start_notify(
        &mut self,
        world: &World,
        index: usize,
        ch: usize,
        sender: String,
    ) -> Result<(), BluezError> {
        let conn = world.conn()?;
        let connected = self.connected(index);
        let slot = self.slot(index)?;
        let Some(c) = slot.chars.get_mut(ch) else {
            return Err(BluezError::DoesNotExist("Does Not Exist".into()));
        };
        if !c.properties.is_subscribable() {
            return Err(BluezError::NotSupported(
                "Operation is not supported".into(),
            ));
        }
        if !connected {
            // bluetoothd accepts the session and registers it at the next connection; a client
            // asking again meanwhile is told it is under way.
            if !c.sessions.insert(sender) {
                return Err(BluezError::InProgress("In Progress".into()));
            }
            return Ok(());
        }
        if !c.sessions.is_empty() {
            c.sessions.insert(sender);
            return Ok(());
        }
        if let Some(e) = slot.faults.fail_next.remove(&c.value_handle) {
            return Err(BluezError::from_att(e));
        }
        let cccd: [u8; 2] = if c.properties.contains(Properties::NOTIFY) {
            [1, 0]
        } else {
            [2, 0]
        };
        let cccd_handle = Handle(c.value_handle.0.wrapping_add(1));
        let mut actions: VecDeque<Action> = slot
            .device
            .handle(Event::Write {
                conn: CONN,
                handle: cccd_handle,
                data: &cccd,
                kind: WriteKind::Request,
            })?
            .into();
        // The CCCD write's answer decides; what the firmware sends next needs Notifying set.
        let position = actions
            .iter()
            .position(|a| matches!(a, Action::Respond { .. }));
        if let Some(Action::Respond { result: Err(e), .. }) =
            position.and_then(|p| actions.remove(p))
        {
            return Err(BluezError::from_att(e));
        }
        c.sessions.insert(sender);
        lock(&c.props).notifying = true;
        let path = c.path.clone();
        emit_changed(
            conn,
            &path,
            "org.bluez.GattCharacteristic1",
            HashMap::from([("Notifying", Value::from(true))]),
        )
        .await?;
        self.dispatch(world, index, actions.into()).await?;
        Ok(())
    }

    /// GattCharacteristic1.StopNotify for `sender`; the last session writes 0x0000.
    pub(crate) async fn stop_notify(
        &mut self,
        world: &World,
        index: usize,
        ch: usize,
        sender: &str,
    ) -> Result<(), BluezError> {
        let conn = world.conn()?;
        let connected = self.connected(index);
        let slot = self.slot(index)?;
        let Some(c) = slot.chars.get_mut(ch) else {
            return Err(BluezError::DoesNotExist("Does Not Exist".into()));
        };
        if !c.sessions.remove(sender) {
            return Err(BluezError::Failed("No notify session started".into()));
        }
        if !c.sessions.is_empty() {
            return Ok(());
        }
        lock(&c.props).notifying = false;
        let path = c.path.clone();
        let cccd_handle = Handle(c.value_handle.0.wrapping_add(1));
        emit_changed(
            conn,
            &path,
            "org.bluez.GattCharacteristic1",
            HashMap::from([("Notifying", Value::from(false))]),
        )
        .await?;
        if connected {
            let actions = self.feed(
                index,
                Event::Write {
                    conn: CONN,
                    handle: cccd_handle,
                    data: &[0, 0],
                    kind: WriteKind::Request,
                },
            )?;
            self.dispatch(world, index, actions).await?;
        }
        Ok(())
    }

    /// Runs every device's main loop once.
    pub(crate) async fn tick(&mut self, world: &World) -> Result<(), BluezError> {
        let now_ms = world.now_ms();
        let discovering = lock(&world.adapter).discovering;
        if discovering && now_ms.saturating_sub(self.last_advert_ms) >= ADVERT_INTERVAL_MS {
            self.last_advert_ms = now_ms;
            self.report_adverts(world).await?;
        }
        self.flush_delayed(world, now_ms).await?;
        let timing = *lock(&world.link);
        let now_us = world.now_us();
        for index in 0..self.devices.len() {
            self.slot(index)?.budget.refill(timing, now_us);
            // Polled again while it keeps sending and the link has room, as a board's main loop
            // refills transmit buffers freed within a connection event.
            for _ in 0..MAX_POLLS_PER_TICK {
                let actions = self.slot(index)?.device.poll(now_ms)?;
                let packets = actions
                    .iter()
                    .filter(|a| matches!(a, Action::Notify { .. } | Action::Indicate { .. }))
                    .count();
                if !actions.is_empty() {
                    self.dispatch(world, index, actions).await?;
                }
                if packets == 0 || !self.connected(index) || self.slot(index)?.budget.packets() <= 0
                {
                    break;
                }
            }
        }
        Ok(())
    }

    /// Re-reports every exported, unconnected device's advertisement, as bluetoothd does while
    /// discovering with DuplicateData (btleplug turns these into RssiUpdate,
    /// ServiceDataAdvertisement and ManufacturerDataAdvertisement events).
    async fn report_adverts(&mut self, world: &World) -> Result<(), BluezError> {
        let conn = world.conn()?;
        // Collected first: a device is not Sync, so no reference to one may live across an await.
        let heard: Vec<(String, crate::device::Advertisement)> = self
            .devices
            .iter()
            .filter(|slot| slot.exported && !lock(&slot.props).connected)
            .map(|slot| (slot.path.clone(), slot.device.advertisement().clone()))
            .collect();
        for (path, ad) in heard {
            let mut changed = HashMap::from([("RSSI", Value::from(ad.rssi))]);
            if !ad.service_data.is_empty() {
                let data: HashMap<String, Value<'_>> = ad
                    .service_data
                    .iter()
                    .map(|(k, v)| (k.clone(), Value::from(v.clone())))
                    .collect();
                changed.insert("ServiceData", Value::from(data));
            }
            if !ad.manufacturer_data.is_empty() {
                let data: HashMap<u16, Value<'_>> = ad
                    .manufacturer_data
                    .iter()
                    .map(|(k, v)| (*k, Value::from(v.clone())))
                    .collect();
                changed.insert("ManufacturerData", Value::from(data));
            }
            emit_changed(conn, &path, "org.bluez.Device1", changed).await?;
        }
        Ok(())
    }

    /// Carries out the firmware's actions: the first response is returned, notifications and
    /// indications become PropertiesChanged(Value) on subscribed characteristics, indications
    /// are confirmed at once (as bluetoothd does), a disconnection drops the link.
    async fn dispatch(
        &mut self,
        world: &World,
        index: usize,
        actions: Vec<Action>,
    ) -> Result<Option<Result<Vec<u8>, AttError>>, BluezError> {
        let conn = world.conn()?;
        let mut queue: VecDeque<Action> = actions.into();
        let mut response = None;
        let mut drop_link = false;
        while let Some(action) = queue.pop_front() {
            match action {
                Action::Respond { result, .. } => {
                    if response.is_none() {
                        response = Some(result.map(|v| v.to_vec()));
                    }
                }
                Action::Notify { handle, value, .. } => {
                    if self.link_drops_now(index)? {
                        drop_link = true;
                        break;
                    }
                    self.send(world, conn, index, handle, &value, false).await?;
                }
                Action::Indicate { handle, value, .. } => {
                    if self.link_drops_now(index)? {
                        drop_link = true;
                        break;
                    }
                    self.send(world, conn, index, handle, &value, true).await?;
                    queue.extend(self.feed(index, Event::IndicationConfirmed { conn: CONN })?);
                }
                Action::Disconnect { .. } => drop_link = true,
            }
        }
        if drop_link && self.connected(index) {
            self.link_lost(world, index).await?;
        }
        Ok(response)
    }

    /// Counts a notification or indication against a "drop the link after N" fault: true when
    /// the link must drop instead of sending it.
    fn link_drops_now(&mut self, index: usize) -> Result<bool, BluezError> {
        let faults = &mut self.slot(index)?.faults;
        Ok(match faults.drop_after {
            Some(0) => {
                faults.drop_after = None;
                true
            }
            Some(n) => {
                faults.drop_after = Some(n.saturating_sub(1));
                false
            }
            None => false,
        })
    }

    /// Sends a notification or indication, unless a fault loses or delays it; either way it
    /// took its packet on the link.
    async fn send(
        &mut self,
        world: &World,
        conn: &Connection,
        index: usize,
        handle: Handle,
        value: &[u8],
        indication: bool,
    ) -> Result<(), BluezError> {
        let slot = self.slot(index)?;
        slot.budget.spend();
        let faults = &mut slot.faults;
        if let Some(left) = faults.lose.get_mut(&handle) {
            *left = left.saturating_sub(1);
            if *left == 0 {
                faults.lose.remove(&handle);
            }
            return Ok(());
        }
        if let Some(delay) = faults.delay.get(&handle) {
            let delay_ms = u64::try_from(delay.as_millis()).unwrap_or(u64::MAX);
            let due_ms = world.now_ms().saturating_add(delay_ms);
            self.delayed.push(Delayed {
                due_ms,
                index,
                handle,
                value: value.to_vec(),
                indication,
            });
            return Ok(());
        }
        self.deliver(world, conn, index, handle, value, indication)
            .await
    }

    /// Emits the delayed notifications that are due (dropped if the link went down meanwhile).
    async fn flush_delayed(&mut self, world: &World, now_ms: u64) -> Result<(), BluezError> {
        if self.delayed.is_empty() {
            return Ok(());
        }
        let conn = world.conn()?;
        let (due, later): (Vec<Delayed>, Vec<Delayed>) = std::mem::take(&mut self.delayed)
            .into_iter()
            .partition(|d| d.due_ms <= now_ms);
        self.delayed = later;
        for d in due {
            if self.connected(d.index) {
                self.deliver(world, conn, d.index, d.handle, &d.value, d.indication)
                    .await?;
            }
        }
        Ok(())
    }

    /// The first armed ATT error of a characteristic, consumed.
    fn injected_error(&mut self, index: usize, handle: Handle) -> Result<(), BluezError> {
        match self.slot(index)?.faults.fail_next.remove(&handle) {
            Some(e) => Err(BluezError::from_att(e)),
            None => Ok(()),
        }
    }

    /// The index of the device at `address` (case-insensitive).
    pub(crate) fn find(&self, address: &str) -> Option<usize> {
        self.devices.iter().position(|s| {
            s.device
                .advertisement()
                .address
                .eq_ignore_ascii_case(address)
        })
    }

    /// Arms a fault on the characteristic `uuid` (128-bit string) of device `index`; false if
    /// the device's table has no such characteristic.
    pub(crate) fn arm(&mut self, index: usize, uuid: &str, fault: CharFault) -> bool {
        let Some(slot) = self.devices.get_mut(index) else {
            return false;
        };
        let wanted = uuid.to_lowercase();
        let handle = slot.device.table().attributes().find_map(|a| match a.kind {
            AttributeKind::CharacteristicDeclaration {
                characteristic,
                value_handle,
            } if uuid_string(characteristic.uuid) == wanted => Some(value_handle),
            _ => None,
        });
        let Some(handle) = handle else {
            return false;
        };
        match fault {
            CharFault::FailNext(e) => {
                slot.faults.fail_next.insert(handle, e);
            }
            CharFault::Lose(0) => {
                slot.faults.lose.remove(&handle);
            }
            CharFault::Lose(n) => {
                slot.faults.lose.insert(handle, n);
            }
            CharFault::Delay(d) if d.is_zero() => {
                slot.faults.delay.remove(&handle);
            }
            CharFault::Delay(d) => {
                slot.faults.delay.insert(handle, d);
            }
        }
        true
    }

    /// Arms (or, with `None`, clears) a link drop after `n` more notifications/indications.
    pub(crate) fn arm_drop_after(&mut self, index: usize, n: Option<u32>) {
        if let Some(slot) = self.devices.get_mut(index) {
            slot.faults.drop_after = n;
        }
    }

    /// Whether device `index` is connected.
    pub(crate) fn is_connected(&self, index: usize) -> bool {
        self.connected(index)
    }

    /// The link to device `index` is lost (a fault, or the adapter going off).
    pub(crate) async fn drop_link(
        &mut self,
        world: &World,
        index: usize,
    ) -> Result<(), BluezError> {
        if self.connected(index) {
            self.link_lost(world, index).await?;
        }
        Ok(())
    }

    /// How many devices there are.
    pub(crate) fn len(&self) -> usize {
        self.devices.len()
    }

    /// A notification or indication reaches D-Bus only while the characteristic is Notifying;
    /// once emitted it is logged for the emission subscribers.
    async fn deliver(
        &mut self,
        world: &World,
        conn: &Connection,
        index: usize,
        handle: Handle,
        value: &[u8],
        indication: bool,
    ) -> Result<(), BluezError> {
        let slot = self.slot(index)?;
        let Some(ch) = slot.chars.iter().find(|c| c.value_handle == handle) else {
            return Ok(());
        };
        {
            let mut props = lock(&ch.props);
            if !props.notifying {
                return Ok(());
            }
            props.value = value.to_vec();
        }
        // Stamped as the signal is handed over: a fast client may have it before `emit_changed`
        // returns.
        let handed_over = Instant::now();
        emit_changed(
            conn,
            &ch.path,
            "org.bluez.GattCharacteristic1",
            HashMap::from([("Value", Value::from(value.to_vec()))]),
        )
        .await?;
        if world.emissions.receiver_count() > 0 {
            let emission = Emission {
                address: slot.device.advertisement().address.clone(),
                characteristic: ch.short,
                uuid: ch.uuid.clone(),
                indication,
                len: value.len(),
                at: handed_over,
            };
            // No receiver left since the check: nothing to log for.
            let _ = world.emissions.send(emission);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uuids_are_spelled_as_bluez_does() {
        assert_eq!(
            uuid_string(Uuid::sig(0x1808)),
            "00001808-0000-1000-8000-00805f9b34fb"
        );
        assert_eq!(
            uuid_string(Uuid::vendor(0x6e40_0001_b5a3_f393_e0a9_e50e_24dc_ca9e)),
            "6e400001-b5a3-f393-e0a9-e50e24dcca9e"
        );
    }

    #[test]
    fn flags_follow_the_properties() {
        assert_eq!(
            flags(Properties::WRITE.and(Properties::INDICATE)),
            vec!["write".to_owned(), "indicate".to_owned()]
        );
        assert_eq!(flags(Properties::READ), vec!["read".to_owned()]);
    }
}
