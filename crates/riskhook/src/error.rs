//! [`ApiError`]: every way an HTTP request can fail on our side, each with its status code and an
//! `application/problem+json` body. 5xx bodies say what the client should do, never what broke
//! inside; the cause is logged once, here.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use riskhook_didit::axum::Problem;
use riskhook_store::StoreError;

/// A failed request.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// The database failed: answered 503 so that Didit retries the delivery.
    #[error("storage failed")]
    Store(#[from] StoreError),
    /// Not found.
    #[error("{0} not found")]
    NotFound(&'static str),
}

/// `Result` with [`ApiError`] as the default error.
pub type Result<T, E = ApiError> = std::result::Result<T, E>;

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        match &self {
            ApiError::Store(e) => {
                tracing::error!(error = %error_chain(e), "request failed: storage");
                let mut response = Problem::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "storage-unavailable",
                    "Storage unavailable",
                    "the event was not stored; retry later",
                )
                .into_response();
                response
                    .headers_mut()
                    .insert("retry-after", axum::http::HeaderValue::from_static("5"));
                response
            }
            ApiError::NotFound(what) => Problem::new(
                StatusCode::NOT_FOUND,
                "not-found",
                "Not found",
                format!("no such {what}"),
            )
            .into_response(),
        }
    }
}

/// `outer: inner: innermost`, for one log line per failure.
pub fn error_chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}
