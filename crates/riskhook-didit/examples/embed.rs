//! A minimal axum app that receives Didit webhooks through `DiditWebhookLayer`: verification,
//! freshness, replay protection, size limit and problem+json rejections come from the layer,
//! and the handler sees only verified, typed events. Nothing is stored.
//!
//! ```sh
//! DIDIT_WEBHOOK_SECRET=dev-secret cargo run -p riskhook-didit --features axum --example embed
//! # in another shell:
//! RISKHOOK_DIDIT_SECRET=dev-secret cargo run -- send http://127.0.0.1:3000/webhooks/didit \
//!     fixtures/didit/status-updated-approved.json
//! ```
//!
//! `EMBED_LISTEN` changes the address (default 127.0.0.1:3000).

use axum::routing::post;
use axum::{Json, Router};
use riskhook_didit::axum::{DiditWebhookLayer, VerifiedDiditEvent};
use riskhook_didit::signature::{Keyring, Secret};
use riskhook_didit::webhook::Verifier;
use serde_json::{Value, json};

async fn on_didit(verified: VerifiedDiditEvent) -> Json<Value> {
    let event = &verified.event;
    // A real app would update its own user here (keyed by vendor_data), idempotently.
    Json(json!({
        "status": "accepted",
        "webhook_type": event.kind.as_str(),
        "subject": event.subject_id(),
        "session_status": event.status(),
        "vendor_data": event.vendor_data(),
        "verified_by": verified.verification.scheme.as_str(),
    }))
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let secret = std::env::var("DIDIT_WEBHOOK_SECRET")
        .map_err(|_| "set DIDIT_WEBHOOK_SECRET to your Didit webhook destination's secret")?;
    let verifier = Verifier::new(Keyring::single(&Secret::new(secret))?);
    let app = Router::new().route(
        "/webhooks/didit",
        post(on_didit).route_layer(DiditWebhookLayer::new(verifier)),
    );
    let addr = std::env::var("EMBED_LISTEN").unwrap_or_else(|_| "127.0.0.1:3000".to_owned());
    let listener = tokio::net::TcpListener::bind(&addr).await?;
    eprintln!("embed example listening on {}", listener.local_addr()?);
    axum::serve(listener, app).await?;
    Ok(())
}
