//! Generic listening: every known measurement characteristic of a connected device, each value
//! decoded (the `relais decode` JSON contract) with the device's identity.

use std::time::Duration;

use futures::StreamExt;
use relais_protocol::Quirks;
use serde::Serialize;

use crate::ble::device::{Device, Identity, MEASUREMENT_CHARACTERISTICS};
use crate::ble::error::BleError;

/// One decoded value from a device.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Received {
    /// The device.
    pub device: Identity,
    /// The characteristic, `0x2A9D`.
    pub characteristic: String,
    /// The decoded value (`relais decode` JSON, with `readings`).
    pub value: serde_json::Value,
}

/// Subscribes to every measurement characteristic the device has (see
/// [`MEASUREMENT_CHARACTERISTICS`]) and hands each decoded value to `on_value` for `duration`.
/// Values that do not decode are skipped (logged). Returns how many were handed over.
pub async fn listen(
    device: &Device,
    duration: Duration,
    mut on_value: impl FnMut(Received),
) -> Result<usize, BleError> {
    let mut notifications = device.notifications().await?;
    let subscribed: Vec<u16> = MEASUREMENT_CHARACTERISTICS
        .into_iter()
        .filter(|&c| device.has(c))
        .collect();
    for &characteristic in &subscribed {
        device.subscribe(characteristic).await?;
    }
    let deadline = tokio::time::Instant::now() + duration;
    let mut count = 0usize;
    loop {
        let (characteristic, bytes) =
            match tokio::time::timeout_at(deadline, notifications.next()).await {
                Ok(Some(n)) => n,
                Ok(None) => return Ok(count),
                Err(_) => return Ok(count),
            };
        if !subscribed.contains(&characteristic) {
            continue;
        }
        match crate::decode::characteristic(characteristic, &bytes, Quirks::NONE) {
            Ok(value) => {
                count = count.saturating_add(1);
                on_value(Received {
                    device: device.identity().clone(),
                    characteristic: format!("0x{characteristic:04X}"),
                    value,
                });
            }
            Err(e) => tracing::warn!("skipping a value of 0x{characteristic:04X}: {e}"),
        }
    }
}
