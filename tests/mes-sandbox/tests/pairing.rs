//! Pairing: OAuth 2.0 authorization code + PKCE S256, id_token, refresh rotation, revocation,
//! all over real HTTP.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

mod common;

use std::time::Duration;

use common::*;
use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use relais_mes_sandbox::{Sandbox, SandboxConfig};
use reqwest::StatusCode;
use serde_json::Value;

/// The value of a hidden input in an HTML page.
fn hidden(html: &str, name: &str) -> String {
    let marker = format!("name=\"{name}\" value=\"");
    let start = html.find(&marker).expect("hidden input") + marker.len();
    let end = start + html[start..].find('"').unwrap();
    html[start..end].to_owned()
}

fn authorize_url(sb: &relais_mes_sandbox::RunningSandbox, challenge: &str, method: &str) -> String {
    let mut url = url::Url::parse(&format!("{}/oauth/authorize", sb.base_url())).unwrap();
    url.query_pairs_mut()
        .append_pair("response_type", "code")
        .append_pair("client_id", CLIENT_ID)
        .append_pair("redirect_uri", REDIRECT_URI)
        .append_pair("state", "xyz")
        .append_pair("code_challenge", challenge)
        .append_pair("code_challenge_method", method)
        .append_pair("scope", "openid mesures.read mesures.write");
    url.to_string()
}

async fn error_of(response: reqwest::Response) -> (StatusCode, Value) {
    let status = response.status();
    (status, response.json().await.unwrap())
}

#[tokio::test]
async fn login_and_consent_pages_pair_the_user_with_separate_read_and_write_consents() {
    let sb = start().await;
    let http = client();
    let (verifier, challenge) = pkce();
    let page = http
        .get(authorize_url(&sb, &challenge, "S256"))
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), StatusCode::OK);
    let html = page.text().await.unwrap();
    assert!(html.contains("lang=\"fr\"") && html.contains("Mot de passe"));
    assert!(html.contains("patient-1") && html.contains("idpe-patient-1"));
    let request = hidden(&html, "request");

    let login = |password: &'static str| {
        http.post(format!("{}/oauth/login", sb.base_url()))
            .form(&[
                ("request", request.as_str()),
                ("login", "patient-1"),
                ("password", password),
            ])
            .send()
    };
    let wrong = login("wrong").await.unwrap();
    assert_eq!(wrong.status(), StatusCode::UNAUTHORIZED);
    assert!(wrong.text().await.unwrap().contains("incorrect"));

    let consent_page = login("test").await.unwrap();
    assert_eq!(consent_page.status(), StatusCode::OK);
    let html = consent_page.text().await.unwrap();
    assert!(html.contains("name=\"consent_read\"") && html.contains("name=\"consent_write\""));

    // Only reading is consented to.
    let redirect = http
        .post(format!("{}/oauth/consent", sb.base_url()))
        .form(&[
            ("request", request.as_str()),
            ("consent_read", "on"),
            ("decision", "allow"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(redirect.status(), StatusCode::SEE_OTHER);
    let location = redirect.headers()["location"].to_str().unwrap().to_owned();
    assert!(
        location.starts_with("http://127.0.0.1:9/mes/callback?"),
        "{location}"
    );
    let params = location_params(&redirect);
    assert_eq!(param(&params, "state"), Some("xyz"));
    assert_eq!(param(&params, "iss"), Some(sb.issuer()));
    let code = param(&params, "code").unwrap();

    let tokens = exchange(&sb, code, &verifier).await;
    assert_eq!(tokens.status(), StatusCode::OK);
    let tokens = Tokens::from_json(tokens.json().await.unwrap());
    assert_eq!(tokens.body["scope"], "openid mesures.read");

    // The page cannot be decided twice.
    let again = http
        .post(format!("{}/oauth/consent", sb.base_url()))
        .form(&[
            ("request", request.as_str()),
            ("consent_read", "on"),
            ("decision", "allow"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(again.status(), StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn refused_consent_redirects_with_access_denied_and_state() {
    let sb = start().await;
    let (_, challenge) = pkce();
    let response = authorize_test(&sb, "patient-1", false, false, &challenge).await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    let params = location_params(&response);
    assert_eq!(param(&params, "error"), Some("access_denied"));
    assert_eq!(param(&params, "state"), Some("st-123"));
    assert_eq!(param(&params, "code"), None);
}

#[tokio::test]
async fn plain_or_missing_pkce_method_is_refused_with_invalid_request() {
    let sb = start().await;
    let http = client();
    let (verifier, challenge) = pkce();
    for (method, value) in [
        ("plain", verifier.as_str()),
        ("S256 missing", challenge.as_str()),
    ] {
        let mut url = authorize_url(&sb, value, "plain");
        if method == "S256 missing" {
            url = url.replace("&code_challenge_method=plain", "");
        }
        let response = http.get(url).send().await.unwrap();
        assert_eq!(response.status(), StatusCode::SEE_OTHER, "{method}");
        let params = location_params(&response);
        assert_eq!(param(&params, "error"), Some("invalid_request"), "{method}");
        assert!(
            param(&params, "error_description")
                .unwrap()
                .contains("S256")
        );
        assert_eq!(param(&params, "state"), Some("xyz"));
    }
    let no_challenge = authorize_url(&sb, "", "S256").replace("&code_challenge=", "&x=");
    let response = http.get(no_challenge).send().await.unwrap();
    assert_eq!(
        param(&location_params(&response), "error"),
        Some("invalid_request")
    );
}

#[tokio::test]
async fn unknown_client_or_unregistered_redirect_uri_gets_an_error_page_not_a_redirect() {
    let sb = start().await;
    let http = client();
    let (_, challenge) = pkce();
    for (case, url) in [
        (
            "client",
            authorize_url(&sb, &challenge, "S256").replace(CLIENT_ID, "intruder"),
        ),
        (
            "redirect",
            authorize_url(&sb, &challenge, "S256").replace("mes%2Fcallback", "evil"),
        ),
    ] {
        let response = http.get(url).send().await.unwrap();
        assert_eq!(response.status(), StatusCode::BAD_REQUEST, "{case}");
        assert!(response.headers().get("location").is_none(), "{case}");
    }
}

#[tokio::test]
async fn scope_must_include_openid_and_a_measure_access() {
    let sb = start().await;
    let (_, challenge) = pkce();
    for scope in ["mesures.read", "openid", "openid profile"] {
        let url = authorize_url(&sb, &challenge, "S256").replace(
            "openid+mesures.read+mesures.write",
            &scope.replace(' ', "+"),
        );
        let response = client().get(url).send().await.unwrap();
        assert_eq!(
            param(&location_params(&response), "error"),
            Some("invalid_scope"),
            "{scope}"
        );
    }
}

#[tokio::test]
async fn code_exchange_checks_the_s256_verifier_and_the_code_is_single_use() {
    let sb = start().await;
    // Wrong verifier: refused, and the code is spent.
    let (code, verifier) = code_for(&sb, "patient-1", true, true).await;
    let (other_verifier, _) = pkce();
    let (status, body) = error_of(exchange(&sb, &code, &other_verifier).await).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (StatusCode::BAD_REQUEST, Some("invalid_grant"))
    );
    let (_, body) = error_of(exchange(&sb, &code, &verifier).await).await;
    assert_eq!(body["error"], "invalid_grant");

    // Right verifier: tokens; replaying the code revokes them.
    let (code, verifier) = code_for(&sb, "patient-1", true, true).await;
    let first = exchange(&sb, &code, &verifier).await;
    assert_eq!(first.status(), StatusCode::OK);
    assert_eq!(first.headers()["cache-control"], "no-store");
    let tokens = Tokens::from_json(first.json().await.unwrap());
    assert_eq!(tokens.body["token_type"], "Bearer");
    assert_eq!(tokens.body["expires_in"], 3600);
    assert_eq!(
        post_bundle(&sb, &tokens, &weight_bundle(ID_PE_1))
            .await
            .status(),
        StatusCode::OK
    );

    let (status, body) = error_of(exchange(&sb, &code, &verifier).await).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (StatusCode::BAD_REQUEST, Some("invalid_grant"))
    );
    assert_eq!(
        post_bundle(&sb, &tokens, &weight_bundle(ID_PE_1))
            .await
            .status(),
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        refresh(&sb, &tokens.refresh).await.status(),
        StatusCode::BAD_REQUEST
    );
}

#[tokio::test]
async fn code_exchange_with_another_redirect_uri_is_refused() {
    let sb = start().await;
    let (code, verifier) = code_for(&sb, "patient-1", true, true).await;
    let response = token_request(
        &sb,
        &[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("redirect_uri", "http://127.0.0.1:10/mes/callback"),
            ("code_verifier", &verifier),
        ],
    )
    .await;
    let (status, body) = error_of(response).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body["error"], "invalid_grant");
    assert!(
        body["error_description"]
            .as_str()
            .unwrap()
            .contains("redirect_uri")
    );
}

#[tokio::test]
async fn expired_code_is_refused() {
    let config = SandboxConfig {
        authorization_code_lifetime_secs: 1,
        ..SandboxConfig::default()
    };
    let sb = Sandbox::start(config).await.unwrap();
    let (code, verifier) = code_for(&sb, "patient-1", true, true).await;
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let (_, body) = error_of(exchange(&sb, &code, &verifier).await).await;
    assert_eq!(body["error"], "invalid_grant");
    assert!(
        body["error_description"]
            .as_str()
            .unwrap()
            .contains("expired")
    );
}

#[tokio::test]
async fn token_endpoint_authenticates_the_client_by_basic_or_post() {
    let sb = start().await;
    let (code, verifier) = code_for(&sb, "patient-1", true, true).await;
    let form = [
        ("grant_type", "authorization_code"),
        ("code", code.as_str()),
        ("redirect_uri", REDIRECT_URI),
        ("code_verifier", verifier.as_str()),
    ];
    let wrong = client()
        .post(format!("{}/oauth/token", sb.base_url()))
        .basic_auth(CLIENT_ID, Some("not-the-secret"))
        .form(&form)
        .send()
        .await
        .unwrap();
    assert_eq!(wrong.status(), StatusCode::UNAUTHORIZED);
    assert!(
        wrong.headers()["www-authenticate"]
            .to_str()
            .unwrap()
            .starts_with("Basic")
    );
    assert_eq!(
        wrong.json::<Value>().await.unwrap()["error"],
        "invalid_client"
    );

    let none = client()
        .post(format!("{}/oauth/token", sb.base_url()))
        .form(&form)
        .send()
        .await
        .unwrap();
    assert_eq!(none.status(), StatusCode::UNAUTHORIZED);

    let json_body = client()
        .post(format!("{}/oauth/token", sb.base_url()))
        .json(&serde_json::json!({ "grant_type": "authorization_code" }))
        .send()
        .await
        .unwrap();
    let (status, body) = error_of(json_body).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (StatusCode::BAD_REQUEST, Some("invalid_request"))
    );

    let basic = client()
        .post(format!("{}/oauth/token", sb.base_url()))
        .basic_auth(CLIENT_ID, Some(CLIENT_SECRET))
        .form(&form)
        .send()
        .await
        .unwrap();
    assert_eq!(basic.status(), StatusCode::OK);
}

#[tokio::test]
async fn id_token_verifies_with_the_published_jwks_and_carries_the_mes_claims() {
    let sb = start().await;
    let discovery: Value = client()
        .get(format!(
            "{}/.well-known/openid-configuration",
            sb.base_url()
        ))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        discovery["code_challenge_methods_supported"],
        serde_json::json!(["S256"])
    );
    let jwks: JwkSet = client()
        .get(discovery["jwks_uri"].as_str().unwrap())
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();

    let tokens = pair(&sb, "patient-2", true, true).await;
    let header = jsonwebtoken::decode_header(&tokens.id_token).unwrap();
    assert_eq!(header.alg, Algorithm::ES256);
    let jwk = jwks
        .find(header.kid.as_deref().unwrap())
        .expect("kid in JWKS");
    let mut validation = Validation::new(Algorithm::ES256);
    validation.set_audience(&[CLIENT_ID]);
    validation.set_issuer(&[discovery["issuer"].as_str().unwrap()]);
    let claims = jsonwebtoken::decode::<Value>(
        &tokens.id_token,
        &DecodingKey::from_jwk(jwk).unwrap(),
        &validation,
    )
    .unwrap()
    .claims;
    assert_eq!(claims["iss"], sb.issuer());
    assert_eq!(claims["aud"], CLIENT_ID);
    assert_eq!(claims["sub"], "patient-2");
    assert_eq!(claims["idPe"], ID_PE_2);
    assert_eq!(claims["partnerOid"], PARTNER_OID);
    assert_eq!(claims["assignAuth"], PARTNER_OID);
    assert_eq!(claims["nonce"], "n-456");
    assert_eq!(
        claims["exp"].as_i64().unwrap() - claims["iat"].as_i64().unwrap(),
        3600
    );
}

#[tokio::test]
async fn refresh_rotates_and_replaying_a_rotated_token_revokes_the_family() {
    let sb = start().await;
    let first = pair(&sb, "patient-1", true, true).await;
    let rotated = refresh(&sb, &first.refresh).await;
    assert_eq!(rotated.status(), StatusCode::OK);
    let second = Tokens::from_json(rotated.json().await.unwrap());
    assert_ne!(second.refresh, first.refresh);
    assert_ne!(second.access, first.access);
    assert_eq!(
        post_bundle(&sb, &second, &weight_bundle(ID_PE_1))
            .await
            .status(),
        StatusCode::OK
    );

    // The old refresh token is dead, and replaying it kills the whole family.
    let (status, body) = error_of(refresh(&sb, &first.refresh).await).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (StatusCode::BAD_REQUEST, Some("invalid_grant"))
    );
    assert!(
        body["error_description"]
            .as_str()
            .unwrap()
            .contains("family")
    );
    assert_eq!(
        refresh(&sb, &second.refresh).await.status(),
        StatusCode::BAD_REQUEST
    );
    assert_eq!(
        post_bundle(&sb, &second, &weight_bundle(ID_PE_1))
            .await
            .status(),
        StatusCode::UNAUTHORIZED
    );
    // Another pairing is untouched.
    let other = pair(&sb, "patient-2", true, true).await;
    assert_eq!(refresh(&sb, &other.refresh).await.status(), StatusCode::OK);
}

#[tokio::test]
async fn revoking_the_refresh_token_ends_the_pairing() {
    let sb = start().await;
    let tokens = pair(&sb, "patient-1", true, true).await;
    let revoke = |token: String| {
        let url = format!("{}/oauth/revoke", sb.base_url());
        async move {
            client()
                .post(url)
                .basic_auth(CLIENT_ID, Some(CLIENT_SECRET))
                .form(&[
                    ("token", token.as_str()),
                    ("token_type_hint", "refresh_token"),
                ])
                .send()
                .await
                .unwrap()
        }
    };
    assert_eq!(
        revoke(tokens.refresh.clone()).await.status(),
        StatusCode::OK
    );
    assert_eq!(
        post_bundle(&sb, &tokens, &weight_bundle(ID_PE_1))
            .await
            .status(),
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        refresh(&sb, &tokens.refresh).await.status(),
        StatusCode::BAD_REQUEST
    );
    // Unknown tokens are answered 200 too (RFC 7009).
    assert_eq!(
        revoke("no-such-token".into()).await.status(),
        StatusCode::OK
    );
}

#[tokio::test]
async fn revoking_an_access_token_leaves_the_refresh_token_usable() {
    let sb = start().await;
    let tokens = pair(&sb, "patient-1", true, true).await;
    let response = client()
        .post(format!("{}/oauth/revoke", sb.base_url()))
        .form(&[
            ("token", tokens.access.as_str()),
            ("client_id", CLIENT_ID),
            ("client_secret", CLIENT_SECRET),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(
        post_bundle(&sb, &tokens, &weight_bundle(ID_PE_1))
            .await
            .status(),
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(refresh(&sb, &tokens.refresh).await.status(), StatusCode::OK);
}

#[tokio::test]
async fn access_token_expires_after_its_configured_lifetime() {
    let config = SandboxConfig {
        access_token_lifetime_secs: 1,
        ..SandboxConfig::default()
    };
    let sb = Sandbox::start(config).await.unwrap();
    let tokens = pair(&sb, "patient-1", true, true).await;
    assert_eq!(tokens.body["expires_in"], 1);
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let response = post_bundle(&sb, &tokens, &weight_bundle(ID_PE_1)).await;
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    assert!(
        response.headers()["www-authenticate"]
            .to_str()
            .unwrap()
            .contains("invalid_token")
    );
    let renewed = Tokens::from_json(refresh(&sb, &tokens.refresh).await.json().await.unwrap());
    assert_eq!(
        post_bundle(&sb, &renewed, &weight_bundle(ID_PE_1))
            .await
            .status(),
        StatusCode::OK
    );
}

#[tokio::test]
async fn pairing_survives_a_restart_on_the_same_database_file() {
    let dir = std::env::temp_dir().join(format!("mes-sandbox-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(&dir).unwrap();
    let config = SandboxConfig {
        database: relais_mes_sandbox::Database::File(dir.join("sandbox.sqlite")),
        ..SandboxConfig::default()
    };
    let sb = Sandbox::start(config.clone()).await.unwrap();
    let tokens = pair(&sb, "patient-1", true, true).await;
    assert_eq!(
        post_bundle(&sb, &tokens, &weight_bundle(ID_PE_1))
            .await
            .status(),
        StatusCode::OK
    );
    let addr = sb.local_addr();
    sb.shutdown().await.unwrap();

    // Same file, same address (so the same id_token issuer): pairing and data are still there.
    let sb = Sandbox::start(SandboxConfig {
        listen: addr,
        ..config
    })
    .await
    .unwrap();
    let renewed = refresh(&sb, &tokens.refresh).await;
    assert_eq!(renewed.status(), StatusCode::OK);
    let renewed = Tokens::from_json(renewed.json().await.unwrap());
    assert_eq!(
        post_bundle(
            &sb,
            &renewed,
            &weight_at(ID_PE_1, "2022-08-23T08:00:00+02:00", 70.5)
        )
        .await
        .status(),
        StatusCode::OK
    );
    let stored = admin_get(&sb, "observations").await;
    assert_eq!(stored.as_array().unwrap().len(), 2);
    sb.shutdown().await.unwrap();
    std::fs::remove_dir_all(&dir).unwrap();
}
