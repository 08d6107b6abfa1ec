//! `relais listen`: connects to the health devices in range and prints what they send as JSON
//! lines; glucose meters are caught up (all their stored records: nothing is stored yet).

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use relais::ble::device::Timeouts;
use relais::ble::{Central, DeviceKind, glucose, listen};
use relais_protocol::Quirks;
use serde_json::json;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// How long to run, scan included.
    #[arg(long, default_value_t = 60)]
    seconds: u64,

    /// Only this device (`AA:BB:CC:DD:EE:FF`).
    #[arg(value_name = "ADDRESS")]
    address: Option<String>,
}

/// How long the initial scan lasts at most.
const SCAN: Duration = Duration::from_secs(5);

fn print_line(value: &serde_json::Value) {
    crate::cli::output::out!("{value}");
}

pub fn run(args: &Args) -> anyhow::Result<()> {
    let runtime = tokio::runtime::Runtime::new().context("starting the async runtime")?;
    runtime.block_on(async {
        let total = Duration::from_secs(args.seconds);
        let deadline = tokio::time::Instant::now() + total;
        let central = Arc::new(
            Central::first_adapter()
                .await
                .context("opening the adapter")?,
        );
        let wanted = args.address.clone();
        let found = central
            .scan(total.min(SCAN), |_| {})
            .await
            .context("scanning")?;
        let mut tasks = Vec::new();
        for seen in found {
            if wanted
                .as_deref()
                .is_some_and(|a| !a.eq_ignore_ascii_case(&seen.address))
            {
                continue;
            }
            let central = Arc::clone(&central);
            tasks.push(tokio::spawn(async move {
                let device = central.connect(&seen.address, Timeouts::default()).await?;
                if seen.kind == DeviceKind::GlucoseMeter {
                    let identity = device.identity().clone();
                    glucose::catch_up(&device, None, Quirks::NONE, glucose::IDLE_TIMEOUT, |r| {
                        print_line(&json!({
                            "device": identity,
                            "characteristic": "0x2A18",
                            "value": r,
                        }));
                        true
                    })
                    .await?;
                }
                let remaining = deadline.saturating_duration_since(tokio::time::Instant::now());
                listen::listen(&device, remaining, |received| {
                    print_line(&json!(received));
                })
                .await?;
                device.disconnect().await?;
                Ok::<_, relais::ble::BleError>(seen.address)
            }));
        }
        if tasks.is_empty() {
            anyhow::bail!("no health device found");
        }
        let mut failures = 0usize;
        for task in tasks {
            match task.await {
                Ok(Ok(_)) => {}
                Ok(Err(e)) => {
                    failures = failures.saturating_add(1);
                    eprintln!("error: {e}");
                }
                Err(e) => {
                    failures = failures.saturating_add(1);
                    eprintln!("error: device task: {e}");
                }
            }
        }
        if failures > 0 {
            anyhow::bail!("{failures} device(s) failed");
        }
        Ok(())
    })
}
