//! Helpers shared by the end-to-end suites in `tests/e2e/`: pairing with mes-sandbox as the hub
//! will (authorization code + PKCE S256), and posting Bundles with the tokens it got.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use relais_mes_sandbox::{ID_TOKEN_HEADER, RunningSandbox, SandboxConfig};
use serde_json::Value;
use sha2::{Digest, Sha256};

/// The partner the sandbox registers by default, as the hub is configured for it.
pub const CLIENT_ID: &str = "relais-hub";
pub const CLIENT_SECRET: &str = "relais-hub-secret";
pub const REDIRECT_URI: &str = "http://127.0.0.1/mes/callback";
pub const PARTNER_OID: &str = "2.999.42.1";
/// The hub's own sub-OID of the partner OID: `meta.source`.
pub const HUB_OID: &str = "2.999.42.1.7";

/// What a pairing gives the hub for one household member.
#[derive(Debug, Clone)]
pub struct Session {
    pub access_token: String,
    pub id_token: String,
    pub id_pe: String,
    pub assigning_authority: String,
}

/// A sandbox on an ephemeral loopback port, with an HTTP client that does not follow redirects
/// (the OAuth redirect carries the code).
#[allow(missing_debug_implementations)] // the sandbox handle has no Debug
pub struct World {
    pub sandbox: RunningSandbox,
    pub http: reqwest::Client,
}

impl World {
    pub async fn start() -> Self {
        let sandbox = relais_mes_sandbox::Sandbox::start(SandboxConfig::default())
            .await
            .expect("sandbox starts");
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap();
        Self { sandbox, http }
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.sandbox.base_url())
    }

    /// Pairs test user `login` with the given consents, as the hub's `link-mes` will.
    pub async fn pair(&self, login: &str, read: bool, write: bool) -> Session {
        let verifier =
            URL_SAFE_NO_PAD.encode(Sha256::digest(login.as_bytes())) + "-relais-pkce-verifier";
        let challenge = URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()));
        let form = [
            ("response_type", "code"),
            ("client_id", CLIENT_ID),
            ("redirect_uri", REDIRECT_URI),
            ("state", "relais-state"),
            ("code_challenge", challenge.as_str()),
            ("code_challenge_method", "S256"),
            ("scope", "openid mesures.read mesures.write"),
            ("user", login),
            ("consent_read", if read { "true" } else { "false" }),
            ("consent_write", if write { "true" } else { "false" }),
        ];
        let redirect = self
            .http
            .post(self.url("/oauth/authorize/test"))
            .form(&form)
            .send()
            .await
            .unwrap();
        assert_eq!(redirect.status(), 303, "{:?}", redirect.text().await);
        let location = redirect.headers()["location"].to_str().unwrap().to_owned();
        let location = url::Url::parse(&location).unwrap();
        let code = location
            .query_pairs()
            .find(|(k, _)| k == "code")
            .map(|(_, v)| v.into_owned())
            .expect("a code");
        let tokens: Value = self
            .http
            .post(self.url("/oauth/token"))
            .basic_auth(CLIENT_ID, Some(CLIENT_SECRET))
            .form(&[
                ("grant_type", "authorization_code"),
                ("code", code.as_str()),
                ("redirect_uri", REDIRECT_URI),
                ("code_verifier", verifier.as_str()),
            ])
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let id_token = tokens["id_token"].as_str().unwrap().to_owned();
        let claims = id_token_claims(&id_token);
        Session {
            access_token: tokens["access_token"].as_str().unwrap().to_owned(),
            id_pe: claims["idPe"].as_str().unwrap().to_owned(),
            assigning_authority: claims["assignAuth"].as_str().unwrap().to_owned(),
            id_token,
        }
    }

    /// POSTs a transaction Bundle as the uploader will; the status and the JSON answer.
    pub async fn post(&self, session: &Session, bundle: &Value) -> (u16, Value) {
        let response = self
            .http
            .post(self.url("/fhir"))
            .bearer_auth(&session.access_token)
            .header(ID_TOKEN_HEADER, &session.id_token)
            .header("content-type", "application/fhir+json")
            .body(serde_json::to_vec(bundle).unwrap())
            .send()
            .await
            .unwrap();
        let status = response.status().as_u16();
        (status, response.json().await.unwrap_or(Value::Null))
    }

    /// What the sandbox stored for `id_pe` (its admin API).
    pub async fn stored(&self, id_pe: &str) -> Vec<Value> {
        let stored: Value = self
            .http
            .get(self.url("/admin/observations"))
            .query(&[("id_pe", id_pe)])
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        stored.as_array().cloned().unwrap_or_default()
    }
}

/// The claims of a JWT (its signature is the sandbox's business; the hub reads the claims).
pub fn id_token_claims(jwt: &str) -> Value {
    let payload = jwt.split('.').nth(1).expect("a JWT");
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).unwrap()).unwrap()
}
