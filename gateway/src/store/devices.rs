//! What the hub knows of each device: identity, bond, glucose progress, clock skew.

use rusqlite::{OptionalExtension as _, params};
use serde::Serialize;

use crate::ble::device::Identity;
use crate::ble::kind::DeviceKind;
use crate::store::{Store, StoreError, audit, now_text};

/// A device as stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct StoredDevice {
    /// Row id.
    pub id: i64,
    /// Identity (address, name, Device Information).
    #[serde(flatten)]
    pub identity: Identity,
    /// The name the household gave it (shown instead of its advertised name).
    pub label: Option<String>,
    /// What it is (`weight_scale`, ...).
    pub kind: String,
    /// Bonded in BlueZ (`None`: unknown).
    pub bonded: Option<bool>,
    /// A glucose meter's last committed sequence number.
    pub last_glucose_sequence: Option<u16>,
    /// The clock skew measured last, in milliseconds (device minus hub).
    pub clock_skew_ms: Option<i64>,
    /// First and last time a measurement came from it (RFC 3339, UTC).
    pub first_seen: String,
    /// See `first_seen`.
    pub last_seen: String,
}

impl StoredDevice {
    /// The name to show: the household's, else the advertised one, else the model, else the
    /// address.
    pub fn shown_name(&self) -> &str {
        self.label
            .as_deref()
            .or(self.identity.name.as_deref())
            .or(self.identity.model.as_deref())
            .unwrap_or(&self.identity.address)
    }
}

pub(crate) fn upsert(
    tx: &rusqlite::Connection,
    identity: &Identity,
    kind: DeviceKind,
    clock_skew_ms: Option<i64>,
) -> Result<i64, StoreError> {
    let now = now_text();
    tx.prepare_cached(
        "INSERT INTO devices (address, kind, name, manufacturer, model, serial, system_id,
         clock_skew_ms, first_seen, last_seen) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?9)
         ON CONFLICT (address) DO UPDATE SET kind = excluded.kind,
         name = ifnull(excluded.name, name), manufacturer = ifnull(excluded.manufacturer, manufacturer),
         model = ifnull(excluded.model, model), serial = ifnull(excluded.serial, serial),
         system_id = ifnull(excluded.system_id, system_id),
         clock_skew_ms = ifnull(excluded.clock_skew_ms, clock_skew_ms), last_seen = excluded.last_seen",
    )?
    .execute(params![
            identity.address,
            kind.as_str(),
            identity.name,
            identity.manufacturer,
            identity.model,
            identity.serial,
            identity.system_id,
            clock_skew_ms,
            now
        ])?;
    Ok(tx
        .prepare_cached("SELECT id FROM devices WHERE address = ?1")?
        .query_row([&identity.address], |r| r.get(0))?)
}

impl Store {
    /// The row id of the device at `address`.
    pub fn device_id(&self, address: &str) -> Result<Option<i64>, StoreError> {
        Ok(self
            .conn()
            .query_row(
                "SELECT id FROM devices WHERE address = ?1 COLLATE NOCASE",
                [address],
                |r| r.get(0),
            )
            .optional()?)
    }

    /// Records a device seen (before any measurement), so it can be mapped to members.
    pub fn note_device(
        &mut self,
        identity: &Identity,
        kind: DeviceKind,
    ) -> Result<i64, StoreError> {
        let tx = self.conn_mut().transaction()?;
        let id = upsert(&tx, identity, kind, None)?;
        tx.commit()?;
        Ok(id)
    }

    /// Records whether BlueZ holds a bond with the device.
    pub fn set_bonded(&mut self, address: &str, bonded: Option<bool>) -> Result<(), StoreError> {
        self.conn().execute(
            "UPDATE devices SET bonded = ?2 WHERE address = ?1",
            params![address, bonded],
        )?;
        Ok(())
    }

    /// The last committed glucose sequence number of the meter at `address`: the next
    /// catch-up asks for what follows.
    pub fn last_glucose_sequence(&self, address: &str) -> Result<Option<u16>, StoreError> {
        let value: Option<Option<i64>> = self
            .conn()
            .query_row(
                "SELECT last_glucose_sequence FROM devices WHERE address = ?1",
                [address],
                |r| r.get(0),
            )
            .optional()?;
        Ok(value.flatten().and_then(|v| u16::try_from(v).ok()))
    }

    /// Gives a device the household's own name; empty: back to its advertised name.
    pub fn rename_device(&mut self, address: &str, label: &str) -> Result<(), StoreError> {
        let label = label.trim();
        let tx = self.conn_mut().transaction()?;
        let changed = tx.execute(
            "UPDATE devices SET label = ?2 WHERE address = ?1 COLLATE NOCASE",
            params![address, (!label.is_empty()).then_some(label)],
        )?;
        if changed == 0 {
            return Err(StoreError::NotFound(format!("no device {address}")));
        }
        let id: i64 = tx.query_row(
            "SELECT id FROM devices WHERE address = ?1 COLLATE NOCASE",
            [address],
            |r| r.get(0),
        )?;
        audit::record(&tx, "device_renamed", None, Some(id), label)?;
        tx.commit()?;
        Ok(())
    }

    /// Every device, by address.
    pub fn devices(&self) -> Result<Vec<StoredDevice>, StoreError> {
        let mut stmt = self.conn().prepare(
            "SELECT id, address, name, manufacturer, model, serial, system_id, kind, bonded,
             last_glucose_sequence, clock_skew_ms, first_seen, last_seen, label FROM devices
             ORDER BY address",
        )?;
        let rows = stmt.query_map([], |r| {
            Ok(StoredDevice {
                id: r.get(0)?,
                identity: Identity {
                    address: r.get(1)?,
                    name: r.get(2)?,
                    manufacturer: r.get(3)?,
                    model: r.get(4)?,
                    serial: r.get(5)?,
                    system_id: r.get(6)?,
                },
                label: r.get(13)?,
                kind: r.get(7)?,
                bonded: r.get(8)?,
                last_glucose_sequence: r
                    .get::<_, Option<i64>>(9)?
                    .and_then(|v| u16::try_from(v).ok()),
                clock_skew_ms: r.get(10)?,
                first_seen: r.get(11)?,
                last_seen: r.get(12)?,
            })
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }
}
