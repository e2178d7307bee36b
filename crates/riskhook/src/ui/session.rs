//! Signing in and out of the workbench: the session cookie, the [`Analyst`] extractor that
//! every page and form goes through, and CSRF tokens.
//!
//! A session is a random token in an `HttpOnly`, `SameSite=Strict` cookie; the database keeps
//! only its SHA-256, with the API key it signed in with and a CSRF token. The key's role and
//! person are looked up again on every request, so revoking the key ends its sessions at once.
//! Every form carries the session's CSRF token (the sign-in form, before any session, a token
//! in a cookie of its own: double submit), compared in constant time.

use axum::extract::{Form, FromRequestParts, State};
use axum::http::header::{COOKIE, SET_COOKIE};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode};
use axum::response::Response;
use riskhook_store::{Role, UiSessionRecord};
use serde::Deserialize;
use subtle::ConstantTimeEq;

use super::views::{Flash, SignInPage};
use super::{UiError, redirect, render};
use crate::auth::Caller;
use crate::config::SecureCookie;
use crate::keys::{random_hex, secret_hash};
use crate::state::AppState;

/// The session cookie. Scoped to `/ui`: the API never reads it.
pub(crate) const SESSION_COOKIE: &str = "riskhook_session";
/// The sign-in form's CSRF token, before there is a session.
const SIGN_IN_COOKIE: &str = "riskhook_sign_in";
/// `last_seen_at` is written at most this often (seconds), so reading pages costs no write.
const TOUCH_EVERY: i64 = 60;

/// A signed-in person: their key (as a [`Caller`]), their session's CSRF token, and the
/// message the previous command left for this page.
pub(crate) struct Analyst {
    pub(crate) caller: Caller,
    token_hash: String,
    csrf: String,
    pub(crate) flash: Option<Flash>,
}

impl Analyst {
    pub(crate) fn csrf(&self) -> &str {
        &self.csrf
    }

    /// Refuses a form whose CSRF token is not this session's.
    pub(crate) fn check_csrf(&self, presented: &str) -> Result<(), UiError> {
        if bool::from(presented.as_bytes().ct_eq(self.csrf.as_bytes())) {
            Ok(())
        } else {
            Err(UiError::BadCsrf)
        }
    }

    pub(crate) fn can(&self, role: Role) -> bool {
        self.caller.role >= role
    }

    /// Refuses (403) unless the key's role includes `role`: the pages only offer what a role
    /// may do, and this is the check that counts.
    pub(crate) fn require(&self, role: Role) -> Result<(), UiError> {
        if self.can(role) {
            Ok(())
        } else {
            Err(UiError::Forbidden(format!(
                "Your key ({}) has the {} role; this needs the {} role.",
                self.caller.key_id,
                self.caller.role.as_str(),
                role.as_str()
            )))
        }
    }

    /// Leaves `flash` for the next page this session shows.
    pub(crate) async fn say(&self, state: &AppState, flash: Flash) -> Result<(), UiError> {
        state
            .store
            .update_ui_session(&self.token_hash, (state.clock)(), Some(&flash.encode()))
            .await?;
        Ok(())
    }
}

impl FromRequestParts<AppState> for Analyst {
    type Rejection = UiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, UiError> {
        let sign_in = || UiError::SignIn {
            next: (parts.method == Method::GET).then(|| {
                parts
                    .uri
                    .path_and_query()
                    .map_or_else(|| parts.uri.path().to_owned(), |p| p.as_str().to_owned())
            }),
        };
        let Some(token) = cookie(&parts.headers, SESSION_COOKIE).filter(|t| is_token(t)) else {
            return Err(sign_in());
        };
        let token_hash = secret_hash(token);
        let Some(session) = state.store.ui_session(&token_hash).await? else {
            return Err(sign_in());
        };
        let now = (state.clock)();
        let idle = i64::try_from(state.config.ui.session_idle.as_secs()).unwrap_or(i64::MAX);
        if now.saturating_sub(session.last_seen_at) > idle {
            state.store.delete_ui_session(&token_hash).await?;
            return Err(sign_in());
        }
        let Some(caller) = Caller::by_key_id(state, &session.key_id).await? else {
            // The key was revoked (or removed from the configuration): so is the session.
            state.store.delete_ui_session(&token_hash).await?;
            return Err(sign_in());
        };
        if session.flash.is_some() || now - session.last_seen_at >= TOUCH_EVERY {
            state
                .store
                .update_ui_session(&token_hash, now, None)
                .await?;
        }
        Ok(Analyst {
            caller,
            token_hash,
            csrf: session.csrf_token,
            flash: session.flash.as_deref().map(Flash::decode),
        })
    }
}

#[derive(Debug, Default, Deserialize)]
pub(crate) struct NextQuery {
    next: Option<String>,
}

/// The sign-in page, with a fresh CSRF token in its own cookie.
pub(crate) async fn sign_in_page(
    State(state): State<AppState>,
    headers: HeaderMap,
    axum::extract::Query(query): axum::extract::Query<NextQuery>,
) -> Result<Response, UiError> {
    sign_in_form(&state, &headers, query.next, None, StatusCode::OK)
}

fn sign_in_form(
    state: &AppState,
    headers: &HeaderMap,
    next: Option<String>,
    error: Option<&str>,
    status: StatusCode,
) -> Result<Response, UiError> {
    let csrf = random_hex();
    let page = SignInPage {
        csrf: csrf.clone(),
        next: next.filter(|n| safe_next(n)).unwrap_or_default(),
        error: error.unwrap_or_default().to_owned(),
    };
    let mut response = render(&page)?;
    *response.status_mut() = status;
    set_cookie(
        &mut response,
        &cookie_text(state, headers, SIGN_IN_COOKIE, &csrf, Some(3_600)),
    );
    Ok(response)
}

#[derive(Deserialize)]
pub(crate) struct SignInForm {
    api_key: String,
    csrf: String,
    #[serde(default)]
    next: String,
}

/// Checks the key and starts a session (303 to the queue, or to the page asked for).
pub(crate) async fn sign_in(
    State(state): State<AppState>,
    headers: HeaderMap,
    Form(form): Form<SignInForm>,
) -> Result<Response, UiError> {
    let expected = cookie(&headers, SIGN_IN_COOKIE).unwrap_or_default();
    if expected.is_empty() || !bool::from(expected.as_bytes().ct_eq(form.csrf.as_bytes())) {
        return Err(UiError::BadCsrf);
    }
    let next = Some(form.next).filter(|n| safe_next(n));
    let presented = form.api_key.trim();
    let Some(caller) = (if presented.is_empty() {
        None
    } else {
        Caller::authenticate(&state, presented).await?
    }) else {
        tracing::info!("workbench sign-in refused: unknown or revoked key");
        return sign_in_form(
            &state,
            &headers,
            next,
            Some("That key is not valid, or it was revoked. Paste a whole API key."),
            StatusCode::UNAUTHORIZED,
        );
    };
    let now = (state.clock)();
    let token = random_hex();
    let idle = i64::try_from(state.config.ui.session_idle.as_secs()).unwrap_or(i64::MAX);
    state
        .store
        .create_ui_session(
            UiSessionRecord {
                token_hash: secret_hash(&token),
                key_id: caller.key_id.clone(),
                csrf_token: random_hex(),
                created_at: now,
                last_seen_at: now,
                flash: None,
            },
            now.saturating_sub(idle),
        )
        .await?;
    tracing::info!(
        key_id = caller.key_id,
        principal = caller.principal,
        "workbench sign-in"
    );
    let mut response = redirect(next.as_deref().unwrap_or("/ui/queue"));
    set_cookie(
        &mut response,
        &cookie_text(&state, &headers, SESSION_COOKIE, &token, None),
    );
    set_cookie(
        &mut response,
        &cookie_text(&state, &headers, SIGN_IN_COOKIE, "", Some(0)),
    );
    Ok(response)
}

#[derive(Deserialize)]
pub(crate) struct CsrfForm {
    pub(crate) csrf: String,
}

/// Ends the session everywhere (it is gone from the database) and clears the cookie.
pub(crate) async fn sign_out(
    State(state): State<AppState>,
    headers: HeaderMap,
    analyst: Analyst,
    Form(form): Form<CsrfForm>,
) -> Result<Response, UiError> {
    analyst.check_csrf(&form.csrf)?;
    state.store.delete_ui_session(&analyst.token_hash).await?;
    tracing::info!(key_id = analyst.caller.key_id, "workbench sign-out");
    let mut response = redirect("/ui/sign-in");
    set_cookie(
        &mut response,
        &cookie_text(&state, &headers, SESSION_COOKIE, "", Some(0)),
    );
    Ok(response)
}

/// Where a sign-in may send the browser next: a workbench page of this server, never
/// another site (`//evil.example`) or a path outside `/ui`.
fn safe_next(next: &str) -> bool {
    next.starts_with("/ui/")
        && !next.starts_with("//")
        && !next.contains('\\')
        && next.bytes().all(|b| b.is_ascii_graphic())
}

/// A session or CSRF token as we make them: 64 lowercase hex characters. Anything else is
/// not looked up.
fn is_token(text: &str) -> bool {
    text.len() == 64 && text.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

/// The value of cookie `name` in the request's `Cookie` headers.
fn cookie<'h>(headers: &'h HeaderMap, name: &str) -> Option<&'h str> {
    headers
        .get_all(COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v)
}

fn cookie_text(
    state: &AppState,
    headers: &HeaderMap,
    name: &str,
    value: &str,
    max_age: Option<u32>,
) -> String {
    let secure = match state.config.ui.secure_cookie {
        SecureCookie::Always => true,
        SecureCookie::Never => false,
        SecureCookie::Auto => headers
            .get("x-forwarded-proto")
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.eq_ignore_ascii_case("https")),
    };
    let mut text = format!("{name}={value}; Path=/ui; HttpOnly; SameSite=Strict");
    if let Some(age) = max_age {
        text.push_str(&format!("; Max-Age={age}"));
    }
    if secure {
        text.push_str("; Secure");
    }
    text
}

fn set_cookie(response: &mut Response, text: &str) {
    if let Ok(value) = HeaderValue::from_str(text) {
        response.headers_mut().append(SET_COOKIE, value);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn next_stays_on_the_workbench() {
        assert!(safe_next("/ui/cases/case_1?x=1"));
        for bad in [
            "//evil.example/ui/",
            "https://evil.example/ui/",
            "/v1/keys",
            "/ui/\\evil",
            "/ui/a b",
            "",
        ] {
            assert!(!safe_next(bad), "{bad}");
        }
    }

    #[test]
    fn cookies_are_found_by_exact_name() {
        let mut headers = HeaderMap::new();
        headers.append(
            COOKIE,
            HeaderValue::from_static("a=1; riskhook_session_x=2"),
        );
        headers.append(COOKIE, HeaderValue::from_static("riskhook_session=3"));
        assert_eq!(cookie(&headers, SESSION_COOKIE), Some("3"));
        assert_eq!(cookie(&headers, "missing"), None);
    }

    #[test]
    fn only_our_token_shape_is_looked_up() {
        assert!(is_token(&"a1".repeat(32)));
        assert!(!is_token(&"A1".repeat(32)));
        assert!(!is_token("abc"));
    }
}
