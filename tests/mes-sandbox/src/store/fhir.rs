//! Accepted Observations and Devices.

use rusqlite::{OptionalExtension, Row, params};
use serde::Serialize;
use serde_json::Value;

use super::{Store, StoreResult};

/// A Device to create unless one with the same identifier exists (conditional create).
#[derive(Debug, Clone)]
pub(crate) struct NewDevice {
    /// The bare uuid the Bundle gave it; kept unless another Device already uses it.
    pub(crate) id_hint: String,
    pub(crate) identifier_system: String,
    pub(crate) identifier_value: String,
    pub(crate) resource: Value,
}

/// An accepted Observation, ready to store.
#[derive(Debug, Clone)]
pub(crate) struct NewObservation {
    pub(crate) id: String,
    pub(crate) id_pe: String,
    pub(crate) assign_auth: String,
    pub(crate) code: String,
    pub(crate) effective: String,
    pub(crate) effective_ms: i64,
    pub(crate) client_id: String,
    pub(crate) resource: Value,
    pub(crate) raw_bundle: String,
}

/// What the conditional create of the Device did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum DeviceOutcome {
    Created(String),
    Existing(String),
}

/// A stored Observation, as the admin API shows it.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct StoredObservation {
    pub(crate) id: String,
    pub(crate) id_pe: String,
    pub(crate) assign_auth: String,
    pub(crate) code: String,
    pub(crate) effective: String,
    pub(crate) device_id: Option<String>,
    pub(crate) client_id: String,
    pub(crate) received_at: String,
    /// The Observation as MES keeps it (server id, meta.source, device reference resolved).
    pub(crate) resource: Value,
    /// The request body exactly as received (decimals keep their written form here).
    pub(crate) raw_bundle: String,
}

/// A stored Device.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct StoredDevice {
    pub(crate) id: String,
    pub(crate) identifier_system: String,
    pub(crate) identifier_value: String,
    pub(crate) client_id: String,
    pub(crate) created_at: String,
    pub(crate) resource: Value,
}

const OBSERVATION_COLUMNS: &str = "id, id_pe, assign_auth, code, effective, effective_ms, \
                                   device_id, client_id, received_at, resource, raw_bundle";

fn observation_from_row(r: &Row<'_>) -> rusqlite::Result<(StoredObservation, String)> {
    let received_at: i64 = r.get(8)?;
    let resource: String = r.get(9)?;
    Ok((
        StoredObservation {
            id: r.get(0)?,
            id_pe: r.get(1)?,
            assign_auth: r.get(2)?,
            code: r.get(3)?,
            effective: r.get(4)?,
            device_id: r.get(6)?,
            client_id: r.get(7)?,
            received_at: super::rfc3339(received_at),
            resource: Value::Null,
            raw_bundle: r.get(10)?,
        },
        resource,
    ))
}

fn with_resource(rows: Vec<(StoredObservation, String)>) -> StoreResult<Vec<StoredObservation>> {
    rows.into_iter()
        .map(|(mut o, json)| {
            o.resource = serde_json::from_str(&json)?;
            Ok(o)
        })
        .collect()
}

fn device_from_row(r: &Row<'_>) -> rusqlite::Result<(StoredDevice, String)> {
    let created_at: i64 = r.get(4)?;
    Ok((
        StoredDevice {
            id: r.get(0)?,
            identifier_system: r.get(1)?,
            identifier_value: r.get(2)?,
            client_id: r.get(3)?,
            created_at: super::rfc3339(created_at),
            resource: Value::Null,
        },
        r.get(5)?,
    ))
}

fn devices_with_resource(rows: Vec<(StoredDevice, String)>) -> StoreResult<Vec<StoredDevice>> {
    rows.into_iter()
        .map(|(mut d, json)| {
            d.resource = serde_json::from_str(&json)?;
            Ok(d)
        })
        .collect()
}

/// Filter of an Observation search ("all" mode).
#[derive(Debug, Clone)]
pub(crate) struct ObservationRange<'a> {
    pub(crate) id_pe: &'a str,
    pub(crate) code: &'a str,
    /// Inclusive lower bound, ms since the epoch.
    pub(crate) from_ms: i64,
    /// Exclusive upper bound, ms since the epoch.
    pub(crate) until_ms: i64,
    pub(crate) limit: i64,
    pub(crate) offset: i64,
}

impl Store {
    /// Stores one accepted write atomically: Device conditional create, then the Observation
    /// with its device reference pointing at the stored Device.
    pub(crate) fn commit_write(
        &self,
        device: Option<NewDevice>,
        mut observation: NewObservation,
        now: i64,
    ) -> StoreResult<Option<DeviceOutcome>> {
        let mut conn = self.conn();
        let tx = conn.transaction()?;
        let outcome = match device {
            None => None,
            Some(mut d) => {
                let existing: Option<String> = tx
                    .query_row(
                        "SELECT id FROM devices WHERE identifier_system = ?1 AND identifier_value = ?2",
                        params![d.identifier_system, d.identifier_value],
                        |r| r.get(0),
                    )
                    .optional()?;
                match existing {
                    Some(id) => Some(DeviceOutcome::Existing(id)),
                    None => {
                        let taken: bool = tx.query_row(
                            "SELECT EXISTS (SELECT 1 FROM devices WHERE id = ?1)",
                            params![d.id_hint],
                            |r| r.get(0),
                        )?;
                        let id = if taken {
                            uuid::Uuid::new_v4().to_string()
                        } else {
                            d.id_hint.clone()
                        };
                        if let Some(obj) = d.resource.as_object_mut() {
                            obj.insert("id".into(), Value::String(id.clone()));
                        }
                        tx.execute(
                            "INSERT INTO devices (id, identifier_system, identifier_value, client_id,
                                                  created_at, resource)
                             VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                            params![
                                id,
                                d.identifier_system,
                                d.identifier_value,
                                observation.client_id,
                                now,
                                serde_json::to_string(&d.resource)?
                            ],
                        )?;
                        Some(DeviceOutcome::Created(id))
                    }
                }
            }
        };
        let device_id = outcome.as_ref().map(|o| match o {
            DeviceOutcome::Created(id) | DeviceOutcome::Existing(id) => id.clone(),
        });
        if let (Some(id), Some(obj)) = (&device_id, observation.resource.as_object_mut()) {
            obj.insert(
                "device".into(),
                serde_json::json!({ "reference": format!("Device/{id}") }),
            );
        }
        tx.execute(
            "INSERT INTO observations (id, id_pe, assign_auth, code, effective, effective_ms,
                                       device_id, client_id, received_at, resource, raw_bundle)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)",
            params![
                observation.id,
                observation.id_pe,
                observation.assign_auth,
                observation.code,
                observation.effective,
                observation.effective_ms,
                device_id,
                observation.client_id,
                now,
                serde_json::to_string(&observation.resource)?,
                observation.raw_bundle
            ],
        )?;
        tx.commit()?;
        Ok(outcome)
    }

    /// One page of the "all" search, newest first, with the total number of matches.
    pub(crate) fn search_observations(
        &self,
        q: &ObservationRange<'_>,
    ) -> StoreResult<(i64, Vec<StoredObservation>)> {
        let conn = self.conn();
        let total: i64 = conn.query_row(
            "SELECT COUNT(*) FROM observations
             WHERE id_pe = ?1 AND code = ?2 AND effective_ms >= ?3 AND effective_ms < ?4",
            params![q.id_pe, q.code, q.from_ms, q.until_ms],
            |r| r.get(0),
        )?;
        let sql = format!(
            "SELECT {OBSERVATION_COLUMNS} FROM observations
             WHERE id_pe = ?1 AND code = ?2 AND effective_ms >= ?3 AND effective_ms < ?4
             ORDER BY effective_ms DESC, received_at DESC, id LIMIT ?5 OFFSET ?6"
        );
        let mut stmt = conn.prepare(&sql)?;
        let rows = stmt
            .query_map(
                params![q.id_pe, q.code, q.from_ms, q.until_ms, q.limit, q.offset],
                observation_from_row,
            )?
            .collect::<Result<Vec<_>, _>>()?;
        Ok((total, with_resource(rows)?))
    }

    /// The most recent Observation of a code ("last" search).
    pub(crate) fn last_observation(
        &self,
        id_pe: &str,
        code: &str,
    ) -> StoreResult<Option<StoredObservation>> {
        let sql = format!(
            "SELECT {OBSERVATION_COLUMNS} FROM observations WHERE id_pe = ?1 AND code = ?2
             ORDER BY effective_ms DESC, received_at DESC, id LIMIT 1"
        );
        let conn = self.conn();
        let mut stmt = conn.prepare(&sql)?;
        let rows = stmt
            .query_map(params![id_pe, code], observation_from_row)?
            .collect::<Result<Vec<_>, _>>()?;
        Ok(with_resource(rows)?.into_iter().next())
    }

    /// Stored Observations, optionally of one idPe and/or code, oldest received first.
    pub(crate) fn list_observations(
        &self,
        id_pe: Option<&str>,
        code: Option<&str>,
    ) -> StoreResult<Vec<StoredObservation>> {
        let sql = format!(
            "SELECT {OBSERVATION_COLUMNS} FROM observations
             WHERE (?1 IS NULL OR id_pe = ?1) AND (?2 IS NULL OR code = ?2)
             ORDER BY received_at, rowid"
        );
        let conn = self.conn();
        let mut stmt = conn.prepare(&sql)?;
        let rows = stmt
            .query_map(params![id_pe, code], observation_from_row)?
            .collect::<Result<Vec<_>, _>>()?;
        with_resource(rows)
    }

    /// Stored Devices, oldest first; only those with the given ids when `ids` is `Some`.
    pub(crate) fn list_devices(&self, ids: Option<&[String]>) -> StoreResult<Vec<StoredDevice>> {
        let conn = self.conn();
        let mut stmt = conn.prepare(
            "SELECT id, identifier_system, identifier_value, client_id, created_at, resource
             FROM devices ORDER BY created_at, rowid",
        )?;
        let rows = stmt
            .query_map([], device_from_row)?
            .collect::<Result<Vec<_>, _>>()?;
        let rows = match ids {
            None => rows,
            Some(ids) => rows
                .into_iter()
                .filter(|(d, _)| ids.contains(&d.id))
                .collect(),
        };
        devices_with_resource(rows)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Database;
    use serde_json::json;

    fn obs(id: &str, ms: i64) -> NewObservation {
        NewObservation {
            id: id.into(),
            id_pe: "p".into(),
            assign_auth: "1.2".into(),
            code: "29463-7".into(),
            effective: "x".into(),
            effective_ms: ms,
            client_id: "c".into(),
            resource: json!({"resourceType": "Observation", "id": id}),
            raw_bundle: "{}".into(),
        }
    }

    fn dev(hint: &str) -> NewDevice {
        NewDevice {
            id_hint: hint.into(),
            identifier_system: "urn:oid:1.2".into(),
            identifier_value: "AA-BB".into(),
            resource: json!({"resourceType": "Device", "id": hint}),
        }
    }

    #[test]
    fn device_is_created_once_then_found_by_identifier() {
        let store = Store::open(&Database::Memory).unwrap();
        let first = store
            .commit_write(Some(dev("d1")), obs("o1", 1), 1)
            .unwrap();
        assert_eq!(first, Some(DeviceOutcome::Created("d1".into())));
        let second = store
            .commit_write(Some(dev("d2")), obs("o2", 2), 2)
            .unwrap();
        assert_eq!(second, Some(DeviceOutcome::Existing("d1".into())));
        let all = store.list_observations(Some("p"), None).unwrap();
        assert_eq!(all.len(), 2);
        assert_eq!(all[1].resource["device"]["reference"], "Device/d1");
        assert_eq!(store.list_devices(None).unwrap().len(), 1);
    }

    #[test]
    fn search_pages_newest_first_and_counts_all_matches() {
        let store = Store::open(&Database::Memory).unwrap();
        for i in 0..5 {
            store
                .commit_write(None, obs(&format!("o{i}"), i * 10), 1)
                .unwrap();
        }
        let q = ObservationRange {
            id_pe: "p",
            code: "29463-7",
            from_ms: 10,
            until_ms: 40,
            limit: 2,
            offset: 0,
        };
        let (total, page) = store.search_observations(&q).unwrap();
        assert_eq!(total, 3);
        let ids: Vec<_> = page.iter().map(|o| o.id.as_str()).collect();
        assert_eq!(ids, ["o3", "o2"]);
        let last = store.last_observation("p", "29463-7").unwrap().unwrap();
        assert_eq!(last.id, "o4");
    }
}
