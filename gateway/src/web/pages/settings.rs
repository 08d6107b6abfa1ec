//! The hub's settings as configured: the household's time zone, the MQTT bridge, Mon espace
//! santé, the web page. They are changed in the configuration file (the page says where).

use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use maud::html;

use crate::web::auth::signed_in;
use crate::web::layout;
use crate::web::state::{AppState, WebError};

/// `GET /settings`
pub async fn page(State(state): State<AppState>, headers: HeaderMap) -> Result<Response, WebError> {
    let cx = match signed_in(&state, &headers).await? {
        Ok(cx) => cx,
        Err(elsewhere) => return Ok(elsewhere),
    };
    let config = &state.config;
    let yes_no = |on: bool| {
        if on {
            cx.t("settings.on")
        } else {
            cx.t("settings.off")
        }
    };
    Ok(layout::page_at(&cx, "/settings", &cx.t("settings.title"), html! {
        p { (cx.t("settings.intro")) }
        h2 { (cx.t("settings.hub")) }
        dl {
            dt { (cx.t("settings.time_zone")) }
            dd { (config.hub.time_zone) }
            dt { (cx.t("settings.web_listen")) }
            dd { (state.addr) }
        }
        h2 { (cx.t("settings.mes")) }
        dl {
            dt { (cx.t("settings.enabled")) }
            dd { (yes_no(config.mes.enabled)) }
            dt { (cx.t("settings.mes_server")) }
            dd { (config.mes.base_url) }
        }
        h2 { "MQTT" }
        dl {
            dt { (cx.t("settings.enabled")) }
            dd { (yes_no(config.mqtt.enabled)) }
            @if config.mqtt.enabled {
                dt { (cx.t("settings.mqtt_broker")) }
                dd { (config.mqtt.host) ":" (config.mqtt.port) }
                dt { (cx.t("settings.mqtt_tls")) }
                dd { (yes_no(config.mqtt.tls)) }
                dt { (cx.t("settings.mqtt_prefix")) }
                dd { (config.mqtt.topic_prefix) }
                dt { (cx.t("settings.mqtt_discovery")) }
                dd {
                    @if config.mqtt.discovery_prefix.is_empty() { (cx.t("settings.off")) } @else { (config.mqtt.discovery_prefix) }
                }
            }
        }
    })
    .into_response())
}
