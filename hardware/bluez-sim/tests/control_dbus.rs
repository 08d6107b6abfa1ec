//! `org.bluezsim.Control1` at `/org/bluezsim`, driven by a plain zbus client as another process
//! would: an ATT error injected on a read, the adapter switched off (StartDiscovery and Connect
//! fail with `NotReady`) and on again, and the control's own errors.
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

use relais_bluez_sim::{
    CONTROL_PATH, DbusDaemon, GlucoseMeterSim, LinkTiming, Simulator, sig_uuid,
};
use relais_protocol::uuid as sig;
use zbus::Connection;
use zbus::zvariant::OwnedValue;

const ADDRESS: &str = "C0:FF:EE:00:00:21";
const DEVICE: &str = "/org/bluez/hci0/dev_C0_FF_EE_00_00_21";
const ADAPTER: &str = "/org/bluez/hci0";

async fn call<R>(
    conn: &Connection,
    path: &str,
    interface: &str,
    method: &str,
    body: &(impl serde::Serialize + zbus::zvariant::DynamicType),
) -> Result<R, (String, String)>
where
    R: for<'d> zbus::zvariant::DynamicDeserialize<'d>,
{
    match conn
        .call_method(Some("org.bluez"), path, Some(interface), method, body)
        .await
    {
        Ok(reply) => Ok(reply.body().deserialize::<R>().unwrap()),
        Err(zbus::Error::MethodError(name, text, _)) => {
            Err((name.to_string(), text.unwrap_or_default()))
        }
        Err(other) => panic!("{method}: {other}"),
    }
}

async fn control(
    conn: &Connection,
    method: &str,
    body: &(impl serde::Serialize + zbus::zvariant::DynamicType),
) -> Result<(), (String, String)> {
    call::<()>(conn, CONTROL_PATH, "org.bluezsim.Control1", method, body).await
}

/// The object path of the characteristic `short` of the device, found in the managed objects.
async fn characteristic(conn: &Connection, short: u16) -> String {
    let objects = zbus::fdo::ObjectManagerProxy::builder(conn)
        .destination("org.bluez")
        .unwrap()
        .path("/")
        .unwrap()
        .build()
        .await
        .unwrap()
        .get_managed_objects()
        .await
        .unwrap();
    let wanted = sig_uuid(short);
    objects
        .iter()
        .find_map(|(path, ifaces)| {
            let uuid = ifaces
                .get("org.bluez.GattCharacteristic1")?
                .get("UUID")?
                .downcast_ref::<String>()
                .ok()?;
            (uuid == wanted).then(|| path.to_string())
        })
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn control1_injects_faults_over_dbus() {
    let bus = DbusDaemon::start().expect("dbus-daemon (Debian package `dbus`) must be installed");
    let meter = GlucoseMeterSim::with_records(ADDRESS, 1).unwrap();
    let sim = Simulator::start(bus.address(), vec![Box::new(meter)])
        .await
        .unwrap();
    let conn = zbus::connection::Builder::address(bus.address())
        .unwrap()
        .build()
        .await
        .unwrap();
    let none: HashMap<String, OwnedValue> = HashMap::new();

    call::<()>(&conn, ADAPTER, "org.bluez.Adapter1", "StartDiscovery", &())
        .await
        .unwrap();
    call::<()>(&conn, DEVICE, "org.bluez.Device1", "Connect", &())
        .await
        .unwrap();
    let feature = characteristic(&conn, sig::GLUCOSE_FEATURE).await;

    // An injected ATT error, by code.
    control(
        &conn,
        "FailNext",
        &(ADDRESS, sig_uuid(sig::GLUCOSE_FEATURE), 0x0e_u8),
    )
    .await
    .unwrap();
    let err = call::<Vec<u8>>(
        &conn,
        &feature,
        "org.bluez.GattCharacteristic1",
        "ReadValue",
        &(&none,),
    )
    .await
    .unwrap_err();
    assert_eq!(
        err,
        (
            "org.bluez.Error.Failed".into(),
            "Operation failed with ATT error: 0x0e".into()
        )
    );
    let value: Vec<u8> = call(
        &conn,
        &feature,
        "org.bluez.GattCharacteristic1",
        "ReadValue",
        &(&none,),
    )
    .await
    .unwrap();
    assert_eq!(value.len(), 2);

    // The link's pace.
    control(&conn, "SetLinkTiming", &(15_000_u32, 4_u32))
        .await
        .unwrap();
    assert_eq!(
        sim.control().link_timing().await.unwrap(),
        LinkTiming {
            connection_interval: Duration::from_millis(15),
            packets_per_event: 4,
        }
    );
    let err = control(&conn, "SetLinkTiming", &(0_u32, 4_u32))
        .await
        .unwrap_err();
    assert_eq!(err.0, "org.bluezsim.Error.InvalidArguments");

    // The control's own errors.
    let err = control(&conn, "DropLink", &("00:00:00:00:00:00",))
        .await
        .unwrap_err();
    assert_eq!(err.0, "org.bluezsim.Error.DoesNotExist");
    let err = control(&conn, "FailNext", &(ADDRESS, sig_uuid(0x2a00), 0x0e_u8))
        .await
        .unwrap_err();
    assert_eq!(err.0, "org.bluezsim.Error.DoesNotExist");
    let err = control(
        &conn,
        "FailNext",
        &(ADDRESS, sig_uuid(sig::GLUCOSE_FEATURE), 0x04_u8),
    )
    .await
    .unwrap_err();
    assert_eq!(err.0, "org.bluezsim.Error.InvalidArguments");

    // A dropped link, then the adapter off: the device is disconnected, discovery and connect
    // are not ready, Powered cannot be set.
    control(&conn, "DropLink", &(ADDRESS,)).await.unwrap();
    let device = zbus::fdo::PropertiesProxy::builder(&conn)
        .destination("org.bluez")
        .unwrap()
        .path(DEVICE)
        .unwrap()
        .build()
        .await
        .unwrap();
    let device_iface = zbus::names::InterfaceName::try_from("org.bluez.Device1").unwrap();
    let connected = device.get(device_iface.clone(), "Connected").await.unwrap();
    assert!(!bool::try_from(connected).unwrap());
    control(&conn, "PowerOff", &()).await.unwrap();
    let not_ready = (
        "org.bluez.Error.NotReady".to_owned(),
        "Resource Not Ready".to_owned(),
    );
    assert_eq!(
        call::<()>(&conn, DEVICE, "org.bluez.Device1", "Connect", &())
            .await
            .unwrap_err(),
        not_ready
    );
    assert_eq!(
        call::<()>(&conn, ADAPTER, "org.bluez.Adapter1", "StartDiscovery", &())
            .await
            .unwrap_err(),
        not_ready
    );
    let adapter = zbus::fdo::PropertiesProxy::builder(&conn)
        .destination("org.bluez")
        .unwrap()
        .path(ADAPTER)
        .unwrap()
        .build()
        .await
        .unwrap();
    let adapter_iface = zbus::names::InterfaceName::try_from("org.bluez.Adapter1").unwrap();
    assert!(
        adapter
            .set(adapter_iface.clone(), "Powered", true.into())
            .await
            .is_err()
    );

    // On again.
    control(&conn, "PowerOn", &()).await.unwrap();
    adapter
        .set(adapter_iface, "Powered", true.into())
        .await
        .unwrap();
    call::<()>(&conn, DEVICE, "org.bluez.Device1", "Connect", &())
        .await
        .unwrap();
}
