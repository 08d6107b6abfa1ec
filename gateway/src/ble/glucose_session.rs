//! The glucose catch-up as a sans-I/O state machine: it decides what to write to the Record
//! Access Control Point and which records to hand over; the driver
//! ([`crate::ble::glucose`]) moves bytes and time.
//!
//! Sequence (`shared/reference/ble-gatt-health.md` §5): the driver subscribes to 0x2A18, 0x2A34
//! and 0x2A52 first, then writes [`Output::WriteRacp`] from [`GlucoseSession::start`]: "report
//! the number of records >= last + 1" (for progress, and to notice records lost on the way; a
//! meter that cannot count is served anyway), then "report records >= last + 1". Measurements are paired with their contexts by
//! [`ContextMatcher`]; records at or below the last committed sequence number, or already
//! handed over, are dropped (dedup on the sequence number). The RACP response ends the
//! transfer: "no records found" at once, "success" after a short settle time in which late
//! records are still taken (a measurement whose announced context never came is then handed
//! over without it); a timeout sends the abort
//! (`03 00`) and drops a measurement still waiting for its context, for the next catch-up
//! to fetch whole. [`Output::Done`] comes only once every handed-over record was accepted
//! ([`Input::Accepted`]), so the caller never commits a sequence number it has not stored.

use relais_protocol::glucose::{
    ContextMatcher, GlucoseMeasurement, GlucoseMeasurementContext, GlucoseRecord, MatchEvent,
};
use relais_protocol::racp::{OpCode, RacpRequest, RacpResponse, ResponseCode};
use relais_protocol::{Characteristic as _, Quirks, uuid};
use std::collections::HashMap;

use crate::payload::{Payload, Record};

/// What the session is fed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Input<'a> {
    /// A notification or indication: the characteristic's 16-bit UUID and its value.
    Notification {
        /// The characteristic's SIG 16-bit UUID.
        uuid: u16,
        /// The value as received.
        value: &'a [u8],
    },
    /// Nothing arrived for the driver's idle timeout.
    Timeout,
    /// The consumer stored the record with this sequence number.
    Accepted(u16),
}

/// Why a catch-up ended without success.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AbortReason {
    /// Nothing arrived in time; the abort request was written.
    Timeout,
    /// The meter answered the report request with this failure code.
    Refused(ResponseCode),
}

/// What the session asks of its driver.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Output {
    /// Write these bytes to the RACP (with response).
    WriteRacp(Vec<u8>),
    /// The meter announced how many records the catch-up will bring.
    Expected(u16),
    /// A new record to hand to the consumer; feed [`Input::Accepted`] once it is stored.
    Record {
        /// The record, decoded.
        record: Box<GlucoseRecord>,
        /// The measurement and context values as received.
        raw: Record,
    },
    /// The transfer ended and every record was accepted.
    Done {
        /// The highest accepted sequence number (or the starting one when nothing was new).
        last_sequence: Option<u16>,
    },
    /// The transfer failed; records accepted before stay good.
    Aborted {
        /// Why.
        reason: AbortReason,
        /// The highest accepted sequence number.
        last_sequence: Option<u16>,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Idle,
    /// Waiting for the number of records.
    Counting,
    Transferring,
    /// The meter said "success": records it sent just before may still be on their way
    /// (only a fault can reorder them on one link, but then every catch-up would end before
    /// its records); they are taken until the driver's settle time passes without any.
    Settling,
    /// Waiting for the consumer's acceptances.
    Draining,
    Finished,
}

/// One catch-up of a glucose meter's stored records.
#[derive(Debug, Clone)]
pub struct GlucoseSession {
    state: State,
    matcher: ContextMatcher,
    quirks: Quirks,
    /// Highest sequence number handed over (accepted or not).
    emitted: Option<u16>,
    /// Highest sequence number accepted by the consumer.
    accepted: Option<u16>,
    /// Records handed over and not yet accepted.
    unaccepted: usize,
    /// Notifications that did not decode, skipped.
    skipped: usize,
    /// Records the meter announced, when it could count them.
    expected: Option<u16>,
    /// Records handed over in this catch-up.
    received: usize,
    /// Values as received, by sequence number, until their record is handed over: the
    /// store keeps the bytes, not a re-encoding.
    raw_measurements: HashMap<u16, Vec<u8>>,
    raw_contexts: HashMap<u16, Vec<u8>>,
}

impl GlucoseSession {
    /// A session for a meter whose records up to `last_committed` are already stored.
    pub fn new(last_committed: Option<u16>, quirks: Quirks) -> Self {
        Self {
            state: State::Idle,
            matcher: ContextMatcher::new(),
            quirks,
            emitted: last_committed,
            accepted: last_committed,
            unaccepted: 0,
            skipped: 0,
            expected: None,
            received: 0,
            raw_measurements: HashMap::new(),
            raw_contexts: HashMap::new(),
        }
    }

    /// The count request; call once, after subscribing.
    pub fn start(&mut self) -> Vec<Output> {
        if self.state != State::Idle {
            return Vec::new();
        }
        self.state = State::Counting;
        vec![Output::WriteRacp(encode(RacpRequest::count_after(
            self.accepted,
            self.quirks,
        )))]
    }

    /// The records the meter announced, when it could count them.
    pub fn expected(&self) -> Option<u16> {
        self.expected
    }

    /// Records handed over so far in this catch-up.
    pub fn received(&self) -> usize {
        self.received
    }

    fn report(&mut self, out: &mut Vec<Output>) {
        self.state = State::Transferring;
        out.push(Output::WriteRacp(encode(RacpRequest::records_after(
            self.accepted,
            self.quirks,
        ))));
    }

    /// Notifications that did not decode and were skipped.
    pub fn skipped(&self) -> usize {
        self.skipped
    }

    /// Whether the meter answered "success" and the session waits for late records: the
    /// driver feeds [`Input::Timeout`] after its short settle time without notifications.
    pub fn is_settling(&self) -> bool {
        self.state == State::Settling
    }

    /// Whether the session has emitted `Done` or `Aborted`.
    pub fn is_finished(&self) -> bool {
        self.state == State::Finished
    }

    /// Feeds one input.
    pub fn handle(&mut self, input: Input<'_>) -> Vec<Output> {
        let mut out = Vec::new();
        match (self.state, input) {
            (State::Finished | State::Idle, _) => {}
            (_, Input::Accepted(sequence)) => {
                self.unaccepted = self.unaccepted.saturating_sub(1);
                self.accepted = Some(self.accepted.map_or(sequence, |a| a.max(sequence)));
                if self.state == State::Draining && self.unaccepted == 0 {
                    out.push(self.finish_done());
                }
            }
            (State::Draining, _) => {}
            (State::Settling, Input::Timeout) => {
                self.flush(&mut out);
                if self.unaccepted == 0 {
                    out.push(self.finish_done());
                } else {
                    self.state = State::Draining;
                }
            }
            (State::Settling, Input::Notification { uuid, value }) => {
                self.notification(uuid, value, &mut out);
            }
            (State::Counting | State::Transferring, Input::Timeout) => {
                // A measurement still waiting for its context is not handed over: the next
                // catch-up fetches it again, whole.
                tracing::warn!("glucose catch-up timed out; aborting the RACP procedure");
                out.push(Output::WriteRacp(encode(RacpRequest::abort())));
                self.state = State::Finished;
                out.push(Output::Aborted {
                    reason: AbortReason::Timeout,
                    last_sequence: self.accepted,
                });
            }
            (State::Counting | State::Transferring, Input::Notification { uuid, value }) => {
                self.notification(uuid, value, &mut out);
            }
        }
        out
    }

    fn notification(&mut self, uuid: u16, value: &[u8], out: &mut Vec<Output>) {
        match uuid {
            uuid::GLUCOSE_MEASUREMENT => match GlucoseMeasurement::decode(value) {
                Ok(decoded) => {
                    self.raw_measurements
                        .insert(decoded.value.sequence_number, value.to_vec());
                    for event in self.matcher.measurement(decoded.value) {
                        self.matched(event, out);
                    }
                }
                Err(e) => self.skip("glucose measurement", &e),
            },
            uuid::GLUCOSE_MEASUREMENT_CONTEXT => match GlucoseMeasurementContext::decode(value) {
                Ok(decoded) => {
                    self.raw_contexts
                        .insert(decoded.value.sequence_number, value.to_vec());
                    let event = self.matcher.context(decoded.value);
                    self.matched(event, out);
                }
                Err(e) => self.skip("glucose measurement context", &e),
            },
            uuid::RECORD_ACCESS_CONTROL_POINT => match RacpResponse::decode(value) {
                Ok(decoded) => self.racp(decoded.value, out),
                Err(e) => self.skip("RACP response", &e),
            },
            other => tracing::debug!("ignoring a notification of 0x{other:04X}"),
        }
    }

    fn racp(&mut self, response: RacpResponse, out: &mut Vec<Output>) {
        match response {
            RacpResponse::NumberOfStoredRecords(count) if self.state == State::Counting => {
                self.expected = Some(count);
                out.push(Output::Expected(count));
                if count == 0 {
                    out.push(self.finish_done());
                } else {
                    self.report(out);
                }
            }
            RacpResponse::ResponseCode {
                request_op_code: OpCode::ReportNumberOfStoredRecords,
                response_code,
            } if self.state == State::Counting => {
                // Counting is optional for the meter: the report itself says whether it works.
                tracing::debug!(
                    ?response_code,
                    "the glucose meter does not count its records"
                );
                self.report(out);
            }
            RacpResponse::ResponseCode {
                request_op_code: OpCode::ReportStoredRecords,
                response_code,
            } if self.state == State::Transferring => {
                if response_code == ResponseCode::Success {
                    tracing::debug!("glucose report ended; settling");
                    self.state = State::Settling;
                } else if response_code.completed() {
                    // "No records found": nothing is on its way.
                    self.flush(out);
                    if self.unaccepted == 0 {
                        out.push(self.finish_done());
                    } else {
                        self.state = State::Draining;
                    }
                } else {
                    self.flush(out);
                    tracing::warn!(?response_code, "glucose meter refused the report");
                    self.state = State::Finished;
                    out.push(Output::Aborted {
                        reason: AbortReason::Refused(response_code),
                        last_sequence: self.accepted,
                    });
                }
            }
            other => tracing::debug!(?other, "ignoring an unrelated RACP response"),
        }
    }

    fn matched(&mut self, event: MatchEvent, out: &mut Vec<Output>) {
        match event {
            MatchEvent::Record(record) => self.record(record, out),
            MatchEvent::OrphanContext(context) => {
                self.raw_contexts.remove(&context.sequence_number);
                tracing::debug!(
                    sequence = context.sequence_number,
                    "glucose context without its measurement, dropped"
                );
            }
        }
    }

    fn record(&mut self, record: GlucoseRecord, out: &mut Vec<Output>) {
        let sequence = record.measurement.sequence_number;
        let measurement = self.raw_measurements.remove(&sequence);
        let context = self.raw_contexts.remove(&sequence);
        if self.emitted.is_some_and(|e| sequence <= e) {
            tracing::debug!(sequence, "glucose record already handed over, dropped");
            return;
        }
        self.emitted = Some(sequence);
        self.unaccepted = self.unaccepted.saturating_add(1);
        self.received = self.received.saturating_add(1);
        let mut raw = Record::single(Payload::characteristic(
            uuid::GLUCOSE_MEASUREMENT,
            measurement.unwrap_or_default(),
        ));
        if record.context.is_some() {
            raw.payloads.push(Payload::characteristic(
                uuid::GLUCOSE_MEASUREMENT_CONTEXT,
                context.unwrap_or_default(),
            ));
        }
        out.push(Output::Record {
            record: Box::new(record),
            raw,
        });
    }

    fn flush(&mut self, out: &mut Vec<Output>) {
        if let Some(record) = self.matcher.flush() {
            self.record(record, out);
        }
    }

    fn skip(&mut self, what: &str, error: &dyn std::fmt::Display) {
        self.skipped = self.skipped.saturating_add(1);
        tracing::warn!("skipping a {what} that does not decode: {error}");
    }

    fn finish_done(&mut self) -> Output {
        self.state = State::Finished;
        if let Some(expected) = self.expected
            && self.received < usize::from(expected)
        {
            // The sequence numbers moved past the missing ones: they will not be asked for
            // again. Worth a trace when a meter loses records on the link.
            tracing::warn!(
                expected,
                received = self.received,
                "the glucose meter sent fewer records than it announced"
            );
        }
        Output::Done {
            last_sequence: self.accepted,
        }
    }
}

/// The RACP abort (`03 00`), for a driver that stops a procedure on its own.
pub fn abort_request() -> Vec<u8> {
    encode(RacpRequest::abort())
}

fn encode(request: RacpRequest) -> Vec<u8> {
    let mut buf = [0u8; 32];
    match request.encode(&mut buf) {
        Ok(n) => buf.get(..n).map(<[u8]>::to_vec).unwrap_or_default(),
        // A request we built ourselves always fits; an empty write makes the meter answer with
        // an error rather than the session stalling silently.
        Err(e) => {
            tracing::error!("RACP request does not encode: {e}");
            Vec::new()
        }
    }
}

#[cfg(test)]
mod tests;
