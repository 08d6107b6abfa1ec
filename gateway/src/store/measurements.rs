//! Measurements: committed in batches with their dedup keys and outbox rows, the inbox of
//! measurements no member is mapped for, and assignment.
//!
//! A measurement is stored as the device sent it ([`Record`]: the bytes, and the quirks they
//! decode with), with its readings beside it (the decoded, normalised form) for lists and
//! charts without decoding; `relais decode` shows everything else in the bytes. Its dedup key is a hash of the device address and the bytes: a scale that indicates
//! the same stored weighing again after a dropped link, or a meter that sends a record twice,
//! adds nothing.

use std::collections::HashMap;

use relais_protocol::{DeviceTime, Quirks, Reading, ReadingValue};
use rusqlite::{OptionalExtension as _, params};
use serde::Serialize;
use sha2::{Digest as _, Sha256};

use crate::ble::session::Delivery;
use crate::payload::{Origin, Record};
use crate::store::outbox::{self, Sink};
use crate::store::{MemberId, Store, StoreError, audit, devices};

/// A measurement's row id.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(transparent)]
pub struct MeasurementId(pub i64);

/// What a commit did with one delivery.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Committed {
    /// Stored; `member` when a device user mapping assigned it, else it waits in the inbox.
    Stored {
        /// Its id.
        id: MeasurementId,
        /// Who it belongs to.
        member: Option<MemberId>,
    },
    /// Already stored (same device, same bytes).
    Duplicate {
        /// The stored one.
        id: MeasurementId,
    },
}

/// A measurement as stored.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct StoredMeasurement {
    /// Row id.
    pub id: MeasurementId,
    /// The device's address.
    pub address: String,
    /// The device's kind (`weight_scale`, ...).
    pub device_kind: String,
    /// Whose it is; `None`: in the inbox.
    pub member: Option<MemberId>,
    /// For the inbox: the member whose last weight is closest, to confirm.
    pub suggested_member: Option<MemberId>,
    /// The device user index.
    pub user_index: Option<u8>,
    /// The values as received.
    pub record: Record,
    /// The quirks they decode with.
    #[serde(skip)]
    pub quirks: Quirks,
    /// The readings, as JSON.
    pub readings: serde_json::Value,
    /// The first reading's kind and value (systolic for blood pressure), for lists and charts.
    pub primary_kind: Option<String>,
    /// See `primary_kind`, in the kind's canonical unit.
    pub primary_value: Option<f64>,
    /// When the device says it was measured (device local time).
    pub measured_at: Option<String>,
    /// When the hub received it.
    pub received_at: jiff::Timestamp,
    /// Device clock minus true time, when known.
    pub clock_skew_ms: Option<i64>,
}

/// The quirk names enabled in `quirks`, as stored.
pub fn quirk_names(quirks: Quirks) -> Vec<&'static str> {
    Quirks::KNOWN
        .iter()
        .filter(|info| {
            let mut with = quirks;
            with.enable(info.name);
            with == quirks
        })
        .map(|info| info.name)
        .collect()
}

fn quirks_from(names: &[String]) -> Quirks {
    let mut quirks = Quirks::NONE;
    for name in names {
        if !quirks.enable(name) {
            tracing::warn!("unknown stored quirk {name} ignored");
        }
    }
    quirks
}

/// The dedup key of a delivery, 16 bytes: who, when, which, what.
///
/// The same bytes from the same device always give the same key. Its layout keeps a device's
/// new measurements next to each other in the key's index (they arrive in time and sequence
/// order), so a commit touches a few index pages instead of one per measurement: 4 bytes of a
/// hash of the address, 6 of the device time in seconds (0 when undated), 2 of the sequence
/// number (0 when none), then 4 of a SHA-256 of the address and the bytes.
pub fn dedup_key(address: &str, record: &Record, readings: &[Reading]) -> [u8; 16] {
    let address = address.to_ascii_uppercase();
    let device = Sha256::digest(address.as_bytes());
    let mut hash = Sha256::new();
    hash.update(address.as_bytes());
    for payload in &record.payloads {
        let (tag, uuid) = match payload.origin {
            Origin::Characteristic(u) => (b'c', u),
            Origin::ServiceData(u) => (b's', u),
        };
        hash.update([tag]);
        hash.update(uuid.to_le_bytes());
        hash.update(
            u32::try_from(payload.bytes.len())
                .unwrap_or(u32::MAX)
                .to_le_bytes(),
        );
        hash.update(&payload.bytes);
    }
    let content = hash.finalize();
    let seconds = readings
        .first()
        .and_then(|r| r.time.known())
        .and_then(|t| jiff::tz::TimeZone::UTC.to_timestamp(t).ok())
        .map_or(0i64, |t| t.as_second().max(0));
    let sequence = readings.iter().find_map(|r| r.sequence_number).unwrap_or(0);
    let mut key = [0u8; 16];
    let parts = device
        .iter()
        .copied()
        .take(4)
        .chain(seconds.to_be_bytes().into_iter().skip(2))
        .chain(sequence.to_be_bytes())
        .chain(content.iter().copied().take(4));
    for (k, b) in key.iter_mut().zip(parts) {
        *k = b;
    }
    key
}

fn primary(readings: &[Reading]) -> (Option<String>, Option<f64>, Option<String>) {
    let Some(first) = readings.first() else {
        return (None, None, None);
    };
    let kind = serde_json::to_value(first.kind)
        .ok()
        .and_then(|v| v.as_str().map(str::to_owned));
    let value = match first.value {
        ReadingValue::Single(q) => q.to_f64(),
        ReadingValue::BloodPressure { systolic, .. } => systolic.to_f64(),
        #[allow(unreachable_patterns)]
        _ => None,
    };
    let measured_at = match first.time {
        DeviceTime::Known(t) => Some(t.to_string()),
        _ => None,
    };
    (kind, value, measured_at)
}

/// The member whose last weight is within 5 % of `kilograms`, the closest one.
fn suggest_by_weight(
    tx: &rusqlite::Connection,
    kilograms: f64,
) -> Result<Option<MemberId>, StoreError> {
    let mut stmt = tx.prepare(
        "SELECT member_id, primary_value FROM measurements m
         WHERE member_id IS NOT NULL AND primary_kind = 'body_weight'
         AND id = (SELECT max(id) FROM measurements WHERE member_id = m.member_id
                   AND primary_kind = 'body_weight')",
    )?;
    let rows = stmt.query_map([], |r| Ok((r.get::<_, i64>(0)?, r.get::<_, f64>(1)?)))?;
    let mut best: Option<(i64, f64)> = None;
    for row in rows {
        let (member, last) = row?;
        let distance = (last - kilograms).abs();
        if distance <= last.abs() * 0.05 && best.is_none_or(|(_, d)| distance < d) {
            best = Some((member, distance));
        }
    }
    Ok(best.map(|(m, _)| MemberId(m)))
}

/// Assigns an inbox measurement inside a transaction: its outbox rows for the member's sinks.
pub(crate) fn assign_in(
    tx: &rusqlite::Connection,
    id: i64,
    member: MemberId,
    sinks: &[Sink],
) -> Result<(), StoreError> {
    let changed = tx.execute(
        "UPDATE measurements SET member_id = ?2, suggested_member_id = NULL
         WHERE id = ?1 AND member_id IS NULL",
        params![id, member.0],
    )?;
    if changed == 0 {
        return Err(StoreError::Invalid(format!(
            "measurement {id} is not in the inbox"
        )));
    }
    let readings: String = tx.query_row(
        "SELECT readings FROM measurements WHERE id = ?1",
        [id],
        |r| r.get(0),
    )?;
    let count = serde_json::from_str::<Vec<serde_json::Value>>(&readings)?.len();
    if sinks.contains(&Sink::Mes) {
        outbox::enqueue(tx, Sink::Mes, id, count, Some(member))?;
    }
    // Rows other sinks took while it was unassigned follow it.
    tx.execute(
        "UPDATE outbox SET member_id = ?2 WHERE measurement_id = ?1 AND state = 'pending'",
        params![id, member.0],
    )?;
    // Published already as unassigned: published again under the member's topic.
    if sinks.contains(&Sink::Mqtt) {
        let pending: i64 = tx.query_row(
            "SELECT count(*) FROM outbox WHERE measurement_id = ?1 AND sink = 'mqtt'
             AND state = 'pending'",
            [id],
            |r| r.get(0),
        )?;
        if pending == 0 {
            outbox::enqueue(tx, Sink::Mqtt, id, count, Some(member))?;
        }
    }
    Ok(())
}

impl Store {
    /// Commits a batch in one transaction: each delivery's device, the measurement (unless
    /// already stored), its member from the device user mapping (else the inbox), its outbox
    /// rows, and a glucose meter's progress. Returns what happened to each, in order; nothing
    /// is stored when it fails.
    pub fn commit(&mut self, batch: &[Delivery]) -> Result<Vec<Committed>, StoreError> {
        let sinks = self.sinks.clone();
        let tx = self.conn_mut().transaction()?;
        let out = commit_batch(&tx, batch, &sinks)?;
        tx.commit()?;
        Ok(out)
    }

    /// Commits a measurement that came from elsewhere (another gateway), like [`Self::commit`]:
    /// `member` when its source names one, else the device user mapping, else the inbox.
    /// With `repeats_within`, the same first reading from the same device received that
    /// recently is a duplicate too (values without a device time cannot be told apart by
    /// their bytes).
    pub fn commit_external(
        &mut self,
        delivery: &Delivery,
        member: Option<MemberId>,
        repeats_within: Option<std::time::Duration>,
    ) -> Result<Committed, StoreError> {
        let sinks = self.sinks.clone();
        let tx = self.conn_mut().transaction()?;
        let p = prepare(delivery)?;
        if let Some(window) = repeats_within
            && let Some(id) = recent_same(&tx, &p, window)?
        {
            return Ok(Committed::Duplicate { id });
        }
        let out = commit_one(&tx, &p, &sinks, &mut BatchCache::default(), member)?;
        tx.commit()?;
        Ok(out)
    }

    /// Assigns a measurement waiting in the inbox to `member` (the user confirmed it).
    pub fn assign(&mut self, id: MeasurementId, member: MemberId) -> Result<(), StoreError> {
        self.member(member)?;
        let sinks = self.sinks.clone();
        let tx = self.conn_mut().transaction()?;
        assign_in(&tx, id.0, member, &sinks)?;
        audit::record(
            &tx,
            "measurement_assigned",
            Some(member),
            None,
            &format!("measurement {}", id.0),
        )?;
        tx.commit()?;
        Ok(())
    }

    /// Measurements waiting for a member, oldest first.
    pub fn inbox(&self) -> Result<Vec<StoredMeasurement>, StoreError> {
        self.query_measurements("WHERE m.member_id IS NULL ORDER BY m.id", params![])
    }

    /// A member's measurements, newest first, at most `limit`.
    pub fn measurements_of(
        &self,
        member: MemberId,
        limit: usize,
    ) -> Result<Vec<StoredMeasurement>, StoreError> {
        self.query_measurements(
            "WHERE m.member_id = ?1 ORDER BY m.id DESC LIMIT ?2",
            params![member.0, i64::try_from(limit).unwrap_or(i64::MAX)],
        )
    }

    /// Every measurement, newest first, at most `limit`.
    pub fn recent_measurements(&self, limit: usize) -> Result<Vec<StoredMeasurement>, StoreError> {
        self.query_measurements(
            "ORDER BY m.id DESC LIMIT ?1",
            params![i64::try_from(limit).unwrap_or(i64::MAX)],
        )
    }

    /// One measurement.
    pub fn measurement(&self, id: MeasurementId) -> Result<StoredMeasurement, StoreError> {
        self.query_measurements("WHERE m.id = ?1", params![id.0])?
            .into_iter()
            .next()
            .ok_or_else(|| StoreError::NotFound(format!("no measurement {}", id.0)))
    }

    /// How many measurements are stored.
    pub fn measurement_count(&self) -> Result<u64, StoreError> {
        let n: i64 = self
            .conn()
            .query_row("SELECT count(*) FROM measurements", [], |r| r.get(0))?;
        Ok(u64::try_from(n).unwrap_or(0))
    }

    fn query_measurements(
        &self,
        tail: &str,
        params: &[&dyn rusqlite::ToSql],
    ) -> Result<Vec<StoredMeasurement>, StoreError> {
        let mut stmt = self.conn().prepare(&format!(
            "SELECT m.id, d.address, d.kind, m.member_id, m.suggested_member_id, m.user_index,
             m.record, m.quirks, m.readings, m.primary_kind, m.primary_value, m.measured_at,
             m.received_at, m.clock_skew_ms FROM measurements m
             JOIN devices d ON d.id = m.device_id {tail}"
        ))?;
        let rows = stmt.query_map(params, |r| {
            Ok((
                r.get::<_, i64>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, String>(2)?,
                r.get::<_, Option<i64>>(3)?,
                r.get::<_, Option<i64>>(4)?,
                r.get::<_, Option<i64>>(5)?,
                r.get::<_, String>(6)?,
                r.get::<_, String>(7)?,
                r.get::<_, String>(8)?,
                r.get::<_, Option<String>>(9)?,
                r.get::<_, Option<f64>>(10)?,
                r.get::<_, Option<String>>(11)?,
                r.get::<_, String>(12)?,
                r.get::<_, Option<i64>>(13)?,
            ))
        })?;
        let mut out = Vec::new();
        for row in rows {
            let (
                id,
                address,
                device_kind,
                member,
                suggested,
                user,
                record,
                quirks,
                readings,
                kind,
                value,
                measured_at,
                received_at,
                skew,
            ) = row?;
            out.push(StoredMeasurement {
                id: MeasurementId(id),
                address,
                device_kind,
                member: member.map(MemberId),
                suggested_member: suggested.map(MemberId),
                user_index: user.and_then(|u| u8::try_from(u).ok()),
                record: serde_json::from_str(&record)?,
                quirks: quirks_from(&serde_json::from_str::<Vec<String>>(&quirks)?),
                readings: serde_json::from_str(&readings)?,
                primary_kind: kind,
                primary_value: value,
                measured_at,
                received_at: received_at
                    .parse()
                    .map_err(|e| StoreError::Malformed(format!("received_at: {e}")))?,
                clock_skew_ms: skew,
            });
        }
        Ok(out)
    }
}

/// What a delivery becomes before the transaction: the CPU work (hashing, JSON) is done outside
/// it, so the write lock is held for the writes only.
struct Prepared<'a> {
    delivery: &'a Delivery,
    key: [u8; 16],
    record: String,
    quirks: String,
    readings: String,
    user: Option<u8>,
    kind: Option<String>,
    value: Option<f64>,
    measured_at: Option<String>,
    skew_ms: Option<i64>,
}

fn prepare(delivery: &Delivery) -> Result<Prepared<'_>, StoreError> {
    let (kind, value, measured_at) = primary(&delivery.readings);
    Ok(Prepared {
        delivery,
        key: dedup_key(
            &delivery.device.address,
            &delivery.record,
            &delivery.readings,
        ),
        record: serde_json::to_string(&delivery.record)?,
        quirks: serde_json::to_string(&quirk_names(delivery.quirks))?,
        readings: serde_json::to_string(&delivery.readings)?,
        user: delivery.readings.iter().find_map(|r| r.user),
        kind,
        value,
        measured_at,
        skew_ms: delivery
            .clock_skew
            .map(|s| i64::try_from(s.as_millis()).unwrap_or(i64::MAX)),
    })
}

/// A measurement of the same device with the same first reading (kind and value), received
/// within `window` of `p`.
fn recent_same(
    tx: &rusqlite::Connection,
    p: &Prepared<'_>,
    window: std::time::Duration,
) -> Result<Option<MeasurementId>, StoreError> {
    let (Some(kind), Some(value)) = (p.kind.as_deref(), p.value) else {
        return Ok(None);
    };
    let mut stmt = tx.prepare(
        "SELECT m.id, m.received_at FROM measurements m JOIN devices d ON d.id = m.device_id
         WHERE d.address = ?1 AND m.primary_kind = ?2 AND m.primary_value = ?3
         ORDER BY m.id DESC LIMIT 16",
    )?;
    let rows = stmt.query_map(
        params![p.delivery.device.address.to_ascii_uppercase(), kind, value],
        |r| Ok((r.get::<_, i64>(0)?, r.get::<_, String>(1)?)),
    )?;
    let now = p.delivery.received_at;
    for row in rows {
        let (id, received) = row?;
        let Ok(received) = received.parse::<jiff::Timestamp>() else {
            continue;
        };
        let apart = now.duration_since(received).unsigned_abs();
        if apart <= window {
            return Ok(Some(MeasurementId(id)));
        }
    }
    Ok(None)
}

/// Per-batch caches: a device is upserted, and its users looked up, once per batch.
#[derive(Default)]
struct BatchCache {
    devices: HashMap<String, i64>,
    members: HashMap<(i64, i64), Option<MemberId>>,
    /// Highest glucose sequence number per meter.
    sequences: HashMap<i64, u16>,
}

fn commit_batch(
    tx: &rusqlite::Transaction<'_>,
    batch: &[Delivery],
    sinks: &[Sink],
) -> Result<Vec<Committed>, StoreError> {
    let prepared: Vec<Prepared<'_>> = batch.iter().map(prepare).collect::<Result<_, _>>()?;
    let mut cache = BatchCache::default();
    let mut out = Vec::with_capacity(batch.len());
    for p in &prepared {
        out.push(commit_one(tx, p, sinks, &mut cache, None)?);
    }
    let mut stmt = tx.prepare_cached(
        "UPDATE devices SET last_glucose_sequence = max(ifnull(last_glucose_sequence, -1), ?2)
         WHERE id = ?1",
    )?;
    for (device, sequence) in cache.sequences {
        stmt.execute(params![device, i64::from(sequence)])?;
    }
    Ok(out)
}

fn commit_one(
    tx: &rusqlite::Transaction<'_>,
    p: &Prepared<'_>,
    sinks: &[Sink],
    cache: &mut BatchCache,
    assigned: Option<MemberId>,
) -> Result<Committed, StoreError> {
    let delivery = p.delivery;
    let device = match cache.devices.get(&delivery.device.address) {
        Some(&id) => id,
        None => {
            let id = devices::upsert(tx, &delivery.device, delivery.kind, p.skew_ms)?;
            cache.devices.insert(delivery.device.address.clone(), id);
            id
        }
    };
    let user_index = p.user.map_or(-1, i64::from);
    let member = match (assigned, cache.members.get(&(device, user_index))) {
        (Some(m), _) => Some(m),
        (None, Some(&m)) => m,
        (None, None) => {
            let m = tx
                .prepare_cached(
                    "SELECT member_id FROM device_users WHERE device_id = ?1 AND user_index = ?2",
                )?
                .query_row(params![device, user_index], |r| r.get(0))
                .optional()?
                .map(MemberId);
            cache.members.insert((device, user_index), m);
            m
        }
    };
    let suggested = match (member, p.kind.as_deref(), p.value) {
        (None, Some("body_weight"), Some(kg)) => suggest_by_weight(tx, kg)?,
        _ => None,
    };
    // One statement both inserts and detects a duplicate: no row comes back for a known key.
    let inserted: Option<i64> = tx
        .prepare_cached(
            "INSERT INTO measurements (device_id, member_id, suggested_member_id, user_index,
             record, quirks, readings, primary_kind, primary_value, measured_at, received_at,
             clock_skew_ms, dedup_key) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11,
             ?12, ?13) ON CONFLICT (dedup_key) DO NOTHING RETURNING id",
        )?
        .query_row(
            params![
                device,
                member.map(|m| m.0),
                suggested.map(|m| m.0),
                p.user.map(i64::from),
                p.record,
                p.quirks,
                p.readings,
                p.kind,
                p.value,
                p.measured_at,
                delivery.received_at.to_string(),
                p.skew_ms,
                p.key
            ],
            |r| r.get(0),
        )
        .optional()?;
    let Some(id) = inserted else {
        let id = tx
            .prepare_cached("SELECT id FROM measurements WHERE dedup_key = ?1")?
            .query_row([&p.key], |r| r.get::<_, i64>(0))?;
        return Ok(Committed::Duplicate {
            id: MeasurementId(id),
        });
    };
    for &sink in sinks {
        // MES takes only what belongs to someone; other sinks publish the inbox too.
        if sink == Sink::Mes && member.is_none() {
            continue;
        }
        outbox::enqueue(tx, sink, id, delivery.readings.len(), member)?;
    }
    let sequence = delivery
        .readings
        .iter()
        .filter_map(|r| r.sequence_number)
        .max();
    if let (Some(sequence), crate::ble::kind::DeviceKind::GlucoseMeter) = (sequence, delivery.kind)
    {
        let best = cache.sequences.entry(device).or_insert(sequence);
        *best = (*best).max(sequence);
    }
    Ok(Committed::Stored {
        id: MeasurementId(id),
        member,
    })
}
