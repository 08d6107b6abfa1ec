//! SQLite persistence: pairings and tokens ([`oauth`]), accepted resources ([`fhir`]), the
//! request log ([`log`]) and the signing key.
//!
//! One connection behind a mutex: the sandbox serves tests, each statement is short, and a
//! single writer keeps every multi-row change (code exchange, transaction Bundle) atomic.

pub(crate) mod fhir;
pub(crate) mod log;
pub(crate) mod oauth;

use std::sync::{Mutex, MutexGuard, PoisonError};

use rusqlite::{Connection, OptionalExtension, params};

use crate::config::Database;

/// Why a store operation failed.
#[derive(Debug, thiserror::Error)]
pub(crate) enum StoreError {
    /// SQLite refused the statement.
    #[error("sqlite: {0}")]
    Sqlite(#[from] rusqlite::Error),
    /// A stored JSON document no longer parses.
    #[error("stored JSON: {0}")]
    Json(#[from] serde_json::Error),
}

pub(crate) type StoreResult<T> = Result<T, StoreError>;

const SCHEMA: &str = r#"
CREATE TABLE IF NOT EXISTS meta (
    key   TEXT PRIMARY KEY,
    value BLOB NOT NULL
);
CREATE TABLE IF NOT EXISTS pending_authorizations (
    id             TEXT PRIMARY KEY,
    client_id      TEXT NOT NULL,
    redirect_uri   TEXT NOT NULL,
    state          TEXT NOT NULL,
    code_challenge TEXT NOT NULL,
    scope          TEXT NOT NULL,
    nonce          TEXT,
    user_login     TEXT,
    created_at     INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS grants (
    id            INTEGER PRIMARY KEY,
    client_id     TEXT NOT NULL,
    user_login    TEXT NOT NULL,
    id_pe         TEXT NOT NULL,
    scope         TEXT NOT NULL,
    consent_read  INTEGER NOT NULL,
    consent_write INTEGER NOT NULL,
    nonce         TEXT,
    created_at    INTEGER NOT NULL,
    revoked       INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS authorization_codes (
    code           TEXT PRIMARY KEY,
    client_id      TEXT NOT NULL,
    redirect_uri   TEXT NOT NULL,
    user_login     TEXT NOT NULL,
    id_pe          TEXT NOT NULL,
    code_challenge TEXT NOT NULL,
    scope          TEXT NOT NULL,
    nonce          TEXT,
    consent_read   INTEGER NOT NULL,
    consent_write  INTEGER NOT NULL,
    expires_at     INTEGER NOT NULL,
    used           INTEGER NOT NULL DEFAULT 0,
    grant_id       INTEGER REFERENCES grants(id)
);
CREATE TABLE IF NOT EXISTS tokens (
    token      TEXT PRIMARY KEY,
    kind       TEXT NOT NULL CHECK (kind IN ('access', 'refresh')),
    grant_id   INTEGER NOT NULL REFERENCES grants(id),
    issued_at  INTEGER NOT NULL,
    expires_at INTEGER NOT NULL,
    revoked    INTEGER NOT NULL DEFAULT 0,
    used       INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS tokens_by_grant ON tokens(grant_id);
CREATE TABLE IF NOT EXISTS devices (
    id                TEXT PRIMARY KEY,
    identifier_system TEXT NOT NULL,
    identifier_value  TEXT NOT NULL,
    client_id         TEXT NOT NULL,
    created_at        INTEGER NOT NULL,
    resource          TEXT NOT NULL,
    UNIQUE (identifier_system, identifier_value)
);
CREATE TABLE IF NOT EXISTS observations (
    id            TEXT PRIMARY KEY,
    id_pe         TEXT NOT NULL,
    assign_auth   TEXT NOT NULL,
    code          TEXT NOT NULL,
    effective     TEXT NOT NULL,
    effective_ms  INTEGER NOT NULL,
    device_id     TEXT REFERENCES devices(id),
    client_id     TEXT NOT NULL,
    received_at   INTEGER NOT NULL,
    resource      TEXT NOT NULL,
    raw_bundle    TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS observations_by_patient ON observations(id_pe, code, effective_ms);
CREATE TABLE IF NOT EXISTS requests (
    id          INTEGER PRIMARY KEY,
    at          INTEGER NOT NULL,
    method      TEXT NOT NULL,
    path        TEXT NOT NULL,
    query       TEXT,
    status      INTEGER NOT NULL,
    fault       TEXT,
    duration_ms INTEGER NOT NULL
);
"#;

/// The sandbox database.
#[derive(Debug)]
pub(crate) struct Store {
    conn: Mutex<Connection>,
}

impl Store {
    /// Opens (and creates if needed) the database.
    pub(crate) fn open(database: &Database) -> StoreResult<Self> {
        let conn = match database {
            Database::Memory => Connection::open_in_memory()?,
            Database::File(path) => {
                let conn = Connection::open(path)?;
                conn.pragma_update(None, "journal_mode", "WAL")?;
                conn
            }
        };
        conn.pragma_update(None, "foreign_keys", "ON")?;
        conn.execute_batch(SCHEMA)?;
        Ok(Self {
            conn: Mutex::new(conn),
        })
    }

    /// The connection. A panic while it was held cannot corrupt SQLite's own state.
    pub(crate) fn conn(&self) -> MutexGuard<'_, Connection> {
        self.conn.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// A value of the `meta` table.
    pub(crate) fn meta_get(&self, key: &str) -> StoreResult<Option<Vec<u8>>> {
        Ok(self
            .conn()
            .query_row("SELECT value FROM meta WHERE key = ?1", params![key], |r| {
                r.get(0)
            })
            .optional()?)
    }

    /// Sets a value of the `meta` table.
    pub(crate) fn meta_set(&self, key: &str, value: &[u8]) -> StoreResult<()> {
        self.conn().execute(
            "INSERT INTO meta (key, value) VALUES (?1, ?2)
             ON CONFLICT(key) DO UPDATE SET value = excluded.value",
            params![key, value],
        )?;
        Ok(())
    }

    /// Forgets accepted resources and the request log (pairings and tokens stay).
    pub(crate) fn reset_data(&self) -> StoreResult<()> {
        self.conn().execute_batch(
            "DELETE FROM observations; DELETE FROM devices; DELETE FROM requests;",
        )?;
        Ok(())
    }
}

/// Milliseconds since the Unix epoch, now.
pub(crate) fn now_ms() -> i64 {
    jiff::Timestamp::now().as_millisecond()
}

/// RFC 3339 rendering of a millisecond timestamp (UTC), for admin output.
pub(crate) fn rfc3339(ms: i64) -> String {
    match jiff::Timestamp::from_millisecond(ms) {
        Ok(ts) => ts.to_string(),
        Err(_) => ms.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn meta_round_trips() {
        let store = Store::open(&Database::Memory).unwrap();
        assert_eq!(store.meta_get("k").unwrap(), None);
        store.meta_set("k", b"v1").unwrap();
        store.meta_set("k", b"v2").unwrap();
        assert_eq!(store.meta_get("k").unwrap(), Some(b"v2".to_vec()));
    }
}
