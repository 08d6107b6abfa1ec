//! The hub's configuration: a TOML file, each value overridable from the environment
//! (`RELAIS_<SECTION>__<KEY>`) or the command line (`--set section.key=value`).
//!
//! Layers, the more explicit winning: the file < the settings saved in the store from the web
//! page or `relais settings` ([`SAVABLE_KEYS`] only) < the environment < `--set`.
//!
//! The file is read from `--config`, else `$RELAIS_CONFIG`, else [`DEFAULT_PATH`] when it
//! exists (no file: the defaults, which run the hub against simulated devices and the local MES
//! sandbox). Errors say which key, where (file line and column, or which override) and what
//! was expected; unknown keys are errors, so a typo never passes silently.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// Where the configuration is looked for when none is named.
pub const DEFAULT_PATH: &str = "/etc/relais/relais.toml";

/// Environment variables starting with this override keys (`RELAIS_MES__BASE_URL`).
pub const ENV_PREFIX: &str = "RELAIS_";

/// The keys the web page and `relais settings` may save.
pub const SAVABLE_KEYS: &[&str] = &[
    "hub.time_zone",
    "mqtt.enabled",
    "mqtt.host",
    "mqtt.port",
    "mqtt.username",
    "mqtt.password",
    "mqtt.tls",
    "mqtt.topic_prefix",
    "mqtt.discovery_prefix",
    "mqtt.format",
    "mqtt.embedded_broker",
];

/// Where saved settings come from, in error messages.
pub const SAVED_SOURCE: &str = "saved settings";

/// The whole configuration.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// The hub itself.
    pub hub: HubSection,
    /// Bluetooth.
    pub ble: BleSection,
    /// Mon espace santé.
    pub mes: MesSection,
    /// The MQTT bridge.
    pub mqtt: MqttSection,
    /// The web page.
    pub web: crate::web::WebSection,
    /// Keys set by the environment or `--set`, with where from: saved settings cannot change
    /// them.
    #[serde(skip)]
    pub fixed: std::collections::BTreeMap<String, String>,
}

/// `[hub]`
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct HubSection {
    /// The SQLite database (created `0600`).
    pub database: PathBuf,
    /// IANA zone of the household: device clocks are set to it, MES times carry its offset.
    pub time_zone: String,
    /// The hub's OID (`meta.source`), a sub-OID of the partner's.
    pub oid: String,
    /// Profile URLs sent to MES: `ans`, `mes` or `ens`.
    pub profiles: String,
    /// Date live readings that carry no time (heart rate) with their reception time.
    pub date_undated_live_readings: bool,
}

impl Default for HubSection {
    fn default() -> Self {
        Self {
            database: PathBuf::from("relais.sqlite"),
            time_zone: crate::fhir::DEFAULT_TIME_ZONE.to_owned(),
            oid: "2.999.42.1.7".to_owned(),
            profiles: "ans".to_owned(),
            date_undated_live_readings: true,
        }
    }
}

/// `[ble]`
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct BleSection {
    /// Watch for devices (off: the hub only uploads and serves).
    pub enabled: bool,
    /// Only these addresses; empty: every health device in range.
    pub only: Vec<String>,
    /// Seconds a device is left alone after a successful session.
    pub rest_seconds: u64,
    /// Seconds a session waits for more after the last value.
    pub linger_seconds: u64,
    /// Longest retry delay after failed sessions, seconds.
    pub max_backoff_seconds: u64,
}

impl Default for BleSection {
    fn default() -> Self {
        Self {
            enabled: true,
            only: Vec::new(),
            rest_seconds: 60,
            linger_seconds: 10,
            max_backoff_seconds: 300,
        }
    }
}

/// `[mes]`
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MesSection {
    /// Send readings to MES.
    pub enabled: bool,
    /// The pairing (OAuth2) server.
    pub base_url: String,
    /// The FHIR API Mesures base.
    pub fhir_base_url: String,
    /// The partner's client id.
    pub client_id: String,
    /// The partner's client secret.
    pub client_secret: String,
    /// Where MES sends the browser back after consent: a loopback address `relais link-mes`
    /// listens on (without a port, any free one).
    pub redirect_uri: String,
    /// Longest delay between two attempts of a failing upload, seconds (jitter may add as
    /// much again).
    pub max_backoff_seconds: u64,
    /// Seconds an HTTP request to MES may take.
    pub request_timeout_seconds: u64,
}

impl Default for MesSection {
    fn default() -> Self {
        Self {
            enabled: true,
            base_url: "http://127.0.0.1:8800".to_owned(),
            fhir_base_url: "http://127.0.0.1:8800/fhir".to_owned(),
            client_id: "relais-hub".to_owned(),
            client_secret: "relais-hub-secret".to_owned(),
            redirect_uri: "http://127.0.0.1/mes/callback".to_owned(),
            max_backoff_seconds: 900,
            request_timeout_seconds: 30,
        }
    }
}

/// `[mqtt]`
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MqttSection {
    /// Publish readings to an MQTT broker.
    pub enabled: bool,
    /// The broker.
    pub host: String,
    /// Its port (1883, 8883 with TLS).
    pub port: u16,
    /// The client id, stable so the broker keeps the session; empty: `relais-<hostname>`.
    pub client_id: String,
    /// Empty: no credentials.
    pub username: String,
    /// See `username`.
    pub password: String,
    /// TLS to the broker (rustls).
    pub tls: bool,
    /// PEM CA certificates the broker's certificate must chain to.
    pub ca_file: Option<PathBuf>,
    /// PEM client certificate, for brokers that authenticate clients by certificate.
    pub client_cert_file: Option<PathBuf>,
    /// PEM private key of `client_cert_file`.
    pub client_key_file: Option<PathBuf>,
    /// `3.1.1` or `5`.
    pub protocol: String,
    /// First level of every topic.
    pub topic_prefix: String,
    /// Reading payloads: `json` or `cbor`.
    pub format: String,
    /// Home Assistant's discovery prefix; empty: no discovery.
    pub discovery_prefix: String,
    /// Start a broker (rumqttd) in the hub, listening on `host:port`, which must be loopback;
    /// the bridge publishes to it. Off by default: a household that enabled MQTT usually has a
    /// broker already (Home Assistant's), which an embedded one would fight for the port.
    pub embedded_broker: bool,
    /// Longest delay between two connection attempts, seconds.
    pub max_backoff_seconds: u64,
    /// Answer commands on `<topic_prefix>/command/<name>` (off by default: whoever may publish
    /// there can pair devices and assign readings).
    pub commands: bool,
    /// Where readings from other gateways may come in (`[[mqtt.sources]]`); none: no ingest.
    pub sources: Vec<MqttSource>,
}

/// `[[mqtt.sources]]`: one topic readings from elsewhere are taken from.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MqttSource {
    /// A name for errors and the default topic.
    pub name: String,
    /// The topic filter (wildcards allowed); empty: `<topic_prefix>/ingest/<name>`.
    #[serde(default)]
    pub topic: String,
    /// `relais`, `theengs` or `openmqttgateway`.
    pub format: String,
    /// The member every reading of this source belongs to (name or id); empty: by device.
    #[serde(default)]
    pub member: String,
    /// Device address to member (name or id); devices in neither go to the inbox.
    #[serde(default)]
    pub devices: std::collections::BTreeMap<String, String>,
}

impl Default for MqttSection {
    fn default() -> Self {
        Self {
            enabled: false,
            host: "127.0.0.1".to_owned(),
            port: 1883,
            client_id: String::new(),
            username: String::new(),
            password: String::new(),
            tls: false,
            ca_file: None,
            client_cert_file: None,
            client_key_file: None,
            protocol: "3.1.1".to_owned(),
            topic_prefix: "relais".to_owned(),
            format: "json".to_owned(),
            discovery_prefix: "homeassistant".to_owned(),
            embedded_broker: false,
            max_backoff_seconds: 60,
            commands: false,
            sources: Vec::new(),
        }
    }
}

impl MesSection {
    /// The MES client's configuration.
    pub fn client(&self) -> crate::mes::MesConfig {
        crate::mes::MesConfig {
            fhir_base_url: Some(self.fhir_base_url.clone()),
            client_id: self.client_id.clone(),
            client_secret: crate::mes::config::Secret::new(self.client_secret.clone()),
            redirect_uri: self.redirect_uri.clone(),
            request_timeout_secs: self.request_timeout_seconds,
            ..crate::mes::MesConfig::for_base_url(&self.base_url)
        }
    }

    /// The upload loop's retry delays.
    pub fn retry(&self) -> crate::mes::RetryPolicy {
        crate::mes::RetryPolicy {
            max_delay: std::time::Duration::from_secs(self.max_backoff_seconds.max(1)),
            ..crate::mes::RetryPolicy::default()
        }
    }
}

impl HubSection {
    /// What the FHIR mapping needs of the hub.
    pub fn fhir(&self) -> Result<crate::fhir::HubSettings, String> {
        Ok(crate::fhir::HubSettings {
            source: self
                .oid
                .parse()
                .map_err(|e| format!("hub.oid {}: {e}", self.oid))?,
            profiles: self
                .profiles
                .parse()
                .map_err(|e| format!("hub.profiles {}: {e}", self.profiles))?,
            time_zone: jiff::tz::TimeZone::get(&self.time_zone)
                .map_err(|e| format!("hub.time_zone {}: {e}", self.time_zone))?,
            use_reception_time_for_undated: self.date_undated_live_readings,
        })
    }
}

/// Why the configuration cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file cannot be read.
    #[error("cannot read the configuration {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The file is not valid TOML or a value has the wrong type (the message shows the line).
    #[error("in {path}: {message}")]
    File {
        /// The file.
        path: PathBuf,
        /// toml's message: line, column, the line itself, what was expected.
        message: String,
    },
    /// An override does not fit.
    #[error("the override {key} (from {source_name}): {message}")]
    Override {
        /// The dotted key.
        key: String,
        /// `--set` or the environment variable.
        source_name: String,
        /// What is wrong.
        message: String,
    },
}

/// An override of one key: `section.key` and its value as written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Override {
    /// Dotted key, `mes.base_url`.
    pub key: String,
    /// The value, read as TOML when it parses as such (numbers, booleans, arrays), else as a
    /// string.
    pub value: String,
    /// Where it came from, for error messages.
    pub source_name: String,
}

impl Override {
    /// `key=value` from `--set`.
    pub fn from_flag(text: &str) -> Result<Self, ConfigError> {
        let (key, value) = text.split_once('=').ok_or_else(|| ConfigError::Override {
            key: text.to_owned(),
            source_name: "--set".into(),
            message: "expected key=value, as in --set mes.enabled=false".into(),
        })?;
        Ok(Self {
            key: key.trim().to_owned(),
            value: value.to_owned(),
            source_name: format!("--set {}", key.trim()),
        })
    }

    /// The overrides in environment variables (`RELAIS_MES__BASE_URL=...` is `mes.base_url`);
    /// `RELAIS_CONFIG` names the file and is not one.
    pub fn from_env(vars: impl Iterator<Item = (String, String)>) -> Vec<Self> {
        vars.filter_map(|(name, value)| {
            let rest = name.strip_prefix(ENV_PREFIX)?;
            if rest == "CONFIG" || !rest.contains("__") {
                return None;
            }
            Some(Self {
                key: rest.to_ascii_lowercase().replace("__", "."),
                value,
                source_name: name,
            })
        })
        .collect()
    }
}

impl Config {
    /// The file to read: `explicit`, else `$RELAIS_CONFIG`, else [`DEFAULT_PATH`] when it
    /// exists; `None`: the defaults.
    pub fn locate(explicit: Option<&Path>, env_path: Option<PathBuf>) -> Option<PathBuf> {
        explicit.map(Path::to_owned).or(env_path).or_else(|| {
            Path::new(DEFAULT_PATH)
                .exists()
                .then(|| PathBuf::from(DEFAULT_PATH))
        })
    }

    /// Reads the file (if any) and applies the overrides in order.
    pub fn load(path: Option<&Path>, overrides: &[Override]) -> Result<Self, ConfigError> {
        let text = match path {
            Some(path) => std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
                path: path.to_owned(),
                source,
            })?,
            None => String::new(),
        };
        Self::from_text(&text, path, overrides)
    }

    /// [`Config::load`] on text already read.
    pub fn from_text(
        text: &str,
        path: Option<&Path>,
        overrides: &[Override],
    ) -> Result<Self, ConfigError> {
        let file_error = |e: toml::de::Error| ConfigError::File {
            path: path.map_or_else(|| PathBuf::from("<defaults>"), Path::to_owned),
            message: e.to_string(),
        };
        // Checked as written first, so errors in the file point at its lines.
        let config: Config = toml::from_str(text).map_err(file_error)?;
        if overrides.is_empty() {
            return Ok(config);
        }
        let mut table: toml::Table = toml::from_str(text).map_err(file_error)?;
        for o in overrides {
            set(&mut table, o)?;
            // Each override checked on its own, so an error names the one at fault.
            Config::deserialize(table.clone()).map_err(|e| ConfigError::Override {
                key: o.key.clone(),
                source_name: o.source_name.clone(),
                message: e.message().to_owned(),
            })?;
        }
        Config::deserialize(table).map_err(|e| ConfigError::Override {
            key: String::new(),
            source_name: "overrides".into(),
            message: e.message().to_owned(),
        })
    }
}

impl Config {
    /// [`Config::from_text`] with the saved settings (`key`, TOML value) under the overrides.
    pub fn from_layers(
        text: &str,
        path: Option<&Path>,
        saved: &[(String, String)],
        overrides: &[Override],
    ) -> Result<Self, ConfigError> {
        let mut layers: Vec<Override> = saved
            .iter()
            .map(|(key, value)| Override {
                key: key.clone(),
                value: value.clone(),
                source_name: format!("{SAVED_SOURCE}, {key}"),
            })
            .collect();
        layers.extend(overrides.iter().cloned());
        let mut config = Self::from_text(text, path, &layers)?;
        config.fixed = overrides
            .iter()
            .map(|o| (o.key.clone(), o.source_name.clone()))
            .collect();
        Ok(config)
    }

    /// [`Config::from_layers`] reading the file.
    pub fn load_layers(
        path: Option<&Path>,
        saved: &[(String, String)],
        overrides: &[Override],
    ) -> Result<Self, ConfigError> {
        let text = match path {
            Some(path) => std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
                path: path.to_owned(),
                source,
            })?,
            None => String::new(),
        };
        Self::from_layers(&text, path, saved, overrides)
    }

    /// `key`'s value as a person writes it (strings without quotes); `None`: no such key.
    pub fn value_text(&self, key: &str) -> Option<String> {
        let table = toml::Table::try_from(self).ok()?;
        let (section, name) = key.split_once('.')?;
        match table.get(section)?.get(name)? {
            toml::Value::String(text) => Some(text.clone()),
            other => Some(other.to_string()),
        }
    }

    /// `text` as the TOML value saved for `key`: quoted when the key holds a string, as written
    /// otherwise (a number, a boolean), so a user name `true` stays a string.
    pub fn saved_value(&self, key: &str, text: &str) -> Result<String, String> {
        if !SAVABLE_KEYS.contains(&key) {
            return Err(format!(
                "{key} cannot be saved; these can: {}",
                SAVABLE_KEYS.join(", ")
            ));
        }
        let table = toml::Table::try_from(self).map_err(|e| e.to_string())?;
        let is_text = key
            .split_once('.')
            .and_then(|(section, name)| table.get(section)?.get(name))
            .is_some_and(toml::Value::is_str);
        Ok(if is_text {
            toml::Value::String(text.to_owned()).to_string()
        } else {
            text.trim().to_owned()
        })
    }

    /// This configuration with `changes` (key, saved value) applied, checked as the hub checks
    /// it at start: the zone must be in the tz database, an enabled MQTT section must make a
    /// bridge.
    pub fn with_saved(&self, changes: &[(String, String)]) -> Result<Config, String> {
        let mut table = toml::Table::try_from(self).map_err(|e| e.to_string())?;
        for (key, value) in changes {
            if !SAVABLE_KEYS.contains(&key.as_str()) {
                return Err(format!("{key} cannot be saved"));
            }
            let o = Override {
                key: key.clone(),
                value: value.clone(),
                source_name: SAVED_SOURCE.to_owned(),
            };
            set(&mut table, &o).map_err(|e| e.to_string())?;
            Config::deserialize(table.clone()).map_err(|e| format!("{key}: {}", e.message()))?;
        }
        let mut config = Config::deserialize(table).map_err(|e| e.message().to_owned())?;
        config.fixed = self.fixed.clone();
        jiff::tz::TimeZone::get(&config.hub.time_zone)
            .map_err(|e| format!("hub.time_zone {}: {e}", config.hub.time_zone))?;
        if config.mqtt.enabled {
            crate::mqtt::Settings::from_config(&config.mqtt)?;
        }
        Ok(config)
    }
}

fn set(table: &mut toml::Table, o: &Override) -> Result<(), ConfigError> {
    let err = |message: &str| ConfigError::Override {
        key: o.key.clone(),
        source_name: o.source_name.clone(),
        message: message.to_owned(),
    };
    let parts: Vec<&str> = o.key.split('.').collect();
    let [sections @ .., last] = parts.as_slice() else {
        return Err(err("empty key"));
    };
    if sections.is_empty() || parts.iter().any(|p| p.is_empty()) {
        return Err(err("expected section.key, as in mes.enabled"));
    }
    let mut current = table;
    for section in sections {
        let entry = current
            .entry((*section).to_owned())
            .or_insert_with(|| toml::Value::Table(toml::Table::new()));
        current = entry
            .as_table_mut()
            .ok_or_else(|| err(&format!("{section} is not a section")))?;
    }
    // A value that reads as TOML keeps its type; anything else is a string.
    let value = toml::from_str::<toml::Table>(&format!("v = {}", o.value))
        .ok()
        .and_then(|mut t| t.remove("v"))
        .unwrap_or_else(|| toml::Value::String(o.value.clone()));
    current.insert((*last).to_owned(), value);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_file_means_the_defaults() {
        let config = Config::from_text("", None, &[]).unwrap();
        assert_eq!(config, Config::default());
        assert!(config.mes.enabled && config.ble.enabled);
    }

    #[test]
    fn a_wrong_type_names_the_line_the_key_and_what_is_expected() {
        let text = "[hub]\ntime_zone = \"Europe/Paris\"\n\n[mes]\nenabled = \"yes\"\n";
        let err = Config::from_text(text, Some(Path::new("relais.toml")), &[])
            .unwrap_err()
            .to_string();
        assert!(err.contains("relais.toml"), "{err}");
        assert!(err.contains("line 5"), "{err}");
        assert!(err.contains("enabled"), "{err}");
        assert!(err.contains("expected a boolean"), "{err}");
    }

    #[test]
    fn a_typo_is_an_error_not_a_default() {
        let err = Config::from_text("[mes]\nbase_ulr = \"x\"\n", None, &[])
            .unwrap_err()
            .to_string();
        assert!(err.contains("unknown field `base_ulr`"), "{err}");
        assert!(
            err.contains("base_url"),
            "the expected keys are listed: {err}"
        );
    }

    #[test]
    fn overrides_from_flags_and_the_environment_win_over_the_file() {
        let text = "[mes]\nenabled = true\nbase_url = \"http://file\"\n";
        let env = Override::from_env(
            [
                ("RELAIS_MES__BASE_URL".to_owned(), "http://env".to_owned()),
                ("RELAIS_CONFIG".to_owned(), "/x.toml".to_owned()),
                ("PATH".to_owned(), "/bin".to_owned()),
            ]
            .into_iter(),
        );
        assert_eq!(env.len(), 1);
        let mut overrides = env;
        overrides.push(Override::from_flag("mes.enabled=false").unwrap());
        overrides.push(Override::from_flag("ble.only=[\"AA:BB:CC:DD:EE:FF\"]").unwrap());
        let config = Config::from_text(text, None, &overrides).unwrap();
        assert_eq!(config.mes.base_url, "http://env");
        assert!(!config.mes.enabled);
        assert_eq!(config.ble.only, ["AA:BB:CC:DD:EE:FF"]);
    }

    #[test]
    fn a_bad_override_names_its_source() {
        let o = Override::from_flag("ble.rest_seconds=soon").unwrap();
        let err = Config::from_text("", None, &[o]).unwrap_err().to_string();
        assert!(err.contains("--set ble.rest_seconds"), "{err}");
        assert!(err.contains("expected u64"), "{err}");
        assert!(Override::from_flag("no-equals").is_err());
        let o = Override::from_flag("toplevel=1").unwrap();
        assert!(Config::from_text("", None, &[o]).is_err());
    }

    #[test]
    fn saved_settings_win_over_the_file_and_lose_to_the_environment_and_flags() {
        let text = "[hub]\ntime_zone = \"Europe/Paris\"\n[mqtt]\nhost = \"file\"\nport = 1884\n";
        let base = Config::from_text(text, None, &[]).unwrap();
        let saved: Vec<(String, String)> = [
            ("hub.time_zone", "America/Cayenne"),
            ("mqtt.host", "saved"),
            ("mqtt.port", "1885"),
            ("mqtt.username", "true"),
        ]
        .iter()
        .map(|(k, v)| (k.to_string(), base.saved_value(k, v).unwrap()))
        .collect();
        let env =
            Override::from_env([("RELAIS_MQTT__HOST".to_owned(), "env".to_owned())].into_iter());
        let flag = Override::from_flag("mqtt.port=1886").unwrap();

        let only_saved = Config::from_layers(text, None, &saved, &[]).unwrap();
        assert_eq!(only_saved.hub.time_zone, "America/Cayenne");
        assert_eq!(only_saved.mqtt.host, "saved");
        assert_eq!(only_saved.mqtt.username, "true", "a string stays a string");
        assert!(only_saved.fixed.is_empty());

        let overrides = [env, vec![flag]].concat();
        let all = Config::from_layers(text, None, &saved, &overrides).unwrap();
        assert_eq!(all.hub.time_zone, "America/Cayenne");
        assert_eq!(all.mqtt.host, "env");
        assert_eq!(all.mqtt.port, 1886);
        assert_eq!(all.fixed["mqtt.host"], "RELAIS_MQTT__HOST");
        assert_eq!(all.fixed["mqtt.port"], "--set mqtt.port");
    }

    #[test]
    fn saved_settings_are_checked_as_at_start() {
        let config = Config::default();
        let zone = |z: &str| {
            vec![(
                "hub.time_zone".to_owned(),
                config.saved_value("hub.time_zone", z).unwrap(),
            )]
        };
        assert_eq!(
            config
                .with_saved(&zone("Europe/Berlin"))
                .unwrap()
                .hub
                .time_zone,
            "Europe/Berlin"
        );
        let err = config.with_saved(&zone("Europe/Atlantis")).unwrap_err();
        assert!(err.contains("Europe/Atlantis"), "{err}");
        let mqtt = |pairs: &[(&str, &str)]| -> Vec<(String, String)> {
            pairs
                .iter()
                .map(|(k, v)| (k.to_string(), config.saved_value(k, v).unwrap()))
                .collect()
        };
        let err = config
            .with_saved(&mqtt(&[
                ("mqtt.enabled", "true"),
                ("mqtt.topic_prefix", "a/#"),
            ]))
            .unwrap_err();
        assert!(err.contains("mqtt.topic_prefix"), "{err}");
        let err = config
            .with_saved(&mqtt(&[("mqtt.port", "70000")]))
            .unwrap_err();
        assert!(err.contains("mqtt.port"), "{err}");
        assert!(config.saved_value("mes.base_url", "x").is_err());
        assert_eq!(config.value_text("mqtt.port").as_deref(), Some("1883"));
        assert_eq!(config.value_text("mqtt.host").as_deref(), Some("127.0.0.1"));
    }

    #[test]
    fn the_web_section_is_off_by_default_and_on_loopback() {
        let config = Config::from_text("", None, &[]).unwrap();
        assert!(!config.web.enabled);
        assert!(config.web.listen_addr().unwrap().ip().is_loopback());
        let text = "[web]\nenabled = true\nlisten = \"0.0.0.0:8443\"\nallow_remote = true\n";
        let config = Config::from_text(text, None, &[]).unwrap();
        assert_eq!(config.web.listen_addr().unwrap().port(), 8443);
        let err = Config::from_text("[web]\nport = 1\n", None, &[])
            .unwrap_err()
            .to_string();
        assert!(err.contains("unknown field `port`"), "{err}");
    }

    #[test]
    fn mqtt_sources_are_a_list_of_tables() {
        let text = "[mqtt]\nenabled = true\n[[mqtt.sources]]\nname = \"bathroom\"\n\
                    topic = \"home/TheengsGateway/BTtoMQTT/+\"\nformat = \"theengs\"\n\
                    devices = { \"C4:7C:8D:6A:12:34\" = \"Camille\" }\n\
                    [[mqtt.sources]]\nname = \"lab\"\nformat = \"relais\"\nmember = \"2\"\n";
        let config = Config::from_text(text, None, &[]).unwrap();
        let sources = &config.mqtt.sources;
        assert_eq!(sources.len(), 2);
        assert_eq!(sources[0].devices["C4:7C:8D:6A:12:34"], "Camille");
        assert_eq!(
            (sources[1].topic.as_str(), sources[1].member.as_str()),
            ("", "2")
        );
        assert!(!config.mqtt.commands, "commands are asked for, not given");
        let typo = text.replace("format = \"relais\"", "formats = \"relais\"");
        assert!(Config::from_text(&typo, None, &[]).is_err());
    }

    #[test]
    fn the_mqtt_section_is_off_by_default_and_strict() {
        let config = Config::from_text("", None, &[]).unwrap();
        assert!(!config.mqtt.enabled);
        assert_eq!(config.mqtt.topic_prefix, "relais");
        let text = "[mqtt]\nenabled = true\nport = 8883\ntls = true\nca_file = \"/etc/ca.pem\"\n";
        let config = Config::from_text(text, None, &[]).unwrap();
        assert_eq!(config.mqtt.port, 8883);
        assert_eq!(config.mqtt.ca_file, Some(PathBuf::from("/etc/ca.pem")));
        let err = Config::from_text("[mqtt]\nprefix = \"x\"\n", None, &[])
            .unwrap_err()
            .to_string();
        assert!(err.contains("unknown field `prefix`"), "{err}");
    }
}
