//! Scoring inside the intake transaction, the user profile it maintains, the read API with its
//! keys and roles, policy reload, and reproducibility of stored assessments.

use reqwest::Method;
use riskhook_core::assessment::Assessment;
use riskhook_core::policy::{DEFAULT_POLICY, Policy};
use serde_json::Value;

use crate::helpers::{ADMIN_KEY, READ_KEY, REVIEW_KEY, fixture, now, spawn_app_with_keys};

/// A fixture rewritten as another session of `user`.
fn as_session_of(name: &str, session_id: &str, user: &str, t: i64) -> Vec<u8> {
    let mut v: Value = serde_json::from_slice(&fixture(name)).unwrap();
    v["session_id"] = Value::from(session_id);
    v["vendor_data"] = Value::from(user);
    v["event_id"] = Value::from(format!(
        "00000000-0000-4000-8000-{:012}",
        t % 1_000_000_000_000
    ));
    v["timestamp"] = Value::from(t);
    if let Some(decision) = v.get_mut("decision").and_then(Value::as_object_mut) {
        decision.insert("session_id".to_owned(), Value::from(session_id));
        decision.insert("vendor_data".to_owned(), Value::from(user));
    }
    serde_json::to_vec(&v).unwrap()
}

#[tokio::test]
async fn a_sanctions_hit_freezes_the_user_and_a_later_approval_does_not_unfreeze() {
    let app = spawn_app_with_keys(None).await;
    let t = now();
    let sanctions = as_session_of(
        "status-updated-declined-sanctions.json",
        "sess-a",
        "alice",
        t - 20,
    );
    let reply = app.post_signed(&sanctions, t - 20).await;
    assert_eq!(reply.status, 200, "{reply:?}");
    assert_eq!(reply.json["assessment"]["decision"], "freeze", "{reply:?}");
    let fired = reply.json["assessment"]["rules_fired"].as_array().unwrap();
    assert!(fired.iter().any(|r| r == "aml.sanctions_hit"), "{fired:?}");

    let user = app
        .api(Method::GET, "/v1/users/alice", Some(READ_KEY))
        .await;
    assert_eq!(user.status, 200, "{user:?}");
    assert_eq!(user.json["status"], "frozen");
    assert_eq!(user.json["decision"], "freeze");
    let explanation = &user.json["assessment"]["explanation"];
    let sanction_rule = explanation["fired"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["rule_id"] == "aml.sanctions_hit")
        .unwrap();
    assert!(
        sanction_rule["reads"]["aml.sanctions_hits"]
            .as_i64()
            .unwrap()
            >= 1
    );
    assert_eq!(explanation["policy"]["hash"].as_str().unwrap().len(), 64);

    // A clean, approved second session for the same person, later.
    let approved = as_session_of(
        "status-updated-approved-full.json",
        "sess-b",
        "alice",
        t - 10,
    );
    let reply = app.post_signed(&approved, t - 10).await;
    assert_eq!(reply.status, 200, "{reply:?}");
    let user = app
        .api(Method::GET, "/v1/users/alice", Some(READ_KEY))
        .await;
    assert_eq!(
        user.json["status"], "frozen",
        "a freeze needs a person to lift it: {user:?}"
    );
    assert_eq!(user.json["ever_frozen"], true);
    assert_eq!(user.json["sessions"].as_array().unwrap().len(), 2);

    let history = app
        .api(Method::GET, "/v1/users/alice/assessments", Some(READ_KEY))
        .await;
    assert_eq!(history.json["assessments"].as_array().unwrap().len(), 2);
    let session = app
        .api(Method::GET, "/v1/sessions/sess-b", Some(READ_KEY))
        .await;
    assert_eq!(session.status, 200, "{session:?}");
    assert_eq!(session.json["user_id"], "alice");
    assert_eq!(session.json["status"], "Approved");
    app.stop().await;
}

#[tokio::test]
async fn a_stored_assessment_is_reproduced_byte_for_byte_from_its_snapshot() {
    let app = spawn_app_with_keys(None).await;
    let t = now();
    for (i, name) in [
        "status-updated-declined-sanctions.json",
        "status-updated-in-review-risky.json",
        "status-updated-approved-full.json",
    ]
    .iter()
    .enumerate()
    {
        let ts = t - 30 + i64::try_from(i).unwrap();
        let body = riskhook::delivery::restamp(&fixture(name), ts);
        assert_eq!(app.post_signed(&body, ts).await.status, 200);
    }
    let policy = Policy::load(DEFAULT_POLICY).unwrap();
    let mut checked = 0;
    for user in ["user-1187", "user-5530", "user-9051"] {
        for stored in app.store.user_assessments(user, 10).await.unwrap() {
            assert_eq!(stored.policy_hash, policy.hash());
            let parsed: Assessment = serde_json::from_str(&stored.json).unwrap();
            let signals = (*parsed.signals).clone().validate().unwrap();
            let again = policy.assess(&signals, parsed.evaluated_at);
            assert_eq!(again.to_json(), stored.json, "{user}: not reproduced");
            checked += 1;
        }
    }
    assert_eq!(checked, 3);
    app.stop().await;
}

#[tokio::test]
async fn every_v1_route_needs_a_valid_key_and_the_right_role() {
    let app = spawn_app_with_keys(None).await;
    for path in ["/v1/users/nobody", "/v1/policy", "/v1/sessions/x"] {
        for key in [None, Some("rk_wrong"), Some("")] {
            let reply = app.api(Method::GET, path, key).await;
            assert_eq!(reply.status, 401, "{path} {key:?}: {reply:?}");
            assert_eq!(
                reply.content_type.as_deref(),
                Some("application/problem+json")
            );
            assert_eq!(reply.json["code"], "unauthorized");
        }
    }
    for key in [READ_KEY, REVIEW_KEY] {
        let reply = app.api(Method::POST, "/v1/policy/reload", Some(key)).await;
        assert_eq!(reply.status, 403, "{reply:?}");
        assert_eq!(reply.json["code"], "forbidden");
    }
    let missing = app
        .api(Method::GET, "/v1/users/nobody", Some(READ_KEY))
        .await;
    assert_eq!(
        (missing.status, missing.json["code"].as_str()),
        (404, Some("not-found"))
    );
    let policy = app.api(Method::GET, "/v1/policy", Some(READ_KEY)).await;
    assert_eq!(policy.status, 200);
    assert_eq!(policy.json["name"], "default");
    assert_eq!(
        policy.json["hash"],
        Policy::load(DEFAULT_POLICY).unwrap().hash()
    );
    assert!(policy.json["rules"].as_array().unwrap().len() > 20);
    app.stop().await;
}

#[tokio::test]
async fn a_policy_reload_swaps_atomically_and_a_broken_policy_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("policy.toml");
    std::fs::write(&path, DEFAULT_POLICY).unwrap();
    let app = spawn_app_with_keys(Some(&path)).await;
    let before = app.api(Method::GET, "/v1/policy", Some(READ_KEY)).await;
    let old_hash = before.json["hash"].as_str().unwrap().to_owned();

    std::fs::write(&path, "name = \"broken\"\n[thresholds]\nreview = 30\nfreeze = 70\n[[rules]]\nid = \"x\"\nwhen = \"aml.nope > 1\"\npoints = 5\nreason = \"r\"\n").unwrap();
    let refused = app
        .api(Method::POST, "/v1/policy/reload", Some(ADMIN_KEY))
        .await;
    assert_eq!(refused.status, 422, "{refused:?}");
    assert_eq!(refused.json["code"], "policy-rejected");
    assert!(
        refused.json["detail"]
            .as_str()
            .unwrap()
            .contains("aml.nope")
    );
    let still = app.api(Method::GET, "/v1/policy", Some(READ_KEY)).await;
    assert_eq!(
        still.json["hash"],
        old_hash.as_str(),
        "the old policy stays in force"
    );

    let strict = DEFAULT_POLICY.replace("review = 30", "review = 5");
    std::fs::write(&path, &strict).unwrap();
    let reloaded = app
        .api(Method::POST, "/v1/policy/reload", Some(ADMIN_KEY))
        .await;
    assert_eq!(reloaded.status, 200, "{reloaded:?}");
    assert_eq!(reloaded.json["previous_hash"], old_hash.as_str());
    let new_hash = Policy::load(&strict).unwrap().hash().to_owned();
    assert_eq!(reloaded.json["hash"], new_hash.as_str());

    // The audit log has the policy at start (by the system) and the reload (by the admin
    // key); the refused reload changed nothing.
    let audit = app.store.audit(0, 100).await.unwrap();
    let changes: Vec<(&str, bool)> = audit
        .iter()
        .filter(|e| e.action == "policy.activated")
        .map(|e| {
            let after = e.after.as_deref().unwrap();
            (e.actor.as_str(), after.contains(&new_hash))
        })
        .collect();
    assert_eq!(changes, [("system", false), ("admin", true)]);

    // New events are assessed under the new policy.
    let t = now();
    let body = riskhook::delivery::restamp(&fixture("status-updated-in-review-risky.json"), t);
    app.post_signed(&body, t).await;
    let history = app
        .api(
            Method::GET,
            "/v1/users/user-5530/assessments",
            Some(READ_KEY),
        )
        .await;
    assert_eq!(
        history.json["assessments"][0]["policy_hash"],
        new_hash.as_str()
    );
    app.stop().await;
}
