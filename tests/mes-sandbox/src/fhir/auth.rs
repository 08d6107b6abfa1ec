//! Who is calling API Mesure: the access token (401), the id_token (400), the partner OID
//! (409) and the consent (403), checked in that order.
//!
//! The id_token travels in the `X-Id-Token` header: the public documents say every call carries
//! it, not where. That header name is the sandbox's choice.

use axum::http::HeaderMap;
use axum::http::header::AUTHORIZATION;

use super::error::FhirError;
use crate::config::PartnerConfig;
use crate::server::AppState;
use crate::store::now_ms;
use crate::store::oauth::{Grant, TokenKind};

/// Header carrying the id_token on API Mesure calls.
pub const ID_TOKEN_HEADER: &str = "x-id-token";

/// An authenticated caller.
#[derive(Debug, Clone)]
pub(crate) struct Caller {
    pub(crate) grant: Grant,
    pub(crate) partner: PartnerConfig,
}

impl Caller {
    /// The authorized idPe.
    pub(crate) fn id_pe(&self) -> &str {
        &self.grant.id_pe
    }

    /// OID of the idPe's assigning authority.
    pub(crate) fn assign_auth(&self) -> &str {
        self.partner.assigning_authority()
    }
}

/// The bearer token of an `Authorization` header.
fn bearer(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get(AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| token.trim())
        .filter(|t| !t.is_empty())
}

/// Authenticates a call from its headers.
pub(crate) fn authenticate(state: &AppState, headers: &HeaderMap) -> Result<Caller, FhirError> {
    let token = bearer(headers).ok_or(FhirError::MissingToken)?;
    let record = state.store.token(token)?.ok_or(FhirError::InvalidToken)?;
    let now = now_ms();
    let max_age_expired = state
        .faults
        .get()
        .access_token_max_age_secs
        .is_some_and(|max| now >= record.issued_at.saturating_add(secs_to_ms(max)));
    if record.kind != TokenKind::Access
        || record.revoked
        || record.grant.revoked
        || now >= record.expires_at
        || max_age_expired
    {
        return Err(FhirError::InvalidToken);
    }
    let grant = record.grant;
    let partner = state
        .config
        .partner(&grant.client_id)
        .ok_or(FhirError::InvalidToken)?
        .clone();

    let id_token = headers
        .get(ID_TOKEN_HEADER)
        .and_then(|v| v.to_str().ok())
        .ok_or(FhirError::InvalidIdToken)?;
    let claims = state
        .key
        .verify_id_token(id_token.trim(), &state.issuer, &grant.client_id)
        .map_err(|_| FhirError::InvalidIdToken)?;
    if claims.sub != grant.user_login || claims.id_pe.as_deref() != Some(grant.id_pe.as_str()) {
        return Err(FhirError::InvalidIdToken);
    }
    match claims.partner_oid.as_deref() {
        None => return Err(FhirError::InvalidIdToken),
        Some(oid) if oid != partner.oid => return Err(FhirError::OidConflict),
        Some(_) => {}
    }
    Ok(Caller { grant, partner })
}

/// Checks the consent for reading (`write == false`) or writing.
pub(crate) fn require_consent(
    state: &AppState,
    caller: &Caller,
    write: bool,
) -> Result<(), FhirError> {
    let given = if write {
        caller.grant.consent_write
    } else {
        caller.grant.consent_read
    };
    if !given || state.faults.get().consent_withdrawn(caller.id_pe(), write) {
        return Err(FhirError::NoConsent);
    }
    Ok(())
}

/// Seconds to milliseconds, saturating.
pub(crate) fn secs_to_ms(secs: u64) -> i64 {
    i64::try_from(secs).unwrap_or(i64::MAX).saturating_mul(1000)
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    #[test]
    fn bearer_scheme_is_case_insensitive_and_needs_a_token() {
        let mut h = HeaderMap::new();
        h.insert(AUTHORIZATION, HeaderValue::from_static("bearer abc"));
        assert_eq!(bearer(&h), Some("abc"));
        h.insert(AUTHORIZATION, HeaderValue::from_static("Basic abc"));
        assert_eq!(bearer(&h), None);
        h.insert(AUTHORIZATION, HeaderValue::from_static("Bearer "));
        assert_eq!(bearer(&h), None);
    }
}
