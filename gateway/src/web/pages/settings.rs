//! The hub's settings: the household's time zone and the MQTT bridge are edited here and saved
//! in the store (a layer between the configuration file and the environment, see
//! [`crate::hub::config`]); they apply when the hub restarts. Mon espace santé and the web page
//! itself are shown as configured.

use std::collections::HashMap;

use axum::extract::{Form, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use maud::{Markup, html};
use serde::Deserialize;

use crate::hub::config::{Config, SAVABLE_KEYS};
use crate::hub::ingest::with_store;
use crate::web::auth::{csrf_ok, forbidden, signed_in};
use crate::web::layout::{self, Cx};
use crate::web::state::{AppState, WebError};

/// How a setting is edited.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Text,
    Number,
    Switch,
    /// Never shown back; empty: unchanged.
    Secret,
    Choice(&'static [&'static str]),
}

const ZONE_FIELDS: &[(&str, Kind)] = &[("hub.time_zone", Kind::Text)];

const MQTT_FIELDS: &[(&str, Kind)] = &[
    ("mqtt.enabled", Kind::Switch),
    ("mqtt.host", Kind::Text),
    ("mqtt.port", Kind::Number),
    ("mqtt.username", Kind::Text),
    ("mqtt.password", Kind::Secret),
    ("mqtt.tls", Kind::Switch),
    ("mqtt.topic_prefix", Kind::Text),
    ("mqtt.discovery_prefix", Kind::Text),
    ("mqtt.format", Kind::Choice(&["json", "cbor"])),
    ("mqtt.embedded_broker", Kind::Switch),
];

/// The settings as running and as they will be at the next start.
#[derive(Debug, Clone)]
pub struct Layers {
    /// The configuration the hub started with.
    pub running: Config,
    /// With the settings saved since (the environment and `--set` still winning).
    pub next: Config,
    /// The keys saved in the store.
    pub saved: Vec<String>,
}

impl Layers {
    /// `key`'s value in effect now, and the one after a restart when it differs.
    pub fn values(&self, key: &str) -> (String, Option<String>) {
        let running = self.running.value_text(key).unwrap_or_default();
        let next = self.next.value_text(key).unwrap_or_default();
        (running.clone(), (next != running).then_some(next))
    }
}

/// Reads the saved settings.
pub async fn layers(state: &AppState) -> Result<Layers, WebError> {
    let saved = with_store(&state.store, |s| s.saved_settings()).await?;
    let running = state.config.clone();
    let applicable: Vec<(String, String)> = saved
        .iter()
        .filter(|(key, _)| !running.fixed.contains_key(key))
        .cloned()
        .collect();
    let next = running.with_saved(&applicable).unwrap_or_else(|e| {
        tracing::warn!("saved settings do not apply: {e}");
        running.clone()
    });
    Ok(Layers {
        running,
        next,
        saved: saved.into_iter().map(|(key, _)| key).collect(),
    })
}

/// Why edits were not saved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refused {
    /// The environment or `--set` sets this key: (key, where from).
    Fixed(String, String),
    /// The zone is not in the tz database.
    UnknownZone(String),
    /// The checks the hub makes at start failed.
    Invalid(String),
}

/// Saves `edits` (key, value as typed) that differ from what the next start would use, after
/// checking the result as the hub does at start; the keys changed.
pub async fn save(
    state: &AppState,
    layers: &Layers,
    edits: &[(String, String)],
) -> Result<Result<Vec<String>, Refused>, WebError> {
    let mut changes = Vec::new();
    for (key, text) in edits {
        if !SAVABLE_KEYS.contains(&key.as_str()) {
            return Ok(Err(Refused::Invalid(format!(
                "{key} cannot be saved; these can: {}",
                SAVABLE_KEYS.join(", ")
            ))));
        }
        if let Some(source) = layers.next.fixed.get(key) {
            return Ok(Err(Refused::Fixed(key.clone(), source.clone())));
        }
        if key == "hub.time_zone" && jiff::tz::TimeZone::get(text.trim()).is_err() {
            return Ok(Err(Refused::UnknownZone(text.clone())));
        }
        if layers.next.value_text(key).as_deref() == Some(text.as_str()) {
            continue;
        }
        match layers.next.saved_value(key, text) {
            Ok(value) => changes.push((key.clone(), value)),
            Err(e) => return Ok(Err(Refused::Invalid(e))),
        }
    }
    if let Err(e) = layers.next.with_saved(&changes) {
        return Ok(Err(Refused::Invalid(e)));
    }
    let keys = changes.iter().map(|(key, _)| key.clone()).collect();
    with_store(&state.store, move |s| s.save_settings(&changes)).await?;
    Ok(Ok(keys))
}

/// `?saved=key,key`: what the last form changed.
#[derive(Debug, Deserialize)]
pub struct SavedQuery {
    saved: Option<String>,
}

/// `GET /settings`
pub async fn page(
    State(state): State<AppState>,
    headers: HeaderMap,
    Query(query): Query<SavedQuery>,
) -> Result<Response, WebError> {
    let cx = match signed_in(&state, &headers).await? {
        Ok(cx) => cx,
        Err(elsewhere) => return Ok(elsewhere),
    };
    let layers = layers(&state).await?;
    let notice = query.saved.map(|keys| saved_notice(&cx, &keys));
    Ok(render(
        &state,
        &cx,
        &layers,
        notice.as_deref(),
        None,
        &HashMap::new(),
    )
    .into_response())
}

/// `POST /settings/zone`
pub async fn save_zone(
    state: State<AppState>,
    headers: HeaderMap,
    form: Form<HashMap<String, String>>,
) -> Result<Response, WebError> {
    save_form(state, headers, form, ZONE_FIELDS).await
}

/// `POST /settings/mqtt`
pub async fn save_mqtt(
    state: State<AppState>,
    headers: HeaderMap,
    form: Form<HashMap<String, String>>,
) -> Result<Response, WebError> {
    save_form(state, headers, form, MQTT_FIELDS).await
}

async fn save_form(
    State(state): State<AppState>,
    headers: HeaderMap,
    Form(form): Form<HashMap<String, String>>,
    fields: &[(&str, Kind)],
) -> Result<Response, WebError> {
    let cx = match signed_in(&state, &headers).await? {
        Ok(cx) => cx,
        Err(elsewhere) => return Ok(elsewhere),
    };
    let csrf = form.get("csrf").map_or("", String::as_str);
    if !csrf_ok(&state, &headers, csrf) {
        return Ok(forbidden(cx.lang));
    }
    let layers = layers(&state).await?;
    let mut edits = Vec::new();
    for (key, kind) in fields {
        // Disabled fields are not sent: the environment or `--set` decides those.
        if layers.next.fixed.contains_key(*key) {
            continue;
        }
        let value = form.get(*key).map(|v| v.trim().to_owned());
        let value = match (kind, value) {
            (Kind::Switch, value) => value.is_some().to_string(),
            (Kind::Secret, None) => continue,
            (Kind::Secret, Some(v)) if v.is_empty() => continue,
            (_, Some(v)) => v,
            (_, None) => continue,
        };
        edits.push(((*key).to_owned(), value));
    }
    match save(&state, &layers, &edits).await? {
        Ok(keys) => {
            Ok(Redirect::to(&format!("/settings?saved={}", keys.join(","))).into_response())
        }
        Err(refused) => {
            let message = refused_text(&cx, &refused);
            // The form comes back as sent: an unticked box is absent from it.
            let mut sent = form.clone();
            for (key, kind) in fields {
                if *kind == Kind::Switch {
                    sent.insert((*key).to_owned(), form.contains_key(*key).to_string());
                }
            }
            Ok((
                StatusCode::UNPROCESSABLE_ENTITY,
                render(&state, &cx, &layers, None, Some(&message), &sent),
            )
                .into_response())
        }
    }
}

/// A refusal in the page's language.
pub fn refused_text(cx: &Cx, refused: &Refused) -> String {
    match refused {
        Refused::Fixed(key, source) => cx.tf(
            "settings.fixed",
            &[("field", &cx.t(&label_key(key))), ("source", source)],
        ),
        Refused::UnknownZone(zone) => cx.tf("settings.error_zone", &[("zone", zone)]),
        Refused::Invalid(detail) => cx.tf("settings.error_invalid", &[("detail", detail)]),
    }
}

fn label_key(key: &str) -> String {
    format!("settings.{}", key.replace('.', "_"))
}

fn saved_notice(cx: &Cx, keys: &str) -> String {
    let names: Vec<String> = keys
        .split(',')
        .filter(|key| SAVABLE_KEYS.contains(key))
        .map(|key| cx.t(&label_key(key)))
        .collect();
    if names.is_empty() {
        cx.t("settings.unchanged")
    } else {
        cx.tf("settings.saved", &[("fields", &names.join(", "))])
    }
}

fn render(
    state: &AppState,
    cx: &Cx,
    layers: &Layers,
    notice: Option<&str>,
    error: Option<&str>,
    submitted: &HashMap<String, String>,
) -> Markup {
    let config = &layers.running;
    let yes_no = |on: bool| {
        if on {
            cx.t("settings.on")
        } else {
            cx.t("settings.off")
        }
    };
    layout::page_at(
        cx,
        "/settings",
        &cx.t("settings.title"),
        html! {
            p { (cx.t("settings.intro")) }
            (layout::notice(notice))
            (layout::error(error))
            h2 { (cx.t("settings.hub")) }
            form method="post" action="/settings/zone" {
                (cx.csrf_field())
                @for (key, kind) in ZONE_FIELDS { (field(cx, layers, key, *kind, submitted)) }
                button type="submit" { (cx.t("settings.save_zone")) }
            }
            dl {
                dt { (cx.t("settings.web_listen")) }
                dd { (state.addr) }
            }
            h2 { "MQTT" }
            form method="post" action="/settings/mqtt" {
                (cx.csrf_field())
                @for (key, kind) in MQTT_FIELDS { (field(cx, layers, key, *kind, submitted)) }
                button type="submit" { (cx.t("settings.save_mqtt")) }
            }
            h2 { (cx.t("settings.mes")) }
            p { (cx.t("settings.mes_intro")) }
            dl {
                dt { (cx.t("settings.enabled")) }
                dd { (yes_no(config.mes.enabled)) }
                dt { (cx.t("settings.mes_server")) }
                dd { (config.mes.base_url) }
            }
        },
    )
}

/// One labelled field: the value the next start will use (or what was just submitted), the
/// running value when it differs, disabled with the reason when the environment or `--set`
/// decides it.
fn field(
    cx: &Cx,
    layers: &Layers,
    key: &str,
    kind: Kind,
    submitted: &HashMap<String, String>,
) -> Markup {
    let id = key.replace('.', "_");
    let hint_id = format!("{id}_hint");
    let (running, pending) = layers.values(key);
    let fixed = layers.next.fixed.get(key);
    let shown = submitted
        .get(key)
        .cloned()
        .or_else(|| pending.clone())
        .unwrap_or_else(|| running.clone());
    let mut hints = Vec::new();
    if let Some(source) = fixed {
        hints.push(cx.tf(
            "settings.fixed",
            &[("field", &cx.t(&label_key(key))), ("source", source)],
        ));
    }
    if kind == Kind::Secret {
        hints.push(cx.t("settings.password_hint"));
    } else if let Some(next) = &pending {
        hints.push(cx.tf(
            "settings.pending",
            &[("running", &running), ("saved", next)],
        ));
    }
    let described = (!hints.is_empty()).then(|| hint_id.clone());
    let disabled = fixed.is_some();
    html! {
        div.field {
            @match kind {
                Kind::Switch => {
                    label for=(id) {
                        input type="checkbox" id=(id) name=(key) value="true" checked[shown == "true"]
                            disabled[disabled] aria-describedby=[described.as_deref()];
                        " " (cx.t(&label_key(key)))
                    }
                }
                Kind::Choice(options) => {
                    label for=(id) { (cx.t(&label_key(key))) }
                    select id=(id) name=(key) disabled[disabled] aria-describedby=[described.as_deref()] {
                        @for option in options {
                            option value=(option) selected[*option == shown] { (option) }
                        }
                    }
                }
                Kind::Secret => {
                    label for=(id) { (cx.t(&label_key(key))) }
                    input type="password" id=(id) name=(key) value="" autocomplete="off"
                        disabled[disabled] aria-describedby=[described.as_deref()];
                }
                Kind::Number => {
                    label for=(id) { (cx.t(&label_key(key))) }
                    input type="number" id=(id) name=(key) value=(shown) min="1" max="65535"
                        disabled[disabled] aria-describedby=[described.as_deref()];
                }
                Kind::Text if key == "hub.time_zone" => {
                    label for=(id) { (cx.t(&label_key(key))) }
                    input type="text" id=(id) name=(key) value=(shown) list="zones"
                        disabled[disabled] aria-describedby=[described.as_deref()];
                    // The browser proposes the names the hub accepts.
                    datalist id="zones" {
                        @for zone in jiff::tz::db().available() {
                            option value=(zone.as_str()) {}
                        }
                    }
                }
                Kind::Text => {
                    label for=(id) { (cx.t(&label_key(key))) }
                    input type="text" id=(id) name=(key) value=(shown)
                        disabled[disabled] aria-describedby=[described.as_deref()];
                }
            }
            @if !hints.is_empty() {
                p.hint id=(hint_id) { (hints.join(" ")) }
            }
        }
    }
}
