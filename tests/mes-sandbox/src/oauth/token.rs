//! The token endpoint (RFC 6749 §4.1.3, §6; RFC 7636 §4.5-4.6) and revocation (RFC 7009).
//!
//! - Codes are single-use and bound to the client, the redirect URI and the PKCE challenge; a
//!   reused code revokes what it produced (RFC 6749 §4.1.2). A failed exchange spends the code.
//! - Refresh tokens rotate: each use returns a new one and retires the old; presenting a
//!   retired one revokes the whole family, i.e. the pairing (RFC 9700 §4.14.2).
//! - Clients authenticate with `client_secret_basic` or `client_secret_post`.

use std::sync::Arc;

use axum::Form;
use axum::extract::State;
use axum::extract::rejection::FormRejection;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde::Deserialize;
use serde_json::{Value, json};

use super::pkce;
use super::random_token;
use super::scope::Scope;
use crate::config::PartnerConfig;
use crate::fhir::auth::secs_to_ms;
use crate::keys::IdTokenClaims;
use crate::server::AppState;
use crate::store::now_ms;
use crate::store::oauth::{CodeRedemption, Grant, TokenKind};

/// An OAuth error response (RFC 6749 §5.2).
#[derive(Debug)]
pub(crate) struct OAuthError {
    status: StatusCode,
    error: &'static str,
    description: String,
    basic_challenge: bool,
}

impl OAuthError {
    fn new(error: &'static str, description: impl Into<String>) -> Self {
        Self {
            status: StatusCode::BAD_REQUEST,
            error,
            description: description.into(),
            basic_challenge: false,
        }
    }

    fn invalid_client(basic: bool) -> Self {
        Self {
            status: StatusCode::UNAUTHORIZED,
            error: "invalid_client",
            description: "client authentication failed".into(),
            basic_challenge: basic,
        }
    }

    fn internal(e: impl std::fmt::Display) -> Self {
        tracing::error!(error = %e, "token endpoint failure");
        Self {
            status: StatusCode::INTERNAL_SERVER_ERROR,
            error: "server_error",
            description: "sandbox internal error".into(),
            basic_challenge: false,
        }
    }
}

impl IntoResponse for OAuthError {
    fn into_response(self) -> Response {
        let body = json!({ "error": self.error, "error_description": self.description });
        let mut response = no_store((self.status, axum::Json(body)).into_response());
        if self.basic_challenge {
            response.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Basic realm=\"mes-sandbox\""),
            );
        }
        response
    }
}

/// Token responses must not be cached (RFC 6749 §5.1).
fn no_store(mut response: Response) -> Response {
    let headers = response.headers_mut();
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
    response
}

/// Fields of the token and revocation requests.
#[derive(Debug, Default, Deserialize)]
pub(crate) struct TokenForm {
    grant_type: Option<String>,
    code: Option<String>,
    redirect_uri: Option<String>,
    code_verifier: Option<String>,
    refresh_token: Option<String>,
    scope: Option<String>,
    client_id: Option<String>,
    client_secret: Option<String>,
    token: Option<String>,
}

/// Percent-decoding of the Basic credentials (RFC 6749 §2.3.1 form-encodes them).
fn form_decode(s: &str) -> String {
    url::form_urlencoded::parse(format!("x={s}").as_bytes())
        .next()
        .map(|(_, v)| v.into_owned())
        .unwrap_or_default()
}

/// Authenticates the client (exactly one method per request).
fn authenticate_client(
    state: &AppState,
    headers: &HeaderMap,
    form: &TokenForm,
) -> Result<PartnerConfig, OAuthError> {
    let basic = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split_once(' '))
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("basic"));
    let (id, secret, used_basic) = match (basic, &form.client_secret) {
        (Some(_), Some(_)) => {
            return Err(OAuthError::new(
                "invalid_request",
                "use one client authentication method only",
            ));
        }
        (Some((_, credentials)), None) => {
            let decoded = STANDARD
                .decode(credentials.trim())
                .ok()
                .and_then(|b| String::from_utf8(b).ok())
                .ok_or_else(|| OAuthError::invalid_client(true))?;
            let (id, secret) = decoded
                .split_once(':')
                .ok_or_else(|| OAuthError::invalid_client(true))?;
            if form
                .client_id
                .as_deref()
                .is_some_and(|c| c != form_decode(id))
            {
                return Err(OAuthError::new(
                    "invalid_request",
                    "client_id differs from the credentials",
                ));
            }
            (form_decode(id), form_decode(secret), true)
        }
        (None, Some(secret)) => match &form.client_id {
            Some(id) => (id.clone(), secret.clone(), false),
            None => return Err(OAuthError::invalid_client(false)),
        },
        (None, None) => return Err(OAuthError::invalid_client(false)),
    };
    match state.config.partner(&id) {
        Some(p) if p.client_secret == secret => Ok(p.clone()),
        _ => Err(OAuthError::invalid_client(used_basic)),
    }
}

fn required<'a>(value: &'a Option<String>, name: &str) -> Result<&'a str, OAuthError> {
    value
        .as_deref()
        .filter(|v| !v.is_empty())
        .ok_or_else(|| OAuthError::new("invalid_request", format!("{name} is required")))
}

/// The form of a token or revocation request, or the RFC 6749 error for a malformed one.
fn form_of(form: Result<Form<TokenForm>, FormRejection>) -> Result<TokenForm, OAuthError> {
    form.map(|Form(f)| f).map_err(|e| {
        OAuthError::new(
            "invalid_request",
            format!("expected an application/x-www-form-urlencoded body: {e}"),
        )
    })
}

/// `POST /oauth/token`.
pub(crate) async fn token(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    form: Result<Form<TokenForm>, FormRejection>,
) -> Result<Response, OAuthError> {
    let form = form_of(form)?;
    let partner = authenticate_client(&state, &headers, &form)?;
    let body = match form.grant_type.as_deref() {
        Some("authorization_code") => exchange_code(&state, &partner, &form)?,
        Some("refresh_token") => refresh(&state, &partner, &form)?,
        Some(_) => {
            return Err(OAuthError::new(
                "unsupported_grant_type",
                "grant_type must be authorization_code or refresh_token",
            ));
        }
        None => return Err(OAuthError::new("invalid_request", "grant_type is required")),
    };
    Ok(no_store(axum::Json(body).into_response()))
}

fn exchange_code(
    state: &AppState,
    partner: &PartnerConfig,
    form: &TokenForm,
) -> Result<Value, OAuthError> {
    let code = required(&form.code, "code")?;
    let redirect_uri = required(&form.redirect_uri, "redirect_uri")?;
    let verifier = required(&form.code_verifier, "code_verifier")?;
    let code = match state
        .store
        .redeem_code(code)
        .map_err(OAuthError::internal)?
    {
        CodeRedemption::Unknown => {
            return Err(OAuthError::new(
                "invalid_grant",
                "unknown authorization code",
            ));
        }
        CodeRedemption::Reused { grant_id } => {
            if let Some(grant_id) = grant_id {
                state
                    .store
                    .revoke_grant(grant_id)
                    .map_err(OAuthError::internal)?;
            }
            tracing::warn!("authorization code replayed; its tokens are revoked");
            return Err(OAuthError::new(
                "invalid_grant",
                "authorization code already used; the tokens it produced are revoked",
            ));
        }
        CodeRedemption::Fresh(code) => code,
    };
    if code.client_id != partner.client_id {
        return Err(OAuthError::new(
            "invalid_grant",
            "code was issued to another client",
        ));
    }
    if now_ms() >= code.expires_at {
        return Err(OAuthError::new(
            "invalid_grant",
            "authorization code expired",
        ));
    }
    if code.redirect_uri != redirect_uri {
        return Err(OAuthError::new(
            "invalid_grant",
            "redirect_uri does not match the authorization request",
        ));
    }
    if !pkce::verify(verifier, &code.code_challenge) {
        return Err(OAuthError::new(
            "invalid_grant",
            "code_verifier does not match the code_challenge (S256)",
        ));
    }
    let grant = state
        .store
        .create_grant(&code, &code.scope, now_ms())
        .map_err(OAuthError::internal)?;
    tracing::info!(client = %partner.client_id, "pairing tokens issued");
    issue_tokens(state, partner, &grant, grant.nonce.clone())
}

fn refresh(
    state: &AppState,
    partner: &PartnerConfig,
    form: &TokenForm,
) -> Result<Value, OAuthError> {
    let presented = required(&form.refresh_token, "refresh_token")?;
    let invalid = || OAuthError::new("invalid_grant", "refresh token is not valid");
    let record = state
        .store
        .token(presented)
        .map_err(OAuthError::internal)?
        .filter(|r| r.kind == TokenKind::Refresh)
        .ok_or_else(invalid)?;
    if record.grant.client_id != partner.client_id {
        return Err(invalid());
    }
    if record.revoked || record.grant.revoked {
        return Err(invalid());
    }
    if record.used
        || !state
            .store
            .mark_refresh_used(presented)
            .map_err(OAuthError::internal)?
    {
        state
            .store
            .revoke_grant(record.grant.id)
            .map_err(OAuthError::internal)?;
        tracing::warn!(client = %partner.client_id, "refresh token replayed; pairing revoked");
        return Err(OAuthError::new(
            "invalid_grant",
            "refresh token already used; the whole token family is revoked",
        ));
    }
    if now_ms() >= record.expires_at {
        return Err(OAuthError::new("invalid_grant", "refresh token expired"));
    }
    if form.scope.is_some() {
        let granted = Scope::parse(Some(&record.grant.scope)).unwrap_or_default();
        let asked = Scope::parse(form.scope.as_deref())
            .map_err(|_| OAuthError::new("invalid_scope", "scope is not valid"))?;
        if !asked.within(&granted) {
            return Err(OAuthError::new(
                "invalid_scope",
                "scope exceeds the granted scope",
            ));
        }
    }
    issue_tokens(state, partner, &record.grant, None)
}

/// New access token, refresh token and id_token for a grant.
fn issue_tokens(
    state: &AppState,
    partner: &PartnerConfig,
    grant: &Grant,
    nonce: Option<String>,
) -> Result<Value, OAuthError> {
    let now = now_ms();
    let access_lifetime = state.config.access_token_lifetime_secs;
    let access = random_token();
    let refresh = random_token();
    let access_expiry = now.saturating_add(secs_to_ms(access_lifetime));
    let refresh_expiry = now.saturating_add(secs_to_ms(state.config.refresh_token_lifetime_secs));
    state
        .store
        .insert_token(&access, TokenKind::Access, grant.id, now, access_expiry)
        .map_err(OAuthError::internal)?;
    state
        .store
        .insert_token(&refresh, TokenKind::Refresh, grant.id, now, refresh_expiry)
        .map_err(OAuthError::internal)?;
    let now_s = now / 1000;
    let claims = IdTokenClaims {
        iss: state.issuer.clone(),
        sub: grant.user_login.clone(),
        aud: partner.client_id.clone(),
        exp: access_expiry / 1000,
        iat: now_s,
        auth_time: None,
        nonce,
        id_pe: Some(grant.id_pe.clone()),
        partner_oid: Some(partner.oid.clone()),
        assign_auth: Some(partner.assigning_authority().to_owned()),
    };
    let id_token = state.key.sign(&claims).map_err(OAuthError::internal)?;
    Ok(json!({
        "access_token": access,
        "token_type": "Bearer",
        "expires_in": access_lifetime,
        "refresh_token": refresh,
        "id_token": id_token,
        "scope": grant.scope,
    }))
}

/// `POST /oauth/revoke` (RFC 7009): revoking a refresh token ends the pairing.
pub(crate) async fn revoke(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    form: Result<Form<TokenForm>, FormRejection>,
) -> Result<Response, OAuthError> {
    let form = form_of(form)?;
    let partner = authenticate_client(&state, &headers, &form)?;
    let token = required(&form.token, "token")?;
    // token_type_hint is ignored: every token type is searched (RFC 7009 §2.1 allows it).
    if let Some(record) = state.store.token(token).map_err(OAuthError::internal)? {
        if record.grant.client_id != partner.client_id {
            return Err(OAuthError::new(
                "invalid_request",
                "token was issued to another client",
            ));
        }
        match record.kind {
            TokenKind::Refresh => state.store.revoke_grant(record.grant.id),
            TokenKind::Access => state.store.revoke_token(token),
        }
        .map_err(OAuthError::internal)?;
        tracing::info!(client = %partner.client_id, "token revoked");
    }
    // Unknown tokens are answered 200 too (RFC 7009 §2.2).
    Ok(no_store(StatusCode::OK.into_response()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn basic_credentials_are_form_decoded() {
        assert_eq!(form_decode("a%3Ab+c"), "a:b c");
    }
}
