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
use std::collections::BTreeMap;
use utoipa::{OpenApi, ToSchema};

use crate::hub::config::SAVABLE_KEYS;
use crate::hub::control::ControlError;
use crate::hub::ingest::with_store;
use crate::store::outbox::Backlog;
use crate::store::{MeasurementId, MemberId, MesState, Sink, StoreError, StoredMeasurement};
use crate::web::auth::{SESSION_COOKIE, cookie};
use crate::web::pages::readings_of;
use crate::web::pages::settings as settings_page;
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
        .route("/api/v1/members/{id}/link", post(link))
        .route("/api/v1/members/{id}/unlink", post(unlink))
        .route("/api/v1/devices", get(devices))
        .route("/api/v1/devices/scan", get(scan_progress).post(scan))
        .route("/api/v1/devices/pair", post(pair))
        .route("/api/v1/devices/sync", post(sync))
        .route("/api/v1/devices/unpair", post(unpair))
        .route("/api/v1/devices/rename", post(rename))
        .route("/api/v1/settings", get(settings).patch(save_settings))
}

/// The OpenAPI description.
#[derive(Debug, OpenApi)]
#[openapi(
    info(
        title = "relais",
        description = "The hub's JSON API: household, readings, inbox, status, settings."
    ),
    paths(
        session,
        members,
        add_member,
        measurements,
        inbox,
        assign,
        status,
        link,
        unlink,
        devices,
        scan,
        scan_progress,
        pair,
        sync,
        unpair,
        rename,
        settings,
        save_settings
    ),
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
        DeviceView,
        LinkView,
        UnlinkView,
        DeviceRequest,
        PairRequest,
        RenameRequest,
        ScanRequest,
        ScanProgress,
        FoundDevice,
        SettingView,
        SettingsChange,
        SettingsSaved
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
    /// The name to show (the household's, else the advertised one).
    pub name: String,
    /// Bonded in BlueZ, when known.
    pub bonded: Option<bool>,
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
        let devices = s.devices()?.into_iter().map(device_view).collect();
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

fn device_view(d: crate::store::devices::StoredDevice) -> DeviceView {
    DeviceView {
        name: d.shown_name().to_owned(),
        address: d.identity.address,
        kind: d.kind,
        bonded: d.bonded,
        last_seen: d.last_seen,
    }
}

/// Where to send the person's browser to give the consent.
#[derive(Debug, Serialize, ToSchema)]
pub struct LinkView {
    /// MES's authorization page; MES sends the browser back to this hub's `/mes/callback`.
    pub authorize_url: String,
}

/// Starts linking a member to MES.
#[utoipa::path(post, path = "/api/v1/members/{id}/link", params(("id" = i64, Path, description = "member id")),
    responses((status = 200, body = LinkView), (status = 401, body = ApiError), (status = 403, body = ApiError),
    (status = 404, body = ApiError), (status = 503, body = ApiError)))]
pub async fn link(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<i64>,
) -> Response {
    if let Err(r) = authorised(&state, &headers, true) {
        return refused(r);
    }
    if let Err(e) = with_store(&state.store, move |s| s.member(MemberId(id))).await {
        return store_error(e);
    }
    match crate::web::pages::members::start_link(&state, MemberId(id)) {
        Ok(authorize_url) => Json(LinkView { authorize_url }).into_response(),
        Err(e) => {
            tracing::error!("MES pairing cannot start: {e}");
            error(
                StatusCode::SERVICE_UNAVAILABLE,
                "the hub's [mes] configuration is wrong: fix it and restart the hub",
            )
        }
    }
}

/// How an unlink went.
#[derive(Debug, Serialize, ToSchema)]
pub struct UnlinkView {
    /// MES was told (false: sending stopped all the same; remove the hub's access in MES).
    pub revoked: bool,
}

/// Unlinks a member from MES: revoked there, tokens dropped, readings kept.
#[utoipa::path(post, path = "/api/v1/members/{id}/unlink", params(("id" = i64, Path, description = "member id")),
    responses((status = 200, body = UnlinkView), (status = 401, body = ApiError), (status = 403, body = ApiError),
    (status = 404, body = ApiError)))]
pub async fn unlink(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<i64>,
) -> Response {
    if let Err(r) = authorised(&state, &headers, true) {
        return refused(r);
    }
    match crate::web::pages::members::unlink_member(&state, MemberId(id)).await {
        Ok(revoked) => Json(UnlinkView { revoked }).into_response(),
        Err(e) => store_error(e),
    }
}

/// The devices the hub knows.
#[utoipa::path(get, path = "/api/v1/devices", responses(
    (status = 200, body = [DeviceView]), (status = 401, body = ApiError)))]
pub async fn devices(State(state): State<AppState>, headers: HeaderMap) -> Response {
    if let Err(r) = authorised(&state, &headers, false) {
        return refused(r);
    }
    match with_store(&state.store, |s| s.devices()).await {
        Ok(list) => Json(list.into_iter().map(device_view).collect::<Vec<_>>()).into_response(),
        Err(e) => store_error(e),
    }
}

/// A search for devices.
#[derive(Debug, Deserialize, ToSchema)]
pub struct ScanRequest {
    /// How long to listen, 1 to 300 seconds (default 20).
    pub seconds: Option<u64>,
}

/// A device heard by the search.
#[derive(Debug, Serialize, ToSchema)]
pub struct FoundDevice {
    /// Bluetooth address.
    pub address: String,
    /// Advertised name.
    pub name: Option<String>,
    /// `weight_scale`, `glucose_meter`, ...
    pub kind: String,
    /// Bonded in BlueZ, when known.
    pub paired: Option<bool>,
}

/// The search as it goes.
#[derive(Debug, Serialize, ToSchema)]
pub struct ScanProgress {
    /// Still listening.
    pub running: bool,
    /// Heard so far.
    pub found: Vec<FoundDevice>,
    /// Why it could not start.
    pub error: Option<String>,
}

fn progress(state: &AppState) -> ScanProgress {
    let view = crate::web::state::lock(&state.scan).clone();
    ScanProgress {
        running: view.running,
        found: view
            .found
            .into_iter()
            .map(|s| FoundDevice {
                address: s.address,
                name: s.name,
                kind: s.kind.as_str().to_owned(),
                paired: s.paired,
            })
            .collect(),
        error: view.error.map(|e| e.to_string()),
    }
}

/// Starts a search (the same one the devices page shows); follow it with `GET`.
#[utoipa::path(post, path = "/api/v1/devices/scan", request_body = ScanRequest, responses(
    (status = 202, body = ScanProgress), (status = 401, body = ApiError), (status = 403, body = ApiError),
    (status = 422, body = ApiError), (status = 503, body = ApiError)))]
pub async fn scan(
    State(state): State<AppState>,
    headers: HeaderMap,
    Json(request): Json<ScanRequest>,
) -> Response {
    if let Err(r) = authorised(&state, &headers, true) {
        return refused(r);
    }
    let duration = std::time::Duration::from_secs(request.seconds.unwrap_or(20));
    if let Err(e) = crate::web::pages::devices::start_scan(&state, duration).await {
        return control_error(&e);
    }
    (StatusCode::ACCEPTED, Json(progress(&state))).into_response()
}

/// The search as it goes.
#[utoipa::path(get, path = "/api/v1/devices/scan", responses(
    (status = 200, body = ScanProgress), (status = 401, body = ApiError)))]
pub async fn scan_progress(State(state): State<AppState>, headers: HeaderMap) -> Response {
    if let Err(r) = authorised(&state, &headers, false) {
        return refused(r);
    }
    Json(progress(&state)).into_response()
}

/// A device, by address.
#[derive(Debug, Deserialize, ToSchema)]
pub struct DeviceRequest {
    /// `AA:BB:CC:DD:EE:FF`
    pub address: String,
}

/// Pairing a device.
#[derive(Debug, Deserialize, ToSchema)]
pub struct PairRequest {
    /// `AA:BB:CC:DD:EE:FF`
    pub address: String,
    /// The code the device shows, up to six digits; none when it shows none.
    pub passkey: Option<u32>,
}

/// Pairs a device the hub has seen, answering its passkey request.
#[utoipa::path(post, path = "/api/v1/devices/pair", request_body = PairRequest, responses(
    (status = 204), (status = 401, body = ApiError), (status = 403, body = ApiError),
    (status = 404, body = ApiError), (status = 422, body = ApiError), (status = 503, body = ApiError)))]
pub async fn pair(
    State(state): State<AppState>,
    headers: HeaderMap,
    Json(request): Json<PairRequest>,
) -> Response {
    if let Err(r) = authorised(&state, &headers, true) {
        return refused(r);
    }
    match state.control.pair(&request.address, request.passkey).await {
        Ok(_) => StatusCode::NO_CONTENT.into_response(),
        Err(e) => control_error(&e),
    }
}

/// Reads a device now.
#[utoipa::path(post, path = "/api/v1/devices/sync", request_body = DeviceRequest, responses(
    (status = 204), (status = 401, body = ApiError), (status = 403, body = ApiError),
    (status = 404, body = ApiError), (status = 422, body = ApiError), (status = 503, body = ApiError)))]
pub async fn sync(
    State(state): State<AppState>,
    headers: HeaderMap,
    Json(request): Json<DeviceRequest>,
) -> Response {
    if let Err(r) = authorised(&state, &headers, true) {
        return refused(r);
    }
    match state.control.sync_now(&request.address).await {
        Ok(_) => StatusCode::NO_CONTENT.into_response(),
        Err(e) => control_error(&e),
    }
}

/// Removes a device's bond; its readings stay.
#[utoipa::path(post, path = "/api/v1/devices/unpair", request_body = DeviceRequest, responses(
    (status = 204), (status = 401, body = ApiError), (status = 403, body = ApiError),
    (status = 404, body = ApiError), (status = 422, body = ApiError), (status = 503, body = ApiError)))]
pub async fn unpair(
    State(state): State<AppState>,
    headers: HeaderMap,
    Json(request): Json<DeviceRequest>,
) -> Response {
    if let Err(r) = authorised(&state, &headers, true) {
        return refused(r);
    }
    match state.control.unpair(&request.address).await {
        Ok(()) => StatusCode::NO_CONTENT.into_response(),
        Err(e) => control_error(&e),
    }
}

/// Renaming a device.
#[derive(Debug, Deserialize, ToSchema)]
pub struct RenameRequest {
    /// `AA:BB:CC:DD:EE:FF`
    pub address: String,
    /// The household's name for it; empty: back to its advertised name.
    pub label: String,
}

/// Gives a device the household's own name.
#[utoipa::path(post, path = "/api/v1/devices/rename", request_body = RenameRequest, responses(
    (status = 204), (status = 401, body = ApiError), (status = 403, body = ApiError), (status = 404, body = ApiError)))]
pub async fn rename(
    State(state): State<AppState>,
    headers: HeaderMap,
    Json(request): Json<RenameRequest>,
) -> Response {
    if let Err(r) = authorised(&state, &headers, true) {
        return refused(r);
    }
    match with_store(&state.store, move |s| {
        s.rename_device(&request.address, &request.label)
    })
    .await
    {
        Ok(()) => StatusCode::NO_CONTENT.into_response(),
        Err(e) => store_error(e),
    }
}

/// A setting the page edits.
#[derive(Debug, Serialize, ToSchema)]
pub struct SettingView {
    /// The configuration key, `hub.time_zone`, `mqtt.host`...
    pub key: String,
    /// The value the hub runs with (`null` for the password, never shown).
    pub value: Option<String>,
    /// The value saved for the next start, when it differs (`null` for the password).
    pub next_value: Option<String>,
    /// A value is saved in the hub for this key.
    pub saved: bool,
    /// The environment variable or `--set` deciding this key (it wins over saved values).
    pub fixed_by: Option<String>,
}

/// The settings the page edits, with where their values come from.
#[utoipa::path(get, path = "/api/v1/settings", responses(
    (status = 200, body = [SettingView]), (status = 401, body = ApiError)))]
pub async fn settings(State(state): State<AppState>, headers: HeaderMap) -> Response {
    if let Err(r) = authorised(&state, &headers, false) {
        return refused(r);
    }
    let layers = match settings_page::layers(&state).await {
        Ok(layers) => layers,
        Err(crate::web::state::WebError::Store(e)) => return store_error(e),
    };
    let views: Vec<SettingView> = SAVABLE_KEYS
        .iter()
        .map(|key| {
            let secret = *key == "mqtt.password";
            let (running, next) = layers.values(key);
            SettingView {
                key: (*key).to_owned(),
                value: (!secret).then_some(running),
                next_value: next.filter(|_| !secret),
                saved: layers.saved.iter().any(|k| k == key),
                fixed_by: layers.next.fixed.get(*key).cloned(),
            }
        })
        .collect();
    Json(views).into_response()
}

/// Values to save, by key, written as in the configuration file (`"true"`, `"1883"`,
/// `"Europe/Paris"`); an empty `mqtt.password` leaves it unchanged.
#[derive(Debug, Deserialize, ToSchema)]
pub struct SettingsChange {
    /// Key to value.
    pub values: BTreeMap<String, String>,
}

/// What was saved.
#[derive(Debug, Serialize, ToSchema)]
pub struct SettingsSaved {
    /// The keys whose saved value changed.
    pub changed: Vec<String>,
    /// Always true: saved settings apply when the hub restarts.
    pub applies_at_restart: bool,
}

/// Saves settings, checked as the hub checks its configuration at start (nothing is saved when
/// one is refused).
#[utoipa::path(patch, path = "/api/v1/settings", request_body = SettingsChange, responses(
    (status = 200, body = SettingsSaved), (status = 401, body = ApiError), (status = 403, body = ApiError),
    (status = 409, body = ApiError), (status = 422, body = ApiError)))]
pub async fn save_settings(
    State(state): State<AppState>,
    headers: HeaderMap,
    Json(change): Json<SettingsChange>,
) -> Response {
    if let Err(r) = authorised(&state, &headers, true) {
        return refused(r);
    }
    let layers = match settings_page::layers(&state).await {
        Ok(layers) => layers,
        Err(crate::web::state::WebError::Store(e)) => return store_error(e),
    };
    let edits: Vec<(String, String)> = change
        .values
        .into_iter()
        .filter(|(key, value)| !(key == "mqtt.password" && value.is_empty()))
        .collect();
    match settings_page::save(&state, &layers, &edits).await {
        Ok(Ok(changed)) => Json(SettingsSaved {
            changed,
            applies_at_restart: true,
        })
        .into_response(),
        Ok(Err(refusal)) => {
            let status = match refusal {
                settings_page::Refused::Fixed(..) => StatusCode::CONFLICT,
                _ => StatusCode::UNPROCESSABLE_ENTITY,
            };
            let cx = crate::web::layout::Cx::anonymous(crate::web::i18n::Lang::En, String::new());
            error(status, &settings_page::refused_text(&cx, &refusal))
        }
        Err(crate::web::state::WebError::Store(e)) => store_error(e),
    }
}
