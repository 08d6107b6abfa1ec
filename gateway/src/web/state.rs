//! What every handler shares, and the routes.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use axum::Router;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use tokio::sync::Notify;

use crate::hub::config::Config;
use crate::hub::control::Control;
use crate::hub::ingest::SharedStore;
use crate::mes::PendingPairing;
use crate::store::{MemberId, StoreError};
use crate::web::auth::{LoginLimiter, Sessions};
use crate::web::{api, auth, pages};

/// How long the browser may take at MES to give the consent.
pub const PAIRING_TIMEOUT: Duration = Duration::from_secs(15 * 60);

/// A MES pairing started from the page, waiting for the browser to come back.
#[derive(Debug)]
pub struct StartedPairing {
    /// Whose account is being linked.
    pub member: MemberId,
    /// What finishing needs.
    pub pending: PendingPairing,
    /// When it was started.
    pub at: Instant,
}

/// A scan started from the devices page.
#[derive(Debug, Clone, Default)]
pub struct ScanView {
    /// Still listening.
    pub running: bool,
    /// The health devices heard so far, by address.
    pub found: Vec<crate::ble::Seen>,
    /// Why it could not start.
    pub error: Option<crate::hub::control::ControlError>,
}

/// The state of the web server.
#[derive(Debug)]
pub struct Shared {
    /// The hub's store.
    pub store: SharedStore,
    /// Actions on the running hub.
    pub control: Control,
    /// The scan started from the page, as it goes.
    pub scan: Mutex<ScanView>,
    /// The hub's configuration.
    pub config: Config,
    /// Where the server listens (for the MES redirect address).
    pub addr: SocketAddr,
    /// Open sessions.
    pub sessions: Sessions,
    /// Failed logins per client address.
    pub limiter: Mutex<LoginLimiter>,
    /// MES pairings under way, by their OAuth2 `state`.
    pub pairings: Mutex<HashMap<String, StartedPairing>>,
    /// Wakes the sinks when readings become deliverable.
    pub wake: Option<Arc<Notify>>,
}

/// Handlers' state.
pub type AppState = Arc<Shared>;

impl Shared {
    /// The state for a server on `addr`.
    pub fn new(
        config: &Config,
        control: Control,
        wake: Option<Arc<Notify>>,
        addr: SocketAddr,
    ) -> AppState {
        Arc::new(Self {
            store: Arc::clone(control.store()),
            control,
            scan: Mutex::new(ScanView::default()),
            config: config.clone(),
            addr,
            sessions: Sessions::default(),
            limiter: Mutex::new(LoginLimiter::default()),
            pairings: Mutex::new(HashMap::new()),
            wake,
        })
    }

    /// Tells the sinks there is something new to deliver.
    pub fn wake_sinks(&self) {
        if let Some(wake) = &self.wake {
            wake.notify_one();
        }
    }
}

/// A lock that survives a panicked holder: the maps it guards stay consistent entry by entry.
pub fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Every route.
pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/", get(pages::home))
        .route("/setup", get(auth::setup_page).post(auth::setup))
        .route("/login", get(auth::login_page).post(auth::login))
        .route("/logout", post(auth::logout))
        .route("/language", post(auth::language))
        .route(
            "/members",
            get(pages::members::page).post(pages::members::add),
        )
        .route("/members/{id}/link", post(pages::members::link))
        .route("/members/{id}/unlink", post(pages::members::unlink))
        .route("/members/{id}/readings", get(pages::readings::page))
        .route("/mes/callback", get(pages::members::callback))
        .route("/inbox", get(pages::inbox::page))
        .route("/inbox/{id}/assign", post(pages::inbox::assign))
        .route("/status", get(pages::status::page))
        .route("/settings", get(pages::settings::page))
        .route("/settings/zone", post(pages::settings::save_zone))
        .route("/settings/mqtt", post(pages::settings::save_mqtt))
        .route("/devices", get(pages::devices::page))
        .route("/devices/found", get(pages::devices::found))
        .route("/devices/scan", post(pages::devices::scan))
        .route("/devices/pair", post(pages::devices::pair))
        .route("/devices/sync", post(pages::devices::sync))
        .route("/devices/remove", post(pages::devices::remove))
        .route("/devices/rename", post(pages::devices::rename))
        .route("/devices.js", get(pages::devices::script))
        .route("/style.css", get(pages::style))
        .merge(api::routes())
        .fallback(pages::not_found)
        .layer(axum::middleware::map_response(security_headers))
        .with_state(state)
}

/// On every answer: no framing by other sites, no type guessing, no address sent to other
/// sites, and nothing kept in the browser's cache (pages hold health data).
async fn security_headers(mut response: Response) -> Response {
    use axum::http::{HeaderValue, header};
    let headers = response.headers_mut();
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static("frame-ancestors 'none'"),
    );
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("same-origin"),
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

/// Errors of the handlers that are not the user's.
#[derive(Debug, thiserror::Error)]
pub enum WebError {
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl IntoResponse for WebError {
    fn into_response(self) -> Response {
        match self {
            Self::Store(StoreError::NotFound(_)) => pages::not_found_response(),
            Self::Store(e) => {
                tracing::error!("web page: {e}");
                (
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "La base de données du hub ne répond pas. Redémarrez le hub ; si cela \
                     recommence, consultez son journal. / The hub's database failed: restart \
                     the hub; if it happens again, read its log.",
                )
                    .into_response()
            }
        }
    }
}
