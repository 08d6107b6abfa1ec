//! `GET /fhir/Observation`: the two search modes of API Mesure (spec v1.5.2 §2.3).
//!
//! - "all": `date=geX&date=leY` (both bounds), paged with `_offset` (a 0-based page index) and
//!   `_count` (default 50, at most 100);
//! - "last": `_sort=-date&_count=1`.
//!
//! Both take `subject.identifier=<AssignAuth>|<idPe>`, `code` and `_include=Observation:device`.

use std::sync::Arc;

use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use serde_json::{Value, json};
use uuid::Uuid;

use super::auth::{Caller, authenticate, require_consent};
use super::error::FhirError;
use super::outcome::{Issue, IssueType, category, fhir_json};
use super::profiles;
use super::time::Patterns;
use crate::server::AppState;
use crate::store::fhir::{ObservationRange, StoredObservation};
use crate::store::{now_ms, rfc3339};

const DEFAULT_COUNT: i64 = 50;
const MAX_COUNT: i64 = 100;

fn bad(diagnostics: impl Into<String>) -> FhirError {
    FhirError::BadRequest(vec![Issue::new(
        category::REQUEST,
        IssueType::Invalid,
        diagnostics,
    )])
}

/// The search parameters, as received.
#[derive(Debug, Default)]
struct Params {
    subject: Option<String>,
    code: Option<String>,
    dates: Vec<String>,
    sort: Option<String>,
    count: Option<String>,
    offset: Option<String>,
    include: Vec<String>,
}

impl Params {
    fn parse(query: &str) -> Result<Self, FhirError> {
        let pairs: Vec<(String, String)> = serde_urlencoded::from_str(query)
            .map_err(|_| bad("Search parameters cannot be parsed."))?;
        let mut p = Params::default();
        for (key, value) in pairs {
            let single = |slot: &mut Option<String>| {
                if slot.replace(value.clone()).is_some() {
                    Err(bad(format!("Search parameter {key} must appear once.")))
                } else {
                    Ok(())
                }
            };
            match key.as_str() {
                "subject.identifier" => single(&mut p.subject)?,
                "code" => single(&mut p.code)?,
                "_sort" => single(&mut p.sort)?,
                "_count" => single(&mut p.count)?,
                "_offset" => single(&mut p.offset)?,
                "date" => p.dates.push(value),
                "_include" => p.include.push(value),
                other => return Err(bad(format!("Unknown search parameter {other}."))),
            }
        }
        Ok(p)
    }
}

/// The mode a valid search runs in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    All { from_ms: i64, until_ms: i64 },
    Last,
}

/// Interprets the two `date` values as `[from, until)`.
fn date_range(dates: &[String], patterns: &Patterns) -> Result<Option<(i64, i64)>, FhirError> {
    let mut from = None;
    let mut until = None;
    for d in dates {
        let (Some(prefix), Some(value)) = (d.get(..2), d.get(2..)) else {
            return Err(bad(format!("Invalid date parameter {d}.")));
        };
        let (start, end) = patterns
            .search_range(value)
            .ok_or_else(|| bad(format!("Invalid date parameter {d}.")))?;
        let slot = match prefix {
            "ge" => (&mut from, start),
            "gt" => (&mut from, end),
            "le" => (&mut until, end),
            "lt" => (&mut until, start),
            _ => return Err(bad(format!("Invalid date parameter {d}."))),
        };
        if slot.0.replace(slot.1).is_some() {
            return Ok(None);
        }
    }
    Ok(from.zip(until))
}

fn parse_count(p: &Params) -> Result<Option<i64>, FhirError> {
    let Some(raw) = &p.count else {
        return Ok(None);
    };
    let n: i64 = raw
        .parse()
        .ok()
        .filter(|n| *n >= 1)
        .ok_or_else(|| bad("_count must be a positive integer."))?;
    if n > MAX_COUNT {
        return Err(bad(format!(
            "Maximum page size allowed is {MAX_COUNT}. Actual : {n}"
        )));
    }
    Ok(Some(n))
}

fn parse_mode(p: &Params, count: Option<i64>, patterns: &Patterns) -> Result<Mode, FhirError> {
    match (p.dates.is_empty(), &p.sort) {
        (false, Some(_)) => Err(bad(
            "Paged search and search last cannot be requested concurrently",
        )),
        (true, Some(sort)) => {
            if sort == "-date" && count == Some(1) {
                Ok(Mode::Last)
            } else {
                Err(bad(
                    "Sort parameter must be equals to -date (date DESC) with _count equals to 1 \
                     to retrieve last observation",
                ))
            }
        }
        (false, None) => match date_range(&p.dates, patterns)? {
            Some((from_ms, until_ms)) => Ok(Mode::All { from_ms, until_ms }),
            None => Err(bad("No search mode detected")),
        },
        (true, None) => Err(bad("No search mode detected")),
    }
}

/// Checks `subject.identifier` (`[system|]value`) against the authorized patient.
fn check_subject(p: &Params, caller: &Caller) -> Result<(), FhirError> {
    let subject = p
        .subject
        .as_deref()
        .ok_or_else(|| bad("subject.identifier is mandatory."))?;
    let (system, value) = match subject.split_once('|') {
        Some((system, value)) => (Some(system), value),
        None => (None, subject),
    };
    let system_ok =
        system.is_none_or(|s| s.strip_prefix("urn:oid:").unwrap_or(s) == caller.assign_auth());
    if !system_ok || value != caller.id_pe() {
        return Err(FhirError::IdPeMismatch);
    }
    Ok(())
}

/// Handles a search.
pub(crate) async fn search(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Result<Response, FhirError> {
    let caller = authenticate(&state, &headers)?;
    require_consent(&state, &caller, false)?;
    let p = Params::parse(query.as_deref().unwrap_or(""))?;
    check_subject(&p, &caller)?;
    let code = p.code.as_deref().ok_or_else(|| bad("code is mandatory."))?;
    let code = code.rsplit('|').next().unwrap_or(code);
    if !profiles::is_searchable_code(code) {
        return Err(bad(format!("Unknown measure code {code}.")));
    }
    let include_devices = match p.include.as_slice() {
        [] => false,
        values
            if values
                .iter()
                .all(|v| v == "Observation:device" || v == "Observation.device") =>
        {
            true
        }
        _ => return Err(bad("Only _include=Observation:device is supported.")),
    };
    let count = parse_count(&p)?;
    let page: i64 = match &p.offset {
        None => 0,
        Some(raw) => raw
            .parse()
            .ok()
            .filter(|n: &i64| *n >= 0)
            .ok_or_else(|| bad("_offset must be a non-negative integer."))?,
    };
    let mode = parse_mode(&p, count, &state.patterns)?;

    let (total, observations) = match mode {
        Mode::Last => {
            let last = state.store.last_observation(caller.id_pe(), code)?;
            (i64::from(last.is_some()), last.into_iter().collect())
        }
        Mode::All { from_ms, until_ms } => {
            let count = count.unwrap_or(DEFAULT_COUNT);
            state.store.search_observations(&ObservationRange {
                id_pe: caller.id_pe(),
                code,
                from_ms,
                until_ms,
                limit: count,
                offset: page.saturating_mul(count),
            })?
        }
    };
    let links = links(&state.base_url, &p, mode, code, count, page, total);
    let mut entries: Vec<Value> = observations
        .iter()
        .map(|o| entry(&state.base_url, "Observation", &o.id, &o.resource, "match"))
        .collect();
    if include_devices {
        entries.extend(included_devices(&state, &observations)?);
    }
    Ok(fhir_json(
        StatusCode::OK,
        &json!({
            "resourceType": "Bundle",
            "id": Uuid::new_v4().to_string(),
            "meta": { "lastUpdated": rfc3339(now_ms()) },
            "type": "searchset",
            "total": total,
            "link": links,
            "entry": entries,
        }),
    ))
}

fn entry(base: &str, rtype: &str, id: &str, resource: &Value, mode: &str) -> Value {
    json!({
        "fullUrl": format!("{base}/fhir/{rtype}/{id}"),
        "resource": resource,
        "search": { "mode": mode },
    })
}

/// The Devices of a page, each once, in the order their Observations reference them.
fn included_devices(
    state: &AppState,
    observations: &[StoredObservation],
) -> Result<Vec<Value>, FhirError> {
    let mut ids: Vec<String> = Vec::new();
    for id in observations.iter().filter_map(|o| o.device_id.as_ref()) {
        if !ids.contains(id) {
            ids.push(id.clone());
        }
    }
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    let devices = state.store.list_devices(Some(&ids))?;
    Ok(ids
        .iter()
        .filter_map(|id| devices.iter().find(|d| &d.id == id))
        .map(|d| entry(&state.base_url, "Device", &d.id, &d.resource, "include"))
        .collect())
}

/// `self`, and `next`/`previous` links of a paged search.
fn links(
    base: &str,
    p: &Params,
    mode: Mode,
    code: &str,
    count: Option<i64>,
    page: i64,
    total: i64,
) -> Vec<Value> {
    let url = |page: Option<i64>| {
        let mut q = url::form_urlencoded::Serializer::new(String::new());
        if let Some(s) = &p.subject {
            q.append_pair("subject.identifier", s);
        }
        q.append_pair("code", code);
        for d in &p.dates {
            q.append_pair("date", d);
        }
        if let Some(s) = &p.sort {
            q.append_pair("_sort", s);
        }
        for i in &p.include {
            q.append_pair("_include", i);
        }
        if let Some(page) = page {
            q.append_pair("_offset", &page.to_string());
        }
        if let Some(c) = count.or(page.map(|_| DEFAULT_COUNT)) {
            q.append_pair("_count", &c.to_string());
        }
        format!("{base}/fhir/Observation?{}", q.finish())
    };
    match mode {
        Mode::Last => vec![json!({ "relation": "self", "url": url(None) })],
        Mode::All { .. } => {
            let size = count.unwrap_or(DEFAULT_COUNT);
            let mut links = vec![json!({ "relation": "self", "url": url(Some(page)) })];
            if page.saturating_add(1).saturating_mul(size) < total {
                links.push(json!({ "relation": "next", "url": url(Some(page + 1)) }));
            }
            if page > 0 {
                links.push(json!({ "relation": "previous", "url": url(Some(page - 1)) }));
            }
            links
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mode(query: &str) -> Result<Mode, String> {
        let patterns = Patterns::new().unwrap();
        let p = Params::parse(query).map_err(|e| format!("{e:?}"))?;
        let count = parse_count(&p).map_err(|e| format!("{e:?}"))?;
        parse_mode(&p, count, &patterns).map_err(|e| format!("{e:?}"))
    }

    #[test]
    fn all_mode_needs_both_bounds() {
        assert!(matches!(
            mode("date=ge2022-09-04&date=le2022-09-23"),
            Ok(Mode::All { .. })
        ));
        assert!(
            mode("date=ge2022-09-04")
                .unwrap_err()
                .contains("No search mode detected")
        );
        assert!(
            mode("date=ge2022-09-04&date=ge2022-09-05")
                .unwrap_err()
                .contains("No search mode")
        );
    }

    #[test]
    fn le_bound_includes_the_whole_day() {
        let Ok(Mode::All { from_ms, until_ms }) = mode("date=ge2022-09-04&date=le2022-09-04")
        else {
            panic!("all mode expected");
        };
        assert_eq!(until_ms - from_ms, 86_400_000);
    }

    #[test]
    fn last_mode_needs_sort_and_count_one() {
        assert_eq!(mode("_sort=-date&_count=1"), Ok(Mode::Last));
        assert!(
            mode("_sort=-date&_count=2")
                .unwrap_err()
                .contains("Sort parameter")
        );
        assert!(
            mode("_sort=date&_count=1")
                .unwrap_err()
                .contains("Sort parameter")
        );
        assert!(
            mode("_sort=-date&_count=1&date=ge2022-01-01&date=le2022-02-01")
                .unwrap_err()
                .contains("concurrently")
        );
        assert!(mode("").unwrap_err().contains("No search mode detected"));
    }

    #[test]
    fn page_size_above_100_is_refused() {
        assert!(
            mode("_count=101&date=ge2022-01-01&date=le2022-02-01")
                .unwrap_err()
                .contains("Maximum page size allowed is 100. Actual : 101")
        );
    }
}
