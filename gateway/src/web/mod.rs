//! The household's web page and its JSON API, served by the hub when `[web]` is enabled.
//!
//! Server-rendered HTML (maud), French by default, English on request; JavaScript only for
//! the live scan progress. Everything but the first-run setup and the login needs the
//! administrator's session; every form carries the session's CSRF token.
//!
//! - [`state`]: what the handlers share, and the router.
//! - [`auth`]: setup, login, sessions, CSRF, login rate limiting.
//! - [`i18n`]: the French and English texts.
//! - [`layout`]: the page frame (header, navigation, language switch).
//! - [`pages`]: one module per area of the page.
//! - [`charts`]: server-rendered SVG charts.
//! - [`api`]: the JSON API and its OpenAPI description.

pub mod api;
pub mod auth;
pub mod charts;
pub mod i18n;
pub mod layout;
pub mod pages;
pub mod state;

use std::net::SocketAddr;
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use crate::hub::config::Config;
use crate::hub::control::Control;

pub use auth::set_admin_password;

/// `[web]`
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct WebSection {
    /// Serve the web page.
    pub enabled: bool,
    /// Address and port to listen on.
    pub listen: String,
    /// Accept a listen address other than loopback (the page is then reachable from the
    /// network: put it behind TLS).
    pub allow_remote: bool,
}

impl Default for WebSection {
    fn default() -> Self {
        Self {
            enabled: false,
            listen: "127.0.0.1:8080".to_owned(),
            allow_remote: false,
        }
    }
}

impl WebSection {
    /// The address to listen on, refused when it is not loopback unless `allow_remote`.
    pub fn listen_addr(&self) -> Result<SocketAddr, String> {
        let addr: SocketAddr = self.listen.parse().map_err(|e| {
            format!(
                "web.listen {}: {e} (expected an address and port, as in 127.0.0.1:8080)",
                self.listen
            )
        })?;
        if !addr.ip().is_loopback() && !self.allow_remote {
            return Err(format!(
                "web.listen {addr} is reachable from the network: set web.allow_remote = true \
                 to allow it, or listen on 127.0.0.1"
            ));
        }
        Ok(addr)
    }
}

/// A started web server.
#[derive(Debug)]
pub struct Serving {
    /// Where it listens (the real port when the configuration said 0).
    pub addr: SocketAddr,
    /// Ends when `stop` is cancelled and the open requests are answered.
    pub task: tokio::task::JoinHandle<()>,
}

/// Binds the listen address of `config.web` and serves until `stop` is cancelled. Actions go
/// through `control`; `wake` is notified when a member is linked (their waiting readings can
/// go).
pub async fn start(
    config: &Config,
    control: Control,
    wake: Option<Arc<Notify>>,
    stop: CancellationToken,
) -> anyhow::Result<Serving> {
    let addr = config.web.listen_addr().map_err(anyhow::Error::msg)?;
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|e| anyhow::anyhow!("the web page cannot listen on {addr}: {e}"))?;
    let addr = listener.local_addr()?;
    let state = state::Shared::new(config, control, wake, addr);
    let app = state::router(state).into_make_service_with_connect_info::<SocketAddr>();
    tracing::info!("web page on http://{addr}/");
    let task = tokio::spawn(async move {
        if let Err(e) = axum::serve(listener, app)
            .with_graceful_shutdown(stop.cancelled_owned())
            .await
        {
            tracing::error!("the web server stopped: {e}");
        }
    });
    Ok(Serving { addr, task })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_network_address_needs_allow_remote() {
        let mut web = WebSection::default();
        assert!(web.listen_addr().unwrap().ip().is_loopback());
        web.listen = "0.0.0.0:8080".into();
        let err = web.listen_addr().unwrap_err();
        assert!(err.contains("allow_remote"), "{err}");
        web.allow_remote = true;
        assert!(web.listen_addr().is_ok());
        web.listen = "nowhere".into();
        assert!(web.listen_addr().is_err());
    }
}
