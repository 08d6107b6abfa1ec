//! The audit log: pairings, consents, assignments and deletions, with when and whom. It holds
//! no health values.

use rusqlite::params;
use serde::Serialize;

use crate::store::{MemberId, Store, StoreError, now_text};

/// One audit entry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AuditEntry {
    /// When (RFC 3339, UTC).
    pub at: String,
    /// What happened: `member_added`, `mes_linked`, `mes_consent_withdrawn`, ...
    pub event: String,
    /// The member concerned.
    pub member: Option<MemberId>,
    /// The device concerned (row id).
    pub device: Option<i64>,
    /// Details, never health values.
    pub detail: String,
}

pub(crate) fn record(
    tx: &rusqlite::Connection,
    event: &str,
    member: Option<MemberId>,
    device: Option<i64>,
    detail: &str,
) -> Result<(), StoreError> {
    tx.execute(
        "INSERT INTO audit (at, event, member_id, device_id, detail) VALUES (?1, ?2, ?3, ?4, ?5)",
        params![now_text(), event, member.map(|m| m.0), device, detail],
    )?;
    Ok(())
}

impl Store {
    /// The audit log, oldest first.
    pub fn audit_log(&self) -> Result<Vec<AuditEntry>, StoreError> {
        let mut stmt = self
            .conn()
            .prepare("SELECT at, event, member_id, device_id, detail FROM audit ORDER BY id")?;
        let rows = stmt.query_map([], |r| {
            Ok(AuditEntry {
                at: r.get(0)?,
                event: r.get(1)?,
                member: r.get::<_, Option<i64>>(2)?.map(MemberId),
                device: r.get(3)?,
                detail: r.get(4)?,
            })
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }
}
