//! Where MES is and who the hub is to it.

use std::fmt;
use std::time::Duration;

use serde::Deserialize;
use url::Url;

use super::MesConfigError;

/// The scopes the hub asks for: the id_token, reading and writing measures.
pub const DEFAULT_SCOPES: [&str; 3] = ["openid", "mesures.read", "mesures.write"];

/// The MES client settings, as the hub's TOML config holds them (`[mes]`). Left-out fields
/// keep the sandbox's defaults (its default partner, on its default port).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct MesConfig {
    /// Base of the pairing endpoints: `<base>/oauth/authorize`, `/oauth/token`,
    /// `/oauth/revoke`, `/oauth/jwks`.
    pub base_url: String,
    /// Base of API Mesures: transactions are POSTed to it. `<base_url>/fhir` when absent.
    pub fhir_base_url: Option<String>,
    /// The id_token `iss` expected; the base URL (without a trailing slash) when absent.
    pub issuer: Option<String>,
    pub client_id: String,
    pub client_secret: Secret,
    /// Where MES sends the browser back. A loopback URI without a port gets an ephemeral one
    /// at `link-mes` time (RFC 8252 §7.3).
    pub redirect_uri: String,
    pub scopes: Vec<String>,
    /// Whole-request timeout of every MES call, in seconds.
    pub request_timeout_secs: u64,
    pub connect_timeout_secs: u64,
}

impl Default for MesConfig {
    fn default() -> Self {
        Self::for_base_url("http://127.0.0.1:8800")
    }
}

impl MesConfig {
    /// The sandbox's default partner at `base_url`.
    pub fn for_base_url(base_url: &str) -> Self {
        let base = base_url.trim_end_matches('/');
        Self {
            base_url: base.to_owned(),
            fhir_base_url: None,
            issuer: None,
            client_id: "relais-hub".to_owned(),
            client_secret: Secret::new("relais-hub-secret"),
            redirect_uri: "http://127.0.0.1/mes/callback".to_owned(),
            scopes: DEFAULT_SCOPES.iter().map(|s| (*s).to_owned()).collect(),
            request_timeout_secs: 30,
            connect_timeout_secs: 10,
        }
    }

    fn endpoint(&self, path: &str) -> Result<Url, MesConfigError> {
        secure(url(&format!(
            "{}{path}",
            self.base_url.trim_end_matches('/')
        ))?)
    }

    pub fn authorize_url(&self) -> Result<Url, MesConfigError> {
        self.endpoint("/oauth/authorize")
    }

    pub fn token_url(&self) -> Result<Url, MesConfigError> {
        self.endpoint("/oauth/token")
    }

    pub fn revoke_url(&self) -> Result<Url, MesConfigError> {
        self.endpoint("/oauth/revoke")
    }

    pub fn jwks_url(&self) -> Result<Url, MesConfigError> {
        self.endpoint("/oauth/jwks")
    }

    /// Where transaction Bundles are POSTed: the FHIR base itself.
    pub fn transaction_url(&self) -> Result<Url, MesConfigError> {
        match &self.fhir_base_url {
            Some(fhir) => secure(url(fhir.trim_end_matches('/'))?),
            None => self.endpoint("/fhir"),
        }
    }

    pub fn redirect_url(&self) -> Result<Url, MesConfigError> {
        url(&self.redirect_uri)
    }

    pub fn expected_issuer(&self) -> String {
        self.issuer
            .clone()
            .unwrap_or_else(|| self.base_url.trim_end_matches('/').to_owned())
    }

    /// A reqwest client with the configured timeouts. Redirects are not followed: a token
    /// endpoint that redirects is misconfigured, and following would resend credentials.
    pub fn http_client(&self) -> Result<reqwest::Client, MesConfigError> {
        reqwest::Client::builder()
            .timeout(Duration::from_secs(self.request_timeout_secs))
            .connect_timeout(Duration::from_secs(self.connect_timeout_secs))
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("relais/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| MesConfigError::HttpClient(e.to_string()))
    }
}

fn url(s: &str) -> Result<Url, MesConfigError> {
    Url::parse(s).map_err(|e| MesConfigError::Url {
        url: s.to_owned(),
        reason: e.to_string(),
    })
}

/// Tokens, secrets and health data travel over https, or plain http to this machine only
/// (the sandbox, a local proxy).
fn secure(url: Url) -> Result<Url, MesConfigError> {
    let loopback = match url.host() {
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        Some(url::Host::Domain(d)) => d == "localhost",
        None => false,
    };
    match url.scheme() {
        "https" => Ok(url),
        "http" if loopback => Ok(url),
        _ => Err(MesConfigError::Insecure(url.to_string())),
    }
}

/// A string kept out of Debug output (client secret).
#[derive(Clone, PartialEq, Eq, Deserialize)]
#[serde(transparent)]
pub struct Secret(String);

impl Secret {
    pub fn new(s: impl Into<String>) -> Self {
        Self(s.into())
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret([redacted])")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoints_derive_from_the_base_url() {
        let c = MesConfig::for_base_url("http://127.0.0.1:9/");
        assert_eq!(
            c.token_url().unwrap().as_str(),
            "http://127.0.0.1:9/oauth/token"
        );
        assert_eq!(
            c.authorize_url().unwrap().as_str(),
            "http://127.0.0.1:9/oauth/authorize"
        );
        assert_eq!(
            c.revoke_url().unwrap().as_str(),
            "http://127.0.0.1:9/oauth/revoke"
        );
        assert_eq!(
            c.transaction_url().unwrap().as_str(),
            "http://127.0.0.1:9/fhir"
        );
        assert_eq!(c.expected_issuer(), "http://127.0.0.1:9");
    }

    #[test]
    fn plain_http_only_to_loopback() {
        let c = MesConfig::for_base_url("http://mes.example");
        assert_eq!(
            c.token_url(),
            Err(MesConfigError::Insecure(
                "http://mes.example/oauth/token".into()
            ))
        );
        assert!(c.transaction_url().is_err());
        let c = MesConfig::for_base_url("https://mes.example");
        assert!(c.token_url().is_ok());
        assert!(
            MesConfig::for_base_url("http://[::1]:8800")
                .token_url()
                .is_ok()
        );
    }

    #[test]
    fn debug_redacts_the_secret() {
        let shown = format!("{:?}", MesConfig::default());
        assert!(!shown.contains("relais-hub-secret"), "{shown}");
        assert!(shown.contains("redacted"));
    }

    #[test]
    fn deserializes_partially_with_defaults() {
        let c: MesConfig = serde_json::from_value(serde_json::json!({
            "base_url": "https://mes.example",
            "client_secret": "s3cret"
        }))
        .unwrap();
        assert_eq!(c.client_secret.expose(), "s3cret");
        assert_eq!(c.client_id, "relais-hub");
        assert_eq!(
            c.transaction_url().unwrap().as_str(),
            "https://mes.example/fhir"
        );
        assert_eq!(c.scopes, DEFAULT_SCOPES);
    }
}
