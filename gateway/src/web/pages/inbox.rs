//! The inbox: measurements no device user mapping could give to a member, waiting for the
//! household to say whose they are (with the member whose last weight is closest proposed).

use axum::extract::{Form, Path, Query, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Redirect, Response};
use maud::html;
use serde::Deserialize;

use crate::hub::control::ControlError;
use crate::hub::ingest::with_store;
use crate::store::{MeasurementId, MemberId, StoreError};
use crate::web::auth::{csrf_ok, forbidden, signed_in};
use crate::web::layout;
use crate::web::pages::members::NoticeQuery;
use crate::web::pages::{kind_name, notice, readings_of, value_text, when, zone};
use crate::web::state::{AppState, WebError};

/// `GET /inbox`
pub async fn page(
    State(state): State<AppState>,
    headers: HeaderMap,
    Query(query): Query<NoticeQuery>,
) -> Result<Response, WebError> {
    let cx = match signed_in(&state, &headers).await? {
        Ok(cx) => cx,
        Err(elsewhere) => return Ok(elsewhere),
    };
    let (inbox, members) = with_store(&state.store, |s| Ok((s.inbox()?, s.members()?))).await?;
    let zone = zone(&state);
    let text = notice(cx.lang, query.notice.as_deref());
    let name_of = |id: MemberId| {
        members
            .iter()
            .find(|m| m.id == id)
            .map(|m| m.display_name.clone())
    };
    Ok(layout::page_at(&cx, "/inbox", &cx.t("inbox.title"), html! {
        (layout::notice(text.as_deref()))
        p { (cx.t("inbox.intro")) }
        @if inbox.is_empty() {
            p { (cx.t("inbox.empty")) }
        }
        @if !inbox.is_empty() && members.is_empty() {
            p.error role="alert" { (cx.t("inbox.no_members")) " " a href="/members" { (cx.t("nav.members")) } }
        }
        @for m in &inbox {
            section.card aria-labelledby={ "m" (m.id.0) } {
                h2 id={ "m" (m.id.0) } { (when(cx.lang, m, &zone)) }
                ul {
                    @for r in readings_of(m) {
                        li { (kind_name(cx.lang, &r.kind)) " : " strong { (value_text(cx.lang, &r)) } }
                    }
                }
                @if let Some(name) = m.suggested_member.and_then(name_of) {
                    p { (cx.tf("inbox.suggestion", &[("name", name.as_str())])) }
                }
                @if !members.is_empty() {
                    form method="post" action={ "/inbox/" (m.id.0) "/assign" } {
                        (cx.csrf_field())
                        div.field {
                            label for={ "member" (m.id.0) } { (cx.t("inbox.whose")) }
                            select id={ "member" (m.id.0) } name="member" {
                                @for member in &members {
                                    @if Some(member.id) == m.suggested_member {
                                        option value=(member.id.0) selected { (member.display_name) }
                                    } @else {
                                        option value=(member.id.0) { (member.display_name) }
                                    }
                                }
                            }
                        }
                        button type="submit" { (cx.t("inbox.assign")) }
                    }
                }
            }
        }
    })
    .into_response())
}

/// The assignment form.
#[derive(Debug, Deserialize)]
pub struct AssignForm {
    csrf: String,
    member: i64,
}

/// `POST /inbox/{id}/assign`
pub async fn assign(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<i64>,
    Form(form): Form<AssignForm>,
) -> Result<Response, WebError> {
    let cx = match signed_in(&state, &headers).await? {
        Ok(cx) => cx,
        Err(elsewhere) => return Ok(elsewhere),
    };
    if !csrf_ok(&state, &headers, &form.csrf) {
        return Ok(forbidden(cx.lang));
    }
    let member = MemberId(form.member);
    // The control wakes the sinks.
    match state.control.assign(MeasurementId(id), member).await {
        // Assigned already (another tab): the inbox shows what is left.
        Ok(()) | Err(ControlError::NotInInbox(_)) => {}
        Err(ControlError::UnknownMember(_) | ControlError::UnknownMeasurement(_)) => {
            return Ok(crate::web::pages::not_found_response());
        }
        Err(e) => return Err(StoreError::Invalid(e.to_string()).into()),
    }
    tracing::info!(
        measurement = id,
        member = member.0,
        "inbox measurement assigned"
    );
    Ok(Redirect::to("/inbox?notice=assigned").into_response())
}
