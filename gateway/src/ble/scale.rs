//! The scale session: Weight Measurement indications, decoded. A scale indicates the weighings
//! it stored while no gateway was connected as soon as the gateway subscribes.

use std::time::Duration;

use futures::StreamExt;
use relais_protocol::weight_scale::WeightMeasurement;
use relais_protocol::{Characteristic as _, uuid};

use crate::ble::device::Device;
use crate::ble::error::BleError;

/// Subscribes to Weight Measurement and hands every decoded weighing to `on_weight` for
/// `duration`, or until `on_weight` returns `false`. Values that do not decode are skipped
/// (logged). Returns how many weighings were handed over.
pub async fn receive_weights(
    device: &Device,
    duration: Duration,
    mut on_weight: impl FnMut(WeightMeasurement) -> bool,
) -> Result<usize, BleError> {
    let mut notifications = device.notifications().await?;
    device.subscribe(uuid::WEIGHT_MEASUREMENT).await?;
    let deadline = tokio::time::Instant::now() + duration;
    let mut count = 0usize;
    loop {
        let (characteristic, value) =
            match tokio::time::timeout_at(deadline, notifications.next()).await {
                Ok(Some(n)) => n,
                Ok(None) => return Err(BleError::StreamEnded),
                Err(_) => return Ok(count),
            };
        if characteristic != uuid::WEIGHT_MEASUREMENT {
            continue;
        }
        match WeightMeasurement::decode(&value) {
            Ok(decoded) => {
                count = count.saturating_add(1);
                tracing::debug!(address = %device.identity().address, "weight measurement received");
                if !on_weight(decoded.value) {
                    return Ok(count);
                }
            }
            Err(e) => tracing::warn!("skipping a weight measurement that does not decode: {e}"),
        }
    }
}
