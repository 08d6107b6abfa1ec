//! The web page's administrator: the hub's name and the password hash (PHC string, never the
//! password itself).

use rusqlite::{OptionalExtension as _, params};

use crate::store::{Store, StoreError, audit, now_text};

/// The administrator as stored.
#[derive(Clone, PartialEq, Eq)]
pub struct WebAdmin {
    /// The name the household gave the hub.
    pub hub_name: String,
    /// Argon2 hash in PHC string form.
    pub password_hash: String,
}

impl std::fmt::Debug for WebAdmin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WebAdmin")
            .field("hub_name", &self.hub_name)
            .finish_non_exhaustive()
    }
}

impl Store {
    /// The administrator, once set up.
    pub fn web_admin(&self) -> Result<Option<WebAdmin>, StoreError> {
        Ok(self
            .conn()
            .query_row(
                "SELECT hub_name, password_hash FROM web_admin WHERE id = 1",
                [],
                |r| {
                    Ok(WebAdmin {
                        hub_name: r.get(0)?,
                        password_hash: r.get(1)?,
                    })
                },
            )
            .optional()?)
    }

    /// Sets (or replaces) the administrator, audited.
    pub fn set_web_admin(&mut self, admin: &WebAdmin) -> Result<(), StoreError> {
        let tx = self.conn_mut().transaction()?;
        tx.execute(
            "INSERT INTO web_admin (id, hub_name, password_hash, updated_at) VALUES (1, ?1, ?2, ?3)
             ON CONFLICT (id) DO UPDATE SET hub_name = excluded.hub_name,
             password_hash = excluded.password_hash, updated_at = excluded.updated_at",
            params![admin.hub_name, admin.password_hash, now_text()],
        )?;
        audit::record(&tx, "web_admin_set", None, None, "")?;
        tx.commit()?;
        Ok(())
    }

    /// Creates the administrator only if there is none yet: two first-run forms sent at once
    /// cannot both win.
    pub fn create_web_admin(&mut self, admin: &WebAdmin) -> Result<bool, StoreError> {
        let tx = self.conn_mut().transaction()?;
        let created = tx.execute(
            "INSERT INTO web_admin (id, hub_name, password_hash, updated_at) VALUES (1, ?1, ?2, ?3)
             ON CONFLICT (id) DO NOTHING",
            params![admin.hub_name, admin.password_hash, now_text()],
        )? == 1;
        if created {
            audit::record(&tx, "web_admin_created", None, None, "")?;
        }
        tx.commit()?;
        Ok(created)
    }
}
