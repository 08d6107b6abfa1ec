//! A private system bus for one test process: `dbus-daemon` with a permissive policy and its
//! socket in a temporary directory, killed by PID on drop.
//!
//! libdbus (under btleplug) reads `DBUS_SYSTEM_BUS_ADDRESS` once per process, so a process gets
//! one bus: run tests with `cargo nextest` (one process per test) or keep one test per test
//! binary under `cargo test`. The caller sets the variable before the first btleplug call.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use crate::error::SimError;

/// How long the daemon may take to listen.
const START_TIMEOUT: Duration = Duration::from_secs(10);

/// A running private `dbus-daemon`.
#[derive(Debug)]
pub struct DbusDaemon {
    child: Child,
    dir: PathBuf,
    address: String,
}

impl DbusDaemon {
    /// Starts `dbus-daemon` (from `PATH`) on a fresh socket and waits until it accepts
    /// connections.
    pub fn start() -> Result<Self, SimError> {
        static COUNTER: AtomicU32 = AtomicU32::new(0);
        let dir = std::env::temp_dir().join(format!(
            "relais-bluez-sim-{}-{}",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::create_dir_all(&dir).map_err(SimError::Io)?;
        let socket = dir.join("system_bus_socket");
        let config = dir.join("bus.conf");
        std::fs::write(&config, config_xml(&socket)).map_err(SimError::Io)?;
        let child = Command::new("dbus-daemon")
            .arg(format!("--config-file={}", config.display()))
            .arg("--nofork")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .spawn()
            .map_err(|e| {
                // Nothing else will remove the directory when the daemon never started.
                let _ = std::fs::remove_dir_all(&dir);
                SimError::Daemon(e)
            })?;
        let address = format!("unix:path={}", socket.display());
        let daemon = Self {
            child,
            dir,
            address,
        };
        daemon.wait_listening(&socket)?;
        Ok(daemon)
    }

    /// The bus address, for `DBUS_SYSTEM_BUS_ADDRESS` and for the simulator.
    pub fn address(&self) -> &str {
        &self.address
    }

    /// The daemon's process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    fn wait_listening(&self, socket: &Path) -> Result<(), SimError> {
        let deadline = Instant::now() + START_TIMEOUT;
        while Instant::now() < deadline {
            if std::os::unix::net::UnixStream::connect(socket).is_ok() {
                return Ok(());
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        Err(SimError::DaemonTimeout(self.address.clone()))
    }
}

impl Drop for DbusDaemon {
    fn drop(&mut self) {
        // Our own child, by PID; errors mean it is already gone.
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A system bus that lets anyone own and call anything (compare python-dbusmock's).
fn config_xml(socket: &Path) -> String {
    format!(
        "<!DOCTYPE busconfig PUBLIC \"-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN\" \
         \"http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd\">\n\
         <busconfig><type>system</type><listen>unix:path={}</listen><auth>EXTERNAL</auth>\
         <policy context=\"default\"><allow user=\"*\"/><allow own=\"*\"/>\
         <allow send_type=\"method_call\"/><allow send_destination=\"*\"/>\
         <allow receive_sender=\"*\"/></policy></busconfig>\n",
        socket.display()
    )
}
