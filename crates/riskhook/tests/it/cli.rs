//! The `riskhook` binary: `sign`, `send`, `migrate`, and `serve` as a real process stopped by
//! SIGTERM.

use std::io::{BufRead, BufReader};
use std::process::Stdio;
use std::time::Duration;

use crate::helpers::{SECRET, Served, fixture, fixtures_dir, now, riskhook, spawn_app};

const VECTOR_A: &str = r#"{"created_at":1780045046,"decision":{"status":"Approved"},"session_id":"11111111-2222-3333-4444-555555555555","status":"Approved","timestamp":1780045046,"vendor_data":"user-42","webhook_type":"status.updated","workflow_id":"11111111-2222-3333-4444-555555555555"}"#;

#[test]
fn sign_prints_the_headers_didit_sends_for_spec_vector_a() {
    let dir = tempfile::tempdir().unwrap();
    let body = dir.path().join("a.json");
    std::fs::write(&body, VECTOR_A).unwrap();
    let out = riskhook()
        .args(["sign", "--keep-body", body.to_str().unwrap()])
        .env("RISKHOOK_DIDIT_SECRET", SECRET)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).unwrap();
    let expected = "d964f5b0ee6214cf0097ded7eb7327709250e585cc3e52604724e9cd5421a162";
    assert!(text.contains("X-Timestamp: 1780045046\n"), "{text}");
    assert!(
        text.contains(&format!("X-Signature: {expected}\n")),
        "{text}"
    );
    assert!(
        text.contains(&format!("X-Signature-V2: {expected}\n")),
        "{text}"
    );
    assert!(
        text.contains(
            "X-Signature-Simple: a89910f6cbe98f43c2fd40cc13b7a67b8bb6463cef1808fd2e60d81e4bdcbfed"
        ),
        "{text}"
    );

    let secret_file = dir.path().join("secret");
    std::fs::write(&secret_file, format!("{SECRET}\n")).unwrap();
    let json = riskhook()
        .args(["sign", "--keep-body", "--json", "--secret-file"])
        .arg(&secret_file)
        .arg(&body)
        .output()
        .unwrap();
    let signed: serde_json::Value = serde_json::from_slice(&json.stdout).unwrap();
    assert_eq!(signed["headers"]["X-Signature"], expected);
    assert!(signed.get("body").is_none(), "the file is the body");
}

/// By default `sign` restamps a fixture to now, as `send` does, and hands over the body it
/// signed: the headers and that body are accepted by the service (issue 16, finding 6).
#[tokio::test]
async fn sign_restamps_so_its_headers_and_body_are_accepted() {
    let app = spawn_app().await;
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("signed.json");
    let fixture = fixtures_dir().join("status-updated-approved.json");
    let signed = {
        let (fixture, out) = (fixture.clone(), out.clone());
        tokio::task::spawn_blocking(move || {
            riskhook()
                .arg("sign")
                .arg(&fixture)
                .arg("--out")
                .arg(&out)
                .env("RISKHOOK_DIDIT_SECRET", SECRET)
                .output()
                .unwrap()
        })
        .await
        .unwrap()
    };
    assert!(
        signed.status.success(),
        "{}",
        String::from_utf8_lossy(&signed.stderr)
    );
    let text = String::from_utf8(signed.stdout).unwrap();
    let body = std::fs::read(&out).unwrap();
    let mut request = app.client.post(app.webhook_url()).body(body.clone());
    for line in text.lines() {
        let (name, value) = line.split_once(": ").unwrap();
        request = request.header(name, value);
    }
    let reply = request.send().await.unwrap();
    assert_eq!(reply.status(), 200, "{}", reply.text().await.unwrap());
    let stamped = riskhook::delivery::body_timestamp(&body).unwrap();
    assert!((now() - stamped).abs() < 60, "restamped to now");

    // Without --out, the restamped body follows the headers after a blank line.
    let printed = tokio::task::spawn_blocking(move || {
        riskhook()
            .arg("sign")
            .arg(&fixture)
            .env("RISKHOOK_DIDIT_SECRET", SECRET)
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    let text = String::from_utf8(printed.stdout).unwrap();
    let (headers, body) = text.split_once("\n\n").unwrap();
    assert!(headers.starts_with("X-Timestamp: "), "{text}");
    let body: serde_json::Value = serde_json::from_str(body.trim()).unwrap();
    assert!(body["timestamp"].is_number(), "{body}");
}

#[test]
fn sign_without_a_secret_explains_where_to_put_one() {
    let out = riskhook().args(["sign", "whatever.json"]).output().unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("RISKHOOK_DIDIT_SECRET"), "{err}");
}

#[tokio::test]
async fn send_delivers_a_fixture_signed_and_a_wrong_secret_is_refused() {
    let app = spawn_app().await;
    let url = app.webhook_url();
    let body = fixtures_dir().join("status-updated-approved.json");
    let ok = tokio::task::spawn_blocking({
        let (url, body) = (url.clone(), body.clone());
        move || {
            riskhook()
                .args(["send", &url])
                .arg(&body)
                .env("RISKHOOK_DIDIT_SECRET", SECRET)
                .output()
                .unwrap()
        }
    })
    .await
    .unwrap();
    let stdout = String::from_utf8_lossy(&ok.stdout);
    assert!(
        ok.status.success(),
        "{stdout} {}",
        String::from_utf8_lossy(&ok.stderr)
    );
    assert!(
        stdout.contains("HTTP 200") && stdout.contains("\"accepted\""),
        "{stdout}"
    );

    let forged = tokio::task::spawn_blocking(move || {
        riskhook()
            .args(["send", &url])
            .arg(&body)
            .env("RISKHOOK_DIDIT_SECRET", "wrong-secret")
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    assert!(!forged.status.success());
    let stdout = String::from_utf8_lossy(&forged.stdout);
    assert!(
        stdout.contains("HTTP 401") && stdout.contains("bad-signature"),
        "{stdout}"
    );
    assert_eq!(app.store.count_events().await.unwrap(), 1);
    app.stop().await;
}

#[test]
fn migrate_creates_the_database_once() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("new.db").display());
    let first = riskhook()
        .args(["migrate", "--database-url", &url])
        .output()
        .unwrap();
    assert!(
        first.status.success(),
        "{}",
        String::from_utf8_lossy(&first.stderr)
    );
    assert_eq!(
        String::from_utf8_lossy(&first.stdout).trim(),
        "applied migrations: [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11]"
    );
    let second = riskhook()
        .args(["migrate", "--database-url", &url])
        .output()
        .unwrap();
    assert_eq!(
        String::from_utf8_lossy(&second.stdout).trim(),
        "database is up to date"
    );
}

#[test]
fn serve_refuses_invalid_configuration_naming_the_key() {
    let out = riskhook()
        .args(["serve"])
        .env("RISKHOOK_DIDIT_SECRET", SECRET)
        .env("RISKHOOK_DIDIT__TOLERANCE", "a while")
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("didit.tolerance"), "{err}");
}

#[tokio::test]
async fn serve_reloads_its_policy_on_sighup_and_keeps_it_when_the_new_one_is_broken() {
    let dir = tempfile::tempdir().unwrap();
    let policy = dir.path().join("policy.toml");
    let default = riskhook().args(["policy", "show"]).output().unwrap().stdout;
    std::fs::write(&policy, &default).unwrap();
    let mut served = Served::start(
        dir.path(),
        &[("RISKHOOK_POLICY__PATH", policy.to_str().unwrap())],
    );
    std::fs::write(
        &policy,
        String::from_utf8(default)
            .unwrap()
            .replace("review = 30", "review = 25"),
    )
    .unwrap();
    served.signal("HUP");
    let line = served.wait_for("policy reloaded (SIGHUP)");
    assert!(line.contains("\"to\""), "{line}");
    std::fs::write(&policy, "name = \"broken\"\n").unwrap();
    served.signal("HUP");
    let refused = served.wait_for("policy reload refused; the previous policy stays in force");
    assert!(refused.contains("thresholds"), "{refused}");
    served.signal("TERM");
    let exit = tokio::task::spawn_blocking(move || served.child.wait().unwrap())
        .await
        .unwrap();
    assert!(exit.success());
}

#[tokio::test]
async fn serve_runs_as_a_process_and_stops_cleanly_on_sigterm() {
    const AUDIT_KEY: &str = "an audit key that must never be logged";
    let dir = tempfile::tempdir().unwrap();
    let mut served = Served::start(dir.path(), &[("RISKHOOK_AUDIT__KEY", AUDIT_KEY)]);
    let address = served.address.clone();
    let client = reqwest::Client::new();
    let t = now();
    let body = riskhook::delivery::restamp(&fixture("status-updated-approved.json"), t);
    let url = format!("http://{address}/webhooks/didit");
    let key = crate::helpers::key();
    let reply = riskhook::delivery::send(&client, &url, &key, body, t)
        .await
        .unwrap();
    assert_eq!(reply.status, 200, "{}", reply.body);

    served.signal("TERM");
    let (exit, mut served) = tokio::task::spawn_blocking(move || {
        let exit = served.child.wait().unwrap();
        (exit, served)
    })
    .await
    .unwrap();
    assert!(exit.success(), "{exit:?}");
    while let Ok(line) = served.lines.recv_timeout(Duration::from_secs(5)) {
        served.log.push(line);
    }
    let log = served.log.join("\n");
    assert!(log.contains("\"stopped\""), "{log}");
    // A first start applies every migration, and says which before and what they took after.
    assert!(log.contains("\"applying database migrations"), "{log}");
    let applied = log
        .lines()
        .find(|l| l.contains("\"database migrations applied\""))
        .unwrap_or_else(|| panic!("no migrations logged: {log}"));
    assert!(
        applied.contains("[1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11]") && applied.contains("\"seconds\""),
        "{applied}"
    );
    assert!(
        log.contains("request_id"),
        "every request line carries its id: {log}"
    );
    assert!(!log.contains(SECRET), "the secret must never be logged");
    assert!(
        !log.contains(AUDIT_KEY),
        "the audit key must never be logged"
    );
    // The checkpoint at shutdown, in the log, is an anchor `audit verify` reads as it is.
    let checkpoint = log
        .lines()
        .rfind(|l| l.contains("\"audit checkpoint\""))
        .unwrap_or_else(|| panic!("no checkpoint logged: {log}"));
    assert!(checkpoint.contains("\"mac\""), "{checkpoint}");
    let log_file = dir.path().join("serve.log");
    std::fs::write(&log_file, &log).unwrap();
    let verified = riskhook()
        .args(["audit", "verify", "--anchors"])
        .arg(&log_file)
        .env(
            "RISKHOOK_DATABASE_URL",
            format!("sqlite://{}", dir.path().join("p.db").display()),
        )
        .env("RISKHOOK_AUDIT__KEY", AUDIT_KEY)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&verified.stdout);
    assert!(
        verified.status.success() && stdout.contains("checked with the audit key"),
        "{stdout}{}",
        String::from_utf8_lossy(&verified.stderr)
    );
}

#[test]
fn score_explains_a_payload_and_prints_json_on_request() {
    let payload = fixtures_dir().join("status-updated-declined-sanctions.json");
    let out = riskhook().arg("score").arg(&payload).output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(text.starts_with("decision: freeze"), "{text}");
    assert!(
        text.contains("aml.sanctions_hit") && text.contains("aml.sanctions_hits = "),
        "{text}"
    );

    let json = riskhook()
        .args(["score", "--json"])
        .arg(&payload)
        .output()
        .unwrap();
    let assessment: serde_json::Value = serde_json::from_slice(&json.stdout).unwrap();
    assert_eq!(assessment["decision"], "freeze");
    assert_eq!(assessment["policy"]["name"], "default");
}

#[test]
fn policy_check_accepts_the_default_and_names_each_problem_of_a_broken_one() {
    let dir = tempfile::tempdir().unwrap();
    let good = dir.path().join("good.toml");
    let show = riskhook().args(["policy", "show"]).output().unwrap();
    std::fs::write(&good, &show.stdout).unwrap();
    let ok = riskhook()
        .args(["policy", "check"])
        .arg(&good)
        .output()
        .unwrap();
    assert!(
        ok.status.success(),
        "{}",
        String::from_utf8_lossy(&ok.stderr)
    );
    assert!(String::from_utf8_lossy(&ok.stdout).contains("ok"));

    let bad = dir.path().join("bad.toml");
    std::fs::write(
        &bad,
        "name = \"bad\"\n[thresholds]\nreview = 30\nfreeze = 70\n\n[[rules]]\nid = \"one\"\nwhen = \"aml.nope > 1\"\npoints = 5\nreason = \"r\"\n\n[[rules]]\nid = \"two\"\nwhen = \"aml.total_hits > \"\npoints = 5\nreason = \"r\"\n",
    )
    .unwrap();
    let out = riskhook()
        .args(["policy", "check"])
        .arg(&bad)
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("rule `one`") && err.contains("aml.nope"),
        "{err}"
    );
    assert!(
        err.contains("rule `two`") && err.contains("syntax"),
        "{err}"
    );
    assert!(err.contains("line 6") && err.contains("line 12"), "{err}");
}

#[test]
fn policy_test_runs_the_default_policys_own_cases() {
    let core = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../riskhook-core/policy");
    let out = riskhook()
        .args(["policy", "test"])
        .arg(core.join("default.toml"))
        .arg(core.join("cases"))
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(text.contains(" 0 failed"), "{text}");

    // A case that does not hold makes the command fail and says why.
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("wrong.toml"),
        "description = \"claims a sanctions hit is approved\"\n[signals]\n\"aml.sanctions_hits\" = 1\n[expect]\ndecision = \"approve\"\n",
    )
    .unwrap();
    let out = riskhook()
        .args(["policy", "test"])
        .arg(core.join("default.toml"))
        .arg(dir.path())
        .output()
        .unwrap();
    assert!(!out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("FAIL  wrong.toml") && text.contains("decision is freeze"),
        "{text}"
    );
}

#[test]
fn policy_signals_lists_the_schema_and_keys_generate_prints_a_usable_entry() {
    let out = riskhook().args(["policy", "signals"]).output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("aml.sanctions_hits") && text.contains("int"),
        "{text}"
    );

    let out = riskhook()
        .args(["keys", "generate", "--id", "ops", "--role", "review"])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    let key = text
        .lines()
        .find_map(|l| l.strip_prefix("API key (shown once, store it now): "))
        .unwrap();
    let hash = riskhook::auth::api_key_hash(key);
    assert!(text.contains(&format!("hash = \"{hash}\"")), "{text}");
    assert!(text.contains("role = \"review\""));
}

/// Checks the Prometheus text exposition format line by line and returns the samples.
fn parse_prometheus(text: &str) -> Vec<(String, f64)> {
    let mut samples = Vec::new();
    for line in text.lines() {
        if line.is_empty() {
            continue;
        }
        if let Some(comment) = line.strip_prefix('#') {
            let words: Vec<&str> = comment.split_whitespace().collect();
            assert!(
                matches!(words.first(), Some(&"TYPE" | &"HELP")),
                "bad comment line: {line}"
            );
            continue;
        }
        let (series, value) = line
            .rsplit_once(' ')
            .unwrap_or_else(|| panic!("no value: {line}"));
        let name_end = series.find('{').unwrap_or(series.len());
        let name = &series[..name_end];
        assert!(
            !name.is_empty()
                && name
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':'),
            "bad metric name: {line}"
        );
        if name_end < series.len() {
            assert!(series.ends_with('}'), "unclosed labels: {line}");
        }
        let value: f64 = value
            .parse()
            .unwrap_or_else(|_| panic!("bad value: {line}"));
        samples.push((series.to_owned(), value));
    }
    samples
}

fn sample(samples: &[(String, f64)], series: &str) -> f64 {
    samples
        .iter()
        .find(|(s, _)| s == series)
        .map_or(0.0, |(_, v)| *v)
}

#[tokio::test]
async fn metrics_parse_as_prometheus_text_and_count_a_known_set_of_deliveries() {
    let dir = tempfile::tempdir().unwrap();
    let served = Served::start(dir.path(), &[]);
    let client = reqwest::Client::new();
    let url = format!("http://{}/webhooks/didit", served.address);
    let key = crate::helpers::key();
    let t = now();
    let send = |name: &str, ts: i64| {
        let body = riskhook::delivery::restamp(&fixture(name), ts);
        let (client, url, key) = (client.clone(), url.clone(), key.clone());
        async move {
            riskhook::delivery::send(&client, &url, &key, body, ts)
                .await
                .unwrap()
        }
    };
    for (name, ts) in [
        ("status-updated-declined-sanctions.json", t),
        ("status-updated-approved-full.json", t),
        ("user-status-updated.json", t),
        ("status-updated-approved-full.json", t), // a redelivery
        ("status-updated-approved.json", t - 1000), // stale
    ] {
        send(name, ts).await;
    }
    let forged_key =
        riskhook_didit::signature::Key::new("x", &riskhook_didit::signature::Secret::new("forged"))
            .unwrap();
    let body = riskhook::delivery::restamp(&fixture("status-updated-approved.json"), t);
    let forged = riskhook::delivery::send(&client, &url, &forged_key, body, t)
        .await
        .unwrap();
    assert_eq!(forged.status, 401);

    let response = client
        .get(format!("http://{}/metrics", served.address))
        .send()
        .await
        .unwrap();
    assert!(
        response
            .headers()
            .get("content-type")
            .unwrap()
            .to_str()
            .unwrap()
            .starts_with("text/plain; version=0.0.4")
    );
    let text = response.text().await.unwrap();
    let samples = parse_prometheus(&text);
    let requests = |outcome: &str, reason: &str| {
        sample(
            &samples,
            &format!(
                "riskhook_webhook_requests_total{{outcome=\"{outcome}\",reason=\"{reason}\"}}"
            ),
        )
    };
    assert_eq!(requests("accepted", ""), 3.0, "{text}");
    assert_eq!(requests("duplicate", ""), 1.0, "{text}");
    assert_eq!(requests("rejected", "stale-timestamp"), 1.0, "{text}");
    assert_eq!(requests("rejected", "bad-signature"), 1.0, "{text}");
    assert_eq!(
        sample(
            &samples,
            "riskhook_webhook_verified_total{scheme=\"raw\",key_id=\"default\"}"
        ),
        4.0,
        "{text}"
    );
    let assessed: f64 = ["approve", "review", "freeze"]
        .iter()
        .map(|d| {
            sample(
                &samples,
                &format!("riskhook_assessments_total{{decision=\"{d}\"}}"),
            )
        })
        .sum();
    assert_eq!(assessed, 2.0, "two session events were assessed: {text}");
    assert_eq!(
        sample(&samples, "riskhook_assessments_total{decision=\"freeze\"}"),
        1.0
    );
    assert!(
        sample(&samples, "riskhook_commit_batch_size_count") >= 1.0,
        "{text}"
    );
    assert!(
        sample(
            &samples,
            "riskhook_webhook_duration_seconds_count{outcome=\"accepted\"}"
        ) >= 3.0
    );
    assert!(
        samples
            .iter()
            .any(|(s, v)| s.starts_with("riskhook_policy_info{")
                && s.contains("name=\"default\"")
                && *v == 1.0),
        "{text}"
    );
    let mut served = served;
    served.signal("TERM");
    let _ = tokio::task::spawn_blocking(move || served.child.wait()).await;
}

/// The load comes from `riskhook-loadgen`'s library, run in this process (the service is the
/// child process killed): the same generator as the `riskhook-loadgen` binary.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_acknowledged_event_survives_a_sigkill_during_a_loadgen_run() {
    let dir = tempfile::tempdir().unwrap();
    let served = Served::start(dir.path(), &[]);
    let acks = dir.path().join("acks.txt");
    let url = format!("http://{}/webhooks/didit", served.address);
    let plan = riskhook_loadgen::Plan {
        url,
        mode: riskhook_loadgen::Mode::Concurrency(32),
        limit: riskhook_loadgen::Limit::Duration(Duration::from_secs(30)),
        duplicates: 0.0,
        invalid: 0.0,
        seed: std::process::id().into(),
        timeout: Duration::from_secs(10),
        progress: false,
        acks: Some(acks.clone()),
    };
    let loadgen = tokio::spawn(async move {
        riskhook_loadgen::run(plan, &riskhook_didit::signature::Secret::new(SECRET)).await
    });
    // Kill the service mid-run, once a good number of deliveries have been acknowledged:
    // 1500 write more WAL pages than its cap (measured: ~17,000), so the checkpointer has made
    // dozens of passes and the WAL has started over at least once before the kill.
    let started = std::time::Instant::now();
    loop {
        tokio::time::sleep(Duration::from_millis(100)).await;
        let acked = std::fs::read_to_string(&acks).map_or(0, |t| t.lines().count());
        if acked >= 1500 || started.elapsed() > Duration::from_secs(20) {
            break;
        }
    }
    served.signal("KILL");
    let mut served = served;
    let _ = served.child.wait();
    loadgen.abort();
    let _ = loadgen.await;

    let acknowledged: std::collections::BTreeSet<String> = std::fs::read_to_string(&acks)
        .unwrap()
        .lines()
        .filter(|l| !l.is_empty())
        .map(str::to_owned)
        .collect();
    assert!(
        acknowledged.len() >= 100,
        "too few acknowledged to mean anything: {}",
        acknowledged.len()
    );
    let store = riskhook_store_sqlite::SqliteStore::open(&format!(
        "sqlite://{}",
        dir.path().join("p.db").display()
    ))
    .await
    .unwrap();
    use riskhook_store::Store;
    let mut stored = std::collections::BTreeSet::new();
    let mut after: Option<String> = None;
    loop {
        let page = store.events(after.as_deref(), 1000).await.unwrap();
        let Some(last) = page.last() else { break };
        after = Some(last.id.to_string());
        stored.extend(page.into_iter().map(|e| String::from(e.id)));
    }
    let lost: Vec<&String> = acknowledged.difference(&stored).collect();
    assert!(
        lost.is_empty(),
        "{} of {} acknowledged events are missing after SIGKILL, e.g. {:?}",
        lost.len(),
        acknowledged.len(),
        lost.iter().take(5).collect::<Vec<_>>()
    );
}

/// Every command reads the configuration `serve` reads (issue 16, finding 1): run elsewhere
/// without it, a command says where it looked instead of making an empty database there; with
/// `--config` or RISKHOOK_CONFIG it finds the service's database.
#[test]
fn commands_use_the_configurations_database_and_never_create_one() {
    let dir = tempfile::tempdir().unwrap();
    let elsewhere = tempfile::tempdir().unwrap();
    let db = dir.path().join("service.db");
    let config = dir.path().join("riskhook.toml");
    std::fs::write(
        &config,
        format!("database_url = \"sqlite://{}\"\n", db.display()),
    )
    .unwrap();
    let run = |args: &[&str], env: &[(&str, &std::path::Path)]| {
        let mut command = riskhook();
        command.current_dir(elsewhere.path()).args(args);
        for (k, v) in env {
            command.env(k, v);
        }
        command.output().unwrap()
    };
    for args in [
        &["keys", "list"][..],
        &["audit", "verify"],
        &["deliveries", "list"],
    ] {
        let refused = run(args, &[]);
        assert_eq!(refused.status.code(), Some(1), "{args:?}");
        let stderr = String::from_utf8_lossy(&refused.stderr);
        assert!(
            stderr.contains("no database at riskhook.db"),
            "{args:?}: {stderr}"
        );
        assert!(
            !elsewhere.path().join("riskhook.db").exists(),
            "{args:?} made a database"
        );
    }
    let config_arg = config.display().to_string();
    let migrated = run(&["migrate", "--config", &config_arg], &[]);
    assert!(
        migrated.status.success(),
        "{}",
        String::from_utf8_lossy(&migrated.stderr)
    );
    assert!(db.is_file(), "migrate creates the configured database");
    let created = run(
        &[
            "keys",
            "create",
            "--config",
            &config_arg,
            "--name",
            "ops",
            "--role",
            "read",
        ],
        &[],
    );
    assert!(
        created.status.success(),
        "{}",
        String::from_utf8_lossy(&created.stderr)
    );
    let listed = run(&["keys", "list"], &[("RISKHOOK_CONFIG", config.as_path())]);
    assert!(
        listed.status.success(),
        "{}",
        String::from_utf8_lossy(&listed.stderr)
    );
    assert!(String::from_utf8_lossy(&listed.stdout).contains("ops"));
    let verified = run(&["audit", "verify", "-c", &config_arg], &[]);
    assert!(String::from_utf8_lossy(&verified.stdout).contains("audit chain intact: 1 entry"));
    assert!(!elsewhere.path().join("riskhook.db").exists());
}

/// A start that cannot listen fails before it touches a database (issue 16, finding 4).
#[test]
fn a_taken_port_fails_the_start_before_any_database_is_created() {
    let dir = tempfile::tempdir().unwrap();
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let db = dir.path().join("never.db");
    let out = riskhook()
        .arg("serve")
        .env("RISKHOOK_DIDIT_SECRET", SECRET)
        .env("RISKHOOK_LISTEN", taken.local_addr().unwrap().to_string())
        .env(
            "RISKHOOK_DATABASE_URL",
            format!("sqlite://{}", db.display()),
        )
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("cannot listen on"), "{stderr}");
    assert!(!db.exists(), "a failed start leaves no database behind");
}

/// Text logs to a pipe carry no colour codes, and the start says what it runs with, warning
/// when no API key exists (issue 16, finding 5).
#[test]
fn the_start_is_summarised_in_plain_text_and_warns_without_api_keys() {
    let dir = tempfile::tempdir().unwrap();
    let mut child = riskhook()
        .arg("serve")
        .env("RISKHOOK_DIDIT_SECRET", SECRET)
        .env("RISKHOOK_LISTEN", "127.0.0.1:0")
        .env("RISKHOOK_LOG_FORMAT", "text")
        .env(
            "RISKHOOK_DATABASE_URL",
            format!("sqlite://{}", dir.path().join("s.db").display()),
        )
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = child.stderr.take().unwrap();
    let mut log = Vec::new();
    for line in BufReader::new(stderr).lines() {
        let line = line.unwrap();
        let done = line.contains("riskhook listening");
        log.push(line);
        if done {
            break;
        }
    }
    let _ = child.kill();
    let _ = child.wait();
    let log = log.join("\n");
    assert!(!log.contains('\u{1b}'), "no ANSI codes in a pipe: {log:?}");
    let summary = log
        .lines()
        .find(|l| l.contains("riskhook configuration"))
        .unwrap_or_else(|| panic!("no summary: {log}"));
    for field in [
        "backend=",
        "sqlite://",
        "policy=default",
        "four_eyes=false",
        "api_keys=0",
        "notification_endpoints=0",
        "nats=false",
        "workbench=true",
    ] {
        assert!(summary.contains(field), "{field}: {summary}");
    }
    assert!(
        log.lines()
            .any(|l| l.contains("WARN") && l.contains("no API key exists")),
        "{log}"
    );
}

/// `riskhook config show` prints what serve would run with, every secret masked (issue 16,
/// finding 7).
#[test]
fn config_show_prints_the_effective_configuration_with_secrets_masked() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("riskhook.toml");
    std::fs::write(
        &file,
        "listen = \"127.0.0.1:9999\"\n\
         database_url = \"postgres://riskhook:db-password-123@db.internal:5432/riskhook\"\n\
         [audit]\nkey = \"an-audit-key-of-at-least-16-bytes\"\n\
         [review]\nfour_eyes = true\n",
    )
    .unwrap();
    let out = riskhook()
        .args(["config", "show", "--config"])
        .arg(&file)
        .env("RISKHOOK_DIDIT_SECRET", "whsec-very-secret")
        .env("RISKHOOK_UI__SESSION_IDLE", "2h")
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for secret in [
        "whsec-very-secret",
        "db-password-123",
        "an-audit-key-of-at-least-16-bytes",
    ] {
        assert!(!text.contains(secret), "{secret} shown: {text}");
    }
    let shown: toml::Table = toml::from_str(&text).unwrap();
    assert_eq!(shown["listen"].as_str(), Some("127.0.0.1:9999"));
    assert_eq!(
        shown["database_url"].as_str(),
        Some("postgres://riskhook:***@db.internal:5432/riskhook")
    );
    assert_eq!(shown["didit"]["secret"].as_str(), Some("***"));
    assert_eq!(shown["audit"]["key"].as_str(), Some("***"));
    assert_eq!(shown["review"]["four_eyes"].as_bool(), Some(true));
    assert_eq!(
        shown["ui"]["session_idle"].as_str(),
        Some("2h"),
        "the environment wins"
    );
    assert_eq!(
        shown["ui"]["enabled"].as_bool(),
        Some(true),
        "defaults are shown"
    );

    // An invalid configuration is refused as serve refuses it.
    let invalid = riskhook()
        .args(["config", "show"])
        .env("RISKHOOK_DIDIT_SECRET", "s")
        .env("RISKHOOK_LISTEN", "nowhere")
        .output()
        .unwrap();
    assert!(!invalid.status.success());
    assert!(String::from_utf8_lossy(&invalid.stderr).contains("listen"));
}

/// The sample production configuration in `deploy/` stays valid (secret paths pointed at test
/// files).
#[test]
fn the_sample_configuration_is_valid() {
    let dir = tempfile::tempdir().unwrap();
    let sample = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../deploy/riskhook.toml"),
    )
    .unwrap();
    for name in ["didit-webhook", "audit-key"] {
        std::fs::write(dir.path().join(name), "a-test-secret-of-32-bytes-or-more!!").unwrap();
    }
    let file = dir.path().join("riskhook.toml");
    std::fs::write(
        &file,
        sample
            .replace("/etc/riskhook/secrets", &dir.path().display().to_string())
            .replace("/var/lib/riskhook", &dir.path().display().to_string()),
    )
    .unwrap();
    let out = riskhook()
        .args(["config", "show", "--config"])
        .arg(&file)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let shown: toml::Table = toml::from_str(&String::from_utf8_lossy(&out.stdout)).unwrap();
    assert_eq!(shown["review"]["four_eyes"].as_bool(), Some(true));
}
