//! `relais demo`: the whole hub in one process, with nothing to install or plug in. A private
//! D-Bus bus, the emulated BlueZ with a household's virtual devices, the MES sandbox, the
//! embedded MQTT broker and the hub itself, set up for two members whose MES accounts are
//! linked. Ctrl-C or SIGTERM stops it all; the hub commits what it holds first.
//!
//! - [`bus`]: the private bus (busd in-process, `dbus-daemon` if busd cannot start).
//! - [`household`]: the members, their devices and their sandbox accounts.
//! - [`report`]: what is printed.

mod bus;
mod household;
mod report;

use std::net::{Ipv4Addr, SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::Context as _;
use relais::hub::config::{BleSection, Config, HubSection, MesSection, MqttSection, SAVABLE_KEYS};
use relais::hub::{self, Hooks};
use relais::web::WebSection;
use relais_bluez_sim::Simulator;
use relais_mes_sandbox::{Sandbox, SandboxConfig};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use report::Lang;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Keep the demo's database in this directory (reused by the next demo); without it, a
    /// fresh temporary directory removed at exit.
    #[arg(long, value_name = "DIR")]
    data: Option<PathBuf>,

    /// Port of the embedded MQTT broker; a free one when it is taken.
    #[arg(long, value_name = "PORT", default_value_t = 1883)]
    mqtt_port: u16,

    /// Port of the web page; a free one when it is taken.
    #[arg(long, value_name = "PORT", default_value_t = 8080)]
    web_port: u16,

    /// Stop after this many seconds, as Ctrl-C would.
    #[arg(long, value_name = "SECONDS")]
    duration: Option<u64>,

    /// The D-Bus broker carrying the emulated BlueZ.
    #[arg(long, value_enum, default_value = "busd")]
    bus: bus::Broker,
}

pub fn run(args: &Args) -> anyhow::Result<()> {
    let lang = Lang::from_env();
    let temporary;
    let data = match &args.data {
        Some(dir) => {
            std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
            dir.clone()
        }
        None => {
            temporary = tempfile::Builder::new()
                .prefix("relais-demo-")
                .tempdir()
                .context("creating a temporary directory")?;
            temporary.path().to_owned()
        }
    };
    // The socket apart from the data, in a short path (a socket path has at most 107 bytes).
    let bus_dir = tempfile::Builder::new()
        .prefix("relais-demo-bus-")
        .tempdir()
        .context("creating the bus directory")?;
    let (socket, address) = bus::address_in(bus_dir.path());
    // Before any thread exists: libdbus (under btleplug) reads it once, whenever it first
    // connects.
    set_system_bus(&address);
    let (bus, address) = bus::PrivateBus::start(args.bus, &socket, &address)?;
    if std::env::var("DBUS_SYSTEM_BUS_ADDRESS").ok().as_deref() != Some(address.as_str()) {
        // The fallback daemon chose its own socket; busd's thread is gone by now.
        set_system_bus(&address);
    }
    let runtime = tokio::runtime::Runtime::new().context("starting the async runtime")?;
    let result = runtime.block_on(demo(args, lang, &data, &address, &bus.describe()));
    // Tasks still running (simulator, sandbox) end with the runtime, before the bus they use.
    runtime.shutdown_timeout(Duration::from_secs(5));
    drop(bus);
    result
}

/// Points libdbus and zbus at the demo's bus.
#[allow(unsafe_code)]
fn set_system_bus(address: &str) {
    // SAFETY: called before the runtime and the bus thread start, or after the bus thread
    // ended: no other thread reads the environment meanwhile.
    unsafe { std::env::set_var("DBUS_SYSTEM_BUS_ADDRESS", address) };
}

async fn demo(
    args: &Args,
    lang: Lang,
    data: &Path,
    bus_address: &str,
    bus_name: &str,
) -> anyhow::Result<()> {
    let started = Instant::now();
    let stop = CancellationToken::new();
    {
        let stop = stop.clone();
        let duration = args.duration.map(Duration::from_secs);
        tokio::spawn(async move {
            tokio::select! {
                () = crate::cli::run::wait_for_signal() => {}
                () = async {
                    match duration {
                        Some(d) => tokio::time::sleep(d).await,
                        None => std::future::pending().await,
                    }
                } => {}
            }
            stop.cancel();
        });
    }

    let (devices, cuff_button) = household::devices()?;
    let _simulator = Simulator::start(bus_address, devices)
        .await
        .context("starting the emulated BlueZ")?;
    let sandbox = Sandbox::start(SandboxConfig {
        users: household::sandbox_users(),
        ..SandboxConfig::default()
    })
    .await
    .context("starting the MES sandbox")?;

    let mut config = config(data, &sandbox, free_port_or_any(args.mqtt_port)?);
    let web = web_ui(&mut config, free_port_or_any(args.web_port)?);
    let _daemon = hub::lock_daemon(&config.hub.database)?;
    let config = with_saved_settings(config)?;
    let mut store = hub::open_store(&config)?;
    household::set_up(&mut store)?;
    relais::web::set_admin_password(&mut store, "relais demo", &web.password)
        .context("setting the web page's password")?;
    household::link_accounts(&mut store, &config.mes.client(), sandbox.base_url()).await?;
    let store = hub::shared(store);

    summary(
        lang,
        &config,
        sandbox.base_url(),
        bus_name,
        bus_address,
        &web,
    );
    tokio::spawn(household::press_cuff(cuff_button, stop.clone()));
    let (delivered, deliveries) = mpsc::channel(1024);
    let printer = tokio::spawn(report::deliveries(
        std::sync::Arc::clone(&store),
        deliveries,
        started,
    ));
    let hooks = Hooks {
        on_mes_delivery: Some(delivered),
        ..Hooks::default()
    };
    let control = hub::control::Control::new(store);
    let ran = hub::run_with(&config, control, stop.clone(), hooks).await;
    // The hook's sender went with the hub: the printer ends after the last line.
    let _ = printer.await;
    lang.say("relais demo arrêtée.", "relais demo stopped.");
    if let Err(e) = sandbox.shutdown().await {
        tracing::warn!("stopping the sandbox: {e}");
    }
    ran
}

/// The hub's configuration for the demo: quick sessions, the sandbox, the embedded broker (the
/// web page is added by [`web_ui`]).
fn config(data: &Path, sandbox: &relais_mes_sandbox::RunningSandbox, mqtt_port: u16) -> Config {
    Config {
        hub: HubSection {
            database: data.join("relais.sqlite"),
            ..HubSection::default()
        },
        ble: BleSection {
            rest_seconds: 2,
            linger_seconds: 2,
            max_backoff_seconds: 5,
            ..BleSection::default()
        },
        mes: MesSection {
            base_url: sandbox.base_url().to_owned(),
            fhir_base_url: sandbox.fhir_base_url(),
            max_backoff_seconds: 5,
            ..MesSection::default()
        },
        mqtt: MqttSection {
            enabled: true,
            embedded_broker: true,
            host: Ipv4Addr::LOCALHOST.to_string(),
            port: mqtt_port,
            client_id: "relais-demo".to_owned(),
            ..MqttSection::default()
        },
        // Set by `web_ui`.
        web: WebSection::default(),
        // The demo wires MQTT to its own broker: saved MQTT settings would cut it off.
        fixed: SAVABLE_KEYS
            .iter()
            .filter(|key| key.starts_with("mqtt."))
            .map(|key| ((*key).to_owned(), "relais demo".to_owned()))
            .collect(),
    }
}

/// `config` with the settings saved in its store (by an earlier demo on the same `--data`),
/// but the ones the demo sets itself.
fn with_saved_settings(config: Config) -> anyhow::Result<Config> {
    let saved: Vec<(String, String)> = relais::store::Store::open(&config.hub.database)?
        .saved_settings()?
        .into_iter()
        .filter(|(key, _)| !config.fixed.contains_key(key))
        .collect();
    config
        .with_saved(&saved)
        .map_err(anyhow::Error::msg)
        .context("applying the saved settings")
}

/// `wanted` when nothing listens there, else (or for 0) a free port.
fn free_port_or_any(wanted: u16) -> anyhow::Result<u16> {
    let free = |port| TcpListener::bind(SocketAddr::from((Ipv4Addr::LOCALHOST, port)));
    match free(wanted) {
        Ok(_) if wanted != 0 => Ok(wanted),
        _ => Ok(free(0)
            .and_then(|l| l.local_addr())
            .context("finding a free port")?
            .port()),
    }
}

/// Where to open the web page and how to sign in.
#[derive(Debug)]
struct WebAccess {
    url: String,
    password: String,
}

/// The web page on loopback at `port`, with a password made for this run (printed in the
/// summary): a demo left running is not open to anyone else on the machine.
fn web_ui(config: &mut Config, port: u16) -> WebAccess {
    config.web = WebSection {
        enabled: true,
        listen: format!("127.0.0.1:{port}"),
        allow_remote: false,
    };
    let password = uuid::Uuid::new_v4().simple().to_string();
    WebAccess {
        url: format!("http://127.0.0.1:{port}/"),
        password: password.get(..12).unwrap_or(&password).to_owned(),
    }
}

fn summary(
    lang: Lang,
    config: &Config,
    sandbox_url: &str,
    bus_name: &str,
    bus_address: &str,
    web: &WebAccess,
) {
    let mqtt = format!("mqtt://{}:{}", config.mqtt.host, config.mqtt.port);
    let prefix = &config.mqtt.topic_prefix;
    lang.say(
        "relais demo : le hub tourne avec des appareils simulés.",
        "relais demo: the hub runs with simulated devices.",
    );
    lang.say(
        &format!(
            "  Foyer : Alice et Bernard ; balance partagée {} (utilisateurs 1 et 2), tensiomètre \
             {} (1 et 2), glucomètre {} d'Alice ({} mesures en mémoire), balance Xiaomi {} de \
             Bernard.",
            household::SCALE,
            household::CUFF,
            household::METER,
            household::STORED_GLUCOSE_RECORDS,
            household::XIAOMI
        ),
        &format!(
            "  Household: Alice and Bernard; shared scale {} (users 1 and 2), cuff {} (1 and \
             2), Alice's glucose meter {} ({} stored records), Bernard's Xiaomi scale {}.",
            household::SCALE,
            household::CUFF,
            household::METER,
            household::STORED_GLUCOSE_RECORDS,
            household::XIAOMI
        ),
    );
    lang.say(
        &format!("  Bus D-Bus : {bus_name}, {bus_address}"),
        &format!("  D-Bus bus: {bus_name}, {bus_address}"),
    );
    lang.say(
        &format!(
            "  MQTT (broker intégré) : {mqtt}, sujets {prefix}/# (mosquitto_sub -h {} -p {} -t '{prefix}/#' -v)",
            config.mqtt.host, config.mqtt.port
        ),
        &format!("  MQTT (embedded broker): {mqtt}, topics {prefix}/#"),
    );
    let logins = household::PEOPLE
        .iter()
        .map(|p| p.login)
        .collect::<Vec<_>>()
        .join(", ");
    lang.say(
        &format!(
            "  Bac à sable Mon espace santé : {sandbox_url} (comptes liés : {logins} ; mesures \
             reçues : {sandbox_url}/admin/observations?id_pe=idpe-alice)"
        ),
        &format!(
            "  Mon espace santé sandbox: {sandbox_url} (linked accounts: {logins}; readings \
             received: {sandbox_url}/admin/observations?id_pe=idpe-alice)"
        ),
    );
    lang.say(
        &format!("  Page web : {} (mot de passe : {})", web.url, web.password),
        &format!("  Web page: {} (password: {})", web.url, web.password),
    );
    lang.say(
        &format!(
            "  Base de données : {} (relais status --set hub.database=...)",
            config.hub.database.display()
        ),
        &format!(
            "  Database: {} (relais status --set hub.database=...)",
            config.hub.database.display()
        ),
    );
    lang.say(
        "Ctrl-C arrête tout. Mesures transmises à Mon espace santé :",
        "Ctrl-C stops everything. Readings delivered to Mon espace santé:",
    );
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn a_taken_or_zero_port_gives_a_free_one() {
        let taken = TcpListener::bind("127.0.0.1:0").unwrap();
        let taken = taken.local_addr().unwrap().port();
        let other = free_port_or_any(taken).unwrap();
        assert_ne!(other, taken);
        assert_ne!(free_port_or_any(0).unwrap(), 0);
    }
}
