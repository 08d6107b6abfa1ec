//! Sandbox-only administration: read back what was accepted, the request log, set faults,
//! expire tokens, mint id_tokens. Not behind OAuth, so only loopback peers may use it.

use std::sync::Arc;

use axum::extract::{ConnectInfo, Query, Request, State};
use axum::http::StatusCode;
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::faults::Faults;
use crate::net::PeerInfo;
use crate::server::AppState;
use crate::store::{StoreError, now_ms};

/// The `/admin` routes.
pub(crate) fn routes() -> Router<Arc<AppState>> {
    Router::new()
        .route("/admin/observations", get(observations))
        .route("/admin/devices", get(devices))
        .route("/admin/requests", get(requests))
        .route("/admin/faults", get(get_faults).post(set_faults))
        .route("/admin/tokens/expire", post(expire_tokens))
        .route("/admin/id-token", post(mint_id_token))
        .route("/admin/reset", post(reset))
        .route_layer(middleware::from_fn(loopback_only))
}

/// Refuses peers that are not on the loopback interface.
async fn loopback_only(request: Request, next: Next) -> Response {
    if !from_loopback(request.extensions().get::<ConnectInfo<PeerInfo>>()) {
        return error(
            StatusCode::FORBIDDEN,
            "the admin API is only served to loopback peers",
        );
    }
    next.run(request).await
}

/// Whether the peer is on the loopback interface (unknown peers are not).
fn from_loopback(peer: Option<&ConnectInfo<PeerInfo>>) -> bool {
    peer.is_some_and(|ConnectInfo(peer)| peer.addr.ip().is_loopback())
}

fn error(status: StatusCode, message: &str) -> Response {
    (status, Json(json!({ "error": message }))).into_response()
}

fn internal(e: &StoreError) -> Response {
    tracing::error!(error = %e, "admin query failed");
    error(StatusCode::INTERNAL_SERVER_ERROR, "sandbox internal error")
}

/// Filters of `GET /admin/observations`.
#[derive(Debug, Deserialize)]
struct ObservationFilter {
    id_pe: Option<String>,
    code: Option<String>,
}

async fn observations(
    State(state): State<Arc<AppState>>,
    Query(f): Query<ObservationFilter>,
) -> Response {
    match state
        .store
        .list_observations(f.id_pe.as_deref(), f.code.as_deref())
    {
        Ok(list) => Json(list).into_response(),
        Err(e) => internal(&e),
    }
}

async fn devices(State(state): State<Arc<AppState>>) -> Response {
    match state.store.list_devices(None) {
        Ok(list) => Json(list).into_response(),
        Err(e) => internal(&e),
    }
}

#[derive(Debug, Deserialize)]
struct RequestFilter {
    limit: Option<i64>,
}

async fn requests(State(state): State<Arc<AppState>>, Query(f): Query<RequestFilter>) -> Response {
    match state
        .store
        .list_requests(f.limit.unwrap_or(1000).clamp(1, 100_000))
    {
        Ok(list) => Json(list).into_response(),
        Err(e) => internal(&e),
    }
}

async fn get_faults(State(state): State<Arc<AppState>>) -> Response {
    Json(state.faults.get()).into_response()
}

/// Replaces the faults (fields left out take their "no fault" default).
async fn set_faults(State(state): State<Arc<AppState>>, body: axum::body::Bytes) -> Response {
    let faults: Faults = match serde_json::from_slice(&body) {
        Ok(f) => f,
        Err(e) => return error(StatusCode::BAD_REQUEST, &format!("faults: {e}")),
    };
    if let Err(e) = faults.validate() {
        return error(StatusCode::BAD_REQUEST, &e);
    }
    tracing::info!("faults replaced");
    state.faults.set(faults);
    Json(state.faults.get()).into_response()
}

/// Body of `POST /admin/tokens/expire`.
#[derive(Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
struct ExpireRequest {
    /// Only this user's tokens (all users when absent).
    id_pe: Option<String>,
    /// Refresh tokens too.
    include_refresh: bool,
}

async fn expire_tokens(State(state): State<Arc<AppState>>, body: axum::body::Bytes) -> Response {
    let req: ExpireRequest = if body.is_empty() {
        ExpireRequest::default()
    } else {
        match serde_json::from_slice(&body) {
            Ok(r) => r,
            Err(e) => return error(StatusCode::BAD_REQUEST, &format!("expire: {e}")),
        }
    };
    match state
        .store
        .expire_tokens(req.id_pe.as_deref(), req.include_refresh, now_ms())
    {
        Ok(n) => Json(json!({ "expired": n })).into_response(),
        Err(e) => internal(&e),
    }
}

/// Signs the posted JSON object with the sandbox's id_token key, as is (for tests of the
/// 400 and 409 rules).
async fn mint_id_token(State(state): State<Arc<AppState>>, Json(claims): Json<Value>) -> Response {
    if !claims.is_object() {
        return error(StatusCode::BAD_REQUEST, "claims must be a JSON object");
    }
    match state.key.sign(&claims) {
        Ok(token) => Json(json!({ "id_token": token })).into_response(),
        Err(e) => error(StatusCode::INTERNAL_SERVER_ERROR, &e.to_string()),
    }
}

async fn reset(State(state): State<Arc<AppState>>) -> Response {
    match state.store.reset_data() {
        Ok(()) => StatusCode::NO_CONTENT.into_response(),
        Err(e) => internal(&e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_loopback_peers_may_administer() {
        let peer = |addr: &str| ConnectInfo(PeerInfo::detached(addr.parse().unwrap()));
        assert!(from_loopback(Some(&peer("127.0.0.1:5000"))));
        assert!(from_loopback(Some(&peer("[::1]:5000"))));
        assert!(!from_loopback(Some(&peer("192.0.2.10:5000"))));
        assert!(!from_loopback(None));
    }
}
