//! Uploading transaction Bundles to the sandbox's API Mesures, and how every kind of answer is
//! classified for the upload loop: accepted, refused for good (422), consent withdrawn (403),
//! configuration conflict (409), expired token then refresh (401), throttled with Retry-After
//! (429), server errors (5xx), timeouts and connection resets.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

mod mes_common;

use std::time::Duration;

use mes_common::{World, weight_bundle};
use relais::mes::{Tokens, UploadError, Uploader};
use relais_mes_sandbox::{ConsentRevocation, Faults};
use serde_json::json;

fn uploader(world: &World) -> Uploader {
    Uploader::new(&world.config).unwrap()
}

#[tokio::test]
async fn a_bundle_is_accepted_with_its_created_ids() {
    let world = World::start().await;
    let tokens = world.pair("patient-1").await;
    let sent = uploader(&world)
        .send(&tokens, &weight_bundle(&tokens))
        .await
        .unwrap();
    let stored = world.stored("idpe-patient-1").await;
    assert_eq!(stored.len(), 1);
    assert_eq!(sent.observation_id(), stored[0]["id"].as_str());
    let device = sent
        .created
        .iter()
        .find(|c| c.resource_type == "Device")
        .unwrap();
    assert_eq!(device.status, "201 Created");
    // The same Device again: conditional create finds it.
    let again = uploader(&world)
        .send(&tokens, &weight_bundle(&tokens))
        .await
        .unwrap();
    let device_again = again
        .created
        .iter()
        .find(|c| c.resource_type == "Device")
        .unwrap();
    assert_eq!(device_again.id, device.id);
    assert!(device_again.status.starts_with("200"), "{device_again:?}");
}

#[tokio::test]
async fn a_refused_bundle_is_rejected_with_its_operation_outcome() {
    let world = World::start().await;
    let tokens = world.pair("patient-1").await;
    let mut bundle = weight_bundle(&tokens);
    bundle["entry"][0]["resource"]["valueQuantity"]["code"] = json!("[lb_av]");
    bundle["entry"][0]["resource"]["valueQuantity"]["unit"] = json!("lb");
    match uploader(&world).send(&tokens, &bundle).await {
        Err(UploadError::Rejected(outcome)) => {
            assert!(!outcome.issue.is_empty());
            assert_eq!(outcome.issue[0].severity, "error");
            assert!(outcome.diagnostics().next().is_some(), "{outcome:?}");
        }
        other => panic!("{other:?}"),
    }
    assert!(world.stored("idpe-patient-1").await.is_empty());
}

#[tokio::test]
async fn withdrawn_consent_is_403() {
    let world = World::start().await;
    let tokens = world.pair("patient-1").await;
    world
        .sandbox
        .set_faults(Faults {
            consent_revoked: vec![ConsentRevocation {
                id_pe: "idpe-patient-1".into(),
                read: false,
                write: true,
            }],
            ..Default::default()
        })
        .unwrap();
    assert_eq!(
        uploader(&world)
            .send(&tokens, &weight_bundle(&tokens))
            .await
            .unwrap_err(),
        UploadError::ConsentWithdrawn
    );
}

#[tokio::test]
async fn an_expired_access_token_needs_a_refresh_then_goes_through() {
    let world = World::start().await;
    let tokens = world.pair("patient-1").await;
    let expired = world
        .admin_post(
            "/admin/tokens/expire",
            &json!({ "id_pe": "idpe-patient-1" }),
        )
        .await;
    assert_eq!(expired["expired"], 1);
    let up = uploader(&world);
    let bundle = weight_bundle(&tokens);
    assert_eq!(
        up.send(&tokens, &bundle).await.unwrap_err(),
        UploadError::NeedsRefresh
    );
    let tokens = world.pairing.refresh(&tokens).await.unwrap();
    up.send(&tokens, &bundle).await.unwrap();
    assert_eq!(world.stored("idpe-patient-1").await.len(), 1);
}

/// The same tokens with another id_token.
fn with_id_token(tokens: &Tokens, id_token: &str) -> Tokens {
    let mut v = serde_json::to_value(tokens).unwrap();
    v["id_token"] = json!(id_token);
    serde_json::from_value(v).unwrap()
}

#[tokio::test]
async fn id_token_problems_are_a_refresh_or_a_conflict() {
    let world = World::start().await;
    let one = world.pair("patient-1").await;
    let two = world.pair("patient-2").await;
    let up = uploader(&world);
    // The id_token of another pairing: 400 invalid JWT, a new id_token is needed.
    let mixed = with_id_token(&one, two.id_token());
    assert_eq!(
        up.send(&mixed, &weight_bundle(&one)).await.unwrap_err(),
        UploadError::NeedsRefresh
    );
    // A validly signed id_token with another partner OID: 409, a configuration error.
    let now = jiff::Timestamp::now().as_second();
    let minted = world
        .admin_post(
            "/admin/id-token",
            &json!({
                "iss": world.sandbox.issuer(), "aud": "relais-hub", "sub": "patient-1",
                "iat": now, "exp": now + 600, "idPe": "idpe-patient-1",
                "partnerOid": "2.999.1.1", "assignAuth": "2.999.42.1"
            }),
        )
        .await;
    let foreign = with_id_token(&one, minted["id_token"].as_str().unwrap());
    match up.send(&foreign, &weight_bundle(&one)).await {
        Err(UploadError::Conflict(outcome)) => {
            assert!(
                outcome.diagnostics().any(|d| d.contains("OID conflict")),
                "{outcome:?}"
            );
        }
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn throttling_gives_retry_with_its_retry_after() {
    let world = World::start().await;
    let tokens = world.pair("patient-1").await;
    world
        .sandbox
        .set_faults(Faults {
            throttle_next: 1,
            retry_after_secs: 7,
            ..Default::default()
        })
        .unwrap();
    let up = uploader(&world);
    let bundle = weight_bundle(&tokens);
    assert_eq!(
        up.send(&tokens, &bundle).await.unwrap_err(),
        UploadError::Retry {
            after: Some(Duration::from_secs(7))
        }
    );
    // The throttled request was not handled; the next one is.
    up.send(&tokens, &bundle).await.unwrap();
    assert_eq!(world.stored("idpe-patient-1").await.len(), 1);
}

#[tokio::test]
async fn server_errors_are_retried() {
    let world = World::start().await;
    let tokens = world.pair("patient-1").await;
    for status in [500, 503] {
        world
            .sandbox
            .set_faults(Faults {
                server_error_rate: 1.0,
                server_error_status: status,
                ..Default::default()
            })
            .unwrap();
        assert_eq!(
            uploader(&world)
                .send(&tokens, &weight_bundle(&tokens))
                .await
                .unwrap_err(),
            UploadError::Retry { after: None }
        );
    }
    assert!(world.stored("idpe-patient-1").await.is_empty());
}

#[tokio::test]
async fn a_reset_connection_is_retried_though_the_write_was_committed() {
    let world = World::start().await;
    let tokens = world.pair("patient-1").await;
    world
        .sandbox
        .set_faults(Faults {
            reset_next: 1,
            ..Default::default()
        })
        .unwrap();
    assert_eq!(
        uploader(&world)
            .send(&tokens, &weight_bundle(&tokens))
            .await
            .unwrap_err(),
        UploadError::Retry { after: None }
    );
    // MES stored it all the same: a resend duplicates the Observation unless the upload loop
    // checks first (the ledger, or a "last" search).
    assert_eq!(world.stored("idpe-patient-1").await.len(), 1);
}

#[tokio::test]
async fn a_timeout_is_retried() {
    let world = World::start().await;
    let tokens = world.pair("patient-1").await;
    world
        .sandbox
        .set_faults(Faults {
            latency_ms: 2_500,
            ..Default::default()
        })
        .unwrap();
    let mut config = world.config.clone();
    config.request_timeout_secs = 1;
    assert_eq!(
        Uploader::new(&config)
            .unwrap()
            .send(&tokens, &weight_bundle(&tokens))
            .await
            .unwrap_err(),
        UploadError::Retry { after: None }
    );
}
