//! Configuration values saved from the web page or `relais settings`: a layer between the
//! configuration file and the environment (see [`crate::hub::config`]).

use rusqlite::params;

use crate::store::{Store, StoreError, audit, now_text};

impl Store {
    /// The saved settings, key -> value, by key.
    pub fn saved_settings(&self) -> Result<Vec<(String, String)>, StoreError> {
        let mut statement = self
            .conn()
            .prepare("SELECT key, value FROM settings ORDER BY key")?;
        let rows = statement.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// Saves these values (replacing earlier ones) in one transaction, audited by key (never by
    /// value: one may be a password).
    pub fn save_settings(&mut self, values: &[(String, String)]) -> Result<(), StoreError> {
        let tx = self.conn_mut().transaction()?;
        for (key, value) in values {
            tx.execute(
                "INSERT INTO settings (key, value, updated_at) VALUES (?1, ?2, ?3)
                 ON CONFLICT (key) DO UPDATE SET value = excluded.value,
                 updated_at = excluded.updated_at",
                params![key, value, now_text()],
            )?;
            audit::record(&tx, "setting_saved", None, None, key)?;
        }
        tx.commit()?;
        Ok(())
    }

    /// Forgets a saved value (the file's, or the default, applies again); whether there was one.
    pub fn remove_setting(&mut self, key: &str) -> Result<bool, StoreError> {
        let tx = self.conn_mut().transaction()?;
        let removed = tx.execute("DELETE FROM settings WHERE key = ?1", params![key])? == 1;
        if removed {
            audit::record(&tx, "setting_removed", None, None, key)?;
        }
        tx.commit()?;
        Ok(removed)
    }
}
