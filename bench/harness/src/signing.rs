//! P-256 keys and the SendGrid event webhook signature, signed and checked as sluice checks it.
//!
//! SendGrid signs the bytes of the timestamp header followed by the raw body with ECDSA P-256
//! and SHA-256, and sends the DER signature base64-encoded; the receiver holds the public key
//! as base64 DER (SubjectPublicKeyInfo). `host/src/http/signature.rs` verifies exactly that.
//! [`WebhookSigner`] makes the requests the benchmark sends; [`WebhookVerifier`] is the same
//! check written again without sluice, for the bare peer the signed webhook is measured against.

use std::path::Path;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use aws_lc_rs::digest;
use aws_lc_rs::encoding::AsDer;
use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{
    ECDSA_P256_SHA256_ASN1, ECDSA_P256_SHA256_ASN1_SIGNING, EcdsaKeyPair, KeyPair, ParsedPublicKey,
};
use axum::http::HeaderMap;
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
    #[error("the public key is {0}; give the base64 DER (SubjectPublicKeyInfo) that sign-webhook prints")]
    BadPublicKey(&'static str),
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

/// Why a request's signature was not accepted; sluice answers every one 401, and so does the
/// bare peer.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum VerifyError {
    #[error("missing {0} header")]
    MissingHeader(&'static str),
    #[error("the {0} header is not base64")]
    NotBase64(&'static str),
    #[error("the {0} header is not a unix timestamp")]
    BadTimestamp(&'static str),
    #[error("the timestamp is {age_secs} s away from now, more than the {tolerance_secs} s allowed")]
    Stale { age_secs: u64, tolerance_secs: u64 },
    #[error("the signature does not match the body")]
    Mismatch,
}

/// Checks SendGrid webhook signatures with the work sluice's `SignatureVerifier` does per
/// request: both headers read, the signature base64-decoded, the timestamp's age checked, then
/// SHA-256 over the timestamp and the body and one P-256 verification with a key parsed once.
///
/// It is written again here rather than taken from the `sluice` crate so the peer stays a bare
/// axum + rdkafka handler; keep it in step with `host/src/http/signature.rs`.
#[derive(Clone)]
pub struct WebhookVerifier {
    public_key: ParsedPublicKey,
    tolerance: Duration,
}

impl WebhookVerifier {
    /// A verifier for `public_key_base64` (base64 DER SubjectPublicKeyInfo, the value of
    /// [`PUBLIC_KEY_ENV`]) that refuses timestamps more than `tolerance` from now.
    ///
    /// # Errors
    /// When the key is not base64 or not a P-256 public key.
    pub fn new(public_key_base64: &str, tolerance: Duration) -> Result<Self, SigningError> {
        let der =
            BASE64.decode(public_key_base64.trim()).map_err(|_| SigningError::BadPublicKey("not base64"))?;
        let public_key = ParsedPublicKey::new(&ECDSA_P256_SHA256_ASN1, &der)
            .map_err(|_| SigningError::BadPublicKey("not a DER P-256 public key"))?;
        Ok(WebhookVerifier { public_key, tolerance })
    }

    /// Checks the signature of `body` with the request's `headers`, and the timestamp's age.
    ///
    /// # Errors
    /// A [`VerifyError`] naming what is missing or wrong.
    pub fn verify(&self, headers: &HeaderMap, body: &[u8]) -> Result<(), VerifyError> {
        let header = |name: &'static str| {
            headers
                .get(name)
                .map(|value| value.as_bytes())
                .filter(|value| !value.is_empty())
                .ok_or(VerifyError::MissingHeader(name))
        };
        let signature = header(SIGNATURE_HEADER)?;
        let timestamp = header(TIMESTAMP_HEADER)?;
        let signature = BASE64.decode(signature).map_err(|_| VerifyError::NotBase64(SIGNATURE_HEADER))?;
        let sent_at: u64 = std::str::from_utf8(timestamp)
            .ok()
            .and_then(|text| text.trim().parse().ok())
            .ok_or(VerifyError::BadTimestamp(TIMESTAMP_HEADER))?;
        let now = SystemTime::now().duration_since(UNIX_EPOCH).map(|since| since.as_secs()).unwrap_or(0);
        let age_secs = now.abs_diff(sent_at);
        if age_secs > self.tolerance.as_secs() {
            return Err(VerifyError::Stale { age_secs, tolerance_secs: self.tolerance.as_secs() });
        }
        let mut signed = digest::Context::new(&digest::SHA256);
        signed.update(timestamp);
        signed.update(body);
        self.public_key.verify_digest_sig(&signed.finish(), &signature).map_err(|_| VerifyError::Mismatch)
    }
}

impl std::fmt::Debug for WebhookVerifier {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter.debug_struct("WebhookVerifier").field("tolerance", &self.tolerance).finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use aws_lc_rs::signature::UnparsedPublicKey;
    use axum::http::HeaderValue;
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

    fn header_map(signed: &SignedHeaders) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(SIGNATURE_HEADER, HeaderValue::from_str(&signed.signature).unwrap());
        headers.insert(TIMESTAMP_HEADER, HeaderValue::from_str(&signed.timestamp).unwrap());
        headers
    }

    fn bare_verifier(signer: &WebhookSigner) -> WebhookVerifier {
        WebhookVerifier::new(&signer.public_key_base64().unwrap(), Duration::from_secs(600)).unwrap()
    }

    #[test]
    fn sluice_and_the_bare_verifier_accept_the_same_headers_and_refuse_another_body() {
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
        let bare = bare_verifier(&signer);
        let body = b"[{\"event\":\"delivered\"}]";
        let headers = header_map(&signer.sign(now(), body).unwrap());
        assert_eq!(verifier.verify(&headers, body), Ok(()));
        assert_eq!(bare.verify(&headers, body), Ok(()));
        assert_eq!(verifier.verify(&headers, b"[]"), Err(SignatureError::Mismatch));
        assert_eq!(bare.verify(&headers, b"[]"), Err(VerifyError::Mismatch));
    }

    #[test]
    fn the_bare_verifier_accepts_a_signed_body_and_refuses_any_tampering() {
        let signer = WebhookSigner::generate().unwrap();
        let bare = bare_verifier(&signer);
        let body = br#"[{"email":"ann@example.com","event":"open"}]"#;
        let signed = signer.sign(now(), body).unwrap();
        assert_eq!(bare.verify(&header_map(&signed), body), Ok(()));

        let tampered_body = br#"[{"email":"ann@example.com","event":"opem"}]"#;
        assert_eq!(bare.verify(&header_map(&signed), tampered_body), Err(VerifyError::Mismatch));
        let later = SignedHeaders { timestamp: (now() + 1).to_string(), ..signed.clone() };
        assert_eq!(bare.verify(&header_map(&later), body), Err(VerifyError::Mismatch));
        let by_another_key = WebhookSigner::generate().unwrap().sign(now(), body).unwrap();
        assert_eq!(bare.verify(&header_map(&by_another_key), body), Err(VerifyError::Mismatch));
    }

    #[test]
    fn the_bare_verifier_refuses_unsigned_stale_and_malformed_requests() {
        let signer = WebhookSigner::generate().unwrap();
        let bare = bare_verifier(&signer);
        assert_eq!(bare.verify(&HeaderMap::new(), b"[]"), Err(VerifyError::MissingHeader(SIGNATURE_HEADER)));
        let stale = signer.sign(now() - 3600, b"[]").unwrap();
        assert!(matches!(bare.verify(&header_map(&stale), b"[]"), Err(VerifyError::Stale { .. })));
        let mut headers = header_map(&signer.sign(now(), b"[]").unwrap());
        headers.insert(TIMESTAMP_HEADER, HeaderValue::from_static("yesterday"));
        assert_eq!(bare.verify(&headers, b"[]"), Err(VerifyError::BadTimestamp(TIMESTAMP_HEADER)));
        headers.insert(SIGNATURE_HEADER, HeaderValue::from_static("***"));
        assert_eq!(bare.verify(&headers, b"[]"), Err(VerifyError::NotBase64(SIGNATURE_HEADER)));
        headers.remove(TIMESTAMP_HEADER);
        headers.insert(SIGNATURE_HEADER, HeaderValue::from_static("c2lnbmF0dXJl"));
        assert_eq!(bare.verify(&headers, b"[]"), Err(VerifyError::MissingHeader(TIMESTAMP_HEADER)));
    }

    #[test]
    fn a_key_that_is_not_a_p256_public_key_is_refused_at_start() {
        let tolerance = Duration::from_secs(600);
        assert!(matches!(WebhookVerifier::new("not base64!", tolerance), Err(SigningError::BadPublicKey(_))));
        assert!(matches!(
            WebhookVerifier::new("c2lnbmF0dXJl", tolerance),
            Err(SigningError::BadPublicKey(_))
        ));
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
