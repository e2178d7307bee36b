//! The HTTP surface: each feature module owns its handlers and DTOs and exposes a `router()`;
//! this module merges them and applies the cross-cutting layers once.
//!
//! The `/v1` modules (`api`, `review`, `admin`) build `utoipa_axum` routers: registering a
//! handler routes it and adds its operation to the OpenAPI document in one step, so `v1()`
//! yields the routes and their documentation together, and `GET /openapi.json` serves exactly
//! what is routed.

mod admin;
mod api;
mod edge;
mod extract;
mod health;
mod ingest;
mod openapi;
mod review;

use std::time::Duration;

use axum::Router;
use axum::http::{HeaderName, Method, Request, StatusCode};
use tower::util::MapRequestLayer;
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::trace::TraceLayer;
use utoipa_axum::router::OpenApiRouter;

use crate::state::AppState;

const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// The whole application router.
pub fn router(state: AppState) -> Router {
    let timeout = state.config.request_timeout;
    let (v1, doc) = v1().split_for_parts();
    let doc = openapi::render(&openapi::finish(doc));
    Router::new()
        .merge(ingest::router(&state))
        .merge(health::router())
        .merge(crate::ui::router(&state))
        .merge(v1)
        .route(
            "/openapi.json",
            axum::routing::get(move || std::future::ready(openapi::serve(doc.clone()))),
        )
        .route("/metrics", axum::routing::get(crate::metrics::render))
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            wake_dispatcher_after_writes,
        ))
        .with_state(state)
        .layer(
            tower::ServiceBuilder::new()
                .layer(MapRequestLayer::new(edge::sanitise_request_id))
                .layer(SetRequestIdLayer::new(REQUEST_ID, MakeRequestUuid))
                .layer(TraceLayer::new_for_http().make_span_with(request_span))
                .layer(PropagateRequestIdLayer::new(REQUEST_ID))
                // Outside the timeout, so its bare 503 gets a problem body too.
                .layer(axum::middleware::map_response(edge::problem_bodies))
                .layer(axum::middleware::from_fn(edge::limit_head))
                .layer(axum::middleware::from_fn(edge::refuse_encoded_controls))
                // 503, not 408: Didit retries 5xx, and a slow database is our problem.
                .layer(axum::middleware::from_fn(move |request, next| {
                    deadline(clamp(timeout), request, next)
                })),
        )
}

/// How long an analysis (a backtest, a shadow report) may take: it reads the whole history,
/// which may take minutes on millions of events, while every other request has
/// `request_timeout`.
pub const ANALYSIS_TIMEOUT: Duration = Duration::from_secs(600);

/// Answers 503 when a request takes longer than `request_timeout`, or [`ANALYSIS_TIMEOUT`] for
/// the analysis routes. (Dropping the handler's future cancels it; a backtest stops at its
/// next page.)
async fn deadline(
    timeout: Duration,
    request: Request<axum::body::Body>,
    next: axum::middleware::Next,
) -> axum::response::Response {
    let path = request.uri().path();
    let limit = if path == "/v1/policy/backtest" || path.starts_with("/v1/policy/shadow/") {
        ANALYSIS_TIMEOUT
    } else {
        timeout
    };
    match tokio::time::timeout(limit, next.run(request)).await {
        Ok(response) => response,
        Err(_) => axum::response::IntoResponse::into_response(StatusCode::SERVICE_UNAVAILABLE),
    }
}

/// After a request that may have changed a user (an accepted event, a review command, a
/// retried delivery), the dispatcher looks for due notifications at once instead of at its
/// next poll: the customer hears of a decision within milliseconds of its commit.
async fn wake_dispatcher_after_writes(
    axum::extract::State(state): axum::extract::State<AppState>,
    request: Request<axum::body::Body>,
    next: axum::middleware::Next,
) -> axum::response::Response {
    let writes = !matches!(*request.method(), Method::GET | Method::HEAD);
    let response = next.run(request).await;
    if writes && response.status().is_success() {
        state.outbox.notify_one();
    }
    response
}

/// The OpenAPI 3.1 document of `/v1`, as `GET /openapi.json` serves it.
pub fn openapi_document() -> utoipa::openapi::OpenApi {
    openapi::finish(v1().into_openapi())
}

/// Every `/v1` route with its documentation.
fn v1() -> OpenApiRouter<AppState> {
    OpenApiRouter::default()
        .merge(api::router())
        .merge(review::router())
        .merge(admin::router())
}

fn clamp(timeout: Duration) -> Duration {
    timeout.max(Duration::from_millis(1))
}

/// One span per request, carrying the request id so every log line of the request has it. The
/// id is ours or a client's plain one ([`edge::sanitise_request_id`] runs first), and the
/// method and path are tokens without spaces or control characters (hyper refuses others), so
/// no field can forge a line or another field.
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
