//! What the MES client tests share: a sandbox, the client configured for it, a pairing through
//! the sandbox's non-interactive authorization endpoint, and a Bundle to send.
#![allow(
    dead_code,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

use std::collections::HashMap;

use relais::fhir::{self, ClockContext, DeviceIdentity, DeviceKind, HubSettings};
use relais::mes::{MesConfig, PairingClient, PendingPairing, Tokens};
use relais_mes_sandbox::{RunningSandbox, Sandbox, SandboxConfig};
use relais_protocol::{Decimal, DeviceTime, Kind, Quantity, Reading, Unit};
use serde_json::Value;

/// The hub's sub-OID of the sandbox's default partner OID (`meta.source`).
pub const HUB_OID: &str = "2.999.42.1.7";

pub struct World {
    pub sandbox: RunningSandbox,
    pub config: MesConfig,
    pub pairing: PairingClient,
    /// Does not follow redirects: the authorization redirect carries the code.
    pub http: reqwest::Client,
}

impl World {
    pub async fn start() -> Self {
        Self::start_with(SandboxConfig::default()).await
    }

    pub async fn start_with(sandbox_config: SandboxConfig) -> Self {
        let sandbox = Sandbox::start(sandbox_config)
            .await
            .expect("sandbox starts");
        let config = MesConfig::for_base_url(sandbox.base_url());
        let pairing = PairingClient::new(&config).unwrap();
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap();
        Self {
            sandbox,
            config,
            pairing,
            http,
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.sandbox.base_url())
    }

    /// The sandbox's answer to the authorization request of `pending`, as the user `login`
    /// with the given consents: the `Location` the browser would be sent to.
    pub async fn authorize(
        &self,
        pending: &PendingPairing,
        login: &str,
        read: bool,
        write: bool,
    ) -> url::Url {
        let mut form: Vec<(String, String)> =
            pending.authorize_url().query_pairs().into_owned().collect();
        form.push(("user".into(), login.into()));
        form.push(("consent_read".into(), read.to_string()));
        form.push(("consent_write".into(), write.to_string()));
        let redirect = self
            .http
            .post(self.url("/oauth/authorize/test"))
            .form(&form)
            .send()
            .await
            .unwrap();
        assert_eq!(redirect.status(), 303, "{:?}", redirect.text().await);
        let location = redirect.headers()["location"].to_str().unwrap();
        url::Url::parse(location).unwrap()
    }

    /// A whole pairing through the real endpoints: start, authorize, finish.
    pub async fn pair(&self, login: &str) -> Tokens {
        let pending = self.pairing.start();
        let location = self.authorize(&pending, login, true, true).await;
        let query = query(&location);
        assert_eq!(query["state"], pending.state());
        self.pairing.finish(&query["code"], pending).await.unwrap()
    }

    pub async fn admin_post(&self, path: &str, body: &Value) -> Value {
        self.http
            .post(self.url(path))
            .json(body)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap_or(Value::Null)
    }

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

pub fn query(url: &url::Url) -> HashMap<String, String> {
    url.query_pairs().into_owned().collect()
}

/// A 70 kg weight for the patient of `tokens`, mapped by the hub's FHIR mapping.
pub fn weight_bundle(tokens: &Tokens) -> Value {
    let reading = Reading::new(
        Kind::BodyWeight,
        Quantity::decimal(Decimal::new(70, 0), Unit::Kilogram),
    )
    .at(DeviceTime::Known(
        jiff::civil::date(2024, 3, 5).at(8, 30, 15, 0),
    ));
    let device = DeviceIdentity {
        kind: DeviceKind::WeightScale,
        system_id: Some("FE-ED-AB-AA-DE-AD-77-C5".parse().unwrap()),
        manufacturer: Some("Relais reference design".into()),
        model: Some("RS-1".into()),
        ..DeviceIdentity::default()
    };
    let hub = HubSettings::new(HUB_OID.parse().unwrap()).unwrap();
    let clock = ClockContext::new("2024-03-05T08:00:00Z".parse().unwrap());
    fhir::map_reading(&reading, &device, &tokens.subject().unwrap(), &hub, &clock)
        .unwrap()
        .bundle
}
