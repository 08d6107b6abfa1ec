//! `relais members`: the household, which device user each member is, assigning the
//! measurements waiting in the inbox, and unlinking a member's MES account (`relais link-mes`
//! links it).

use anyhow::Context as _;
use relais::hub;
use relais::store::MeasurementId;

use crate::cli::config_args::ConfigArgs;
use crate::cli::output::out;

#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(flatten)]
    config: ConfigArgs,

    #[command(subcommand)]
    action: Option<Action>,
}

#[derive(Debug, clap::Subcommand)]
enum Action {
    /// List the members (the default).
    List,
    /// Add a member.
    Add {
        /// The name shown.
        name: String,
    },
    /// Say that a device's user is a member: their measurements go to them from now on, and
    /// those waiting in the inbox are assigned.
    Map {
        /// The device (`AA:BB:CC:DD:EE:FF`).
        address: String,
        /// The member (name or id).
        member: String,
        /// The device's user index (absent: the measurements without one).
        #[arg(long, value_name = "N")]
        user: Option<u8>,
    },
    /// Assign a measurement waiting in the inbox to a member.
    Assign {
        /// The measurement id (`relais readings --inbox`).
        measurement: i64,
        /// The member (name or id).
        member: String,
    },
    /// Unlink a member's Mon espace santé account: the pairing is revoked at MES, the tokens
    /// dropped, the readings kept.
    Unlink {
        /// The member (name or id).
        member: String,
    },
}

pub fn run(args: &Args) -> anyhow::Result<()> {
    let config = args.config.load()?;
    let mut store = hub::open_store(&config)?;
    match args.action.as_ref().unwrap_or(&Action::List) {
        Action::List => {
            for m in store.members()? {
                out!(
                    "{:<4} {:<24} MES {:?}{}",
                    m.id.0,
                    m.display_name,
                    m.mes_state,
                    m.id_pe.map(|i| format!(" ({i})")).unwrap_or_default()
                );
            }
        }
        Action::Add { name } => {
            let id = store.add_member(name)?;
            out!("member {} added: {name}", id.0);
        }
        Action::Map {
            address,
            member,
            user,
        } => {
            let member = store.find_member(member)?;
            let assigned = store.map_device_user(address, *user, member.id)?;
            out!(
                "{address} {} is {} from now on; {assigned} waiting measurement(s) assigned",
                user.map_or_else(|| "(no user index)".to_owned(), |u| format!("user {u}")),
                member.display_name
            );
        }
        Action::Assign {
            measurement,
            member,
        } => {
            let member = store.find_member(member)?;
            store.assign(MeasurementId(*measurement), member.id)?;
            out!(
                "measurement {measurement} assigned to {}",
                member.display_name
            );
        }
        Action::Unlink { member } => {
            let member = store.find_member(member)?;
            let store = hub::shared(store);
            let runtime = tokio::runtime::Runtime::new().context("starting the async runtime")?;
            let revoked = runtime.block_on(relais::mes::unlink::unlink_member(
                &store,
                &config.mes.client(),
                member.id,
                "unlinked with relais members unlink",
            ))?;
            if revoked {
                out!(
                    "{} is no longer linked to Mon espace santé",
                    member.display_name
                );
            } else {
                out!(
                    "{} is no longer linked here, but Mon espace santé could not be told: \
                     withdraw the access in the Mon espace santé account too",
                    member.display_name
                );
            }
        }
    }
    Ok(())
}
