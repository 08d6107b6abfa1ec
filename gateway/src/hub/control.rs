//! What a person or an integrator may ask of a running hub: scan, pair, unpair, sync a device
//! now, assign an inbox measurement, record a reading from another source. The web UI and the
//! MQTT commands both go through one [`Control`], so they behave the same.
//!
//! The BLE actions go to the hub's own supervisor (its scan is always on; a second scan on the
//! same adapter would fight it); the store actions go to the store and wake the sinks. Errors
//! are [`ControlError`]s: words a page can show, and a stable [`ControlError::code`] for
//! machines.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde::Serialize;
use tokio::sync::{Notify, broadcast, mpsc, oneshot};

use crate::ble::Seen;
use crate::ble::pairing::{self, Capability, MAX_PASSKEY, PairError, Paired, PasskeySource};
use crate::ble::session::Delivery;
use crate::ble::supervisor::{Command, SyncNow};
use crate::hub::ingest::{SharedStore, with_store};
use crate::store::{Committed, MeasurementId, MemberId, StoreError};

/// The longest scan one may ask for.
pub const MAX_SCAN: Duration = Duration::from_secs(300);

/// How long `Device1.Pair` may take.
pub const PAIR_TIMEOUT: Duration = Duration::from_secs(60);

/// How long the supervisor has to answer a command (it answers between two events).
const SUPERVISOR_ANSWER: Duration = Duration::from_secs(10);

/// Why an action failed, in plain words.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ControlError {
    /// Bluetooth is disabled in the configuration, or its layer stopped.
    #[error("Bluetooth is not running on this hub (disabled in the configuration, or stopped)")]
    BluetoothOff,
    /// Not an `AA:BB:CC:DD:EE:FF` address.
    #[error("not a Bluetooth address: {0}")]
    InvalidAddress(String),
    /// The hub has not seen this device.
    #[error("the hub has not seen the device {0}: wake it up, bring it closer, and scan")]
    UnknownDevice(String),
    /// A scale that only advertises cannot be synchronised.
    #[error("{0} only advertises its readings; they arrive by themselves")]
    AdvertisesOnly(String),
    /// The configuration leaves this device alone (`ble.only`).
    #[error("the hub is configured to leave {0} alone (ble.only)")]
    NotServed(String),
    /// A passkey over six digits.
    #[error("a passkey has at most six digits")]
    InvalidPasskey,
    /// A scan longer than [`MAX_SCAN`] or of zero length.
    #[error("a scan lasts from 1 to {} seconds", MAX_SCAN.as_secs())]
    InvalidDuration,
    /// Pairing failed.
    #[error("pairing failed: {0}")]
    Pairing(String),
    /// Unpairing failed.
    #[error("unpairing failed: {0}")]
    Unpairing(String),
    /// No such measurement.
    #[error("there is no measurement {0}")]
    UnknownMeasurement(i64),
    /// The measurement already belongs to someone.
    #[error("measurement {0} is not in the inbox (it is already assigned)")]
    NotInInbox(i64),
    /// No such member.
    #[error("there is no household member {0}")]
    UnknownMember(String),
    /// The store failed.
    #[error("the database failed: {0}")]
    Store(String),
}

impl ControlError {
    /// A stable machine-readable name (MQTT replies, the web UI's scripts).
    pub fn code(&self) -> &'static str {
        match self {
            Self::BluetoothOff => "bluetooth_off",
            Self::InvalidAddress(_) => "invalid_address",
            Self::UnknownDevice(_) => "unknown_device",
            Self::AdvertisesOnly(_) => "advertises_only",
            Self::NotServed(_) => "not_served",
            Self::InvalidPasskey => "invalid_passkey",
            Self::InvalidDuration => "invalid_duration",
            Self::Pairing(_) => "pairing_failed",
            Self::Unpairing(_) => "unpairing_failed",
            Self::UnknownMeasurement(_) => "unknown_measurement",
            Self::NotInInbox(_) => "not_in_inbox",
            Self::UnknownMember(_) => "unknown_member",
            Self::Store(_) => "store_failed",
        }
    }
}

/// What a scan reports, in order: each device as it is seen (the known ones first), then the
/// end.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum ScanEvent {
    /// A health device, new or changed.
    Found(Seen),
    /// The scan is over: every device seen during it.
    Finished {
        /// By address.
        devices: Vec<Seen>,
    },
}

/// How a sync request went.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Synced {
    /// A session starts now; its readings follow the usual path.
    Started,
    /// A session was already under way.
    AlreadyRunning,
}

/// A handle on a running hub, cheap to clone.
#[derive(Clone)]
pub struct Control {
    store: SharedStore,
    supervisor: mpsc::Sender<Command>,
    /// The other end, until the hub's supervisor takes it.
    supervisor_port: Arc<Mutex<Option<mpsc::Receiver<Command>>>>,
    seen: broadcast::Sender<Seen>,
    changed: Arc<Notify>,
    /// One pairing at a time: BlueZ has one default agent.
    pairing: Arc<tokio::sync::Mutex<()>>,
}

impl std::fmt::Debug for Control {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Control").finish_non_exhaustive()
    }
}

impl From<StoreError> for ControlError {
    fn from(e: StoreError) -> Self {
        Self::Store(e.to_string())
    }
}

impl Control {
    /// A handle on the hub that [`crate::hub::run_with`] will run on `store`.
    pub fn new(store: SharedStore) -> Self {
        let (supervisor, port) = mpsc::channel(16);
        let (seen, _) = broadcast::channel(256);
        Self {
            store,
            supervisor,
            supervisor_port: Arc::new(Mutex::new(Some(port))),
            seen,
            changed: Arc::new(Notify::new()),
            pairing: Arc::new(tokio::sync::Mutex::new(())),
        }
    }

    /// A handle on `store` alone, no hub running Bluetooth: its BLE actions answer
    /// [`ControlError::BluetoothOff`] at once.
    pub fn without_bluetooth(store: SharedStore) -> Self {
        let control = Self::new(store);
        drop(control.take_supervisor_port());
        control
    }

    /// The store.
    pub fn store(&self) -> &SharedStore {
        &self.store
    }

    /// The supervisor's end of the command channel; `None` once taken. Dropping it makes
    /// the BLE actions answer [`ControlError::BluetoothOff`].
    pub(crate) fn take_supervisor_port(&self) -> Option<mpsc::Receiver<Command>> {
        self.supervisor_port.lock().ok().and_then(|mut p| p.take())
    }

    /// The hub saw a device (new or changed): passed to the scans under way.
    pub(crate) fn note_seen(&self, seen: &Seen) {
        // No scan listening is the usual case.
        let _ = self.seen.send(seen.clone());
    }

    /// Resolves when the store changed in a way the sinks must hear of (an assignment, a
    /// reading recorded here).
    pub(crate) async fn changed(&self) {
        self.changed.notified().await;
    }

    async fn ask<T>(
        &self,
        command: impl FnOnce(oneshot::Sender<T>) -> Command,
    ) -> Result<T, ControlError> {
        let (reply, answer) = oneshot::channel();
        self.supervisor
            .send(command(reply))
            .await
            .map_err(|_| ControlError::BluetoothOff)?;
        match tokio::time::timeout(SUPERVISOR_ANSWER, answer).await {
            Ok(Ok(answer)) => Ok(answer),
            Ok(Err(_)) | Err(_) => Err(ControlError::BluetoothOff),
        }
    }

    /// The health devices the hub knows now.
    pub async fn devices(&self) -> Result<Vec<Seen>, ControlError> {
        self.ask(Command::Known).await
    }

    /// Scans for `duration`: the devices already known, then each new or changed one, then
    /// [`ScanEvent::Finished`]. The hub's scan is always on; this listens to it.
    pub async fn scan(
        &self,
        duration: Duration,
    ) -> Result<mpsc::Receiver<ScanEvent>, ControlError> {
        if duration.is_zero() || duration > MAX_SCAN {
            return Err(ControlError::InvalidDuration);
        }
        // Subscribed before asking, so nothing falls between the two.
        let mut heard = self.seen.subscribe();
        let known = self.devices().await?;
        let (events, received) = mpsc::channel(64);
        tokio::spawn(async move {
            let mut all: std::collections::BTreeMap<String, Seen> =
                std::collections::BTreeMap::new();
            for seen in known {
                all.insert(seen.address.clone(), seen.clone());
                if events.send(ScanEvent::Found(seen)).await.is_err() {
                    return;
                }
            }
            let until = tokio::time::Instant::now() + duration;
            loop {
                let seen = match tokio::time::timeout_at(until, heard.recv()).await {
                    Ok(Ok(seen)) => seen,
                    // A slow reader missed some: the end's list still has the latest ones.
                    Ok(Err(broadcast::error::RecvError::Lagged(_))) => continue,
                    Ok(Err(broadcast::error::RecvError::Closed)) | Err(_) => break,
                };
                all.insert(seen.address.clone(), seen.clone());
                if events.send(ScanEvent::Found(seen)).await.is_err() {
                    return;
                }
            }
            let devices = all.into_values().collect();
            let _ = events.send(ScanEvent::Finished { devices }).await;
        });
        Ok(received)
    }

    /// The device's address as the hub knows it, or why not.
    async fn known_device(&self, address: &str) -> Result<Seen, ControlError> {
        pairing::device_path(address).map_err(|_| ControlError::InvalidAddress(address.into()))?;
        self.devices()
            .await?
            .into_iter()
            .find(|s| s.address.eq_ignore_ascii_case(address))
            .ok_or_else(|| ControlError::UnknownDevice(address.to_owned()))
    }

    /// Bonds with a device the hub has seen, answering BlueZ's passkey request with
    /// `passkey` (as `relais pair` does); then serves it at once.
    pub async fn pair(&self, address: &str, passkey: Option<u32>) -> Result<Paired, ControlError> {
        if passkey.is_some_and(|p| p > MAX_PASSKEY) {
            return Err(ControlError::InvalidPasskey);
        }
        let seen = self.known_device(address).await?;
        let _one_at_a_time = self.pairing.lock().await;
        let source: PasskeySource = Arc::new(move |_device: &str| passkey);
        let paired = pairing::pair(
            &seen.address,
            Capability::KeyboardOnly,
            source,
            PAIR_TIMEOUT,
        )
        .await
        .map_err(|e| match e {
            PairError::UnknownDevice(a) => ControlError::UnknownDevice(a),
            other => ControlError::Pairing(other.to_string()),
        })?;
        let bonded = Command::Bonded {
            address: seen.address.clone(),
            paired: true,
        };
        if self.supervisor.send(bonded).await.is_err() {
            return Err(ControlError::BluetoothOff);
        }
        // What the bond opens (a meter's records) is read now rather than after the rest.
        if let Err(e) = self.sync_now(&seen.address).await {
            tracing::debug!(address = %seen.address, "no session after pairing: {e}");
        }
        Ok(paired)
    }

    /// Removes the bond and BlueZ's record of the device; the hub forgets it until it
    /// advertises again.
    pub async fn unpair(&self, address: &str) -> Result<(), ControlError> {
        let seen = self.known_device(address).await?;
        pairing::unpair(&seen.address).await.map_err(|e| match e {
            PairError::UnknownDevice(a) => ControlError::UnknownDevice(a),
            other => ControlError::Unpairing(other.to_string()),
        })?;
        let unbonded = Command::Bonded {
            address: seen.address.clone(),
            paired: false,
        };
        let forget = Command::Forget {
            address: seen.address,
        };
        for command in [unbonded, forget] {
            self.supervisor
                .send(command)
                .await
                .map_err(|_| ControlError::BluetoothOff)?;
        }
        Ok(())
    }

    /// Serves a device now, whatever its backoff or rest. Returns when the session starts;
    /// its readings follow the usual path.
    pub async fn sync_now(&self, address: &str) -> Result<Synced, ControlError> {
        pairing::device_path(address).map_err(|_| ControlError::InvalidAddress(address.into()))?;
        let address = address.to_owned();
        let answer = self
            .ask(|reply| Command::SyncNow {
                address: address.clone(),
                reply,
            })
            .await?;
        match answer {
            SyncNow::Started => Ok(Synced::Started),
            SyncNow::AlreadyRunning => Ok(Synced::AlreadyRunning),
            SyncNow::Unknown => Err(ControlError::UnknownDevice(address)),
            SyncNow::AdvertisesOnly => Err(ControlError::AdvertisesOnly(address)),
            SyncNow::NotServed => Err(ControlError::NotServed(address)),
        }
    }

    /// Assigns an inbox measurement to `member`: it goes to the member's MES record and is
    /// published again under the member's MQTT topic.
    pub async fn assign(
        &self,
        measurement: MeasurementId,
        member: MemberId,
    ) -> Result<(), ControlError> {
        with_store(&self.store, move |s| {
            if let Err(StoreError::NotFound(_)) = s.member(member) {
                return Ok(Err(ControlError::UnknownMember(member.0.to_string())));
            }
            match s.measurement(measurement) {
                Err(StoreError::NotFound(_)) => {
                    return Ok(Err(ControlError::UnknownMeasurement(measurement.0)));
                }
                Ok(m) if m.member.is_some() => {
                    return Ok(Err(ControlError::NotInInbox(measurement.0)));
                }
                Err(e) => return Err(e),
                Ok(_) => {}
            }
            s.assign(measurement, member).map(Ok)
        })
        .await??;
        self.changed.notify_one();
        Ok(())
    }

    /// The member called `name_or_id` (display name, any case, or id).
    pub async fn find_member(&self, name_or_id: &str) -> Result<MemberId, ControlError> {
        let wanted = name_or_id.to_owned();
        match with_store(&self.store, move |s| s.find_member(&wanted)).await {
            Ok(m) => Ok(m.id),
            Err(StoreError::NotFound(_)) => Err(ControlError::UnknownMember(name_or_id.into())),
            Err(e) => Err(e.into()),
        }
    }

    /// Records a reading that came from elsewhere (another gateway over MQTT) exactly as the
    /// BLE layer's: one transaction with its dedup key and outbox rows, then the sinks are
    /// woken. `member` when the source names one, else the device user mapping, else the
    /// inbox. With `repeats_within` (values without a device time), the same value from the
    /// same device received that recently is a duplicate. A replay comes back as
    /// [`Committed::Duplicate`] and adds nothing.
    pub async fn record(
        &self,
        delivery: Delivery,
        member: Option<MemberId>,
        repeats_within: Option<Duration>,
    ) -> Result<Committed, ControlError> {
        let committed = with_store(&self.store, move |s| {
            s.commit_external(&delivery, member, repeats_within)
        })
        .await?;
        if matches!(committed, Committed::Stored { .. }) {
            self.changed.notify_one();
        }
        Ok(committed)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use crate::store::Store;

    /// A weighing of `kg` from `address`, as the BLE layer delivers it (resolution 5 g).
    fn weighing(address: &str, kg: f64) -> Delivery {
        weighing_by(address, kg, None)
    }

    /// The same, by device user `user`.
    fn weighing_by(address: &str, kg: f64, user: Option<u8>) -> Delivery {
        let raw = u16::try_from((kg * 200.0).round() as i64).unwrap();
        let mut bytes = vec![if user.is_some() { 0x04 } else { 0x00 }];
        bytes.extend(raw.to_le_bytes());
        bytes.extend(user);
        let record = crate::payload::Record::single(crate::payload::Payload::characteristic(
            relais_protocol::uuid::WEIGHT_MEASUREMENT,
            bytes,
        ));
        Delivery {
            device: crate::ble::Identity {
                address: address.into(),
                ..crate::ble::Identity::default()
            },
            kind: crate::ble::DeviceKind::WeightScale,
            readings: record.readings(relais_protocol::Quirks::NONE).unwrap(),
            record,
            quirks: relais_protocol::Quirks::NONE,
            received_at: jiff::Timestamp::now(),
            clock_skew: None,
        }
    }

    fn control() -> Control {
        Control::new(crate::hub::shared(Store::open_in_memory().unwrap()))
    }

    #[tokio::test]
    async fn without_a_supervisor_the_ble_actions_say_bluetooth_is_off() {
        let control = Control::without_bluetooth(control().store().clone());
        assert_eq!(
            control.sync_now("C0:FF:EE:00:00:01").await,
            Err(ControlError::BluetoothOff)
        );
        assert_eq!(
            control.scan(Duration::from_secs(1)).await.err(),
            Some(ControlError::BluetoothOff)
        );
        assert_eq!(
            control.pair("C0:FF:EE:00:00:01", Some(1)).await,
            Err(ControlError::BluetoothOff)
        );
        // Checked before anything else.
        assert_eq!(
            control.sync_now("not an address").await,
            Err(ControlError::InvalidAddress("not an address".into()))
        );
        assert_eq!(
            control.pair("C0:FF:EE:00:00:01", Some(1_000_000)).await,
            Err(ControlError::InvalidPasskey)
        );
        assert_eq!(
            control.scan(MAX_SCAN + Duration::from_secs(1)).await.err(),
            Some(ControlError::InvalidDuration)
        );
    }

    #[tokio::test]
    async fn assign_checks_the_member_and_the_inbox() {
        let control = control();
        let alice = with_store(control.store(), |s| s.add_member("Alice"))
            .await
            .unwrap();
        let delivery = weighing("C0:FF:EE:00:00:01", 72.0);
        let Committed::Stored { id, member: None } =
            control.record(delivery, None, None).await.unwrap()
        else {
            panic!("an unmapped device's reading goes to the inbox");
        };
        assert_eq!(
            control.assign(id, MemberId(99)).await,
            Err(ControlError::UnknownMember("99".into()))
        );
        assert_eq!(
            control.assign(MeasurementId(99), alice).await,
            Err(ControlError::UnknownMeasurement(99))
        );
        control.assign(id, alice).await.unwrap();
        assert_eq!(
            control.assign(id, alice).await,
            Err(ControlError::NotInInbox(id.0))
        );
        let inbox = with_store(control.store(), |s| s.inbox()).await.unwrap();
        assert!(inbox.is_empty());
        assert_eq!(control.find_member("alice").await, Ok(alice));
        assert!(matches!(
            control.find_member("bob").await,
            Err(ControlError::UnknownMember(_))
        ));
    }

    #[tokio::test]
    async fn a_replayed_reading_is_a_duplicate() {
        let control = control();
        let delivery = weighing("C0:FF:EE:00:00:01", 72.0);
        let first = control.record(delivery.clone(), None, None).await.unwrap();
        let again = control.record(delivery, None, None).await.unwrap();
        let Committed::Stored { id, .. } = first else {
            panic!("stored first");
        };
        assert_eq!(again, Committed::Duplicate { id });
        let count = with_store(control.store(), |s| s.measurement_count())
            .await
            .unwrap();
        assert_eq!(count, 1);
    }

    #[tokio::test]
    async fn timeless_repeats_are_duplicates_and_a_source_member_is_kept() {
        let control = control();
        let alice = with_store(control.store(), |s| s.add_member("Alice"))
            .await
            .unwrap();
        let window = Some(Duration::from_secs(600));
        let first = control
            .record(weighing("C0:FF:EE:00:00:02", 61.2), None, window)
            .await
            .unwrap();
        let Committed::Stored { id, member: None } = first else {
            panic!("stored in the inbox first: {first:?}");
        };
        // Other bytes, same value from the same scale, just after: the same weighing.
        let again = weighing_by("C0:FF:EE:00:00:02", 61.2, Some(3));
        assert_eq!(
            control.record(again.clone(), None, window).await.unwrap(),
            Committed::Duplicate { id }
        );
        // Without the window, those bytes are another measurement.
        assert!(matches!(
            control.record(again, None, None).await.unwrap(),
            Committed::Stored { .. }
        ));
        let other = weighing("C0:FF:EE:00:00:03", 80.0);
        assert!(matches!(
            control.record(other, Some(alice), window).await.unwrap(),
            Committed::Stored { member: Some(m), .. } if m == alice
        ));
    }
}
