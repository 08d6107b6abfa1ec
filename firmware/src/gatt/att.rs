//! ATT error codes: what a central reads in an Error Response when the server refuses a read or a
//! write. One typed enum so every refusal in the firmware names its reason, and so the binding
//! turns it into the byte its stack wants with [`AttError::code`].
//!
//! Codes 0x01-0x13 are the Core specification's (Vol 3, Part F, 3.4.1.1); 0x80-0x9F belong to
//! the service being accessed (each service's specification defines them); 0xE0-0xFF are the
//! Core Specification Supplement's common profile and service codes (Part B, 1.2).

use core::fmt;

/// Why the server refused an ATT request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AttError {
    /// 0x01: no attribute has this handle.
    InvalidHandle,
    /// 0x02: the attribute has no Read property.
    ReadNotPermitted,
    /// 0x03: the attribute has no Write property (for this kind of write), or is a declaration.
    WriteNotPermitted,
    /// 0x05: the attribute needs an encrypted link and the peer has no bond: it should pair.
    InsufficientAuthentication,
    /// 0x06: the server does not support the request (e.g. Prepare Write).
    RequestNotSupported,
    /// 0x07: a Read Blob offset lies past the end of the value.
    InvalidOffset,
    /// 0x0D: the written value has the wrong length for this attribute.
    InvalidAttributeValueLength,
    /// 0x0E: the request failed for a reason no other code describes.
    UnlikelyError,
    /// 0x0F: the attribute needs an encrypted link and the bonded peer has not encrypted yet.
    InsufficientEncryption,
    /// 0x13: the written value is not one the attribute accepts (e.g. a CCCD value the
    /// characteristic does not support).
    ValueNotAllowed,
    /// 0x80-0x9F: an error the service's own specification defines.
    Application(ApplicationError),
    /// 0xFC: the write was refused by a rule of the profile (CSS "Write Request Rejected").
    WriteRequestRejected,
    /// 0xFD: a control point was written by a client that has not enabled its indications (CSS
    /// "Client Characteristic Configuration Descriptor Improperly Configured").
    CccdImproperlyConfigured,
    /// 0xFE: the client asked for a procedure while the previous one still runs.
    ProcedureAlreadyInProgress,
    /// 0xFF: a written value lies outside the range the characteristic allows (CSS "Out of
    /// Range"), e.g. an impossible date written to Current Time.
    OutOfRange,
}

impl AttError {
    /// The byte sent in the Error Response.
    pub const fn code(self) -> u8 {
        match self {
            Self::InvalidHandle => 0x01,
            Self::ReadNotPermitted => 0x02,
            Self::WriteNotPermitted => 0x03,
            Self::InsufficientAuthentication => 0x05,
            Self::RequestNotSupported => 0x06,
            Self::InvalidOffset => 0x07,
            Self::InvalidAttributeValueLength => 0x0D,
            Self::UnlikelyError => 0x0E,
            Self::InsufficientEncryption => 0x0F,
            Self::ValueNotAllowed => 0x13,
            Self::Application(e) => e.code(),
            Self::WriteRequestRejected => 0xFC,
            Self::CccdImproperlyConfigured => 0xFD,
            Self::ProcedureAlreadyInProgress => 0xFE,
            Self::OutOfRange => 0xFF,
        }
    }

    /// The error a code stands for; `None` for codes the firmware never sends.
    pub const fn from_code(code: u8) -> Option<Self> {
        Some(match code {
            0x01 => Self::InvalidHandle,
            0x02 => Self::ReadNotPermitted,
            0x03 => Self::WriteNotPermitted,
            0x05 => Self::InsufficientAuthentication,
            0x06 => Self::RequestNotSupported,
            0x07 => Self::InvalidOffset,
            0x0D => Self::InvalidAttributeValueLength,
            0x0E => Self::UnlikelyError,
            0x0F => Self::InsufficientEncryption,
            0x13 => Self::ValueNotAllowed,
            0xFC => Self::WriteRequestRejected,
            0xFD => Self::CccdImproperlyConfigured,
            0xFE => Self::ProcedureAlreadyInProgress,
            0xFF => Self::OutOfRange,
            other => match ApplicationError::new(other) {
                Some(e) => Self::Application(e),
                None => return None,
            },
        })
    }
}

impl fmt::Display for AttError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let text = match self {
            Self::InvalidHandle => "invalid handle",
            Self::ReadNotPermitted => "read not permitted",
            Self::WriteNotPermitted => "write not permitted",
            Self::InsufficientAuthentication => "insufficient authentication",
            Self::RequestNotSupported => "request not supported",
            Self::InvalidOffset => "invalid offset",
            Self::InvalidAttributeValueLength => "invalid attribute value length",
            Self::UnlikelyError => "unlikely error",
            Self::InsufficientEncryption => "insufficient encryption",
            Self::ValueNotAllowed => "value not allowed",
            Self::Application(_) => "application error",
            Self::WriteRequestRejected => "write request rejected",
            Self::CccdImproperlyConfigured => {
                "client characteristic configuration improperly configured"
            }
            Self::ProcedureAlreadyInProgress => "procedure already in progress",
            Self::OutOfRange => "out of range",
        };
        write!(f, "ATT error 0x{:02X}: {text}", self.code())
    }
}

impl core::error::Error for AttError {}

/// A service-defined error code, 0x80..=0x9F. Its meaning depends on the service: 0x80 is
/// "Data field ignored" in the Current Time Service and "Procedure already in progress" in
/// older Glucose servers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ApplicationError(u8);

impl ApplicationError {
    /// CTS 0x80 "Data field ignored": the server accepted the write but ignored some fields.
    pub const DATA_FIELD_IGNORED: Self = Self(0x80);

    /// The code, if it lies in the application range 0x80..=0x9F.
    pub const fn new(code: u8) -> Option<Self> {
        if code >= 0x80 && code <= 0x9F {
            Some(Self(code))
        } else {
            None
        }
    }

    /// The byte sent in the Error Response.
    pub const fn code(self) -> u8 {
        self.0
    }
}
