//! The `relais` command.

use std::process::ExitCode;

use clap::{Parser, Subcommand};

mod cli;

#[derive(Debug, Parser)]
#[command(
    name = "relais",
    version,
    about = "Home hub for Bluetooth LE health devices"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Decode a characteristic value or advertisement service data and print it as JSON.
    Decode(cli::decode::Args),
    /// Map a measurement value to the FHIR Bundles relais would send to Mon espace santé.
    Fhir(Box<cli::fhir::Args>),
    /// Scan for Bluetooth LE health devices: address, name, kind, RSSI, paired.
    Scan(cli::scan::Args),
    /// Connect to the health devices in range and print their readings as JSON lines.
    Listen(cli::listen::Args),
    /// Pair (bond) with a device, giving BlueZ the passkey it shows.
    Pair(cli::pair::Args),
    /// Run the hub: watch the devices, store their readings, deliver them.
    Run(cli::run::Args),
    /// What the hub holds and still has to deliver.
    Status(cli::status::Args),
    /// The stored measurements (a member's, or the inbox).
    Readings(cli::readings::Args),
    /// The household: add members, map device users, assign inbox measurements, unlink MES.
    Members(cli::members::Args),
    /// The devices the hub knows: list, rename, forget a bond.
    Devices(cli::devices::Args),
    /// Set the web page's administrator password (read from standard input).
    Password(cli::password::Args),
    /// The settings the web page edits (time zone, MQTT): show, set, unset.
    Settings(cli::settings::Args),
    /// Link a member's Mon espace santé account (prints the address to open).
    LinkMes(cli::link_mes::Args),
    /// See it work: the hub with a household of simulated devices, the MES sandbox and an
    /// MQTT broker, all in this process.
    #[cfg(feature = "demo")]
    Demo(cli::demo::Args),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    init_tracing();
    let result = match cli.command {
        Command::Decode(args) => cli::decode::run(&args),
        Command::Fhir(args) => cli::fhir::run(&args),
        Command::Scan(args) => cli::scan::run(&args),
        Command::Listen(args) => cli::listen::run(&args),
        Command::Pair(args) => cli::pair::run(&args),
        Command::Run(args) => cli::run::run(&args),
        Command::Status(args) => cli::status::run(&args),
        Command::Readings(args) => cli::readings::run(&args),
        Command::Members(args) => cli::members::run(&args),
        Command::Devices(args) => cli::devices::run(&args),
        Command::Password(args) => cli::password::run(&args),
        Command::Settings(args) => cli::settings::run(&args),
        Command::LinkMes(args) => cli::link_mes::run(&args),
        #[cfg(feature = "demo")]
        Command::Demo(args) => cli::demo::run(&args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// Logs on stderr, `info` by default, `RELAIS_LOG` (or `RUST_LOG`) to change it. The embedded
/// broker's own logs show from `warn`, and not its connection handling (an ERROR line for each
/// client that merely hangs up), unless the filter names rumqttd.
fn init_tracing() {
    const QUIET_BROKER: &str = "rumqttd=warn,rumqttd::server::broker=off";
    let directives = std::env::var("RELAIS_LOG")
        .or_else(|_| std::env::var("RUST_LOG"))
        .unwrap_or_else(|_| "info".to_owned());
    let directives = if directives.contains("rumqttd") {
        directives
    } else {
        format!("{directives},{QUIET_BROKER}")
    };
    let filter = tracing_subscriber::EnvFilter::try_new(&directives)
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(format!("info,{QUIET_BROKER}")));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .init();
}
