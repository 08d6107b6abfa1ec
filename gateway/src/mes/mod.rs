//! The Mon espace santé (MES) client: pairing a household member's MES account (OAuth 2.0
//! authorization code + PKCE S256, with an OpenID Connect id_token carrying the idPe), the
//! loopback redirect `relais link-mes` listens on, and the upload of transaction Bundles to
//! API Mesures with the answer classified for the hub's upload loop, and unlinking ([`unlink`]).
//!
//! Tokens and health values never appear in Debug output, errors or logs.

pub mod config;
pub mod pairing;
pub mod redirect;
pub mod sent;
pub mod unlink;
pub mod upload;

pub use config::{MesConfig, Secret};
pub use pairing::{PairingClient, PairingError, PendingPairing, Tokens};
pub use redirect::{RedirectError, RedirectListener};
pub use upload::{
    Created, OperationOutcome, RetryPolicy, Sent, UploadError, Uploader, parse_retry_after,
};

/// A configuration MES calls cannot be made with.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MesConfigError {
    #[error("invalid URL {url:?}: {reason}")]
    Url { url: String, reason: String },
    #[error("{0} is neither https nor on this machine")]
    Insecure(String),
    #[error("HTTP client: {0}")]
    HttpClient(String),
}
