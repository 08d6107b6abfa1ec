//! Whether MES already holds an Observation the hub sent: after a crash, a timeout or a lost
//! connection the answer never came, and API Mesures has no idempotent write, so the hub looks
//! before it sends again.
//!
//! The search asks for the patient's measures of the same code at the same instant
//! (`date=ge`/`le` on the effective time) and compares what identifies the hub's write: the
//! same source (the hub's OID), the same value and the same device identifier.

use reqwest::header;
use serde_json::Value;

use super::pairing::Tokens;
use super::upload::{ID_TOKEN_HEADER, UploadError, Uploader, transport_error};

/// What a search must match in a Bundle's Observation.
#[derive(Debug, Clone, PartialEq)]
struct Fingerprint {
    subject: String,
    code: String,
    effective: jiff::Timestamp,
    source: Option<String>,
    values: Vec<(String, f64)>,
}

fn text<'a>(value: &'a Value, pointer: &str) -> Option<&'a str> {
    value.pointer(pointer).and_then(Value::as_str)
}

fn numbers(observation: &Value) -> Vec<(String, f64)> {
    let quantity = |q: &Value| {
        let code = text(q, "/code").unwrap_or_default().to_owned();
        q.pointer("/value")
            .and_then(Value::as_f64)
            .map(|v| (code, v))
    };
    let mut out: Vec<(String, f64)> = observation
        .get("valueQuantity")
        .and_then(quantity)
        .into_iter()
        .collect();
    if let Some(components) = observation.pointer("/component").and_then(Value::as_array) {
        out.extend(components.iter().filter_map(|c| {
            let (unit, v) = quantity(c.get("valueQuantity")?)?;
            let code = text(c, "/code/coding/0/code").unwrap_or_default();
            Some((format!("{code}/{unit}"), v))
        }));
    }
    out
}

fn fingerprint(observation: &Value) -> Option<Fingerprint> {
    let system = text(observation, "/subject/identifier/system")?;
    let value = text(observation, "/subject/identifier/value")?;
    let system = system.strip_prefix("urn:oid:").unwrap_or(system);
    Some(Fingerprint {
        subject: format!("{system}|{value}"),
        code: text(observation, "/code/coding/0/code")?.to_owned(),
        effective: text(observation, "/effectiveDateTime")?.parse().ok()?,
        source: text(observation, "/meta/source").map(str::to_owned),
        values: numbers(observation),
    })
}

fn same(sent: &Fingerprint, found: &Value) -> bool {
    let Some(found) = fingerprint(found) else {
        return false;
    };
    found.code == sent.code
        && found.effective == sent.effective
        && (sent.source.is_none() || found.source == sent.source)
        && found.values.len() == sent.values.len()
        && found
            .values
            .iter()
            .zip(&sent.values)
            .all(|((a, x), (b, y))| a == b && (x - y).abs() < 1e-9)
}

impl Uploader {
    /// Whether MES already holds the Observation of `bundle` (a transaction Bundle this hub
    /// built). Needs the read consent; its absence is an error the caller decides on.
    pub async fn already_stored(
        &self,
        tokens: &Tokens,
        bundle: &Value,
    ) -> Result<bool, UploadError> {
        let observation = bundle.pointer("/entry/0/resource").unwrap_or(&Value::Null);
        let sent = fingerprint(observation).ok_or_else(|| {
            UploadError::Request("the Bundle's Observation lacks subject, code or time".into())
        })?;
        let effective = text(observation, "/effectiveDateTime").unwrap_or_default();
        let mut url = self.endpoint().clone();
        url.path_segments_mut()
            .map_err(|()| UploadError::Request("the FHIR base URL cannot take a path".into()))?
            .push("Observation");
        let response = self
            .http()
            .get(url)
            .bearer_auth(tokens.access_token())
            .header(ID_TOKEN_HEADER, tokens.id_token())
            .header(header::ACCEPT, "application/fhir+json")
            .query(&[
                ("subject.identifier", sent.subject.as_str()),
                ("code", sent.code.as_str()),
                ("date", &format!("ge{effective}")),
                ("date", &format!("le{effective}")),
                ("_count", "100"),
            ])
            .send()
            .await
            .map_err(transport_error)?;
        let status = response.status().as_u16();
        let body = response.bytes().await.map_err(transport_error)?;
        match status {
            200 => {}
            401 => return Err(UploadError::NeedsRefresh),
            403 => return Err(UploadError::ConsentWithdrawn),
            408 | 429 | 500..=599 => return Err(UploadError::Retry { after: None }),
            status => return Err(UploadError::Unexpected { status }),
        }
        let found: Value = serde_json::from_slice(&body)
            .map_err(|e| UploadError::Request(format!("search answer: {e}")))?;
        Ok(found
            .pointer("/entry")
            .and_then(Value::as_array)
            .is_some_and(|entries| {
                entries
                    .iter()
                    .filter_map(|e| e.get("resource"))
                    .any(|r| same(&sent, r))
            }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn observation(value: f64, at: &str) -> Value {
        json!({
            "resourceType": "Observation",
            "meta": {"source": "urn:oid:2.999.42.1.7"},
            "subject": {"identifier": {"system": "urn:oid:2.999.42.1", "value": "idpe-1"}},
            "code": {"coding": [{"code": "29463-7"}]},
            "effectiveDateTime": at,
            "valueQuantity": {"value": value, "code": "kg"},
        })
    }

    #[test]
    fn the_same_write_is_recognised_and_another_is_not() {
        let sent = fingerprint(&observation(72.4, "2024-03-01T08:00:00+01:00")).unwrap();
        assert_eq!(sent.subject, "2.999.42.1|idpe-1");
        // The same instant written in UTC is the same write.
        assert!(same(&sent, &observation(72.4, "2024-03-01T07:00:00Z")));
        assert!(!same(
            &sent,
            &observation(72.5, "2024-03-01T08:00:00+01:00")
        ));
        assert!(!same(
            &sent,
            &observation(72.4, "2024-03-01T08:00:01+01:00")
        ));
        let mut other_source = observation(72.4, "2024-03-01T08:00:00+01:00");
        other_source["meta"]["source"] = json!("urn:oid:1.2.3");
        assert!(!same(&sent, &other_source));
    }

    #[test]
    fn blood_pressure_components_are_compared() {
        let bp = |sys: f64| {
            json!({
                "subject": {"identifier": {"system": "urn:oid:1.2", "value": "p"}},
                "code": {"coding": [{"code": "85354-9"}]},
                "effectiveDateTime": "2024-03-01T08:00:00Z",
                "component": [
                    {"code": {"coding": [{"code": "8480-6"}]}, "valueQuantity": {"value": sys, "code": "mm[Hg]"}},
                    {"code": {"coding": [{"code": "8462-4"}]}, "valueQuantity": {"value": 80.0, "code": "mm[Hg]"}},
                ],
            })
        };
        let sent = fingerprint(&bp(120.0)).unwrap();
        assert!(same(&sent, &bp(120.0)));
        assert!(!same(&sent, &bp(121.0)));
    }
}
