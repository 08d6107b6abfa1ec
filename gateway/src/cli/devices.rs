//! `relais devices`: the devices the hub knows, their names, and forgetting a bond. Pairing is
//! `relais pair`; finding devices in range is `relais scan`.

use anyhow::Context as _;
use relais::hub;

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
    /// List the devices (the default): address, name, kind, bonded, last measurement.
    List {
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Give a device the name the household knows it by (empty: its own name again).
    Rename {
        /// The device (`AA:BB:CC:DD:EE:FF`).
        address: String,
        /// The name.
        name: String,
    },
    /// Remove a device's bond from Bluetooth: it must be paired again to be read. Its
    /// measurements stay.
    Forget {
        /// The device (`AA:BB:CC:DD:EE:FF`).
        address: String,
    },
}

pub fn run(args: &Args) -> anyhow::Result<()> {
    let config = args.config.load()?;
    let mut store = hub::open_store(&config)?;
    match args
        .action
        .as_ref()
        .unwrap_or(&Action::List { json: false })
    {
        Action::List { json } => {
            let devices = store.devices()?;
            if *json {
                out!("{}", serde_json::to_string(&devices)?);
                return Ok(());
            }
            for d in &devices {
                let bonded = match d.bonded {
                    Some(true) => "bonded",
                    Some(false) => "not bonded",
                    None => "bond unknown",
                };
                out!(
                    "{}\t{}\t{}\t{}\tlast measurement {}",
                    d.identity.address,
                    d.shown_name(),
                    d.kind,
                    bonded,
                    d.last_seen
                );
            }
            if devices.is_empty() {
                eprintln!("no device yet: `relais scan` shows those in range");
            }
        }
        Action::Rename { address, name } => {
            store.rename_device(address, name)?;
            out!("{address} renamed");
        }
        Action::Forget { address } => {
            let runtime = tokio::runtime::Runtime::new().context("starting the async runtime")?;
            runtime
                .block_on(relais::ble::pairing::unpair(address))
                .with_context(|| format!("removing the bond of {address}"))?;
            store.set_bonded(address, Some(false))?;
            out!("{address} forgotten by Bluetooth; pair it again with `relais pair`");
        }
    }
    Ok(())
}
