//! Who may use the page: the first-run setup creating the administrator, the login, the
//! server-side sessions, the CSRF tokens, and login rate limiting.
//!
//! Every visitor gets a session (an opaque random id in an `HttpOnly`, `SameSite=Strict`
//! cookie) so the setup and login forms carry a CSRF token too; signing in replaces it with a
//! new one. Sessions live in memory: restarting the hub signs everyone out.

use std::collections::{HashMap, VecDeque};
use std::net::{IpAddr, SocketAddr};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use argon2::Argon2;
use argon2::password_hash::{PasswordHash, PasswordHasher as _, PasswordVerifier as _, SaltString};
use axum::extract::{ConnectInfo, Form, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use maud::html;
use serde::Deserialize;

use crate::hub::ingest::with_store;
use crate::store::web_admin::WebAdmin;
use crate::store::{Store, StoreError};
use crate::web::i18n::{LANG_COOKIE, Lang, t};
use crate::web::layout::{self, Cx};
use crate::web::state::{AppState, WebError, lock};

/// The session cookie.
pub const SESSION_COOKIE: &str = "relais_session";
/// A signed-in session ends after this long without a request.
pub const SESSION_IDLE: Duration = Duration::from_secs(2 * 3600);
/// Failed logins allowed per client address in [`LIMIT_WINDOW`].
pub const LIMIT_FAILURES: usize = 5;
/// See [`LIMIT_FAILURES`].
pub const LIMIT_WINDOW: Duration = Duration::from_secs(5 * 60);
/// The shortest password accepted at setup.
pub const MIN_PASSWORD_CHARS: usize = 8;
/// Sessions kept at most (the oldest go first): a flood of visitors cannot fill the memory.
const MAX_SESSIONS: usize = 10_000;

/// A session.
#[derive(Debug, Clone)]
pub struct Session {
    /// The token every form and API write must bring back.
    pub csrf: String,
    /// Signed in as the administrator.
    pub admin: bool,
    /// Ends when not used by then.
    pub expires: Instant,
}

/// The open sessions.
#[derive(Debug, Default)]
pub struct Sessions(Mutex<HashMap<String, Session>>);

fn random_token() -> String {
    // Two v4 UUIDs: 244 bits from the system's CSPRNG.
    format!(
        "{}{}",
        uuid::Uuid::new_v4().simple(),
        uuid::Uuid::new_v4().simple()
    )
}

impl Sessions {
    /// A new session; its id.
    pub fn open(&self, admin: bool) -> (String, Session) {
        let now = Instant::now();
        let mut map = lock(&self.0);
        map.retain(|_, s| s.expires > now);
        if map.len() >= MAX_SESSIONS
            && let Some(oldest) = map
                .iter()
                .min_by_key(|(_, s)| s.expires)
                .map(|(k, _)| k.clone())
        {
            map.remove(&oldest);
        }
        let session = Session {
            csrf: random_token(),
            admin,
            expires: now + SESSION_IDLE,
        };
        let id = random_token();
        map.insert(id.clone(), session.clone());
        (id, session)
    }

    /// The live session `id`, its expiry pushed back.
    pub fn get(&self, id: &str) -> Option<Session> {
        let now = Instant::now();
        let mut map = lock(&self.0);
        let session = map.get_mut(id)?;
        if session.expires <= now {
            map.remove(id);
            return None;
        }
        session.expires = now + SESSION_IDLE;
        Some(session.clone())
    }

    /// Ends a session.
    pub fn close(&self, id: &str) {
        lock(&self.0).remove(id);
    }
}

/// Failed logins per client address, in a sliding window.
#[derive(Debug, Default)]
pub struct LoginLimiter(HashMap<IpAddr, VecDeque<Instant>>);

impl LoginLimiter {
    /// Whether `ip` has used up its attempts.
    pub fn blocked(&mut self, ip: IpAddr, now: Instant) -> bool {
        let Some(failures) = self.0.get_mut(&ip) else {
            return false;
        };
        while failures
            .front()
            .is_some_and(|t| now.duration_since(*t) >= LIMIT_WINDOW)
        {
            failures.pop_front();
        }
        if failures.is_empty() {
            self.0.remove(&ip);
            return false;
        }
        failures.len() >= LIMIT_FAILURES
    }

    /// Counts a failed attempt.
    pub fn failed(&mut self, ip: IpAddr, now: Instant) {
        self.0.entry(ip).or_default().push_back(now);
    }

    /// Forgets an address's failures after it signed in.
    pub fn succeeded(&mut self, ip: IpAddr) {
        self.0.remove(&ip);
    }
}

/// The value of cookie `name` in the request.
pub fn cookie(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| cookie::Cookie::split_parse(v.to_owned()))
        .filter_map(Result::ok)
        .find(|c| c.name() == name)
        .map(|c| c.value().to_owned())
}

/// A `Set-Cookie` value: HttpOnly, SameSite=Strict, Path=/.
pub fn set_cookie(name: &str, value: &str, max_age: Option<cookie::time::Duration>) -> HeaderValue {
    let mut c = cookie::Cookie::build((name.to_owned(), value.to_owned()))
        .http_only(true)
        .same_site(cookie::SameSite::Strict)
        .path("/");
    if let Some(age) = max_age {
        c = c.max_age(age);
    }
    HeaderValue::from_str(&c.build().to_string())
        .unwrap_or_else(|_| HeaderValue::from_static("relais_session=; Path=/"))
}

/// Hashes a password (Argon2id with the crate's recommended parameters, random salt).
pub fn hash_password(password: &str) -> Result<String, String> {
    let salt = SaltString::generate(&mut argon2::password_hash::rand_core::OsRng);
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| format!("hashing the password: {e}"))
}

/// Whether `password` matches the stored hash.
pub fn verify_password(password: &str, hash: &str) -> bool {
    PasswordHash::new(hash).is_ok_and(|h| {
        Argon2::default()
            .verify_password(password.as_bytes(), &h)
            .is_ok()
    })
}

/// Sets the administrator's password (and the hub's name) without the setup page: for tools
/// that prepare a hub, such as a demonstration.
pub fn set_admin_password(
    store: &mut Store,
    hub_name: &str,
    password: &str,
) -> Result<(), StoreError> {
    if password.chars().count() < MIN_PASSWORD_CHARS {
        return Err(StoreError::Invalid(format!(
            "the administrator password needs at least {MIN_PASSWORD_CHARS} characters"
        )));
    }
    let password_hash = hash_password(password).map_err(StoreError::Invalid)?;
    store.set_web_admin(&WebAdmin {
        hub_name: hub_name.trim().to_owned(),
        password_hash,
    })
}

/// The hub's name, or `None` before the setup.
pub async fn hub_name(state: &AppState) -> Result<Option<String>, WebError> {
    Ok(with_store(&state.store, |s| s.web_admin())
        .await?
        .map(|a| a.hub_name))
}

/// What a page knows of its visitor; `Err` is where to send them instead (setup, login).
pub async fn signed_in(
    state: &AppState,
    headers: &HeaderMap,
) -> Result<Result<Cx, Response>, WebError> {
    let lang = Lang::from_request(headers);
    let Some(hub) = hub_name(state).await? else {
        return Ok(Err(Redirect::to("/setup").into_response()));
    };
    match cookie(headers, SESSION_COOKIE).and_then(|id| state.sessions.get(&id)) {
        Some(session) if session.admin => Ok(Ok(Cx {
            lang,
            csrf: session.csrf,
            hub_name: Some(hub),
            signed_in: true,
        })),
        _ => Ok(Err(Redirect::to("/login").into_response())),
    }
}

/// The visitor's session, opened when there is none; the cookie to set when it is new.
pub fn visitor(state: &AppState, headers: &HeaderMap) -> (Session, Option<HeaderValue>) {
    if let Some(session) = cookie(headers, SESSION_COOKIE).and_then(|id| state.sessions.get(&id)) {
        return (session, None);
    }
    let (id, session) = state.sessions.open(false);
    (session, Some(set_cookie(SESSION_COOKIE, &id, None)))
}

/// Whether `token` is the CSRF token of the request's session.
pub fn csrf_ok(state: &AppState, headers: &HeaderMap, token: &str) -> bool {
    cookie(headers, SESSION_COOKIE)
        .and_then(|id| state.sessions.get(&id))
        .is_some_and(|s| constant_time_eq(s.csrf.as_bytes(), token.as_bytes()))
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// The answer to a form without a valid CSRF token.
pub fn forbidden(lang: Lang) -> Response {
    (
        StatusCode::FORBIDDEN,
        layout::bare(
            lang,
            &t(lang, "errors.csrf_title"),
            html! {
                p { (t(lang, "errors.csrf")) }
                p { a href="/" { (t(lang, "errors.back_home")) } }
            },
        ),
    )
        .into_response()
}

fn with_cookie(mut response: Response, cookie: Option<HeaderValue>) -> Response {
    if let Some(c) = cookie {
        response.headers_mut().append(header::SET_COOKIE, c);
    }
    response
}

fn setup_form(cx: &Cx, error: Option<&str>, hub_name: &str) -> maud::Markup {
    let lang = cx.lang;
    layout::page(
        cx,
        &t(lang, "setup.title"),
        html! {
            p { (t(lang, "setup.intro")) }
            (layout::error(error))
            form method="post" action="/setup" {
                input type="hidden" name="csrf" value=(cx.csrf);
                div.field {
                    label for="hub_name" { (t(lang, "setup.hub_name")) }
                    input id="hub_name" name="hub_name" type="text" required value=(hub_name) autocomplete="off";
                }
                div.field {
                    label for="password" { (t(lang, "setup.password")) }
                    p.hint id="password_hint" { (t(lang, "setup.password_hint")) }
                    input id="password" name="password" type="password" required minlength=(MIN_PASSWORD_CHARS) autocomplete="new-password" aria-describedby="password_hint";
                }
                div.field {
                    label for="password_again" { (t(lang, "setup.password_again")) }
                    input id="password_again" name="password_again" type="password" required autocomplete="new-password";
                }
                button type="submit" { (t(lang, "setup.submit")) }
            }
        },
    )
}

/// `GET /setup`: the first-run form, only while no administrator exists.
pub async fn setup_page(
    State(state): State<AppState>,
    headers: HeaderMap,
) -> Result<Response, WebError> {
    if hub_name(&state).await?.is_some() {
        return Ok(Redirect::to("/login").into_response());
    }
    let (session, set) = visitor(&state, &headers);
    let cx = Cx::anonymous(Lang::from_request(&headers), session.csrf);
    Ok(with_cookie(setup_form(&cx, None, "").into_response(), set))
}

/// The setup form.
#[derive(Debug, Deserialize)]
pub struct SetupForm {
    csrf: String,
    hub_name: String,
    password: String,
    password_again: String,
}

/// `POST /setup`: creates the administrator and signs them in.
pub async fn setup(
    State(state): State<AppState>,
    ConnectInfo(client): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    Form(form): Form<SetupForm>,
) -> Result<Response, WebError> {
    let lang = Lang::from_request(&headers);
    if !csrf_ok(&state, &headers, &form.csrf) {
        return Ok(forbidden(lang));
    }
    if hub_name(&state).await?.is_some() {
        return Ok(Redirect::to("/login").into_response());
    }
    let error = if form.hub_name.trim().is_empty() {
        Some(t(lang, "setup.error_name"))
    } else if form.password.chars().count() < MIN_PASSWORD_CHARS {
        Some(t(lang, "setup.error_short"))
    } else if form.password != form.password_again {
        Some(t(lang, "setup.error_mismatch"))
    } else {
        None
    };
    if let Some(error) = error {
        let cx = Cx::anonymous(lang, form.csrf.clone());
        return Ok((
            StatusCode::UNPROCESSABLE_ENTITY,
            setup_form(&cx, Some(&error), &form.hub_name),
        )
            .into_response());
    }
    let password = form.password.clone();
    let password_hash = tokio::task::spawn_blocking(move || hash_password(&password))
        .await
        .map_err(|e| StoreError::Invalid(e.to_string()))?
        .map_err(StoreError::Invalid)?;
    let admin = WebAdmin {
        hub_name: form.hub_name.trim().to_owned(),
        password_hash,
    };
    if !with_store(&state.store, move |s| s.create_web_admin(&admin)).await? {
        return Ok(Redirect::to("/login").into_response());
    }
    tracing::info!(client = %client.ip(), "web administrator created");
    Ok(sign_in(&state, &headers, "/members"))
}

/// Replaces the visitor's session by a signed-in one and goes to `to`.
fn sign_in(state: &AppState, headers: &HeaderMap, to: &str) -> Response {
    if let Some(old) = cookie(headers, SESSION_COOKIE) {
        state.sessions.close(&old);
    }
    let (id, _) = state.sessions.open(true);
    with_cookie(
        Redirect::to(to).into_response(),
        Some(set_cookie(SESSION_COOKIE, &id, None)),
    )
}

fn login_form(cx: &Cx, error: Option<&str>) -> maud::Markup {
    let lang = cx.lang;
    layout::page(
        cx,
        &t(lang, "login.title"),
        html! {
            (layout::error(error))
            form method="post" action="/login" {
                input type="hidden" name="csrf" value=(cx.csrf);
                div.field {
                    label for="password" { (t(lang, "login.password")) }
                    input id="password" name="password" type="password" required autocomplete="current-password" autofocus;
                }
                button type="submit" { (t(lang, "login.submit")) }
            }
        },
    )
}

/// `GET /login`
pub async fn login_page(
    State(state): State<AppState>,
    headers: HeaderMap,
) -> Result<Response, WebError> {
    let Some(hub) = hub_name(&state).await? else {
        return Ok(Redirect::to("/setup").into_response());
    };
    let (session, set) = visitor(&state, &headers);
    let mut cx = Cx::anonymous(Lang::from_request(&headers), session.csrf);
    cx.hub_name = Some(hub);
    Ok(with_cookie(login_form(&cx, None).into_response(), set))
}

/// The login form.
#[derive(Debug, Deserialize)]
pub struct LoginForm {
    csrf: String,
    password: String,
}

/// `POST /login`: rate limited per client address.
pub async fn login(
    State(state): State<AppState>,
    ConnectInfo(client): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    Form(form): Form<LoginForm>,
) -> Result<Response, WebError> {
    let lang = Lang::from_request(&headers);
    let ip = client.ip();
    if lock(&state.limiter).blocked(ip, Instant::now()) {
        tracing::warn!(client = %ip, "web login refused: too many failures");
        let cx = Cx::anonymous(lang, form.csrf.clone());
        return Ok((
            StatusCode::TOO_MANY_REQUESTS,
            login_form(&cx, Some(&t(lang, "login.too_many"))),
        )
            .into_response());
    }
    if !csrf_ok(&state, &headers, &form.csrf) {
        return Ok(forbidden(lang));
    }
    let Some(admin) = with_store(&state.store, |s| s.web_admin()).await? else {
        return Ok(Redirect::to("/setup").into_response());
    };
    let password = form.password.clone();
    let hash = admin.password_hash.clone();
    let ok = tokio::task::spawn_blocking(move || verify_password(&password, &hash))
        .await
        .unwrap_or(false);
    if !ok {
        lock(&state.limiter).failed(ip, Instant::now());
        tracing::info!(client = %ip, "web login failed");
        let mut cx = Cx::anonymous(lang, form.csrf.clone());
        cx.hub_name = Some(admin.hub_name);
        return Ok((
            StatusCode::UNAUTHORIZED,
            login_form(&cx, Some(&t(lang, "login.wrong"))),
        )
            .into_response());
    }
    lock(&state.limiter).succeeded(ip);
    tracing::info!(client = %ip, "web login");
    Ok(sign_in(&state, &headers, "/members"))
}

/// A form with only the CSRF token.
#[derive(Debug, Deserialize)]
pub struct CsrfForm {
    /// The token.
    pub csrf: String,
}

/// `POST /logout`
pub async fn logout(
    State(state): State<AppState>,
    headers: HeaderMap,
    Form(form): Form<CsrfForm>,
) -> Response {
    let lang = Lang::from_request(&headers);
    if !csrf_ok(&state, &headers, &form.csrf) {
        return forbidden(lang);
    }
    if let Some(id) = cookie(&headers, SESSION_COOKIE) {
        state.sessions.close(&id);
    }
    with_cookie(
        Redirect::to("/login").into_response(),
        Some(set_cookie(
            SESSION_COOKIE,
            "",
            Some(cookie::time::Duration::ZERO),
        )),
    )
}

/// The language switch.
#[derive(Debug, Deserialize)]
pub struct LanguageForm {
    csrf: String,
    lang: String,
    back: String,
}

/// `POST /language`: stores the choice in a cookie and goes back to the page.
pub async fn language(
    State(state): State<AppState>,
    headers: HeaderMap,
    Form(form): Form<LanguageForm>,
) -> Response {
    let lang = Lang::parse(&form.lang).unwrap_or_default();
    if !csrf_ok(&state, &headers, &form.csrf) {
        return forbidden(lang);
    }
    // Only a path of this site: never an open redirect.
    let back = if form.back.starts_with('/') && !form.back.starts_with("//") {
        form.back.as_str()
    } else {
        "/"
    };
    with_cookie(
        Redirect::to(back).into_response(),
        Some(set_cookie(
            LANG_COOKIE,
            lang.code(),
            Some(cookie::time::Duration::days(365)),
        )),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn five_failures_block_an_address_for_five_minutes_others_go_on() {
        let mut limiter = LoginLimiter::default();
        let (a, b): (IpAddr, IpAddr) = ("127.0.0.1".parse().unwrap(), "127.0.0.2".parse().unwrap());
        let t0 = Instant::now();
        for i in 0..LIMIT_FAILURES {
            assert!(!limiter.blocked(a, t0), "attempt {i}");
            limiter.failed(a, t0);
        }
        assert!(limiter.blocked(a, t0 + Duration::from_secs(299)));
        assert!(!limiter.blocked(b, t0));
        assert!(!limiter.blocked(a, t0 + LIMIT_WINDOW));
    }

    #[test]
    fn a_password_verifies_against_its_hash_only() {
        let hash = hash_password("correct horse").unwrap();
        assert!(hash.starts_with("$argon2id$"), "{hash}");
        assert!(verify_password("correct horse", &hash));
        assert!(!verify_password("correct hors", &hash));
        assert!(!verify_password("correct horse", "not a hash"));
    }

    #[test]
    fn sessions_expire_and_close() {
        let sessions = Sessions::default();
        let (id, session) = sessions.open(true);
        assert_eq!(sessions.get(&id).unwrap().csrf, session.csrf);
        assert!(sessions.get("forged").is_none());
        sessions.close(&id);
        assert!(sessions.get(&id).is_none());
    }
}
