//! The fault suite (issue 11): the real `riskhook` binary under the faults it must survive,
//! SIGKILLs under load on both backends (`sigkill.rs`), its PostgreSQL server stopping and
//! coming back (`postgres_down.rs`), the SQLite disk filling up (`disk_full.rs`). What they
//! share lives here: distinct signed deliveries, concurrent clients keeping a ledger of every
//! answer, a notification receiver, and the checks made on the database afterwards (every
//! acknowledged event stored exactly once and with all its effects, the audit chain intact,
//! every notification received, duplicates only as re-sends of one message id).
//!
//! Faults needing root (a private PostgreSQL cluster, a tmpfs) are ignored by the harness when
//! the tests do not run as root (`main.rs`); one that still cannot be set up (no PostgreSQL
//! binaries, a refused mount) is skipped with a message. With `RISKHOOK_REQUIRE_SERVICES=1`,
//! both fail instead.

pub(crate) mod disk_full;
pub(crate) mod postgres_down;
pub(crate) mod sigkill;

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::process::Command;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::http::HeaderMap;
use bytes::Bytes;
use riskhook_core::audit::ChainVerifier;
use riskhook_store::{DeliveryFilter, DeliveryStatus, Store};
use serde_json::Value;
use standardwebhooks::Webhook;

use crate::helpers::{fixture, key, now};

/// The session events sent, in turn: mostly clean, some risky, a few sanctioned, so users'
/// statuses and decisions move (each move is a notification).
const FIXTURES: &[&str] = &[
    "status-updated-in-progress.json",
    "status-updated-approved-full.json",
    "status-updated-in-review-risky.json",
    "status-updated-approved-full.json",
    "status-updated-in-progress.json",
    "status-updated-approved-full.json",
    "status-updated-declined-sanctions.json",
];

/// The customer endpoint's signing secret.
const ENDPOINT_SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";

/// How long any expected state may take to appear on a loaded machine (not a timing
/// assertion: only a bound on waiting, so a broken service fails instead of hanging).
const PATIENCE: Duration = Duration::from_secs(90);

/// Whether a fault that cannot be set up must fail the test (CI) rather than skip it.
fn required() -> bool {
    std::env::var(riskhook_store_postgres::test_support::REQUIRE_VAR).is_ok_and(|v| v == "1")
}

/// Skips (a message on stderr) or, when [`required`], fails: `why` says what was missing.
fn skip_or_fail(test: &str, why: &str) {
    let var = riskhook_store_postgres::test_support::REQUIRE_VAR;
    assert!(!required(), "{test}: {why}, and {var}=1 requires it");
    eprintln!("skipped {test}: {why}; set {var}=1 to make this a failure");
}

/// Whether this process runs as root (mounting and running `postgres` need it).
pub(crate) fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
}

/// Runs `command`, returning its stderr as the error when it fails.
fn run(command: &mut Command) -> Result<String, String> {
    let out = command
        .output()
        .map_err(|e| format!("cannot run {command:?}: {e}"))?;
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    } else {
        Err(format!(
            "{command:?} failed ({}): {}{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ))
    }
}

/// A tiny deterministic generator, so a failing run can be told apart from the next.
struct Lcg(u64);

impl Lcg {
    fn below(&mut self, n: u64) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        (self.0 >> 33) % n.max(1)
    }
}

// --- Deliveries and their answers ---------------------------------------------------------

/// One signed delivery, sent again unchanged (same body, same timestamp) when it must be
/// retried, as Didit does.
#[derive(Debug, Clone)]
struct Delivery {
    event_id: String,
    body: Arc<Vec<u8>>,
    timestamp: i64,
}

/// Makes distinct deliveries: each a new session (so a new content key) of one of `users`.
struct Deliveries {
    prefix: String,
    users: u64,
    next: AtomicU64,
}

impl Deliveries {
    fn new(prefix: &str, users: u64) -> Self {
        Self {
            prefix: prefix.to_owned(),
            users,
            next: AtomicU64::new(0),
        }
    }

    fn next(&self) -> Delivery {
        let n = self.next.fetch_add(1, Ordering::Relaxed);
        let user = format!("{}-user-{}", self.prefix, n % self.users);
        let name = FIXTURES[usize::try_from((n / self.users + n) % FIXTURES.len() as u64).unwrap()];
        let session = uuid::Uuid::new_v4().to_string();
        let event_id = uuid::Uuid::new_v4().to_string();
        let timestamp = now();
        let mut v: Value = serde_json::from_slice(&fixture(name)).unwrap();
        v["session_id"] = Value::from(session.as_str());
        v["vendor_data"] = Value::from(user.as_str());
        v["event_id"] = Value::from(event_id.as_str());
        v["timestamp"] = Value::from(timestamp);
        if let Some(decision) = v.get_mut("decision").and_then(Value::as_object_mut) {
            decision.insert("session_id".to_owned(), Value::from(session));
            decision.insert("vendor_data".to_owned(), Value::from(user));
        }
        Delivery {
            event_id,
            body: Arc::new(serde_json::to_vec(&v).unwrap()),
            timestamp,
        }
    }
}

/// What the service answered to one delivery.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Answer {
    /// 2xx: stored (`accepted`) or found stored (`duplicate`) under `id`.
    Stored { accepted: bool, id: String },
    /// 503: refused for now, to be retried.
    Unavailable,
    /// No answer at all (refused or cut connection, a killed process): to be retried.
    Unanswered,
    /// Anything else, e.g. a 500: always a failure.
    Unexpected(u16, String),
}

async fn send(client: &reqwest::Client, url: &str, d: &Delivery) -> Answer {
    let outcome = riskhook::delivery::send(client, url, &key(), d.body.to_vec(), d.timestamp).await;
    let Ok(outcome) = outcome else {
        return Answer::Unanswered;
    };
    match outcome.status {
        200..=299 => {
            let v: Value = serde_json::from_str(&outcome.body).unwrap_or(Value::Null);
            match (v["status"].as_str(), v["id"].as_str()) {
                (Some(status @ ("accepted" | "duplicate")), Some(id)) => Answer::Stored {
                    accepted: status == "accepted",
                    id: id.to_owned(),
                },
                _ => Answer::Unexpected(outcome.status, outcome.body),
            }
        }
        503 => Answer::Unavailable,
        status => Answer::Unexpected(status, outcome.body),
    }
}

/// Every delivery sent and what became of it; unacknowledged ones wait to be sent again.
#[derive(Default)]
struct Ledger {
    inner: Mutex<Book>,
}

#[derive(Default)]
struct Book {
    /// Every delivery sent, by Didit's event id.
    sent: BTreeMap<String, Delivery>,
    /// The id each acknowledged delivery is stored under, from its first 2xx.
    acked: BTreeMap<String, String>,
    /// How many answers said `accepted`, per event id (more than one is a double effect).
    accepted: BTreeMap<String, u32>,
    /// Unacknowledged deliveries, to send again.
    retry: VecDeque<Delivery>,
    /// Counts of 503s and of requests that got no answer.
    unavailable: u64,
    no_answer: u64,
    /// Every answer that was neither 2xx nor 503.
    unexpected: Vec<String>,
}

impl Ledger {
    fn record(&self, d: &Delivery, answer: Answer) {
        let mut book = self.inner.lock().unwrap();
        book.sent
            .entry(d.event_id.clone())
            .or_insert_with(|| d.clone());
        match answer {
            Answer::Stored { accepted, id } => {
                if accepted {
                    *book.accepted.entry(d.event_id.clone()).or_default() += 1;
                }
                let first = book.acked.entry(d.event_id.clone()).or_insert(id.clone());
                if *first != id {
                    let message = format!("{} acknowledged as {first} and as {id}", d.event_id);
                    book.unexpected.push(message);
                }
            }
            Answer::Unavailable => {
                book.unavailable += 1;
                book.retry.push_back(d.clone());
            }
            Answer::Unanswered => {
                book.no_answer += 1;
                book.retry.push_back(d.clone());
            }
            Answer::Unexpected(status, body) => {
                book.unexpected
                    .push(format!("{}: {status} {body}", d.event_id));
            }
        }
    }

    fn take_retry(&self) -> Option<Delivery> {
        self.inner.lock().unwrap().retry.pop_front()
    }

    fn acked(&self) -> BTreeMap<String, String> {
        self.inner.lock().unwrap().acked.clone()
    }

    /// `(sent, acknowledged, 503s, no answer)`.
    fn counts(&self) -> (usize, usize, u64, u64) {
        let book = self.inner.lock().unwrap();
        (
            book.sent.len(),
            book.acked.len(),
            book.unavailable,
            book.no_answer,
        )
    }

    fn assert_no_unexpected_answer(&self) {
        let book = self.inner.lock().unwrap();
        assert!(
            book.unexpected.is_empty(),
            "answers other than 2xx or 503: {:#?}",
            book.unexpected.iter().take(10).collect::<Vec<_>>()
        );
        let twice: Vec<_> = book.accepted.iter().filter(|(_, n)| **n > 1).collect();
        assert!(twice.is_empty(), "accepted more than once: {twice:?}");
    }

    /// Sends every unacknowledged delivery again, as Didit retries, until each is acknowledged
    /// (the service is expected to be up and well).
    async fn settle(&self, client: &reqwest::Client, url: &str) {
        let deadline = Instant::now() + PATIENCE;
        while let Some(d) = self.take_retry() {
            let answer = send(client, url, &d).await;
            assert!(
                matches!(answer, Answer::Stored { .. }) || Instant::now() < deadline,
                "{} still not acknowledged on retry: {answer:?}",
                d.event_id
            );
            if !matches!(answer, Answer::Stored { .. }) {
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            self.record(&d, answer);
        }
        self.assert_no_unexpected_answer();
    }

    /// Sends up to `n` acknowledged deliveries again: each must be a duplicate of the stored id.
    async fn resend_acknowledged(&self, client: &reqwest::Client, url: &str, n: usize) {
        let sample: Vec<(Delivery, String)> = {
            let book = self.inner.lock().unwrap();
            book.acked
                .iter()
                .take(n)
                .map(|(e, id)| (book.sent[e].clone(), id.clone()))
                .collect()
        };
        for (d, id) in sample {
            let answer = send(client, url, &d).await;
            assert_eq!(
                answer,
                Answer::Stored {
                    accepted: false,
                    id
                },
                "a re-sent delivery"
            );
        }
    }
}

/// Concurrent clients sending to `url` until `stop` is set: each sends what waits for a retry
/// first, then new deliveries.
struct Load {
    stop: Arc<AtomicBool>,
    clients: Vec<tokio::task::JoinHandle<()>>,
}

impl Load {
    fn start(
        url: &str,
        clients: usize,
        deliveries: &Arc<Deliveries>,
        ledger: &Arc<Ledger>,
    ) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let client = reqwest::Client::builder()
            .timeout(PATIENCE)
            .build()
            .unwrap();
        let clients = (0..clients)
            .map(|_| {
                let (url, client, stop) = (url.to_owned(), client.clone(), stop.clone());
                let (deliveries, ledger) = (deliveries.clone(), ledger.clone());
                tokio::spawn(async move {
                    while !stop.load(Ordering::Relaxed) {
                        let d = ledger.take_retry().unwrap_or_else(|| deliveries.next());
                        let answer = send(&client, &url, &d).await;
                        let pause = !matches!(answer, Answer::Stored { .. });
                        ledger.record(&d, answer);
                        if pause {
                            // Without an answer, do not spin on a dead or refusing server.
                            tokio::time::sleep(Duration::from_millis(20)).await;
                        }
                    }
                })
            })
            .collect();
        Self { stop, clients }
    }

    async fn stop(self) {
        self.stop.store(true, Ordering::Relaxed);
        for client in self.clients {
            client.await.unwrap();
        }
    }
}

// --- The customer's endpoint --------------------------------------------------------------

/// One notification received.
#[derive(Debug, Clone)]
struct Got {
    id: String,
    user_id: String,
    version: i64,
    status: String,
    decision: String,
}

/// An HTTP endpoint that verifies (Standard Webhooks) and records every notification.
struct Receiver {
    url: String,
    got: Arc<Mutex<Vec<Got>>>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Receiver {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Receiver {
    async fn start() -> Self {
        let got: Arc<Mutex<Vec<Got>>> = Arc::default();
        let seen = got.clone();
        let router = axum::Router::new().route(
            "/hook",
            axum::routing::post(move |headers: HeaderMap, body: Bytes| {
                let seen = seen.clone();
                async move {
                    let verified = Webhook::new(ENDPOINT_SECRET)
                        .unwrap()
                        .verify(&body, &headers)
                        .is_ok();
                    if !verified {
                        return axum::http::StatusCode::UNAUTHORIZED;
                    }
                    let v: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
                    let text = |field: &str| v["data"][field].as_str().unwrap_or("").to_owned();
                    seen.lock().unwrap().push(Got {
                        id: headers["webhook-id"].to_str().unwrap_or("").to_owned(),
                        user_id: text("user_id"),
                        version: v["data"]["version"].as_i64().unwrap_or(-1),
                        status: text("status"),
                        decision: text("decision"),
                    });
                    axum::http::StatusCode::NO_CONTENT
                }
            }),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/hook", listener.local_addr().unwrap());
        let task = tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
        Self { url, got, task }
    }

    /// A configuration file sending every notification here, quickly retried, with a short
    /// lease so that a killed dispatcher's claims are taken over within the test.
    fn config(&self, dir: &std::path::Path) -> std::path::PathBuf {
        let path = dir.join("riskhook.toml");
        std::fs::write(
            &path,
            format!(
                "[notify]\npoll_interval = \"100ms\"\nbackoff_initial = \"100ms\"\n\
                 backoff_max = \"1s\"\ntimeout = \"2s\"\nlease = \"3s\"\n\n\
                 [[notify.webhooks]]\nid = \"customer\"\nurl = \"{}\"\nsecret = \"{ENDPOINT_SECRET}\"\n",
                self.url
            ),
        )
        .unwrap();
        path
    }
}

// --- The checks ---------------------------------------------------------------------------

/// Every stored event, paged.
async fn all_events(store: &dyn Store) -> Vec<riskhook_store::EventRecord> {
    let mut events = Vec::new();
    let mut after: Option<String> = None;
    loop {
        let page = store.events(after.as_deref(), 1000).await.unwrap();
        let Some(last) = page.last() else { break };
        after = Some(last.id.to_string());
        events.extend(page);
    }
    events
}

/// Checks the database against the ledger: every acknowledged delivery stored exactly once,
/// under the id it was acknowledged with; nothing stored that was not sent; every stored event
/// with all of its effects (its assessment and audit entry, its session counting it, its user
/// knowing the session); the audit chain intact. Returns the number of events.
async fn check_store(store: &dyn Store, ledger: &Ledger) -> usize {
    ledger.assert_no_unexpected_answer();
    let acked = ledger.acked();
    let events = all_events(store).await;
    let mut by_key: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    for e in &events {
        let key = e.delivery_key.as_deref().unwrap_or("(none)");
        by_key.entry(key).or_default().push(&e.id);
    }
    let sent: BTreeSet<String> = ledger.inner.lock().unwrap().sent.keys().cloned().collect();
    for (key, ids) in &by_key {
        assert_eq!(ids.len(), 1, "delivery {key} stored {} times", ids.len());
        assert!(sent.contains(*key), "stored but never sent: {key}");
    }
    let lost: Vec<_> = acked
        .iter()
        .filter(|(e, id)| by_key.get(e.as_str()) != Some(&vec![id.as_str()]))
        .collect();
    assert!(
        lost.is_empty(),
        "{} of {} acknowledged deliveries are missing or stored under another id, e.g. {:?}",
        lost.len(),
        acked.len(),
        lost.iter().take(5).collect::<Vec<_>>()
    );

    // Effects: every event here is a session event of a user, so each has one assessment.
    let mut sessions: BTreeMap<&str, i64> = BTreeMap::new();
    let mut users: BTreeMap<&str, BTreeSet<&str>> = BTreeMap::new();
    for e in &events {
        let session = e.session_id.as_deref().unwrap();
        *sessions.entry(session).or_default() += 1;
        let user = e.vendor_data.as_deref().unwrap();
        users.entry(user).or_default().insert(&e.id);
    }
    for (session_id, count) in &sessions {
        let s = store.session(session_id).await.unwrap();
        let s = s.unwrap_or_else(|| panic!("session {session_id} of a stored event is missing"));
        assert_eq!(
            s.event_count, *count,
            "session {session_id} counts its events"
        );
    }
    for (user_id, event_ids) in &users {
        let user = store.user(user_id).await.unwrap();
        let user = user.unwrap_or_else(|| panic!("user {user_id} of stored events is missing"));
        let assessed: Vec<String> = store
            .user_assessments(user_id, 100_000)
            .await
            .unwrap()
            .into_iter()
            .map(|a| a.event_id)
            .collect();
        let assessed_set: BTreeSet<&str> = assessed.iter().map(String::as_str).collect();
        assert_eq!(
            assessed.len(),
            assessed_set.len(),
            "one assessment per event"
        );
        assert_eq!(&assessed_set, event_ids, "assessments of {user_id}");
        for e in &events {
            if e.vendor_data.as_deref() == Some(*user_id) {
                let session = e.session_id.clone().unwrap();
                assert!(
                    user.sessions.contains(&session),
                    "{user_id} knows {session}"
                );
            }
        }
    }
    let audit = store.audit(0, u32::MAX).await.unwrap();
    let mut verifier = ChainVerifier::new();
    for entry in &audit {
        verifier
            .check(&entry.fields(), &entry.hash, entry.keyed)
            .unwrap();
    }
    let recorded = audit
        .iter()
        .filter(|e| e.action == "assessment.recorded")
        .count();
    assert_eq!(recorded, events.len(), "one audited assessment per event");
    events.len()
}

/// Waits until the outbox has delivered everything, then checks what the receiver got against
/// it: every message received at least once, nothing received that is not in the outbox, one
/// message id per change (user and version), versions 1..=n per user, and each user's last
/// notification saying what the user is now. Returns `(messages, received)`.
async fn check_notifications(store: &dyn Store, receiver: &Receiver) -> (usize, usize) {
    let all = DeliveryFilter {
        limit: u32::MAX,
        ..DeliveryFilter::default()
    };
    let deadline = Instant::now() + PATIENCE;
    let outbox = loop {
        let list = store.deliveries(&all).await.unwrap();
        if list.iter().all(|d| d.status == DeliveryStatus::Delivered) {
            break list;
        }
        let waiting: Vec<_> = list
            .iter()
            .filter(|d| d.status != DeliveryStatus::Delivered)
            .collect();
        assert!(
            Instant::now() < deadline,
            "{} of {} notifications never delivered, e.g. {:?}",
            waiting.len(),
            list.len(),
            waiting.first()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert!(!outbox.is_empty(), "the load produced notifications");
    let got = receiver.got.lock().unwrap().clone();
    let mut changes: BTreeMap<(String, i64), &str> = BTreeMap::new();
    for d in &outbox {
        let v: Value = serde_json::from_str(&d.payload).unwrap();
        let change = (d.user_id.clone(), v["data"]["version"].as_i64().unwrap());
        let other = changes.insert(change.clone(), &d.message_id);
        assert!(other.is_none(), "two messages for one change {change:?}");
    }
    let mut received: BTreeMap<&str, usize> = BTreeMap::new();
    for g in &got {
        let change = (g.user_id.clone(), g.version);
        assert_eq!(
            changes.get(&change).copied(),
            Some(g.id.as_str()),
            "received {} for {change:?}, which the outbox does not hold under that id",
            g.id
        );
        *received.entry(&g.id).or_default() += 1;
    }
    for d in &outbox {
        assert!(
            received.contains_key(d.message_id.as_str()),
            "{} was never received",
            d.message_id
        );
    }
    let mut last: BTreeMap<&str, &Got> = BTreeMap::new();
    for g in &got {
        let entry = last.entry(&g.user_id).or_insert(g);
        if g.version > entry.version {
            *entry = g;
        }
    }
    for (user_id, g) in last {
        let user = store.user(user_id).await.unwrap().unwrap();
        let versions: BTreeSet<i64> = changes
            .keys()
            .filter(|(u, _)| u == user_id)
            .map(|(_, v)| *v)
            .collect();
        assert_eq!(
            versions,
            (1..=user.version).collect(),
            "versions of {user_id}"
        );
        assert_eq!(g.version, user.version, "{user_id}'s last notification");
        assert_eq!(
            (g.status.as_str(), g.decision.as_str()),
            (user.status.as_str(), user.decision.as_str()),
            "{user_id}'s last notification says what the user is"
        );
    }
    (outbox.len(), got.len())
}

/// Waits (bounded) until `done` holds of the ledger's counts `(sent, acknowledged, 503s, no
/// answer)`.
async fn wait_for_counts(
    ledger: &Ledger,
    what: &str,
    done: impl Fn((usize, usize, u64, u64)) -> bool,
) {
    let deadline = Instant::now() + PATIENCE;
    while !done(ledger.counts()) {
        assert!(
            Instant::now() < deadline,
            "never {what}: {:?}",
            ledger.counts()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// `riskhook audit verify` on `db_url`: the operator's own check of the chain.
fn audit_verify(db_url: &str) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_riskhook"))
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("RISKHOOK_DATABASE_URL", db_url)
        .args(["audit", "verify"])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success() && stdout.starts_with("audit chain intact"),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}
