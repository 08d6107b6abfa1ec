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
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Decode(args) => cli::decode::run(&args),
        Command::Fhir(args) => cli::fhir::run(&args),
        Command::Scan(args) => cli::scan::run(&args),
        Command::Listen(args) => cli::listen::run(&args),
        Command::Pair(args) => cli::pair::run(&args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
