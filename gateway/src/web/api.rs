//! The JSON API behind the pages, under `/api/v1`, described by the OpenAPI document at
//! `/api/openapi.json`.
//!
//! Same authentication as the pages: the administrator's session cookie. Writes also need the
//! session's CSRF token in the `X-CSRF-Token` header (`GET /api/v1/session` gives it).

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use utoipa::{OpenApi, ToSchema};

use crate::hub::control::ControlError;
use crate::hub::ingest::with_store;
use crate::store::outbox::Backlog;
use crate::store::{MeasurementId, MemberId, MesState, Sink, StoreError, StoredMeasurement};
use crate::web::auth::{SESSION_COOKIE, cookie};
use crate::web::pages::readings_of;
use crate::web::state::AppState;

/// The header carrying the CSRF token of API writes.
pub const CSRF_HEADER: &str = "x-csrf-token";

/// The API's routes.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/api/openapi.json", get(openapi))
        .route("/api/v1/session", get(session))
        .route("/api/v1/members", get(members).post(add_member))
        .route("/api/v1/members/{id}/measurements", get(measurements))
        .route("/api/v1/inbox", get(inbox))
        .route("/api/v1/inbox/{id}/assign", post(assign))
        .route("/api/v1/status", get(status))
}

/// The OpenAPI description.
#[derive(Debug, OpenApi)]
#[openapi(
    info(
        title = "relais",
        description = "The hub's JSON API: household, readings, inbox, status."
    ),
    paths(session, members, add_member, measurements, inbox, assign, status),
    components(schemas(
        ApiError,
        SessionView,
        MemberView,
        NewMember,
        MeasurementView,
        ReadingJson,
        DeliveryView,
        AssignRequest,
        StatusView,
        MemberBacklog,
        DeviceView
    ))
)]
pub struct ApiDoc;

/// An error: what went wrong, in words.
#[derive(Debug, Serialize, ToSchema)]
pub struct ApiError {
    /// What went wrong and what to do.
    pub error: String,
}

fn error(status: StatusCode, message: &str) -> Response {
    (
        status,
        Json(ApiError {
            error: message.to_owned(),
        }),
    )
        .into_response()
}

fn store_error(e: StoreError) -> Response {
    match e {
        StoreError::NotFound(m) => error(StatusCode::NOT_FOUND, &m),
        StoreError::Invalid(m) => error(StatusCode::UNPROCESSABLE_ENTITY, &m),
        e => {
            tracing::error!("web API: {e}");
            error(
                StatusCode::INTERNAL_SERVER_ERROR,
                "the hub's database failed: restart the hub",
            )
        }
    }
}

/// Why a request is refused: its status and what to do.
type Refusal = (StatusCode, &'static str);

fn refused((status, message): Refusal) -> Response {
    error(status, message)
}

/// A refused action: its status from what went wrong.
fn control_error(e: &ControlError) -> Response {
    let status = match e {
        ControlError::UnknownMeasurement(_)
        | ControlError::UnknownMember(_)
        | ControlError::UnknownDevice(_) => StatusCode::NOT_FOUND,
        ControlError::NotInInbox(_) => StatusCode::CONFLICT,
        ControlError::BluetoothOff => StatusCode::SERVICE_UNAVAILABLE,
        ControlError::Store(_) => StatusCode::INTERNAL_SERVER_ERROR,
        _ => StatusCode::UNPROCESSABLE_ENTITY,
    };
    error(status, &e.to_string())
}

/// The signed-in session's CSRF token, or why the request is refused.
fn authorised(state: &AppState, headers: &HeaderMap, write: bool) -> Result<String, Refusal> {
    let session = cookie(headers, SESSION_COOKIE)
        .and_then(|id| state.sessions.get(&id))
        .filter(|s| s.admin)
        .ok_or((
            StatusCode::UNAUTHORIZED,
            "sign in on the web page first (POST /login)",
        ))?;
    if write {
        let sent = headers
            .get(CSRF_HEADER)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("");
        if sent != session.csrf {
            return Err((
                StatusCode::FORBIDDEN,
                "the X-CSRF-Token header is missing or wrong: read it from GET /api/v1/session",
            ));
        }
    }
    Ok(session.csrf)
}

/// `GET /api/openapi.json`
pub async fn openapi() -> Json<utoipa::openapi::OpenApi> {
    Json(ApiDoc::openapi())
}

/// The session's CSRF token, for writes.
#[derive(Debug, Serialize, ToSchema)]
pub struct SessionView {
    /// Send it back in `X-CSRF-Token`.
    pub csrf: String,
}

/// The signed-in session.
#[utoipa::path(get, path = "/api/v1/session", responses(
    (status = 200, body = SessionView), (status = 401, body = ApiError)))]
pub async fn session(State(state): State<AppState>, headers: HeaderMap) -> Response {
    match authorised(&state, &headers, false) {
        Ok(csrf) => Json(SessionView { csrf }).into_response(),
        Err(r) => refused(r),
    }
}

/// A household member.
#[derive(Debug, Serialize, ToSchema)]
pub struct MemberView {
    /// Opaque id.
    pub id: i64,
    /// The name shown.
    pub display_name: String,
    /// `unlinked`, `linked`, `consent_withdrawn` or `configuration_error`.
    pub mes_state: String,
}

fn mes_state(state: MesState) -> String {
    serde_json::to_value(state)
        .ok()
        .and_then(|v| v.as_str().map(str::to_owned))
        .unwrap_or_default()
}

/// The household.
#[utoipa::path(get, path = "/api/v1/members", responses(
    (status = 200, body = [MemberView]), (status = 401, body = ApiError)))]
pub async fn members(State(state): State<AppState>, headers: HeaderMap) -> Response {
    if let Err(r) = authorised(&state, &headers, false) {
        return refused(r);
    }
    match with_store(&state.store, |s| s.members()).await {
        Ok(list) => Json(
            list.into_iter()
                .map(|m| MemberView {
                    id: m.id.0,
                    display_name: m.display_name,
                    mes_state: mes_state(m.mes_state),
                })
                .collect::<Vec<_>>(),
        )
        .into_response(),
        Err(e) => store_error(e),
    }
}

/// A member to add.
#[derive(Debug, Deserialize, ToSchema)]
pub struct NewMember {
    /// The name shown; unique in the household.
    pub display_name: String,
}

/// Adds a member.
#[utoipa::path(post, path = "/api/v1/members", request_body = NewMember, responses(
    (status = 201, body = MemberView), (status = 401, body = ApiError), (status = 403, body = ApiError),
    (status = 422, body = ApiError)))]
pub async fn add_member(
    State(state): State<AppState>,
    headers: HeaderMap,
    Json(new): Json<NewMember>,
) -> Response {
    if let Err(r) = authorised(&state, &headers, true) {
        return refused(r);
    }
    let name = new.display_name.clone();
    match with_store(&state.store, move |s| {
        let id = s.add_member(&name)?;
        s.member(id)
    })
    .await
    {
        Ok(m) => (
            StatusCode::CREATED,
            Json(MemberView {
                id: m.id.0,
                display_name: m.display_name,
                mes_state: mes_state(m.mes_state),
            }),
        )
            .into_response(),
        Err(e) => store_error(e),
    }
}

/// One reading of a measurement.
#[derive(Debug, Serialize, ToSchema)]
pub struct ReadingJson {
    /// `body_weight`, `blood_pressure`, `blood_glucose`, ...
    pub kind: String,
    /// The value (systolic for blood pressure), in `unit`.
    pub value: Option<f64>,
    /// Diastolic, for blood pressure.
    pub diastolic: Option<f64>,
    /// The unit as written (`kg`, `mmHg`, `mg/dL`).
    pub unit: String,
}

/// Where a measurement's readings stand with Mon espace santé.
#[derive(Debug, Serialize, ToSchema)]
pub struct DeliveryView {
    /// Readings waiting to be sent (or in flight).
    pub waiting: u64,
    /// Readings delivered.
    pub sent: u64,
    /// Readings MES refused (kept, with the reason, on the status page).
    pub refused: u64,
    /// Readings MES does not take (such as a BMI).
    pub not_for_mes: u64,
}

impl From<Backlog> for DeliveryView {
    fn from(b: Backlog) -> Self {
        Self {
            waiting: b.pending + b.sending,
            sent: b.sent,
            refused: b.quarantined,
            not_for_mes: b.unsendable,
        }
    }
}

/// A measurement.
#[derive(Debug, Serialize, ToSchema)]
pub struct MeasurementView {
    /// Opaque id.
    pub id: i64,
    /// The device's address.
    pub device: String,
    /// When the device says it was measured (its local time), if it says.
    pub measured_at: Option<String>,
    /// When the hub received it (RFC 3339, UTC).
    pub received_at: String,
    /// The member proposed for an inbox measurement.
    pub suggested_member: Option<i64>,
    /// Its readings.
    pub readings: Vec<ReadingJson>,
    /// Its readings' MES delivery.
    pub mes: DeliveryView,
}

fn view(m: &StoredMeasurement, delivery: Backlog) -> MeasurementView {
    MeasurementView {
        id: m.id.0,
        device: m.address.clone(),
        measured_at: m.measured_at.clone(),
        received_at: m.received_at.to_string(),
        suggested_member: m.suggested_member.map(|s| s.0),
        readings: readings_of(m)
            .into_iter()
            .map(|r| ReadingJson {
                kind: r.kind,
                value: r.value,
                diastolic: r.diastolic,
                unit: r.unit,
            })
            .collect(),
        mes: delivery.into(),
    }
}

async fn measurement_list(
    state: &AppState,
    which: impl FnOnce(&crate::store::Store) -> Result<Vec<StoredMeasurement>, StoreError>
    + Send
    + 'static,
) -> Response {
    match with_store(&state.store, move |s| {
        let list = which(s)?;
        list.iter()
            .map(|m| Ok(view(m, s.delivery_of(Sink::Mes, m.id)?)))
            .collect::<Result<Vec<_>, StoreError>>()
    })
    .await
    {
        Ok(list) => Json(list).into_response(),
        Err(e) => store_error(e),
    }
}

/// A member's measurements, newest first (at most 500).
#[utoipa::path(get, path = "/api/v1/members/{id}/measurements", params(("id" = i64, Path, description = "member id")),
    responses((status = 200, body = [MeasurementView]), (status = 401, body = ApiError), (status = 404, body = ApiError)))]
pub async fn measurements(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<i64>,
) -> Response {
    if let Err(r) = authorised(&state, &headers, false) {
        return refused(r);
    }
    measurement_list(&state, move |s| {
        s.member(MemberId(id))?;
        s.measurements_of(MemberId(id), 500)
    })
    .await
}

/// Measurements waiting for a member, oldest first.
#[utoipa::path(get, path = "/api/v1/inbox", responses(
    (status = 200, body = [MeasurementView]), (status = 401, body = ApiError)))]
pub async fn inbox(State(state): State<AppState>, headers: HeaderMap) -> Response {
    if let Err(r) = authorised(&state, &headers, false) {
        return refused(r);
    }
    measurement_list(&state, |s| s.inbox()).await
}

/// Whose an inbox measurement is.
#[derive(Debug, Deserialize, ToSchema)]
pub struct AssignRequest {
    /// The member's id.
    pub member: i64,
}

/// Assigns an inbox measurement to a member (its readings then go to the member's MES).
#[utoipa::path(post, path = "/api/v1/inbox/{id}/assign", params(("id" = i64, Path, description = "measurement id")),
    request_body = AssignRequest, responses((status = 204), (status = 401, body = ApiError),
    (status = 403, body = ApiError), (status = 404, body = ApiError), (status = 422, body = ApiError)))]
pub async fn assign(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<i64>,
    Json(request): Json<AssignRequest>,
) -> Response {
    if let Err(r) = authorised(&state, &headers, true) {
        return refused(r);
    }
    match state
        .control
        .assign(MeasurementId(id), MemberId(request.member))
        .await
    {
        Ok(()) => StatusCode::NO_CONTENT.into_response(),
        Err(e) => control_error(&e),
    }
}

/// A member's MES backlog.
#[derive(Debug, Serialize, ToSchema)]
pub struct MemberBacklog {
    /// The member.
    pub member: i64,
    /// `unlinked`, `linked`, `consent_withdrawn` or `configuration_error`.
    pub mes_state: String,
    /// Their readings' MES delivery.
    pub mes: DeliveryView,
}

/// A device.
#[derive(Debug, Serialize, ToSchema)]
pub struct DeviceView {
    /// Bluetooth address.
    pub address: String,
    /// `weight_scale`, `blood_pressure_monitor`, ...
    pub kind: String,
    /// Its advertised name.
    pub name: Option<String>,
    /// When it last delivered (RFC 3339, UTC).
    pub last_seen: String,
}

/// Where the hub stands.
#[derive(Debug, Serialize, ToSchema)]
pub struct StatusView {
    /// Measurements waiting for a member.
    pub inbox: usize,
    /// Whether readings are sent to MES.
    pub mes_enabled: bool,
    /// Every member's backlog.
    pub members: Vec<MemberBacklog>,
    /// The devices.
    pub devices: Vec<DeviceView>,
}

/// Where the hub stands.
#[utoipa::path(get, path = "/api/v1/status", responses(
    (status = 200, body = StatusView), (status = 401, body = ApiError)))]
pub async fn status(State(state): State<AppState>, headers: HeaderMap) -> Response {
    if let Err(r) = authorised(&state, &headers, false) {
        return refused(r);
    }
    let mes_enabled = state.config.mes.enabled;
    match with_store(&state.store, move |s| {
        let members = s
            .members()?
            .into_iter()
            .map(|m| {
                Ok(MemberBacklog {
                    member: m.id.0,
                    mes_state: mes_state(m.mes_state),
                    mes: s.backlog_of(Sink::Mes, m.id)?.into(),
                })
            })
            .collect::<Result<Vec<_>, StoreError>>()?;
        let devices = s
            .devices()?
            .into_iter()
            .map(|d| DeviceView {
                address: d.identity.address,
                kind: d.kind,
                name: d.identity.name,
                last_seen: d.last_seen,
            })
            .collect();
        Ok(StatusView {
            inbox: s.inbox()?.len(),
            mes_enabled,
            members,
            devices,
        })
    })
    .await
    {
        Ok(v) => Json(v).into_response(),
        Err(e) => store_error(e),
    }
}
