//! Reconciliation with Didit, end to end: the real service on a port-0 listener, the local
//! Didit API simulator (`didit_sim`) that lists attempts and re-delivers signed webhooks to it,
//! and `riskhook reconcile` run as a library call, as `serve`'s periodic job and as the binary.

use std::collections::HashSet;
use std::time::Duration;

use riskhook::config::{Check, ReconcileConfig};
use riskhook::reconcile::{self, ApiError, DiditApi, Options, Report, RunError};
use riskhook_didit::payload::DiditEvent;
use riskhook_store::Store;
use serde_json::{Value, json};

use crate::didit_sim::DiditSim;
use crate::helpers::riskhook;
use crate::helpers::{SECRET, TestApp, fixture, now, spawn_app, spawn_app_with};

const API_KEY: &str = "didit-api-key-for-tests";
const DESTINATION: &str = "11111111-2222-3333-4444-555555555555";

/// A distinct session event `n`: its own event id, session and user.
fn event(n: u32, status: &str, timestamp: i64) -> Vec<u8> {
    let mut body: Value =
        serde_json::from_slice(&fixture("status-updated-in-progress.json")).unwrap();
    body["event_id"] = json!(format!("00000000-0000-4000-8000-{n:012}"));
    body["session_id"] = json!(format!("sess-{n}"));
    body["vendor_data"] = json!(format!("user-{n}"));
    body["status"] = json!(status);
    body["timestamp"] = json!(timestamp);
    body["created_at"] = json!(timestamp);
    serde_json::to_vec(&body).unwrap()
}

fn config_env(sim: &DiditSim, api_key: &str, extra: &[(&str, &str)]) -> Vec<(String, String)> {
    let mut env = vec![
        ("RISKHOOK_DIDIT__RECONCILE__DESTINATION", DESTINATION),
        ("RISKHOOK_DIDIT__RECONCILE__API_KEY", api_key),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v.to_owned()))
    .collect::<Vec<_>>();
    env.push((
        "RISKHOOK_DIDIT__RECONCILE__BASE_URL".to_owned(),
        sim.base_url(),
    ));
    env.extend(
        extra
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned())),
    );
    env
}

fn config(sim: &DiditSim, extra: &[(&str, &str)]) -> ReconcileConfig {
    ReconcileConfig::load_with_env(None, config_env(sim, API_KEY, extra)).unwrap()
}

async fn reconcile_with(
    app: &TestApp,
    config: &ReconcileConfig,
    check: Check,
    dry_run: bool,
) -> Result<Report, RunError> {
    reconcile_at(app, config, check, dry_run, now() + 1).await
}

/// A run whose `now` is `until`: time is passed in, so a test can be a day later.
async fn reconcile_at(
    app: &TestApp,
    config: &ReconcileConfig,
    check: Check,
    dry_run: bool,
    until: i64,
) -> Result<Report, RunError> {
    let api = DiditApi::new(config).unwrap();
    let options = Options {
        since: until - 48 * 3600,
        until,
        check,
        dry_run,
    };
    reconcile::run(
        app.store.as_ref(),
        &api,
        config,
        options,
        "cli",
        &mut HashSet::new(),
    )
    .await
}

async fn stored(store: &dyn Store, body: &[u8]) -> bool {
    let event = DiditEvent::from_slice(body).unwrap();
    store
        .find_event(event.delivery_key(), &event.content_key())
        .await
        .unwrap()
        .is_some()
}

async fn audit_actions(store: &dyn Store) -> Vec<(String, String, Option<String>, Value)> {
    store
        .audit(0, 10_000)
        .await
        .unwrap()
        .into_iter()
        .filter(|e| e.action.starts_with("reconcile."))
        .map(|e| {
            let after = e
                .after
                .as_deref()
                .map_or(Value::Null, |a| serde_json::from_str(a).unwrap());
            (e.action, e.actor, e.reason, after)
        })
        .collect()
}

/// The story the feature exists for: deliveries Didit gave up on are found, resent once each
/// (the newest attempt of each event), arrive signed through intake and are stored once; an
/// attempt Didit counts as failed but riskhook stored is left alone; a second run does nothing.
#[tokio::test]
async fn missed_deliveries_are_resent_once_and_stored_once() {
    let app = spawn_app().await;
    let sim = DiditSim::start(API_KEY, DESTINATION, SECRET, &app.webhook_url()).await;
    let t = now();
    // Delivered and acknowledged.
    let delivered = event(1, "Approved", t - 600);
    assert_eq!(sim.deliver(&delivered).await.1, Some(200));
    // Missed: the first attempt got no answer, the retry a 503.
    let missed = event(2, "Approved", t - 500);
    sim.record_attempt(&missed, None, t - 500);
    let missed_retry = sim.record_attempt(&missed, Some(503), t - 440);
    // Missed, and without an event_id (found by its content key).
    let mut no_id: Value = serde_json::from_slice(&event(3, "Declined", t - 400)).unwrap();
    no_id.as_object_mut().unwrap().remove("event_id");
    let no_id = serde_json::to_vec(&no_id).unwrap();
    sim.record_attempt(&no_id, Some(502), t - 400);
    // Stored after all: riskhook committed it, but its answer never reached Didit.
    let late = event(4, "Approved", t - 300);
    assert_eq!(app.deliver(&late).await.status, 200);
    sim.record_attempt(&late, None, t - 300);
    assert_eq!(app.store.count_events().await.unwrap(), 2);
    let config = config(&sim, &[]);

    let dry = reconcile_with(&app, &config, Check::Failed, true)
        .await
        .unwrap();
    assert_eq!(
        (dry.attempts, dry.unacknowledged, dry.checked, dry.stored),
        (5, 4, 4, 1)
    );
    assert_eq!(dry.missing.len(), 2);
    assert!(dry.missing.iter().all(|m| m.outcome == "not_resent"));
    assert!(sim.resent().is_empty(), "a dry run resends nothing");
    assert_eq!(app.store.count_events().await.unwrap(), 2);

    let report = reconcile_with(&app, &config, Check::Failed, false)
        .await
        .unwrap();
    assert_eq!(report.stored, 1, "{report:?}");
    let outcomes: Vec<(&str, Option<&str>)> = report
        .missing
        .iter()
        .map(|m| (m.outcome, m.event_id.as_deref()))
        .collect();
    assert_eq!(
        outcomes,
        [
            ("not_resent", None),
            ("resent", Some("00000000-0000-4000-8000-000000000002")),
        ]
    );
    assert!(
        report.missing[0]
            .detail
            .as_deref()
            .unwrap()
            .contains("no event_id"),
        "a resend without an event_id could not be deduplicated"
    );
    assert_eq!(sim.resent(), [missed_retry], "the newest attempt, once");
    assert_eq!(app.store.count_events().await.unwrap(), 3);
    for body in [&delivered, &missed, &late] {
        assert!(stored(app.store.as_ref(), body).await);
    }
    assert!(!stored(app.store.as_ref(), &no_id).await);
    let text = report.to_text();
    assert!(
        text.contains("2 events missing (1 resent, 0 resends failed)"),
        "{text}"
    );

    let again = reconcile_with(&app, &config, Check::Failed, false)
        .await
        .unwrap();
    assert_eq!(
        (again.attempts, again.unacknowledged, again.stored),
        (6, 4, 3),
        "{again:?}"
    );
    assert_eq!(again.missing.len(), 1);
    assert_eq!(again.missing[0].outcome, "not_resent");
    assert_eq!(sim.resent().len(), 1, "idempotent: nothing resent twice");
    assert_eq!(app.store.count_events().await.unwrap(), 3);

    let audit = audit_actions(app.store.as_ref()).await;
    assert_eq!(audit.len(), 3, "one entry per run, the dry one included");
    assert!(
        audit
            .iter()
            .all(|(action, actor, _, _)| action == "reconcile.run" && actor == "cli")
    );
    assert_eq!(audit[0].3["dry_run"], true);
    assert_eq!(
        audit[1].3["missing"][1]["event_id"],
        "00000000-0000-4000-8000-000000000002"
    );
    assert_eq!(audit[1].3["missing"][1]["outcome"], "resent");
    app.stop().await;
}

/// A missed `In Progress` whose session has since been approved is reported, not resent: the
/// resend would carry a fresh timestamp and move the session back.
#[tokio::test]
async fn a_missed_event_is_not_resent_when_it_would_move_its_session_back() {
    let app = spawn_app().await;
    let sim = DiditSim::start(API_KEY, DESTINATION, SECRET, &app.webhook_url()).await;
    let t = now();
    let in_progress = event(50, "In Progress", t - 900);
    sim.record_attempt(&in_progress, None, t - 900);
    let mut approved: Value = serde_json::from_slice(&event(51, "Approved", t)).unwrap();
    approved["session_id"] = json!("sess-50");
    approved["vendor_data"] = json!("user-50");
    assert_eq!(
        sim.deliver(&serde_json::to_vec(&approved).unwrap()).await.1,
        Some(200)
    );
    // A missed In Progress of a session nobody stored yet is resent.
    let other = event(52, "In Progress", t - 800);
    sim.record_attempt(&other, Some(503), t - 800);

    let report = reconcile_with(&app, &config(&sim, &[]), Check::Failed, false)
        .await
        .unwrap();
    let held = report
        .missing
        .iter()
        .find(|m| m.session_id.as_deref() == Some("sess-50"))
        .unwrap();
    assert_eq!(held.outcome, "not_resent");
    assert!(
        held.detail
            .as_deref()
            .unwrap()
            .contains("would move it back"),
        "{held:?}"
    );
    assert_eq!(report.resent(), 1, "{report:?}");
    let session = app.store.session("sess-50").await.unwrap().unwrap();
    assert_eq!(session.status.as_str(), "Approved");
    assert!(stored(app.store.as_ref(), &other).await);
    assert!(!stored(app.store.as_ref(), &in_progress).await);
    app.stop().await;
}

/// Every page is followed (Didit's `count` stops at 100), and a 429 waits for Retry-After.
#[tokio::test]
async fn every_page_is_read_and_rate_limits_are_waited_out() {
    let app = spawn_app().await;
    let sim = DiditSim::start(API_KEY, DESTINATION, SECRET, &app.webhook_url()).await;
    let t = now();
    // The oldest attempt, on the last page, is the missed one.
    let missed = event(500, "Approved", t - 7200);
    let missed_attempt = sim.record_attempt(&missed, Some(500), t - 7200);
    for i in 0..130 {
        sim.record_attempt(
            &event(600 + i, "In Progress", t - 3600),
            Some(200),
            t - 3600 + i64::from(i),
        );
    }
    sim.rate_limit_next(2, 1);
    let report = reconcile_with(&app, &config(&sim, &[]), Check::Failed, false)
        .await
        .unwrap();
    assert_eq!(report.attempts, 131);
    assert_eq!(report.unacknowledged, 1);
    assert_eq!(report.resent(), 1, "{report:?}");
    assert_eq!(sim.resent(), [missed_attempt]);
    assert!(stored(app.store.as_ref(), &missed).await);
    let lists: Vec<String> = sim
        .requests()
        .into_iter()
        .filter(|r| r.starts_with("GET") && r.contains("/deliveries/?"))
        .collect();
    assert_eq!(lists.len(), 4, "2 throttled, then 2 pages: {lists:?}");
    assert!(lists[3].contains("offset=100"), "{lists:?}");
    app.stop().await;
}

/// `check = "all"` (after restoring a backup) also looks at acknowledged attempts, and
/// `max_resends` bounds one run; the rest waits for the next.
#[tokio::test]
async fn check_all_finds_acknowledged_events_lost_from_the_database() {
    let app = spawn_app().await;
    let sim = DiditSim::start(API_KEY, DESTINATION, SECRET, &app.webhook_url()).await;
    let t = now();
    let lost: Vec<Vec<u8>> = (0..3)
        .map(|i| event(700 + i, "Approved", t - 900 + i64::from(i)))
        .collect();
    for (i, body) in lost.iter().enumerate() {
        sim.record_attempt(body, Some(200), t - 900 + i64::try_from(i).unwrap());
    }
    let config = config(&sim, &[("RISKHOOK_DIDIT__RECONCILE__MAX_RESENDS", "2")]);
    let failed_only = reconcile_with(&app, &config, Check::Failed, false)
        .await
        .unwrap();
    assert_eq!((failed_only.checked, failed_only.missing.len()), (0, 0));

    let all = reconcile_with(&app, &config, Check::All, false)
        .await
        .unwrap();
    assert_eq!(all.checked, 3);
    assert_eq!(all.resent(), 2);
    let held = &all.missing[2];
    assert_eq!(held.outcome, "not_resent");
    assert!(
        held.detail.as_deref().unwrap().contains("max_resends"),
        "{held:?}"
    );
    let next = reconcile_with(&app, &config, Check::All, false)
        .await
        .unwrap();
    assert_eq!(next.resent(), 1);
    for body in &lost {
        assert!(stored(app.store.as_ref(), body).await);
    }
    app.stop().await;
}

/// API failures end the run with what Didit said, audited as `reconcile.failed`; transient 5xx
/// are retried.
#[tokio::test]
async fn api_errors_fail_the_run_clearly_and_are_audited() {
    let app = spawn_app().await;
    let sim = DiditSim::start(API_KEY, DESTINATION, SECRET, &app.webhook_url()).await;
    let t = now();
    let missed = event(800, "Approved", t - 60);
    sim.record_attempt(&missed, None, t - 60);

    let wrong_key =
        ReconcileConfig::load_with_env(None, config_env(&sim, "not-the-key", &[])).unwrap();
    let error = reconcile_with(&app, &wrong_key, Check::Failed, false)
        .await
        .unwrap_err();
    assert!(
        matches!(
            error,
            RunError::Api(ApiError::Unauthorized { status: 401, .. })
        ),
        "{error:?}"
    );
    let message = error.to_string();
    assert!(message.contains("refused the API key (401)"), "{message}");
    assert!(message.contains("Invalid API key."), "{message}");
    assert!(
        !message.contains("not-the-key"),
        "the key never shows: {message}"
    );

    let unknown = ReconcileConfig::load_with_env(
        None,
        config_env(
            &sim,
            API_KEY,
            &[(
                "RISKHOOK_DIDIT__RECONCILE__DESTINATION",
                "99999999-0000-0000-0000-000000000000",
            )],
        ),
    )
    .unwrap();
    let error = reconcile_with(&app, &unknown, Check::Failed, false)
        .await
        .unwrap_err();
    assert!(error.to_string().contains("(404)"), "{error}");

    // Five 502s in a row: every try of the first request fails.
    sim.fail_next(5, 502);
    let error = reconcile_with(&app, &config(&sim, &[]), Check::Failed, false)
        .await
        .unwrap_err();
    assert!(error.to_string().contains("answered 502"), "{error}");

    // Two 500s: retried, and the run completes.
    sim.fail_next(2, 500);
    let report = reconcile_with(&app, &config(&sim, &[]), Check::Failed, false)
        .await
        .unwrap();
    assert_eq!(report.resent(), 1);
    assert!(stored(app.store.as_ref(), &missed).await);

    let audit = audit_actions(app.store.as_ref()).await;
    let actions: Vec<&str> = audit.iter().map(|(a, ..)| a.as_str()).collect();
    assert_eq!(
        actions,
        [
            "reconcile.failed",
            "reconcile.failed",
            "reconcile.failed",
            "reconcile.run"
        ]
    );
    assert!(
        audit[0]
            .2
            .as_deref()
            .unwrap()
            .contains("refused the API key")
    );
    app.stop().await;
}

/// Sessions stuck in a non-final status are reported with Didit's own status, which tells a
/// status change that never arrived from a user who simply has not finished.
#[tokio::test]
async fn stuck_sessions_are_reported_with_didits_status() {
    let app = spawn_app().await;
    let sim = DiditSim::start(API_KEY, DESTINATION, SECRET, &app.webhook_url()).await;
    let t = now();
    for (n, status) in [
        (900, "In Progress"),
        (901, "Approved"),
        (903, "Not Started"),
    ] {
        assert_eq!(app.deliver(&event(n, status, t)).await.status, 200);
    }
    sim.set_session_status("sess-900", "Approved");
    let config = config(&sim, &[]);
    let today = reconcile_with(&app, &config, Check::Failed, false)
        .await
        .unwrap();
    assert!(today.stale.is_empty(), "not stuck yet: {:?}", today.stale);
    // Two days later (stale_after is 24 h).
    let report = reconcile_at(&app, &config, Check::Failed, false, t + 2 * 86_400)
        .await
        .unwrap();
    let mut stuck: Vec<(&str, &str, Option<&str>)> = report
        .stale
        .iter()
        .map(|s| {
            (
                s.session_id.as_str(),
                s.status.as_str(),
                s.didit_status.as_deref(),
            )
        })
        .collect();
    stuck.sort_unstable();
    assert_eq!(
        stuck,
        [
            ("sess-900", "In Progress", Some("Approved")),
            ("sess-903", "Not Started", None)
        ]
    );
    let text = report.to_text();
    assert!(
        text.contains("Didit says Approved: a status change never reached riskhook"),
        "{text}"
    );
    assert!(text.contains("Didit does not know it"), "{text}");
    // The recorder is process-wide and tests run in parallel: only presence is checked.
    let metrics = app.metrics().await;
    assert!(
        metrics.contains("riskhook_reconcile_stale_sessions"),
        "{metrics}"
    );
    assert!(
        metrics.contains("riskhook_reconcile_runs_total{outcome=\"completed\"}"),
        "{metrics}"
    );
    app.stop().await;
}

/// `serve` runs it every `interval` when enabled: a delivery Didit gave up on comes back
/// without anyone asking, and the run is audited as `system`.
#[tokio::test]
async fn serve_reconciles_periodically_when_enabled() {
    let sim = DiditSim::start(API_KEY, DESTINATION, SECRET, "http://127.0.0.1:9/").await;
    let base = sim.base_url();
    let app = spawn_app_with(&[
        ("RISKHOOK_DIDIT__RECONCILE__ENABLED", "true"),
        ("RISKHOOK_DIDIT__RECONCILE__INTERVAL", "1s"),
        ("RISKHOOK_DIDIT__RECONCILE__DESTINATION", DESTINATION),
        ("RISKHOOK_DIDIT__RECONCILE__API_KEY", API_KEY),
        ("RISKHOOK_DIDIT__RECONCILE__BASE_URL", base.as_str()),
    ])
    .await;
    sim.set_target(&app.webhook_url());
    let missed = event(1000, "Approved", now() - 30);
    sim.record_attempt(&missed, None, now() - 30);
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while !stored(app.store.as_ref(), &missed).await {
        assert!(
            std::time::Instant::now() < deadline,
            "not reconciled within 20 s: {:?}",
            sim.requests()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let metrics = app.metrics().await;
    assert!(
        metrics.contains("riskhook_reconcile_last_success_timestamp_seconds"),
        "{metrics}"
    );
    let audit = audit_actions(app.store.as_ref()).await;
    assert!(
        audit
            .iter()
            .any(|(action, actor, _, after)| action == "reconcile.run"
                && actor == "system"
                && after["missing"][0]["outcome"] == "resent"),
        "{audit:?}"
    );
    app.stop().await;
}

/// The binary: `riskhook reconcile --config FILE` against the service's database, its report
/// as JSON, and exit status 1 with Didit's words when the key is refused.
#[tokio::test]
async fn the_command_line_reconciles_and_reports() {
    let app = spawn_app().await;
    let sim = DiditSim::start(API_KEY, DESTINATION, SECRET, &app.webhook_url()).await;
    let missed = event(1100, "Approved", now() - 120);
    sim.record_attempt(&missed, Some(503), now() - 120);
    let dir = tempfile::tempdir().unwrap();
    let config_file = dir.path().join("riskhook.toml");
    std::fs::write(
        &config_file,
        format!(
            "database_url = {:?}\n\n[didit.reconcile]\ndestination = {DESTINATION:?}\napi_key_env = \"DIDIT_API_KEY\"\nbase_url = {:?}\n",
            app.db_url,
            sim.base_url()
        ),
    )
    .unwrap();
    let run = |key: &'static str, extra: &'static [&'static str]| {
        let config_file = config_file.clone();
        tokio::task::spawn_blocking(move || {
            riskhook()
                .arg("reconcile")
                .args(extra)
                .arg("--config")
                .arg(&config_file)
                .env("DIDIT_API_KEY", key)
                .output()
                .unwrap()
        })
    };
    let out = run(API_KEY, &["--json"]).await.unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["missing"][0]["outcome"], "resent", "{report}");
    assert!(stored(app.store.as_ref(), &missed).await);

    let out = run("wrong", &[]).await.unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("refused the API key (401)"), "{stderr}");

    let no_destination = dir.path().join("empty.toml");
    std::fs::write(
        &no_destination,
        format!("database_url = {:?}\n", app.db_url),
    )
    .unwrap();
    let out = tokio::task::spawn_blocking(move || {
        riskhook()
            .args(["reconcile", "--config"])
            .arg(&no_destination)
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("didit.reconcile.destination is not set"),
        "{stderr}"
    );
    app.stop().await;
}
