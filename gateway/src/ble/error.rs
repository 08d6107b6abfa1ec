//! Errors of the BLE layer.

use std::time::Duration;

/// What can go wrong talking to devices.
#[derive(Debug, thiserror::Error)]
pub enum BleError {
    /// The Bluetooth stack (BlueZ over D-Bus) failed.
    #[error("bluetooth: {0}")]
    Stack(#[from] btleplug::Error),
    /// The system has no Bluetooth adapter.
    #[error("no Bluetooth adapter")]
    NoAdapter,
    /// No device with this address was seen.
    #[error("no device {0} seen (scan first)")]
    UnknownDevice(String),
    /// An operation took longer than allowed.
    #[error("{operation} timed out after {after:?}")]
    Timeout {
        /// What was attempted.
        operation: &'static str,
        /// The limit.
        after: Duration,
    },
    /// The device lacks a characteristic the session needs.
    #[error("the device has no characteristic 0x{0:04X}")]
    MissingCharacteristic(u16),
    /// The notification stream ended (the device disconnected).
    #[error("the notification stream ended")]
    StreamEnded,
    /// The consumer refused a record; nothing after it was committed.
    #[error("the consumer refused record {0}")]
    Rejected(u16),
    /// The consumer refused a measurement or did not answer in time.
    #[error("the consumer refused a measurement")]
    Refused,
    /// The consumer stopped listening.
    #[error("the consumer of the measurements is gone")]
    ConsumerGone,
    /// The glucose meter refused the catch-up or it timed out.
    #[error("glucose catch-up aborted: {0:?}")]
    Aborted(crate::ble::glucose_session::AbortReason),
}

/// Runs `future` with a limit, mapping the elapsed limit to [`BleError::Timeout`].
pub(crate) async fn within<T, E>(
    operation: &'static str,
    after: Duration,
    future: impl Future<Output = Result<T, E>>,
) -> Result<T, BleError>
where
    BleError: From<E>,
{
    match tokio::time::timeout(after, future).await {
        Ok(result) => result.map_err(BleError::from),
        Err(_) => Err(BleError::Timeout { operation, after }),
    }
}
