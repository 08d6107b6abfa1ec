//! The hub daemon: the BLE supervisor feeding the store, the store feeding the sinks.
//!
//! - [`config`]: the TOML configuration and its overrides.
//! - [`ingest`]: measurements from the BLE layer committed in groups, acknowledged after.
//! - [`upload`]: the MES upload loop ([`crate::mqtt`] is the MQTT one).
//! - [`clock`]: time for retries, real or virtual.
//! - [`control`]: the actions a person or an integrator may ask of the running hub.

pub mod clock;
pub mod config;
pub mod control;
pub mod ingest;
pub mod upload;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::Context as _;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::ble::session::Plan;
use crate::ble::supervisor::{self, Backoff};
use crate::ble::{Central, Seen};
use crate::store::{OutboxItem, Sink, Store};
use config::Config;
use ingest::{Ingested, SharedStore};

/// The parts of a running hub other components (web UI, MQTT) attach to.
#[derive(Debug, Clone)]
pub struct Running {
    /// The store.
    pub store: SharedStore,
    /// Stops everything.
    pub stop: CancellationToken,
    /// Scan, pair, sync, assign...
    pub control: control::Control,
}

/// Makes sure only one hub runs on `database`: an exclusive lock on `<database>.lock`, held as
/// long as the returned file lives (the system releases it when the process dies, even by
/// SIGKILL). Commands that only read or make small changes do not take it.
pub fn lock_daemon(database: &std::path::Path) -> anyhow::Result<std::fs::File> {
    let mut path = database.as_os_str().to_owned();
    path.push(".lock");
    let path = std::path::PathBuf::from(path);
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .with_context(|| format!("opening {}", path.display()))?;
    match file.try_lock() {
        Ok(()) => Ok(file),
        Err(std::fs::TryLockError::WouldBlock) => anyhow::bail!(
            "another `relais run` is using {}: stop it first",
            database.display()
        ),
        Err(std::fs::TryLockError::Error(e)) => {
            Err(e).with_context(|| format!("locking {}", path.display()))
        }
    }
}

/// The configuration every command sees: the file, the settings saved in the store it names,
/// the environment, then `overrides` (see [`config`]).
pub fn load_config(
    path: Option<&std::path::Path>,
    overrides: &[config::Override],
) -> anyhow::Result<Config> {
    // The database is named by the file and the overrides, never by a saved setting.
    let without_saved = Config::load(path, overrides)?;
    let database = &without_saved.hub.database;
    let saved = Store::open(database)
        .and_then(|store| store.saved_settings())
        .with_context(|| format!("reading the saved settings in {}", database.display()))?;
    Ok(Config::load_layers(path, &saved, overrides)?)
}

/// Opens the store of `config`, with the sinks it enables.
pub fn open_store(config: &Config) -> anyhow::Result<Store> {
    let mut store = Store::open(&config.hub.database)
        .with_context(|| format!("opening the database {}", config.hub.database.display()))?;
    let mut sinks = Vec::new();
    if config.mes.enabled {
        sinks.push(Sink::Mes);
    }
    if config.mqtt.enabled {
        sinks.push(Sink::Mqtt);
    }
    store.set_sinks(&sinks);
    Ok(store)
}

/// The session plan for each device: the household's zone, the store's progress.
fn planner(
    config: &Config,
    store: SharedStore,
) -> anyhow::Result<impl supervisor::Planner + use<>> {
    let zone = crate::ble::clock::zone(&config.hub.time_zone)?;
    let only: Vec<String> = config
        .ble
        .only
        .iter()
        .map(|a| a.to_ascii_uppercase())
        .collect();
    let linger = Duration::from_secs(config.ble.linger_seconds);
    Ok(move |seen: &Seen| {
        if !only.is_empty() && !only.contains(&seen.address.to_ascii_uppercase()) {
            return None;
        }
        let mut plan = Plan::new(zone.clone());
        plan.linger = linger;
        // Read at each session: the store knows what was committed, whatever the last session
        // did.
        plan.last_glucose_sequence = match store.lock() {
            Ok(store) => match store.last_glucose_sequence(&seen.address) {
                Ok(last) => last,
                Err(e) => {
                    tracing::error!(address = %seen.address, "progress unreadable, device skipped: {e}");
                    return None;
                }
            },
            Err(_) => return None,
        };
        Some(plan)
    })
}

/// Who hears what the hub does, besides its own tasks.
#[derive(Debug, Clone, Default)]
pub struct Hooks {
    /// Commits and supervisor statuses.
    pub on_ingest: Option<mpsc::Sender<Ingested>>,
    /// Readings MES accepted (their outbox rows, once marked sent).
    pub on_mes_delivery: Option<mpsc::Sender<OutboxItem>>,
}

/// Runs the hub until `stop` is cancelled: the BLE supervisor (when enabled) feeding the
/// store; `on_ingest` hears about commits and statuses.
pub async fn run(
    config: &Config,
    store: SharedStore,
    stop: CancellationToken,
    on_ingest: Option<mpsc::Sender<Ingested>>,
) -> anyhow::Result<()> {
    let hooks = Hooks {
        on_ingest,
        ..Hooks::default()
    };
    run_with(config, control::Control::new(store), stop, hooks).await
}

/// [`run`] on the store of `control`, which then acts on this hub, telling `hooks` what
/// happens.
pub async fn run_with(
    config: &Config,
    control: control::Control,
    stop: CancellationToken,
    hooks: Hooks,
) -> anyhow::Result<()> {
    let store = Arc::clone(control.store());
    let Hooks {
        on_ingest,
        on_mes_delivery,
    } = hooks;
    // Checked before anything starts: a bad [mqtt] section stops `relais run` at once.
    let mqtt = if config.mqtt.enabled {
        let mut settings =
            crate::mqtt::Settings::from_config(&config.mqtt).map_err(anyhow::Error::msg)?;
        settings.zone = crate::ble::clock::zone(&config.hub.time_zone)?;
        Some(settings)
    } else {
        None
    };
    // Up before the bridge connects; it lives as long as the process.
    let _broker = if mqtt.is_some() && config.mqtt.embedded_broker {
        let section = config.mqtt.clone();
        Some(
            tokio::task::spawn_blocking(move || {
                crate::mqtt::broker::EmbeddedBroker::start(&section)
            })
            .await
            .context("starting the embedded MQTT broker")??,
        )
    } else {
        None
    };
    // Bound before anything else starts: a taken port or a refused address stops `relais run`
    // at once.
    let wake = Arc::new(tokio::sync::Notify::new());
    let web = if config.web.enabled {
        let wake = Some(Arc::clone(&wake));
        Some(crate::web::start(config, control.clone(), wake, stop.clone()).await?)
    } else {
        None
    };
    let (reports, received) = mpsc::channel(1024);
    let (ingested, mut heard) = mpsc::channel(1024);
    let ingest = tokio::spawn(ingest::run(Arc::clone(&store), received, Some(ingested)));
    let mqtt_wake = Arc::new(tokio::sync::Notify::new());
    let (mqtt_statuses, mqtt_heard) = mpsc::channel(256);
    let mut tasks: Vec<_> = web.into_iter().map(|w| w.task).collect();
    // Commits wake the uploader and the MQTT bridge; everything is passed on to whoever
    // listens.
    {
        let (wake, mqtt_wake) = (Arc::clone(&wake), Arc::clone(&mqtt_wake));
        let mqtt_statuses = mqtt.is_some().then_some(mqtt_statuses);
        let control = control.clone();
        tasks.push(tokio::spawn(async move {
            while let Some(event) = heard.recv().await {
                if matches!(event, Ingested::Committed { stored, .. } if stored > 0) {
                    wake.notify_one();
                    mqtt_wake.notify_one();
                }
                if let Ingested::Report(status) = &event
                    && let supervisor::Status::Seen(seen) = status.as_ref()
                {
                    control.note_seen(seen);
                }
                if let (Ingested::Report(status), Some(to)) = (&event, &mqtt_statuses)
                    && to.try_send(Arc::clone(status)).is_err()
                {
                    tracing::debug!("a device status was not passed to the MQTT bridge");
                }
                if let Some(on) = &on_ingest
                    && on.try_send(event).is_err()
                {
                    tracing::debug!("an ingest event was not passed on");
                }
            }
        }));
    }
    // What the control changes in the store (assignments, readings from elsewhere) wakes the
    // sinks as a commit does.
    {
        let (wake, mqtt_wake, control, stop) = (
            Arc::clone(&wake),
            Arc::clone(&mqtt_wake),
            control.clone(),
            stop.clone(),
        );
        tasks.push(tokio::spawn(async move {
            loop {
                tokio::select! {
                    () = stop.cancelled() => break,
                    () = control.changed() => {
                        wake.notify_one();
                        mqtt_wake.notify_one();
                    }
                }
            }
        }));
    }
    if config.mes.enabled {
        let settings = upload::Settings {
            retry: config.mes.retry(),
            on_delivery: on_mes_delivery,
            ..upload::Settings::new(config.hub.fhir().map_err(anyhow::Error::msg)?)
        };
        let (store, mes, wake, stop) = (
            Arc::clone(&store),
            config.mes.client(),
            Arc::clone(&wake),
            stop.clone(),
        );
        tasks.push(tokio::spawn(async move {
            if let Err(e) = upload::run(
                store,
                mes,
                settings,
                Arc::new(clock::SystemClock),
                wake,
                stop,
            )
            .await
            {
                tracing::error!("the MES upload cannot start: {e}");
            }
        }));
    }
    if let Some(settings) = mqtt {
        let (control, stop) = (control.clone(), stop.clone());
        tasks.push(tokio::spawn(crate::mqtt::run_with(
            control, settings, mqtt_wake, mqtt_heard, stop,
        )));
    }
    if config.ble.enabled {
        let central = Arc::new(
            Central::first_adapter()
                .await
                .context("opening the Bluetooth adapter (is bluetoothd running?)")?,
        );
        let supervisor_config = supervisor::Config {
            backoff: Backoff {
                initial: Duration::from_secs(2),
                max: Duration::from_secs(config.ble.max_backoff_seconds.max(2)),
            },
            rest: Duration::from_secs(config.ble.rest_seconds),
            ..supervisor::Config::default()
        };
        let planner = planner(config, Arc::clone(&store))?;
        let stopped = stop.clone();
        let commands = match control.take_supervisor_port() {
            Some(port) => port,
            // Another hub took it: this one answers nothing.
            None => mpsc::channel(1).1,
        };
        tasks.push(tokio::spawn(async move {
            if let Err(e) = supervisor::run_with_commands(
                central,
                supervisor_config,
                Arc::new(planner),
                reports,
                commands,
                stopped.cancelled_owned(),
            )
            .await
            {
                tracing::error!("the BLE supervisor stopped: {e}");
            }
        }));
    } else {
        drop(reports);
        // The BLE actions answer at once that Bluetooth is off.
        drop(control.take_supervisor_port());
    }
    stop.cancelled().await;
    // The supervisor's end closes the reports; ingest commits what it holds and returns,
    // which ends the forwarding; the uploader stops between two rows.
    let _ = ingest.await;
    for task in tasks {
        let _ = task.await;
    }
    Ok(())
}

/// A store shared by the hub's tasks.
pub fn shared(store: Store) -> SharedStore {
    Arc::new(Mutex::new(store))
}
