//! The request log: what the sandbox was asked and what it answered, for tests to assert on.

use rusqlite::params;
use serde::Serialize;

use super::{Store, StoreResult};

/// One logged request. Bodies and headers are never logged (they carry tokens).
#[derive(Debug, Clone, Serialize)]
pub(crate) struct RequestEntry {
    pub(crate) id: i64,
    pub(crate) at: String,
    pub(crate) method: String,
    pub(crate) path: String,
    pub(crate) query: Option<String>,
    pub(crate) status: u16,
    /// The injected fault, if any: `throttle`, `server_error` or `connection_reset`.
    pub(crate) fault: Option<String>,
    pub(crate) duration_ms: i64,
}

/// A request to log.
#[derive(Debug, Clone)]
pub(crate) struct NewRequest<'a> {
    pub(crate) at: i64,
    pub(crate) method: &'a str,
    pub(crate) path: &'a str,
    pub(crate) query: Option<&'a str>,
    pub(crate) status: u16,
    pub(crate) fault: Option<&'a str>,
    pub(crate) duration_ms: i64,
}

impl Store {
    pub(crate) fn log_request(&self, r: &NewRequest<'_>) -> StoreResult<()> {
        self.conn().execute(
            "INSERT INTO requests (at, method, path, query, status, fault, duration_ms)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
            params![
                r.at,
                r.method,
                r.path,
                r.query,
                i64::from(r.status),
                r.fault,
                r.duration_ms
            ],
        )?;
        Ok(())
    }

    /// The last `limit` requests, oldest first.
    pub(crate) fn list_requests(&self, limit: i64) -> StoreResult<Vec<RequestEntry>> {
        let conn = self.conn();
        let mut stmt = conn.prepare(
            "SELECT id, at, method, path, query, status, fault, duration_ms FROM (
                 SELECT * FROM requests ORDER BY id DESC LIMIT ?1
             ) ORDER BY id",
        )?;
        let rows = stmt
            .query_map(params![limit], |r| {
                let at: i64 = r.get(1)?;
                let status: i64 = r.get(5)?;
                Ok(RequestEntry {
                    id: r.get(0)?,
                    at: super::rfc3339(at),
                    method: r.get(2)?,
                    path: r.get(3)?,
                    query: r.get(4)?,
                    status: u16::try_from(status).unwrap_or(0),
                    fault: r.get(6)?,
                    duration_ms: r.get(7)?,
                })
            })?
            .collect::<Result<Vec<_>, _>>()?;
        Ok(rows)
    }
}
