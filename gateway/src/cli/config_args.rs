//! The configuration options every hub command takes.

use std::path::PathBuf;

use anyhow::Context as _;
use relais::hub::config::{Config, Override};

#[derive(Debug, Clone, clap::Args)]
pub struct ConfigArgs {
    /// The configuration file (default: $RELAIS_CONFIG, else /etc/relais/relais.toml when it
    /// exists, else built-in defaults).
    #[arg(long, value_name = "FILE", global = true)]
    config: Option<PathBuf>,

    /// Overrides a key of the configuration, as in `--set mes.enabled=false` (repeatable;
    /// environment variables `RELAIS_MES__ENABLED=false` do the same, flags win).
    #[arg(long = "set", value_name = "KEY=VALUE", global = true)]
    set: Vec<String>,
}

impl ConfigArgs {
    /// The configuration: file, then the settings saved in the store, then environment, then
    /// flags.
    pub fn load(&self) -> anyhow::Result<Config> {
        let path = Config::locate(
            self.config.as_deref(),
            std::env::var_os("RELAIS_CONFIG").map(PathBuf::from),
        );
        let mut overrides = Override::from_env(std::env::vars());
        for flag in &self.set {
            overrides.push(Override::from_flag(flag)?);
        }
        relais::hub::load_config(path.as_deref(), &overrides).context("reading the configuration")
    }
}
