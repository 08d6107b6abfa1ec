//! `relais status`: what the hub holds and what it still has to deliver.

use relais::hub;
use relais::store::Sink;
use serde_json::json;

use crate::cli::config_args::ConfigArgs;
use crate::cli::output::out;

#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(flatten)]
    config: ConfigArgs,

    /// Print JSON.
    #[arg(long)]
    json: bool,
}

pub fn run(args: &Args) -> anyhow::Result<()> {
    let config = args.config.load()?;
    let store = hub::open_store(&config)?;
    let members = store.members()?;
    let devices = store.devices()?;
    let backlog = store.backlog(Sink::Mes)?;
    let inbox = store.inbox()?.len();
    let refused = store.refused(Sink::Mes, 5)?;
    let mqtt = store.backlog(Sink::Mqtt)?;
    if args.json {
        out!(
            "{}",
            json!({
                "database": config.hub.database,
                "measurements": store.measurement_count()?,
                "inbox": inbox,
                "mes": { "enabled": config.mes.enabled, "backlog": backlog, "refused": refused },
                "mqtt": { "enabled": config.mqtt.enabled, "backlog": mqtt },
                "members": members,
                "devices": devices,
            })
        );
        return Ok(());
    }
    out!("database     {}", config.hub.database.display());
    out!(
        "measurements {} stored, {inbox} waiting for a member (relais readings --inbox)",
        store.measurement_count()?
    );
    if config.mes.enabled {
        out!(
            "MES          {} to send, {} in doubt, {} sent, {} refused, {} not for MES",
            backlog.pending,
            backlog.sending,
            backlog.sent,
            backlog.quarantined,
            backlog.unsendable
        );
        for item in refused {
            out!(
                "  refused    reading {}.{}: {}",
                item.measurement.0,
                item.reading_index,
                item.last_error.unwrap_or_default()
            );
        }
    } else {
        out!("MES          off");
    }
    if config.mqtt.enabled {
        out!(
            "MQTT         {} to publish, {} published, {} refused by the broker",
            mqtt.pending,
            mqtt.sent,
            mqtt.quarantined + mqtt.unsendable
        );
    } else {
        out!("MQTT         off");
    }
    out!("members      {}", members.len());
    for m in &members {
        let detail = m
            .mes_state_detail
            .as_deref()
            .map(|d| format!(" ({d})"))
            .unwrap_or_default();
        out!(
            "  {:<4} {:<24} MES {:?}{detail}",
            m.id.0,
            m.display_name,
            m.mes_state
        );
    }
    out!("devices      {}", devices.len());
    for d in &devices {
        out!(
            "  {} {:<22} {:<16} last seen {}{}{}",
            d.identity.address,
            d.kind,
            d.identity.model.as_deref().unwrap_or("?"),
            d.last_seen,
            d.last_glucose_sequence
                .map(|s| format!(", last record {s}"))
                .unwrap_or_default(),
            d.clock_skew_ms
                .map(|ms| format!(", clock off by {:.1} s", ms as f64 / 1000.0))
                .unwrap_or_default()
        );
    }
    Ok(())
}
