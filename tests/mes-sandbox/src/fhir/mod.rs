//! API Mesure: the FHIR endpoints of MES, under `/fhir`.

pub(crate) mod auth;
pub(crate) mod error;
pub(crate) mod outcome;
pub(crate) mod profiles;
pub(crate) mod search;
pub(crate) mod time;
pub(crate) mod validate;
pub(crate) mod write;

use std::sync::Arc;

use axum::Router;
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::{get, post};

use crate::server::AppState;
use outcome::{IssueType, OperationOutcome};

/// The `/fhir` routes.
pub(crate) fn routes() -> Router<Arc<AppState>> {
    Router::new()
        .route("/fhir", post(write::transaction))
        .route("/fhir/", post(write::transaction))
        .route("/fhir/Observation", get(search::search))
        .route("/fhir/{*rest}", get(not_found).post(not_found))
}

async fn not_found() -> Response {
    OperationOutcome::error(
        IssueType::NotSupported,
        "API Mesure offers POST [base]/fhir (transaction) and GET [base]/fhir/Observation only.",
    )
    .into_response_with(StatusCode::NOT_FOUND)
}
