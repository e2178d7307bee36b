//! Standard Webhooks signing: the `whsec_` secret format and the three headers a receiver
//! verifies (`webhook-id`, `webhook-timestamp`, `webhook-signature`).
//!
//! This module owns the cryptography only; when and where to send is the dispatcher's job
//! ([`crate::notify`]). It sits at the crate's top, below both `config` and `notify`, because
//! `config` parses the secrets at start (a malformed one stops the start) and `notify` signs
//! with them: neither of the two has to reach into the other.
//! Spec: <https://github.com/standard-webhooks/standard-webhooks/blob/main/spec/standard-webhooks.md>.

use std::fmt;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;

type HmacSha256 = Hmac<Sha256>;

/// The header carrying the message id: the same on every attempt, the receiver's idempotency key.
pub const HEADER_ID: &str = "webhook-id";
/// The header carrying the attempt's Unix time in seconds.
pub const HEADER_TIMESTAMP: &str = "webhook-timestamp";
/// The header carrying one `v1,<base64>` signature per secret, space-separated.
pub const HEADER_SIGNATURE: &str = "webhook-signature";

const PREFIX: &str = "whsec_";
/// The spec's bounds for a symmetric secret: at least 192 bits, at most 512.
const MIN_KEY_BYTES: usize = 24;
const MAX_KEY_BYTES: usize = 64;

/// Why a secret was refused. The message never repeats the secret.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SecretError {
    /// No secret at all.
    #[error("no secret given")]
    Empty,
    /// Not in the `whsec_<base64>` form.
    #[error("a secret must start with `whsec_` followed by base64")]
    MissingPrefix,
    /// The part after `whsec_` is not standard base64.
    #[error("the part after `whsec_` is not valid base64")]
    NotBase64,
    /// Too short or too long once decoded.
    #[error("the secret decodes to {0} bytes; Standard Webhooks asks for 24 to 64")]
    Length(usize),
}

/// One endpoint signing secret: the bytes under `whsec_`'s base64. No `Display`, and a redacted
/// `Debug`, so it cannot reach a log line by accident.
#[derive(Clone)]
pub struct WebhookSecret {
    /// Keyed once: cloning the HMAC state is cheaper than re-keying for every attempt, and it is
    /// as sensitive as the secret, hence the hand-written `Debug`.
    mac: HmacSha256,
}

impl WebhookSecret {
    /// Parses `whsec_<base64>`, the form receivers are given (surrounding whitespace ignored).
    pub fn parse(text: &str) -> Result<Self, SecretError> {
        let text = text.trim();
        if text.is_empty() {
            return Err(SecretError::Empty);
        }
        let encoded = text
            .strip_prefix(PREFIX)
            .ok_or(SecretError::MissingPrefix)?;
        let key = STANDARD
            .decode(encoded)
            .map_err(|_| SecretError::NotBase64)?;
        if !(MIN_KEY_BYTES..=MAX_KEY_BYTES).contains(&key.len()) {
            return Err(SecretError::Length(key.len()));
        }
        let mac = HmacSha256::new_from_slice(&key).map_err(|_| SecretError::Empty)?;
        Ok(Self { mac })
    }

    /// `v1,<base64(HMAC-SHA256(key, "{id}.{timestamp}.{body}"))>`.
    fn sign(&self, message_id: &str, timestamp: i64, body: &[u8]) -> String {
        let mut mac = self.mac.clone();
        mac.update(message_id.as_bytes());
        mac.update(b".");
        mac.update(timestamp.to_string().as_bytes());
        mac.update(b".");
        mac.update(body);
        format!("v1,{}", STANDARD.encode(mac.finalize().into_bytes()))
    }
}

impl fmt::Debug for WebhookSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("WebhookSecret(<redacted>)")
    }
}

/// An endpoint's secrets, newest first: every one signs, so a receiver in the middle of a
/// rotation verifies with whichever it knows (the spec's space-separated signature list).
#[derive(Debug, Clone)]
pub struct Signer {
    secrets: Vec<WebhookSecret>,
}

impl Signer {
    /// Parses one or more whitespace-separated `whsec_…` secrets.
    pub fn parse(text: &str) -> Result<Self, SecretError> {
        let secrets = text
            .split_whitespace()
            .map(WebhookSecret::parse)
            .collect::<Result<Vec<_>, _>>()?;
        if secrets.is_empty() {
            return Err(SecretError::Empty);
        }
        Ok(Self { secrets })
    }

    /// How many secrets sign.
    pub fn len(&self) -> usize {
        self.secrets.len()
    }

    /// Always false: a signer has at least one secret.
    pub fn is_empty(&self) -> bool {
        self.secrets.is_empty()
    }

    /// The three headers for one attempt of `message_id` at `timestamp` (Unix seconds).
    pub fn headers(&self, message_id: &str, timestamp: i64, body: &[u8]) -> SignedHeaders {
        let signature = self
            .secrets
            .iter()
            .map(|s| s.sign(message_id, timestamp, body))
            .collect::<Vec<_>>()
            .join(" ");
        SignedHeaders {
            id: message_id.to_owned(),
            timestamp: timestamp.to_string(),
            signature,
        }
    }
}

/// The Standard Webhooks headers of one attempt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignedHeaders {
    /// `webhook-id`.
    pub id: String,
    /// `webhook-timestamp`.
    pub timestamp: String,
    /// `webhook-signature`.
    pub signature: String,
}

impl SignedHeaders {
    /// `(name, value)` pairs, ready to set on a request.
    pub fn pairs(&self) -> [(&'static str, &str); 3] {
        [
            (HEADER_ID, &self.id),
            (HEADER_TIMESTAMP, &self.timestamp),
            (HEADER_SIGNATURE, &self.signature),
        ]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // The example secret of the Standard Webhooks reference libraries' tests.
    const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";

    #[test]
    fn signs_the_id_timestamp_and_body_as_the_reference_libraries_do() {
        // From the reference implementations' test suites (msg_p5jXN8AQM9LWM0D4loKWxJek,
        // 1614265330, this body): the expected signature is published with them.
        let signer = Signer::parse(SECRET).expect("parses");
        let headers = signer.headers(
            "msg_p5jXN8AQM9LWM0D4loKWxJek",
            1_614_265_330,
            br#"{"test": 2432232314}"#,
        );
        assert_eq!(
            headers.signature,
            "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
        );
        assert_eq!(headers.id, "msg_p5jXN8AQM9LWM0D4loKWxJek");
        assert_eq!(headers.timestamp, "1614265330");
    }

    #[test]
    fn every_secret_of_a_rotation_signs_in_order() {
        let other = format!("whsec_{}", STANDARD.encode([7u8; 32]));
        let signer = Signer::parse(&format!("{other}  {SECRET}\n")).expect("parses");
        assert_eq!(signer.len(), 2);
        let headers = signer.headers("msg_1", 1, b"{}");
        let parts: Vec<&str> = headers.signature.split(' ').collect();
        assert_eq!(parts.len(), 2);
        assert!(parts.iter().all(|p| p.starts_with("v1,")));
        let only_old = Signer::parse(SECRET)
            .expect("parses")
            .headers("msg_1", 1, b"{}");
        assert_eq!(parts[1], only_old.signature);
    }

    #[test]
    fn malformed_secrets_are_refused_without_echoing_them() {
        let cases = [
            ("", SecretError::Empty),
            ("   ", SecretError::Empty),
            (
                "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
                SecretError::MissingPrefix,
            ),
            ("whsec_!!!!", SecretError::NotBase64),
            ("whsec_c2hvcnQ=", SecretError::Length(5)),
        ];
        for (text, expected) in cases {
            let error = Signer::parse(text).expect_err(text);
            assert_eq!(error, expected, "{text:?}");
            if !text.trim().is_empty() {
                assert!(!error.to_string().contains(text.trim()), "{error}");
            }
        }
    }

    #[test]
    fn debug_output_hides_the_secret() {
        let signer = Signer::parse(SECRET).expect("parses");
        let text = format!("{signer:?}");
        assert!(!text.contains("MfKQ9r8G"), "{text}");
        assert!(text.contains("redacted"), "{text}");
    }
}
