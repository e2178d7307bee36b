//! `POST /webhooks/didit`: the intake. The library's layer verifies and parses; this handler
//! stores the event exactly once and answers only after the commit.

use axum::extract::State;
use axum::response::IntoResponse;
use axum::routing::post;
use axum::{Json, Router};
use riskhook_didit::axum::{DiditWebhookLayer, VerifiedDiditEvent};
use riskhook_store::IngestOutcome;
use serde::Serialize;

use crate::error::Result;
use crate::metrics::{self, WebhookOutcome};
use crate::pipeline;
use crate::state::AppState;

pub(crate) fn router(state: &AppState) -> Router<AppState> {
    let didit = &state.config.didit;
    let layer = DiditWebhookLayer::new(didit.verifier())
        .max_body_bytes(didit.max_body_bytes)
        .clock(state.clock.clone())
        // The database de-duplicates durably and across instances; an in-memory guard would
        // only add a second, weaker answer.
        .without_replay_protection();
    Router::new().route(
        &didit.path,
        post(ingest)
            .route_layer(layer)
            .route_layer(axum::middleware::from_fn(metrics::track_webhooks)),
    )
}

/// The answer to Didit (and to `riskhook send`).
#[derive(Debug, Serialize)]
struct IngestOut {
    /// `accepted` or `duplicate`.
    status: &'static str,
    /// Our id of the stored event (for a duplicate, the one stored first).
    id: String,
    /// Didit's `event_id`, when the delivery had one.
    event_id: Option<String>,
    webhook_type: String,
    /// False for an event type this version does not know: stored, not interpreted.
    recognised: bool,
    /// The scheme and key that verified the delivery.
    scheme: &'static str,
    key_id: String,
    /// The risk decision for a new session event (absent for duplicates and other types).
    #[serde(skip_serializing_if = "Option::is_none")]
    assessment: Option<AssessmentOut>,
}

#[derive(Debug, Serialize)]
struct AssessmentOut {
    score: u8,
    decision: &'static str,
    rules_fired: Vec<String>,
}

#[tracing::instrument(skip_all, fields(webhook_type = %verified.event.kind.as_str()))]
async fn ingest(
    State(AppState { store, policy, .. }): State<AppState>,
    verified: VerifiedDiditEvent,
) -> Result<axum::response::Response> {
    let (current, shadows) = (policy.current(), policy.shadows());
    let (outcome, assessment) =
        pipeline::ingest(store.as_ref(), &current, &shadows, &verified).await?;
    metrics::record_verified(&verified.verification);
    let (status, id, assessment) = match outcome {
        IngestOutcome::Accepted { id, .. } => ("accepted", id, assessment),
        IngestOutcome::Duplicate { id } => ("duplicate", id, None),
    };
    let assessment = assessment.map(|a| AssessmentOut {
        score: a.score,
        decision: a.decision.as_str(),
        rules_fired: a.fired.into_iter().map(|f| f.rule_id).collect(),
    });
    let VerifiedDiditEvent {
        event,
        verification,
        ..
    } = &verified;
    tracing::info!(
        status,
        id,
        scheme = verification.scheme.as_str(),
        key_id = verification.key_id,
        decision = assessment.as_ref().map(|a| a.decision),
        score = assessment.as_ref().map(|a| a.score),
        "didit event"
    );
    if let Some(a) = &assessment {
        ::metrics::counter!("riskhook_assessments_total", "decision" => a.decision).increment(1);
    }
    let mut response = Json(IngestOut {
        status,
        id,
        event_id: event.delivery_key().map(str::to_owned),
        webhook_type: event.kind.as_str().to_owned(),
        recognised: event.kind.is_known(),
        scheme: verification.scheme.as_str(),
        key_id: verification.key_id.clone(),
        assessment,
    })
    .into_response();
    response.extensions_mut().insert(WebhookOutcome {
        outcome: status,
        reason: "",
    });
    Ok(response)
}
