//! The authorization endpoint (RFC 6749 §4.1 with PKCE, RFC 7636): login page, consent page
//! and, for tests, a non-interactive shortcut.
//!
//! Flow: `GET /oauth/authorize` checks the request and shows the login form; `POST
//! /oauth/login` checks the test user and shows the consent page; `POST /oauth/consent`
//! redirects to the client with `code` and `state`, or with `error=access_denied`.
//! `POST /oauth/authorize/test` does all three at once (sandbox only).

use std::sync::Arc;

use axum::Form;
use axum::extract::{Query, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use url::Url;

use super::pages;
use super::pkce;
use super::random_token;
use super::scope::{Scope, ScopeError};
use crate::config::PartnerConfig;
use crate::fhir::auth::secs_to_ms;
use crate::server::AppState;
use crate::store::now_ms;
use crate::store::oauth::{AuthorizationCode, PendingAuthorization};

/// How long a login/consent page stays usable.
const PENDING_LIFETIME_MS: i64 = 10 * 60 * 1000;

/// Parameters of an authorization request.
#[derive(Debug, Default, Deserialize)]
pub(crate) struct AuthorizeParams {
    response_type: Option<String>,
    client_id: Option<String>,
    redirect_uri: Option<String>,
    state: Option<String>,
    code_challenge: Option<String>,
    code_challenge_method: Option<String>,
    scope: Option<String>,
    nonce: Option<String>,
}

/// A checked authorization request.
#[derive(Debug)]
struct ValidRequest {
    partner: PartnerConfig,
    redirect_uri: String,
    state: String,
    code_challenge: String,
    scope: Scope,
    nonce: Option<String>,
}

/// Why an authorization request is refused.
#[derive(Debug)]
enum AuthorizeError {
    /// Not safe to redirect (unknown client or redirect URI): shown as a page.
    Page(String),
    /// Sent back to the client's redirect URI (RFC 6749 §4.1.2.1).
    Redirect {
        redirect_uri: String,
        error: &'static str,
        description: String,
        state: Option<String>,
    },
}

impl AuthorizeError {
    fn into_response(self, issuer: &str) -> Response {
        match self {
            AuthorizeError::Page(message) => pages::error(StatusCode::BAD_REQUEST, &message),
            AuthorizeError::Redirect {
                redirect_uri,
                error,
                description,
                state,
            } => {
                let mut pairs = vec![
                    ("error", error.to_owned()),
                    ("error_description", description),
                ];
                if let Some(state) = state {
                    pairs.push(("state", state));
                }
                pairs.push(("iss", issuer.to_owned()));
                redirect(&redirect_uri, &pairs)
            }
        }
    }
}

/// A `303 See Other` to `uri` with `pairs` appended to its query.
fn redirect(uri: &str, pairs: &[(&str, String)]) -> Response {
    let target = match Url::parse(uri) {
        Ok(mut url) => {
            url.query_pairs_mut()
                .extend_pairs(pairs.iter().map(|(k, v)| (*k, v.as_str())));
            url.to_string()
        }
        Err(_) => return pages::error(StatusCode::BAD_REQUEST, "redirect_uri invalide"),
    };
    match HeaderValue::from_str(&target) {
        Ok(location) => {
            let mut response = StatusCode::SEE_OTHER.into_response();
            response.headers_mut().insert(header::LOCATION, location);
            response
        }
        Err(_) => pages::error(StatusCode::BAD_REQUEST, "redirect_uri invalide"),
    }
}

/// Whether `requested` matches a registered redirect URI: exactly, or for loopback IP
/// redirect URIs, with any port (RFC 8252 §7.3).
pub(crate) fn redirect_uri_matches(registered: &str, requested: &str) -> bool {
    if registered == requested {
        return true;
    }
    let (Ok(r), Ok(q)) = (Url::parse(registered), Url::parse(requested)) else {
        return false;
    };
    let loopback =
        |u: &Url| u.scheme() == "http" && matches!(u.host_str(), Some("127.0.0.1") | Some("[::1]"));
    loopback(&r)
        && loopback(&q)
        && r.host_str() == q.host_str()
        && r.path() == q.path()
        && r.query() == q.query()
        && q.fragment().is_none()
        && q.username().is_empty()
}

fn validate(state: &AppState, p: &AuthorizeParams) -> Result<ValidRequest, AuthorizeError> {
    let client_id = p
        .client_id
        .as_deref()
        .ok_or_else(|| AuthorizeError::Page("Paramètre client_id manquant.".into()))?;
    let partner = state
        .config
        .partner(client_id)
        .ok_or_else(|| AuthorizeError::Page(format!("Service inconnu : {client_id}.")))?
        .clone();
    let redirect_uri = p
        .redirect_uri
        .as_deref()
        .ok_or_else(|| AuthorizeError::Page("Paramètre redirect_uri manquant.".into()))?;
    if !partner
        .redirect_uris
        .iter()
        .any(|r| redirect_uri_matches(r, redirect_uri))
    {
        return Err(AuthorizeError::Page(
            "redirect_uri non enregistrée pour ce service.".into(),
        ));
    }
    let fail = |error: &'static str, description: &str| AuthorizeError::Redirect {
        redirect_uri: redirect_uri.to_owned(),
        error,
        description: description.to_owned(),
        state: p.state.clone().filter(|s| !s.is_empty()),
    };
    match p.response_type.as_deref() {
        Some("code") => {}
        None => return Err(fail("invalid_request", "response_type is required")),
        Some(_) => {
            return Err(fail(
                "unsupported_response_type",
                "only response_type=code is supported",
            ));
        }
    }
    let state_param = p
        .state
        .clone()
        .filter(|s| !s.is_empty())
        .ok_or_else(|| fail("invalid_request", "state is required"))?;
    let code_challenge = p
        .code_challenge
        .clone()
        .ok_or_else(|| fail("invalid_request", "code_challenge is required (PKCE)"))?;
    if p.code_challenge_method.as_deref() != Some("S256") {
        return Err(fail(
            "invalid_request",
            "code_challenge_method must be S256 (plain is not supported)",
        ));
    }
    if !pkce::valid_challenge(&code_challenge) {
        return Err(fail(
            "invalid_request",
            "code_challenge must be the base64url SHA-256 of the code_verifier",
        ));
    }
    let scope = Scope::parse(p.scope.as_deref()).map_err(|e| match e {
        ScopeError::Missing => fail("invalid_scope", "scope is required"),
        ScopeError::Unknown(s) => fail("invalid_scope", &format!("unknown scope {s}")),
        ScopeError::NoOpenId => fail("invalid_scope", "scope must include openid"),
        ScopeError::NoAccess => fail(
            "invalid_scope",
            "scope must include mesures.read and/or mesures.write",
        ),
    })?;
    Ok(ValidRequest {
        partner,
        redirect_uri: redirect_uri.to_owned(),
        state: state_param,
        code_challenge,
        scope,
        nonce: p.nonce.clone().filter(|n| !n.is_empty()),
    })
}

/// `GET /oauth/authorize`.
pub(crate) async fn start(
    State(state): State<Arc<AppState>>,
    Query(params): Query<AuthorizeParams>,
) -> Response {
    let request = match validate(&state, &params) {
        Ok(r) => r,
        Err(e) => return e.into_response(&state.issuer),
    };
    let pending = PendingAuthorization {
        id: random_token(),
        client_id: request.partner.client_id.clone(),
        redirect_uri: request.redirect_uri,
        state: request.state,
        code_challenge: request.code_challenge,
        scope: request.scope.to_string(),
        nonce: request.nonce,
        user_login: None,
        created_at: now_ms(),
    };
    if let Err(e) = state.store.insert_pending(&pending) {
        tracing::error!(error = %e, "cannot store authorization request");
        return pages::error(StatusCode::INTERNAL_SERVER_ERROR, "Erreur interne.");
    }
    pages::login(
        &pending.id,
        &request.partner.name,
        &state.config.users,
        None,
    )
}

/// Why a login or consent form cannot be processed.
#[derive(Debug, Clone, Copy)]
enum PendingError {
    /// Unknown, expired or already decided.
    Gone,
    /// The store failed.
    Internal,
}

impl PendingError {
    fn page(self) -> Response {
        match self {
            PendingError::Gone => pages::error(
                StatusCode::BAD_REQUEST,
                "Cette demande a expiré ou a déjà été traitée. Recommencez depuis le service.",
            ),
            PendingError::Internal => {
                pages::error(StatusCode::INTERNAL_SERVER_ERROR, "Erreur interne.")
            }
        }
    }
}

/// A pending request still usable, with its partner.
fn live_pending(
    state: &AppState,
    id: &str,
) -> Result<(PendingAuthorization, PartnerConfig), PendingError> {
    let pending = match state.store.pending(id) {
        Ok(Some(p)) if now_ms() < p.created_at.saturating_add(PENDING_LIFETIME_MS) => p,
        Ok(_) => return Err(PendingError::Gone),
        Err(e) => {
            tracing::error!(error = %e, "cannot read authorization request");
            return Err(PendingError::Internal);
        }
    };
    let partner = state
        .config
        .partner(&pending.client_id)
        .cloned()
        .ok_or(PendingError::Gone)?;
    Ok((pending, partner))
}

/// The login form.
#[derive(Debug, Deserialize)]
pub(crate) struct LoginForm {
    request: String,
    login: String,
    password: String,
}

/// `POST /oauth/login`.
pub(crate) async fn login(
    State(state): State<Arc<AppState>>,
    Form(form): Form<LoginForm>,
) -> Response {
    let (pending, partner) = match live_pending(&state, &form.request) {
        Ok(p) => p,
        Err(e) => return e.page(),
    };
    let user = state
        .config
        .user(form.login.trim())
        .filter(|u| u.password == form.password);
    let Some(user) = user else {
        return pages::login(
            &pending.id,
            &partner.name,
            &state.config.users,
            Some("Identifiant ou mot de passe incorrect."),
        );
    };
    if let Err(e) = state.store.set_pending_user(&pending.id, &user.login) {
        tracing::error!(error = %e, "cannot store login");
        return pages::error(StatusCode::INTERNAL_SERVER_ERROR, "Erreur interne.");
    }
    let scope = Scope::parse(Some(&pending.scope)).unwrap_or_default();
    let name = if user.display_name.is_empty() {
        &user.login
    } else {
        &user.display_name
    };
    pages::consent(&pending.id, &partner.name, name, scope.read, scope.write)
}

/// The consent form.
#[derive(Debug, Deserialize)]
pub(crate) struct ConsentForm {
    request: String,
    #[serde(default)]
    consent_read: Option<String>,
    #[serde(default)]
    consent_write: Option<String>,
    /// `allow` or `deny`; anything else (or nothing) is a refusal.
    #[serde(default)]
    decision: Option<String>,
}

/// Whether a form field means "yes".
fn checked(value: Option<&str>) -> bool {
    matches!(value, Some("on" | "true" | "1" | "yes"))
}

/// `POST /oauth/consent`.
pub(crate) async fn consent(
    State(state): State<Arc<AppState>>,
    Form(form): Form<ConsentForm>,
) -> Response {
    let (pending, _) = match live_pending(&state, &form.request) {
        Ok(p) => p,
        Err(e) => return e.page(),
    };
    let Some(login) = pending.user_login.clone() else {
        return pages::error(StatusCode::BAD_REQUEST, "Connectez-vous d'abord.");
    };
    match state.store.delete_pending(&pending.id) {
        Ok(true) => {}
        Ok(false) => return pages::error(StatusCode::BAD_REQUEST, "Demande déjà traitée."),
        Err(e) => {
            tracing::error!(error = %e, "cannot close authorization request");
            return pages::error(StatusCode::INTERNAL_SERVER_ERROR, "Erreur interne.");
        }
    }
    let allow = form.decision.as_deref() == Some("allow");
    decide(
        &state,
        Decision {
            client_id: &pending.client_id,
            redirect_uri: &pending.redirect_uri,
            state: &pending.state,
            code_challenge: &pending.code_challenge,
            scope: &pending.scope,
            nonce: pending.nonce.as_deref(),
            login: &login,
            read: allow && checked(form.consent_read.as_deref()),
            write: allow && checked(form.consent_write.as_deref()),
        },
    )
}

/// Everything needed to answer an authorization request once the user decided.
struct Decision<'a> {
    client_id: &'a str,
    redirect_uri: &'a str,
    state: &'a str,
    code_challenge: &'a str,
    scope: &'a str,
    nonce: Option<&'a str>,
    login: &'a str,
    read: bool,
    write: bool,
}

/// Redirects with a code, or with `access_denied` when nothing was consented to.
fn decide(state: &AppState, d: Decision<'_>) -> Response {
    let requested = Scope::parse(Some(d.scope)).unwrap_or_default();
    let granted = Scope {
        read: requested.read && d.read,
        write: requested.write && d.write,
    };
    if !granted.read && !granted.write {
        return AuthorizeError::Redirect {
            redirect_uri: d.redirect_uri.to_owned(),
            error: "access_denied",
            description: "the user refused the data exchange".into(),
            state: Some(d.state.to_owned()),
        }
        .into_response(&state.issuer);
    }
    let Some(user) = state.config.user(d.login) else {
        return pages::error(StatusCode::BAD_REQUEST, "Utilisateur inconnu.");
    };
    let code = AuthorizationCode {
        code: random_token(),
        client_id: d.client_id.to_owned(),
        redirect_uri: d.redirect_uri.to_owned(),
        user_login: user.login.clone(),
        id_pe: user.id_pe.clone(),
        code_challenge: d.code_challenge.to_owned(),
        scope: granted.to_string(),
        nonce: d.nonce.map(str::to_owned),
        consent_read: granted.read,
        consent_write: granted.write,
        expires_at: now_ms()
            .saturating_add(secs_to_ms(state.config.authorization_code_lifetime_secs)),
    };
    if let Err(e) = state.store.insert_code(&code) {
        tracing::error!(error = %e, "cannot store authorization code");
        return pages::error(StatusCode::INTERNAL_SERVER_ERROR, "Erreur interne.");
    }
    tracing::info!(client = %d.client_id, "pairing authorized");
    redirect(
        d.redirect_uri,
        &[
            ("code", code.code),
            ("state", d.state.to_owned()),
            ("iss", state.issuer.clone()),
        ],
    )
}

/// The non-interactive authorization of tests: the authorization request plus the user and
/// the consent decision.
#[derive(Debug, Deserialize)]
pub(crate) struct TestAuthorizeForm {
    #[serde(flatten)]
    params: AuthorizeParams,
    user: String,
    #[serde(default)]
    consent_read: Option<String>,
    #[serde(default)]
    consent_write: Option<String>,
}

/// `POST /oauth/authorize/test` (sandbox only).
pub(crate) async fn test_authorize(
    State(state): State<Arc<AppState>>,
    Form(form): Form<TestAuthorizeForm>,
) -> Response {
    let request = match validate(&state, &form.params) {
        Ok(r) => r,
        Err(e) => return e.into_response(&state.issuer),
    };
    if state.config.user(&form.user).is_none() {
        return pages::error(StatusCode::BAD_REQUEST, "Utilisateur de test inconnu.");
    }
    let scope = request.scope.to_string();
    decide(
        &state,
        Decision {
            client_id: &request.partner.client_id,
            redirect_uri: &request.redirect_uri,
            state: &request.state,
            code_challenge: &request.code_challenge,
            scope: &scope,
            nonce: request.nonce.as_deref(),
            login: &form.user,
            read: checked(form.consent_read.as_deref()),
            write: checked(form.consent_write.as_deref()),
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_redirect_uri_port_may_vary() {
        let reg = "http://127.0.0.1/mes/callback";
        assert!(redirect_uri_matches(
            reg,
            "http://127.0.0.1:8080/mes/callback"
        ));
        assert!(!redirect_uri_matches(reg, "http://127.0.0.1:8080/other"));
        assert!(!redirect_uri_matches(
            reg,
            "http://localhost:8080/mes/callback"
        ));
        assert!(!redirect_uri_matches(
            "https://hub.example/cb",
            "https://hub.example:444/cb"
        ));
        assert!(redirect_uri_matches(
            "https://hub.example/cb",
            "https://hub.example/cb"
        ));
    }
}
