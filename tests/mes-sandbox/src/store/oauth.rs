//! Pairing state: authorization requests in progress, authorization codes, grants (one per
//! successful code exchange, i.e. one pairing = one refresh-token family) and tokens.

use rusqlite::{OptionalExtension, Row, params};

use super::{Store, StoreResult};

/// An authorization request between `GET /oauth/authorize` and the consent decision.
#[derive(Debug, Clone)]
pub(crate) struct PendingAuthorization {
    pub(crate) id: String,
    pub(crate) client_id: String,
    pub(crate) redirect_uri: String,
    pub(crate) state: String,
    pub(crate) code_challenge: String,
    pub(crate) scope: String,
    pub(crate) nonce: Option<String>,
    pub(crate) user_login: Option<String>,
    pub(crate) created_at: i64,
}

/// An issued authorization code.
#[derive(Debug, Clone)]
pub(crate) struct AuthorizationCode {
    pub(crate) code: String,
    pub(crate) client_id: String,
    pub(crate) redirect_uri: String,
    pub(crate) user_login: String,
    pub(crate) id_pe: String,
    pub(crate) code_challenge: String,
    pub(crate) scope: String,
    pub(crate) nonce: Option<String>,
    pub(crate) consent_read: bool,
    pub(crate) consent_write: bool,
    pub(crate) expires_at: i64,
}

/// What presenting a code found.
#[derive(Debug)]
pub(crate) enum CodeRedemption {
    /// No such code.
    Unknown,
    /// First use: the code is now spent.
    Fresh(AuthorizationCode),
    /// Second use: the grant it produced (if any) should be revoked.
    Reused { grant_id: Option<i64> },
}

/// A pairing: the user's consent given to a partner, and the family of its tokens.
#[derive(Debug, Clone)]
pub(crate) struct Grant {
    pub(crate) id: i64,
    pub(crate) client_id: String,
    pub(crate) user_login: String,
    pub(crate) id_pe: String,
    pub(crate) scope: String,
    pub(crate) consent_read: bool,
    pub(crate) consent_write: bool,
    pub(crate) nonce: Option<String>,
    pub(crate) revoked: bool,
}

/// Kind of a stored token.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum TokenKind {
    Access,
    Refresh,
}

impl TokenKind {
    fn as_str(self) -> &'static str {
        match self {
            TokenKind::Access => "access",
            TokenKind::Refresh => "refresh",
        }
    }
}

/// A stored token with its grant.
#[derive(Debug, Clone)]
pub(crate) struct TokenRecord {
    pub(crate) kind: TokenKind,
    pub(crate) issued_at: i64,
    pub(crate) expires_at: i64,
    pub(crate) revoked: bool,
    pub(crate) used: bool,
    pub(crate) grant: Grant,
}

const GRANT_COLUMNS: &str = "g.id, g.client_id, g.user_login, g.id_pe, g.scope, \
                             g.consent_read, g.consent_write, g.nonce, g.revoked";

fn grant_from_row(r: &Row<'_>, offset: usize) -> rusqlite::Result<Grant> {
    Ok(Grant {
        id: r.get(offset)?,
        client_id: r.get(offset + 1)?,
        user_login: r.get(offset + 2)?,
        id_pe: r.get(offset + 3)?,
        scope: r.get(offset + 4)?,
        consent_read: r.get(offset + 5)?,
        consent_write: r.get(offset + 6)?,
        nonce: r.get(offset + 7)?,
        revoked: r.get(offset + 8)?,
    })
}

impl Store {
    pub(crate) fn insert_pending(&self, p: &PendingAuthorization) -> StoreResult<()> {
        self.conn().execute(
            "INSERT INTO pending_authorizations
             (id, client_id, redirect_uri, state, code_challenge, scope, nonce, user_login, created_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
            params![
                p.id,
                p.client_id,
                p.redirect_uri,
                p.state,
                p.code_challenge,
                p.scope,
                p.nonce,
                p.user_login,
                p.created_at
            ],
        )?;
        Ok(())
    }

    pub(crate) fn pending(&self, id: &str) -> StoreResult<Option<PendingAuthorization>> {
        Ok(self
            .conn()
            .query_row(
                "SELECT id, client_id, redirect_uri, state, code_challenge, scope, nonce,
                        user_login, created_at
                 FROM pending_authorizations WHERE id = ?1",
                params![id],
                |r| {
                    Ok(PendingAuthorization {
                        id: r.get(0)?,
                        client_id: r.get(1)?,
                        redirect_uri: r.get(2)?,
                        state: r.get(3)?,
                        code_challenge: r.get(4)?,
                        scope: r.get(5)?,
                        nonce: r.get(6)?,
                        user_login: r.get(7)?,
                        created_at: r.get(8)?,
                    })
                },
            )
            .optional()?)
    }

    pub(crate) fn set_pending_user(&self, id: &str, login: &str) -> StoreResult<()> {
        self.conn().execute(
            "UPDATE pending_authorizations SET user_login = ?2 WHERE id = ?1",
            params![id, login],
        )?;
        Ok(())
    }

    /// Removes a pending request; `false` if it was already gone (decided twice).
    pub(crate) fn delete_pending(&self, id: &str) -> StoreResult<bool> {
        Ok(self.conn().execute(
            "DELETE FROM pending_authorizations WHERE id = ?1",
            params![id],
        )? > 0)
    }

    pub(crate) fn insert_code(&self, c: &AuthorizationCode) -> StoreResult<()> {
        self.conn().execute(
            "INSERT INTO authorization_codes
             (code, client_id, redirect_uri, user_login, id_pe, code_challenge, scope, nonce,
              consent_read, consent_write, expires_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)",
            params![
                c.code,
                c.client_id,
                c.redirect_uri,
                c.user_login,
                c.id_pe,
                c.code_challenge,
                c.scope,
                c.nonce,
                c.consent_read,
                c.consent_write,
                c.expires_at
            ],
        )?;
        Ok(())
    }

    /// Spends a code: the first call gets it, any later call learns it was reused.
    pub(crate) fn redeem_code(&self, code: &str) -> StoreResult<CodeRedemption> {
        let mut conn = self.conn();
        let tx = conn.transaction()?;
        let row = tx
            .query_row(
                "SELECT code, client_id, redirect_uri, user_login, id_pe, code_challenge, scope,
                        nonce, consent_read, consent_write, expires_at, used, grant_id
                 FROM authorization_codes WHERE code = ?1",
                params![code],
                |r| {
                    let used: bool = r.get(11)?;
                    let grant_id: Option<i64> = r.get(12)?;
                    Ok((
                        AuthorizationCode {
                            code: r.get(0)?,
                            client_id: r.get(1)?,
                            redirect_uri: r.get(2)?,
                            user_login: r.get(3)?,
                            id_pe: r.get(4)?,
                            code_challenge: r.get(5)?,
                            scope: r.get(6)?,
                            nonce: r.get(7)?,
                            consent_read: r.get(8)?,
                            consent_write: r.get(9)?,
                            expires_at: r.get(10)?,
                        },
                        used,
                        grant_id,
                    ))
                },
            )
            .optional()?;
        let outcome = match row {
            None => CodeRedemption::Unknown,
            Some((_, true, grant_id)) => CodeRedemption::Reused { grant_id },
            Some((c, false, _)) => {
                tx.execute(
                    "UPDATE authorization_codes SET used = 1 WHERE code = ?1",
                    params![code],
                )?;
                CodeRedemption::Fresh(c)
            }
        };
        tx.commit()?;
        Ok(outcome)
    }

    /// Creates the grant a code exchange produced and remembers it on the code.
    pub(crate) fn create_grant(
        &self,
        code: &AuthorizationCode,
        scope: &str,
        now: i64,
    ) -> StoreResult<Grant> {
        let mut conn = self.conn();
        let tx = conn.transaction()?;
        tx.execute(
            "INSERT INTO grants (client_id, user_login, id_pe, scope, consent_read, consent_write,
                                 nonce, created_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
            params![
                code.client_id,
                code.user_login,
                code.id_pe,
                scope,
                code.consent_read,
                code.consent_write,
                code.nonce,
                now
            ],
        )?;
        let id = tx.last_insert_rowid();
        tx.execute(
            "UPDATE authorization_codes SET grant_id = ?2 WHERE code = ?1",
            params![code.code, id],
        )?;
        tx.commit()?;
        Ok(Grant {
            id,
            client_id: code.client_id.clone(),
            user_login: code.user_login.clone(),
            id_pe: code.id_pe.clone(),
            scope: scope.to_owned(),
            consent_read: code.consent_read,
            consent_write: code.consent_write,
            nonce: code.nonce.clone(),
            revoked: false,
        })
    }

    pub(crate) fn insert_token(
        &self,
        token: &str,
        kind: TokenKind,
        grant_id: i64,
        issued_at: i64,
        expires_at: i64,
    ) -> StoreResult<()> {
        self.conn().execute(
            "INSERT INTO tokens (token, kind, grant_id, issued_at, expires_at)
             VALUES (?1, ?2, ?3, ?4, ?5)",
            params![token, kind.as_str(), grant_id, issued_at, expires_at],
        )?;
        Ok(())
    }

    pub(crate) fn token(&self, token: &str) -> StoreResult<Option<TokenRecord>> {
        let sql = format!(
            "SELECT t.kind, t.issued_at, t.expires_at, t.revoked, t.used, {GRANT_COLUMNS}
             FROM tokens t JOIN grants g ON g.id = t.grant_id WHERE t.token = ?1"
        );
        Ok(self
            .conn()
            .query_row(&sql, params![token], |r| {
                let kind: String = r.get(0)?;
                Ok(TokenRecord {
                    kind: if kind == "refresh" {
                        TokenKind::Refresh
                    } else {
                        TokenKind::Access
                    },
                    issued_at: r.get(1)?,
                    expires_at: r.get(2)?,
                    revoked: r.get(3)?,
                    used: r.get(4)?,
                    grant: grant_from_row(r, 5)?,
                })
            })
            .optional()?)
    }

    /// Marks a refresh token used; `false` if it already was (a replay).
    pub(crate) fn mark_refresh_used(&self, token: &str) -> StoreResult<bool> {
        Ok(self.conn().execute(
            "UPDATE tokens SET used = 1 WHERE token = ?1 AND kind = 'refresh' AND used = 0",
            params![token],
        )? > 0)
    }

    /// Revokes a grant and every token of its family.
    pub(crate) fn revoke_grant(&self, grant_id: i64) -> StoreResult<()> {
        let mut conn = self.conn();
        let tx = conn.transaction()?;
        tx.execute(
            "UPDATE grants SET revoked = 1 WHERE id = ?1",
            params![grant_id],
        )?;
        tx.execute(
            "UPDATE tokens SET revoked = 1 WHERE grant_id = ?1",
            params![grant_id],
        )?;
        tx.commit()?;
        Ok(())
    }

    /// Revokes one token.
    pub(crate) fn revoke_token(&self, token: &str) -> StoreResult<()> {
        self.conn().execute(
            "UPDATE tokens SET revoked = 1 WHERE token = ?1",
            params![token],
        )?;
        Ok(())
    }

    /// Makes live tokens expire now (all users, or those of one idPe); returns how many.
    pub(crate) fn expire_tokens(
        &self,
        id_pe: Option<&str>,
        include_refresh: bool,
        now: i64,
    ) -> StoreResult<usize> {
        let kinds = if include_refresh {
            "('access', 'refresh')"
        } else {
            "('access')"
        };
        let sql = format!(
            "UPDATE tokens SET expires_at = ?1
             WHERE kind IN {kinds} AND expires_at > ?1
               AND (?2 IS NULL OR grant_id IN (SELECT id FROM grants WHERE id_pe = ?2))"
        );
        Ok(self.conn().execute(&sql, params![now, id_pe])?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Database;

    fn code(c: &str) -> AuthorizationCode {
        AuthorizationCode {
            code: c.into(),
            client_id: "client".into(),
            redirect_uri: "http://127.0.0.1/cb".into(),
            user_login: "patient-1".into(),
            id_pe: "idpe-1".into(),
            code_challenge: "x".into(),
            scope: "openid".into(),
            nonce: None,
            consent_read: true,
            consent_write: false,
            expires_at: 10,
        }
    }

    #[test]
    fn code_is_redeemed_once_then_reported_reused_with_its_grant() {
        let store = Store::open(&Database::Memory).unwrap();
        store.insert_code(&code("c1")).unwrap();
        let CodeRedemption::Fresh(c) = store.redeem_code("c1").unwrap() else {
            panic!("first redemption must succeed");
        };
        let grant = store.create_grant(&c, "openid", 1).unwrap();
        match store.redeem_code("c1").unwrap() {
            CodeRedemption::Reused { grant_id } => assert_eq!(grant_id, Some(grant.id)),
            other => panic!("unexpected {other:?}"),
        }
        assert!(matches!(
            store.redeem_code("nope").unwrap(),
            CodeRedemption::Unknown
        ));
    }

    #[test]
    fn revoking_a_grant_revokes_its_tokens() {
        let store = Store::open(&Database::Memory).unwrap();
        store.insert_code(&code("c1")).unwrap();
        let CodeRedemption::Fresh(c) = store.redeem_code("c1").unwrap() else {
            panic!("first redemption must succeed");
        };
        let grant = store.create_grant(&c, "openid", 1).unwrap();
        store
            .insert_token("a", TokenKind::Access, grant.id, 1, 100)
            .unwrap();
        store
            .insert_token("r", TokenKind::Refresh, grant.id, 1, 100)
            .unwrap();
        assert!(store.mark_refresh_used("r").unwrap());
        assert!(!store.mark_refresh_used("r").unwrap());
        store.revoke_grant(grant.id).unwrap();
        let a = store.token("a").unwrap().unwrap();
        assert!(a.revoked && a.grant.revoked);
        assert_eq!(store.expire_tokens(Some("idpe-1"), true, 50).unwrap(), 2);
    }
}
