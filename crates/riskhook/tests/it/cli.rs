//! The `riskhook` binary: `sign`, `send`, `migrate`, and `serve` as a real process stopped by
//! SIGTERM.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::Duration;

use crate::helpers::{SECRET, fixture, fixtures_dir, now, spawn_app};

fn riskhook() -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_riskhook"));
    command
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default());
    command
}

const VECTOR_A: &str = r#"{"created_at":1780045046,"decision":{"status":"Approved"},"session_id":"11111111-2222-3333-4444-555555555555","status":"Approved","timestamp":1780045046,"vendor_data":"user-42","webhook_type":"status.updated","workflow_id":"11111111-2222-3333-4444-555555555555"}"#;

#[test]
fn sign_prints_the_headers_didit_sends_for_spec_vector_a() {
    let dir = tempfile::tempdir().unwrap();
    let body = dir.path().join("a.json");
    std::fs::write(&body, VECTOR_A).unwrap();
    let out = riskhook()
        .args(["sign", body.to_str().unwrap()])
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
        .args(["sign", "--json", "--secret-file"])
        .arg(&secret_file)
        .arg(&body)
        .output()
        .unwrap();
    let headers: serde_json::Value = serde_json::from_slice(&json.stdout).unwrap();
    assert_eq!(headers["X-Signature"], expected);
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
        "applied migrations: [1]"
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
async fn serve_runs_as_a_process_and_stops_cleanly_on_sigterm() {
    let dir = tempfile::tempdir().unwrap();
    let mut child = riskhook()
        .arg("serve")
        .env("RISKHOOK_DIDIT_SECRET", SECRET)
        .env("RISKHOOK_LISTEN", "127.0.0.1:0")
        .env("RISKHOOK_LOG_FORMAT", "json")
        .env(
            "RISKHOOK_DATABASE_URL",
            format!("sqlite://{}", dir.path().join("p.db").display()),
        )
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = child.stderr.take().unwrap();
    let (lines_tx, lines_rx) = std::sync::mpsc::channel::<String>();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines() {
            let Ok(line) = line else { break };
            if lines_tx.send(line).is_err() {
                break;
            }
        }
    });
    let mut log = Vec::new();
    let address = loop {
        let line = lines_rx.recv_timeout(Duration::from_secs(30)).unwrap();
        log.push(line.clone());
        let v: serde_json::Value = serde_json::from_str(&line).unwrap();
        if v["message"] == "riskhook listening" {
            break v["address"].as_str().unwrap().to_owned();
        }
    };
    let client = reqwest::Client::new();
    let t = now();
    let body = riskhook::delivery::restamp(&fixture("status-updated-approved.json"), t);
    let url = format!("http://{address}/webhooks/didit");
    let key = crate::helpers::key();
    let reply = riskhook::delivery::send(&client, &url, &key, body, t)
        .await
        .unwrap();
    assert_eq!(reply.status, 200, "{}", reply.body);

    let status = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let exit = tokio::task::spawn_blocking(move || child.wait().unwrap())
        .await
        .unwrap();
    assert!(exit.success(), "{exit:?}");
    while let Ok(line) = lines_rx.recv_timeout(Duration::from_secs(5)) {
        log.push(line);
    }
    let log = log.join("\n");
    assert!(log.contains("\"stopped\""), "{log}");
    assert!(
        log.contains("request_id"),
        "every request line carries its id: {log}"
    );
    assert!(!log.contains(SECRET), "the secret must never be logged");
}
