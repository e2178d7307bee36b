//! [`ApiError`]: every way an HTTP request can fail on our side, each with its status code and an
//! `application/problem+json` body. 5xx bodies say what the client should do, never what broke
//! inside; the cause is logged once, here.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use riskhook_didit::axum::Problem;
use riskhook_store::{CommandError, StoreError};

/// A failed request.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// The database failed: answered 503 so that Didit retries the delivery.
    #[error("storage failed")]
    Store(#[from] StoreError),
    /// Not found.
    #[error("{0} not found")]
    NotFound(&'static str),
    /// No API key, or one that matches nothing.
    #[error("missing or invalid API key")]
    Unauthorized,
    /// A valid key whose role does not allow this.
    #[error("the key `{key_id}` has role {has}; this needs {needs}")]
    Forbidden {
        /// The caller's key id.
        key_id: String,
        /// Its role.
        has: &'static str,
        /// The role required.
        needs: &'static str,
    },
    /// A new policy did not load; the one in force stays.
    #[error("{0}")]
    PolicyRejected(String),
    /// The body or query string could not be read at all: not JSON, the wrong content type,
    /// a query parameter of the wrong type. `status` is 400 or 415.
    #[error("{detail}")]
    Malformed {
        /// 400 Bad Request or 415 Unsupported Media Type.
        status: StatusCode,
        /// What was wrong, for the client.
        detail: String,
    },
    /// Well-formed but unacceptable: a missing or blank field, an unknown value (422).
    #[error("{0}")]
    Invalid(String),
    /// The command does not apply to the current state, e.g. a case claimed by someone else.
    #[error("{0}")]
    Conflict(String),
    /// Four eyes: the second person must be a different key than the first.
    #[error("{0}")]
    SamePerson(String),
}

impl From<CommandError> for ApiError {
    fn from(e: CommandError) -> Self {
        match e {
            CommandError::NotFound { kind, .. } => ApiError::NotFound(kind),
            CommandError::Conflict(detail) => ApiError::Conflict(detail),
            CommandError::SamePerson(detail) => ApiError::SamePerson(detail),
            CommandError::Store(e) => ApiError::Store(e),
        }
    }
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
                    // Every store method is one transaction: a failed one changed nothing.
                    "nothing was stored; retry later",
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
            ApiError::Unauthorized => {
                let mut response = Problem::new(
                    StatusCode::UNAUTHORIZED,
                    "unauthorized",
                    "Missing or invalid API key",
                    "send `Authorization: Bearer <key>` with an unrevoked key from [[api_keys]], `riskhook keys create` or `POST /v1/keys`",
                )
                .into_response();
                response.headers_mut().insert(
                    "www-authenticate",
                    axum::http::HeaderValue::from_static("Bearer"),
                );
                response
            }
            ApiError::Forbidden { .. } => Problem::new(
                StatusCode::FORBIDDEN,
                "forbidden",
                "Role not allowed",
                self.to_string(),
            )
            .into_response(),
            ApiError::PolicyRejected(detail) => Problem::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "policy-rejected",
                "Policy refused; the previous policy stays in force",
                detail.clone(),
            )
            .into_response(),
            ApiError::Malformed { status, detail } => Problem::new(
                *status,
                "malformed-request",
                "Malformed request",
                detail.clone(),
            )
            .into_response(),
            ApiError::Invalid(detail) => Problem::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "invalid-request",
                "Invalid request",
                detail.clone(),
            )
            .into_response(),
            ApiError::Conflict(detail) => Problem::new(
                StatusCode::CONFLICT,
                "conflict",
                "Not possible in the current state",
                detail.clone(),
            )
            .into_response(),
            ApiError::SamePerson(detail) => Problem::new(
                StatusCode::FORBIDDEN,
                "four-eyes",
                "A second person must decide",
                detail.clone(),
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
