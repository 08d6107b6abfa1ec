//! The schema, as numbered migrations recorded in SQLite's `user_version`.
//!
//! Each step runs once, in its own transaction with the version bump, so a crash mid-migration
//! leaves the previous version intact. Never edit a released step: add one.
//! (rusqlite_migration does this, but its releases trail the rusqlite this workspace uses, and
//! two rusqlite versions cannot link two bundled SQLites into one binary.)

use rusqlite::Connection;

use crate::store::StoreError;

/// Every step, oldest first; step `i` brings the schema to version `i + 1`.
const STEPS: &[&str] = &[
    // 1: devices, household, measurements, outboxes, audit.
    r#"
    CREATE TABLE devices (
        id INTEGER PRIMARY KEY,
        address TEXT NOT NULL UNIQUE,
        kind TEXT NOT NULL,
        name TEXT,
        manufacturer TEXT,
        model TEXT,
        serial TEXT,
        system_id TEXT,
        bonded INTEGER,
        last_glucose_sequence INTEGER,
        clock_skew_ms INTEGER,
        first_seen TEXT NOT NULL,
        last_seen TEXT NOT NULL
    ) STRICT;

    CREATE TABLE members (
        id INTEGER PRIMARY KEY,
        display_name TEXT NOT NULL UNIQUE,
        mes_state TEXT NOT NULL DEFAULT 'unlinked',
        mes_state_detail TEXT,
        id_pe TEXT,
        assigning_authority TEXT,
        created_at TEXT NOT NULL
    ) STRICT;

    -- The tokens of a pairing as JSON (the file is 0600; they are never logged).
    CREATE TABLE mes_tokens (
        member_id INTEGER PRIMARY KEY REFERENCES members(id) ON DELETE CASCADE,
        tokens TEXT NOT NULL,
        updated_at TEXT NOT NULL
    ) STRICT;

    -- user_index -1: the device's measurements without a user index.
    CREATE TABLE device_users (
        device_id INTEGER NOT NULL REFERENCES devices(id) ON DELETE CASCADE,
        user_index INTEGER NOT NULL,
        member_id INTEGER NOT NULL REFERENCES members(id) ON DELETE CASCADE,
        PRIMARY KEY (device_id, user_index)
    ) STRICT;

    CREATE TABLE measurements (
        id INTEGER PRIMARY KEY,
        device_id INTEGER NOT NULL REFERENCES devices(id),
        member_id INTEGER REFERENCES members(id),
        suggested_member_id INTEGER REFERENCES members(id),
        user_index INTEGER,
        record TEXT NOT NULL,
        quirks TEXT NOT NULL,
        readings TEXT NOT NULL,
        primary_kind TEXT,
        primary_value REAL,
        measured_at TEXT,
        received_at TEXT NOT NULL,
        clock_skew_ms INTEGER,
        dedup_key BLOB NOT NULL UNIQUE
    ) STRICT;
    CREATE INDEX measurements_member ON measurements(member_id, id);
    CREATE INDEX measurements_inbox ON measurements(id) WHERE member_id IS NULL;

    -- One row per reading and sink; reading_index is the reading's place in the measurement.
    -- Rows are added once, when a measurement is committed or leaves the inbox.
    CREATE TABLE outbox (
        id INTEGER PRIMARY KEY,
        sink TEXT NOT NULL,
        measurement_id INTEGER NOT NULL REFERENCES measurements(id),
        reading_index INTEGER NOT NULL,
        member_id INTEGER REFERENCES members(id),
        state TEXT NOT NULL DEFAULT 'pending',
        attempts INTEGER NOT NULL DEFAULT 0,
        next_attempt_at TEXT,
        last_error TEXT,
        done_at TEXT
    ) STRICT;
    CREATE INDEX outbox_queue ON outbox(sink, state, member_id, id);

    CREATE TABLE audit (
        id INTEGER PRIMARY KEY,
        at TEXT NOT NULL,
        event TEXT NOT NULL,
        member_id INTEGER,
        device_id INTEGER,
        detail TEXT NOT NULL
    ) STRICT;
    "#,
    // 2: the web page's administrator (one row) and the hub's name; the name the household
    // gives a device.
    r#"
    ALTER TABLE devices ADD COLUMN label TEXT;
    CREATE TABLE web_admin (
        id INTEGER PRIMARY KEY CHECK (id = 1),
        hub_name TEXT NOT NULL,
        password_hash TEXT NOT NULL,
        updated_at TEXT NOT NULL
    ) STRICT;
    "#,
    // 3: settings saved from the web page or `relais settings`, by configuration key
    // (`hub.time_zone`, `mqtt.host`); the value as it would be written after `--set key=`.
    r#"
    CREATE TABLE settings (
        key TEXT PRIMARY KEY,
        value TEXT NOT NULL,
        updated_at TEXT NOT NULL
    ) STRICT;
    "#,
];

/// The schema version this build writes.
pub const CURRENT: i64 = STEPS.len() as i64;

/// Brings the schema up to [`CURRENT`]; refuses a database written by a newer relais.
pub fn migrate(conn: &mut Connection) -> Result<(), StoreError> {
    let version: i64 = conn.pragma_query_value(None, "user_version", |row| row.get(0))?;
    if version > CURRENT {
        return Err(StoreError::NewerSchema {
            found: version,
            supported: CURRENT,
        });
    }
    for (index, step) in STEPS
        .iter()
        .enumerate()
        .skip(usize::try_from(version).unwrap_or(0))
    {
        let tx = conn.transaction()?;
        tx.execute_batch(step)?;
        tx.pragma_update(None, "user_version", index as i64 + 1)?;
        tx.commit()?;
        tracing::info!(version = index + 1, "database schema migrated");
    }
    Ok(())
}
