//! Pairing with MES through the sandbox's real HTTP endpoints: the authorization code flow with
//! PKCE, the verified id_token, refresh rotation, revocation, and the loopback redirect of
//! `link-mes` end to end.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

mod mes_common;

use std::time::Duration;

use jiff::{SignedDuration, Timestamp};
use mes_common::{World, query};
use relais::mes::{MesConfig, PairingClient, PairingError, RedirectError, RedirectListener};

#[tokio::test]
async fn pairing_gives_tokens_and_the_verified_pairing_facts() {
    let world = World::start().await;
    let before = Timestamp::now();
    let tokens = world.pair("patient-1").await;
    assert_eq!(tokens.id_pe(), "idpe-patient-1");
    assert_eq!(tokens.assigning_authority(), "2.999.42.1");
    // The sandbox's access tokens live 3600 s.
    let lifetime = tokens.access_expires_at().duration_since(before);
    assert!(
        lifetime > SignedDuration::from_secs(3590) && lifetime <= SignedDuration::from_secs(3601),
        "{lifetime:?}"
    );
    assert!(!tokens.needs_refresh(Timestamp::now(), SignedDuration::from_mins(5)));
    assert!(tokens.needs_refresh(
        Timestamp::now() + SignedDuration::from_secs(3600),
        SignedDuration::ZERO
    ));
    let shown = format!("{tokens:?}");
    for secret in [
        tokens.access_token(),
        tokens.refresh_token(),
        tokens.id_token(),
    ] {
        assert!(!shown.contains(secret));
    }
    let subject = tokens.subject().unwrap();
    assert_eq!(subject.id_pe, "idpe-patient-1");
}

#[tokio::test]
async fn a_code_is_spent_once_and_needs_its_verifier() {
    let world = World::start().await;
    // The code of one request with the verifier of another: PKCE refuses it.
    let first = world.pairing.start();
    let second = world.pairing.start();
    let location = world.authorize(&first, "patient-1", true, true).await;
    let code = query(&location)["code"].clone();
    let err = world.pairing.finish(&code, second).await.unwrap_err();
    assert!(err.needs_relink(), "{err:?}");
    // A failed exchange spends the code.
    let err = world.pairing.finish(&code, first).await.unwrap_err();
    assert!(matches!(&err, PairingError::Refused { error, .. } if error == "invalid_grant"));
}

#[tokio::test]
async fn id_token_from_another_issuer_is_refused() {
    let world = World::start().await;
    let mut config = world.config.clone();
    config.issuer = Some("https://not-the-sandbox.example".into());
    let pairing = PairingClient::new(&config).unwrap();
    let pending = pairing.start();
    let location = world.authorize(&pending, "patient-1", true, true).await;
    let err = pairing
        .finish(&query(&location)["code"], pending)
        .await
        .unwrap_err();
    assert!(matches!(err, PairingError::IdToken(_)), "{err:?}");
}

#[tokio::test]
async fn refresh_rotates_and_the_old_refresh_token_is_refused() {
    let world = World::start().await;
    let first = world.pair("patient-2").await;
    let second = world.pairing.refresh(&first).await.unwrap();
    assert_ne!(second.refresh_token(), first.refresh_token());
    assert_ne!(second.access_token(), first.access_token());
    assert_ne!(second.id_token(), first.id_token());
    assert_eq!(second.id_pe(), "idpe-patient-2");
    // The rotated-away token no longer works (and its replay revokes the whole pairing).
    let err = world.pairing.refresh(&first).await.unwrap_err();
    assert!(err.needs_relink(), "{err:?}");
    let err = world.pairing.refresh(&second).await.unwrap_err();
    assert!(
        err.needs_relink(),
        "reuse detection revoked the family: {err:?}"
    );
}

#[tokio::test]
async fn revoke_ends_the_pairing() {
    let world = World::start().await;
    let tokens = world.pair("patient-1").await;
    world.pairing.revoke(&tokens).await.unwrap();
    let err = world.pairing.refresh(&tokens).await.unwrap_err();
    assert!(err.needs_relink(), "{err:?}");
    // Revoking again is not an error (RFC 7009: unknown tokens are answered 200).
    world.pairing.revoke(&tokens).await.unwrap();
}

#[tokio::test]
async fn token_endpoint_throttled_or_down_is_transient() {
    let world = World::start().await;
    let tokens = world.pair("patient-1").await;
    world
        .sandbox
        .set_faults(relais_mes_sandbox::Faults {
            throttle_next: 1,
            retry_after_secs: 12,
            targets: relais_mes_sandbox::FaultTargets {
                fhir: false,
                oauth_token: true,
            },
            ..Default::default()
        })
        .unwrap();
    let err = world.pairing.refresh(&tokens).await.unwrap_err();
    assert!(err.is_transient() && !err.needs_relink(), "{err:?}");
    assert!(matches!(
        err,
        PairingError::Unavailable {
            status: Some(429),
            retry_after: Some(d),
            ..
        } if d == Duration::from_secs(12)
    ));
    // The throttled request was not handled: the refresh token still works.
    world.pairing.refresh(&tokens).await.unwrap();

    let unreachable = MesConfig::for_base_url("http://127.0.0.1:1");
    let err = PairingClient::new(&unreachable)
        .unwrap()
        .refresh(&tokens)
        .await
        .unwrap_err();
    assert!(err.is_transient(), "{err:?}");
}

#[tokio::test]
async fn link_through_the_loopback_redirect() {
    let world = World::start().await;
    let listener = RedirectListener::bind(&world.config.redirect_url().unwrap())
        .await
        .unwrap();
    let redirect_uri = listener.redirect_uri().clone();
    assert_ne!(redirect_uri.port(), None, "an ephemeral port was taken");
    assert_eq!(redirect_uri.path(), "/mes/callback");
    let pending = world.pairing.start_at(&redirect_uri);
    let state = pending.state().to_owned();
    let waiting = tokio::spawn(async move {
        listener
            .wait_for_code(&state, Duration::from_secs(20))
            .await
    });

    let location = world.authorize(&pending, "patient-1", true, true).await;
    assert_eq!(location.port(), redirect_uri.port());

    // A forged or stale redirect: refused, and the wait goes on.
    let mut forged = location.clone();
    forged.set_query(Some("code=stolen&state=not-the-state"));
    let answer = world.http.get(forged).send().await.unwrap();
    assert_eq!(answer.status(), 400);
    assert!(answer.text().await.unwrap().contains("ne correspond pas"));

    // The browser follows the genuine redirect.
    let answer = world.http.get(location.clone()).send().await.unwrap();
    assert_eq!(answer.status(), 200);
    assert_eq!(answer.headers()["content-type"], "text/html; charset=utf-8");
    assert!(
        answer
            .text()
            .await
            .unwrap()
            .contains("Compte Mon espace santé relié. Vous pouvez fermer cette page.")
    );
    let code = waiting.await.unwrap().unwrap();
    assert_eq!(code, query(&location)["code"]);
    let tokens = world.pairing.finish(&code, pending).await.unwrap();
    assert_eq!(tokens.id_pe(), "idpe-patient-1");
}

#[tokio::test]
async fn consent_refused_at_the_redirect() {
    let world = World::start().await;
    let listener = RedirectListener::bind(&world.config.redirect_url().unwrap())
        .await
        .unwrap();
    let pending = world.pairing.start_at(listener.redirect_uri());
    let state = pending.state().to_owned();
    let waiting = tokio::spawn(async move {
        listener
            .wait_for_code(&state, Duration::from_secs(20))
            .await
    });
    let location = world.authorize(&pending, "patient-1", false, false).await;
    assert_eq!(query(&location)["error"], "access_denied");
    let answer = world.http.get(location).send().await.unwrap();
    assert_eq!(answer.status(), 200);
    assert!(answer.text().await.unwrap().contains("refusé"));
    assert_eq!(waiting.await.unwrap(), Err(RedirectError::ConsentRefused));
}

#[tokio::test]
async fn the_redirect_listener_times_out_and_refuses_other_hosts() {
    let listener = RedirectListener::bind(&"http://127.0.0.1/cb".parse().unwrap())
        .await
        .unwrap();
    assert_eq!(
        listener.wait_for_code("s", Duration::from_millis(50)).await,
        Err(RedirectError::TimedOut(Duration::from_millis(50)))
    );
    for uri in [
        "http://192.0.2.1/cb",
        "https://127.0.0.1/cb",
        "http://example.com/cb",
    ] {
        assert!(matches!(
            RedirectListener::bind(&uri.parse().unwrap()).await,
            Err(RedirectError::NotLoopback(_))
        ));
    }
}
