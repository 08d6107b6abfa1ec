//! Fault injection: the ways a real MES can misbehave, made reproducible.
//!
//! Faults are set at start ([`crate::SandboxConfig::faults`]) and replaced at run time with
//! `POST /admin/faults`. Transport faults (latency, 5xx, 429, connection reset) are applied by a
//! middleware to the targeted route groups; the token and consent faults are consulted where
//! tokens and consents are checked.

use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::{ConnectInfo, Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::Response;
use rand::rngs::StdRng;
use rand::{RngExt, SeedableRng};
use serde::{Deserialize, Serialize};

use crate::fhir::outcome::{IssueType, OperationOutcome};
use crate::net::PeerInfo;
use crate::server::AppState;

/// The faults in force. Every field defaults to "no fault".
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Faults {
    /// Added before every targeted request is handled, in milliseconds.
    pub latency_ms: u64,
    /// Fraction (0.0 to 1.0) of targeted requests answered with `server_error_status`. The
    /// draws come from a generator seeded with `seed`, so a run is reproducible.
    pub server_error_rate: f64,
    /// Status of the injected server errors (500 to 599). Default 503.
    pub server_error_status: u16,
    /// Seed of the server-error draws. Setting the faults restarts the sequence.
    pub seed: u64,
    /// The next N targeted requests are answered `429 Too Many Requests`.
    pub throttle_next: u32,
    /// `Retry-After` of the 429 answers, in seconds. Default 30.
    pub retry_after_secs: u64,
    /// The next N targeted requests are handled (a write IS committed), then the connection is
    /// reset after part of the response was sent.
    pub reset_next: u32,
    /// Access tokens older than this are refused (401), whatever their announced lifetime.
    pub access_token_max_age_secs: Option<u64>,
    /// Users (by idPe) whose consent is withdrawn; their calls get 403 consent.
    pub consent_revoked: Vec<ConsentRevocation>,
    /// Which route groups the transport faults apply to.
    pub targets: FaultTargets,
}

impl Default for Faults {
    fn default() -> Self {
        Self {
            latency_ms: 0,
            server_error_rate: 0.0,
            server_error_status: 503,
            seed: 0,
            throttle_next: 0,
            retry_after_secs: 30,
            reset_next: 0,
            access_token_max_age_secs: None,
            consent_revoked: Vec::new(),
            targets: FaultTargets::default(),
        }
    }
}

impl Faults {
    /// Rejects values that cannot be honoured.
    pub fn validate(&self) -> Result<(), String> {
        if !(0.0..=1.0).contains(&self.server_error_rate) {
            return Err(format!(
                "server_error_rate {} is not between 0 and 1",
                self.server_error_rate
            ));
        }
        if !(500..=599).contains(&self.server_error_status) {
            return Err(format!(
                "server_error_status {} is not a 5xx status",
                self.server_error_status
            ));
        }
        Ok(())
    }

    /// Whether the consent of `id_pe` for reading (`write == false`) or writing is withdrawn.
    pub fn consent_withdrawn(&self, id_pe: &str, write: bool) -> bool {
        self.consent_revoked
            .iter()
            .any(|r| r.id_pe == id_pe && if write { r.write } else { r.read })
    }
}

/// A withdrawn consent.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConsentRevocation {
    /// The user's idPe.
    pub id_pe: String,
    /// Reading is refused.
    #[serde(default = "yes")]
    pub read: bool,
    /// Writing is refused.
    #[serde(default = "yes")]
    pub write: bool,
}

fn yes() -> bool {
    true
}

/// Route groups that transport faults can target.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct FaultTargets {
    /// API Mesure (`/fhir/...`). Default on.
    pub fhir: bool,
    /// The token and revocation endpoints (`/oauth/token`, `/oauth/revoke`). Default off.
    pub oauth_token: bool,
}

impl Default for FaultTargets {
    fn default() -> Self {
        Self {
            fhir: true,
            oauth_token: false,
        }
    }
}

/// Faults plus the run-time state they need (remaining counts, the seeded generator).
#[derive(Debug)]
pub(crate) struct FaultState {
    faults: Faults,
    rng: StdRng,
}

impl FaultState {
    pub(crate) fn new(faults: Faults) -> Self {
        let rng = StdRng::seed_from_u64(faults.seed);
        Self { faults, rng }
    }

    pub(crate) fn current(&self) -> Faults {
        self.faults.clone()
    }

    /// Decides the transport fault of one targeted request, consuming counts and draws.
    fn draw(&mut self) -> (Duration, Option<TransportFault>) {
        let latency = Duration::from_millis(self.faults.latency_ms);
        if self.faults.throttle_next > 0 {
            self.faults.throttle_next -= 1;
            return (
                latency,
                Some(TransportFault::Throttle(self.faults.retry_after_secs)),
            );
        }
        if self.faults.server_error_rate > 0.0 {
            let draw: f64 = self.rng.random();
            if draw < self.faults.server_error_rate {
                return (
                    latency,
                    Some(TransportFault::ServerError(self.faults.server_error_status)),
                );
            }
        }
        if self.faults.reset_next > 0 {
            self.faults.reset_next -= 1;
            return (latency, Some(TransportFault::Reset));
        }
        (latency, None)
    }
}

/// Shared handle on the fault state.
#[derive(Debug, Clone)]
pub(crate) struct FaultHandle(Arc<Mutex<FaultState>>);

impl FaultHandle {
    pub(crate) fn new(faults: Faults) -> Self {
        Self(Arc::new(Mutex::new(FaultState::new(faults))))
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, FaultState> {
        // A panic while holding this lock cannot leave the plain data inconsistent.
        self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Replaces the faults and restarts the seeded sequence.
    pub(crate) fn set(&self, faults: Faults) {
        *self.lock() = FaultState::new(faults);
    }

    /// The faults in force, with the counts that remain.
    pub(crate) fn get(&self) -> Faults {
        self.lock().current()
    }

    fn draw(&self) -> (Duration, Option<TransportFault>) {
        self.lock().draw()
    }
}

/// What the middleware does instead of (or on top of) answering normally.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum TransportFault {
    Throttle(u64),
    ServerError(u16),
    Reset,
}

/// Marks a response with the fault applied to it, for the request log.
#[derive(Debug, Clone, Copy)]
pub(crate) struct AppliedFault(pub(crate) &'static str);

/// Which group a path belongs to, for [`FaultTargets`].
fn targeted(targets: &FaultTargets, path: &str) -> bool {
    (targets.fhir && (path == "/fhir" || path.starts_with("/fhir/")))
        || (targets.oauth_token && (path == "/oauth/token" || path == "/oauth/revoke"))
}

/// Middleware applying latency, 429, 5xx and connection resets.
pub(crate) async fn inject(
    State(state): State<Arc<AppState>>,
    request: Request,
    next: Next,
) -> Response {
    let targets = state.faults.get().targets;
    if !targeted(&targets, request.uri().path()) {
        return next.run(request).await;
    }
    let (latency, fault) = state.faults.draw();
    if !latency.is_zero() {
        tokio::time::sleep(latency).await;
    }
    match fault {
        None => next.run(request).await,
        Some(TransportFault::Throttle(retry_after)) => {
            tracing::debug!(retry_after, "fault: 429");
            let mut response = OperationOutcome::error(
                IssueType::Throttled,
                "Too many requests (sandbox fault injection).",
            )
            .into_response_with(StatusCode::TOO_MANY_REQUESTS);
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(retry_after));
            response.extensions_mut().insert(AppliedFault("throttle"));
            response
        }
        Some(TransportFault::ServerError(status)) => {
            tracing::debug!(status, "fault: server error");
            let status = StatusCode::from_u16(status).unwrap_or(StatusCode::SERVICE_UNAVAILABLE);
            let mut response = OperationOutcome::error(
                IssueType::Transient,
                "Service unavailable (sandbox fault injection).",
            )
            .into_response_with(status);
            response
                .extensions_mut()
                .insert(AppliedFault("server_error"));
            response
        }
        Some(TransportFault::Reset) => {
            let peer = request.extensions().get::<ConnectInfo<PeerInfo>>().cloned();
            let response = next.run(request).await;
            tracing::debug!("fault: connection reset mid-response");
            match peer {
                Some(ConnectInfo(peer)) => cut_response(response, &peer).await,
                None => response,
            }
        }
    }
}

/// Sends the head and about half of the body of `response`, then fails the body so the server
/// drops the connection, which the armed [`PeerInfo`] turns into a TCP reset.
async fn cut_response(response: Response, peer: &PeerInfo) -> Response {
    let (mut parts, body) = response.into_parts();
    let bytes = match axum::body::to_bytes(body, usize::MAX).await {
        Ok(bytes) => bytes,
        Err(_) => Bytes::new(),
    };
    let full_len = bytes.len();
    let first = bytes.slice(..full_len / 2);
    parts
        .headers
        .insert(header::CONTENT_LENGTH, HeaderValue::from(full_len.max(1)));
    parts.extensions.insert(AppliedFault("connection_reset"));
    peer.arm_reset();
    let stream = futures_util::stream::unfold(0u8, move |step| {
        let first = first.clone();
        async move {
            match step {
                0 => Some((Ok::<Bytes, std::io::Error>(first), 1)),
                1 => {
                    // Let the partial body reach the client before the reset.
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    Some((
                        Err(std::io::Error::new(
                            std::io::ErrorKind::ConnectionReset,
                            "sandbox fault: connection reset mid-response",
                        )),
                        2,
                    ))
                }
                _ => None,
            }
        }
    });
    Response::from_parts(parts, Body::from_stream(stream))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_seed_gives_same_server_error_sequence() {
        let faults = Faults {
            server_error_rate: 0.5,
            seed: 7,
            ..Faults::default()
        };
        let run = |f: &Faults| {
            let mut s = FaultState::new(f.clone());
            (0..64).map(|_| s.draw().1.is_some()).collect::<Vec<_>>()
        };
        let a = run(&faults);
        assert_eq!(a, run(&faults));
        assert!(a.iter().any(|x| *x) && a.iter().any(|x| !*x));
    }

    #[test]
    fn throttle_count_is_consumed() {
        let mut s = FaultState::new(Faults {
            throttle_next: 2,
            ..Faults::default()
        });
        assert_eq!(s.draw().1, Some(TransportFault::Throttle(30)));
        assert_eq!(s.draw().1, Some(TransportFault::Throttle(30)));
        assert_eq!(s.draw().1, None);
    }

    #[test]
    fn rate_outside_unit_interval_is_refused() {
        let f = Faults {
            server_error_rate: 1.5,
            ..Faults::default()
        };
        assert!(f.validate().is_err());
    }
}
