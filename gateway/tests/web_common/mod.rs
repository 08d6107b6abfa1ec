//! What the web page's tests share: a hub's web server on a loopback port over a real store in
//! a temporary directory, a client that keeps cookies and does not follow redirects, and
//! measurements to commit.
#![allow(
    dead_code,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

pub mod browser;

use std::net::SocketAddr;

use jiff::Timestamp;
use relais::ble::device::Identity;
use relais::ble::kind::DeviceKind;
use relais::ble::session::Delivery;
use relais::hub::config::Config;
use relais::hub::ingest::SharedStore;
use relais::payload::{Payload, Record};
use relais_protocol::{Quirks, uuid};
use tokio_util::sync::CancellationToken;

pub const SCALE: &str = "C0:FF:EE:00:07:01";
pub const CUFF: &str = "C0:FF:EE:00:07:02";
pub const METER: &str = "C0:FF:EE:00:07:03";
pub const PASSWORD: &str = "un mot de passe solide";

pub struct Web {
    pub addr: SocketAddr,
    pub store: SharedStore,
    pub stop: CancellationToken,
    pub _dir: tempfile::TempDir,
}

impl Web {
    /// A web server for `config` (its `[web]` listen address replaced by a free loopback port).
    pub async fn start(mut config: Config) -> Self {
        let dir = tempfile::tempdir().unwrap();
        config.hub.database = dir.path().join("hub.sqlite");
        config.web.enabled = true;
        config.web.listen = "127.0.0.1:0".into();
        let store = relais::hub::shared(relais::hub::open_store(&config).unwrap());
        let stop = CancellationToken::new();
        let serving = relais::web::start(
            &config,
            relais::hub::control::Control::new(store.clone()),
            None,
            stop.clone(),
        )
        .await
        .unwrap();
        Self {
            addr: serving.addr,
            store,
            stop,
            _dir: dir,
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// A client with its own cookies, as a new browser.
    pub fn client(&self) -> Client {
        Client {
            http: reqwest::Client::builder()
                .cookie_store(true)
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .unwrap(),
            base: self.url(""),
        }
    }

    /// A client signed in, the hub set up first when needed.
    pub async fn admin(&self) -> Client {
        let client = self.client();
        let setup = client.get("/setup").await;
        if setup.status() == 200 {
            let csrf = csrf_of(&setup.text().await.unwrap());
            let r = client
                .post_form(
                    "/setup",
                    &[
                        ("csrf", csrf.as_str()),
                        ("hub_name", "Maison"),
                        ("password", PASSWORD),
                        ("password_again", PASSWORD),
                    ],
                )
                .await;
            assert_eq!(r.status(), 303, "{:?}", r.text().await);
        } else {
            let login = client.get("/login").await;
            let csrf = csrf_of(&login.text().await.unwrap());
            let r = client
                .post_form("/login", &[("csrf", csrf.as_str()), ("password", PASSWORD)])
                .await;
            assert_eq!(r.status(), 303);
        }
        client
    }

    pub fn commit(&self, deliveries: &[Delivery]) {
        self.store.lock().unwrap().commit(deliveries).unwrap();
    }
}

impl Drop for Web {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

pub struct Client {
    pub http: reqwest::Client,
    pub base: String,
}

impl Client {
    pub async fn get(&self, path: &str) -> reqwest::Response {
        self.http
            .get(format!("{}{path}", self.base))
            .send()
            .await
            .unwrap()
    }

    pub async fn get_in(&self, path: &str, lang: &str) -> reqwest::Response {
        self.http
            .get(format!("{}{path}", self.base))
            .header("accept-language", lang)
            .send()
            .await
            .unwrap()
    }

    pub async fn post_form(&self, path: &str, form: &[(&str, &str)]) -> reqwest::Response {
        self.http
            .post(format!("{}{path}", self.base))
            .form(form)
            .send()
            .await
            .unwrap()
    }

    /// The CSRF token of the page at `path`.
    pub async fn csrf(&self, path: &str) -> String {
        csrf_of(&self.get(path).await.text().await.unwrap())
    }
}

/// The CSRF token in a page's forms.
pub fn csrf_of(html: &str) -> String {
    let re = regex::Regex::new(r#"name="csrf" value="([0-9a-f]+)""#).unwrap();
    re.captures(html)
        .unwrap_or_else(|| panic!("no CSRF field in {html}"))[1]
        .to_owned()
}

fn delivery(address: &str, kind: DeviceKind, characteristic: u16, bytes: Vec<u8>) -> Delivery {
    let record = Record::single(Payload::characteristic(characteristic, bytes));
    Delivery {
        device: Identity {
            address: address.into(),
            manufacturer: Some("Relais reference design".into()),
            model: Some("RS-1".into()),
            ..Identity::default()
        },
        kind,
        readings: record.readings(Quirks::NONE).unwrap(),
        record,
        quirks: Quirks::NONE,
        received_at: Timestamp::now(),
        clock_skew: None,
    }
}

/// A weighing of `raw` x 5 g taken `minute` minutes past 07:00 on 2024-03-01, no user index.
pub fn weighing(minute: u8, raw: u16) -> Delivery {
    let mut bytes = vec![0x02];
    bytes.extend(raw.to_le_bytes());
    bytes.extend([0xE8, 0x07, 0x03, 0x01, 0x07, minute, 0x00]);
    delivery(
        SCALE,
        DeviceKind::WeightScale,
        uuid::WEIGHT_MEASUREMENT,
        bytes,
    )
}

/// 120/80 mmHg (mean 93), 2024-03-05 08:30:15.
pub fn pressure() -> Delivery {
    delivery(
        CUFF,
        DeviceKind::BloodPressureMonitor,
        uuid::BLOOD_PRESSURE_MEASUREMENT,
        vec![
            0x1E, 0x78, 0x00, 0x50, 0x00, 0x5D, 0x00, 0xE8, 0x07, 0x03, 0x05, 0x08, 0x1E, 0x0F,
            0x48, 0x00, 0x02, 0x04, 0x00,
        ],
    )
}

/// A blood glucose of `mg_dl` mg/dL, sequence `seq`.
pub fn glucose(seq: u16, mg_dl: u8) -> Delivery {
    let mut bytes = vec![0x02];
    bytes.extend(seq.to_le_bytes());
    bytes.extend([0xE8, 0x07, 0x03, 0x01, 0x08, 0x00, 0x00, mg_dl, 0xB0, 0x11]);
    delivery(
        METER,
        DeviceKind::GlucoseMeter,
        uuid::GLUCOSE_MEASUREMENT,
        bytes,
    )
}
