//! `spawn_app()` and friends: a running service, a client, and signing as Didit does; the
//! `riskhook` binary as a process ([`Served`]); making users change and waiting for their
//! notifications. Shared by both test binaries: `it`, and `services` (through `#[path]`).

use std::future::Future;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use riskhook::app::App;
use riskhook::config::{Config, DatabaseUrl};
use riskhook::delivery;
use riskhook_core::review::ActionKind;
use riskhook_didit::signature::{Key, Secret, SignedHeaders};
use riskhook_store::{DeliveryFilter, DeliveryRecord, DeliveryStatus, Store, UserAction};
use serde_json::Value;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

pub(crate) const SECRET: &str = "tno2NTeRC1ZK3sBOYlBJDyEzBVENl3pQ1AcZyAW0xnQ";

pub(crate) fn key() -> Key {
    Key::new("test", &Secret::new(SECRET)).unwrap()
}

pub(crate) fn now() -> i64 {
    i64::try_from(
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_secs(),
    )
    .unwrap()
}

pub(crate) fn fixtures_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fixtures/didit")
}

/// Every fixture file, by name.
pub(crate) fn fixture_names() -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(fixtures_dir())
        .unwrap()
        .filter_map(|e| {
            let name = e.unwrap().file_name().into_string().unwrap();
            name.ends_with(".json").then_some(name)
        })
        .collect();
    names.sort();
    names
}

pub(crate) fn fixture(name: &str) -> Vec<u8> {
    std::fs::read(fixtures_dir().join(name)).unwrap()
}

/// A running service.
pub(crate) struct TestApp {
    pub(crate) addr: std::net::SocketAddr,
    pub(crate) client: reqwest::Client,
    pub(crate) store: Arc<dyn Store>,
    pub(crate) db_url: String,
    shutdown: Option<oneshot::Sender<()>>,
    handle: Option<JoinHandle<anyhow::Result<()>>>,
    _dir: Option<Arc<tempfile::TempDir>>,
}

/// Configuration for a test: port 0, the given database, extra environment.
pub(crate) fn test_config(db_url: &str, extra: &[(&str, &str)]) -> Config {
    let mut env = vec![
        ("RISKHOOK_DIDIT_SECRET".to_owned(), SECRET.to_owned()),
        ("RISKHOOK_LISTEN".to_owned(), "127.0.0.1:0".to_owned()),
        ("RISKHOOK_DATABASE_URL".to_owned(), db_url.to_owned()),
    ];
    env.extend(
        extra
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned())),
    );
    Config::load_with_env(None, env).unwrap()
}

/// A fresh service on a fresh SQLite file.
pub(crate) async fn spawn_app() -> TestApp {
    spawn_app_with(&[]).await
}

pub(crate) async fn spawn_app_with(extra: &[(&str, &str)]) -> TestApp {
    let dir = Arc::new(tempfile::tempdir().unwrap());
    let url = format!("sqlite://{}", dir.path().join("riskhook.db").display());
    let mut app = spawn_app_on(&url, extra).await;
    app._dir = Some(dir);
    app
}

/// API keys configured by [`spawn_app_with_keys`], one per role.
pub(crate) const READ_KEY: &str = "rk_test_read_0123456789";
pub(crate) const REVIEW_KEY: &str = "rk_test_review_0123456789";
pub(crate) const ADMIN_KEY: &str = "rk_test_admin_0123456789";

/// A fresh service with one API key per role and, optionally, a policy file.
pub(crate) async fn spawn_app_with_keys(policy: Option<&Path>) -> TestApp {
    let dir = Arc::new(tempfile::tempdir().unwrap());
    let policy = policy.map_or_else(String::new, |policy| {
        format!("[policy]\npath = {:?}\n", policy.display().to_string())
    });
    let mut app = spawn_app_with_config(keys_config(dir.path(), &policy)).await;
    app._dir = Some(dir);
    app
}

/// A service on an existing database URL (for restart tests).
pub(crate) async fn spawn_app_on(db_url: &str, extra: &[(&str, &str)]) -> TestApp {
    spawn_app_with_config(test_config(db_url, extra)).await
}

/// A service with a configuration built by the test.
pub(crate) async fn spawn_app_with_config(config: Config) -> TestApp {
    let db_url = config.database_url.expose().to_owned();
    let app = App::build(config).await.unwrap();
    let addr = app.local_addr().unwrap();
    let store = app.store();
    let (tx, rx) = oneshot::channel::<()>();
    let handle = tokio::spawn(app.run(async {
        let _ = rx.await;
    }));
    TestApp {
        addr,
        client: reqwest::Client::new(),
        store,
        db_url,
        shutdown: Some(tx),
        handle: Some(handle),
        _dir: None,
    }
}

/// A response, read whole.
#[derive(Debug)]
pub(crate) struct Reply {
    pub(crate) status: u16,
    pub(crate) content_type: Option<String>,
    pub(crate) json: serde_json::Value,
}

impl Reply {
    async fn read(response: reqwest::Response) -> Self {
        let status = response.status().as_u16();
        let content_type = response
            .headers()
            .get("content-type")
            .map(|v| v.to_str().unwrap().to_owned());
        let text = response.text().await.unwrap();
        Reply {
            status,
            content_type,
            json: serde_json::from_str(&text).unwrap_or(serde_json::Value::Null),
        }
    }
}

impl TestApp {
    pub(crate) fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// `GET /metrics`, as text.
    pub(crate) async fn metrics(&self) -> String {
        self.client
            .get(self.url("/metrics"))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap()
    }

    pub(crate) fn webhook_url(&self) -> String {
        self.url("/webhooks/didit")
    }

    /// Sends `body` stamped with now and signed as Didit would.
    pub(crate) async fn deliver(&self, body: &[u8]) -> Reply {
        let t = now();
        let body = delivery::restamp(body, t);
        self.post_signed(&body, t).await
    }

    /// Sends `body` as is, signed at `timestamp`.
    pub(crate) async fn post_signed(&self, body: &[u8], timestamp: i64) -> Reply {
        let outcome = delivery::send(
            &self.client,
            &self.webhook_url(),
            &key(),
            body.to_vec(),
            timestamp,
        )
        .await
        .unwrap();
        Reply {
            status: outcome.status,
            content_type: outcome.content_type,
            json: serde_json::from_str(&outcome.body).unwrap_or(serde_json::Value::Null),
        }
    }

    /// Sends `body` with exactly the given headers.
    pub(crate) async fn post_with_headers(
        &self,
        body: Vec<u8>,
        headers: &[(&str, String)],
    ) -> Reply {
        let mut request = self.client.post(self.webhook_url()).body(body);
        for (name, value) in headers {
            request = request.header(*name, value);
        }
        Reply::read(request.send().await.unwrap()).await
    }

    /// A request to the API with an optional bearer key.
    pub(crate) async fn api(
        &self,
        method: reqwest::Method,
        path: &str,
        key: Option<&str>,
    ) -> Reply {
        let mut request = self.client.request(method, self.url(path));
        if let Some(key) = key {
            request = request.bearer_auth(key);
        }
        Reply::read(request.send().await.unwrap()).await
    }

    pub(crate) async fn get(&self, path: &str) -> Reply {
        Reply::read(self.client.get(self.url(path)).send().await.unwrap()).await
    }

    /// Takes the temporary directory out of the app so the database outlives it.
    pub(crate) fn detach_dir(mut self) -> (Option<Arc<tempfile::TempDir>>, Self) {
        (self._dir.take(), self)
    }

    /// Graceful stop: waits for the server task to finish.
    pub(crate) async fn stop(mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(handle) = self.handle.take() {
            handle.await.unwrap().unwrap();
        }
    }
}

/// Headers for `body` at `timestamp`, with the named headers left out.
pub(crate) fn signed_headers(
    body: &[u8],
    timestamp: i64,
    leave_out: &[&str],
) -> Vec<(&'static str, String)> {
    SignedHeaders::sign(&key(), body, timestamp)
        .pairs()
        .into_iter()
        .filter(|(name, _)| !leave_out.contains(name))
        .map(|(name, value)| (name, value.to_owned()))
        .collect()
}

// --- The review and admin API (review_api.rs, roles.rs, openapi.rs) ------------------------

/// A configuration with one API key per role (as [`spawn_app_with_keys`]) plus `extra_toml`,
/// written to `dir`.
pub(crate) fn keys_config(dir: &Path, extra_toml: &str) -> Config {
    let db = format!("sqlite://{}", dir.join("riskhook.db").display());
    keys_config_on(dir, &db, extra_toml)
}

/// [`keys_config`] on the database `db`.
pub(crate) fn keys_config_on(dir: &Path, db: &str, extra_toml: &str) -> Config {
    let mut toml = String::new();
    for (id, role, key) in [
        ("reader", "read", READ_KEY),
        ("reviewer", "review", REVIEW_KEY),
        ("admin", "admin", ADMIN_KEY),
    ] {
        toml.push_str(&format!(
            "[[api_keys]]\nid = \"{id}\"\nrole = \"{role}\"\nhash = \"{}\"\n\n",
            riskhook::auth::api_key_hash(key)
        ));
    }
    toml.push_str(extra_toml);
    let config_path = dir.join("riskhook.toml");
    std::fs::write(&config_path, toml).unwrap();
    Config::load_with_env(
        Some(&config_path),
        [
            ("RISKHOOK_DIDIT_SECRET", SECRET),
            ("RISKHOOK_LISTEN", "127.0.0.1:0"),
            ("RISKHOOK_DATABASE_URL", db),
        ]
        .map(|(k, v)| (k.to_owned(), v.to_owned())),
    )
    .unwrap()
}

/// A fresh service with one API key per role and four eyes on.
pub(crate) async fn spawn_app_with_four_eyes() -> TestApp {
    let dir = Arc::new(tempfile::tempdir().unwrap());
    let config = keys_config(dir.path(), "[review]\nfour_eyes = true\n");
    let mut app = spawn_app_with_config(config).await;
    app._dir = Some(dir);
    app
}

/// The whole application router over a fresh SQLite file, with one key per role, for
/// `tower::ServiceExt::oneshot` requests (no server). Keep the directory alive while using it.
pub(crate) async fn app_router() -> (axum::Router, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let config = keys_config(dir.path(), "");
    let store = riskhook::store::open(&config.database_url).await.unwrap();
    let policy = riskhook::policy::PolicyHandle::load(config.policy_path.as_deref()).unwrap();
    let state = riskhook::state::AppState {
        store,
        config: Arc::new(config),
        policy: Arc::new(policy),
        clock: riskhook_didit::axum::system_clock(),
        outbox: Arc::default(),
    };
    (riskhook::routes::router(state), dir)
}

/// A request through a router, read whole: (status, content type, JSON body or null).
pub(crate) async fn oneshot(
    router: &axum::Router,
    method: &str,
    path: &str,
    key: Option<&str>,
) -> (u16, Option<String>, serde_json::Value) {
    use tower::ServiceExt;
    let mut request = axum::http::Request::builder().method(method).uri(path);
    if let Some(key) = key {
        request = request.header("authorization", format!("Bearer {key}"));
    }
    let response = router
        .clone()
        .oneshot(request.body(axum::body::Body::empty()).unwrap())
        .await
        .unwrap();
    let status = response.status().as_u16();
    let content_type = response
        .headers()
        .get("content-type")
        .map(|v| v.to_str().unwrap().to_owned());
    let body = axum::body::to_bytes(response.into_body(), usize::MAX)
        .await
        .unwrap();
    let json = serde_json::from_slice(&body).unwrap_or(serde_json::Value::Null);
    (status, content_type, json)
}

impl TestApp {
    /// A request to the API with a JSON body.
    pub(crate) async fn api_json(
        &self,
        method: reqwest::Method,
        path: &str,
        key: Option<&str>,
        body: &serde_json::Value,
    ) -> Reply {
        let mut request = self
            .client
            .request(method, self.url(path))
            .header("content-type", "application/json")
            .body(serde_json::to_vec(body).unwrap());
        if let Some(key) = key {
            request = request.bearer_auth(key);
        }
        Reply::read(request.send().await.unwrap()).await
    }

    /// Delivers `fixture` rewritten as session `session_id` of `user`, signed at `t`; asserts
    /// it was accepted and returns its decision.
    pub(crate) async fn deliver_as(
        &self,
        fixture_name: &str,
        session_id: &str,
        user: &str,
        t: i64,
    ) -> String {
        let mut v: serde_json::Value = serde_json::from_slice(&fixture(fixture_name)).unwrap();
        v["session_id"] = serde_json::Value::from(session_id);
        v["vendor_data"] = serde_json::Value::from(user);
        v["event_id"] = serde_json::Value::from(uuid::Uuid::new_v4().to_string());
        v["timestamp"] = serde_json::Value::from(t);
        if let Some(decision) = v.get_mut("decision").and_then(|d| d.as_object_mut()) {
            decision.insert("session_id".to_owned(), serde_json::Value::from(session_id));
            decision.insert("vendor_data".to_owned(), serde_json::Value::from(user));
        }
        let reply = self.post_signed(&serde_json::to_vec(&v).unwrap(), t).await;
        assert_eq!(reply.status, 200, "{reply:?}");
        reply.json["assessment"]["decision"]
            .as_str()
            .unwrap_or_default()
            .to_owned()
    }
}

/// The default policy with the sanctions rule lowered to 40 points and a review, and the freeze
/// line moved from 70 to 80: a known candidate for backtests and shadows.
pub(crate) fn lenient_candidate() -> String {
    let text = riskhook_core::policy::DEFAULT_POLICY
        .replacen(
            "points = 100\ndecision = \"freeze\"\nreason = \"A sanctions",
            "points = 40\ndecision = \"review\"\nreason = \"A sanctions",
            1,
        )
        .replacen("freeze = 70", "freeze = 80", 1);
    assert_ne!(text, riskhook_core::policy::DEFAULT_POLICY);
    text
}

/// A policy with two broken rules (a syntax error, an unknown signal), each to be named with
/// its line.
pub(crate) const BROKEN_POLICY: &str = r#"name = "broken"

[thresholds]
review = 30
freeze = 70

[[rules]]
id = "first.bad"
when = "aml.sanctions_hits >"
points = 10
reason = "syntax error"

[[rules]]
id = "second.bad"
when = "no_such.signal == 1"
points = 10
reason = "unknown signal"
"#;

// --- The `riskhook` binary as a process ---------------------------------------------------

/// The `riskhook` binary with an empty environment (but `PATH`).
pub(crate) fn riskhook() -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_riskhook"));
    command
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default());
    command
}

/// A `riskhook serve` process on port 0 logging JSON, with its stderr lines and address.
pub(crate) struct Served {
    pub(crate) child: std::process::Child,
    pub(crate) lines: std::sync::mpsc::Receiver<String>,
    pub(crate) log: Vec<String>,
    pub(crate) address: String,
}

impl Drop for Served {
    // A failed test must not leave a server running (it would also hold the test's output
    // pipe open).
    fn drop(&mut self) {
        if matches!(self.child.try_wait(), Ok(None)) {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

impl Served {
    pub(crate) fn start(dir: &std::path::Path, env: &[(&str, &str)]) -> Self {
        let mut command = riskhook();
        command
            .arg("serve")
            .env("RISKHOOK_DIDIT_SECRET", SECRET)
            .env("RISKHOOK_LISTEN", "127.0.0.1:0")
            .env("RISKHOOK_LOG_FORMAT", "json")
            .env(
                "RISKHOOK_DATABASE_URL",
                format!("sqlite://{}", dir.join("p.db").display()),
            )
            .stderr(Stdio::piped());
        for (k, v) in env {
            command.env(k, v);
        }
        let mut child = command.spawn().unwrap();
        let stderr = child.stderr.take().unwrap();
        let (lines_tx, lines) = std::sync::mpsc::channel::<String>();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                if lines_tx.send(line).is_err() {
                    break;
                }
            }
        });
        let mut served = Served {
            child,
            lines,
            log: Vec::new(),
            address: String::new(),
        };
        let line = served.wait_for("riskhook listening");
        let v: serde_json::Value = serde_json::from_str(&line).unwrap();
        served.address = v["address"].as_str().unwrap().to_owned();
        served
    }

    /// Waits for a log line whose message is `message`.
    pub(crate) fn wait_for(&mut self, message: &str) -> String {
        loop {
            let line = self
                .lines
                .recv_timeout(Duration::from_secs(30))
                .unwrap_or_else(|_| panic!("no `{message}` in: {:#?}", self.log));
            self.log.push(line.clone());
            let v: serde_json::Value = serde_json::from_str(&line).unwrap_or_default();
            if v["message"] == message {
                return line;
            }
        }
    }

    pub(crate) fn signal(&self, name: &str) {
        let status = Command::new("kill")
            .args([&format!("-{name}"), &self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(status.success());
    }
}

// --- Notifications: changes to users, and waiting for their deliveries -------------------

/// How long any expected state may take to appear on a loaded machine.
pub(crate) const PATIENCE: Duration = Duration::from_secs(60);

/// `fixture` as a new session of `user`, stamped now, with a unique event id.
fn event_for(fixture_name: &str, user: &str) -> (Vec<u8>, i64) {
    static NEXT: AtomicU64 = AtomicU64::new(1);
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    let t = now();
    let session = format!("sess-{user}-{n}");
    let mut v: Value = serde_json::from_slice(&fixture(fixture_name)).unwrap();
    v["session_id"] = Value::from(session.as_str());
    v["vendor_data"] = Value::from(user);
    v["event_id"] = Value::from(format!("00000000-0000-4000-8000-{n:012}"));
    v["timestamp"] = Value::from(t);
    if let Some(decision) = v.get_mut("decision").and_then(Value::as_object_mut) {
        decision.insert("session_id".to_owned(), Value::from(session));
        decision.insert("vendor_data".to_owned(), Value::from(user));
    }
    (serde_json::to_vec(&v).unwrap(), t)
}

/// Makes the `n`-th change of `user`: an approved verification (a new, active user), then a
/// manual freeze, then a manual unfreeze. Each one notification, `version` n + 1.
pub(crate) async fn change(app: &TestApp, user: &str, n: usize) {
    if n == 0 {
        let (body, t) = event_for("status-updated-approved-full.json", user);
        let reply = app.post_signed(&body, t).await;
        assert_eq!(reply.status, 200, "{reply:?}");
        return;
    }
    let kind = if n == 1 {
        ActionKind::Freeze
    } else {
        ActionKind::Unfreeze
    };
    let outcome = app
        .store
        .act_on_user(UserAction {
            user_id: user.to_owned(),
            kind,
            actor: "test".to_owned(),
            person: riskhook_store::Person::on_their_own("test"),
            reason: "notification test".to_owned(),
            now: now(),
            four_eyes: false,
        })
        .await
        .unwrap();
    assert_eq!(outcome.user.version, i64::try_from(n + 1).unwrap());
}

pub(crate) async fn deliveries(store: &Arc<dyn Store>, endpoint: &str) -> Vec<DeliveryRecord> {
    let mut all = store
        .deliveries(&DeliveryFilter {
            endpoint_id: Some(endpoint.to_owned()),
            limit: 1000,
            ..DeliveryFilter::default()
        })
        .await
        .unwrap();
    all.reverse();
    all
}

/// Polls `check` until it holds, failing after [`PATIENCE`].
pub(crate) async fn eventually<F, Fut>(what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let deadline = Instant::now() + PATIENCE;
    while !check().await {
        assert!(Instant::now() < deadline, "timed out waiting: {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Makes `user`'s first change on `app`, whose only attempt at `endpoint` fails; stops `app`;
/// and, through a store of its own, puts the failed delivery back in the queue. Returns that
/// store and the delivery's id: what a dispatcher that claims it next (and dies) starts from.
pub(crate) async fn failed_then_requeued(
    app: TestApp,
    endpoint: &str,
    user: &str,
) -> (Arc<dyn Store>, String) {
    change(&app, user, 0).await;
    eventually("the first attempt fails", || async {
        deliveries(&app.store, endpoint)
            .await
            .first()
            .is_some_and(|d| d.status == DeliveryStatus::Failed)
    })
    .await;
    let db_url = app.db_url.clone();
    app.stop().await;
    let store = riskhook::store::open(&DatabaseUrl::new(db_url))
        .await
        .unwrap();
    let id = deliveries(&store, endpoint).await.remove(0).id;
    store.retry_delivery(&id, "test", now_ms()).await.unwrap();
    (store, id)
}

pub(crate) fn now_ms() -> i64 {
    i64::try_from(
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_millis(),
    )
    .unwrap()
}

// --- Text a backend cannot store (ingest.rs, and services' postgres_text.rs) ---------------

/// Sends every place a person or Didit can put a control character into what the service
/// stores (the identifiers of a delivery, a URL's path and query, a reason, a key's name) with
/// one, and a delivery's identifiers too long, and checks each gets the same 4xx on whichever
/// backend `app` runs (PostgreSQL cannot store U+0000 nor index an entry over 2,704 bytes: there
/// both used to be a 503 that Didit would retry forever) and that none changed anything. `app`
/// has the keys of [`keys_config`] and an empty database.
pub(crate) async fn control_characters_are_refused_alike(app: &TestApp) {
    let user = "user-42";
    let clean = fixture("status-updated-approved.json");
    let approved: Value = serde_json::from_slice(&clean).unwrap();
    assert_eq!(approved["vendor_data"], user);
    let t = now();
    // Random hex, so that PostgreSQL cannot compress it under its index entry limit.
    let long: String = (0..300)
        .map(|_| uuid::Uuid::new_v4().simple().to_string())
        .collect();
    let too_long = "bytes long; identifiers are at most 256";
    for (field, value, says) in [
        (
            "vendor_data",
            "user-42\u{0}evil",
            "control character U+0000",
        ),
        ("session_id", "0d1e5b6a\u{0}", "control character U+0000"),
        (
            "webhook_type",
            "status.updated\u{0}",
            "control character U+0000",
        ),
        ("status", "Approved\u{0}", "control character U+0000"),
        ("event_id", "\u{0}", "control character U+0000"),
        (
            "vendor_data",
            "user-42\nINFO forged",
            "control character U+000A",
        ),
        ("vendor_data", &long, too_long),
        ("session_id", &long[..3000], too_long),
        ("event_id", &long[..257], too_long),
    ] {
        let mut body = approved.clone();
        body[field] = Value::from(value);
        body["timestamp"] = Value::from(t);
        let reply = app
            .post_signed(&serde_json::to_vec(&body).unwrap(), t)
            .await;
        let shown = &value[..value.len().min(40)];
        assert_eq!(reply.status, 422, "{field} {shown:?}: {reply:?}");
        assert_eq!(
            reply.json["code"], "not-a-didit-event",
            "{field}: {reply:?}"
        );
        let detail = reply.json["detail"].as_str().unwrap();
        assert!(detail.contains(says), "{detail}");
    }
    let reply = app.post_signed(&delivery::restamp(&clean, t), t).await;
    assert_eq!(reply.status, 200, "{reply:?}");

    for path in [
        format!("/v1/users/{user}%00"),
        "/v1/sessions/a%00b".to_owned(),
        "/v1/cases/a%00b".to_owned(),
        "/v1/actions/a%00b".to_owned(),
        "/v1/deliveries/a%00b".to_owned(),
        "/v1/cases?after=a%00b".to_owned(),
        "/v1/users/a%0Ab/assessments".to_owned(),
        "/ui/users/a%00b".to_owned(),
    ] {
        let reply = app.api(reqwest::Method::GET, &path, Some(ADMIN_KEY)).await;
        assert_eq!(reply.status, 400, "{path}: {reply:?}");
        assert_eq!(reply.json["code"], "malformed-url", "{path}: {reply:?}");
    }
    let reply = app
        .api_json(
            reqwest::Method::POST,
            &format!("/v1/users/{user}%00/freeze"),
            Some(ADMIN_KEY),
            &serde_json::json!({"reason": "fraud"}),
        )
        .await;
    assert_eq!(reply.status, 400, "{reply:?}");

    for (path, body) in [
        (
            format!("/v1/users/{user}/freeze"),
            serde_json::json!({"reason": "fraud\u{0}"}),
        ),
        (
            "/v1/keys".to_owned(),
            serde_json::json!({"name": "ci\u{0}", "role": "read"}),
        ),
        (
            "/v1/keys".to_owned(),
            serde_json::json!({"name": "ci", "principal": "bob\u{1b}[2J", "role": "read"}),
        ),
    ] {
        let reply = app
            .api_json(reqwest::Method::POST, &path, Some(ADMIN_KEY), &body)
            .await;
        assert_eq!(reply.status, 422, "{path} {body}: {reply:?}");
        let detail = reply.json["detail"].as_str().unwrap();
        assert!(detail.contains("control character U+00"), "{detail}");
    }

    assert_eq!(
        app.store.count_events().await.unwrap(),
        1,
        "only the clean delivery"
    );
    let reply = app
        .api(
            reqwest::Method::GET,
            &format!("/v1/users/{user}"),
            Some(ADMIN_KEY),
        )
        .await;
    assert_eq!(reply.status, 200, "{reply:?}");
    assert_eq!(
        reply.json["verdict"],
        Value::Null,
        "nobody acted: {reply:?}"
    );
    let reply = app
        .api(reqwest::Method::GET, "/v1/keys", Some(ADMIN_KEY))
        .await;
    assert_eq!(reply.status, 200, "{reply:?}");
    assert_eq!(
        reply.json["keys"].as_array().map(Vec::len),
        Some(0),
        "{reply:?}"
    );
}
