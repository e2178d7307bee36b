//! The whole review story over HTTP, as a customer would live it: a risky Didit event opens a
//! case, an analyst claims and resolves it, the user's status follows, every step is in an
//! intact audit chain, and the customer's endpoint (a real HTTP server started here) receives
//! the signed notifications in order and verifies each with the independent
//! `standardwebhooks` crate.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::State;
use axum::http::HeaderMap;
use bytes::Bytes;
use reqwest::Method;
use riskhook_core::audit::ChainVerifier;
use riskhook_store::AuditRecord;
use serde_json::{Value, json};
use standardwebhooks::Webhook;

use crate::helpers::{
    ADMIN_KEY, READ_KEY, REVIEW_KEY, fixture, keys_config, now, spawn_app_with_config,
};

const ENDPOINT_SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";

/// Every notification the customer's endpoint received and verified, in arrival order.
type Inbox = Arc<Mutex<Vec<Value>>>;

async fn customer_endpoint() -> (String, Inbox) {
    async fn receive(State(inbox): State<Inbox>, headers: HeaderMap, body: Bytes) -> u16 {
        // The customer's side: refuse anything that does not verify.
        if Webhook::new(ENDPOINT_SECRET)
            .unwrap()
            .verify(&body, &headers)
            .is_err()
        {
            return 401;
        }
        let mut message: Value = serde_json::from_slice(&body).unwrap();
        message["webhook_id"] = headers["webhook-id"].to_str().unwrap().into();
        inbox.lock().unwrap().push(message);
        204
    }
    let inbox: Inbox = Arc::default();
    let router = axum::Router::new()
        .route(
            "/hooks/riskhook",
            axum::routing::post(|s, h, b| async move {
                axum::http::StatusCode::from_u16(receive(s, h, b).await).unwrap()
            }),
        )
        .with_state(inbox.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hooks/riskhook", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
    (url, inbox)
}

/// Waits until the inbox holds `n` notifications for `user`, and returns them.
async fn notifications_for(inbox: &Inbox, user: &str, n: usize) -> Vec<Value> {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let got: Vec<Value> = inbox
            .lock()
            .unwrap()
            .iter()
            .filter(|m| m["data"]["user_id"] == user)
            .cloned()
            .collect();
        if got.len() >= n || Instant::now() > deadline {
            return got;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn a_risky_user_is_reviewed_audited_and_the_customer_is_told_in_order() {
    let (url, inbox) = customer_endpoint().await;
    let dir = Arc::new(tempfile::tempdir().unwrap());
    let config = keys_config(
        dir.path(),
        &format!(
            "[notify]\nbackoff_initial = \"100ms\"\npoll_interval = \"50ms\"\n\n\
             [[notify.webhooks]]\nid = \"customer\"\nurl = \"{url}\"\nsecret = \"{ENDPOINT_SECRET}\"\n"
        ),
    );
    // `dir` holds the database: it lives until the end of the test.
    let app = spawn_app_with_config(config).await;

    // 1. A PEP match: Didit approved, but our policy wants a person to look.
    let t = now() - 30;
    let mut pep: Value =
        serde_json::from_slice(&fixture("status-updated-approved-full.json")).unwrap();
    pep["session_id"] = "sess-story".into();
    pep["vendor_data"] = "story-user".into();
    pep["event_id"] = "story-delivery-1".into();
    pep["timestamp"] = t.into();
    pep["decision"]["vendor_data"] = "story-user".into();
    pep["decision"]["aml_screenings"][0]["total_hits"] = 1.into();
    pep["decision"]["aml_screenings"][0]["hits"] = json!([{
        "id": "hit-1", "caption": "A. Councillor", "match": true, "match_score": 91,
        "risk_score": 40, "datasets": ["PEP Level 3"], "review_status": "Unreviewed"
    }]);
    let reply = app.post_signed(&serde_json::to_vec(&pep).unwrap(), t).await;
    assert_eq!(reply.status, 200, "{reply:?}");
    assert_eq!(reply.json["assessment"]["decision"], "review", "{reply:?}");

    // 2. The case is open and the user in review.
    let user = app
        .api(Method::GET, "/v1/users/story-user", Some(READ_KEY))
        .await;
    assert_eq!(user.json["status"], "in_review", "{user:?}");
    let cases = app
        .api(
            Method::GET,
            "/v1/cases?status=open&user_id=story-user",
            Some(READ_KEY),
        )
        .await;
    let case_id = cases.json["cases"][0]["id"].as_str().unwrap().to_owned();
    let detail = app
        .api(Method::GET, &format!("/v1/cases/{case_id}"), Some(READ_KEY))
        .await;
    assert_eq!(detail.status, 200, "{detail:?}");
    let fired = detail.json.to_string();
    assert!(fired.contains("aml.pep"), "the analyst sees why: {fired}");

    // 3. The analyst claims it; a reader may not.
    let refused = app
        .api(
            Method::POST,
            &format!("/v1/cases/{case_id}/claim"),
            Some(READ_KEY),
        )
        .await;
    assert_eq!(refused.status, 403);
    let claimed = app
        .api(
            Method::POST,
            &format!("/v1/cases/{case_id}/claim"),
            Some(REVIEW_KEY),
        )
        .await;
    assert_eq!(claimed.status, 200, "{claimed:?}");
    assert_eq!(claimed.json["status"], "claimed");

    // 4. ...and resolves it: the PEP is a local councillor, low risk.
    let resolved = app
        .api_json(
            Method::POST,
            &format!("/v1/cases/{case_id}/resolve"),
            Some(REVIEW_KEY),
            &json!({ "outcome": "approve", "reason": "Local councillor; source of funds checked." }),
        )
        .await;
    assert_eq!(resolved.status, 200, "{resolved:?}");
    let user = app
        .api(Method::GET, "/v1/users/story-user", Some(READ_KEY))
        .await;
    assert_eq!(user.json["status"], "active", "{user:?}");

    // 5. Later, a sanctions hit on a new session: frozen at once, a new case opens.
    let decision = app
        .deliver_as(
            "status-updated-declined-sanctions.json",
            "sess-story-2",
            "story-user",
            t + 10,
        )
        .await;
    assert_eq!(decision, "freeze");
    let user = app
        .api(Method::GET, "/v1/users/story-user", Some(READ_KEY))
        .await;
    assert_eq!(user.json["status"], "frozen", "{user:?}");

    // 6. The customer heard every change, in order, each signed and verified on arrival.
    let got = notifications_for(&inbox, "story-user", 3).await;
    let statuses: Vec<&str> = got
        .iter()
        .map(|m| m["data"]["status"].as_str().unwrap())
        .collect();
    assert_eq!(statuses, ["in_review", "active", "frozen"], "{got:#?}");
    let versions: Vec<i64> = got
        .iter()
        .map(|m| m["data"]["version"].as_i64().unwrap())
        .collect();
    assert_eq!(versions, [1, 2, 3]);
    let causes: Vec<&str> = got
        .iter()
        .map(|m| m["data"]["cause"].as_str().unwrap())
        .collect();
    assert_eq!(causes, ["assessment", "case.resolved", "assessment"]);
    assert!(got.iter().all(|m| m["type"] == "user.updated"));
    // The endpoint has the messages; the dispatcher records each answer just after it.
    let deadline = Instant::now() + Duration::from_secs(60);
    let deliveries = loop {
        let reply = app
            .api(
                Method::GET,
                "/v1/deliveries?user_id=story-user",
                Some(READ_KEY),
            )
            .await;
        let settled = reply.json["deliveries"]
            .as_array()
            .is_some_and(|l| l.iter().all(|d| d["status"] != "pending"));
        if settled || Instant::now() > deadline {
            break reply;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    let list = deliveries.json["deliveries"].as_array().unwrap();
    assert_eq!(list.len(), 3, "{deliveries:?}");
    assert!(
        list.iter().all(|d| d["status"] == "delivered"),
        "{deliveries:?}"
    );

    // 7. The audit log tells the story, chained, with who did what and why.
    let mut entries: Vec<AuditRecord> = Vec::new();
    let mut after = 0;
    loop {
        let page = app
            .api(
                Method::GET,
                &format!("/v1/audit?after={after}&limit=500"),
                Some(READ_KEY),
            )
            .await;
        assert_eq!(page.status, 200, "{page:?}");
        let batch = page.json["entries"].as_array().unwrap().clone();
        if batch.is_empty() {
            break;
        }
        for e in &batch {
            let text = |k: &str| e[k].as_str().map(str::to_owned);
            entries.push(AuditRecord {
                seq: e["seq"].as_i64().unwrap(),
                id: text("id").unwrap(),
                at: e["at"].as_i64().unwrap(),
                actor: text("actor").unwrap(),
                action: text("action").unwrap(),
                subject: text("subject").unwrap(),
                reason: text("reason"),
                before: text("before"),
                after: text("after"),
                prev_hash: text("prev_hash").unwrap(),
                hash: text("hash").unwrap(),
                keyed: e["keyed"].as_bool().unwrap(),
            });
        }
        after = entries.last().unwrap().seq;
    }
    let mut verifier = ChainVerifier::new();
    for e in &entries {
        verifier.check(&e.fields(), &e.hash, e.keyed).unwrap();
    }
    let story: Vec<(&str, &str)> = entries
        .iter()
        .filter(|e| e.action != "policy.activated")
        .map(|e| (e.actor.as_str(), e.action.as_str()))
        .collect();
    assert_eq!(
        story,
        [
            ("system", "assessment.recorded"),
            ("system", "case.opened"),
            ("system", "user.updated"),
            ("reviewer", "case.claimed"),
            ("reviewer", "case.resolved"),
            ("reviewer", "user.updated"),
            ("system", "assessment.recorded"),
            ("system", "case.opened"),
            ("system", "user.updated"),
        ]
    );
    let resolution = entries
        .iter()
        .find(|e| e.action == "case.resolved")
        .unwrap();
    assert_eq!(
        resolution.reason.as_deref(),
        Some("Local councillor; source of funds checked.")
    );
    // Admin-only actions stay admin-only.
    let keys = app.api(Method::GET, "/v1/keys", Some(REVIEW_KEY)).await;
    assert_eq!(keys.status, 403);
    let keys = app.api(Method::GET, "/v1/keys", Some(ADMIN_KEY)).await;
    assert_eq!(keys.status, 200);
    app.stop().await;
    drop(dir);
}
