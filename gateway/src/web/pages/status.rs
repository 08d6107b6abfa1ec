//! Where things stand: what is still to send to Mon espace santé for each member, when each
//! device last delivered, what was refused and why, and problems in plain words with what to
//! do about them.

use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use maud::html;

use crate::hub::ingest::with_store;
use crate::store::{MesState, Sink};
use crate::web::auth::signed_in;
use crate::web::layout;
use crate::web::pages::{format_number, local_time, zone};
use crate::web::state::{AppState, WebError};

/// Refused rows listed at most.
const REFUSED_SHOWN: usize = 20;

/// `GET /status`
pub async fn page(State(state): State<AppState>, headers: HeaderMap) -> Result<Response, WebError> {
    let cx = match signed_in(&state, &headers).await? {
        Ok(cx) => cx,
        Err(elsewhere) => return Ok(elsewhere),
    };
    let (members, backlogs, devices, refused, inbox, mqtt) = with_store(&state.store, |s| {
        let members = s.members()?;
        let backlogs = members
            .iter()
            .map(|m| s.backlog_of(Sink::Mes, m.id))
            .collect::<Result<Vec<_>, _>>()?;
        Ok((
            members,
            backlogs,
            s.devices()?,
            s.refused(Sink::Mes, REFUSED_SHOWN)?,
            s.inbox()?.len(),
            s.backlog(Sink::Mqtt)?,
        ))
    })
    .await?;
    let zone = zone(&state);
    let mes_on = state.config.mes.enabled;
    let problems: Vec<String> = members
        .iter()
        .filter_map(|m| match m.mes_state {
            MesState::ConsentWithdrawn => Some(cx.tf(
                "status.problem_withdrawn",
                &[("name", m.display_name.as_str())],
            )),
            MesState::ConfigurationError => Some(cx.tf(
                "status.problem_config",
                &[("name", m.display_name.as_str())],
            )),
            _ => None,
        })
        .collect();
    let when = |at: &str| local_time(cx.lang, &zone, at);
    let member_name = |id: Option<crate::store::MemberId>| {
        id.and_then(|id| members.iter().find(|m| m.id == id))
            .map_or_else(|| "—".to_owned(), |m| m.display_name.clone())
    };
    Ok(layout::page_at(&cx, "/status", &cx.t("status.title"), html! {
        h2 { (cx.t("status.problems")) }
        @if problems.is_empty() && refused.is_empty() && inbox == 0 && mes_on {
            p.notice role="status" { (cx.t("status.all_good")) }
        }
        @if !mes_on {
            p { (cx.t("status.mes_off")) }
        }
        @if inbox > 0 {
            p { (cx.tf("status.inbox", &[("count", &inbox.to_string())])) " " a href="/inbox" { (cx.t("nav.inbox")) } }
        }
        @for p in &problems {
            p.error { (p) }
        }
        h2 { (cx.t("status.mes_title")) }
        @if members.is_empty() {
            p { (cx.t("members.none")) }
        } @else {
            table {
                caption { (cx.t("status.mes_caption")) }
                thead { tr {
                    th scope="col" { (cx.t("members.name")) }
                    th scope="col" { (cx.t("status.to_send")) }
                    th scope="col" { (cx.t("status.sent")) }
                    th scope="col" { (cx.t("status.refused")) }
                } }
                tbody {
                    @for (m, b) in members.iter().zip(&backlogs) {
                        tr {
                            th scope="row" { (m.display_name) }
                            td { (b.pending + b.sending) }
                            td { (b.sent) }
                            td { (b.quarantined) }
                        }
                    }
                }
            }
        }
        @if !refused.is_empty() {
            h2 { (cx.t("status.refused_title")) }
            p { (cx.t("status.refused_what_to_do")) }
            ul {
                @for item in &refused {
                    li { (member_name(item.member)) " — " (item.last_error.as_deref().unwrap_or("")) }
                }
            }
        }
        h2 { (cx.t("status.devices_title")) }
        @if devices.is_empty() {
            p { (cx.t("status.no_devices")) }
        } @else {
            table {
                caption { (cx.t("status.devices_caption")) }
                thead { tr {
                    th scope="col" { (cx.t("devices.device")) }
                    th scope="col" { (cx.t("status.last_sync")) }
                    th scope="col" { (cx.t("status.clock")) }
                } }
                tbody {
                    @for d in &devices {
                        tr {
                            th scope="row" { (d.shown_name()) " (" (d.identity.address) ")" }
                            td { (when(&d.last_seen)) }
                            td {
                                @match d.clock_skew_ms {
                                    Some(ms) => (cx.tf("status.clock_off", &[("seconds", &format_number(cx.lang, ms as f64 / 1000.0))])),
                                    None => "—",
                                }
                            }
                        }
                    }
                }
            }
        }
        @if state.config.mqtt.enabled {
            h2 { "MQTT" }
            p { (cx.tf("status.mqtt", &[("pending", &mqtt.pending.to_string()), ("sent", &mqtt.sent.to_string())])) }
        }
    })
    .into_response())
}
