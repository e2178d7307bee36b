//! The read API under `/v1` (users, their assessments, sessions, the policy), the policy
//! reload and backtests. Every route needs an API key; reload and backtest need the admin role. Each handler carries its
//! OpenAPI operation (`#[utoipa::path]`), registered with its route by `routes!`.

use axum::Json;
use axum::extract::{Path, State};
use riskhook_store::{AssessmentRecord, Role, UserRecord};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::extract::{Authorized, Body, Params, page_limit, role};
use super::openapi;
use crate::auth::Caller;
use crate::error::{ApiError, Result};
use crate::state::AppState;

pub(crate) fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::default()
        .routes(routes!(get_user))
        .routes(routes!(list_user_assessments))
        .routes(routes!(get_session))
        .routes(routes!(get_policy))
        .routes(routes!(reload_policy))
        .routes(routes!(backtest_policy))
        .routes(routes!(shadow_report))
        .routes(routes!(promote_shadow))
}

/// An assessment with its full explanation (every rule fired, the values it read, the signal
/// snapshot and the policy hash).
#[derive(Debug, Serialize, ToSchema)]
struct AssessmentOut {
    id: String,
    event_id: String,
    session_id: Option<String>,
    user_id: Option<String>,
    score: u8,
    #[schema(schema_with = openapi::decision)]
    decision: &'static str,
    policy_hash: String,
    evaluated_at: i64,
    /// `evaluated_at` as RFC 3339 (UTC).
    evaluated_at_rfc3339: String,
    created_at: i64,
    /// `created_at` as RFC 3339 (UTC).
    created_at_rfc3339: String,
    /// The rules that could not be evaluated, each with why in words (which of the session's
    /// checks was missing); `explanation.not_evaluated` keeps the engine's own text.
    not_evaluated: Vec<NotEvaluatedOut>,
    /// The stored assessment: `score`, `decision`, `policy`, `fired` (each rule with its
    /// reason, points and the signal values it read), `not_evaluated` and `signals`.
    #[schema(value_type = Object)]
    explanation: Value,
}

/// A rule that could not be evaluated, and why, for people.
#[derive(Debug, Serialize, ToSchema)]
struct NotEvaluatedOut {
    rule_id: String,
    /// e.g. "Not evaluated: the session did not report the AML screening (sanctions, PEP,
    /// adverse media), so this rule could not be checked. It did not add points."
    reason: String,
}

fn not_evaluated_in_words(explanation: &Value) -> Vec<NotEvaluatedOut> {
    explanation["not_evaluated"]
        .as_array()
        .map(|items| {
            items
                .iter()
                .map(|n| NotEvaluatedOut {
                    rule_id: n["rule_id"].as_str().unwrap_or_default().to_owned(),
                    reason: crate::words::not_evaluated(n["error"].as_str().unwrap_or_default()),
                })
                .collect()
        })
        .unwrap_or_default()
}

impl From<AssessmentRecord> for AssessmentOut {
    fn from(a: AssessmentRecord) -> Self {
        let explanation = serde_json::from_str(&a.json).unwrap_or(Value::Null);
        Self {
            not_evaluated: not_evaluated_in_words(&explanation),
            explanation,
            id: a.id,
            event_id: a.event_id,
            session_id: a.session_id,
            user_id: a.user_id,
            score: a.score,
            decision: a.decision.as_str(),
            policy_hash: a.policy_hash,
            evaluated_at: a.evaluated_at,
            evaluated_at_rfc3339: crate::time::rfc3339(a.evaluated_at),
            created_at: a.created_at,
            created_at_rfc3339: crate::time::rfc3339(a.created_at),
        }
    }
}

/// A person's risk profile.
#[derive(Debug, Serialize, ToSchema)]
pub(super) struct UserOut {
    user_id: String,
    /// Account status: the verdict of the last person to act, tightened by the evidence of an
    /// open review case.
    #[schema(schema_with = openapi::user_status)]
    status: &'static str,
    /// The status the last person to act set (null: nobody has acted).
    #[schema(schema_with = openapi::user_status_or_null)]
    verdict: Option<&'static str>,
    /// How many notified changes the user has had (the `version` of `user.updated`).
    version: i64,
    score: u8,
    #[schema(schema_with = openapi::decision)]
    decision: &'static str,
    /// A freeze is lifted only by a person: this stays true after later approvals.
    ever_frozen: bool,
    sessions: Vec<String>,
    first_seen_at: i64,
    /// `first_seen_at` as RFC 3339 (UTC).
    first_seen_at_rfc3339: String,
    updated_at: i64,
    /// `updated_at` as RFC 3339 (UTC).
    updated_at_rfc3339: String,
    /// The assessment behind the current score and decision, explained (left out of the
    /// answers to review commands).
    #[serde(skip_serializing_if = "Option::is_none")]
    assessment: Option<AssessmentOut>,
}

impl UserOut {
    /// The profile, without its assessment.
    pub(super) fn summary(user: UserRecord) -> Self {
        Self {
            user_id: user.user_id,
            status: user.status.as_str(),
            verdict: user.verdict.map(|v| v.as_str()),
            version: user.version,
            score: user.score,
            decision: user.decision.as_str(),
            ever_frozen: user.ever_frozen,
            sessions: user.sessions,
            first_seen_at: user.first_seen_at,
            first_seen_at_rfc3339: crate::time::rfc3339(user.first_seen_at),
            updated_at: user.updated_at,
            updated_at_rfc3339: crate::time::rfc3339(user.updated_at),
            assessment: None,
        }
    }

    /// The profile with its current assessment, explained.
    pub(super) async fn explained(state: &AppState, user: UserRecord) -> Result<Self> {
        let assessment = current_assessment(state, user.current_assessment_id.as_deref()).await?;
        Ok(Self {
            assessment,
            ..Self::summary(user)
        })
    }
}

async fn current_assessment(state: &AppState, id: Option<&str>) -> Result<Option<AssessmentOut>> {
    Ok(match id {
        Some(id) => state.store.assessment(id).await?.map(AssessmentOut::from),
        None => None,
    })
}

/// A user's risk profile and the assessment behind it.
#[utoipa::path(
    get,
    path = "/v1/users/{id}",
    tag = "users",
    params(("id" = String, Path, description = "The user id (Didit's `vendor_data`)")),
    security(("bearer" = ["read"])),
    responses(
        (status = 200, description = "The user", body = UserOut),
        (status = 404, description = "No such user"),
    )
)]
async fn get_user(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<UserOut>> {
    caller.require(Role::Read)?;
    let user: UserRecord = state
        .store
        .user(&id)
        .await?
        .ok_or(ApiError::NotFound("user"))?;
    Ok(Json(UserOut::explained(&state, user).await?))
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
struct Page {
    /// At most this many (default 50, at most 500).
    #[param(minimum = 1, maximum = 500)]
    limit: Option<u32>,
}

#[derive(Debug, Serialize, ToSchema)]
struct AssessmentsOut {
    user_id: String,
    /// Newest first.
    assessments: Vec<AssessmentOut>,
}

/// A user's assessments, newest first, each explained.
#[utoipa::path(
    get,
    path = "/v1/users/{id}/assessments",
    tag = "users",
    params(("id" = String, Path, description = "The user id"), Page),
    security(("bearer" = ["read"])),
    responses(
        (status = 200, description = "The assessments", body = AssessmentsOut),
        (status = 400, description = "A query parameter could not be read"),
        (status = 404, description = "No such user"),
    )
)]
async fn list_user_assessments(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    Params(page): Params<Page>,
) -> Result<Json<AssessmentsOut>> {
    caller.require(Role::Read)?;
    if state.store.user(&id).await?.is_none() {
        return Err(ApiError::NotFound("user"));
    }
    let limit = page_limit(page.limit);
    let assessments = state.store.user_assessments(&id, limit).await?;
    Ok(Json(AssessmentsOut {
        user_id: id,
        assessments: assessments.into_iter().map(AssessmentOut::from).collect(),
    }))
}

/// A Didit session's current state.
#[derive(Debug, Serialize, ToSchema)]
struct SessionOut {
    session_id: String,
    status: String,
    status_timestamp: i64,
    status_event_id: String,
    user_id: Option<String>,
    event_count: i64,
    assessment: Option<AssessmentOut>,
}

/// A session's current status and the assessment of the event that set it.
#[utoipa::path(
    get,
    path = "/v1/sessions/{id}",
    tag = "users",
    params(("id" = String, Path, description = "Didit's session id")),
    security(("bearer" = ["read"])),
    responses(
        (status = 200, description = "The session", body = SessionOut),
        (status = 404, description = "No such session"),
    )
)]
async fn get_session(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<SessionOut>> {
    caller.require(Role::Read)?;
    let session = state
        .store
        .session(&id)
        .await?
        .ok_or(ApiError::NotFound("session"))?;
    let assessment = current_assessment(&state, session.current_assessment_id.as_deref()).await?;
    Ok(Json(SessionOut {
        session_id: session.session_id,
        status: session.status.as_str().to_owned(),
        status_timestamp: session.status_timestamp,
        status_event_id: session.status_event_id,
        user_id: session.vendor_data,
        event_count: session.event_count,
        assessment,
    }))
}

/// The policy in force.
#[derive(Debug, Serialize, ToSchema)]
struct PolicyOut {
    name: String,
    /// SHA-256 of the policy text: what every assessment records.
    hash: String,
    /// Where it was loaded from.
    source: String,
    thresholds: Thresholds,
    /// Each rule: id, points, decision and what it reads.
    #[schema(value_type = Vec<Object>)]
    rules: Vec<riskhook_core::policy::RuleSummary>,
    /// The policy file as loaded.
    text: String,
}

/// The scores at which the decision becomes review or freeze.
#[derive(Debug, Serialize, ToSchema)]
struct Thresholds {
    review: u8,
    freeze: u8,
}

/// The policy in force: its hash, thresholds, rules and text.
#[utoipa::path(
    get,
    path = "/v1/policy",
    tag = "policy",
    security(("bearer" = ["read"])),
    responses((status = 200, description = "The policy in force", body = PolicyOut))
)]
async fn get_policy(
    State(AppState { policy, .. }): State<AppState>,
    caller: Caller,
) -> Result<Json<PolicyOut>> {
    caller.require(Role::Read)?;
    let current = policy.current();
    let (review, freeze) = current.thresholds();
    Ok(Json(PolicyOut {
        name: current.name().to_owned(),
        hash: current.hash().to_owned(),
        source: policy.source_name(),
        thresholds: Thresholds { review, freeze },
        rules: current.rules(),
        text: current.source().to_owned(),
    }))
}

/// What a reload changed.
#[derive(Debug, Serialize, ToSchema)]
struct ReloadOut {
    previous_hash: String,
    hash: String,
    rules: usize,
}

/// Loads the policy file again; the policy in force stays when the new one does not load.
#[utoipa::path(
    post,
    path = "/v1/policy/reload",
    tag = "policy",
    security(("bearer" = ["admin"])),
    responses(
        (status = 200, description = "The new policy is in force", body = ReloadOut),
        (status = 422, description = "The new policy did not load; the previous one stays"),
    )
)]
async fn reload_policy(
    State(AppState {
        policy,
        store,
        clock,
        ..
    }): State<AppState>,
    caller: Caller,
) -> Result<Json<ReloadOut>> {
    caller.require(Role::Admin)?;
    match policy.reload() {
        Ok((previous_hash, new)) => {
            tracing::info!(
                by = caller.key_id,
                from = previous_hash,
                to = new.hash(),
                "policy reloaded (API)"
            );
            // In force already; a failure to audit it is a 503 the caller can retry (a reload
            // of the same policy records it then).
            crate::policy::record_in_force(
                store.as_ref(),
                &new,
                &policy.source_name(),
                &caller.key_id,
                clock(),
            )
            .await?;
            Ok(Json(ReloadOut {
                previous_hash,
                hash: new.hash().to_owned(),
                rules: new.rule_count(),
            }))
        }
        Err(e) => {
            tracing::warn!(
                by = caller.key_id,
                error = format!("{e:#}"),
                "policy reload refused"
            );
            Err(ApiError::PolicyRejected(format!("{e:#}")))
        }
    }
}

/// A time as Unix seconds or RFC 3339 text.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum Time {
    Seconds(i64),
    Text(String),
}

impl Time {
    fn seconds(self, field: &str) -> Result<i64> {
        match self {
            Time::Seconds(s) => Ok(s),
            Time::Text(text) => {
                crate::time::parse(&text).map_err(|e| ApiError::Invalid(format!("{field}: {e}")))
            }
        }
    }
}

/// A candidate policy to replay the stored history through.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct BacktestIn {
    /// The candidate policy: the TOML text of a policy file.
    policy: String,
    /// Only events received at or after this time: Unix seconds or RFC 3339.
    #[schema(value_type = Option<String>, example = "2026-12-01T00:00:00Z")]
    since: Option<Time>,
    /// Only events received before this time: Unix seconds or RFC 3339.
    #[schema(value_type = Option<String>)]
    until: Option<Time>,
}

/// Replays every stored session event through a candidate policy and reports what would change.
///
/// Read-only: nothing is written. The candidate is compared with the policy in force.
/// The report: `decisions` (from the policy in force to the candidate, by decision, with counts
/// and example user ids), `users` (statuses, same shape), `queue` (users with evidence waiting
/// for a person under each), `rules` (firings under each), `labels` (precision and recall of
/// "review or freeze" against resolved cases), and how many events were replayed from
/// snapshots or bodies.
#[utoipa::path(
    post,
    path = "/v1/policy/backtest",
    tag = "policy",
    request_body = BacktestIn,
    security(("bearer" = ["admin"])),
    responses(
        (status = 200, description = "The report", body = Object),
        (status = 400, description = "The body is not JSON"),
        (status = 415, description = "The body is not `application/json`"),
        (status = 422, description = "The candidate does not load (every problem with its rule and line), or a time could not be read"),
    )
)]
async fn backtest_policy(
    auth: Authorized<role::Admin>,
    State(state): State<AppState>,
    Body(body): Body<BacktestIn>,
) -> Result<Json<crate::backtest::Outcome>> {
    let caller = auth.caller;
    let candidate = riskhook_core::policy::Policy::load(&body.policy)
        .map_err(|e| ApiError::Invalid(format!("the candidate policy does not load: {e}")))?;
    let window = crate::backtest::Window {
        since: body.since.map(|t| t.seconds("since")).transpose()?,
        until: body.until.map(|t| t.seconds("until")).transpose()?,
    };
    tracing::info!(by = caller.key_id, candidate = candidate.hash(), "backtest");
    let outcome = crate::backtest::run(
        state.store.clone(),
        state.policy.current(),
        std::sync::Arc::new(candidate),
        window,
    )
    .await?;
    Ok(Json(outcome))
}

/// A shadow policy's decisions compared with the policy in force's, live.
///
/// Over every session event stored since the shadow was configured, in the shape of a backtest
/// report (`current` is the policy in force, `candidate` the shadow).
#[utoipa::path(
    get,
    path = "/v1/policy/shadow/{id}",
    tag = "policy",
    params(("id" = String, Path, description = "The shadow's id (`[[policy.shadow]] id`)")),
    security(("bearer" = ["read"])),
    responses(
        (status = 200, description = "The comparison", body = Object),
        (status = 404, description = "No shadow policy with this id is configured"),
    )
)]
async fn shadow_report(
    _reader: Authorized<role::Read>,
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<crate::backtest::ShadowOutcome>> {
    let shadow = state
        .policy
        .shadows()
        .iter()
        .find(|s| s.id == id)
        .map(|s| s.policy.clone())
        .ok_or(ApiError::NotFound("shadow policy"))?;
    let report =
        crate::backtest::shadow_report(state.store.clone(), id, state.policy.current(), shadow)
            .await?;
    Ok(Json(report))
}

/// Makes a shadow policy the policy in force (audited).
///
/// The shadow is read again from its file now; refused (422, every problem listed) when it no
/// longer loads. Audited like a reload. The
/// configuration's `policy.path` is not rewritten: point it at the shadow's file to keep the
/// promotion across restarts. On several instances, promote on each (or reload each after
/// changing the file they share).
#[utoipa::path(
    post,
    path = "/v1/policy/shadow/{id}/promote",
    tag = "policy",
    params(("id" = String, Path, description = "The shadow's id")),
    security(("bearer" = ["admin"])),
    responses(
        (status = 200, description = "The shadow is the policy in force", body = ReloadOut),
        (status = 404, description = "No shadow policy with this id is configured"),
        (status = 422, description = "Its file no longer loads; the policy in force stays"),
    )
)]
async fn promote_shadow(
    auth: Authorized<role::Admin>,
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<ReloadOut>> {
    let caller = auth.caller;
    let promoted = state
        .policy
        .promote(&id)
        .ok_or(ApiError::NotFound("shadow policy"))?;
    let (previous_hash, new) = promoted.map_err(|e| {
        tracing::warn!(
            by = caller.key_id,
            shadow = id,
            error = format!("{e:#}"),
            "shadow promotion refused"
        );
        ApiError::PolicyRejected(format!("{e:#}"))
    })?;
    tracing::warn!(
        by = caller.key_id,
        shadow = id,
        from = previous_hash,
        to = new.hash(),
        "shadow policy promoted: it is in force until the next restart; point policy.path at its file to keep it"
    );
    crate::policy::record_in_force(
        state.store.as_ref(),
        &new,
        &format!("shadow `{id}` ({})", state.policy.source_name()),
        &caller.key_id,
        (state.clock)(),
    )
    .await?;
    Ok(Json(ReloadOut {
        previous_hash,
        hash: new.hash().to_owned(),
        rules: new.rule_count(),
    }))
}
