//! What bluetoothd does on the bus that btleplug relies on or that a gateway may meet, checked at
//! the D-Bus level with a plain zbus client: property types, object names, error names,
//! Powered emitted only on change, notify sessions, agents.
//!
//! Needs `dbus-daemon` (fails without it).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::collections::HashMap;
use std::time::Duration;

use futures::StreamExt;
use relais_bluez_sim::{DbusDaemon, GlucoseMeterSim, Simulator};
use zbus::fdo::{ObjectManagerProxy, PropertiesProxy};
use zbus::names::{InterfaceName, OwnedInterfaceName};
use zbus::zvariant::{ObjectPath, OwnedObjectPath, OwnedValue, Value};
use zbus::{Connection, MessageStream};

const DEVICE: &str = "/org/bluez/hci0/dev_C0_FF_EE_00_00_02";
/// Device Information is the first service of the table, at the firmware's first handle (10).
const DIS_SERVICE: &str = "/org/bluez/hci0/dev_C0_FF_EE_00_00_02/service000a";
const DIS_FIRST_CHAR: &str = "/org/bluez/hci0/dev_C0_FF_EE_00_00_02/service000a/char000b";

async fn call(
    conn: &Connection,
    path: &str,
    interface: &str,
    method: &str,
    body: &(impl serde::Serialize + zbus::zvariant::DynamicType),
) -> Result<(), (String, String)> {
    match conn
        .call_method(Some("org.bluez"), path, Some(interface), method, body)
        .await
    {
        Ok(_) => Ok(()),
        Err(zbus::Error::MethodError(name, text, _)) => {
            Err((name.to_string(), text.unwrap_or_default()))
        }
        Err(other) => panic!("{method}: {other}"),
    }
}

async fn props<'a>(conn: &Connection, path: &'a str) -> PropertiesProxy<'a> {
    PropertiesProxy::builder(conn)
        .destination("org.bluez")
        .unwrap()
        .path(path)
        .unwrap()
        .build()
        .await
        .unwrap()
}

fn iface(name: &str) -> InterfaceName<'_> {
    InterfaceName::try_from(name).unwrap()
}

fn no_options() -> HashMap<String, OwnedValue> {
    HashMap::new()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_bus_contract_matches_bluetoothd() {
    let bus = DbusDaemon::start().expect("dbus-daemon (Debian package `dbus`) must be installed");
    let meter = GlucoseMeterSim::with_records("C0:FF:EE:00:00:02", 2).unwrap();
    let _sim = Simulator::start(bus.address(), vec![Box::new(meter)])
        .await
        .unwrap();
    let conn = zbus::connection::Builder::address(bus.address())
        .unwrap()
        .build()
        .await
        .unwrap();

    // Adapter: a parseable Modalias; Powered changes are signalled once, not on a no-op Set.
    let adapter = props(&conn, "/org/bluez/hci0").await;
    let modalias = adapter
        .get(iface("org.bluez.Adapter1"), "Modalias")
        .await
        .unwrap();
    assert_eq!(String::try_from(modalias).unwrap(), "usb:v1D6Bp0246d054F");
    let mut changes = MessageStream::for_match_rule(
        "type='signal',interface='org.freedesktop.DBus.Properties',member='PropertiesChanged',path='/org/bluez/hci0'",
        &conn,
        None,
    )
    .await
    .unwrap();
    for _ in 0..2 {
        adapter
            .set(iface("org.bluez.Adapter1"), "Powered", Value::from(true))
            .await
            .unwrap();
    }
    let first = tokio::time::timeout(Duration::from_secs(2), changes.next()).await;
    assert!(first.is_ok(), "Powered=true is signalled");
    let second = tokio::time::timeout(Duration::from_millis(300), changes.next()).await;
    assert!(second.is_err(), "a no-op Set is not signalled");

    // Discovery exports Device1 with bluez-async's exact types.
    call(
        &conn,
        "/org/bluez/hci0",
        "org.bluez.Adapter1",
        "StartDiscovery",
        &(),
    )
    .await
    .unwrap();
    let manager = ObjectManagerProxy::builder(&conn)
        .destination("org.bluez")
        .unwrap()
        .path("/")
        .unwrap()
        .build()
        .await
        .unwrap();
    let objects = manager.get_managed_objects().await.unwrap();
    let device = objects
        .get(&OwnedObjectPath::from(
            ObjectPath::try_from(DEVICE).unwrap(),
        ))
        .expect("device exported on discovery");
    let device1 = device
        .get(&OwnedInterfaceName::from(iface("org.bluez.Device1")))
        .unwrap();
    for (name, signature) in [
        ("RSSI", "n"),
        ("UUIDs", "as"),
        ("ServiceData", "a{sv}"),
        ("ManufacturerData", "a{qv}"),
        ("Paired", "b"),
        ("Bonded", "b"),
        ("Trusted", "b"),
        ("Blocked", "b"),
        ("LegacyPairing", "b"),
        ("Connected", "b"),
        ("ServicesResolved", "b"),
        ("Address", "s"),
        ("AddressType", "s"),
        ("Adapter", "o"),
    ] {
        let value = device1.get(name).unwrap_or_else(|| panic!("{name}"));
        assert_eq!(value.value_signature().to_string(), signature, "{name}");
    }

    // Connect: GATT objects named from the firmware's handles, then ServicesResolved.
    call(&conn, DEVICE, "org.bluez.Device1", "Connect", &())
        .await
        .unwrap();
    let device_props = props(&conn, DEVICE).await;
    let resolved = device_props
        .get(iface("org.bluez.Device1"), "ServicesResolved")
        .await
        .unwrap();
    assert!(bool::try_from(resolved).unwrap());
    let objects = manager.get_managed_objects().await.unwrap();
    let paths: Vec<String> = objects.keys().map(|p| p.to_string()).collect();
    assert!(paths.iter().any(|p| p == DIS_SERVICE), "{paths:?}");
    assert!(paths.iter().any(|p| p == DIS_FIRST_CHAR), "{paths:?}");
    let path_of = |uuid: &str, interface: &str| {
        objects
            .iter()
            .find(|(_, ifaces)| {
                ifaces
                    .get(&OwnedInterfaceName::from(iface(interface)))
                    .and_then(|p| p.get("UUID"))
                    .is_some_and(|u| String::try_from(u.try_clone().unwrap()).unwrap() == uuid)
            })
            .map(|(p, _)| p.to_string())
            .unwrap_or_else(|| panic!("{uuid}"))
    };
    let feature = path_of(
        "00002a51-0000-1000-8000-00805f9b34fb",
        "org.bluez.GattCharacteristic1",
    );
    let racp = path_of(
        "00002a52-0000-1000-8000-00805f9b34fb",
        "org.bluez.GattCharacteristic1",
    );
    let racp_cccd = paths
        .iter()
        .find(|p| p.starts_with(&format!("{racp}/desc")))
        .expect("the RACP CCCD")
        .clone();

    // ReadValue also updates the cached Value.
    let reply = conn
        .call_method(
            Some("org.bluez"),
            feature.as_str(),
            Some("org.bluez.GattCharacteristic1"),
            "ReadValue",
            &(no_options(),),
        )
        .await
        .unwrap();
    let bytes: Vec<u8> = reply.body().deserialize().unwrap();
    assert_eq!(bytes.len(), 2);
    let cached = props(&conn, &feature)
        .await
        .get(iface("org.bluez.GattCharacteristic1"), "Value")
        .await
        .unwrap();
    assert_eq!(Vec::<u8>::try_from(cached).unwrap(), bytes);

    // Errors, by name and text.
    let refused = call(
        &conn,
        &racp_cccd,
        "org.bluez.GattDescriptor1",
        "WriteValue",
        &(vec![2u8, 0], no_options()),
    )
    .await;
    assert_eq!(
        refused,
        Err((
            "org.bluez.Error.NotPermitted".to_owned(),
            "Write not permitted".to_owned()
        ))
    );
    let no_session = call(
        &conn,
        &racp,
        "org.bluez.GattCharacteristic1",
        "StopNotify",
        &(),
    )
    .await;
    assert_eq!(
        no_session,
        Err((
            "org.bluez.Error.Failed".to_owned(),
            "No notify session started".to_owned()
        ))
    );
    let not_subscribable = call(
        &conn,
        &feature,
        "org.bluez.GattCharacteristic1",
        "StartNotify",
        &(),
    )
    .await;
    assert_eq!(
        not_subscribable.unwrap_err().0,
        "org.bluez.Error.NotSupported"
    );
    let already = call(&conn, DEVICE, "org.bluez.Device1", "Pair", &()).await;
    assert_eq!(already.unwrap_err().0, "org.bluez.Error.AlreadyExists");

    // Notify sessions: StartNotify twice from one client is fine; Notifying follows.
    for _ in 0..2 {
        call(
            &conn,
            &racp,
            "org.bluez.GattCharacteristic1",
            "StartNotify",
            &(),
        )
        .await
        .unwrap();
    }
    let racp_props = props(&conn, &racp).await;
    let notifying = racp_props
        .get(iface("org.bluez.GattCharacteristic1"), "Notifying")
        .await
        .unwrap();
    assert!(bool::try_from(notifying).unwrap());
    call(
        &conn,
        &racp,
        "org.bluez.GattCharacteristic1",
        "StopNotify",
        &(),
    )
    .await
    .unwrap();
    let notifying = racp_props
        .get(iface("org.bluez.GattCharacteristic1"), "Notifying")
        .await
        .unwrap();
    assert!(!bool::try_from(notifying).unwrap());

    // A RACP write while its indications are off: the firmware's 0xFD, as BlueZ reports it.
    let improperly = call(
        &conn,
        &racp,
        "org.bluez.GattCharacteristic1",
        "WriteValue",
        &(
            vec![0x01u8, 0x01],
            HashMap::from([(
                "type".to_owned(),
                OwnedValue::from(zbus::zvariant::Str::from("request")),
            )]),
        ),
    )
    .await;
    assert_eq!(
        improperly,
        Err((
            "org.bluez.Error.Failed".to_owned(),
            "Operation failed with ATT error: 0xfd".to_owned()
        ))
    );

    // Agents are registered per client.
    let agent = ObjectPath::try_from("/test/agent").unwrap();
    call(
        &conn,
        "/org/bluez",
        "org.bluez.AgentManager1",
        "RegisterAgent",
        &(&agent, "KeyboardDisplay"),
    )
    .await
    .unwrap();
    call(
        &conn,
        "/org/bluez",
        "org.bluez.AgentManager1",
        "RequestDefaultAgent",
        &(&agent,),
    )
    .await
    .unwrap();
    call(
        &conn,
        "/org/bluez",
        "org.bluez.AgentManager1",
        "UnregisterAgent",
        &(&agent,),
    )
    .await
    .unwrap();
    let gone = call(
        &conn,
        "/org/bluez",
        "org.bluez.AgentManager1",
        "UnregisterAgent",
        &(&agent,),
    )
    .await;
    assert_eq!(gone.unwrap_err().0, "org.bluez.Error.DoesNotExist");

    // Disconnect: properties fall back; GATT objects stay (Cache=always) and fail.
    call(
        &conn,
        &racp,
        "org.bluez.GattCharacteristic1",
        "StartNotify",
        &(),
    )
    .await
    .unwrap();
    call(&conn, DEVICE, "org.bluez.Device1", "Disconnect", &())
        .await
        .unwrap();
    let connected = device_props
        .get(iface("org.bluez.Device1"), "Connected")
        .await
        .unwrap();
    assert!(!bool::try_from(connected).unwrap());
    let offline = call(
        &conn,
        &feature,
        "org.bluez.GattCharacteristic1",
        "ReadValue",
        &(no_options(),),
    )
    .await;
    assert_eq!(
        offline,
        Err((
            "org.bluez.Error.Failed".to_owned(),
            "Not connected".to_owned()
        ))
    );

    // Notify sessions outlive the link: the client's is still there (asking again is "in
    // progress"), and it is registered again at the next connection.
    let notifying = racp_props
        .get(iface("org.bluez.GattCharacteristic1"), "Notifying")
        .await
        .unwrap();
    assert!(!bool::try_from(notifying).unwrap());
    let kept = call(
        &conn,
        &racp,
        "org.bluez.GattCharacteristic1",
        "StartNotify",
        &(),
    )
    .await;
    assert_eq!(kept.unwrap_err().0, "org.bluez.Error.InProgress");
    call(&conn, DEVICE, "org.bluez.Device1", "Connect", &())
        .await
        .unwrap();
    let notifying = racp_props
        .get(iface("org.bluez.GattCharacteristic1"), "Notifying")
        .await
        .unwrap();
    assert!(bool::try_from(notifying).unwrap());
    call(
        &conn,
        &racp,
        "org.bluez.GattCharacteristic1",
        "StopNotify",
        &(),
    )
    .await
    .unwrap();

    // A session whose client left the bus ends with it: nothing is registered at connection.
    let leaving = zbus::connection::Builder::address(bus.address())
        .unwrap()
        .build()
        .await
        .unwrap();
    call(
        &leaving,
        &racp,
        "org.bluez.GattCharacteristic1",
        "StartNotify",
        &(),
    )
    .await
    .unwrap();
    call(&conn, DEVICE, "org.bluez.Device1", "Disconnect", &())
        .await
        .unwrap();
    let name = leaving.unique_name().unwrap().to_owned();
    drop(leaving);
    let daemon = zbus::fdo::DBusProxy::new(&conn).await.unwrap();
    tokio::time::timeout(Duration::from_secs(10), async {
        while daemon.name_has_owner(name.clone().into()).await.unwrap() {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await
    .expect("the client left the bus");
    call(&conn, DEVICE, "org.bluez.Device1", "Connect", &())
        .await
        .unwrap();
    let notifying = racp_props
        .get(iface("org.bluez.GattCharacteristic1"), "Notifying")
        .await
        .unwrap();
    assert!(!bool::try_from(notifying).unwrap());
}
