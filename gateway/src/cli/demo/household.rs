//! The demo household: Alice and Bernard, their devices (virtual, on bluez-sim), the user
//! indices each device knows them by, and their Mon espace santé accounts on the sandbox.

use std::time::Duration;

use anyhow::Context as _;
use relais::ble::device::Identity;
use relais::ble::kind::DeviceKind;
use relais::mes::{MesConfig, PairingClient, Tokens};
use relais::store::Store;
use relais_bluez_sim::{
    CuffButton, CuffSim, GlucoseMeterSim, VirtualDevice, Weighing, XiaomiScaleSim,
};
use relais_mes_sandbox::TestUser;
use tokio_util::sync::CancellationToken;

/// A member of the household and their sandbox account.
#[derive(Debug, Clone, Copy)]
pub struct Person {
    /// Their name in the hub.
    pub name: &'static str,
    /// Their login on the sandbox's page.
    pub login: &'static str,
    /// Their idPe in the sandbox.
    pub id_pe: &'static str,
    /// The user index the scale and the cuff know them by.
    pub user_index: u8,
    /// Their weight, kg.
    pub weight_kg: f64,
}

const ALICE: Person = Person {
    name: "Alice",
    login: "alice",
    id_pe: "idpe-alice",
    user_index: 1,
    weight_kg: 62.4,
};

const BERNARD: Person = Person {
    name: "Bernard",
    login: "bernard",
    id_pe: "idpe-bernard",
    user_index: 2,
    weight_kg: 81.3,
};

/// The two members.
pub const PEOPLE: [Person; 2] = [ALICE, BERNARD];

/// Whose the glucose meter is (its readings carry no user).
const METER_OWNER: Person = ALICE;
/// Whose the advertising scale is.
const XIAOMI_OWNER: Person = BERNARD;

pub const SCALE: &str = "C0:DE:00:00:00:01";
pub const CUFF: &str = "C0:DE:00:00:00:02";
pub const METER: &str = "C0:DE:00:00:00:03";
pub const XIAOMI: &str = "C0:DE:00:00:00:04";

/// Records the meter holds when the demo starts.
pub const STORED_GLUCOSE_RECORDS: u32 = 200;
/// A new glucose record this often, ms.
const GLUCOSE_EVERY_MS: u64 = 20_000;
/// A weighing on the household scale this often, ms (Alice and Bernard in turn).
const SCALE_EVERY_MS: u64 = 15_000;
/// A weighing on the advertising scale this often, ms.
const XIAOMI_EVERY_MS: u64 = 30_000;
/// The cuff's button is pressed this often (Alice and Bernard in turn).
const CUFF_EVERY: Duration = Duration::from_secs(25);
/// Enough scripted weighings for a day.
const DAY_MS: u64 = 24 * 3600 * 1000;

/// The sandbox's test users: the household.
pub fn sandbox_users() -> Vec<TestUser> {
    PEOPLE
        .iter()
        .map(|p| TestUser::new(p.login, p.id_pe, &format!("{} Martin", p.name)))
        .collect()
}

/// A small variation around a weight, the same each run: who would weigh exactly the same?
fn wobble(base_kg: f64, i: u64) -> f64 {
    let step = f64::from(u32::try_from(i % 7).unwrap_or(0)) - 3.0;
    base_kg + 0.1 * step
}

/// The virtual devices, and the cuff's button.
pub fn devices() -> anyhow::Result<(Vec<Box<dyn VirtualDevice>>, CuffButton)> {
    let mut scale = relais_bluez_sim::ScaleSim::new(SCALE);
    let turns = DAY_MS / SCALE_EVERY_MS;
    for (i, person) in (0..turns).zip(PEOPLE.iter().cycle()) {
        let on_ms = 3_000 + i * SCALE_EVERY_MS;
        scale = scale.with_user_weighing(
            person.user_index,
            Weighing {
                on_ms,
                off_ms: on_ms + 6_000,
                mass_kg: wobble(person.weight_kg, i / 2),
            },
        );
    }
    let cuff = CuffSim::new(CUFF).with_speed(10);
    let button = cuff.button();
    let meter = GlucoseMeterSim::with_records(METER, STORED_GLUCOSE_RECORDS)
        .context("the glucose meter")?
        .with_new_records(
            GLUCOSE_EVERY_MS,
            u32::try_from(DAY_MS / GLUCOSE_EVERY_MS).unwrap_or(u32::MAX),
        );
    let mut xiaomi = XiaomiScaleSim::new(XIAOMI).context("the advertising scale")?;
    let owner = XIAOMI_OWNER;
    for i in 0..DAY_MS / XIAOMI_EVERY_MS {
        let on_ms = 8_000 + i * XIAOMI_EVERY_MS;
        xiaomi = xiaomi.with_weighing(Weighing {
            on_ms,
            off_ms: on_ms + 8_000,
            mass_kg: wobble(owner.weight_kg, i),
        });
    }
    let devices: Vec<Box<dyn VirtualDevice>> = vec![
        Box::new(scale.spawn().context("the household scale")?),
        Box::new(cuff.spawn().context("the cuff")?),
        Box::new(meter),
        Box::new(xiaomi),
    ];
    Ok((devices, button))
}

/// Presses the cuff's button for Alice and Bernard in turn until `stop`: the cuff keeps its
/// last measurement until the hub takes it.
pub async fn press_cuff(button: CuffButton, stop: CancellationToken) {
    let mut turn = 0usize;
    let mut every = tokio::time::interval(CUFF_EVERY);
    loop {
        tokio::select! {
            () = stop.cancelled() => return,
            _ = every.tick() => {}
        }
        if let Some(person) = PEOPLE.get(turn % PEOPLE.len()) {
            button.press(Some(person.user_index));
        }
        turn = turn.wrapping_add(1);
    }
}

/// Adds the members (kept when the store has them from an earlier demo), the devices and who
/// they belong to.
pub fn set_up(store: &mut Store) -> anyhow::Result<()> {
    for person in PEOPLE {
        if store.find_member(person.name).is_err() {
            store.add_member(person.name)?;
        }
    }
    let kinds = [
        (SCALE, DeviceKind::WeightScale),
        (CUFF, DeviceKind::BloodPressureMonitor),
        (METER, DeviceKind::GlucoseMeter),
        (XIAOMI, DeviceKind::WeightScale),
    ];
    for (address, kind) in kinds {
        let identity = Identity {
            address: address.into(),
            ..Identity::default()
        };
        store.note_device(&identity, kind)?;
    }
    for person in PEOPLE {
        let id = store.find_member(person.name)?.id;
        for shared in [SCALE, CUFF] {
            store.map_device_user(shared, Some(person.user_index), id)?;
        }
    }
    for (device, owner) in [(METER, METER_OWNER), (XIAOMI, XIAOMI_OWNER)] {
        let id = store.find_member(owner.name)?.id;
        store.map_device_user(device, None, id)?;
    }
    Ok(())
}

/// Links each member's account as they would in a browser: the authorization request, the
/// sandbox's consent form answered for them, the code exchanged for tokens.
pub async fn link_accounts(
    store: &mut Store,
    mes: &MesConfig,
    sandbox_url: &str,
) -> anyhow::Result<()> {
    let pairing = PairingClient::new(mes).context("the MES client")?;
    // The authorization answer is a redirect carrying the code: not to be followed.
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .context("an HTTP client")?;
    for person in PEOPLE {
        let tokens = pair(&pairing, &http, sandbox_url, person.login)
            .await
            .with_context(|| format!("linking {}'s account", person.name))?;
        let member = store.find_member(person.name)?;
        store.link_mes(member.id, &tokens)?;
    }
    Ok(())
}

async fn pair(
    pairing: &PairingClient,
    http: &reqwest::Client,
    sandbox_url: &str,
    login: &str,
) -> anyhow::Result<Tokens> {
    let pending = pairing.start();
    let mut form: Vec<(String, String)> =
        pending.authorize_url().query_pairs().into_owned().collect();
    form.push(("user".into(), login.into()));
    form.push(("consent_read".into(), "true".into()));
    form.push(("consent_write".into(), "true".into()));
    let answer = http
        .post(format!("{sandbox_url}/oauth/authorize/test"))
        .form(&form)
        .send()
        .await?;
    let location = answer
        .headers()
        .get(reqwest::header::LOCATION)
        .and_then(|l| l.to_str().ok())
        .ok_or_else(|| {
            anyhow::anyhow!(
                "the sandbox answered {} without a redirect",
                answer.status()
            )
        })?;
    let location = url::Url::parse(location)?;
    let mut code = None;
    let mut state = None;
    for (key, value) in location.query_pairs() {
        match key.as_ref() {
            "code" => code = Some(value.into_owned()),
            "state" => state = Some(value.into_owned()),
            _ => {}
        }
    }
    anyhow::ensure!(
        state.as_deref() == Some(pending.state()),
        "the redirect's state does not match"
    );
    let code = code.ok_or_else(|| anyhow::anyhow!("no code in the redirect {location}"))?;
    Ok(pairing.finish(&code, pending).await?)
}
