//! What every request passes on the way in and out, whatever route answers: request heads over
//! our limit get a 431 from us, a client's `X-Request-Id` is kept only when it is plain, and
//! every error answer leaves as an `application/problem+json` body, including the framework's
//! own (unknown route, wrong method, request timeout), which axum and tower-http send empty.
//! A URL that percent-encodes a control character is refused before any route sees it.
//!
//! hyper itself still answers a few requests before any of this runs, with an empty body: it
//! cannot be given one (see README, "Connections, timeouts and limits").

use axum::body::Body;
use axum::extract::Request;
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use riskhook_didit::axum::Problem;

use super::REQUEST_ID;

/// The largest request head (request line and headers) we read. Didit sends ~1 KB. hyper's own
/// buffer (~400 KB) is far larger, so a head between the two gets this problem answer rather
/// than hyper's empty one.
pub(crate) const MAX_HEAD_BYTES: usize = 32 * 1024;

/// The longest `X-Request-Id` kept from a client.
const MAX_REQUEST_ID: usize = 128;

/// Refuses a request whose head is over [`MAX_HEAD_BYTES`] with 431.
pub(crate) async fn limit_head(request: Request, next: Next) -> Response {
    let size = head_size(&request);
    if size > MAX_HEAD_BYTES {
        return Problem::new(
            StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
            "headers-too-large",
            "Request headers too large",
            format!(
                "the request line and headers take {size} bytes; the limit is {MAX_HEAD_BYTES}"
            ),
        )
        .into_response();
    }
    next.run(request).await
}

/// Refuses with 400 a request whose path or query string percent-encodes a control character
/// (`%00`-`%1F`, `%7F`). No id, route or parameter of ours holds one, and decoded they would
/// reach the database (PostgreSQL cannot store or even compare text with U+0000: it would
/// answer 503, retry or not), the logs and the pages. hyper already refuses them unencoded.
pub(crate) async fn refuse_encoded_controls(request: Request, next: Next) -> Response {
    let encoded = request
        .uri()
        .path_and_query()
        .and_then(|p| encoded_control(p.as_str()));
    if let Some(byte) = encoded {
        return Problem::new(
            StatusCode::BAD_REQUEST,
            "malformed-url",
            "Malformed URL",
            format!(
                "the path or query encodes the control character %{byte:02X}; no id or parameter holds one"
            ),
        )
        .into_response();
    }
    next.run(request).await
}

/// The first percent-encoded control byte in `text`.
fn encoded_control(text: &str) -> Option<u8> {
    text.as_bytes().windows(3).find_map(|w| match w {
        [b'%', hi, lo] if hi.is_ascii_hexdigit() && lo.is_ascii_hexdigit() => {
            let byte = u8::from_str_radix(std::str::from_utf8(&w[1..]).ok()?, 16).ok()?;
            (byte < 0x20 || byte == 0x7F).then_some(byte)
        }
        _ => None,
    })
}

/// The request line and headers as they were on the wire, give or take whitespace.
fn head_size<B>(request: &Request<B>) -> usize {
    let line = request.method().as_str().len()
        + request
            .uri()
            .path_and_query()
            .map_or(1, |p| p.as_str().len())
        + " HTTP/1.1\r\n ".len();
    request.headers().iter().fold(line, |sum, (name, value)| {
        sum + name.as_str().len() + value.len() + ": \r\n".len()
    })
}

/// Drops a client's `X-Request-Id` unless it is 1 to 128 of `A-Z a-z 0-9 - _ . :`, so that
/// `SetRequestIdLayer` gives the request a fresh one. The id goes into every log line of the
/// request: a newline, an ANSI escape or `key=value` in it would let a client forge or hide log
/// lines.
pub(crate) fn sanitise_request_id(mut request: Request) -> Request {
    let plain = request
        .headers()
        .get(REQUEST_ID)
        .is_none_or(|v| is_plain_id(v.as_bytes()));
    if !plain {
        request.headers_mut().remove(REQUEST_ID);
    }
    request
}

fn is_plain_id(id: &[u8]) -> bool {
    (1..=MAX_REQUEST_ID).contains(&id.len())
        && id
            .iter()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b':'))
}

/// Gives an error response that is not already a problem a problem body for its status,
/// keeping its other headers (`Allow` on a 405, for one). A short plain-text body of a 4xx
/// (axum's extractor rejections) becomes the `detail`; a 5xx never says more than its status.
pub(crate) async fn problem_bodies(response: Response) -> Response {
    let status = response.status();
    // Only the framework's answers are rewritten: those without a body type (404, 405, the
    // timeout's 503) and axum's plain-text rejections. A body a handler chose (problem+json,
    // or `/readyz`'s JSON naming the failing dependency) is kept as it is.
    let chosen_body = response
        .headers()
        .get(header::CONTENT_TYPE)
        .is_some_and(|v| !v.as_bytes().starts_with(b"text/plain"));
    if !(status.is_client_error() || status.is_server_error()) || chosen_body {
        return response;
    }
    let (mut parts, body) = response.into_parts();
    let text = if status.is_client_error() && is_plain_text(&parts.headers) {
        axum::body::to_bytes(body, 1024)
            .await
            .ok()
            .and_then(|b| String::from_utf8(b.to_vec()).ok())
            .filter(|t| !t.trim().is_empty())
    } else {
        None
    };
    let problem = problem_for(status, text);
    parts.headers.remove(header::CONTENT_LENGTH);
    parts.headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/problem+json"),
    );
    if status == StatusCode::SERVICE_UNAVAILABLE && !parts.headers.contains_key(header::RETRY_AFTER)
    {
        parts
            .headers
            .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
    }
    let body = serde_json::to_vec(&problem).unwrap_or_default();
    Response::from_parts(parts, Body::from(body))
}

fn is_plain_text(headers: &axum::http::HeaderMap) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes().starts_with(b"text/plain"))
}

/// The problem for a bare status.
fn problem_for(status: StatusCode, text: Option<String>) -> Problem {
    let (code, title, detail) = match status {
        StatusCode::BAD_REQUEST => ("bad-request", "Bad request", "the request is malformed"),
        StatusCode::NOT_FOUND => (
            "not-found",
            "Not found",
            "no route matches this path; see /openapi.json",
        ),
        StatusCode::METHOD_NOT_ALLOWED => (
            "method-not-allowed",
            "Method not allowed",
            "this path does not take this method; the Allow header lists those it takes",
        ),
        StatusCode::PAYLOAD_TOO_LARGE => (
            "body-too-large",
            "Request body too large",
            "the body exceeds the limit",
        ),
        StatusCode::UNSUPPORTED_MEDIA_TYPE => (
            "unsupported-media-type",
            "Unsupported media type",
            "send the body as application/json",
        ),
        StatusCode::UNPROCESSABLE_ENTITY => (
            "invalid-request",
            "Invalid request",
            "the request is well-formed but not acceptable",
        ),
        StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE => (
            "headers-too-large",
            "Request headers too large",
            "the request line and headers are over the limit",
        ),
        StatusCode::SERVICE_UNAVAILABLE => (
            "unavailable",
            "Service unavailable",
            // The only bare 503 is the request timeout: the body arrived too slowly, or the
            // answer took too long. Didit retries 5xx.
            "the request was not completed in time; nothing may have been stored; retry later",
        ),
        s if s.is_server_error() => (
            "internal-error",
            "Internal error",
            "the request failed on our side; retry later",
        ),
        _ => (
            "error",
            status.canonical_reason().unwrap_or("Request failed"),
            "the request could not be handled",
        ),
    };
    Problem::new(
        status,
        code,
        title,
        text.unwrap_or_else(|| detail.to_owned()),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_plain_request_ids_are_kept() {
        for ok in [
            "a",
            "0f8c2d1e-8b1a-4c9e-9d4e-2f6b3a1c7e55",
            "req_1.2:3",
            &"x".repeat(128),
        ] {
            assert!(is_plain_id(ok.as_bytes()), "{ok}");
        }
        for bad in [
            "",
            "a\nb",
            "a\rINFO forged",
            "\x1b[31mred",
            "id request_id=forged",
            "a=b",
            "\"quoted\"",
            "é",
            &"x".repeat(129),
        ] {
            assert!(!is_plain_id(bad.as_bytes()), "{bad:?}");
        }
    }

    #[test]
    fn encoded_control_characters_are_found_in_any_case_and_nothing_else_is() {
        for (text, byte) in [
            ("/v1/users/a%00b", 0x00),
            ("/v1/cases?after=x%0a", 0x0A),
            ("/v1/cases?after=x%0D%0A", 0x0D),
            ("/ui/users/%1f", 0x1F),
            ("/v1/audit?subject=%7f", 0x7F),
            ("/%zz%00", 0x00),
        ] {
            assert_eq!(encoded_control(text), Some(byte), "{text}");
        }
        for text in [
            "/v1/users/user-42",
            "/v1/users/a%20b%2Fc%25",
            "/v1/users/a%2500",
            "/v1/users/usu%C3%A1rio",
            "/v1/users/%C2%85",
            "/x?q=%+1&r=%0",
            "/x?q=%",
        ] {
            assert_eq!(encoded_control(text), None, "{text}");
        }
    }

    #[test]
    fn the_head_size_counts_the_request_line_and_every_header() {
        let request = Request::builder()
            .method("GET")
            .uri("/healthz?x=1")
            .header("x-a", "12345")
            .body(())
            .expect("a valid request");
        // "GET" + "/healthz?x=1" + " HTTP/1.1\r\n " + "x-a" + "12345" + ": \r\n"
        assert_eq!(head_size(&request), 3 + 12 + 12 + 3 + 5 + 4);
    }

    #[test]
    fn every_status_gets_a_problem_with_a_code() {
        for code in [400u16, 404, 405, 408, 413, 415, 422, 431, 500, 502, 503] {
            let status = StatusCode::from_u16(code).expect("a status");
            let problem = problem_for(status, None);
            assert_eq!(problem.status, code);
            assert!(!problem.code.is_empty() && !problem.detail.is_empty());
        }
        let rejected = problem_for(StatusCode::BAD_REQUEST, Some("bad query".to_owned()));
        assert_eq!(rejected.detail, "bad query");
    }
}
