//! The household's devices: the ones the hub knows (sync now, remove), and a scan for new ones
//! with live progress (a small script refreshes the list; without it, reloading the page does)
//! and pairing with the passkey the device shows. Every action goes through the hub's
//! [`crate::hub::control::Control`].

use std::time::Duration;

use axum::extract::{Form, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use maud::{Markup, html};
use serde::Deserialize;

use crate::ble::Seen;
use crate::hub::control::{ControlError, ScanEvent};
use crate::hub::ingest::with_store;
use crate::store::devices::StoredDevice;
use crate::web::auth::{csrf_ok, forbidden, signed_in};
use crate::web::i18n::{Lang, t};
use crate::web::layout::{self, Cx};
use crate::web::pages::members::NoticeQuery;
use crate::web::pages::{local_time, notice, zone};
use crate::web::state::{AppState, ScanView, WebError, lock};

/// How long a scan started from the page listens.
pub const SCAN_TIME: Duration = Duration::from_secs(20);

/// A failed action in the page's language, with what to do.
pub fn control_error_text(lang: Lang, e: &ControlError) -> String {
    t(lang, &format!("devices.error_{}", e.code()))
}

fn device_name(seen: &Seen) -> String {
    seen.name.clone().unwrap_or_else(|| seen.address.clone())
}

/// The scan's part of the page: also what the script fetches while the scan runs.
fn scan_region(cx: &Cx, scan: &ScanView) -> Markup {
    html! {
        @if scan.running {
            p role="status" { (cx.tf("devices.scanning", &[("count", &scan.found.len().to_string())])) }
        } @else if !scan.found.is_empty() {
            p { (cx.tf("devices.scan_done", &[("count", &scan.found.len().to_string())])) }
        }
        @if let Some(e) = &scan.error {
            p.error role="alert" { (control_error_text(cx.lang, e)) }
        }
        @for (i, seen) in scan.found.iter().enumerate() {
            section.card aria-labelledby={ "found" (i) } {
                h3 id={ "found" (i) } { (device_name(seen)) }
                p { (cx.t(&format!("device_kinds.{}", seen.kind.as_str()))) " — " (seen.address) }
                @if seen.paired == Some(true) {
                    p { (cx.t("devices.already_paired")) }
                } @else if seen.advertises_measurements {
                    p { (cx.t("devices.no_pairing_needed")) }
                } @else {
                    form method="post" action="/devices/pair" {
                        (cx.csrf_field())
                        input type="hidden" name="address" value=(seen.address);
                        div.field {
                            label for={ "passkey" (i) } { (cx.t("devices.passkey")) }
                            p.hint id={ "passkey-hint" (i) } { (cx.t("devices.passkey_hint")) }
                            input id={ "passkey" (i) } name="passkey" type="text" inputmode="numeric"
                                pattern="[0-9]{0,6}" maxlength="6" autocomplete="off"
                                aria-describedby={ "passkey-hint" (i) };
                        }
                        button type="submit" { (cx.tf("devices.pair", &[("name", &device_name(seen))])) }
                    }
                }
            }
        }
    }
}

fn render(
    cx: &Cx,
    zone: &jiff::tz::TimeZone,
    devices: &[StoredDevice],
    scan: &ScanView,
    notice_text: Option<&str>,
    error: Option<&str>,
) -> Markup {
    layout::page_at(
        cx,
        "/devices",
        &cx.t("devices.title"),
        html! {
            (layout::notice(notice_text))
            (layout::error(error))
            @if devices.is_empty() {
                p { (cx.t("devices.none")) }
            } @else {
                table {
                    caption { (cx.t("devices.caption")) }
                    thead { tr {
                        th scope="col" { (cx.t("devices.device")) }
                        th scope="col" { (cx.t("devices.kind")) }
                        th scope="col" { (cx.t("devices.last_seen")) }
                        th scope="col" { (cx.t("members.actions")) }
                    } }
                    tbody {
                        @for (i, d) in devices.iter().enumerate() {
                            @let name = d.shown_name();
                            tr {
                                th scope="row" { (name) br; (d.identity.address) }
                                td { (cx.t(&format!("device_kinds.{}", d.kind))) }
                                td { (local_time(cx.lang, zone, &d.last_seen)) }
                                td {
                                    form.inline method="post" action="/devices/sync" {
                                        (cx.csrf_field())
                                        input type="hidden" name="address" value=(d.identity.address);
                                        button.secondary type="submit" { (cx.tf("devices.sync", &[("name", name)])) }
                                    }
                                    " "
                                    form.inline method="post" action="/devices/remove" {
                                        (cx.csrf_field())
                                        input type="hidden" name="address" value=(d.identity.address);
                                        button.secondary type="submit" { (cx.tf("devices.remove", &[("name", name)])) }
                                    }
                                    form method="post" action="/devices/rename" {
                                        (cx.csrf_field())
                                        input type="hidden" name="address" value=(d.identity.address);
                                        label for={ "label" (i) } { (cx.tf("devices.rename_label", &[("name", name)])) }
                                        input id={ "label" (i) } name="label" type="text" autocomplete="off" value=(d.label.as_deref().unwrap_or(""));
                                        button.secondary type="submit" { (cx.t("devices.rename")) }
                                    }
                                }
                            }
                        }
                    }
                }
            }
            h2 { (cx.t("devices.add_title")) }
            p { (cx.t("devices.add_intro")) }
            form method="post" action="/devices/scan" {
                (cx.csrf_field())
                button type="submit" { (cx.t("devices.scan")) }
            }
            div id="scan-region" aria-live="polite" data-running=(if scan.running { "true" } else { "false" }) {
                (scan_region(cx, scan))
            }
            script src="/devices.js" defer {}
        },
    )
}

/// `GET /devices`
pub async fn page(
    State(state): State<AppState>,
    headers: HeaderMap,
    Query(query): Query<NoticeQuery>,
) -> Result<Response, WebError> {
    let cx = match signed_in(&state, &headers).await? {
        Ok(cx) => cx,
        Err(elsewhere) => return Ok(elsewhere),
    };
    let devices = with_store(&state.store, |s| s.devices()).await?;
    let scan = lock(&state.scan).clone();
    let text = notice(cx.lang, query.notice.as_deref());
    Ok(render(&cx, &zone(&state), &devices, &scan, text.as_deref(), None).into_response())
}

/// `GET /devices/found`: the scan's part of the page, for the live progress script; the
/// `X-Scan-Running` header says whether to ask again.
pub async fn found(
    State(state): State<AppState>,
    headers: HeaderMap,
) -> Result<Response, WebError> {
    let cx = match signed_in(&state, &headers).await? {
        Ok(cx) => cx,
        Err(_) => return Ok(StatusCode::UNAUTHORIZED.into_response()),
    };
    let scan = lock(&state.scan).clone();
    let mut response = scan_region(&cx, &scan).into_response();
    response.headers_mut().insert(
        "x-scan-running",
        HeaderValue::from_static(if scan.running { "true" } else { "false" }),
    );
    Ok(response)
}

/// A form naming a device.
#[derive(Debug, Deserialize)]
pub struct DeviceForm {
    csrf: String,
    address: String,
    #[serde(default)]
    passkey: String,
}

/// Starts the page's search for `duration` unless one runs; what it hears goes into
/// `state.scan`.
pub async fn start_scan(state: &AppState, duration: Duration) -> Result<(), ControlError> {
    if lock(&state.scan).running {
        return Ok(());
    }
    match state.control.scan(duration).await {
        Ok(mut events) => {
            *lock(&state.scan) = ScanView {
                running: true,
                ..ScanView::default()
            };
            let shared = state.clone();
            tokio::spawn(async move {
                while let Some(event) = events.recv().await {
                    let mut view = lock(&shared.scan);
                    match event {
                        ScanEvent::Found(seen) => {
                            match view.found.iter_mut().find(|s| s.address == seen.address) {
                                Some(known) => *known = seen,
                                None => view.found.push(seen),
                            }
                        }
                        ScanEvent::Finished { devices } => {
                            view.found = devices;
                            break;
                        }
                    }
                }
                lock(&shared.scan).running = false;
            });
            Ok(())
        }
        Err(e) => {
            *lock(&state.scan) = ScanView {
                error: Some(e.clone()),
                ..ScanView::default()
            };
            Err(e)
        }
    }
}

/// `POST /devices/scan`: starts listening for [`SCAN_TIME`]; the page shows what is heard.
pub async fn scan(
    State(state): State<AppState>,
    headers: HeaderMap,
    Form(form): Form<crate::web::auth::CsrfForm>,
) -> Result<Response, WebError> {
    let cx = match signed_in(&state, &headers).await? {
        Ok(cx) => cx,
        Err(elsewhere) => return Ok(elsewhere),
    };
    if !csrf_ok(&state, &headers, &form.csrf) {
        return Ok(forbidden(cx.lang));
    }
    // A refusal shows on the page, in the scan's part.
    let _ = start_scan(&state, SCAN_TIME).await;
    Ok(Redirect::to("/devices").into_response())
}

async fn after(
    state: &AppState,
    cx: &Cx,
    result: Result<&'static str, ControlError>,
) -> Result<Response, WebError> {
    match result {
        Ok(code) => Ok(Redirect::to(&format!("/devices?notice={code}")).into_response()),
        Err(e) => {
            tracing::info!("device action refused: {e}");
            let devices = with_store(&state.store, |s| s.devices()).await?;
            let scan = lock(&state.scan).clone();
            let status = if e == ControlError::BluetoothOff {
                StatusCode::SERVICE_UNAVAILABLE
            } else {
                StatusCode::UNPROCESSABLE_ENTITY
            };
            Ok((
                status,
                render(
                    cx,
                    &zone(state),
                    &devices,
                    &scan,
                    None,
                    Some(&control_error_text(cx.lang, &e)),
                ),
            )
                .into_response())
        }
    }
}

/// `POST /devices/pair`: bonds with the device, answering its passkey request.
pub async fn pair(
    State(state): State<AppState>,
    headers: HeaderMap,
    Form(form): Form<DeviceForm>,
) -> Result<Response, WebError> {
    let cx = match signed_in(&state, &headers).await? {
        Ok(cx) => cx,
        Err(elsewhere) => return Ok(elsewhere),
    };
    if !csrf_ok(&state, &headers, &form.csrf) {
        return Ok(forbidden(cx.lang));
    }
    let digits = form.passkey.trim();
    let passkey = if digits.is_empty() {
        None
    } else if digits.len() <= 6 && digits.bytes().all(|b| b.is_ascii_digit()) {
        digits.parse::<u32>().ok()
    } else {
        return after(&state, &cx, Err(ControlError::InvalidPasskey)).await;
    };
    let result = state
        .control
        .pair(&form.address, passkey)
        .await
        .map(|_| "paired");
    if result.is_ok() {
        tracing::info!(address = %form.address, "device paired from the web page");
        for seen in &mut lock(&state.scan).found {
            if seen.address.eq_ignore_ascii_case(&form.address) {
                seen.paired = Some(true);
            }
        }
    }
    after(&state, &cx, result).await
}

/// `POST /devices/sync`: serves the device now.
pub async fn sync(
    State(state): State<AppState>,
    headers: HeaderMap,
    Form(form): Form<DeviceForm>,
) -> Result<Response, WebError> {
    let cx = match signed_in(&state, &headers).await? {
        Ok(cx) => cx,
        Err(elsewhere) => return Ok(elsewhere),
    };
    if !csrf_ok(&state, &headers, &form.csrf) {
        return Ok(forbidden(cx.lang));
    }
    let result = state
        .control
        .sync_now(&form.address)
        .await
        .map(|_| "synced");
    after(&state, &cx, result).await
}

/// The rename form.
#[derive(Debug, Deserialize)]
pub struct RenameForm {
    csrf: String,
    address: String,
    label: String,
}

/// `POST /devices/rename`: the household's own name for a device (empty: its own).
pub async fn rename(
    State(state): State<AppState>,
    headers: HeaderMap,
    Form(form): Form<RenameForm>,
) -> Result<Response, WebError> {
    let cx = match signed_in(&state, &headers).await? {
        Ok(cx) => cx,
        Err(elsewhere) => return Ok(elsewhere),
    };
    if !csrf_ok(&state, &headers, &form.csrf) {
        return Ok(forbidden(cx.lang));
    }
    let (address, label) = (form.address.clone(), form.label.clone());
    match with_store(&state.store, move |s| s.rename_device(&address, &label)).await {
        Ok(()) => Ok(Redirect::to("/devices?notice=renamed").into_response()),
        Err(crate::store::StoreError::NotFound(_)) => {
            after(&state, &cx, Err(ControlError::UnknownDevice(form.address))).await
        }
        Err(e) => Err(e.into()),
    }
}

/// `POST /devices/remove`: removes the bond; the hub leaves the device alone until it
/// advertises again. Its readings stay.
pub async fn remove(
    State(state): State<AppState>,
    headers: HeaderMap,
    Form(form): Form<DeviceForm>,
) -> Result<Response, WebError> {
    let cx = match signed_in(&state, &headers).await? {
        Ok(cx) => cx,
        Err(elsewhere) => return Ok(elsewhere),
    };
    if !csrf_ok(&state, &headers, &form.csrf) {
        return Ok(forbidden(cx.lang));
    }
    let result = state.control.unpair(&form.address).await.map(|_| "removed");
    after(&state, &cx, result).await
}

/// `GET /devices.js`: refreshes the scan's list while it runs, unless a field in it is being
/// filled in.
pub async fn script() -> Response {
    (
        [(header::CONTENT_TYPE, "text/javascript; charset=utf-8")],
        SCRIPT,
    )
        .into_response()
}

const SCRIPT: &str = r#""use strict";
(function () {
  const region = document.getElementById("scan-region");
  if (!region || region.dataset.running !== "true") return;
  async function refresh() {
    const answer = await fetch("/devices/found", { credentials: "same-origin" });
    if (!answer.ok) return;
    const html = await answer.text();
    if (!region.contains(document.activeElement)) region.innerHTML = html;
    if (answer.headers.get("x-scan-running") === "true") setTimeout(refresh, 1000);
  }
  setTimeout(refresh, 1000);
})();
"#;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_refused_action_has_words_in_both_languages() {
        let all = [
            ControlError::BluetoothOff,
            ControlError::InvalidAddress("x".into()),
            ControlError::UnknownDevice("x".into()),
            ControlError::AdvertisesOnly("x".into()),
            ControlError::NotServed("x".into()),
            ControlError::InvalidPasskey,
            ControlError::InvalidDuration,
            ControlError::Pairing("x".into()),
            ControlError::Unpairing("x".into()),
            ControlError::UnknownMeasurement(1),
            ControlError::NotInInbox(1),
            ControlError::UnknownMember("x".into()),
            ControlError::Store("x".into()),
        ];
        for e in &all {
            for lang in [Lang::Fr, Lang::En] {
                let text = control_error_text(lang, e);
                assert!(!text.contains('⟦'), "{}: {text}", e.code());
            }
        }
    }
}
