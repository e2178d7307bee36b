//! `DiditWebhookLayer` and the `VerifiedDiditEvent` extractor driven through a `Router` with
//! `oneshot`, no network: what reaches the handler, every rejection's problem+json body, key
//! rotation, replay protection (including the in-flight 409) and that no secret leaks.
#![cfg(feature = "axum")]
#![allow(clippy::unwrap_used)]

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use axum::body::Body;
use axum::http::{HeaderMap, Request, StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::post;
use axum::{Json, Router};
use riskhook_didit::axum::{DiditWebhookLayer, VerifiedDiditEvent};
use riskhook_didit::canonical::{CanonicalForm, CanonicalJson};
use riskhook_didit::signature::{Key, Keyring, Scheme, Secret, SignedHeaders, sign_raw};
use riskhook_didit::webhook::Verifier;
use serde_json::{Value, json};
use tokio::sync::Notify;
use tower::ServiceExt;

/// The pinned "now" of every test, Unix seconds.
const NOW: i64 = 1_780_045_046;
const SECRET: &str = "s3cret-value-xyz";
const KEY_ID: &str = "k-2026-11";

fn key() -> Key {
    Key::new(KEY_ID, &Secret::new(SECRET)).unwrap()
}

fn verifier() -> Verifier {
    Verifier::new(Keyring::new(vec![key()]).unwrap())
}

/// The layer under test with time pinned to [`NOW`].
fn layer(verifier: Verifier) -> DiditWebhookLayer {
    DiditWebhookLayer::new(verifier).clock(Arc::new(|| NOW))
}

/// A flat `status.updated` event, keys sorted and compact (so raw bytes == canonical JSON).
fn event(event_id: &str, session: &str, status: &str, timestamp: i64) -> Vec<u8> {
    format!(
        r#"{{"event_id":"{event_id}","session_id":"{session}","status":"{status}","timestamp":{timestamp},"vendor_data":"user-42","webhook_type":"status.updated"}}"#
    )
    .into_bytes()
}

fn approved() -> Vec<u8> {
    event("evt-1", "sess-1", "Approved", NOW)
}

// ---------------------------------------------------------------------------------------------
// The app under test.

/// What the handler does besides counting and echoing the event.
#[derive(Clone, Default)]
struct Behaviour {
    /// The first `failures` calls answer 500.
    failures: usize,
    /// When set, the handler announces it is running and waits to be released.
    gate: Option<Gate>,
}

#[derive(Clone, Default)]
struct Gate {
    entered: Arc<Notify>,
    release: Arc<Notify>,
}

struct App {
    router: Router,
    calls: Arc<AtomicUsize>,
}

impl App {
    /// A route wrapped in `layer` whose handler always answers 200.
    fn new(layer: DiditWebhookLayer) -> Self {
        Self::with(Some(layer), Behaviour::default())
    }

    fn with(layer: Option<DiditWebhookLayer>, behaviour: Behaviour) -> Self {
        let calls = Arc::new(AtomicUsize::new(0));
        let counter = calls.clone();
        let handler = move |verified: VerifiedDiditEvent| {
            let calls = counter.clone();
            let behaviour = behaviour.clone();
            async move {
                let n = calls.fetch_add(1, Ordering::SeqCst);
                if let Some(gate) = &behaviour.gate {
                    gate.entered.notify_one();
                    gate.release.notified().await;
                }
                let status = if n < behaviour.failures {
                    StatusCode::INTERNAL_SERVER_ERROR
                } else {
                    StatusCode::OK
                };
                let event = &verified.event;
                let verification = &verified.verification;
                let body = json!({
                    "kind": event.kind.as_str(),
                    "session_id": event.session_id(),
                    "session_status": event.status(),
                    "event_id": event.event_id,
                    "scheme": verification.scheme.as_str(),
                    "key_id": verification.key_id,
                    "timestamp": verification.timestamp,
                    "trusts_body": verification.trusts_body(),
                    "received_at": verified.received_at,
                    "raw_len": verified.raw.len(),
                });
                (status, Json(body)).into_response()
            }
        };
        let route = match layer {
            Some(layer) => post(handler).route_layer(layer),
            None => post(handler),
        };
        Self {
            router: Router::new().route("/hook", route),
            calls,
        }
    }

    fn calls(&self) -> usize {
        self.calls.load(Ordering::SeqCst)
    }

    async fn send(&self, request: Request<Body>) -> Reply {
        Reply::read(self.router.clone().oneshot(request).await.unwrap()).await
    }

    /// Sends `request`, asserts it was refused with `status`/`code` as problem+json, and that
    /// the handler did not run.
    #[track_caller]
    fn rejects(
        &self,
        request: Request<Body>,
        status: u16,
        code: &str,
    ) -> impl Future<Output = Reply> {
        let caller = std::panic::Location::caller();
        let code = code.to_owned();
        async move {
            let before = self.calls();
            let reply = self.send(request).await;
            reply.assert_problem_at(status, &code, caller);
            assert_eq!(
                self.calls(),
                before,
                "handler ran for a `{code}` rejection ({caller})"
            );
            reply
        }
    }
}

struct Reply {
    status: StatusCode,
    headers: HeaderMap,
    body: Vec<u8>,
}

impl Reply {
    async fn read(response: axum::response::Response) -> Self {
        let (parts, body) = response.into_parts();
        let body = axum::body::to_bytes(body, usize::MAX)
            .await
            .unwrap()
            .to_vec();
        Self {
            status: parts.status,
            headers: parts.headers,
            body,
        }
    }

    fn json(&self) -> Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("body is not JSON ({e}): {}", self.text()))
    }

    fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    fn content_type(&self) -> &str {
        self.headers
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
    }

    #[track_caller]
    fn assert_ok(&self) -> Value {
        assert_eq!(self.status, StatusCode::OK, "{}", self.text());
        self.json()
    }

    fn assert_problem_at(&self, status: u16, code: &str, caller: &std::panic::Location<'_>) {
        let text = self.text();
        assert_eq!(self.status.as_u16(), status, "{caller}: {text}");
        assert_eq!(
            self.content_type(),
            "application/problem+json",
            "{caller}: {text}"
        );
        let body = self.json();
        assert_eq!(body["code"], code, "{caller}: {text}");
        assert_eq!(body["status"], status, "{caller}: {text}");
        assert_eq!(
            body["type"],
            format!("urn:riskhook:problem:{code}"),
            "{caller}: {text}"
        );
        assert!(
            body["title"].as_str().is_some_and(|t| !t.is_empty()),
            "{caller}: {text}"
        );
        assert!(
            body["detail"].as_str().is_some_and(|d| !d.is_empty()),
            "{caller}: {text}"
        );
    }
}

// ---------------------------------------------------------------------------------------------
// Requests.

/// A POST to `/hook` with exactly `headers`.
fn post_with(headers: &[(&str, &str)], body: impl Into<Body>) -> Request<Body> {
    let mut request = Request::builder().method("POST").uri("/hook");
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    request.body(body.into()).unwrap()
}

/// `body` signed by `key` at `timestamp` with every header Didit sends.
fn signed(key: &Key, body: &[u8], timestamp: i64) -> Request<Body> {
    signed_only(key, body, timestamp, |_| true)
}

/// `body` signed by `key` at `timestamp`, keeping only the headers `keep` accepts.
fn signed_only(
    key: &Key,
    body: &[u8],
    timestamp: i64,
    keep: impl Fn(&str) -> bool,
) -> Request<Body> {
    let headers = SignedHeaders::sign(key, body, timestamp);
    let pairs: Vec<_> = headers
        .pairs()
        .into_iter()
        .filter(|(name, _)| keep(name))
        .collect();
    post_with(&pairs, body.to_vec())
}

/// A body that yields its bytes as a stream: no `Content-Length` and no exact size hint, so
/// only the layer's running count can stop it.
fn streaming(bytes: Vec<u8>) -> Body {
    let body = Body::from_stream(Body::from(bytes).into_data_stream());
    assert!(axum::body::HttpBody::size_hint(&body).exact().is_none());
    body
}

// ---------------------------------------------------------------------------------------------
// 1, 2. What reaches the handler.

#[tokio::test]
async fn a_correctly_signed_delivery_reaches_the_handler_with_the_typed_event() {
    let app = App::new(layer(verifier()));
    let body = approved();
    let reply = app.send(signed(&key(), &body, NOW)).await;
    let seen = reply.assert_ok();
    assert_eq!(app.calls(), 1);
    assert_eq!(seen["kind"], "status.updated");
    assert_eq!(seen["session_id"], "sess-1");
    assert_eq!(seen["session_status"], "Approved");
    assert_eq!(seen["event_id"], "evt-1");
    assert_eq!(seen["scheme"], Scheme::Raw.as_str());
    assert_eq!(seen["key_id"], KEY_ID);
    assert_eq!(seen["timestamp"], NOW);
    assert_eq!(seen["trusts_body"], true);
    assert_eq!(seen["received_at"], NOW);
    assert_eq!(seen["raw_len"], body.len());
}

#[tokio::test]
async fn the_handler_may_read_the_body_again_after_the_layer() {
    // The layer buffers the body and hands the handler the same bytes.
    let router = Router::new().route(
        "/hook",
        post(|_: VerifiedDiditEvent, body: axum::body::Bytes| async move { body.to_vec() })
            .route_layer(layer(verifier())),
    );
    let body = approved();
    let response = router.oneshot(signed(&key(), &body, NOW)).await.unwrap();
    let reply = Reply::read(response).await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(reply.body, body);
}

#[tokio::test]
async fn a_v2_only_delivery_re_encoded_with_whitespace_and_reordered_keys_still_verifies() {
    // Needs the real canonical module (a stub would sign the bytes as given).
    let canonical = CanonicalJson::parse(b"{ \"a\" : 1 }").unwrap();
    assert_eq!(canonical.to_vec(CanonicalForm::Python), b"{\"a\":1}");
    let app = App::new(layer(verifier()));
    let compact = approved();
    let headers = SignedHeaders::sign(&key(), &compact, NOW);
    let v2 = headers.signature_v2.clone().unwrap();
    let reencoded = format!(
        "{{\n  \"webhook_type\" : \"status.updated\",\n  \"timestamp\" : {NOW},\n  \
         \"status\" : \"Approved\" ,\n  \"session_id\" : \"sess-1\",\n  \
         \"vendor_data\" : \"user-42\",\n  \"event_id\" : \"evt-1\"\n}}\n"
    );
    let reply = app
        .send(post_with(
            &[("X-Timestamp", &headers.timestamp), ("X-Signature-V2", &v2)],
            reencoded,
        ))
        .await;
    let seen = reply.assert_ok();
    assert_eq!(seen["scheme"], "v2");
    assert_eq!(seen["key_id"], KEY_ID);
    assert_eq!(seen["trusts_body"], true);
    assert_eq!(app.calls(), 1);
}

#[tokio::test]
async fn bodies_verified_on_the_blocking_pool_come_to_the_same_outcomes() {
    // Every body handed to the blocking pool: the typed event, each scheme and each refusal
    // must be exactly what verifying in place gives.
    let app = App::new(layer(verifier()).offload_over(0));
    let seen = app.send(signed(&key(), &approved(), NOW)).await.assert_ok();
    assert_eq!(seen["session_status"], "Approved");
    assert_eq!(seen["scheme"], Scheme::Raw.as_str());
    assert_eq!(seen["key_id"], KEY_ID);
    assert_eq!(seen["received_at"], NOW);
    let another = event("evt-2", "sess-2", "Approved", NOW); // the first is now a replay
    let v2_only = signed_only(&key(), &another, NOW, |name| {
        name == "X-Timestamp" || name == "X-Signature-V2"
    });
    assert_eq!(app.send(v2_only).await.assert_ok()["scheme"], "v2");
    let stranger = Key::new(KEY_ID, &Secret::new("not-the-secret")).unwrap();
    app.rejects(signed(&stranger, &approved(), NOW), 401, "bad-signature")
        .await;
    app.rejects(
        signed(&key(), &approved(), NOW - 301),
        401,
        "stale-timestamp",
    )
    .await;
    app.rejects(signed(&key(), b"not json", NOW), 400, "invalid-json")
        .await;
    assert_eq!(app.calls(), 2);
}

#[tokio::test]
async fn a_body_over_the_default_offload_size_verifies() {
    let padding = "x".repeat(DiditWebhookLayer::DEFAULT_OFFLOAD_OVER);
    let body = format!(
        "{{\"webhook_type\":\"status.updated\",\"timestamp\":{NOW},\"status\":\"Approved\",\
         \"session_id\":\"sess-1\",\"vendor_data\":\"user-42\",\"event_id\":\"evt-1\",\
         \"note\":\"{padding}\"}}"
    )
    .into_bytes();
    assert!(body.len() > DiditWebhookLayer::DEFAULT_OFFLOAD_OVER);
    let app = App::new(layer(verifier()));
    let seen = app.send(signed(&key(), &body, NOW)).await.assert_ok();
    assert_eq!(seen["session_status"], "Approved");
    assert_eq!(seen["raw_len"], body.len());
}

// ---------------------------------------------------------------------------------------------
// 3. Rejections: status, problem+json, code, handler not called.

#[tokio::test]
async fn a_delivery_without_any_signature_header_is_401_missing_signature() {
    let app = App::new(layer(verifier()));
    let request = signed_only(&key(), &approved(), NOW, |name| name == "X-Timestamp");
    app.rejects(request, 401, "missing-signature").await;
}

#[tokio::test]
async fn a_delivery_signed_with_another_secret_is_401_bad_signature() {
    let app = App::new(layer(verifier()));
    let stranger = Key::new(KEY_ID, &Secret::new("not-the-secret")).unwrap();
    app.rejects(signed(&stranger, &approved(), NOW), 401, "bad-signature")
        .await;
}

#[tokio::test]
async fn a_signature_that_is_not_64_hex_characters_is_401_malformed_signature() {
    let app = App::new(layer(verifier()));
    let ts = NOW.to_string();
    for bad in ["not-hex", "abcd", &"g".repeat(64), &"a".repeat(66)] {
        let request = post_with(&[("X-Timestamp", &ts), ("X-Signature", bad)], approved());
        app.rejects(request, 401, "malformed-signature").await;
        let request = post_with(&[("X-Timestamp", &ts), ("X-Signature-V2", bad)], approved());
        app.rejects(request, 401, "malformed-signature").await;
    }
}

#[tokio::test]
async fn a_well_formed_but_wrong_signature_is_401_bad_signature() {
    let app = App::new(layer(verifier()));
    let ts = NOW.to_string();
    let zeros = "0".repeat(64);
    let request = post_with(&[("X-Timestamp", &ts), ("X-Signature", &zeros)], approved());
    app.rejects(request, 401, "bad-signature").await;
}

#[tokio::test]
async fn a_delivery_without_x_timestamp_is_401_missing_timestamp() {
    let app = App::new(layer(verifier()));
    let request = signed_only(&key(), &approved(), NOW, |name| name != "X-Timestamp");
    app.rejects(request, 401, "missing-timestamp").await;
}

#[tokio::test]
async fn a_non_numeric_x_timestamp_is_401_malformed_timestamp() {
    let app = App::new(layer(verifier()));
    let body = approved();
    let signature = sign_raw(&key(), &body);
    for bad in ["yesterday", "1780045046.5", "", "0x6a1b"] {
        let request = post_with(
            &[("X-Timestamp", bad), ("X-Signature", &signature)],
            body.clone(),
        );
        app.rejects(request, 401, "malformed-timestamp").await;
    }
}

#[tokio::test]
async fn a_timestamp_301_seconds_old_or_ahead_is_401_stale_timestamp() {
    let app = App::new(layer(verifier()));
    for ts in [NOW - 301, NOW + 301] {
        let body = event("evt-stale", "sess-1", "Approved", ts);
        app.rejects(signed(&key(), &body, ts), 401, "stale-timestamp")
            .await;
    }
}

#[tokio::test]
async fn a_timestamp_exactly_300_seconds_off_is_still_fresh() {
    let app = App::new(layer(verifier()));
    for (i, ts) in [NOW - 300, NOW + 300].into_iter().enumerate() {
        let body = event(&format!("evt-{i}"), &format!("sess-{i}"), "Approved", ts);
        app.send(signed(&key(), &body, ts)).await.assert_ok();
    }
    assert_eq!(app.calls(), 2);
}

#[tokio::test]
async fn a_header_timestamp_moved_away_from_the_body_timestamp_is_401_timestamp_mismatch() {
    let app = App::new(layer(verifier()));
    let old = event("evt-old", "sess-1", "Approved", NOW - 3600);
    app.rejects(signed(&key(), &old, NOW), 401, "timestamp-mismatch")
        .await;
}

#[tokio::test]
async fn a_signed_body_that_is_not_json_is_400_invalid_json() {
    let app = App::new(layer(verifier()));
    for body in [&b"not json"[..], b"", b"{\"webhook_type\":", b"{} trailing"] {
        app.rejects(signed(&key(), body, NOW), 400, "invalid-json")
            .await;
    }
}

#[tokio::test]
async fn a_signed_body_that_is_not_utf8_is_400() {
    let app = App::new(layer(verifier()));
    let mut in_string = approved();
    let at = in_string.windows(6).position(|w| w == b"sess-1").unwrap();
    in_string[at] = 0xff;
    for body in [&b"\xff\xfe{}"[..], &in_string] {
        app.rejects(signed(&key(), body, NOW), 400, "invalid-json")
            .await;
    }
}

#[tokio::test]
async fn a_signed_body_of_1000_nested_arrays_is_400_without_overflowing_the_stack() {
    let app = App::new(layer(verifier()));
    let body = format!("{}{}", "[".repeat(1000), "]".repeat(1000)).into_bytes();
    app.rejects(signed(&key(), &body, NOW), 400, "invalid-json")
        .await;
}

#[tokio::test]
async fn signed_json_that_is_not_a_didit_event_is_422_not_a_didit_event() {
    let app = App::new(layer(verifier()));
    for body in [&b"[]"[..], b"{\"hello\":1}"] {
        app.rejects(signed(&key(), body, NOW), 422, "not-a-didit-event")
            .await;
    }
}

#[tokio::test]
async fn a_body_over_the_limit_with_content_length_is_413_body_too_large() {
    let app = App::new(layer(verifier()).max_body_bytes(256));
    let body = event(&"e".repeat(200), "sess-1", "Approved", NOW);
    assert!(body.len() > 256);
    let mut request = signed(&key(), &body, NOW);
    request
        .headers_mut()
        .insert(header::CONTENT_LENGTH, body.len().into());
    let reply = app.rejects(request, 413, "body-too-large").await;
    assert!(
        reply.json()["detail"].as_str().unwrap().contains("256"),
        "{}",
        reply.text()
    );
}

#[tokio::test]
async fn a_declared_content_length_over_the_limit_is_refused_before_reading() {
    // The body itself is small: the header alone decides.
    let app = App::new(layer(verifier()).max_body_bytes(256));
    let mut request = signed(&key(), &approved(), NOW);
    request
        .headers_mut()
        .insert(header::CONTENT_LENGTH, 1_000_000u32.into());
    app.rejects(request, 413, "body-too-large").await;
}

#[tokio::test]
async fn a_streamed_body_over_the_limit_without_content_length_is_413_body_too_large() {
    let app = App::new(layer(verifier()).max_body_bytes(256));
    let body = event(&"e".repeat(200), "sess-1", "Approved", NOW);
    let headers = SignedHeaders::sign(&key(), &body, NOW);
    let request = post_with(&headers.pairs(), streaming(body.clone()));
    assert!(request.headers().get(header::CONTENT_LENGTH).is_none());
    app.rejects(request, 413, "body-too-large").await;
    // A plain body without the header is cut off by the limit too.
    let request = post_with(&headers.pairs(), body);
    app.rejects(request, 413, "body-too-large").await;
}

#[tokio::test]
async fn a_body_of_exactly_the_limit_is_accepted() {
    let limit = 512;
    let app = App::new(layer(verifier()).max_body_bytes(limit));
    let mut body = approved();
    body.resize(limit, b' ');
    let mut request = signed(&key(), &body, NOW);
    request
        .headers_mut()
        .insert(header::CONTENT_LENGTH, limit.into());
    app.send(request).await.assert_ok();
    assert_eq!(app.calls(), 1);
}

#[tokio::test]
async fn a_body_that_fails_mid_stream_is_400_unreadable_body() {
    let app = App::new(layer(verifier()));
    let body = approved();
    let headers = SignedHeaders::sign(&key(), &body, NOW);
    // An inner limit of 1 byte makes the body itself fail while it is being read.
    let failing = Body::new(http_body_util::Limited::new(Body::from(body), 1));
    app.rejects(post_with(&headers.pairs(), failing), 400, "unreadable-body")
        .await;
}

#[tokio::test]
async fn x_signature_simple_alone_is_401_missing_signature_when_simple_is_disabled() {
    let app = App::new(layer(verifier()));
    let only_simple = |name: &str| matches!(name, "X-Timestamp" | "X-Signature-Simple");
    let request = signed_only(&key(), &approved(), NOW, only_simple);
    let reply = app.rejects(request, 401, "missing-signature").await;
    let detail = reply.json()["detail"].as_str().unwrap().to_owned();
    assert!(detail.contains("X-Signature-Simple"), "{detail}");
}

#[tokio::test]
async fn x_signature_simple_alone_is_accepted_when_enabled_but_does_not_trust_the_body() {
    let app = App::new(layer(verifier().allow_simple(true)));
    let only_simple = |name: &str| matches!(name, "X-Timestamp" | "X-Signature-Simple");
    let reply = app
        .send(signed_only(&key(), &approved(), NOW, only_simple))
        .await;
    let seen = reply.assert_ok();
    assert_eq!(seen["scheme"], Scheme::Simple.as_str());
    assert_eq!(seen["trusts_body"], false);
    assert_eq!(seen["key_id"], KEY_ID);
    assert_eq!(app.calls(), 1);
}

#[tokio::test]
async fn a_stronger_scheme_wins_over_simple_when_both_are_present() {
    let app = App::new(layer(verifier().allow_simple(true)));
    let seen = app.send(signed(&key(), &approved(), NOW)).await.assert_ok();
    assert_eq!(seen["scheme"], "raw");
    assert_eq!(seen["trusts_body"], true);
}

// ---------------------------------------------------------------------------------------------
// 4. Key rotation.

#[tokio::test]
async fn during_a_rotation_each_key_verifies_and_is_reported_by_id() {
    let old = Key::new("2026-10", &Secret::new("old-secret")).unwrap();
    let new = Key::new("2026-11", &Secret::new("new-secret")).unwrap();
    let ring = Keyring::new(vec![old.clone(), new.clone()]).unwrap();
    let app = App::new(layer(Verifier::new(ring)));
    for (signer, session) in [(&old, "sess-old"), (&new, "sess-new")] {
        let body = event(&format!("evt-{session}"), session, "Approved", NOW);
        let seen = app.send(signed(signer, &body, NOW)).await.assert_ok();
        assert_eq!(seen["key_id"], signer.id());
        assert_eq!(seen["session_id"], session);
    }
    assert_eq!(app.calls(), 2);
}

#[tokio::test]
async fn a_key_past_its_not_after_no_longer_verifies() {
    let old = Key::new("2026-10", &Secret::new("old-secret")).unwrap();
    let new = Key::new("2026-11", &Secret::new("new-secret")).unwrap();
    let ring = Keyring::new(vec![old.clone().with_not_after(NOW - 1), new.clone()]).unwrap();
    let app = App::new(layer(Verifier::new(ring)));
    let body = event("evt", "sess-1", "Approved", NOW);
    app.rejects(signed(&old, &body, NOW), 401, "bad-signature")
        .await;
    let seen = app.send(signed(&new, &body, NOW)).await.assert_ok();
    assert_eq!(seen["key_id"], "2026-11");
}

#[tokio::test]
async fn a_key_is_still_good_up_to_and_including_its_not_after() {
    let old = Key::new("2026-10", &Secret::new("old-secret")).unwrap();
    let ring = Keyring::new(vec![old.clone().with_not_after(NOW)]).unwrap();
    let app = App::new(layer(Verifier::new(ring)));
    let seen = app.send(signed(&old, &approved(), NOW)).await.assert_ok();
    assert_eq!(seen["key_id"], "2026-10");
}

// ---------------------------------------------------------------------------------------------
// 5. Replay protection.

#[tokio::test]
async fn the_same_delivery_twice_is_acknowledged_as_duplicate_without_running_the_handler() {
    let app = App::new(layer(verifier()));
    let body = approved();
    app.send(signed(&key(), &body, NOW)).await.assert_ok();
    let reply = app.send(signed(&key(), &body, NOW)).await;
    let duplicate = reply.assert_ok();
    assert_eq!(duplicate["status"], "duplicate", "{}", reply.text());
    assert_eq!(reply.content_type(), "application/json");
    assert_eq!(app.calls(), 1);
}

#[tokio::test]
async fn a_retry_with_a_new_event_id_is_still_a_duplicate_by_content() {
    let app = App::new(layer(verifier()));
    let first = event("evt-1", "sess-1", "Approved", NOW);
    let retry = event("evt-2", "sess-1", "Approved", NOW);
    app.send(signed(&key(), &first, NOW)).await.assert_ok();
    let duplicate = app.send(signed(&key(), &retry, NOW)).await.assert_ok();
    assert_eq!(duplicate["status"], "duplicate");
    assert_eq!(app.calls(), 1);
}

#[tokio::test]
async fn a_reused_event_id_is_a_duplicate_even_with_other_content() {
    let app = App::new(layer(verifier()));
    let first = event("evt-1", "sess-1", "Approved", NOW);
    let reused = event("evt-1", "sess-1", "Declined", NOW);
    app.send(signed(&key(), &first, NOW)).await.assert_ok();
    let duplicate = app.send(signed(&key(), &reused, NOW)).await.assert_ok();
    assert_eq!(duplicate["status"], "duplicate");
    assert_eq!(app.calls(), 1);
}

#[tokio::test]
async fn different_events_each_reach_the_handler() {
    let app = App::new(layer(verifier()));
    for (id, session, status) in [
        ("evt-1", "sess-1", "In Review"),
        ("evt-2", "sess-1", "Approved"),
        ("evt-3", "sess-2", "Approved"),
    ] {
        let body = event(id, session, status, NOW);
        let seen = app.send(signed(&key(), &body, NOW)).await.assert_ok();
        assert_eq!(seen["event_id"], id);
    }
    assert_eq!(app.calls(), 3);
}

#[tokio::test]
async fn a_retry_after_the_handler_failed_reaches_the_handler_again() {
    let behaviour = Behaviour {
        failures: 2,
        gate: None,
    };
    let app = App::with(Some(layer(verifier())), behaviour);
    let body = approved();
    for attempt in 1..=2 {
        let reply = app.send(signed(&key(), &body, NOW)).await;
        assert_eq!(
            reply.status,
            StatusCode::INTERNAL_SERVER_ERROR,
            "attempt {attempt}"
        );
        assert_eq!(app.calls(), attempt);
    }
    // The third attempt succeeds; only after that is the delivery remembered.
    let seen = app.send(signed(&key(), &body, NOW)).await.assert_ok();
    assert_eq!(seen["event_id"], "evt-1");
    let duplicate = app.send(signed(&key(), &body, NOW)).await.assert_ok();
    assert_eq!(duplicate["status"], "duplicate");
    assert_eq!(app.calls(), 3);
}

#[tokio::test]
async fn a_handler_that_always_fails_sees_every_retry() {
    let behaviour = Behaviour {
        failures: usize::MAX,
        gate: None,
    };
    let app = App::with(Some(layer(verifier())), behaviour);
    for _ in 0..3 {
        let reply = app.send(signed(&key(), &approved(), NOW)).await;
        assert_eq!(reply.status, StatusCode::INTERNAL_SERVER_ERROR);
    }
    assert_eq!(app.calls(), 3);
}

#[tokio::test]
async fn without_replay_protection_the_handler_runs_for_every_copy() {
    let app = App::new(layer(verifier()).without_replay_protection());
    let body = approved();
    for _ in 0..2 {
        let seen = app.send(signed(&key(), &body, NOW)).await.assert_ok();
        assert_eq!(seen["event_id"], "evt-1");
    }
    assert_eq!(app.calls(), 2);
}

#[tokio::test]
async fn a_rejected_delivery_is_not_remembered() {
    // A forged copy must not poison the memory for the genuine delivery.
    let app = App::new(layer(verifier()));
    let body = approved();
    let stranger = Key::new(KEY_ID, &Secret::new("not-the-secret")).unwrap();
    app.rejects(signed(&stranger, &body, NOW), 401, "bad-signature")
        .await;
    app.send(signed(&key(), &body, NOW)).await.assert_ok();
    assert_eq!(app.calls(), 1);
}

// ---------------------------------------------------------------------------------------------
// 6. Concurrency.

async fn within<T>(what: &str, future: impl Future<Output = T>) -> T {
    tokio::time::timeout(Duration::from_secs(10), future)
        .await
        .unwrap_or_else(|_| panic!("timed out waiting for {what}"))
}

#[tokio::test]
async fn an_identical_delivery_while_the_first_is_in_flight_is_409_delivery_in_progress() {
    let gate = Gate::default();
    let behaviour = Behaviour {
        failures: 0,
        gate: Some(gate.clone()),
    };
    let app = App::with(Some(layer(verifier())), behaviour);
    let body = approved();

    let first = tokio::spawn(app.router.clone().oneshot(signed(&key(), &body, NOW)));
    within(
        "the first delivery to reach the handler",
        gate.entered.notified(),
    )
    .await;

    // Same content, new event_id: the content key alone says it is in flight.
    let retry = event("evt-2", "sess-1", "Approved", NOW);
    for copy in [&body, &retry] {
        app.rejects(signed(&key(), copy, NOW), 409, "delivery-in-progress")
            .await;
    }
    assert_eq!(app.calls(), 1);

    gate.release.notify_one();
    let first = within("the first delivery to finish", first)
        .await
        .unwrap()
        .unwrap();
    Reply::read(first).await.assert_ok();

    let duplicate = app.send(signed(&key(), &body, NOW)).await.assert_ok();
    assert_eq!(duplicate["status"], "duplicate");
    assert_eq!(app.calls(), 1);
}

#[tokio::test]
async fn a_different_delivery_is_not_blocked_by_one_in_flight() {
    let gate = Gate::default();
    let behaviour = Behaviour {
        failures: 0,
        gate: Some(gate.clone()),
    };
    let app = App::with(Some(layer(verifier())), behaviour);

    let first = tokio::spawn(app.router.clone().oneshot(signed(&key(), &approved(), NOW)));
    within(
        "the first delivery to reach the handler",
        gate.entered.notified(),
    )
    .await;

    let other = event("evt-9", "sess-9", "Approved", NOW);
    let second = tokio::spawn(app.router.clone().oneshot(signed(&key(), &other, NOW)));
    within(
        "the second delivery to reach the handler",
        gate.entered.notified(),
    )
    .await;
    assert_eq!(app.calls(), 2);

    gate.release.notify_one();
    gate.release.notify_one();
    for handle in [first, second] {
        let response = within("a delivery to finish", handle)
            .await
            .unwrap()
            .unwrap();
        Reply::read(response).await.assert_ok();
    }
}

#[tokio::test]
async fn an_abandoned_in_flight_delivery_does_not_block_its_retry() {
    // A request future dropped mid-handler (client disconnect, server timeout, handler panic)
    // must release its replay keys, or every retry in the window would get 409.
    let gate = Gate::default();
    let behaviour = Behaviour {
        failures: 0,
        gate: Some(gate.clone()),
    };
    let app = App::with(Some(layer(verifier())), behaviour);
    let body = approved();

    let first = tokio::spawn(app.router.clone().oneshot(signed(&key(), &body, NOW)));
    within(
        "the first delivery to reach the handler",
        gate.entered.notified(),
    )
    .await;
    first.abort();
    assert!(
        within("the aborted delivery", first)
            .await
            .unwrap_err()
            .is_cancelled()
    );

    gate.release.notify_one();
    let retry = app
        .router
        .clone()
        .oneshot(signed(&key(), &body, NOW))
        .await
        .unwrap();
    assert_eq!(retry.status(), 200);
    assert_eq!(app.calls(), 2);
}

// ---------------------------------------------------------------------------------------------
// 7. The extractor on its own.

#[tokio::test]
async fn the_extractor_without_the_layer_is_500_misconfigured() {
    let app = App::with(None, Behaviour::default());
    app.rejects(signed(&key(), &approved(), NOW), 500, "misconfigured")
        .await;
}

// ---------------------------------------------------------------------------------------------
// 8. Secrets.

#[tokio::test]
async fn no_response_or_debug_output_contains_the_secret() {
    let layer = layer(verifier().allow_simple(false)).max_body_bytes(256);
    let debug = format!("{layer:?}");
    assert!(!debug.contains(SECRET), "{debug}");
    let app = App::new(layer);
    let ts = NOW.to_string();
    let body = approved();
    let stranger = Key::new(KEY_ID, &Secret::new("not-the-secret")).unwrap();
    let requests = [
        signed_only(&key(), &body, NOW, |name| name == "X-Timestamp"),
        signed(&stranger, &body, NOW),
        post_with(&[("X-Timestamp", &ts), ("X-Signature", "zz")], body.clone()),
        signed_only(&key(), &body, NOW, |name| name != "X-Timestamp"),
        post_with(
            &[("X-Timestamp", "soon"), ("X-Signature", "zz")],
            body.clone(),
        ),
        signed(&key(), &event("e", "s", "Approved", NOW - 301), NOW - 301),
        signed(&key(), &event("e", "s", "Approved", NOW - 3600), NOW),
        signed(&key(), b"not json", NOW),
        signed(&key(), b"{\"hello\":1}", NOW),
        signed(&key(), &[b' '; 300], NOW),
        signed_only(&key(), &body, NOW, |name| name != "X-Signature"),
    ];
    let mut rejected = 0;
    for request in requests {
        let reply = app.send(request).await;
        let text = reply.text();
        assert!(!text.contains(SECRET), "{text}");
        if reply.status != StatusCode::OK {
            rejected += 1;
        }
    }
    assert!(
        rejected >= 10,
        "expected the rejection paths to be exercised"
    );
    let misconfigured = App::with(None, Behaviour::default());
    let text = misconfigured.send(signed(&key(), &body, NOW)).await.text();
    assert!(!text.contains(SECRET), "{text}");
}
