//! The review workbench: server-rendered pages under `/ui` for analysts and compliance
//! officers, on the same listener as the API (`ui.enabled = false` serves none).
//!
//! No JavaScript and no front-end build: every control is a plain link or form, posted and
//! answered with a redirect (post/redirect/get) that carries a one-time message. Templates are
//! askama's (checked at compile time, HTML-escaped by default); the stylesheet is compiled into
//! the binary. Every answer carries a strict Content-Security-Policy (no scripts at all, styles
//! only from `/ui/static`, forms only to this origin, no framing) and `Cache-Control: no-store`,
//! because the pages hold KYC data.
//!
//! Pages call the same store commands as `/v1`, with the same role checks and the same rules
//! (four eyes included): the workbench is another face of the API, not a second rulebook.

mod actions;
mod pages;
mod session;
mod views;

use askama::Template;
use axum::Router;
use axum::http::header::{CACHE_CONTROL, CONTENT_TYPE, LOCATION};
use axum::http::{HeaderName, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use riskhook_store::{CommandError, StoreError};

use crate::error::ApiError;
use crate::state::AppState;
use views::ErrorPage;

/// Every workbench route, or none when the workbench is off.
pub(crate) fn router(state: &AppState) -> Router<AppState> {
    if !state.config.ui.enabled {
        return Router::new();
    }
    Router::new()
        .route("/ui", get(|| async { redirect("/ui/queue") }))
        .route("/ui/", get(|| async { redirect("/ui/queue") }))
        .route(
            "/ui/sign-in",
            get(session::sign_in_page).post(session::sign_in),
        )
        .route("/ui/sign-out", post(session::sign_out))
        .route("/ui/queue", get(pages::queue))
        .route("/ui/cases/{id}", get(pages::case))
        .route("/ui/cases/{id}/claim", post(actions::claim))
        .route("/ui/cases/{id}/resolve", post(actions::resolve))
        .route("/ui/users", get(pages::find_user))
        .route("/ui/users/{id}", get(pages::user))
        .route("/ui/users/{id}/freeze", post(actions::freeze))
        .route("/ui/users/{id}/unfreeze", post(actions::unfreeze))
        .route("/ui/approvals", get(pages::approvals))
        .route("/ui/actions/{id}/approve", post(actions::approve))
        .route("/ui/actions/{id}/reject", post(actions::reject))
        .route("/ui/audit", get(pages::audit))
        .route("/ui/deliveries", get(pages::deliveries))
        .route("/ui/deliveries/{id}/retry", post(actions::retry_delivery))
        .route("/ui/policy", get(pages::policy))
        .route("/ui/static/workbench.css", get(stylesheet))
        .layer(axum::Extension(std::sync::Arc::new(
            crate::audit::ChainWatch::default(),
        )))
        .layer(axum::middleware::map_response(security_headers))
}

/// The policy every workbench answer carries: nothing runs, nothing is framed, forms go
/// only here.
const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; style-src 'self'; img-src 'self'; \
     form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

async fn security_headers(mut response: Response) -> Response {
    let headers = response.headers_mut();
    for (name, value) in [
        (
            HeaderName::from_static("content-security-policy"),
            CONTENT_SECURITY_POLICY,
        ),
        (HeaderName::from_static("x-frame-options"), "DENY"),
        (HeaderName::from_static("x-content-type-options"), "nosniff"),
        (HeaderName::from_static("referrer-policy"), "same-origin"),
        (
            HeaderName::from_static("cross-origin-opener-policy"),
            "same-origin",
        ),
    ] {
        headers.insert(name, HeaderValue::from_static(value));
    }
    if !headers.contains_key(CACHE_CONTROL) {
        headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
    response
}

async fn stylesheet() -> Response {
    (
        [
            (CONTENT_TYPE, "text/css; charset=utf-8"),
            (CACHE_CONTROL, "public, max-age=3600"),
        ],
        include_str!("../../templates/ui/workbench.css"),
    )
        .into_response()
}

/// 303 See Other to `to`: the answer to every form.
pub(crate) fn redirect(to: &str) -> Response {
    let mut response = StatusCode::SEE_OTHER.into_response();
    if let Ok(value) = HeaderValue::from_str(to) {
        response.headers_mut().insert(LOCATION, value);
    }
    response
}

/// A page as an HTML answer.
pub(crate) fn render(page: &impl Template) -> Result<Response, UiError> {
    let html = page.render().map_err(|e| {
        tracing::error!(error = %e, "workbench page failed to render");
        UiError::Unavailable
    })?;
    Ok(([(CONTENT_TYPE, "text/html; charset=utf-8")], html).into_response())
}

/// Why a workbench request was refused, answered as an HTML page (or, without a session, a
/// redirect to sign in).
#[derive(Debug)]
pub(crate) enum UiError {
    /// No session, or it ended: a page (GET) is sent to sign in and back (`next`); a form is
    /// refused 401.
    SignIn { next: Option<String> },
    /// The key's role does not allow this (403).
    Forbidden(String),
    /// The form's CSRF token is missing or not this session's (403).
    BadCsrf,
    /// No such case, user or action (404).
    NotFound(String),
    /// The database failed (503): logged, not shown.
    Unavailable,
}

impl From<StoreError> for UiError {
    fn from(e: StoreError) -> Self {
        tracing::error!(error = %e, "workbench: storage failed");
        UiError::Unavailable
    }
}

impl From<ApiError> for UiError {
    fn from(e: ApiError) -> Self {
        match e {
            ApiError::Store(e) => e.into(),
            ApiError::NotFound(what) => UiError::NotFound(format!("No such {what}.")),
            ApiError::Forbidden { has, needs, .. } => UiError::Forbidden(format!(
                "Your key has the {has} role; this needs the {needs} role."
            )),
            ApiError::Unauthorized => UiError::SignIn { next: None },
            other => {
                tracing::error!(error = %other, "workbench: unexpected refusal");
                UiError::Unavailable
            }
        }
    }
}

impl From<CommandError> for UiError {
    fn from(e: CommandError) -> Self {
        match e {
            CommandError::Store(e) => e.into(),
            CommandError::NotFound { kind, id } => UiError::NotFound(format!("No {kind} {id}.")),
            other => {
                tracing::error!(error = %other, "workbench: unexpected command refusal");
                UiError::Unavailable
            }
        }
    }
}

impl IntoResponse for UiError {
    fn into_response(self) -> Response {
        let (status, title, message) = match self {
            UiError::SignIn { next: Some(next) } => {
                let to = format!("/ui/sign-in?next={}", percent_encode(&next));
                return redirect(&to);
            }
            UiError::SignIn { next: None } => (
                StatusCode::UNAUTHORIZED,
                "Please sign in",
                "You are not signed in, or your session has ended. Sign in again; nothing was changed.".to_owned(),
            ),
            UiError::Forbidden(why) => (StatusCode::FORBIDDEN, "Not allowed", why),
            UiError::BadCsrf => (
                StatusCode::FORBIDDEN,
                "Form expired",
                "This form was not sent from a page of your current session (its security token does not match), so nothing was changed. Go back, reload the page and try again.".to_owned(),
            ),
            UiError::NotFound(what) => (StatusCode::NOT_FOUND, "Not found", what),
            UiError::Unavailable => (
                StatusCode::SERVICE_UNAVAILABLE,
                "Unavailable",
                "The database did not answer. Nothing was changed; try again in a moment."
                    .to_owned(),
            ),
        };
        let page = ErrorPage { title, message };
        match render(&page) {
            Ok(mut response) => {
                *response.status_mut() = status;
                response
            }
            Err(_) => status.into_response(),
        }
    }
}

/// Percent-encodes everything but unreserved characters and `/`, for a `next=` parameter.
fn percent_encode(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for b in text.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~' | b'/') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}
