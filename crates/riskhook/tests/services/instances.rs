//! Several instances on one PostgreSQL database: three `riskhook serve` processes receive a
//! realistic stream of deliveries, each delivery sent to two or three of them at the same
//! moment in random order, and the end state must equal that of one instance fed the same
//! deliveries one by one. Also: every notification reaches the customer's endpoint once.
//!
//! Needs PostgreSQL (127.0.0.1:5432, or `RISKHOOK_TEST_POSTGRES_URL`); skipped with a message
//! when it is not reachable, unless `RISKHOOK_REQUIRE_SERVICES=1` (as `.ci/run` sets).

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::http::HeaderMap;
use bytes::Bytes;
use riskhook::config::DatabaseUrl;
use riskhook_core::audit::ChainVerifier;
use riskhook_store::{CaseFilter, DeliveryFilter, DeliveryStatus, Store};
use serde_json::{Value, json};
use standardwebhooks::Webhook;

use riskhook_store_postgres::test_support::{fresh_database, fresh_database_or_skip, server_url};

use crate::helpers::Served;
use crate::helpers::{fixture, key, now, spawn_app_on};

const ENDPOINT_SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
const USERS: usize = 10;
const SESSIONS_PER_USER: usize = 3;

/// A tiny deterministic generator (the test must be reproducible from its seed).
struct Lcg(u64);

impl Lcg {
    fn next(&mut self) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        self.0 >> 33
    }

    fn below(&mut self, n: usize) -> usize {
        usize::try_from(self.next()).unwrap() % n
    }

    fn shuffle<T>(&mut self, items: &mut [T]) {
        for i in (1..items.len()).rev() {
            items.swap(i, self.below(i + 1));
        }
    }
}

/// One signed delivery: the body and the timestamp it is signed at.
#[derive(Clone)]
struct Delivery {
    body: Vec<u8>,
    timestamp: i64,
}

/// Sessions that go Not Started → In Progress → a verdict carrying a full decision (clean,
/// risky or sanctioned), with Didit's retries: exact re-sends and re-sends under a new
/// `event_id` (duplicates by content).
fn stream(rng: &mut Lcg) -> Vec<Delivery> {
    let base = now() - 200;
    let finals = [
        "status-updated-approved-full.json",
        "status-updated-in-review-risky.json",
        "status-updated-declined-sanctions.json",
    ];
    let mut out = Vec::new();
    let mut t = 0;
    for u in 0..USERS {
        for s in 0..SESSIONS_PER_USER {
            let user = format!("multi-user-{u}");
            let session = format!("11111111-2222-3333-4444-{u:06}{s:06}");
            let steps = [
                ("status-updated-not-started.json", None),
                ("status-updated-in-progress.json", None),
                (finals[rng.below(finals.len())], Some(())),
            ];
            for (name, _) in steps {
                t += 1;
                let mut v: Value = serde_json::from_slice(&fixture(name)).unwrap();
                v["session_id"] = session.clone().into();
                v["vendor_data"] = user.clone().into();
                v["event_id"] = uuid::Uuid::new_v4().to_string().into();
                if let Some(decision) = v.get_mut("decision").and_then(Value::as_object_mut) {
                    decision.insert("session_id".to_owned(), session.clone().into());
                    decision.insert("vendor_data".to_owned(), user.clone().into());
                }
                let timestamp = base + t;
                let body = riskhook::delivery::restamp(&serde_json::to_vec(&v).unwrap(), timestamp);
                let delivery = Delivery { body, timestamp };
                match rng.below(5) {
                    0 => out.push(delivery.clone()), // an exact re-send
                    1 => {
                        // Didit retrying under a new event_id: a duplicate by content.
                        let mut again: Value = serde_json::from_slice(&delivery.body).unwrap();
                        again["event_id"] = uuid::Uuid::new_v4().to_string().into();
                        out.push(Delivery {
                            body: serde_json::to_vec(&again).unwrap(),
                            timestamp,
                        });
                    }
                    _ => {}
                }
                out.push(delivery);
            }
        }
    }
    out
}

async fn post(client: &reqwest::Client, address: &str, d: &Delivery) -> Value {
    let url = format!("http://{address}/webhooks/didit");
    let outcome = riskhook::delivery::send(client, &url, &key(), d.body.clone(), d.timestamp)
        .await
        .unwrap();
    assert_eq!(outcome.status, 200, "{}", outcome.body);
    serde_json::from_str(&outcome.body).unwrap()
}

/// Every notification the customer's endpoint received, verified, by webhook-id.
type Inbox = Arc<Mutex<BTreeMap<String, usize>>>;

async fn customer_endpoint() -> (String, Inbox) {
    let inbox: Inbox = Arc::default();
    let seen = inbox.clone();
    let router = axum::Router::new().route(
        "/hook",
        axum::routing::post(move |headers: HeaderMap, body: Bytes| {
            let seen = seen.clone();
            async move {
                if Webhook::new(ENDPOINT_SECRET)
                    .unwrap()
                    .verify(&body, &headers)
                    .is_err()
                {
                    return axum::http::StatusCode::UNAUTHORIZED;
                }
                let id = headers["webhook-id"].to_str().unwrap().to_owned();
                *seen.lock().unwrap().entry(id).or_default() += 1;
                axum::http::StatusCode::NO_CONTENT
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
    (url, inbox)
}

/// The end state, with everything that names an id of one database replaced by content that
/// both databases share (event ids differ: each instance makes its own).
async fn end_state(store: &dyn Store) -> Value {
    let events = store.events(None, 10_000).await.unwrap();
    // By content: when Didit re-sends under a new event_id, whichever copy arrived first is the
    // one stored, and which that is depends on arrival order.
    let keys: BTreeSet<String> = events.iter().map(|e| e.content_key.clone()).collect();
    assert_eq!(keys.len(), events.len(), "one event per content key");
    let content_of: BTreeMap<String, String> = events
        .iter()
        .map(|e| (e.id.to_string(), e.content_key.clone()))
        .collect();
    let mut sessions = BTreeMap::new();
    let mut users = BTreeMap::new();
    for u in 0..USERS {
        let user_id = format!("multi-user-{u}");
        let user = store.user(&user_id).await.unwrap().unwrap();
        for session_id in &user.sessions {
            let s = store.session(session_id).await.unwrap().unwrap();
            sessions.insert(
                session_id.clone(),
                json!([
                    s.status.as_str(),
                    s.status_timestamp,
                    s.event_count,
                    content_of[&s.status_event_id]
                ]),
            );
        }
        let assessments = store.user_assessments(&user_id, 1000).await.unwrap();
        let by_id: BTreeMap<String, Value> = assessments
            .iter()
            .map(|a| {
                (
                    a.id.clone(),
                    json!([
                        content_of[&a.event_id],
                        a.decision.as_str(),
                        a.score,
                        a.policy_hash
                    ]),
                )
            })
            .collect();
        let mut history: Vec<Value> = by_id.values().cloned().collect();
        history.sort_by_key(Value::to_string);
        let filter = CaseFilter {
            user_id: Some(user_id.clone()),
            limit: 100,
            ..CaseFilter::default()
        };
        let cases: Vec<Value> = store
            .cases(&filter)
            .await
            .unwrap()
            .into_iter()
            .map(|c| {
                let mut evidence: Vec<Value> = c
                    .assessment_ids
                    .iter()
                    .map(|id| by_id[id].clone())
                    .collect();
                evidence.sort_by_key(Value::to_string);
                json!([c.status.as_str(), c.decision.as_str(), evidence])
            })
            .collect();
        let current = user
            .current_assessment_id
            .as_ref()
            .map(|id| by_id[id].clone());
        users.insert(
            user_id,
            json!({
                "status": user.status.as_str(), "score": user.score,
                "decision": user.decision.as_str(), "ever_frozen": user.ever_frozen,
                "verdict": user.verdict.map(|v| v.as_str()), "sessions": user.sessions,
                "current": current, "assessments": history, "cases": cases,
            }),
        );
    }
    // The audit chain: intact, and the same automatic decisions and cases in it. (Entries
    // reporting a *transition* of a user depend on the order changes were seen in, by nature:
    // the same final state is reached through different intermediate ones.)
    let audit = store.audit(0, 100_000).await.unwrap();
    let mut verifier = ChainVerifier::new();
    for e in &audit {
        verifier.check(&e.fields(), &e.hash, e.keyed).unwrap();
    }
    let mut decisions: Vec<String> = audit
        .iter()
        .filter(|e| matches!(e.action.as_str(), "assessment.recorded" | "case.opened"))
        .map(|e| {
            let after: Value = serde_json::from_str(e.after.as_deref().unwrap()).unwrap();
            let event = after["event_id"].as_str().map(|id| content_of[id].clone());
            // A case's id differs between databases; the user it was opened for does not.
            let subject = after["user_id"]
                .as_str()
                .map_or_else(|| e.subject.clone(), |user| format!("case for {user}"));
            format!(
                "{} {} {subject} {:?} {}",
                e.actor, e.action, event, after["decision"]
            )
        })
        .collect();
    decisions.sort();
    json!({
        "events": keys.into_iter().collect::<Vec<_>>(),
        "sessions": sessions,
        "users": users,
        "audit": decisions,
    })
}

pub(crate) async fn three_instances_on_one_database_end_like_one_instance_fed_one_by_one() {
    let Some((shared, _shared_db)) = fresh_database_or_skip().await else {
        return;
    };
    let (alone, _alone_db) = fresh_database(&server_url()).await.unwrap();
    let (endpoint, inbox) = customer_endpoint().await;
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("riskhook.toml");
    std::fs::write(
        &config,
        format!(
            "[notify]\npoll_interval = \"100ms\"\nbackoff_initial = \"100ms\"\n\n\
             [[notify.webhooks]]\nid = \"customer\"\nurl = \"{endpoint}\"\nsecret = \"{ENDPOINT_SECRET}\"\n"
        ),
    )
    .unwrap();
    let env = [
        ("RISKHOOK_DATABASE_URL", shared.as_str()),
        ("RISKHOOK_CONFIG", config.to_str().unwrap()),
        ("RISKHOOK_DATABASE_MAX_CONNECTIONS", "8"),
    ];
    // Started together: their migrations race, and must not conflict. (Collected so that all
    // three are spawned before the first is joined.)
    #[allow(clippy::needless_collect)]
    let starting: Vec<_> = (0..3)
        .map(|_| {
            let dir = dir.path().to_owned();
            let env: Vec<(String, String)> = env
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect();
            std::thread::spawn(move || {
                let env: Vec<(&str, &str)> =
                    env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
                Served::start(&dir, &env)
            })
        })
        .collect();
    let mut instances: Vec<Served> = starting.into_iter().map(|h| h.join().unwrap()).collect();
    let addresses: Vec<String> = instances.iter().map(|s| s.address.clone()).collect();

    let mut rng = Lcg(0x5eed_2026_1125);
    let deliveries = stream(&mut rng);
    let mut shuffled = deliveries.clone();
    rng.shuffle(&mut shuffled);
    let client = reqwest::Client::new();
    let gate = Arc::new(tokio::sync::Semaphore::new(12));
    let mut tasks = Vec::new();
    for d in shuffled {
        // Each delivery to two or three instances, at the same moment, in random order.
        let mut targets = addresses.clone();
        rng.shuffle(&mut targets);
        targets.truncate(2 + rng.below(2));
        let (client, gate) = (client.clone(), gate.clone());
        tasks.push(tokio::spawn(async move {
            let _permit = gate.acquire_owned().await.unwrap();
            let sends = targets.iter().map(|a| post(&client, a, &d));
            let answers: Vec<Value> = futures_util::future::join_all(sends).await;
            answers.iter().filter(|a| a["status"] == "accepted").count()
        }));
    }
    let mut accepted = 0;
    for task in tasks {
        accepted += task.await.unwrap();
    }

    // The reference: one instance, the same deliveries, one by one, in the original order.
    let single = spawn_app_on(alone.as_str(), &[]).await;
    for d in &deliveries {
        single.post_signed(&d.body, d.timestamp).await;
    }
    let open = |url: &str| {
        let url = DatabaseUrl::new(url);
        async move { riskhook::store::open_with(&url, 4).await.unwrap() }
    };
    let (many, one) = (open(shared.as_str()).await, open(alone.as_str()).await);
    let (many_state, one_state) = (
        end_state(many.as_ref()).await,
        end_state(one.as_ref()).await,
    );
    let distinct = many.count_events().await.unwrap();
    assert_eq!(
        accepted,
        usize::try_from(distinct).unwrap(),
        "exactly one 'accepted' per distinct delivery across all instances"
    );
    assert_eq!(
        serde_json::to_string_pretty(&many_state).unwrap(),
        serde_json::to_string_pretty(&one_state).unwrap()
    );

    // Every notification written reaches the endpoint, each once (no failure was injected,
    // so at-least-once is exactly once here: no two instances sent the same attempt).
    let deadline = Instant::now() + Duration::from_secs(60);
    let all = DeliveryFilter {
        limit: 10_000,
        ..DeliveryFilter::default()
    };
    loop {
        let list = many.deliveries(&all).await.unwrap();
        if list.iter().all(|d| d.status == DeliveryStatus::Delivered) || Instant::now() > deadline {
            let got = inbox.lock().unwrap().clone();
            assert!(!list.is_empty());
            assert_eq!(got.len(), list.len(), "every message arrived");
            assert!(got.values().all(|n| *n == 1), "each once: {got:?}");
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    for served in &mut instances {
        served.signal("TERM");
    }
    for mut served in instances {
        tokio::task::spawn_blocking(move || served.child.wait().unwrap())
            .await
            .unwrap();
    }
    single.stop().await;
    many.close().await;
    one.close().await;
    crate::faults::sigkill::assert_no_dangling_references(&shared).await;
}
