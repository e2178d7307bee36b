//! Building and sending deliveries exactly as Didit would: what `riskhook sign` and
//! `riskhook send` do, and what the tests use to talk to a running service.

use std::time::{Duration, UNIX_EPOCH};

use anyhow::Context;
use riskhook_didit::signature::{Key, SignedHeaders};

/// Sets the body's `timestamp` to `timestamp`, as Didit stamps a delivery when it sends it.
///
/// A flat envelope gets Unix seconds; a nested one (whose `timestamp` is an ISO-8601 string)
/// gets an RFC 3339 string. The result is compact JSON with sorted keys, the way Didit
/// serialises. A body that is not a JSON object is returned unchanged.
pub fn restamp(body: &[u8], timestamp: i64) -> Vec<u8> {
    let Ok(serde_json::Value::Object(mut map)) = serde_json::from_slice(body) else {
        return body.to_vec();
    };
    stamp(&mut map, timestamp);
    serde_json::to_vec(&map).unwrap_or_else(|_| body.to_vec())
}

/// Sets an envelope's `timestamp` in the form it already uses: Unix seconds (flat envelope) or
/// an RFC 3339 string (nested envelope).
fn stamp(envelope: &mut serde_json::Map<String, serde_json::Value>, timestamp: i64) {
    let iso = envelope
        .get("timestamp")
        .is_some_and(serde_json::Value::is_string);
    let value = if iso {
        let t = UNIX_EPOCH + Duration::from_secs(u64::try_from(timestamp).unwrap_or(0));
        serde_json::Value::from(humantime::format_rfc3339_seconds(t).to_string())
    } else {
        serde_json::Value::from(timestamp)
    };
    envelope.insert("timestamp".to_owned(), value);
}

/// A POST of `body` with the headers Didit sends: its content type, its user agent and the
/// given signature headers.
fn didit_request<'a>(
    client: &reqwest::Client,
    url: &str,
    signature_headers: impl IntoIterator<Item = (&'a str, &'a str)>,
    body: Vec<u8>,
) -> reqwest::RequestBuilder {
    let mut request = client
        .post(url)
        .header("content-type", "application/json")
        .header("user-agent", "DiditWebhook/2.0 +https://didit.me");
    for (name, value) in signature_headers {
        request = request.header(name, value);
    }
    request.body(body)
}

/// The body's own integer `timestamp`, if it has one.
pub fn body_timestamp(body: &[u8]) -> Option<i64> {
    serde_json::from_slice::<serde_json::Value>(body)
        .ok()?
        .get("timestamp")?
        .as_i64()
}

/// The response to a sent delivery.
#[derive(Debug)]
pub struct SendOutcome {
    /// HTTP status.
    pub status: u16,
    /// `Content-Type`, if any.
    pub content_type: Option<String>,
    /// The body, as text.
    pub body: String,
}

/// POSTs `body` to `url` with Didit's headers, signed with `key` at `timestamp`.
pub async fn send(
    client: &reqwest::Client,
    url: &str,
    key: &Key,
    body: Vec<u8>,
    timestamp: i64,
) -> anyhow::Result<SendOutcome> {
    let headers = SignedHeaders::sign(key, &body, timestamp);
    let response = didit_request(client, url, headers.pairs(), body)
        .send()
        .await
        .with_context(|| format!("cannot POST to {url}"))?;
    let status = response.status().as_u16();
    let content_type = response
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let body = response.text().await.context("cannot read the response")?;
    Ok(SendOutcome {
        status,
        content_type,
        body,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn restamp_sets_flat_and_nested_timestamps() {
        let flat = restamp(
            br#"{"webhook_type":"status.updated","timestamp":1}"#,
            1_780_045_046,
        );
        assert_eq!(
            flat,
            br#"{"timestamp":1780045046,"webhook_type":"status.updated"}"#
        );
        assert_eq!(body_timestamp(&flat), Some(1_780_045_046));
        let nested = restamp(
            br#"{"event":"user.status.updated","timestamp":"2020-01-01T00:00:00Z"}"#,
            1_780_047_446,
        );
        assert_eq!(
            nested,
            br#"{"event":"user.status.updated","timestamp":"2026-05-29T09:37:26Z"}"#
        );
        assert_eq!(restamp(b"not json", 5), b"not json");
    }
}
