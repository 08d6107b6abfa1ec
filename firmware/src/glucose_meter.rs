//! The glucose meter personality: measurements stored in the record log, and the Record Access
//! Control Point (RACP, 0x2A52) server through which a gateway collects and deletes them.
//!
//! Sans-I/O: the binding (the GATT core, or any BLE stack) feeds inputs (a RACP write with the
//! state of the link, "the notification went out", "the indication was confirmed", the time) and
//! carries out the [`Action`]s that come back: accept or refuse the write, notify a Glucose
//! Measurement (0x2A18) or Context (0x2A34), indicate the RACP. One notification or indication
//! is out at a time: the next comes with the input that says the previous one left.
//!
//! Decisions (see also the tests, `firmware/tests/glucose_meter.rs`):
//! - Sequence numbers are the record log's own, unchanged: strictly increasing, never reused,
//!   also after deletion and remount, which is what a gateway resuming with
//!   `>= last + 1` needs. The wire carries 16 bits, so a meter stores at most 65 536
//!   measurements in its life (18 years at 10 a day) and then refuses with
//!   [`Error::SequenceNumbersExhausted`] rather than reuse a number a gateway may hold.
//! - ATT errors on a RACP write: 0x05 Insufficient Authentication while the link is not bonded
//!   (0x0F Insufficient Encryption is for a bonded peer that has not yet encrypted, which the
//!   GATT core tells apart; here the link is bonded or not); 0xFD CCCD Improperly Configured when
//!   RACP indications are off, or Glucose Measurement notifications are off for a report; 0xFE
//!   Procedure Already In Progress for a request during a procedure (the Core Specification
//!   Supplement's common code; TI's older server used the service code 0x80).
//! - Malformed requests are answered on the RACP with the response code
//!   [`RacpRequest::validate`] names, and change nothing. User Facing Time filters are answered
//!   "operand not supported" (records are selected by sequence number only).
//! - Report: each record as a measurement notification, then its context notification (when it
//!   has one and the client enabled Context notifications), then `06 00 01 01`, or `06 00 01 06`
//!   when nothing matched. Delete answers success, or "no records found" when nothing matched.
//!   Abort stops a report (the notification already out is the last) and answers success, also
//!   when no procedure runs (there is nothing left to stop).
//! - No live notification for a new measurement while a procedure runs: it is stored, and a
//!   report in progress whose selection covers it sends it.
//! - A procedure that makes no progress for [`PROCEDURE_TIMEOUT_MS`] (the ATT transaction
//!   timeout) is abandoned without a response: the client is gone or its link is dead.

use embedded_storage::nor_flash::NorFlash;
use relais_protocol::glucose::{GlucoseMeasurement, GlucoseMeasurementContext, GlucoseRecord};
use relais_protocol::racp::{
    Filter, OpCode, RacpRequest, RacpResponse, Records, ResponseCode, Service,
};
use relais_protocol::{Characteristic, DecodeError, EncodeError, uuid};
use serde::{Deserialize, Serialize};

use crate::gatt::{AttError, Uuid, Value};
use crate::record_log::{self, MAX_PAYLOAD_LEN, RecordLog, SequenceNumber};

/// A procedure that makes no progress for this long is abandoned (ATT transaction timeout).
pub const PROCEDURE_TIMEOUT_MS: u64 = 30_000;

/// Largest sequence number the Glucose Measurement's 16-bit field carries.
pub const MAX_SEQUENCE_NUMBER: u32 = u16::MAX as u32;

/// Glucose Measurement (notify).
pub const GLUCOSE_MEASUREMENT: Uuid = Uuid::Sig(uuid::GLUCOSE_MEASUREMENT);
/// Glucose Measurement Context (notify).
pub const GLUCOSE_MEASUREMENT_CONTEXT: Uuid = Uuid::Sig(uuid::GLUCOSE_MEASUREMENT_CONTEXT);
/// Record Access Control Point (write, indicate).
pub const RECORD_ACCESS_CONTROL_POINT: Uuid = Uuid::Sig(uuid::RECORD_ACCESS_CONTROL_POINT);

/// Longest encoded measurement or context.
const WIRE_LEN: usize = 17;

/// What the connected client has set up, as the binding knows it when it passes an input.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Link {
    /// The link is encrypted with a bond: the glucose characteristics are open.
    pub bonded: bool,
    /// The client enabled Glucose Measurement notifications.
    pub measurement_notifications: bool,
    /// The client enabled Glucose Measurement Context notifications.
    pub context_notifications: bool,
    /// The client enabled RACP indications.
    pub racp_indications: bool,
}

impl Link {
    /// Bonded, every notification and indication on: how a gateway sets up before a sync.
    pub const READY: Self = Self {
        bonded: true,
        measurement_notifications: true,
        context_notifications: true,
        racp_indications: true,
    };
}

/// What the binding must do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Answer the RACP write with a Write Response. Comes before anything the write triggers.
    AcceptWrite,
    /// Answer the RACP write with an Error Response; nothing else happens.
    RefuseWrite(AttError),
    /// Notify `value` on characteristic `uuid`; then call
    /// [`GlucoseMeter::notification_sent`].
    Notify { uuid: Uuid, value: Value },
    /// Indicate `value` on characteristic `uuid`; then call
    /// [`GlucoseMeter::indication_confirmed`] when the client confirms.
    Indicate { uuid: Uuid, value: Value },
}

/// Most actions one input produces: a write's answer and one send, or a measurement and its
/// context.
pub const MAX_ACTIONS: usize = 2;

/// The actions of one input, in order.
pub type Actions = heapless::Vec<Action, MAX_ACTIONS>;

/// Why a measurement could not be stored or read back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Error<E> {
    /// The record log failed.
    Log(record_log::Error<E>),
    /// The measurement or context cannot be encoded (e.g. a concentration in a wrong unit).
    Encode(EncodeError),
    /// Stored bytes do not decode as a measurement: not a glucose record.
    Decode(DecodeError),
    /// 65 536 measurements stored over the meter's life: the 16-bit numbers are used up.
    SequenceNumbersExhausted,
}

impl<E> From<record_log::Error<E>> for Error<E> {
    fn from(e: record_log::Error<E>) -> Self {
        Self::Log(e)
    }
}

/// One characteristic value as it goes on the air.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
struct Wire {
    bytes: [u8; WIRE_LEN],
    len: u8,
}

impl Wire {
    fn encode(value: &impl Characteristic) -> Result<Self, EncodeError> {
        let mut bytes = [0u8; WIRE_LEN];
        let len = value.encode(&mut bytes)?;
        Ok(Self {
            bytes,
            len: len as u8,
        })
    }

    /// The value with its sequence number (octets 1-2 of both characteristics) set to `seq`.
    fn with_sequence_number(&self, seq: u16) -> Value {
        let mut bytes = self.bytes;
        if let Some(field) = bytes.get_mut(1..3) {
            field.copy_from_slice(&seq.to_le_bytes());
        }
        let used = bytes.get(..usize::from(self.len)).unwrap_or_default();
        Value::from_slice(used).unwrap_or_default()
    }
}

/// What the log stores per measurement: the values as encoded by `relais-protocol`, so what a
/// gateway receives is byte for byte what was encoded when the measurement was taken.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
struct StoredRecord {
    measurement: Wire,
    context: Option<Wire>,
}

/// The state of the RACP procedure.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Procedure {
    Idle,
    /// Sending records; a notification is out.
    Reporting(Report),
    /// A RACP indication is out; the procedure ends when it is confirmed. An abort that came
    /// meanwhile gets its own response after it.
    Confirming {
        abort_pending: bool,
    },
}

/// A report in progress: records numbered `next..=last` still to go.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Report {
    next: u32,
    last: u32,
    /// The context of the record whose measurement is out, sent once that notification left.
    context: Option<Value>,
    send_contexts: bool,
}

/// The glucose meter: its stored measurements and the RACP server over them.
#[derive(Debug)]
pub struct GlucoseMeter<F> {
    log: RecordLog<F>,
    procedure: Procedure,
    now_ms: u64,
    /// When the procedure in progress is abandoned if nothing moves.
    deadline_ms: u64,
    storage_faults: u32,
}

impl<F: NorFlash> GlucoseMeter<F> {
    /// A meter over a mounted record log holding only glucose records.
    pub fn new(log: RecordLog<F>) -> Self {
        Self {
            log,
            procedure: Procedure::Idle,
            now_ms: 0,
            deadline_ms: 0,
            storage_faults: 0,
        }
    }

    /// The record log (count, first, last).
    pub fn log(&self) -> &RecordLog<F> {
        &self.log
    }

    /// Gives the log back (to remount its flash).
    pub fn into_log(self) -> RecordLog<F> {
        self.log
    }

    /// Whether a RACP procedure is in progress (new requests are refused).
    pub fn is_busy(&self) -> bool {
        self.procedure != Procedure::Idle
    }

    /// RACP procedures that ended in "procedure not completed" because the log failed.
    pub fn storage_faults(&self) -> u32 {
        self.storage_faults
    }

    /// Stores a new measurement (and its context) under the next sequence number, which this
    /// sets in both; returns the number and, when a bonded client has Glucose Measurement
    /// notifications on and no procedure runs, the live notifications.
    pub fn record(
        &mut self,
        measurement: GlucoseMeasurement,
        context: Option<GlucoseMeasurementContext>,
        link: Option<Link>,
    ) -> Result<(SequenceNumber, Actions), Error<F::Error>> {
        let next = self.log.next_sequence_number();
        if next > MAX_SEQUENCE_NUMBER {
            return Err(Error::SequenceNumbersExhausted);
        }
        let seq16 = next as u16;
        let measurement = GlucoseMeasurement {
            sequence_number: seq16,
            context_information_follows: context.is_some(),
            ..measurement
        };
        let context = context.map(|c| GlucoseMeasurementContext {
            sequence_number: seq16,
            ..c
        });
        let stored = StoredRecord {
            measurement: Wire::encode(&measurement).map_err(Error::Encode)?,
            context: context
                .as_ref()
                .map(Wire::encode)
                .transpose()
                .map_err(Error::Encode)?,
        };
        let seq = self.log.append(&stored)?;
        let mut actions = Actions::new();
        if let Some(link) = link.filter(|l| l.bonded && l.measurement_notifications)
            && !self.is_busy()
        {
            let seq16 = seq.get() as u16;
            let _ = actions.push(Action::Notify {
                uuid: GLUCOSE_MEASUREMENT,
                value: stored.measurement.with_sequence_number(seq16),
            });
            if let Some(context) = stored.context.filter(|_| link.context_notifications) {
                let _ = actions.push(Action::Notify {
                    uuid: GLUCOSE_MEASUREMENT_CONTEXT,
                    value: context.with_sequence_number(seq16),
                });
            }
        }
        Ok((seq, actions))
    }

    /// A stored measurement with its context, decoded; `None` once deleted.
    pub fn read(&mut self, seq: SequenceNumber) -> Result<Option<GlucoseRecord>, Error<F::Error>> {
        let mut buf = [0u8; MAX_PAYLOAD_LEN];
        let Some(stored) = self.log.read::<StoredRecord>(seq, &mut buf)? else {
            return Ok(None);
        };
        let seq16 = seq.get() as u16;
        let measurement =
            GlucoseMeasurement::decode(&stored.measurement.with_sequence_number(seq16))
                .map_err(Error::Decode)?
                .value;
        let context = match stored.context {
            Some(c) => Some(
                GlucoseMeasurementContext::decode(&c.with_sequence_number(seq16))
                    .map_err(Error::Decode)?
                    .value,
            ),
            None => None,
        };
        Ok(Some(GlucoseRecord {
            measurement,
            context,
        }))
    }

    /// A client wrote `bytes` to the RACP over a link in state `link`.
    pub fn racp_write(&mut self, bytes: &[u8], link: Link) -> Actions {
        let mut actions = Actions::new();
        let refusal = if !link.bonded {
            Some(AttError::InsufficientAuthentication)
        } else if !link.racp_indications {
            Some(AttError::CccdImproperlyConfigured)
        } else if self.is_busy() && bytes != [OpCode::AbortOperation.code(), 0] {
            Some(AttError::ProcedureAlreadyInProgress)
        } else if bytes.first() == Some(&OpCode::ReportStoredRecords.code())
            && !link.measurement_notifications
        {
            Some(AttError::CccdImproperlyConfigured)
        } else {
            None
        };
        if let Some(error) = refusal {
            let _ = actions.push(Action::RefuseWrite(error));
            return actions;
        }
        let _ = actions.push(Action::AcceptWrite);
        self.touch();
        match RacpRequest::validate(bytes, Service::Glucose) {
            Err(rejection) => self.respond(&mut actions, rejection.response()),
            Ok(RacpRequest::AbortOperation) => self.abort(&mut actions),
            Ok(RacpRequest::ReportStoredRecords(records)) => match self.select(records) {
                Ok(Some((first, last))) => {
                    let report = Report {
                        next: first,
                        last,
                        context: None,
                        send_contexts: link.context_notifications,
                    };
                    self.send_next_record(&mut actions, report, false);
                }
                Ok(None) => self.finish(
                    &mut actions,
                    OpCode::ReportStoredRecords,
                    ResponseCode::NoRecordsFound,
                ),
                Err(code) => self.finish(&mut actions, OpCode::ReportStoredRecords, code),
            },
            Ok(RacpRequest::DeleteStoredRecords(records)) => {
                let code = match self.select(records) {
                    Ok(Some((first, last))) => match self.log.delete_in(first..=last) {
                        Ok(0) => ResponseCode::NoRecordsFound,
                        Ok(_) => ResponseCode::Success,
                        Err(_) => self.storage_fault(),
                    },
                    Ok(None) => ResponseCode::NoRecordsFound,
                    Err(code) => code,
                };
                self.finish(&mut actions, OpCode::DeleteStoredRecords, code);
            }
            Ok(RacpRequest::ReportNumberOfStoredRecords(records)) => {
                let count = match self.select(records) {
                    Ok(Some((first, last))) => self
                        .log
                        .count_in(first..=last)
                        .map_err(|_| self.storage_fault()),
                    Ok(None) => Ok(0),
                    Err(code) => Err(code),
                };
                match count {
                    Ok(n) => {
                        let count = RacpResponse::NumberOfStoredRecords(
                            u16::try_from(n).unwrap_or(u16::MAX),
                        );
                        self.respond(&mut actions, count);
                    }
                    Err(code) => {
                        self.finish(&mut actions, OpCode::ReportNumberOfStoredRecords, code)
                    }
                }
            }
        }
        actions
    }

    /// The notification the last action asked for went out: the next one follows.
    pub fn notification_sent(&mut self) -> Actions {
        let mut actions = Actions::new();
        let mut report = match core::mem::replace(&mut self.procedure, Procedure::Idle) {
            Procedure::Reporting(report) => report,
            other => {
                // A live notification, or one that left before an abort: nothing waits on it.
                self.procedure = other;
                return actions;
            }
        };
        self.touch();
        match report.context.take() {
            Some(context) => {
                let _ = actions.push(Action::Notify {
                    uuid: GLUCOSE_MEASUREMENT_CONTEXT,
                    value: context,
                });
                self.procedure = Procedure::Reporting(report);
            }
            None => self.send_next_record(&mut actions, report, true),
        }
        actions
    }

    /// The client confirmed the RACP indication: the procedure ends (or the response to an
    /// abort that came meanwhile goes out).
    pub fn indication_confirmed(&mut self) -> Actions {
        let mut actions = Actions::new();
        match self.procedure {
            Procedure::Confirming {
                abort_pending: true,
            } => {
                self.touch();
                self.finish(&mut actions, OpCode::AbortOperation, ResponseCode::Success);
            }
            Procedure::Confirming {
                abort_pending: false,
            } => self.procedure = Procedure::Idle,
            Procedure::Idle | Procedure::Reporting(_) => {}
        }
        actions
    }

    /// The board's time, in milliseconds; abandons a procedure stalled for
    /// [`PROCEDURE_TIMEOUT_MS`]. Whether one was abandoned.
    pub fn tick(&mut self, now_ms: u64) -> bool {
        self.now_ms = now_ms;
        let stalled = self.is_busy() && now_ms >= self.deadline_ms;
        if stalled {
            self.procedure = Procedure::Idle;
        }
        stalled
    }

    /// The client disconnected: any procedure ends, without a response.
    pub fn disconnected(&mut self) {
        self.procedure = Procedure::Idle;
    }

    /// The procedure moved: its timeout restarts.
    fn touch(&mut self) {
        self.deadline_ms = self.now_ms.saturating_add(PROCEDURE_TIMEOUT_MS);
    }

    /// The records a selection names, as a range of sequence numbers; `None` when it names
    /// none (First or Last of an empty log); the response code when it cannot be served.
    fn select(&mut self, records: Records) -> Result<Option<(u32, u32)>, ResponseCode> {
        let number = |filter: Filter| match filter {
            Filter::SequenceNumber(n) => Ok(u32::from(n)),
            Filter::UserFacingTime(_) | Filter::TimeOffset(_) => {
                Err(ResponseCode::OperandNotSupported)
            }
        };
        let single = |seq: Option<SequenceNumber>| seq.map(|s| (s.get(), s.get()));
        Ok(match records {
            Records::All => Some((0, u32::MAX)),
            Records::LessThanOrEqualTo(max) => Some((0, number(max)?)),
            Records::GreaterThanOrEqualTo(min) => Some((number(min)?, u32::MAX)),
            Records::WithinRangeOf { min, max } => Some((number(min)?, number(max)?)),
            Records::First => single(self.log.first()),
            Records::Last => single(self.log.last()),
        })
    }

    /// Notifies the next record of `report` (`found`: whether one was sent already), or ends
    /// the report with its response code.
    fn send_next_record(&mut self, actions: &mut Actions, report: Report, found: bool) {
        let mut buf = [0u8; MAX_PAYLOAD_LEN];
        match self
            .log
            .next_at_or_after::<StoredRecord>(report.next, &mut buf)
        {
            Ok(Some((seq, stored))) if seq.get() <= report.last => {
                let seq16 = seq.get() as u16;
                let _ = actions.push(Action::Notify {
                    uuid: GLUCOSE_MEASUREMENT,
                    value: stored.measurement.with_sequence_number(seq16),
                });
                self.procedure = Procedure::Reporting(Report {
                    next: seq.get().saturating_add(1),
                    context: stored
                        .context
                        .filter(|_| report.send_contexts)
                        .map(|c| c.with_sequence_number(seq16)),
                    ..report
                });
            }
            Ok(_) => {
                let code = if found {
                    ResponseCode::Success
                } else {
                    ResponseCode::NoRecordsFound
                };
                self.finish(actions, OpCode::ReportStoredRecords, code);
            }
            Err(_) => {
                let code = self.storage_fault();
                self.finish(actions, OpCode::ReportStoredRecords, code);
            }
        }
    }

    fn abort(&mut self, actions: &mut Actions) {
        match self.procedure {
            Procedure::Confirming { .. } => {
                self.procedure = Procedure::Confirming {
                    abort_pending: true,
                };
            }
            Procedure::Idle | Procedure::Reporting(_) => {
                self.finish(actions, OpCode::AbortOperation, ResponseCode::Success);
            }
        }
    }

    /// Ends a request with `06 00 <op> <code>`.
    fn finish(&mut self, actions: &mut Actions, request: OpCode, code: ResponseCode) {
        let response = RacpResponse::ResponseCode {
            request_op_code: request,
            response_code: code,
        };
        self.respond(actions, response);
    }

    /// Indicates `response` on the RACP; the procedure lasts until it is confirmed.
    fn respond(&mut self, actions: &mut Actions, response: RacpResponse) {
        let mut bytes = [0u8; RacpResponse::MAX_LEN];
        let len = response.encode(&mut bytes).unwrap_or(0);
        let value = bytes
            .get(..len)
            .and_then(|b| Value::from_slice(b).ok())
            .unwrap_or_default();
        let _ = actions.push(Action::Indicate {
            uuid: RECORD_ACCESS_CONTROL_POINT,
            value,
        });
        self.procedure = Procedure::Confirming {
            abort_pending: false,
        };
    }

    fn storage_fault(&mut self) -> ResponseCode {
        self.storage_faults = self.storage_faults.saturating_add(1);
        ResponseCode::ProcedureNotCompleted
    }
}
