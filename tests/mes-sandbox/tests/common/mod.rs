//! Helpers of the integration tests: a real sandbox, a real HTTP client, the OAuth dance done
//! by hand (PKCE computed here, independently of the sandbox), and hand-built Bundles.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic,
    dead_code
)]

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use relais_mes_sandbox::{RunningSandbox, Sandbox, SandboxConfig};
use reqwest::{Client, Response, StatusCode};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

pub const CLIENT_ID: &str = "relais-hub";
pub const CLIENT_SECRET: &str = "relais-hub-secret";
pub const PARTNER_OID: &str = "2.999.42.1";
/// Loopback redirect URI: the registered one is portless, any port is accepted.
pub const REDIRECT_URI: &str = "http://127.0.0.1:9/mes/callback";
pub const ID_PE_1: &str = "idpe-patient-1";
pub const ID_PE_2: &str = "idpe-patient-2";
pub const DEVICE_ID: &str = "d36bfdb6-b1b1-4efd-9cb9-d217a8696575";
pub const ANS: &str = "https://interop.esante.gouv.fr/ig/fhir/mesures/StructureDefinition/";

/// A sandbox with the default configuration.
pub async fn start() -> RunningSandbox {
    Sandbox::start(SandboxConfig::default()).await.unwrap()
}

/// A client that does not follow redirects (the OAuth redirects are read, not followed).
pub fn client() -> Client {
    Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

/// A fresh PKCE verifier and its S256 challenge.
pub fn pkce() -> (String, String) {
    let verifier = format!(
        "{}{}",
        uuid::Uuid::new_v4().simple(),
        uuid::Uuid::new_v4().simple()
    );
    let challenge = URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()));
    (verifier, challenge)
}

/// The query parameters of a redirect `Location`.
pub fn location_params(response: &Response) -> Vec<(String, String)> {
    let location = response
        .headers()
        .get("location")
        .expect("a redirect")
        .to_str()
        .unwrap();
    url::Url::parse(location)
        .unwrap()
        .query_pairs()
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect()
}

pub fn param<'a>(params: &'a [(String, String)], name: &str) -> Option<&'a str> {
    params
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
}

/// `POST /oauth/authorize/test` with a standard request; returns the redirect response.
pub async fn authorize_test(
    sb: &RunningSandbox,
    user: &str,
    read: bool,
    write: bool,
    challenge: &str,
) -> Response {
    let scope = "openid mesures.read mesures.write";
    client()
        .post(format!("{}/oauth/authorize/test", sb.base_url()))
        .form(&[
            ("response_type", "code"),
            ("client_id", CLIENT_ID),
            ("redirect_uri", REDIRECT_URI),
            ("state", "st-123"),
            ("code_challenge", challenge),
            ("code_challenge_method", "S256"),
            ("scope", scope),
            ("nonce", "n-456"),
            ("user", user),
            ("consent_read", if read { "true" } else { "false" }),
            ("consent_write", if write { "true" } else { "false" }),
        ])
        .send()
        .await
        .unwrap()
}

/// A code for `user` (non-interactive path) and its verifier.
pub async fn code_for(
    sb: &RunningSandbox,
    user: &str,
    read: bool,
    write: bool,
) -> (String, String) {
    let (verifier, challenge) = pkce();
    let response = authorize_test(sb, user, read, write, &challenge).await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    let params = location_params(&response);
    assert_eq!(param(&params, "state"), Some("st-123"));
    (param(&params, "code").expect("a code").to_owned(), verifier)
}

/// `POST /oauth/token` with client_secret_post.
pub async fn token_request(sb: &RunningSandbox, fields: &[(&str, &str)]) -> Response {
    let mut form: Vec<(&str, &str)> =
        vec![("client_id", CLIENT_ID), ("client_secret", CLIENT_SECRET)];
    form.extend_from_slice(fields);
    client()
        .post(format!("{}/oauth/token", sb.base_url()))
        .form(&form)
        .send()
        .await
        .unwrap()
}

/// The tokens of a pairing.
#[derive(Debug, Clone)]
pub struct Tokens {
    pub access: String,
    pub refresh: String,
    pub id_token: String,
    pub body: Value,
}

impl Tokens {
    pub fn from_json(body: Value) -> Self {
        Tokens {
            access: body["access_token"].as_str().unwrap().to_owned(),
            refresh: body["refresh_token"].as_str().unwrap().to_owned(),
            id_token: body["id_token"].as_str().unwrap().to_owned(),
            body,
        }
    }
}

/// Exchanges a code.
pub async fn exchange(sb: &RunningSandbox, code: &str, verifier: &str) -> Response {
    token_request(
        sb,
        &[
            ("grant_type", "authorization_code"),
            ("code", code),
            ("redirect_uri", REDIRECT_URI),
            ("code_verifier", verifier),
        ],
    )
    .await
}

/// Pairs `user` with the given consents and returns the tokens.
pub async fn pair(sb: &RunningSandbox, user: &str, read: bool, write: bool) -> Tokens {
    let (code, verifier) = code_for(sb, user, read, write).await;
    let response = exchange(sb, &code, &verifier).await;
    assert_eq!(response.status(), StatusCode::OK);
    Tokens::from_json(response.json().await.unwrap())
}

/// Refreshes.
pub async fn refresh(sb: &RunningSandbox, refresh_token: &str) -> Response {
    token_request(
        sb,
        &[
            ("grant_type", "refresh_token"),
            ("refresh_token", refresh_token),
        ],
    )
    .await
}

/// `POST /fhir` with the given tokens and body.
pub async fn post_bundle(sb: &RunningSandbox, tokens: &Tokens, bundle: &Value) -> Response {
    post_raw(
        sb,
        Some(&tokens.access),
        Some(&tokens.id_token),
        bundle.to_string(),
    )
    .await
}

pub async fn post_raw(
    sb: &RunningSandbox,
    access: Option<&str>,
    id_token: Option<&str>,
    body: String,
) -> Response {
    let mut request = client()
        .post(sb.fhir_base_url())
        .header("content-type", "application/fhir+json")
        .body(body);
    if let Some(a) = access {
        request = request.bearer_auth(a);
    }
    if let Some(i) = id_token {
        request = request.header("x-id-token", i);
    }
    request.send().await.unwrap()
}

/// `GET /fhir/Observation?<query>`.
pub async fn search(sb: &RunningSandbox, tokens: &Tokens, query: &[(&str, &str)]) -> Response {
    client()
        .get(format!("{}/Observation", sb.fhir_base_url()))
        .query(query)
        .bearer_auth(&tokens.access)
        .header("x-id-token", &tokens.id_token)
        .send()
        .await
        .unwrap()
}

/// `GET /admin/<path>` as JSON.
pub async fn admin_get(sb: &RunningSandbox, path: &str) -> Value {
    let response = client()
        .get(format!("{}/admin/{path}", sb.base_url()))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    response.json().await.unwrap()
}

/// `POST /admin/<path>` with a JSON body.
pub async fn admin_post(sb: &RunningSandbox, path: &str, body: &Value) -> Response {
    client()
        .post(format!("{}/admin/{path}", sb.base_url()))
        .json(body)
        .send()
        .await
        .unwrap()
}

/// The weight Bundle of the published example 1.5(a), with the Device `ifNoneExist` and the
/// `subject.identifier` MES requires.
pub fn weight_bundle(id_pe: &str) -> Value {
    json!({
      "resourceType": "Bundle",
      "id": "example-mes-fr-bundle-body-weight",
      "meta": { "profile": [format!("{ANS}mesures-bundle-flux-alimentation")] },
      "type": "transaction",
      "entry": [
        {
          "fullUrl": "urn:uuid:5138af77-df7e-4b9d-ba17-07ba3ebb950a",
          "resource": {
            "resourceType": "Observation",
            "id": "5138af77-df7e-4b9d-ba17-07ba3ebb950a",
            "meta": { "profile": [format!("{ANS}mesures-fr-observation-body-weight")] },
            "extension": [{
              "url": format!("{ANS}mesures-reason-for-measurement"),
              "valueString": "Mon nouveau poids !"
            }],
            "status": "final",
            "category": [{ "coding": [{
              "system": "http://terminology.hl7.org/CodeSystem/observation-category",
              "code": "vital-signs"
            }]}],
            "code": { "coding": [{
              "system": "http://loinc.org",
              "code": "29463-7",
              "display": "Poids corporel [Masse] Patient ; Numérique"
            }]},
            "subject": { "identifier": {
              "system": format!("urn:oid:{PARTNER_OID}"),
              "value": id_pe
            }},
            "effectiveDateTime": "2022-08-22T01:56:16+01:00",
            "valueQuantity": {
              "value": 71,
              "unit": "kg",
              "system": "http://unitsofmeasure.org",
              "code": "kg"
            },
            "device": { "reference": format!("Device/{DEVICE_ID}") }
          },
          "request": { "method": "POST", "url": "Observation" }
        },
        {
          "fullUrl": format!("urn:uuid:{DEVICE_ID}"),
          "resource": {
            "resourceType": "Device",
            "id": DEVICE_ID,
            "meta": { "profile": ["http://hl7.org/fhir/uv/phd/StructureDefinition/PhdDevice"] },
            "identifier": [{
              "type": { "coding": [{
                "system": "http://hl7.org/fhir/uv/phd/CodeSystem/ContinuaDeviceIdentifiers",
                "code": "SYSID"
              }]},
              "system": "urn:oid:1.2.840.10004.1.1.1.0.0.1.0.0.1.2680",
              "value": "FE-ED-AB-AA-DE-AD-77-C5"
            }],
            "manufacturer": "OMRONHEALTHCARE",
            "deviceName": [{ "name": "Ma balance", "type": "patient-reported-name" }],
            "modelNumber": "HEM-9200T",
            "type": { "coding": [{ "system": "urn:iso:std:iso:11073:10101", "code": "65573" }] },
            "specialization": [{
              "systemType": { "coding": [{
                "system": "urn:iso:std:iso:11073:10101",
                "code": "528457"
              }]},
              "version": "2.3"
            }]
          },
          "request": {
            "method": "POST",
            "url": "Device",
            "ifNoneExist": "identifier=urn:oid:1.2.840.10004.1.1.1.0.0.1.0.0.1.2680|FE-ED-AB-AA-DE-AD-77-C5"
          }
        }
      ]
    })
}

/// The weight Bundle with another effective date and value.
pub fn weight_at(id_pe: &str, effective: &str, kg: f64) -> Value {
    let mut b = weight_bundle(id_pe);
    b["entry"][0]["resource"]["effectiveDateTime"] = json!(effective);
    b["entry"][0]["resource"]["valueQuantity"]["value"] = json!(kg);
    b
}

/// The Observation of a Bundle built by these helpers.
pub fn observation(bundle: &mut Value) -> &mut Value {
    &mut bundle["entry"][0]["resource"]
}

/// The Device of a Bundle built by these helpers.
pub fn device(bundle: &mut Value) -> &mut Value {
    &mut bundle["entry"][1]["resource"]
}

/// Replaces the Observation of the weight Bundle by `resource` (keeping the Device link and
/// the subject).
pub fn bundle_with_observation(id_pe: &str, mut resource: Value) -> Value {
    let mut b = weight_bundle(id_pe);
    resource["subject"] = b["entry"][0]["resource"]["subject"].clone();
    resource["device"] = json!({ "reference": format!("Device/{DEVICE_ID}") });
    resource["status"] = json!("final");
    resource["category"] = b["entry"][0]["resource"]["category"].clone();
    if resource.get("effectiveDateTime").is_none() {
        resource["effectiveDateTime"] = json!("2024-03-10T08:15:00+01:00");
    }
    b["entry"][0]["resource"] = resource;
    b
}

/// A blood pressure Observation after example 1.5(b), adapted to MES.
pub fn blood_pressure() -> Value {
    json!({
      "resourceType": "Observation",
      "meta": { "profile": [format!("{ANS}mesures-fr-observation-bp")] },
      "code": { "coding": [{ "system": "http://loinc.org", "code": "85354-9" }] },
      "bodySite": { "coding": [{
        "system": "https://mos.esante.gouv.fr/NOS/TRE_R309-FMA/FHIR/TRE-R309-FMA",
        "code": "24890", "display": "Bras"
      }]},
      "component": [
        { "code": { "coding": [{ "system": "http://loinc.org", "code": "8480-6" }] },
          "valueQuantity": { "value": 107, "unit": "mm[Hg]", "system": "http://unitsofmeasure.org", "code": "mm[Hg]" } },
        { "code": { "coding": [{ "system": "http://loinc.org", "code": "8462-4" }] },
          "valueQuantity": { "value": 60, "unit": "mm[Hg]", "system": "http://unitsofmeasure.org", "code": "mm[Hg]" } }
      ]
    })
}

pub const NOS_LOINC: &str = "https://mos.esante.gouv.fr/NOS/TRE_A04-Loinc/FHIR/TRE-A04-Loinc";
pub const NOS_TAASIP: &str = "https://mos.esante.gouv.fr/NOS/TRE_R308-TAASIP/FHIR/TRE-R308-TAASIP";

pub fn moment_extension() -> Value {
    json!({
      "url": format!("{ANS}mesures-moment-of-measurement"),
      "valueCodeableConcept": { "coding": [{ "system": NOS_LOINC, "code": "53049-3" }] }
    })
}

pub fn number_of_days_extension() -> Value {
    json!({
      "url": format!("{ANS}mesures-number-of-days"),
      "valueCodeableConcept": { "coding": [{ "system": NOS_TAASIP, "code": "GEN-276" }] }
    })
}

/// A glucose Observation: `code` in `system`, value in `unit`, with these extensions.
pub fn glucose(system: &str, code: &str, unit: &str, extensions: Vec<Value>) -> Value {
    json!({
      "resourceType": "Observation",
      "meta": { "profile": [format!("{ANS}mesures-observation-glucose")] },
      "extension": extensions,
      "code": { "coding": [{ "system": system, "code": code }] },
      "valueQuantity": { "value": 92, "unit": unit, "system": "http://unitsofmeasure.org", "code": unit }
    })
}

/// Asserts an OperationOutcome response: status, and one issue with this diagnostic (and,
/// when given, this MES message in `details.text` and this issue code).
pub async fn assert_outcome(
    response: Response,
    status: StatusCode,
    diagnostics: &str,
    message: Option<&str>,
    code: Option<&str>,
    case: &str,
) {
    assert_eq!(response.status(), status, "{case}: status");
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["resourceType"], "OperationOutcome", "{case}: {body}");
    let issues = body["issue"].as_array().unwrap();
    let found = issues.iter().find(|i| {
        i["diagnostics"]
            .as_str()
            .is_some_and(|d| d.contains(diagnostics))
    });
    let Some(issue) = found else {
        panic!("{case}: no issue with diagnostics {diagnostics:?} in {body}");
    };
    assert_eq!(issue["severity"], "error", "{case}");
    if let Some(message) = message {
        assert_eq!(issue["details"]["text"], message, "{case}: {body}");
    }
    if let Some(code) = code {
        assert_eq!(issue["code"], code, "{case}: {body}");
    }
}
