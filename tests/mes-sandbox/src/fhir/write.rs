//! `POST /fhir`: the transaction Bundle that writes one measure (IHE POU PCH-01 as MES uses it).

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::Response;
use serde_json::{Map, Value, json};
use uuid::Uuid;

use super::auth::{authenticate, require_consent};
use super::error::FhirError;
use super::outcome::{IssueType, OperationOutcome, fhir_json};
use super::validate::{EntryKind, Rejection, WriteContext, validate_write};
use crate::server::AppState;
use crate::store::fhir::{DeviceOutcome, NewDevice, NewObservation};
use crate::store::{now_ms, rfc3339};

/// Whether the request declares a JSON body (`application/fhir+json` or `application/json`).
fn is_json(headers: &HeaderMap) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(|v| {
            v.split(';')
                .next()
                .unwrap_or("")
                .trim()
                .to_ascii_lowercase()
        })
        .is_some_and(|m| m == "application/fhir+json" || m == "application/json")
}

/// Handles one write.
pub(crate) async fn transaction(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, FhirError> {
    let caller = authenticate(&state, &headers)?;
    require_consent(&state, &caller, true)?;
    let text = std::str::from_utf8(&body).map_err(|_| FhirError::NoBundle)?;
    if text.trim().is_empty() {
        return Err(FhirError::NoBundle);
    }
    if !is_json(&headers) {
        return Ok(OperationOutcome::error(
            IssueType::NotSupported,
            "Content-Type must be application/fhir+json.",
        )
        .into_response_with(StatusCode::UNSUPPORTED_MEDIA_TYPE));
    }
    let bundle: Value = serde_json::from_str(text).map_err(|_| FhirError::NoBundle)?;
    let ctx = WriteContext {
        partner_oid: &caller.partner.oid,
        assign_auth: caller.assign_auth(),
        id_pe: caller.id_pe(),
        patterns: &state.patterns,
    };
    let valid = validate_write(&bundle, &ctx).map_err(|r| match r {
        Rejection::NoBundle => FhirError::NoBundle,
        Rejection::IdPeMismatch => FhirError::IdPeMismatch,
        Rejection::Invalid(issues) => FhirError::Unprocessable(issues),
    })?;

    let now = now_ms();
    let last_updated = rfc3339(now);
    let observation_id = Uuid::new_v4().to_string();
    let resource = stored_observation(
        valid.observation,
        &observation_id,
        &caller.partner.oid,
        &last_updated,
    );
    let device = valid.device.map(|d| NewDevice {
        id_hint: d.id,
        identifier_system: d.identifier_system,
        identifier_value: d.identifier_value,
        resource: with_meta(d.resource, &last_updated),
    });
    let device_outcome = state.store.commit_write(
        device,
        NewObservation {
            id: observation_id.clone(),
            id_pe: caller.id_pe().to_owned(),
            assign_auth: caller.assign_auth().to_owned(),
            code: valid.code,
            effective: valid.effective,
            effective_ms: valid.effective_ms,
            client_id: caller.grant.client_id.clone(),
            resource,
            raw_bundle: text.to_owned(),
        },
        now,
    )?;
    tracing::debug!(observation = %observation_id, "measure accepted");

    let entries: Vec<Value> = valid
        .entry_order
        .iter()
        .map(|kind| match (kind, &device_outcome) {
            (EntryKind::Device, Some(DeviceOutcome::Created(id))) => {
                response_entry("201 Created", &format!("Device/{id}"), &last_updated)
            }
            (EntryKind::Device, Some(DeviceOutcome::Existing(id))) => {
                response_entry("200 OK", &format!("Device/{id}"), &last_updated)
            }
            _ => response_entry(
                "201 Created",
                &format!("Observation/{observation_id}"),
                &last_updated,
            ),
        })
        .collect();
    Ok(fhir_json(
        StatusCode::OK,
        &json!({
            "resourceType": "Bundle",
            "id": Uuid::new_v4().to_string(),
            "meta": { "lastUpdated": last_updated },
            "type": "transaction-response",
            "entry": entries,
        }),
    ))
}

fn response_entry(status: &str, location: &str, last_modified: &str) -> Value {
    json!({ "response": {
        "status": status,
        "location": location,
        "etag": "W/\"1\"",
        "lastModified": last_modified,
    }})
}

/// Sets `meta.versionId` and `meta.lastUpdated` as a FHIR server does.
fn with_meta(mut resource: Value, last_updated: &str) -> Value {
    if let Some(obj) = resource.as_object_mut() {
        let meta = obj
            .entry("meta")
            .or_insert_with(|| Value::Object(Map::new()));
        if let Some(meta) = meta.as_object_mut() {
            meta.insert("versionId".into(), json!("1"));
            meta.insert("lastUpdated".into(), json!(last_updated));
        }
    }
    resource
}

/// The Observation as MES keeps it: server id, and `meta.source` set to the partner OID when
/// the partner did not send one.
fn stored_observation(
    observation: Value,
    id: &str,
    partner_oid: &str,
    last_updated: &str,
) -> Value {
    let mut resource = with_meta(observation, last_updated);
    if let Some(obj) = resource.as_object_mut() {
        obj.insert("id".into(), json!(id));
        if let Some(meta) = obj.get_mut("meta").and_then(Value::as_object_mut) {
            meta.entry("source")
                .or_insert_with(|| json!(format!("urn:oid:{partner_oid}")));
        }
    }
    resource
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stored_observation_gets_server_id_and_default_source() {
        let v = stored_observation(
            json!({"resourceType": "Observation", "id": "client-id", "meta": {"profile": ["p"]}}),
            "server-id",
            "1.2.3",
            "2024-01-01T00:00:00Z",
        );
        assert_eq!(v["id"], "server-id");
        assert_eq!(v["meta"]["source"], "urn:oid:1.2.3");
        assert_eq!(v["meta"]["profile"][0], "p");
        let kept = stored_observation(
            json!({"meta": {"source": "urn:oid:1.2.3.4"}}),
            "x",
            "1.2.3",
            "t",
        );
        assert_eq!(kept["meta"]["source"], "urn:oid:1.2.3.4");
    }

    #[test]
    fn json_content_types_are_recognised() {
        let mut h = HeaderMap::new();
        assert!(!is_json(&h));
        h.insert(
            header::CONTENT_TYPE,
            "application/fhir+json; charset=utf-8".parse().unwrap(),
        );
        assert!(is_json(&h));
        h.insert(header::CONTENT_TYPE, "text/plain".parse().unwrap());
        assert!(!is_json(&h));
    }
}
