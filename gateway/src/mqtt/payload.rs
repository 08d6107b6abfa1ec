//! What the bridge publishes: topics, the reading payload (version 1, schema in
//! `docs/mqtt/reading.schema.json`), device states.

use relais_protocol::{Reading, ReadingValue};
use serde_json::{Value, json};

use crate::store::StoredMeasurement;
use crate::store::devices::StoredDevice;
use crate::store::members::Member;

/// The JSON Schema of the reading payload, also published retained on `<prefix>/schema/reading`.
pub const READING_SCHEMA: &str = include_str!("../../../docs/mqtt/reading.schema.json");

/// The payload version; bumped on any change an integrator would notice.
pub const VERSION: u64 = 1;

/// Slugs a member's cannot take: they are topic levels of their own.
const RESERVED: [&str; 4] = ["unassigned", "device", "status", "schema"];

/// A member's topic level: the display name in lower case, runs of anything but letters and
/// digits as one `-`; a reserved or empty result gets the member's id.
pub fn member_slug(member: &Member) -> String {
    let mut slug = String::new();
    for c in member.display_name.chars().flat_map(char::to_lowercase) {
        if c.is_alphanumeric() {
            slug.push(c);
        } else if !slug.is_empty() && !slug.ends_with('-') {
            slug.push('-');
        }
    }
    let slug = slug.trim_end_matches('-').to_owned();
    if slug.is_empty() {
        format!("member-{}", member.id.0)
    } else if RESERVED.contains(&slug.as_str()) {
        format!("{slug}-{}", member.id.0)
    } else {
        slug
    }
}

/// A device's topic level: its address without colons, lower case.
pub fn device_slug(address: &str) -> String {
    address
        .chars()
        .filter(char::is_ascii_alphanumeric)
        .map(|c| c.to_ascii_lowercase())
        .collect()
}

/// A reading kind's topic level (`body_weight`).
pub fn kind_slug(reading: &Reading) -> String {
    serde_json::to_value(reading.kind)
        .ok()
        .and_then(|v| v.as_str().map(str::to_owned))
        .unwrap_or_else(|| "unknown".to_owned())
}

/// The reading payload of reading `index` of `m`.
pub fn reading(
    m: &StoredMeasurement,
    index: usize,
    reading: &Reading,
    device: Option<&StoredDevice>,
    member: Option<(&Member, &str)>,
) -> Value {
    let mut out = serde_json::Map::new();
    out.insert("version".into(), json!(VERSION));
    out.insert("measurement_id".into(), json!(m.id.0));
    out.insert("reading_index".into(), json!(index));
    out.insert(
        "device".into(),
        json!({
            "address": m.address,
            "kind": m.device_kind,
            "manufacturer": device.and_then(|d| d.identity.manufacturer.clone()),
            "model": device.and_then(|d| d.identity.model.clone()),
        }),
    );
    out.insert("kind".into(), json!(kind_slug(reading)));
    match reading.value {
        ReadingValue::Single(q) => {
            out.insert("value".into(), json!(q));
        }
        ReadingValue::BloodPressure {
            systolic,
            diastolic,
            mean_arterial_pressure,
        } => {
            out.insert("systolic".into(), json!(systolic));
            out.insert("diastolic".into(), json!(diastolic));
            out.insert(
                "mean_arterial_pressure".into(),
                json!(mean_arterial_pressure),
            );
        }
    }
    out.insert("measured_at".into(), json!(reading.time));
    out.insert("received_at".into(), json!(m.received_at.to_string()));
    out.insert(
        "member".into(),
        member.map_or(
            Value::Null,
            |(member, slug)| json!({ "id": member.id.0, "slug": slug }),
        ),
    );
    out.insert("user_index".into(), json!(reading.user));
    out.insert("sequence_number".into(), json!(reading.sequence_number));
    out.insert("status".into(), json!(reading.status));
    out.insert("context".into(), json!(reading.context));
    Value::Object(out)
}

/// How reading payloads are encoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// UTF-8 JSON.
    Json,
    /// CBOR (RFC 8949), the same structure.
    Cbor,
}

impl std::str::FromStr for Format {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "json" => Ok(Self::Json),
            "cbor" => Ok(Self::Cbor),
            other => Err(format!("mqtt.format {other}: expected json or cbor")),
        }
    }
}

impl Format {
    /// `value` encoded.
    pub fn encode(self, value: &Value) -> Result<Vec<u8>, String> {
        match self {
            Self::Json => serde_json::to_vec(value).map_err(|e| e.to_string()),
            Self::Cbor => {
                let mut out = Vec::new();
                ciborium::into_writer(value, &mut out).map_err(|e| e.to_string())?;
                Ok(out)
            }
        }
    }
}

/// What the bridge knows of a device, published retained on its state topic.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct DeviceState {
    /// `AA:BB:CC:DD:EE:FF`.
    pub address: String,
    /// Advertised name.
    pub name: Option<String>,
    /// `weight_scale`, ...
    pub kind: Option<String>,
    /// Device Information.
    pub manufacturer: Option<String>,
    /// See `manufacturer`.
    pub model: Option<String>,
    /// Battery level, percent, when the device reports it (none does yet).
    pub battery: Option<u8>,
    /// Last time the hub saw or served it (RFC 3339, UTC).
    pub last_seen: Option<String>,
    /// Bonded in BlueZ (`None`: unknown).
    pub paired: Option<bool>,
}

impl DeviceState {
    /// From the store's record.
    pub fn from_stored(d: &StoredDevice) -> Self {
        Self {
            address: d.identity.address.clone(),
            name: d.identity.name.clone(),
            kind: Some(d.kind.clone()),
            manufacturer: d.identity.manufacturer.clone(),
            model: d.identity.model.clone(),
            battery: None,
            last_seen: Some(d.last_seen.clone()),
            paired: d.bonded,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::{MemberId, MesState};

    fn member(name: &str) -> Member {
        Member {
            id: MemberId(7),
            display_name: name.into(),
            mes_state: MesState::Unlinked,
            mes_state_detail: None,
            id_pe: None,
            assigning_authority: None,
        }
    }

    #[test]
    fn slugs_are_single_topic_levels() {
        assert_eq!(member_slug(&member("Camille")), "camille");
        assert_eq!(member_slug(&member("Zoé  Martin/+#")), "zoé-martin");
        assert_eq!(member_slug(&member("  ")), "member-7");
        assert_eq!(member_slug(&member("Device")), "device-7");
        assert_eq!(device_slug("C0:FF:EE:00:02:01"), "c0ffee000201");
    }

    #[test]
    fn the_schema_is_json_and_names_what_the_payload_requires() {
        let schema: Value = serde_json::from_str(READING_SCHEMA).unwrap();
        assert_eq!(schema["properties"]["version"]["const"], json!(VERSION));
        for key in schema["required"].as_array().unwrap() {
            assert!(schema["properties"].get(key.as_str().unwrap()).is_some());
        }
    }

    #[test]
    fn cbor_carries_the_same_structure() {
        let value = json!({"kind": "body_weight", "value": {"value": 72.35, "unit": "kg"}});
        let bytes = Format::Cbor.encode(&value).unwrap();
        let back: Value = ciborium::from_reader(bytes.as_slice()).unwrap();
        assert_eq!(back, value);
    }
}
