//! Pairing over BlueZ's D-Bus API: btleplug has none.
//!
//! An `org.bluez.Agent1` object is served on a system bus connection and registered as the
//! default agent with `AgentManager1`; its `RequestPasskey` answers the passkey the user gives.
//! Then `Device1.Pair` is called on the device, with a timeout, and BlueZ's error names become
//! [`PairError`]s (`AlreadyExists`: already paired, which is a success).

use std::sync::Arc;
use std::time::Duration;

use zbus::zvariant::{ObjectPath, OwnedObjectPath};
use zbus::{Connection, interface};

/// Where the agent is served.
pub const AGENT_PATH: &str = "/org/relais/agent";

/// Default limit for `Device1.Pair`.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(60);

/// Largest passkey (six decimal digits).
pub const MAX_PASSKEY: u32 = 999_999;

/// Gives the passkey for a device (its BlueZ object path); `None`: the user gave none.
pub type PasskeySource = Arc<dyn Fn(&str) -> Option<u32> + Send + Sync>;

/// The IO capability the agent announces.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Capability {
    /// The user can type a passkey.
    KeyboardOnly,
    /// The user can type a passkey and see one.
    KeyboardDisplay,
}

impl Capability {
    /// The name `AgentManager1.RegisterAgent` takes.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::KeyboardOnly => "KeyboardOnly",
            Self::KeyboardDisplay => "KeyboardDisplay",
        }
    }
}

/// How a pairing ended well.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Paired {
    /// A new bond was made.
    Now,
    /// BlueZ already held a bond with the device.
    Already,
}

/// What can go wrong pairing.
#[derive(Debug, thiserror::Error)]
pub enum PairError {
    /// The address is not `AA:BB:CC:DD:EE:FF`.
    #[error("not a Bluetooth address: {0}")]
    InvalidAddress(String),
    /// BlueZ knows no such device (scan first).
    #[error("BlueZ knows no device {0} (scan first)")]
    UnknownDevice(String),
    /// The passkey or the device's answer was wrong.
    #[error("authentication failed: {0}")]
    AuthenticationFailed(String),
    /// The pairing was canceled (by the device, the user or BlueZ).
    #[error("authentication canceled: {0}")]
    AuthenticationCanceled(String),
    /// The agent refused (no passkey given) or the device rejected the pairing.
    #[error("authentication rejected: {0}")]
    AuthenticationRejected(String),
    /// The device did not answer in time (BlueZ's own timeout).
    #[error("authentication timed out: {0}")]
    AuthenticationTimeout(String),
    /// No connection could be made to the device.
    #[error("connection attempt failed: {0}")]
    ConnectionAttemptFailed(String),
    /// Another pairing is under way.
    #[error("a pairing is already in progress: {0}")]
    InProgress(String),
    /// The adapter is not ready (powered off).
    #[error("the adapter is not ready: {0}")]
    NotReady(String),
    /// `Device1.Pair` took longer than allowed.
    #[error("pairing timed out after {0:?}")]
    Timeout(Duration),
    /// Another BlueZ error.
    #[error("{name}: {message}")]
    Bluez {
        /// The D-Bus error name.
        name: String,
        /// Its message.
        message: String,
    },
    /// The D-Bus connection failed.
    #[error("d-bus: {0}")]
    Dbus(#[from] zbus::Error),
}

/// Errors the agent answers BlueZ with.
#[derive(Debug, zbus::DBusError)]
#[zbus(prefix = "org.bluez.Error")]
pub enum AgentError {
    /// A D-Bus level failure.
    #[zbus(error)]
    ZBus(zbus::Error),
    /// `org.bluez.Error.Rejected`.
    Rejected(String),
    /// `org.bluez.Error.Canceled`.
    Canceled(String),
}

/// The `org.bluez.Agent1` object: passkeys from a [`PasskeySource`], authorisations only for
/// the device being paired.
pub struct Agent {
    device: String,
    passkey: PasskeySource,
}

impl std::fmt::Debug for Agent {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Agent")
            .field("device", &self.device)
            .finish_non_exhaustive()
    }
}

impl Agent {
    /// An agent for pairing the device at BlueZ object path `device`.
    pub fn new(device: String, passkey: PasskeySource) -> Self {
        Self { device, passkey }
    }

    fn check_device(&self, device: &OwnedObjectPath) -> Result<(), AgentError> {
        if device.as_str() == self.device {
            Ok(())
        } else {
            Err(AgentError::Rejected(format!(
                "not pairing {}",
                device.as_str()
            )))
        }
    }

    async fn ask(&self, device: &OwnedObjectPath) -> Result<u32, AgentError> {
        self.check_device(device)?;
        let source = Arc::clone(&self.passkey);
        let path = device.to_string();
        // The source may block (a prompt on stdin).
        let passkey = tokio::task::spawn_blocking(move || source(&path))
            .await
            .map_err(|e| AgentError::Canceled(e.to_string()))?;
        match passkey {
            Some(p) if p <= MAX_PASSKEY => Ok(p),
            Some(p) => Err(AgentError::Rejected(format!(
                "passkey {p} has over 6 digits"
            ))),
            None => Err(AgentError::Rejected("no passkey given".into())),
        }
    }
}

#[interface(name = "org.bluez.Agent1")]
impl Agent {
    /// The agent was unregistered.
    async fn release(&self) {
        tracing::debug!("agent released");
    }

    /// PIN codes are for classic Bluetooth: refused.
    async fn request_pin_code(&self, _device: OwnedObjectPath) -> Result<String, AgentError> {
        Err(AgentError::Rejected("PIN codes are not supported".into()))
    }

    /// Logs the PIN code to show.
    async fn display_pin_code(&self, device: OwnedObjectPath, pincode: String) {
        tracing::info!(device = %device.as_str(), "PIN code {pincode}");
    }

    /// The passkey the user read on the device.
    async fn request_passkey(&self, device: OwnedObjectPath) -> Result<u32, AgentError> {
        self.ask(&device).await
    }

    /// Logs the passkey to show.
    async fn display_passkey(&self, device: OwnedObjectPath, passkey: u32, entered: u16) {
        tracing::info!(device = %device.as_str(), entered, "passkey {passkey:06}");
    }

    /// Numeric comparison: confirmed when the user's passkey is the one shown.
    async fn request_confirmation(
        &self,
        device: OwnedObjectPath,
        passkey: u32,
    ) -> Result<(), AgentError> {
        if self.ask(&device).await? == passkey {
            Ok(())
        } else {
            Err(AgentError::Rejected("the passkeys differ".into()))
        }
    }

    /// "Just works" pairing: allowed for the device being paired only.
    async fn request_authorization(&self, device: OwnedObjectPath) -> Result<(), AgentError> {
        self.check_device(&device)
    }

    /// Services of the device being paired are allowed; others refused.
    async fn authorize_service(
        &self,
        device: OwnedObjectPath,
        _uuid: String,
    ) -> Result<(), AgentError> {
        self.check_device(&device)
    }

    /// BlueZ gave up the request.
    async fn cancel(&self) {
        tracing::info!(device = %self.device, "pairing request canceled");
    }
}

/// The BlueZ object path of `address` on hci0: `/org/bluez/hci0/dev_AA_BB_CC_DD_EE_FF`.
pub fn device_path(address: &str) -> Result<String, PairError> {
    let parts: Vec<&str> = address.split(':').collect();
    let valid = parts.len() == 6
        && parts
            .iter()
            .all(|p| p.len() == 2 && p.chars().all(|c| c.is_ascii_hexdigit()));
    if !valid {
        return Err(PairError::InvalidAddress(address.to_owned()));
    }
    Ok(format!(
        "/org/bluez/hci0/dev_{}",
        parts.join("_").to_ascii_uppercase()
    ))
}

/// Whether BlueZ holds a bond with `address` (`Device1.Paired`, which btleplug does not
/// expose); `None` when BlueZ cannot tell.
pub async fn is_paired(conn: &Connection, address: &str) -> Option<bool> {
    let path = device_path(address).ok()?;
    let proxy = zbus::Proxy::new(conn, "org.bluez", path, "org.bluez.Device1")
        .await
        .ok()?;
    proxy.get_property::<bool>("Paired").await.ok()
}

/// Maps a BlueZ error (name, message) of `Device1.Pair`.
pub fn from_bluez(address: &str, name: &str, message: String) -> Result<Paired, PairError> {
    let short = name.strip_prefix("org.bluez.Error.").unwrap_or(name);
    match short {
        "AlreadyExists" => Ok(Paired::Already),
        "AuthenticationFailed" => Err(PairError::AuthenticationFailed(message)),
        "AuthenticationCanceled" => Err(PairError::AuthenticationCanceled(message)),
        "AuthenticationRejected" => Err(PairError::AuthenticationRejected(message)),
        "AuthenticationTimeout" => Err(PairError::AuthenticationTimeout(message)),
        "ConnectionAttemptFailed" => Err(PairError::ConnectionAttemptFailed(message)),
        "InProgress" => Err(PairError::InProgress(message)),
        "NotReady" => Err(PairError::NotReady(message)),
        "DoesNotExist" | "org.freedesktop.DBus.Error.UnknownObject" => {
            Err(PairError::UnknownDevice(address.to_owned()))
        }
        _ => Err(PairError::Bluez {
            name: name.to_owned(),
            message,
        }),
    }
}

fn map_call<T>(address: &str, result: Result<T, zbus::Error>) -> Result<Paired, PairError> {
    match result {
        Ok(_) => Ok(Paired::Now),
        Err(zbus::Error::MethodError(name, text, _)) => {
            from_bluez(address, name.as_str(), text.unwrap_or_default())
        }
        Err(other) => Err(other.into()),
    }
}

async fn bluez(
    conn: &Connection,
    path: &str,
    interface: &str,
    method: &str,
    body: &(impl serde::Serialize + zbus::zvariant::DynamicType),
) -> Result<(), zbus::Error> {
    conn.call_method(Some("org.bluez"), path, Some(interface), method, body)
        .await
        .map(|_| ())
}

/// Pairs with `address` on the system bus: serves and registers the agent (as default agent,
/// with `capability`), calls `Device1.Pair` within `timeout`, then unregisters the agent.
pub async fn pair(
    address: &str,
    capability: Capability,
    passkey: PasskeySource,
    timeout: Duration,
) -> Result<Paired, PairError> {
    let device = device_path(address)?;
    let conn = zbus::connection::Builder::system()?
        .serve_at(AGENT_PATH, Agent::new(device.clone(), passkey))?
        .build()
        .await?;
    let agent = ObjectPath::try_from(AGENT_PATH).map_err(zbus::Error::from)?;
    let manager = "org.bluez.AgentManager1";
    bluez(
        &conn,
        "/org/bluez",
        manager,
        "RegisterAgent",
        &(&agent, capability.as_str()),
    )
    .await?;
    let outcome = match bluez(
        &conn,
        "/org/bluez",
        manager,
        "RequestDefaultAgent",
        &(&agent,),
    )
    .await
    {
        Ok(()) => {
            let call = conn.call_method(
                Some("org.bluez"),
                device.as_str(),
                Some("org.bluez.Device1"),
                "Pair",
                &(),
            );
            match tokio::time::timeout(timeout, call).await {
                Ok(result) => map_call(address, result),
                Err(_) => {
                    // Best effort: BlueZ may still be waiting on the device.
                    let _ = bluez(&conn, &device, "org.bluez.Device1", "CancelPairing", &()).await;
                    Err(PairError::Timeout(timeout))
                }
            }
        }
        Err(e) => Err(e.into()),
    };
    if let Err(e) = bluez(&conn, "/org/bluez", manager, "UnregisterAgent", &(&agent,)).await {
        tracing::warn!("unregistering the agent failed: {e}");
    }
    outcome
}

/// Removes the bond and BlueZ's record of `address` (`Adapter1.RemoveDevice`): the device must
/// be paired again before its encrypted characteristics can be read.
pub async fn unpair(address: &str) -> Result<(), PairError> {
    let device = device_path(address)?;
    let conn = Connection::system().await?;
    let path = ObjectPath::try_from(device.as_str()).map_err(zbus::Error::from)?;
    match bluez(
        &conn,
        "/org/bluez/hci0",
        "org.bluez.Adapter1",
        "RemoveDevice",
        &(&path,),
    )
    .await
    {
        Ok(()) => Ok(()),
        Err(zbus::Error::MethodError(name, text, _)) => {
            from_bluez(address, name.as_str(), text.unwrap_or_default()).map(|_| ())
        }
        Err(other) => Err(other.into()),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn device_paths_follow_bluez() {
        assert_eq!(
            device_path("c0:ff:ee:00:00:03").unwrap(),
            "/org/bluez/hci0/dev_C0_FF_EE_00_00_03"
        );
        assert!(matches!(
            device_path("C0:FF:EE:00:00"),
            Err(PairError::InvalidAddress(_))
        ));
        assert!(device_path("C0:FF:EE:00:00:0G").is_err());
    }

    #[test]
    fn bluez_errors_are_typed() {
        let a = "C0:FF:EE:00:00:03";
        assert_eq!(
            from_bluez(a, "org.bluez.Error.AlreadyExists", String::new()).unwrap(),
            Paired::Already
        );
        assert!(matches!(
            from_bluez(a, "org.bluez.Error.AuthenticationFailed", "x".into()),
            Err(PairError::AuthenticationFailed(_))
        ));
        assert!(matches!(
            from_bluez(a, "org.bluez.Error.AuthenticationCanceled", "x".into()),
            Err(PairError::AuthenticationCanceled(_))
        ));
        assert!(matches!(
            from_bluez(a, "org.freedesktop.DBus.Error.UnknownObject", "x".into()),
            Err(PairError::UnknownDevice(_))
        ));
        assert!(matches!(
            from_bluez(a, "org.bluez.Error.Failed", "x".into()),
            Err(PairError::Bluez { .. })
        ));
    }
}
