//! `relais readings`: the measurements stored, a member's or the inbox's.

use relais::hub;
use relais::store::StoredMeasurement;

use crate::cli::config_args::ConfigArgs;
use crate::cli::output::out;

#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(flatten)]
    config: ConfigArgs,

    /// Only this member's (name or id).
    #[arg(long, value_name = "MEMBER", conflicts_with = "inbox")]
    member: Option<String>,

    /// Only those waiting for a member.
    #[arg(long)]
    inbox: bool,

    /// At most this many, newest first.
    #[arg(long, default_value_t = 20)]
    limit: usize,

    /// Print JSON lines.
    #[arg(long)]
    json: bool,
}

pub fn run(args: &Args) -> anyhow::Result<()> {
    let config = args.config.load()?;
    let store = hub::open_store(&config)?;
    let measurements: Vec<StoredMeasurement> = if args.inbox {
        store.inbox()?.into_iter().rev().take(args.limit).collect()
    } else if let Some(name) = &args.member {
        let member = store.find_member(name)?;
        store.measurements_of(member.id, args.limit)?
    } else {
        store.recent_measurements(args.limit)?
    };
    let members = store.members()?;
    let name = |id: Option<relais::store::MemberId>| {
        id.and_then(|id| members.iter().find(|m| m.id == id))
            .map_or("-", |m| m.display_name.as_str())
    };
    for m in &measurements {
        if args.json {
            out!("{}", serde_json::to_string(m)?);
            continue;
        }
        let value = m
            .primary_value
            .map_or_else(|| "?".to_owned(), |v| format!("{v}"));
        let suggestion = if m.member.is_none() && m.suggested_member.is_some() {
            format!(" (probably {})", name(m.suggested_member))
        } else {
            String::new()
        };
        out!(
            "{:>6}  {:<19}  {:<22} {:>8}  {}  {}{suggestion}",
            m.id.0,
            m.measured_at.as_deref().unwrap_or("undated"),
            m.primary_kind.as_deref().unwrap_or("?"),
            value,
            m.address,
            name(m.member)
        );
    }
    if measurements.is_empty() && !args.json {
        out!("no measurement");
    }
    Ok(())
}
