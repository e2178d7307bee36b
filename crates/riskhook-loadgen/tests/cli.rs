//! The `riskhook-loadgen` binary against a receiver that verifies every delivery with
//! `riskhook-didit`'s layer, as the service does: what it reports is what the receiver saw.

#![allow(clippy::unwrap_used)]

use std::process::Command;

use axum::routing::post;
use axum::{Json, Router};
use riskhook_didit::axum::{DiditWebhookLayer, VerifiedDiditEvent};
use riskhook_didit::signature::{Keyring, Secret};
use riskhook_didit::webhook::Verifier;
use serde_json::{Value, json};

const SECRET: &str = "loadgen-test-secret";

async fn accept(verified: VerifiedDiditEvent) -> Json<Value> {
    let id = verified.event.delivery_key().unwrap_or_default().to_owned();
    Json(json!({ "status": "accepted", "id": id }))
}

/// Serves the verifying receiver on a port-0 listener, on a thread of its own, and returns its
/// webhook URL.
fn receiver() -> String {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        runtime.block_on(async move {
            let verifier = Verifier::new(Keyring::single(&Secret::new(SECRET)).unwrap());
            let app = Router::new().route(
                "/webhooks/didit",
                post(accept).route_layer(DiditWebhookLayer::new(verifier)),
            );
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            tx.send(listener.local_addr().unwrap()).unwrap();
            axum::serve(listener, app).await.unwrap();
        });
    });
    format!("http://{}/webhooks/didit", rx.recv().unwrap())
}

fn loadgen() -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_riskhook-loadgen"));
    command
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default());
    command
}

#[test]
fn a_counted_run_reports_what_the_receiver_accepted_and_refused() {
    let url = receiver();
    let dir = tempfile::tempdir().unwrap();
    let acks = dir.path().join("acks.txt");
    let out = loadgen()
        .args([
            &url,
            "--count",
            "60",
            "--concurrency",
            "4",
            "--invalid",
            "0.3",
        ])
        .args(["--seed", "7", "--quiet", "--json", "--acks"])
        .arg(&acks)
        .env("RISKHOOK_DIDIT_SECRET", SECRET)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["sent"], 60, "{report}");
    let outcomes = report["outcomes"].as_object().unwrap();
    let accepted = outcomes["accepted"].as_u64().unwrap();
    let total: u64 = outcomes.values().map(|n| n.as_u64().unwrap()).sum();
    assert_eq!(total, 60, "{report}");
    // About 30% forged, every one refused by the receiver; the rest accepted, or answered as a
    // replay by the layer's replay guard when two generated bodies are alike.
    let refused: u64 = outcomes
        .iter()
        .filter(|(o, _)| o.starts_with("rejected:"))
        .map(|(_, n)| n.as_u64().unwrap())
        .sum();
    assert!((5..=35).contains(&refused), "{report}");
    assert!(accepted >= 20, "{report}");
    assert!(
        outcomes
            .keys()
            .all(|o| o == "accepted" || o == "duplicate" || o.starts_with("rejected:")),
        "{report}"
    );
    // Only what the receiver acknowledged under an id is written to the acks file.
    let acked = std::fs::read_to_string(&acks).unwrap();
    assert_eq!(acked.lines().count() as u64, accepted, "{report}");
}

#[test]
fn without_a_secret_it_says_where_to_put_one() {
    let out = loadgen()
        .args(["http://127.0.0.1:9/webhooks/didit", "--count", "1"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("RISKHOOK_DIDIT_SECRET"), "{stderr}");
}
