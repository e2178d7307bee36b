//! The NATS JetStream sink end to end, against the real NATS server at 127.0.0.1:4222 (with
//! JetStream; `RISKHOOK_TEST_NATS_URL` names another): the service publishes every user change,
//! a JetStream pull consumer reads them. Two tests start `nats-server`s of their own (an outage
//! that ends, authentication).
//!
//! Each test uses its own stream and subject prefix (a UUID in both) and deletes the stream
//! when it ends, even on failure. Without a reachable server the tests needing it are ignored
//! by the harness (`main.rs`), and so are those starting their own without a `nats-server`
//! binary, unless `RISKHOOK_REQUIRE_SERVICES=1` (CI), which makes that a failure. The outage
//! test needs no server at all: it points the service at a closed port.

use std::collections::{BTreeMap, HashMap};
use std::time::{Duration, Instant};

use async_nats::jetstream::{self, consumer};
use futures_util::StreamExt;
use riskhook::config::Config;
use riskhook::notify::NatsSink;
use riskhook::notify::nats::{decode_subject_token, encode_subject_token};
use riskhook_store::{Claim, DeliveryRecord, DeliveryStatus};
use serde_json::Value;

use crate::helpers::{change, deliveries, eventually, failed_then_requeued, now_ms};
use crate::helpers::{keys_config, spawn_app_with_config};

/// The shared test server: `RISKHOOK_TEST_NATS_URL`, by default the local one.
pub(crate) fn nats_url() -> String {
    std::env::var("RISKHOOK_TEST_NATS_URL").unwrap_or_else(|_| "nats://127.0.0.1:4222".to_owned())
}

/// Users whose ids need escaping in a subject, and one that does not.
const USERS: [&str; 2] = ["jane.doe@example.com", "user *>~ ü-2"];

/// A client of the test server, or `None` (with the reason on stderr) when the test should be
/// skipped. Panics instead when `RISKHOOK_REQUIRE_SERVICES=1`.
async fn nats_or_skip() -> Option<async_nats::Client> {
    let url = nats_url();
    let why = match tokio::time::timeout(Duration::from_secs(5), async_nats::connect(url.as_str()))
        .await
    {
        Ok(Ok(client)) => return Some(client),
        Ok(Err(e)) => e.to_string(),
        Err(_) => "no answer within 5 s".to_owned(),
    };
    if std::env::var("RISKHOOK_REQUIRE_SERVICES").as_deref() == Ok("1") {
        panic!(
            "NATS not reachable at {url} ({why}), and RISKHOOK_REQUIRE_SERVICES=1 requires it: start nats-server -js -p 4222"
        );
    }
    eprintln!(
        "skipped: NATS not reachable at {url} ({why}); set RISKHOOK_REQUIRE_SERVICES=1 to make this a failure"
    );
    None
}

/// A stream name and subject prefix no other test (or run) uses; the stream is deleted when
/// this is dropped.
struct Scratch {
    stream: String,
    prefix: String,
    /// The server holding the stream.
    url: String,
    jetstream: jetstream::Context,
}

impl Scratch {
    fn new(client: &async_nats::Client) -> Self {
        let tag = uuid::Uuid::new_v4().simple().to_string();
        Self {
            stream: format!("RISKHOOK_TEST_{tag}"),
            prefix: format!("riskhook-test.{tag}"),
            url: nats_url(),
            jetstream: jetstream::new(client.clone()),
        }
    }

    /// The `[nats]` section for this stream and prefix, on `url`.
    fn nats_toml(&self, url: &str) -> String {
        format!(
            "[nats]\nurl = \"{url}\"\nstream = \"{}\"\nsubject_prefix = \"{}\"\n",
            self.stream, self.prefix
        )
    }

    /// Everything in the stream, read once by a new ephemeral pull consumer (acknowledging
    /// each), in stream order: `(subject, Nats-Msg-Id, payload)`.
    async fn consume_all(&self) -> Vec<(String, String, String)> {
        let stream = self.jetstream.get_stream(&self.stream).await.unwrap();
        let consumer: consumer::PullConsumer = stream
            .create_consumer(consumer::pull::Config {
                ack_policy: consumer::AckPolicy::Explicit,
                ..consumer::pull::Config::default()
            })
            .await
            .unwrap();
        let mut seen = Vec::new();
        // Fetch until a fetch comes back empty: then nothing more is there.
        loop {
            let mut batch = consumer
                .fetch()
                .max_messages(100)
                .expires(Duration::from_millis(500))
                .messages()
                .await
                .unwrap();
            let before = seen.len();
            while let Some(message) = batch.next().await {
                let message = message.unwrap();
                let id = message
                    .headers
                    .as_ref()
                    .and_then(|h| h.get("Nats-Msg-Id"))
                    .map(|v| v.as_str().to_owned())
                    .unwrap_or_default();
                seen.push((
                    message.subject.to_string(),
                    id,
                    String::from_utf8(message.payload.to_vec()).unwrap(),
                ));
                message.ack().await.unwrap();
            }
            if seen.len() == before {
                return seen;
            }
        }
    }

    async fn stored_messages(&self) -> u64 {
        let mut stream = self.jetstream.get_stream(&self.stream).await.unwrap();
        stream.info().await.unwrap().state.messages
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        // Also when the test failed: a runtime and a connection of their own, since Drop cannot
        // await, and the test's connection is driven by the test's runtime, blocked right here.
        let url = self.url.clone();
        let stream = self.stream.clone();
        let deleted = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            runtime.block_on(async {
                let delete = async {
                    let client = async_nats::connect(url.as_str()).await.ok()?;
                    jetstream::new(client).delete_stream(&stream).await.ok()
                };
                tokio::time::timeout(Duration::from_secs(5), delete)
                    .await
                    .is_ok_and(|deleted| deleted.is_some())
            })
        })
        .join();
        if !matches!(deleted, Ok(true)) {
            eprintln!("could not delete the test stream {}", self.stream);
        }
    }
}

/// A `[notify]` section with fast polling and retries, no webhooks.
fn notify_toml(max_attempts: u32, lease: &str, timeout: &str) -> String {
    format!(
        "[notify]\nmax_attempts = {max_attempts}\nbackoff_initial = \"20ms\"\nbackoff_max = \"200ms\"\nlease = \"{lease}\"\npoll_interval = \"50ms\"\ntimeout = \"{timeout}\"\nconcurrency = 4\n\n"
    )
}

fn config(dir: &tempfile::TempDir, toml: &str) -> Config {
    keys_config(dir.path(), toml)
}

/// A port on 127.0.0.1 that nothing listens on (bound, then released).
fn closed_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

// --- The tests ---------------------------------------------------------------------------

pub(crate) async fn every_change_reaches_jetstream_once_in_order_per_user_on_its_users_subject() {
    let Some(client) = nats_or_skip().await else {
        return;
    };
    let scratch = Scratch::new(&client);
    let dir = tempfile::tempdir().unwrap();
    let toml = notify_toml(1000, "20s", "5s") + &scratch.nats_toml(&nats_url());
    let app = spawn_app_with_config(config(&dir, &toml)).await;
    eventually("/readyz reports NATS connected", || async {
        let ready = app.get("/readyz").await;
        ready.status == 200 && ready.json["checks"]["nats"] == "ok"
    })
    .await;

    const CHANGES: usize = 3;
    for n in 0..CHANGES {
        for user in USERS {
            change(&app, user, n).await;
        }
    }
    eventually("every notification is delivered to NATS", || async {
        let all = deliveries(&app.store, "nats").await;
        all.len() == USERS.len() * CHANGES
            && all.iter().all(|d| d.status == DeliveryStatus::Delivered)
    })
    .await;
    let stored = deliveries(&app.store, "nats").await;
    assert!(
        stored.iter().all(|d| d.last_status == Some(200)),
        "{stored:?}"
    );

    let consumed = scratch.consume_all().await;
    assert_eq!(consumed.len(), stored.len(), "{consumed:?}");
    assert_eq!(scratch.stored_messages().await, 6);
    let by_id: HashMap<&str, &DeliveryRecord> =
        stored.iter().map(|d| (d.message_id.as_str(), d)).collect();
    let mut versions: BTreeMap<String, Vec<i64>> = BTreeMap::new();
    for (subject, id, payload) in &consumed {
        let delivery = by_id
            .get(id.as_str())
            .unwrap_or_else(|| panic!("Nats-Msg-Id {id:?} is no outbox message id"));
        assert_eq!(payload, &delivery.payload, "the body is the stored payload");
        let json: Value = serde_json::from_str(payload).unwrap();
        let user = json["data"]["user_id"].as_str().unwrap().to_owned();
        assert_eq!(user, delivery.user_id);
        let token = subject
            .strip_prefix(&format!("{}.", scratch.prefix))
            .unwrap_or_else(|| panic!("{subject} is not under {}", scratch.prefix));
        assert_eq!(token, encode_subject_token(&user));
        assert_eq!(decode_subject_token(token).as_deref(), Some(user.as_str()));
        versions
            .entry(user)
            .or_default()
            .push(json["data"]["version"].as_i64().unwrap());
    }
    let ids: std::collections::HashSet<&str> = consumed.iter().map(|c| c.1.as_str()).collect();
    assert_eq!(ids.len(), consumed.len(), "each message exactly once");
    for user in USERS {
        assert_eq!(versions[user], [1, 2, 3], "{user}: in order");
    }
    assert_eq!(encode_subject_token(USERS[0]), "jane~2Edoe~40example~2Ecom");

    let metrics = app.metrics().await;
    let delivered = metrics
        .lines()
        .find_map(|l| {
            l.strip_prefix("riskhook_notifications_total{endpoint=\"nats\",outcome=\"delivered\"} ")
        })
        .and_then(|n| n.parse::<u64>().ok())
        .unwrap_or_else(|| panic!("no delivered counter for nats: {metrics}"));
    // The recorder is global to the test binary: other NATS tests may have counted too.
    assert!(delivered >= 6, "{delivered}");
    app.stop().await;
}

pub(crate) async fn a_republished_message_is_stored_once_even_after_a_dead_dispatchers_lease() {
    let Some(client) = nats_or_skip().await else {
        return;
    };
    let scratch = Scratch::new(&client);
    let dir = tempfile::tempdir().unwrap();
    let user = "user.lease";

    // A first run cannot reach NATS (a closed port): its only attempt fails.
    let down = format!("nats://127.0.0.1:{}", closed_port());
    let first = notify_toml(1, "3s", "1s") + &scratch.nats_toml(&down);
    let app = spawn_app_with_config(config(&dir, &first)).await;
    let (store, id) = failed_then_requeued(app, "nats", user).await;

    // A dispatcher takes the delivery back up, publishes it twice (a retry after a lost
    // acknowledgement) and dies before recording anything.
    let lease = Duration::from_secs(3);
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
    let claimed_at = Instant::now();
    let delivery = claimed.into_iter().next().unwrap();
    store.close().await;
    drop(store);
    let second = notify_toml(1000, "3s", "1s") + &scratch.nats_toml(&nats_url());
    let config = config(&dir, &second);
    let nats_config = config.nats.clone().unwrap();
    let dead = NatsSink::connect(&nats_config, Duration::from_secs(5))
        .await
        .unwrap();
    eventually("the dead dispatcher's sink connects", || async {
        dead.probe().is_connected()
    })
    .await;
    let once = dead
        .publish(user, &delivery.message_id, delivery.payload.clone())
        .await
        .unwrap();
    let twice = dead
        .publish(user, &delivery.message_id, delivery.payload.clone())
        .await
        .unwrap();
    assert!(!once.duplicate, "{once:?}");
    assert!(twice.duplicate, "{twice:?}");
    assert_eq!(twice.sequence, once.sequence);
    drop(dead);

    // The next start sends it again once the lease is over; JetStream already has it.
    let app = spawn_app_with_config(config).await;
    eventually("the abandoned delivery is delivered", || async {
        app.store
            .delivery(&id)
            .await
            .unwrap()
            .is_some_and(|d| d.status == DeliveryStatus::Delivered)
    })
    .await;
    assert!(
        claimed_at.elapsed() + Duration::from_millis(50) >= lease,
        "sent while the dead dispatcher held the lease"
    );
    let consumed = scratch.consume_all().await;
    assert_eq!(consumed.len(), 1, "{consumed:?}");
    assert_eq!(consumed[0].1, delivery.message_id);
    assert_eq!(consumed[0].2, delivery.payload);
    assert_eq!(
        consumed[0].0,
        format!("{}.{}", scratch.prefix, encode_subject_token(user))
    );
    assert_eq!(scratch.stored_messages().await, 1);
    app.stop().await;
}

pub(crate) async fn with_nats_unreachable_the_service_runs_and_notifications_wait() {
    // No server needed: the whole point is that there is none.
    let dir = tempfile::tempdir().unwrap();
    let tag = uuid::Uuid::new_v4().simple().to_string();
    let toml = notify_toml(1000, "3s", "1s")
        + &format!(
            "[nats]\nurl = \"nats://127.0.0.1:{}\"\nstream = \"RISKHOOK_TEST_{tag}\"\nsubject_prefix = \"riskhook-test.{tag}\"\nendpoint_id = \"nats-down\"\n",
            closed_port()
        );
    let app = spawn_app_with_config(config(&dir, &toml)).await;
    for n in 0..2 {
        change(&app, "u-waiting", n).await;
    }

    let ready = app.get("/readyz").await;
    assert_eq!(ready.status, 200, "{ready:?}");
    assert_eq!(ready.json["status"], "ready");
    assert_eq!(ready.json["checks"]["database"], "ok");
    assert_eq!(ready.json["checks"]["nats"], "disconnected");

    eventually("the first notification is retried", || async {
        deliveries(&app.store, "nats-down")
            .await
            .first()
            .is_some_and(|d| d.attempts >= 2)
    })
    .await;
    let waiting = deliveries(&app.store, "nats-down").await;
    assert_eq!(waiting.len(), 2);
    assert!(
        waiting.iter().all(|d| d.status == DeliveryStatus::Pending),
        "{waiting:?}"
    );
    assert_eq!(waiting[0].last_status, None);
    assert_eq!(
        waiting[0].last_error.as_deref(),
        Some("not connected to NATS")
    );
    // In order: the second waits behind the first and is not attempted.
    assert_eq!(waiting[1].attempts, 0, "{waiting:?}");
    app.stop().await;
}

pub(crate) async fn readyz_says_nats_is_not_configured_without_a_nats_section() {
    let dir = tempfile::tempdir().unwrap();
    let app = spawn_app_with_config(config(&dir, "")).await;
    let ready = app.get("/readyz").await;
    assert_eq!(ready.status, 200);
    assert_eq!(
        ready.json,
        serde_json::json!({
            "status": "ready",
            "checks": { "database": "ok", "nats": "not configured" },
        })
    );
    app.stop().await;
}

/// The `nats-server` binary that [`LocalNats`] starts, if there is one.
pub(crate) fn nats_server_binary() -> Option<std::path::PathBuf> {
    [
        "/usr/sbin/nats-server",
        "/usr/bin/nats-server",
        "/usr/local/bin/nats-server",
    ]
    .into_iter()
    .map(std::path::PathBuf::from)
    .find(|p| p.is_file())
}

/// A `nats-server` of the test's own, with JetStream, on `port`; killed when dropped.
struct LocalNats {
    child: std::process::Child,
    _dir: tempfile::TempDir,
}

impl LocalNats {
    /// Starts one, or `None` (with the reason on stderr) when there is no `nats-server` binary
    /// and `RISKHOOK_REQUIRE_SERVICES` is not `1`.
    fn start(port: u16, extra_args: &[&str]) -> Option<Self> {
        let Some(binary) = nats_server_binary() else {
            if std::env::var("RISKHOOK_REQUIRE_SERVICES").as_deref() == Ok("1") {
                panic!("no nats-server binary, and RISKHOOK_REQUIRE_SERVICES=1 requires it");
            }
            eprintln!(
                "skipped: no nats-server binary to start; set RISKHOOK_REQUIRE_SERVICES=1 to make this a failure"
            );
            return None;
        };
        let dir = tempfile::tempdir().unwrap();
        let child = std::process::Command::new(binary)
            .args(["-a", "127.0.0.1", "-p", &port.to_string(), "-js", "-sd"])
            .arg(dir.path())
            .args(extra_args)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        Some(Self { child, _dir: dir })
    }
}

impl Drop for LocalNats {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub(crate) async fn notifications_waiting_for_a_nats_that_comes_up_later_arrive_in_order() {
    let port = closed_port();
    let url = format!("nats://127.0.0.1:{port}");
    let tag = uuid::Uuid::new_v4().simple().to_string();
    let (stream, prefix) = (
        format!("RISKHOOK_TEST_{tag}"),
        format!("riskhook-test.{tag}"),
    );
    let dir = tempfile::tempdir().unwrap();
    let toml = notify_toml(1000, "3s", "1s")
        + &format!(
            "[nats]\nurl = \"{url}\"\nstream = \"{stream}\"\nsubject_prefix = \"{prefix}\"\n"
        );
    let app = spawn_app_with_config(config(&dir, &toml)).await;
    for n in 0..3 {
        for user in USERS {
            change(&app, user, n).await;
        }
    }
    eventually("a first attempt fails while NATS is down", || async {
        deliveries(&app.store, "nats")
            .await
            .iter()
            .any(|d| d.attempts >= 1)
    })
    .await;
    assert_eq!(
        app.get("/readyz").await.json["checks"]["nats"],
        "disconnected"
    );

    let Some(_server) = LocalNats::start(port, &[]) else {
        app.stop().await;
        return;
    };
    eventually(
        "every notification is delivered once NATS is up",
        || async {
            let all = deliveries(&app.store, "nats").await;
            all.len() == 6 && all.iter().all(|d| d.status == DeliveryStatus::Delivered)
        },
    )
    .await;
    let ready = app.get("/readyz").await;
    assert_eq!(
        (ready.status, &ready.json["checks"]["nats"]),
        (200, &Value::from("ok"))
    );

    let client = async_nats::connect(url.as_str()).await.unwrap();
    let scratch = Scratch {
        stream,
        prefix,
        url: url.clone(),
        jetstream: jetstream::new(client),
    };
    let consumed = scratch.consume_all().await;
    assert_eq!(consumed.len(), 6, "{consumed:?}");
    for user in USERS {
        let subject = format!("{}.{}", scratch.prefix, encode_subject_token(user));
        let versions: Vec<i64> = consumed
            .iter()
            .filter(|c| c.0 == subject)
            .map(|c| {
                serde_json::from_str::<Value>(&c.2).unwrap()["data"]["version"]
                    .as_i64()
                    .unwrap()
            })
            .collect();
        assert_eq!(versions, [1, 2, 3], "{user}");
    }
    app.stop().await;
}

pub(crate) async fn a_user_and_password_in_the_url_or_a_token_from_the_environment_authenticate() {
    let (user_port, token_port) = (closed_port(), closed_port());
    let Some(_with_user) =
        LocalNats::start(user_port, &["--user", "riskhook", "--pass", "pa55:w0rd"])
    else {
        return;
    };
    let Some(_with_token) = LocalNats::start(token_port, &["--auth", "t0k3n-for-nats"]) else {
        return;
    };
    for (url, env) in [
        // `:` in a password is percent-encoded in the URL.
        (
            format!("nats://riskhook:pa55%3Aw0rd@127.0.0.1:{user_port}"),
            None,
        ),
        (
            format!("nats://127.0.0.1:{token_port}"),
            Some(("NATS_TEST_TOKEN", "t0k3n-for-nats")),
        ),
    ] {
        let dir = tempfile::tempdir().unwrap();
        let tag = uuid::Uuid::new_v4().simple().to_string();
        let mut toml = notify_toml(1000, "3s", "1s")
            + &format!("[nats]\nurl = \"{url}\"\nstream = \"RISKHOOK_TEST_{tag}\"\n");
        if let Some((name, _)) = env {
            toml.push_str(&format!("token_env = \"{name}\"\n"));
        }
        let path = dir.path().join("riskhook.toml");
        std::fs::write(&path, toml).unwrap();
        let db = format!("sqlite://{}", dir.path().join("riskhook.db").display());
        let mut vars = vec![
            ("RISKHOOK_DIDIT_SECRET", crate::helpers::SECRET),
            ("RISKHOOK_LISTEN", "127.0.0.1:0"),
            ("RISKHOOK_DATABASE_URL", db.as_str()),
        ];
        vars.extend(env);
        let config = Config::load_with_env(
            Some(&path),
            vars.into_iter().map(|(k, v)| (k.to_owned(), v.to_owned())),
        )
        .unwrap();
        let app = spawn_app_with_config(config).await;
        change(&app, "u-auth", 0).await;
        eventually("the notification is delivered", || async {
            deliveries(&app.store, "nats")
                .await
                .first()
                .is_some_and(|d| d.status == DeliveryStatus::Delivered)
        })
        .await;
        assert_eq!(
            app.get("/readyz").await.json["checks"]["nats"],
            "ok",
            "{url}"
        );
        app.stop().await;
    }
}
