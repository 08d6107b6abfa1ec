//! The web page over HTTP against a real server on a loopback port and a real store: setup,
//! login, rate limiting, CSRF, cookie flags, every page in French and English, no health value
//! in a URL, the MES link through mes-sandbox, the inbox, and the JSON API with its OpenAPI
//! description.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod mes_common;
mod web_common;

use relais::hub::config::Config;
use relais::store::{MeasurementId, MesState};
use web_common::{PASSWORD, Web, csrf_of, glucose, pressure, weighing};

fn location(r: &reqwest::Response) -> String {
    r.headers()["location"].to_str().unwrap().to_owned()
}

fn set_cookies(r: &reqwest::Response) -> Vec<String> {
    r.headers()
        .get_all("set-cookie")
        .iter()
        .map(|v| v.to_str().unwrap().to_owned())
        .collect()
}

fn offline() -> Config {
    let mut config = Config::default();
    config.mes.enabled = false;
    config.ble.enabled = false;
    config
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_first_visit_sets_up_the_admin_with_a_strict_http_only_session_cookie() {
    let web = Web::start(offline()).await;
    let client = web.client();
    let home = client.get("/").await;
    assert_eq!(
        (home.status().as_u16(), location(&home)),
        (303, "/setup".into())
    );
    let members = client.get("/members").await;
    assert_eq!(
        location(&members),
        "/setup",
        "nothing is shown before the setup"
    );

    let setup = client.get("/setup").await;
    assert_eq!(setup.status(), 200);
    let cookies = set_cookies(&setup);
    assert_eq!(cookies.len(), 1, "{cookies:?}");
    for flag in ["relais_session=", "HttpOnly", "SameSite=Strict", "Path=/"] {
        assert!(cookies[0].contains(flag), "{flag} in {cookies:?}");
    }
    let csrf = csrf_of(&setup.text().await.unwrap());

    // Mismatched passwords: said in plain words, nothing created.
    let r = client
        .post_form(
            "/setup",
            &[
                ("csrf", &csrf),
                ("hub_name", "Maison"),
                ("password", PASSWORD),
                ("password_again", "autre chose"),
            ],
        )
        .await;
    assert_eq!(r.status(), 422);
    assert!(
        r.text()
            .await
            .unwrap()
            .contains("Les deux mots de passe sont différents")
    );
    assert!(web.store.lock().unwrap().web_admin().unwrap().is_none());

    let form = [
        ("csrf", csrf.as_str()),
        ("hub_name", "Maison"),
        ("password", PASSWORD),
        ("password_again", PASSWORD),
    ];
    let r = client.post_form("/setup", &form).await;
    assert_eq!(
        (r.status().as_u16(), location(&r)),
        (303, "/members".into())
    );
    let session = set_cookies(&r);
    assert!(session[0].contains("HttpOnly") && session[0].contains("SameSite=Strict"));
    assert_ne!(session[0], cookies[0], "signing in gives a new session id");
    let admin = web.store.lock().unwrap().web_admin().unwrap().unwrap();
    assert_eq!(admin.hub_name, "Maison");
    assert!(admin.password_hash.starts_with("$argon2id$"));
    assert!(!admin.password_hash.contains(PASSWORD));
    let page = client.get("/members").await;
    assert_eq!(page.status(), 200);
    for (name, value) in [
        ("cache-control", "no-store"),
        ("x-frame-options", "DENY"),
        ("x-content-type-options", "nosniff"),
    ] {
        assert_eq!(page.headers()[name], value, "{name}");
    }
    assert!(page.text().await.unwrap().contains("Maison"));

    // A second setup is refused: the admin exists.
    let other = web.client();
    assert_eq!(location(&other.get("/setup").await), "/login");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_password_is_refused_and_the_sixth_failure_in_a_row_is_rate_limited() {
    let web = Web::start(offline()).await;
    web.admin().await;
    let client = web.client();
    let csrf = client.csrf("/login").await;
    let r = client
        .post_form("/login", &[("csrf", &csrf), ("password", PASSWORD)])
        .await;
    assert_eq!(
        (r.status().as_u16(), location(&r)),
        (303, "/members".into())
    );
    assert_eq!(client.get("/inbox").await.status(), 200);

    let intruder = web.client();
    let csrf = intruder.csrf("/login").await;
    for attempt in 0..5 {
        let r = intruder
            .post_form("/login", &[("csrf", &csrf), ("password", "pas le bon")])
            .await;
        assert_eq!(r.status(), 401, "attempt {attempt}");
        assert!(r.text().await.unwrap().contains("pas le bon"));
    }
    // Now even the right password waits: the address is blocked for five minutes.
    let r = intruder
        .post_form("/login", &[("csrf", &csrf), ("password", PASSWORD)])
        .await;
    assert_eq!(r.status(), 429);
    assert!(r.text().await.unwrap().contains("Attendez 5 minutes"));
    assert_eq!(location(&intruder.get("/members").await), "/login");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_form_without_the_session_csrf_token_is_refused_with_403() {
    let web = Web::start(offline()).await;
    let admin = web.admin().await;
    for token in ["", "0123456789abcdef", &"a".repeat(64)] {
        let r = admin
            .post_form("/members", &[("csrf", token), ("display_name", "Camille")])
            .await;
        assert_eq!(r.status(), 403, "token {token:?}");
    }
    assert!(web.store.lock().unwrap().members().unwrap().is_empty());
    // Another session's token does not do either.
    let other = web.admin().await;
    let theirs = other.csrf("/members").await;
    let r = admin
        .post_form(
            "/members",
            &[("csrf", &theirs), ("display_name", "Camille")],
        )
        .await;
    assert_eq!(r.status(), 403);
    let mine = admin.csrf("/members").await;
    let r = admin
        .post_form("/members", &[("csrf", &mine), ("display_name", "Camille")])
        .await;
    assert_eq!(location(&r), "/members?notice=added");
    assert_eq!(web.store.lock().unwrap().members().unwrap().len(), 1);
}

/// Every `href`, `action` and `src` of a page.
fn urls(html: &str) -> Vec<String> {
    let re = regex::Regex::new(r#"(?:href|action|src)="([^"]*)""#).unwrap();
    re.captures_iter(html).map(|c| c[1].to_owned()).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_page_is_complete_in_french_and_english_and_no_url_carries_a_value() {
    let web = Web::start(offline()).await;
    let admin = web.admin().await;
    let (camille, jean) = {
        let mut store = web.store.lock().unwrap();
        (
            store.add_member("Camille").unwrap(),
            store.add_member("Jean").unwrap(),
        )
    };
    web.commit(&[
        weighing(0, 14_500),
        pressure(),
        glucose(1, 95),
        glucose(2, 210),
    ]);
    {
        let mut store = web.store.lock().unwrap();
        let inbox = store.inbox().unwrap();
        // Camille gets all but the last glucose, which waits in the inbox.
        for m in &inbox[..3] {
            store.assign(m.id, camille).unwrap();
        }
    }
    web.commit(&[weighing(5, 11_000)]);
    let pages = [
        "/members".to_owned(),
        "/inbox".into(),
        "/status".into(),
        "/settings".into(),
        "/devices".into(),
        format!("/members/{}/readings", camille.0),
        format!("/members/{}/readings", jean.0),
    ];
    let values = ["72,5", "72.5", "120/80", "95", "210", "55"];
    let allowed = regex::Regex::new(r"^(/[a-z_.]*(/[0-9]+)?(/[a-z]+)?|#main)$").unwrap();
    for (accept, lang) in [("fr-FR,fr;q=0.9", "fr"), ("en-GB,en;q=0.8", "en")] {
        for path in &pages {
            let r = admin.get_in(path, accept).await;
            assert_eq!(r.status(), 200, "{path} in {lang}");
            let html = r.text().await.unwrap();
            assert!(
                html.contains(&format!("<html lang=\"{lang}\"")),
                "{path} in {lang}"
            );
            assert!(
                !html.contains('⟦'),
                "untranslated key on {path} in {lang}: {html}"
            );
            for url in urls(&html) {
                assert!(allowed.is_match(&url), "{url} on {path}");
                for v in values {
                    assert!(!url.contains(v), "{v} in {url} on {path}");
                }
            }
        }
        for path in ["/login", "/nowhere"] {
            let html = web
                .client()
                .get_in(path, accept)
                .await
                .text()
                .await
                .unwrap();
            assert!(!html.contains('⟦'), "untranslated key on {path} in {lang}");
        }
    }
    // The values are on the pages, not in their addresses.
    let page = admin
        .get_in(&format!("/members/{}/readings", camille.0), "fr")
        .await
        .text()
        .await
        .unwrap();
    for shown in [
        "72,5 kg",
        "120/80 mmHg",
        "95 mg/dL",
        "chart-weight",
        "chart-pressure",
        "chart-glucose",
    ] {
        assert!(page.contains(shown), "{shown} on Camille's page");
    }
    let english = admin
        .get_in(&format!("/members/{}/readings", camille.0), "en")
        .await
        .text()
        .await
        .unwrap();
    assert!(english.contains("72.5 kg") && english.contains("Weight trend"));

    // The switch keeps the choice in a cookie, over the browser's preference.
    let csrf = admin.csrf("/members").await;
    let r = admin
        .post_form(
            "/language",
            &[("csrf", &csrf), ("lang", "en"), ("back", "/status")],
        )
        .await;
    assert_eq!(location(&r), "/status");
    assert!(set_cookies(&r)[0].contains("relais_lang=en"));
    let html = admin.get_in("/status", "fr").await.text().await.unwrap();
    assert!(html.contains("<html lang=\"en\"") && html.contains("Hub status"));
    let r = admin
        .post_form(
            "/language",
            &[("csrf", &csrf), ("lang", "fr"), ("back", "//evil.example")],
        )
        .await;
    assert_eq!(location(&r), "/", "no open redirect");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_inbox_weighing_is_proposed_for_the_closest_member_and_assigned_from_the_page() {
    let web = Web::start(offline()).await;
    let admin = web.admin().await;
    let camille = web.store.lock().unwrap().add_member("Camille").unwrap();
    web.store.lock().unwrap().add_member("Jean").unwrap();
    web.commit(&[weighing(0, 14_500)]);
    let first = web.store.lock().unwrap().inbox().unwrap()[0].id;
    web.store.lock().unwrap().assign(first, camille).unwrap();
    web.commit(&[weighing(9, 14_560)]);
    let waiting = web.store.lock().unwrap().inbox().unwrap()[0].id;

    let html = admin.get("/inbox").await.text().await.unwrap();
    assert!(html.contains("Probablement : Camille"), "{html}");
    assert!(
        html.contains(&format!(
            "<option value=\"{}\" selected>Camille</option>",
            camille.0
        )),
        "{html}"
    );
    let csrf = csrf_of(&html);
    let r = admin
        .post_form(
            &format!("/inbox/{}/assign", waiting.0),
            &[("csrf", &csrf), ("member", &camille.0.to_string())],
        )
        .await;
    assert_eq!(location(&r), "/inbox?notice=assigned");
    let store = web.store.lock().unwrap();
    assert!(store.inbox().unwrap().is_empty());
    assert_eq!(
        store.measurement(MeasurementId(waiting.0)).unwrap().member,
        Some(camille)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn linking_goes_through_mes_and_comes_back_to_the_page_unlinking_revokes() {
    let world = mes_common::World::start().await;
    let mut config = offline();
    config.mes.enabled = true;
    config.mes.base_url = world.sandbox.base_url().to_owned();
    config.mes.fhir_base_url = world.sandbox.fhir_base_url().to_owned();
    let web = Web::start(config).await;
    let admin = web.admin().await;
    let camille = web.store.lock().unwrap().add_member("Camille").unwrap();
    let csrf = admin.csrf("/members").await;
    let r = admin
        .post_form(&format!("/members/{}/link", camille.0), &[("csrf", &csrf)])
        .await;
    assert_eq!(r.status(), 303);
    let authorize = url::Url::parse(&location(&r)).unwrap();
    assert!(
        authorize.as_str().starts_with(world.sandbox.base_url()),
        "{authorize}"
    );
    let query = mes_common::query(&authorize);
    assert_eq!(
        query["redirect_uri"],
        format!("http://127.0.0.1:{}/mes/callback", web.addr.port())
    );

    // The patient consents at MES, which sends the browser back to the hub.
    let mut form: Vec<(String, String)> = authorize.query_pairs().into_owned().collect();
    form.extend([
        ("user".into(), "patient-1".into()),
        ("consent_read".into(), "true".into()),
        ("consent_write".into(), "true".into()),
    ]);
    let back = world
        .http
        .post(world.url("/oauth/authorize/test"))
        .form(&form)
        .send()
        .await
        .unwrap();
    let back = location(&back);
    // Without any cookie, as after a redirect from another site.
    let page = reqwest::get(&back).await.unwrap();
    assert_eq!(page.status(), 200);
    assert!(page.text().await.unwrap().contains("Camille est relié"));
    {
        let store = web.store.lock().unwrap();
        let member = store.member(camille).unwrap();
        assert_eq!(member.mes_state, MesState::Linked);
        assert_eq!(member.id_pe.as_deref(), Some("idpe-patient-1"));
    }
    // The same return again is refused: the state is spent.
    assert_eq!(reqwest::get(&back).await.unwrap().status(), 400);
    let html = admin.get("/members").await.text().await.unwrap();
    assert!(html.contains("Relié : les mesures sont envoyées"));

    let r = admin
        .post_form(
            &format!("/members/{}/unlink", camille.0),
            &[("csrf", &csrf)],
        )
        .await;
    assert_eq!(location(&r), "/members?notice=unlinked");
    let store = web.store.lock().unwrap();
    assert_eq!(store.member(camille).unwrap().mes_state, MesState::Unlinked);
    assert!(store.tokens(camille).unwrap().is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_json_api_needs_the_session_and_the_csrf_header_and_its_openapi_parses() {
    let web = Web::start(offline()).await;
    let doc: utoipa::openapi::OpenApi = web
        .client()
        .get("/api/openapi.json")
        .await
        .json()
        .await
        .unwrap();
    for path in [
        "/api/v1/members",
        "/api/v1/inbox/{id}/assign",
        "/api/v1/status",
        "/api/v1/devices/pair",
        "/api/v1/members/{id}/link",
    ] {
        assert!(doc.paths.paths.contains_key(path), "{path}");
    }
    assert!(
        doc.components
            .unwrap()
            .schemas
            .contains_key("MeasurementView")
    );

    let anonymous = web.client();
    assert_eq!(anonymous.get("/api/v1/members").await.status(), 401);
    let admin = web.admin().await;
    let url = format!("{}/api/v1/members", admin.base);
    let r = admin
        .http
        .post(&url)
        .json(&serde_json::json!({ "display_name": "Camille" }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403, "no CSRF header");
    let session: serde_json::Value = admin.get("/api/v1/session").await.json().await.unwrap();
    let csrf = session["csrf"].as_str().unwrap();
    let r = admin
        .http
        .post(&url)
        .header("x-csrf-token", csrf)
        .json(&serde_json::json!({ "display_name": "Camille" }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let camille: serde_json::Value = r.json().await.unwrap();
    assert_eq!(camille["mes_state"], "unlinked");
    let r = admin
        .http
        .post(format!(
            "{}/api/v1/members/{}/link",
            admin.base, camille["id"]
        ))
        .header("x-csrf-token", csrf)
        .send()
        .await
        .unwrap();
    let link: serde_json::Value = r.json().await.unwrap();
    let authorize = url::Url::parse(link["authorize_url"].as_str().unwrap()).unwrap();
    assert_eq!(authorize.path(), "/oauth/authorize");
    assert!(mes_common::query(&authorize)["redirect_uri"].ends_with("/mes/callback"));

    web.commit(&[weighing(0, 14_500)]);
    let inbox: serde_json::Value = admin.get("/api/v1/inbox").await.json().await.unwrap();
    assert_eq!(inbox[0]["readings"][0]["kind"], "body_weight");
    assert_eq!(inbox[0]["readings"][0]["value"], 72.5);
    let id = inbox[0]["id"].as_i64().unwrap();
    let r = admin
        .http
        .post(format!("{}/api/v1/inbox/{id}/assign", admin.base))
        .header("x-csrf-token", csrf)
        .json(&serde_json::json!({ "member": camille["id"] }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204);
    let theirs: serde_json::Value = admin
        .get(&format!("/api/v1/members/{}/measurements", camille["id"]))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(theirs.as_array().unwrap().len(), 1);
    let status: serde_json::Value = admin.get("/api/v1/status").await.json().await.unwrap();
    assert_eq!(status["inbox"], 0);
    assert_eq!(status["devices"][0]["address"], web_common::SCALE);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_device_is_renamed_from_the_page_and_the_api_lists_it_by_that_name() {
    let web = Web::start(offline()).await;
    let admin = web.admin().await;
    web.commit(&[weighing(0, 14_500)]);
    let html = admin.get("/devices").await.text().await.unwrap();
    assert!(
        html.contains("RS-1") && html.contains(web_common::SCALE),
        "{html}"
    );
    let csrf = csrf_of(&html);
    let r = admin
        .post_form(
            "/devices/rename",
            &[
                ("csrf", &csrf),
                ("address", web_common::SCALE),
                ("label", "Balance de la salle de bain"),
            ],
        )
        .await;
    assert_eq!(location(&r), "/devices?notice=renamed");
    let html = admin.get("/devices").await.text().await.unwrap();
    assert!(
        html.contains("Lire Balance de la salle de bain maintenant"),
        "{html}"
    );
    let r = admin
        .post_form(
            "/devices/rename",
            &[
                ("csrf", &csrf),
                ("address", "C0:FF:EE:99:99:99"),
                ("label", "x"),
            ],
        )
        .await;
    assert_eq!(r.status(), 422);
    assert!(
        r.text()
            .await
            .unwrap()
            .contains("Le hub ne voit pas cet appareil")
    );

    let devices: serde_json::Value = admin.get("/api/v1/devices").await.json().await.unwrap();
    assert_eq!(devices[0]["name"], "Balance de la salle de bain");
    assert_eq!(devices[0]["kind"], "weight_scale");
    // Without Bluetooth, pairing through the API says so (no hub supervisor answers).
    let session: serde_json::Value = admin.get("/api/v1/session").await.json().await.unwrap();
    let r = admin
        .http
        .post(format!("{}/api/v1/devices/pair", admin.base))
        .header("x-csrf-token", session["csrf"].as_str().unwrap())
        .json(&serde_json::json!({ "address": web_common::SCALE, "passkey": 1_234_567 }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 422, "a passkey of seven digits");
}

fn saved(web: &Web) -> Vec<(String, String)> {
    web.store.lock().unwrap().saved_settings().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_settings_page_saves_a_time_zone_refuses_an_unknown_one_and_checks_csrf() {
    let web = Web::start(offline()).await;
    let admin = web.admin().await;
    let page = admin.get("/settings").await.text().await.unwrap();
    let csrf = csrf_of(&page);
    assert!(
        page.contains(r#"<option value="America/Cayenne">"#),
        "the zones the hub accepts are proposed"
    );

    let r = admin
        .post_form(
            "/settings/zone",
            &[("csrf", "0000"), ("hub.time_zone", "America/Cayenne")],
        )
        .await;
    assert_eq!(r.status(), 403);
    assert!(
        saved(&web).is_empty(),
        "nothing saved without the CSRF token"
    );

    let r = admin
        .post_form(
            "/settings/zone",
            &[("csrf", &csrf), ("hub.time_zone", "Europe/Atlantis")],
        )
        .await;
    assert_eq!(r.status(), 422);
    let html = r.text().await.unwrap();
    assert!(
        html.contains("Fuseau horaire inconnu : « Europe/Atlantis »"),
        "{html}"
    );
    assert!(saved(&web).is_empty());

    let r = admin
        .post_form(
            "/settings/zone",
            &[("csrf", &csrf), ("hub.time_zone", "America/Cayenne")],
        )
        .await;
    assert_eq!(r.status(), 303);
    assert_eq!(location(&r), "/settings?saved=hub.time_zone");
    assert_eq!(
        saved(&web),
        [("hub.time_zone".to_owned(), "\"America/Cayenne\"".to_owned())]
    );
    let html = admin
        .get_in(&location(&r), "en")
        .await
        .text()
        .await
        .unwrap();
    assert!(
        html.contains("Saved: Time zone. It applies when the hub restarts."),
        "{html}"
    );
    assert!(
        html.contains("Running: Europe/Paris; saved: America/Cayenne"),
        "{html}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mqtt_settings_are_checked_as_the_file_is_and_the_password_never_comes_back() {
    let web = Web::start(offline()).await;
    let admin = web.admin().await;
    let csrf = admin.csrf("/settings").await;
    let mqtt = |extra: &[(&'static str, &'static str)]| {
        let mut form = vec![
            ("mqtt.enabled", "true"),
            ("mqtt.host", "broker.lan"),
            ("mqtt.port", "1884"),
            ("mqtt.username", "maison"),
            ("mqtt.password", "s3cret-pw"),
            ("mqtt.topic_prefix", "relais"),
            ("mqtt.discovery_prefix", "homeassistant"),
            ("mqtt.format", "cbor"),
        ];
        for (key, value) in extra {
            form.retain(|(k, _)| k != key);
            form.push((key, value));
        }
        form
    };
    let post = |form: Vec<(&'static str, &'static str)>| {
        let mut fields = vec![("csrf", csrf.as_str())];
        fields.extend(form);
        let admin = &admin;
        async move { admin.post_form("/settings/mqtt", &fields).await }
    };

    let box_of = regex::Regex::new(r#"<input[^>]*id="mqtt_enabled"[^>]*>"#).unwrap();
    for (extra, expected) in [
        (vec![("mqtt.topic_prefix", "maison/#")], "mqtt.topic_prefix"),
        (vec![("mqtt.tls", "true")], "mqtt.ca_file"),
        (vec![("mqtt.port", "70000")], "mqtt.port"),
        (vec![("mqtt.format", "xml")], "xml"),
    ] {
        let r = post(mqtt(&extra)).await;
        assert_eq!(r.status(), 422, "{extra:?}");
        let html = r.text().await.unwrap();
        assert!(html.contains("rien n'a été enregistré"), "{html}");
        assert!(html.contains(expected), "{expected} in {html}");
        assert!(!html.contains("s3cret-pw"), "the password is not echoed");
        assert!(saved(&web).is_empty(), "{extra:?}");
        let enabled = box_of.find(&html).unwrap().as_str();
        assert!(
            enabled.contains("checked"),
            "the form comes back as sent: {enabled}"
        );
    }

    let r = post(mqtt(&[])).await;
    assert_eq!(r.status(), 303);
    let stored: Vec<String> = saved(&web).into_iter().map(|(k, _)| k).collect();
    assert_eq!(
        stored,
        [
            "mqtt.enabled",
            "mqtt.format",
            "mqtt.host",
            "mqtt.password",
            "mqtt.port",
            "mqtt.username"
        ],
        "only what changed is saved"
    );
    let html = admin.get(&location(&r)).await.text().await.unwrap();
    assert!(html.contains("Enregistré"), "{html}");
    assert!(html.contains("broker.lan"), "{html}");
    assert!(!html.contains("s3cret-pw"), "{html}");
    let api = admin.get("/api/v1/settings").await.text().await.unwrap();
    assert!(api.contains("broker.lan"), "{api}");
    assert!(!api.contains("s3cret-pw"), "{api}");

    // An empty password leaves the saved one.
    let r = post(mqtt(&[("mqtt.password", ""), ("mqtt.host", "other.lan")])).await;
    assert_eq!(r.status(), 303);
    assert_eq!(location(&r), "/settings?saved=mqtt.host");
    let password = saved(&web)
        .into_iter()
        .find(|(k, _)| k == "mqtt.password")
        .unwrap();
    assert_eq!(password.1, "\"s3cret-pw\"");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn settings_set_by_the_environment_are_shown_disabled_and_the_api_saves_the_others() {
    let env = relais::hub::config::Override::from_env(
        [("RELAIS_MQTT__HOST".to_owned(), "env.lan".to_owned())].into_iter(),
    );
    let mut config = Config::from_layers("", None, &[], &env).unwrap();
    config.mes.enabled = false;
    config.ble.enabled = false;
    let web = Web::start(config).await;
    let admin = web.admin().await;

    let html = admin.get_in("/settings", "en").await.text().await.unwrap();
    let host = regex::Regex::new(r#"<input[^>]*id="mqtt_host"[^>]*>"#).unwrap();
    let input = host.find(&html).unwrap().as_str();
    assert!(input.contains("disabled"), "{input}");
    assert!(input.contains("value=\"env.lan\""), "{input}");
    assert!(
        html.contains("“MQTT broker” is set by RELAIS_MQTT__HOST, which wins over this page."),
        "{html}"
    );

    let url = format!("{}/api/v1/settings", admin.base);
    let change = serde_json::json!({ "values": { "hub.time_zone": "Asia/Tokyo" } });
    let r = admin.http.patch(&url).json(&change).send().await.unwrap();
    assert_eq!(r.status(), 403, "no CSRF header");
    let session: serde_json::Value = admin.get("/api/v1/session").await.json().await.unwrap();
    let csrf = session["csrf"].as_str().unwrap();
    let patch = |body: serde_json::Value| {
        admin
            .http
            .patch(&url)
            .header("x-csrf-token", csrf)
            .json(&body)
            .send()
    };
    let r = patch(serde_json::json!({ "values": { "mqtt.host": "page.lan" } }))
        .await
        .unwrap();
    assert_eq!(r.status(), 409);
    let r = patch(serde_json::json!({ "values": { "mes.base_url": "http://elsewhere" } }))
        .await
        .unwrap();
    assert_eq!(r.status(), 422, "only the page's keys are saved");
    let r = patch(serde_json::json!({ "values": { "hub.time_zone": "Nowhere/Else" } }))
        .await
        .unwrap();
    assert_eq!(r.status(), 422);
    assert!(saved(&web).is_empty());
    let r = patch(change).await.unwrap();
    assert_eq!(r.status(), 200);
    let body: serde_json::Value = r.json().await.unwrap();
    assert_eq!(body["changed"], serde_json::json!(["hub.time_zone"]));

    let listed: serde_json::Value = admin.get("/api/v1/settings").await.json().await.unwrap();
    let find = |key: &str| {
        listed
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["key"] == key)
            .unwrap()
            .clone()
    };
    let zone = find("hub.time_zone");
    assert_eq!(
        (&zone["value"], &zone["next_value"], &zone["saved"]),
        (
            &serde_json::json!("Europe/Paris"),
            &serde_json::json!("Asia/Tokyo"),
            &serde_json::json!(true)
        )
    );
    assert_eq!(find("mqtt.host")["fixed_by"], "RELAIS_MQTT__HOST");
    assert_eq!(find("mqtt.password")["value"], serde_json::Value::Null);

    let doc: utoipa::openapi::OpenApi = admin.get("/api/openapi.json").await.json().await.unwrap();
    assert!(doc.paths.paths.contains_key("/api/v1/settings"));
}
