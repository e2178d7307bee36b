//! The review API over HTTP against real SQLite: cases opened by risky assessments, their
//! filters and detail, claim and resolve, manual freeze and unfreeze with four eyes, actions,
//! the audit log, deliveries and endpoints.

use reqwest::Method;
use serde_json::{Value, json};

use crate::helpers::{
    ADMIN_KEY, READ_KEY, REVIEW_KEY, TestApp, now, spawn_app_with_four_eyes, spawn_app_with_keys,
};

const SANCTIONS: &str = "status-updated-declined-sanctions.json";

/// `user` frozen by a sanctions hit; returns the id of the case it opened.
async fn frozen_user_with_case(app: &TestApp, user: &str) -> String {
    let decision = app
        .deliver_as(SANCTIONS, &format!("sess-{user}"), user, now() - 20)
        .await;
    assert_eq!(decision, "freeze");
    let cases = app
        .api(
            Method::GET,
            &format!("/v1/cases?user_id={user}"),
            Some(READ_KEY),
        )
        .await;
    assert_eq!(cases.status, 200, "{cases:?}");
    let list = cases.json["cases"].as_array().unwrap();
    assert_eq!(list.len(), 1, "{cases:?}");
    list[0]["id"].as_str().unwrap().to_owned()
}

async fn count_cases(app: &TestApp, query: &str) -> usize {
    let reply = app
        .api(Method::GET, &format!("/v1/cases?{query}"), Some(READ_KEY))
        .await;
    assert_eq!(reply.status, 200, "{query}: {reply:?}");
    reply.json["cases"].as_array().unwrap().len()
}

#[tokio::test]
async fn a_risky_assessment_opens_a_case_that_the_filters_find() {
    let app = spawn_app_with_keys(None).await;
    let case_id = frozen_user_with_case(&app, "alice").await;
    assert!(case_id.starts_with("case_"), "{case_id}");

    for (query, expected) in [
        ("", 1),
        ("status=open", 1),
        ("status=claimed", 0),
        ("status=resolved", 0),
        ("decision=freeze", 1),
        ("decision=review", 0),
        ("user_id=alice", 1),
        ("user_id=bob", 0),
        ("assignee=reviewer", 0),
        ("min_age=0", 1),
        ("min_age=1h", 0),
        ("min_age=7200", 0),
        (&format!("after={case_id}"), 0),
        ("limit=1", 1),
    ] {
        assert_eq!(count_cases(&app, query).await, expected, "{query}");
    }
    let page = app
        .api(Method::GET, "/v1/cases?limit=1", Some(READ_KEY))
        .await;
    assert_eq!(
        page.json["next"],
        case_id.as_str(),
        "a full page has a cursor"
    );
    let page = app.api(Method::GET, "/v1/cases", Some(READ_KEY)).await;
    assert_eq!(page.json["next"], Value::Null, "a short page is the last");
    let case = &page.json["cases"][0];
    assert_eq!(case["status"], "open");
    assert_eq!(case["decision"], "freeze");
    assert_eq!(case["user_id"], "alice");
    assert_eq!(case["assignee"], Value::Null);

    for bad in [
        "status=nope",
        "decision=maybe",
        "min_age=soon",
        "limit=x",
        "colour=red",
    ] {
        let reply = app
            .api(Method::GET, &format!("/v1/cases?{bad}"), Some(READ_KEY))
            .await;
        assert_eq!(reply.status, 400, "{bad}: {reply:?}");
        assert_eq!(
            reply.content_type.as_deref(),
            Some("application/problem+json"),
            "{bad}"
        );
        assert_eq!(reply.json["code"], "malformed-request", "{bad}");
    }
    app.stop().await;
}

#[tokio::test]
async fn a_case_shows_its_user_every_rule_fired_and_a_timeline_without_bodies() {
    let app = spawn_app_with_keys(None).await;
    let case_id = frozen_user_with_case(&app, "alice").await;
    let reply = app
        .api(Method::GET, &format!("/v1/cases/{case_id}"), Some(READ_KEY))
        .await;
    assert_eq!(reply.status, 200, "{reply:?}");
    let detail = &reply.json;
    assert_eq!(detail["case"]["id"], case_id.as_str());
    assert_eq!(detail["user"]["user_id"], "alice");
    assert_eq!(detail["user"]["status"], "frozen");
    assert_eq!(
        detail["user"]["verdict"],
        Value::Null,
        "nobody has acted yet"
    );
    assert!(detail["user"]["version"].is_i64());

    let evidence = detail["evidence"].as_array().unwrap();
    assert_eq!(evidence.len(), 1, "{detail}");
    assert_eq!(evidence[0]["decision"], "freeze");
    let sanctions = evidence[0]["fired"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["rule_id"] == "aml.sanctions_hit")
        .unwrap_or_else(|| panic!("{detail}"));
    assert!(sanctions["points"].is_i64());
    assert!(!sanctions["reason"].as_str().unwrap().is_empty());
    assert!(sanctions["reads"]["aml.sanctions_hits"].as_i64().unwrap() >= 1);

    let timeline = detail["timeline"].as_array().unwrap();
    assert_eq!(timeline.len(), 1, "{detail}");
    let event = &timeline[0];
    assert!(event["id"].as_str().unwrap().starts_with("evt_"), "{event}");
    assert_eq!(event["webhook_type"], "status.updated");
    assert_eq!(event["status"], "Declined");
    assert!(event["event_timestamp"].is_i64() && event["received_at"].is_i64());
    for leaked in ["raw", "body", "payload"] {
        assert!(event.get(leaked).is_none(), "{leaked} in {event}");
    }

    let missing = app
        .api(Method::GET, "/v1/cases/case_nope", Some(READ_KEY))
        .await;
    assert_eq!(
        (missing.status, missing.json["code"].as_str()),
        (404, Some("not-found"))
    );
    app.stop().await;
}

#[tokio::test]
async fn resolving_without_a_reason_is_refused_with_422() {
    let app = spawn_app_with_keys(None).await;
    let case_id = frozen_user_with_case(&app, "alice").await;
    let path = format!("/v1/cases/{case_id}/resolve");
    for body in [
        json!({ "outcome": "decline" }),
        json!({ "outcome": "decline", "reason": "" }),
        json!({ "outcome": "decline", "reason": "   \n" }),
        json!({ "outcome": "decline", "reason": null }),
        json!({ "outcome": "maybe", "reason": "because" }),
    ] {
        let reply = app
            .api_json(Method::POST, &path, Some(REVIEW_KEY), &body)
            .await;
        assert_eq!(reply.status, 422, "{body}: {reply:?}");
        assert_eq!(
            reply.content_type.as_deref(),
            Some("application/problem+json")
        );
        assert_eq!(reply.json["code"], "invalid-request", "{body}");
    }
    // No body at all: not JSON.
    let reply = app.api(Method::POST, &path, Some(REVIEW_KEY)).await;
    assert_eq!(reply.status, 415, "{reply:?}");
    let case = app
        .api(Method::GET, &format!("/v1/cases/{case_id}"), Some(READ_KEY))
        .await;
    assert_eq!(case.json["case"]["status"], "open", "nothing changed");
    app.stop().await;
}

#[tokio::test]
async fn a_case_claimed_by_one_key_cannot_be_claimed_by_another_and_resolves_once() {
    let app = spawn_app_with_keys(None).await;
    let case_id = frozen_user_with_case(&app, "alice").await;
    let claim = format!("/v1/cases/{case_id}/claim");

    let mine = app.api(Method::POST, &claim, Some(REVIEW_KEY)).await;
    assert_eq!(mine.status, 200, "{mine:?}");
    assert_eq!(mine.json["status"], "claimed");
    assert_eq!(mine.json["assignee"], "reviewer");
    let again = app.api(Method::POST, &claim, Some(REVIEW_KEY)).await;
    assert_eq!(
        again.status, 200,
        "claiming one's own case again is a no-op: {again:?}"
    );
    let theirs = app.api(Method::POST, &claim, Some(ADMIN_KEY)).await;
    assert_eq!(theirs.status, 409, "{theirs:?}");
    assert_eq!(theirs.json["code"], "conflict");
    assert_eq!(count_cases(&app, "assignee=reviewer").await, 1);
    assert_eq!(count_cases(&app, "assignee=admin").await, 0);
    assert_eq!(count_cases(&app, "status=claimed").await, 1);

    let resolved = app
        .api_json(
            Method::POST,
            &format!("/v1/cases/{case_id}/resolve"),
            Some(REVIEW_KEY),
            &json!({ "outcome": "decline", "reason": "confirmed sanctions match" }),
        )
        .await;
    assert_eq!(resolved.status, 200, "{resolved:?}");
    assert_eq!(resolved.json["case"]["status"], "resolved");
    assert_eq!(resolved.json["case"]["outcome"], "decline");
    assert_eq!(resolved.json["case"]["reason"], "confirmed sanctions match");
    assert_eq!(resolved.json["user"]["status"], "declined");
    assert_eq!(resolved.json["user"]["verdict"], "declined");

    let late = app.api(Method::POST, &claim, Some(ADMIN_KEY)).await;
    assert_eq!(late.status, 409, "{late:?}");
    assert_eq!(count_cases(&app, "status=resolved").await, 1);
    let missing = app
        .api(Method::POST, "/v1/cases/case_nope/claim", Some(REVIEW_KEY))
        .await;
    assert_eq!(missing.status, 404, "{missing:?}");

    let audit = app.api(Method::GET, "/v1/audit", Some(READ_KEY)).await;
    assert_eq!(audit.status, 200, "{audit:?}");
    let entries = audit.json["entries"].as_array().unwrap();
    assert!(
        entries
            .iter()
            .any(|e| e["actor"] == "reviewer" && e["reason"] == "confirmed sanctions match"),
        "{audit:?}"
    );
    app.stop().await;
}

#[tokio::test]
async fn with_four_eyes_an_unfreeze_waits_for_a_second_key() {
    let app = spawn_app_with_four_eyes().await;
    let decision = app
        .deliver_as(
            "status-updated-approved-full.json",
            "sess-a",
            "alice",
            now() - 20,
        )
        .await;
    assert_eq!(decision, "approve");
    // Freezing needs one person, even with four eyes.
    let frozen = app
        .api_json(
            Method::POST,
            "/v1/users/alice/freeze",
            Some(REVIEW_KEY),
            &json!({ "reason": "chargeback fraud report" }),
        )
        .await;
    assert_eq!(frozen.status, 200, "{frozen:?}");
    assert_eq!(frozen.json["user"]["status"], "frozen");
    let reason = json!({ "reason": "documents re-checked by phone" });

    let asked = app
        .api_json(
            Method::POST,
            "/v1/users/alice/unfreeze",
            Some(REVIEW_KEY),
            &reason,
        )
        .await;
    assert_eq!(asked.status, 202, "{asked:?}");
    let action = &asked.json["action"];
    assert_eq!(action["status"], "pending");
    assert_eq!(action["kind"], "unfreeze");
    assert_eq!(action["requested_by"], "reviewer");
    assert_eq!(asked.json["user"]["status"], "frozen", "not yet");
    let action_id = action["id"].as_str().unwrap().to_owned();

    let pending = app
        .api(Method::GET, "/v1/actions?status=pending", Some(READ_KEY))
        .await;
    assert_eq!(pending.status, 200, "{pending:?}");
    assert_eq!(pending.json["actions"][0]["id"], action_id.as_str());
    let one = app
        .api(
            Method::GET,
            &format!("/v1/actions/{action_id}"),
            Some(READ_KEY),
        )
        .await;
    assert_eq!((one.status, &one.json["status"]), (200, &json!("pending")));

    let approve = format!("/v1/actions/{action_id}/approve");
    let own = app.api(Method::POST, &approve, Some(REVIEW_KEY)).await;
    assert_eq!(own.status, 403, "the requester cannot approve: {own:?}");
    assert_eq!(own.json["code"], "four-eyes");
    let by_reader = app.api(Method::POST, &approve, Some(READ_KEY)).await;
    assert_eq!(by_reader.status, 403, "{by_reader:?}");
    assert_eq!(by_reader.json["code"], "forbidden");

    let second = app
        .api_json(
            Method::POST,
            &approve,
            Some(ADMIN_KEY),
            &json!({ "reason": "agreed" }),
        )
        .await;
    assert_eq!(second.status, 200, "{second:?}");
    assert_eq!(second.json["action"]["status"], "applied");
    assert_eq!(second.json["action"]["decided_by"], "admin");
    assert_eq!(second.json["action"]["decision_reason"], "agreed");
    assert_eq!(second.json["user"]["status"], "active");
    let user = app
        .api(Method::GET, "/v1/users/alice", Some(READ_KEY))
        .await;
    assert_eq!(user.json["status"], "active", "{user:?}");
    assert_eq!(user.json["verdict"], "active");

    let twice = app.api(Method::POST, &approve, Some(ADMIN_KEY)).await;
    assert_eq!(twice.status, 409, "no longer pending: {twice:?}");
    let none = app
        .api(Method::GET, "/v1/actions?status=pending", Some(READ_KEY))
        .await;
    assert_eq!(none.json["actions"], json!([]));
    app.stop().await;
}

#[tokio::test]
async fn with_four_eyes_a_case_resolved_to_lift_a_freeze_waits_and_can_be_rejected() {
    let app = spawn_app_with_four_eyes().await;
    let case_id = frozen_user_with_case(&app, "alice").await;
    // With the case open, a manual unfreeze is refused: the case is where the evidence is.
    let manual = app
        .api_json(
            Method::POST,
            "/v1/users/alice/unfreeze",
            Some(REVIEW_KEY),
            &json!({ "reason": "r" }),
        )
        .await;
    assert_eq!(manual.status, 409, "{manual:?}");

    let asked = app
        .api_json(
            Method::POST,
            &format!("/v1/cases/{case_id}/resolve"),
            Some(REVIEW_KEY),
            &json!({ "outcome": "approve", "reason": "false positive: different birth date" }),
        )
        .await;
    assert_eq!(asked.status, 202, "{asked:?}");
    assert_eq!(asked.json["case"]["status"], "pending_approval");
    assert_eq!(asked.json["action"]["kind"], "resolve_case");
    assert_eq!(asked.json["action"]["status"], "pending");
    assert_eq!(asked.json["user"]["status"], "frozen", "not yet");
    assert_eq!(count_cases(&app, "status=pending_approval").await, 1);
    let action_id = asked.json["action"]["id"].as_str().unwrap();

    let reject = format!("/v1/actions/{action_id}/reject");
    let own = app.api(Method::POST, &reject, Some(REVIEW_KEY)).await;
    assert_eq!(own.status, 403, "the requester cannot decide: {own:?}");
    let rejected = app.api(Method::POST, &reject, Some(ADMIN_KEY)).await;
    assert_eq!(rejected.status, 200, "{rejected:?}");
    assert_eq!(rejected.json["action"]["status"], "rejected");
    let user = app
        .api(Method::GET, "/v1/users/alice", Some(READ_KEY))
        .await;
    assert_eq!(user.json["status"], "frozen", "{user:?}");
    app.stop().await;
}

#[tokio::test]
async fn without_four_eyes_manual_freeze_and_unfreeze_apply_at_once() {
    let app = spawn_app_with_keys(None).await;
    let decision = app
        .deliver_as(
            "status-updated-approved-full.json",
            "sess-b",
            "bob",
            now() - 20,
        )
        .await;
    assert_eq!(decision, "approve");
    let reason = json!({ "reason": "chargeback fraud report" });
    let frozen = app
        .api_json(
            Method::POST,
            "/v1/users/bob/freeze",
            Some(REVIEW_KEY),
            &reason,
        )
        .await;
    assert_eq!(frozen.status, 200, "{frozen:?}");
    assert_eq!(frozen.json["user"]["status"], "frozen");
    assert_eq!(frozen.json["action"]["status"], "applied");

    let lifted = app
        .api_json(
            Method::POST,
            "/v1/users/bob/unfreeze",
            Some(REVIEW_KEY),
            &json!({ "reason": "report withdrawn" }),
        )
        .await;
    assert_eq!(lifted.status, 200, "{lifted:?}");
    assert_eq!(lifted.json["user"]["status"], "active");

    let blank = app
        .api_json(
            Method::POST,
            "/v1/users/bob/freeze",
            Some(REVIEW_KEY),
            &json!({ "reason": " " }),
        )
        .await;
    assert_eq!(blank.status, 422, "{blank:?}");
    let nobody = app
        .api_json(
            Method::POST,
            "/v1/users/nobody/freeze",
            Some(REVIEW_KEY),
            &reason,
        )
        .await;
    assert_eq!(nobody.status, 404, "{nobody:?}");

    let actions = app.api(Method::GET, "/v1/actions", Some(READ_KEY)).await;
    assert_eq!(
        actions.json["actions"].as_array().unwrap().len(),
        2,
        "{actions:?}"
    );
    app.stop().await;
}

#[tokio::test]
async fn the_audit_log_pages_in_chain_order() {
    let app = spawn_app_with_keys(None).await;
    let case_id = frozen_user_with_case(&app, "alice").await;
    app.api(
        Method::POST,
        &format!("/v1/cases/{case_id}/claim"),
        Some(REVIEW_KEY),
    )
    .await;
    app.api_json(
        Method::POST,
        &format!("/v1/cases/{case_id}/resolve"),
        Some(REVIEW_KEY),
        &json!({ "outcome": "freeze", "reason": "keep frozen" }),
    )
    .await;
    let all = app
        .api(Method::GET, "/v1/audit?limit=500", Some(READ_KEY))
        .await;
    let entries = all.json["entries"].as_array().unwrap().clone();
    assert!(entries.len() >= 2, "{all:?}");
    let seqs: Vec<i64> = entries.iter().map(|e| e["seq"].as_i64().unwrap()).collect();
    assert!(seqs.windows(2).all(|w| w[0] < w[1]), "{seqs:?}");
    for pair in entries.windows(2) {
        assert_eq!(pair[1]["prev_hash"], pair[0]["hash"], "chained");
    }

    let first = app
        .api(Method::GET, "/v1/audit?limit=1", Some(READ_KEY))
        .await;
    assert_eq!(first.json["entries"][0]["seq"], seqs[0]);
    let next = first.json["next"].as_i64().unwrap();
    let second = app
        .api(
            Method::GET,
            &format!("/v1/audit?after={next}&limit=1"),
            Some(READ_KEY),
        )
        .await;
    assert_eq!(second.json["entries"][0]["seq"], seqs[1]);
    app.stop().await;
}

#[tokio::test]
async fn deliveries_and_endpoints_are_listed_and_unknown_ones_are_404() {
    let app = spawn_app_with_keys(None).await;
    let deliveries = app.api(Method::GET, "/v1/deliveries", Some(READ_KEY)).await;
    assert_eq!(deliveries.status, 200, "{deliveries:?}");
    assert!(deliveries.json["deliveries"].is_array());
    let filtered = app
        .api(
            Method::GET,
            "/v1/deliveries?status=failed&endpoint=crm&user_id=alice&limit=10",
            Some(READ_KEY),
        )
        .await;
    assert_eq!(filtered.status, 200, "{filtered:?}");
    let bad = app
        .api(Method::GET, "/v1/deliveries?status=lost", Some(READ_KEY))
        .await;
    assert_eq!(bad.status, 400, "{bad:?}");
    let endpoints = app.api(Method::GET, "/v1/endpoints", Some(READ_KEY)).await;
    assert_eq!(endpoints.status, 200, "{endpoints:?}");
    assert!(endpoints.json["endpoints"].is_array());

    for (method, path, key) in [
        (Method::GET, "/v1/deliveries/dlv_nope", READ_KEY),
        (Method::POST, "/v1/deliveries/dlv_nope/retry", ADMIN_KEY),
        (Method::POST, "/v1/endpoints/nope/enable", ADMIN_KEY),
        (Method::GET, "/v1/actions/act_nope", READ_KEY),
        (Method::DELETE, "/v1/keys/key_nope", ADMIN_KEY),
    ] {
        let reply = app.api(method.clone(), path, Some(key)).await;
        assert_eq!(reply.status, 404, "{method} {path}: {reply:?}");
        assert_eq!(reply.json["code"], "not-found");
    }
    app.stop().await;
}

/// Issue 11, finding 2: an admin who asks to lift a freeze cannot approve it with a second key
/// of their own, nor with any key they made, nor with a key made after the request; a
/// different person's older key can.
#[tokio::test]
async fn four_eyes_means_two_people_not_two_keys() {
    let app = spawn_app_with_four_eyes().await;
    let case = frozen_user_with_case(&app, "mallory").await;
    let asked = app
        .api_json(
            Method::POST,
            &format!("/v1/cases/{case}/resolve"),
            Some(ADMIN_KEY),
            &json!({ "outcome": "unfreeze", "reason": "the hit is a namesake" }),
        )
        .await;
    assert_eq!(asked.status, 202, "{asked:?}");
    let approve = format!(
        "/v1/actions/{}/approve",
        asked.json["action"]["id"].as_str().unwrap()
    );

    let mut refused = Vec::new();
    for body in [
        json!({ "name": "admin's phone", "principal": "admin", "role": "admin" }),
        json!({ "name": "bob", "role": "review" }),
    ] {
        let made = app
            .api_json(Method::POST, "/v1/keys", Some(ADMIN_KEY), &body)
            .await;
        assert_eq!(made.status, 201, "{made:?}");
        refused.push(made.json["secret"].as_str().unwrap().to_owned());
    }
    // Made by the operator at the command line, but after the request.
    let late = riskhook::keys::generate("carol", "carol", riskhook_store::Role::Review);
    app.store
        .create_key(late.record, "cli", now() + 1)
        .await
        .unwrap();
    refused.push(late.secret);
    for key in &refused {
        let own = app.api(Method::POST, &approve, Some(key)).await;
        assert_eq!(own.status, 403, "{own:?}");
        assert_eq!(own.json["code"], "four-eyes");
    }
    let user = app
        .api(Method::GET, "/v1/users/mallory", Some(READ_KEY))
        .await;
    assert_eq!(user.json["status"], "frozen", "{user:?}");

    let second = app.api(Method::POST, &approve, Some(REVIEW_KEY)).await;
    assert_eq!(second.status, 200, "{second:?}");
    assert_eq!(second.json["user"]["status"], "active");
}

/// Every time in the API comes as Unix seconds (or milliseconds, for deliveries) and beside it
/// as RFC 3339 in UTC (issue 16, finding 7).
#[tokio::test]
async fn times_come_as_unix_seconds_and_rfc_3339() {
    let app = spawn_app_with_keys(None).await;
    let case_id = frozen_user_with_case(&app, "u-times").await;
    let case = app
        .api(Method::GET, &format!("/v1/cases/{case_id}"), Some(READ_KEY))
        .await;
    let opened = case.json["case"]["opened_at"].as_i64().unwrap();
    let text = case.json["case"]["opened_at_rfc3339"].as_str().unwrap();
    let parsed = humantime::parse_rfc3339(text).unwrap();
    let seconds = parsed
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    assert_eq!(i64::try_from(seconds).unwrap(), opened, "{text}");
    assert!(text.ends_with('Z'), "UTC: {text}");
    assert_eq!(case.json["case"]["resolved_at_rfc3339"], Value::Null);
    let user = &case.json["user"];
    assert!(user["first_seen_at_rfc3339"].as_str().is_some(), "{user}");
    let timeline = &case.json["timeline"][0];
    assert!(
        timeline["received_at_rfc3339"].as_str().is_some(),
        "{timeline}"
    );
    let audit = app.api(Method::GET, "/v1/audit", Some(READ_KEY)).await;
    assert!(audit.json["entries"][0]["at_rfc3339"].as_str().is_some());

    // Rules not evaluated come with their reason in words, beside the engine's text.
    let user = app
        .api(Method::GET, "/v1/users/u-times", Some(READ_KEY))
        .await;
    let not_evaluated = user.json["assessment"]["not_evaluated"].as_array().unwrap();
    assert!(!not_evaluated.is_empty(), "{user:?}");
    for n in not_evaluated {
        let reason = n["reason"].as_str().unwrap();
        assert!(
            reason.starts_with("Not evaluated: the session did not report"),
            "{reason}"
        );
        assert!(!reason.contains("unchecked signals"), "{reason}");
    }
}
