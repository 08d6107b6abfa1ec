//! Fault injection, observed from the client side over real HTTP (and raw TCP for the reset).

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

mod common;

use std::time::{Duration, Instant};

use common::*;
use relais_mes_sandbox::{
    ConsentRevocation, FaultTargets, Faults, RunningSandbox, Sandbox, SandboxConfig,
};
use reqwest::StatusCode;
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// A "last" search: a cheap targeted request.
async fn last(sb: &RunningSandbox, tokens: &Tokens) -> reqwest::Response {
    let s = format!("urn:oid:{PARTNER_OID}|{ID_PE_1}");
    search(
        sb,
        tokens,
        &[
            ("subject.identifier", s.as_str()),
            ("code", "29463-7"),
            ("_sort", "-date"),
            ("_count", "1"),
        ],
    )
    .await
}

async fn set_faults(sb: &RunningSandbox, faults: Value) {
    let response = admin_post(sb, "faults", &faults).await;
    assert_eq!(response.status(), StatusCode::OK);
}

#[tokio::test]
async fn latency_is_added_to_each_targeted_request() {
    let sb = start().await;
    let tokens = pair(&sb, "patient-1", true, true).await;
    set_faults(&sb, json!({ "latency_ms": 300 })).await;
    let started = Instant::now();
    assert_eq!(last(&sb, &tokens).await.status(), StatusCode::OK);
    assert!(started.elapsed() >= Duration::from_millis(300));
    // The token endpoint is not targeted by default.
    let started = Instant::now();
    assert_eq!(refresh(&sb, &tokens.refresh).await.status(), StatusCode::OK);
    assert!(started.elapsed() < Duration::from_millis(300));
}

#[tokio::test]
async fn server_errors_follow_the_seeded_rate_reproducibly() {
    let sb = start().await;
    let tokens = pair(&sb, "patient-1", true, true).await;
    let faults = json!({ "server_error_rate": 0.5, "seed": 42, "server_error_status": 502 });
    let mut runs = Vec::new();
    for _ in 0..2 {
        set_faults(&sb, faults.clone()).await;
        let mut statuses = Vec::new();
        for _ in 0..16 {
            let response = last(&sb, &tokens).await;
            statuses.push(response.status().as_u16());
            if response.status() == StatusCode::BAD_GATEWAY {
                let body: Value = response.json().await.unwrap();
                assert_eq!(body["issue"][0]["code"], "transient");
            }
        }
        runs.push(statuses);
    }
    assert_eq!(runs[0], runs[1], "same seed, same sequence");
    assert!(
        runs[0].contains(&502) && runs[0].contains(&200),
        "{:?}",
        runs[0]
    );
    let log = admin_get(&sb, "requests").await;
    let injected = log
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["fault"] == "server_error")
        .count();
    assert_eq!(
        injected,
        runs.concat().iter().filter(|s| **s == 502).count()
    );
}

#[tokio::test]
async fn throttling_answers_429_with_retry_after_then_recovers() {
    let sb = start().await;
    let tokens = pair(&sb, "patient-1", true, true).await;
    set_faults(&sb, json!({ "throttle_next": 2, "retry_after_secs": 7 })).await;
    for _ in 0..2 {
        let response = post_bundle(&sb, &tokens, &weight_bundle(ID_PE_1)).await;
        assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(response.headers()["retry-after"], "7");
    }
    assert_eq!(
        post_bundle(&sb, &tokens, &weight_bundle(ID_PE_1))
            .await
            .status(),
        StatusCode::OK
    );
    assert_eq!(
        admin_get(&sb, "observations")
            .await
            .as_array()
            .unwrap()
            .len(),
        1
    );
    assert_eq!(admin_get(&sb, "faults").await["throttle_next"], 0);
}

#[tokio::test]
async fn faults_configured_at_start_apply_from_the_first_request_and_can_target_the_token_endpoint()
{
    let config = SandboxConfig {
        faults: Faults {
            throttle_next: 1,
            targets: FaultTargets {
                fhir: false,
                oauth_token: true,
            },
            ..Faults::default()
        },
        ..SandboxConfig::default()
    };
    let sb = Sandbox::start(config).await.unwrap();
    let (code, verifier) = code_for(&sb, "patient-1", true, true).await;
    let throttled = exchange(&sb, &code, &verifier).await;
    assert_eq!(throttled.status(), StatusCode::TOO_MANY_REQUESTS);
    // The throttled request never reached the handler: the code is still usable.
    assert_eq!(
        exchange(&sb, &code, &verifier).await.status(),
        StatusCode::OK
    );
}

#[tokio::test]
async fn tokens_can_be_made_to_expire_early_or_now() {
    let sb = start().await;
    let tokens = pair(&sb, "patient-1", true, true).await;
    // Expired now, through the admin API: the refresh token still works.
    let response = admin_post(&sb, "tokens/expire", &json!({ "id_pe": ID_PE_1 })).await;
    assert_eq!(response.json::<Value>().await.unwrap()["expired"], 1);
    assert_eq!(last(&sb, &tokens).await.status(), StatusCode::UNAUTHORIZED);
    let renewed = Tokens::from_json(refresh(&sb, &tokens.refresh).await.json().await.unwrap());
    assert_eq!(last(&sb, &renewed).await.status(), StatusCode::OK);

    // Access tokens older than one second are refused, whatever their announced lifetime.
    set_faults(&sb, json!({ "access_token_max_age_secs": 1 })).await;
    tokio::time::sleep(Duration::from_millis(1100)).await;
    assert_eq!(last(&sb, &renewed).await.status(), StatusCode::UNAUTHORIZED);

    // Refresh tokens too, on request.
    let response = admin_post(&sb, "tokens/expire", &json!({ "include_refresh": true })).await;
    assert!(
        response.json::<Value>().await.unwrap()["expired"]
            .as_u64()
            .unwrap()
            >= 1
    );
    let refused = refresh(&sb, &renewed.refresh).await;
    assert_eq!(refused.status(), StatusCode::BAD_REQUEST);
    assert_eq!(
        refused.json::<Value>().await.unwrap()["error"],
        "invalid_grant"
    );
}

#[tokio::test]
async fn withdrawn_consent_gives_403_for_that_user_only() {
    let sb = start().await;
    let first = pair(&sb, "patient-1", true, true).await;
    let second = pair(&sb, "patient-2", true, true).await;
    sb.set_faults(Faults {
        consent_revoked: vec![ConsentRevocation {
            id_pe: ID_PE_1.into(),
            read: false,
            write: true,
        }],
        ..Faults::default()
    })
    .unwrap();
    let refused = post_bundle(&sb, &first, &weight_bundle(ID_PE_1)).await;
    assert_outcome(
        refused,
        StatusCode::FORBIDDEN,
        "Consent not given, access refused.",
        None,
        None,
        "write",
    )
    .await;
    assert_eq!(
        last(&sb, &first).await.status(),
        StatusCode::OK,
        "reading is still consented"
    );
    assert_eq!(
        post_bundle(&sb, &second, &weight_bundle(ID_PE_2))
            .await
            .status(),
        StatusCode::OK
    );
    sb.set_faults(Faults::default()).unwrap();
    assert_eq!(
        post_bundle(&sb, &first, &weight_bundle(ID_PE_1))
            .await
            .status(),
        StatusCode::OK
    );
}

#[tokio::test]
async fn connection_reset_cuts_the_response_after_the_write_was_committed() {
    let sb = start().await;
    let tokens = pair(&sb, "patient-1", true, true).await;
    set_faults(&sb, json!({ "reset_next": 1 })).await;

    let response = post_bundle(&sb, &tokens, &weight_bundle(ID_PE_1)).await;
    assert_eq!(response.status(), StatusCode::OK, "the head arrives");
    let body = response.bytes().await;
    assert!(body.is_err(), "the body must not complete: {body:?}");

    // The write itself was committed: a client that retries must deduplicate.
    assert_eq!(
        admin_get(&sb, "observations")
            .await
            .as_array()
            .unwrap()
            .len(),
        1
    );
    let log = admin_get(&sb, "requests").await;
    assert!(
        log.as_array()
            .unwrap()
            .iter()
            .any(|r| r["fault"] == "connection_reset")
    );
    // The next request is served normally.
    assert_eq!(last(&sb, &tokens).await.status(), StatusCode::OK);
}

#[tokio::test]
async fn connection_reset_is_a_tcp_reset_after_a_partial_body() {
    let sb = start().await;
    let tokens = pair(&sb, "patient-1", true, true).await;
    set_faults(&sb, json!({ "reset_next": 1 })).await;
    let s = format!("urn:oid%3A{PARTNER_OID}%7C{ID_PE_1}");
    let request = format!(
        "GET /fhir/Observation?subject.identifier={s}&code=29463-7&_sort=-date&_count=1 HTTP/1.1\r\n\
         Host: {}\r\nAuthorization: Bearer {}\r\nX-Id-Token: {}\r\nConnection: keep-alive\r\n\r\n",
        sb.local_addr(),
        tokens.access,
        tokens.id_token
    );
    let mut stream = tokio::net::TcpStream::connect(sb.local_addr())
        .await
        .unwrap();
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut received = Vec::new();
    let mut buf = [0u8; 4096];
    let end = loop {
        match tokio::time::timeout(Duration::from_secs(5), stream.read(&mut buf)).await {
            Ok(Ok(0)) => break Ok(()),
            Ok(Ok(n)) => received.extend_from_slice(&buf[..n]),
            Ok(Err(e)) => break Err(e),
            Err(_) => panic!("the connection was neither completed nor reset"),
        }
    };
    let text = String::from_utf8_lossy(&received);
    assert!(text.starts_with("HTTP/1.1 200 OK"), "{text}");
    let (head, body) = text.split_once("\r\n\r\n").unwrap();
    let length: usize = head
        .lines()
        .find_map(|l| l.strip_prefix("content-length: "))
        .unwrap()
        .parse()
        .unwrap();
    assert!(
        !body.is_empty() && body.len() < length,
        "partial body: {} of {length}",
        body.len()
    );
    assert_eq!(end.unwrap_err().kind(), std::io::ErrorKind::ConnectionReset);
}

#[tokio::test]
async fn invalid_faults_are_refused() {
    let sb = start().await;
    for faults in [
        json!({ "server_error_rate": 2.0 }),
        json!({ "server_error_status": 404 }),
        json!({ "nonsense": 1 }),
    ] {
        let response = admin_post(&sb, "faults", &faults).await;
        assert_eq!(response.status(), StatusCode::BAD_REQUEST, "{faults}");
    }
    assert!(
        sb.set_faults(Faults {
            server_error_rate: -0.1,
            ..Faults::default()
        })
        .is_err()
    );
}
