//! The NATS JetStream sink: publishes each notification to a JetStream stream, on one subject
//! per user, as one more endpoint of the outbox.
//!
//! It owns the connection, the stream and one publish; nothing else. Claiming, ordering,
//! retrying and recording are the dispatcher's and the store's, exactly as for an HTTP
//! endpoint, so NATS gets the same guarantees: at least once, in order per user (the next
//! delivery of a user is claimed only after this one is acknowledged), the same message id on
//! every attempt. JetStream turns "at least once" into "once" for re-publishes within the
//! stream's duplicate window: every publish carries `Nats-Msg-Id` = the outbox message id.
//!
//! Subjects are `<subject_prefix>.<token>`, the token being the user id encoded by
//! [`encode_subject_token`] (subject tokens cannot hold `.`, `*`, `>` or whitespace).
//!
//! A NATS outage never stops the service: the client connects and reconnects in the
//! background, a publish while disconnected fails at once (it is retried on the usual
//! schedule, rather than queued in the client, where a stale copy could be sent long after
//! its attempt was given up), and the stream is created on the first publish that finds it
//! missing.

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use anyhow::Context as _;
use async_nats::connection::State;
use async_nats::jetstream::{self, context::PublishErrorKind, stream};
use async_nats::{ConnectOptions, HeaderMap, header};
use bytes::Bytes;

use crate::config::{NatsAuth, NatsConfig};

/// The JetStream sink, cheap to clone.
#[derive(Clone)]
pub struct NatsSink {
    inner: Arc<Inner>,
}

struct Inner {
    endpoint_id: String,
    client: async_nats::Client,
    jetstream: jetstream::Context,
    stream: String,
    subject_prefix: String,
    duplicate_window: Duration,
    timeout: Duration,
    /// Whether the stream is known to exist. Checked (and created when missing) before the
    /// first publish, and again after a publish finds no stream (deleted under us).
    stream_ready: AtomicBool,
}

/// What JetStream acknowledged.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Published {
    /// The stream that stored it.
    pub stream: String,
    /// Its sequence number there (the earlier copy's, for a duplicate).
    pub sequence: u64,
    /// JetStream already had a message with this id: an earlier attempt was stored but its
    /// acknowledgement never reached us. Success all the same.
    pub duplicate: bool,
}

/// Why a publish did not get an acknowledgement. The texts name no server URL or credential.
#[derive(Debug, thiserror::Error)]
pub enum NatsError {
    /// The client is (re)connecting.
    #[error("not connected to NATS")]
    NotConnected,
    /// The stream could not be looked up or created.
    #[error("JetStream stream {stream} unavailable: {reason}")]
    Stream {
        /// The configured stream.
        stream: String,
        /// What the server or client said.
        reason: String,
    },
    /// The server refused the message or the client could not send it.
    #[error("JetStream publish failed: {0}")]
    Publish(String),
    /// No answer within the per-attempt timeout.
    #[error("timed out waiting for JetStream")]
    TimedOut,
}

impl NatsSink {
    /// Sets up the client for `config`, with `timeout` per attempt, and starts preparing the
    /// stream in the background. Does not wait for a connection: NATS may come up later.
    /// Fails only on a local problem (an unreadable credentials file).
    pub async fn connect(config: &NatsConfig, timeout: Duration) -> anyhow::Result<Self> {
        let options = match &config.auth {
            NatsAuth::None => ConnectOptions::new(),
            NatsAuth::UserPassword { user, password } => {
                ConnectOptions::with_user_and_password(user.clone(), password.clone())
            }
            NatsAuth::Token(token) => ConnectOptions::with_token(token.clone()),
            NatsAuth::CredentialsFile(path) => ConnectOptions::with_credentials_file(path)
                .await
                .with_context(|| {
                    format!(
                        "cannot read the NATS credentials file nats.credentials_file ({})",
                        path.display()
                    )
                })?,
        };
        let events = ConnectionEvents::default();
        let client = options
            .event_callback(move |event| {
                let events = events.clone();
                async move { events.log(&event, std::time::Instant::now()) }
            })
            .name(concat!("riskhook/", env!("CARGO_PKG_VERSION")))
            // Connect in the background: a NATS outage at start must not stop the service.
            .retry_on_initial_connect()
            .max_reconnects(None)
            .connection_timeout(timeout)
            .connect(config.servers.addrs())
            .await
            .context("cannot set up the NATS client")?;
        let mut jetstream = jetstream::new(client.clone());
        jetstream.set_timeout(timeout);
        let sink = Self {
            inner: Arc::new(Inner {
                endpoint_id: config.endpoint_id.clone(),
                client,
                jetstream,
                stream: config.stream.clone(),
                subject_prefix: config.subject_prefix.clone(),
                duplicate_window: config.duplicate_window,
                timeout,
                stream_ready: AtomicBool::new(false),
            }),
        };
        tracing::info!(
            servers = ?config.servers,
            stream = %config.stream,
            subject_prefix = %config.subject_prefix,
            endpoint = %config.endpoint_id,
            "NATS JetStream sink configured; connecting in the background"
        );
        tokio::spawn(sink.clone().prepare());
        Ok(sink)
    }

    /// The endpoint id its deliveries carry.
    pub fn endpoint_id(&self) -> &str {
        &self.inner.endpoint_id
    }

    /// The stream it publishes to.
    pub fn stream(&self) -> &str {
        &self.inner.stream
    }

    /// A handle that tells whether the client is connected (for `/readyz`).
    pub fn probe(&self) -> NatsProbe {
        NatsProbe {
            client: self.inner.client.clone(),
        }
    }

    /// The subject of `user_id`'s messages: `<subject_prefix>.<encoded user id>`.
    pub fn subject_for(&self, user_id: &str) -> String {
        format!(
            "{}.{}",
            self.inner.subject_prefix,
            encode_subject_token(user_id)
        )
    }

    /// Makes sure the stream exists, creating it (subjects `<subject_prefix>.>`, the
    /// configured duplicate window) when missing. An existing stream is left as it is.
    pub async fn ensure_stream(&self) -> Result<(), NatsError> {
        let inner = &self.inner;
        if inner.stream_ready.load(Ordering::Acquire) {
            return Ok(());
        }
        self.check_connected()?;
        let config = stream::Config {
            name: inner.stream.clone(),
            subjects: vec![format!("{}.>", inner.subject_prefix)],
            duplicate_window: inner.duplicate_window,
            description: Some("riskhook user.updated notifications".to_owned()),
            ..stream::Config::default()
        };
        let found =
            tokio::time::timeout(inner.timeout, inner.jetstream.get_or_create_stream(config))
                .await
                .map_err(|_| NatsError::TimedOut)?
                .map_err(|e| NatsError::Stream {
                    stream: inner.stream.clone(),
                    reason: e.to_string(),
                })?;
        let info = found.cached_info();
        if info.config.duplicate_window < inner.duplicate_window {
            tracing::warn!(
                stream = %inner.stream,
                duplicate_window = ?info.config.duplicate_window,
                configured = ?inner.duplicate_window,
                "the existing NATS stream remembers message ids for less than nats.duplicate_window: a late re-publish may be stored twice"
            );
        }
        tracing::info!(
            stream = %inner.stream,
            subjects = ?info.config.subjects,
            messages = info.state.messages,
            "NATS stream ready"
        );
        inner.stream_ready.store(true, Ordering::Release);
        Ok(())
    }

    /// Publishes one notification about `user_id` with `message_id` as its `Nats-Msg-Id` and
    /// waits for JetStream's acknowledgement, all within the per-attempt timeout.
    pub async fn publish(
        &self,
        user_id: &str,
        message_id: &str,
        payload: impl Into<Bytes>,
    ) -> Result<Published, NatsError> {
        self.ensure_stream().await?;
        self.check_connected()?;
        let inner = &self.inner;
        let mut headers = HeaderMap::new();
        headers.insert(header::NATS_MESSAGE_ID, message_id);
        // Only our stream may store it, whatever other streams listen on these subjects.
        headers.insert(header::NATS_EXPECTED_STREAM, inner.stream.as_str());
        headers.insert("Content-Type", "application/json");
        let subject = self.subject_for(user_id);
        let payload = payload.into();
        let publish = async {
            let ack = inner
                .jetstream
                .publish_with_headers(subject, headers, payload)
                .await?;
            ack.await
        };
        match tokio::time::timeout(inner.timeout, publish).await {
            Err(_) => Err(NatsError::TimedOut),
            Ok(Ok(ack)) => Ok(Published {
                stream: ack.stream,
                sequence: ack.sequence,
                duplicate: ack.duplicate,
            }),
            Ok(Err(e)) => {
                if e.kind() == PublishErrorKind::StreamNotFound {
                    // Deleted since we checked: create it again on the next attempt.
                    inner.stream_ready.store(false, Ordering::Release);
                }
                Err(NatsError::Publish(e.to_string()))
            }
        }
    }

    fn check_connected(&self) -> Result<(), NatsError> {
        match self.inner.client.connection_state() {
            State::Connected => Ok(()),
            State::Pending | State::Disconnected => Err(NatsError::NotConnected),
        }
    }

    /// At start: waits up to one timeout for the connection, then prepares the stream, so a
    /// misconfiguration shows in the log at once rather than at the first change.
    async fn prepare(self) {
        let deadline = tokio::time::Instant::now() + self.inner.timeout;
        while self.check_connected().is_err() && tokio::time::Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        if let Err(e) = self.ensure_stream().await {
            tracing::warn!(
                error = %e,
                endpoint = %self.inner.endpoint_id,
                "NATS is not ready yet; notifications wait in the outbox and the stream is checked again before each publish"
            );
        }
    }
}

/// The NATS connection's events in the log: losing the connection and errors at WARN with
/// their cause, each kind at most once a minute (a server down for hours, or one that keeps
/// refusing, writes a line a minute, with how many were left out), getting it back at INFO.
#[derive(Debug, Clone, Default)]
struct ConnectionEvents {
    last: Arc<std::sync::Mutex<std::collections::HashMap<&'static str, (std::time::Instant, u64)>>>,
}

impl ConnectionEvents {
    const EVERY: Duration = Duration::from_secs(60);

    /// Whether a `kind` event at `now` is logged: `Some(left out since the last line)`, or
    /// `None` within a minute of the last line of its kind.
    fn admit(&self, kind: &'static str, now: std::time::Instant) -> Option<u64> {
        let mut last = self
            .last
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        match last.get_mut(kind) {
            Some((at, skipped)) if now.duration_since(*at) < Self::EVERY => {
                *skipped += 1;
                None
            }
            Some((at, skipped)) => {
                *at = now;
                Some(std::mem::take(skipped))
            }
            None => {
                last.insert(kind, (now, 0));
                Some(0)
            }
        }
    }

    fn log(&self, event: &async_nats::Event, now: std::time::Instant) {
        let kind = match event {
            async_nats::Event::Connected => {
                tracing::info!("NATS connected");
                return;
            }
            async_nats::Event::Disconnected => "disconnected",
            async_nats::Event::ClientError(_) => "client error",
            async_nats::Event::ServerError(_) => "server error",
            async_nats::Event::SlowConsumer(_) => "slow consumer",
            async_nats::Event::LameDuckMode
            | async_nats::Event::Draining
            | async_nats::Event::Closed => {
                tracing::info!(event = %event, "NATS connection");
                return;
            }
        };
        let Some(suppressed) = self.admit(kind, now) else {
            return;
        };
        tracing::warn!(
            event = %event,
            suppressed_since_last = suppressed,
            "NATS connection problem; notifications to NATS wait in the outbox until it is resolved"
        );
    }
}

impl fmt::Debug for NatsSink {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NatsSink")
            .field("endpoint_id", &self.inner.endpoint_id)
            .field("stream", &self.inner.stream)
            .field("subject_prefix", &self.inner.subject_prefix)
            .finish_non_exhaustive()
    }
}

/// Whether the NATS client is connected, for the readiness check.
#[derive(Clone)]
pub struct NatsProbe {
    client: async_nats::Client,
}

impl NatsProbe {
    /// Connected now (not connecting, reconnecting or disconnected).
    pub fn is_connected(&self) -> bool {
        self.client.connection_state() == State::Connected
    }
}

impl fmt::Debug for NatsProbe {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NatsProbe")
            .field("connected", &self.is_connected())
            .finish()
    }
}

const HEX: &[u8; 16] = b"0123456789ABCDEF";

/// A user id as one subject token: ASCII letters, digits, `_` and `-` stay; every other byte
/// of its UTF-8 (`.`, `*`, `>`, `~`, whitespace, non-ASCII …) becomes `~` and two upper-case
/// hex digits. The empty id is `~`. One to one: [`decode_subject_token`] reverses it.
pub fn encode_subject_token(user_id: &str) -> String {
    if user_id.is_empty() {
        return "~".to_owned();
    }
    let mut token = String::with_capacity(user_id.len());
    for byte in user_id.bytes() {
        if is_kept(byte) {
            token.push(char::from(byte));
        } else {
            token.push('~');
            token.push(char::from(HEX[usize::from(byte >> 4)]));
            token.push(char::from(HEX[usize::from(byte & 0x0F)]));
        }
    }
    token
}

/// The user id a subject token encodes, or `None` when `token` is not exactly what
/// [`encode_subject_token`] makes of some id (so no two tokens decode to the same id).
pub fn decode_subject_token(token: &str) -> Option<String> {
    if token == "~" {
        return Some(String::new());
    }
    let mut bytes = Vec::with_capacity(token.len());
    let mut rest = token.bytes();
    while let Some(byte) = rest.next() {
        if is_kept(byte) {
            bytes.push(byte);
        } else if byte == b'~' {
            let high = hex_value(rest.next()?)?;
            let low = hex_value(rest.next()?)?;
            let decoded = high << 4 | low;
            if is_kept(decoded) {
                return None;
            }
            bytes.push(decoded);
        } else {
            return None;
        }
    }
    if bytes.is_empty() {
        return None;
    }
    String::from_utf8(bytes).ok()
}

fn is_kept(byte: u8) -> bool {
    byte.is_ascii_alphanumeric() || byte == b'_' || byte == b'-'
}

fn hex_value(digit: u8) -> Option<u8> {
    match digit {
        b'0'..=b'9' => Some(digit - b'0'),
        b'A'..=b'F' => Some(digit - b'A' + 10),
        _ => None,
    }
}

#[cfg(test)]
mod tests {

    #[test]
    fn connection_problems_are_logged_once_a_minute_per_kind_with_what_was_left_out() {
        let events = ConnectionEvents::default();
        let t0 = std::time::Instant::now();
        let at = |s: u64| t0 + Duration::from_secs(s);
        assert_eq!(events.admit("disconnected", at(0)), Some(0));
        assert_eq!(events.admit("disconnected", at(10)), None);
        assert_eq!(events.admit("disconnected", at(59)), None);
        assert_eq!(events.admit("client error", at(59)), Some(0), "kinds apart");
        assert_eq!(events.admit("disconnected", at(60)), Some(2));
        assert_eq!(events.admit("disconnected", at(130)), Some(0));
    }

    use super::*;
    use proptest::prelude::*;

    #[test]
    fn subject_tokens_keep_plain_ids_and_escape_everything_else() {
        let cases = [
            ("user-42_A", "user-42_A"),
            ("jane.doe@x.com", "jane~2Edoe~40x~2Ecom"),
            ("a b*c>d", "a~20b~2Ac~3Ed"),
            ("~", "~7E"),
            ("ü", "~C3~BC"),
            ("", "~"),
        ];
        for (id, token) in cases {
            assert_eq!(encode_subject_token(id), token, "{id:?}");
            assert_eq!(decode_subject_token(token).as_deref(), Some(id), "{token}");
        }
    }

    #[test]
    fn only_canonical_tokens_decode() {
        // Escaping a kept character, lower-case hex, a short or bad escape, a stray character,
        // bytes that are not UTF-8: none is what the encoder makes.
        for token in ["~41", "~2e", "~2", "", "a~ZZ", "a.b", "a b", "~FF", "~~"] {
            assert_eq!(decode_subject_token(token), None, "{token}");
        }
    }

    proptest! {
        #[test]
        fn every_id_round_trips_through_one_valid_subject_token(id in any::<String>()) {
            let token = encode_subject_token(&id);
            prop_assert!(!token.is_empty());
            prop_assert!(token.bytes().all(|b| is_kept(b) || b == b'~'), "{}", token);
            prop_assert_eq!(decode_subject_token(&token), Some(id));
        }

        #[test]
        fn a_decoded_token_encodes_back_to_itself(token in "[A-Za-z0-9_~-]{0,12}") {
            if let Some(id) = decode_subject_token(&token) {
                prop_assert_eq!(encode_subject_token(&id), token);
            }
        }
    }
}
