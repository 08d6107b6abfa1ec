//! `relais password`: sets the web page's administrator password (and the hub's name), for a
//! hub set up without a browser or a forgotten password. The password is read from standard
//! input, never from the command line (it would show in the process list and the history).

use std::io::BufRead as _;

use anyhow::Context as _;
use relais::hub;

use crate::cli::config_args::ConfigArgs;
use crate::cli::output::out;

#[derive(Debug, clap::Args)]
#[command(after_help = "Example: relais password --hub-name \"Maison\" < password.txt")]
pub struct Args {
    #[command(flatten)]
    config: ConfigArgs,

    /// The hub's name, shown on the page (default: the one it has, else "relais").
    #[arg(long)]
    hub_name: Option<String>,
}

pub fn run(args: &Args) -> anyhow::Result<()> {
    let config = args.config.load()?;
    let mut store = hub::open_store(&config)?;
    eprintln!("New password (one line on standard input):");
    let mut line = String::new();
    std::io::stdin()
        .lock()
        .read_line(&mut line)
        .context("reading the password")?;
    let password = line.trim_end_matches(['\r', '\n']);
    let hub_name = match &args.hub_name {
        Some(name) => name.clone(),
        None => store
            .web_admin()?
            .map_or_else(|| "relais".to_owned(), |admin| admin.hub_name),
    };
    relais::web::set_admin_password(&mut store, &hub_name, password)?;
    out!("password set; the sessions open on a running hub stay until they expire");
    Ok(())
}
