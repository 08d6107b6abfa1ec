//! Sending transaction Bundles to API Mesures and classifying the answer for the upload loop,
//! plus the delay between attempts ([`RetryPolicy`]).
//!
//! What each answer means for the loop:
//! - 200: accepted ([`Sent`], with what the transaction-response says was created);
//! - 401, or 400 for the id_token: [`UploadError::NeedsRefresh`] (refresh, then send again);
//! - 403: [`UploadError::ConsentWithdrawn`] (tell the user, stop sending for them);
//! - 409: [`UploadError::Conflict`] (partner OID mismatch: a configuration error);
//! - 422: [`UploadError::Rejected`] (quarantine the reading, never send it again);
//! - 429, 5xx, timeouts, connection failures or resets: [`UploadError::Retry`].

use std::time::{Duration, SystemTime};

use backon::{BackoffBuilder, ExponentialBuilder};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use url::Url;

use super::MesConfigError;
use super::config::MesConfig;
use super::pairing::Tokens;

/// The header that carries the id_token on API Mesures calls.
pub const ID_TOKEN_HEADER: &str = "x-id-token";

/// Posts transaction Bundles to API Mesures.
#[derive(Debug, Clone)]
pub struct Uploader {
    http: reqwest::Client,
    endpoint: Url,
}

/// An accepted transaction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sent {
    /// One per entry of the transaction-response, in request order.
    pub created: Vec<Created>,
}

impl Sent {
    /// The server id of the Observation MES stored.
    pub fn observation_id(&self) -> Option<&str> {
        self.created
            .iter()
            .find(|c| c.resource_type == "Observation")
            .map(|c| c.id.as_str())
    }
}

/// One entry of a transaction-response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Created {
    pub resource_type: String,
    pub id: String,
    /// `response.status` as MES wrote it: `201 Created`, or `200 OK` for an existing Device.
    pub status: String,
}

/// Why a Bundle was not accepted, and what the upload loop should do about it.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum UploadError {
    /// The access token (or the id_token) is no longer accepted: refresh, then send again.
    #[error("the access token is no longer accepted")]
    NeedsRefresh,
    /// The user withdrew the consent (or the Bundle names another patient).
    #[error("consent withdrawn")]
    ConsentWithdrawn,
    /// The partner OID of the id_token does not match MES's: a configuration error.
    #[error("partner OID conflict: {0}")]
    Conflict(OperationOutcome),
    /// MES refused the Bundle itself: quarantine it, never send it again.
    #[error("rejected: {0}")]
    Rejected(OperationOutcome),
    /// A malformed request (400 other than the id_token): a bug on this side, not retried.
    #[error("bad request: {0}")]
    BadRequest(OperationOutcome),
    /// Throttled, server error, timeout or connection lost: send again after a delay, at
    /// least `after` when MES said so.
    #[error("try again later")]
    Retry { after: Option<Duration> },
    /// Any other answer.
    #[error("unexpected HTTP status {status}")]
    Unexpected { status: u16 },
    /// The request could not be built (e.g. a token that is not a valid header value).
    #[error("request not sent: {0}")]
    Request(String),
}

impl Uploader {
    pub fn new(config: &MesConfig) -> Result<Self, MesConfigError> {
        Ok(Self {
            http: config.http_client()?,
            endpoint: config.transaction_url()?,
        })
    }

    pub(crate) fn http(&self) -> &reqwest::Client {
        &self.http
    }

    pub(crate) fn endpoint(&self) -> &Url {
        &self.endpoint
    }

    /// POSTs one transaction Bundle with the bearer token and the id_token header.
    pub async fn send(&self, tokens: &Tokens, bundle: &Value) -> Result<Sent, UploadError> {
        let body = serde_json::to_vec(bundle).map_err(|e| UploadError::Request(e.to_string()))?;
        let response = self
            .http
            .post(self.endpoint.clone())
            .bearer_auth(tokens.access_token())
            .header(ID_TOKEN_HEADER, tokens.id_token())
            .header(reqwest::header::CONTENT_TYPE, "application/fhir+json")
            .header(reqwest::header::ACCEPT, "application/fhir+json")
            .body(body)
            .send()
            .await
            .map_err(transport_error)?;
        let status = response.status().as_u16();
        let retry_after = response
            .headers()
            .get(reqwest::header::RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        // A reset half-way through the body lands here (the write may have been committed).
        let body = response.bytes().await.map_err(transport_error)?;
        classify(status, retry_after.as_deref(), &body, SystemTime::now())
    }
}

pub(crate) fn transport_error(e: reqwest::Error) -> UploadError {
    if e.is_builder() {
        UploadError::Request(e.to_string())
    } else {
        // Timeouts, refused or reset connections, truncated bodies.
        UploadError::Retry { after: None }
    }
}

/// What an API Mesures answer means. `now` resolves a Retry-After given as a date.
pub fn classify(
    status: u16,
    retry_after: Option<&str>,
    body: &[u8],
    now: SystemTime,
) -> Result<Sent, UploadError> {
    let outcome = || serde_json::from_slice::<OperationOutcome>(body).unwrap_or_default();
    match status {
        200 | 201 => transaction_response(body),
        400 if outcome().is_about_id_token() => Err(UploadError::NeedsRefresh),
        400 => Err(UploadError::BadRequest(outcome())),
        401 => Err(UploadError::NeedsRefresh),
        403 => Err(UploadError::ConsentWithdrawn),
        409 => Err(UploadError::Conflict(outcome())),
        422 => Err(UploadError::Rejected(outcome())),
        408 | 429 | 500..=599 => Err(UploadError::Retry {
            after: retry_after.and_then(|v| parse_retry_after(v, now)),
        }),
        status => Err(UploadError::Unexpected { status }),
    }
}

fn transaction_response(body: &[u8]) -> Result<Sent, UploadError> {
    #[derive(Deserialize)]
    struct Bundle {
        #[serde(rename = "resourceType")]
        resource_type: String,
        #[serde(default)]
        entry: Vec<Entry>,
    }
    #[derive(Deserialize)]
    struct Entry {
        response: EntryResponse,
    }
    #[derive(Deserialize)]
    struct EntryResponse {
        status: String,
        #[serde(default)]
        location: Option<String>,
    }
    // A 200 whose body is not understood was still accepted by MES: retrying would duplicate
    // the Observation, so it is reported as accepted with nothing known of what was created.
    let Ok(bundle) = serde_json::from_slice::<Bundle>(body) else {
        return Ok(Sent {
            created: Vec::new(),
        });
    };
    if bundle.resource_type != "Bundle" {
        return Ok(Sent {
            created: Vec::new(),
        });
    }
    let created = bundle
        .entry
        .into_iter()
        .filter_map(|e| {
            let location = e.response.location?;
            // `Type/id` or `Type/id/_history/n`.
            let mut parts = location.split('/');
            let resource_type = parts.next()?.to_owned();
            let id = parts.next()?.to_owned();
            Some(Created {
                resource_type,
                id,
                status: e.response.status,
            })
        })
        .collect();
    Ok(Sent { created })
}

/// A FHIR OperationOutcome, as far as the hub reads it. Its diagnostics may quote a value of
/// the Bundle: keep it out of logs.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct OperationOutcome {
    #[serde(default)]
    pub issue: Vec<Issue>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Issue {
    #[serde(default)]
    pub severity: String,
    #[serde(default)]
    pub code: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub diagnostics: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub details: Option<IssueDetails>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct IssueDetails {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub text: Option<String>,
}

impl OperationOutcome {
    /// The `diagnostics` of every issue.
    pub fn diagnostics(&self) -> impl Iterator<Item = &str> {
        self.issue.iter().filter_map(|i| i.diagnostics.as_deref())
    }

    /// MES's "The ID_TOKEN value is not valid (invalid JWT)".
    fn is_about_id_token(&self) -> bool {
        self.diagnostics().any(|d| d.contains("ID_TOKEN"))
    }
}

impl std::fmt::Display for OperationOutcome {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut first = true;
        for issue in &self.issue {
            if !first {
                f.write_str("; ")?;
            }
            first = false;
            write!(f, "{}", issue.code)?;
            if let Some(d) = &issue.diagnostics {
                write!(f, ": {d}")?;
            }
        }
        Ok(())
    }
}

/// A `Retry-After` value: delay-seconds or an HTTP date (RFC 9110 §10.2.3). A date in the past
/// is no delay.
pub fn parse_retry_after(value: &str, now: SystemTime) -> Option<Duration> {
    let value = value.trim();
    if !value.is_empty() && value.bytes().all(|b| b.is_ascii_digit()) {
        return value.parse().ok().map(Duration::from_secs);
    }
    let at = httpdate::parse_http_date(value).ok()?;
    Some(at.duration_since(now).unwrap_or(Duration::ZERO))
}

/// Delays between upload attempts: exponential with jitter, capped, never shorter than what
/// MES asked for with Retry-After.
#[derive(Debug, Clone, PartialEq)]
pub struct RetryPolicy {
    /// The delay before the first retry (without jitter).
    pub min_delay: Duration,
    /// The cap of the exponential part. Jitter adds up to as much again, so that hubs that
    /// failed together do not come back together.
    pub max_delay: Duration,
    pub factor: f32,
    pub jitter: bool,
    /// The longest Retry-After honoured, against a server asking for days.
    pub max_retry_after: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            min_delay: Duration::from_secs(2),
            max_delay: Duration::from_secs(15 * 60),
            factor: 2.0,
            jitter: true,
            max_retry_after: Duration::from_secs(60 * 60),
        }
    }
}

impl RetryPolicy {
    /// The backon builder of this policy, unlimited in attempts (the loop keeps the readings
    /// until they are sent or quarantined).
    pub fn builder(&self) -> ExponentialBuilder {
        let builder = ExponentialBuilder::new()
            .with_min_delay(self.min_delay)
            .with_max_delay(self.max_delay)
            .with_factor(self.factor)
            .without_max_times();
        if self.jitter {
            builder.with_jitter()
        } else {
            builder
        }
    }

    /// The delay before retry number `attempt` (0 for the first retry), at least
    /// `retry_after` (capped at `max_retry_after`). Deterministic: the jitter comes from
    /// `jitter_seed` (pick it at random, or derive it from the reading, per attempt).
    pub fn next_delay(
        &self,
        attempt: u32,
        retry_after: Option<Duration>,
        jitter_seed: u64,
    ) -> Duration {
        // Past this many doublings the cap is reached for any sane factor and min delay.
        let attempt = usize::try_from(attempt.min(64)).unwrap_or(64);
        let backoff = self
            .builder()
            .with_jitter_seed(jitter_seed)
            .build()
            .nth(attempt)
            .unwrap_or(self.max_delay);
        let floor = retry_after
            .unwrap_or(Duration::ZERO)
            .min(self.max_retry_after);
        backoff.max(floor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn now() -> SystemTime {
        httpdate::parse_http_date("Wed, 21 Oct 2026 07:28:00 GMT").unwrap()
    }

    fn outcome_body(code: &str, diagnostics: &str) -> Vec<u8> {
        serde_json::to_vec(&json!({
            "resourceType": "OperationOutcome",
            "issue": [{ "severity": "error", "code": code, "diagnostics": diagnostics,
                        "details": { "text": "Observation resource not valid." } }]
        }))
        .unwrap()
    }

    #[test]
    fn accepted_lists_what_was_created() {
        let body = serde_json::to_vec(&json!({
            "resourceType": "Bundle", "type": "transaction-response",
            "entry": [
                { "response": { "status": "201 Created", "location": "Observation/abc/_history/1" } },
                { "response": { "status": "200 OK", "location": "Device/dev-1" } }
            ]
        }))
        .unwrap();
        let sent = classify(200, None, &body, now()).unwrap();
        assert_eq!(sent.observation_id(), Some("abc"));
        assert_eq!(
            sent.created[1],
            Created {
                resource_type: "Device".into(),
                id: "dev-1".into(),
                status: "200 OK".into()
            }
        );
        // Accepted even when the answer is not understood: resending would duplicate.
        assert_eq!(classify(200, None, b"garbage", now()).unwrap().created, []);
    }

    #[test]
    fn statuses_are_classified() {
        let c = |status, body: &[u8]| classify(status, None, body, now()).unwrap_err();
        assert_eq!(c(401, b""), UploadError::NeedsRefresh);
        assert_eq!(
            c(
                400,
                &outcome_body("security", "The ID_TOKEN value is not valid (invalid JWT)")
            ),
            UploadError::NeedsRefresh
        );
        assert!(matches!(
            c(400, &outcome_body("invalid", "No bundle provided.")),
            UploadError::BadRequest(_)
        ));
        assert_eq!(c(403, b"{}"), UploadError::ConsentWithdrawn);
        match c(409, &outcome_body("conflict", "OID conflict")) {
            UploadError::Conflict(o) => assert_eq!(o.issue[0].code, "conflict"),
            other => panic!("{other:?}"),
        }
        match c(422, &outcome_body("value", "bad unit")) {
            UploadError::Rejected(o) => {
                assert_eq!(o.diagnostics().collect::<Vec<_>>(), ["bad unit"]);
                assert_eq!(
                    o.issue[0].details.as_ref().unwrap().text.as_deref(),
                    Some("Observation resource not valid.")
                );
            }
            other => panic!("{other:?}"),
        }
        // A 422 without a readable body is still a rejection, never a retry.
        assert_eq!(
            c(422, b"<html>"),
            UploadError::Rejected(OperationOutcome::default())
        );
        for status in [429, 500, 502, 503, 504] {
            assert_eq!(c(status, b""), UploadError::Retry { after: None });
        }
        assert_eq!(c(404, b""), UploadError::Unexpected { status: 404 });
    }

    #[test]
    fn retry_after_seconds_and_dates() {
        assert_eq!(
            classify(429, Some("30"), b"", now()).unwrap_err(),
            UploadError::Retry {
                after: Some(Duration::from_secs(30))
            }
        );
        assert_eq!(
            parse_retry_after("Wed, 21 Oct 2026 07:30:00 GMT", now()),
            Some(Duration::from_secs(120))
        );
        // RFC 850 and asctime forms are still HTTP dates.
        assert_eq!(
            parse_retry_after("Wednesday, 21-Oct-26 07:29:00 GMT", now()),
            Some(Duration::from_secs(60))
        );
        assert_eq!(
            parse_retry_after("Wed, 21 Oct 2026 07:00:00 GMT", now()),
            Some(Duration::ZERO)
        );
        assert_eq!(parse_retry_after(" 0 ", now()), Some(Duration::ZERO));
        assert_eq!(parse_retry_after("-5", now()), None);
        assert_eq!(parse_retry_after("soon", now()), None);
        assert_eq!(parse_retry_after("", now()), None);
    }

    #[test]
    fn retry_delays_grow_cap_and_jitter() {
        let plain = RetryPolicy {
            jitter: false,
            ..RetryPolicy::default()
        };
        let delays: Vec<u64> = (0..12)
            .map(|a| plain.next_delay(a, None, 0).as_secs())
            .collect();
        assert_eq!(delays, [2, 4, 8, 16, 32, 64, 128, 256, 512, 900, 900, 900]);
        assert_eq!(plain.next_delay(u32::MAX, None, 0), plain.max_delay);

        let jittered = RetryPolicy::default();
        for attempt in 0..20 {
            let base = plain.next_delay(attempt, None, 0);
            let spread: BTreeSet<Duration> = (0..50)
                .map(|seed| jittered.next_delay(attempt, None, seed))
                .collect();
            assert!(
                spread.iter().all(|d| *d >= base && *d < base * 2),
                "{spread:?}"
            );
            assert!(spread.len() > 1, "jitter spreads the delays");
            // Same seed, same delay.
            assert_eq!(
                jittered.next_delay(attempt, None, 7),
                jittered.next_delay(attempt, None, 7)
            );
        }
    }

    #[test]
    fn retry_after_is_a_floor_with_a_ceiling() {
        let p = RetryPolicy {
            jitter: false,
            ..RetryPolicy::default()
        };
        assert_eq!(
            p.next_delay(0, Some(Duration::from_secs(30)), 0),
            Duration::from_secs(30)
        );
        // A shorter Retry-After does not shorten the backoff.
        assert_eq!(
            p.next_delay(5, Some(Duration::from_secs(1)), 0),
            Duration::from_secs(64)
        );
        assert_eq!(
            p.next_delay(0, Some(Duration::from_secs(7 * 24 * 3600)), 0),
            p.max_retry_after
        );
    }

    use std::collections::BTreeSet;
}
