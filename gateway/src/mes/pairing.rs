//! Pairing a household member's MES account: the OAuth 2.0 authorization code flow with PKCE
//! S256 (RFC 7636), refresh with rotation, revocation (RFC 7009).
//!
//! The `oauth2` crate builds and parses the protocol messages; the requests go through the
//! workspace's reqwest (see [`send`]), so there is one HTTP stack. Revocation is done by hand
//! (see [`PairingClient::revoke`]).
//!
//! The id_token is verified (ES256 signature against the provider's JWK Set, `iss`, `aud`,
//! `exp`, and the `nonce` sent at the start). It came over the same TLS connection as the token
//! response, which OpenID Connect accepts as enough; it is verified anyway because the idPe and
//! assigning authority read from it go into the `subject` of every Observation the hub sends
//! for good, and a wrong base URL or a mixed-up answer must not put readings under the wrong
//! patient. It costs one JWKS fetch per pairing or refresh.

use std::borrow::Cow;
use std::fmt;
use std::time::{Duration, SystemTime};

use jiff::{SignedDuration, Timestamp};
use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use oauth2::basic::{
    BasicErrorResponse, BasicRevocationErrorResponse, BasicTokenIntrospectionResponse,
    BasicTokenType,
};
use oauth2::{
    AuthUrl, AuthorizationCode, ClientId, ClientSecret, CsrfToken, EndpointNotSet, EndpointSet,
    ErrorResponse, ExtraTokenFields, HttpRequest, HttpResponse, PkceCodeChallenge,
    PkceCodeVerifier, RedirectUrl, RefreshToken, RequestTokenError, Scope, StandardRevocableToken,
    StandardTokenResponse, TokenResponse, TokenUrl,
};
use serde::{Deserialize, Serialize};
use url::Url;

use super::config::MesConfig;
use super::upload::parse_retry_after;
use super::{MesConfigError, RedirectError};
use crate::fhir;

/// The OpenID Connect field of the token response.
#[derive(Clone, Deserialize, Serialize)]
struct IdTokenField {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    id_token: Option<String>,
}

impl fmt::Debug for IdTokenField {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("IdTokenField([redacted])")
    }
}

impl ExtraTokenFields for IdTokenField {}

type TokenAnswer = StandardTokenResponse<IdTokenField, BasicTokenType>;

type OAuthClient = oauth2::Client<
    BasicErrorResponse,
    TokenAnswer,
    BasicTokenIntrospectionResponse,
    StandardRevocableToken,
    BasicRevocationErrorResponse,
    EndpointSet,
    EndpointNotSet,
    EndpointNotSet,
    EndpointNotSet,
    EndpointSet,
>;

/// What a pairing gives the hub for one household member. Debug shows no token and no idPe.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Tokens {
    access_token: String,
    refresh_token: String,
    access_expires_at: Timestamp,
    id_token: String,
    id_pe: String,
    assigning_authority: String,
}

impl Tokens {
    pub fn access_token(&self) -> &str {
        &self.access_token
    }

    pub fn refresh_token(&self) -> &str {
        &self.refresh_token
    }

    pub fn id_token(&self) -> &str {
        &self.id_token
    }

    pub fn access_expires_at(&self) -> Timestamp {
        self.access_expires_at
    }

    /// The idPe (identifiant Patient Externe), read from the verified id_token.
    pub fn id_pe(&self) -> &str {
        &self.id_pe
    }

    /// The OID of the idPe's assigning authority (`subject.identifier.system`), from the
    /// verified id_token.
    pub fn assigning_authority(&self) -> &str {
        &self.assigning_authority
    }

    /// Whether the access token expires within `margin` of `now` (or already has).
    pub fn needs_refresh(&self, now: Timestamp, margin: SignedDuration) -> bool {
        match now.checked_add(margin) {
            Ok(deadline) => deadline >= self.access_expires_at,
            Err(_) => true,
        }
    }

    /// The subject of the Observations sent with these tokens.
    pub fn subject(&self) -> Result<fhir::Pairing, fhir::identifier::InvalidOid> {
        Ok(fhir::Pairing {
            assigning_authority: self.assigning_authority.parse()?,
            id_pe: self.id_pe.clone(),
        })
    }
}

impl fmt::Debug for Tokens {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Tokens")
            .field("access_token", &"[redacted]")
            .field("refresh_token", &"[redacted]")
            .field("access_expires_at", &self.access_expires_at)
            .field("id_token", &"[redacted]")
            .field("id_pe", &"[redacted]")
            .field("assigning_authority", &self.assigning_authority)
            .finish()
    }
}

/// A started pairing: send the user to [`PendingPairing::authorize_url`], keep the rest until
/// the redirect comes back.
pub struct PendingPairing {
    authorize_url: Url,
    state: CsrfToken,
    verifier: PkceCodeVerifier,
    nonce: String,
    redirect_uri: RedirectUrl,
}

impl PendingPairing {
    pub fn authorize_url(&self) -> &Url {
        &self.authorize_url
    }

    /// The CSRF `state` the redirect must bring back.
    pub fn state(&self) -> &str {
        self.state.secret()
    }

    /// The PKCE verifier the code exchange proves possession with.
    pub fn pkce_verifier(&self) -> &str {
        self.verifier.secret()
    }

    /// The redirect URI of the request (the code exchange repeats it exactly).
    pub fn redirect_uri(&self) -> &str {
        self.redirect_uri.as_str()
    }
}

impl fmt::Debug for PendingPairing {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PendingPairing")
            .field("redirect_uri", &self.redirect_uri.as_str())
            .finish_non_exhaustive()
    }
}

/// Why a pairing call failed.
#[derive(Debug, thiserror::Error)]
pub enum PairingError {
    #[error(transparent)]
    Config(#[from] MesConfigError),
    /// MES answered with an OAuth error (`invalid_grant`: the code or refresh token is spent,
    /// expired or revoked, see [`PairingError::needs_relink`]).
    #[error("MES refused: {error}{}", .description.as_deref().map(|d| format!(" ({d})")).unwrap_or_default())]
    Refused {
        error: String,
        description: Option<String>,
    },
    /// MES could not be reached, timed out, throttled or failed (5xx): try again later.
    #[error("MES unavailable: {reason}")]
    Unavailable {
        status: Option<u16>,
        retry_after: Option<Duration>,
        reason: String,
    },
    /// An answer that does not follow the protocol.
    #[error("unexpected answer from MES: {0}")]
    Protocol(String),
    #[error("id_token not valid: {0}")]
    IdToken(String),
    /// A refreshed id_token names another idPe or assigning authority than the pairing.
    #[error("the refreshed id_token names another patient than the pairing")]
    IdentityChanged,
    #[error(transparent)]
    Redirect(#[from] RedirectError),
}

impl PairingError {
    /// The pairing is gone (refresh token rotated away, revoked or expired; code spent): only
    /// a new `link-mes` helps.
    pub fn needs_relink(&self) -> bool {
        matches!(self, Self::Refused { error, .. } if error == "invalid_grant")
    }

    /// Worth trying again later, unchanged.
    pub fn is_transient(&self) -> bool {
        matches!(self, Self::Unavailable { .. })
    }
}

/// Failures of the HTTP adapter given to `oauth2`. 429 and 5xx answers are errors here, so
/// they come back as transport failures (retry) rather than as unparseable OAuth bodies.
#[derive(Debug, thiserror::Error)]
enum HttpError {
    #[error("{0}")]
    Transport(#[from] reqwest::Error),
    #[error("HTTP {status}")]
    Status {
        status: u16,
        retry_after: Option<Duration>,
    },
    #[error("{0}")]
    Response(String),
}

/// `oauth2`'s HTTP requests over reqwest 0.13.
async fn send(http: reqwest::Client, request: HttpRequest) -> Result<HttpResponse, HttpError> {
    let request = reqwest::Request::try_from(request)?;
    let response = http.execute(request).await?;
    let status = response.status();
    if status.as_u16() == 429 || status.is_server_error() {
        let retry_after = response
            .headers()
            .get(reqwest::header::RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| parse_retry_after(v, SystemTime::now()));
        return Err(HttpError::Status {
            status: status.as_u16(),
            retry_after,
        });
    }
    let mut answer = oauth2::http::Response::builder().status(status);
    for (name, value) in response.headers() {
        answer = answer.header(name, value);
    }
    let body = response.bytes().await?.to_vec();
    answer
        .body(body)
        .map_err(|e| HttpError::Response(e.to_string()))
}

/// The OAuth error of an answer, without anything of a token in it.
fn token_error<T: ErrorResponse>(e: RequestTokenError<HttpError, T>) -> PairingError {
    match e {
        RequestTokenError::ServerResponse(answer) => {
            let answer = serde_json::to_value(&answer).unwrap_or_default();
            let field = |name: &str| answer.get(name).and_then(|v| v.as_str()).map(str::to_owned);
            PairingError::Refused {
                error: field("error").unwrap_or_default(),
                description: field("error_description"),
            }
        }
        RequestTokenError::Request(HttpError::Status {
            status,
            retry_after,
        }) => PairingError::Unavailable {
            status: Some(status),
            retry_after,
            reason: format!("HTTP {status}"),
        },
        RequestTokenError::Request(e) => PairingError::Unavailable {
            status: None,
            retry_after: None,
            reason: e.to_string(),
        },
        // The body may hold tokens: only the path of what did not parse is kept.
        RequestTokenError::Parse(e, _body) => {
            PairingError::Protocol(format!("answer not understood at {}", e.path()))
        }
        RequestTokenError::Other(reason) => PairingError::Protocol(reason),
    }
}

/// The claims the hub reads from the id_token.
#[derive(Deserialize)]
struct IdClaims {
    exp: i64,
    #[serde(default)]
    nonce: Option<String>,
    #[serde(rename = "idPe", default)]
    id_pe: Option<String>,
    #[serde(rename = "assignAuth", default)]
    assign_auth: Option<String>,
}

/// Pairing calls for one MES partner configuration.
#[derive(Debug, Clone)]
pub struct PairingClient {
    config: MesConfig,
    oauth: OAuthClient,
    http: reqwest::Client,
    redirect_uri: RedirectUrl,
    jwks_url: Url,
    revoke_url: Url,
}

impl PairingClient {
    pub fn new(config: &MesConfig) -> Result<Self, MesConfigError> {
        let redirect_uri = RedirectUrl::from_url(config.redirect_url()?);
        let oauth = oauth2::Client::new(ClientId::new(config.client_id.clone()))
            .set_client_secret(ClientSecret::new(config.client_secret.expose().to_owned()))
            .set_auth_uri(AuthUrl::from_url(config.authorize_url()?))
            .set_token_uri(TokenUrl::from_url(config.token_url()?))
            .set_redirect_uri(redirect_uri.clone());
        Ok(Self {
            config: config.clone(),
            oauth,
            http: config.http_client()?,
            redirect_uri,
            jwks_url: config.jwks_url()?,
            revoke_url: config.revoke_url()?,
        })
    }

    /// Starts a pairing with the configured redirect URI.
    pub fn start(&self) -> PendingPairing {
        self.start_with(self.redirect_uri.clone())
    }

    /// Starts a pairing with another redirect URI, such as the loopback one
    /// [`super::RedirectListener`] actually listens on.
    pub fn start_at(&self, redirect_uri: &Url) -> PendingPairing {
        self.start_with(RedirectUrl::from_url(redirect_uri.clone()))
    }

    fn start_with(&self, redirect_uri: RedirectUrl) -> PendingPairing {
        let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
        let nonce = CsrfToken::new_random().secret().clone();
        let (authorize_url, state) = self
            .oauth
            .authorize_url(CsrfToken::new_random)
            .add_scopes(self.config.scopes.iter().cloned().map(Scope::new))
            .set_pkce_challenge(challenge)
            .set_redirect_uri(Cow::Owned(redirect_uri.clone()))
            .add_extra_param("nonce", nonce.clone())
            .url();
        PendingPairing {
            authorize_url,
            state,
            verifier,
            nonce,
            redirect_uri,
        }
    }

    /// Exchanges the code the redirect brought for tokens, and reads the pairing facts from
    /// the verified id_token.
    pub async fn finish(
        &self,
        code: &str,
        pending: PendingPairing,
    ) -> Result<Tokens, PairingError> {
        let asked_at = Timestamp::now();
        let http = self.http.clone();
        let client = move |request| send(http.clone(), request);
        let answer = self
            .oauth
            .exchange_code(AuthorizationCode::new(code.to_owned()))
            .set_pkce_verifier(pending.verifier)
            .set_redirect_uri(Cow::Owned(pending.redirect_uri))
            .request_async(&client)
            .await
            .map_err(token_error)?;
        self.tokens_from(&answer, asked_at, Some(&pending.nonce), None)
            .await
    }

    /// A new access token (and id_token). The refresh token rotates: the returned [`Tokens`]
    /// replace `tokens`, whose refresh token MES no longer accepts (presenting it again would
    /// revoke the whole pairing).
    pub async fn refresh(&self, tokens: &Tokens) -> Result<Tokens, PairingError> {
        let asked_at = Timestamp::now();
        let http = self.http.clone();
        let client = move |request| send(http.clone(), request);
        let refresh = RefreshToken::new(tokens.refresh_token.clone());
        let answer = self
            .oauth
            .exchange_refresh_token(&refresh)
            .request_async(&client)
            .await
            .map_err(token_error)?;
        self.tokens_from(&answer, asked_at, None, Some(tokens))
            .await
    }

    /// Ends the pairing: the refresh token (which revokes the pairing), then the access token
    /// (in case the provider does not cascade). Unknown tokens are not an error (RFC 7009).
    pub async fn revoke(&self, tokens: &Tokens) -> Result<(), PairingError> {
        self.revoke_one(&tokens.refresh_token, "refresh_token")
            .await?;
        self.revoke_one(&tokens.access_token, "access_token").await
    }

    // RFC 7009 by hand: `oauth2` refuses a revocation endpoint that is not https, which the
    // loopback sandbox is (the config already refuses plain http anywhere but on loopback).
    async fn revoke_one(&self, token: &str, hint: &str) -> Result<(), PairingError> {
        let encode =
            |s: &str| url::form_urlencoded::byte_serialize(s.as_bytes()).collect::<String>();
        let response = self
            .http
            .post(self.revoke_url.clone())
            .basic_auth(
                encode(&self.config.client_id),
                Some(encode(self.config.client_secret.expose())),
            )
            .form(&[("token", token), ("token_type_hint", hint)])
            .send()
            .await
            .map_err(|e| PairingError::Unavailable {
                status: None,
                retry_after: None,
                reason: e.to_string(),
            })?;
        let status = response.status().as_u16();
        if status == 200 {
            return Ok(());
        }
        if status == 429 || response.status().is_server_error() {
            return Err(PairingError::Unavailable {
                status: Some(status),
                retry_after: response
                    .headers()
                    .get(reqwest::header::RETRY_AFTER)
                    .and_then(|v| v.to_str().ok())
                    .and_then(|v| parse_retry_after(v, SystemTime::now())),
                reason: format!("HTTP {status}"),
            });
        }
        let answer: serde_json::Value = response.json().await.unwrap_or_default();
        match answer.get("error").and_then(|e| e.as_str()) {
            Some(error) => Err(PairingError::Refused {
                error: error.to_owned(),
                description: answer
                    .get("error_description")
                    .and_then(|d| d.as_str())
                    .map(str::to_owned),
            }),
            None => Err(PairingError::Protocol(format!(
                "revocation answered HTTP {status}"
            ))),
        }
    }

    async fn tokens_from(
        &self,
        answer: &TokenAnswer,
        asked_at: Timestamp,
        nonce: Option<&str>,
        previous: Option<&Tokens>,
    ) -> Result<Tokens, PairingError> {
        let id_token = match (&answer.extra_fields().id_token, previous) {
            (Some(id_token), _) => id_token.clone(),
            // OpenID Connect lets a refresh answer leave the id_token out.
            (None, Some(previous)) => previous.id_token.clone(),
            (None, None) => return Err(PairingError::Protocol("no id_token".into())),
        };
        let claims = self.verify_id_token(&id_token, nonce).await?;
        let (Some(id_pe), Some(assigning_authority)) = (claims.id_pe, claims.assign_auth) else {
            return Err(PairingError::IdToken("no idPe or assignAuth claim".into()));
        };
        if let Some(previous) = previous
            && (previous.id_pe != id_pe || previous.assigning_authority != assigning_authority)
        {
            return Err(PairingError::IdentityChanged);
        }
        let refresh_token = match (answer.refresh_token(), previous) {
            (Some(refresh), _) => refresh.secret().clone(),
            // Without rotation the old one stays valid (RFC 6749 §6).
            (None, Some(previous)) => previous.refresh_token.clone(),
            (None, None) => return Err(PairingError::Protocol("no refresh_token".into())),
        };
        let access_expires_at = match answer.expires_in() {
            Some(lifetime) => SignedDuration::try_from(lifetime)
                .ok()
                .and_then(|d| asked_at.checked_add(d).ok()),
            None => Timestamp::from_second(claims.exp).ok(),
        }
        .ok_or_else(|| PairingError::Protocol("access token lifetime out of range".into()))?;
        Ok(Tokens {
            access_token: answer.access_token().secret().clone(),
            refresh_token,
            access_expires_at,
            id_token,
            id_pe,
            assigning_authority,
        })
    }

    async fn verify_id_token(
        &self,
        jwt: &str,
        nonce: Option<&str>,
    ) -> Result<IdClaims, PairingError> {
        let invalid = |e: jsonwebtoken::errors::Error| PairingError::IdToken(e.to_string());
        let header = jsonwebtoken::decode_header(jwt).map_err(invalid)?;
        let jwks: JwkSet = self
            .http
            .get(self.jwks_url.clone())
            .send()
            .await
            .and_then(reqwest::Response::error_for_status)
            .map_err(|e| PairingError::Unavailable {
                status: e.status().map(|s| s.as_u16()),
                retry_after: None,
                reason: format!("JWKS: {e}"),
            })?
            .json()
            .await
            .map_err(|e| PairingError::Protocol(format!("JWKS: {e}")))?;
        let jwk = match &header.kid {
            Some(kid) => jwks.find(kid),
            None if jwks.keys.len() == 1 => jwks.keys.first(),
            None => None,
        }
        .ok_or_else(|| PairingError::IdToken("signing key not in the JWK Set".into()))?;
        let key = DecodingKey::from_jwk(jwk).map_err(invalid)?;
        // The algorithm is pinned, never taken from the token's header.
        let mut validation = Validation::new(Algorithm::ES256);
        validation.set_issuer(&[self.config.expected_issuer()]);
        validation.set_audience(&[self.config.client_id.as_str()]);
        validation.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
        validation.leeway = 60;
        let claims = jsonwebtoken::decode::<IdClaims>(jwt, &key, &validation)
            .map_err(invalid)?
            .claims;
        if let Some(nonce) = nonce
            && claims.nonce.as_deref() != Some(nonce)
        {
            return Err(PairingError::IdToken("nonce does not match".into()));
        }
        Ok(claims)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tokens(expiry: &str) -> Tokens {
        Tokens {
            access_token: "at-secret".into(),
            refresh_token: "rt-secret".into(),
            access_expires_at: expiry.parse().unwrap(),
            id_token: "idt-secret".into(),
            id_pe: "idpe-secret".into(),
            assigning_authority: "2.999.42.1".into(),
        }
    }

    #[test]
    fn debug_prints_no_token() {
        let shown = format!("{:?}", tokens("2030-01-01T00:00:00Z"));
        for secret in ["at-secret", "rt-secret", "idt-secret", "idpe-secret"] {
            assert!(!shown.contains(secret), "{shown}");
        }
    }

    #[test]
    fn needs_refresh_within_the_margin() {
        let t = tokens("2030-01-01T01:00:00Z");
        let margin = SignedDuration::from_mins(5);
        assert!(!t.needs_refresh("2030-01-01T00:54:59Z".parse().unwrap(), margin));
        assert!(t.needs_refresh("2030-01-01T00:55:00Z".parse().unwrap(), margin));
        assert!(t.needs_refresh("2030-01-01T02:00:00Z".parse().unwrap(), margin));
        assert!(t.needs_refresh(Timestamp::MAX, margin));
    }

    #[test]
    fn start_builds_a_pkce_s256_request() {
        let client = PairingClient::new(&MesConfig::for_base_url("http://127.0.0.1:9")).unwrap();
        let pending = client.start();
        let url = pending.authorize_url();
        let query: std::collections::HashMap<_, _> = url.query_pairs().into_owned().collect();
        assert_eq!(url.path(), "/oauth/authorize");
        assert_eq!(query["code_challenge_method"], "S256");
        assert_eq!(query["state"], pending.state());
        assert_eq!(query["redirect_uri"], "http://127.0.0.1/mes/callback");
        assert_eq!(query["scope"], "openid mesures.read mesures.write");
        assert_eq!(query["client_id"], "relais-hub");
        assert!(query.contains_key("nonce"));
        assert!(!format!("{pending:?}").contains(pending.pkce_verifier()));
        assert!(!format!("{client:?}").contains("relais-hub-secret"));
    }
}
