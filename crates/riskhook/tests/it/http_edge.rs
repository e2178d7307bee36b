//! The HTTP edge under attack (issue 11): slow and idle connections are closed and cannot
//! starve the service, every error is a problem body, a client's request id cannot forge log
//! lines, and a flood of refusals is a trickle of log lines but an exact count in the metrics.
//!
//! Waits are bounded and generous; nothing here asserts how long anything took.

use std::io::Write;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Body;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tower::ServiceExt;

use crate::helpers::{app_router, oneshot, spawn_app_with, test_config};

/// Far longer than any timeout configured below: reaching it means the server never acted.
const PATIENCE: Duration = Duration::from_secs(30);

/// Reads until the server closes the connection; `None` if it is still open after `PATIENCE`.
async fn read_until_closed(stream: &mut TcpStream) -> Option<Vec<u8>> {
    let mut seen = Vec::new();
    let mut buf = [0u8; 4096];
    let read = async {
        loop {
            match stream.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(n) => seen.extend_from_slice(&buf[..n]),
            }
        }
    };
    tokio::time::timeout(PATIENCE, read).await.ok()?;
    Some(seen)
}

/// Reads one response whose body has a `content-length`, leaving the connection open.
async fn read_response(stream: &mut TcpStream) -> String {
    let mut seen = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        let n = tokio::time::timeout(PATIENCE, stream.read(&mut buf))
            .await
            .expect("an answer")
            .unwrap();
        assert!(n > 0, "closed before a whole response");
        seen.extend_from_slice(&buf[..n]);
        let text = String::from_utf8_lossy(&seen).into_owned();
        if let Some(end) = text.find("\r\n\r\n") {
            let length: usize = text[..end]
                .lines()
                .find_map(|l| {
                    let (name, value) = l.split_once(':')?;
                    name.eq_ignore_ascii_case("content-length")
                        .then(|| value.trim().parse().unwrap())
                })
                .unwrap();
            if seen.len() >= end + 4 + length {
                return text;
            }
        }
    }
}

async fn connect_and_send(addr: std::net::SocketAddr, bytes: &[u8]) -> TcpStream {
    let mut stream = TcpStream::connect(addr).await.unwrap();
    stream.write_all(bytes).await.unwrap();
    stream.flush().await.unwrap();
    stream
}

const PARTIAL_HEAD: &[u8] = b"GET /healthz HTTP/1.1\r\nhost: riskhook\r\nx-slow: ";

#[tokio::test]
async fn a_connection_sending_partial_headers_is_closed_after_the_header_read_timeout() {
    let app = spawn_app_with(&[
        ("RISKHOOK_HEADER_READ_TIMEOUT", "300ms"),
        ("RISKHOOK_IDLE_TIMEOUT", "1h"),
    ])
    .await;
    let mut slow = connect_and_send(app.addr, PARTIAL_HEAD).await;
    let seen = read_until_closed(&mut slow).await;
    assert!(
        seen.is_some(),
        "a partial head must not hold a connection open"
    );
    app.stop().await;
}

#[tokio::test]
async fn an_idle_keep_alive_connection_is_closed_after_the_idle_timeout() {
    let app = spawn_app_with(&[
        ("RISKHOOK_HEADER_READ_TIMEOUT", "1h"),
        ("RISKHOOK_IDLE_TIMEOUT", "300ms"),
    ])
    .await;
    let mut stream =
        connect_and_send(app.addr, b"GET /healthz HTTP/1.1\r\nhost: riskhook\r\n\r\n").await;
    let response = read_response(&mut stream).await;
    assert!(response.starts_with("HTTP/1.1 200"), "{response}");
    // Kept alive, then left idle: the server closes it.
    assert_eq!(read_until_closed(&mut stream).await, Some(Vec::new()));
    // A connection that never sends a byte is idle too.
    let mut silent = TcpStream::connect(app.addr).await.unwrap();
    assert_eq!(read_until_closed(&mut silent).await, Some(Vec::new()));
    app.stop().await;
}

#[tokio::test]
async fn with_the_connection_limit_full_of_slow_headers_a_request_waits_and_is_then_served() {
    // Timeouts long enough that the slow connections cannot expire before the check that
    // the third request is waiting.
    let app = spawn_app_with(&[
        ("RISKHOOK_MAX_CONNECTIONS", "2"),
        ("RISKHOOK_HEADER_READ_TIMEOUT", "5s"),
        ("RISKHOOK_IDLE_TIMEOUT", "5s"),
    ])
    .await;
    let mut slow = Vec::new();
    for _ in 0..2 {
        slow.push(connect_and_send(app.addr, PARTIAL_HEAD).await);
    }
    let mut normal = connect_and_send(
        app.addr,
        b"GET /healthz HTTP/1.1\r\nhost: riskhook\r\nconnection: close\r\n\r\n",
    )
    .await;
    let mut byte = [0u8; 1];
    let early = tokio::time::timeout(Duration::from_millis(500), normal.read(&mut byte)).await;
    assert!(
        early.is_err(),
        "over the limit, a connection waits in the backlog: {early:?}"
    );
    // Once the slow ones time out, it is accepted and answered.
    let answer = read_until_closed(&mut normal).await.expect("answered");
    let answer = format!("{}{}", byte[0] as char, String::from_utf8_lossy(&answer));
    assert!(answer.contains("HTTP/1.1 200"), "{answer}");
    for mut s in slow {
        assert!(read_until_closed(&mut s).await.is_some());
    }
    app.stop().await;
}

#[tokio::test]
async fn framework_answers_are_problem_bodies() {
    let (router, _dir) = app_router().await;
    let (status, content_type, body) = oneshot(&router, "GET", "/no/such/route", None).await;
    assert_eq!(status, 404);
    assert_eq!(content_type.as_deref(), Some("application/problem+json"));
    assert_eq!(body["code"], "not-found");
    assert_eq!(body["status"], 404);

    let response = router
        .clone()
        .oneshot(
            axum::http::Request::get("/webhooks/didit")
                .body(Body::empty())
                .unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(response.status(), 405);
    assert!(response.headers().contains_key("allow"), "{response:?}");
    let (status, content_type, body) = oneshot(&router, "GET", "/webhooks/didit", None).await;
    assert_eq!(status, 405);
    assert_eq!(content_type.as_deref(), Some("application/problem+json"));
    assert_eq!(body["code"], "method-not-allowed");

    // A head between our limit (32 KiB) and hyper's buffer gets our 431 with a body.
    let response = router
        .clone()
        .oneshot(
            axum::http::Request::get("/healthz")
                .header("x-big", "a".repeat(40 * 1024))
                .body(Body::empty())
                .unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(response.status(), 431);
    assert_eq!(
        response.headers()["content-type"],
        "application/problem+json"
    );
    let body = axum::body::to_bytes(response.into_body(), 1 << 16)
        .await
        .unwrap();
    let body: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(body["code"], "headers-too-large");
}

#[tokio::test]
async fn over_tcp_a_slow_body_and_a_big_head_get_problem_bodies_and_bad_framing_a_bare_400() {
    let app = spawn_app_with(&[("RISKHOOK_REQUEST_TIMEOUT", "300ms")]).await;
    // The body never arrives in full: the request timeout answers 503.
    let mut stream = connect_and_send(
        app.addr,
        b"POST /webhooks/didit HTTP/1.1\r\nhost: riskhook\r\ncontent-type: application/json\r\ncontent-length: 100\r\n\r\n{\"a\":",
    )
    .await;
    let response = read_response(&mut stream).await;
    assert!(response.starts_with("HTTP/1.1 503"), "{response}");
    assert!(
        response.contains("content-type: application/problem+json"),
        "{response}"
    );
    assert!(response.contains("\"code\":\"unavailable\""), "{response}");

    let big = format!(
        "GET /healthz HTTP/1.1\r\nhost: riskhook\r\nx-big: {}\r\n\r\n",
        "a".repeat(40 * 1024)
    );
    let mut stream = connect_and_send(app.addr, big.as_bytes()).await;
    let response = read_response(&mut stream).await;
    assert!(response.starts_with("HTTP/1.1 431"), "{response}");
    assert!(
        response.contains("\"code\":\"headers-too-large\""),
        "{response}"
    );

    // hyper answers a request it cannot parse before any of our code runs: no body can be
    // given (README, "Connections, timeouts and limits").
    let mut stream =
        connect_and_send(app.addr, b"GET /healthz HTTP/1.1\r\nbad header\r\n\r\n").await;
    let response = String::from_utf8(read_until_closed(&mut stream).await.unwrap()).unwrap();
    assert!(response.starts_with("HTTP/1.1 400"), "{response}");
    app.stop().await;
}

#[tokio::test]
async fn a_client_request_id_is_kept_only_when_plain() {
    let (router, _dir) = app_router().await;
    let id_of = |value: &'static str| {
        let router = router.clone();
        async move {
            let response = router
                .oneshot(
                    axum::http::Request::get("/healthz")
                        .header("x-request-id", value)
                        .body(Body::empty())
                        .unwrap(),
                )
                .await
                .unwrap();
            response.headers()["x-request-id"]
                .to_str()
                .unwrap()
                .to_owned()
        }
    };
    assert_eq!(id_of("didit-7f3a.1:2").await, "didit-7f3a.1:2");
    for forged in [
        "x method=DELETE path=/v1/admin",
        "\"quoted\" status=200",
        "a\tb",
    ] {
        let id = id_of(forged).await;
        assert_ne!(id, forged);
        assert!(uuid::Uuid::parse_str(&id).is_ok(), "{id}");
    }
}

/// Log lines written under a test's own subscriber.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Captured {
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap()).into_owned()
    }
}

#[tokio::test(flavor = "current_thread")]
async fn a_flood_of_refusals_logs_a_bounded_number_of_lines_and_counts_every_one() {
    // This thread's own subscriber and recorder: other tests running in parallel write neither.
    let logs = Captured::default();
    let writer = logs.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::INFO)
        .with_ansi(false)
        .with_writer(move || writer.clone())
        .finish();
    let _logging = tracing::subscriber::set_default(subscriber);
    let recorder = metrics_exporter_prometheus::PrometheusBuilder::new().build_recorder();
    let metrics = recorder.handle();
    let _metrics = metrics::set_default_local_recorder(&recorder);

    let dir = tempfile::tempdir().unwrap();
    let config = test_config(
        &format!("sqlite://{}", dir.path().join("riskhook.db").display()),
        &[],
    );
    let second = Arc::new(AtomicI64::new(1_800_000_000));
    let clock_second = second.clone();
    let state = riskhook::state::AppState {
        store: riskhook::store::open(&config.database_url).await.unwrap(),
        config: Arc::new(config),
        policy: Arc::new(riskhook::policy::PolicyHandle::load(None).unwrap()),
        clock: Arc::new(move || clock_second.load(Ordering::SeqCst)),
        outbox: Arc::default(),
    };
    let router = riskhook::routes::router(state);
    let junk = |request_id: &'static str| {
        axum::http::Request::post("/webhooks/didit")
            .header("content-type", "application/json")
            .header("x-request-id", request_id)
            .body(Body::from("{}"))
            .unwrap()
    };
    const FLOOD: usize = 500;
    for _ in 0..FLOOD {
        let response = router
            .clone()
            .oneshot(junk("x request_id=forged"))
            .await
            .unwrap();
        assert_eq!(response.status(), 401);
    }
    // The next second: its first refusal is logged, after a summary of those left out.
    second.fetch_add(1, Ordering::SeqCst);
    router.clone().oneshot(junk("plain-id")).await.unwrap();

    let text = logs.text();
    let refusals = text.matches("didit webhook rejected").count();
    assert_eq!(
        refusals,
        usize::try_from(riskhook_didit::axum::DiditWebhookLayer::DEFAULT_REFUSAL_LOG_LINES)
            .unwrap()
            + 1,
        "{text}"
    );
    let left_out = FLOOD
        - usize::try_from(riskhook_didit::axum::DiditWebhookLayer::DEFAULT_REFUSAL_LOG_LINES)
            .unwrap();
    assert!(
        text.contains(&format!(
            "{left_out} more didit webhook refusals were not logged"
        )),
        "{text}"
    );
    // Nothing else but the summary (and, from opening the fresh database, its migrations).
    let lines = text.lines().filter(|l| !l.contains("database migrations"));
    assert!(lines.count() <= refusals + 1, "{text}");
    // A client's request id cannot add a field to a line.
    assert!(!text.contains("request_id=forged"), "{text}");
    assert!(text.contains("request_id=plain-id"), "{text}");

    let rendered = metrics.render();
    let counted: usize = rendered
        .lines()
        .find(|l| {
            l.starts_with("riskhook_webhook_requests_total{")
                && l.contains("outcome=\"rejected\"")
                && l.contains("reason=\"missing-timestamp\"")
        })
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("no refusal counted: {rendered}"));
    assert_eq!(counted, FLOOD + 1);
}
