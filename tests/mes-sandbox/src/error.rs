//! Why a sandbox could not start or stop.

use std::net::SocketAddr;

use crate::keys::KeyError;

/// Errors of [`crate::Sandbox::start`] and [`crate::RunningSandbox`].
#[derive(Debug, thiserror::Error)]
pub enum SandboxError {
    /// The configuration is inconsistent.
    #[error("invalid sandbox configuration: {0}")]
    Config(String),
    /// The listen address could not be bound.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// The address asked for.
        addr: SocketAddr,
        /// The OS error.
        source: std::io::Error,
    },
    /// The SQLite database could not be opened or initialised.
    #[error("sandbox database: {0}")]
    Database(String),
    /// The id_token signing key could not be made ready.
    #[error(transparent)]
    Key(#[from] KeyError),
    /// The server task failed.
    #[error("sandbox server: {0}")]
    Serve(String),
}
