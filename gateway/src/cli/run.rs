//! `relais run`: the hub daemon.

use std::sync::Arc;

use anyhow::Context as _;
use relais::hub;
use tokio_util::sync::CancellationToken;

use crate::cli::config_args::ConfigArgs;

#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(flatten)]
    config: ConfigArgs,
}

pub fn run(args: &Args) -> anyhow::Result<()> {
    let config = args.config.load()?;
    let _daemon = hub::lock_daemon(&config.hub.database)?;
    let store = hub::shared(hub::open_store(&config)?);
    let runtime = tokio::runtime::Runtime::new().context("starting the async runtime")?;
    runtime.block_on(async {
        let stop = CancellationToken::new();
        let stopping = stop.clone();
        tokio::spawn(async move {
            wait_for_signal().await;
            tracing::info!("stopping");
            stopping.cancel();
        });
        tracing::info!(
            database = %config.hub.database.display(),
            ble = config.ble.enabled,
            mes = config.mes.enabled,
            "relais hub running; Ctrl-C stops it"
        );
        hub::run(&config, Arc::clone(&store), stop, None).await
    })
}

/// Ctrl-C or SIGTERM.
pub(crate) async fn wait_for_signal() {
    let mut terminate =
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(s) => Some(s),
            Err(e) => {
                tracing::warn!("SIGTERM not handled: {e}");
                None
            }
        };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        Some(()) = async { match terminate.as_mut() { Some(t) => t.recv().await, None => None } } => {}
    }
}
