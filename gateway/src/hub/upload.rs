//! The MES upload loop: each linked member's readings, in commit order, one Bundle at a time.
//!
//! Per outbox row: map the reading (a reading MES cannot take is marked unsendable with the
//! reason), mark the row `sending` (committed before the request leaves), POST, then record the
//! answer:
//! - accepted: sent;
//! - 401: refresh the tokens (stored at once: the old refresh token is spent) and send again;
//! - 403: the member's consent is withdrawn: sending stops for them, data is kept, the status
//!   says so;
//! - 409: a configuration error (OIDs, partner): sending stops for the member until fixed;
//! - 422 or another refusal of the Bundle itself: quarantined with MES's reason, never
//!   retried blindly, and the queue goes on;
//! - throttling, 5xx, timeouts, lost connections: retried after an exponential delay with
//!   jitter that honours Retry-After. Nothing behind the row overtakes it.
//!
//! When the answer never came (crash, timeout, reset) MES may hold the reading already and
//! API Mesures has no idempotent write: before sending such a row again the loop searches MES
//! for it ([`crate::mes::Uploader::already_stored`]). Without the read consent it cannot look
//! and sends again (at least once rather than never).

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use jiff::{SignedDuration, Timestamp};
use serde_json::Value;
use tokio::sync::{Notify, mpsc};
use tokio_util::sync::CancellationToken;

use crate::fhir::{self, ClockContext, CuffSite, DeviceIdentity, HubSettings};
use crate::hub::clock::Clock;
use crate::hub::ingest::{SharedStore, with_store};
use crate::mes::{MesConfig, PairingClient, RetryPolicy, Tokens, UploadError, Uploader};
use crate::store::devices::StoredDevice;
use crate::store::members::Member;
use crate::store::{MemberId, MesState, OutboxItem, Sink, StoreError, StoredMeasurement};

/// How the loop works.
#[derive(Debug, Clone)]
pub struct Settings {
    /// What the FHIR mapping needs to know of the hub.
    pub hub: HubSettings,
    /// Delays between attempts.
    pub retry: RetryPolicy,
    /// Tokens are refreshed this long before they expire.
    pub refresh_margin: SignedDuration,
    /// Rows read from the outbox at a time.
    pub batch: usize,
    /// The longest the loop sleeps without looking at the outbox.
    pub idle: Duration,
    /// Told of each row MES accepted.
    pub on_delivery: Option<mpsc::Sender<OutboxItem>>,
}

impl Settings {
    /// Defaults around the mapping settings `hub`.
    pub fn new(hub: HubSettings) -> Self {
        Self {
            hub,
            retry: RetryPolicy::default(),
            refresh_margin: SignedDuration::from_secs(120),
            batch: 50,
            idle: Duration::from_secs(30),
            on_delivery: None,
        }
    }
}

/// Why a member's queue stopped for now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Drained {
    /// Nothing due; the next row is due at this time, if any.
    Until(Option<Timestamp>),
    /// Sending stopped for the member (consent, configuration): nothing to wait for.
    Stopped,
}

/// What became of one row.
enum Step {
    Next,
    Wait(Timestamp),
    Stop,
}

/// Runs until `stop`: uploads what the linked members have waiting, wakes on `wake` (a new
/// commit) or when a retry is due.
pub async fn run(
    store: SharedStore,
    mes: MesConfig,
    settings: Settings,
    clock: Arc<dyn Clock>,
    wake: Arc<Notify>,
    stop: CancellationToken,
) -> Result<(), crate::mes::MesConfigError> {
    let mut upload = Loop {
        uploader: Uploader::new(&mes)?,
        pairing: PairingClient::new(&mes)?,
        store,
        settings,
        clock,
        devices: HashMap::new(),
    };
    while !stop.is_cancelled() {
        let next = match upload.round().await {
            Ok(next) => next,
            Err(e) => {
                tracing::error!("the MES upload cannot read the store: {e}");
                Some(
                    upload
                        .clock
                        .now()
                        .checked_add(SignedDuration::from_secs(5))
                        .unwrap_or(Timestamp::MAX),
                )
            }
        };
        let now = upload.clock.now();
        let wait = next
            .map(|t| t.duration_since(now).unsigned_abs())
            .unwrap_or(upload.settings.idle)
            .min(upload.settings.idle);
        if next.is_some_and(|t| t <= now) {
            continue;
        }
        tokio::select! {
            () = stop.cancelled() => break,
            () = wake.notified() => {}
            () = upload.clock.sleep(wait) => {}
        }
    }
    Ok(())
}

struct Loop {
    uploader: Uploader,
    pairing: PairingClient,
    store: SharedStore,
    settings: Settings,
    clock: Arc<dyn Clock>,
    devices: HashMap<String, StoredDevice>,
}

impl Loop {
    /// One pass over the members with readings waiting; the earliest time a retry is due.
    async fn round(&mut self) -> Result<Option<Timestamp>, StoreError> {
        let members = with_store(&self.store, |s| {
            let waiting = s.members_waiting(Sink::Mes)?;
            waiting
                .into_iter()
                .map(|id| s.member(id))
                .collect::<Result<Vec<Member>, _>>()
        })
        .await?;
        let mut next: Option<Timestamp> = None;
        for member in members {
            if member.mes_state != MesState::Linked {
                continue;
            }
            if let Drained::Until(Some(t)) = self.drain(&member).await? {
                next = Some(next.map_or(t, |n| n.min(t)));
            }
        }
        Ok(next)
    }

    async fn drain(&mut self, member: &Member) -> Result<Drained, StoreError> {
        let id = member.id;
        let Some(mut tokens) = with_store(&self.store, move |s| s.tokens(id)).await? else {
            tracing::warn!(member = id.0, "linked without tokens; link again");
            self.set_state(
                id,
                MesState::Unlinked,
                "no MES tokens: link the account again",
            )
            .await?;
            return Ok(Drained::Stopped);
        };
        if tokens.needs_refresh(self.clock.now(), self.settings.refresh_margin) {
            match self.refresh(id, &tokens).await? {
                Some(fresh) => tokens = fresh,
                None => return Ok(Drained::Stopped),
            }
        }
        loop {
            let (batch, now) = (self.settings.batch, self.clock.now());
            let items = with_store(&self.store, move |s| {
                s.next_for(Sink::Mes, Some(id), batch, now)
            })
            .await?;
            if items.is_empty() {
                let next = with_store(&self.store, move |s| s.next_attempt_at(Sink::Mes, Some(id)))
                    .await?;
                return Ok(Drained::Until(next));
            }
            for item in items {
                match self.send(member, &mut tokens, &item).await? {
                    Step::Next => {}
                    Step::Wait(at) => return Ok(Drained::Until(Some(at))),
                    Step::Stop => return Ok(Drained::Stopped),
                }
            }
        }
    }

    /// New tokens, stored; `None` when the pairing is over (the member is told).
    async fn refresh(
        &mut self,
        member: MemberId,
        tokens: &Tokens,
    ) -> Result<Option<Tokens>, StoreError> {
        match self.pairing.refresh(tokens).await {
            Ok(fresh) => {
                let saved = fresh.clone();
                with_store(&self.store, move |s| s.save_tokens(member, &saved)).await?;
                Ok(Some(fresh))
            }
            Err(e) if e.needs_relink() => {
                self.set_state(
                    member,
                    MesState::ConsentWithdrawn,
                    "the Mon espace santé link expired or was revoked: link the account again",
                )
                .await?;
                Ok(None)
            }
            Err(e) => {
                // Transient: the rows stay; the next round tries again.
                tracing::warn!(
                    member = member.0,
                    "token refresh failed, retrying later: {e}"
                );
                Ok(None)
            }
        }
    }

    /// Tells whoever listens that MES has the row `item`.
    fn delivered(&self, item: &OutboxItem) {
        if let Some(to) = &self.settings.on_delivery
            && to.try_send(item.clone()).is_err()
        {
            tracing::debug!("a MES delivery was not passed on");
        }
    }

    async fn set_state(
        &self,
        member: MemberId,
        state: MesState,
        why: &str,
    ) -> Result<(), StoreError> {
        let why = why.to_owned();
        with_store(&self.store, move |s| {
            s.set_mes_state(member, state, Some(&why))
        })
        .await
    }

    async fn device(&mut self, address: &str) -> Result<Option<StoredDevice>, StoreError> {
        // An identity only grows (a first session reads the Device Information; a device can
        // be noted for its members before that): an entry lacking what the mapping needs is
        // read again.
        let complete = self
            .devices
            .get(address)
            .is_some_and(|d| d.identity.manufacturer.is_some() && d.identity.model.is_some());
        if !complete {
            let all = with_store(&self.store, |s| s.devices()).await?;
            self.devices = all
                .into_iter()
                .map(|d| (d.identity.address.clone(), d))
                .collect();
        }
        Ok(self.devices.get(address).cloned())
    }

    /// The Bundle of a row, or why MES cannot take it.
    async fn bundle(
        &mut self,
        measurement: &StoredMeasurement,
        index: usize,
        tokens: &Tokens,
    ) -> Result<Result<Value, String>, StoreError> {
        let readings = match measurement.record.readings(measurement.quirks) {
            Ok(r) => r,
            Err(e) => return Ok(Err(format!("the stored bytes no longer decode: {e}"))),
        };
        let Some(reading) = readings.get(index) else {
            return Ok(Err(format!("no reading {index} in the measurement")));
        };
        let stored = self.device(&measurement.address).await?;
        let identity = stored.as_ref().map(|d| &d.identity);
        let device = DeviceIdentity {
            kind: measurement.record.device_kind(),
            system_id: identity
                .and_then(|i| i.system_id.as_deref())
                .and_then(|s| s.parse().ok()),
            address: measurement.address.parse().ok(),
            manufacturer: identity.and_then(|i| i.manufacturer.clone()),
            model: identity.and_then(|i| i.model.clone()),
            serial: identity.and_then(|i| i.serial.clone()),
            temperature_type: None,
            cuff_site: CuffSite::Arm,
        };
        let pairing = match tokens.subject() {
            Ok(p) => p,
            Err(e) => return Ok(Err(format!("the pairing's assigning authority: {e}"))),
        };
        let clock = ClockContext {
            skew: measurement
                .clock_skew_ms
                .map_or(SignedDuration::ZERO, SignedDuration::from_millis),
            received_at: measurement.received_at,
        };
        Ok(
            fhir::map_reading(reading, &device, &pairing, &self.settings.hub, &clock)
                .map(|m| m.bundle)
                .map_err(|why| why.to_string()),
        )
    }

    fn retry_at(&self, item: &OutboxItem, after: Option<Duration>) -> Timestamp {
        let seed = u64::try_from(item.id.0).unwrap_or(0) ^ u64::from(item.attempts);
        // `attempts` counts the failures before this one: 0 gives the shortest delay.
        let delay = self.settings.retry.next_delay(item.attempts, after, seed);
        let delay = SignedDuration::try_from(delay).unwrap_or(SignedDuration::MAX);
        self.clock
            .now()
            .checked_add(delay)
            .unwrap_or(Timestamp::MAX)
    }

    async fn send(
        &mut self,
        member: &Member,
        tokens: &mut Tokens,
        item: &OutboxItem,
    ) -> Result<Step, StoreError> {
        let (row, measurement_id) = (item.id, item.measurement);
        let measurement = with_store(&self.store, move |s| s.measurement(measurement_id)).await?;
        let bundle = match self
            .bundle(&measurement, item.reading_index, tokens)
            .await?
        {
            Ok(bundle) => bundle,
            Err(why) => {
                with_store(&self.store, move |s| s.mark_unsendable(row, &why)).await?;
                return Ok(Step::Next);
            }
        };
        let in_doubt = with_store(&self.store, move |s| s.is_in_doubt(row)).await?;
        if in_doubt {
            match self.uploader.already_stored(tokens, &bundle).await {
                Ok(true) => {
                    tracing::info!(
                        row = row.0,
                        "reading found in MES after a lost answer; not sent again"
                    );
                    with_store(&self.store, move |s| s.mark_sent(row)).await?;
                    self.delivered(item);
                    return Ok(Step::Next);
                }
                Ok(false) => {}
                Err(UploadError::Retry { after }) => {
                    let at = self.retry_at(item, after);
                    with_store(&self.store, move |s| {
                        s.mark_retry_in_doubt(row, "MES unreachable", at)
                    })
                    .await?;
                    return Ok(Step::Wait(at));
                }
                Err(e) => {
                    tracing::warn!(
                        row = row.0,
                        "cannot check MES for a reading in doubt, sending it again: {e}"
                    );
                }
            }
        }
        with_store(&self.store, move |s| s.mark_sending(row)).await?;
        let mut answer = self.uploader.send(tokens, &bundle).await;
        if answer == Err(UploadError::NeedsRefresh) {
            match self.refresh(member.id, tokens).await? {
                Some(fresh) => {
                    *tokens = fresh;
                    answer = self.uploader.send(tokens, &bundle).await;
                }
                None => {
                    with_store(&self.store, move |s| s.mark_waiting(row)).await?;
                    return Ok(Step::Stop);
                }
            }
        }
        match answer {
            Ok(_) => {
                with_store(&self.store, move |s| s.mark_sent(row)).await?;
                self.delivered(item);
                Ok(Step::Next)
            }
            Err(UploadError::ConsentWithdrawn) => {
                with_store(&self.store, move |s| s.mark_waiting(row)).await?;
                self.set_state(
                    member.id,
                    MesState::ConsentWithdrawn,
                    "Mon espace santé refused the reading (403): the consent was withdrawn; the \
                     readings are kept, link the account again to resume",
                )
                .await?;
                Ok(Step::Stop)
            }
            Err(UploadError::Conflict(outcome)) => {
                with_store(&self.store, move |s| s.mark_waiting(row)).await?;
                self.set_state(
                    member.id,
                    MesState::ConfigurationError,
                    &format!("Mon espace santé reports a configuration conflict (409): {outcome}"),
                )
                .await?;
                Ok(Step::Stop)
            }
            Err(UploadError::Rejected(outcome) | UploadError::BadRequest(outcome)) => {
                let why = outcome.to_string();
                tracing::warn!(row = row.0, "MES refused a reading; quarantined");
                with_store(&self.store, move |s| s.mark_quarantined(row, &why)).await?;
                Ok(Step::Next)
            }
            Err(UploadError::Request(why)) => {
                with_store(&self.store, move |s| s.mark_quarantined(row, &why)).await?;
                Ok(Step::Next)
            }
            Err(
                e @ (UploadError::Retry { .. }
                | UploadError::Unexpected { .. }
                | UploadError::NeedsRefresh),
            ) => {
                let after = match e {
                    UploadError::Retry { after } => after,
                    _ => None,
                };
                let at = self.retry_at(item, after);
                let why = e.to_string();
                with_store(&self.store, move |s| s.mark_retry_in_doubt(row, &why, at)).await?;
                Ok(Step::Wait(at))
            }
        }
    }
}
