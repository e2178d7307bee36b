//! axum/tower integration for embedders: [`DiditWebhookLayer`] verifies a delivery before the
//! handler runs, and the [`VerifiedDiditEvent`] extractor hands the handler the typed event.
//!
//! ```no_run
//! use axum::{Json, Router, routing::post};
//! use riskhook_didit::axum::{DiditWebhookLayer, VerifiedDiditEvent};
//! use riskhook_didit::signature::{Keyring, Secret};
//! use riskhook_didit::webhook::Verifier;
//!
//! async fn on_didit(event: VerifiedDiditEvent) -> Json<serde_json::Value> {
//!     // Only verified, fresh, parsed deliveries reach this point.
//!     Json(serde_json::json!({ "received": event.event.kind.as_str() }))
//! }
//!
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! let secret = Secret::new(std::env::var("DIDIT_WEBHOOK_SECRET")?);
//! let verifier = Verifier::new(Keyring::single(&secret)?);
//! let app: Router = Router::new()
//!     .route("/webhooks/didit", post(on_didit))
//!     .layer(DiditWebhookLayer::new(verifier));
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:3000").await?;
//! axum::serve(listener, app).await?;
//! # Ok(())
//! # }
//! ```
//!
//! Every refusal is an `application/problem+json` body with the right status: 401 (missing or
//! bad signature, stale or mismatched timestamp), 413 (body over the limit), 400 (not JSON), 422
//! (JSON but not a Didit event). Nothing here answers 500 to a client's mistake.
//!
//! Refusals are logged at WARN, at most [`DiditWebhookLayer::DEFAULT_REFUSAL_LOG_LINES`] lines
//! per second ([`DiditWebhookLayer::refusal_log_lines`]); the rest are summed up in one
//! "refusals not logged" line when the next second's first refusal comes. The
//! [`RejectionCode`] extension is on every refusal, for metrics that count them all.
//!
//! Verifying a body costs ~10 µs per KB: bodies over
//! [`DiditWebhookLayer::DEFAULT_OFFLOAD_OVER`] are verified on tokio's blocking pool rather
//! than on the async worker that received them ([`DiditWebhookLayer::offload_over`]).

use std::collections::{HashMap, VecDeque};
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll};
use std::time::{SystemTime, UNIX_EPOCH};

use axum::body::Body;
use axum::extract::FromRequestParts;
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use http::request::Parts;
use http::{HeaderMap, HeaderValue, Request, StatusCode, header};
use http_body_util::{BodyExt, LengthLimitError, Limited};
use serde::Serialize;

mod log_budget;

use self::log_budget::LogBudget;
use crate::payload::DiditEvent;
use crate::signature::SignatureHeaders;
use crate::webhook::{Delivery, Rejection, Verification, Verifier};

/// A delivery that passed every check, as the handler receives it.
#[derive(Debug, Clone)]
pub struct VerifiedDiditEvent {
    /// The typed event.
    pub event: DiditEvent,
    /// Which key and scheme verified it.
    pub verification: Verification,
    /// The body exactly as received: what `X-Signature` covers, and what to store.
    pub raw: Bytes,
    /// When the layer received it, Unix seconds, from the layer's clock.
    pub received_at: i64,
}

impl<S: Send + Sync> FromRequestParts<S> for VerifiedDiditEvent {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        parts
            .extensions
            .remove::<VerifiedDiditEvent>()
            .ok_or_else(|| {
                // A programming error in the embedding app, not the client's: say so plainly.
                Problem::new(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "misconfigured",
                    "Webhook route is misconfigured",
                    "VerifiedDiditEvent needs the route to be wrapped in DiditWebhookLayer",
                )
                .into_response()
            })
    }
}

/// The stable reason code of a delivery the layer refused, left in the response's extensions so
/// that metrics or logging middleware can count refusals by reason without reading the body.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RejectionCode(pub &'static str);

/// A clock returning Unix seconds. Injected so tests can pin time.
pub type Clock = Arc<dyn Fn() -> i64 + Send + Sync>;

/// The system clock.
// The one place this crate reads the clock: the framework edge hands it to the verifier, which
// takes `now` as an argument everywhere else (clippy.toml bans the clock in this crate).
#[allow(clippy::disallowed_methods)]
pub fn system_clock() -> Clock {
    Arc::new(|| {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
    })
}

/// A tower layer that verifies Didit deliveries and puts a [`VerifiedDiditEvent`] into the
/// request's extensions.
#[derive(Clone)]
pub struct DiditWebhookLayer {
    shared: Arc<Shared>,
}

struct Shared {
    verifier: Verifier,
    max_body_bytes: usize,
    offload_over: usize,
    clock: Clock,
    replay: Option<ReplayGuard>,
    refusal_log: Mutex<LogBudget>,
}

impl fmt::Debug for DiditWebhookLayer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DiditWebhookLayer")
            .field("verifier", &self.shared.verifier)
            .field("max_body_bytes", &self.shared.max_body_bytes)
            .field("offload_over", &self.shared.offload_over)
            .field("replay_protection", &self.shared.replay.is_some())
            .field("refusal_log_lines", &self.shared.refusal_log_lines())
            .finish_non_exhaustive()
    }
}

impl DiditWebhookLayer {
    /// Didit's fullest payloads run to tens of KB; 1 MiB leaves room without letting a client
    /// make the server buffer much.
    pub const DEFAULT_MAX_BODY_BYTES: usize = 1024 * 1024;

    /// Bodies over this many bytes are verified and parsed on tokio's blocking pool, so that
    /// no request holds an async worker (and every other connection on it) for long: checking
    /// the MACs and parsing cost ~10 µs per KB, so a body at the 1 MiB limit would take ~10 ms.
    /// Didit's own payloads (up to ~30 KB, ~0.3 ms) stay where they were received: handing
    /// every body over 8 KB to another thread was measured to cost 16% of the embedder
    /// example's throughput and 5-9% of the service's, for no gain in latency.
    pub const DEFAULT_OFFLOAD_OVER: usize = 32 * 1024;

    /// Refusal lines logged per second at most: enough to see what is being refused, far too
    /// few for junk traffic to fill a disk.
    pub const DEFAULT_REFUSAL_LOG_LINES: u32 = 10;

    /// A layer with a 1 MiB body limit, the system clock and in-memory replay protection.
    pub fn new(verifier: Verifier) -> Self {
        let window = i64::try_from(verifier.tolerance().as_secs()).unwrap_or(i64::MAX);
        Self {
            shared: Arc::new(Shared {
                verifier,
                max_body_bytes: Self::DEFAULT_MAX_BODY_BYTES,
                offload_over: Self::DEFAULT_OFFLOAD_OVER,
                clock: system_clock(),
                replay: Some(ReplayGuard::new(window, ReplayGuard::DEFAULT_CAPACITY)),
                refusal_log: Mutex::new(LogBudget::new(Self::DEFAULT_REFUSAL_LOG_LINES)),
            }),
        }
    }

    fn map(self, f: impl FnOnce(&mut Shared)) -> Self {
        let mut shared = Arc::try_unwrap(self.shared).unwrap_or_else(|shared| Shared {
            verifier: shared.verifier.clone(),
            max_body_bytes: shared.max_body_bytes,
            offload_over: shared.offload_over,
            clock: shared.clock.clone(),
            replay: shared.replay.as_ref().map(ReplayGuard::empty_like),
            refusal_log: Mutex::new(LogBudget::new(shared.refusal_log_lines())),
        });
        f(&mut shared);
        Self {
            shared: Arc::new(shared),
        }
    }

    /// Refuses bodies over `bytes` with 413.
    #[must_use]
    pub fn max_body_bytes(self, bytes: usize) -> Self {
        self.map(|s| s.max_body_bytes = bytes)
    }

    /// Verifies bodies over `bytes` on tokio's blocking pool instead of on the async worker
    /// that received them (default [`Self::DEFAULT_OFFLOAD_OVER`]; `usize::MAX`: never).
    #[must_use]
    pub fn offload_over(self, bytes: usize) -> Self {
        self.map(|s| s.offload_over = bytes)
    }

    /// Replaces the clock (Unix seconds).
    #[must_use]
    pub fn clock(self, clock: Clock) -> Self {
        self.map(|s| s.clock = clock)
    }

    /// Logs at most `lines` refusals per second of the layer's clock (default
    /// [`Self::DEFAULT_REFUSAL_LOG_LINES`]); the others are counted and reported in one summary
    /// line. `0` logs only the summaries, `u32::MAX` every refusal.
    #[must_use]
    pub fn refusal_log_lines(self, lines: u32) -> Self {
        self.map(|s| s.refusal_log = Mutex::new(LogBudget::new(lines)))
    }

    /// Turns the in-memory replay protection off, for a handler that de-duplicates durably
    /// itself (the riskhook service does, in its database).
    #[must_use]
    pub fn without_replay_protection(self) -> Self {
        self.map(|s| s.replay = None)
    }
}

impl<S> tower::Layer<S> for DiditWebhookLayer {
    type Service = DiditWebhookService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        DiditWebhookService {
            inner,
            shared: self.shared.clone(),
        }
    }
}

/// The service [`DiditWebhookLayer`] wraps around a handler.
#[derive(Clone)]
pub struct DiditWebhookService<S> {
    inner: S,
    shared: Arc<Shared>,
}

impl<S> fmt::Debug for DiditWebhookService<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DiditWebhookService")
            .finish_non_exhaustive()
    }
}

type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send>>;

impl<S> tower::Service<Request<Body>> for DiditWebhookService<S>
where
    S: tower::Service<Request<Body>, Response = Response> + Clone + Send + 'static,
    S::Future: Send,
    S::Error: Send,
{
    type Response = Response;
    type Error = S::Error;
    type Future = BoxFuture<Result<Response, S::Error>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request<Body>) -> Self::Future {
        // The clone that was polled ready is the one that must be called.
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        let shared = self.shared.clone();
        Box::pin(async move {
            let (mut parts, body) = request.into_parts();
            let verified = match shared.accept(&parts.headers, body).await {
                Ok(verified) => verified,
                Err((code, problem)) => {
                    let mut response = problem.into_response();
                    response.extensions_mut().insert(RejectionCode(code));
                    return Ok(response);
                }
            };
            let keys = ReplayKeys::of(&verified.event);
            if let Some(replay) = &shared.replay {
                match replay.begin(&keys, verified.verification.timestamp) {
                    ReplayState::New => {}
                    ReplayState::Done => {
                        return Ok(duplicate_response(&verified.event));
                    }
                    ReplayState::InFlight => {
                        return Ok(Problem::new(
                            StatusCode::CONFLICT,
                            "delivery-in-progress",
                            "Delivery already being processed",
                            "an identical delivery is being handled right now",
                        )
                        .into_response());
                    }
                }
            }
            let raw = verified.raw.clone();
            parts.extensions.insert(verified);
            // Released on drop, so a request abandoned mid-handler (client gone, timeout,
            // panic) does not leave its delivery "in progress" and block Didit's retry.
            let mut in_flight = shared.replay.as_ref().map(|replay| InFlight {
                replay,
                keys: &keys,
                succeeded: false,
            });
            let result = inner
                .call(Request::from_parts(parts, Body::from(raw)))
                .await;
            if let Some(guard) = in_flight.as_mut() {
                guard.succeeded = result
                    .as_ref()
                    .is_ok_and(|response| response.status().is_success());
            }
            drop(in_flight);
            result
        })
    }
}

impl Shared {
    async fn accept(
        self: &Arc<Self>,
        headers: &HeaderMap,
        body: Body,
    ) -> Result<VerifiedDiditEvent, (&'static str, Problem)> {
        let declared = headers
            .get(header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<u64>().ok());
        if declared.is_some_and(|len| len > self.max_body_bytes as u64) {
            return Err(("body-too-large", self.too_large((self.clock)())));
        }
        let raw = match Limited::new(body, self.max_body_bytes).collect().await {
            Ok(collected) => collected.to_bytes(),
            Err(e) if e.is::<LengthLimitError>() => {
                return Err(("body-too-large", self.too_large((self.clock)())));
            }
            Err(_) => {
                return Err((
                    "unreadable-body",
                    Problem::new(
                        StatusCode::BAD_REQUEST,
                        "unreadable-body",
                        "Request body could not be read",
                        "the connection failed while the body was being received",
                    ),
                ));
            }
        };
        let now = (self.clock)();
        let verified = if raw.len() > self.offload_over {
            // Rare (bodies larger than Didit sends), so copying the headers is no matter.
            let (shared, headers, body) = (Arc::clone(self), headers.clone(), raw.clone());
            tokio::task::spawn_blocking(move || {
                shared.verifier.verify(&delivery(&headers, &body), now)
            })
            .await
            // Only if the runtime is shutting down (or verification panicked): Didit retries.
            .map_err(|_| {
                let problem = Problem::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "unavailable",
                    "Service unavailable",
                    "the delivery could not be verified now; retry later",
                );
                ("unavailable", problem)
            })?
        } else {
            self.verifier.verify(&delivery(headers, &raw), now)
        };
        match verified {
            Ok((event, verification)) => Ok(VerifiedDiditEvent {
                event,
                verification,
                raw,
                received_at: now,
            }),
            Err(rejection) => {
                if self.may_log_refusal(now) {
                    tracing::warn!(
                        reason = rejection.code(),
                        status = rejection.status(),
                        body_bytes = raw.len(),
                        "didit webhook rejected: {rejection}"
                    );
                }
                Err((rejection.code(), Problem::from(&rejection)))
            }
        }
    }

    fn refusal_log_lines(&self) -> u32 {
        self.refusal_log
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .per_second()
    }

    /// Whether this refusal's line fits the budget; writes the summary of those that did not
    /// first, when one is due.
    fn may_log_refusal(&self, now: i64) -> bool {
        let verdict = self
            .refusal_log
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .admit(now);
        if verdict.suppressed_before > 0 {
            tracing::warn!(
                suppressed = verdict.suppressed_before,
                "{} more didit webhook refusals were not logged (at most {} lines a second; metrics count every one)",
                verdict.suppressed_before,
                self.refusal_log_lines(),
            );
        }
        verdict.log
    }

    fn too_large(&self, now: i64) -> Problem {
        if self.may_log_refusal(now) {
            tracing::warn!(
                limit = self.max_body_bytes,
                "didit webhook rejected: body too large"
            );
        }
        Problem::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "body-too-large",
            "Request body too large",
            format!(
                "the body exceeds the limit of {} bytes",
                self.max_body_bytes
            ),
        )
    }
}

fn header_str<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

/// What verification reads of a request.
fn delivery<'a>(headers: &'a HeaderMap, body: &'a [u8]) -> Delivery<'a> {
    Delivery {
        timestamp: header_str(headers, "x-timestamp"),
        signatures: SignatureHeaders {
            raw: header_str(headers, "x-signature"),
            v2: header_str(headers, "x-signature-v2"),
            simple: header_str(headers, "x-signature-simple"),
        },
        body,
    }
}

fn duplicate_response(event: &DiditEvent) -> Response {
    let body = serde_json::json!({
        "status": "duplicate",
        "event_id": event.delivery_key(),
    });
    (StatusCode::OK, axum::Json(body)).into_response()
}

/// An RFC 9457 problem body: what the client did wrong, in a form both people and programs read.
#[derive(Debug, Clone, Serialize)]
pub struct Problem {
    /// `urn:riskhook:problem:<code>`.
    #[serde(rename = "type")]
    pub problem_type: String,
    /// A short summary, the same for every occurrence of the problem type.
    pub title: String,
    /// The HTTP status, repeated in the body.
    pub status: u16,
    /// What exactly was wrong with this request.
    pub detail: String,
    /// The stable reason code (also the last segment of `type`).
    pub code: String,
}

impl Problem {
    /// A problem with a stable `code`.
    pub fn new(
        status: StatusCode,
        code: &str,
        title: impl Into<String>,
        detail: impl Into<String>,
    ) -> Self {
        Self {
            problem_type: format!("urn:riskhook:problem:{code}"),
            title: title.into(),
            status: status.as_u16(),
            detail: detail.into(),
            code: code.to_owned(),
        }
    }
}

impl From<&Rejection> for Problem {
    fn from(rejection: &Rejection) -> Self {
        let status = StatusCode::from_u16(rejection.status()).unwrap_or(StatusCode::UNAUTHORIZED);
        Problem::new(
            status,
            rejection.code(),
            rejection.title(),
            rejection.to_string(),
        )
    }
}

impl IntoResponse for Problem {
    fn into_response(self) -> Response {
        let status = StatusCode::from_u16(self.status).unwrap_or(StatusCode::BAD_REQUEST);
        let body = serde_json::to_vec(&self).unwrap_or_default();
        let mut response = (status, body).into_response();
        response.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/problem+json"),
        );
        response
    }
}

/// The keys a delivery is remembered by: Didit's `event_id` and the content key, since a retry
/// may come with a new `event_id`.
struct ReplayKeys(Vec<String>);

impl ReplayKeys {
    fn of(event: &DiditEvent) -> Self {
        let mut keys = vec![format!("c:{}", event.content_key())];
        if let Some(id) = event.delivery_key() {
            keys.push(format!("d:{id}"));
        }
        Self(keys)
    }
}

enum ReplayState {
    New,
    InFlight,
    Done,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Entry {
    InFlight,
    Done,
}

/// Remembers recent deliveries in memory so a replayed one is acknowledged without running the
/// handler twice. A delivery counts as seen only once its handler answered 2xx, so a Didit retry
/// after a failure still gets through. Entries live for twice the freshness window: anything
/// older would be refused as stale anyway.
struct ReplayGuard {
    window: i64,
    capacity: usize,
    state: Mutex<ReplayMemory>,
}

#[derive(Default)]
struct ReplayMemory {
    /// Each key's state and the generation it was inserted with.
    entries: HashMap<String, (Entry, u64)>,
    /// Insertion order with timestamps and generations, for expiry and the capacity bound. A
    /// record whose generation no longer matches its entry (the key was released and inserted
    /// again) expires nothing.
    order: VecDeque<(i64, String, u64)>,
    next_generation: u64,
}

/// Marks a delivery's keys done (handler answered 2xx) or forgets them, when dropped.
struct InFlight<'a> {
    replay: &'a ReplayGuard,
    keys: &'a ReplayKeys,
    succeeded: bool,
}

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.replay.finish(self.keys, self.succeeded);
    }
}

impl ReplayGuard {
    const DEFAULT_CAPACITY: usize = 100_000;

    fn new(window: i64, capacity: usize) -> Self {
        Self {
            window,
            capacity,
            state: Mutex::new(ReplayMemory::default()),
        }
    }

    fn empty_like(other: &Self) -> Self {
        Self::new(other.window, other.capacity)
    }

    fn begin(&self, keys: &ReplayKeys, timestamp: i64) -> ReplayState {
        let mut memory = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        let horizon = timestamp.saturating_sub(self.window.saturating_mul(2));
        while let Some((ts, _, _)) = memory.order.front() {
            if *ts >= horizon && memory.order.len() < self.capacity {
                break;
            }
            if let Some((_, key, generation)) = memory.order.pop_front()
                && memory
                    .entries
                    .get(&key)
                    .is_some_and(|(_, g)| *g == generation)
            {
                memory.entries.remove(&key);
            }
        }
        let mut state = ReplayState::New;
        for key in &keys.0 {
            match memory.entries.get(key) {
                Some((Entry::Done, _)) => return ReplayState::Done,
                Some((Entry::InFlight, _)) => state = ReplayState::InFlight,
                None => {}
            }
        }
        if matches!(state, ReplayState::New) {
            let generation = memory.next_generation;
            memory.next_generation += 1;
            for key in &keys.0 {
                memory
                    .entries
                    .insert(key.clone(), (Entry::InFlight, generation));
                memory.order.push_back((timestamp, key.clone(), generation));
            }
        }
        state
    }

    fn finish(&self, keys: &ReplayKeys, succeeded: bool) {
        let mut memory = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        for key in &keys.0 {
            // A key evicted meanwhile stays forgotten: re-inserting it here would leave an
            // entry that no expiry ever reaches.
            if succeeded {
                if let Some((entry, _)) = memory.entries.get_mut(key) {
                    *entry = Entry::Done;
                }
            } else {
                memory.entries.remove(key);
            }
        }
    }
}
