//! A newcomer's whole journey in headless Chromium against the real hub: bluez-sim with the
//! reference scale on a private D-Bus, mes-sandbox, and `hub::run_with` with the web page on.
//! Set up the hub, pair the scale with its passkey, add two members, link one to Mon espace
//! santé through the sandbox's own pages, step on the scale, assign the weighing from the
//! inbox, see it in the member's chart and table, and find it delivered in the sandbox.
//! Screenshots of each step go to `target/web-screenshots/journey/`.
//!
//! One test per binary (libdbus reads the bus address once per process). Needs `dbus-daemon`,
//! `chromium` and `chromium-driver`.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod common;
mod mes_common;
mod web_common;

use std::time::Duration;

use relais::hub::config::Config;
use relais::hub::control::Control;
use relais_bluez_sim::{ScaleSim, Simulator, Weighing};
use tokio_util::sync::CancellationToken;
use web_common::PASSWORD;
use web_common::browser::Browser;

const SCALE: &str = "C0:FF:EE:00:08:01";

/// Waits up to `limit` for `ready`, polling.
async fn until<F: Future<Output = bool>>(
    what: &str,
    limit: Duration,
    mut ready: impl FnMut() -> F,
) {
    let deadline = tokio::time::Instant::now() + limit;
    while !ready().await {
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_newcomer_pairs_the_scale_links_mes_assigns_a_weighing_and_sees_it_delivered() {
    let bus = common::bus();
    // Someone steps on the scale 40 s into the test (the scale's own simulated clock): after
    // the pairing and the link, which take a few seconds in the browser; again 30 s later. The
    // hub rests between short sessions, as a household's does, so the bonded scale keeps a
    // weighing and indicates it as soon as the next session connects.
    let scale = ScaleSim::new(SCALE)
        .with_weighing(Weighing {
            on_ms: 40_000,
            off_ms: 50_000,
            mass_kg: 72.0,
        })
        .with_weighing(Weighing {
            on_ms: 70_000,
            off_ms: 80_000,
            mass_kg: 72.5,
        })
        .spawn()
        .unwrap();
    let _sim = Simulator::start(bus.address(), vec![Box::new(scale)])
        .await
        .unwrap();
    let world = mes_common::World::start().await;
    let dir = tempfile::tempdir().unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let config = Config::from_text(
        &format!(
            "[hub]\ndatabase = \"{}\"\n[ble]\nonly = [\"{SCALE}\"]\nlinger_seconds = 2\n\
             rest_seconds = 8\nmax_backoff_seconds = 5\n[mes]\nbase_url = \"{}\"\n\
             fhir_base_url = \"{}\"\n[web]\nenabled = true\nlisten = \"127.0.0.1:{port}\"\n",
            dir.path().join("hub.sqlite").display(),
            world.sandbox.base_url(),
            world.sandbox.fhir_base_url(),
        ),
        None,
        &[],
    )
    .unwrap();
    let store = relais::hub::shared(relais::hub::open_store(&config).unwrap());
    let control = Control::new(store.clone());
    let stop = CancellationToken::new();
    // What the hub's BLE layer reports, printed: the test's output when it fails.
    let (events, mut heard) = tokio::sync::mpsc::channel(256);
    tokio::spawn(async move {
        while let Some(event) = heard.recv().await {
            eprintln!("hub: {event:?}");
        }
    });
    let hub = {
        let (control, stop, config) = (control.clone(), stop.clone(), config.clone());
        tokio::spawn(async move {
            relais::hub::run_with(
                &config,
                control,
                stop,
                relais::hub::Hooks {
                    on_ingest: Some(events),
                    ..Default::default()
                },
            )
            .await
        })
    };
    let base = format!("http://127.0.0.1:{port}");
    until("the web page", Duration::from_secs(30), || async {
        reqwest::get(format!("{base}/setup")).await.is_ok()
    })
    .await;
    let browser = Browser::start("journey").await;
    let url = |path: &str| format!("{base}{path}");

    // 1. First visit: the setup.
    browser.goto(&url("/")).await;
    assert_eq!(browser.path().await, "/setup");
    browser.shot("setup").await;
    browser.fill("#hub_name", "Maison").await;
    browser.fill("#password", PASSWORD).await;
    browser.fill("#password_again", PASSWORD).await;
    browser.click("main button[type=submit]").await;
    assert_eq!(browser.path().await, "/members");

    // 2. Pair the scale: search, then type the passkey it shows.
    browser.goto(&url("/devices")).await;
    browser.click("form[action='/devices/scan'] button").await;
    until(
        "the scale in the search",
        Duration::from_secs(30),
        || async { browser.source().await.contains(SCALE) },
    )
    .await;
    browser.shot("scan").await;
    browser
        .fill("#scan-region input[name=passkey]", "123456")
        .await;
    browser.click("#scan-region form button").await;
    let page = browser.source().await;
    assert!(page.contains("L'appareil est appairé"), "{page}");
    browser.shot("paired").await;

    // 3. Two members.
    browser.goto(&url("/members")).await;
    for name in ["Camille", "Jean"] {
        browser.fill("#display_name", name).await;
        browser.click("form[action='/members'] button").await;
    }
    let (camille, _) = {
        let members = store.lock().unwrap().members().unwrap();
        assert_eq!(members.len(), 2);
        (members[0].id, members[1].id)
    };
    browser.shot("members").await;

    // 4. Link Camille: the sandbox's login and consent pages, then back to the hub.
    browser
        .click(&format!(
            "form[action='/members/{}/link'] button",
            camille.0
        ))
        .await;
    assert!(
        browser
            .client
            .current_url()
            .await
            .unwrap()
            .as_str()
            .starts_with(world.sandbox.base_url())
    );
    browser.shot("mes-login").await;
    browser.fill("#login", "patient-1").await;
    browser.fill("#password", "test").await;
    browser.click("button[type=submit]").await;
    browser.shot("mes-consent").await;
    browser.click("button[value=allow]").await;
    assert_eq!(browser.path().await, "/mes/callback");
    let page = browser.source().await;
    assert!(page.contains("Camille est relié"), "{page}");
    browser.shot("linked").await;
    browser.click("main a[href='/members']").await;
    assert!(
        browser
            .source()
            .await
            .contains("Relié : les mesures sont envoyées")
    );

    // 5. The weighing arrives and waits in the inbox: nothing maps the scale to anyone.
    until(
        "the weighing in the inbox",
        Duration::from_secs(120),
        || async {
            let store = store.clone();
            tokio::task::spawn_blocking(move || !store.lock().unwrap().inbox().unwrap().is_empty())
                .await
                .unwrap()
        },
    )
    .await;

    // 6. Assign it to Camille.
    browser.goto(&url("/inbox")).await;
    browser.shot("inbox").await;
    let select = browser
        .client
        .find(fantoccini::Locator::Css("main select"))
        .await
        .unwrap();
    select
        .select_by_value(&camille.0.to_string())
        .await
        .unwrap();
    browser.click("main form button[type=submit]").await;
    assert!(browser.source().await.contains("La mesure a été attribuée"));
    browser.shot("assigned").await;

    // 7. In Camille's chart and table.
    browser
        .goto(&url(&format!("/members/{}/readings", camille.0)))
        .await;
    let page = browser.source().await;
    assert!(page.contains("id=\"chart-weight-title\""), "{page}");
    assert!(page.contains(" kg"), "{page}");
    browser.shot("readings").await;

    // 8. Delivered to Camille's MES record.
    until(
        "the weight in the sandbox",
        Duration::from_secs(90),
        || async { !world.stored("idpe-patient-1").await.is_empty() },
    )
    .await;
    let stored = world.stored("idpe-patient-1").await;
    assert_eq!(stored.len(), 1, "{stored:?}");
    assert_eq!(stored[0]["code"], "29463-7");
    assert!(world.stored("idpe-patient-2").await.is_empty());
    browser
        .goto(&url(&format!("/members/{}/readings", camille.0)))
        .await;
    until("the table to say sent", Duration::from_secs(10), || async {
        browser.client.refresh().await.unwrap();
        browser.source().await.contains("Envoyée")
    })
    .await;
    browser.shot("delivered").await;

    browser.close().await;
    // A session under way lingers a little before the hub's stop completes.
    stop.cancel();
    tokio::time::timeout(Duration::from_secs(60), hub)
        .await
        .unwrap()
        .unwrap()
        .unwrap();
}
