//! `relais fhir`: what relais would send to Mon espace santé for a measurement value.

use anyhow::{Context, anyhow, bail};
use jiff::tz::TimeZone;
use jiff::{SignedDuration, Timestamp};
use relais::fhir::{
    self, ClockContext, CuffSite, DeviceIdentity, DeviceKind, Eui48, Eui64, HubSettings, Oid,
    Pairing, ProfileFlavour,
};
use relais::hex::{parse_hex, parse_uuid16};
use relais::payload::{Payload, PayloadError, Record};
use relais_protocol::thermometer::TemperatureType;
use relais_protocol::{Quirks, Reading, uuid};
use serde_json::Value;

#[derive(Debug, clap::Args)]
#[command(after_help = AFTER_HELP)]
pub struct Args {
    /// Measurement characteristic UUID: 2A35, 2A36, 2A9D, 2A9C, 2A18, 2A1C, 2A1E, 2A37, 2A5E,
    /// 2A5F or 2AA7 (16-bit or full).
    #[arg(value_name = "CHARACTERISTIC-UUID")]
    uuid: String,

    /// The value in hex, with or without spaces.
    #[arg(value_name = "HEX", num_args = 1.., required = true)]
    hex: Vec<String>,

    /// Tolerate a named vendor deviation (repeatable; see `relais decode --list`).
    #[arg(long = "quirk", value_name = "NAME")]
    quirks: Vec<String>,

    /// The household member's idPe, bound at pairing.
    #[arg(long, value_name = "ID")]
    idpe: String,

    /// The assigning authority OID given at pairing (subject.identifier.system).
    #[arg(long, value_name = "OID")]
    assign_auth_oid: Oid,

    /// The hub's OID, a sub-OID of the solution's (meta.source).
    #[arg(long, value_name = "OID")]
    source_oid: Oid,

    /// IANA time zone device clocks are read in.
    #[arg(long, value_name = "ZONE", default_value = fhir::DEFAULT_TIME_ZONE)]
    tz: String,

    /// The device's System ID as an EUI-64, OUI first, as `relais decode 2A23` prints it
    /// (FE-ED-AB-AA-DE-AD-77-C5).
    #[arg(long, value_name = "HEX")]
    system_id: Option<Eui64>,

    /// The device's Bluetooth address (AA:BB:CC:DD:EE:FF).
    #[arg(long, value_name = "MAC")]
    address: Option<Eui48>,

    /// Manufacturer name (required by MES's Device profile).
    #[arg(long, value_name = "S")]
    manufacturer: Option<String>,

    /// Model number (required by MES's Device profile).
    #[arg(long, value_name = "S")]
    model: Option<String>,

    /// Serial number.
    #[arg(long, value_name = "S")]
    serial: Option<String>,

    /// When the hub received the value. Given, it also dates live readings that carry no time
    /// (heart rate); absent, the current time is used only to refuse readings dated in the future.
    #[arg(long, value_name = "RFC3339")]
    received_at: Option<Timestamp>,

    /// Which canonical profile URLs to use.
    #[arg(long, value_name = "ans|mes|ens", default_value = "ans")]
    profile: ProfileFlavour,

    /// Device clock minus true time, in seconds, measured at connection.
    #[arg(
        long,
        value_name = "SECONDS",
        default_value_t = 0,
        allow_negative_numbers = true
    )]
    clock_skew: i64,

    /// The thermometer's Temperature Type (0x2A1D) when measurements do not carry one: armpit,
    /// ear, mouth, rectum, tympanum, ...
    #[arg(long, value_name = "NAME")]
    temperature_type: Option<String>,

    /// Where the blood pressure cuff sits.
    #[arg(long, value_name = "arm|wrist", default_value = "arm")]
    cuff_site: String,

    /// With 2A18: the Glucose Measurement Context (0x2A34) that followed the measurement, in hex.
    #[arg(long, value_name = "HEX")]
    context: Option<String>,

    /// Print the JSON on one line.
    #[arg(long)]
    compact: bool,
}

const AFTER_HELP: &str = "\
Output: a JSON array on stdout with one transaction Bundle per reading MES takes, in the order the
value yields them (a blood pressure measurement with a pulse gives two: the blood pressure, then the
heart rate). Each reading MES cannot take is one line on stderr with the reason. The exit status is
1 when no reading could be mapped.

Examples:
  relais fhir 2A35 1E 78 00 50 00 5D 00 E8 07 03 05 08 1E 0F 48 00 02 04 00 \\
      --idpe patient-1 --assign-auth-oid 1.2.250.1.213.1.4.8 --source-oid 1.2.250.1.999.1 \\
      --system-id FE-ED-AB-AA-DE-AD-77-C5 --manufacturer ACME --model BP-1
  relais fhir 2A37 00 48 --received-at 2024-03-05T08:30:15+01:00 ...";

/// The record of a measurement value (with its glucose context), its readings, and the kind of
/// device that sends it.
fn decode(
    uuid: u16,
    bytes: &[u8],
    quirks: Quirks,
    context: Option<&[u8]>,
) -> anyhow::Result<(DeviceKind, Vec<Reading>)> {
    let mut record = Record::single(Payload::characteristic(uuid, bytes));
    if let Some(context) = context {
        if uuid != uuid::GLUCOSE_MEASUREMENT {
            bail!("--context goes with a Glucose Measurement (2A18)");
        }
        record.payloads.push(Payload::characteristic(
            uuid::GLUCOSE_MEASUREMENT_CONTEXT,
            context,
        ));
    }
    match record.readings(quirks) {
        Ok(readings) => Ok((record.device_kind(), readings)),
        Err(PayloadError::NotAMeasurement(_)) => bail!(
            "0x{uuid:04X} is not a measurement relais maps to FHIR (see `relais fhir --help`)"
        ),
        Err(e) => Err(e.into()),
    }
}

fn temperature_type(name: &str) -> anyhow::Result<TemperatureType> {
    TemperatureType::ALL
        .iter()
        .copied()
        .find(|t| t.name() == name)
        .ok_or_else(|| {
            let names: Vec<_> = TemperatureType::ALL.iter().map(|t| t.name()).collect();
            anyhow!(
                "unknown temperature type `{name}` (one of {})",
                names.join(", ")
            )
        })
}

fn cuff_site(name: &str) -> anyhow::Result<CuffSite> {
    match name {
        "arm" => Ok(CuffSite::Arm),
        "wrist" => Ok(CuffSite::Wrist),
        other => bail!("unknown cuff site `{other}` (arm or wrist)"),
    }
}

pub fn run(args: &Args) -> anyhow::Result<()> {
    let mut quirks = Quirks::NONE;
    for name in &args.quirks {
        if !quirks.enable(name) {
            bail!("unknown quirk `{name}` (see `relais decode --list`)");
        }
    }
    let uuid = parse_uuid16(&args.uuid)
        .with_context(|| format!("`{}` is not a 16-bit or Bluetooth Base UUID", args.uuid))?;
    let bytes = parse_hex(&args.hex.join(" "))?;
    let context = args.context.as_deref().map(parse_hex).transpose()?;
    let (kind, readings) = decode(uuid, &bytes, quirks, context.as_deref())?;

    let device = DeviceIdentity {
        kind,
        system_id: args.system_id,
        address: args.address,
        manufacturer: args.manufacturer.clone(),
        model: args.model.clone(),
        serial: args.serial.clone(),
        temperature_type: args
            .temperature_type
            .as_deref()
            .map(temperature_type)
            .transpose()?,
        cuff_site: cuff_site(&args.cuff_site)?,
    };
    let pairing = Pairing {
        assigning_authority: args.assign_auth_oid.clone(),
        id_pe: args.idpe.clone(),
    };
    let hub = HubSettings {
        source: args.source_oid.clone(),
        profiles: args.profile,
        time_zone: TimeZone::get(&args.tz)
            .with_context(|| format!("`{}` is not an IANA time zone", args.tz))?,
        use_reception_time_for_undated: args.received_at.is_some(),
    };
    let clock = ClockContext {
        skew: SignedDuration::from_secs(args.clock_skew),
        received_at: args.received_at.unwrap_or_else(Timestamp::now),
    };

    let mut bundles = Vec::new();
    for (i, reading) in readings.iter().enumerate() {
        match fhir::map_reading(reading, &device, &pairing, &hub, &clock) {
            Ok(mapped) => bundles.push(mapped.bundle),
            Err(why) => eprintln!(
                "reading {} ({}): not sent: {why}",
                i + 1,
                fhir::observation::kind_name(reading.kind)
            ),
        }
    }
    if bundles.is_empty() {
        bail!(
            "none of the {} reading(s) can be sent to Mon espace santé",
            readings.len()
        );
    }
    let out = Value::Array(bundles);
    let text = if args.compact {
        serde_json::to_string(&out)?
    } else {
        serde_json::to_string_pretty(&out)?
    };
    crate::cli::output::out!("{text}");
    Ok(())
}
