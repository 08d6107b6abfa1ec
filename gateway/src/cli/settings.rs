//! `relais settings`: the settings the web page edits (time zone, MQTT), saved in the store.
//! They apply when the hub starts; the environment and `--set` win over them.

use anyhow::Context as _;
use relais::hub;
use relais::hub::config::SAVABLE_KEYS;

use crate::cli::config_args::ConfigArgs;
use crate::cli::output::out;

#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(flatten)]
    config: ConfigArgs,

    #[command(subcommand)]
    action: Option<Action>,
}

#[derive(Debug, clap::Subcommand)]
enum Action {
    /// Each savable key, its value in effect and where it comes from (the default).
    Show,
    /// Save a value (checked as the hub checks it at start), as in `set mqtt.host broker.lan`.
    Set {
        /// `hub.time_zone` or an `mqtt.` key (`show` lists them).
        key: String,
        /// The value.
        value: String,
    },
    /// Forget a saved value: the configuration file's (or the default) applies again.
    Unset {
        /// The key.
        key: String,
    },
}

pub fn run(args: &Args) -> anyhow::Result<()> {
    let config = args.config.load()?;
    let mut store = hub::open_store(&config)?;
    match args.action.as_ref().unwrap_or(&Action::Show) {
        Action::Show => {
            let saved = store.saved_settings()?;
            for key in SAVABLE_KEYS {
                let value = if *key == "mqtt.password" {
                    "(hidden)".to_owned()
                } else {
                    config.value_text(key).unwrap_or_default()
                };
                let origin = match config.fixed.get(*key) {
                    Some(source) => source.clone(),
                    None if saved.iter().any(|(k, _)| k == key) => "saved".to_owned(),
                    None => "file or default".to_owned(),
                };
                out!("{key} = {value}  ({origin})");
            }
        }
        Action::Set { key, value } => {
            let saved = config.saved_value(key, value).map_err(anyhow::Error::msg)?;
            let change = [(key.clone(), saved)];
            config
                .with_saved(&change)
                .map_err(anyhow::Error::msg)
                .with_context(|| format!("{key} not saved"))?;
            store.save_settings(&change)?;
            out!("{key} saved; it applies when the hub restarts");
            if let Some(source) = config.fixed.get(key) {
                out!("note: {source} sets {key} and wins over the saved value");
            }
        }
        Action::Unset { key } => {
            if store.remove_setting(key)? {
                out!(
                    "{key} forgotten; the configuration file's value applies when the hub restarts"
                );
            } else {
                out!("{key} was not saved");
            }
        }
    }
    Ok(())
}
