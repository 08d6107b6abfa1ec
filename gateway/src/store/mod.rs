//! The hub's durable state in SQLite: devices, household members and their MES pairing,
//! which device user is which member, every measurement as received, one outbox per sink, and
//! an audit log of pairings, consents and deletions.
//!
//! Durability first: WAL with `synchronous=FULL` (a commit is on disk when it returns), foreign
//! keys on, the file created `0600` (it holds health data and MES tokens). Writes go through
//! one connection; [`Store::commit`] takes a whole batch in one transaction (group commit), so
//! many measurements cost one fsync.
//!
//! - [`migrations`]: the schema.
//! - [`measurements`]: committing, deduplicating, the inbox and assignment.
//! - [`outbox`]: what each sink still has to deliver.
//! - [`members`]: the household, its device users, MES pairing state and tokens.
//! - [`devices`]: what the hub knows of each device.
//! - [`audit`]: who paired, consented, assigned, deleted.
//! - [`web_admin`]: the web page's administrator.

pub mod audit;
pub mod devices;
pub mod measurements;
pub mod members;
pub mod migrations;
pub mod outbox;
pub mod settings;
pub mod web_admin;

use std::path::{Path, PathBuf};
use std::time::Duration;

use rusqlite::{Connection, ErrorCode};

pub use measurements::{Committed, MeasurementId, StoredMeasurement};
pub use members::{MemberId, MesState};
pub use outbox::{OutboxId, OutboxItem, Sink};

/// What can go wrong with the store, in words a person can act on.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// Another process holds the database.
    #[error("the database {0} is locked by another process: is another relais running?")]
    Locked(PathBuf),
    /// The file is not a database or is damaged.
    #[error(
        "the database {path} is damaged ({detail}): stop relais, keep a copy of the file, and \
         restore a backup or move it away to start afresh"
    )]
    Corrupt {
        /// The file.
        path: PathBuf,
        /// What SQLite said.
        detail: String,
    },
    /// The disk is full: nothing more can be committed until space is freed.
    #[error("the disk holding the database is full: free some space; nothing was lost")]
    DiskFull,
    /// The database was written by a newer relais.
    #[error("the database has schema version {found}; this relais knows up to {supported}")]
    NewerSchema {
        /// The file's version.
        found: i64,
        /// Ours.
        supported: i64,
    },
    /// The file cannot be created or opened.
    #[error("cannot open the database {path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// Something the caller named does not exist.
    #[error("{0}")]
    NotFound(String),
    /// A request that contradicts the stored state.
    #[error("{0}")]
    Invalid(String),
    /// Any other SQLite error.
    #[error("database: {0}")]
    Sqlite(rusqlite::Error),
    /// A stored value that does not read back.
    #[error("a stored value does not read back: {0}")]
    Malformed(String),
}

impl From<rusqlite::Error> for StoreError {
    fn from(e: rusqlite::Error) -> Self {
        match e.sqlite_error_code() {
            Some(ErrorCode::DiskFull) => Self::DiskFull,
            Some(ErrorCode::DatabaseBusy | ErrorCode::DatabaseLocked) => {
                Self::Locked(PathBuf::new())
            }
            Some(ErrorCode::DatabaseCorrupt | ErrorCode::NotADatabase) => Self::Corrupt {
                path: PathBuf::new(),
                detail: e.to_string(),
            },
            _ => Self::Sqlite(e),
        }
    }
}

impl From<serde_json::Error> for StoreError {
    fn from(e: serde_json::Error) -> Self {
        Self::Malformed(e.to_string())
    }
}

/// The hub's database.
#[derive(Debug)]
pub struct Store {
    conn: Connection,
    path: Option<PathBuf>,
    /// The sinks that get outbox rows.
    sinks: Vec<Sink>,
}

/// How long a write waits for another connection's lock before giving up.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

impl Store {
    /// Opens (creating it `0600` when missing) and migrates the database at `path`, checking
    /// it is intact.
    pub fn open(path: &Path) -> Result<Self, StoreError> {
        create_private(path)?;
        let conn = Connection::open(path).map_err(|e| with_path(e.into(), path))?;
        Self::setup(conn, Some(path.to_owned())).map_err(|e| with_path(e, path))
    }

    /// A database in memory, for tests and tools.
    pub fn open_in_memory() -> Result<Self, StoreError> {
        Self::setup(Connection::open_in_memory()?, None)
    }

    fn setup(mut conn: Connection, path: Option<PathBuf>) -> Result<Self, StoreError> {
        conn.busy_timeout(BUSY_TIMEOUT)?;
        let check: String = conn.pragma_query_value(None, "quick_check", |r| r.get(0))?;
        if check != "ok" {
            return Err(StoreError::Corrupt {
                path: path.clone().unwrap_or_default(),
                detail: check,
            });
        }
        let mode: String =
            conn.pragma_update_and_check(None, "journal_mode", "WAL", |r| r.get(0))?;
        if path.is_some() && !mode.eq_ignore_ascii_case("wal") {
            return Err(StoreError::Invalid(format!(
                "the database refused write-ahead logging (journal mode {mode})"
            )));
        }
        conn.pragma_update(None, "synchronous", "FULL")?;
        conn.pragma_update(None, "foreign_keys", true)?;
        migrations::migrate(&mut conn)?;
        Ok(Self {
            conn,
            path,
            sinks: vec![Sink::Mes],
        })
    }

    /// Which sinks get outbox rows for new measurements (MES by default).
    pub fn set_sinks(&mut self, sinks: &[Sink]) {
        self.sinks = sinks.to_vec();
    }

    /// Where the database lives (`None`: in memory).
    pub fn path(&self) -> Option<&Path> {
        self.path.as_deref()
    }

    /// `PRAGMA integrity_check`: `Ok` when the database is intact.
    pub fn integrity_check(&self) -> Result<(), StoreError> {
        let result: String = self
            .conn
            .pragma_query_value(None, "integrity_check", |r| r.get(0))?;
        if result == "ok" {
            Ok(())
        } else {
            Err(StoreError::Corrupt {
                path: self.path.clone().unwrap_or_default(),
                detail: result,
            })
        }
    }

    /// Caps the database at `pages` pages (SQLite's `max_page_count`): writes beyond fail as
    /// on a full disk. For tests of the hub's degraded mode.
    #[doc(hidden)]
    pub fn limit_pages(&self, pages: u64) -> Result<(), StoreError> {
        self.conn.pragma_update(
            None,
            "max_page_count",
            i64::try_from(pages).unwrap_or(i64::MAX),
        )?;
        Ok(())
    }

    pub(crate) fn conn(&self) -> &Connection {
        &self.conn
    }

    pub(crate) fn conn_mut(&mut self) -> &mut Connection {
        &mut self.conn
    }
}

/// Creates the file with mode 0600 if it does not exist; SQLite then gives its WAL and
/// shared-memory files the same mode.
fn create_private(path: &Path) -> Result<(), StoreError> {
    use std::os::unix::fs::OpenOptionsExt as _;
    let io = |source| StoreError::Io {
        path: path.to_owned(),
        source,
    };
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(io)?;
    }
    match std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
    {
        Ok(_) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
        Err(e) => Err(io(e)),
    }
}

fn with_path(e: StoreError, path: &Path) -> StoreError {
    match e {
        StoreError::Locked(_) => StoreError::Locked(path.to_owned()),
        StoreError::Corrupt { detail, .. } => StoreError::Corrupt {
            path: path.to_owned(),
            detail,
        },
        other => other,
    }
}

/// Now, as stored: RFC 3339 in UTC.
pub(crate) fn now_text() -> String {
    jiff::Timestamp::now().to_string()
}

#[cfg(test)]
mod tests;
