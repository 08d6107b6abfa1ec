//! relais-mes-sandbox: a strict local emulator of Mon espace santé (MES) pairing and of its
//! API Mesure, for tests and demos. It is the independent "other side" of the gateway's MES
//! uploader: it shares no code with the gateway's FHIR mapping.
//!
//! ```no_run
//! # async fn demo() -> Result<(), relais_mes_sandbox::SandboxError> {
//! use relais_mes_sandbox::{Sandbox, SandboxConfig};
//! let sandbox = Sandbox::start(SandboxConfig::default()).await?;
//! println!("MES sandbox at {}", sandbox.base_url());
//! sandbox.shutdown().await?;
//! # Ok(()) }
//! ```
//!
//! What it serves (see the crate README for every rule and every assumption):
//! - pairing: OAuth 2.0 authorization code + PKCE S256 with an OpenID Connect id_token,
//!   refresh-token rotation with reuse detection, revocation;
//! - API Mesure: `POST /fhir` (one measure per transaction Bundle) and
//!   `GET /fhir/Observation` (modes "all" and "last"), with the MES error table;
//! - `/admin/...` (loopback only): read back accepted data and the request log, inject faults.

#![cfg_attr(
    test,
    allow(
        clippy::unwrap_used,
        clippy::expect_used,
        clippy::panic,
        clippy::indexing_slicing
    )
)]

mod admin;
mod config;
mod error;
mod faults;
mod fhir;
mod keys;
mod net;
mod oauth;
mod server;
mod store;

pub use config::{Database, PartnerConfig, SandboxConfig, TestUser};
pub use error::SandboxError;
pub use faults::{ConsentRevocation, FaultTargets, Faults};
pub use fhir::auth::ID_TOKEN_HEADER;
pub use keys::KeyError;
pub use oauth::scope::{OPENID as SCOPE_OPENID, READ as SCOPE_READ, WRITE as SCOPE_WRITE};
pub use server::{RunningSandbox, Sandbox};
