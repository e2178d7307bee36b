//! Outbound notifications end to end: the real service sends `user.updated` messages to an HTTP
//! receiver started by the test, and every message is checked with the independent
//! `standardwebhooks` crate (its own HMAC). Waiting is polling with a deadline, never a sleep
//! that asserts timing; the only timing assertions are lower bounds (a retry is not early).

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use riskhook::config::Config;
use riskhook_store::{Claim, DeliveryStatus};
use serde_json::Value;
use standardwebhooks::Webhook;

use crate::helpers::{
    SECRET, TestApp, change, deliveries, eventually, failed_then_requeued, now_ms,
    spawn_app_with_config,
};

/// Two signing secrets: the endpoint signs with both (a rotation), newest first.
const NEW_SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
const OLD_SECRET: &str = "whsec_dGVzdC1zZWNyZXQtZm9yLXJpc2tob29rLW5vdGlmeQ==";

/// How many changes [`change`] knows: each one notification.
const CHANGES: usize = 3;

// --- A receiver --------------------------------------------------------------------------

/// What the receiver answers: a status and an optional `Retry-After`.
type Script = Box<dyn Fn(&Received) -> (u16, Option<String>) + Send + Sync>;

/// One request the receiver got.
#[derive(Debug, Clone)]
struct Received {
    at: Instant,
    id: String,
    timestamp: String,
    content_type: String,
    body: String,
    /// Whether each of [`NEW_SECRET`] and [`OLD_SECRET`] verifies it.
    verified_new: bool,
    verified_old: bool,
    user_id: String,
    version: i64,
    /// What the receiver answered.
    answered: u16,
}

struct Inner {
    received: Mutex<Vec<Received>>,
    script: Mutex<Script>,
}

/// An HTTP server on 127.0.0.1:0 that records and answers notifications.
struct Receiver {
    addr: std::net::SocketAddr,
    inner: Arc<Inner>,
    task: tokio::task::JoinHandle<()>,
}

impl Receiver {
    async fn start(script: Script) -> Self {
        let inner = Arc::new(Inner {
            received: Mutex::new(Vec::new()),
            script: Mutex::new(script),
        });
        let router = axum::Router::new()
            .route("/hook", axum::routing::post(receive))
            .with_state(inner.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let task = tokio::spawn(async move {
            axum::serve(listener, router).await.unwrap();
        });
        Self { addr, inner, task }
    }

    fn url(&self) -> String {
        format!("http://{}/hook", self.addr)
    }

    fn answer(&self, script: Script) {
        *self.inner.script.lock().unwrap() = script;
    }

    fn received(&self) -> Vec<Received> {
        self.inner.received.lock().unwrap().clone()
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn receive(State(inner): State<Arc<Inner>>, headers: HeaderMap, body: Bytes) -> Response {
    let header = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned()
    };
    let json: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    let mut received = Received {
        at: Instant::now(),
        id: header("webhook-id"),
        timestamp: header("webhook-timestamp"),
        content_type: header("content-type"),
        body: String::from_utf8_lossy(&body).into_owned(),
        verified_new: Webhook::new(NEW_SECRET)
            .unwrap()
            .verify(&body, &headers)
            .is_ok(),
        verified_old: Webhook::new(OLD_SECRET)
            .unwrap()
            .verify(&body, &headers)
            .is_ok(),
        user_id: json["data"]["user_id"]
            .as_str()
            .unwrap_or_default()
            .to_owned(),
        version: json["data"]["version"].as_i64().unwrap_or(-1),
        answered: 0,
    };
    let (status, retry_after) = (inner.script.lock().unwrap())(&received);
    received.answered = status;
    inner.received.lock().unwrap().push(received);
    let mut response = StatusCode::from_u16(status).unwrap().into_response();
    if let Some(value) = retry_after {
        response
            .headers_mut()
            .insert("retry-after", value.parse().unwrap());
    }
    response
}

fn always(status: u16) -> Script {
    Box::new(move |_| (status, None))
}

// --- The service -------------------------------------------------------------------------

/// A service whose `[notify]` section is `notify` (endpoints included), on `dir`'s database.
async fn spawn_notifying(dir: &tempfile::TempDir, notify: &str) -> TestApp {
    let path = dir.path().join("riskhook.toml");
    std::fs::write(&path, notify).unwrap();
    let db = format!("sqlite://{}", dir.path().join("riskhook.db").display());
    let config = Config::load_with_env(
        Some(&path),
        [
            ("RISKHOOK_DIDIT_SECRET", SECRET),
            ("RISKHOOK_LISTEN", "127.0.0.1:0"),
            ("RISKHOOK_DATABASE_URL", db.as_str()),
        ]
        .map(|(k, v)| (k.to_owned(), v.to_owned())),
    )
    .unwrap();
    spawn_app_with_config(config).await
}

/// A `[notify]` section with fast retries and the given endpoints (`(id, url)`).
fn notify_toml(max_attempts: u32, backoff_max: &str, endpoints: &[(&str, &str)]) -> String {
    let mut toml = format!(
        "[notify]\nmax_attempts = {max_attempts}\nbackoff_initial = \"20ms\"\nbackoff_max = \"{backoff_max}\"\nlease = \"20s\"\npoll_interval = \"50ms\"\ntimeout = \"5s\"\nconcurrency = 4\n"
    );
    for (id, url) in endpoints {
        toml.push_str(&format!(
            "\n[[notify.webhooks]]\nid = \"{id}\"\nurl = \"{url}\"\nsecret = \"{NEW_SECRET} {OLD_SECRET}\"\n"
        ));
    }
    toml
}

fn assert_signed(received: &[Received]) {
    for r in received {
        assert!(r.verified_new && r.verified_old, "bad signature: {r:?}");
        assert_eq!(r.content_type, "application/json");
        assert!(r.id.starts_with("msg_"), "{r:?}");
        assert!(r.timestamp.parse::<i64>().is_ok(), "{r:?}");
    }
}

// --- The tests ---------------------------------------------------------------------------

#[tokio::test]
async fn notifications_are_signed_and_keep_their_webhook_id_across_retries() {
    let receiver = Receiver::start(Box::new(|_| (200, None))).await;
    let fails_first_two = {
        let inner = receiver.inner.clone();
        Box::new(move |_: &Received| {
            let seen = inner.received.lock().unwrap().len();
            (if seen < 2 { 500 } else { 200 }, None)
        })
    };
    receiver.answer(fails_first_two);
    let dir = tempfile::tempdir().unwrap();
    let app = spawn_notifying(
        &dir,
        &notify_toml(5, "100ms", &[("signed", &receiver.url())]),
    )
    .await;

    change(&app, "u-signed", 0).await;
    eventually("the delivery is delivered", || async {
        deliveries(&app.store, "signed")
            .await
            .first()
            .is_some_and(|d| d.status == DeliveryStatus::Delivered)
    })
    .await;

    let delivery = deliveries(&app.store, "signed").await.remove(0);
    assert_eq!(delivery.attempts, 3, "{delivery:?}");
    assert_eq!(delivery.last_status, Some(200));
    let received = receiver.received();
    assert_eq!(
        received.iter().map(|r| r.answered).collect::<Vec<_>>(),
        [500, 500, 200]
    );
    assert_signed(&received);
    for r in &received {
        assert_eq!(r.id, delivery.message_id, "webhook-id is the message id");
        assert_eq!(r.body, delivery.payload, "the body is sent as stored");
        assert_eq!((r.user_id.as_str(), r.version), ("u-signed", 1));
    }
    let body: Value = serde_json::from_str(&received[0].body).unwrap();
    assert_eq!(body["type"], "user.updated");
    assert_eq!(body["data"]["decision"], "approve", "{body}");
    app.stop().await;
}

#[tokio::test]
async fn an_endpoint_down_then_up_receives_every_notification_in_order_per_user() {
    let receiver = Receiver::start(always(503)).await;
    let dir = tempfile::tempdir().unwrap();
    // `refused`: nothing listens on port 1, so every connection is refused.
    let toml = notify_toml(
        1000,
        "100ms",
        &[
            ("down-up", &receiver.url()),
            ("refused", "http://127.0.0.1:1/hook?token=hidden-token"),
        ],
    );
    let app = spawn_notifying(&dir, &toml).await;
    let users = ["u-1", "u-2", "u-3"];
    for n in 0..CHANGES {
        for user in users {
            change(&app, user, n).await;
        }
    }
    eventually(
        "every user's first notification is retried while down",
        || async {
            let received = receiver.received();
            users
                .iter()
                .all(|u| received.iter().filter(|r| r.user_id == *u).count() >= 2)
        },
    )
    .await;
    let while_down = receiver.received();
    assert!(
        while_down
            .iter()
            .all(|r| r.answered == 503 && r.version == 1)
    );

    receiver.answer(always(200));
    eventually("every notification is delivered once up", || async {
        let all = deliveries(&app.store, "down-up").await;
        all.len() == 9 && all.iter().all(|d| d.status == DeliveryStatus::Delivered)
    })
    .await;

    let received = receiver.received();
    assert_signed(&received);
    let stored = deliveries(&app.store, "down-up").await;
    let mut delivered: BTreeMap<&str, Vec<i64>> = BTreeMap::new();
    for user in users {
        // Everything sent about a user, failures included, is in version order: a later
        // change is never sent before an earlier one is delivered.
        let versions: Vec<i64> = received
            .iter()
            .filter(|r| r.user_id == user)
            .map(|r| r.version)
            .collect();
        assert!(versions.is_sorted(), "{user}: {versions:?}");
        delivered.insert(
            user,
            received
                .iter()
                .filter(|r| r.user_id == user && r.answered == 200)
                .map(|r| r.version)
                .collect(),
        );
    }
    for user in users {
        assert_eq!(delivered[user], [1, 2, 3], "{user}");
    }
    // None lost: every stored message arrived, with its stored body.
    for d in &stored {
        assert!(
            received
                .iter()
                .any(|r| r.id == d.message_id && r.answered == 200 && r.body == d.payload),
            "{d:?} never arrived"
        );
    }

    // The endpoint that refuses connections holds its messages, in order, without stalling
    // the other; its errors name the failure, not the URL or its token.
    let refused = deliveries(&app.store, "refused").await;
    assert_eq!(refused.len(), 9);
    assert!(refused.iter().all(|d| d.status == DeliveryStatus::Pending));
    for d in refused.iter().filter(|d| d.attempts > 0) {
        let error = d.last_error.as_deref().unwrap_or_default();
        assert!(error.contains("connect"), "{error}");
        assert!(
            !error.contains("hidden-token") && !error.contains("127.0.0.1"),
            "{error}"
        );
        assert_eq!(d.last_status, None);
    }
    let text = app.metrics().await;
    assert!(
        text.contains("riskhook_notifications_total{endpoint=\"down-up\",outcome=\"delivered\"} 9"),
        "{text}"
    );
    assert!(text.contains("riskhook_outbox_backlog"), "{text}");
    assert!(
        text.contains("riskhook_notification_attempt_duration_seconds_bucket{endpoint=\"down-up\""),
        "{text}"
    );
    app.stop().await;
}

#[tokio::test]
async fn retry_after_in_seconds_or_as_a_date_defers_the_next_attempt() {
    // u-seconds is told `Retry-After: 2`, u-date an HTTP date 3 s ahead (whole seconds, so at
    // least 2 s); both only once.
    let receiver = Receiver::start(always(200)).await;
    let inner = receiver.inner.clone();
    receiver.answer(Box::new(move |r: &Received| {
        let first = !inner
            .received
            .lock()
            .unwrap()
            .iter()
            .any(|seen| seen.user_id == r.user_id);
        match (first, r.user_id.as_str()) {
            (true, "u-seconds") => (503, Some("2".to_owned())),
            (true, _) => (
                429,
                Some(httpdate::fmt_http_date(
                    SystemTime::now() + Duration::from_secs(3),
                )),
            ),
            (false, _) => (200, None),
        }
    }));
    let dir = tempfile::tempdir().unwrap();
    let app = spawn_notifying(&dir, &notify_toml(5, "10s", &[("later", &receiver.url())])).await;
    change(&app, "u-seconds", 0).await;
    change(&app, "u-date", 0).await;
    eventually("both are delivered", || async {
        let all = deliveries(&app.store, "later").await;
        all.len() == 2 && all.iter().all(|d| d.status == DeliveryStatus::Delivered)
    })
    .await;
    let received = receiver.received();
    assert_signed(&received);
    for user in ["u-seconds", "u-date"] {
        let times: Vec<Instant> = received
            .iter()
            .filter(|r| r.user_id == user)
            .map(|r| r.at)
            .collect();
        assert_eq!(times.len(), 2, "{user}: {received:?}");
        let gap = times[1] - times[0];
        // The backoff alone would be at most 20 ms.
        assert!(
            gap >= Duration::from_millis(1900),
            "{user}: retried after {gap:?}"
        );
    }
    app.stop().await;
}

#[tokio::test]
async fn a_410_disables_the_endpoint_and_its_notifications_wait_until_it_is_enabled() {
    let gone = Receiver::start(always(410)).await;
    let healthy = Receiver::start(always(200)).await;
    let dir = tempfile::tempdir().unwrap();
    let toml = notify_toml(
        5,
        "100ms",
        &[("gone", &gone.url()), ("healthy", &healthy.url())],
    );
    let app = spawn_notifying(&dir, &toml).await;

    change(&app, "u-gone", 0).await;
    eventually("the endpoint is disabled", || async {
        app.store
            .endpoints()
            .await
            .unwrap()
            .iter()
            .any(|e| e.id == "gone" && e.disabled_at.is_some())
    })
    .await;
    change(&app, "u-gone", 1).await;
    change(&app, "u-other", 0).await;
    eventually("the healthy endpoint gets all three", || async {
        let all = deliveries(&app.store, "healthy").await;
        all.len() == 3 && all.iter().all(|d| d.status == DeliveryStatus::Delivered)
    })
    .await;
    // Meanwhile the disabled endpoint was sent nothing more, and its messages are visible as
    // pending.
    assert_eq!(gone.received().len(), 1);
    let waiting = deliveries(&app.store, "gone").await;
    assert_eq!(waiting.len(), 3);
    assert!(waiting.iter().all(|d| d.status == DeliveryStatus::Pending));
    assert_eq!(waiting[0].last_status, Some(410));

    gone.answer(always(200));
    app.store
        .enable_endpoint("gone", "test", now_ms())
        .await
        .unwrap();
    eventually("the enabled endpoint gets what waited", || async {
        let all = deliveries(&app.store, "gone").await;
        all.iter().all(|d| d.status == DeliveryStatus::Delivered)
    })
    .await;
    let received = gone.received();
    assert_signed(&received);
    let after: Vec<(String, i64)> = received[1..]
        .iter()
        .map(|r| (r.user_id.clone(), r.version))
        .collect();
    assert_eq!(after.len(), 3, "{after:?}");
    let u_gone: Vec<i64> = after
        .iter()
        .filter(|(u, _)| u == "u-gone")
        .map(|(_, v)| *v)
        .collect();
    assert_eq!(u_gone, [1, 2], "in order");
    app.stop().await;
}

#[tokio::test]
async fn an_exhausted_delivery_fails_and_arrives_after_a_manual_retry() {
    let receiver = Receiver::start(always(500)).await;
    let dir = tempfile::tempdir().unwrap();
    let app = spawn_notifying(&dir, &notify_toml(3, "50ms", &[("flaky", &receiver.url())])).await;
    change(&app, "u-failed", 0).await;
    eventually("the delivery fails", || async {
        deliveries(&app.store, "flaky")
            .await
            .first()
            .is_some_and(|d| d.status == DeliveryStatus::Failed)
    })
    .await;
    let failed = deliveries(&app.store, "flaky").await.remove(0);
    assert_eq!(failed.attempts, 3);
    assert_eq!(failed.last_status, Some(500));
    assert_eq!(failed.last_error.as_deref(), Some("HTTP 500"));
    assert_eq!(receiver.received().len(), 3);

    receiver.answer(always(200));
    let retried = app
        .store
        .retry_delivery(&failed.id, "test", now_ms())
        .await
        .unwrap();
    assert_eq!(retried.status, DeliveryStatus::Pending);
    eventually("the retried delivery arrives", || async {
        app.store
            .delivery(&failed.id)
            .await
            .unwrap()
            .is_some_and(|d| d.status == DeliveryStatus::Delivered)
    })
    .await;
    let received = receiver.received();
    assert_eq!(received.len(), 4);
    assert_signed(&received);
    assert!(received.iter().all(|r| r.id == failed.message_id));
    assert_eq!(received[3].answered, 200);
    app.stop().await;
}

#[tokio::test]
async fn a_delivery_left_by_a_dead_dispatcher_is_sent_after_its_lease_ends() {
    let receiver = Receiver::start(always(500)).await;
    let dir = tempfile::tempdir().unwrap();
    let toml = notify_toml(1, "50ms", &[("lease", &receiver.url())]);

    // A first run fails the delivery once and stops; while nothing runs, a retry is asked for.
    let app = spawn_notifying(&dir, &toml).await;
    let (store, id) = failed_then_requeued(app, "lease", "u-lease").await;

    // A dispatcher that then dies claims it.
    let lease = Duration::from_secs(2);
    let claimed_at = Instant::now();
    let claimed = store
        .claim_deliveries(&Claim {
            owner: "dead-dispatcher".to_owned(),
            now: now_ms(),
            lease: i64::try_from(lease.as_millis()).unwrap(),
            limit: 10,
        })
        .await
        .unwrap();
    assert_eq!(claimed.len(), 1);
    store.close().await;
    drop(store);

    // The next start sends it, but only once the dead owner's lease is over.
    receiver.answer(always(200));
    let app = spawn_notifying(&dir, &toml).await;
    eventually("the abandoned delivery is delivered", || async {
        app.store
            .delivery(&id)
            .await
            .unwrap()
            .is_some_and(|d| d.status == DeliveryStatus::Delivered)
    })
    .await;
    let received = receiver.received();
    assert_eq!(received.len(), 2, "{received:?}");
    assert_signed(&received);
    assert_eq!(
        received[0].id, received[1].id,
        "same webhook-id after a restart"
    );
    // (Less a little: the lease runs on the system clock, `at` on the monotonic one.)
    assert!(
        received[1].at + Duration::from_millis(50) >= claimed_at + lease,
        "sent while another dispatcher held the lease"
    );
    app.stop().await;
}

#[tokio::test]
async fn a_change_is_sent_at_once_without_waiting_for_the_next_poll() {
    let receiver = Receiver::start(always(204)).await;
    let dir = tempfile::tempdir().unwrap();
    // A poll an hour away: only the wake after the accepted event can send it in time.
    let toml = notify_toml(3, "100ms", &[("prompt", &receiver.url())])
        .replace("poll_interval = \"50ms\"", "poll_interval = \"1h\"");
    let app = spawn_notifying(&dir, &toml).await;
    // Let the dispatcher's first look (at start) pass, so the next one needs a wake.
    tokio::time::sleep(Duration::from_millis(200)).await;
    change(&app, "u-prompt", 0).await;
    eventually("the notification arrives", || async {
        receiver.received().len() == 1
    })
    .await;
    app.stop().await;
}
