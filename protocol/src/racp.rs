//! Record Access Control Point (0x2A52) of the Glucose and CGM services, in both directions:
//! [`RacpRequest`] is what a client writes, [`RacpResponse`] what a server indicates. A server
//! checks a write with [`RacpRequest::validate`], which says which response code to answer.
//!
//! Filter type 0x01 is a u16 in both services but means the Sequence Number in the Glucose
//! Service and the Time Offset in CGMS; the bytes cannot tell. [`RacpRequest::decode_for`] takes
//! the [`Service`] to choose; the [`Characteristic`] decoder reads it as the Glucose Service
//! does. Both filters are encoded as type 0x01.

use core::fmt;

use crate::characteristic::Characteristic;
use crate::error::{DecodeError, EncodeError};
use crate::macros::code_enum;
use crate::quirks::Quirks;
use crate::time::DateTime;
use crate::uuid;
use crate::wire::{Decoded, Reader, Writer};

code_enum! {
    /// Op Code: the first octet of every RACP value.
    pub enum OpCode: u8 {
        ReportStoredRecords = 1 => "report_stored_records",
        DeleteStoredRecords = 2 => "delete_stored_records",
        AbortOperation = 3 => "abort_operation",
        ReportNumberOfStoredRecords = 4 => "report_number_of_stored_records",
        NumberOfStoredRecordsResponse = 5 => "number_of_stored_records_response",
        ResponseCode = 6 => "response_code",
    }
}

code_enum! {
    /// Operator: which records a request applies to.
    pub enum Operator: u8 {
        Null = 0 => "null",
        AllRecords = 1 => "all_records",
        LessThanOrEqualTo = 2 => "less_than_or_equal_to",
        GreaterThanOrEqualTo = 3 => "greater_than_or_equal_to",
        WithinRangeOf = 4 => "within_range_of",
        FirstRecord = 5 => "first_record",
        LastRecord = 6 => "last_record",
    }
}

code_enum! {
    /// Response Code Value: how a server ended a request.
    pub enum ResponseCode: u8 {
        Success = 1 => "success",
        OpCodeNotSupported = 2 => "op_code_not_supported",
        InvalidOperator = 3 => "invalid_operator",
        OperatorNotSupported = 4 => "operator_not_supported",
        InvalidOperand = 5 => "invalid_operand",
        NoRecordsFound = 6 => "no_records_found",
        AbortUnsuccessful = 7 => "abort_unsuccessful",
        ProcedureNotCompleted = 8 => "procedure_not_completed",
        OperandNotSupported = 9 => "operand_not_supported",
    }
}

impl ResponseCode {
    /// Success, or no records found: both end a catch-up normally.
    pub const fn completed(self) -> bool {
        matches!(self, Self::Success | Self::NoRecordsFound)
    }
}

/// The service a RACP belongs to: it gives filter type 0x01 its meaning and decides whether
/// filter type 0x02 (User Facing Time, Glucose only) exists.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(
    feature = "serde",
    derive(serde::Serialize),
    serde(rename_all = "snake_case")
)]
pub enum Service {
    /// Glucose Service (0x1808): type 0x01 Sequence Number, type 0x02 User Facing Time.
    Glucose,
    /// Continuous Glucose Monitoring (0x181F): type 0x01 Time Offset.
    ContinuousGlucoseMonitoring,
}

/// The operand of the ≤, ≥ and range operators: a filter type and its value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(
    feature = "serde",
    derive(serde::Serialize),
    serde(rename_all = "snake_case")
)]
pub enum Filter {
    /// Filter type 0x01 in the Glucose Service.
    SequenceNumber(u16),
    /// Filter type 0x02 in the Glucose Service.
    UserFacingTime(DateTime),
    /// Filter type 0x01 in CGMS: minutes since the session start.
    TimeOffset(u16),
}

const FILTER_SEQUENCE_OR_TIME_OFFSET: u8 = 0x01;
const FILTER_USER_FACING_TIME: u8 = 0x02;

impl Filter {
    /// The Filter Type octet.
    pub const fn filter_type(&self) -> u8 {
        match self {
            Self::SequenceNumber(_) | Self::TimeOffset(_) => FILTER_SEQUENCE_OR_TIME_OFFSET,
            Self::UserFacingTime(_) => FILTER_USER_FACING_TIME,
        }
    }

    const fn value_len(&self) -> usize {
        match self {
            Self::SequenceNumber(_) | Self::TimeOffset(_) => 2,
            Self::UserFacingTime(_) => DateTime::LEN,
        }
    }

    /// Length of one value of `filter_type` in `service`; `None` when it has no such type.
    const fn len_in(filter_type: u8, service: Service) -> Option<usize> {
        match (filter_type, service) {
            (FILTER_SEQUENCE_OR_TIME_OFFSET, _) => Some(2),
            (FILTER_USER_FACING_TIME, Service::Glucose) => Some(DateTime::LEN),
            _ => None,
        }
    }

    /// Reads one value of a filter type `len_in` accepted.
    fn read(r: &mut Reader<'_>, filter_type: u8, service: Service) -> Result<Self, DecodeError> {
        Ok(match (filter_type, service) {
            (FILTER_USER_FACING_TIME, _) => Self::UserFacingTime(DateTime::read(r, "operand")?),
            (_, Service::Glucose) => Self::SequenceNumber(r.u16("operand")?),
            (_, Service::ContinuousGlucoseMonitoring) => Self::TimeOffset(r.u16("operand")?),
        })
    }

    fn write(&self, w: &mut Writer<'_>) -> Result<(), EncodeError> {
        match self {
            Self::SequenceNumber(v) | Self::TimeOffset(v) => w.u16(*v),
            Self::UserFacingTime(t) => t.write(w, "operand"),
        }
    }

    /// `self <= other` for two filters of the same kind; `None` for different kinds. Unknown
    /// date parts (0 on the wire) sort first.
    fn not_after(&self, other: &Self) -> Option<bool> {
        let key = |t: &DateTime| {
            let (y, m, d) = (
                t.year.map_or(0, |v| v.get()),
                t.month.map_or(0, |v| v.get()),
                t.day.map_or(0, |v| v.get()),
            );
            (y, m, d, t.hours, t.minutes, t.seconds)
        };
        match (self, other) {
            (Self::SequenceNumber(a), Self::SequenceNumber(b))
            | (Self::TimeOffset(a), Self::TimeOffset(b)) => Some(a <= b),
            (Self::UserFacingTime(a), Self::UserFacingTime(b)) => Some(key(a) <= key(b)),
            _ => None,
        }
    }

    /// A number to show in errors: the u16 value, or the year.
    fn shown(&self) -> u32 {
        match self {
            Self::SequenceNumber(v) | Self::TimeOffset(v) => u32::from(*v),
            Self::UserFacingTime(t) => u32::from(t.year.map_or(0, |v| v.get())),
        }
    }
}

/// Which records a request applies to: the Operator and its Operand.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(
    feature = "serde",
    derive(serde::Serialize),
    serde(rename_all = "snake_case")
)]
pub enum Records {
    /// Operator 1.
    All,
    /// Operator 2: records at or before the filter value.
    LessThanOrEqualTo(Filter),
    /// Operator 3: records at or after the filter value.
    GreaterThanOrEqualTo(Filter),
    /// Operator 4: records between the two values, inclusive; same filter kind, min <= max.
    WithinRangeOf { min: Filter, max: Filter },
    /// Operator 5: the oldest record.
    First,
    /// Operator 6: the newest record.
    Last,
}

impl Records {
    /// The records newer than `last_sequence`, the newest sequence number already stored (all
    /// records when `None`). `>=` is inclusive, so it names `last + 1`. With
    /// `quirks.reversed_sequence_numbers` newer records have smaller numbers: `<= last - 1`.
    /// When `last` is already at the end of the u16 range it names all records: nothing is
    /// missed whether or not the meter wraps, and the gateway deduplicates by sequence number.
    pub const fn after(last_sequence: Option<u16>, quirks: Quirks) -> Self {
        match last_sequence {
            None => Self::All,
            Some(last) if quirks.reversed_sequence_numbers => match last.checked_sub(1) {
                Some(next) => Self::LessThanOrEqualTo(Filter::SequenceNumber(next)),
                None => Self::All,
            },
            Some(last) => match last.checked_add(1) {
                Some(next) => Self::GreaterThanOrEqualTo(Filter::SequenceNumber(next)),
                None => Self::All,
            },
        }
    }

    /// The Operator octet.
    pub const fn operator(&self) -> Operator {
        match self {
            Self::All => Operator::AllRecords,
            Self::LessThanOrEqualTo(_) => Operator::LessThanOrEqualTo,
            Self::GreaterThanOrEqualTo(_) => Operator::GreaterThanOrEqualTo,
            Self::WithinRangeOf { .. } => Operator::WithinRangeOf,
            Self::First => Operator::FirstRecord,
            Self::Last => Operator::LastRecord,
        }
    }

    fn operand_len(&self) -> usize {
        match self {
            Self::All | Self::First | Self::Last => 0,
            Self::LessThanOrEqualTo(f) | Self::GreaterThanOrEqualTo(f) => 1 + f.value_len(),
            Self::WithinRangeOf { min, .. } => 1 + 2 * min.value_len(),
        }
    }
}

/// A request a client writes to the Record Access Control Point.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(
    feature = "serde",
    derive(serde::Serialize),
    serde(rename_all = "snake_case")
)]
pub enum RacpRequest {
    /// Op code 1: send the records (as measurement notifications), then a response code.
    ReportStoredRecords(Records),
    /// Op code 2.
    DeleteStoredRecords(Records),
    /// Op code 3, operator Null: stop the procedure in progress.
    AbortOperation,
    /// Op code 4: answer with the number of records.
    ReportNumberOfStoredRecords(Records),
}

impl RacpRequest {
    /// Longest request: op code, operator, filter type and two Date Times.
    const LONGEST: usize = 3 + 2 * DateTime::LEN;

    /// The Op Code octet.
    pub const fn op_code(&self) -> OpCode {
        match self {
            Self::ReportStoredRecords(_) => OpCode::ReportStoredRecords,
            Self::DeleteStoredRecords(_) => OpCode::DeleteStoredRecords,
            Self::AbortOperation => OpCode::AbortOperation,
            Self::ReportNumberOfStoredRecords(_) => OpCode::ReportNumberOfStoredRecords,
        }
    }

    /// The records selected; `None` for abort.
    pub const fn records(&self) -> Option<&Records> {
        match self {
            Self::ReportStoredRecords(r)
            | Self::DeleteStoredRecords(r)
            | Self::ReportNumberOfStoredRecords(r) => Some(r),
            Self::AbortOperation => None,
        }
    }

    /// The catch-up request of a Glucose gateway: the records newer than `last_sequence`, the
    /// newest sequence number already stored (all records when `None`); see [`Records::after`].
    /// `01 03 01 <last+1>`.
    pub const fn records_after(last_sequence: Option<u16>, quirks: Quirks) -> Self {
        Self::ReportStoredRecords(Records::after(last_sequence, quirks))
    }

    /// How many records [`RacpRequest::records_after`] would report (`04 03 01 <last+1>`): a
    /// gateway asks first to show progress and to notice records lost on the way.
    pub const fn count_after(last_sequence: Option<u16>, quirks: Quirks) -> Self {
        Self::ReportNumberOfStoredRecords(Records::after(last_sequence, quirks))
    }

    /// Count all stored records (`04 01`).
    pub const fn count_all() -> Self {
        Self::ReportNumberOfStoredRecords(Records::All)
    }

    /// Abort the procedure in progress (`03 00`).
    pub const fn abort() -> Self {
        Self::AbortOperation
    }

    /// Delete all stored records (`02 01`).
    pub const fn delete_all() -> Self {
        Self::DeleteStoredRecords(Records::All)
    }

    /// Decodes a request, reading filter type 0x01 as `service` defines it.
    pub fn decode_for(bytes: &[u8], service: Service) -> Result<Decoded<Self>, DecodeError> {
        parse(bytes, service).map_err(|rejection| rejection.error)
    }

    /// The server side: the request, or the response code the server must answer with. Stricter
    /// than decoding: bytes after a complete request are an invalid operand.
    pub fn validate(bytes: &[u8], service: Service) -> Result<Self, RacpRejection> {
        let decoded = parse(bytes, service)?;
        if decoded.trailing > 0 {
            let op_code = decoded.value.op_code();
            return Err(RacpRejection {
                op_code,
                code: ResponseCode::InvalidOperand,
                error: DecodeError::Invalid {
                    field: "operand",
                    value: u32::try_from(decoded.trailing).unwrap_or(u32::MAX),
                    expected: "no bytes after the operand (value is their count)",
                },
            });
        }
        Ok(decoded.value)
    }
}

/// Why a server refuses a RACP write: the op code and response code to indicate, and the
/// decoding error behind it (for logs).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RacpRejection {
    /// The request's op code; `Reserved(0)` for an empty write.
    pub op_code: OpCode,
    /// The response code to indicate.
    pub code: ResponseCode,
    /// What was wrong, with the field at fault.
    pub error: DecodeError,
}

impl RacpRejection {
    /// The indication that answers the rejected write: `06 00 <op_code> <code>`.
    pub const fn response(&self) -> RacpResponse {
        RacpResponse::ResponseCode {
            request_op_code: self.op_code,
            response_code: self.code,
        }
    }
}

impl fmt::Display for RacpRejection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "RACP {} rejected with {}: {}",
            self.op_code, self.code, self.error
        )
    }
}

impl core::error::Error for RacpRejection {}

/// Decodes a request, each failure carrying the response code a server answers with.
fn parse(bytes: &[u8], service: Service) -> Result<Decoded<RacpRequest>, RacpRejection> {
    let mut r = Reader::new(bytes);
    r.announce(2);
    let raw_op_code = r.u8("op_code").map_err(|error| RacpRejection {
        op_code: OpCode::Reserved(0),
        code: ResponseCode::OpCodeNotSupported,
        error,
    })?;
    let op_code = OpCode::from_code(raw_op_code);
    let reject = |code, error| RacpRejection {
        op_code,
        code,
        error,
    };
    let invalid = |field, value: u8, expected| DecodeError::Invalid {
        field,
        value: u32::from(value),
        expected,
    };
    if !matches!(
        op_code,
        OpCode::ReportStoredRecords
            | OpCode::DeleteStoredRecords
            | OpCode::AbortOperation
            | OpCode::ReportNumberOfStoredRecords
    ) {
        let expected = "a request: 1 (report), 2 (delete), 3 (abort) or 4 (report number)";
        return Err(reject(
            ResponseCode::OpCodeNotSupported,
            invalid("op_code", raw_op_code, expected),
        ));
    }
    let raw_operator = r
        .u8("operator")
        .map_err(|e| reject(ResponseCode::InvalidOperator, e))?;
    let operator = Operator::from_code(raw_operator);
    if op_code == OpCode::AbortOperation {
        if operator != Operator::Null {
            return Err(reject(
                ResponseCode::InvalidOperator,
                invalid("operator", raw_operator, "0 (null) for abort"),
            ));
        }
        return Ok(r.finish(RacpRequest::AbortOperation, 0));
    }
    let records = match operator {
        Operator::Null => {
            return Err(reject(
                ResponseCode::InvalidOperator,
                invalid(
                    "operator",
                    raw_operator,
                    "1..=6 (a record selection), not null",
                ),
            ));
        }
        Operator::Reserved(_) => {
            return Err(reject(
                ResponseCode::OperatorNotSupported,
                invalid("operator", raw_operator, "1..=6 (a record selection)"),
            ));
        }
        Operator::AllRecords => Records::All,
        Operator::FirstRecord => Records::First,
        Operator::LastRecord => Records::Last,
        Operator::LessThanOrEqualTo | Operator::GreaterThanOrEqualTo | Operator::WithinRangeOf => {
            let bad_operand = |e| reject(ResponseCode::InvalidOperand, e);
            let filter_type = r.u8("filter_type").map_err(bad_operand)?;
            let Some(len) = Filter::len_in(filter_type, service) else {
                let expected = match service {
                    Service::Glucose => "1 (sequence number) or 2 (user facing time)",
                    Service::ContinuousGlucoseMonitoring => "1 (time offset)",
                };
                return Err(reject(
                    ResponseCode::OperandNotSupported,
                    invalid("filter_type", filter_type, expected),
                ));
            };
            let values = if operator == Operator::WithinRangeOf {
                2
            } else {
                1
            };
            r.announce(3 + values * len);
            let first = Filter::read(&mut r, filter_type, service).map_err(bad_operand)?;
            match operator {
                Operator::LessThanOrEqualTo => Records::LessThanOrEqualTo(first),
                Operator::GreaterThanOrEqualTo => Records::GreaterThanOrEqualTo(first),
                _ => {
                    let max = Filter::read(&mut r, filter_type, service).map_err(bad_operand)?;
                    if first.not_after(&max) != Some(true) {
                        return Err(bad_operand(DecodeError::Invalid {
                            field: "operand",
                            value: first.shown(),
                            expected: "a range whose minimum is not after its maximum",
                        }));
                    }
                    Records::WithinRangeOf { min: first, max }
                }
            }
        }
    };
    let request = match op_code {
        OpCode::DeleteStoredRecords => RacpRequest::DeleteStoredRecords(records),
        OpCode::ReportNumberOfStoredRecords => RacpRequest::ReportNumberOfStoredRecords(records),
        _ => RacpRequest::ReportStoredRecords(records),
    };
    Ok(r.finish(request, 0))
}

impl Characteristic for RacpRequest {
    const UUID: u16 = uuid::RECORD_ACCESS_CONTROL_POINT;
    const NAME: &'static str = "record_access_control_point";
    const MAX_LEN: usize = Self::LONGEST;

    /// Reads filter type 0x01 as the Glucose Service's sequence number; see
    /// [`RacpRequest::decode_for`] for CGMS.
    fn decode_with(bytes: &[u8], _quirks: Quirks) -> Result<Decoded<Self>, DecodeError> {
        Self::decode_for(bytes, Service::Glucose)
    }

    fn encode_with(&self, out: &mut [u8], _quirks: Quirks) -> Result<usize, EncodeError> {
        let operand_len = self.records().map_or(0, Records::operand_len);
        let mut w = Writer::new(out);
        w.reserve(2 + operand_len)?;
        w.u8(self.op_code().code())?;
        let Some(records) = self.records() else {
            w.u8(Operator::Null.code())?;
            return Ok(w.len());
        };
        w.u8(records.operator().code())?;
        match records {
            Records::All | Records::First | Records::Last => {}
            Records::LessThanOrEqualTo(filter) | Records::GreaterThanOrEqualTo(filter) => {
                w.u8(filter.filter_type())?;
                filter.write(&mut w)?;
            }
            Records::WithinRangeOf { min, max } => {
                match min.not_after(max) {
                    Some(true) => {}
                    Some(false) => {
                        return Err(EncodeError::Unrepresentable {
                            field: "operand",
                            reason: "the range minimum is after its maximum",
                        });
                    }
                    None => {
                        return Err(EncodeError::Unrepresentable {
                            field: "operand",
                            reason: "both ends of a range must use the same filter",
                        });
                    }
                }
                w.u8(min.filter_type())?;
                min.write(&mut w)?;
                max.write(&mut w)?;
            }
        }
        Ok(w.len())
    }
}

/// What a server indicates on the Record Access Control Point.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(
    feature = "serde",
    derive(serde::Serialize),
    serde(rename_all = "snake_case")
)]
pub enum RacpResponse {
    /// Op code 5: the answer to "report number of stored records". Sent as a u16 (the GLS and
    /// CGMS field); a u8 or u32 count, seen in the wild, is accepted when decoding.
    NumberOfStoredRecords(u16),
    /// Op code 6: how the request with `request_op_code` ended.
    ResponseCode {
        request_op_code: OpCode,
        response_code: ResponseCode,
    },
}

impl Characteristic for RacpResponse {
    const UUID: u16 = uuid::RECORD_ACCESS_CONTROL_POINT;
    const NAME: &'static str = "record_access_control_point_response";
    const MAX_LEN: usize = 4;

    /// A count operand of exactly 1 or 4 bytes is read as u8 or u32 (a u32 above 65535 is
    /// invalid); any other length as u16, extra bytes being trailing.
    fn decode_with(bytes: &[u8], _quirks: Quirks) -> Result<Decoded<Self>, DecodeError> {
        let mut r = Reader::new(bytes);
        r.announce(4);
        let raw_op_code = r.u8("op_code")?;
        let op_code = OpCode::from_code(raw_op_code);
        if !matches!(
            op_code,
            OpCode::NumberOfStoredRecordsResponse | OpCode::ResponseCode
        ) {
            return Err(DecodeError::Invalid {
                field: "op_code",
                value: raw_op_code.into(),
                expected: "a response: 5 (number of stored records) or 6 (response code)",
            });
        }
        let operator = r.u8("operator")?;
        if operator != Operator::Null.code() {
            return Err(DecodeError::Invalid {
                field: "operator",
                value: operator.into(),
                expected: "0 (null) in a response",
            });
        }
        let value = if op_code == OpCode::NumberOfStoredRecordsResponse {
            const FIELD: &str = "number_of_stored_records";
            let count = match r.remaining() {
                1 => u16::from(r.u8(FIELD)?),
                4 => {
                    let wide = r.u32(FIELD)?;
                    u16::try_from(wide).map_err(|_| DecodeError::Invalid {
                        field: FIELD,
                        value: wide,
                        expected: "a count of at most 65535",
                    })?
                }
                _ => r.u16(FIELD)?,
            };
            Self::NumberOfStoredRecords(count)
        } else {
            Self::ResponseCode {
                request_op_code: OpCode::from_code(r.u8("request_op_code")?),
                response_code: ResponseCode::from_code(r.u8("response_code")?),
            }
        };
        Ok(r.finish(value, 0))
    }

    fn encode_with(&self, out: &mut [u8], _quirks: Quirks) -> Result<usize, EncodeError> {
        let mut w = Writer::new(out);
        w.reserve(Self::MAX_LEN)?;
        match self {
            Self::NumberOfStoredRecords(count) => {
                w.u8(OpCode::NumberOfStoredRecordsResponse.code())?;
                w.u8(Operator::Null.code())?;
                w.u16(*count)?;
            }
            Self::ResponseCode {
                request_op_code,
                response_code,
            } => {
                w.u8(OpCode::ResponseCode.code())?;
                w.u8(Operator::Null.code())?;
                w.u8(request_op_code.code())?;
                w.u8(response_code.code())?;
            }
        }
        Ok(w.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_support::{date_time, roundtrip};
    use proptest::prelude::*;

    const REVERSED: Quirks = Quirks {
        reversed_sequence_numbers: true,
        ..Quirks::NONE
    };

    fn bytes_of<T: Characteristic>(value: &T) -> std::vec::Vec<u8> {
        let mut out = [0u8; 32];
        let n = value.encode(&mut out).unwrap();
        out[..n].to_vec()
    }

    fn report(records: Records) -> RacpRequest {
        RacpRequest::ReportStoredRecords(records)
    }

    fn seq(n: u16) -> Filter {
        Filter::SequenceNumber(n)
    }

    /// The request byte strings of Nordic's RecordAccessControlPointData and xDrip's
    /// RecordsCmdTx.
    fn request_vectors() -> [(RacpRequest, &'static [u8]); 9] {
        [
            (report(Records::All), &[0x01, 0x01]),
            (report(Records::First), &[0x01, 0x05]),
            (report(Records::Last), &[0x01, 0x06]),
            (
                report(Records::GreaterThanOrEqualTo(seq(0x1234))),
                &[0x01, 0x03, 0x01, 0x34, 0x12],
            ),
            (
                report(Records::LessThanOrEqualTo(seq(42))),
                &[0x01, 0x02, 0x01, 42, 0],
            ),
            (
                report(Records::WithinRangeOf {
                    min: seq(10),
                    max: seq(20),
                }),
                &[0x01, 0x04, 0x01, 10, 0, 20, 0],
            ),
            (RacpRequest::count_all(), &[0x04, 0x01]),
            (RacpRequest::delete_all(), &[0x02, 0x01]),
            (RacpRequest::abort(), &[0x03, 0x00]),
        ]
    }

    #[test]
    fn requests_encode_and_decode_as_the_reference_byte_strings() {
        for (request, bytes) in request_vectors() {
            assert_eq!(bytes_of(&request), bytes, "{request:?}");
            let d = RacpRequest::decode(bytes).unwrap();
            assert_eq!((d.value, d.trailing), (request, 0));
            assert_eq!(RacpRequest::validate(bytes, Service::Glucose), Ok(request));
        }
    }

    #[test]
    fn responses_encode_and_decode_as_the_reference_byte_strings() {
        let done = RacpResponse::ResponseCode {
            request_op_code: OpCode::ReportStoredRecords,
            response_code: ResponseCode::NoRecordsFound,
        };
        let count = RacpResponse::NumberOfStoredRecords(0x0102);
        for (response, bytes) in [
            (done, [0x06, 0x00, 0x01, 0x06]),
            (count, [0x05, 0x00, 0x02, 0x01]),
        ] {
            assert_eq!(bytes_of(&response), bytes);
            assert_eq!(RacpResponse::decode(&bytes).unwrap().value, response);
        }
        assert!(ResponseCode::NoRecordsFound.completed());
        assert!(!ResponseCode::ProcedureNotCompleted.completed());
    }

    #[test]
    fn record_count_is_also_read_as_u8_or_u32() {
        let d = RacpResponse::decode(&[0x05, 0x00, 0x2A]).unwrap();
        assert_eq!(
            (d.value, d.trailing),
            (RacpResponse::NumberOfStoredRecords(42), 0)
        );
        let d = RacpResponse::decode(&[0x05, 0x00, 0x2A, 0x01, 0x00, 0x00]).unwrap();
        assert_eq!(
            (d.value, d.trailing),
            (RacpResponse::NumberOfStoredRecords(0x012A), 0)
        );
        let err = RacpResponse::decode(&[0x05, 0x00, 0x00, 0x00, 0x01, 0x00]).unwrap_err();
        assert_eq!(err.field(), "number_of_stored_records");
        let d = RacpResponse::decode(&[0x05, 0x00, 0x2A, 0x00, 0xFF]).unwrap();
        assert_eq!(
            (d.value, d.trailing),
            (RacpResponse::NumberOfStoredRecords(42), 1)
        );
    }

    #[test]
    fn names_the_missing_response_field_with_byte_counts() {
        assert_eq!(
            RacpResponse::decode(&[0x06, 0x00, 0x01]).unwrap_err(),
            DecodeError::Truncated {
                field: "response_code",
                needed: 4,
                present: 3
            }
        );
        assert_eq!(
            RacpResponse::decode(&[0x05, 0x00]).unwrap_err(),
            DecodeError::Truncated {
                field: "number_of_stored_records",
                needed: 4,
                present: 2
            }
        );
    }

    #[test]
    fn responses_with_a_request_op_code_or_an_operator_are_invalid() {
        assert_eq!(
            RacpResponse::decode(&[0x01, 0x01]).unwrap_err().field(),
            "op_code"
        );
        assert_eq!(
            RacpResponse::decode(&[0x06, 0x01, 0x01, 0x01])
                .unwrap_err()
                .field(),
            "operator"
        );
    }

    #[test]
    fn reserved_codes_in_a_response_are_kept() {
        let d = RacpResponse::decode(&[0x06, 0x00, 0x09, 0x0A])
            .unwrap()
            .value;
        assert_eq!(
            d,
            RacpResponse::ResponseCode {
                request_op_code: OpCode::Reserved(9),
                response_code: ResponseCode::Reserved(10)
            }
        );
    }

    #[test]
    fn catch_up_asks_for_the_records_after_the_last_one() {
        let bytes = |last, quirks| bytes_of(&RacpRequest::records_after(last, quirks));
        assert_eq!(bytes(None, Quirks::NONE), [0x01, 0x01]);
        assert_eq!(bytes(Some(41), Quirks::NONE), [0x01, 0x03, 0x01, 42, 0]);
        assert_eq!(bytes(Some(0xFFFF), Quirks::NONE), [0x01, 0x01]);
    }

    #[test]
    fn the_count_names_the_records_the_catch_up_will_report() {
        let bytes = |last, quirks| bytes_of(&RacpRequest::count_after(last, quirks));
        assert_eq!(bytes(None, Quirks::NONE), [0x04, 0x01]);
        assert_eq!(bytes(Some(41), Quirks::NONE), [0x04, 0x03, 0x01, 42, 0]);
        assert_eq!(bytes(Some(43), REVERSED), [0x04, 0x02, 0x01, 42, 0]);
    }

    #[test]
    fn catch_up_with_reversed_sequence_numbers_asks_for_smaller_ones() {
        let bytes = |last, quirks| bytes_of(&RacpRequest::records_after(last, quirks));
        assert_eq!(bytes(None, REVERSED), [0x01, 0x01]);
        assert_eq!(bytes(Some(43), REVERSED), [0x01, 0x02, 0x01, 42, 0]);
        assert_eq!(bytes(Some(0), REVERSED), [0x01, 0x01]);
    }

    fn rejection(bytes: &[u8], service: Service) -> (OpCode, ResponseCode) {
        let r = RacpRequest::validate(bytes, service).unwrap_err();
        (r.op_code, r.code)
    }

    #[test]
    fn server_rejects_bad_requests_with_the_right_response_code() {
        use OpCode::{AbortOperation as Abort, ReportStoredRecords as Report};
        use ResponseCode::*;
        let gls = Service::Glucose;
        let cases: [(&[u8], (OpCode, ResponseCode)); 14] = [
            (&[0x03, 0x01], (Abort, InvalidOperator)),
            (&[0x01, 0x00], (Report, InvalidOperator)),
            (&[0x01], (Report, InvalidOperator)),
            (&[0x01, 0x07], (Report, OperatorNotSupported)),
            (&[0x01, 0x02], (Report, InvalidOperand)),
            (&[0x01, 0x02, 0x01], (Report, InvalidOperand)),
            (&[0x01, 0x03, 0x01, 0x05], (Report, InvalidOperand)),
            (
                &[0x01, 0x03, 0x07, 0x01, 0x00],
                (Report, OperandNotSupported),
            ),
            (&[0x01, 0x04, 0x01, 20, 0, 10, 0], (Report, InvalidOperand)),
            (&[0x01, 0x01, 0x00], (Report, InvalidOperand)),
            (&[0x09, 0x01], (OpCode::Reserved(9), OpCodeNotSupported)),
            (
                &[0x05, 0x00, 0x01, 0x00],
                (OpCode::NumberOfStoredRecordsResponse, OpCodeNotSupported),
            ),
            (
                &[0x06, 0x00, 0x01, 0x01],
                (OpCode::ResponseCode, OpCodeNotSupported),
            ),
            (&[], (OpCode::Reserved(0), OpCodeNotSupported)),
        ];
        for (bytes, expected) in cases {
            assert_eq!(rejection(bytes, gls), expected, "{bytes:02x?}");
        }
    }

    #[test]
    fn rejection_answers_with_a_response_code_indication() {
        let r = RacpRequest::validate(&[0x03, 0x01], Service::Glucose).unwrap_err();
        assert_eq!(bytes_of(&r.response()), [0x06, 0x00, 0x03, 0x03]);
        assert_eq!(r.error.field(), "operator");
    }

    #[test]
    fn decoding_tolerates_trailing_bytes_that_validation_rejects() {
        let d = RacpRequest::decode(&[0x04, 0x01, 0xAA]).unwrap();
        assert_eq!((d.value, d.trailing), (RacpRequest::count_all(), 1));
    }

    #[test]
    fn names_the_missing_operand_with_byte_counts() {
        assert_eq!(
            RacpRequest::decode(&[0x01, 0x04, 0x01, 10, 0, 20]).unwrap_err(),
            DecodeError::Truncated {
                field: "operand",
                needed: 7,
                present: 6
            }
        );
    }

    #[test]
    fn user_facing_time_is_a_glucose_filter_only() {
        let mut bytes = std::vec![0x01, 0x03, 0x02];
        bytes.extend_from_slice(&[0xE8, 0x07, 0x03, 0x05, 0x08, 0x1E, 0x0F]);
        let t = DateTime::new(2024, 3, 5, 8, 30, 15).unwrap();
        let request = report(Records::GreaterThanOrEqualTo(Filter::UserFacingTime(t)));
        assert_eq!(RacpRequest::validate(&bytes, Service::Glucose), Ok(request));
        assert_eq!(bytes_of(&request), bytes);
        let cgm = Service::ContinuousGlucoseMonitoring;
        assert_eq!(
            rejection(&bytes, cgm),
            (
                OpCode::ReportStoredRecords,
                ResponseCode::OperandNotSupported
            )
        );
    }

    #[test]
    fn filter_type_1_is_a_time_offset_in_cgms() {
        let bytes = [0x01, 0x03, 0x01, 0x3C, 0x00];
        let cgm = RacpRequest::decode_for(&bytes, Service::ContinuousGlucoseMonitoring).unwrap();
        assert_eq!(
            cgm.value,
            report(Records::GreaterThanOrEqualTo(Filter::TimeOffset(60)))
        );
        assert_eq!(bytes_of(&cgm.value), bytes);
        let gls = RacpRequest::decode(&bytes).unwrap();
        assert_eq!(gls.value, report(Records::GreaterThanOrEqualTo(seq(60))));
    }

    #[test]
    fn encoder_rejects_inconsistent_ranges() {
        let mut out = [0u8; 32];
        let mixed = report(Records::WithinRangeOf {
            min: seq(1),
            max: Filter::TimeOffset(2),
        });
        assert!(matches!(
            mixed.encode(&mut out),
            Err(EncodeError::Unrepresentable {
                field: "operand",
                ..
            })
        ));
        let reversed = report(Records::WithinRangeOf {
            min: seq(2),
            max: seq(1),
        });
        assert!(matches!(
            reversed.encode(&mut out),
            Err(EncodeError::Unrepresentable {
                field: "operand",
                ..
            })
        ));
    }

    fn filter_pair(service: Service) -> BoxedStrategy<(Filter, Filter)> {
        let numbers = (any::<u16>(), any::<u16>()).prop_map(move |(a, b)| {
            let make = |v| match service {
                Service::Glucose => Filter::SequenceNumber(v),
                Service::ContinuousGlucoseMonitoring => Filter::TimeOffset(v),
            };
            (make(a.min(b)), make(a.max(b)))
        });
        match service {
            Service::ContinuousGlucoseMonitoring => numbers.boxed(),
            Service::Glucose => prop_oneof![
                numbers,
                (date_time(), date_time()).prop_map(|(a, b)| {
                    let (a, b) = (Filter::UserFacingTime(a), Filter::UserFacingTime(b));
                    if a.not_after(&b) == Some(true) {
                        (a, b)
                    } else {
                        (b, a)
                    }
                }),
            ]
            .boxed(),
        }
    }

    fn request(service: Service) -> impl Strategy<Value = RacpRequest> {
        let records = (0u8..6, filter_pair(service)).prop_map(|(op, (min, max))| match op {
            0 => Records::All,
            1 => Records::LessThanOrEqualTo(min),
            2 => Records::GreaterThanOrEqualTo(max),
            3 => Records::WithinRangeOf { min, max },
            4 => Records::First,
            _ => Records::Last,
        });
        (0u8..4, records).prop_map(|(op, records)| match op {
            0 => RacpRequest::ReportStoredRecords(records),
            1 => RacpRequest::DeleteStoredRecords(records),
            2 => RacpRequest::ReportNumberOfStoredRecords(records),
            _ => RacpRequest::AbortOperation,
        })
    }

    fn response() -> impl Strategy<Value = RacpResponse> {
        prop_oneof![
            any::<u16>().prop_map(RacpResponse::NumberOfStoredRecords),
            (any::<u8>(), any::<u8>()).prop_map(|(op, code)| RacpResponse::ResponseCode {
                request_op_code: OpCode::from_code(op),
                response_code: ResponseCode::from_code(code),
            }),
        ]
    }

    proptest! {
        #[test]
        fn glucose_request_roundtrips(r in request(Service::Glucose)) {
            roundtrip(&r, Quirks::NONE)?;
            prop_assert_eq!(RacpRequest::validate(&bytes_of(&r), Service::Glucose), Ok(r));
        }

        #[test]
        fn cgm_request_roundtrips_through_decode_for(r in request(Service::ContinuousGlucoseMonitoring)) {
            let cgm = Service::ContinuousGlucoseMonitoring;
            let bytes = bytes_of(&r);
            prop_assert!(bytes.len() <= RacpRequest::MAX_LEN);
            let d = RacpRequest::decode_for(&bytes, cgm).unwrap();
            prop_assert_eq!((d.value, d.trailing), (r, 0));
            prop_assert_eq!(RacpRequest::validate(&bytes, cgm), Ok(r));
        }

        #[test]
        fn response_roundtrips(r in response()) {
            roundtrip(&r, Quirks::NONE)?;
        }

        #[test]
        fn decoding_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..24)) {
            let _ = RacpRequest::decode(&bytes);
            let _ = RacpRequest::validate(&bytes, Service::Glucose);
            let _ = RacpRequest::validate(&bytes, Service::ContinuousGlucoseMonitoring);
            let _ = RacpResponse::decode(&bytes);
        }

        #[test]
        fn validation_agrees_with_decoding(bytes in proptest::collection::vec(any::<u8>(), 0..24)) {
            let decoded = RacpRequest::decode(&bytes);
            match RacpRequest::validate(&bytes, Service::Glucose) {
                Ok(r) => prop_assert_eq!(decoded.map(|d| d.value), Ok(r)),
                Err(rejection) => prop_assert!(decoded.is_err() || rejection.code == ResponseCode::InvalidOperand),
            }
        }
    }
}
