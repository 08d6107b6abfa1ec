//! Errors: those of the harness and the simulator for Rust callers, and the `org.bluez.Error.*`
//! names a D-Bus client (btleplug) sees.

use relais_firmware::gatt::AttError;

/// Why the harness or the simulator could not start or run.
#[derive(Debug, thiserror::Error)]
pub enum SimError {
    /// `dbus-daemon` could not be started (is the Debian `dbus` package installed?).
    #[error("cannot start dbus-daemon: {0}")]
    Daemon(#[source] std::io::Error),
    /// The private bus did not come up in time.
    #[error("dbus-daemon did not listen on {0} in time")]
    DaemonTimeout(String),
    /// A file of the private bus (config, socket directory) could not be written.
    #[error("cannot prepare the private bus directory: {0}")]
    Io(#[source] std::io::Error),
    /// The D-Bus connection or object server failed.
    #[error("D-Bus: {0}")]
    Bus(#[from] zbus::Error),
    /// A virtual device's firmware reported an error.
    #[error("virtual device: {0}")]
    Device(#[from] DeviceFault),
}

/// A firmware device refused to process an event (its own error, not an ATT refusal).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct DeviceFault(pub String);

/// The errors bluetoothd answers with, under the `org.bluez.Error` prefix.
#[derive(Debug, zbus::DBusError)]
#[zbus(prefix = "org.bluez.Error")]
pub enum BluezError {
    /// A D-Bus level failure.
    #[zbus(error)]
    ZBus(zbus::Error),
    /// `org.bluez.Error.Failed`.
    Failed(String),
    /// `org.bluez.Error.NotPermitted`.
    NotPermitted(String),
    /// `org.bluez.Error.NotSupported`.
    NotSupported(String),
    /// `org.bluez.Error.InvalidArguments`.
    InvalidArguments(String),
    /// `org.bluez.Error.InvalidValueLength`.
    InvalidValueLength(String),
    /// `org.bluez.Error.InvalidOffset`.
    InvalidOffset(String),
    /// `org.bluez.Error.NotAuthorized`.
    NotAuthorized(String),
    /// `org.bluez.Error.DoesNotExist`.
    DoesNotExist(String),
    /// `org.bluez.Error.NotConnected`.
    NotConnected(String),
    /// `org.bluez.Error.AlreadyExists`.
    AlreadyExists(String),
    /// `org.bluez.Error.AuthenticationRejected`.
    AuthenticationRejected(String),
    /// `org.bluez.Error.NotReady` (the adapter is off).
    NotReady(String),
    /// `org.bluez.Error.InProgress`.
    InProgress(String),
}

impl BluezError {
    /// The error bluetoothd's `create_gatt_dbus_error` gives for an ATT error of the peer.
    pub fn from_att(error: AttError) -> Self {
        match error {
            AttError::ReadNotPermitted => Self::NotPermitted("Read not permitted".into()),
            AttError::WriteNotPermitted => Self::NotPermitted("Write not permitted".into()),
            AttError::InsufficientAuthentication | AttError::InsufficientEncryption => {
                Self::NotPermitted("Not paired".into())
            }
            AttError::InvalidOffset => Self::InvalidOffset("Invalid offset".into()),
            AttError::InvalidAttributeValueLength => {
                Self::InvalidValueLength("Invalid Length".into())
            }
            AttError::RequestNotSupported => {
                Self::NotSupported("Operation is not supported".into())
            }
            other => Self::Failed(format!(
                "Operation failed with ATT error: 0x{:02x}",
                other.code()
            )),
        }
    }
}

impl From<DeviceFault> for BluezError {
    fn from(fault: DeviceFault) -> Self {
        Self::Failed(format!("Operation failed: {fault}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn name_and_text(e: BluezError) -> (String, String) {
        use zbus::DBusError as _;
        (
            e.name().to_string(),
            e.description().unwrap_or_default().to_owned(),
        )
    }

    #[test]
    fn att_errors_map_to_bluetoothd_errors() {
        assert_eq!(
            name_and_text(BluezError::from_att(AttError::InsufficientAuthentication)),
            ("org.bluez.Error.NotPermitted".into(), "Not paired".into())
        );
        assert_eq!(
            name_and_text(BluezError::from_att(AttError::CccdImproperlyConfigured)),
            (
                "org.bluez.Error.Failed".into(),
                "Operation failed with ATT error: 0xfd".into()
            )
        );
        assert_eq!(
            name_and_text(BluezError::from_att(AttError::InvalidAttributeValueLength)).0,
            "org.bluez.Error.InvalidValueLength"
        );
    }
}
