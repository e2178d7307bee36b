//! A local stand-in for Didit's Management API, for the reconciliation tests: the delivery log
//! of one webhook destination (list with Didit's pagination and day filters, detail, resend),
//! session decisions, and fault injection (throttling, failures). What it sends to the target is
//! signed exactly as Didit signs a delivery, with `riskhook_didit::signature`. The self-tests at
//! the end pin the simulator's own behaviour, so a failing reconciliation test points at the
//! feature, not at its fake.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, UNIX_EPOCH};

use axum::Json;
use axum::extract::{Path, Query, Request, State};
use axum::http::StatusCode;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use riskhook_didit::signature::{Key, Secret, SignedHeaders};
use serde::Deserialize;
use serde_json::{Value, json};
use tokio::task::JoinHandle;

use crate::helpers::now;

/// Didit's page size when the client names none.
const DEFAULT_LIMIT: usize = 50;

/// Didit stops counting here: `count` reads this for any larger log, so a client that trusts
/// `count` instead of following `next` misses entries, and the tests can catch it.
const COUNT_CAP: usize = 100;

/// One attempt Didit made (or says it made) to deliver a body.
#[derive(Debug, Clone)]
struct Attempt {
    uuid: String,
    session_id: Option<String>,
    response_status: Option<u16>,
    response_time_ms: u64,
    webhook_type: String,
    created_at: i64,
    /// The headers sent, as the JSON text Didit stores them in.
    request_header: String,
    body: Vec<u8>,
}

impl Attempt {
    fn new(
        body: &[u8],
        response_status: Option<u16>,
        created_at: i64,
        response_time_ms: u64,
        request_header: String,
    ) -> Self {
        let json: Value = serde_json::from_slice(body).unwrap_or(Value::Null);
        Self {
            uuid: uuid::Uuid::new_v4().to_string(),
            session_id: json["session_id"].as_str().map(str::to_owned),
            response_status,
            response_time_ms,
            webhook_type: json["webhook_type"].as_str().unwrap_or_default().to_owned(),
            created_at,
            request_header,
            body: body.to_vec(),
        }
    }

    fn created_at_text(&self) -> String {
        rfc3339(self.created_at)
    }

    /// The shape of a list entry (and of resend's answer).
    fn entry(&self, target_url: &str) -> Value {
        let success = self
            .response_status
            .is_some_and(|s| (200..300).contains(&s));
        json!({
            "uuid": self.uuid,
            "session_id": self.session_id,
            "request_url": target_url,
            "response_status": self.response_status,
            "response_time_ms": self.response_time_ms,
            "status": if success { "success" } else { "failed" },
            "webhook_type": self.webhook_type,
            "created_at": self.created_at_text(),
        })
    }

    /// The detail shape: Didit hands the headers and body back as strings, not as JSON values.
    fn detail(&self, target_url: &str) -> Value {
        let mut value = self.entry(target_url);
        value["request_header"] = Value::String(self.request_header.clone());
        value["request_body"] = Value::String(String::from_utf8_lossy(&self.body).into_owned());
        value
    }
}

/// Everything that changes while the simulator runs.
#[derive(Debug, Default)]
struct Log {
    /// In recording order; the API sorts them newest first.
    attempts: Vec<Attempt>,
    sessions: HashMap<String, String>,
    throttle: usize,
    retry_after_secs: u64,
    failures: usize,
    failure_status: u16,
    requests: Vec<String>,
    resent: Vec<String>,
}

#[derive(Debug)]
struct Shared {
    base_url: String,
    api_key: String,
    destination: String,
    // Settable after start: a service under test may need the simulator's address before its
    // own exists.
    target_url: Mutex<String>,
    key: Key,
    client: reqwest::Client,
    log: Mutex<Log>,
}

impl Shared {
    /// Signs `body` at now, POSTs it to the target and returns the attempt (not yet recorded).
    async fn send(&self, body: &[u8]) -> Attempt {
        let timestamp = now();
        // Didit stamps the payload with the time it sends it, as it does X-Timestamp (riskhook
        // refuses a body whose timestamp differs from the header); a resend "sets a fresh
        // timestamp" the same way and keeps event_id.
        let body = riskhook::delivery::restamp(body, timestamp);
        let headers = signed_headers(&self.key, &body, timestamp);
        let mut request = self.client.post(self.target()).body(body.clone());
        for (name, value) in &headers {
            request = request.header(name.as_str(), value.as_str());
        }
        let started = Instant::now();
        let status = request.send().await.ok().map(|r| r.status().as_u16());
        let elapsed = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
        Attempt::new(&body, status, timestamp, elapsed, header_text(&headers))
    }

    fn target(&self) -> String {
        self.target_url.lock().unwrap().clone()
    }

    fn record(&self, attempt: Attempt) {
        self.log.lock().unwrap().attempts.push(attempt);
    }
}

/// The headers Didit sends with a delivery signed at `timestamp`.
fn signed_headers(key: &Key, body: &[u8], timestamp: i64) -> Vec<(String, String)> {
    let signed = SignedHeaders::sign(key, body, timestamp);
    let mut headers: Vec<(String, String)> = signed
        .pairs()
        .into_iter()
        .map(|(name, value)| (name.to_owned(), value.to_owned()))
        .collect();
    headers.push(("Content-Type".to_owned(), "application/json".to_owned()));
    headers
}

/// Headers as Didit stores them: Python's `json.dumps` layout, in sending order.
fn header_text(headers: &[(String, String)]) -> String {
    let fields: Vec<String> = headers
        .iter()
        .map(|(name, value)| format!("{}: {}", json!(name), json!(value)))
        .collect();
    format!("{{{}}}", fields.join(", "))
}

fn rfc3339(unix_secs: i64) -> String {
    let secs = u64::try_from(unix_secs).expect("the simulator only knows times after 1970");
    humantime::format_rfc3339_seconds(UNIX_EPOCH + Duration::from_secs(secs)).to_string()
}

/// A `YYYY-MM-DD` that names a real day.
fn is_day(text: &str) -> bool {
    text.len() == 10 && humantime::parse_rfc3339(&format!("{text}T00:00:00Z")).is_ok()
}

fn detail(status: StatusCode, message: &str) -> Response {
    (status, Json(json!({ "detail": message }))).into_response()
}

fn not_found() -> Response {
    detail(StatusCode::NOT_FOUND, "Not found.")
}

/// A simulated Didit Management API on 127.0.0.1, stopped when dropped.
#[derive(Debug)]
pub(crate) struct DiditSim {
    addr: SocketAddr,
    shared: Arc<Shared>,
    task: JoinHandle<()>,
}

impl Drop for DiditSim {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl DiditSim {
    /// Starts the simulator: one destination `destination` whose deliveries go to `target_url`,
    /// signed with `secret`, API key `api_key`.
    pub(crate) async fn start(
        api_key: &str,
        destination: &str,
        secret: &str,
        target_url: &str,
    ) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let shared = Arc::new(Shared {
            base_url: format!("http://{addr}"),
            api_key: api_key.to_owned(),
            destination: destination.to_owned(),
            target_url: Mutex::new(target_url.to_owned()),
            key: Key::new("sim", &Secret::new(secret)).unwrap(),
            // A target that never answers must fail the attempt, not hang the test; and a proxy
            // in the environment must not see loopback traffic.
            client: reqwest::Client::builder()
                .timeout(Duration::from_secs(30))
                .no_proxy()
                .build()
                .unwrap(),
            log: Mutex::new(Log::default()),
        });
        let deliveries = "/v3/webhook/destinations/{destination}/deliveries";
        let router = axum::Router::new()
            .route(&format!("{deliveries}/"), get(list))
            .route(&format!("{deliveries}/{{delivery}}/"), get(delivery))
            .route(&format!("{deliveries}/{{delivery}}/resend/"), post(resend))
            .route("/v3/session/{session_id}/decision/", get(decision))
            .fallback(|| async { not_found() })
            .layer(axum::middleware::from_fn_with_state(shared.clone(), gate))
            .with_state(shared.clone());
        let task = tokio::spawn(async move {
            axum::serve(listener, router).await.unwrap();
        });
        Self { addr, shared, task }
    }

    /// Where deliveries and resends go from now on.
    pub(crate) fn set_target(&self, target_url: &str) {
        *self.shared.target_url.lock().unwrap() = target_url.to_owned();
    }

    /// `http://127.0.0.1:PORT` (no trailing slash).
    pub(crate) fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Records an attempt Didit made of `body` without sending it (as if our endpoint was down
    /// or answered `response_status`), at Unix time `created_at`. Returns the delivery uuid.
    pub(crate) fn record_attempt(
        &self,
        body: &[u8],
        response_status: Option<u16>,
        created_at: i64,
    ) -> String {
        let headers = signed_headers(&self.shared.key, body, created_at);
        // No response means Didit waited for its timeout; an answer came back quickly.
        let elapsed = if response_status.is_some() {
            35
        } else {
            10_000
        };
        let attempt = Attempt::new(
            body,
            response_status,
            created_at,
            elapsed,
            header_text(&headers),
        );
        let uuid = attempt.uuid.clone();
        self.shared.record(attempt);
        uuid
    }

    /// Really delivers `body` to the target now (signed, timestamp = now) and records the attempt
    /// with the status the target answered (None if the connection failed).
    pub(crate) async fn deliver(&self, body: &[u8]) -> (String, Option<u16>) {
        let attempt = self.shared.send(body).await;
        let outcome = (attempt.uuid.clone(), attempt.response_status);
        self.shared.record(attempt);
        outcome
    }

    /// What `GET /v3/session/{id}/decision/` answers for this session.
    pub(crate) fn set_session_status(&self, session_id: &str, status: &str) {
        self.shared
            .log
            .lock()
            .unwrap()
            .sessions
            .insert(session_id.to_owned(), status.to_owned());
    }

    /// The next `n` API requests (any route) answer 429 with `Retry-After: {retry_after_secs}`.
    pub(crate) fn rate_limit_next(&self, n: usize, retry_after_secs: u64) {
        let mut log = self.shared.log.lock().unwrap();
        log.throttle = n;
        log.retry_after_secs = retry_after_secs;
    }

    /// The next `n` API requests answer `status` with `{"detail":"simulated failure"}`.
    pub(crate) fn fail_next(&self, n: usize, status: u16) {
        let mut log = self.shared.log.lock().unwrap();
        log.failures = n;
        log.failure_status = status;
    }

    /// Every API request received, as `"METHOD path?query"`, in order (refused ones included).
    pub(crate) fn requests(&self) -> Vec<String> {
        self.shared.log.lock().unwrap().requests.clone()
    }

    /// The delivery uuids a resend was asked for (successful resends only), in order.
    pub(crate) fn resent(&self) -> Vec<String> {
        self.shared.log.lock().unwrap().resent.clone()
    }

    /// How many attempt entries exist.
    pub(crate) fn attempts(&self) -> usize {
        self.shared.log.lock().unwrap().attempts.len()
    }
}

/// Logs the request, then injected faults, then the API key, all before routing: a throttled
/// or failing Didit answers that way whatever was asked, and an unknown route is not a way
/// around authentication.
async fn gate(State(shared): State<Arc<Shared>>, request: Request, next: Next) -> Response {
    let uri = request.uri();
    let line = format!(
        "{} {}",
        request.method(),
        uri.path_and_query().map_or(uri.path(), |pq| pq.as_str())
    );
    let fault = {
        let mut log = shared.log.lock().unwrap();
        log.requests.push(line);
        if log.throttle > 0 {
            log.throttle -= 1;
            let mut response = detail(StatusCode::TOO_MANY_REQUESTS, "Request was throttled.");
            response
                .headers_mut()
                .insert("retry-after", log.retry_after_secs.into());
            Some(response)
        } else if log.failures > 0 {
            log.failures -= 1;
            let status = StatusCode::from_u16(log.failure_status).unwrap();
            Some(detail(status, "simulated failure"))
        } else {
            None
        }
    };
    if let Some(response) = fault {
        return response;
    }
    let authorised = request
        .headers()
        .get("x-api-key")
        .is_some_and(|v| v.as_bytes() == shared.api_key.as_bytes());
    if !authorised {
        return detail(StatusCode::UNAUTHORIZED, "Invalid API key.");
    }
    next.run(request).await
}

#[derive(Debug, Deserialize)]
struct ListQuery {
    limit: Option<String>,
    offset: Option<String>,
    date_from: Option<String>,
    date_to: Option<String>,
}

/// A query number as Django REST framework reads it: anything but a number in range falls back
/// to the default rather than being refused.
fn query_number(text: Option<&str>, default: usize, min: usize) -> usize {
    text.and_then(|t| t.parse::<usize>().ok())
        .filter(|&n| n >= min)
        .unwrap_or(default)
}

async fn list(
    State(shared): State<Arc<Shared>>,
    Path(destination): Path<String>,
    Query(query): Query<ListQuery>,
) -> Response {
    if destination != shared.destination {
        return not_found();
    }
    let limit = query_number(query.limit.as_deref(), DEFAULT_LIMIT, 1);
    let offset = query_number(query.offset.as_deref(), 0, 0);
    let mut filters = String::new();
    for (name, day) in [("date_from", &query.date_from), ("date_to", &query.date_to)] {
        if let Some(day) = day {
            if !is_day(day) {
                return detail(
                    StatusCode::BAD_REQUEST,
                    &format!("Invalid {name} `{day}`: expected a date as YYYY-MM-DD."),
                );
            }
            filters.push_str(&format!("&{name}={day}"));
        }
    }
    let (total, results) = {
        let log = shared.log.lock().unwrap();
        let mut matching: Vec<&Attempt> = log
            .attempts
            .iter()
            .filter(|a| {
                let text = a.created_at_text();
                let day = &text[..10];
                query.date_from.as_deref().is_none_or(|from| day >= from)
                    && query.date_to.as_deref().is_none_or(|to| day <= to)
            })
            .collect();
        // Reversed first so that, after the stable sort, attempts within one second stay
        // newest (last recorded) first.
        matching.reverse();
        matching.sort_by_key(|a| std::cmp::Reverse(a.created_at));
        let results: Vec<Value> = matching
            .iter()
            .skip(offset)
            .take(limit)
            .map(|a| a.entry(&shared.target()))
            .collect();
        (matching.len(), results)
    };
    let link = |offset: usize| {
        format!(
            "{}/v3/webhook/destinations/{destination}/deliveries/?limit={limit}&offset={offset}{filters}",
            shared.base_url
        )
    };
    let next = (offset.saturating_add(limit) < total).then(|| link(offset + limit));
    let previous = (offset > 0).then(|| link(offset.saturating_sub(limit)));
    Json(json!({
        "count": total.min(COUNT_CAP),
        "next": next,
        "previous": previous,
        "results": results,
    }))
    .into_response()
}

async fn delivery(
    State(shared): State<Arc<Shared>>,
    Path((destination, delivery)): Path<(String, String)>,
) -> Response {
    if destination != shared.destination {
        return not_found();
    }
    let log = shared.log.lock().unwrap();
    match log.attempts.iter().find(|a| a.uuid == delivery) {
        Some(attempt) => Json(attempt.detail(&shared.target())).into_response(),
        None => not_found(),
    }
}

async fn resend(
    State(shared): State<Arc<Shared>>,
    Path((destination, delivery)): Path<(String, String)>,
) -> Response {
    if destination != shared.destination {
        return not_found();
    }
    let body = {
        let log = shared.log.lock().unwrap();
        log.attempts
            .iter()
            .find(|a| a.uuid == delivery)
            .map(|a| a.body.clone())
    };
    let Some(body) = body else {
        return not_found();
    };
    let attempt = shared.send(&body).await;
    let entry = attempt.entry(&shared.target());
    {
        let mut log = shared.log.lock().unwrap();
        log.attempts.push(attempt);
        log.resent.push(delivery);
    }
    Json(entry).into_response()
}

async fn decision(State(shared): State<Arc<Shared>>, Path(session_id): Path<String>) -> Response {
    let status = shared
        .log
        .lock()
        .unwrap()
        .sessions
        .get(&session_id)
        .cloned();
    match status {
        Some(status) => Json(json!({ "session_id": session_id, "status": status })).into_response(),
        None => not_found(),
    }
}

// --- Self-tests ----------------------------------------------------------------------------

const API_KEY: &str = "didit_sim_test_key";
const DESTINATION: &str = "3f0b7c52-9a41-4c1e-8d2f-6b5a0e9c7d13";

/// Nothing listens on the discard port, and these tests never send anything anyway.
const NOWHERE: &str = "http://127.0.0.1:9/webhooks/didit";

/// Formatted as a real delivery might be, with spacing and non-ASCII text, so that any
/// re-serialisation on the way would show.
const BODY: &[u8] = "{\"session_id\": \"5c0a7f7e-1d2b-4c3a-9e8f-0a1b2c3d4e5f\", \"status\":\"Approved\",  \"webhook_type\": \"status.updated\", \"timestamp\": 1764928800, \"note\": \"Zoë — ünïcode\"}".as_bytes();

fn unix(rfc3339: &str) -> i64 {
    let at = humantime::parse_rfc3339(rfc3339).unwrap();
    i64::try_from(at.duration_since(UNIX_EPOCH).unwrap().as_secs()).unwrap()
}

/// A response, read whole.
#[derive(Debug)]
struct Answer {
    status: u16,
    headers: reqwest::header::HeaderMap,
    json: Value,
}

async fn call(request: reqwest::RequestBuilder) -> Answer {
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    let bytes = response.bytes().await.unwrap();
    Answer {
        status,
        headers,
        json: serde_json::from_slice(&bytes).unwrap_or(Value::Null),
    }
}

fn deliveries_url(sim: &DiditSim) -> String {
    format!(
        "{}/v3/webhook/destinations/{DESTINATION}/deliveries/",
        sim.base_url()
    )
}

async fn api_get(url: &str) -> Answer {
    call(reqwest::Client::new().get(url).header("x-api-key", API_KEY)).await
}

async fn api_post(url: &str) -> Answer {
    call(
        reqwest::Client::new()
            .post(url)
            .header("x-api-key", API_KEY),
    )
    .await
}

fn uuids(page: &Value) -> Vec<String> {
    page["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["uuid"].as_str().unwrap().to_owned())
        .collect()
}

/// One request the target got.
#[derive(Debug, Clone)]
struct Hit {
    headers: axum::http::HeaderMap,
    body: bytes::Bytes,
}

#[derive(Debug)]
struct TargetState {
    hits: Mutex<Vec<Hit>>,
    answer: Mutex<u16>,
}

/// A stand-in for riskhook's webhook endpoint: records each request and answers a set status.
#[derive(Debug)]
struct Target {
    addr: SocketAddr,
    state: Arc<TargetState>,
    task: JoinHandle<()>,
}

impl Target {
    async fn start() -> Self {
        async fn hook(
            State(state): State<Arc<TargetState>>,
            headers: axum::http::HeaderMap,
            body: bytes::Bytes,
        ) -> StatusCode {
            state.hits.lock().unwrap().push(Hit { headers, body });
            StatusCode::from_u16(*state.answer.lock().unwrap()).unwrap()
        }
        let state = Arc::new(TargetState {
            hits: Mutex::new(Vec::new()),
            answer: Mutex::new(200),
        });
        let router = axum::Router::new()
            .route("/webhooks/didit", post(hook))
            .with_state(state.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let task = tokio::spawn(async move {
            axum::serve(listener, router).await.unwrap();
        });
        Self { addr, state, task }
    }

    fn url(&self) -> String {
        format!("http://{}/webhooks/didit", self.addr)
    }

    fn answer(&self, status: u16) {
        *self.state.answer.lock().unwrap() = status;
    }

    fn hits(&self) -> Vec<Hit> {
        self.state.hits.lock().unwrap().clone()
    }
}

impl Drop for Target {
    fn drop(&mut self) {
        self.task.abort();
    }
}

fn header<'a>(headers: &'a axum::http::HeaderMap, name: &str) -> &'a str {
    headers.get(name).unwrap().to_str().unwrap()
}

/// Checks `hit` as riskhook would: Didit's headers, signed with the test secret over exactly
/// `body`, at a timestamp no older than `not_before`.
fn assert_signed_delivery(hit: &Hit, body: &[u8], not_before: i64) {
    use riskhook_didit::signature::{Keyring, SignatureHeaders, check};

    let timestamp: i64 = header(&hit.headers, "x-timestamp").parse().unwrap();
    let body = &riskhook::delivery::restamp(body, timestamp)[..];
    assert_eq!(
        &hit.body[..],
        body,
        "the body, stamped with the time of sending"
    );
    assert_eq!(header(&hit.headers, "content-type"), "application/json");
    assert!(
        (not_before..=now()).contains(&timestamp),
        "X-Timestamp {timestamp} is fresh (not before {not_before})"
    );
    let expected = SignedHeaders::sign(&crate::helpers::key(), body, timestamp);
    assert_eq!(header(&hit.headers, "x-signature"), expected.signature);
    assert_eq!(
        header(&hit.headers, "x-signature-v2"),
        expected.signature_v2.unwrap()
    );
    assert_eq!(
        header(&hit.headers, "x-signature-simple"),
        expected.signature_simple
    );
    let keyring = Keyring::single(&Secret::new(crate::helpers::SECRET)).unwrap();
    let signatures = SignatureHeaders {
        raw: Some(header(&hit.headers, "x-signature")),
        v2: Some(header(&hit.headers, "x-signature-v2")),
        simple: Some(header(&hit.headers, "x-signature-simple")),
    };
    check(&keyring, &signatures, body, now(), false).unwrap();
}

#[tokio::test]
async fn sim_paginates_newest_first_with_a_capped_count_and_absolute_links() {
    let sim = DiditSim::start(API_KEY, DESTINATION, crate::helpers::SECRET, NOWHERE).await;
    let start = unix("2026-12-05T10:00:00Z");
    let recorded: Vec<String> = (0..120)
        .map(|i| sim.record_attempt(BODY, Some(500), start + i * 30))
        .collect();
    assert_eq!(sim.attempts(), 120);

    let first = api_get(&format!("{}?limit=50", deliveries_url(&sim))).await;
    assert_eq!(first.status, 200);
    assert_eq!(first.json["count"], 100, "count stops at 100");
    assert_eq!(first.json["previous"], Value::Null);
    assert_eq!(
        first.json["next"],
        format!("{}?limit=50&offset=50", deliveries_url(&sim))
    );
    let newest = &first.json["results"][0];
    assert_eq!(newest["uuid"], recorded[119].as_str());
    assert_eq!(newest["created_at"], "2026-12-05T10:59:30Z");
    assert_eq!(newest["request_url"], NOWHERE);
    assert_eq!(newest["response_status"], 500);
    assert_eq!(newest["status"], "failed");

    let mut seen = uuids(&first.json);
    let mut next = first.json["next"].as_str().map(str::to_owned);
    let mut pages = 1;
    while let Some(url) = next {
        let page = api_get(&url).await;
        assert_eq!(page.status, 200);
        assert_eq!(page.json["count"], 100);
        assert!(
            page.json["previous"]
                .as_str()
                .unwrap()
                .starts_with(&sim.base_url())
        );
        seen.extend(uuids(&page.json));
        next = page.json["next"].as_str().map(str::to_owned);
        pages += 1;
    }
    assert_eq!(pages, 3);
    let newest_first: Vec<String> = recorded.iter().rev().cloned().collect();
    assert_eq!(seen, newest_first, "every attempt once, newest first");

    // Without a limit, Didit's default page size applies; a count under the cap is exact.
    let default = api_get(&deliveries_url(&sim)).await;
    assert_eq!(uuids(&default.json).len(), 50);
    let small = DiditSim::start(API_KEY, DESTINATION, crate::helpers::SECRET, NOWHERE).await;
    small.record_attempt(BODY, None, start);
    // Attempts within one second: the one recorded last is the newer.
    let later = small.record_attempt(BODY, Some(200), start);
    let page = api_get(&deliveries_url(&small)).await;
    assert_eq!(page.json["count"], 2);
    assert_eq!(page.json["next"], Value::Null);
    assert_eq!(page.json["results"][0]["uuid"], later.as_str());
    assert_eq!(page.json["results"][0]["status"], "success");
    assert_eq!(page.json["results"][1]["response_status"], Value::Null);
}

#[tokio::test]
async fn sim_filters_by_utc_day_inclusively_and_refuses_bad_dates() {
    let sim = DiditSim::start(API_KEY, DESTINATION, crate::helpers::SECRET, NOWHERE).await;
    let [before, first, last, after] = [
        "2026-12-04T23:59:59Z",
        "2026-12-05T00:00:00Z",
        "2026-12-05T23:59:59Z",
        "2026-12-06T00:00:00Z",
    ]
    .map(|at| sim.record_attempt(BODY, Some(503), unix(at)));
    let url = deliveries_url(&sim);

    let day = api_get(&format!("{url}?date_from=2026-12-05&date_to=2026-12-05")).await;
    assert_eq!(day.status, 200);
    assert_eq!(day.json["count"], 2);
    assert_eq!(uuids(&day.json), [last.clone(), first.clone()]);

    let from = api_get(&format!("{url}?date_from=2026-12-05")).await;
    assert_eq!(uuids(&from.json), [after, last.clone(), first.clone()]);
    let to = api_get(&format!("{url}?date_to=2026-12-04")).await;
    assert_eq!(uuids(&to.json), [before]);

    // The links keep the filters.
    let page = api_get(&format!(
        "{url}?limit=1&date_from=2026-12-05&date_to=2026-12-05"
    ))
    .await;
    assert_eq!(uuids(&page.json), [last]);
    let next = page.json["next"].as_str().unwrap();
    assert_eq!(
        next,
        format!("{url}?limit=1&offset=1&date_from=2026-12-05&date_to=2026-12-05")
    );
    let second = api_get(next).await;
    assert_eq!(uuids(&second.json), [first]);
    assert_eq!(second.json["next"], Value::Null);

    for bad in [
        "date_from=2026-13-01",
        "date_to=05-12-2026",
        "date_from=2026-02-30",
        "date_to=2026-12-05T00:00:00Z",
    ] {
        let refused = api_get(&format!("{url}?{bad}")).await;
        assert_eq!(refused.status, 400, "{bad}");
        assert!(refused.json["detail"].is_string(), "{bad}");
    }
}

#[tokio::test]
async fn sim_refuses_a_missing_or_wrong_api_key_before_routing() {
    let sim = DiditSim::start(API_KEY, DESTINATION, crate::helpers::SECRET, NOWHERE).await;
    let url = deliveries_url(&sim);
    let client = reqwest::Client::new();

    let missing = call(client.get(&url)).await;
    assert_eq!(missing.status, 401);
    assert_eq!(missing.json, json!({ "detail": "Invalid API key." }));
    let wrong = call(client.get(&url).header("x-api-key", "not-the-key")).await;
    assert_eq!(wrong.status, 401);
    let unknown_route = call(client.get(format!("{}/v3/nothing/", sim.base_url()))).await;
    assert_eq!(unknown_route.status, 401);

    let other_destination = api_get(&format!(
        "{}/v3/webhook/destinations/00000000-0000-4000-8000-000000000000/deliveries/",
        sim.base_url()
    ))
    .await;
    assert_eq!(other_destination.status, 404);
    assert_eq!(other_destination.json, json!({ "detail": "Not found." }));
    let resend_elsewhere = api_post(&format!(
        "{}/v3/webhook/destinations/00000000-0000-4000-8000-000000000000/deliveries/{}/resend/",
        sim.base_url(),
        sim.record_attempt(BODY, None, now())
    ))
    .await;
    assert_eq!(resend_elsewhere.status, 404);
    assert!(sim.resent().is_empty());

    assert_eq!(
        sim.requests()[0],
        format!("GET /v3/webhook/destinations/{DESTINATION}/deliveries/")
    );
    assert_eq!(sim.requests().len(), 5);
}

#[tokio::test]
async fn sim_throttles_then_fails_then_answers_one_request_at_a_time() {
    let sim = DiditSim::start(API_KEY, DESTINATION, crate::helpers::SECRET, NOWHERE).await;
    sim.rate_limit_next(2, 7);
    sim.fail_next(1, 503);
    let url = format!("{}?limit=5", deliveries_url(&sim));

    // Throttling comes before authentication.
    let unauthenticated = call(reqwest::Client::new().get(&url)).await;
    assert_eq!(unauthenticated.status, 429);
    assert_eq!(header(&unauthenticated.headers, "retry-after"), "7");
    assert_eq!(
        unauthenticated.json,
        json!({ "detail": "Request was throttled." })
    );
    let throttled = api_get(&url).await;
    assert_eq!(throttled.status, 429);
    assert_eq!(header(&throttled.headers, "retry-after"), "7");

    let failed = api_get(&url).await;
    assert_eq!(failed.status, 503);
    assert_eq!(failed.json, json!({ "detail": "simulated failure" }));
    assert!(failed.headers.get("retry-after").is_none());

    let answered = api_get(&url).await;
    assert_eq!(answered.status, 200);
    assert_eq!(answered.json["count"], 0);

    let line = format!("GET /v3/webhook/destinations/{DESTINATION}/deliveries/?limit=5");
    assert_eq!(sim.requests(), vec![line; 4]);
}

#[tokio::test]
async fn sim_detail_returns_the_exact_body_and_the_signed_headers_as_strings() {
    let sim = DiditSim::start(API_KEY, DESTINATION, crate::helpers::SECRET, NOWHERE).await;
    let at = unix("2026-12-05T10:00:00Z");
    let uuid = sim.record_attempt(BODY, Some(502), at);

    let found = api_get(&format!("{}{uuid}/", deliveries_url(&sim))).await;
    assert_eq!(found.status, 200);
    let entry = &found.json;
    assert_eq!(entry["uuid"], uuid.as_str());
    assert_eq!(entry["session_id"], "5c0a7f7e-1d2b-4c3a-9e8f-0a1b2c3d4e5f");
    assert_eq!(entry["webhook_type"], "status.updated");
    assert_eq!(entry["response_status"], 502);
    assert_eq!(entry["status"], "failed");
    assert_eq!(entry["created_at"], "2026-12-05T10:00:00Z");
    assert_eq!(
        entry["request_body"].as_str().unwrap().as_bytes(),
        BODY,
        "the body comes back byte for byte"
    );
    let headers: Value = serde_json::from_str(entry["request_header"].as_str().unwrap()).unwrap();
    let signed = SignedHeaders::sign(&crate::helpers::key(), BODY, at);
    assert_eq!(headers["X-Timestamp"], at.to_string());
    assert_eq!(headers["X-Signature"], signed.signature);
    assert_eq!(headers["Content-Type"], "application/json");

    // A body without the fields leaves them empty rather than failing.
    let bare = sim.record_attempt(b"{}", None, at);
    let bare = api_get(&format!("{}{bare}/", deliveries_url(&sim))).await;
    assert_eq!(bare.json["session_id"], Value::Null);
    assert_eq!(bare.json["webhook_type"], "");
    assert_eq!(bare.json["response_status"], Value::Null);
    assert_eq!(bare.json["request_body"], "{}");

    let missing = api_get(&format!(
        "{}{}/",
        deliveries_url(&sim),
        uuid::Uuid::new_v4()
    ))
    .await;
    assert_eq!(missing.status, 404);
    assert_eq!(missing.json, json!({ "detail": "Not found." }));
}

#[tokio::test]
async fn sim_resend_re_signs_the_stored_body_at_now_and_records_a_new_attempt() {
    let target = Target::start().await;
    let sim = DiditSim::start(API_KEY, DESTINATION, crate::helpers::SECRET, &target.url()).await;
    let original = sim.record_attempt(BODY, None, now() - 3 * 86_400);

    let before = now();
    let resent = api_post(&format!("{}{original}/resend/", deliveries_url(&sim))).await;
    assert_eq!(resent.status, 200);
    let entry = &resent.json;
    assert_ne!(entry["uuid"], original.as_str());
    assert_eq!(entry["response_status"], 200);
    assert_eq!(entry["status"], "success");
    assert_eq!(entry["request_url"], target.url());
    let created = unix(entry["created_at"].as_str().unwrap());
    assert!((before..=now()).contains(&created), "created_at is now");
    assert!(
        entry.get("request_body").is_none(),
        "a list entry, not a detail"
    );

    let hits = target.hits();
    assert_eq!(hits.len(), 1);
    assert_signed_delivery(&hits[0], BODY, before);
    assert_eq!(sim.resent(), std::slice::from_ref(&original));
    assert_eq!(sim.attempts(), 2);
    let list = api_get(&deliveries_url(&sim)).await;
    assert_eq!(uuids(&list.json)[0], entry["uuid"].as_str().unwrap());

    // The target's answer is what gets recorded.
    target.answer(503);
    let refused = api_post(&format!("{}{original}/resend/", deliveries_url(&sim))).await;
    assert_eq!(refused.status, 200);
    assert_eq!(refused.json["response_status"], 503);
    assert_eq!(refused.json["status"], "failed");

    let unknown = api_post(&format!(
        "{}{}/resend/",
        deliveries_url(&sim),
        uuid::Uuid::new_v4()
    ))
    .await;
    assert_eq!(unknown.status, 404);
    assert_eq!(sim.resent(), [original.clone(), original]);
    assert_eq!(sim.attempts(), 3);
}

#[tokio::test]
async fn sim_deliver_sends_a_signed_body_and_records_what_the_target_answered() {
    let target = Target::start().await;
    let sim = DiditSim::start(API_KEY, DESTINATION, crate::helpers::SECRET, &target.url()).await;
    let before = now();
    let (uuid, status) = sim.deliver(BODY).await;
    assert_eq!(status, Some(200));
    assert_signed_delivery(&target.hits()[0], BODY, before);
    let detail = api_get(&format!("{}{uuid}/", deliveries_url(&sim))).await;
    assert_eq!(detail.json["response_status"], 200);

    // A port nobody listens on any more: the attempt is recorded with no response.
    let closed = {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        listener.local_addr().unwrap()
    };
    let down = DiditSim::start(
        API_KEY,
        DESTINATION,
        crate::helpers::SECRET,
        &format!("http://{closed}/webhooks/didit"),
    )
    .await;
    let (uuid, status) = down.deliver(BODY).await;
    assert_eq!(status, None);
    let page = api_get(&deliveries_url(&down)).await;
    assert_eq!(page.json["results"][0]["uuid"], uuid.as_str());
    assert_eq!(page.json["results"][0]["response_status"], Value::Null);
    assert_eq!(page.json["results"][0]["status"], "failed");
}

#[tokio::test]
async fn sim_decision_answers_the_status_set_for_a_session_only() {
    let sim = DiditSim::start(API_KEY, DESTINATION, crate::helpers::SECRET, NOWHERE).await;
    sim.set_session_status("session-1", "Approved");
    sim.set_session_status("session-1", "Declined");

    let known = api_get(&format!(
        "{}/v3/session/session-1/decision/",
        sim.base_url()
    ))
    .await;
    assert_eq!(known.status, 200);
    assert_eq!(
        known.json,
        json!({ "session_id": "session-1", "status": "Declined" })
    );
    let unknown = api_get(&format!(
        "{}/v3/session/session-2/decision/",
        sim.base_url()
    ))
    .await;
    assert_eq!(unknown.status, 404);
    assert_eq!(unknown.json, json!({ "detail": "Not found." }));
    let unauthenticated = call(
        reqwest::Client::new().get(format!("{}/v3/session/session-1/decision/", sim.base_url())),
    )
    .await;
    assert_eq!(unauthenticated.status, 401);
}
