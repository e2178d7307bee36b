//! Prometheus metrics: the process-wide recorder, the names riskhook records, and
//! `GET /metrics`.
//!
//! Every name is recorded in one place here or next to the code it measures (the store
//! records commit batches). Labels never carry secrets or personal data: outcomes, rejection
//! reasons, signature schemes, key ids, decisions, the policy hash.

use std::sync::OnceLock;
use std::time::Instant;

use axum::extract::Request;
use axum::http::{HeaderValue, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

/// What a webhook request came to, left in the response's extensions by whoever answered
/// (the verification layer for a rejection, the handler otherwise) for [`track_webhooks`].
#[derive(Debug, Clone)]
pub(crate) struct WebhookOutcome {
    /// `accepted`, `duplicate`, `rejected` or `failed`.
    pub outcome: &'static str,
    /// The rejection code, or empty.
    pub reason: &'static str,
}

/// The process's recorder. Installed once: several apps in one process (tests) share it.
pub(crate) fn handle() -> &'static PrometheusHandle {
    static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
    HANDLE.get_or_init(|| {
        let recorder = PrometheusBuilder::new()
            .set_buckets_for_metric(
                Matcher::Suffix("_seconds".to_owned()),
                &[
                    0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
                ],
            )
            .and_then(|b| {
                b.set_buckets_for_metric(
                    Matcher::Full("riskhook_commit_batch_size".to_owned()),
                    &[1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0, 256.0],
                )
            })
            .and_then(|b| {
                // Outbound attempts wait on someone else's server, up to the notify timeout.
                b.set_buckets_for_metric(
                    Matcher::Full("riskhook_notification_attempt_duration_seconds".to_owned()),
                    &[
                        0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 15.0, 30.0,
                    ],
                )
            })
            .map(PrometheusBuilder::build_recorder);
        match recorder {
            Ok(recorder) => {
                let handle = recorder.handle();
                // Fails only if another recorder is installed already, in which case ours
                // simply stays empty: metrics are never worth failing a start over.
                let _ = metrics::set_global_recorder(recorder);
                handle
            }
            Err(_) => PrometheusBuilder::new().build_recorder().handle(),
        }
    })
}

/// `GET /metrics` in the Prometheus text format.
pub(crate) async fn render() -> Response {
    let mut response = handle().render().into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
    );
    response
}

/// Counts webhook requests by outcome and reason, and times them.
pub(crate) async fn track_webhooks(request: Request, next: Next) -> Response {
    let started = Instant::now();
    let response = next.run(request).await;
    let (outcome, reason) = match response.extensions().get::<WebhookOutcome>() {
        Some(o) => (o.outcome, o.reason),
        None => match response
            .extensions()
            .get::<riskhook_didit::axum::RejectionCode>()
        {
            Some(code) => ("rejected", code.0),
            None if response.status().is_server_error() => ("failed", ""),
            None => ("rejected", "other"),
        },
    };
    metrics::counter!("riskhook_webhook_requests_total", "outcome" => outcome, "reason" => reason)
        .increment(1);
    metrics::histogram!("riskhook_webhook_duration_seconds", "outcome" => outcome)
        .record(started.elapsed().as_secs_f64());
    response
}

/// Records the policy in force: its series set to 1, the previous policy's to 0.
pub(crate) fn policy_in_force(previous: Option<(&str, &str)>, name: &str, hash: &str) {
    if let Some((old_name, old_hash)) = previous {
        metrics::gauge!("riskhook_policy_info", "name" => old_name.to_owned(), "hash" => old_hash.to_owned())
            .set(0.0);
    }
    metrics::gauge!("riskhook_policy_info", "name" => name.to_owned(), "hash" => hash.to_owned())
        .set(1.0);
}

/// A shadow policy decided `to` where the policy in force decided `from`, on a stored event.
pub(crate) fn shadow_disagreement(shadow: String, from: &'static str, to: &'static str) {
    metrics::counter!(
        "riskhook_shadow_disagreements_total",
        "shadow" => shadow,
        "from" => from,
        "to" => to
    )
    .increment(1);
}

/// Counts which key and scheme verified a delivery, so an operator sees when an old secret
/// stops being used and can be revoked.
pub(crate) fn record_verified(verification: &riskhook_didit::webhook::Verification) {
    metrics::counter!(
        "riskhook_webhook_verified_total",
        "scheme" => verification.scheme.as_str(),
        "key_id" => verification.key_id.clone()
    )
    .increment(1);
}

/// Counts one notification attempt by endpoint id and outcome (`delivered`, `retry`,
/// `exhausted`, `gone`) and times it. The endpoint id is the operator's name for it, never its
/// URL or secret, and no user id is a label.
pub(crate) fn notification_attempt(endpoint: &str, outcome: &'static str, seconds: f64) {
    metrics::counter!(
        "riskhook_notifications_total",
        "endpoint" => endpoint.to_owned(),
        "outcome" => outcome
    )
    .increment(1);
    metrics::histogram!(
        "riskhook_notification_attempt_duration_seconds",
        "endpoint" => endpoint.to_owned()
    )
    .record(seconds);
}

/// An HTTP connection was accepted.
pub(crate) fn connection_opened() {
    metrics::gauge!("riskhook_http_connections").increment(1.0);
}

/// An HTTP connection closed: `done` (by the client, an error, or shutdown), or the timeout
/// that closed it (`idle_timeout`, `header_read_timeout`), which is counted.
pub(crate) fn connection_closed(reason: &'static str) {
    metrics::gauge!("riskhook_http_connections").decrement(1.0);
    if reason != "done" {
        metrics::counter!("riskhook_http_connections_timed_out_total", "reason" => reason)
            .increment(1);
    }
}

/// A completed reconciliation run with Didit: what it found, and when it last succeeded.
pub(crate) fn reconcile_run(report: &crate::reconcile::Report, now: i64) {
    metrics::counter!("riskhook_reconcile_runs_total", "outcome" => "completed").increment(1);
    metrics::counter!("riskhook_reconcile_missing_total").increment(report.missing.len() as u64);
    metrics::counter!("riskhook_reconcile_resent_total", "result" => "acknowledged")
        .increment(report.resent() as u64);
    metrics::counter!("riskhook_reconcile_resent_total", "result" => "failed")
        .increment(report.resend_failures() as u64);
    #[allow(clippy::cast_precision_loss)]
    metrics::gauge!("riskhook_reconcile_stale_sessions").set(report.stale.len() as f64);
    #[allow(clippy::cast_precision_loss)]
    metrics::gauge!("riskhook_reconcile_last_success_timestamp_seconds").set(now as f64);
}

/// A reconciliation run that could not complete.
pub(crate) fn reconcile_failed() {
    metrics::counter!("riskhook_reconcile_runs_total", "outcome" => "failed").increment(1);
}

/// Sets how many deliveries are pending in the outbox (refreshed by the dispatcher each poll).
pub(crate) fn outbox_backlog(pending: u64) {
    // `as` loses precision only above 2^53 pending deliveries.
    metrics::gauge!("riskhook_outbox_backlog").set(pending as f64);
}
