//! The three Didit signature schemes and the keyring they are checked against.
//!
//! This module owns the cryptography only: computing `X-Signature` (raw bytes), `X-Signature-V2`
//! (canonical JSON, every accepted [`CanonicalForm`]) and `X-Signature-Simple`, and checking a set
//! of header values against every usable key in constant time. Freshness and payload parsing are
//! [`crate::webhook`]'s job.

use std::fmt;

use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;
use subtle::{Choice, ConstantTimeEq};

use crate::canonical::{CanonicalForm, CanonicalJson};

type HmacSha256 = Hmac<Sha256>;

/// A 32-byte HMAC-SHA256 tag.
pub type Tag = [u8; 32];

/// A shared secret: the UTF-8 bytes of Didit's `secret_shared_key`, exactly as shown in the
/// console (Didit does not base64-decode it).
///
/// Its `Debug` is redacted, and it has no `Display`, so it cannot end up in a log line by
/// accident.
#[derive(Clone)]
pub struct Secret(Box<[u8]>);

impl Secret {
    /// Wraps the secret string. Surrounding whitespace is kept on purpose: Didit's HMAC uses
    /// the string as shown, and trimming belongs to whoever read it from a file.
    pub fn new(secret: impl Into<String>) -> Self {
        Self(secret.into().into_bytes().into_boxed_slice())
    }

    /// The secret's bytes, for computing a MAC.
    pub fn expose(&self) -> &[u8] {
        &self.0
    }

    fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(<redacted>)")
    }
}

/// One secret of the [`Keyring`], with the id that is recorded when it verifies a delivery.
#[derive(Clone)]
pub struct Key {
    id: String,
    /// The HMAC state after absorbing the secret: cloning it is cheaper than re-keying per
    /// request, and it is as sensitive as the secret itself, hence the hand-written `Debug`.
    mac: HmacSha256,
    /// Unix seconds after which the key no longer verifies anything: the end of a rotation.
    not_after: Option<i64>,
}

impl Key {
    /// A key that never expires.
    pub fn new(id: impl Into<String>, secret: &Secret) -> Result<Self, KeyringError> {
        let id = id.into();
        if id.is_empty() {
            return Err(KeyringError::EmptyId);
        }
        if id.chars().any(char::is_control) {
            return Err(KeyringError::ControlInId);
        }
        if secret.is_empty() {
            return Err(KeyringError::EmptySecret { id });
        }
        let mac = HmacSha256::new_from_slice(secret.expose())
            .map_err(|_| KeyringError::EmptySecret { id: id.clone() })?;
        Ok(Self {
            id,
            mac,
            not_after: None,
        })
    }

    /// Stops the key from verifying deliveries after `unix_seconds`.
    #[must_use]
    pub fn with_not_after(mut self, unix_seconds: i64) -> Self {
        self.not_after = Some(unix_seconds);
        self
    }

    /// The key's id.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// When the key stops verifying, if ever.
    pub fn not_after(&self) -> Option<i64> {
        self.not_after
    }

    fn usable_at(&self, now: i64) -> bool {
        self.not_after.is_none_or(|t| now <= t)
    }

    fn tag(&self, message: &[&[u8]]) -> Tag {
        let mut mac = self.mac.clone();
        for part in message {
            mac.update(part);
        }
        mac.finalize().into_bytes().into()
    }
}

impl fmt::Debug for Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Key")
            .field("id", &self.id)
            .field("secret", &"<redacted>")
            .field("not_after", &self.not_after)
            .finish()
    }
}

/// A problem with the keys given to a [`Keyring`].
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum KeyringError {
    /// No key at all: nothing could ever verify.
    #[error("the keyring has no keys")]
    Empty,
    /// A key without an id could not be told apart in logs and metrics.
    #[error("a key has an empty id")]
    EmptyId,
    /// An id is recorded with every delivery it verifies, logged and used as a metric label:
    /// a control character there would forge log lines or be unstorable (U+0000 on
    /// PostgreSQL). The id is not echoed.
    #[error("a key's id contains a control character")]
    ControlInId,
    /// An empty secret would make every signature forgeable.
    #[error("key `{id}` has an empty secret")]
    EmptySecret {
        /// The key's id.
        id: String,
    },
    /// Two keys with one id would make "which key verified" ambiguous.
    #[error("two keys share the id `{id}`")]
    DuplicateId {
        /// The repeated id.
        id: String,
    },
}

/// Every secret that may currently sign Didit deliveries: several during a rotation.
#[derive(Debug, Clone)]
pub struct Keyring {
    keys: Vec<Key>,
}

impl Keyring {
    /// A keyring of at least one key, ids unique.
    pub fn new(keys: Vec<Key>) -> Result<Self, KeyringError> {
        if keys.is_empty() {
            return Err(KeyringError::Empty);
        }
        for (i, key) in keys.iter().enumerate() {
            if keys[..i].iter().any(|k| k.id == key.id) {
                return Err(KeyringError::DuplicateId { id: key.id.clone() });
            }
        }
        Ok(Self { keys })
    }

    /// The common case: one secret, with the id `default`.
    pub fn single(secret: &Secret) -> Result<Self, KeyringError> {
        Self::new(vec![Key::new("default", secret)?])
    }

    /// The keys, in the order they were given.
    pub fn keys(&self) -> &[Key] {
        &self.keys
    }

    /// Tries every key usable at `now` against `expected` without stopping at the first match,
    /// so the time taken does not tell which key (or whether any) matched.
    fn find(&self, now: i64, expected: &Tag, message: &[&[u8]]) -> Option<&Key> {
        let mut found: Option<&Key> = None;
        for key in &self.keys {
            let usable = Choice::from(u8::from(key.usable_at(now)));
            let matched = key.tag(message).ct_eq(expected) & usable;
            if bool::from(matched) && found.is_none() {
                found = Some(key);
            }
        }
        found
    }
}

/// Which scheme verified a delivery.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Scheme {
    /// `X-Signature`: HMAC over the raw body bytes.
    Raw,
    /// `X-Signature-V2`: HMAC over the canonical JSON, in the given form.
    V2(CanonicalForm),
    /// `X-Signature-Simple`: HMAC over `timestamp:session_id:status:webhook_type` only.
    Simple,
}

impl Scheme {
    /// Every scheme, for metrics and documentation.
    pub const ALL: [Scheme; 5] = [
        Scheme::Raw,
        Scheme::V2(CanonicalForm::Python),
        Scheme::V2(CanonicalForm::PythonAscii),
        Scheme::V2(CanonicalForm::JavaScript),
        Scheme::Simple,
    ];

    /// The stable name stored with each event and used as a metric label.
    pub fn as_str(self) -> &'static str {
        match self {
            Scheme::Raw => "raw",
            Scheme::V2(CanonicalForm::Python) => "v2",
            Scheme::V2(CanonicalForm::PythonAscii) => "v2-ascii",
            Scheme::V2(CanonicalForm::JavaScript) => "v2-js",
            Scheme::Simple => "simple",
        }
    }

    /// The inverse of [`Scheme::as_str`].
    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|scheme| scheme.as_str() == s)
    }

    /// Whether the scheme authenticates the whole body. Simple covers four envelope fields only,
    /// so the decision data of an event verified by it must not be trusted.
    pub fn covers_body(self) -> bool {
        !matches!(self, Scheme::Simple)
    }
}

impl fmt::Display for Scheme {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The three signature header values of a delivery, as received.
#[derive(Debug, Clone, Copy, Default)]
pub struct SignatureHeaders<'a> {
    /// `X-Signature`.
    pub raw: Option<&'a str>,
    /// `X-Signature-V2`.
    pub v2: Option<&'a str>,
    /// `X-Signature-Simple`.
    pub simple: Option<&'a str>,
}

/// The outcome of a successful signature check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignatureMatch {
    /// The id of the key that matched.
    pub key_id: String,
    /// The scheme that matched.
    pub scheme: Scheme,
}

/// Why no signature matched.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    /// None of the headers that may be checked is present.
    #[error("no signature header: send X-Signature or X-Signature-V2{simple_note}")]
    Missing {
        /// Explains that X-Signature-Simple was present but is not accepted.
        simple_note: &'static str,
    },
    /// A header is present but is not 64 hexadecimal characters.
    #[error("{header} is not a hex-encoded HMAC-SHA256 (64 hexadecimal characters)")]
    Malformed {
        /// The header's name.
        header: &'static str,
    },
    /// Headers are present, well formed, and none matches any usable key.
    #[error("signature does not match any configured key")]
    Mismatch,
}

/// Checks the signature headers of one delivery against `keyring`.
///
/// Order, per Didit's own advice: `X-Signature` over the raw bytes (exact, no canonicalisation
/// risk); then `X-Signature-V2` over each canonical form; then, only when `allow_simple`,
/// `X-Signature-Simple`. The first scheme that matches wins; within a scheme every key is tried.
pub fn check(
    keyring: &Keyring,
    headers: &SignatureHeaders<'_>,
    body: &[u8],
    now: i64,
    allow_simple: bool,
) -> Result<SignatureMatch, SignatureError> {
    let raw = headers
        .raw
        .map(|h| decode_tag(h, "X-Signature"))
        .transpose();
    let v2 = headers
        .v2
        .map(|h| decode_tag(h, "X-Signature-V2"))
        .transpose();
    let simple = if allow_simple {
        headers
            .simple
            .map(|h| decode_tag(h, "X-Signature-Simple"))
            .transpose()
    } else {
        Ok(None)
    };
    let (raw, v2, simple) = match (raw, v2, simple) {
        (Ok(None), Ok(None), Ok(None)) => {
            let simple_note = if headers.simple.is_some() {
                " (X-Signature-Simple is present but not accepted by this receiver)"
            } else {
                ""
            };
            return Err(SignatureError::Missing { simple_note });
        }
        (raw, v2, simple) => (raw, v2, simple),
    };
    let matched = |scheme: Scheme, key: &Key| SignatureMatch {
        key_id: key.id.clone(),
        scheme,
    };

    if let Ok(Some(tag)) = &raw
        && let Some(key) = keyring.find(now, tag, &[body])
    {
        return Ok(matched(Scheme::Raw, key));
    }
    if let Ok(Some(tag)) = &v2
        && let Ok(json) = CanonicalJson::parse(body)
    {
        let mut previous: Vec<Vec<u8>> = Vec::with_capacity(CanonicalForm::ALL.len());
        for form in CanonicalForm::ALL {
            let message = json.to_vec(form);
            // Forms often coincide (any ASCII-only body without odd floats); a MAC already
            // tried over identical bytes cannot match now.
            if previous.contains(&message) {
                continue;
            }
            if let Some(key) = keyring.find(now, tag, &[&message]) {
                return Ok(matched(Scheme::V2(form), key));
            }
            previous.push(message);
        }
    }
    if let Ok(Some(tag)) = &simple {
        let message = simple_message(body);
        if let Some(key) = keyring.find(now, tag, &[message.as_bytes()]) {
            return Ok(matched(Scheme::Simple, key));
        }
    }
    // A malformed header explains a failure better than "mismatch", but only once nothing
    // else matched: a garbled V2 must not hide a valid X-Signature.
    for result in [raw, v2, simple] {
        result?;
    }
    Err(SignatureError::Mismatch)
}

/// `hex(HMAC_SHA256(secret, raw_body))`: the `X-Signature` value.
pub fn sign_raw(key: &Key, body: &[u8]) -> String {
    hex::encode(key.tag(&[body]))
}

/// The `X-Signature-V2` value: HMAC over the body's canonical JSON in `form`.
pub fn sign_v2(
    key: &Key,
    body: &[u8],
    form: CanonicalForm,
) -> Result<String, crate::canonical::CanonicalError> {
    let canonical = CanonicalJson::parse(body)?.to_vec(form);
    Ok(hex::encode(key.tag(&[&canonical])))
}

/// The `X-Signature-Simple` value, computed from the body's own fields.
pub fn sign_simple(key: &Key, body: &[u8]) -> String {
    hex::encode(key.tag(&[simple_message(body).as_bytes()]))
}

/// The headers Didit sends with a delivery, computed exactly as Didit computes them: what
/// `riskhook sign` prints and what tests and the load generator send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignedHeaders {
    /// `X-Timestamp`.
    pub timestamp: String,
    /// `X-Signature` (raw body).
    pub signature: String,
    /// `X-Signature-V2` (canonical JSON); absent when the body is not JSON.
    pub signature_v2: Option<String>,
    /// `X-Signature-Simple`.
    pub signature_simple: String,
}

impl SignedHeaders {
    /// Signs `body` with `key` as Didit would at `timestamp` (Unix seconds).
    pub fn sign(key: &Key, body: &[u8], timestamp: i64) -> Self {
        Self {
            timestamp: timestamp.to_string(),
            signature: sign_raw(key, body),
            signature_v2: sign_v2(key, body, CanonicalForm::Python).ok(),
            signature_simple: sign_simple(key, body),
        }
    }

    /// `(header name, value)` pairs, in the order Didit lists them.
    pub fn pairs(&self) -> Vec<(&'static str, &str)> {
        let mut pairs = vec![
            ("X-Timestamp", self.timestamp.as_str()),
            ("X-Signature", self.signature.as_str()),
        ];
        if let Some(v2) = &self.signature_v2 {
            pairs.push(("X-Signature-V2", v2.as_str()));
        }
        pairs.push(("X-Signature-Simple", self.signature_simple.as_str()));
        pairs
    }
}

/// `"{timestamp}:{session_id}:{status}:{webhook_type}"`, every field read from the parsed body.
///
/// A missing field (or a body that is not a JSON object) contributes an empty string, as in
/// Didit's JavaScript sample; a non-string value contributes its JSON text, so an integer
/// timestamp renders as its digits.
pub fn simple_message(body: &[u8]) -> String {
    let value: serde_json::Value = serde_json::from_slice(body).unwrap_or_default();
    let field = |name: &str| match value.get(name) {
        None | Some(serde_json::Value::Null) => String::new(),
        Some(serde_json::Value::String(s)) => s.clone(),
        Some(other) => other.to_string(),
    };
    SIMPLE_FIELDS.map(field).join(":")
}

/// The top-level body fields `X-Signature-Simple` covers, in the order of its message. Nothing
/// else in a body verified by that scheme is authenticated.
pub const SIMPLE_FIELDS: [&str; 4] = ["timestamp", "session_id", "status", "webhook_type"];

fn decode_tag(header: &str, name: &'static str) -> Result<Tag, SignatureError> {
    let mut tag = [0u8; 32];
    hex::decode_to_slice(header.trim(), &mut tag)
        .map_err(|_| SignatureError::Malformed { header: name })?;
    Ok(tag)
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &str = "tno2NTeRC1ZK3sBOYlBJDyEzBVENl3pQ1AcZyAW0xnQ";

    fn ring() -> Keyring {
        Keyring::single(&Secret::new(SECRET)).expect("valid keyring")
    }

    fn key(secret: &str) -> Key {
        Key::new("k", &Secret::new(secret)).expect("key")
    }

    #[test]
    fn simple_vector_d_matches_the_spec() {
        let body = br#"{"timestamp":1780045046,"session_id":"11111111-2222-3333-4444-555555555555","status":"Approved","webhook_type":"status.updated"}"#;
        assert_eq!(
            simple_message(body),
            "1780045046:11111111-2222-3333-4444-555555555555:Approved:status.updated"
        );
        assert_eq!(
            sign_simple(&key(SECRET), body),
            "a89910f6cbe98f43c2fd40cc13b7a67b8bb6463cef1808fd2e60d81e4bdcbfed"
        );
    }

    #[test]
    fn simple_is_refused_unless_enabled() {
        let body = br#"{"timestamp":1,"session_id":"s","status":"Approved","webhook_type":"status.updated"}"#;
        let sig = sign_simple(&key(SECRET), body);
        let headers = SignatureHeaders {
            simple: Some(&sig),
            ..Default::default()
        };
        assert!(matches!(
            check(&ring(), &headers, body, 0, false),
            Err(SignatureError::Missing { simple_note }) if !simple_note.is_empty()
        ));
        let ok = check(&ring(), &headers, body, 0, true).expect("simple enabled");
        assert_eq!(ok.scheme, Scheme::Simple);
        assert!(!ok.scheme.covers_body());
    }

    #[test]
    fn every_key_of_the_ring_is_tried_and_the_matching_id_reported() {
        let old = Secret::new("old-secret");
        let new = Secret::new("new-secret");
        let (old_key, new_key) = (
            Key::new("2026-10", &old).expect("key"),
            Key::new("2026-11", &new).expect("key"),
        );
        let ring = Keyring::new(vec![old_key.clone(), new_key.clone()]).expect("ring");
        let body = b"{}";
        for (signer, id) in [(&old_key, "2026-10"), (&new_key, "2026-11")] {
            let sig = sign_raw(signer, body);
            let headers = SignatureHeaders {
                raw: Some(&sig),
                ..Default::default()
            };
            let ok = check(&ring, &headers, body, 0, false).expect("verifies");
            assert_eq!(ok.key_id, id);
            assert_eq!(ok.scheme, Scheme::Raw);
        }
    }

    #[test]
    fn a_key_past_its_not_after_no_longer_verifies() {
        let old = Key::new("old", &Secret::new("rotated-out")).expect("key");
        let ring = Keyring::new(vec![old.clone().with_not_after(100)]).expect("ring");
        let sig = sign_raw(&old, b"{}");
        let headers = SignatureHeaders {
            raw: Some(&sig),
            ..Default::default()
        };
        assert!(check(&ring, &headers, b"{}", 100, false).is_ok());
        assert_eq!(
            check(&ring, &headers, b"{}", 101, false),
            Err(SignatureError::Mismatch)
        );
    }

    #[test]
    fn a_malformed_v2_does_not_hide_a_valid_raw_signature() {
        let sig = sign_raw(&key(SECRET), b"{}");
        let headers = SignatureHeaders {
            raw: Some(&sig),
            v2: Some("zz"),
            ..Default::default()
        };
        assert!(check(&ring(), &headers, b"{}", 0, false).is_ok());
        let headers = SignatureHeaders {
            raw: None,
            v2: Some("zz"),
            ..Default::default()
        };
        assert_eq!(
            check(&ring(), &headers, b"{}", 0, false),
            Err(SignatureError::Malformed {
                header: "X-Signature-V2"
            })
        );
    }

    #[test]
    fn uppercase_hex_is_accepted() {
        let sig = sign_raw(&key(SECRET), b"{}").to_uppercase();
        let headers = SignatureHeaders {
            raw: Some(&sig),
            ..Default::default()
        };
        assert!(check(&ring(), &headers, b"{}", 0, false).is_ok());
    }

    #[test]
    fn keyring_rejects_empty_duplicate_and_blank() {
        let s = Secret::new("x");
        assert_eq!(Keyring::new(vec![]).err(), Some(KeyringError::Empty));
        assert_eq!(
            Keyring::new(vec![
                Key::new("a", &s).expect("key"),
                Key::new("a", &s).expect("key")
            ])
            .err(),
            Some(KeyringError::DuplicateId { id: "a".into() })
        );
        assert_eq!(Key::new("", &s).err(), Some(KeyringError::EmptyId));
        for id in ["k\0", "k\nINFO forged", "\u{1b}[2J"] {
            assert_eq!(Key::new(id, &s).err(), Some(KeyringError::ControlInId));
        }
        assert!(Key::new("2026-q4 rotation ✓", &s).is_ok());
        assert_eq!(
            Key::new("a", &Secret::new("")).err(),
            Some(KeyringError::EmptySecret { id: "a".into() })
        );
    }

    #[test]
    fn debug_output_never_shows_the_secret() {
        let secret = Secret::new("super-secret-value");
        let key = Key::new("k", &secret).expect("key");
        let ring = Keyring::new(vec![key.clone()]).expect("ring");
        for text in [
            format!("{secret:?}"),
            format!("{key:?}"),
            format!("{ring:?}"),
        ] {
            assert!(!text.contains("super-secret-value"), "{text}");
        }
    }
}
