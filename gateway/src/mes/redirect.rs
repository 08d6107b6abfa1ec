//! The loopback redirect of `relais link-mes`: a one-shot HTTP listener on the redirect URI
//! that takes `?code=&state=` from the browser, answers a short French page and hands the code
//! over.
//!
//! A request with another `state` is answered with an error page and the wait goes on: it is
//! either forged (CSRF) or from an old tab, and the genuine redirect may still come.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use axum::Router;
use axum::extract::{Query, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use tokio::net::TcpListener;
use tokio::sync::mpsc;
use url::{Host, Url};

/// Why no code came back.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RedirectError {
    #[error("the redirect URI {0} is not a loopback http:// URI")]
    NotLoopback(String),
    #[error("cannot listen on {addr}: {reason}")]
    Bind { addr: SocketAddr, reason: String },
    #[error("no answer from the browser within {0:?}")]
    TimedOut(Duration),
    /// The user refused the consent (`error=access_denied`).
    #[error("consent refused")]
    ConsentRefused,
    /// Another OAuth error came back.
    #[error("authorization failed: {0}")]
    Authorization(String),
    #[error("the listener stopped")]
    Stopped,
}

/// A bound listener, not yet serving.
#[derive(Debug)]
pub struct RedirectListener {
    listener: TcpListener,
    redirect_uri: Url,
}

const PAGE_OK: &str = "Compte Mon espace santé relié. Vous pouvez fermer cette page.";
const PAGE_REFUSED: &str = "Vous avez refusé l'accès à votre compte Mon espace santé : le compte n'est pas relié. Vous pouvez fermer cette page et relancer la liaison.";
const PAGE_FAILED: &str = "La liaison avec Mon espace santé a échoué. Vous pouvez fermer cette page et relancer la liaison.";
const PAGE_BAD_STATE: &str = "Cette réponse ne correspond pas à la liaison en cours : elle est ignorée. Relancez la liaison depuis le hub.";

impl RedirectListener {
    /// Binds the host and port of `redirect_uri`. Without a port, an ephemeral one is taken
    /// (loopback redirects may use any port, RFC 8252 §7.3): use
    /// [`RedirectListener::redirect_uri`] in the authorization request.
    pub async fn bind(redirect_uri: &Url) -> Result<Self, RedirectError> {
        let not_loopback = || RedirectError::NotLoopback(redirect_uri.to_string());
        if redirect_uri.scheme() != "http" {
            return Err(not_loopback());
        }
        let ip = match redirect_uri.host() {
            Some(Host::Ipv4(ip)) => IpAddr::V4(ip),
            Some(Host::Ipv6(ip)) => IpAddr::V6(ip),
            Some(Host::Domain("localhost")) => IpAddr::V4(Ipv4Addr::LOCALHOST),
            _ => return Err(not_loopback()),
        };
        if !ip.is_loopback() {
            return Err(not_loopback());
        }
        let addr = SocketAddr::new(ip, redirect_uri.port().unwrap_or(0));
        let listener = TcpListener::bind(addr)
            .await
            .map_err(|e| RedirectError::Bind {
                addr,
                reason: e.to_string(),
            })?;
        let port = listener
            .local_addr()
            .map_err(|e| RedirectError::Bind {
                addr,
                reason: e.to_string(),
            })?
            .port();
        let mut actual = redirect_uri.clone();
        actual.set_port(Some(port)).map_err(|()| not_loopback())?;
        Ok(Self {
            listener,
            redirect_uri: actual,
        })
    }

    /// The redirect URI with the port actually listened on.
    pub fn redirect_uri(&self) -> &Url {
        &self.redirect_uri
    }

    /// Serves until the redirect with `expected_state` comes (its code) or `timeout` passes.
    pub async fn wait_for_code(
        self,
        expected_state: &str,
        timeout: Duration,
    ) -> Result<String, RedirectError> {
        let (tx, mut rx) = mpsc::channel(1);
        let shared = Arc::new(Shared {
            expected_state: expected_state.to_owned(),
            done: Mutex::new(Some(tx)),
        });
        let app = Router::new()
            .route(self.redirect_uri.path(), axum::routing::get(callback))
            .with_state(shared);
        let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
        let server = tokio::spawn(async move {
            axum::serve(self.listener, app)
                .with_graceful_shutdown(async move {
                    let _ = stop_rx.await;
                })
                .await
        });
        let outcome = match tokio::time::timeout(timeout, rx.recv()).await {
            Ok(Some(result)) => result,
            Ok(None) => Err(RedirectError::Stopped),
            Err(_) => Err(RedirectError::TimedOut(timeout)),
        };
        let _ = stop_tx.send(());
        // The page was written before the result was sent; a browser keeping the connection
        // open must not hold the command up.
        let abort = server.abort_handle();
        if tokio::time::timeout(Duration::from_secs(2), server)
            .await
            .is_err()
        {
            abort.abort();
        }
        outcome
    }
}

struct Shared {
    expected_state: String,
    done: Mutex<Option<mpsc::Sender<Result<String, RedirectError>>>>,
}

impl Shared {
    fn finish(&self, result: Result<String, RedirectError>) {
        let sender = self
            .done
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        if let Some(sender) = sender {
            let _ = sender.try_send(result);
        }
    }
}

async fn callback(
    State(shared): State<Arc<Shared>>,
    Query(query): Query<HashMap<String, String>>,
) -> Response {
    if query.get("state").map(String::as_str) != Some(shared.expected_state.as_str()) {
        return page(StatusCode::BAD_REQUEST, PAGE_BAD_STATE);
    }
    if let Some(error) = query.get("error") {
        if error == "access_denied" {
            shared.finish(Err(RedirectError::ConsentRefused));
            return page(StatusCode::OK, PAGE_REFUSED);
        }
        // Only the error code is kept: the description is the provider's free text.
        let code: String = error
            .chars()
            .filter(|c| c.is_ascii_alphanumeric() || *c == '_')
            .take(64)
            .collect();
        shared.finish(Err(RedirectError::Authorization(code)));
        return page(StatusCode::BAD_REQUEST, PAGE_FAILED);
    }
    match query.get("code").filter(|c| !c.is_empty()) {
        Some(code) => {
            shared.finish(Ok(code.clone()));
            page(StatusCode::OK, PAGE_OK)
        }
        None => page(StatusCode::BAD_REQUEST, PAGE_FAILED),
    }
}

fn page(status: StatusCode, message: &str) -> Response {
    let html = format!(
        "<!doctype html>\n<html lang=\"fr\"><head><meta charset=\"utf-8\">\
         <title>relais — Mon espace santé</title></head>\
         <body><p>{message}</p></body></html>\n"
    );
    (
        status,
        [
            (header::CONTENT_TYPE, "text/html; charset=utf-8"),
            (header::CACHE_CONTROL, "no-store"),
            (header::CONNECTION, "close"),
        ],
        html,
    )
        .into_response()
}
