//! The demo's private system bus: busd (a D-Bus broker written in Rust) on a thread of its own,
//! so the demo needs no `dbus-daemon` installed; `dbus-daemon` from `PATH` if busd cannot
//! start.

use std::path::{Path, PathBuf};
use std::pin::pin;
use std::sync::mpsc as std_mpsc;
use std::thread::JoinHandle;
use std::time::Duration;

use anyhow::Context as _;
use futures::channel::oneshot;
use futures::future::{Either, select};
use relais_bluez_sim::DbusDaemon;

/// How long the bus may take to listen.
const START_TIMEOUT: Duration = Duration::from_secs(10);

/// The socket of the demo's bus inside `dir`, and the address clients use.
pub fn address_in(dir: &Path) -> (PathBuf, String) {
    let socket = dir.join("system_bus_socket");
    let address = format!("unix:path={}", socket.display());
    (socket, address)
}

/// A running private bus; stopped (and its socket removed) on drop.
#[derive(Debug)]
pub enum PrivateBus {
    /// busd, in this process.
    Embedded(EmbeddedBus),
    /// A `dbus-daemon` child, killed and reaped on drop.
    Daemon(DbusDaemon),
}

/// Which broker to run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Broker {
    /// busd in this process, `dbus-daemon` if it cannot start.
    Busd,
    /// `dbus-daemon` from `PATH`, as a child process.
    DbusDaemon,
}

impl PrivateBus {
    /// busd listening on `socket`; else a `dbus-daemon` (which picks its own socket: the
    /// address it returns replaces `address`).
    pub fn start(broker: Broker, socket: &Path, address: &str) -> anyhow::Result<(Self, String)> {
        if broker == Broker::DbusDaemon {
            let daemon = DbusDaemon::start()
                .context("dbus-daemon est introuvable / dbus-daemon is missing (Debian `dbus`)")?;
            let address = daemon.address().to_owned();
            return Ok((Self::Daemon(daemon), address));
        }
        match EmbeddedBus::start(socket, address) {
            Ok(bus) => Ok((Self::Embedded(bus), address.to_owned())),
            Err(busd_error) => {
                tracing::warn!("busd did not start ({busd_error:#}); trying dbus-daemon");
                let daemon = DbusDaemon::start().with_context(|| {
                    format!(
                        "aucun bus D-Bus privé : busd n'a pas démarré ({busd_error:#}) et \
                         dbus-daemon est introuvable (paquet Debian `dbus`) / no private D-Bus \
                         bus: busd did not start and dbus-daemon is missing (Debian package \
                         `dbus`)"
                    )
                })?;
                let address = daemon.address().to_owned();
                Ok((Self::Daemon(daemon), address))
            }
        }
    }

    /// Which broker it is, for the summary.
    pub fn describe(&self) -> String {
        match self {
            Self::Embedded(bus) => bus.describe().to_owned(),
            Self::Daemon(d) => format!("dbus-daemon (pid {})", d.pid()),
        }
    }
}

/// busd on its own thread and runtime (it runs on zruntime, not tokio).
#[derive(Debug)]
pub struct EmbeddedBus {
    stop: Option<oneshot::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl EmbeddedBus {
    fn describe(&self) -> &'static str {
        "busd (in-process)"
    }

    fn start(socket: &Path, address: &str) -> anyhow::Result<Self> {
        let (ready, started) = std_mpsc::channel::<Result<(), String>>();
        let (stop, stopped) = oneshot::channel::<()>();
        let address = address.to_owned();
        let thread = std::thread::Builder::new()
            .name("dbus-broker".to_owned())
            .spawn(move || {
                zruntime::block_on(serve(address, ready, stopped));
            })
            .context("starting the bus thread")?;
        let bus = Self {
            stop: Some(stop),
            thread: Some(thread),
        };
        match started.recv_timeout(START_TIMEOUT) {
            Ok(Ok(())) => {}
            Ok(Err(e)) => anyhow::bail!("busd: {e}"),
            Err(_) => anyhow::bail!("busd did not listen in time"),
        }
        // Accepting connections, as clients will see it.
        if std::os::unix::net::UnixStream::connect(socket).is_err() {
            anyhow::bail!("busd does not accept connections on {}", socket.display());
        }
        Ok(bus)
    }
}

/// Runs the bus until `stopped`, then removes its socket.
async fn serve(
    address: String,
    ready: std_mpsc::Sender<Result<(), String>>,
    stopped: oneshot::Receiver<()>,
) {
    let mut bus = match busd::bus::Bus::for_address(Some(&address)).await {
        Ok(bus) => bus,
        Err(e) => {
            let _ = ready.send(Err(format!("{e:#}")));
            return;
        }
    };
    let _ = ready.send(Ok(()));
    {
        let running = pin!(bus.run());
        if let Either::Right((Err(e), _)) = select(stopped, running).await {
            tracing::error!("the demo's D-Bus broker stopped: {e:#}");
        }
    }
    if let Err(e) = bus.cleanup().await {
        tracing::warn!("removing the bus socket: {e:#}");
    }
}

impl Drop for EmbeddedBus {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}
