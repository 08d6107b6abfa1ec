//! `relais link-mes <MEMBER>`: links a household member's Mon espace santé account. Prints the
//! address to open in a browser, waits for MES to send the browser back with the consent, and
//! stores the pairing.

use std::time::Duration;

use anyhow::Context as _;
use relais::hub;
use relais::mes::{PairingClient, RedirectListener};

use crate::cli::config_args::ConfigArgs;
use crate::cli::output::out;

#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(flatten)]
    config: ConfigArgs,

    /// The member (name or id).
    member: String,

    /// How long to wait for the consent, in seconds.
    #[arg(long, default_value_t = 600)]
    timeout: u64,
}

pub fn run(args: &Args) -> anyhow::Result<()> {
    let config = args.config.load()?;
    let mut store = hub::open_store(&config)?;
    let member = store.find_member(&args.member)?;
    let mes = config.mes.client();
    let runtime = tokio::runtime::Runtime::new().context("starting the async runtime")?;
    let tokens = runtime.block_on(async {
        let client = PairingClient::new(&mes).context("the [mes] configuration")?;
        let redirect = mes.redirect_url().context("mes.redirect_uri")?;
        let listener = RedirectListener::bind(&redirect)
            .await
            .context("listening for the redirect")?;
        let pending = client.start_at(listener.redirect_uri());
        out!(
            "To link {}'s Mon espace santé account, open this address in a browser and give \
             the consent:\n\n{}\n",
            member.display_name,
            pending.authorize_url()
        );
        out!("Waiting for Mon espace santé (Ctrl-C to give up)...");
        let code = listener
            .wait_for_code(pending.state(), Duration::from_secs(args.timeout))
            .await
            .context("waiting for the consent")?;
        client
            .finish(&code, pending)
            .await
            .context("finishing the pairing")
    })?;
    store.link_mes(member.id, &tokens)?;
    out!(
        "{} is linked to Mon espace santé: their readings will be sent.",
        member.display_name
    );
    Ok(())
}
