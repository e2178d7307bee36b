//! The four calls reconciliation makes to Didit's Management API: list a destination's
//! delivery attempts (every page), read one, ask for a resend, read a session's decision.
//!
//! Rate limits and outages are Didit's to announce: a 429 waits for its `Retry-After` (capped)
//! and tries again, a 5xx or a failed connection is tried again after a short backoff, and
//! anything else is an [`ApiError`] that says what was asked and what Didit answered. The API
//! key goes only to the configured origin: a pagination link elsewhere is refused.

use std::time::Duration;

use reqwest::{Method, StatusCode, Url};
use serde::Deserialize;

use crate::config::ReconcileConfig;

/// The longest a 429's `Retry-After` is waited for: longer, and the run gives up (the next
/// run starts over).
const MAX_RETRY_AFTER: Duration = Duration::from_secs(60);
/// How many times one request is sent at most (the first try included).
const MAX_TRIES: u32 = 5;
/// Page size asked of the list endpoint (Didit's default is 50).
const PAGE_SIZE: u32 = 100;
/// A bound on pages followed, so that a server whose `next` never ends cannot keep a run going.
const MAX_PAGES: u32 = 10_000;

/// What went wrong talking to Didit. Never holds the API key.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// 401 or 403: the key is wrong, revoked or lacks a scope.
    #[error(
        "Didit refused the API key ({status}) for {what}: {detail} (the key needs webhooks: read/write and decisions: read)"
    )]
    Unauthorized {
        /// The status.
        status: u16,
        /// The request, e.g. `GET /v3/…`.
        what: String,
        /// Didit's `detail`, or the body's start.
        detail: String,
    },
    /// 404.
    #[error("Didit does not know {what} (404): {detail}")]
    NotFound {
        /// The request.
        what: String,
        /// Didit's `detail`.
        detail: String,
    },
    /// Any other answer that is not a success, after the retries a 429 or 5xx gets.
    #[error("Didit answered {status} to {what}: {detail}")]
    Status {
        /// The status.
        status: u16,
        /// The request.
        what: String,
        /// Didit's `detail`, or the body's start.
        detail: String,
    },
    /// No answer, after the retries.
    #[error("cannot reach Didit for {what}: {source}")]
    Unreachable {
        /// The request.
        what: String,
        /// The client's error.
        #[source]
        source: reqwest::Error,
    },
    /// An answer that is not what Didit's API documents.
    #[error("Didit's answer to {what} is not what its API documents: {detail}")]
    Unexpected {
        /// The request.
        what: String,
        /// What is wrong with it.
        detail: String,
    },
}

impl ApiError {
    /// Whether the whole run should stop: the key is refused, or Didit cannot be reached or
    /// keeps failing, so every further call would fail the same way.
    pub fn is_fatal(&self) -> bool {
        match self {
            Self::Unauthorized { .. } | Self::Unreachable { .. } => true,
            Self::Status { status, .. } => *status == 429 || *status >= 500,
            Self::NotFound { .. } | Self::Unexpected { .. } => false,
        }
    }
}

/// One delivery attempt, as the list endpoint gives it.
#[derive(Debug, Clone, Deserialize)]
pub struct Delivery {
    /// The attempt's uuid.
    pub uuid: String,
    /// The session it was about, when it was about one.
    #[serde(default)]
    pub session_id: Option<String>,
    /// What our endpoint answered; `None` when it did not answer (timeout, refused).
    #[serde(default)]
    pub response_status: Option<u16>,
    /// The event type.
    #[serde(default)]
    pub webhook_type: Option<String>,
    /// When the attempt was made, RFC 3339.
    pub created_at: String,
}

impl Delivery {
    /// Whether our endpoint acknowledged it: riskhook answers 2xx only once the event is
    /// committed (or was already).
    pub fn acknowledged(&self) -> bool {
        self.response_status
            .is_some_and(|s| (200..300).contains(&s))
    }

    /// `created_at` as Unix seconds, if it reads as RFC 3339.
    pub fn created_at_unix(&self) -> Option<i64> {
        let text = self.created_at.trim();
        // humantime reads `Z` but not a numeric offset; Didit's UTC times may carry either.
        let text = text
            .strip_suffix("+00:00")
            .map_or_else(|| text.to_owned(), |t| format!("{t}Z"));
        let time = humantime::parse_rfc3339_weak(&text).ok()?;
        let seconds = time.duration_since(std::time::UNIX_EPOCH).ok()?.as_secs();
        i64::try_from(seconds).ok()
    }
}

#[derive(Debug, Deserialize)]
struct Page {
    #[serde(default)]
    next: Option<String>,
    results: Vec<Delivery>,
}

#[derive(Debug, Deserialize)]
struct Detail {
    #[serde(default)]
    request_body: Option<serde_json::Value>,
}

#[derive(Debug, Deserialize)]
struct SessionDecision {
    #[serde(default)]
    status: Option<String>,
}

/// A client of Didit's Management API for one webhook destination.
#[derive(Debug, Clone)]
pub struct DiditApi {
    http: reqwest::Client,
    config: ReconcileConfig,
}

impl DiditApi {
    /// A client for `config`'s API and destination.
    pub fn new(config: &ReconcileConfig) -> Result<Self, ApiError> {
        let http = reqwest::Client::builder()
            .timeout(config.timeout)
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("riskhook/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|source| ApiError::Unreachable {
                what: "a client".to_owned(),
                source,
            })?;
        Ok(Self {
            http,
            config: config.clone(),
        })
    }

    /// `base_url` with these path segments (each percent-encoded) and a trailing slash, as
    /// Didit's routes end.
    fn url(&self, segments: &[&str]) -> Url {
        let mut url = self.config.base_url.clone();
        if let Ok(mut path) = url.path_segments_mut() {
            path.pop_if_empty();
            path.extend(segments);
            path.push("");
        }
        url
    }

    fn deliveries_url(&self) -> Url {
        self.url(&[
            "v3",
            "webhook",
            "destinations",
            &self.config.destination,
            "deliveries",
        ])
    }

    /// Every attempt made on the UTC days `date_from..=date_to` (`YYYY-MM-DD`), following
    /// `next` to the last page (Didit's `count` stops at 100, so pages are not computed).
    pub async fn deliveries(
        &self,
        date_from: &str,
        date_to: &str,
    ) -> Result<Vec<Delivery>, ApiError> {
        let mut url = self.deliveries_url();
        url.query_pairs_mut()
            .append_pair("limit", &PAGE_SIZE.to_string())
            .append_pair("date_from", date_from)
            .append_pair("date_to", date_to);
        let mut all = Vec::new();
        let mut seen = std::collections::HashSet::new();
        for _ in 0..MAX_PAGES {
            let what = format!("GET {}", url.path());
            let page: Page = self.json(Method::GET, url.clone()).await?;
            all.extend(page.results);
            let Some(next) = page.next.filter(|n| !n.is_empty()) else {
                return Ok(all);
            };
            let next = self
                .config
                .base_url
                .join(&next)
                .map_err(|e| ApiError::Unexpected {
                    what: what.clone(),
                    detail: format!("`next` is not a URL ({e})"),
                })?;
            if next.origin() != self.config.base_url.origin() {
                return Err(ApiError::Unexpected {
                    what,
                    detail: format!(
                        "`next` points to {}, not to the configured API: the key is not sent there",
                        next.origin().ascii_serialization()
                    ),
                });
            }
            if !seen.insert(next.to_string()) {
                return Err(ApiError::Unexpected {
                    what,
                    detail: "`next` leads back to a page already read".to_owned(),
                });
            }
            url = next;
        }
        Err(ApiError::Unexpected {
            what: format!("GET {}", self.deliveries_url().path()),
            detail: format!("more than {MAX_PAGES} pages"),
        })
    }

    /// The body Didit delivered in attempt `uuid`, exactly as it sent it.
    pub async fn delivered_body(&self, uuid: &str) -> Result<Vec<u8>, ApiError> {
        let mut url = self.deliveries_url();
        if let Ok(mut path) = url.path_segments_mut() {
            path.pop_if_empty().push(uuid).push("");
        }
        let what = format!("GET {}", url.path());
        let detail: Detail = self.json(Method::GET, url).await?;
        match detail.request_body {
            // Documented as JSON text in a string: the bytes as sent.
            Some(serde_json::Value::String(text)) => Ok(text.into_bytes()),
            // Lenient: an object is the same event, re-encoded; its keys still match.
            Some(value @ serde_json::Value::Object(_)) => Ok(value.to_string().into_bytes()),
            _ => Err(ApiError::Unexpected {
                what,
                detail: "no request_body".to_owned(),
            }),
        }
    }

    /// Asks Didit to send attempt `uuid`'s body again, freshly signed, to the destination;
    /// Didit answers with the new attempt and what our endpoint answered it.
    pub async fn resend(&self, uuid: &str) -> Result<Delivery, ApiError> {
        let mut url = self.deliveries_url();
        if let Ok(mut path) = url.path_segments_mut() {
            path.pop_if_empty().push(uuid).push("resend").push("");
        }
        self.json(Method::POST, url).await
    }

    /// The session's status as Didit has it now, or `None` if Didit does not know it.
    pub async fn session_status(&self, session_id: &str) -> Result<Option<String>, ApiError> {
        let url = self.url(&["v3", "session", session_id, "decision"]);
        match self.json::<SessionDecision>(Method::GET, url).await {
            Ok(decision) => Ok(decision.status),
            Err(ApiError::NotFound { .. }) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Sends one request, retrying a 429 after its `Retry-After` and a 5xx or a failed
    /// connection after a backoff, and reads the JSON answer.
    async fn json<T: serde::de::DeserializeOwned>(
        &self,
        method: Method,
        url: Url,
    ) -> Result<T, ApiError> {
        let what = format!("{method} {}", url.path());
        let mut backoff = Duration::from_millis(200);
        let mut tries = 0;
        loop {
            tries += 1;
            let sent = self
                .http
                .request(method.clone(), url.clone())
                .header("x-api-key", self.config.api_key.expose())
                .header("accept", "application/json")
                .send()
                .await;
            let response = match sent {
                Ok(response) => response,
                Err(source) if tries >= MAX_TRIES => {
                    return Err(ApiError::Unreachable { what, source });
                }
                Err(_) => {
                    tokio::time::sleep(backoff).await;
                    backoff *= 2;
                    continue;
                }
            };
            let status = response.status();
            if status == StatusCode::TOO_MANY_REQUESTS && tries < MAX_TRIES {
                let wait = retry_after(response.headers()).unwrap_or(backoff);
                if wait > MAX_RETRY_AFTER {
                    return Err(ApiError::Status {
                        status: 429,
                        what,
                        detail: format!(
                            "rate limited for {}s (longer than riskhook waits)",
                            wait.as_secs()
                        ),
                    });
                }
                tracing::info!(
                    request = what,
                    wait_s = wait.as_secs_f64(),
                    "Didit rate-limited the request; waiting"
                );
                tokio::time::sleep(wait).await;
                backoff *= 2;
                continue;
            }
            if status.is_server_error() && tries < MAX_TRIES {
                tokio::time::sleep(backoff).await;
                backoff *= 2;
                continue;
            }
            let body = response
                .bytes()
                .await
                .map_err(|source| ApiError::Unreachable {
                    what: what.clone(),
                    source,
                })?;
            if status.is_success() {
                return serde_json::from_slice(&body).map_err(|e| ApiError::Unexpected {
                    what,
                    detail: e.to_string(),
                });
            }
            let detail = detail_of(&body);
            return Err(match status.as_u16() {
                401 | 403 => ApiError::Unauthorized {
                    status: status.as_u16(),
                    what,
                    detail,
                },
                404 => ApiError::NotFound { what, detail },
                other => ApiError::Status {
                    status: other,
                    what,
                    detail,
                },
            });
        }
    }
}

/// `Retry-After` as seconds or an HTTP date.
fn retry_after(headers: &reqwest::header::HeaderMap) -> Option<Duration> {
    let value = headers
        .get(reqwest::header::RETRY_AFTER)?
        .to_str()
        .ok()?
        .trim();
    if let Ok(seconds) = value.parse::<u64>() {
        return Some(Duration::from_secs(seconds));
    }
    let at = httpdate::parse_http_date(value).ok()?;
    // Reading the clock here only turns Didit's date into a wait; nothing is decided by it.
    Some(
        at.duration_since(std::time::SystemTime::now())
            .unwrap_or_default(),
    )
}

/// Didit's `{"detail": "…"}`, or the start of whatever the body is.
fn detail_of(body: &[u8]) -> String {
    if let Ok(value) = serde_json::from_slice::<serde_json::Value>(body)
        && let Some(detail) = value.get("detail").and_then(serde_json::Value::as_str)
    {
        return detail.to_owned();
    }
    let text = String::from_utf8_lossy(body);
    let text: String = text.chars().take(200).collect();
    if text.trim().is_empty() {
        "no detail".to_owned()
    } else {
        text
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn acknowledged_means_2xx() {
        let delivery = |status: Option<u16>| Delivery {
            uuid: "d".to_owned(),
            session_id: None,
            response_status: status,
            webhook_type: None,
            created_at: "2026-12-05T10:00:00Z".to_owned(),
        };
        assert!(delivery(Some(200)).acknowledged());
        assert!(delivery(Some(204)).acknowledged());
        assert!(!delivery(Some(503)).acknowledged());
        assert!(!delivery(Some(401)).acknowledged());
        assert!(!delivery(None).acknowledged());
    }

    #[test]
    fn created_at_reads_z_fractions_and_zero_offsets() {
        let at = |text: &str| {
            Delivery {
                uuid: "d".to_owned(),
                session_id: None,
                response_status: None,
                webhook_type: None,
                created_at: text.to_owned(),
            }
            .created_at_unix()
        };
        assert_eq!(at("2026-12-05T10:00:00Z"), Some(1_796_464_800));
        assert_eq!(at("2026-12-05T10:00:00.123456Z"), Some(1_796_464_800));
        assert_eq!(at("2026-12-05T10:00:00+00:00"), Some(1_796_464_800));
        assert_eq!(at("yesterday"), None);
    }

    #[test]
    fn details_come_from_didit_or_the_body() {
        assert_eq!(
            detail_of(br#"{"detail":"Invalid API key."}"#),
            "Invalid API key."
        );
        assert_eq!(
            detail_of(b"<html>bad gateway</html>"),
            "<html>bad gateway</html>"
        );
        assert_eq!(detail_of(b""), "no detail");
    }

    #[test]
    fn retry_after_reads_seconds() {
        let mut headers = reqwest::header::HeaderMap::new();
        headers.insert(
            reqwest::header::RETRY_AFTER,
            reqwest::header::HeaderValue::from_static("7"),
        );
        assert_eq!(retry_after(&headers), Some(Duration::from_secs(7)));
        headers.insert(
            reqwest::header::RETRY_AFTER,
            reqwest::header::HeaderValue::from_static("soon"),
        );
        assert_eq!(retry_after(&headers), None);
    }
}
