//! A meter that is not paired: its encrypted characteristics answer "Not paired" (the firmware's
//! Insufficient Authentication) until Device1.Pair, which asks the default agent for a passkey.
//!
//! Needs `dbus-daemon` (fails without it).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};

use relais_bluez_sim::{DbusDaemon, GlucoseMeterSim, Simulator, sig_uuid};
use zbus::fdo::{ObjectManagerProxy, PropertiesProxy};
use zbus::names::{InterfaceName, OwnedInterfaceName};
use zbus::zvariant::{ObjectPath, OwnedObjectPath};
use zbus::{Connection, interface};

const DEVICE: &str = "/org/bluez/hci0/dev_C0_FF_EE_00_00_03";
const AGENT: &str = "/test/agent";

struct Agent {
    asked: Arc<AtomicU32>,
}

#[interface(name = "org.bluez.Agent1")]
impl Agent {
    async fn request_passkey(&self, _device: OwnedObjectPath) -> u32 {
        self.asked.fetch_add(1, Ordering::SeqCst);
        123_456
    }

    async fn release(&self) {}

    async fn cancel(&self) {}
}

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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pairing_through_the_agent_opens_the_encrypted_characteristics() {
    let bus = DbusDaemon::start().expect("dbus-daemon (Debian package `dbus`) must be installed");
    let meter = GlucoseMeterSim::with_records("C0:FF:EE:00:00:03", 1)
        .unwrap()
        .unpaired();
    let _sim = Simulator::start(bus.address(), vec![Box::new(meter)])
        .await
        .unwrap();
    let asked = Arc::new(AtomicU32::new(0));
    let conn = zbus::connection::Builder::address(bus.address())
        .unwrap()
        .serve_at(
            AGENT,
            Agent {
                asked: Arc::clone(&asked),
            },
        )
        .unwrap()
        .build()
        .await
        .unwrap();
    let agent = ObjectPath::try_from(AGENT).unwrap();
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
        "/org/bluez/hci0",
        "org.bluez.Adapter1",
        "StartDiscovery",
        &(),
    )
    .await
    .unwrap();
    call(&conn, DEVICE, "org.bluez.Device1", "Connect", &())
        .await
        .unwrap();
    let objects = ObjectManagerProxy::builder(&conn)
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
    let racp_uuid = sig_uuid(relais_protocol::uuid::RECORD_ACCESS_CONTROL_POINT);
    let chrc =
        OwnedInterfaceName::from(InterfaceName::try_from("org.bluez.GattCharacteristic1").unwrap());
    let racp = objects
        .iter()
        .find(|(_, ifaces)| {
            ifaces
                .get(&chrc)
                .and_then(|p| p.get("UUID"))
                .is_some_and(|u| String::try_from(u.try_clone().unwrap()).unwrap() == racp_uuid)
        })
        .map(|(p, _)| p.to_string())
        .expect("the RACP characteristic");

    let refused = call(
        &conn,
        &racp,
        "org.bluez.GattCharacteristic1",
        "StartNotify",
        &(),
    )
    .await;
    assert_eq!(
        refused,
        Err((
            "org.bluez.Error.NotPermitted".to_owned(),
            "Not paired".to_owned()
        ))
    );

    call(&conn, DEVICE, "org.bluez.Device1", "Pair", &())
        .await
        .unwrap();
    assert_eq!(
        asked.load(Ordering::SeqCst),
        1,
        "the agent gave the passkey"
    );
    let paired = PropertiesProxy::builder(&conn)
        .destination("org.bluez")
        .unwrap()
        .path(DEVICE)
        .unwrap()
        .build()
        .await
        .unwrap()
        .get(
            InterfaceName::try_from("org.bluez.Device1").unwrap(),
            "Paired",
        )
        .await
        .unwrap();
    assert!(bool::try_from(paired).unwrap());

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
