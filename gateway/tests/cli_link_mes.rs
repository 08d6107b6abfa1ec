//! `relais link-mes` as a process against mes-sandbox: it prints the address to open, the user
//! consents (here through the sandbox's non-interactive form), the browser is sent back to the
//! command's loopback listener, and the member is linked in the store. `relais members unlink`
//! then revokes the pairing at MES and forgets the tokens.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod mes_common;

use std::io::{BufRead as _, BufReader};
use std::process::{Command, Stdio};

use relais::store::{MesState, Store};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn link_mes_prints_the_address_and_links_the_member_after_the_consent() {
    let world = mes_common::World::start().await;
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("hub.sqlite");
    Store::open(&db).unwrap().add_member("Camille").unwrap();
    let config = dir.path().join("relais.toml");
    std::fs::write(
        &config,
        format!(
            "[hub]\ndatabase = {db:?}\n\n[mes]\nbase_url = \"{}\"\nfhir_base_url = \"{}\"\n",
            world.sandbox.base_url(),
            world.sandbox.fhir_base_url()
        ),
    )
    .unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_relais"))
        .args(["link-mes", "Camille", "--timeout", "30", "--config"])
        .arg(&config)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let (url, rest) = tokio::task::spawn_blocking(move || {
        let mut lines = BufReader::new(stdout).lines();
        let url = lines
            .by_ref()
            .map(Result::unwrap)
            .find(|l| l.starts_with("http"))
            .expect("the address to open");
        (url, lines)
    })
    .await
    .unwrap();

    // The user consents; the sandbox sends the browser back to the command.
    let authorize = url::Url::parse(&url).unwrap();
    let mut form: Vec<(String, String)> = authorize.query_pairs().into_owned().collect();
    form.push(("user".into(), "patient-1".into()));
    form.push(("consent_read".into(), "true".into()));
    form.push(("consent_write".into(), "true".into()));
    let answer = world
        .http
        .post(world.url("/oauth/authorize/test"))
        .form(&form)
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), 303);
    let back = answer.headers()["location"].to_str().unwrap().to_owned();
    let page = world.http.get(&back).send().await.unwrap();
    assert_eq!(page.status(), 200);
    assert!(page.text().await.unwrap().contains("Mon espace santé"));

    let printed: Vec<String> =
        tokio::task::spawn_blocking(move || rest.map(Result::unwrap).collect())
            .await
            .unwrap();
    let status = tokio::task::spawn_blocking(move || child.wait().unwrap())
        .await
        .unwrap();
    assert!(status.success(), "{printed:?}");
    assert!(
        printed.iter().any(|l| l.contains("Camille is linked")),
        "{printed:?}"
    );
    let store = Store::open(&db).unwrap();
    let camille = store.find_member("Camille").unwrap();
    assert_eq!(camille.mes_state, MesState::Linked);
    assert_eq!(camille.id_pe.as_deref(), Some("idpe-patient-1"));
    let tokens = store.tokens(camille.id).unwrap().unwrap();
    drop(store);

    let unlinked = Command::new(env!("CARGO_BIN_EXE_relais"))
        .args(["members", "unlink", "Camille", "--config"])
        .arg(&config)
        .output()
        .unwrap();
    let said = String::from_utf8_lossy(&unlinked.stdout);
    assert!(unlinked.status.success(), "{said} {unlinked:?}");
    assert!(
        said.contains("no longer linked to Mon espace santé"),
        "{said}"
    );
    let store = Store::open(&db).unwrap();
    let camille = store.find_member("Camille").unwrap();
    assert_ne!(camille.mes_state, MesState::Linked);
    assert_eq!(store.tokens(camille.id).unwrap(), None);
    // MES was told: the old refresh token no longer works.
    let client = relais::mes::PairingClient::new(&world.config).unwrap();
    assert!(client.refresh(&tokens).await.is_err(), "revoked at MES");
}
