//! The workbench's pages (GET): the queue, a case, a user, pending approvals, the audit log
//! with its verification, notification deliveries and the policy in force. Each reads through
//! the store like `/v1` does and turns records into the view models of [`super::views`].

use std::time::Duration;

use std::sync::Arc;

use axum::Extension;
use axum::extract::{Path, Query, State};
use axum::response::Response;
use riskhook_core::assessment::{Decision, Firing, NotEvaluated, UserStatus};
use riskhook_core::review::{ActionStatus, CaseStatus};
use riskhook_store::{
    ActionRecord, AssessmentRecord, CaseFilter, CaseRecord, DeliveryFilter, DeliveryStatus,
    EventRecord, Role, StoreError, UserRecord,
};
use serde::Deserialize;

use super::session::Analyst;
use super::views::{
    ActionRow, ApprovalsPage, AuditPage, AuditRow, CasePage, CaseView, Chrome, DeliveriesPage,
    DeliveryRow, EvidenceView, FiredRow, NotEvaluatedRow, PolicyPage, QueuePage, QueueRow, RuleRow,
    TimelineRow, UserCaseRow, UserPage, UserView, choices,
};
use super::{UiError, redirect, render};
use crate::audit::ChainWatch;
use crate::state::AppState;
use crate::words;

/// Rows per page of the queue and the audit log.
const PAGE: u32 = 50;
/// How many of a user's events the case and user pages show.
const TIMELINE: u32 = 200;

fn chrome(analyst: &Analyst, tab: &'static str, title: impl Into<String>) -> Chrome {
    Chrome {
        principal: analyst.caller.principal.clone(),
        key_id: analyst.caller.key_id.clone(),
        role: analyst.caller.role.as_str(),
        can_review: analyst.can(Role::Review),
        is_admin: analyst.can(Role::Admin),
        csrf: analyst.csrf().to_owned(),
        flash: analyst.flash.clone(),
        tab,
        title: title.into(),
    }
}

/// A form field left empty is no filter.
fn given(field: Option<&String>) -> Option<&str> {
    field.map(|s| s.trim()).filter(|s| !s.is_empty())
}

// --- Queue ----------------------------------------------------------------------------------

#[derive(Debug, Default, Deserialize)]
pub(crate) struct QueueQuery {
    status: Option<String>,
    decision: Option<String>,
    assignee: Option<String>,
    mine: Option<String>,
    older_than: Option<String>,
    after: Option<String>,
}

const STATUS_CHOICES: &[(&str, &str)] = &[
    ("unresolved", "not resolved"),
    ("open", "open"),
    ("claimed", "claimed"),
    ("pending_approval", "waiting for approval"),
    ("resolved", "resolved"),
    ("all", "all"),
];

const DECISION_CHOICES: &[(&str, &str)] =
    &[("", "any"), ("review", "review"), ("freeze", "freeze")];

/// Review cases, oldest first, filtered, counted and paged.
pub(crate) async fn queue(
    State(state): State<AppState>,
    analyst: Analyst,
    Query(query): Query<QueueQuery>,
) -> Result<Response, UiError> {
    let now = (state.clock)();
    let mut problems = Vec::new();
    let status_text = given(query.status.as_ref()).unwrap_or("unresolved");
    let (status, unresolved) = match status_text {
        "unresolved" => (None, true),
        "all" => (None, false),
        other => match CaseStatus::parse(other) {
            Some(s) => (Some(s), false),
            None => {
                problems.push(format!("status `{other}` is not one of the choices"));
                (None, true)
            }
        },
    };
    let decision = match given(query.decision.as_ref()) {
        None => None,
        Some(d) => match Decision::parse(d) {
            Some(d) => Some(d),
            None => {
                problems.push(format!("decision `{d}` is not review or freeze"));
                None
            }
        },
    };
    let mine = given(query.mine.as_ref()).is_some();
    let assignee = if mine {
        Some(analyst.caller.key_id.clone())
    } else {
        given(query.assignee.as_ref()).map(str::to_owned)
    };
    let older_than = given(query.older_than.as_ref()).map(str::to_owned);
    let opened_before = match older_than.as_deref() {
        None => None,
        Some(text) => match parse_age(text) {
            Some(age) => Some(now.saturating_sub(i64::try_from(age.as_secs()).unwrap_or(i64::MAX))),
            None => {
                problems.push(format!(
                    "older than `{text}`: give a duration such as 15m, 2h or 3days"
                ));
                None
            }
        },
    };
    let filter = CaseFilter {
        status,
        unresolved,
        assignee: assignee.clone(),
        decision,
        opened_before,
        user_id: None,
        after: given(query.after.as_ref()).map(str::to_owned),
        limit: PAGE,
    };
    let count = state.store.count_cases(&filter).await?;
    let cases = state.store.cases(&filter).await?;
    let mut rows = Vec::with_capacity(cases.len());
    for case in &cases {
        let user = state.store.user(&case.user_id).await?;
        rows.push(QueueRow {
            case_id: case.id.clone(),
            user_id: case.user_id.clone(),
            status: words::case_status(case.status),
            decision: case.decision.as_str(),
            score: user
                .as_ref()
                .map_or_else(String::new, |u| u.score.to_string()),
            user_status: user.as_ref().map_or("", |u| words::user_status(u.status)),
            assignee: case.assignee.clone().unwrap_or_default(),
            age: words::age(now, case.opened_at),
            opened: words::time(case.opened_at),
            opened_rfc3339: words::rfc3339(case.opened_at),
        });
    }
    // The filters, kept across pages.
    let mut kept = vec![("status", status_text.to_owned())];
    if let Some(d) = decision {
        kept.push(("decision", d.as_str().to_owned()));
    }
    if mine {
        kept.push(("mine", "1".to_owned()));
    } else if let Some(a) = &assignee {
        kept.push(("assignee", a.clone()));
    }
    if let Some(o) = &older_than {
        kept.push(("older_than", o.clone()));
    }
    let query_of = |extra: Option<(&'static str, String)>| {
        let mut pairs = kept.clone();
        pairs.extend(extra);
        pairs
            .iter()
            .map(|(k, v)| format!("{k}={}", super::percent_encode(v)))
            .collect::<Vec<_>>()
            .join("&")
    };
    let next_page = (cases.len() == PAGE as usize)
        .then(|| {
            cases
                .last()
                .map(|c| query_of(Some(("after", c.id.clone()))))
        })
        .flatten();
    let first_page = query.after.as_ref().map(|_| query_of(None));
    let page = QueuePage {
        chrome: chrome(&analyst, "queue", "Review queue"),
        rows,
        count,
        statuses: choices(STATUS_CHOICES, status_text),
        decisions: choices(DECISION_CHOICES, decision.map_or("", |d| d.as_str())),
        assignee: if mine {
            String::new()
        } else {
            assignee.unwrap_or_default()
        },
        mine,
        older_than: older_than.unwrap_or_default(),
        problem: problems.join("; "),
        next_page,
        first_page,
    };
    render(&page)
}

/// `90s`, `15m`, `2h`, `3days` (humantime) or a number of seconds.
fn parse_age(text: &str) -> Option<Duration> {
    text.parse::<u64>()
        .map(Duration::from_secs)
        .ok()
        .or_else(|| humantime::parse_duration(text).ok())
}

// --- Case -----------------------------------------------------------------------------------

/// A case: the user, every piece of evidence with each rule that fired, and the timeline.
pub(crate) async fn case(
    State(state): State<AppState>,
    analyst: Analyst,
    Path(id): Path<String>,
) -> Result<Response, UiError> {
    let now = (state.clock)();
    let file = riskhook_store::case_file(state.store.as_ref(), &id)
        .await?
        .ok_or_else(|| UiError::NotFound(format!("No case {id}.")))?;
    let (case, user) = (file.case, file.user);
    let evidence = file
        .evidence
        .into_iter()
        .map(evidence_view)
        .collect::<Result<Vec<_>, _>>()?;
    let timeline = timeline(&state, &case.user_id).await?;
    let outcomes = choices(
        &[
            ("approve", "approve: the user becomes active"),
            ("decline", "decline: refuse the user"),
            ("freeze", "freeze: stop the account"),
            ("unfreeze", "unfreeze: lift the freeze"),
        ],
        "",
    );
    let page = CasePage {
        back: format!("/ui/cases/{}", super::percent_encode(&case.id)),
        chrome: chrome(&analyst, "queue", format!("Case {}", case.id)),
        case: case_view(&case, &analyst, now),
        user: user_view(&user),
        evidence,
        timeline,
        outcomes,
    };
    render(&page)
}

fn case_view(case: &CaseRecord, analyst: &Analyst, now: i64) -> CaseView {
    CaseView {
        id: case.id.clone(),
        status: words::case_status(case.status),
        decision: case.decision.as_str(),
        assignee: case.assignee.clone().unwrap_or_default(),
        mine: case.assignee.as_deref() == Some(analyst.caller.key_id.as_str()),
        opened: words::time(case.opened_at),
        age: words::ago(now, case.opened_at),
        resolved: case.status == CaseStatus::Resolved,
        pending: case.status == CaseStatus::PendingApproval,
        outcome: case
            .outcome
            .map(words::outcome)
            .unwrap_or_default()
            .to_owned(),
        reason: case.reason.clone().unwrap_or_default(),
        resolved_by: case.resolved_by.clone().unwrap_or_default(),
    }
}

fn user_view(user: &UserRecord) -> UserView {
    UserView {
        user_id: user.user_id.clone(),
        status: words::user_status(user.status),
        verdict: user
            .verdict
            .map_or("nobody has acted yet", words::user_status),
        score: user.score,
        decision: user.decision.as_str(),
        ever_frozen: user.ever_frozen,
        sessions: user.sessions.clone(),
        first_seen: words::time(user.first_seen_at),
        updated: words::time(user.updated_at),
        frozen: user.status == UserStatus::Frozen,
        status_class: user.status.as_str(),
    }
}

/// The parts of a stored assessment the pages show.
#[derive(Deserialize)]
struct Explanation {
    fired: Vec<Firing>,
    #[serde(default)]
    not_evaluated: Vec<NotEvaluated>,
}

fn evidence_view(a: AssessmentRecord) -> Result<EvidenceView, StoreError> {
    let explanation: Explanation = serde_json::from_str(&a.json)
        .map_err(|e| StoreError::Corrupt(format!("assessment {}: {e}", a.id)))?;
    Ok(EvidenceView {
        fired: explanation
            .fired
            .into_iter()
            .map(|f| FiredRow {
                rule_id: f.rule_id,
                points: f.points,
                decision: f.decision.map_or("", |d| d.as_str()),
                reason: f.reason,
                reads: f
                    .reads
                    .iter()
                    .map(|(name, value)| (name.clone(), words::signal_value(value.as_ref())))
                    .collect(),
            })
            .collect(),
        not_evaluated: explanation
            .not_evaluated
            .into_iter()
            .map(|n| NotEvaluatedRow {
                words: words::not_evaluated(&n.error),
                rule_id: n.rule_id,
                detail: n.error,
            })
            .collect(),
        assessment_id: a.id,
        event_id: a.event_id,
        session_id: a.session_id.unwrap_or_default(),
        score: a.score,
        decision: a.decision.as_str(),
        policy_hash: a.policy_hash.chars().take(12).collect(),
        evaluated: words::time(a.evaluated_at),
    })
}

async fn timeline(state: &AppState, user_id: &str) -> Result<Vec<TimelineRow>, StoreError> {
    Ok(state
        .store
        .user_events(user_id, TIMELINE)
        .await?
        .into_iter()
        .map(|e: EventRecord| TimelineRow {
            when: e.event_timestamp.map(words::time).unwrap_or_default(),
            received: words::time(e.received_at),
            webhook_type: e.webhook_type,
            session_id: e.session_id.unwrap_or_default(),
            status: e.status.unwrap_or_default(),
            trusted: e.body_trusted,
        })
        .collect())
}

// --- User -----------------------------------------------------------------------------------

#[derive(Debug, Default, Deserialize)]
pub(crate) struct FindUser {
    id: Option<String>,
}

/// The header's "find a user" box.
pub(crate) async fn find_user(
    _analyst: Analyst,
    Query(query): Query<FindUser>,
) -> Result<Response, UiError> {
    match given(query.id.as_ref()) {
        Some(id) => Ok(redirect(&format!(
            "/ui/users/{}",
            super::percent_encode(id)
        ))),
        None => Ok(redirect("/ui/queue")),
    }
}

/// A user: status, verdict and score, the assessment behind them, their cases and timeline.
pub(crate) async fn user(
    State(state): State<AppState>,
    analyst: Analyst,
    Path(id): Path<String>,
) -> Result<Response, UiError> {
    let user = state
        .store
        .user(&id)
        .await?
        .ok_or_else(|| UiError::NotFound(format!("No user {id}.")))?;
    let current = match &user.current_assessment_id {
        Some(a) => match state.store.assessment(a).await? {
            Some(a) => Some(evidence_view(a)?),
            None => None,
        },
        None => None,
    };
    let cases = state
        .store
        .cases(&CaseFilter {
            user_id: Some(id.clone()),
            limit: 100,
            ..CaseFilter::default()
        })
        .await?
        .into_iter()
        .rev()
        .map(|c| UserCaseRow {
            status: words::case_status(c.status),
            decision: c.decision.as_str(),
            opened: words::time(c.opened_at),
            outcome: c.outcome.map(words::outcome).unwrap_or_default().to_owned(),
            id: c.id,
        })
        .collect();
    let page = UserPage {
        chrome: chrome(&analyst, "", format!("User {id}")),
        user: user_view(&user),
        current,
        cases,
        timeline: timeline(&state, &id).await?,
        back: String::new(),
    };
    render(&page)
}

// --- Approvals ------------------------------------------------------------------------------

fn action_row(a: ActionRecord, analyst: &Analyst, now: i64) -> ActionRow {
    ActionRow {
        what: words::action(a.kind, a.outcome),
        mine: a.requested_by == analyst.caller.key_id,
        id: a.id,
        user_id: a.user_id,
        case_id: a.case_id.unwrap_or_default(),
        reason: a.reason,
        requested_by: a.requested_by,
        age: words::age(now, a.requested_at),
        status: a.status.as_str(),
        decided_by: a.decided_by.unwrap_or_default(),
    }
}

/// Actions waiting for a second person, and the latest decided ones.
pub(crate) async fn approvals(
    State(state): State<AppState>,
    analyst: Analyst,
) -> Result<Response, UiError> {
    let now = (state.clock)();
    let pending = state
        .store
        .actions(Some(ActionStatus::Pending), 500)
        .await?
        .into_iter()
        .map(|a| action_row(a, &analyst, now))
        .collect();
    let recent = state
        .store
        .actions(None, 20)
        .await?
        .into_iter()
        .filter(|a| a.status != ActionStatus::Pending)
        .map(|a| action_row(a, &analyst, now))
        .collect();
    let page = ApprovalsPage {
        chrome: chrome(&analyst, "approvals", "Approvals"),
        pending,
        recent,
    };
    render(&page)
}

// --- Audit ----------------------------------------------------------------------------------

#[derive(Debug, Default, Deserialize)]
pub(crate) struct AuditQuery {
    /// Show the entries up to this position (default: the newest).
    upto: Option<i64>,
    /// Check the whole chain again, not only what was appended since the last look.
    full: Option<String>,
}

/// The audit log, newest page first, under the result of checking the chain (with the
/// service's audit key and its anchor file, when configured): incrementally, or all of it on
/// request.
pub(crate) async fn audit(
    State(state): State<AppState>,
    Extension(watch): Extension<Arc<ChainWatch>>,
    analyst: Analyst,
    Query(query): Query<AuditQuery>,
) -> Result<Response, UiError> {
    let full = given(query.full.as_ref()).is_some();
    let look = watch
        .look(state.store.as_ref(), &state.config.audit, full)
        .await;
    let head = state.store.audit_head().await?.map_or(0, |h| h.seq);
    let upto = query.upto.unwrap_or(head).clamp(0, head);
    let from = upto.saturating_sub(i64::from(PAGE));
    let mut rows: Vec<AuditRow> = state
        .store
        .audit(from, PAGE)
        .await?
        .into_iter()
        .filter(|e| e.seq <= upto)
        .map(|e| AuditRow {
            seq: e.seq,
            at: words::time(e.at),
            actor: e.actor,
            action: e.action,
            subject: e.subject,
            reason: e.reason.unwrap_or_default(),
            hash: e.hash.chars().take(16).collect(),
            keyed: e.keyed,
        })
        .collect();
    rows.reverse();
    let page = AuditPage {
        chrome: chrome(&analyst, "audit", "Audit log"),
        intact: look.intact,
        verdict: look.verdict,
        checked_now: look.checked_now,
        full,
        rows,
        older: (from > 0).then_some(from),
        newer: (upto < head).then(|| (upto + i64::from(PAGE)).min(head)),
    };
    render(&page)
}

// --- Deliveries -----------------------------------------------------------------------------

#[derive(Debug, Default, Deserialize)]
pub(crate) struct DeliveriesQuery {
    status: Option<String>,
    before: Option<String>,
}

/// Notifications to the customer's endpoints, newest first; failed ones can be retried by an
/// admin.
pub(crate) async fn deliveries(
    State(state): State<AppState>,
    analyst: Analyst,
    Query(query): Query<DeliveriesQuery>,
) -> Result<Response, UiError> {
    let status_text = given(query.status.as_ref()).unwrap_or("failed");
    let status = DeliveryStatus::parse(status_text);
    let filter = DeliveryFilter {
        status,
        before: given(query.before.as_ref()).map(str::to_owned),
        limit: PAGE,
        ..DeliveryFilter::default()
    };
    let list = state.store.deliveries(&filter).await?;
    let older = (list.len() == PAGE as usize)
        .then(|| list.last().map(|d| d.id.clone()))
        .flatten();
    let rows = list
        .into_iter()
        .map(|d| DeliveryRow {
            failed: d.status == DeliveryStatus::Failed,
            status: d.status.as_str(),
            last: match (d.last_status, d.last_error) {
                (Some(code), Some(e)) => format!("{code}: {e}"),
                (Some(code), None) => code.to_string(),
                (None, Some(e)) => e,
                (None, None) => String::new(),
            },
            created: words::time(d.created_at / 1000),
            id: d.id,
            endpoint: d.endpoint_id,
            user_id: d.user_id,
            attempts: d.attempts,
        })
        .collect();
    let page = DeliveriesPage {
        chrome: chrome(&analyst, "deliveries", "Deliveries"),
        statuses: choices(
            &[
                ("failed", "failed"),
                ("pending", "pending"),
                ("delivered", "delivered"),
                ("all", "all"),
            ],
            status_text,
        ),
        rows,
        older,
    };
    render(&page)
}

// --- Policy ---------------------------------------------------------------------------------

/// The policy in force: thresholds and every rule.
pub(crate) async fn policy(
    State(state): State<AppState>,
    analyst: Analyst,
) -> Result<Response, UiError> {
    let current = state.policy.current();
    let (review_at, freeze_at) = current.thresholds();
    let page = PolicyPage {
        chrome: chrome(&analyst, "policy", "Policy"),
        name: current.name().to_owned(),
        hash: current.hash().to_owned(),
        source: state.policy.source_name(),
        review_at,
        freeze_at,
        four_eyes: state.config.review.four_eyes,
        rules: current
            .rules()
            .into_iter()
            .map(|r| RuleRow {
                id: r.id,
                when: r.when,
                points: r.points,
                decision: r.decision.map_or("", |d| d.as_str()),
                reason: r.reason,
            })
            .collect(),
    };
    render(&page)
}
