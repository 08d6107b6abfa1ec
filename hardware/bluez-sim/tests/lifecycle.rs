//! The simulator owns `org.bluez` while it lives and lets it go when dropped, so a test can
//! wait for the name before starting its client.
//!
//! Needs `dbus-daemon` (fails without it).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use relais_bluez_sim::{DbusDaemon, GlucoseMeterSim, Simulator};
use zbus::fdo::DBusProxy;
use zbus::names::BusName;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_simulator_owns_org_bluez_until_dropped() {
    let bus = DbusDaemon::start().expect("dbus-daemon (Debian package `dbus`) must be installed");
    let conn = zbus::connection::Builder::address(bus.address())
        .unwrap()
        .build()
        .await
        .unwrap();
    let dbus = DBusProxy::new(&conn).await.unwrap();
    let name = BusName::try_from("org.bluez").unwrap();
    assert!(!dbus.name_has_owner(name.clone()).await.unwrap());

    let meter = GlucoseMeterSim::with_records("C0:FF:EE:00:00:06", 0).unwrap();
    let sim = Simulator::start(bus.address(), vec![Box::new(meter)])
        .await
        .unwrap();
    assert!(dbus.name_has_owner(name.clone()).await.unwrap());

    drop(sim);
    let released = tokio::time::timeout(Duration::from_secs(5), async {
        while dbus.name_has_owner(name.clone()).await.unwrap() {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await;
    assert!(released.is_ok(), "org.bluez released after drop");
}
