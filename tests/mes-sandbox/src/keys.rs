//! The id_token signing key (ES256, P-256) and the id_token claims.
//!
//! The public documents say the calls carry an id_token "JWT" holding the idPe and the partner
//! OID, nothing about its signature. The sandbox signs with ES256 and publishes the key at
//! `/oauth/jwks`, as OpenID Connect providers do. The key is kept in the database, so a
//! sandbox restarted on the same file still accepts the id_tokens it issued.

use aws_lc_rs::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, KeyPair};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use crate::store::{Store, StoreError};

/// Why the key could not be made ready.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    /// The crypto library refused to generate or parse the key.
    #[error("ES256 key: {0}")]
    Crypto(String),
    /// The key could not be read from or written to the database.
    #[error("key storage: {0}")]
    Store(String),
    /// Signing failed.
    #[error("signing: {0}")]
    Sign(#[from] jsonwebtoken::errors::Error),
}

impl From<StoreError> for KeyError {
    fn from(e: StoreError) -> Self {
        KeyError::Store(e.to_string())
    }
}

const META_KEY: &str = "es256_pkcs8";

/// The signing key and its public half.
pub(crate) struct SigningKey {
    kid: String,
    x: String,
    y: String,
    encoding: EncodingKey,
    decoding: DecodingKey,
}

impl std::fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SigningKey")
            .field("kid", &self.kid)
            .finish_non_exhaustive()
    }
}

impl SigningKey {
    /// Loads the key stored in the database, or generates and stores a new one.
    pub(crate) fn load_or_create(store: &Store) -> Result<Self, KeyError> {
        // Several jsonwebtoken backends may be compiled into one test binary; pick ours
        // explicitly. An error only means a provider is already installed, which is fine.
        let _ = jsonwebtoken::crypto::CryptoProvider::install_default(
            &jsonwebtoken::crypto::aws_lc::DEFAULT_PROVIDER,
        );
        let pkcs8 = match store.meta_get(META_KEY)? {
            Some(pkcs8) => pkcs8,
            None => {
                let pair = EcdsaKeyPair::generate(&ECDSA_P256_SHA256_FIXED_SIGNING)
                    .map_err(|e| KeyError::Crypto(e.to_string()))?;
                let doc = pair
                    .to_pkcs8v1()
                    .map_err(|e| KeyError::Crypto(e.to_string()))?;
                let bytes = doc.as_ref().to_vec();
                store.meta_set(META_KEY, &bytes)?;
                bytes
            }
        };
        let pair = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &pkcs8)
            .map_err(|e| KeyError::Crypto(e.to_string()))?;
        let public = pair.public_key().as_ref();
        // Uncompressed SEC1 point: 0x04 || X (32 bytes) || Y (32 bytes).
        let (x, y) = match public {
            [0x04, rest @ ..] if rest.len() == 64 => rest.split_at(32),
            _ => return Err(KeyError::Crypto("unexpected public key encoding".into())),
        };
        let x = URL_SAFE_NO_PAD.encode(x);
        let y = URL_SAFE_NO_PAD.encode(y);
        let kid = URL_SAFE_NO_PAD.encode(Sha256::digest(public));
        let kid = kid.chars().take(16).collect::<String>();
        let decoding = DecodingKey::from_ec_components(&x, &y)?;
        Ok(Self {
            kid,
            x,
            y,
            encoding: EncodingKey::from_ec_der(&pkcs8),
            decoding,
        })
    }

    /// The JSON Web Key Set served at `/oauth/jwks`.
    pub(crate) fn jwks(&self) -> Value {
        json!({ "keys": [{
            "kty": "EC", "crv": "P-256", "x": self.x, "y": self.y,
            "use": "sig", "alg": "ES256", "kid": self.kid
        }]})
    }

    /// Signs any claims (id_tokens, and the admin minting endpoint).
    pub(crate) fn sign<T: Serialize>(&self, claims: &T) -> Result<String, KeyError> {
        let mut header = Header::new(Algorithm::ES256);
        header.kid = Some(self.kid.clone());
        Ok(jsonwebtoken::encode(&header, claims, &self.encoding)?)
    }

    /// Verifies an id_token's signature, expiry, issuer and audience.
    pub(crate) fn verify_id_token(
        &self,
        token: &str,
        issuer: &str,
        audience: &str,
    ) -> Result<IdTokenClaims, jsonwebtoken::errors::Error> {
        let mut validation = Validation::new(Algorithm::ES256);
        validation.leeway = 0;
        validation.set_issuer(&[issuer]);
        validation.set_audience(&[audience]);
        validation.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
        Ok(jsonwebtoken::decode::<IdTokenClaims>(token, &self.decoding, &validation)?.claims)
    }
}

/// Claims of the sandbox's id_tokens. Names of the MES-specific claims are the sandbox's
/// choice (the public documents do not give them): `idPe`, `partnerOid`, `assignAuth`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct IdTokenClaims {
    pub(crate) iss: String,
    pub(crate) sub: String,
    pub(crate) aud: String,
    pub(crate) exp: i64,
    pub(crate) iat: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) auth_time: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) nonce: Option<String>,
    #[serde(rename = "idPe", default)]
    pub(crate) id_pe: Option<String>,
    #[serde(rename = "partnerOid", default)]
    pub(crate) partner_oid: Option<String>,
    #[serde(rename = "assignAuth", default)]
    pub(crate) assign_auth: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Database;

    fn claims(exp: i64) -> IdTokenClaims {
        IdTokenClaims {
            iss: "http://sandbox".into(),
            sub: "patient-1".into(),
            aud: "client".into(),
            exp,
            iat: 0,
            auth_time: None,
            nonce: None,
            id_pe: Some("idpe".into()),
            partner_oid: Some("1.2".into()),
            assign_auth: Some("1.2".into()),
        }
    }

    #[test]
    fn signed_id_token_verifies_and_key_survives_reload() {
        let store = Store::open(&Database::Memory).unwrap();
        let key = SigningKey::load_or_create(&store).unwrap();
        let token = key.sign(&claims(i64::from(u32::MAX))).unwrap();
        let again = SigningKey::load_or_create(&store).unwrap();
        let c = again
            .verify_id_token(&token, "http://sandbox", "client")
            .unwrap();
        assert_eq!(c.id_pe.as_deref(), Some("idpe"));
        assert!(
            again
                .verify_id_token(&token, "http://other", "client")
                .is_err()
        );
        assert!(
            again
                .verify_id_token(&token, "http://sandbox", "other")
                .is_err()
        );
    }

    #[test]
    fn expired_id_token_is_refused() {
        let store = Store::open(&Database::Memory).unwrap();
        let key = SigningKey::load_or_create(&store).unwrap();
        let token = key.sign(&claims(1)).unwrap();
        assert!(
            key.verify_id_token(&token, "http://sandbox", "client")
                .is_err()
        );
    }
}
