//! `mes-sandbox`: runs the MES emulator on its own until Ctrl-C.
//!
//! ```text
//! mes-sandbox --listen 127.0.0.1:8800 --db mes-sandbox.sqlite
//! ```

use std::net::SocketAddr;
use std::path::PathBuf;

use anyhow::{Context, Result, bail};
use clap::Parser;
use relais_mes_sandbox::{Database, Sandbox, SandboxConfig, TestUser};

/// A strict local emulator of Mon espace santé pairing (OAuth2) and API Mesure.
#[derive(Debug, Parser)]
#[command(name = "mes-sandbox", version)]
struct Args {
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:8800")]
    listen: SocketAddr,
    /// Allow a non-loopback listen address (the admin API still answers loopback peers only).
    #[arg(long)]
    allow_non_loopback: bool,
    /// SQLite file (created if missing); in memory when absent.
    #[arg(long)]
    db: Option<PathBuf>,
    /// Full configuration as JSON (see the README); the options below override it.
    #[arg(long)]
    config: Option<PathBuf>,
    /// URL clients reach the sandbox at (id_token issuer and links).
    #[arg(long)]
    public_url: Option<String>,
    /// Client id of the (first) registered partner.
    #[arg(long)]
    client_id: Option<String>,
    /// Client secret of the (first) registered partner.
    #[arg(long)]
    client_secret: Option<String>,
    /// OID of the (first) registered partner.
    #[arg(long)]
    partner_oid: Option<String>,
    /// Redirect URI of the (first) partner; repeat for several (replaces the defaults).
    #[arg(long)]
    redirect_uri: Vec<String>,
    /// Test user as LOGIN:IDPE[:PASSWORD]; repeat for several (replaces the defaults).
    #[arg(long)]
    user: Vec<String>,
    /// Access token (and id_token) lifetime, in seconds.
    #[arg(long)]
    access_token_lifetime: Option<u64>,
    /// Refresh token lifetime, in seconds.
    #[arg(long)]
    refresh_token_lifetime: Option<u64>,
    /// Fault: latency added to each /fhir request, in milliseconds.
    #[arg(long)]
    fault_latency_ms: Option<u64>,
    /// Fault: fraction (0..1) of /fhir requests answered 503.
    #[arg(long)]
    fault_5xx_rate: Option<f64>,
    /// Fault: seed of the 5xx draws.
    #[arg(long)]
    fault_seed: Option<u64>,
}

fn parse_user(spec: &str) -> Result<TestUser> {
    let mut parts = spec.splitn(3, ':');
    let (Some(login), Some(id_pe)) = (parts.next(), parts.next()) else {
        bail!("--user {spec:?}: expected LOGIN:IDPE[:PASSWORD]");
    };
    let mut user = TestUser::new(login, id_pe, login);
    if let Some(password) = parts.next() {
        user.password = password.to_owned();
    }
    Ok(user)
}

fn config(args: Args) -> Result<SandboxConfig> {
    let mut config = match &args.config {
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("reading {}", path.display()))?;
            serde_json::from_str(&text).with_context(|| format!("parsing {}", path.display()))?
        }
        None => SandboxConfig::default(),
    };
    if !args.listen.ip().is_loopback() && !args.allow_non_loopback {
        bail!(
            "--listen {} is not a loopback address; add --allow-non-loopback if you mean it",
            args.listen
        );
    }
    config.listen = args.listen;
    if let Some(db) = args.db {
        config.database = Database::File(db);
    }
    if args.public_url.is_some() {
        config.public_url = args.public_url;
    }
    if let Some(partner) = config.partners.first_mut() {
        if let Some(id) = args.client_id {
            partner.client_id = id;
        }
        if let Some(secret) = args.client_secret {
            partner.client_secret = secret;
        }
        if let Some(oid) = args.partner_oid {
            partner.oid = oid;
        }
        if !args.redirect_uri.is_empty() {
            partner.redirect_uris = args.redirect_uri;
        }
    }
    if !args.user.is_empty() {
        config.users = args
            .user
            .iter()
            .map(|u| parse_user(u))
            .collect::<Result<_>>()?;
    }
    if let Some(s) = args.access_token_lifetime {
        config.access_token_lifetime_secs = s;
    }
    if let Some(s) = args.refresh_token_lifetime {
        config.refresh_token_lifetime_secs = s;
    }
    if let Some(ms) = args.fault_latency_ms {
        config.faults.latency_ms = ms;
    }
    if let Some(rate) = args.fault_5xx_rate {
        config.faults.server_error_rate = rate;
    }
    if let Some(seed) = args.fault_seed {
        config.faults.seed = seed;
    }
    Ok(config)
}

#[tokio::main]
async fn main() -> Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .init();
    let config = config(Args::parse())?;
    let sandbox = Sandbox::start(config)
        .await
        .context("starting the MES sandbox")?;
    println!("MES sandbox listening at {}", sandbox.base_url());
    tokio::signal::ctrl_c()
        .await
        .context("waiting for Ctrl-C")?;
    sandbox
        .shutdown()
        .await
        .context("stopping the MES sandbox")?;
    Ok(())
}
