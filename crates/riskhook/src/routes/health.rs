//! `/healthz` (the process answers) and `/readyz` (it can reach its dependencies: the database,
//! and NATS when configured), each check named in the answer.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Extension, Json, Router};
use serde_json::json;

use crate::error::error_chain;
use crate::notify::NatsProbe;
use crate::state::AppState;

pub(crate) fn router() -> Router<AppState> {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
}

async fn healthz() -> Json<serde_json::Value> {
    Json(json!({ "status": "ok" }))
}

/// `{"status":"ready","checks":{"database":"ok","nats":"ok"}}`; 503 when the database does not
/// answer.
///
/// NATS being down does not make the instance unready: it reports `"nats": "disconnected"`
/// and answers 200. Readiness decides whether traffic (Didit's webhooks, the API) is sent
/// here, and all of it still works: events are stored and notifications wait in the outbox,
/// published once NATS is back. Taking every instance out of rotation for a NATS outage
/// would turn a delay of notifications into lost intake (Didit gives up after its retries).
async fn readyz(
    State(AppState { store, .. }): State<AppState>,
    nats: Option<Extension<NatsProbe>>,
) -> Response {
    let nats = match nats {
        None => "not configured",
        Some(Extension(probe)) if probe.is_connected() => "ok",
        Some(_) => "disconnected",
    };
    match store.ping().await {
        Ok(()) => Json(json!({
            "status": "ready",
            "checks": { "database": "ok", "nats": nats },
        }))
        .into_response(),
        Err(e) => {
            tracing::warn!(error = %error_chain(&e), "readiness check failed");
            (
                StatusCode::SERVICE_UNAVAILABLE,
                Json(json!({
                    "status": "unavailable",
                    "checks": { "database": "unavailable", "nats": nats },
                })),
            )
                .into_response()
        }
    }
}
