//! The read API under `/v1` (users, their assessments, sessions, the policy) and the policy
//! reload. Every route needs an API key; reload needs the admin role.

use axum::extract::{Path, Query, State};
use axum::routing::{get, post};
use axum::{Json, Router};
use riskhook_store::{AssessmentRecord, UserRecord};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::auth::Caller;
use crate::config::Role;
use crate::error::{ApiError, Result};
use crate::state::AppState;

pub(crate) fn router() -> Router<AppState> {
    Router::new()
        .route("/v1/users/{id}", get(get_user))
        .route("/v1/users/{id}/assessments", get(list_user_assessments))
        .route("/v1/sessions/{id}", get(get_session))
        .route("/v1/policy", get(get_policy))
        .route("/v1/policy/reload", post(reload_policy))
}

/// An assessment with its full explanation (every rule fired, the values it read, the signal
/// snapshot and the policy hash).
#[derive(Debug, Serialize)]
struct AssessmentOut {
    id: String,
    event_id: String,
    session_id: Option<String>,
    user_id: Option<String>,
    score: u8,
    decision: &'static str,
    policy_hash: String,
    evaluated_at: i64,
    created_at: i64,
    explanation: Value,
}

impl From<AssessmentRecord> for AssessmentOut {
    fn from(a: AssessmentRecord) -> Self {
        Self {
            explanation: serde_json::from_str(&a.json).unwrap_or(Value::Null),
            id: a.id,
            event_id: a.event_id,
            session_id: a.session_id,
            user_id: a.user_id,
            score: a.score,
            decision: a.decision.as_str(),
            policy_hash: a.policy_hash,
            evaluated_at: a.evaluated_at,
            created_at: a.created_at,
        }
    }
}

#[derive(Debug, Serialize)]
struct UserOut {
    user_id: String,
    status: &'static str,
    score: u8,
    decision: &'static str,
    /// A freeze is lifted only by a person: this stays true after later approvals.
    ever_frozen: bool,
    sessions: Vec<String>,
    first_seen_at: i64,
    updated_at: i64,
    /// The assessment behind the current score and decision, explained.
    assessment: Option<AssessmentOut>,
}

async fn current_assessment(state: &AppState, id: Option<&str>) -> Result<Option<AssessmentOut>> {
    Ok(match id {
        Some(id) => state.store.assessment(id).await?.map(AssessmentOut::from),
        None => None,
    })
}

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
    let assessment = current_assessment(&state, user.current_assessment_id.as_deref()).await?;
    Ok(Json(UserOut {
        user_id: user.user_id,
        status: user.status.as_str(),
        score: user.score,
        decision: user.decision.as_str(),
        ever_frozen: user.ever_frozen,
        sessions: user.sessions,
        first_seen_at: user.first_seen_at,
        updated_at: user.updated_at,
        assessment,
    }))
}

#[derive(Debug, Deserialize)]
struct Page {
    limit: Option<u32>,
}

#[derive(Debug, Serialize)]
struct AssessmentsOut {
    user_id: String,
    assessments: Vec<AssessmentOut>,
}

async fn list_user_assessments(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    Query(page): Query<Page>,
) -> Result<Json<AssessmentsOut>> {
    caller.require(Role::Read)?;
    if state.store.user(&id).await?.is_none() {
        return Err(ApiError::NotFound("user"));
    }
    let limit = page.limit.unwrap_or(50).clamp(1, 500);
    let assessments = state.store.user_assessments(&id, limit).await?;
    Ok(Json(AssessmentsOut {
        user_id: id,
        assessments: assessments.into_iter().map(AssessmentOut::from).collect(),
    }))
}

#[derive(Debug, Serialize)]
struct SessionOut {
    session_id: String,
    status: String,
    status_timestamp: i64,
    status_event_id: String,
    user_id: Option<String>,
    event_count: i64,
    assessment: Option<AssessmentOut>,
}

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

#[derive(Debug, Serialize)]
struct PolicyOut {
    name: String,
    hash: String,
    source: String,
    thresholds: Thresholds,
    rules: Vec<riskhook_core::policy::RuleSummary>,
    text: String,
}

#[derive(Debug, Serialize)]
struct Thresholds {
    review: u8,
    freeze: u8,
}

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

#[derive(Debug, Serialize)]
struct ReloadOut {
    previous_hash: String,
    hash: String,
    rules: usize,
}

async fn reload_policy(
    State(AppState { policy, .. }): State<AppState>,
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
