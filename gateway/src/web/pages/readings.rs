//! A member's readings: charts of weight, blood pressure and glucose, and the table of every
//! measurement with whether it reached Mon espace santé.

use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use maud::html;

use crate::hub::ingest::with_store;
use crate::store::outbox::Backlog;
use crate::store::{MemberId, MesState, Sink, StoredMeasurement};
use crate::web::auth::signed_in;
use crate::web::charts::{self, Chart, GLUCOSE_TARGET_MG_DL, Series};
use crate::web::i18n::Lang;
use crate::web::layout::{self, Cx};
use crate::web::pages::{kind_name, readings_of, value_text, when, zone};
use crate::web::state::{AppState, WebError};

/// Measurements shown at most.
const SHOWN: usize = 200;

fn delivery_text(cx: &Cx, linked: bool, b: &Backlog) -> String {
    if b.quarantined > 0 {
        cx.t("readings.mes_refused")
    } else if b.pending > 0 || b.sending > 0 {
        if linked {
            cx.t("readings.mes_waiting")
        } else {
            cx.t("readings.mes_waiting_link")
        }
    } else if b.sent > 0 {
        cx.t("readings.mes_sent")
    } else if b.unsendable > 0 {
        cx.t("readings.mes_not_for_mes")
    } else {
        cx.t("readings.mes_not_sent")
    }
}

/// The charts the measurements allow, oldest point first.
fn charts_of(
    cx: &Cx,
    oldest_first: &[&StoredMeasurement],
    zone: &jiff::tz::TimeZone,
) -> Vec<Chart> {
    let lang = cx.lang;
    let mut out = Vec::new();
    let pick = |kind: &str| -> Vec<(&StoredMeasurement, crate::web::pages::ReadingView)> {
        oldest_first
            .iter()
            .flat_map(|m| readings_of(m).into_iter().map(move |r| (*m, r)))
            .filter(|(_, r)| r.kind == kind && r.value.is_some())
            .collect()
    };
    let span = |points: &[(&StoredMeasurement, crate::web::pages::ReadingView)]| {
        (
            points
                .first()
                .map(|(m, _)| when(lang, m, zone))
                .unwrap_or_default(),
            points
                .last()
                .map(|(m, _)| when(lang, m, zone))
                .unwrap_or_default(),
        )
    };
    let weights = pick("body_weight");
    if !weights.is_empty() {
        out.push(Chart {
            id: "chart-weight".into(),
            title: cx.t("readings.chart_weight"),
            unit: "kg".into(),
            series: vec![Series {
                name: kind_name(lang, "body_weight"),
                values: weights.iter().filter_map(|(_, r)| r.value).collect(),
                colour: "#0b4f8a",
                dashed: false,
            }],
            band: None,
            span: span(&weights),
        });
    }
    let pressures = pick("blood_pressure");
    if !pressures.is_empty() {
        out.push(Chart {
            id: "chart-pressure".into(),
            title: cx.t("readings.chart_pressure"),
            unit: "mmHg".into(),
            series: vec![
                Series {
                    name: cx.t("readings.systolic"),
                    values: pressures.iter().filter_map(|(_, r)| r.value).collect(),
                    colour: "#a4001d",
                    dashed: false,
                },
                Series {
                    name: cx.t("readings.diastolic"),
                    values: pressures.iter().filter_map(|(_, r)| r.diastolic).collect(),
                    colour: "#0b4f8a",
                    dashed: true,
                },
            ],
            band: None,
            span: span(&pressures),
        });
    }
    let glucose = pick("blood_glucose");
    if !glucose.is_empty() {
        out.push(Chart {
            id: "chart-glucose".into(),
            title: cx.t("readings.chart_glucose"),
            unit: "mg/dL".into(),
            series: vec![Series {
                name: kind_name(lang, "blood_glucose"),
                values: glucose.iter().filter_map(|(_, r)| r.value).collect(),
                colour: "#5a2d82",
                dashed: false,
            }],
            band: Some(GLUCOSE_TARGET_MG_DL),
            span: span(&glucose),
        });
    }
    out
}

/// `GET /members/{id}/readings`
pub async fn page(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<i64>,
) -> Result<Response, WebError> {
    let cx = match signed_in(&state, &headers).await? {
        Ok(cx) => cx,
        Err(elsewhere) => return Ok(elsewhere),
    };
    let member = MemberId(id);
    let (member, measurements, deliveries) = with_store(&state.store, move |s| {
        let member = s.member(member)?;
        let measurements = s.measurements_of(member.id, SHOWN)?;
        let deliveries = measurements
            .iter()
            .map(|m| s.delivery_of(Sink::Mes, m.id))
            .collect::<Result<Vec<_>, _>>()?;
        Ok((member, measurements, deliveries))
    })
    .await?;
    let zone = zone(&state);
    let oldest_first: Vec<&StoredMeasurement> = measurements.iter().rev().collect();
    let charts = charts_of(&cx, &oldest_first, &zone);
    let linked = member.mes_state == MesState::Linked;
    let lang: Lang = cx.lang;
    let title = cx.tf("readings.title", &[("name", member.display_name.as_str())]);
    Ok(layout::page_at(
        &cx,
        "/members",
        &title,
        html! {
            @if measurements.is_empty() {
                p { (cx.t("readings.none")) }
            }
            @for chart in &charts {
                (charts::render(lang, chart))
            }
            @if !measurements.is_empty() {
                table {
                    caption { (cx.t("readings.table_caption")) }
                    thead { tr {
                        th scope="col" { (cx.t("readings.when")) }
                        th scope="col" { (cx.t("readings.what")) }
                        th scope="col" { (cx.t("readings.mes")) }
                    } }
                    tbody {
                        @for (m, delivery) in measurements.iter().zip(&deliveries) {
                            tr {
                                th scope="row" { (when(cx.lang, m, &zone)) }
                                td {
                                    @for (i, r) in readings_of(m).iter().enumerate() {
                                        @if i > 0 { br; }
                                        (kind_name(lang, &r.kind)) " : " (value_text(lang, r))
                                    }
                                }
                                td { (delivery_text(&cx, linked, delivery)) }
                            }
                        }
                    }
                }
            }
            p { a href="/members" { (cx.t("members.back")) } }
        },
    )
    .into_response())
}
