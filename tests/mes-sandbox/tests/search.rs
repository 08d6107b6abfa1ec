//! API Mesure reads: `GET /fhir/Observation`, modes "all" and "last", paging, `_include`.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

mod common;

use common::*;
use relais_mes_sandbox::RunningSandbox;
use reqwest::StatusCode;
use serde_json::{Value, json};

const REQUEST: &str = "Request not valid";

/// A malformed search: name, parameters added to subject and code, expected diagnostic.
type BadSearch = (
    &'static str,
    Vec<(&'static str, &'static str)>,
    &'static str,
);

/// Five weights on 1..=5 September 2022 (08:00 Paris time) with the same scale, one on
/// 20 September, and one of patient-2.
async fn seeded() -> (RunningSandbox, Tokens) {
    let sb = start().await;
    let writer = pair(&sb, "patient-1", true, true).await;
    for day in 1..=5 {
        let bundle = weight_at(
            ID_PE_1,
            &format!("2022-09-0{day}T08:00:00+02:00"),
            70.0 + f64::from(day),
        );
        assert_eq!(
            post_bundle(&sb, &writer, &bundle).await.status(),
            StatusCode::OK
        );
    }
    let late = weight_at(ID_PE_1, "2022-09-20T21:30:00+02:00", 69.5);
    assert_eq!(
        post_bundle(&sb, &writer, &late).await.status(),
        StatusCode::OK
    );
    let other = pair(&sb, "patient-2", true, true).await;
    assert_eq!(
        post_bundle(
            &sb,
            &other,
            &weight_at(ID_PE_2, "2022-09-03T08:00:00+02:00", 90.0)
        )
        .await
        .status(),
        StatusCode::OK
    );
    (sb, writer)
}

fn subject() -> String {
    format!("urn:oid:{PARTNER_OID}|{ID_PE_1}")
}

async fn json_of(response: reqwest::Response) -> Value {
    assert_eq!(response.status(), StatusCode::OK);
    response.json().await.unwrap()
}

fn link<'a>(bundle: &'a Value, relation: &str) -> Option<&'a str> {
    bundle["link"]
        .as_array()
        .unwrap()
        .iter()
        .find(|l| l["relation"] == relation)
        .and_then(|l| l["url"].as_str())
}

fn values(bundle: &Value) -> Vec<f64> {
    bundle["entry"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["search"]["mode"] == "match")
        .map(|e| e["resource"]["valueQuantity"]["value"].as_f64().unwrap())
        .collect()
}

#[tokio::test]
async fn all_mode_pages_the_matches_newest_first_with_total_and_links() {
    let (sb, tokens) = seeded().await;
    let s = subject();
    let first = json_of(
        search(
            &sb,
            &tokens,
            &[
                ("subject.identifier", s.as_str()),
                ("code", "29463-7"),
                ("date", "ge2022-09-01"),
                ("date", "le2022-09-05"),
                ("_count", "2"),
            ],
        )
        .await,
    )
    .await;
    assert_eq!(first["resourceType"], "Bundle");
    assert_eq!(first["type"], "searchset");
    assert_eq!(first["total"], 5);
    assert_eq!(values(&first), [75.0, 74.0]);
    assert!(link(&first, "self").unwrap().contains("_offset=0"));
    assert_eq!(link(&first, "previous"), None);
    let entry = &first["entry"][0];
    assert!(
        entry["fullUrl"]
            .as_str()
            .unwrap()
            .starts_with(&format!("{}/fhir/Observation/", sb.base_url()))
    );

    // Follow the links, as a client would.
    let next = link(&first, "next").unwrap().to_owned();
    assert!(
        next.contains("_offset=1") && next.contains("_count=2"),
        "{next}"
    );
    let get = |url: String| {
        let tokens = tokens.clone();
        async move {
            client()
                .get(url)
                .bearer_auth(&tokens.access)
                .header("x-id-token", &tokens.id_token)
                .send()
                .await
                .unwrap()
        }
    };
    let second = json_of(get(next).await).await;
    assert_eq!(values(&second), [73.0, 72.0]);
    assert!(link(&second, "previous").is_some());
    let third = json_of(get(link(&second, "next").unwrap().to_owned()).await).await;
    assert_eq!(values(&third), [71.0]);
    assert_eq!(link(&third, "next"), None);
    assert_eq!(third["total"], 5);
}

#[tokio::test]
async fn date_bounds_select_by_effective_instant_and_default_page_is_50() {
    let (sb, tokens) = seeded().await;
    let s = subject();
    // 2022-09-20T21:30+02:00 is 19:30Z: inside le2022-09-20 (UTC days).
    let all = json_of(
        search(
            &sb,
            &tokens,
            &[
                ("subject.identifier", s.as_str()),
                ("code", "29463-7"),
                ("date", "gt2022-09-02"),
                ("date", "le2022-09-20"),
            ],
        )
        .await,
    )
    .await;
    assert_eq!(all["total"], 4);
    assert_eq!(values(&all), [69.5, 75.0, 74.0, 73.0]);
    assert!(link(&all, "self").unwrap().contains("_count=50"));
    // lt excludes the bound's day.
    let none = json_of(
        search(
            &sb,
            &tokens,
            &[
                ("subject.identifier", s.as_str()),
                ("code", "29463-7"),
                ("date", "ge2022-09-06"),
                ("date", "lt2022-09-20"),
            ],
        )
        .await,
    )
    .await;
    assert_eq!(none["total"], 0);
    assert_eq!(none["entry"], json!([]));
}

#[tokio::test]
async fn include_returns_each_device_once() {
    let (sb, tokens) = seeded().await;
    let s = subject();
    let bundle = json_of(
        search(
            &sb,
            &tokens,
            &[
                ("subject.identifier", s.as_str()),
                ("code", "29463-7"),
                ("date", "ge2022-09-01"),
                ("date", "le2022-09-30"),
                ("_include", "Observation:device"),
            ],
        )
        .await,
    )
    .await;
    let entries = bundle["entry"].as_array().unwrap();
    let devices: Vec<&Value> = entries
        .iter()
        .filter(|e| e["search"]["mode"] == "include")
        .collect();
    assert_eq!(devices.len(), 1);
    assert_eq!(devices[0]["resource"]["resourceType"], "Device");
    assert_eq!(devices[0]["resource"]["id"], DEVICE_ID);
    assert_eq!(bundle["total"], 6, "included Devices are not counted");
    assert!(
        link(&bundle, "self")
            .unwrap()
            .contains("_include=Observation%3Adevice")
    );

    // Without _include, no Device.
    let plain = json_of(
        search(
            &sb,
            &tokens,
            &[
                ("subject.identifier", s.as_str()),
                ("code", "29463-7"),
                ("date", "ge2022-09-01"),
                ("date", "le2022-09-30"),
            ],
        )
        .await,
    )
    .await;
    assert!(
        plain["entry"]
            .as_array()
            .unwrap()
            .iter()
            .all(|e| e["search"]["mode"] == "match")
    );
}

#[tokio::test]
async fn last_mode_returns_the_most_recent_measure_of_the_patient() {
    let (sb, tokens) = seeded().await;
    for subject in [
        subject(),
        ID_PE_1.to_owned(),
        format!("{PARTNER_OID}|{ID_PE_1}"),
    ] {
        let bundle = json_of(
            search(
                &sb,
                &tokens,
                &[
                    ("subject.identifier", subject.as_str()),
                    ("code", "29463-7"),
                    ("_sort", "-date"),
                    ("_count", "1"),
                    ("_include", "Observation.device"),
                ],
            )
            .await,
        )
        .await;
        assert_eq!(values(&bundle), [69.5], "{subject}");
        assert_eq!(bundle["total"], 1);
        assert_eq!(bundle["entry"].as_array().unwrap().len(), 2);
    }
    // A code never written: empty.
    let s = subject();
    let empty = json_of(
        search(
            &sb,
            &tokens,
            &[
                ("subject.identifier", s.as_str()),
                ("code", "8302-2"),
                ("_sort", "-date"),
                ("_count", "1"),
            ],
        )
        .await,
    )
    .await;
    assert_eq!(empty["total"], 0);
}

#[tokio::test]
async fn malformed_searches_answer_400_request_not_valid() {
    let (sb, tokens) = seeded().await;
    let s = subject();
    let base = [("subject.identifier", s.as_str()), ("code", "29463-7")];
    let cases: Vec<BadSearch> = vec![
        (
            "page too big",
            vec![
                ("date", "ge2022-09-01"),
                ("date", "le2022-09-30"),
                ("_count", "101"),
            ],
            "Maximum page size allowed is 100. Actual : 101",
        ),
        (
            "modes mixed",
            vec![
                ("date", "ge2022-09-01"),
                ("date", "le2022-09-30"),
                ("_sort", "-date"),
                ("_count", "1"),
            ],
            "Paged search and search last cannot be requested concurrently",
        ),
        (
            "last with count 2",
            vec![("_sort", "-date"), ("_count", "2")],
            "Sort parameter must be equals to -date (date DESC) with _count equals to 1 to retrieve last observation",
        ),
        (
            "last ascending",
            vec![("_sort", "date"), ("_count", "1")],
            "Sort parameter must be equals to -date",
        ),
        (
            "last without count",
            vec![("_sort", "-date")],
            "Sort parameter must be equals to -date",
        ),
        (
            "one bound",
            vec![("date", "ge2022-09-01")],
            "No search mode detected",
        ),
        ("no mode", vec![], "No search mode detected"),
        (
            "date without prefix",
            vec![("date", "2022-09-01"), ("date", "le2022-09-30")],
            "Invalid date parameter",
        ),
        (
            "unknown parameter",
            vec![
                ("date", "ge2022-09-01"),
                ("date", "le2022-09-30"),
                ("_elements", "id"),
            ],
            "Unknown search parameter _elements.",
        ),
    ];
    for (name, extra, diagnostics) in cases {
        let mut query: Vec<(&str, &str)> = base.to_vec();
        query.extend(extra);
        let response = search(&sb, &tokens, &query).await;
        assert_outcome(
            response,
            StatusCode::BAD_REQUEST,
            diagnostics,
            Some(REQUEST),
            Some("invalid"),
            name,
        )
        .await;
    }
}

#[tokio::test]
async fn searching_another_patient_or_without_read_consent_is_forbidden() {
    let (sb, tokens) = seeded().await;
    let other = format!("urn:oid:{PARTNER_OID}|{ID_PE_2}");
    let response = search(
        &sb,
        &tokens,
        &[
            ("subject.identifier", other.as_str()),
            ("code", "29463-7"),
            ("_sort", "-date"),
            ("_count", "1"),
        ],
    )
    .await;
    assert_outcome(
        response,
        StatusCode::FORBIDDEN,
        "idPe requested do not match authorized idPe.",
        None,
        None,
        "other idPe",
    )
    .await;

    let writer_only = pair(&sb, "patient-1", false, true).await;
    let s = subject();
    let response = search(
        &sb,
        &writer_only,
        &[
            ("subject.identifier", s.as_str()),
            ("code", "29463-7"),
            ("_sort", "-date"),
            ("_count", "1"),
        ],
    )
    .await;
    assert_outcome(
        response,
        StatusCode::FORBIDDEN,
        "Consent not given, access refused.",
        None,
        None,
        "no read consent",
    )
    .await;
}
