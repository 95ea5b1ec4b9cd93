//! P-256 keys and the SendGrid event webhook signature, as sluice checks it.
//!
//! SendGrid signs the bytes of the timestamp header followed by the raw body with ECDSA P-256
//! and SHA-256, and sends the DER signature base64-encoded; the receiver holds the public key
//! as base64 DER (SubjectPublicKeyInfo). `host/src/http/signature.rs` verifies exactly that.

use std::path::Path;

use aws_lc_rs::encoding::AsDer;
use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{ECDSA_P256_SHA256_ASN1_SIGNING, EcdsaKeyPair, KeyPair};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;

/// The header SendGrid puts the signature in.
pub const SIGNATURE_HEADER: &str = "X-Twilio-Email-Event-Webhook-Signature";
/// The header SendGrid puts the signing time in (Unix seconds).
pub const TIMESTAMP_HEADER: &str = "X-Twilio-Email-Event-Webhook-Timestamp";
/// The variable `pipelines/sendgrid-events.toml` reads the public key from.
pub const PUBLIC_KEY_ENV: &str = "SENDGRID_WEBHOOK_PUBLIC_KEY";

/// Why a key could not be made, read or used.
#[derive(Debug, thiserror::Error)]
pub enum SigningError {
    #[error("cannot read the key file {path}: {source}")]
    Read { path: String, source: std::io::Error },
    #[error("cannot write the key file {path}: {source}")]
    Write { path: String, source: std::io::Error },
    #[error("{path} is not a PKCS#8 DER P-256 private key (delete it to have a new one made)")]
    NotAKey { path: String },
    #[error("aws-lc could not {0}")]
    Crypto(&'static str),
}

/// A P-256 private key that signs webhook bodies the way SendGrid does.
pub struct WebhookSigner {
    key_pair: EcdsaKeyPair,
    random: SystemRandom,
}

/// The two header values of one signed request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignedHeaders {
    /// The timestamp header's value, exactly the bytes that were signed.
    pub timestamp: String,
    /// The base64 DER ECDSA signature.
    pub signature: String,
}

impl WebhookSigner {
    /// A new random key.
    ///
    /// # Errors
    /// When aws-lc cannot generate a key.
    pub fn generate() -> Result<Self, SigningError> {
        let key_pair = EcdsaKeyPair::generate(&ECDSA_P256_SHA256_ASN1_SIGNING)
            .map_err(|_| SigningError::Crypto("generate a P-256 key"))?;
        Ok(WebhookSigner { key_pair, random: SystemRandom::new() })
    }

    /// The key stored at `path` (PKCS#8 DER); when there is no file, a new key written there,
    /// so repeated runs can share one public key.
    ///
    /// # Errors
    /// When the file cannot be read or written, or holds something else than a P-256 key.
    pub fn load_or_create(path: &Path) -> Result<Self, SigningError> {
        let shown = path.display().to_string();
        match std::fs::read(path) {
            Ok(der) => {
                let key_pair = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_ASN1_SIGNING, &der)
                    .map_err(|_| SigningError::NotAKey { path: shown })?;
                Ok(WebhookSigner { key_pair, random: SystemRandom::new() })
            }
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => {
                let signer = Self::generate()?;
                let der = signer.key_pair.to_pkcs8v1().map_err(|_| SigningError::Crypto("encode the key"))?;
                std::fs::write(path, der.as_ref())
                    .map_err(|source| SigningError::Write { path: shown, source })?;
                Ok(signer)
            }
            Err(source) => Err(SigningError::Read { path: shown, source }),
        }
    }

    /// The public key as base64 DER (SubjectPublicKeyInfo), the value of [`PUBLIC_KEY_ENV`].
    ///
    /// # Errors
    /// When aws-lc cannot encode the key.
    pub fn public_key_base64(&self) -> Result<String, SigningError> {
        let der =
            self.key_pair.public_key().as_der().map_err(|_| SigningError::Crypto("encode the public key"))?;
        Ok(BASE64.encode(der.as_ref()))
    }

    /// Signs `body` as sent at `timestamp` (Unix seconds).
    ///
    /// # Errors
    /// When aws-lc cannot sign.
    pub fn sign(&self, timestamp: u64, body: &[u8]) -> Result<SignedHeaders, SigningError> {
        let timestamp = timestamp.to_string();
        let mut message = Vec::with_capacity(timestamp.len() + body.len());
        message.extend_from_slice(timestamp.as_bytes());
        message.extend_from_slice(body);
        let signature =
            self.key_pair.sign(&self.random, &message).map_err(|_| SigningError::Crypto("sign"))?;
        Ok(SignedHeaders { timestamp, signature: BASE64.encode(signature.as_ref()) })
    }
}

#[cfg(test)]
mod tests {
    use std::time::{SystemTime, UNIX_EPOCH};

    use aws_lc_rs::signature::{ECDSA_P256_SHA256_ASN1, UnparsedPublicKey};
    use axum::http::{HeaderMap, HeaderValue};
    use sluice::config::{SignatureConfig, SignatureScheme};
    use sluice::http::signature::{SignatureError, SignatureVerifier};

    use super::*;

    /// Verifies the way `host/src/http/signature.rs` does: timestamp bytes, then body bytes.
    fn verify(public_key_base64: &str, headers: &SignedHeaders, body: &[u8]) -> bool {
        let public_key = BASE64.decode(public_key_base64).unwrap();
        let signature = BASE64.decode(&headers.signature).unwrap();
        let mut signed = headers.timestamp.as_bytes().to_vec();
        signed.extend_from_slice(body);
        UnparsedPublicKey::new(&ECDSA_P256_SHA256_ASN1, &public_key).verify(&signed, &signature).is_ok()
    }

    fn now() -> u64 {
        SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs()
    }

    #[test]
    fn a_signed_body_verifies_with_the_call_sluice_makes() {
        let signer = WebhookSigner::generate().unwrap();
        let body = br#"[{"email":"ann@example.com","event":"open"}]"#;
        let headers = signer.sign(1_717_200_000, body).unwrap();
        assert_eq!(headers.timestamp, "1717200000");
        let public_key = signer.public_key_base64().unwrap();
        assert!(verify(&public_key, &headers, body));
        assert!(!verify(&public_key, &headers, br#"[{"email":"ann@example.com","event":"opem"}]"#));
        let other = SignedHeaders { timestamp: "1717200001".into(), ..headers.clone() };
        assert!(!verify(&public_key, &other, body));
    }

    #[test]
    fn sluices_own_verifier_accepts_the_headers_and_refuses_another_body() {
        let signer = WebhookSigner::generate().unwrap();
        let env = format!("SLUICE_BENCH_TEST_PUBLIC_KEY_{}", std::process::id());
        // SAFETY: the variable name is unique to this test, and no other test reads or writes it.
        unsafe { std::env::set_var(&env, signer.public_key_base64().unwrap()) };
        let config = SignatureConfig {
            scheme: SignatureScheme::EcdsaP256Sha256,
            public_key_env: env,
            signature_header: SIGNATURE_HEADER.into(),
            timestamp_header: TIMESTAMP_HEADER.into(),
            tolerance_secs: 600,
        };
        let verifier = SignatureVerifier::from_config(&config).unwrap().unwrap();
        let body = b"[{\"event\":\"delivered\"}]";
        let signed = signer.sign(now(), body).unwrap();
        let mut headers = HeaderMap::new();
        headers.insert(SIGNATURE_HEADER, HeaderValue::from_str(&signed.signature).unwrap());
        headers.insert(TIMESTAMP_HEADER, HeaderValue::from_str(&signed.timestamp).unwrap());
        assert_eq!(verifier.verify(&headers, body), Ok(()));
        assert_eq!(verifier.verify(&headers, b"[]"), Err(SignatureError::Mismatch));
    }

    #[test]
    fn a_stored_key_is_loaded_again_with_the_same_public_key() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("webhook.p8");
        let first = WebhookSigner::load_or_create(&path).unwrap().public_key_base64().unwrap();
        let second = WebhookSigner::load_or_create(&path).unwrap().public_key_base64().unwrap();
        assert_eq!(first, second);
        std::fs::write(&path, b"not a key").unwrap();
        assert!(matches!(WebhookSigner::load_or_create(&path), Err(SigningError::NotAKey { .. })));
    }
}
