//! Backtests against a real database built from the fixtures: a candidate that lowers the
//! sanctions rule to a review and moves the freeze line from 70 to 80 gives exactly the
//! expected decision matrix, user statuses, queue and label scores, through the API and the
//! CLI alike; a broken candidate is refused with every problem (exit status 2, 422) and nothing
//! is written.

use reqwest::Method;
use serde_json::{Value, json};

use crate::helpers::riskhook;
use crate::helpers::{
    ADMIN_KEY, BROKEN_POLICY, REVIEW_KEY, TestApp, lenient_candidate, now, spawn_app_with_keys,
};

const SANCTIONS: &str = "status-updated-declined-sanctions.json";
const RISKY: &str = "status-updated-in-review-risky.json";
const APPROVED: &str = "status-updated-approved-full.json";

/// Two sanctions hits, a risky session, a clean one; people declined one sanctioned user and
/// approved the risky one.
async fn history(app: &TestApp) {
    let t = now() - 60;
    for (fixture, user) in [
        (SANCTIONS, "u-s1"),
        (SANCTIONS, "u-s2"),
        (RISKY, "u-r"),
        (APPROVED, "u-a"),
    ] {
        app.deliver_as(fixture, &format!("sess-{user}"), user, t)
            .await;
    }
    for (user, outcome) in [("u-s2", "decline"), ("u-r", "approve")] {
        let cases = app
            .api(
                Method::GET,
                &format!("/v1/cases?user_id={user}"),
                Some(REVIEW_KEY),
            )
            .await;
        let id = cases.json["cases"][0]["id"].as_str().unwrap().to_owned();
        let resolved = app
            .api_json(
                Method::POST,
                &format!("/v1/cases/{id}/resolve"),
                Some(REVIEW_KEY),
                &json!({"outcome": outcome, "reason": "looked at it"}),
            )
            .await;
        assert_eq!(resolved.status, 200, "{resolved:?}");
    }
}

/// The parts of a report that the candidate decides.
fn check_report(report: &Value) {
    let cell = |m: &str, from: &str, to: &str| {
        (
            report[m][from][to]["count"].as_u64().unwrap(),
            report[m][from][to]["examples"].clone(),
        )
    };
    assert_eq!(report["events"], 4, "{report:#}");
    assert_eq!(report["from_snapshots"], 4);
    assert_eq!(
        cell("decisions", "freeze", "review"),
        (2, json!(["u-s1", "u-s2"]))
    );
    assert_eq!(cell("decisions", "freeze", "freeze"), (1, json!(["u-r"])));
    assert_eq!(cell("decisions", "approve", "approve"), (1, json!(["u-a"])));
    assert_eq!(report["decisions_changed"], 2);
    assert_eq!(cell("users", "frozen", "in_review"), (1, json!(["u-s1"])));
    assert_eq!(cell("users", "declined", "declined"), (1, json!(["u-s2"])));
    assert_eq!(
        cell("users", "active", "active"),
        (2, json!(["u-a", "u-r"]))
    );
    assert_eq!(
        (
            report["users_changed"].as_u64(),
            report["users_total"].as_u64()
        ),
        (Some(1), Some(4))
    );
    assert_eq!(
        report["queue"],
        json!({"current": 1, "candidate": 1, "change": 0})
    );
    assert_eq!(
        report["rules"]["aml.sanctions_hit"],
        json!({"current": 2, "candidate": 2})
    );
    let labels = &report["labels"];
    assert_eq!(
        (labels["labelled_users"].as_u64(), labels["risky"].as_u64()),
        (Some(2), Some(1))
    );
    for policy in ["current", "candidate"] {
        let a = &labels[policy];
        assert_eq!(
            (
                &a["true_positives"],
                &a["false_positives"],
                &a["false_negatives"],
                &a["true_negatives"]
            ),
            (&json!(1), &json!(1), &json!(0), &json!(0)),
            "{policy}"
        );
        assert_eq!(
            (a["precision"].as_f64(), a["recall"].as_f64()),
            (Some(0.5), Some(1.0))
        );
    }
}

#[tokio::test]
async fn a_known_candidate_gives_the_expected_report_through_the_api() {
    let app = spawn_app_with_keys(None).await;
    history(&app).await;
    let events_before = app.store.count_events().await.unwrap();
    let head_before = app.store.audit_head().await.unwrap().map(|h| h.seq);

    let reply = app
        .api_json(
            Method::POST,
            "/v1/policy/backtest",
            Some(ADMIN_KEY),
            &json!({"policy": lenient_candidate()}),
        )
        .await;
    assert_eq!(reply.status, 200, "{reply:?}");
    check_report(&reply.json);

    // A window that ends before the history replays nothing.
    let empty = app
        .api_json(
            Method::POST,
            "/v1/policy/backtest",
            Some(ADMIN_KEY),
            &json!({"policy": lenient_candidate(), "until": "2000-01-01T00:00:00Z"}),
        )
        .await;
    assert_eq!((empty.status, &empty.json["events"]), (200, &json!(0)));

    let reviewer = app
        .api_json(
            Method::POST,
            "/v1/policy/backtest",
            Some(REVIEW_KEY),
            &json!({"policy": lenient_candidate()}),
        )
        .await;
    assert_eq!(reviewer.status, 403);
    let broken = app
        .api_json(
            Method::POST,
            "/v1/policy/backtest",
            Some(ADMIN_KEY),
            &json!({"policy": BROKEN_POLICY}),
        )
        .await;
    assert_eq!(broken.status, 422, "{broken:?}");
    let detail = broken.json["detail"].as_str().unwrap();
    assert!(
        detail.contains("first.bad") && detail.contains("second.bad"),
        "{detail}"
    );
    let bad_time = app
        .api_json(
            Method::POST,
            "/v1/policy/backtest",
            Some(ADMIN_KEY),
            &json!({"policy": lenient_candidate(), "since": "yesterday"}),
        )
        .await;
    assert_eq!(bad_time.status, 422, "{bad_time:?}");

    assert_eq!(app.store.count_events().await.unwrap(), events_before);
    assert_eq!(
        app.store.audit_head().await.unwrap().map(|h| h.seq),
        head_before,
        "nothing written"
    );
}

#[tokio::test]
async fn the_cli_reports_the_same_and_refuses_a_broken_candidate_with_status_2() {
    let app = spawn_app_with_keys(None).await;
    history(&app).await;
    let dir = tempfile::tempdir().unwrap();
    let good = dir.path().join("candidate.toml");
    std::fs::write(&good, lenient_candidate()).unwrap();
    let bad = dir.path().join("broken.toml");
    std::fs::write(&bad, BROKEN_POLICY).unwrap();

    let run = |file: &std::path::Path, json: bool| {
        let mut command = riskhook();
        command
            .args(["policy", "backtest"])
            .arg(file)
            .env("RISKHOOK_DATABASE_URL", &app.db_url);
        if json {
            command.arg("--json");
        }
        command.output().unwrap()
    };
    let out = run(&good, true);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    check_report(&report);

    let text = run(&good, false);
    assert!(text.status.success());
    let text = String::from_utf8(text.stdout).unwrap();
    assert!(
        text.contains("freeze → review           2  e.g. u-s1, u-s2"),
        "{text}"
    );
    assert!(text.contains("precision 0.500 recall 1.000"), "{text}");

    let events_before = app.store.count_events().await.unwrap();
    let refused = run(&bad, false);
    assert_eq!(refused.status.code(), Some(2), "{refused:?}");
    let stderr = String::from_utf8_lossy(&refused.stderr);
    for needle in ["first.bad", "second.bad", "line"] {
        assert!(stderr.contains(needle), "{needle}: {stderr}");
    }
    assert!(refused.stdout.is_empty());
    assert_eq!(app.store.count_events().await.unwrap(), events_before);

    // No database where the configuration points: refused, and none is created.
    let missing = dir.path().join("missing.db");
    let none = riskhook()
        .args(["policy", "backtest"])
        .arg(&good)
        .env(
            "RISKHOOK_DATABASE_URL",
            format!("sqlite://{}", missing.display()),
        )
        .output()
        .unwrap();
    assert_eq!(none.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&none.stderr).contains("no database at"));
    assert!(!missing.exists());
}
