//! What a sandbox is started with: the registered partner, the test users, token lifetimes,
//! storage and the faults to inject from the first request on.
//!
//! Every type here is `serde`-(de)serialisable so that the binary can read the whole
//! configuration from a JSON file (`mes-sandbox --config FILE`) and tests can build it in code.

use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::faults::Faults;

/// The full configuration of one sandbox instance.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SandboxConfig {
    /// Address to listen on. Default `127.0.0.1:0` (an ephemeral loopback port).
    pub listen: SocketAddr,
    /// Where accepted data, tokens and the signing key live.
    pub database: Database,
    /// URL clients reach the sandbox at, used as the id_token issuer and in links (no trailing
    /// slash). Default: `http://<listen address>`.
    pub public_url: Option<String>,
    /// The registered partners (referenced services). Default: one, [`PartnerConfig::default`].
    pub partners: Vec<PartnerConfig>,
    /// Test users shown on the login page. Default: `patient-1` and `patient-2`.
    pub users: Vec<TestUser>,
    /// Lifetime of an access token (and of the id_token issued with it), in seconds.
    pub access_token_lifetime_secs: u64,
    /// Lifetime of a refresh token, in seconds, counted from its issue (each rotation restarts it).
    pub refresh_token_lifetime_secs: u64,
    /// Lifetime of an authorization code, in seconds.
    pub authorization_code_lifetime_secs: u64,
    /// Faults active from the start (they can be changed at run time through `/admin/faults`).
    pub faults: Faults,
}

impl Default for SandboxConfig {
    fn default() -> Self {
        Self {
            listen: SocketAddr::V4(SocketAddrV4::new(Ipv4Addr::LOCALHOST, 0)),
            database: Database::Memory,
            public_url: None,
            partners: vec![PartnerConfig::default()],
            users: vec![
                TestUser::new("patient-1", "idpe-patient-1", "Camille Martin"),
                TestUser::new("patient-2", "idpe-patient-2", "Jean Dupont"),
            ],
            access_token_lifetime_secs: 3600,
            refresh_token_lifetime_secs: 30 * 24 * 3600,
            authorization_code_lifetime_secs: 60,
            faults: Faults::default(),
        }
    }
}

impl SandboxConfig {
    /// The partner registered under `client_id`, if any.
    pub fn partner(&self, client_id: &str) -> Option<&PartnerConfig> {
        self.partners.iter().find(|p| p.client_id == client_id)
    }

    /// The test user with this login, if any.
    pub fn user(&self, login: &str) -> Option<&TestUser> {
        self.users.iter().find(|u| u.login == login)
    }

    /// Checks what would make the sandbox misbehave silently (duplicate ids, malformed OIDs).
    pub fn validate(&self) -> Result<(), String> {
        if self.partners.is_empty() {
            return Err("at least one partner must be registered".into());
        }
        for (i, p) in self.partners.iter().enumerate() {
            if p.client_id.is_empty() || p.client_secret.is_empty() {
                return Err(format!(
                    "partner {i}: client_id and client_secret must not be empty"
                ));
            }
            if self
                .partners
                .iter()
                .filter(|q| q.client_id == p.client_id)
                .count()
                > 1
            {
                return Err(format!(
                    "partner client_id {:?} is registered twice",
                    p.client_id
                ));
            }
            if !is_oid(&p.oid) {
                return Err(format!(
                    "partner {:?}: oid {:?} is not an OID",
                    p.client_id, p.oid
                ));
            }
            if let Some(aa) = &p.assigning_authority_oid
                && !is_oid(aa)
            {
                return Err(format!(
                    "partner {:?}: assigning_authority_oid {aa:?} is not an OID",
                    p.client_id
                ));
            }
            if p.redirect_uris.is_empty() {
                return Err(format!(
                    "partner {:?}: no redirect URI registered",
                    p.client_id
                ));
            }
            for uri in &p.redirect_uris {
                let parsed = url::Url::parse(uri)
                    .map_err(|e| format!("partner {:?}: redirect URI {uri:?}: {e}", p.client_id))?;
                if parsed.fragment().is_some() {
                    return Err(format!("redirect URI {uri:?} must not have a fragment"));
                }
            }
        }
        if self.users.is_empty() {
            return Err("at least one test user must be configured".into());
        }
        for u in &self.users {
            if self.users.iter().filter(|v| v.login == u.login).count() > 1 {
                return Err(format!("test user {:?} is configured twice", u.login));
            }
            if u.id_pe.is_empty() {
                return Err(format!("test user {:?} has an empty idPe", u.login));
            }
        }
        if self.access_token_lifetime_secs == 0 || self.refresh_token_lifetime_secs == 0 {
            return Err("token lifetimes must be at least one second".into());
        }
        self.faults.validate()
    }
}

/// Where the sandbox keeps its SQLite database.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Database {
    /// A private in-memory database, gone at shutdown.
    #[default]
    Memory,
    /// A file, created if missing; pairings and data survive a restart.
    File(PathBuf),
}

/// A referenced partner service (a client of the OAuth2 server and of API Mesure).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PartnerConfig {
    /// OAuth2 `client_id`.
    pub client_id: String,
    /// OAuth2 `client_secret` (client_secret_basic or client_secret_post).
    pub client_secret: String,
    /// Name shown on the consent page.
    pub name: String,
    /// The partner's OID: `meta.source` must start with it, and id_tokens carry it.
    pub oid: String,
    /// OID of the assigning authority of the idPe (`subject.identifier.system` is
    /// `urn:oid:<this>`). Default: the partner OID, as in the published search example.
    pub assigning_authority_oid: Option<String>,
    /// Registered redirect URIs, compared exactly, except that the port of a loopback
    /// `http://127.0.0.1/...` or `http://[::1]/...` URI may vary (RFC 8252 §7.3).
    pub redirect_uris: Vec<String>,
}

impl Default for PartnerConfig {
    fn default() -> Self {
        Self {
            client_id: "relais-hub".into(),
            client_secret: "relais-hub-secret".into(),
            name: "relais (hub de mesures)".into(),
            oid: "2.999.42.1".into(),
            assigning_authority_oid: None,
            redirect_uris: vec!["http://127.0.0.1/mes/callback".into()],
        }
    }
}

impl PartnerConfig {
    /// The OID of the idPe's assigning authority.
    pub fn assigning_authority(&self) -> &str {
        self.assigning_authority_oid.as_deref().unwrap_or(&self.oid)
    }
}

/// A user who can log in on the sandbox's test login page.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TestUser {
    /// Login typed on the login page.
    pub login: String,
    /// Password typed on the login page.
    #[serde(default = "default_password")]
    pub password: String,
    /// The idPe bound to this user at pairing.
    pub id_pe: String,
    /// Name shown on the pages.
    #[serde(default)]
    pub display_name: String,
}

fn default_password() -> String {
    "test".into()
}

impl TestUser {
    /// A user with the default password `test`.
    pub fn new(login: &str, id_pe: &str, display_name: &str) -> Self {
        Self {
            login: login.into(),
            password: default_password(),
            id_pe: id_pe.into(),
            display_name: display_name.into(),
        }
    }
}

/// `true` when `s` is a dotted-decimal OID such as `1.2.250.1.213`.
pub(crate) fn is_oid(s: &str) -> bool {
    let mut arcs = 0;
    for arc in s.split('.') {
        if arc.is_empty() || !arc.bytes().all(|b| b.is_ascii_digit()) {
            return false;
        }
        arcs += 1;
    }
    arcs >= 2
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_config_is_valid() {
        assert_eq!(SandboxConfig::default().validate(), Ok(()));
    }

    #[test]
    fn oid_needs_two_numeric_arcs() {
        assert!(is_oid("1.2.250.1.213"));
        assert!(!is_oid("1"));
        assert!(!is_oid("1..2"));
        assert!(!is_oid("urn:oid:1.2"));
    }

    #[test]
    fn config_reads_from_partial_json() {
        let c: SandboxConfig =
            serde_json::from_str(r#"{"access_token_lifetime_secs": 5}"#).unwrap();
        assert_eq!(c.access_token_lifetime_secs, 5);
        assert_eq!(c.partners.len(), 1);
    }
}
