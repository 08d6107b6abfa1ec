//! One device session, from a connected device to its release: the clock measured (and set),
//! every measurement characteristic subscribed before anything is triggered, the glucose
//! catch-up, values assembled into measurements, each handed to the consumer, and the
//! session ended only once the consumer accepted everything.
//!
//! The consumer receives [`Event`]s on a channel. A [`Event::Measurement`] carries a one-shot
//! acceptance: the consumer answers `true` once the measurement is stored. A glucose meter's
//! catch-up advances only over accepted records; a refusal aborts it. Indications are
//! confirmed by BlueZ on arrival, before any consumer sees them: a scale or cuff that deletes
//! what was confirmed relies on the hub storing at once, which is why the session ends only
//! after every acceptance came.

use std::collections::VecDeque;
use std::time::Duration;

use futures::StreamExt;
use futures::future::BoxFuture;
use futures::stream::FuturesUnordered;
use jiff::tz::TimeZone;
use jiff::{SignedDuration, Timestamp};
use relais_protocol::{Quirks, Reading, uuid};
use serde::Serialize;
use tokio::sync::{mpsc, oneshot};

use crate::ble::assembler::{self, Assembled, Assembler};
use crate::ble::clock::{self, SessionClock};
use crate::ble::device::{Device, Identity};
use crate::ble::error::BleError;
use crate::ble::glucose_session::{GlucoseSession, Input, Output, abort_request};
use crate::ble::kind::DeviceKind;
use crate::payload::{Payload, Record};

/// How a session runs.
#[derive(Debug, Clone)]
pub struct Plan {
    /// Vendor deviations to tolerate.
    pub quirks: Quirks,
    /// A glucose meter's last stored sequence number: the catch-up asks for what follows.
    pub last_glucose_sequence: Option<u16>,
    /// The hub's zone, for the device clock.
    pub zone: TimeZone,
    /// Skew beyond which the device clock is set.
    pub clock_threshold: Duration,
    /// How long the session waits for more after the last value before releasing the device.
    pub linger: Duration,
    /// How long half a weighing waits for its other half.
    pub halves_wait: Duration,
    /// How long a glucose catch-up waits for the next value before aborting.
    pub glucose_idle: Duration,
    /// After the meter's "success", how long the catch-up still takes late records.
    pub glucose_settle: Duration,
    /// How long the consumer may take to accept a measurement.
    pub accept_within: Duration,
    /// The longest a session lasts (a device that streams forever is released).
    pub max_duration: Duration,
}

impl Plan {
    /// The defaults, for a device at the start of its history.
    pub fn new(zone: TimeZone) -> Self {
        Self {
            quirks: Quirks::NONE,
            last_glucose_sequence: None,
            zone,
            clock_threshold: clock::DEFAULT_THRESHOLD,
            linger: Duration::from_secs(10),
            halves_wait: Duration::from_secs(2),
            glucose_idle: Duration::from_secs(10),
            glucose_settle: Duration::from_millis(250),
            accept_within: Duration::from_secs(30),
            max_duration: Duration::from_secs(600),
        }
    }
}

/// A measurement ready to be stored.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Delivery {
    /// Who sent it.
    pub device: Identity,
    /// What the device is.
    pub kind: DeviceKind,
    /// The values as received.
    pub record: Record,
    /// The quirks the record decodes with.
    #[serde(skip)]
    pub quirks: Quirks,
    /// The readings of the record.
    pub readings: Vec<Reading>,
    /// When the hub received the last value of the record.
    pub received_at: Timestamp,
    /// Device clock minus true time for this measurement; `None`: unknown (no clock, unset).
    pub clock_skew: Option<SignedDuration>,
}

/// What a session tells its consumer.
#[derive(Debug)]
pub enum Event {
    /// A measurement: answer on `accepted` once it is stored (`true`) or refused (`false`).
    Measurement {
        /// The measurement.
        delivery: Box<Delivery>,
        /// The acceptance the session waits for.
        accepted: oneshot::Sender<bool>,
    },
    /// A value to show while a measurement is under way (cuff pressure, heart rate).
    Live {
        /// The device's address.
        address: String,
        /// The value.
        payload: Payload,
    },
    /// A glucose meter announced how many stored records its catch-up brings (progress).
    CatchUp {
        /// The device's address.
        address: String,
        /// Records to come.
        expected: u16,
    },
    /// A value that does not decode, skipped.
    Skipped {
        /// The device's address.
        address: String,
        /// The characteristic.
        characteristic: u16,
        /// Why, without the value.
        reason: String,
    },
}

/// How a session ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Outcome {
    /// Measurements accepted by the consumer.
    pub delivered: usize,
    /// Values skipped because they do not decode.
    pub skipped: usize,
    /// A glucose meter's last accepted sequence number after the catch-up.
    pub last_glucose_sequence: Option<u16>,
    /// The device clock.
    #[serde(skip)]
    pub clock: SessionClock,
    /// The device ended the link (rather than the session releasing it).
    pub disconnected: bool,
}

type Acceptance = BoxFuture<'static, (Option<u16>, bool)>;

struct Run<'a> {
    device: &'a Device,
    kind: DeviceKind,
    plan: &'a Plan,
    events: &'a mpsc::Sender<Event>,
    clock: SessionClock,
    assembler: Assembler,
    acceptances: FuturesUnordered<Acceptance>,
    outcome: Outcome,
}

/// Runs a session on a connected device of `kind` (see the module documentation). Returns
/// when the device has nothing more to say, disconnects, or fails.
pub async fn run(
    device: &Device,
    kind: DeviceKind,
    plan: &Plan,
    events: &mpsc::Sender<Event>,
) -> Result<Outcome, BleError> {
    let clock = clock::session_clock(device, plan.quirks, &plan.zone, plan.clock_threshold).await;
    let characteristics: Vec<u16> = assembler::subscriptions()
        .filter(|&c| device.has(c))
        .collect();
    let mut run = Run {
        device,
        kind,
        plan,
        events,
        clock,
        assembler: Assembler::new(plan.quirks, &characteristics),
        acceptances: FuturesUnordered::new(),
        outcome: Outcome {
            delivered: 0,
            skipped: 0,
            last_glucose_sequence: plan.last_glucose_sequence,
            clock,
            disconnected: false,
        },
    };
    if device.has(uuid::CGM_SESSION_START_TIME) {
        match device.read(uuid::CGM_SESSION_START_TIME).await {
            Ok(bytes) => run.assembler.set_cgm_session_start(bytes),
            Err(e) => {
                tracing::warn!(address = %device.identity().address, "CGM session start time unreadable, records stay untimed: {e}");
            }
        }
    }
    let mut notifications = device.notifications().await?;
    for &characteristic in &characteristics {
        device.subscribe(characteristic).await?;
    }
    let mut glucose =
        if device.has(uuid::RECORD_ACCESS_CONTROL_POINT) && device.has(uuid::GLUCOSE_MEASUREMENT) {
            for characteristic in [
                uuid::GLUCOSE_MEASUREMENT,
                uuid::GLUCOSE_MEASUREMENT_CONTEXT,
                uuid::RECORD_ACCESS_CONTROL_POINT,
            ] {
                if device.has(characteristic) {
                    device.subscribe(characteristic).await?;
                }
            }
            Some(GlucoseSession::new(plan.last_glucose_sequence, plan.quirks))
        } else {
            None
        };
    let mut pending: VecDeque<Output> = glucose
        .as_mut()
        .map(GlucoseSession::start)
        .unwrap_or_default()
        .into();

    let end = tokio::time::Instant::now() + plan.max_duration;
    let mut last_activity = tokio::time::Instant::now();
    loop {
        while let Some(output) = pending.pop_front() {
            run.glucose_output(output).await?;
        }
        let catching_up = glucose.as_ref().is_some_and(|g| !g.is_finished());
        let idle = run.acceptances.is_empty() && !run.assembler.is_holding();
        if !catching_up && idle && glucose.is_some() {
            // A meter has said everything once its catch-up is over.
            break;
        }
        let wait = if glucose.as_ref().is_some_and(GlucoseSession::is_settling) {
            plan.glucose_settle
        } else if catching_up {
            plan.glucose_idle
        } else if run.assembler.is_holding() {
            plan.halves_wait
        } else {
            plan.linger
        };
        let deadline = (last_activity + wait).min(end);
        tokio::select! {
            notification = notifications.next() => match notification {
                Some((characteristic, value)) => {
                    last_activity = tokio::time::Instant::now();
                    match glucose.as_mut() {
                        Some(g) if catching_up && is_glucose(characteristic) => {
                            pending.extend(g.handle(Input::Notification {
                                uuid: characteristic,
                                value: &value,
                            }));
                        }
                        _ => {
                            for assembled in run.assembler.notification(characteristic, &value) {
                                run.assembled(assembled).await?;
                            }
                        }
                    }
                }
                None => {
                    run.outcome.disconnected = true;
                    if catching_up {
                        run.settle().await?;
                        return Err(BleError::StreamEnded);
                    }
                    break;
                }
            },
            Some((sequence, accepted)) = run.acceptances.next(), if !run.acceptances.is_empty() => {
                if !accepted {
                    if let Some(sequence) = sequence {
                        tracing::warn!(sequence, "glucose record refused; aborting the catch-up");
                        run.abort_catch_up().await;
                        return Err(BleError::Rejected(sequence));
                    }
                    return Err(BleError::Refused);
                }
                run.outcome.delivered = run.outcome.delivered.saturating_add(1);
                if let (Some(sequence), Some(g)) = (sequence, glucose.as_mut()) {
                    pending.extend(g.handle(Input::Accepted(sequence)));
                }
            }
            () = tokio::time::sleep_until(deadline) => {
                if tokio::time::Instant::now() >= end {
                    tracing::info!(address = %device.identity().address, "session lasted its longest; releasing the device");
                    break;
                }
                if catching_up {
                    if let Some(g) = glucose.as_mut() {
                        pending.extend(g.handle(Input::Timeout));
                    }
                } else if run.assembler.is_holding() {
                    for assembled in run.assembler.flush() {
                        run.assembled(assembled).await?;
                    }
                    last_activity = tokio::time::Instant::now();
                } else if idle {
                    break;
                }
            }
        }
    }
    for assembled in run.assembler.flush() {
        run.assembled(assembled).await?;
    }
    run.settle().await?;
    if let Some(g) = &glucose {
        run.outcome.skipped = run.outcome.skipped.saturating_add(g.skipped());
    }
    Ok(run.outcome)
}

fn is_glucose(characteristic: u16) -> bool {
    matches!(
        characteristic,
        uuid::GLUCOSE_MEASUREMENT
            | uuid::GLUCOSE_MEASUREMENT_CONTEXT
            | uuid::RECORD_ACCESS_CONTROL_POINT
    )
}

impl Run<'_> {
    fn address(&self) -> &str {
        &self.device.identity().address
    }

    async fn send(&mut self, event: Event) -> Result<(), BleError> {
        self.events
            .send(event)
            .await
            .map_err(|_| BleError::ConsumerGone)
    }

    async fn glucose_output(&mut self, output: Output) -> Result<(), BleError> {
        match output {
            Output::WriteRacp(bytes) => {
                self.device
                    .write(uuid::RECORD_ACCESS_CONTROL_POINT, &bytes)
                    .await
            }
            Output::Expected(expected) => {
                let address = self.address().to_owned();
                self.send(Event::CatchUp { address, expected }).await
            }
            Output::Record { record, raw } => {
                self.deliver(raw, Some(record.measurement.sequence_number))
                    .await
            }
            Output::Done { last_sequence } => {
                self.outcome.last_glucose_sequence = last_sequence;
                tracing::info!(address = %self.address(), ?last_sequence, "glucose catch-up done");
                Ok(())
            }
            Output::Aborted {
                reason,
                last_sequence,
            } => {
                self.outcome.last_glucose_sequence = last_sequence;
                Err(BleError::Aborted(reason))
            }
        }
    }

    async fn assembled(&mut self, assembled: Assembled) -> Result<(), BleError> {
        match assembled {
            Assembled::Record(record) => self.deliver(record, None).await,
            Assembled::Live(payload) => {
                let address = self.address().to_owned();
                self.send(Event::Live { address, payload }).await
            }
            Assembled::Skipped {
                characteristic,
                reason,
            } => {
                self.outcome.skipped = self.outcome.skipped.saturating_add(1);
                tracing::warn!(address = %self.address(), "skipping a value of 0x{characteristic:04X}: {reason}");
                let address = self.address().to_owned();
                self.send(Event::Skipped {
                    address,
                    characteristic,
                    reason,
                })
                .await
            }
        }
    }

    /// Hands a record to the consumer; its acceptance is awaited in the main loop.
    async fn deliver(&mut self, record: Record, sequence: Option<u16>) -> Result<(), BleError> {
        let readings = match record.readings(self.plan.quirks) {
            Ok(readings) => readings,
            Err(e) => {
                // The assembler and the glucose session checked it already; a record that
                // still fails is skipped rather than stored undecodable.
                self.outcome.skipped = self.outcome.skipped.saturating_add(1);
                tracing::warn!(address = %self.address(), "skipping a record: {e}");
                return Ok(());
            }
        };
        let received_at = Timestamp::now();
        let device_time = readings.first().and_then(|r| r.time.known());
        let clock_skew = self
            .clock
            .skew_for(device_time, self.plan.zone.to_datetime(received_at));
        let delivery = Delivery {
            device: self.device.identity().clone(),
            kind: self.kind,
            record,
            quirks: self.plan.quirks,
            readings,
            received_at,
            clock_skew,
        };
        let (accepted, answer) = oneshot::channel();
        self.send(Event::Measurement {
            delivery: Box::new(delivery),
            accepted,
        })
        .await?;
        let limit = self.plan.accept_within;
        self.acceptances.push(Box::pin(async move {
            // A consumer that drops the answer or takes too long refused.
            let accepted = matches!(tokio::time::timeout(limit, answer).await, Ok(Ok(true)));
            (sequence, accepted)
        }));
        Ok(())
    }

    /// Waits for every outstanding acceptance.
    async fn settle(&mut self) -> Result<(), BleError> {
        while let Some((sequence, accepted)) = self.acceptances.next().await {
            if !accepted {
                return Err(sequence.map_or(BleError::Refused, BleError::Rejected));
            }
            self.outcome.delivered = self.outcome.delivered.saturating_add(1);
            if let Some(sequence) = sequence {
                let last = self.outcome.last_glucose_sequence;
                self.outcome.last_glucose_sequence =
                    Some(last.map_or(sequence, |l| l.max(sequence)));
            }
        }
        Ok(())
    }

    async fn abort_catch_up(&mut self) {
        if let Err(e) = self
            .device
            .write(uuid::RECORD_ACCESS_CONTROL_POINT, &abort_request())
            .await
        {
            tracing::warn!("writing the RACP abort failed: {e}");
        }
    }
}

/// Runs a session whose measurements go to `accept`, in arrival order, its answer being the
/// acceptance; the other events go to `on_other`. For tools and tests that store nothing.
pub async fn run_accepting(
    device: &Device,
    kind: DeviceKind,
    plan: &Plan,
    mut accept: impl FnMut(&Delivery) -> bool,
    mut on_other: impl FnMut(Event),
) -> Result<Outcome, BleError> {
    let (events, mut received) = mpsc::channel(64);
    let session = async move {
        let outcome = run(device, kind, plan, &events).await;
        drop(events);
        outcome
    };
    let consumer = async {
        while let Some(event) = received.recv().await {
            match event {
                Event::Measurement { delivery, accepted } => {
                    // The session may have ended (refusal elsewhere); nobody to tell then.
                    let _ = accepted.send(accept(&delivery));
                }
                other => on_other(other),
            }
        }
    };
    let (outcome, ()) = tokio::join!(session, consumer);
    outcome
}
