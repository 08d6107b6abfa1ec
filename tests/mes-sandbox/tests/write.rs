//! API Mesure writes: `POST /fhir` with a transaction Bundle, success and every error rule.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

mod common;

use common::*;
use reqwest::StatusCode;
use serde_json::{Value, json};

const BUNDLE: &str = "Bundle not valid.";
const LINK: &str = "Observation and Device link not valid.";
const OBS: &str = "Observation resource not valid.";
const DEV: &str = "Device resource not valid.";

/// A mutation of the published weight Bundle and the issue it must produce.
struct Case {
    name: &'static str,
    mutate: fn(&mut Value),
    status: StatusCode,
    diagnostics: &'static str,
    message: Option<&'static str>,
    code: Option<&'static str>,
}

async fn run_cases(cases: &[Case]) {
    let sb = start().await;
    let tokens = pair(&sb, "patient-1", true, true).await;
    for case in cases {
        let mut bundle = weight_bundle(ID_PE_1);
        (case.mutate)(&mut bundle);
        let response = post_bundle(&sb, &tokens, &bundle).await;
        assert_outcome(
            response,
            case.status,
            case.diagnostics,
            case.message,
            case.code,
            case.name,
        )
        .await;
    }
    // Nothing refused was stored.
    assert_eq!(admin_get(&sb, "observations").await, json!([]));
}

async fn accepted(
    sb: &relais_mes_sandbox::RunningSandbox,
    tokens: &Tokens,
    bundle: &Value,
    case: &str,
) -> Value {
    let response = post_bundle(sb, tokens, bundle).await;
    let status = response.status();
    let body: Value = response.json().await.unwrap();
    assert_eq!(status, StatusCode::OK, "{case}: {body}");
    assert_eq!(body["type"], "transaction-response", "{case}");
    body
}

#[tokio::test]
async fn published_weight_example_is_accepted_and_stored_as_sent() {
    let sb = start().await;
    let tokens = pair(&sb, "patient-1", true, true).await;
    let response = post_bundle(&sb, &tokens, &weight_bundle(ID_PE_1)).await;
    assert_eq!(response.status(), StatusCode::OK);
    assert!(
        response.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("application/fhir+json")
    );
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["resourceType"], "Bundle");
    assert_eq!(body["type"], "transaction-response");
    let entries = body["entry"].as_array().unwrap();
    assert_eq!(entries.len(), 2);
    assert_eq!(entries[0]["response"]["status"], "201 Created");
    let location = entries[0]["response"]["location"].as_str().unwrap();
    let observation_id = location
        .strip_prefix("Observation/")
        .expect("Observation location");
    assert!(uuid::Uuid::parse_str(observation_id).is_ok());
    assert_eq!(entries[1]["response"]["status"], "201 Created");
    assert_eq!(
        entries[1]["response"]["location"],
        format!("Device/{DEVICE_ID}")
    );

    let stored = admin_get(&sb, &format!("observations?id_pe={ID_PE_1}")).await;
    let stored = stored.as_array().unwrap();
    assert_eq!(stored.len(), 1);
    let o = &stored[0];
    assert_eq!(o["id"], observation_id);
    assert_eq!(o["code"], "29463-7");
    assert_eq!(o["effective"], "2022-08-22T01:56:16+01:00");
    assert_eq!(o["device_id"], DEVICE_ID);
    assert_eq!(o["client_id"], CLIENT_ID);
    assert_eq!(o["resource"]["id"], observation_id);
    assert_eq!(
        o["resource"]["meta"]["source"],
        format!("urn:oid:{PARTNER_OID}")
    );
    assert_eq!(o["resource"]["valueQuantity"]["value"], 71);
    assert_eq!(
        o["resource"]["device"]["reference"],
        format!("Device/{DEVICE_ID}")
    );
    let raw: Value = serde_json::from_str(o["raw_bundle"].as_str().unwrap()).unwrap();
    assert_eq!(raw, weight_bundle(ID_PE_1));

    let devices = admin_get(&sb, "devices").await;
    assert_eq!(devices.as_array().unwrap().len(), 1);
    assert_eq!(devices[0]["identifier_value"], "FE-ED-AB-AA-DE-AD-77-C5");
    assert_eq!(devices[0]["resource"]["manufacturer"], "OMRONHEALTHCARE");
}

#[tokio::test]
async fn known_device_is_answered_200_by_the_conditional_create() {
    let sb = start().await;
    let tokens = pair(&sb, "patient-1", true, true).await;
    accepted(&sb, &tokens, &weight_bundle(ID_PE_1), "first").await;
    // Same identifier, another uuid in the Bundle: the stored Device is reused.
    let mut again = weight_at(ID_PE_1, "2022-08-23T07:00:00+02:00", 70.2);
    let other = "0f0e0d0c-0b0a-4909-8807-060504030201";
    device(&mut again)["id"] = json!(other);
    observation(&mut again)["device"]["reference"] = json!(format!("Device/{other}"));
    let body = accepted(&sb, &tokens, &again, "second").await;
    assert_eq!(body["entry"][1]["response"]["status"], "200 OK");
    assert_eq!(
        body["entry"][1]["response"]["location"],
        format!("Device/{DEVICE_ID}")
    );
    let stored = admin_get(&sb, "observations").await;
    assert_eq!(stored[1]["device_id"], DEVICE_ID);
    assert_eq!(
        stored[1]["resource"]["device"]["reference"],
        format!("Device/{DEVICE_ID}")
    );
    assert_eq!(admin_get(&sb, "devices").await.as_array().unwrap().len(), 1);
}

#[tokio::test]
async fn measure_without_device_is_accepted() {
    let sb = start().await;
    let tokens = pair(&sb, "patient-1", true, true).await;
    let mut bundle = weight_bundle(ID_PE_1);
    bundle["entry"].as_array_mut().unwrap().pop();
    observation(&mut bundle)
        .as_object_mut()
        .unwrap()
        .remove("device");
    let body = accepted(&sb, &tokens, &bundle, "no device").await;
    assert_eq!(body["entry"].as_array().unwrap().len(), 1);
    assert_eq!(admin_get(&sb, "devices").await, json!([]));
}

#[tokio::test]
async fn every_profile_flavour_of_the_measure_and_a_sub_oid_source_are_accepted() {
    let sb = start().await;
    let tokens = pair(&sb, "patient-1", true, true).await;
    for profile in [
        "https://fhir.monespacesante.fr/ref/mesure/StructureDefinition/mes-observation-bodyweight",
        "http://esante.gouv.fr/ci-sis/fhir/StructureDefinition/ENS_FrObservationBodyWeight",
        "https://interop.esante.gouv.fr/ig/fhir/mesures/StructureDefinition/mesures-fr-observation-body-weight|3.1.0",
    ] {
        let mut bundle = weight_bundle(ID_PE_1);
        observation(&mut bundle)["meta"] = json!({
            "profile": [profile],
            "source": format!("urn:oid:{PARTNER_OID}.7")
        });
        accepted(&sb, &tokens, &bundle, profile).await;
    }
}

#[tokio::test]
async fn blood_pressure_temperature_and_glucose_measures_are_accepted() {
    let sb = start().await;
    let tokens = pair(&sb, "patient-1", true, true).await;
    let temperature = json!({
        "resourceType": "Observation",
        "meta": { "profile": [format!("{ANS}mesures-fr-observation-body-temperature")] },
        "code": { "coding": [{ "system": "http://loinc.org", "code": "8310-5" }] },
        "bodySite": { "coding": [{ "system": "http://snomed.info/sct", "code": "74262004" }] },
        "valueQuantity": { "value": 37.2, "unit": "°C", "system": "http://unitsofmeasure.org", "code": "Cel" }
    });
    let cases = [
        ("blood pressure", blood_pressure()),
        ("temperature", temperature),
        (
            "blood glucose",
            glucose(NOS_LOINC, "2345-7", "mg/dL", vec![moment_extension()]),
        ),
        ("HbA1c", glucose(NOS_LOINC, "4548-4", "%", vec![])),
        (
            "interstitial glucose",
            glucose(
                NOS_TAASIP,
                "MED-969",
                "mg/dL",
                vec![number_of_days_extension()],
            ),
        ),
        (
            "IGG",
            glucose(NOS_TAASIP, "MED-972", "%", vec![number_of_days_extension()]),
        ),
    ];
    for (name, resource) in cases {
        accepted(
            &sb,
            &tokens,
            &bundle_with_observation(ID_PE_1, resource),
            name,
        )
        .await;
    }
    let codes: Vec<String> = admin_get(&sb, "observations")
        .await
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o["code"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(
        codes,
        [
            "85354-9", "8310-5", "2345-7", "4548-4", "MED-969", "MED-972"
        ]
    );
}

#[tokio::test]
async fn access_errors_follow_the_mes_error_table() {
    let sb = start().await;
    let tokens = pair(&sb, "patient-1", true, true).await;
    let other = pair(&sb, "patient-2", true, true).await;
    let body = weight_bundle(ID_PE_1).to_string();

    let missing = post_raw(&sb, None, Some(&tokens.id_token), body.clone()).await;
    assert_eq!(
        missing.headers()["www-authenticate"],
        "Bearer realm=\"mes-sandbox\""
    );
    assert_outcome(
        missing,
        StatusCode::UNAUTHORIZED,
        "access_token",
        None,
        Some("login"),
        "no bearer",
    )
    .await;
    let bad = post_raw(&sb, Some("forged"), Some(&tokens.id_token), body.clone()).await;
    assert_outcome(
        bad,
        StatusCode::UNAUTHORIZED,
        "access_token",
        None,
        None,
        "unknown bearer",
    )
    .await;

    const JWT: &str = "The ID_TOKEN value is not valid (invalid JWT)";
    let no_id = post_raw(&sb, Some(&tokens.access), None, body.clone()).await;
    assert_outcome(
        no_id,
        StatusCode::BAD_REQUEST,
        JWT,
        None,
        None,
        "no id_token",
    )
    .await;
    // Flip one character in the middle of the signature.
    let mut tampered: Vec<char> = tokens.id_token.chars().collect();
    let i = tampered.len() - 20;
    tampered[i] = if tampered[i] == 'A' { 'B' } else { 'A' };
    let tampered: String = tampered.into_iter().collect();
    let forged = post_raw(&sb, Some(&tokens.access), Some(&tampered), body.clone()).await;
    assert_outcome(
        forged,
        StatusCode::BAD_REQUEST,
        JWT,
        None,
        None,
        "tampered id_token",
    )
    .await;
    let swapped = post_raw(
        &sb,
        Some(&tokens.access),
        Some(&other.id_token),
        body.clone(),
    )
    .await;
    assert_outcome(
        swapped,
        StatusCode::BAD_REQUEST,
        JWT,
        None,
        None,
        "id_token of another pairing",
    )
    .await;

    // An id_token signed by MES but naming another partner OID: 409.
    let mut claims: Value = {
        let payload = tokens.id_token.split('.').nth(1).unwrap();
        use base64::Engine;
        let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(payload)
            .unwrap();
        serde_json::from_slice(&bytes).unwrap()
    };
    claims["partnerOid"] = json!("2.999.77");
    let minted: Value = admin_post(&sb, "id-token", &claims)
        .await
        .json()
        .await
        .unwrap();
    let conflict = post_raw(
        &sb,
        Some(&tokens.access),
        minted["id_token"].as_str(),
        body.clone(),
    )
    .await;
    assert_outcome(
        conflict,
        StatusCode::CONFLICT,
        "OID conflict between the one from id_token and the one in the system",
        None,
        Some("conflict"),
        "partner OID",
    )
    .await;

    // Writing another patient's measure: 403.
    let mut foreign = weight_bundle(ID_PE_2);
    let response = post_bundle(&sb, &tokens, &foreign).await;
    assert_outcome(
        response,
        StatusCode::FORBIDDEN,
        "idPe requested do not match authorized idPe.",
        None,
        Some("forbidden"),
        "other idPe",
    )
    .await;
    foreign = weight_bundle(ID_PE_1);
    observation(&mut foreign)["subject"]["identifier"]["system"] = json!("urn:oid:1.2.250.1.213");
    let response = post_bundle(&sb, &tokens, &foreign).await;
    assert_outcome(
        response,
        StatusCode::FORBIDDEN,
        "idPe requested do not match authorized idPe.",
        None,
        None,
        "other assigning authority",
    )
    .await;

    // Reading consent only: writing is refused.
    let reader = pair(&sb, "patient-1", true, false).await;
    let response = post_bundle(&sb, &reader, &weight_bundle(ID_PE_1)).await;
    assert_outcome(
        response,
        StatusCode::FORBIDDEN,
        "Consent not given, access refused.",
        None,
        None,
        "no write consent",
    )
    .await;

    // No Bundle.
    for (name, text) in [
        ("empty", ""),
        ("not JSON", "{oops"),
        ("not a Bundle", r#"{"resourceType":"Observation"}"#),
    ] {
        let response = post_raw(
            &sb,
            Some(&tokens.access),
            Some(&tokens.id_token),
            text.into(),
        )
        .await;
        assert_outcome(
            response,
            StatusCode::BAD_REQUEST,
            "No bundle provided.",
            None,
            None,
            name,
        )
        .await;
    }
    let response = client()
        .post(sb.fhir_base_url())
        .bearer_auth(&tokens.access)
        .header("x-id-token", &tokens.id_token)
        .header("content-type", "text/plain")
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::UNSUPPORTED_MEDIA_TYPE);
    assert_eq!(admin_get(&sb, "observations").await, json!([]));
}

#[tokio::test]
async fn bundle_rules_answer_422_bundle_not_valid() {
    run_cases(&[
        Case {
            name: "batch instead of transaction",
            mutate: |b| b["type"] = json!("batch"),
            status: StatusCode::UNPROCESSABLE_ENTITY,
            diagnostics: "Bundle type must be transaction.",
            message: Some(BUNDLE),
            code: Some("invalid"),
        },
        Case {
            name: "Patient entry",
            mutate: |b| {
                b["entry"].as_array_mut().unwrap().push(json!({
                    "resource": { "resourceType": "Patient" },
                    "request": { "method": "POST", "url": "Patient" }
                }))
            },
            status: StatusCode::UNPROCESSABLE_ENTITY,
            diagnostics: "Resource of type Patient is not acceptable with method POST.",
            message: Some(BUNDLE),
            code: Some("not-supported"),
        },
        Case {
            name: "Observation with PUT",
            mutate: |b| b["entry"][0]["request"]["method"] = json!("PUT"),
            status: StatusCode::UNPROCESSABLE_ENTITY,
            diagnostics: "Resource of type Observation is not acceptable with method PUT.",
            message: Some(BUNDLE),
            code: Some("not-supported"),
        },
        Case {
            name: "two Observations",
            mutate: |b| {
                let again = b["entry"][0].clone();
                b["entry"].as_array_mut().unwrap().push(again)
            },
            status: StatusCode::UNPROCESSABLE_ENTITY,
            diagnostics: "Bundle must contains one observation creation (POST)",
            message: Some(BUNDLE),
            code: Some("invalid"),
        },
        Case {
            name: "Device only",
            mutate: |b| {
                b["entry"].as_array_mut().unwrap().remove(0);
            },
            status: StatusCode::UNPROCESSABLE_ENTITY,
            diagnostics: "Bundle must contains one observation creation (POST)",
            message: Some(BUNDLE),
            code: None,
        },
        Case {
            name: "Device without ifNoneExist",
            mutate: |b| {
                b["entry"][1]["request"].as_object_mut().unwrap().remove("ifNoneExist");
            },
            status: StatusCode::UNPROCESSABLE_ENTITY,
            diagnostics: "Device request must have a valid IfNoneExist attribute : identifier=urn:oid:<OID>|<DEVICE ID>",
            message: Some(BUNDLE),
            code: Some("invalid"),
        },
        Case {
            name: "ifNoneExist without urn:oid",
            mutate: |b| {
                b["entry"][1]["request"]["ifNoneExist"] =
                    json!("identifier=1.2.840.10004.1.1.1.0.0.1.0.0.1.2680|FE-ED-AB-AA-DE-AD-77-C5")
            },
            status: StatusCode::UNPROCESSABLE_ENTITY,
            diagnostics: "Device request must have a valid IfNoneExist attribute",
            message: Some(BUNDLE),
            code: None,
        },
        Case {
            name: "ifNoneExist with an underscore in the identifier",
            mutate: |b| {
                b["entry"][1]["request"]["ifNoneExist"] =
                    json!("identifier=urn:oid:1.2.840.10004.1.1.1.0.0.1.0.0.1.2680|FE_ED")
            },
            status: StatusCode::UNPROCESSABLE_ENTITY,
            diagnostics: "Device request must have a valid IfNoneExist attribute",
            message: Some(BUNDLE),
            code: None,
        },
    ])
    .await;
}

#[tokio::test]
async fn link_rules_answer_422_observation_and_device_link_not_valid() {
    run_cases(&[
        Case {
            name: "no device reference",
            mutate: |b| {
                b["entry"][0]["resource"].as_object_mut().unwrap().remove("device");
            },
            status: StatusCode::UNPROCESSABLE_ENTITY,
            diagnostics: "Observation.device.reference is mandatory.",
            message: Some(LINK),
            code: Some("invalid"),
        },
        Case {
            name: "reference by fullUrl",
            mutate: |b| {
                b["entry"][0]["resource"]["device"]["reference"] =
                    json!(format!("urn:uuid:{DEVICE_ID}"))
            },
            status: StatusCode::UNPROCESSABLE_ENTITY,
            diagnostics: "Observation and device not linked by id (Observation.device.reference <-> Device.id)",
            message: Some(LINK),
            code: Some("invalid"),
        },
        Case {
            name: "Device.id not a bare uuid",
            mutate: |b| {
                b["entry"][1]["resource"]["id"] = json!("scale-1");
                b["entry"][0]["resource"]["device"]["reference"] = json!("Device/scale-1");
            },
            status: StatusCode::UNPROCESSABLE_ENTITY,
            diagnostics: "Observation and device not linked by id",
            message: Some(LINK),
            code: None,
        },
        Case {
            name: "reference to a Device not in the Bundle",
            mutate: |b| {
                b["entry"].as_array_mut().unwrap().pop();
            },
            status: StatusCode::UNPROCESSABLE_ENTITY,
            diagnostics: "Observation and device not linked by id",
            message: Some(LINK),
            code: None,
        },
        Case {
            name: "Observation without fullUrl",
            mutate: |b| {
                b["entry"][0].as_object_mut().unwrap().remove("fullUrl");
            },
            status: StatusCode::UNPROCESSABLE_ENTITY,
            diagnostics: "Bundle.entry.fullUrl is mandatory for the Observation.",
            message: Some(LINK),
            code: None,
        },
    ])
    .await;
}

#[tokio::test]
async fn observation_rules_answer_422_observation_resource_not_valid() {
    run_cases(&[
        Case {
            name: "no meta.profile",
            mutate: |b| {
                b["entry"][0]["resource"]["meta"] = json!({});
            },
            status: StatusCode::UNPROCESSABLE_ENTITY,
            diagnostics: "Observation must provide meta.profile value.",
            message: Some(OBS),
            code: Some("invalid"),
        },
        Case {
            name: "meta.source of another editor",
            mutate: |b| b["entry"][0]["resource"]["meta"]["source"] = json!("urn:oid:2.999.420"),
            status: StatusCode::UNPROCESSABLE_ENTITY,
            diagnostics: "Solution oid contains in Observation.meta.source don't belong to root editor oid (2.999.42.1).",
            message: Some(OBS),
            code: Some("value"),
        },
        Case {
            name: "no subject.identifier",
            mutate: |b| b["entry"][0]["resource"]["subject"] = json!({ "reference": "Patient/1" }),
            status: StatusCode::UNPROCESSABLE_ENTITY,
            diagnostics: "Observation.subject.identifier is mandatory.",
            message: Some(OBS),
            code: Some("invalid"),
        },
        Case {
            name: "no status",
            mutate: |b| {
                b["entry"][0]["resource"].as_object_mut().unwrap().remove("status");
            },
            status: StatusCode::UNPROCESSABLE_ENTITY,
            diagnostics: "Observation.status is mandatory.",
            message: Some(OBS),
            code: None,
        },
        Case {
            name: "category not vital-signs",
            mutate: |b| b["entry"][0]["resource"]["category"][0]["coding"][0]["code"] = json!("laboratory"),
            status: StatusCode::UNPROCESSABLE_ENTITY,
            diagnostics: "Observation.category must contain http://terminology.hl7.org/CodeSystem/observation-category#vital-signs.",
            message: Some(OBS),
            code: None,
        },
        Case {
            name: "no effectiveDateTime",
            mutate: |b| {
                b["entry"][0]["resource"].as_object_mut().unwrap().remove("effectiveDateTime");
            },
            status: StatusCode::UNPROCESSABLE_ENTITY,
            diagnostics: "Observation.effectiveDateTime is mandatory.",
            message: Some(OBS),
            code: None,
        },
        Case {
            name: "effective date without time",
            mutate: |b| b["entry"][0]["resource"]["effectiveDateTime"] = json!("2022-08-22"),
            status: StatusCode::UNPROCESSABLE_ENTITY,
            diagnostics: "Observation.effectiveDateTime must be a dateTime with seconds and a UTC offset",
            message: Some(OBS),
            code: None,
        },
        Case {
            name: "effective time without offset",
            mutate: |b| b["entry"][0]["resource"]["effectiveDateTime"] = json!("2022-08-22T01:56:16"),
            status: StatusCode::UNPROCESSABLE_ENTITY,
            diagnostics: "Observation.effectiveDateTime must be a dateTime with seconds and a UTC offset",
            message: Some(OBS),
            code: None,
        },
        Case {
            name: "no valueQuantity",
            mutate: |b| {
                b["entry"][0]["resource"].as_object_mut().unwrap().remove("valueQuantity");
            },
            status: StatusCode::UNPROCESSABLE_ENTITY,
            diagnostics: "Observation value quantity not provided.",
            message: Some(OBS),
            code: Some("value"),
        },
        Case {
            name: "valueQuantity without a value",
            mutate: |b| {
                b["entry"][0]["resource"]["valueQuantity"].as_object_mut().unwrap().remove("value");
            },
            status: StatusCode::UNPROCESSABLE_ENTITY,
            diagnostics: "Observation value quantity not provided.",
            message: Some(OBS),
            code: None,
        },
        Case {
            name: "unit not UCUM",
            mutate: |b| b["entry"][0]["resource"]["valueQuantity"]["system"] = json!("http://example.org/units"),
            status: StatusCode::UNPROCESSABLE_ENTITY,
            diagnostics: "Observation.valueQuantity.system must be http://unitsofmeasure.org.",
            message: Some(OBS),
            code: Some("value"),
        },
        Case {
            name: "weight in grams",
            mutate: |b| b["entry"][0]["resource"]["valueQuantity"]["code"] = json!("g"),
            status: StatusCode::UNPROCESSABLE_ENTITY,
            diagnostics: "Observation.valueQuantity.code must be kg.",
            message: Some(OBS),
            code: None,
        },
        Case {
            name: "height profile with a weight code",
            mutate: |b| {
                b["entry"][0]["resource"]["meta"]["profile"] =
                    json!([format!("{ANS}mesures-fr-observation-bodyheight")])
            },
            status: StatusCode::UNPROCESSABLE_ENTITY,
            diagnostics: "Observation.code must be http://loinc.org|8302-2",
            message: Some(OBS),
            code: Some("invalid"),
        },
        Case {
            name: "unknown profile",
            mutate: |b| b["entry"][0]["resource"]["meta"]["profile"] = json!(["http://example.org/weight"]),
            status: StatusCode::UNPROCESSABLE_ENTITY,
            diagnostics: "is not a Mon espace santé measure profile.",
            message: Some(OBS),
            code: None,
        },
        Case {
            name: "respiratory rate profile",
            mutate: |b| {
                b["entry"][0]["resource"]["meta"]["profile"] =
                    json!([format!("{ANS}mesures-fr-observation-resp-rate")])
            },
            status: StatusCode::UNPROCESSABLE_ENTITY,
            diagnostics: "is not accepted by Mon espace santé.",
            message: Some(OBS),
            code: Some("not-supported"),
        },
        Case {
            name: "BMI",
            mutate: |b| {
                let o = &mut b["entry"][0]["resource"];
                o["meta"]["profile"] = json!([format!("{ANS}mesures-fr-observation-bmi")]);
                o["code"]["coding"][0]["code"] = json!("39156-5");
                o["valueQuantity"]["code"] = json!("kg/m2");
            },
            status: StatusCode::UNPROCESSABLE_ENTITY,
            diagnostics: "Bmi observation cannot be created.",
            message: Some(OBS),
            code: Some("not-supported"),
        },
    ])
    .await;
}

#[tokio::test]
async fn blood_pressure_and_temperature_profile_constraints_are_enforced() {
    let sb = start().await;
    let tokens = pair(&sb, "patient-1", true, true).await;
    let cases: Vec<(&str, Value, &str, Option<&str>)> = vec![
        (
            "BP with a value[x]",
            {
                let mut o = blood_pressure();
                o["valueQuantity"] = json!({ "value": 107, "unit": "mm[Hg]", "system": "http://unitsofmeasure.org", "code": "mm[Hg]" });
                o
            },
            "Observation.value[x] is not allowed for blood pressure: use component.",
            Some("invalid"),
        ),
        (
            "BP without bodySite",
            {
                let mut o = blood_pressure();
                o.as_object_mut().unwrap().remove("bodySite");
                o
            },
            "Observation.bodySite is mandatory for blood pressure.",
            Some("incomplete"),
        ),
        (
            "BP diastolic in kPa",
            {
                let mut o = blood_pressure();
                o["component"][1]["valueQuantity"]["code"] = json!("kPa");
                o
            },
            "Observation.component(diastolic).valueQuantity.code must be mm[Hg].",
            Some("value"),
        ),
        (
            "BP without diastolic",
            {
                let mut o = blood_pressure();
                o["component"].as_array_mut().unwrap().pop();
                o
            },
            "Observation value quantity not provided.",
            Some("value"),
        ),
        (
            "BP with a mean component",
            {
                let mut o = blood_pressure();
                o["component"].as_array_mut().unwrap().push(json!({
                "code": { "coding": [{ "system": "urn:iso:std:iso:11073:10101", "code": "150023" }] },
                "valueQuantity": { "value": 76, "unit": "mm[Hg]", "system": "http://unitsofmeasure.org", "code": "mm[Hg]" }
            }));
                o
            },
            "Observation.component only allows systolic (8480-6) and diastolic (8462-4) pressures.",
            None,
        ),
        (
            "temperature without bodySite",
            json!({
                "resourceType": "Observation",
                "meta": { "profile": [format!("{ANS}mesures-fr-observation-body-temperature")] },
                "code": { "coding": [{ "system": "http://loinc.org", "code": "8310-5" }] },
                "valueQuantity": { "value": 37.2, "unit": "°C", "system": "http://unitsofmeasure.org", "code": "Cel" }
            }),
            "Observation.bodySite is mandatory for body temperature.",
            Some("incomplete"),
        ),
        (
            "temperature in Fahrenheit",
            json!({
                "resourceType": "Observation",
                "meta": { "profile": [format!("{ANS}mesures-fr-observation-body-temperature")] },
                "code": { "coding": [{ "system": "http://loinc.org", "code": "8310-5" }] },
                "bodySite": { "coding": [{ "system": "http://snomed.info/sct", "code": "74262004" }] },
                "valueQuantity": { "value": 99.1, "unit": "°F", "system": "http://unitsofmeasure.org", "code": "[degF]" }
            }),
            "Observation.valueQuantity.code must be Cel.",
            None,
        ),
        (
            "pain without the Level unit",
            json!({
                "resourceType": "Observation",
                "meta": { "profile": [format!("{ANS}mesures-observation-pain-severity")] },
                "code": { "coding": [{ "system": "http://loinc.org", "code": "72514-3" }] },
                "valueQuantity": { "value": 4, "unit": "score", "system": "http://unitsofmeasure.org", "code": "1" }
            }),
            "Observation.valueQuantity.unit must be Level.",
            None,
        ),
    ];
    for (name, resource, diagnostics, code) in cases {
        let response = post_bundle(&sb, &tokens, &bundle_with_observation(ID_PE_1, resource)).await;
        assert_outcome(
            response,
            StatusCode::UNPROCESSABLE_ENTITY,
            diagnostics,
            Some(OBS),
            code,
            name,
        )
        .await;
    }
}

#[tokio::test]
async fn glucose_matrix_of_units_and_extensions_is_enforced() {
    let sb = start().await;
    let tokens = pair(&sb, "patient-1", true, true).await;
    let cases: Vec<(&str, Value, &str, Option<&str>)> = vec![
        (
            "blood glucose coded in http://loinc.org",
            glucose(
                "http://loinc.org",
                "2345-7",
                "mg/dL",
                vec![moment_extension()],
            ),
            "Observation.code must be",
            Some("invalid"),
        ),
        (
            "blood glucose without moment",
            glucose(NOS_LOINC, "2345-7", "mg/dL", vec![]),
            "Observation.extension.moment is mandatory.",
            Some("incomplete"),
        ),
        (
            "blood glucose with number of days",
            glucose(
                NOS_LOINC,
                "2345-7",
                "mg/dL",
                vec![moment_extension(), number_of_days_extension()],
            ),
            "Observation.extension.numberOfDays cannot be added.",
            Some("invalid"),
        ),
        (
            "blood glucose in %",
            glucose(NOS_LOINC, "2345-7", "%", vec![moment_extension()]),
            "Observation.valueQuantity.code must be mg/dL.",
            Some("value"),
        ),
        (
            "HbA1c with moment",
            glucose(NOS_LOINC, "4548-4", "%", vec![moment_extension()]),
            "Observation.extension.moment cannot be added.",
            Some("invalid"),
        ),
        (
            "HbA1c in mg/dL",
            glucose(NOS_LOINC, "4548-4", "mg/dL", vec![]),
            "Observation.valueQuantity.code must be %.",
            None,
        ),
        (
            "interstitial glucose without number of days",
            glucose(NOS_TAASIP, "MED-969", "mg/dL", vec![]),
            "Observation.extension.numberOfDays is mandatory.",
            Some("incomplete"),
        ),
        (
            "IGG with moment",
            glucose(
                NOS_TAASIP,
                "MED-972",
                "%",
                vec![moment_extension(), number_of_days_extension()],
            ),
            "Observation.extension.moment cannot be added.",
            None,
        ),
        (
            "moment outside JDV J157",
            glucose(
                NOS_LOINC,
                "2345-7",
                "mg/dL",
                vec![json!({
                    "url": format!("{ANS}mesures-moment-of-measurement"),
                    "valueCodeableConcept": { "coding": [{ "system": NOS_LOINC, "code": "12345-6" }] }
                })],
            ),
            "Observation.extension.moment must be coded in JDV J157.",
            None,
        ),
    ];
    for (name, resource, diagnostics, code) in cases {
        let response = post_bundle(&sb, &tokens, &bundle_with_observation(ID_PE_1, resource)).await;
        assert_outcome(
            response,
            StatusCode::UNPROCESSABLE_ENTITY,
            diagnostics,
            Some(OBS),
            code,
            name,
        )
        .await;
    }

    // The published IG glucose example breaks the MES matrix three times.
    let published = glucose(
        NOS_LOINC,
        "4548-4",
        "mg/dL",
        vec![
            json!({ "url": format!("{ANS}mesures-moment-of-measurement"),
                "valueCodeableConcept": { "coding": [{ "system": NOS_LOINC, "code": "16915-1" }] } }),
            json!({ "url": format!("{ANS}mesures-number-of-days"),
                "valueCodeableConcept": { "coding": [{ "system": NOS_TAASIP, "code": "GEN-275" }] } }),
        ],
    );
    let response = post_bundle(&sb, &tokens, &bundle_with_observation(ID_PE_1, published)).await;
    assert_eq!(response.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["issue"].as_array().unwrap().len(), 3, "{body}");
}

#[tokio::test]
async fn device_rules_answer_422_device_resource_not_valid() {
    run_cases(&[
        Case {
            name: "no meta.profile",
            mutate: |b| {
                b["entry"][1]["resource"].as_object_mut().unwrap().remove("meta");
            },
            status: StatusCode::UNPROCESSABLE_ENTITY,
            diagnostics: "Device must provide meta.profile value.",
            message: Some(DEV),
            code: Some("invalid"),
        },
        Case {
            name: "not PhdDevice",
            mutate: |b| b["entry"][1]["resource"]["meta"]["profile"] = json!(["http://example.org/Device"]),
            status: StatusCode::UNPROCESSABLE_ENTITY,
            diagnostics: "Device.meta.profile must be http://hl7.org/fhir/uv/phd/StructureDefinition/PhdDevice.",
            message: Some(DEV),
            code: None,
        },
        Case {
            name: "no identifier",
            mutate: |b| {
                b["entry"][1]["resource"].as_object_mut().unwrap().remove("identifier");
            },
            status: StatusCode::UNPROCESSABLE_ENTITY,
            diagnostics: "Device.identifier with system and value is mandatory.",
            message: Some(DEV),
            code: None,
        },
        Case {
            name: "identifier other than ifNoneExist",
            mutate: |b| b["entry"][1]["resource"]["identifier"][0]["value"] = json!("00-11-22-33-44-55-66-77"),
            status: StatusCode::UNPROCESSABLE_ENTITY,
            diagnostics: "Device.identifier does not match the request ifNoneExist.",
            message: Some(DEV),
            code: None,
        },
        Case {
            name: "type not 65573",
            mutate: |b| b["entry"][1]["resource"]["type"]["coding"][0]["code"] = json!("528399"),
            status: StatusCode::UNPROCESSABLE_ENTITY,
            diagnostics: "Device.type must be urn:iso:std:iso:11073:10101#65573.",
            message: Some(DEV),
            code: None,
        },
        Case {
            name: "no manufacturer",
            mutate: |b| {
                b["entry"][1]["resource"].as_object_mut().unwrap().remove("manufacturer");
            },
            status: StatusCode::UNPROCESSABLE_ENTITY,
            diagnostics: "Device.manufacturer is mandatory.",
            message: Some(DEV),
            code: Some("incomplete"),
        },
        Case {
            name: "no modelNumber",
            mutate: |b| b["entry"][1]["resource"]["modelNumber"] = json!(""),
            status: StatusCode::UNPROCESSABLE_ENTITY,
            diagnostics: "Device.modelNumber is mandatory.",
            message: Some(DEV),
            code: None,
        },
    ])
    .await;
}
