//! Pairing (API Appariement) as OAuth 2.0 authorization code + PKCE with an OpenID Connect
//! id_token. The public MES documents only say "OAuth2", "gestion des tokens", and that calls
//! carry an access_token and an id_token holding the idPe and partner OID; everything else is
//! filled in the standard way (RFC 6749, 7636, 7009, OpenID Connect Core).

pub(crate) mod authorize;
pub(crate) mod pages;
pub(crate) mod pkce;
pub(crate) mod scope;
pub(crate) mod token;

use std::sync::Arc;

use axum::extract::State;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::json;

use crate::server::AppState;

/// The OAuth and discovery routes.
pub(crate) fn routes() -> Router<Arc<AppState>> {
    Router::new()
        .route("/", get(home))
        .route("/oauth/authorize", get(authorize::start))
        .route("/oauth/login", post(authorize::login))
        .route("/oauth/consent", post(authorize::consent))
        .route("/oauth/authorize/test", post(authorize::test_authorize))
        .route("/oauth/token", post(token::token))
        .route("/oauth/revoke", post(token::revoke))
        .route("/oauth/jwks", get(jwks))
        .route("/.well-known/openid-configuration", get(configuration))
}

/// A fresh unguessable token (256 random bits, base64url).
pub(crate) fn random_token() -> String {
    URL_SAFE_NO_PAD.encode(rand::random::<[u8; 32]>())
}

async fn home(State(state): State<Arc<AppState>>) -> Response {
    pages::home(&state.base_url)
}

async fn jwks(State(state): State<Arc<AppState>>) -> Response {
    Json(state.key.jwks()).into_response()
}

/// OpenID Provider metadata, so standard clients can configure themselves.
async fn configuration(State(state): State<Arc<AppState>>) -> Response {
    let base = &state.base_url;
    Json(json!({
        "issuer": state.issuer,
        "authorization_endpoint": format!("{base}/oauth/authorize"),
        "token_endpoint": format!("{base}/oauth/token"),
        "revocation_endpoint": format!("{base}/oauth/revoke"),
        "jwks_uri": format!("{base}/oauth/jwks"),
        "response_types_supported": ["code"],
        "response_modes_supported": ["query"],
        "grant_types_supported": ["authorization_code", "refresh_token"],
        "code_challenge_methods_supported": ["S256"],
        "token_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post"],
        "revocation_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post"],
        "scopes_supported": [scope::OPENID, scope::READ, scope::WRITE],
        "subject_types_supported": ["public"],
        "id_token_signing_alg_values_supported": ["ES256"],
        "claims_supported": ["iss", "sub", "aud", "exp", "iat", "nonce", "idPe", "partnerOid", "assignAuth"],
        "authorization_response_iss_parameter_supported": true,
    }))
    .into_response()
}
