//! The household's devices as the store knows them: what they are, whether they are bonded,
//! when they last delivered.

use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use maud::html;

use crate::hub::ingest::with_store;
use crate::web::auth::signed_in;
use crate::web::layout;
use crate::web::state::{AppState, WebError};

/// `GET /devices`
pub async fn page(State(state): State<AppState>, headers: HeaderMap) -> Result<Response, WebError> {
    let cx = match signed_in(&state, &headers).await? {
        Ok(cx) => cx,
        Err(elsewhere) => return Ok(elsewhere),
    };
    let devices = with_store(&state.store, |s| s.devices()).await?;
    Ok(layout::page_at(&cx, "/devices", &cx.t("devices.title"), html! {
        @if devices.is_empty() {
            p { (cx.t("devices.none")) }
        } @else {
            table {
                caption { (cx.t("devices.caption")) }
                thead { tr {
                    th scope="col" { (cx.t("devices.device")) }
                    th scope="col" { (cx.t("devices.kind")) }
                    th scope="col" { (cx.t("devices.bonded")) }
                    th scope="col" { (cx.t("devices.last_seen")) }
                } }
                tbody {
                    @for d in &devices {
                        tr {
                            th scope="row" { (d.identity.name.as_deref().or(d.identity.model.as_deref()).unwrap_or("—")) br; (d.identity.address) }
                            td { (cx.t(&format!("device_kinds.{}", d.kind))) }
                            td {
                                @match d.bonded {
                                    Some(true) => (cx.t("settings.on")),
                                    Some(false) => (cx.t("settings.off")),
                                    None => "—",
                                }
                            }
                            td { (d.last_seen.get(..16).unwrap_or(&d.last_seen).replace('T', " ")) }
                        }
                    }
                }
            }
        }
        p.hint { (cx.t("devices.pair_hint")) }
    })
    .into_response())
}
