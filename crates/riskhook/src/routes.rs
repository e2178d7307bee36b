//! The HTTP surface: each feature module owns its handlers and DTOs and exposes a `router()`;
//! this module merges them and applies the cross-cutting layers once.

mod api;
mod health;
mod ingest;

use std::time::Duration;

use axum::Router;
use axum::http::{HeaderName, Request, StatusCode};
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::timeout::TimeoutLayer;
use tower_http::trace::TraceLayer;

use crate::state::AppState;

const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// The whole application router.
pub fn router(state: AppState) -> Router {
    let timeout = state.config.request_timeout;
    Router::new()
        .merge(ingest::router(&state))
        .merge(health::router())
        .merge(api::router())
        .route("/metrics", axum::routing::get(crate::metrics::render))
        .with_state(state)
        .layer(
            tower::ServiceBuilder::new()
                .layer(SetRequestIdLayer::new(REQUEST_ID, MakeRequestUuid))
                .layer(TraceLayer::new_for_http().make_span_with(request_span))
                .layer(PropagateRequestIdLayer::new(REQUEST_ID))
                // 503, not 408: Didit retries 5xx, and a slow database is our problem.
                .layer(TimeoutLayer::with_status_code(
                    StatusCode::SERVICE_UNAVAILABLE,
                    clamp(timeout),
                )),
        )
}

fn clamp(timeout: Duration) -> Duration {
    timeout.max(Duration::from_millis(1))
}

/// One span per request, carrying the request id so every log line of the request has it.
fn request_span<B>(request: &Request<B>) -> tracing::Span {
    let id = request
        .headers()
        .get(REQUEST_ID)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("-");
    tracing::info_span!(
        "request",
        method = %request.method(),
        path = %request.uri().path(),
        request_id = %id,
    )
}
