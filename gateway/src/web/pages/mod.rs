//! The pages, one module per area, and what they share: how a stored measurement is shown.

pub mod devices;
pub mod inbox;
pub mod members;
pub mod readings;
pub mod settings;
pub mod status;

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use maud::html;
use serde_json::Value;

use crate::store::StoredMeasurement;
use crate::web::auth::signed_in;
use crate::web::i18n::{Lang, t, tf};
use crate::web::layout::{self, STYLE};
use crate::web::state::{AppState, WebError};

/// `GET /`: the household.
pub async fn home(State(state): State<AppState>, headers: HeaderMap) -> Result<Response, WebError> {
    Ok(match signed_in(&state, &headers).await? {
        Ok(_) => Redirect::to("/members").into_response(),
        Err(elsewhere) => elsewhere,
    })
}

/// `GET /style.css`
pub async fn style() -> Response {
    ([(header::CONTENT_TYPE, "text/css; charset=utf-8")], STYLE).into_response()
}

/// Any other path.
pub async fn not_found(headers: HeaderMap) -> Response {
    let lang = Lang::from_request(&headers);
    not_found_in(lang)
}

/// The 404 page, in French.
pub fn not_found_response() -> Response {
    not_found_in(Lang::Fr)
}

fn not_found_in(lang: Lang) -> Response {
    (
        StatusCode::NOT_FOUND,
        layout::bare(
            lang,
            &t(lang, "errors.not_found_title"),
            html! {
                p { (t(lang, "errors.not_found")) }
                p { a href="/" { (t(lang, "errors.back_home")) } }
            },
        ),
    )
        .into_response()
}

/// One reading of a measurement, ready to show.
#[derive(Debug, Clone, PartialEq)]
pub struct ReadingView {
    /// The kind (`body_weight`, ...).
    pub kind: String,
    /// The value, or the systolic pressure, in the kind's canonical unit.
    pub value: Option<f64>,
    /// The diastolic pressure.
    pub diastolic: Option<f64>,
    /// The unit as people write it (`mmHg`, `°C`).
    pub unit: String,
}

fn number(q: &Value) -> Option<f64> {
    q.get("value").and_then(Value::as_f64)
}

fn unit_of(q: &Value) -> String {
    let ucum = q.get("unit").and_then(Value::as_str).unwrap_or("");
    match ucum {
        "mm[Hg]" => "mmHg",
        "Cel" => "°C",
        "[degF]" => "°F",
        "[lb_av]" => "lb",
        "/min" => "/min",
        "kg/m2" => "kg/m²",
        other => other,
    }
    .to_owned()
}

/// The readings of a measurement, from the JSON stored beside its bytes.
pub fn readings_of(m: &StoredMeasurement) -> Vec<ReadingView> {
    let Some(list) = m.readings.as_array() else {
        return Vec::new();
    };
    list.iter()
        .map(|r| {
            let kind = r
                .get("kind")
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_owned();
            let value = r.get("value").cloned().unwrap_or(Value::Null);
            if let Some(bp) = value.get("blood_pressure") {
                let systolic = bp.get("systolic").cloned().unwrap_or(Value::Null);
                ReadingView {
                    kind,
                    value: number(&systolic),
                    diastolic: bp.get("diastolic").and_then(number),
                    unit: unit_of(&systolic),
                }
            } else {
                let single = value.get("single").cloned().unwrap_or(Value::Null);
                ReadingView {
                    kind,
                    value: number(&single),
                    diastolic: None,
                    unit: unit_of(&single),
                }
            }
        })
        .collect()
}

/// A number as the language writes it (decimal comma in French), at most two decimals.
pub fn format_number(lang: Lang, value: f64) -> String {
    let text = format!("{:.2}", value);
    let text = text.trim_end_matches('0').trim_end_matches('.').to_owned();
    match lang {
        Lang::Fr => text.replace('.', ","),
        Lang::En => text,
    }
}

/// A reading as text: `72,5 kg`, `120/80 mmHg`.
pub fn value_text(lang: Lang, r: &ReadingView) -> String {
    match (r.value, r.diastolic) {
        (Some(s), Some(d)) => format!(
            "{}/{} {}",
            format_number(lang, s),
            format_number(lang, d),
            r.unit
        ),
        (Some(v), None) => format!("{} {}", format_number(lang, v), r.unit),
        _ => t(lang, "readings.no_value"),
    }
}

/// The name of a kind of reading.
pub fn kind_name(lang: Lang, kind: &str) -> String {
    t(lang, &format!("kinds.{kind}"))
}

/// When a measurement was taken, as the device says (its local time), else when the hub
/// received it (in the household's zone).
pub fn when(lang: Lang, m: &StoredMeasurement, zone: &jiff::tz::TimeZone) -> String {
    let device_time = m
        .measured_at
        .as_deref()
        .and_then(|t| t.parse::<jiff::civil::DateTime>().ok());
    match device_time {
        Some(local) => human_time(lang, local),
        None => human_time(lang, zone.to_datetime(m.received_at)),
    }
}

/// A stored UTC time (RFC 3339) in the household's zone, to the minute.
pub fn local_time(lang: Lang, zone: &jiff::tz::TimeZone, stored: &str) -> String {
    stored
        .parse::<jiff::Timestamp>()
        .map(|t| human_time(lang, zone.to_datetime(t)))
        .unwrap_or_else(|_| stored.to_owned())
}

/// A date and time as people write it, to the minute: "27 nov. 2026 à 06:08",
/// "27 Nov 2026, 06:08".
pub fn human_time(lang: Lang, at: jiff::civil::DateTime) -> String {
    let (day, year) = (at.day().to_string(), at.year().to_string());
    let time = format!("{:02}:{:02}", at.hour(), at.minute());
    tf(
        lang,
        "dates.at",
        &[
            ("day", &day),
            ("month", &t(lang, &format!("dates.month_{}", at.month()))),
            ("year", &year),
            ("time", &time),
        ],
    )
}

/// The household's zone, UTC when the configured one is unknown.
pub fn zone(state: &AppState) -> jiff::tz::TimeZone {
    jiff::tz::TimeZone::get(&state.config.hub.time_zone).unwrap_or(jiff::tz::TimeZone::UTC)
}

/// The notice codes pages accept after a form (`?notice=added`): never free text.
pub fn notice(lang: Lang, code: Option<&str>) -> Option<String> {
    let key = match code? {
        "added" => "notices.added",
        "assigned" => "notices.assigned",
        "linked" => "notices.linked",
        "unlinked" => "notices.unlinked",
        "unlinked_not_revoked" => "notices.unlinked_not_revoked",
        "paired" => "notices.paired",
        "synced" => "notices.synced",
        "removed" => "notices.removed",
        "renamed" => "notices.renamed",
        _ => return None,
    };
    Some(t(lang, key))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_follow_the_language() {
        assert_eq!(format_number(Lang::Fr, 72.5), "72,5");
        assert_eq!(format_number(Lang::En, 72.5), "72.5");
        assert_eq!(format_number(Lang::En, 120.0), "120");
        assert_eq!(format_number(Lang::Fr, 0.1 + 0.2), "0,3");
    }

    #[test]
    fn times_read_as_people_write_them() {
        let at = jiff::civil::date(2026, 11, 27).at(6, 8, 0, 0);
        assert_eq!(human_time(Lang::Fr, at), "27 nov. 2026 à 06:08");
        assert_eq!(human_time(Lang::En, at), "27 Nov 2026, 06:08");
        let march = jiff::civil::date(2026, 3, 1).at(23, 59, 59, 0);
        assert_eq!(human_time(Lang::Fr, march), "1 mars 2026 à 23:59");
        // Stored in UTC, shown in the household's zone (UTC+1 in November).
        let paris = jiff::tz::TimeZone::get("Europe/Paris").unwrap();
        assert_eq!(
            local_time(Lang::Fr, &paris, "2026-11-27T05:08:00Z"),
            "27 nov. 2026 à 06:08"
        );
    }
}
