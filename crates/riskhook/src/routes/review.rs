//! Manual review under `/v1`: review cases (list, detail with evidence and timeline, claim,
//! resolve), manual freeze and unfreeze, the account actions waiting for a second person
//! (four eyes), and the audit log. Reading needs the read role; every command needs review.
//!
//! The rules (which status a verdict gives, when a second person is needed) live in
//! `riskhook_core::review` and are applied by the store inside its transactions; handlers here
//! parse the request, pass `now` from `state.clock`, and render what the store returns.

use std::collections::BTreeMap;
use std::time::Duration;

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use riskhook_core::assessment::{Decision, Firing};
use riskhook_core::review::{ActionKind, ActionStatus, CaseStatus, Outcome};
use riskhook_core::signals::SignalValue;
use riskhook_store::{
    ActionRecord, AssessmentRecord, AuditRecord, CaseFilter, CaseRecord, DecideAction, EventRecord,
    ResolveCase, ReviewOutcome, StoreError, UserAction,
};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::api::UserOut;
use super::extract::{Authorized, Body, Params, next_cursor, page_limit, role};
use super::openapi;
use crate::error::{ApiError, Result};
use crate::state::AppState;
use crate::text::{Field, TextError};

/// How many of the user's events a case shows: enough for a review, bounded for the page.
const TIMELINE_LIMIT: u32 = 200;

pub(crate) fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::default()
        .routes(routes!(list_cases))
        .routes(routes!(get_case))
        .routes(routes!(claim_case))
        .routes(routes!(resolve_case))
        .routes(routes!(freeze_user))
        .routes(routes!(unfreeze_user))
        .routes(routes!(list_actions))
        .routes(routes!(get_action))
        .routes(routes!(approve_action))
        .routes(routes!(reject_action))
        .routes(routes!(list_audit))
}

// --- Request types ------------------------------------------------------------------------

/// Why a person acts: required, not blank, at most 2,000 characters, no control characters
/// but line breaks and tabs ([`Field::REASON`]). Kept as given, trimmed.
#[derive(Debug, Clone, Deserialize)]
#[serde(try_from = "String")]
struct Reason(String);

impl TryFrom<String> for Reason {
    type Error = TextError;

    fn try_from(text: String) -> Result<Self, TextError> {
        Field::REASON.read(&text).map(Reason)
    }
}

/// A minimum age: `90s`, `15m`, `2h`, `3days` (humantime) or a number of seconds.
#[derive(Debug, Clone, Copy)]
struct Age(Duration);

impl<'de> Deserialize<'de> for Age {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        let text = text.trim();
        if let Ok(seconds) = text.parse::<u64>() {
            return Ok(Age(Duration::from_secs(seconds)));
        }
        humantime::parse_duration(text).map(Age).map_err(|e| {
            serde::de::Error::custom(format!(
                "min_age `{text}`: {e} (give a duration such as `15m` or `2h`, or seconds)"
            ))
        })
    }
}

impl Age {
    /// The latest opening time a case this old can have.
    fn opened_before(self, now: i64) -> i64 {
        now.saturating_sub(i64::try_from(self.0.as_secs()).unwrap_or(i64::MAX))
    }
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
struct CaseQuery {
    /// Only cases in this state.
    #[param(schema_with = openapi::case_status)]
    status: Option<CaseStatus>,
    /// Only cases claimed by this key id.
    assignee: Option<String>,
    /// Only cases whose strictest evidence decided this.
    #[param(schema_with = openapi::decision)]
    decision: Option<Decision>,
    /// Only cases open at least this long: `90s`, `15m`, `2h`, `3days`, or seconds.
    #[param(value_type = Option<String>, example = "2h")]
    min_age: Option<Age>,
    /// Only this user's cases.
    user_id: Option<String>,
    /// Cursor: the `next` of the previous page.
    after: Option<String>,
    /// At most this many (default 50, at most 500).
    #[param(minimum = 1, maximum = 500)]
    limit: Option<u32>,
}

/// How to resolve a case.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct ResolveIn {
    /// `approve` and `unfreeze` make the user active, `decline` declines, `freeze` freezes.
    /// With four eyes on, lifting a freeze waits for a second key (answered 202).
    #[schema(schema_with = openapi::outcome)]
    outcome: Outcome,
    /// Why (required, not blank).
    #[schema(value_type = String, min_length = 1, max_length = 2000)]
    reason: Reason,
}

/// A manual freeze or unfreeze.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct UserActionIn {
    /// Why (required, not blank).
    #[schema(value_type = String, min_length = 1, max_length = 2000)]
    reason: Reason,
}

/// A second person's decision on a pending action. The body may be left out.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct DecideIn {
    /// Why (optional; not blank when given).
    #[schema(value_type = Option<String>, min_length = 1, max_length = 2000)]
    reason: Option<Reason>,
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
struct ActionQuery {
    /// Only actions in this state, e.g. `pending` for those waiting for a second person.
    #[param(schema_with = openapi::action_status)]
    status: Option<ActionStatus>,
    /// At most this many (default 50, at most 500).
    #[param(minimum = 1, maximum = 500)]
    limit: Option<u32>,
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
struct AuditQuery {
    /// Cursor: entries after this chain position (the `next` of the previous page; 0 or
    /// absent: from the start).
    #[param(minimum = 0)]
    after: Option<i64>,
    /// At most this many (default 50, at most 500).
    #[param(minimum = 1, maximum = 500)]
    limit: Option<u32>,
}

// --- Response types -----------------------------------------------------------------------

/// A review case.
#[derive(Debug, Serialize, ToSchema)]
struct CaseOut {
    id: String,
    user_id: String,
    #[schema(schema_with = openapi::case_status)]
    status: CaseStatus,
    /// The strictest decision among its evidence (`review` or `freeze`).
    #[schema(schema_with = openapi::decision)]
    decision: Decision,
    /// The key that claimed it.
    assignee: Option<String>,
    /// Unix seconds.
    opened_at: i64,
    /// `opened_at` as RFC 3339 (UTC).
    opened_at_rfc3339: String,
    updated_at: i64,
    /// `updated_at` as RFC 3339 (UTC).
    updated_at_rfc3339: String,
    resolved_at: Option<i64>,
    /// `resolved_at` as RFC 3339 (UTC).
    resolved_at_rfc3339: Option<String>,
    /// Who resolved it (the second person, when one was needed).
    resolved_by: Option<String>,
    #[schema(schema_with = openapi::outcome_or_null)]
    outcome: Option<Outcome>,
    reason: Option<String>,
    /// Its evidence: the assessments that decided review or freeze, oldest first.
    assessment_ids: Vec<String>,
}

impl From<CaseRecord> for CaseOut {
    fn from(c: CaseRecord) -> Self {
        Self {
            id: c.id,
            user_id: c.user_id,
            status: c.status,
            decision: c.decision,
            assignee: c.assignee,
            opened_at: c.opened_at,
            opened_at_rfc3339: crate::time::rfc3339(c.opened_at),
            updated_at: c.updated_at,
            updated_at_rfc3339: crate::time::rfc3339(c.updated_at),
            resolved_at: c.resolved_at,
            resolved_at_rfc3339: crate::time::rfc3339(c.resolved_at),
            resolved_by: c.resolved_by,
            outcome: c.outcome,
            reason: c.reason,
            assessment_ids: c.assessment_ids,
        }
    }
}

/// A page of cases, oldest first.
#[derive(Debug, Serialize, ToSchema)]
struct CasesOut {
    cases: Vec<CaseOut>,
    /// Pass as `after` for the next page; null on the last page.
    next: Option<String>,
}

/// A case with what a reviewer needs to judge it.
#[derive(Debug, Serialize, ToSchema)]
struct CaseDetailOut {
    case: CaseOut,
    /// The user, with the assessment behind their current status.
    user: UserOut,
    /// Each assessment in the case's evidence, oldest first, with every rule that fired.
    evidence: Vec<EvidenceOut>,
    /// The user's events, oldest first by their own timestamp (at most 200).
    timeline: Vec<TimelineEventOut>,
}

/// One assessment of a case's evidence.
#[derive(Debug, Serialize, ToSchema)]
struct EvidenceOut {
    assessment_id: String,
    /// The event it assessed.
    event_id: String,
    session_id: Option<String>,
    score: u8,
    #[schema(schema_with = openapi::decision)]
    decision: Decision,
    /// The policy it was made under.
    policy_hash: String,
    evaluated_at: i64,
    /// `evaluated_at` as RFC 3339 (UTC).
    evaluated_at_rfc3339: String,
    /// Every rule that fired, in policy order.
    fired: Vec<FiringOut>,
}

/// A rule that fired.
#[derive(Debug, Serialize, ToSchema)]
struct FiringOut {
    /// The rule's stable id: the reason code.
    rule_id: String,
    /// Its contribution to the score.
    points: i32,
    /// The least decision it imposes.
    #[schema(schema_with = openapi::decision_or_null)]
    decision: Option<Decision>,
    /// Why, in words.
    reason: String,
    /// Every signal the rule reads, with the value it read (null: not checked).
    #[schema(value_type = Object)]
    reads: BTreeMap<String, Option<SignalValue>>,
}

impl From<Firing> for FiringOut {
    fn from(f: Firing) -> Self {
        Self {
            rule_id: f.rule_id,
            points: f.points,
            decision: f.decision,
            reason: f.reason,
            reads: f.reads,
        }
    }
}

/// The part of a stored assessment the evidence shows.
#[derive(Deserialize)]
struct StoredExplanation {
    fired: Vec<Firing>,
}

impl TryFrom<AssessmentRecord> for EvidenceOut {
    type Error = StoreError;

    fn try_from(a: AssessmentRecord) -> Result<Self, StoreError> {
        let explanation: StoredExplanation = serde_json::from_str(&a.json)
            .map_err(|e| StoreError::Corrupt(format!("assessment {}: {e}", a.id)))?;
        Ok(Self {
            assessment_id: a.id,
            event_id: a.event_id,
            session_id: a.session_id,
            score: a.score,
            decision: a.decision,
            policy_hash: a.policy_hash,
            evaluated_at: a.evaluated_at,
            evaluated_at_rfc3339: crate::time::rfc3339(a.evaluated_at),
            fired: explanation.fired.into_iter().map(FiringOut::from).collect(),
        })
    }
}

/// One event of a user's timeline: what arrived and when, never the body.
#[derive(Debug, Serialize, ToSchema)]
struct TimelineEventOut {
    id: String,
    /// Didit's webhook type, e.g. `status.updated`.
    webhook_type: String,
    session_id: Option<String>,
    /// The status it reports.
    status: Option<String>,
    /// The body's own timestamp, Unix seconds.
    event_timestamp: Option<i64>,
    /// `event_timestamp` as RFC 3339 (UTC).
    event_timestamp_rfc3339: Option<String>,
    /// When riskhook received it, Unix seconds.
    received_at: i64,
    /// `received_at` as RFC 3339 (UTC).
    received_at_rfc3339: String,
    /// False when only the unauthenticated simple signature verified it.
    body_trusted: bool,
}

impl From<EventRecord> for TimelineEventOut {
    fn from(e: EventRecord) -> Self {
        Self {
            id: e.id.into(),
            webhook_type: e.webhook_type,
            session_id: e.session_id,
            status: e.status,
            event_timestamp: e.event_timestamp,
            event_timestamp_rfc3339: crate::time::rfc3339(e.event_timestamp),
            received_at: e.received_at,
            received_at_rfc3339: crate::time::rfc3339(e.received_at),
            body_trusted: e.body_trusted,
        }
    }
}

/// A manual account action, or a case resolution waiting for a second person.
#[derive(Debug, Serialize, ToSchema)]
struct ActionOut {
    id: String,
    #[schema(schema_with = openapi::action_kind)]
    kind: ActionKind,
    user_id: String,
    /// The case it resolves (`resolve_case`).
    case_id: Option<String>,
    /// The outcome it applies (`resolve_case`).
    #[schema(schema_with = openapi::outcome_or_null)]
    outcome: Option<Outcome>,
    /// The requester's reason.
    reason: String,
    /// The key that asked.
    requested_by: String,
    requested_at: i64,
    /// `requested_at` as RFC 3339 (UTC).
    requested_at_rfc3339: String,
    #[schema(schema_with = openapi::action_status)]
    status: ActionStatus,
    /// The second person, or the requester when none was needed.
    decided_by: Option<String>,
    decided_at: Option<i64>,
    /// `decided_at` as RFC 3339 (UTC).
    decided_at_rfc3339: Option<String>,
    /// The second person's reason.
    decision_reason: Option<String>,
}

impl From<ActionRecord> for ActionOut {
    fn from(a: ActionRecord) -> Self {
        Self {
            id: a.id,
            kind: a.kind,
            user_id: a.user_id,
            case_id: a.case_id,
            outcome: a.outcome,
            reason: a.reason,
            requested_by: a.requested_by,
            requested_at: a.requested_at,
            requested_at_rfc3339: crate::time::rfc3339(a.requested_at),
            status: a.status,
            decided_by: a.decided_by,
            decided_at: a.decided_at,
            decided_at_rfc3339: crate::time::rfc3339(a.decided_at),
            decision_reason: a.decision_reason,
        }
    }
}

/// Actions, newest first.
#[derive(Debug, Serialize, ToSchema)]
struct ActionsOut {
    actions: Vec<ActionOut>,
}

/// What a review command changed. Answered 202 when the action waits for a second person
/// (`action.status` is `pending`), 200 when it is applied.
#[derive(Debug, Serialize, ToSchema)]
struct CommandOut {
    /// The user, after the command.
    user: UserOut,
    /// The case it touched, after the command.
    case: Option<CaseOut>,
    /// The action it recorded.
    action: Option<ActionOut>,
}

impl CommandOut {
    /// 202 while a second person must still approve, 200 otherwise.
    fn answer(outcome: ReviewOutcome) -> (StatusCode, Json<Self>) {
        let pending = outcome
            .action
            .as_ref()
            .is_some_and(|a| a.status == ActionStatus::Pending);
        let status = if pending {
            StatusCode::ACCEPTED
        } else {
            StatusCode::OK
        };
        let body = CommandOut {
            user: UserOut::summary(outcome.user),
            case: outcome.case.map(CaseOut::from),
            action: outcome.action.map(ActionOut::from),
        };
        (status, Json(body))
    }
}

/// One entry of the hash-chained audit log.
#[derive(Debug, Serialize, ToSchema)]
struct AuditEntryOut {
    /// Position in the chain, from 1.
    seq: i64,
    id: String,
    /// Unix seconds.
    at: i64,
    /// `at` as RFC 3339 (UTC).
    at_rfc3339: String,
    /// An API key id, `system` or `cli`.
    actor: String,
    /// What happened, e.g. `case.resolved`.
    action: String,
    /// What it happened to, e.g. `user:u-1`.
    subject: String,
    reason: Option<String>,
    /// The state before: JSON, as the exact text that was hashed (so anyone can re-check
    /// the chain from this API alone).
    before: Option<String>,
    /// The state after: JSON, as the exact text that was hashed.
    after: Option<String>,
    /// The previous entry's hash.
    prev_hash: String,
    /// This entry's hash (over its fields and `prev_hash`): SHA-256, or HMAC-SHA256 under the
    /// audit key when `keyed` (then only a holder of the key can re-check it).
    hash: String,
    /// Whether `hash` is keyed.
    keyed: bool,
}

impl From<AuditRecord> for AuditEntryOut {
    fn from(a: AuditRecord) -> Self {
        Self {
            seq: a.seq,
            id: a.id,
            at: a.at,
            at_rfc3339: crate::time::rfc3339(a.at),
            actor: a.actor,
            action: a.action,
            subject: a.subject,
            reason: a.reason,
            before: a.before,
            after: a.after,
            prev_hash: a.prev_hash,
            hash: a.hash,
            keyed: a.keyed,
        }
    }
}

/// A page of the audit log, in chain order.
#[derive(Debug, Serialize, ToSchema)]
struct AuditOut {
    entries: Vec<AuditEntryOut>,
    /// Pass as `after` for the next page; null on the last page.
    next: Option<i64>,
}

// --- Handlers -----------------------------------------------------------------------------

/// Review cases, oldest first, filtered.
#[utoipa::path(
    get,
    path = "/v1/cases",
    tag = "cases",
    params(CaseQuery),
    security(("bearer" = ["read"])),
    responses(
        (status = 200, description = "A page of cases", body = CasesOut),
        (status = 400, description = "A filter could not be read"),
    )
)]
async fn list_cases(
    _reader: Authorized<role::Read>,
    State(state): State<AppState>,
    Params(query): Params<CaseQuery>,
) -> Result<Json<CasesOut>> {
    let now = (state.clock)();
    let limit = page_limit(query.limit);
    let filter = CaseFilter {
        status: query.status,
        unresolved: false,
        assignee: query.assignee,
        decision: query.decision,
        opened_before: query.min_age.map(|age| age.opened_before(now)),
        user_id: query.user_id,
        after: query.after,
        limit,
    };
    let cases = state.store.cases(&filter).await?;
    let next = next_cursor(&cases, limit, |c| c.id.clone());
    Ok(Json(CasesOut {
        cases: cases.into_iter().map(CaseOut::from).collect(),
        next,
    }))
}

/// A case with its user, every rule fired in its evidence, and the user's timeline.
#[utoipa::path(
    get,
    path = "/v1/cases/{id}",
    tag = "cases",
    params(("id" = String, Path, description = "The case id (`case_…`)")),
    security(("bearer" = ["read"])),
    responses(
        (status = 200, description = "The case", body = CaseDetailOut),
        (status = 404, description = "No such case"),
    )
)]
async fn get_case(
    _reader: Authorized<role::Read>,
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<CaseDetailOut>> {
    let file = riskhook_store::case_file(state.store.as_ref(), &id)
        .await?
        .ok_or(ApiError::NotFound("case"))?;
    let (case, user) = (file.case, file.user);
    let evidence = file
        .evidence
        .into_iter()
        .map(EvidenceOut::try_from)
        .collect::<Result<Vec<_>, _>>()?;
    let timeline = state
        .store
        .user_events(&case.user_id, TIMELINE_LIMIT)
        .await?
        .into_iter()
        .map(TimelineEventOut::from)
        .collect();
    Ok(Json(CaseDetailOut {
        case: case.into(),
        user: UserOut::explained(&state, user).await?,
        evidence,
        timeline,
    }))
}

/// Takes an open case (claiming one's own case again changes nothing).
#[utoipa::path(
    post,
    path = "/v1/cases/{id}/claim",
    tag = "cases",
    params(("id" = String, Path, description = "The case id")),
    security(("bearer" = ["review"])),
    responses(
        (status = 200, description = "The case, claimed by the caller", body = CaseOut),
        (status = 404, description = "No such case"),
        (status = 409, description = "Claimed by another key, or already resolved"),
    )
)]
async fn claim_case(
    auth: Authorized<role::Review>,
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<CaseOut>> {
    let now = (state.clock)();
    let case = state.store.claim_case(&id, auth.key_id(), now).await?;
    Ok(Json(case.into()))
}

/// Resolves a case and applies its outcome to the user.
///
/// With four eyes on, an outcome that lifts a freeze waits for a second key instead (202): the
/// case becomes `pending_approval` and a pending `resolve_case` action is recorded.
#[utoipa::path(
    post,
    path = "/v1/cases/{id}/resolve",
    tag = "cases",
    params(("id" = String, Path, description = "The case id")),
    request_body = ResolveIn,
    security(("bearer" = ["review"])),
    responses(
        (status = 200, description = "Resolved and applied", body = CommandOut),
        (status = 202, description = "Waiting for a second key's approval", body = CommandOut),
        (status = 400, description = "The body is not JSON"),
        (status = 404, description = "No such case"),
        (status = 409, description = "Already resolved, or claimed by another key"),
        (status = 415, description = "The body is not `application/json`"),
        (status = 422, description = "Missing or blank reason, or an unknown outcome"),
    )
)]
async fn resolve_case(
    auth: Authorized<role::Review>,
    State(state): State<AppState>,
    Path(id): Path<String>,
    Body(body): Body<ResolveIn>,
) -> Result<(StatusCode, Json<CommandOut>)> {
    let outcome = state
        .store
        .resolve_case(ResolveCase {
            case_id: id,
            actor: auth.key_id().to_owned(),
            person: auth.caller.person(&state).await?,
            outcome: body.outcome,
            reason: body.reason.0,
            now: (state.clock)(),
            four_eyes: state.config.review.four_eyes,
        })
        .await?;
    Ok(CommandOut::answer(outcome))
}

/// Freezes a user by hand.
#[utoipa::path(
    post,
    path = "/v1/users/{id}/freeze",
    tag = "users",
    params(("id" = String, Path, description = "The user id")),
    request_body = UserActionIn,
    security(("bearer" = ["review"])),
    responses(
        (status = 200, description = "Frozen", body = CommandOut),
        (status = 400, description = "The body is not JSON"),
        (status = 404, description = "No such user"),
        (status = 409, description = "Not possible in the user's current state"),
        (status = 415, description = "The body is not `application/json`"),
        (status = 422, description = "Missing or blank reason"),
    )
)]
async fn freeze_user(
    auth: Authorized<role::Review>,
    State(state): State<AppState>,
    Path(id): Path<String>,
    Body(body): Body<UserActionIn>,
) -> Result<(StatusCode, Json<CommandOut>)> {
    act(&state, &auth, id, ActionKind::Freeze, body.reason).await
}

/// Lifts a freeze by hand; with four eyes on it waits for a second key (202).
#[utoipa::path(
    post,
    path = "/v1/users/{id}/unfreeze",
    tag = "users",
    params(("id" = String, Path, description = "The user id")),
    request_body = UserActionIn,
    security(("bearer" = ["review"])),
    responses(
        (status = 200, description = "Unfrozen", body = CommandOut),
        (status = 202, description = "Waiting for a second key's approval", body = CommandOut),
        (status = 400, description = "The body is not JSON"),
        (status = 404, description = "No such user"),
        (status = 409, description = "The user is not frozen, or an unfreeze is already pending"),
        (status = 415, description = "The body is not `application/json`"),
        (status = 422, description = "Missing or blank reason"),
    )
)]
async fn unfreeze_user(
    auth: Authorized<role::Review>,
    State(state): State<AppState>,
    Path(id): Path<String>,
    Body(body): Body<UserActionIn>,
) -> Result<(StatusCode, Json<CommandOut>)> {
    act(&state, &auth, id, ActionKind::Unfreeze, body.reason).await
}

async fn act(
    state: &AppState,
    auth: &Authorized<role::Review>,
    user_id: String,
    kind: ActionKind,
    reason: Reason,
) -> Result<(StatusCode, Json<CommandOut>)> {
    let outcome = state
        .store
        .act_on_user(UserAction {
            user_id,
            kind,
            actor: auth.key_id().to_owned(),
            person: auth.caller.person(state).await?,
            reason: reason.0,
            now: (state.clock)(),
            four_eyes: state.config.review.four_eyes,
        })
        .await?;
    Ok(CommandOut::answer(outcome))
}

/// Account actions, newest first.
#[utoipa::path(
    get,
    path = "/v1/actions",
    tag = "actions",
    params(ActionQuery),
    security(("bearer" = ["read"])),
    responses(
        (status = 200, description = "Actions", body = ActionsOut),
        (status = 400, description = "A filter could not be read"),
    )
)]
async fn list_actions(
    _reader: Authorized<role::Read>,
    State(state): State<AppState>,
    Params(query): Params<ActionQuery>,
) -> Result<Json<ActionsOut>> {
    let actions = state
        .store
        .actions(query.status, page_limit(query.limit))
        .await?;
    Ok(Json(ActionsOut {
        actions: actions.into_iter().map(ActionOut::from).collect(),
    }))
}

/// One account action.
#[utoipa::path(
    get,
    path = "/v1/actions/{id}",
    tag = "actions",
    params(("id" = String, Path, description = "The action id (`act_…`)")),
    security(("bearer" = ["read"])),
    responses(
        (status = 200, description = "The action", body = ActionOut),
        (status = 404, description = "No such action"),
    )
)]
async fn get_action(
    _reader: Authorized<role::Read>,
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<ActionOut>> {
    let action = state
        .store
        .action(&id)
        .await?
        .ok_or(ApiError::NotFound("action"))?;
    Ok(Json(action.into()))
}

/// Approves a pending action and applies it.
///
/// The approver must be another key than the one that asked (four eyes).
#[utoipa::path(
    post,
    path = "/v1/actions/{id}/approve",
    tag = "actions",
    params(("id" = String, Path, description = "The action id")),
    request_body(content = DecideIn, description = "Optional"),
    security(("bearer" = ["review"])),
    responses(
        (status = 200, description = "Approved and applied", body = CommandOut),
        (status = 400, description = "The body is not JSON"),
        (status = 403, description = "The caller's role does not allow this, or the caller requested the action"),
        (status = 404, description = "No such action"),
        (status = 409, description = "The action is no longer pending"),
        (status = 415, description = "The body is not `application/json`"),
        (status = 422, description = "A blank reason"),
    )
)]
async fn approve_action(
    auth: Authorized<role::Review>,
    State(state): State<AppState>,
    Path(id): Path<String>,
    body: Option<Body<DecideIn>>,
) -> Result<(StatusCode, Json<CommandOut>)> {
    decide(&state, &auth, id, true, body).await
}

/// Rejects a pending action: nothing is applied.
///
/// The rejecter must be another key than the one that asked (four eyes).
#[utoipa::path(
    post,
    path = "/v1/actions/{id}/reject",
    tag = "actions",
    params(("id" = String, Path, description = "The action id")),
    request_body(content = DecideIn, description = "Optional"),
    security(("bearer" = ["review"])),
    responses(
        (status = 200, description = "Rejected", body = CommandOut),
        (status = 400, description = "The body is not JSON"),
        (status = 403, description = "The caller's role does not allow this, or the caller requested the action"),
        (status = 404, description = "No such action"),
        (status = 409, description = "The action is no longer pending"),
        (status = 415, description = "The body is not `application/json`"),
        (status = 422, description = "A blank reason"),
    )
)]
async fn reject_action(
    auth: Authorized<role::Review>,
    State(state): State<AppState>,
    Path(id): Path<String>,
    body: Option<Body<DecideIn>>,
) -> Result<(StatusCode, Json<CommandOut>)> {
    decide(&state, &auth, id, false, body).await
}

async fn decide(
    state: &AppState,
    auth: &Authorized<role::Review>,
    action_id: String,
    approve: bool,
    body: Option<Body<DecideIn>>,
) -> Result<(StatusCode, Json<CommandOut>)> {
    let Body(body) = body.unwrap_or_default();
    let outcome = state
        .store
        .decide_action(DecideAction {
            action_id,
            actor: auth.key_id().to_owned(),
            person: auth.caller.person(state).await?,
            approve,
            reason: body.reason.map(|r| r.0),
            now: (state.clock)(),
        })
        .await?;
    Ok(CommandOut::answer(outcome))
}

/// The audit log in chain order, from a position.
#[utoipa::path(
    get,
    path = "/v1/audit",
    tag = "audit",
    params(AuditQuery),
    security(("bearer" = ["read"])),
    responses(
        (status = 200, description = "A page of the audit log", body = AuditOut),
        (status = 400, description = "A parameter could not be read"),
    )
)]
async fn list_audit(
    _reader: Authorized<role::Read>,
    State(state): State<AppState>,
    Params(query): Params<AuditQuery>,
) -> Result<Json<AuditOut>> {
    let limit = page_limit(query.limit);
    let entries = state
        .store
        .audit(query.after.unwrap_or(0).max(0), limit)
        .await?;
    let next = next_cursor(&entries, limit, |e| e.seq);
    Ok(Json(AuditOut {
        entries: entries.into_iter().map(AuditEntryOut::from).collect(),
        next,
    }))
}
