//! One outbox per sink: a row per reading to deliver, in commit order.
//!
//! A row goes `pending` → `sending` (committed before the request leaves, so a crash leaves
//! it "in doubt", to be checked against the sink before any resend) → `sent`; or back to
//! `pending` with a later attempt time after a transient failure; or `quarantined` (the sink
//! refused it, with its reason; never retried blindly) or `unsendable` (the sink cannot take
//! this kind of reading, such as a BMI for MES).

use rusqlite::params;
use serde::Serialize;

use crate::store::{MeasurementId, MemberId, Store, StoreError, now_text};

/// Further ahead than any retry delay: a next attempt this far is a clock that jumped back.
const CLOCK_JUMP: jiff::SignedDuration = jiff::SignedDuration::from_hours(24);

/// Where readings go.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Sink {
    /// Mon espace santé.
    Mes,
    /// The MQTT bridge.
    Mqtt,
}

impl Sink {
    fn as_str(self) -> &'static str {
        match self {
            Self::Mes => "mes",
            Self::Mqtt => "mqtt",
        }
    }
}

/// An outbox row's id.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(transparent)]
pub struct OutboxId(pub i64);

/// A reading to deliver.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct OutboxItem {
    /// Row id: the delivery order.
    pub id: OutboxId,
    /// The measurement.
    pub measurement: MeasurementId,
    /// The reading's place in the measurement.
    pub reading_index: usize,
    /// Whose it is.
    pub member: Option<MemberId>,
    /// Failed attempts so far (the retry delay grows with them).
    pub attempts: u32,
    /// The last error, in words.
    pub last_error: Option<String>,
}

/// How many rows of a sink are in each state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
pub struct Backlog {
    /// Waiting (including waiting for a retry).
    pub pending: u64,
    /// Sent, the answer not yet recorded (in doubt after a crash).
    pub sending: u64,
    /// Delivered.
    pub sent: u64,
    /// Refused by the sink, kept with the reason.
    pub quarantined: u64,
    /// Not a reading the sink takes.
    pub unsendable: u64,
}

pub(crate) fn enqueue(
    tx: &rusqlite::Connection,
    sink: Sink,
    measurement: i64,
    readings: usize,
    member: Option<MemberId>,
) -> Result<(), StoreError> {
    let mut stmt = tx.prepare_cached(
        "INSERT INTO outbox (sink, measurement_id, reading_index, member_id) VALUES (?1, ?2, ?3, ?4)",
    )?;
    for index in 0..readings {
        stmt.execute(params![
            sink.as_str(),
            measurement,
            i64::try_from(index).unwrap_or(i64::MAX),
            member.map(|m| m.0)
        ])?;
    }
    Ok(())
}

fn item(r: &rusqlite::Row<'_>) -> rusqlite::Result<OutboxItem> {
    Ok(OutboxItem {
        id: OutboxId(r.get(0)?),
        measurement: MeasurementId(r.get(1)?),
        reading_index: usize::try_from(r.get::<_, i64>(2)?).unwrap_or(0),
        member: r.get::<_, Option<i64>>(3)?.map(MemberId),
        attempts: u32::try_from(r.get::<_, i64>(4)?).unwrap_or(u32::MAX),
        last_error: r.get(5)?,
    })
}

const ITEM_COLUMNS: &str = "id, measurement_id, reading_index, member_id, attempts, last_error";

impl Store {
    /// The members with readings waiting for `sink`.
    pub fn members_waiting(&self, sink: Sink) -> Result<Vec<MemberId>, StoreError> {
        let mut stmt = self.conn().prepare(
            "SELECT DISTINCT member_id FROM outbox WHERE sink = ?1 AND state IN ('pending', 'sending')
             AND member_id IS NOT NULL ORDER BY member_id",
        )?;
        let rows = stmt.query_map([sink.as_str()], |r| r.get(0))?;
        Ok(rows.map(|r| r.map(MemberId)).collect::<Result<_, _>>()?)
    }

    /// The member's next rows for `sink`, in order, at most `limit`: rows in doubt first (they
    /// come first in order anyway), stopping at the first one waiting for a later retry so
    /// nothing overtakes it.
    pub fn next_for(
        &self,
        sink: Sink,
        member: Option<MemberId>,
        limit: usize,
        now: jiff::Timestamp,
    ) -> Result<Vec<OutboxItem>, StoreError> {
        let mut stmt = self.conn().prepare(&format!(
            "SELECT {ITEM_COLUMNS}, next_attempt_at FROM outbox WHERE sink = ?1
             AND member_id IS ?2 AND state IN ('pending', 'sending') ORDER BY id LIMIT ?3"
        ))?;
        let rows = stmt.query_map(
            params![
                sink.as_str(),
                member.map(|m| m.0),
                i64::try_from(limit).unwrap_or(i64::MAX)
            ],
            |r| Ok((item(r)?, r.get::<_, Option<String>>(6)?)),
        )?;
        let mut out = Vec::new();
        for row in rows {
            let (item, next_attempt_at) = row?;
            let due = match next_attempt_at {
                None => true,
                Some(t) => {
                    let at = t
                        .parse::<jiff::Timestamp>()
                        .map_err(|e| StoreError::Malformed(format!("next_attempt_at: {e}")))?;
                    // No retry is planned a day ahead: a time that far is a clock that jumped
                    // back, and waiting for it would hold the queue for as long.
                    at <= now || at.duration_since(now) > CLOCK_JUMP
                }
            };
            if !due {
                break;
            }
            out.push(item);
        }
        Ok(out)
    }

    /// The next rows of `sink` after `after`, whatever their member or retry time, in id
    /// order, at most `limit`: for sinks that take every reading in one stream (MQTT).
    pub fn next_of_sink(
        &self,
        sink: Sink,
        after: Option<OutboxId>,
        limit: usize,
    ) -> Result<Vec<OutboxItem>, StoreError> {
        let mut stmt = self.conn().prepare(&format!(
            "SELECT {ITEM_COLUMNS} FROM outbox WHERE sink = ?1 AND id > ?2
             AND state IN ('pending', 'sending') ORDER BY id LIMIT ?3"
        ))?;
        let rows = stmt.query_map(
            params![
                sink.as_str(),
                after.map_or(0, |a| a.0),
                i64::try_from(limit).unwrap_or(i64::MAX)
            ],
            item,
        )?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// Marks rows sent in one transaction (one fsync for a window of acknowledgements).
    pub fn mark_sent_many(&mut self, ids: &[OutboxId]) -> Result<(), StoreError> {
        let done = now_text();
        let tx = self.conn_mut().transaction()?;
        {
            let mut stmt = tx.prepare_cached(
                "UPDATE outbox SET state = 'sent', next_attempt_at = NULL, done_at = ?2
                 WHERE id = ?1 AND state IN ('pending', 'sending')",
            )?;
            for id in ids {
                stmt.execute(params![id.0, done])?;
            }
        }
        tx.commit()?;
        Ok(())
    }

    /// When the member's first waiting row may be tried again (`None`: now, or nothing waits).
    pub fn next_attempt_at(
        &self,
        sink: Sink,
        member: Option<MemberId>,
    ) -> Result<Option<jiff::Timestamp>, StoreError> {
        let next: Option<String> = self
            .conn()
            .query_row(
                "SELECT next_attempt_at FROM outbox WHERE sink = ?1 AND member_id IS ?2
             AND state IN ('pending', 'sending') ORDER BY id LIMIT 1",
                params![sink.as_str(), member.map(|m| m.0)],
                |r| r.get(0),
            )
            .or_else(|e| match e {
                rusqlite::Error::QueryReturnedNoRows => Ok(None),
                e => Err(e),
            })?;
        next.map(|t| {
            t.parse()
                .map_err(|e| StoreError::Malformed(format!("next_attempt_at: {e}")))
        })
        .transpose()
    }

    /// Whether the row was left `sending` (by a crash or a lost answer).
    pub fn is_in_doubt(&self, id: OutboxId) -> Result<bool, StoreError> {
        let state: String =
            self.conn()
                .query_row("SELECT state FROM outbox WHERE id = ?1", [id.0], |r| {
                    r.get(0)
                })?;
        Ok(state == "sending")
    }

    fn set_state(
        &mut self,
        id: OutboxId,
        state: &str,
        error: Option<&str>,
        next_attempt_at: Option<jiff::Timestamp>,
        count_attempt: bool,
    ) -> Result<(), StoreError> {
        let done = matches!(state, "sent" | "quarantined" | "unsendable").then(now_text);
        let changed = self.conn().execute(
            "UPDATE outbox SET state = ?2, last_error = ifnull(?3, last_error),
             next_attempt_at = ?4, attempts = attempts + ?5, done_at = ?6 WHERE id = ?1",
            params![
                id.0,
                state,
                error,
                next_attempt_at.map(|t| t.to_string()),
                i64::from(count_attempt),
                done
            ],
        )?;
        if changed == 0 {
            return Err(StoreError::NotFound(format!("no outbox row {}", id.0)));
        }
        Ok(())
    }

    /// Marks the row as leaving now (committed before the request).
    pub fn mark_sending(&mut self, id: OutboxId) -> Result<(), StoreError> {
        self.set_state(id, "sending", None, None, false)
    }

    /// The sink has it.
    pub fn mark_sent(&mut self, id: OutboxId) -> Result<(), StoreError> {
        self.set_state(id, "sent", None, None, false)
    }

    /// A transient failure: try again at `at`.
    pub fn mark_retry(
        &mut self,
        id: OutboxId,
        error: &str,
        at: jiff::Timestamp,
    ) -> Result<(), StoreError> {
        self.set_state(id, "pending", Some(error), Some(at), true)
    }

    /// A failure after which the sink may have the reading anyway (timeout, connection lost):
    /// the row stays in doubt, to be checked against the sink at `at` before any resend.
    pub fn mark_retry_in_doubt(
        &mut self,
        id: OutboxId,
        error: &str,
        at: jiff::Timestamp,
    ) -> Result<(), StoreError> {
        self.set_state(id, "sending", Some(error), Some(at), true)
    }

    /// Back to waiting (the member's sending stopped: consent withdrawn, configuration
    /// error); not a failure of the row.
    pub fn mark_waiting(&mut self, id: OutboxId) -> Result<(), StoreError> {
        let changed = self.conn().execute(
            "UPDATE outbox SET state = 'pending', next_attempt_at = NULL
             WHERE id = ?1 AND state = 'sending'",
            [id.0],
        )?;
        if changed == 0 {
            tracing::debug!(id = id.0, "outbox row was not being sent");
        }
        Ok(())
    }

    /// The sink refused it for good (its reason kept); it is not retried.
    pub fn mark_quarantined(&mut self, id: OutboxId, reason: &str) -> Result<(), StoreError> {
        self.set_state(id, "quarantined", Some(reason), None, false)
    }

    /// The sink does not take this reading.
    pub fn mark_unsendable(&mut self, id: OutboxId, reason: &str) -> Result<(), StoreError> {
        self.set_state(id, "unsendable", Some(reason), None, false)
    }

    /// Puts quarantined rows of a member back in the queue (after the cause was fixed).
    pub fn release_quarantine(
        &mut self,
        sink: Sink,
        member: MemberId,
    ) -> Result<usize, StoreError> {
        Ok(self.conn().execute(
            "UPDATE outbox SET state = 'pending', next_attempt_at = NULL, done_at = NULL
             WHERE sink = ?1 AND member_id = ?2 AND state = 'quarantined'",
            params![sink.as_str(), member.0],
        )?)
    }

    /// The rows of `sink` in each state.
    pub fn backlog(&self, sink: Sink) -> Result<Backlog, StoreError> {
        self.count_states(
            "SELECT state, count(*) FROM outbox WHERE sink = ?1 GROUP BY state",
            params![sink.as_str()],
        )
    }

    /// The rows of `sink` for `member` in each state.
    pub fn backlog_of(&self, sink: Sink, member: MemberId) -> Result<Backlog, StoreError> {
        self.count_states(
            "SELECT state, count(*) FROM outbox WHERE sink = ?1 AND member_id = ?2 GROUP BY state",
            params![sink.as_str(), member.0],
        )
    }

    /// The rows of `sink` for one measurement's readings in each state.
    pub fn delivery_of(
        &self,
        sink: Sink,
        measurement: MeasurementId,
    ) -> Result<Backlog, StoreError> {
        self.count_states(
            "SELECT state, count(*) FROM outbox WHERE sink = ?1 AND measurement_id = ?2
             GROUP BY state",
            params![sink.as_str(), measurement.0],
        )
    }

    fn count_states(
        &self,
        sql: &str,
        params: &[&dyn rusqlite::ToSql],
    ) -> Result<Backlog, StoreError> {
        let mut stmt = self.conn().prepare(sql)?;
        let rows = stmt.query_map(params, |r| {
            Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?))
        })?;
        let mut backlog = Backlog::default();
        for row in rows {
            let (state, n) = row?;
            let n = u64::try_from(n).unwrap_or(0);
            match state.as_str() {
                "pending" => backlog.pending = n,
                "sending" => backlog.sending = n,
                "sent" => backlog.sent = n,
                "quarantined" => backlog.quarantined = n,
                "unsendable" => backlog.unsendable = n,
                other => return Err(StoreError::Malformed(format!("outbox state {other}"))),
            }
        }
        Ok(backlog)
    }

    /// When each delivered row of `sink` was delivered, by measurement, in delivery order.
    pub fn delivered(
        &self,
        sink: Sink,
    ) -> Result<Vec<(MeasurementId, jiff::Timestamp)>, StoreError> {
        let mut stmt = self.conn().prepare(
            "SELECT measurement_id, done_at FROM outbox WHERE sink = ?1 AND state = 'sent'
             ORDER BY done_at",
        )?;
        let rows = stmt.query_map([sink.as_str()], |r| {
            Ok((MeasurementId(r.get(0)?), r.get::<_, String>(1)?))
        })?;
        let mut out = Vec::new();
        for row in rows {
            let (id, at) = row?;
            out.push((
                id,
                at.parse()
                    .map_err(|e| StoreError::Malformed(format!("done_at: {e}")))?,
            ));
        }
        Ok(out)
    }

    /// Quarantined and unsendable rows of `sink`, with their reasons, newest first.
    pub fn refused(&self, sink: Sink, limit: usize) -> Result<Vec<OutboxItem>, StoreError> {
        let mut stmt = self.conn().prepare(&format!(
            "SELECT {ITEM_COLUMNS} FROM outbox WHERE sink = ?1
             AND state IN ('quarantined', 'unsendable') ORDER BY id DESC LIMIT ?2"
        ))?;
        let rows = stmt.query_map(
            params![sink.as_str(), i64::try_from(limit).unwrap_or(i64::MAX)],
            item,
        )?;
        Ok(rows.collect::<Result<_, _>>()?)
    }
}
