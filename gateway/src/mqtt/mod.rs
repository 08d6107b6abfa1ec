//! The MQTT bridge, "Out" side: every committed reading published to a broker, fed from the
//! store's MQTT outbox, plus device states and Home Assistant discovery.
//!
//! - MQTT 3.1.1 or 5 ([`client`]); QoS 1 on a persistent session (clean session / clean start
//!   off) under a stable client id; the last will sets the retained `<prefix>/status` to
//!   `offline`, `online` is published retained on each connection.
//! - A row is marked sent only after the broker's PUBACK for each of its messages (packet ids
//!   tracked from the event loop). On any connection error the session is dropped whole and
//!   the rows not acknowledged stay pending: the next session, after our own backoff (rumqttc
//!   would reconnect at once), publishes them again from the first one, in order. Delivery is
//!   at least once: `measurement_id` and `reading_index` identify a reading.
//!
//! "In" side: readings from other gateways on the configured sources' topics ([`ingest`]),
//! refused ones explained on `<prefix>/error`; commands on `<prefix>/command/<name>`
//! ([`commands`]), answered through the hub's [`Control`].
//!
//! - [`client`]: rumqttc's 3.1.1 and 5 clients behind one face.
//! - [`payload`]: topics, the reading payload, device states.
//! - [`discovery`]: Home Assistant discovery configs.
//! - [`sources`]: the configured ingest topics; [`ingest`]: their messages into the store.
//! - [`commands`]: scan, pair, unpair, sync, assign.

pub mod client;
pub mod commands;
pub mod discovery;
pub mod ingest;
pub mod payload;
pub mod sources;

use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{Notify, mpsc};
use tokio_util::sync::CancellationToken;

use crate::ble::supervisor::{Backoff, Status};
use crate::hub::config::MqttSection;
use crate::hub::control::Control;
use crate::hub::ingest::{SharedStore, with_store};
use crate::mes::config::Secret;
use crate::store::{OutboxId, Sink, StoreError};
use client::{Client, Ev, Events, Incoming, Protocol};
use commands::Answer;
use payload::{DeviceState, Format, device_slug};

/// How the bridge connects and publishes.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Broker host.
    pub host: String,
    /// Broker port.
    pub port: u16,
    /// Stable client id.
    pub client_id: String,
    /// MQTT 3.1.1 or 5.
    pub protocol: Protocol,
    /// Username and password.
    pub credentials: Option<(String, Secret)>,
    /// TLS: the CA and client certificate files' contents, read at start.
    pub tls: Option<Tls>,
    /// First topic level.
    pub prefix: String,
    /// Reading payload encoding.
    pub format: Format,
    /// Home Assistant discovery prefix; `None`: no discovery.
    pub discovery: Option<String>,
    /// Delays between connection attempts.
    pub backoff: Backoff,
    /// Readings published and not yet acknowledged, at most.
    pub window: usize,
    /// MQTT keep-alive.
    pub keep_alive: Duration,
    /// How long a connection attempt may take.
    pub connect_timeout: Duration,
    /// Where readings from other gateways come in.
    pub sources: Vec<sources::Source>,
    /// Answer commands.
    pub commands: bool,
    /// The household's zone: readings from elsewhere without a time are stamped with the local
    /// reception time, as a scale's own clock would.
    pub zone: jiff::tz::TimeZone,
}

/// TLS material, PEM.
#[derive(Clone)]
pub struct Tls {
    /// CA certificates.
    pub ca: Vec<u8>,
    /// Client certificate and key.
    pub client: Option<(Vec<u8>, Vec<u8>)>,
}

impl std::fmt::Debug for Tls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tls")
            .field("client_certificate", &self.client.is_some())
            .finish_non_exhaustive()
    }
}

impl Settings {
    /// Defaults for a broker at `host:port`.
    pub fn new(host: &str, port: u16, client_id: &str) -> Self {
        Self {
            host: host.to_owned(),
            port,
            client_id: client_id.to_owned(),
            protocol: Protocol::V311,
            credentials: None,
            tls: None,
            prefix: "relais".to_owned(),
            format: Format::Json,
            discovery: Some("homeassistant".to_owned()),
            backoff: Backoff {
                initial: Duration::from_secs(1),
                max: Duration::from_secs(60),
            },
            window: 64,
            keep_alive: Duration::from_secs(30),
            connect_timeout: Duration::from_secs(10),
            sources: Vec::new(),
            commands: false,
            zone: jiff::tz::TimeZone::UTC,
        }
    }

    /// From the `[mqtt]` section (reads the TLS files).
    pub fn from_config(section: &MqttSection) -> Result<Self, String> {
        if section.embedded_broker {
            return Err("mqtt.embedded_broker: not available yet; run a broker".to_owned());
        }
        let prefix = section.topic_prefix.trim_end_matches('/');
        if prefix.is_empty() || prefix.contains(['+', '#']) {
            return Err(format!(
                "mqtt.topic_prefix {prefix:?}: a topic without wildcards"
            ));
        }
        let client_id = if section.client_id.is_empty() {
            default_client_id()
        } else {
            section.client_id.clone()
        };
        let read = |path: &std::path::Path| {
            std::fs::read(path).map_err(|e| format!("mqtt: reading {}: {e}", path.display()))
        };
        let tls = if section.tls {
            let ca = match &section.ca_file {
                Some(path) => read(path)?,
                None => return Err("mqtt.tls needs mqtt.ca_file".to_owned()),
            };
            let client = match (&section.client_cert_file, &section.client_key_file) {
                (Some(cert), Some(key)) => Some((read(cert)?, read(key)?)),
                (None, None) => None,
                _ => {
                    return Err(
                        "mqtt.client_cert_file and mqtt.client_key_file go together".to_owned()
                    );
                }
            };
            Some(Tls { ca, client })
        } else {
            None
        };
        let discovery = section.discovery_prefix.trim_end_matches('/');
        let sources = sources::from_config(prefix, &section.sources)?;
        Ok(Self {
            sources,
            commands: section.commands,
            credentials: (!section.username.is_empty()).then(|| {
                (
                    section.username.clone(),
                    Secret::new(section.password.clone()),
                )
            }),
            tls,
            prefix: prefix.to_owned(),
            format: section.format.parse()?,
            protocol: section.protocol.parse()?,
            discovery: (!discovery.is_empty()).then(|| discovery.to_owned()),
            backoff: Backoff {
                initial: Duration::from_secs(1),
                max: Duration::from_secs(section.max_backoff_seconds.max(1)),
            },
            ..Self::new(&section.host, section.port, &client_id)
        })
    }
}

/// `relais-<hostname>`: stable across restarts, so the broker finds the session again.
pub fn default_client_id() -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .or_else(|_| std::fs::read_to_string("/etc/hostname"))
        .unwrap_or_default();
    let host: String = host
        .trim()
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || *c == '-')
        .take(40)
        .collect();
    if host.is_empty() {
        "relais-hub".to_owned()
    } else {
        format!("relais-{host}")
    }
}

/// Why a session ended.
#[derive(Debug, thiserror::Error)]
enum SessionError {
    #[error("{0}")]
    Connection(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// What a publish was for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Tag {
    Row(OutboxId),
    Other,
}

/// A message ready to publish.
#[derive(Debug)]
struct Message {
    topic: String,
    payload: Vec<u8>,
    retain: bool,
}

/// One outbox row's messages.
#[derive(Debug)]
struct Prepared {
    row: OutboxId,
    messages: Vec<Message>,
}

/// Runs until `stop`: publishes the MQTT outbox (woken by `wake` after commits) and the
/// device statuses heard on `statuses`, reconnecting with backoff. Without a hub to act on,
/// commands needing Bluetooth answer that it is off.
pub async fn run(
    store: SharedStore,
    settings: Settings,
    wake: Arc<Notify>,
    statuses: mpsc::Receiver<Arc<Status>>,
    stop: CancellationToken,
) {
    let control = Control::without_bluetooth(store);
    run_with(control, settings, wake, statuses, stop).await;
}

/// [`run`] on the store of `control`, which ingest and commands act through.
pub async fn run_with(
    control: Control,
    settings: Settings,
    wake: Arc<Notify>,
    mut statuses: mpsc::Receiver<Arc<Status>>,
    stop: CancellationToken,
) {
    let (answer, answers) = mpsc::channel(64);
    let mut bridge = Bridge {
        store: Arc::clone(control.store()),
        control,
        settings,
        devices: BTreeMap::new(),
        expected: HashSet::new(),
        answer,
        answers,
        running: Arc::new(tokio::sync::Semaphore::new(commands::MAX_RUNNING)),
    };
    let mut failures = 0u32;
    while !stop.is_cancelled() {
        if let Err(e) = bridge.load_devices().await {
            tracing::warn!("mqtt: devices unreadable: {e}");
        }
        let mut connected = false;
        match bridge
            .session(&wake, &mut statuses, &stop, &mut connected)
            .await
        {
            Ok(()) => break,
            Err(e) => {
                failures = if connected {
                    1
                } else {
                    failures.saturating_add(1)
                };
                let delay = bridge.settings.backoff.delay(failures);
                tracing::warn!("mqtt: {e}; connecting again in {} ms", delay.as_millis());
                let until = tokio::time::Instant::now() + delay;
                loop {
                    tokio::select! {
                        () = stop.cancelled() => return,
                        () = tokio::time::sleep_until(until) => break,
                        s = statuses.recv() => match s {
                            Some(s) => { bridge.note(&s); }
                            None => tokio::time::sleep_until(until).await,
                        },
                    }
                }
            }
        }
    }
}

struct Bridge {
    store: SharedStore,
    control: Control,
    settings: Settings,
    /// Commands' answers, from their tasks.
    answer: mpsc::Sender<Answer>,
    answers: mpsc::Receiver<Answer>,
    /// Commands under way, at most [`commands::MAX_RUNNING`].
    running: Arc<tokio::sync::Semaphore>,
    /// By address.
    devices: BTreeMap<String, DeviceState>,
    /// The discovery config topics the current devices have.
    expected: HashSet<String>,
}

/// One connection's bookkeeping.
#[derive(Default)]
struct Flight {
    /// Tags of publishes handed to the client, not yet given a packet id.
    queued: VecDeque<Tag>,
    /// By packet id, waiting for the PUBACK.
    by_pkid: HashMap<u16, Tag>,
    /// Messages of each row not yet acknowledged.
    left: HashMap<OutboxId, usize>,
    /// Rows acknowledged, to mark sent.
    acked: Vec<OutboxId>,
    /// Rows the broker refused for good (MQTT 5), with the reason, to quarantine.
    refused: Vec<(OutboxId, String)>,
    /// The highest row published in this session.
    last: Option<OutboxId>,
}

impl Bridge {
    fn status_topic(&self) -> String {
        format!("{}/status", self.settings.prefix)
    }

    async fn load_devices(&mut self) -> Result<(), StoreError> {
        let stored = with_store(&self.store, |s| s.devices()).await?;
        for d in stored {
            self.devices
                .entry(d.identity.address.to_ascii_uppercase())
                .or_insert_with(|| DeviceState::from_stored(&d));
        }
        Ok(())
    }

    /// Applies a supervisor status; the device whose state changed, if any.
    fn note(&mut self, status: &Status) -> Option<String> {
        let address = match status {
            Status::Seen(seen) => seen.address.to_ascii_uppercase(),
            Status::Connected { device, .. } => device.address.to_ascii_uppercase(),
            Status::Ended { .. } | Status::Adapter { .. } => return None,
        };
        let entry = self
            .devices
            .entry(address.clone())
            .or_insert_with(|| DeviceState {
                address: address.clone(),
                name: None,
                kind: None,
                manufacturer: None,
                model: None,
                battery: None,
                last_seen: None,
                paired: None,
            });
        let before = entry.clone();
        entry.last_seen = Some(jiff::Timestamp::now().to_string());
        match status {
            Status::Seen(seen) => {
                entry.name = seen.name.clone().or(entry.name.take());
                entry.kind = Some(seen.kind.as_str().to_owned());
                entry.paired = seen.paired.or(entry.paired);
            }
            Status::Connected { device, kind } => {
                entry.name = device.name.clone().or(entry.name.take());
                entry.manufacturer = device.manufacturer.clone().or(entry.manufacturer.take());
                entry.model = device.model.clone().or(entry.model.take());
                entry.kind = Some(kind.as_str().to_owned());
            }
            Status::Ended { .. } | Status::Adapter { .. } => {}
        }
        (before != *entry).then_some(address)
    }

    /// The retained messages of a device: its state and its discovery configs.
    fn device_messages(&mut self, address: &str) -> Vec<Message> {
        let Some(device) = self.devices.get(address) else {
            return Vec::new();
        };
        let mut out = Vec::new();
        if let Ok(state) = serde_json::to_vec(device) {
            out.push(Message {
                topic: format!(
                    "{}/device/{}/state",
                    self.settings.prefix,
                    device_slug(address)
                ),
                payload: state,
                retain: true,
            });
        }
        if let Some(discovery) = &self.settings.discovery {
            for (topic, config) in discovery::configs(discovery, &self.settings.prefix, device) {
                if let Ok(payload) = serde_json::to_vec(&config) {
                    self.expected.insert(topic.clone());
                    out.push(Message {
                        topic,
                        payload,
                        retain: true,
                    });
                }
            }
        }
        out
    }

    async fn publish(
        client: &Client,
        flight: &mut Flight,
        tag: Tag,
        m: Message,
    ) -> Result<(), SessionError> {
        flight.queued.push_back(tag);
        client
            .publish(m.topic, m.retain, m.payload)
            .await
            .map_err(SessionError::Connection)
    }

    /// One connection, until an error (`Err`) or `stop` (`Ok`).
    async fn session(
        &mut self,
        wake: &Notify,
        statuses: &mut mpsc::Receiver<Arc<Status>>,
        stop: &CancellationToken,
        connected: &mut bool,
    ) -> Result<(), SessionError> {
        let (client, mut events, _pump) = client::connect(&self.settings, &self.status_topic());
        let connack = tokio::time::timeout(self.settings.connect_timeout, events.recv())
            .await
            .map_err(|_| SessionError::Connection("the broker did not answer in time".into()))?;
        match connack {
            Some(Ok(Ev::ConnAck(Ok(())))) => {}
            Some(Ok(Ev::ConnAck(Err(code)))) => {
                return Err(SessionError::Connection(format!(
                    "the broker refused the connection: {code}"
                )));
            }
            Some(Ok(other)) => {
                return Err(SessionError::Connection(format!(
                    "unexpected first event {other:?}"
                )));
            }
            Some(Err(e)) => return Err(SessionError::Connection(format!("connecting: {e}"))),
            None => return Err(SessionError::Connection("event loop ended".into())),
        }
        *connected = true;
        tracing::info!(
            "mqtt: connected to {}:{}",
            self.settings.host,
            self.settings.port
        );
        let mut flight = Flight::default();
        // Before `online`: who sees it can send commands and readings at once.
        self.subscribe_in(&client).await?;
        let online = Message {
            topic: self.status_topic(),
            payload: b"online".to_vec(),
            retain: true,
        };
        Self::publish(&client, &mut flight, Tag::Other, online).await?;
        let schema = Message {
            topic: format!("{}/schema/reading", self.settings.prefix),
            payload: payload::READING_SCHEMA.as_bytes().to_vec(),
            retain: true,
        };
        Self::publish(&client, &mut flight, Tag::Other, schema).await?;
        if !self.settings.sources.is_empty() {
            let schema = Message {
                topic: format!("{}/schema/ingest", self.settings.prefix),
                payload: ingest::INGEST_SCHEMA.as_bytes().to_vec(),
                retain: true,
            };
            Self::publish(&client, &mut flight, Tag::Other, schema).await?;
        }
        if let Some(discovery) = &self.settings.discovery {
            // Retained configs of ours come back: those no current device has are cleared.
            client
                .subscribe(format!("{discovery}/sensor/+/+/config"))
                .await
                .map_err(SessionError::Connection)?;
        }
        let addresses: Vec<String> = self.devices.keys().cloned().collect();
        for address in addresses {
            for m in self.device_messages(&address) {
                Self::publish(&client, &mut flight, Tag::Other, m).await?;
            }
        }
        loop {
            self.fill(&client, &mut flight).await?;
            tokio::select! {
                () = stop.cancelled() => {
                    self.close(&client, &mut flight, &mut events).await;
                    return Ok(());
                }
                event = events.recv() => {
                    self.handle(&client, &mut flight, event).await?;
                    while let Ok(event) = events.try_recv() {
                        self.handle(&client, &mut flight, Some(event)).await?;
                    }
                }
                () = wake.notified() => {}
                Some(answer) = self.answers.recv() => {
                    flight.queued.push_back(Tag::Other);
                    client
                        .publish_reply(answer.topic, answer.payload, answer.correlation)
                        .await
                        .map_err(SessionError::Connection)?;
                }
                status = statuses.recv() => {
                    if let Some(address) = status.and_then(|s| self.note(&s)) {
                        for m in self.device_messages(&address) {
                            Self::publish(&client, &mut flight, Tag::Other, m).await?;
                        }
                    }
                }
                () = tokio::time::sleep(Duration::from_secs(30)) => {}
            }
            self.flush(&mut flight).await?;
        }
    }

    /// Publishes the next rows while the window has room.
    async fn fill(&mut self, client: &Client, flight: &mut Flight) -> Result<(), SessionError> {
        let room = self.settings.window.saturating_sub(flight.left.len());
        if room == 0 {
            return Ok(());
        }
        let (after, prefix, format) = (
            flight.last,
            self.settings.prefix.clone(),
            self.settings.format,
        );
        let (prepared, last) = with_store(&self.store, move |s| {
            prepare(s, after, room, &prefix, format)
        })
        .await?;
        if last.is_some() {
            flight.last = last;
        }
        for p in prepared {
            if p.messages.is_empty() {
                continue;
            }
            flight.left.insert(p.row, p.messages.len());
            for m in p.messages {
                Self::publish(client, flight, Tag::Row(p.row), m).await?;
            }
        }
        Ok(())
    }

    async fn handle(
        &mut self,
        client: &Client,
        flight: &mut Flight,
        event: Option<Result<Ev, String>>,
    ) -> Result<(), SessionError> {
        let event = match event {
            Some(Ok(event)) => event,
            Some(Err(e)) => return Err(SessionError::Connection(e)),
            None => return Err(SessionError::Connection("event loop ended".into())),
        };
        match event {
            Ev::Published(pkid) => {
                let tag = flight.queued.pop_front().unwrap_or(Tag::Other);
                if pkid != 0 {
                    flight.by_pkid.insert(pkid, tag);
                }
            }
            Ev::Acked { pkid, refused } => {
                let tag = flight.by_pkid.remove(&pkid);
                match refused {
                    None => {}
                    Some(r) if r.permanent => {
                        // Sending it again would be refused again: kept aside with the reason.
                        if let Some(Tag::Row(row)) = tag
                            && flight.left.remove(&row).is_some()
                        {
                            flight
                                .refused
                                .push((row, format!("the broker refused it: {}", r.reason)));
                        }
                        return Ok(());
                    }
                    Some(r) => {
                        return Err(SessionError::Connection(format!(
                            "the broker did not take a message ({}); publishing again",
                            r.reason
                        )));
                    }
                }
                if let Some(Tag::Row(row)) = tag
                    && let Some(left) = flight.left.get_mut(&row)
                {
                    *left = left.saturating_sub(1);
                    if *left == 0 {
                        flight.left.remove(&row);
                        flight.acked.push(row);
                    }
                }
            }
            Ev::Message(message) if self.is_in(&message.topic) => {
                let ack = message.ack;
                self.take_in(client, flight, message).await?;
                // After the commit (or the refusal): a crash before it gets the message again.
                if let Some(pkid) = ack {
                    client.ack(pkid).await.map_err(SessionError::Connection)?;
                }
            }
            Ev::Message(message) => {
                if let Some(pkid) = message.ack {
                    client.ack(pkid).await.map_err(SessionError::Connection)?;
                }
                let topic = message.topic;
                if let Some(discovery) = &self.settings.discovery
                    && discovery::is_ours(discovery, &topic)
                    && !message.payload.is_empty()
                    && !self.expected.contains(&topic)
                {
                    tracing::info!(%topic, "mqtt: removing a stale discovery config");
                    let clear = Message {
                        topic,
                        payload: Vec::new(),
                        retain: true,
                    };
                    Self::publish(client, flight, Tag::Other, clear).await?;
                }
            }
            Ev::BrokerDisconnect => {
                return Err(SessionError::Connection("the broker disconnected".into()));
            }
            Ev::ConnAck(_) | Ev::DisconnectSent | Ev::Other => {}
        }
        Ok(())
    }

    fn command_root(&self) -> String {
        format!("{}/command", self.settings.prefix)
    }

    /// The "In" side's subscriptions: the ingest root (so that a topic no source takes can be
    /// refused), the sources elsewhere, and the commands.
    async fn subscribe_in(&self, client: &Client) -> Result<(), SessionError> {
        let root = sources::ingest_root(&self.settings.prefix);
        let mut filters = Vec::new();
        if !self.settings.sources.is_empty() {
            filters.push(format!("{root}/#"));
        }
        // Under the root already: a second subscription would bring each message twice.
        for s in &self.settings.sources {
            if !s.filter.starts_with(&format!("{root}/")) && !filters.contains(&s.filter) {
                filters.push(s.filter.clone());
            }
        }
        for filter in filters {
            // QoS 1 on the persistent session: readings sent while the hub was away wait.
            client
                .subscribe_qos(filter, true)
                .await
                .map_err(SessionError::Connection)?;
        }
        if self.settings.commands {
            // QoS 0: a command sent while the hub was away is not run hours later.
            client
                .subscribe(format!("{}/+", self.command_root()))
                .await
                .map_err(SessionError::Connection)?;
        }
        Ok(())
    }

    /// Whether a message is for the "In" side.
    fn is_in(&self, topic: &str) -> bool {
        topic.starts_with(&format!("{}/", sources::ingest_root(&self.settings.prefix)))
            || (self.settings.commands && topic.starts_with(&format!("{}/", self.command_root())))
            || self
                .settings
                .sources
                .iter()
                .any(|s| rumqttc::matches(topic, &s.filter))
    }

    /// A command (run in its own task: a scan or a pairing takes a while) or a reading.
    async fn take_in(
        &mut self,
        client: &Client,
        flight: &mut Flight,
        message: Incoming,
    ) -> Result<(), SessionError> {
        if message
            .topic
            .starts_with(&format!("{}/", self.command_root()))
        {
            if message.retain {
                tracing::warn!(topic = %message.topic, "mqtt: a retained command is not run");
                return Ok(());
            }
            let permit = Arc::clone(&self.running).try_acquire_owned().ok();
            tokio::spawn(commands::run(
                self.control.clone(),
                self.settings.prefix.clone(),
                message,
                self.answer.clone(),
                permit,
            ));
            return Ok(());
        }
        let taken = ingest::take(
            &self.control,
            &self.settings.sources,
            &self.settings.zone,
            &message.topic,
            &message.payload,
        )
        .await;
        match taken {
            Ok(Some((id, _))) => {
                tracing::info!(topic = %message.topic, measurement = id.0, "mqtt: reading taken in");
            }
            Ok(None) => tracing::debug!(topic = %message.topic, "mqtt: not a reading for relais"),
            // A retained reading comes back on every connection: once stored, it is no news.
            Err(r) if message.retain && r.reason == ingest::Reason::Duplicate => {}
            Err(rejection) => {
                tracing::info!(topic = %message.topic, reason = ?rejection.reason, "mqtt: message refused");
                let error = serde_json::json!({
                    "version": 1,
                    "topic": message.topic,
                    "reason": rejection.reason,
                    "detail": rejection.detail,
                    "at": jiff::Timestamp::now().to_string(),
                });
                let m = Message {
                    topic: format!("{}/error", self.settings.prefix),
                    payload: serde_json::to_vec(&error).map_err(StoreError::from)?,
                    retain: false,
                };
                Self::publish(client, flight, Tag::Other, m).await?;
            }
        }
        Ok(())
    }

    /// Marks the acknowledged rows sent, in one transaction, and quarantines the refused.
    async fn flush(&mut self, flight: &mut Flight) -> Result<(), SessionError> {
        if !flight.acked.is_empty() {
            let rows = std::mem::take(&mut flight.acked);
            with_store(&self.store, move |s| s.mark_sent_many(&rows)).await?;
        }
        if !flight.refused.is_empty() {
            let refused = std::mem::take(&mut flight.refused);
            with_store(&self.store, move |s| {
                refused
                    .iter()
                    .try_for_each(|(row, why)| s.mark_quarantined(*row, why))
            })
            .await?;
        }
        Ok(())
    }

    /// On stop: `offline` (a clean disconnect does not trigger the will), what is
    /// acknowledged meanwhile is marked, then disconnect.
    async fn close(&mut self, client: &Client, flight: &mut Flight, events: &mut Events) {
        let offline = Message {
            topic: self.status_topic(),
            payload: b"offline".to_vec(),
            retain: true,
        };
        let mut published = Self::publish(client, flight, Tag::Other, offline)
            .await
            .is_ok();
        let _ = client.disconnect().await;
        let until = tokio::time::Instant::now() + Duration::from_secs(2);
        // Until the DISCONNECT is out (or 2 s), acknowledgements still count.
        while published {
            let event = match tokio::time::timeout_at(until, events.recv()).await {
                Ok(Some(Ok(Ev::DisconnectSent) | Err(_)) | None) | Err(_) => break,
                Ok(Some(Ok(event))) => event,
            };
            published = self.handle(client, flight, Some(Ok(event))).await.is_ok();
        }
        if let Err(e) = self.flush(flight).await {
            tracing::warn!("mqtt: acknowledgements not recorded: {e}");
        }
    }
}

/// The next rows after `after`, with their messages; rows whose reading no longer decodes
/// are marked unsendable. Returns the highest row looked at.
fn prepare(
    s: &mut crate::store::Store,
    after: Option<OutboxId>,
    limit: usize,
    prefix: &str,
    format: Format,
) -> Result<(Vec<Prepared>, Option<OutboxId>), StoreError> {
    let items = s.next_of_sink(Sink::Mqtt, after, limit)?;
    let last = items.last().map(|i| i.id);
    if items.is_empty() {
        return Ok((Vec::new(), last));
    }
    let members: HashMap<_, _> = s
        .members()?
        .into_iter()
        .map(|m| {
            let slug = payload::member_slug(&m);
            (m.id, (m, slug))
        })
        .collect();
    let devices: HashMap<_, _> = s
        .devices()?
        .into_iter()
        .map(|d| (d.identity.address.to_ascii_uppercase(), d))
        .collect();
    let mut out = Vec::new();
    for item in items {
        let m = s.measurement(item.measurement)?;
        let readings = match m.record.readings(m.quirks) {
            Ok(r) => r,
            Err(e) => {
                s.mark_unsendable(item.id, &format!("the stored bytes no longer decode: {e}"))?;
                continue;
            }
        };
        let Some(reading) = readings.get(item.reading_index) else {
            s.mark_unsendable(
                item.id,
                &format!("no reading {} in the measurement", item.reading_index),
            )?;
            continue;
        };
        // The row's member, else the measurement's (assigned since).
        let member = item
            .member
            .or(m.member)
            .and_then(|id| members.get(&id))
            .map(|(m, slug)| (m, slug.as_str()));
        let device = devices.get(&m.address.to_ascii_uppercase());
        let value = payload::reading(&m, item.reading_index, reading, device, member);
        let kind = payload::kind_slug(reading);
        let who = member.map_or("unassigned", |(_, slug)| slug);
        let encoded = format.encode(&value).map_err(StoreError::Malformed)?;
        let json = serde_json::to_vec(&value)?;
        out.push(Prepared {
            row: item.id,
            messages: vec![
                Message {
                    topic: format!("{prefix}/{who}/{kind}"),
                    payload: encoded,
                    retain: false,
                },
                // Home Assistant's sensors read this copy: per device, always JSON.
                Message {
                    topic: format!("{prefix}/device/{}/{kind}", device_slug(&m.address)),
                    payload: json,
                    retain: false,
                },
            ],
        });
    }
    Ok((out, last))
}
