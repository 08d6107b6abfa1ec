//! `relais listen`: watches for health devices, runs their sessions (clock, glucose catch-up,
//! measurements) and prints every event as a JSON line. Nothing is stored: a glucose meter is
//! caught up from its first record, then from the last one printed.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::Context as _;
use relais::ble::session::{Delivery, Event, Plan};
use relais::ble::supervisor::{self, Report, Status};
use relais::ble::{Central, clock};
use relais::payload::Origin;
use serde_json::{Value, json};
use tokio::sync::mpsc;

use crate::cli::progress::CatchUps;

#[derive(Debug, clap::Args)]
#[command(after_help = AFTER_HELP)]
pub struct Args {
    /// How long to run.
    #[arg(long, default_value_t = 60)]
    seconds: u64,

    /// Only this device (`AA:BB:CC:DD:EE:FF`).
    #[arg(value_name = "ADDRESS")]
    address: Option<String>,

    /// IANA time zone of the device clocks (they are set to it when off).
    #[arg(long, value_name = "ZONE", default_value = clock::DEFAULT_ZONE)]
    tz: String,

    /// Seconds a session waits for more after the last value before releasing the device.
    #[arg(long, value_name = "SECONDS", default_value_t = 10)]
    linger: u64,
}

const AFTER_HELP: &str = "\
Output: one JSON object per line, its \"event\" saying what it is:
  seen         a health device: address, name, kind, rssi, paired
  connected    a session started: the device's identity (Device Information)
  measurement  a measurement: device, kind, values (characteristic, hex, decoded), readings,
               received_at, clock_skew (seconds, device minus hub; null: unknown)
  catch_up     a glucose meter's catch-up starts: expected (stored records it will send)
  live         a progress value (cuff pressure while inflating, heart rate): decoded
  skipped      a value that does not decode, with the reason
  ended        a session ended: done (delivered, skipped, last glucose sequence) or failed
               (the error), and when the device will be served again
  adapter      the adapter was switched off or on";

fn decoded(origin: Origin, bytes: &[u8], quirks: relais_protocol::Quirks) -> Value {
    let result = match origin {
        Origin::Characteristic(u) => relais::decode::characteristic(u, bytes, quirks),
        Origin::ServiceData(u) => relais::decode::service_data(u, bytes, quirks),
    };
    result.unwrap_or_else(|e| json!({ "error": e.to_string() }))
}

fn measurement(delivery: &Delivery) -> Value {
    let values: Vec<Value> = delivery
        .record
        .payloads
        .iter()
        .map(|p| {
            let (key, uuid) = match p.origin {
                Origin::Characteristic(u) => ("characteristic", u),
                Origin::ServiceData(u) => ("service_data", u),
            };
            json!({
                key: format!("0x{uuid:04X}"),
                "hex": relais::hex::to_hex(&p.bytes),
                "decoded": decoded(p.origin, &p.bytes, delivery.quirks),
            })
        })
        .collect();
    json!({
        "event": "measurement",
        "device": delivery.device,
        "kind": delivery.kind,
        "values": values,
        "readings": delivery.readings,
        "received_at": delivery.received_at,
        "clock_skew": delivery.clock_skew.map(|s| s.as_secs()),
    })
}

pub fn run(args: &Args) -> anyhow::Result<()> {
    let zone = clock::zone(&args.tz)?;
    let runtime = tokio::runtime::Runtime::new().context("starting the async runtime")?;
    runtime.block_on(async {
        let central = Arc::new(
            Central::first_adapter()
                .await
                .context("opening the adapter")?,
        );
        // What was printed is what this run "stored": the catch-up resumes after it.
        let last_glucose: Arc<Mutex<HashMap<String, u16>>> = Arc::default();
        let wanted = args.address.clone();
        let linger = Duration::from_secs(args.linger);
        let planner = {
            let last_glucose = Arc::clone(&last_glucose);
            move |seen: &relais::ble::Seen| {
                if wanted
                    .as_deref()
                    .is_some_and(|a| !a.eq_ignore_ascii_case(&seen.address))
                {
                    return None;
                }
                let mut plan = Plan::new(zone.clone());
                plan.linger = linger;
                plan.last_glucose_sequence = last_glucose
                    .lock()
                    .ok()
                    .and_then(|m| m.get(&seen.address).copied());
                Some(plan)
            }
        };
        let (reports, mut received) = mpsc::channel(256);
        let stop = tokio::time::sleep(Duration::from_secs(args.seconds));
        let watch = supervisor::run(
            central,
            supervisor::Config::default(),
            Arc::new(planner),
            reports,
            stop,
        );
        let mut failures = 0usize;
        let mut measurements = 0usize;
        let print_all = async {
            // Catch-up bars on a terminal's standard error; lines printed around them.
            let mut bars = CatchUps::default();
            while let Some(report) = received.recv().await {
                match report {
                    Report::Session(Event::Measurement { delivery, accepted }) => {
                        measurements = measurements.saturating_add(1);
                        bars.received(&delivery.device.address);
                        bars.print(&measurement(&delivery).to_string());
                        let sequence = delivery.readings.iter().find_map(|r| r.sequence_number);
                        if let (Some(sequence), Ok(mut last)) = (sequence, last_glucose.lock()) {
                            last.insert(delivery.device.address.clone(), sequence);
                        }
                        // The session may be over already (another refusal); nobody to tell.
                        let _ = accepted.send(true);
                    }
                    Report::Session(Event::Live { address, payload }) => bars.print(
                        &json!({
                            "event": "live",
                            "address": address,
                            "decoded": decoded(payload.origin, &payload.bytes, relais_protocol::Quirks::NONE),
                        })
                        .to_string(),
                    ),
                    Report::Session(Event::CatchUp { address, expected }) => {
                        bars.print(
                            &json!({
                                "event": "catch_up",
                                "address": address,
                                "expected": expected,
                            })
                            .to_string(),
                        );
                        bars.started(&address, expected);
                    }
                    Report::Session(Event::Skipped {
                        address,
                        characteristic,
                        reason,
                    }) => bars.print(
                        &json!({
                            "event": "skipped",
                            "address": address,
                            "characteristic": format!("0x{characteristic:04X}"),
                            "reason": reason,
                        })
                        .to_string(),
                    ),
                    Report::Status(status) => {
                        if let Status::Ended {
                            result: supervisor::Ended::Failed(_),
                            ..
                        } = &status
                        {
                            failures = failures.saturating_add(1);
                        }
                        if let Status::Ended { address, .. } = &status {
                            bars.ended(address);
                        }
                        bars.print(&json!(status).to_string());
                    }
                }
            }
        };
        let (watched, ()) = tokio::join!(watch, print_all);
        watched.context("watching for devices")?;
        if measurements == 0 && failures > 0 {
            anyhow::bail!("{failures} session(s) failed and no measurement arrived");
        }
        Ok(())
    })
}
