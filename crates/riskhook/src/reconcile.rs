//! Reconciliation with Didit: find the deliveries Didit made that riskhook never stored, and
//! ask Didit to resend them; report sessions stuck in a non-final status.
//!
//! Didit retries a failed delivery twice and then drops it, so an outage longer than a few
//! minutes loses events for good unless someone looks. A run lists the destination's attempts
//! over a window, reads the body of each one our endpoint did not acknowledge (or of every one,
//! with [`Check::All`]), and looks its delivery key and content key up in the store exactly as
//! intake deduplicates. Those not found are resent by Didit: they arrive signed, through the
//! normal intake, so reconciliation itself never stores an event. Running it twice is harmless:
//! a resent event is found the second time, and a duplicate resend is a duplicate delivery.
//!
//! Each run appends one `reconcile.run` (or `reconcile.failed`) entry to the audit log and
//! updates the `riskhook_reconcile_*` metrics. Time is passed in.

pub mod api;

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use riskhook_didit::payload::{DiditEvent, SessionStatus};
use riskhook_didit::session::Observation;
use riskhook_store::{NewAuditEntry, Store};
use serde::Serialize;
use tokio::sync::watch;

pub use api::{ApiError, DiditApi};

use crate::config::{Check, ReconcileConfig};

/// The audit action of a completed run.
pub const RECONCILE_RUN: &str = "reconcile.run";
/// The audit action of a run that could not complete.
pub const RECONCILE_FAILED: &str = "reconcile.failed";
/// At most this many stale sessions are reported (and asked of Didit) per run.
const STALE_LIMIT: u32 = 50;

/// What one run is asked to do.
#[derive(Debug, Clone, Copy)]
pub struct Options {
    /// Attempts made at or after this time (Unix seconds).
    pub since: i64,
    /// Attempts made before this time; also the run's `now`.
    pub until: i64,
    /// Which attempts to check.
    pub check: Check,
    /// Report what is missing without asking for resends.
    pub dry_run: bool,
}

/// An event Didit delivered and riskhook does not have.
#[derive(Debug, Clone, Serialize)]
pub struct Missing {
    /// The newest attempt that carried it (the one resent).
    pub delivery: String,
    /// Didit's `event_id`, when the body had one.
    pub event_id: Option<String>,
    /// The session, when the event is about one.
    pub session_id: Option<String>,
    /// The event type.
    pub webhook_type: String,
    /// The status the event reports.
    pub status: Option<String>,
    /// What happened to it: `resent` (our endpoint answered the resend 2xx), `resend_failed`
    /// (Didit or our endpoint failed it: the next run tries again), `not_resent` (dry run, over
    /// `max_resends`, no `event_id` to deduplicate a resend by, or a resend would move its
    /// session's status back).
    pub outcome: &'static str,
    /// What our endpoint answered the resend, or why it failed.
    pub detail: Option<String>,
}

/// A session whose status is not final and has not moved for `stale_after`.
#[derive(Debug, Clone, Serialize)]
pub struct Stale {
    /// The session.
    pub session_id: String,
    /// The user (`vendor_data`).
    pub user_id: Option<String>,
    /// Its status in riskhook.
    pub status: String,
    /// Since when (the body timestamp of the event that set it), Unix seconds.
    pub since: i64,
    /// Its status at Didit now: when it differs, a status change never reached riskhook.
    pub didit_status: Option<String>,
    /// Why Didit was not asked, or what it answered instead of a status.
    pub didit_error: Option<String>,
}

/// What a run found and did.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Report {
    /// The destination reconciled.
    pub destination: String,
    /// The window, Unix seconds.
    pub since: i64,
    /// The window's end, Unix seconds.
    pub until: i64,
    /// Whether resends were asked for.
    pub dry_run: bool,
    /// Attempts listed in the window.
    pub attempts: u64,
    /// Of those, the ones our endpoint did not answer with 2xx.
    pub unacknowledged: u64,
    /// Attempts whose body was read and looked up.
    pub checked: u64,
    /// Of those, found stored: acknowledged after all (a later retry, or an answer Didit
    /// never saw).
    pub stored: u64,
    /// Attempts whose body is not a Didit event riskhook can look up (nothing is resent).
    pub unreadable: Vec<String>,
    /// The events missing, one entry per event.
    pub missing: Vec<Missing>,
    /// Sessions stuck in a non-final status.
    pub stale: Vec<Stale>,
}

impl Report {
    /// How many missing events were resent and acknowledged.
    pub fn resent(&self) -> usize {
        self.count("resent")
    }

    /// How many resends failed.
    pub fn resend_failures(&self) -> usize {
        self.count("resend_failed")
    }

    fn count(&self, outcome: &str) -> usize {
        self.missing.iter().filter(|m| m.outcome == outcome).count()
    }

    /// The audit entry's `after`: the counts and the ids involved (no personal data: ids,
    /// types and statuses only).
    fn audit_json(&self) -> serde_json::Value {
        serde_json::json!({
            "destination": self.destination,
            "since": self.since,
            "until": self.until,
            "dry_run": self.dry_run,
            "attempts": self.attempts,
            "unacknowledged": self.unacknowledged,
            "checked": self.checked,
            "stored": self.stored,
            "unreadable": self.unreadable,
            "missing": self.missing.iter().map(|m| serde_json::json!({
                "delivery": m.delivery,
                "event_id": m.event_id,
                "session_id": m.session_id,
                "outcome": m.outcome,
            })).collect::<Vec<_>>(),
            "stale_sessions": self.stale.iter().map(|s| &s.session_id).collect::<Vec<_>>(),
        })
    }

    /// The report for people.
    pub fn to_text(&self) -> String {
        use std::fmt::Write as _;
        let mut out = String::new();
        let _ = writeln!(
            out,
            "Didit destination {}: attempts from {} to {}{}",
            self.destination,
            crate::time::rfc3339(self.since),
            crate::time::rfc3339(self.until),
            if self.dry_run { " (dry run)" } else { "" }
        );
        let _ = writeln!(
            out,
            "  {} attempts listed, {} not acknowledged; {} checked against the database, {} of them stored",
            self.attempts, self.unacknowledged, self.checked, self.stored
        );
        if !self.unreadable.is_empty() {
            let _ = writeln!(
                out,
                "  {} attempts carry no Didit event riskhook can look up: {}",
                self.unreadable.len(),
                self.unreadable.join(", ")
            );
        }
        if self.missing.is_empty() {
            let _ = writeln!(out, "  no event is missing");
        } else {
            let _ = writeln!(
                out,
                "  {} events missing ({} resent, {} resends failed):",
                self.missing.len(),
                self.resent(),
                self.resend_failures()
            );
            for m in &self.missing {
                let _ = writeln!(
                    out,
                    "    {}  event {}  session {}  {} {}  delivery {}{}",
                    m.outcome,
                    m.event_id.as_deref().unwrap_or("-"),
                    m.session_id.as_deref().unwrap_or("-"),
                    m.webhook_type,
                    m.status.as_deref().unwrap_or(""),
                    m.delivery,
                    m.detail
                        .as_deref()
                        .map(|d| format!(": {d}"))
                        .unwrap_or_default()
                );
            }
        }
        if self.stale.is_empty() {
            let _ = writeln!(out, "  no session is stuck in a non-final status");
        } else {
            let _ = writeln!(
                out,
                "  {} sessions stuck in a non-final status:",
                self.stale.len()
            );
            for s in &self.stale {
                let didit = match (&s.didit_status, &s.didit_error) {
                    (Some(status), _) if *status != s.status => {
                        format!("Didit says {status}: a status change never reached riskhook")
                    }
                    (Some(status), _) => format!("Didit says {status} too"),
                    (None, Some(error)) => format!("Didit not asked: {error}"),
                    (None, None) => "Didit does not know it".to_owned(),
                };
                let _ = writeln!(
                    out,
                    "    {}  user {}  {} since {}  ({didit})",
                    s.session_id,
                    s.user_id.as_deref().unwrap_or("-"),
                    s.status,
                    crate::time::rfc3339(s.since),
                );
            }
        }
        out
    }
}

/// Why a run could not complete.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// Didit's API failed in a way every further call would (see [`ApiError::is_fatal`]).
    #[error(transparent)]
    Api(#[from] ApiError),
    /// The database failed.
    #[error("the database failed: {0}")]
    Store(#[from] riskhook_store::StoreError),
}

/// Runs one reconciliation and records it (audit entry by `actor`, metrics), whether it
/// completed or not. `known` holds attempts found stored by earlier runs of this process, so
/// a periodic job does not read them again; it is updated.
pub async fn run(
    store: &dyn Store,
    api: &DiditApi,
    config: &ReconcileConfig,
    options: Options,
    actor: &str,
    known: &mut HashSet<String>,
) -> Result<Report, RunError> {
    let result = reconcile(store, api, config, options, known).await;
    let subject = format!("didit:destination:{}", config.destination);
    let entry = match &result {
        Ok(report) => {
            crate::metrics::reconcile_run(report, options.until);
            NewAuditEntry::by(
                options.until,
                actor,
                RECONCILE_RUN,
                subject,
                None,
                None,
                &report.audit_json(),
            )
        }
        Err(e) => {
            crate::metrics::reconcile_failed();
            NewAuditEntry::by(
                options.until,
                actor,
                RECONCILE_FAILED,
                subject,
                Some(&e.to_string()),
                None,
                &serde_json::json!({ "since": options.since, "until": options.until }),
            )
        }
    };
    match (store.append_audit(entry).await, result) {
        (Ok(_), result) => result,
        (Err(e), Ok(_)) => Err(e.into()),
        // The run's own failure says more than the audit log's.
        (Err(audit), Err(e)) => {
            tracing::warn!(error = %audit, "cannot record the failed reconciliation in the audit log");
            Err(e)
        }
    }
}

async fn reconcile(
    store: &dyn Store,
    api: &DiditApi,
    config: &ReconcileConfig,
    options: Options,
    known: &mut HashSet<String>,
) -> Result<Report, RunError> {
    let mut report = Report {
        destination: config.destination.clone(),
        since: options.since,
        until: options.until,
        dry_run: options.dry_run,
        ..Report::default()
    };
    let attempts = api
        .deliveries(&day(options.since), &day(options.until))
        .await?;
    // Didit filters by whole days; the window is to the second. An attempt whose time does not
    // read is kept: better looked up once too often than missed.
    let attempts: Vec<_> = attempts
        .into_iter()
        .filter(|a| {
            a.created_at_unix()
                .is_none_or(|t| t >= options.since && t < options.until)
        })
        .collect();
    report.attempts = attempts.len() as u64;
    report.unacknowledged = attempts.iter().filter(|a| !a.acknowledged()).count() as u64;
    let listed: HashSet<&str> = attempts.iter().map(|a| a.uuid.as_str()).collect();
    known.retain(|uuid| listed.contains(uuid.as_str()));

    // Newest first, as Didit lists them: the first attempt seen of a missing event is the one
    // resent.
    let mut missing: Vec<Missing> = Vec::new();
    let mut by_key: HashMap<String, usize> = HashMap::new();
    for attempt in &attempts {
        let wanted = match options.check {
            Check::Failed => !attempt.acknowledged(),
            Check::All => true,
        };
        if !wanted || known.contains(&attempt.uuid) {
            continue;
        }
        let body = match api.delivered_body(&attempt.uuid).await {
            Ok(body) => body,
            Err(e) if e.is_fatal() => return Err(e.into()),
            Err(e) => {
                tracing::warn!(delivery = attempt.uuid, error = %e, "cannot read a delivery's body");
                report.unreadable.push(attempt.uuid.clone());
                continue;
            }
        };
        report.checked += 1;
        let Ok(event) = DiditEvent::from_slice(&body) else {
            report.unreadable.push(attempt.uuid.clone());
            continue;
        };
        let content_key = event.content_key();
        if store
            .find_event(event.delivery_key(), &content_key)
            .await?
            .is_some()
        {
            report.stored += 1;
            known.insert(attempt.uuid.clone());
            continue;
        }
        let key = event
            .delivery_key()
            .map_or_else(|| format!("content:{content_key}"), |k| format!("id:{k}"));
        if by_key.contains_key(&key) {
            continue;
        }
        by_key.insert(key, missing.len());
        let held = moves_session_back(store, &event).await?;
        missing.push(Missing {
            delivery: attempt.uuid.clone(),
            event_id: event.delivery_key().map(str::to_owned),
            session_id: event.session_id().map(str::to_owned),
            webhook_type: event.kind.as_str().to_owned(),
            status: event.status().map(str::to_owned),
            outcome: "not_resent",
            detail: held,
        });
    }

    let mut resends = 0;
    for m in &mut missing {
        // Decided while looking it up (it would move its session back).
        if m.detail.is_some() {
            continue;
        }
        if options.dry_run {
            m.detail = Some("dry run".to_owned());
            continue;
        }
        if m.event_id.is_none() {
            // A resend carries a fresh timestamp, so without an event_id it could not be told
            // from a new event: resending would store it again on every run.
            m.detail = Some(
                "no event_id (a console test?): a resend could not be deduplicated; resend it from Didit's console if it matters".to_owned(),
            );
            continue;
        }
        if resends >= config.max_resends {
            m.detail = Some(format!(
                "over max_resends ({}); the next run resends it",
                config.max_resends
            ));
            continue;
        }
        resends += 1;
        match api.resend(&m.delivery).await {
            Ok(attempt) if attempt.acknowledged() => {
                m.outcome = "resent";
                m.detail = attempt
                    .response_status
                    .map(|s| format!("riskhook answered {s}"));
            }
            Ok(attempt) => {
                m.outcome = "resend_failed";
                m.detail = Some(attempt.response_status.map_or_else(
                    || "riskhook did not answer the resend".to_owned(),
                    |s| format!("riskhook answered the resend {s}"),
                ));
            }
            Err(e) if e.is_fatal() => return Err(e.into()),
            Err(e) => {
                m.outcome = "resend_failed";
                m.detail = Some(e.to_string());
            }
        }
    }
    report.missing = missing;

    let before = options
        .until
        .saturating_sub(i64::try_from(config.stale_after.as_secs()).unwrap_or(i64::MAX));
    for session in store.unfinished_sessions(before, STALE_LIMIT).await? {
        let (didit_status, didit_error) = match api.session_status(&session.session_id).await {
            Ok(status) => (status, None),
            Err(e) if e.is_fatal() => return Err(e.into()),
            Err(e) => (None, Some(e.to_string())),
        };
        report.stale.push(Stale {
            session_id: session.session_id,
            user_id: session.vendor_data,
            status: session.status.as_str().to_owned(),
            since: session.status_timestamp,
            didit_status,
            didit_error,
        });
    }
    Ok(report)
}

/// Why resending `event` would do harm, if it would: a resend carries a fresh timestamp, and a
/// session's status is its greatest observation by timestamp first, so a missed `In Progress`
/// resent after the stored `Approved` would move the session back. Such an event is reported,
/// not resent (its status is already history for the session).
async fn moves_session_back(
    store: &dyn Store,
    event: &DiditEvent,
) -> Result<Option<String>, RunError> {
    let (Some(session_id), Some(status), Some(timestamp)) =
        (event.session_id(), event.status(), event.timestamp)
    else {
        return Ok(None);
    };
    let Some(current) = store.session(session_id).await? else {
        return Ok(None);
    };
    let missed = Observation::new(timestamp, SessionStatus::parse(status));
    let now = Observation::new(
        current.status_timestamp,
        SessionStatus::parse(current.status.as_str()),
    );
    if now.status != missed.status && now.supersedes(&missed) {
        return Ok(Some(format!(
            "the session is {} since {}, later than this {status}: a resend, stamped now, would move it back",
            current.status.as_str(),
            crate::time::rfc3339(current.status_timestamp)
        )));
    }
    Ok(None)
}

/// The UTC day of a Unix time, `YYYY-MM-DD`, as Didit's date filters take it.
fn day(unix: i64) -> String {
    crate::time::rfc3339(unix).chars().take(10).collect()
}

/// `serve`'s periodic job: a run every `interval`, the first one at start, until `stopping`.
pub async fn every(
    store: Arc<dyn Store>,
    config: ReconcileConfig,
    clock: riskhook_didit::axum::Clock,
    mut stopping: watch::Receiver<bool>,
) {
    let api = match DiditApi::new(&config) {
        Ok(api) => api,
        Err(e) => {
            tracing::error!(error = %e, "reconciliation with Didit cannot start");
            return;
        }
    };
    let window = i64::try_from(config.window.as_secs()).unwrap_or(i64::MAX);
    let mut known = HashSet::new();
    loop {
        let now = clock();
        let options = Options {
            since: now.saturating_sub(window),
            until: now,
            check: config.check,
            dry_run: false,
        };
        match run(store.as_ref(), &api, &config, options, "system", &mut known).await {
            Ok(report) => tracing::info!(
                attempts = report.attempts,
                missing = report.missing.len(),
                resent = report.resent(),
                resend_failures = report.resend_failures(),
                stale_sessions = report.stale.len(),
                "reconciled with Didit"
            ),
            Err(e) => {
                tracing::warn!(error = %e, "reconciliation with Didit failed; the next run tries again")
            }
        }
        tokio::select! {
            () = tokio::time::sleep(config.interval) => {}
            _ = stopping.wait_for(|stopping| *stopping) => return,
        }
    }
}
