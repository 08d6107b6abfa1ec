//! Starting and stopping a sandbox, and the router that ties the route groups together.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::middleware::{self, Next};
use axum::response::Response;
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use crate::config::SandboxConfig;
use crate::error::SandboxError;
use crate::faults::{AppliedFault, FaultHandle, Faults};
use crate::fhir::outcome::{IssueType, OperationOutcome};
use crate::fhir::time::Patterns;
use crate::keys::SigningKey;
use crate::net::{PeerInfo, ResettableListener};
use crate::store::log::NewRequest;
use crate::store::{Store, now_ms};
use crate::{admin, faults, fhir, oauth};

/// Everything the handlers share.
#[derive(Debug)]
pub(crate) struct AppState {
    pub(crate) config: SandboxConfig,
    pub(crate) store: Store,
    pub(crate) key: SigningKey,
    pub(crate) faults: FaultHandle,
    pub(crate) patterns: Patterns,
    /// `http://host:port`, no trailing slash.
    pub(crate) base_url: String,
    /// `iss` of the id_tokens.
    pub(crate) issuer: String,
}

/// Starts sandboxes.
#[derive(Debug, Clone, Copy)]
pub struct Sandbox;

impl Sandbox {
    /// Binds `config.listen` (default `127.0.0.1:0`), opens the database and serves until
    /// [`RunningSandbox::shutdown`] (or until the handle is dropped).
    pub async fn start(config: SandboxConfig) -> Result<RunningSandbox, SandboxError> {
        config.validate().map_err(SandboxError::Config)?;
        let listener =
            TcpListener::bind(config.listen)
                .await
                .map_err(|source| SandboxError::Bind {
                    addr: config.listen,
                    source,
                })?;
        let local_addr = listener.local_addr().map_err(|source| SandboxError::Bind {
            addr: config.listen,
            source,
        })?;
        let base_url = config
            .public_url
            .clone()
            .map(|u| u.trim_end_matches('/').to_owned())
            .unwrap_or_else(|| format!("http://{local_addr}"));
        let store =
            Store::open(&config.database).map_err(|e| SandboxError::Database(e.to_string()))?;
        let key = SigningKey::load_or_create(&store)?;
        let patterns = Patterns::new().map_err(|e| SandboxError::Config(e.to_string()))?;
        let state = Arc::new(AppState {
            faults: FaultHandle::new(config.faults.clone()),
            config,
            store,
            key,
            patterns,
            issuer: base_url.clone(),
            base_url: base_url.clone(),
        });
        let app = router(Arc::clone(&state));
        let (stop, stopped) = oneshot::channel::<()>();
        let serve = axum::serve(
            ResettableListener::new(listener),
            app.into_make_service_with_connect_info::<PeerInfo>(),
        )
        .with_graceful_shutdown(async move {
            let _ = stopped.await;
        });
        let task = tokio::spawn(async move { serve.await });
        tracing::info!(%base_url, "MES sandbox listening");
        Ok(RunningSandbox {
            base_url,
            local_addr,
            state,
            stop: Some(stop),
            task: Some(task),
        })
    }
}

fn router(state: Arc<AppState>) -> Router {
    Router::new()
        .merge(oauth::routes())
        .merge(fhir::routes())
        .merge(admin::routes())
        .fallback(not_found)
        .layer(middleware::from_fn_with_state(
            Arc::clone(&state),
            faults::inject,
        ))
        .layer(middleware::from_fn_with_state(
            Arc::clone(&state),
            log_requests,
        ))
        .with_state(state)
}

async fn not_found() -> Response {
    OperationOutcome::error(IssueType::NotFound, "Unknown endpoint.")
        .into_response_with(StatusCode::NOT_FOUND)
}

/// Records every non-admin request in the request log.
async fn log_requests(
    State(state): State<Arc<AppState>>,
    request: Request,
    next: Next,
) -> Response {
    let path = request.uri().path().to_owned();
    if path == "/admin" || path.starts_with("/admin/") {
        return next.run(request).await;
    }
    let method = request.method().to_string();
    let query = request.uri().query().map(str::to_owned);
    let at = now_ms();
    let started = Instant::now();
    let response = next.run(request).await;
    let fault = response.extensions().get::<AppliedFault>().map(|f| f.0);
    let entry = NewRequest {
        at,
        method: &method,
        path: &path,
        query: query.as_deref(),
        status: response.status().as_u16(),
        fault,
        duration_ms: i64::try_from(started.elapsed().as_millis()).unwrap_or(i64::MAX),
    };
    if let Err(e) = state.store.log_request(&entry) {
        tracing::warn!(error = %e, "cannot log request");
    }
    tracing::debug!(%method, %path, status = entry.status, ?fault, "request");
    response
}

/// A sandbox being served. Dropping it stops the server in the background.
#[derive(Debug)]
pub struct RunningSandbox {
    base_url: String,
    local_addr: SocketAddr,
    state: Arc<AppState>,
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<std::io::Result<()>>>,
}

impl RunningSandbox {
    /// `http://127.0.0.1:PORT` (or the configured public URL), without a trailing slash.
    pub fn base_url(&self) -> &str {
        &self.base_url
    }

    /// The API Mesure base: `<base_url>/fhir`.
    pub fn fhir_base_url(&self) -> String {
        format!("{}/fhir", self.base_url)
    }

    /// The address actually bound.
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// The `iss` of the id_tokens.
    pub fn issuer(&self) -> &str {
        &self.state.issuer
    }

    /// The configuration the sandbox runs with.
    pub fn config(&self) -> &SandboxConfig {
        &self.state.config
    }

    /// The faults in force (with the counts that remain).
    pub fn faults(&self) -> Faults {
        self.state.faults.get()
    }

    /// Replaces the faults, as `POST /admin/faults` does.
    pub fn set_faults(&self, faults: Faults) -> Result<(), SandboxError> {
        faults.validate().map_err(SandboxError::Config)?;
        self.state.faults.set(faults);
        Ok(())
    }

    /// Stops accepting connections, lets requests in flight finish (5 s at most) and returns.
    pub async fn shutdown(mut self) -> Result<(), SandboxError> {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        let Some(mut task) = self.task.take() else {
            return Ok(());
        };
        match tokio::time::timeout(Duration::from_secs(5), &mut task).await {
            Ok(Ok(Ok(()))) => Ok(()),
            Ok(Ok(Err(e))) => Err(SandboxError::Serve(e.to_string())),
            Ok(Err(e)) => Err(SandboxError::Serve(e.to_string())),
            Err(_) => {
                task.abort();
                Ok(())
            }
        }
    }
}

impl Drop for RunningSandbox {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}
