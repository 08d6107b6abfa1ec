//! `relais pair`: bonds with a device through a BlueZ agent, asking for its passkey.

use std::io::{BufRead as _, Write as _};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use relais::ble::Central;
use relais::ble::pairing::{self, Capability, MAX_PASSKEY, Paired, PasskeySource};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The device's Bluetooth address, `AA:BB:CC:DD:EE:FF`.
    address: String,
    /// The passkey shown on the device; asked on stdin when needed and not given.
    #[arg(long, value_parser = clap::value_parser!(u32).range(0..=i64::from(MAX_PASSKEY)))]
    passkey: Option<u32>,
    /// How long to scan before pairing, so that BlueZ knows the device.
    #[arg(long, default_value_t = 5)]
    scan_seconds: u64,
    /// Limit for the pairing itself.
    #[arg(long, default_value_t = 60)]
    timeout_seconds: u64,
}

/// Prints the prompt and reads a passkey from stdin; `None` when none could be read.
fn prompt() -> Option<u32> {
    let mut stdout = std::io::stdout();
    print!("Passkey shown on the device: ");
    if stdout.flush().is_err() {
        return None;
    }
    let mut line = String::new();
    std::io::stdin().lock().read_line(&mut line).ok()?;
    match line.trim().parse::<u32>() {
        Ok(p) if p <= MAX_PASSKEY => Some(p),
        _ => {
            eprintln!("not a passkey of up to 6 digits: {}", line.trim());
            None
        }
    }
}

pub fn run(args: &Args) -> anyhow::Result<()> {
    // Refuse a malformed address before touching the adapter.
    pairing::device_path(&args.address)?;
    let runtime = tokio::runtime::Runtime::new().context("starting the async runtime")?;
    runtime.block_on(async {
        let central = Central::first_adapter()
            .await
            .context("opening the adapter")?;
        central
            .scan(Duration::from_secs(args.scan_seconds), |_| {})
            .await
            .context("scanning")?;
        let given = args.passkey;
        let passkey: PasskeySource = Arc::new(move |_device: &str| given.or_else(prompt));
        let outcome = pairing::pair(
            &args.address,
            Capability::KeyboardOnly,
            passkey,
            Duration::from_secs(args.timeout_seconds),
        )
        .await
        .with_context(|| format!("pairing with {}", args.address))?;
        match outcome {
            Paired::Now => crate::cli::output::out!("{}: paired", args.address),
            Paired::Already => crate::cli::output::out!("{}: already paired", args.address),
        }
        Ok(())
    })
}
