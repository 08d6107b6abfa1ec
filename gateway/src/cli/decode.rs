//! `relais decode`: what a device maker runs to see what relais reads in their bytes.

use anyhow::{Context, bail};
use relais::decode::{self, EntryKind};
use relais::hex::{parse_hex, parse_uuid16};
use relais_protocol::Quirks;

#[derive(Debug, clap::Args)]
#[command(
    after_help = "Examples:\n  relais decode 2A35 1E 78 00 50 00 5D 00 E8 07 03 05 08 1E 0F 48 00 02 04 00\n  relais decode --service-data 181D 22 2C 2A E8 07 03 05 08 1E 0F\n  relais decode --list"
)]
pub struct Args {
    /// List the characteristics, advertisement formats and quirks relais knows.
    #[arg(long, conflicts_with_all = ["uuid", "hex", "service_data"])]
    list: bool,

    /// Decode advertisement service data of this service UUID instead of a characteristic value.
    #[arg(long, value_name = "SERVICE-UUID")]
    service_data: Option<String>,

    /// Tolerate a named vendor deviation (repeatable; see --list).
    #[arg(long = "quirk", value_name = "NAME")]
    quirks: Vec<String>,

    /// Print the JSON on one line.
    #[arg(long)]
    compact: bool,

    /// Characteristic UUID: 16-bit (`2A35`) or full.
    #[arg(value_name = "CHARACTERISTIC-UUID", required_unless_present_any = ["list", "service_data"])]
    uuid: Option<String>,

    /// The value in hex, with or without spaces.
    #[arg(value_name = "HEX", num_args = 0..)]
    hex: Vec<String>,
}

pub fn run(args: &Args) -> anyhow::Result<()> {
    if args.list {
        print_list();
        return Ok(());
    }
    let mut quirks = Quirks::NONE;
    for name in &args.quirks {
        if !quirks.enable(name) {
            bail!("unknown quirk `{name}` (see `relais decode --list`)");
        }
    }
    // With --service-data the first positional argument is already part of the hex value.
    let (uuid_text, hex_parts): (&str, Vec<&str>) = match &args.service_data {
        Some(service) => (
            service,
            args.uuid
                .iter()
                .chain(&args.hex)
                .map(String::as_str)
                .collect(),
        ),
        None => (
            args.uuid.as_deref().unwrap_or_default(),
            args.hex.iter().map(String::as_str).collect(),
        ),
    };
    let uuid = parse_uuid16(uuid_text)
        .with_context(|| format!("`{uuid_text}` is not a 16-bit or Bluetooth Base UUID"))?;
    let bytes = parse_hex(&hex_parts.join(" "))?;
    let value = match args.service_data {
        Some(_) => decode::service_data(uuid, &bytes, quirks)?,
        None => decode::characteristic(uuid, &bytes, quirks)?,
    };
    let text = if args.compact {
        serde_json::to_string(&value)?
    } else {
        serde_json::to_string_pretty(&value)?
    };
    crate::cli::output::out!("{text}");
    Ok(())
}

fn print_list() {
    crate::cli::output::out!("Characteristics (relais decode <UUID> <HEX>):");
    for e in decode::entries()
        .iter()
        .filter(|e| e.kind == EntryKind::Characteristic)
    {
        crate::cli::output::out!("  {:04X}  {}", e.uuid, e.name);
    }
    crate::cli::output::out!(
        "\nAdvertisement service data (relais decode --service-data <UUID> <HEX>):"
    );
    for e in decode::entries()
        .iter()
        .filter(|e| e.kind == EntryKind::ServiceData)
    {
        crate::cli::output::out!("  {:04X}  {}", e.uuid, e.name);
    }
    crate::cli::output::out!("\nQuirks (--quirk NAME):");
    for q in Quirks::KNOWN {
        crate::cli::output::out!("  {:<32} {}", q.name, q.description);
    }
}
