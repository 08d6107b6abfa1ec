//! The transaction Bundle MES API Mesure takes (reference §2.1): one Observation created, one
//! Device created unless it exists (`ifNoneExist`), both with `urn:uuid` full URLs.
//!
//! Ids are name-based (UUID v5) rather than random: the Observation's from its dedup key, the
//! Device's from its `ifNoneExist` condition. The same reading always gives the same Bundle, byte
//! for byte, so a retry after a lost response sends exactly what was sent before and the mapper
//! needs no random source. The server assigns its own ids on create; these only tie the two
//! entries together inside one Bundle.
//!
//! Unlike the IG example, the Bundle carries no `meta.profile`: MES spec v1.5.2 shows none and
//! requires profiles on the resources only.

use serde_json::{Value, json};
use uuid::Uuid;

/// The namespace of relais' name-based FHIR ids.
pub const ID_NAMESPACE: Uuid = Uuid::from_u128(0x09fb_48c4_d027_409f_91df_992d_7bf6_dce1);

/// The Observation id for a dedup key.
pub fn observation_id(dedup_key: &str) -> Uuid {
    Uuid::new_v5(&ID_NAMESPACE, dedup_key.as_bytes())
}

/// The Device id for an `ifNoneExist` condition.
pub fn device_id(if_none_exist: &str) -> Uuid {
    Uuid::new_v5(&ID_NAMESPACE, if_none_exist.as_bytes())
}

/// The Bundle: the Observation entry, then the Device entry.
pub fn transaction(
    observation: Value,
    observation_id: Uuid,
    device: Value,
    device_id: Uuid,
    if_none_exist: &str,
) -> Value {
    json!({
        "resourceType": "Bundle",
        "type": "transaction",
        "entry": [
            {
                "fullUrl": format!("urn:uuid:{observation_id}"),
                "resource": observation,
                "request": {"method": "POST", "url": "Observation"},
            },
            {
                "fullUrl": format!("urn:uuid:{device_id}"),
                "resource": device,
                "request": {"method": "POST", "url": "Device", "ifNoneExist": if_none_exist},
            },
        ],
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_stable_and_distinct() {
        assert_eq!(observation_id("a"), observation_id("a"));
        assert_ne!(observation_id("a"), observation_id("b"));
        assert_eq!(observation_id("a").get_version_num(), 5);
    }

    #[test]
    fn entries_are_the_observation_then_the_conditional_device() {
        let b = transaction(
            json!({"resourceType": "Observation"}),
            Uuid::nil(),
            json!({"resourceType": "Device"}),
            Uuid::max(),
            "identifier=urn:oid:1.2|AB",
        );
        assert_eq!(b["type"], "transaction");
        assert_eq!(
            b["entry"][0]["fullUrl"],
            "urn:uuid:00000000-0000-0000-0000-000000000000"
        );
        assert_eq!(
            b["entry"][0]["request"],
            json!({"method": "POST", "url": "Observation"})
        );
        assert_eq!(
            b["entry"][1]["request"],
            json!({"method": "POST", "url": "Device", "ifNoneExist": "identifier=urn:oid:1.2|AB"})
        );
        assert_eq!(b["entry"].as_array().unwrap().len(), 2);
    }
}
