//! `relais scan`: the health devices in range, as they are seen, with a progress bar on a
//! terminal.

use std::collections::HashSet;
use std::time::Duration;

use anyhow::Context as _;
use relais::ble::{Central, Seen};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// How long to scan.
    #[arg(long, default_value_t = 10)]
    seconds: u64,
}

/// One line per device, printed again when its RSSI or name changes.
fn line(seen: &Seen) -> String {
    let paired = match seen.paired {
        Some(true) => "yes",
        Some(false) => "no",
        None => "unknown",
    };
    let rssi = seen
        .rssi
        .map_or_else(|| "-".to_owned(), |r| format!("{r} dBm"));
    format!(
        "{}\t{}\t{}\t{}\tpaired: {}",
        seen.address,
        seen.name.as_deref().unwrap_or("-"),
        seen.kind.as_str(),
        rssi,
        paired
    )
}

pub fn run(args: &Args) -> anyhow::Result<()> {
    let runtime = tokio::runtime::Runtime::new().context("starting the async runtime")?;
    runtime.block_on(async {
        let central = Central::first_adapter()
            .await
            .context("opening the adapter")?;
        let mut progress = crate::cli::progress::Scan::start(Duration::from_secs(args.seconds));
        let mut addresses = HashSet::new();
        let seen = central
            .scan(Duration::from_secs(args.seconds), |seen| {
                let new_device = addresses.insert(seen.address.clone());
                progress.line(&line(seen), new_device);
            })
            .await
            .context("scanning");
        progress.finish();
        let seen = seen?;
        eprintln!("{} health device(s) seen", seen.len());
        Ok(())
    })
}
