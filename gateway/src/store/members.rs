//! The household: members, which device user each one is, their MES pairing state and tokens.

use rusqlite::{OptionalExtension as _, params};
use serde::Serialize;

use crate::mes::Tokens;
use crate::store::{Store, StoreError, audit, now_text};

/// A household member's row id.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(transparent)]
pub struct MemberId(pub i64);

/// Where a member's MES pairing stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum MesState {
    /// Never linked, or unlinked: readings are kept, nothing is sent.
    Unlinked,
    /// Linked: readings are sent.
    Linked,
    /// MES answered 403 or the consent was revoked: sending stopped, data kept, the member
    /// must link again.
    ConsentWithdrawn,
    /// MES answered 409: the hub's configuration is wrong (OIDs, partner); sending stopped.
    ConfigurationError,
}

impl MesState {
    fn as_str(self) -> &'static str {
        match self {
            Self::Unlinked => "unlinked",
            Self::Linked => "linked",
            Self::ConsentWithdrawn => "consent_withdrawn",
            Self::ConfigurationError => "configuration_error",
        }
    }

    fn parse(text: &str) -> Result<Self, StoreError> {
        Ok(match text {
            "unlinked" => Self::Unlinked,
            "linked" => Self::Linked,
            "consent_withdrawn" => Self::ConsentWithdrawn,
            "configuration_error" => Self::ConfigurationError,
            other => return Err(StoreError::Malformed(format!("MES state {other}"))),
        })
    }
}

/// A household member.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Member {
    /// Row id.
    pub id: MemberId,
    /// The name shown.
    pub display_name: String,
    /// MES pairing state.
    pub mes_state: MesState,
    /// Why the state is what it is (the OperationOutcome text of a 409, say).
    pub mes_state_detail: Option<String>,
    /// The idPe bound at pairing.
    pub id_pe: Option<String>,
    /// The OID of the idPe's assigning authority.
    pub assigning_authority: Option<String>,
}

fn member_row(row: &rusqlite::Row<'_>) -> rusqlite::Result<(Member, String)> {
    let state: String = row.get(2)?;
    Ok((
        Member {
            id: MemberId(row.get(0)?),
            display_name: row.get(1)?,
            mes_state: MesState::Unlinked,
            mes_state_detail: row.get(3)?,
            id_pe: row.get(4)?,
            assigning_authority: row.get(5)?,
        },
        state,
    ))
}

const MEMBER_COLUMNS: &str =
    "id, display_name, mes_state, mes_state_detail, id_pe, assigning_authority";

fn finish((mut member, state): (Member, String)) -> Result<Member, StoreError> {
    member.mes_state = MesState::parse(&state)?;
    Ok(member)
}

impl Store {
    /// Adds a member; names are unique.
    pub fn add_member(&mut self, display_name: &str) -> Result<MemberId, StoreError> {
        let name = display_name.trim();
        if name.is_empty() {
            return Err(StoreError::Invalid("a member needs a name".into()));
        }
        let tx = self.conn_mut().transaction()?;
        let exists: bool = tx.query_row(
            "SELECT EXISTS(SELECT 1 FROM members WHERE display_name = ?1)",
            [name],
            |r| r.get(0),
        )?;
        if exists {
            return Err(StoreError::Invalid(format!(
                "a member is already called {name}"
            )));
        }
        tx.execute(
            "INSERT INTO members (display_name, created_at) VALUES (?1, ?2)",
            params![name, now_text()],
        )?;
        let id = MemberId(tx.last_insert_rowid());
        audit::record(&tx, "member_added", Some(id), None, name)?;
        tx.commit()?;
        Ok(id)
    }

    /// Every member, in the order they were added.
    pub fn members(&self) -> Result<Vec<Member>, StoreError> {
        let mut stmt = self
            .conn()
            .prepare(&format!("SELECT {MEMBER_COLUMNS} FROM members ORDER BY id"))?;
        let rows = stmt.query_map([], member_row)?;
        rows.map(|r| finish(r?)).collect()
    }

    /// One member.
    pub fn member(&self, id: MemberId) -> Result<Member, StoreError> {
        let row = self
            .conn()
            .query_row(
                &format!("SELECT {MEMBER_COLUMNS} FROM members WHERE id = ?1"),
                [id.0],
                member_row,
            )
            .optional()?
            .ok_or_else(|| StoreError::NotFound(format!("no member {}", id.0)))?;
        finish(row)
    }

    /// A member by name (exact, or case-insensitively when that is unambiguous) or by id.
    pub fn find_member(&self, name_or_id: &str) -> Result<Member, StoreError> {
        let members = self.members()?;
        if let Some(m) = members.iter().find(|m| m.display_name == name_or_id) {
            return Ok(m.clone());
        }
        let folded: Vec<&Member> = members
            .iter()
            .filter(|m| m.display_name.eq_ignore_ascii_case(name_or_id))
            .collect();
        if let [m] = folded[..] {
            return Ok(m.clone());
        }
        if let Ok(id) = name_or_id.parse::<i64>()
            && let Some(m) = members.iter().find(|m| m.id.0 == id)
        {
            return Ok(m.clone());
        }
        Err(StoreError::NotFound(format!(
            "no member called {name_or_id}"
        )))
    }

    /// Says that `device`'s user `user_index` (`None`: its measurements without a user index)
    /// is `member`; measurements in the inbox from that user are assigned at once.
    pub fn map_device_user(
        &mut self,
        address: &str,
        user_index: Option<u8>,
        member: MemberId,
    ) -> Result<usize, StoreError> {
        self.member(member)?;
        let device = self
            .device_id(address)?
            .ok_or_else(|| StoreError::NotFound(format!("no device {address} known yet")))?;
        let index = user_index.map_or(-1, i64::from);
        let sinks = self.sinks.clone();
        let tx = self.conn_mut().transaction()?;
        tx.execute(
            "INSERT INTO device_users (device_id, user_index, member_id) VALUES (?1, ?2, ?3)
             ON CONFLICT (device_id, user_index) DO UPDATE SET member_id = excluded.member_id",
            params![device, index, member.0],
        )?;
        audit::record(
            &tx,
            "device_user_mapped",
            Some(member),
            Some(device),
            &format!("{address} user {index}"),
        )?;
        let waiting: Vec<i64> = {
            let mut stmt = tx.prepare(
                "SELECT id FROM measurements WHERE member_id IS NULL AND device_id = ?1
                 AND ifnull(user_index, -1) = ?2 ORDER BY id",
            )?;
            let rows = stmt.query_map(params![device, index], |r| r.get(0))?;
            rows.collect::<Result<_, _>>()?
        };
        for id in &waiting {
            crate::store::measurements::assign_in(&tx, *id, member, &sinks)?;
        }
        tx.commit()?;
        Ok(waiting.len())
    }

    /// The member a device user is mapped to.
    pub fn member_of(
        &self,
        address: &str,
        user_index: Option<u8>,
    ) -> Result<Option<MemberId>, StoreError> {
        Ok(self
            .conn()
            .query_row(
                "SELECT member_id FROM device_users JOIN devices ON devices.id = device_id
                 WHERE address = ?1 AND user_index = ?2",
                params![address, user_index.map_or(-1, i64::from)],
                |r| r.get(0),
            )
            .optional()?
            .map(MemberId))
    }

    /// Records a completed MES pairing: the member is linked, to the patient the tokens name.
    pub fn link_mes(&mut self, member: MemberId, tokens: &Tokens) -> Result<(), StoreError> {
        self.member(member)?;
        let tx = self.conn_mut().transaction()?;
        tx.execute(
            "UPDATE members SET mes_state = 'linked', mes_state_detail = NULL, id_pe = ?2,
             assigning_authority = ?3 WHERE id = ?1",
            params![member.0, tokens.id_pe(), tokens.assigning_authority()],
        )?;
        save_tokens_in(&tx, member, tokens)?;
        audit::record(&tx, "mes_linked", Some(member), None, "consent given")?;
        tx.commit()?;
        Ok(())
    }

    /// Forgets the member's MES tokens and stops sending; the data stays.
    pub fn unlink_mes(&mut self, member: MemberId, why: &str) -> Result<(), StoreError> {
        self.set_mes_state(member, MesState::Unlinked, Some(why))
    }

    /// Changes the member's MES state (tokens are dropped unless still linked), audited.
    pub fn set_mes_state(
        &mut self,
        member: MemberId,
        state: MesState,
        detail: Option<&str>,
    ) -> Result<(), StoreError> {
        self.member(member)?;
        let tx = self.conn_mut().transaction()?;
        tx.execute(
            "UPDATE members SET mes_state = ?2, mes_state_detail = ?3 WHERE id = ?1",
            params![member.0, state.as_str(), detail],
        )?;
        if state != MesState::Linked {
            tx.execute("DELETE FROM mes_tokens WHERE member_id = ?1", [member.0])?;
        }
        audit::record(
            &tx,
            &format!("mes_{}", state.as_str()),
            Some(member),
            None,
            detail.unwrap_or(""),
        )?;
        tx.commit()?;
        Ok(())
    }

    /// The member's MES tokens.
    pub fn tokens(&self, member: MemberId) -> Result<Option<Tokens>, StoreError> {
        let json: Option<String> = self
            .conn()
            .query_row(
                "SELECT tokens FROM mes_tokens WHERE member_id = ?1",
                [member.0],
                |r| r.get(0),
            )
            .optional()?;
        Ok(json.map(|j| serde_json::from_str(&j)).transpose()?)
    }

    /// Replaces the member's tokens (after a refresh: the old refresh token is spent).
    pub fn save_tokens(&mut self, member: MemberId, tokens: &Tokens) -> Result<(), StoreError> {
        let tx = self.conn_mut().transaction()?;
        save_tokens_in(&tx, member, tokens)?;
        tx.commit()?;
        Ok(())
    }
}

fn save_tokens_in(
    tx: &rusqlite::Transaction<'_>,
    member: MemberId,
    tokens: &Tokens,
) -> Result<(), StoreError> {
    tx.execute(
        "INSERT INTO mes_tokens (member_id, tokens, updated_at) VALUES (?1, ?2, ?3)
         ON CONFLICT (member_id) DO UPDATE SET tokens = excluded.tokens,
         updated_at = excluded.updated_at",
        params![member.0, serde_json::to_string(tokens)?, now_text()],
    )?;
    Ok(())
}
