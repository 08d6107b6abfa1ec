//! Accessibility: axe-core (vendored) run in headless Chromium on every page of the web UI, in
//! French and in English, with data on them; any serious or critical violation fails.
//! Needs Debian's `chromium` and `chromium-driver`.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod web_common;

use relais::hub::config::{Config, Override};
use web_common::browser::Browser;
use web_common::{PASSWORD, Web, glucose, pressure, weighing};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_page_has_no_serious_or_critical_axe_violation_in_french_and_english() {
    // A key set by the environment: the settings page shows its field disabled, explained.
    let env =
        Override::from_env([("RELAIS_MQTT__HOST".to_owned(), "env.lan".to_owned())].into_iter());
    let mut config = Config::from_layers("", None, &[], &env).unwrap();
    config.mes.enabled = false;
    config.ble.enabled = false;
    let web = Web::start(config).await;
    let browser = Browser::start("a11y").await;
    let mut failures = Vec::new();
    let mut check = async |browser: &Browser, label: &str| {
        let found = browser.axe().await;
        if !found.is_empty() {
            failures.push(format!(
                "{label}: {}",
                serde_json::to_string_pretty(&found).unwrap()
            ));
        }
    };

    // The checker itself finds what it must: an input without a label is critical.
    browser
        .goto("data:text/html,<html lang=en><title>x</title><main><input type=text></main></html>")
        .await;
    let found = browser.axe().await;
    assert!(found.iter().any(|v| v["id"] == "label"), "{found:?}");

    browser.goto(&web.url("/setup")).await;
    assert!(
        browser.source().await.contains("<html lang=\"fr\""),
        "French by default"
    );
    check(&browser, "setup fr").await;
    browser.fill("#hub_name", "Maison").await;
    browser.fill("#password", PASSWORD).await;
    browser.fill("#password_again", "trop court").await;
    browser.click("main button[type=submit]").await;
    check(&browser, "setup error fr").await;
    browser.fill("#password", PASSWORD).await;
    browser.fill("#password_again", PASSWORD).await;
    browser.click("main button[type=submit]").await;
    assert_eq!(browser.path().await, "/members");

    let camille = web.store.lock().unwrap().add_member("Camille").unwrap();
    web.store.lock().unwrap().add_member("Jean").unwrap();
    web.commit(&[
        weighing(0, 14_500),
        pressure(),
        glucose(1, 95),
        glucose(2, 210),
    ]);
    {
        let mut store = web.store.lock().unwrap();
        for m in &store.inbox().unwrap()[..3] {
            store.assign(m.id, camille).unwrap();
        }
    }
    web.commit(&[weighing(4, 14_600)]);
    // A saved zone the hub does not run with yet: the page shows both values.
    web.store
        .lock()
        .unwrap()
        .save_settings(&[("hub.time_zone".into(), "\"America/Cayenne\"".into())])
        .unwrap();
    let pages = [
        "/members".to_owned(),
        "/inbox".into(),
        format!("/members/{}/readings", camille.0),
        "/status".into(),
        "/settings".into(),
        "/devices".into(),
        "/nowhere".into(),
    ];
    for lang in ["fr", "en"] {
        for page in &pages {
            browser.goto(&web.url(page)).await;
            let html = browser.source().await;
            assert!(
                html.contains(&format!("<html lang=\"{lang}\"")),
                "{page}: {html}"
            );
            check(&browser, &format!("{page} {lang}")).await;
            let name = page.trim_start_matches('/').replace('/', "-");
            browser.shot(&format!("{lang}-{name}")).await;
        }
        if lang == "fr" {
            // The language switch, as a visitor uses it.
            browser.goto(&web.url("/members")).await;
            browser.click("form[action='/language'] button").await;
        }
    }
    // A refused setting, with its message.
    browser.goto(&web.url("/settings")).await;
    browser.fill("#hub_time_zone", "Europe/Atlantis").await;
    browser.click("form[action='/settings/zone'] button").await;
    let html = browser.source().await;
    for shown in ["Europe/Atlantis", "RELAIS_MQTT__HOST", "America/Cayenne"] {
        assert!(html.contains(shown), "{shown} in {html}");
    }
    check(&browser, "settings error en").await;
    // The login page, signed out, in English (the cookie stays).
    browser.goto(&web.url("/members")).await;
    browser.click("form[action='/logout'] button").await;
    assert_eq!(browser.path().await, "/login");
    check(&browser, "login en").await;
    browser.shot("login-en").await;
    browser.close().await;
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
