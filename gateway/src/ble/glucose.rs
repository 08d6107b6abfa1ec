//! The btleplug driver of the glucose catch-up ([`GlucoseSession`]): subscriptions, RACP
//! writes, the notification stream and the idle timeout. The decisions are the session's.

use std::collections::VecDeque;
use std::time::Duration;

use futures::StreamExt;
use relais_protocol::glucose::GlucoseRecord;
use relais_protocol::{Quirks, uuid};

use crate::ble::device::Device;
use crate::ble::error::BleError;
use crate::ble::glucose_session::{GlucoseSession, Input, Output, abort_request};

/// How long the catch-up waits for the next notification before aborting.
pub const IDLE_TIMEOUT: Duration = Duration::from_secs(10);

/// Fetches the records newer than `last_committed` from a connected glucose meter.
///
/// Subscribes to Glucose Measurement, Measurement Context (when present) and the RACP before
/// writing the request. Each record goes to `accept` in sequence order; `accept` returns once
/// the record is stored (`true`) or refused (`false`: the procedure is aborted and
/// [`BleError::Rejected`] returned). On success returns the new last sequence number, which
/// every record up to has been accepted.
pub async fn catch_up(
    device: &Device,
    last_committed: Option<u16>,
    quirks: Quirks,
    idle: Duration,
    mut accept: impl FnMut(GlucoseRecord) -> bool,
) -> Result<Option<u16>, BleError> {
    let mut notifications = device.notifications().await?;
    for characteristic in [
        uuid::GLUCOSE_MEASUREMENT,
        uuid::GLUCOSE_MEASUREMENT_CONTEXT,
        uuid::RECORD_ACCESS_CONTROL_POINT,
    ] {
        if characteristic == uuid::GLUCOSE_MEASUREMENT_CONTEXT && !device.has(characteristic) {
            continue;
        }
        device.subscribe(characteristic).await?;
    }
    let mut session = GlucoseSession::new(last_committed, quirks);
    let mut pending: VecDeque<Output> = session.start().into();
    loop {
        while let Some(output) = pending.pop_front() {
            match output {
                Output::WriteRacp(bytes) => {
                    device
                        .write(uuid::RECORD_ACCESS_CONTROL_POINT, &bytes)
                        .await?;
                }
                Output::Record(record) => {
                    let sequence = record.measurement.sequence_number;
                    if !accept(*record) {
                        tracing::warn!(sequence, "glucose record refused; aborting the catch-up");
                        abort(device).await;
                        return Err(BleError::Rejected(sequence));
                    }
                    pending.extend(session.handle(Input::Accepted(sequence)));
                }
                Output::Done { last_sequence } => {
                    tracing::info!(
                        address = %device.identity().address,
                        skipped = session.skipped(),
                        "glucose catch-up done"
                    );
                    return Ok(last_sequence);
                }
                Output::Aborted { reason, .. } => return Err(BleError::Aborted(reason)),
            }
        }
        let input = match tokio::time::timeout(idle, notifications.next()).await {
            Ok(Some((characteristic, value))) => {
                pending.extend(session.handle(Input::Notification {
                    uuid: characteristic,
                    value: &value,
                }));
                continue;
            }
            Ok(None) => return Err(BleError::StreamEnded),
            Err(_) => Input::Timeout,
        };
        pending.extend(session.handle(input));
    }
}

async fn abort(device: &Device) {
    if let Err(e) = device
        .write(uuid::RECORD_ACCESS_CONTROL_POINT, &abort_request())
        .await
    {
        tracing::warn!("writing the RACP abort failed: {e}");
    }
}
