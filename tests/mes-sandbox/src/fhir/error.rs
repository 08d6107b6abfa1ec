//! The errors of API Mesure (reference §2.1 and the spec's error tables) as HTTP responses.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

use super::outcome::{Issue, IssueType, OperationOutcome};
use crate::store::StoreError;

/// An API Mesure call that cannot be served.
#[derive(Debug)]
pub(crate) enum FhirError {
    /// No `Authorization: Bearer` header (401).
    MissingToken,
    /// Unknown, expired or revoked access token (401).
    InvalidToken,
    /// id_token missing, unsigned by the sandbox, expired or not issued with the access
    /// token's pairing (400).
    InvalidIdToken,
    /// The id_token's partner OID is not the partner's registered OID (409).
    OidConflict,
    /// The user has not consented to this read or write (403).
    NoConsent,
    /// The request names another patient than the authorized one (403).
    IdPeMismatch,
    /// The body is not a Bundle (400, as in spec v1.5.2).
    NoBundle,
    /// Business rules failed (422).
    Unprocessable(Vec<Issue>),
    /// A malformed search (400 "Request not valid").
    BadRequest(Vec<Issue>),
    /// The sandbox itself failed (500).
    Internal(String),
}

impl From<StoreError> for FhirError {
    fn from(e: StoreError) -> Self {
        FhirError::Internal(e.to_string())
    }
}

const REALM: &str = "Bearer realm=\"mes-sandbox\"";

impl IntoResponse for FhirError {
    fn into_response(self) -> Response {
        let mut challenge = None;
        let (status, outcome) = match self {
            FhirError::MissingToken => {
                // RFC 6750 §3.1: no error code when the request had no token at all.
                challenge = Some(REALM.to_owned());
                (
                    StatusCode::UNAUTHORIZED,
                    OperationOutcome::error(
                        IssueType::Login,
                        "Authorization Bearer access_token is missing.",
                    ),
                )
            }
            FhirError::InvalidToken => {
                challenge = Some(format!("{REALM}, error=\"invalid_token\""));
                (
                    StatusCode::UNAUTHORIZED,
                    OperationOutcome::error(IssueType::Login, "The access_token is not valid."),
                )
            }
            FhirError::InvalidIdToken => (
                StatusCode::BAD_REQUEST,
                OperationOutcome::error(
                    IssueType::Security,
                    "The ID_TOKEN value is not valid (invalid JWT)",
                ),
            ),
            FhirError::OidConflict => (
                StatusCode::CONFLICT,
                OperationOutcome::error(
                    IssueType::Conflict,
                    "OID conflict between the one from id_token and the one in the system",
                ),
            ),
            FhirError::NoConsent => (
                StatusCode::FORBIDDEN,
                OperationOutcome::error(IssueType::Forbidden, "Consent not given, access refused."),
            ),
            FhirError::IdPeMismatch => (
                StatusCode::FORBIDDEN,
                OperationOutcome::error(
                    IssueType::Forbidden,
                    "idPe requested do not match authorized idPe.",
                ),
            ),
            FhirError::NoBundle => (
                StatusCode::BAD_REQUEST,
                OperationOutcome::error(IssueType::Required, "No bundle provided."),
            ),
            FhirError::Unprocessable(issues) => (
                StatusCode::UNPROCESSABLE_ENTITY,
                OperationOutcome::of(issues),
            ),
            FhirError::BadRequest(issues) => {
                (StatusCode::BAD_REQUEST, OperationOutcome::of(issues))
            }
            FhirError::Internal(e) => {
                tracing::error!(error = %e, "sandbox failure");
                (
                    StatusCode::INTERNAL_SERVER_ERROR,
                    OperationOutcome::error(IssueType::Exception, "Sandbox internal error."),
                )
            }
        };
        let mut response = outcome.into_response_with(status);
        if let Some(challenge) = challenge.and_then(|c| HeaderValue::from_str(&c).ok()) {
            response
                .headers_mut()
                .insert(header::WWW_AUTHENTICATE, challenge);
        }
        response
    }
}
