//! The `org.bluez` objects: AgentManager1, Adapter1, Device1, GattService1,
//! GattCharacteristic1 and GattDescriptor1, with the exact property types bluez-async checks.

use std::collections::HashMap;
use std::sync::{Arc, Weak};

use relais_firmware::gatt::{Handle, WriteKind};
use zbus::interface;
use zbus::message::Header;
use zbus::zvariant::{ObjectPath, OwnedObjectPath, OwnedValue, Value};

use crate::device::Advertisement;
use crate::error::BluezError;
use crate::sim::{
    ADAPTER_PATH, AdapterProps, CharProps, DeviceProps, Shared, World, emit_changed, lock,
};

/// The interfaces' handle on the world: weak, as the world owns the connection that owns them.
pub(crate) struct WorldRef(pub Weak<World>);

impl WorldRef {
    pub(crate) fn new(world: &Arc<World>) -> Self {
        Self(Arc::downgrade(world))
    }

    fn get(&self) -> Result<Arc<World>, BluezError> {
        self.0
            .upgrade()
            .ok_or_else(|| BluezError::Failed("Shutting down".into()))
    }
}

fn path(p: &str) -> OwnedObjectPath {
    // Our paths are built from valid parts; an invalid one degrades to the root.
    ObjectPath::try_from(p.to_owned())
        .map(OwnedObjectPath::from)
        .unwrap_or_else(|_| OwnedObjectPath::from(ObjectPath::from_static_str_unchecked("/")))
}

fn bytes_value(bytes: &[u8]) -> Option<OwnedValue> {
    OwnedValue::try_from(Value::from(bytes.to_vec())).ok()
}

fn sender(header: &Header<'_>) -> String {
    header.sender().map(|s| s.to_string()).unwrap_or_default()
}

/// `org.bluez.AgentManager1` at `/org/bluez`: agents are remembered, never called yet.
pub(crate) struct AgentManager1 {
    pub world: WorldRef,
}

#[interface(name = "org.bluez.AgentManager1")]
impl AgentManager1 {
    async fn register_agent(
        &self,
        agent: OwnedObjectPath,
        _capability: String,
        #[zbus(header)] header: Header<'_>,
    ) -> Result<(), BluezError> {
        let world = self.world.get()?;
        let mut state = world.state.lock().await;
        let entry = (sender(&header), agent.to_string());
        if state.agents.contains(&entry) {
            return Err(BluezError::AlreadyExists("Already Exists".into()));
        }
        state.agents.push(entry);
        Ok(())
    }

    async fn request_default_agent(
        &self,
        agent: OwnedObjectPath,
        #[zbus(header)] header: Header<'_>,
    ) -> Result<(), BluezError> {
        let world = self.world.get()?;
        let mut state = world.state.lock().await;
        let entry = (sender(&header), agent.to_string());
        if !state.agents.contains(&entry) {
            return Err(BluezError::DoesNotExist("Does Not Exist".into()));
        }
        state.default_agent = Some(entry);
        Ok(())
    }

    async fn unregister_agent(
        &self,
        agent: OwnedObjectPath,
        #[zbus(header)] header: Header<'_>,
    ) -> Result<(), BluezError> {
        let world = self.world.get()?;
        let mut state = world.state.lock().await;
        let entry = (sender(&header), agent.to_string());
        let before = state.agents.len();
        state.agents.retain(|a| *a != entry);
        if state.agents.len() == before {
            return Err(BluezError::DoesNotExist("Does Not Exist".into()));
        }
        if state.default_agent.as_ref() == Some(&entry) {
            state.default_agent = None;
        }
        Ok(())
    }
}

/// `org.bluez.Adapter1` at `/org/bluez/hci0`.
pub(crate) struct Adapter1 {
    pub world: WorldRef,
    pub props: Shared<AdapterProps>,
}

#[interface(name = "org.bluez.Adapter1")]
impl Adapter1 {
    async fn set_discovery_filter(
        &self,
        filter: HashMap<String, OwnedValue>,
    ) -> Result<(), BluezError> {
        let uuids = match filter.get("UUIDs") {
            Some(v) => Vec::<String>::try_from(
                v.try_clone()
                    .map_err(|_| BluezError::InvalidArguments("Invalid arguments".into()))?,
            )
            .map_err(|_| BluezError::InvalidArguments("Invalid arguments".into()))?,
            None => Vec::new(),
        };
        self.world.get()?.state.lock().await.set_filter(uuids);
        Ok(())
    }

    async fn start_discovery(&self) -> Result<(), BluezError> {
        let world = self.world.get()?;
        let conn = world.conn()?;
        if lock(&self.props).blocked {
            return Err(crate::sim::not_ready());
        }
        let changed = !std::mem::replace(&mut lock(&self.props).discovering, true);
        if changed {
            emit_changed(
                conn,
                ADAPTER_PATH,
                "org.bluez.Adapter1",
                HashMap::from([("Discovering", Value::from(true))]),
            )
            .await?;
        }
        let world = self.world.get()?;
        let mut state = world.state.lock().await;
        state.export_discovered(&world).await?;
        Ok(())
    }

    async fn stop_discovery(&self) -> Result<(), BluezError> {
        let world = self.world.get()?;
        let conn = world.conn()?;
        if !std::mem::replace(&mut lock(&self.props).discovering, false) {
            return Err(BluezError::Failed("No discovery started".into()));
        }
        emit_changed(
            conn,
            ADAPTER_PATH,
            "org.bluez.Adapter1",
            HashMap::from([("Discovering", Value::from(false))]),
        )
        .await?;
        Ok(())
    }

    async fn remove_device(&self, device: OwnedObjectPath) -> Result<(), BluezError> {
        let world = self.world.get()?;
        let mut state = world.state.lock().await;
        state.remove(&world, device.as_str()).await
    }

    async fn get_discovery_filters(&self) -> Vec<String> {
        [
            "UUIDs",
            "RSSI",
            "Pathloss",
            "Transport",
            "DuplicateData",
            "Discoverable",
            "Pattern",
        ]
        .iter()
        .map(|s| (*s).to_owned())
        .collect()
    }

    #[zbus(property)]
    async fn address(&self) -> String {
        "00:AA:01:00:00:01".to_owned()
    }

    #[zbus(property)]
    async fn address_type(&self) -> String {
        "public".to_owned()
    }

    #[zbus(property)]
    async fn name(&self) -> String {
        "relais-bluez-sim".to_owned()
    }

    #[zbus(property)]
    async fn alias(&self) -> String {
        "relais-bluez-sim".to_owned()
    }

    /// bluez-async drops an adapter whose Modalias does not parse.
    #[zbus(property)]
    async fn modalias(&self) -> String {
        "usb:v1D6Bp0246d054F".to_owned()
    }

    #[zbus(property)]
    async fn class(&self) -> u32 {
        0
    }

    #[zbus(property(emits_changed_signal = "false"))]
    async fn powered(&self) -> bool {
        lock(&self.props).powered
    }

    /// Emits PropertiesChanged only on a change, as bluetoothd does (a no-op Set would give
    /// btleplug a spurious StateUpdate on every scan).
    #[zbus(property)]
    async fn set_powered(&mut self, value: bool) -> zbus::fdo::Result<()> {
        // An adapter switched off by a fault cannot be powered (rfkill).
        if value && lock(&self.props).blocked {
            return Err(zbus::fdo::Error::Failed("Blocked through rfkill".into()));
        }
        let changed = std::mem::replace(&mut lock(&self.props).powered, value) != value;
        let world = self.world.0.upgrade();
        if let (true, Some(conn)) = (changed, world.as_ref().and_then(|w| w.conn.get())) {
            emit_changed(
                conn,
                ADAPTER_PATH,
                "org.bluez.Adapter1",
                HashMap::from([("Powered", Value::from(value))]),
            )
            .await
            .map_err(zbus::fdo::Error::from)?;
        }
        Ok(())
    }

    #[zbus(property(emits_changed_signal = "false"))]
    async fn discovering(&self) -> bool {
        lock(&self.props).discovering
    }

    #[zbus(property)]
    async fn discoverable(&self) -> bool {
        false
    }

    #[zbus(property)]
    async fn pairable(&self) -> bool {
        true
    }

    #[zbus(property, name = "UUIDs")]
    async fn uuids(&self) -> Vec<String> {
        Vec::new()
    }
}

/// `org.bluez.Device1` of one virtual device.
pub(crate) struct Device1 {
    pub world: WorldRef,
    pub index: usize,
    pub advertisement: Advertisement,
    pub props: Shared<DeviceProps>,
}

#[interface(name = "org.bluez.Device1")]
impl Device1 {
    async fn connect(&self) -> Result<(), BluezError> {
        let world = self.world.get()?;
        let mut state = world.state.lock().await;
        state.connect(&world, self.index).await
    }

    async fn disconnect(&self) -> Result<(), BluezError> {
        let world = self.world.get()?;
        let mut state = world.state.lock().await;
        state.disconnect(&world, self.index).await
    }

    async fn pair(&self) -> Result<(), BluezError> {
        let world = self.world.get()?;
        let mut state = world.state.lock().await;
        state.pair(&world, self.index).await
    }

    async fn cancel_pairing(&self) -> Result<(), BluezError> {
        Err(BluezError::DoesNotExist("Does Not Exist".into()))
    }

    #[zbus(property)]
    async fn address(&self) -> String {
        self.advertisement.address.clone()
    }

    #[zbus(property)]
    async fn address_type(&self) -> String {
        "public".to_owned()
    }

    #[zbus(property)]
    async fn name(&self) -> String {
        self.advertisement.name.clone()
    }

    #[zbus(property)]
    async fn alias(&self) -> String {
        self.advertisement.name.clone()
    }

    #[zbus(property)]
    async fn adapter(&self) -> OwnedObjectPath {
        path(ADAPTER_PATH)
    }

    #[zbus(property(emits_changed_signal = "false"))]
    async fn paired(&self) -> bool {
        lock(&self.props).paired
    }

    #[zbus(property(emits_changed_signal = "false"))]
    async fn bonded(&self) -> bool {
        lock(&self.props).paired
    }

    #[zbus(property(emits_changed_signal = "false"))]
    async fn trusted(&self) -> bool {
        lock(&self.props).trusted
    }

    #[zbus(property)]
    async fn blocked(&self) -> bool {
        false
    }

    #[zbus(property)]
    async fn legacy_pairing(&self) -> bool {
        false
    }

    #[zbus(property(emits_changed_signal = "false"))]
    async fn connected(&self) -> bool {
        lock(&self.props).connected
    }

    #[zbus(property(emits_changed_signal = "false"))]
    async fn services_resolved(&self) -> bool {
        lock(&self.props).services_resolved
    }

    #[zbus(property(emits_changed_signal = "false"), name = "RSSI")]
    async fn rssi(&self) -> i16 {
        self.advertisement.rssi
    }

    #[zbus(property, name = "UUIDs")]
    async fn uuids(&self) -> Vec<String> {
        self.advertisement.service_uuids.clone()
    }

    #[zbus(property)]
    async fn service_data(&self) -> HashMap<String, OwnedValue> {
        self.advertisement
            .service_data
            .iter()
            .filter_map(|(k, v)| Some((k.clone(), bytes_value(v)?)))
            .collect()
    }

    #[zbus(property)]
    async fn manufacturer_data(&self) -> HashMap<u16, OwnedValue> {
        self.advertisement
            .manufacturer_data
            .iter()
            .filter_map(|(k, v)| Some((*k, bytes_value(v)?)))
            .collect()
    }
}

/// `org.bluez.GattService1`.
pub(crate) struct GattService1 {
    pub uuid: String,
    pub device: String,
}

#[interface(name = "org.bluez.GattService1")]
impl GattService1 {
    #[zbus(property, name = "UUID")]
    async fn uuid(&self) -> String {
        self.uuid.clone()
    }

    #[zbus(property)]
    async fn primary(&self) -> bool {
        true
    }

    #[zbus(property)]
    async fn device(&self) -> OwnedObjectPath {
        path(&self.device)
    }

    #[zbus(property)]
    async fn includes(&self) -> Vec<OwnedObjectPath> {
        Vec::new()
    }
}

/// `org.bluez.GattCharacteristic1`.
pub(crate) struct GattCharacteristic1 {
    pub world: WorldRef,
    pub device: usize,
    pub index: usize,
    pub uuid: String,
    pub service: String,
    pub flags: Vec<String>,
    pub handle: u16,
    pub subscribable: bool,
    pub props: Shared<CharProps>,
}

/// The write type BlueZ's WriteValue takes from its options.
fn write_kind(
    options: &HashMap<String, OwnedValue>,
    flags: &[String],
) -> Result<WriteKind, BluezError> {
    let kind = options
        .get("type")
        .and_then(|v| <&str>::try_from(&**v).ok());
    match kind {
        Some("request") | Some("reliable") => Ok(WriteKind::Request),
        Some("command") => Ok(WriteKind::Command),
        Some(_) => Err(BluezError::InvalidArguments("Invalid arguments".into())),
        // Without a type BlueZ prefers a Write Request when the characteristic allows it.
        None if flags.iter().any(|f| f == "write") => Ok(WriteKind::Request),
        None if flags.iter().any(|f| f == "write-without-response") => Ok(WriteKind::Command),
        None => Err(BluezError::NotSupported(
            "Operation is not supported".into(),
        )),
    }
}

#[interface(name = "org.bluez.GattCharacteristic1")]
impl GattCharacteristic1 {
    /// Returns the bytes and also updates `Value` (with PropertiesChanged), as BlueZ does.
    async fn read_value(
        &self,
        _options: HashMap<String, OwnedValue>,
    ) -> Result<Vec<u8>, BluezError> {
        let world = self.world.get()?;
        let mut state = world.state.lock().await;
        let value = state.read(&world, self.device, Handle(self.handle)).await?;
        state
            .cache_value(&world, self.device, self.index, &value)
            .await?;
        Ok(value)
    }

    async fn write_value(
        &self,
        value: Vec<u8>,
        options: HashMap<String, OwnedValue>,
    ) -> Result<(), BluezError> {
        let kind = write_kind(&options, &self.flags)?;
        let world = self.world.get()?;
        let mut state = world.state.lock().await;
        state
            .write(&world, self.device, Handle(self.handle), &value, kind)
            .await
    }

    async fn start_notify(&self, #[zbus(header)] header: Header<'_>) -> Result<(), BluezError> {
        let world = self.world.get()?;
        let mut state = world.state.lock().await;
        state
            .start_notify(&world, self.device, self.index, sender(&header))
            .await
    }

    async fn stop_notify(&self, #[zbus(header)] header: Header<'_>) -> Result<(), BluezError> {
        let world = self.world.get()?;
        let mut state = world.state.lock().await;
        state
            .stop_notify(&world, self.device, self.index, &sender(&header))
            .await
    }

    #[zbus(property, name = "UUID")]
    async fn uuid(&self) -> String {
        self.uuid.clone()
    }

    #[zbus(property)]
    async fn service(&self) -> OwnedObjectPath {
        path(&self.service)
    }

    #[zbus(property(emits_changed_signal = "false"))]
    async fn value(&self) -> Vec<u8> {
        lock(&self.props).value.clone()
    }

    #[zbus(property(emits_changed_signal = "false"))]
    async fn notifying(&self) -> zbus::fdo::Result<bool> {
        // BlueZ only has Notifying on characteristics that can notify or indicate.
        if self.subscribable {
            Ok(lock(&self.props).notifying)
        } else {
            Err(zbus::fdo::Error::UnknownProperty("Notifying".into()))
        }
    }

    #[zbus(property)]
    async fn flags(&self) -> Vec<String> {
        self.flags.clone()
    }

    #[zbus(property, name = "MTU")]
    async fn mtu(&self) -> u16 {
        relais_firmware::gatt::MAX_ATT_MTU
    }

    #[zbus(property)]
    async fn handle(&self) -> u16 {
        self.handle
    }
}

/// `org.bluez.GattDescriptor1` of a CCCD: readable, never writable over D-Bus (BlueZ owns it).
pub(crate) struct GattDescriptor1 {
    pub world: WorldRef,
    pub device: usize,
    pub handle: Handle,
    pub characteristic: String,
    pub value: Shared<Vec<u8>>,
}

#[interface(name = "org.bluez.GattDescriptor1")]
impl GattDescriptor1 {
    async fn read_value(
        &self,
        _options: HashMap<String, OwnedValue>,
    ) -> Result<Vec<u8>, BluezError> {
        let world = self.world.get()?;
        let mut state = world.state.lock().await;
        let value = state.read(&world, self.device, self.handle).await?;
        *lock(&self.value) = value.clone();
        Ok(value)
    }

    async fn write_value(
        &self,
        _value: Vec<u8>,
        _options: HashMap<String, OwnedValue>,
    ) -> Result<(), BluezError> {
        // bluetoothd refuses CCCD writes: subscriptions go through StartNotify.
        Err(BluezError::NotPermitted("Write not permitted".into()))
    }

    #[zbus(property, name = "UUID")]
    async fn uuid(&self) -> String {
        crate::device::sig_uuid(0x2902)
    }

    #[zbus(property)]
    async fn characteristic(&self) -> OwnedObjectPath {
        path(&self.characteristic)
    }

    #[zbus(property(emits_changed_signal = "false"))]
    async fn value(&self) -> Vec<u8> {
        lock(&self.value).clone()
    }

    #[zbus(property)]
    async fn flags(&self) -> Vec<String> {
        vec!["read".to_owned()]
    }
}
