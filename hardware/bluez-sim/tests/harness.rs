//! The private bus: it starts (dbus-daemon must be installed: this test fails, not skips,
//! without it), accepts connections, and is gone after drop.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::Path;

use relais_bluez_sim::DbusDaemon;

#[test]
fn the_private_bus_starts_listens_and_dies_with_its_handle() {
    let bus = DbusDaemon::start().expect("dbus-daemon (Debian package `dbus`) must be installed");
    let socket = bus
        .address()
        .strip_prefix("unix:path=")
        .expect("a unix socket address")
        .to_owned();
    assert!(std::os::unix::net::UnixStream::connect(&socket).is_ok());
    let pid = bus.pid();
    assert!(Path::new(&format!("/proc/{pid}")).exists());
    drop(bus);
    assert!(std::os::unix::net::UnixStream::connect(&socket).is_err());
    // Reaped by drop: no zombie left under our pid.
    assert!(!Path::new(&format!("/proc/{pid}")).exists());
}
