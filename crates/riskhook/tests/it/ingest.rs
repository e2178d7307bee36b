//! `POST /webhooks/didit` over real HTTP: every event type accepted and stored byte for byte,
//! every rejection with its status and problem body, and exactly-once under concurrency.

use std::sync::Arc;

use riskhook_didit::signature::{Key, Secret, SignedHeaders, sign_simple};
use serde_json::Value;

use crate::helpers::{
    SECRET, control_characters_are_refused_alike, fixture, fixture_names, keys_config, now,
    signed_headers, spawn_app, spawn_app_with, spawn_app_with_config, test_config,
};

fn webhook_type_of(body: &[u8]) -> String {
    let v: Value = serde_json::from_slice(body).unwrap();
    v.get("webhook_type")
        .or_else(|| v.get("event"))
        .and_then(Value::as_str)
        .unwrap()
        .to_owned()
}

#[tokio::test]
async fn every_fixture_event_type_is_accepted_and_stored_as_received() {
    let app = spawn_app().await;
    let names = fixture_names();
    assert!(names.len() >= 15, "fixtures missing: {names:?}");
    let t = now();
    for (i, name) in names.iter().enumerate() {
        // Distinct timestamps: fixtures about one subject must not share a content key.
        let timestamp = t - i64::try_from(i).unwrap();
        let body = riskhook::delivery::restamp(&fixture(name), timestamp);
        let reply = app.post_signed(&body, timestamp).await;
        assert_eq!(reply.status, 200, "{name}: {reply:?}");
        assert_eq!(reply.json["status"], "accepted", "{name}: {reply:?}");
        assert_eq!(reply.json["recognised"], true, "{name}");
        let expected_type = webhook_type_of(&body);
        assert_eq!(reply.json["webhook_type"], expected_type.as_str(), "{name}");
        let id = reply.json["id"].as_str().unwrap();
        let stored = app.store.event(id).await.unwrap().unwrap();
        assert_eq!(stored.raw, body, "{name}: raw bytes must be kept exactly");
        assert_eq!(stored.webhook_type, expected_type);
        assert_eq!(stored.key_id, "default");
        assert_eq!(stored.scheme, "raw");
        assert!(stored.body_trusted);
    }
    assert_eq!(app.store.count_events().await.unwrap(), names.len() as u64);
    app.stop().await;
}

/// One rejection: the request, and what must come back.
struct Case {
    name: &'static str,
    body: Vec<u8>,
    headers: Vec<(&'static str, String)>,
    status: u16,
    code: &'static str,
}

fn signed(name: &'static str, body: Vec<u8>, status: u16, code: &'static str) -> Case {
    let headers = signed_headers(&body, now(), &[]);
    Case {
        name,
        body,
        headers,
        status,
        code,
    }
}

fn valid_body(t: i64) -> Vec<u8> {
    riskhook::delivery::restamp(&fixture("status-updated-approved.json"), t)
}

#[tokio::test]
async fn every_rejection_has_its_status_and_problem_body_and_stores_nothing() {
    let app = spawn_app_with(&[("RISKHOOK_DIDIT__MAX_BODY_BYTES", "65536")]).await;
    let t = now();
    let body = valid_body(t);
    let forged_key = Key::new("x", &Secret::new("not-the-secret")).unwrap();
    let deep = format!(
        "{{\"webhook_type\":\"status.updated\",\"x\":{}{}}}",
        "[".repeat(1000),
        "]".repeat(1000)
    )
    .into_bytes();
    let mut invalid_utf8 = br#"{"webhook_type":"status.updated","name":"Jos"#.to_vec();
    invalid_utf8.extend_from_slice(&[0xff, 0xfe]);
    invalid_utf8.extend_from_slice(b"\"}");
    let huge = {
        let mut b = br#"{"webhook_type":"status.updated","pad":""#.to_vec();
        b.extend(std::iter::repeat_n(b'a', 70_000));
        b.extend_from_slice(b"\"}");
        b
    };
    let stale = t - 301;
    let cases = vec![
        Case {
            name: "no signature headers",
            body: body.clone(),
            headers: vec![("X-Timestamp", t.to_string())],
            status: 401,
            code: "missing-signature",
        },
        Case {
            name: "forged signature",
            body: body.clone(),
            headers: SignedHeaders::sign(&forged_key, &body, t)
                .pairs()
                .into_iter()
                .map(|(n, v)| (n, v.to_owned()))
                .collect(),
            status: 401,
            code: "bad-signature",
        },
        Case {
            name: "signature not hex",
            body: body.clone(),
            headers: vec![
                ("X-Timestamp", t.to_string()),
                ("X-Signature", "sha256=abc".to_owned()),
            ],
            status: 401,
            code: "malformed-signature",
        },
        Case {
            name: "tampered body",
            body: {
                let mut b = body.clone();
                let pos = b.iter().position(|&c| c == b'A').unwrap();
                b[pos] = b'D';
                b
            },
            headers: signed_headers(&body, t, &[]),
            status: 401,
            code: "bad-signature",
        },
        Case {
            name: "no timestamp",
            body: body.clone(),
            headers: signed_headers(&body, t, &["X-Timestamp"]),
            status: 401,
            code: "missing-timestamp",
        },
        Case {
            name: "timestamp not a number",
            body: body.clone(),
            headers: {
                let mut h = signed_headers(&body, t, &["X-Timestamp"]);
                h.push(("X-Timestamp", "Tue, 24 Nov 2026".to_owned()));
                h
            },
            status: 401,
            code: "malformed-timestamp",
        },
        Case {
            name: "stale timestamp",
            body: valid_body(stale),
            headers: signed_headers(&valid_body(stale), stale, &[]),
            status: 401,
            code: "stale-timestamp",
        },
        Case {
            name: "timestamp from the future",
            // Well past the 300 s window: `t` is read before the cases before this one are
            // sent, so on a busy machine the server's clock may be seconds ahead of it (the
            // window's edge is tested with a fixed clock in riskhook-didit).
            body: valid_body(t + 600),
            headers: signed_headers(&valid_body(t + 600), t + 600, &[]),
            status: 401,
            code: "stale-timestamp",
        },
        Case {
            name: "header timestamp moved to replay an old body",
            body: valid_body(t - 3600),
            headers: signed_headers(&valid_body(t - 3600), t, &[]),
            status: 401,
            code: "timestamp-mismatch",
        },
        Case {
            name: "only X-Signature-Simple, which is off by default",
            body: body.clone(),
            headers: signed_headers(&body, t, &["X-Signature", "X-Signature-V2"]),
            status: 401,
            code: "missing-signature",
        },
        signed(
            "signed text that is not JSON",
            b"hello".to_vec(),
            400,
            "invalid-json",
        ),
        signed("signed invalid UTF-8", invalid_utf8, 400, "invalid-json"),
        signed("signed 1000-deep nesting", deep, 400, "invalid-json"),
        signed(
            "signed JSON array",
            b"[]".to_vec(),
            422,
            "not-a-didit-event",
        ),
        signed(
            "signed object without a type",
            br#"{"hello":1}"#.to_vec(),
            422,
            "not-a-didit-event",
        ),
        signed("body over the limit", huge, 413, "body-too-large"),
    ];
    for case in cases {
        let reply = app.post_with_headers(case.body, &case.headers).await;
        assert_eq!(reply.status, case.status, "{}: {reply:?}", case.name);
        assert_eq!(
            reply.content_type.as_deref(),
            Some("application/problem+json"),
            "{}",
            case.name
        );
        assert_eq!(reply.json["code"], case.code, "{}: {reply:?}", case.name);
        assert_eq!(reply.json["status"], case.status, "{}", case.name);
        assert!(reply.json["detail"].as_str().is_some_and(|d| !d.is_empty()));
        let text = reply.json.to_string();
        assert!(!text.contains(SECRET), "{}: secret leaked", case.name);
    }
    assert_eq!(
        app.store.count_events().await.unwrap(),
        0,
        "nothing rejected is stored"
    );
    app.stop().await;
}

/// SQLite could store every one of these; it refuses them all the same, so that both backends
/// answer alike (services' `postgres_text` runs the same checks on PostgreSQL).
#[tokio::test]
async fn control_characters_in_ids_urls_and_typed_text_get_a_4xx_and_change_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let app = spawn_app_with_config(keys_config(dir.path(), "")).await;
    control_characters_are_refused_alike(&app).await;
    app.stop().await;
}

#[tokio::test]
async fn fifty_identical_deliveries_at_once_store_one_event() {
    let app = Arc::new(spawn_app().await);
    let t = now();
    let body = Arc::new(valid_body(t));
    let barrier = Arc::new(tokio::sync::Barrier::new(50));
    let mut tasks = Vec::new();
    for _ in 0..50 {
        let (app, body, barrier) = (app.clone(), body.clone(), barrier.clone());
        tasks.push(tokio::spawn(async move {
            barrier.wait().await;
            app.post_signed(&body, t).await
        }));
    }
    let mut statuses = Vec::new();
    for task in tasks {
        let reply = task.await.unwrap();
        assert_eq!(reply.status, 200, "{reply:?}");
        statuses.push(reply.json["status"].as_str().unwrap().to_owned());
    }
    let accepted = statuses.iter().filter(|s| *s == "accepted").count();
    let duplicates = statuses.iter().filter(|s| *s == "duplicate").count();
    assert_eq!((accepted, duplicates), (1, 49));
    assert_eq!(app.store.count_events().await.unwrap(), 1);
    Arc::into_inner(app).unwrap().stop().await;
}

#[tokio::test]
async fn a_retry_with_a_new_event_id_is_a_duplicate_by_content() {
    let app = spawn_app().await;
    let t = now();
    let first = valid_body(t);
    let mut retry: Value = serde_json::from_slice(&first).unwrap();
    retry["event_id"] = Value::from("11111111-0000-4000-8000-000000000001");
    let retry = serde_json::to_vec(&retry).unwrap();
    let a = app.post_signed(&first, t).await;
    let b = app.post_signed(&retry, t).await;
    assert_eq!(a.json["status"], "accepted");
    assert_eq!(b.json["status"], "duplicate");
    assert_eq!(
        b.json["id"], a.json["id"],
        "the duplicate names the stored event"
    );
    assert_eq!(app.store.count_events().await.unwrap(), 1);
    app.stop().await;
}

#[tokio::test]
async fn a_v2_only_delivery_verifies_after_reencoding_and_records_its_scheme() {
    let app = spawn_app().await;
    let t = now();
    let canonical = valid_body(t);
    // What a proxy might forward: same JSON, other whitespace and escapes, so only V2 can match.
    let v: Value = serde_json::from_slice(&canonical).unwrap();
    let reencoded = serde_json::to_vec_pretty(&v).unwrap();
    let v2 = SignedHeaders::sign(&crate::helpers::key(), &canonical, t)
        .signature_v2
        .unwrap();
    let reply = app
        .post_with_headers(
            reencoded.clone(),
            &[("X-Timestamp", t.to_string()), ("X-Signature-V2", v2)],
        )
        .await;
    assert_eq!(reply.status, 200, "{reply:?}");
    assert_eq!(reply.json["scheme"], "v2");
    let stored = app
        .store
        .event(reply.json["id"].as_str().unwrap())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(stored.raw, reencoded, "the bytes as received are stored");
    assert_eq!(stored.scheme, "v2");
    app.stop().await;
}

#[tokio::test]
async fn simple_signatures_are_accepted_only_when_enabled_and_marked_untrusted() {
    let app = spawn_app_with(&[("RISKHOOK_DIDIT__ALLOW_SIMPLE_SIGNATURE", "true")]).await;
    let t = now();
    let body = valid_body(t);
    let simple = sign_simple(&crate::helpers::key(), &body);
    let reply = app
        .post_with_headers(
            body,
            &[
                ("X-Timestamp", t.to_string()),
                ("X-Signature-Simple", simple),
            ],
        )
        .await;
    assert_eq!(reply.status, 200, "{reply:?}");
    assert_eq!(reply.json["scheme"], "simple");
    let stored = app
        .store
        .event(reply.json["id"].as_str().unwrap())
        .await
        .unwrap()
        .unwrap();
    assert!(
        !stored.body_trusted,
        "decision data is not authenticated by Simple"
    );
    app.stop().await;
}

#[tokio::test]
async fn a_keyring_verifies_with_every_key_and_records_which() {
    let dir = tempfile::tempdir().unwrap();
    let config_path = dir.path().join("riskhook.toml");
    std::fs::write(
        &config_path,
        "[[didit.keys]]\nid = \"new\"\nsecret_env = \"T_NEW\"\n\n[[didit.keys]]\nid = \"old\"\nsecret_env = \"T_OLD\"\n",
    )
    .unwrap();
    let db = format!("sqlite://{}", dir.path().join("db.sqlite").display());
    let config = riskhook::config::Config::load_with_env(
        Some(&config_path),
        [
            ("T_NEW", "new-secret"),
            ("T_OLD", "old-secret"),
            ("RISKHOOK_LISTEN", "127.0.0.1:0"),
            ("RISKHOOK_DATABASE_URL", db.as_str()),
        ]
        .map(|(k, v)| (k.to_owned(), v.to_owned())),
    )
    .unwrap();
    let app = spawn_app_with_config(config).await;
    let t = now();
    for (i, (secret, id)) in [("old-secret", "old"), ("new-secret", "new")]
        .into_iter()
        .enumerate()
    {
        let key = Key::new("k", &Secret::new(secret)).unwrap();
        let ts = t - i64::try_from(i).unwrap();
        let body = valid_body(ts);
        let headers: Vec<(&str, String)> = SignedHeaders::sign(&key, &body, ts)
            .pairs()
            .into_iter()
            .map(|(n, v)| (n, v.to_owned()))
            .collect();
        let reply = app.post_with_headers(body, &headers).await;
        assert_eq!(reply.status, 200, "{reply:?}");
        assert_eq!(reply.json["key_id"], id);
    }
    app.stop().await;
    let _ = test_config; // keep the helper in use across test modules
}

#[tokio::test]
async fn an_unknown_event_type_is_stored_but_flagged_as_not_recognised() {
    let app = spawn_app().await;
    let body = br#"{"event_id":"a0a0a0a0-0000-4000-8000-000000000009","session_id":"s-9","timestamp":0,"webhook_type":"kyc.future_thing"}"#;
    let reply = app.deliver(body).await;
    assert_eq!(reply.status, 200, "{reply:?}");
    assert_eq!(reply.json["status"], "accepted");
    assert_eq!(reply.json["recognised"], false);
    app.stop().await;
}

#[tokio::test]
async fn health_and_readiness_answer() {
    let app = spawn_app().await;
    let health = app.get("/healthz").await;
    assert_eq!(
        (health.status, health.json["status"].as_str()),
        (200, Some("ok"))
    );
    let ready = app.get("/readyz").await;
    assert_eq!(ready.status, 200);
    assert_eq!(ready.json["checks"]["database"], "ok");
    app.stop().await;
}
