//! The household: members, adding one, linking one to Mon espace santé (the OAuth2 redirect
//! comes back to `/mes/callback` on this server), the consent's state, unlinking.

use std::collections::HashMap;
use std::time::Instant;

use axum::extract::{Form, Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use maud::{Markup, html};
use serde::Deserialize;

use crate::hub::ingest::with_store;
use crate::mes::PairingClient;
use crate::store::members::Member;
use crate::store::{MemberId, MesState, StoreError};
use crate::web::auth::{CsrfForm, csrf_ok, forbidden, signed_in};
use crate::web::i18n::{Lang, t};
use crate::web::layout::{self, Cx};
use crate::web::pages::notice;
use crate::web::state::{AppState, PAIRING_TIMEOUT, StartedPairing, WebError, lock};

/// A page's query: a notice code after a form.
#[derive(Debug, Deserialize, Default)]
pub struct NoticeQuery {
    /// See [`notice`].
    pub notice: Option<String>,
}

/// The MES state of a member in words, with what to do.
pub fn mes_state_text(lang: Lang, member: &Member) -> String {
    t(
        lang,
        match member.mes_state {
            MesState::Unlinked => "members.state_unlinked",
            MesState::Linked => "members.state_linked",
            MesState::ConsentWithdrawn => "members.state_withdrawn",
            MesState::ConfigurationError => "members.state_config",
        },
    )
}

fn render(
    cx: &Cx,
    members: &[Member],
    notice_text: Option<&str>,
    error: Option<&str>,
    name: &str,
) -> Markup {
    layout::page_at(
        cx,
        "/members",
        &cx.t("members.title"),
        html! {
            (layout::notice(notice_text))
            (layout::error(error))
            @if members.is_empty() {
                p { (cx.t("members.none")) }
            } @else {
                table {
                    caption { (cx.t("members.table_caption")) }
                    thead { tr {
                        th scope="col" { (cx.t("members.name")) }
                        th scope="col" { (cx.t("members.mes")) }
                        th scope="col" { (cx.t("members.actions")) }
                    } }
                    tbody {
                        @for m in members {
                            tr {
                                th scope="row" { (m.display_name) }
                                td { (mes_state_text(cx.lang, m)) }
                                td {
                                    a href={ "/members/" (m.id.0) "/readings" } { (cx.tf("members.readings_of", &[("name", &m.display_name)])) }
                                    " "
                                    @if m.mes_state == MesState::Linked {
                                        form.inline method="post" action={ "/members/" (m.id.0) "/unlink" } {
                                            (cx.csrf_field())
                                            button.secondary type="submit" { (cx.tf("members.unlink", &[("name", &m.display_name)])) }
                                        }
                                    } @else {
                                        form.inline method="post" action={ "/members/" (m.id.0) "/link" } {
                                            (cx.csrf_field())
                                            button type="submit" { (cx.tf("members.link", &[("name", &m.display_name)])) }
                                        }
                                    }
                                }
                            }
                        }
                    }
                }
            }
            h2 { (cx.t("members.add_title")) }
            form method="post" action="/members" {
                (cx.csrf_field())
                div.field {
                    label for="display_name" { (cx.t("members.add_name")) }
                    input id="display_name" name="display_name" type="text" required value=(name) autocomplete="off";
                }
                button type="submit" { (cx.t("members.add_submit")) }
            }
            p.hint { (cx.t("members.link_hint")) }
        },
    )
}

/// `GET /members`
pub async fn page(
    State(state): State<AppState>,
    headers: HeaderMap,
    Query(query): Query<NoticeQuery>,
) -> Result<Response, WebError> {
    let cx = match signed_in(&state, &headers).await? {
        Ok(cx) => cx,
        Err(elsewhere) => return Ok(elsewhere),
    };
    let members = with_store(&state.store, |s| s.members()).await?;
    let text = notice(cx.lang, query.notice.as_deref());
    Ok(render(&cx, &members, text.as_deref(), None, "").into_response())
}

/// The form adding a member.
#[derive(Debug, Deserialize)]
pub struct AddForm {
    csrf: String,
    display_name: String,
}

/// `POST /members`
pub async fn add(
    State(state): State<AppState>,
    headers: HeaderMap,
    Form(form): Form<AddForm>,
) -> Result<Response, WebError> {
    let cx = match signed_in(&state, &headers).await? {
        Ok(cx) => cx,
        Err(elsewhere) => return Ok(elsewhere),
    };
    if !csrf_ok(&state, &headers, &form.csrf) {
        return Ok(forbidden(cx.lang));
    }
    let name = form.display_name.trim().to_owned();
    let error = if name.is_empty() {
        Some(cx.t("members.error_empty"))
    } else {
        let n = name.clone();
        match with_store(&state.store, move |s| s.add_member(&n)).await {
            Ok(_) => None,
            Err(StoreError::Invalid(_)) => Some(cx.tf("members.error_taken", &[("name", &name)])),
            Err(e) => return Err(e.into()),
        }
    };
    if let Some(error) = error {
        let members = with_store(&state.store, |s| s.members()).await?;
        return Ok((
            StatusCode::UNPROCESSABLE_ENTITY,
            render(&cx, &members, None, Some(&error), &form.display_name),
        )
            .into_response());
    }
    Ok(Redirect::to("/members?notice=added").into_response())
}

/// Where MES sends the browser back: the configured redirect URI on this server's port when
/// it names no port (the default `http://127.0.0.1/mes/callback`).
pub fn redirect_uri(state: &AppState) -> Result<url::Url, String> {
    let mut url = url::Url::parse(&state.config.mes.redirect_uri)
        .map_err(|e| format!("mes.redirect_uri {}: {e}", state.config.mes.redirect_uri))?;
    if url.port().is_none() && url.set_port(Some(state.addr.port())).is_err() {
        return Err(format!("mes.redirect_uri {url} cannot take a port"));
    }
    Ok(url)
}

fn config_error(cx: &Cx, detail: &str) -> Response {
    tracing::error!("MES pairing cannot start: {detail}");
    (
        StatusCode::SERVICE_UNAVAILABLE,
        layout::page(
            cx,
            &cx.t("members.link_failed_title"),
            html! {
                p.error role="alert" { (cx.t("members.link_config")) }
                p { a href="/members" { (cx.t("members.back")) } }
            },
        ),
    )
        .into_response()
}

/// Starts linking `member` (known to exist) to MES: the address to send the browser to, or
/// what is wrong with the configuration.
pub fn start_link(state: &AppState, member: MemberId) -> Result<String, String> {
    let client = PairingClient::new(&state.config.mes.client()).map_err(|e| e.to_string())?;
    let pending = client.start_at(&redirect_uri(state)?);
    let to = pending.authorize_url().to_string();
    let mut pairings = lock(&state.pairings);
    pairings.retain(|_, p| p.at.elapsed() < PAIRING_TIMEOUT);
    pairings.insert(
        pending.state().to_owned(),
        StartedPairing {
            member,
            pending,
            at: Instant::now(),
        },
    );
    tracing::info!(member = member.0, "MES pairing started from the web page");
    Ok(to)
}

/// `POST /members/{id}/link`: starts the pairing and sends the browser to MES.
pub async fn link(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<i64>,
    Form(form): Form<CsrfForm>,
) -> Result<Response, WebError> {
    let cx = match signed_in(&state, &headers).await? {
        Ok(cx) => cx,
        Err(elsewhere) => return Ok(elsewhere),
    };
    if !csrf_ok(&state, &headers, &form.csrf) {
        return Ok(forbidden(cx.lang));
    }
    with_store(&state.store, move |s| s.member(MemberId(id))).await?;
    match start_link(&state, MemberId(id)) {
        Ok(to) => Ok(Redirect::to(&to).into_response()),
        Err(e) => Ok(config_error(&cx, &e)),
    }
}

fn callback_page(
    lang: Lang,
    status: StatusCode,
    title_key: &str,
    message: &str,
    ok: bool,
) -> Response {
    (
        status,
        layout::bare(
            lang,
            &t(lang, title_key),
            html! {
                @if ok {
                    p.notice role="status" { (message) }
                } @else {
                    p.error role="alert" { (message) }
                }
                // A link, not a redirect: after MES the browser holds back our SameSite=Strict
                // cookie until the user navigates from our own page.
                p { a href="/members" { (t(lang, "members.back")) } }
            },
        ),
    )
        .into_response()
}

/// `GET /mes/callback`: MES sends the browser back with the code (or the refusal); the
/// pairing it names by its `state` is finished and the tokens stored. The unguessable, single
/// use `state` is what authorises this request: the session cookie does not come along on a
/// redirect from another site.
pub async fn callback(
    State(state): State<AppState>,
    headers: HeaderMap,
    Query(query): Query<HashMap<String, String>>,
) -> Result<Response, WebError> {
    let lang = Lang::from_request(&headers);
    let started = query
        .get("state")
        .and_then(|s| lock(&state.pairings).remove(s))
        .filter(|p| p.at.elapsed() < PAIRING_TIMEOUT);
    let Some(started) = started else {
        return Ok(callback_page(
            lang,
            StatusCode::BAD_REQUEST,
            "members.link_failed_title",
            &t(lang, "members.link_unknown"),
            false,
        ));
    };
    if query.contains_key("error") {
        tracing::info!(member = started.member.0, "MES consent refused");
        return Ok(callback_page(
            lang,
            StatusCode::OK,
            "members.link_failed_title",
            &t(lang, "members.link_refused"),
            false,
        ));
    }
    let Some(code) = query.get("code") else {
        return Ok(callback_page(
            lang,
            StatusCode::BAD_REQUEST,
            "members.link_failed_title",
            &t(lang, "members.link_unknown"),
            false,
        ));
    };
    let client = match PairingClient::new(&state.config.mes.client()) {
        Ok(c) => c,
        Err(e) => {
            tracing::error!("MES pairing cannot finish: {e}");
            return Ok(callback_page(
                lang,
                StatusCode::SERVICE_UNAVAILABLE,
                "members.link_failed_title",
                &t(lang, "members.link_config"),
                false,
            ));
        }
    };
    let tokens = match client.finish(code, started.pending).await {
        Ok(tokens) => tokens,
        Err(e) => {
            tracing::warn!(member = started.member.0, "MES pairing failed: {e}");
            return Ok(callback_page(
                lang,
                StatusCode::BAD_GATEWAY,
                "members.link_failed_title",
                &t(lang, "members.link_error"),
                false,
            ));
        }
    };
    let member = started.member;
    with_store(&state.store, move |s| s.link_mes(member, &tokens)).await?;
    tracing::info!(member = member.0, "member linked to MES from the web page");
    state.wake_sinks();
    let name = with_store(&state.store, move |s| s.member(member))
        .await?
        .display_name;
    Ok(callback_page(
        lang,
        StatusCode::OK,
        "members.linked_title",
        &crate::web::i18n::tf(lang, "members.linked", &[("name", &name)]),
        true,
    ))
}

/// Unlinks `member` from MES (see [`crate::mes::unlink::unlink_member`]).
pub async fn unlink_member(state: &AppState, member: MemberId) -> Result<bool, StoreError> {
    crate::mes::unlink::unlink_member(
        &state.store,
        &state.config.mes.client(),
        member,
        "unlinked from the web page",
    )
    .await
}

/// `POST /members/{id}/unlink`: revokes the pairing at MES and drops the tokens; the readings
/// stay. When MES cannot be told, sending stops all the same and the page says what to do.
pub async fn unlink(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<i64>,
    Form(form): Form<CsrfForm>,
) -> Result<Response, WebError> {
    let cx = match signed_in(&state, &headers).await? {
        Ok(cx) => cx,
        Err(elsewhere) => return Ok(elsewhere),
    };
    if !csrf_ok(&state, &headers, &form.csrf) {
        return Ok(forbidden(cx.lang));
    }
    let revoked = unlink_member(&state, MemberId(id)).await?;
    Ok(Redirect::to(if revoked {
        "/members?notice=unlinked"
    } else {
        "/members?notice=unlinked_not_revoked"
    })
    .into_response())
}
