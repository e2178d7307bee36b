//! Verifying one Didit delivery end to end, without I/O: freshness, signature, parsing, and the
//! body/header timestamp check, in that order.
//!
//! [`Verifier::verify`] is the single entry point that both the axum layer and the riskhook
//! service use, so the two cannot drift apart. Every way a delivery can be refused is a
//! [`Rejection`] that knows its HTTP status and a stable machine-readable code.

use std::time::Duration;

use serde_json::{Map, Value};

use crate::payload::{DiditEvent, PayloadError};
use crate::signature::{self, Keyring, Scheme, SignatureError, SignatureHeaders};

/// The receiver's policy: which keys, how fresh, and whether the weak scheme is accepted.
#[derive(Debug, Clone)]
pub struct Verifier {
    keyring: Keyring,
    tolerance: Duration,
    allow_simple: bool,
}

/// The request data [`Verifier::verify`] looks at.
#[derive(Debug, Clone, Copy, Default)]
pub struct Delivery<'a> {
    /// `X-Timestamp`: Unix seconds as decimal text.
    pub timestamp: Option<&'a str>,
    /// The three signature headers.
    pub signatures: SignatureHeaders<'a>,
    /// The body exactly as received.
    pub body: &'a [u8],
}

/// How a delivery was verified: recorded with the event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verification {
    /// The id of the keyring entry that matched.
    pub key_id: String,
    /// The scheme that matched.
    pub scheme: Scheme,
    /// `X-Timestamp`, Unix seconds.
    pub timestamp: i64,
}

impl Verification {
    /// Whether the body beyond the four envelope fields of `X-Signature-Simple` is
    /// authenticated. When it is not, decision data must be re-fetched before it is trusted.
    pub fn trusts_body(&self) -> bool {
        self.scheme.covers_body()
    }
}

/// Why a delivery was refused.
#[derive(Debug, thiserror::Error)]
pub enum Rejection {
    /// No `X-Timestamp` header.
    #[error("missing X-Timestamp header")]
    MissingTimestamp,
    /// `X-Timestamp` is not an integer number of seconds.
    #[error("X-Timestamp is not Unix seconds")]
    MalformedTimestamp,
    /// `X-Timestamp` is outside the freshness window.
    #[error(
        "X-Timestamp {timestamp} is {skew} s from the receiver's clock; the window is ±{tolerance} s"
    )]
    Stale {
        /// The header's value.
        timestamp: i64,
        /// `|now - timestamp|`.
        skew: u64,
        /// The configured window, seconds.
        tolerance: u64,
    },
    /// No signature header matched.
    #[error(transparent)]
    Signature(#[from] SignatureError),
    /// The MAC-covered body `timestamp` differs from the unauthenticated header: someone moved
    /// the header to get an old delivery through the freshness check.
    #[error("body timestamp {body} does not equal X-Timestamp {header}")]
    TimestampMismatch {
        /// The header's value.
        header: i64,
        /// The body's value.
        body: i64,
    },
    /// Authentic, but not JSON.
    #[error(transparent)]
    Payload(#[from] PayloadError),
}

impl Rejection {
    /// The HTTP status this rejection is answered with.
    ///
    /// Authentication failures are 401 (Didit does not retry it: a forged request gets nothing
    /// by trying again); a body that is not JSON is 400; JSON that is not a Didit event is 422.
    pub fn status(&self) -> u16 {
        match self {
            Rejection::MissingTimestamp
            | Rejection::MalformedTimestamp
            | Rejection::Stale { .. }
            | Rejection::Signature(_)
            | Rejection::TimestampMismatch { .. } => 401,
            Rejection::Payload(e) if e.is_syntax() => 400,
            Rejection::Payload(_) => 422,
        }
    }

    /// A stable, machine-readable reason: the problem type's last segment and a metric label.
    pub fn code(&self) -> &'static str {
        match self {
            Rejection::MissingTimestamp => "missing-timestamp",
            Rejection::MalformedTimestamp => "malformed-timestamp",
            Rejection::Stale { .. } => "stale-timestamp",
            Rejection::Signature(SignatureError::Missing { .. }) => "missing-signature",
            Rejection::Signature(SignatureError::Malformed { .. }) => "malformed-signature",
            Rejection::Signature(SignatureError::Mismatch) => "bad-signature",
            Rejection::TimestampMismatch { .. } => "timestamp-mismatch",
            Rejection::Payload(e) if e.is_syntax() => "invalid-json",
            Rejection::Payload(_) => "not-a-didit-event",
        }
    }

    /// A short human title for the problem body.
    pub fn title(&self) -> &'static str {
        match self.status() {
            401 => "Webhook authentication failed",
            400 => "Body is not valid JSON",
            _ => "Body is not a Didit event",
        }
    }
}

/// The event a body verified by `X-Signature-Simple` may be read as: its four signed top-level
/// fields and nothing else. The rest of the body (a `data` object, `vendor_data`, the decision)
/// is not covered by the MAC, so it must not be able to name another session, status or user;
/// it stays in the stored raw bytes, marked untrusted.
fn signed_simple_fields(body: &[u8]) -> Result<DiditEvent, PayloadError> {
    let value: Value = serde_json::from_slice(body).map_err(PayloadError::NotJson)?;
    let signed: Map<String, Value> = signature::SIMPLE_FIELDS
        .iter()
        .filter_map(|&name| Some((name.to_owned(), value.get(name)?.clone())))
        .collect();
    DiditEvent::from_value(Value::Object(signed))
}

impl Verifier {
    /// Didit's recommended freshness window.
    pub const DEFAULT_TOLERANCE: Duration = Duration::from_secs(300);

    /// A verifier with the default window that refuses `X-Signature-Simple`.
    pub fn new(keyring: Keyring) -> Self {
        Self {
            keyring,
            tolerance: Self::DEFAULT_TOLERANCE,
            allow_simple: false,
        }
    }

    /// Sets the freshness window, applied in both directions.
    #[must_use]
    pub fn with_tolerance(mut self, tolerance: Duration) -> Self {
        self.tolerance = tolerance;
        self
    }

    /// Accepts `X-Signature-Simple` when no stronger scheme verifies. Events verified this way
    /// report [`Verification::trusts_body`] as false.
    #[must_use]
    pub fn allow_simple(mut self, allow: bool) -> Self {
        self.allow_simple = allow;
        self
    }

    /// The keys in force.
    pub fn keyring(&self) -> &Keyring {
        &self.keyring
    }

    /// The freshness window.
    pub fn tolerance(&self) -> Duration {
        self.tolerance
    }

    /// Verifies one delivery at `now` (Unix seconds) and parses it.
    pub fn verify(
        &self,
        delivery: &Delivery<'_>,
        now: i64,
    ) -> Result<(DiditEvent, Verification), Rejection> {
        let timestamp = self.check_freshness(delivery.timestamp, now)?;
        let matched = signature::check(
            &self.keyring,
            &delivery.signatures,
            delivery.body,
            now,
            self.allow_simple,
        )?;
        let event = if matched.scheme.covers_body() {
            DiditEvent::from_slice(delivery.body)?
        } else {
            signed_simple_fields(delivery.body)?
        };
        if let Some(body) = event.timestamp
            && body != timestamp
        {
            return Err(Rejection::TimestampMismatch {
                header: timestamp,
                body,
            });
        }
        Ok((
            event,
            Verification {
                key_id: matched.key_id,
                scheme: matched.scheme,
                timestamp,
            },
        ))
    }

    fn check_freshness(&self, header: Option<&str>, now: i64) -> Result<i64, Rejection> {
        let header = header.ok_or(Rejection::MissingTimestamp)?;
        let timestamp: i64 = header
            .trim()
            .parse()
            .map_err(|_| Rejection::MalformedTimestamp)?;
        let skew = now.abs_diff(timestamp);
        let tolerance = self.tolerance.as_secs();
        if skew > tolerance {
            return Err(Rejection::Stale {
                timestamp,
                skew,
                tolerance,
            });
        }
        Ok(timestamp)
    }
}

impl DiditEvent {
    /// The delivery key: Didit's `event_id`, when the event has one.
    pub fn delivery_key(&self) -> Option<&str> {
        self.event_id.as_deref().filter(|id| !id.is_empty())
    }

    /// The content key: what makes two deliveries the same event even when Didit gives a retry a
    /// new `event_id` (its docs call `event_id` "unique per delivery attempt").
    ///
    /// `type|subject|status|timestamp`, each part with `|` and `\` escaped so that no two
    /// different tuples produce the same key.
    pub fn content_key(&self) -> String {
        let timestamp = self.timestamp.map(|t| t.to_string()).unwrap_or_default();
        let parts = [
            self.kind.as_str(),
            self.subject_id().unwrap_or_default(),
            self.status().unwrap_or_default(),
            &timestamp,
        ];
        let mut key = String::with_capacity(parts.iter().map(|p| p.len() + 1).sum());
        for (i, part) in parts.iter().enumerate() {
            if i > 0 {
                key.push('|');
            }
            for c in part.chars() {
                if c == '|' || c == '\\' {
                    key.push('\\');
                }
                key.push(c);
            }
        }
        key
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::signature::{Key, Secret, sign_raw};

    const NOW: i64 = 1_780_045_046;

    fn verifier() -> (Verifier, Key) {
        let key = Key::new("k1", &Secret::new("s3cret")).expect("key");
        (
            Verifier::new(Keyring::new(vec![key.clone()]).expect("ring")),
            key,
        )
    }

    fn body(ts: i64) -> Vec<u8> {
        format!(
            r#"{{"session_id":"s-1","status":"Approved","timestamp":{ts},"webhook_type":"status.updated"}}"#
        )
        .into_bytes()
    }

    fn deliver(
        v: &Verifier,
        key: &Key,
        header_ts: &str,
        body: &[u8],
        now: i64,
    ) -> Result<Verification, Rejection> {
        let sig = sign_raw(key, body);
        let delivery = Delivery {
            timestamp: Some(header_ts),
            signatures: SignatureHeaders {
                raw: Some(&sig),
                ..Default::default()
            },
            body,
        };
        v.verify(&delivery, now)
            .map(|(_, verification)| verification)
    }

    #[test]
    fn a_fresh_signed_delivery_verifies_and_records_key_and_scheme() {
        let (v, key) = verifier();
        let ok = deliver(&v, &key, &NOW.to_string(), &body(NOW), NOW).expect("verifies");
        assert_eq!(ok.key_id, "k1");
        assert_eq!(ok.scheme, Scheme::Raw);
        assert!(ok.trusts_body());
    }

    #[test]
    fn the_window_applies_in_both_directions_inclusive() {
        let (v, key) = verifier();
        for (ts, ok) in [
            (NOW - 300, true),
            (NOW + 300, true),
            (NOW - 301, false),
            (NOW + 301, false),
        ] {
            let result = deliver(&v, &key, &ts.to_string(), &body(ts), NOW);
            assert_eq!(result.is_ok(), ok, "ts offset {}", ts - NOW);
            if !ok {
                assert_eq!(result.expect_err("stale").code(), "stale-timestamp");
            }
        }
    }

    #[test]
    fn a_moved_header_timestamp_is_caught_by_the_body_timestamp() {
        let (v, key) = verifier();
        let old = body(NOW - 3600);
        let err = deliver(&v, &key, &NOW.to_string(), &old, NOW).expect_err("mismatch");
        assert_eq!(err.code(), "timestamp-mismatch");
        assert_eq!(err.status(), 401);
    }

    #[test]
    fn rejections_map_to_their_status_codes() {
        let (v, key) = verifier();
        let cases: [(&[u8], u16, &str); 3] = [
            (b"not json", 400, "invalid-json"),
            (b"[1,2]", 422, "not-a-didit-event"),
            (b"{\"hello\":1}", 422, "not-a-didit-event"),
        ];
        for (body, status, code) in cases {
            let err = deliver(&v, &key, &NOW.to_string(), body, NOW).expect_err("rejected");
            assert_eq!((err.status(), err.code()), (status, code), "{err}");
        }
        let missing = v
            .verify(
                &Delivery {
                    body: b"{}",
                    ..Default::default()
                },
                NOW,
            )
            .expect_err("no timestamp");
        assert_eq!(missing.code(), "missing-timestamp");
        let malformed = v
            .verify(
                &Delivery {
                    timestamp: Some("yesterday"),
                    body: b"{}",
                    ..Default::default()
                },
                NOW,
            )
            .expect_err("bad timestamp");
        assert_eq!(malformed.code(), "malformed-timestamp");
        let unsigned = v
            .verify(
                &Delivery {
                    timestamp: Some("1780045046"),
                    body: b"{}",
                    ..Default::default()
                },
                NOW,
            )
            .expect_err("unsigned");
        assert_eq!(
            (unsigned.status(), unsigned.code()),
            (401, "missing-signature")
        );
    }

    #[test]
    fn content_keys_escape_separators() {
        let a = DiditEvent::from_slice(
            br#"{"webhook_type":"status.updated","session_id":"a|b","status":"c","timestamp":1}"#,
        )
        .expect("parses");
        let b = DiditEvent::from_slice(
            br#"{"webhook_type":"status.updated","session_id":"a","status":"b|c","timestamp":1}"#,
        )
        .expect("parses");
        assert_ne!(a.content_key(), b.content_key());
        assert_eq!(a.content_key(), r"status.updated|a\|b|c|1");
    }
}
