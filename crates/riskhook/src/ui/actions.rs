//! The workbench's forms (POST): claim and resolve a case, freeze and unfreeze a user, approve
//! or reject a pending action, retry a failed delivery. Each checks the session's CSRF token
//! and the key's role, runs the same store command as `/v1`, leaves a message in plain words
//! for the next page, and redirects back (303).
//!
//! A refusal the person can act on (the case is someone else's, four eyes needs another
//! person, a reason is missing) is such a message, not an error page: the page they come back
//! to shows what happened and what to do.

use axum::extract::{Form, Path, State};
use axum::response::Response;
use riskhook_core::review::{ActionKind, ActionStatus, Outcome};
use riskhook_store::{CommandError, DecideAction, ResolveCase, ReviewOutcome, Role, UserAction};
use serde::Deserialize;

use super::session::{Analyst, CsrfForm};
use super::views::Flash;
use super::{UiError, redirect};
use crate::state::AppState;
use crate::text::{Field, TextError};
use crate::words;

/// A reason as a form sends it, read as for `/v1` ([`Field::REASON`]), refused in words.
fn reason(text: &str) -> Result<String, Flash> {
    Field::REASON.read(text).map_err(|e| match e {
        TextError::Blank(_) => {
            Flash::error("Not done: a reason is required, so that the audit log says why.")
        }
        TextError::TooLong { max, .. } => Flash::error(format!(
            "Not done: the reason is longer than {max} characters."
        )),
        TextError::Control { .. } => {
            Flash::error(format!("Not done: the {e}; write it without one."))
        }
    })
}

/// A refusal in words, or the error page when the store itself failed.
fn refusal(e: CommandError) -> Result<Flash, UiError> {
    match e {
        CommandError::Conflict(why) => Ok(Flash::error(format!("Not done: {why}."))),
        CommandError::SamePerson(why) => Ok(Flash::error(format!(
            "Not done (four eyes: a second, different person must decide): {why}."
        ))),
        CommandError::NotFound { kind, id } => {
            Ok(Flash::error(format!("Not done: there is no {kind} {id}.")))
        }
        CommandError::Store(e) => Err(e.into()),
    }
}

/// What a review command did, in words.
fn done(outcome: &ReviewOutcome, applied: &str) -> Flash {
    match &outcome.action {
        Some(a) if a.status == ActionStatus::Pending => Flash::wait(format!(
            "Waiting for a second person: {} needs another person's approval (four eyes). It is on the Approvals page; nothing changes for the user until then.",
            words::action(a.kind, a.outcome)
        )),
        _ => Flash::ok(format!(
            "{applied} The user is now {}.",
            words::user_status(outcome.user.status)
        )),
    }
}

/// Runs `command` and says what happened, then sends the browser to `back`.
async fn finish(
    state: &AppState,
    analyst: &Analyst,
    back: &str,
    result: Result<Flash, CommandError>,
) -> Result<Response, UiError> {
    let flash = match result {
        Ok(flash) => flash,
        Err(e) => refusal(e)?,
    };
    analyst.say(state, flash).await?;
    // A command may have queued notifications: the dispatcher looks at once.
    state.outbox.notify_one();
    Ok(redirect(back))
}

fn case_page(id: &str) -> String {
    format!("/ui/cases/{}", super::percent_encode(id))
}

fn user_page(id: &str) -> String {
    format!("/ui/users/{}", super::percent_encode(id))
}

pub(crate) async fn claim(
    State(state): State<AppState>,
    analyst: Analyst,
    Path(id): Path<String>,
    Form(form): Form<CsrfForm>,
) -> Result<Response, UiError> {
    analyst.check_csrf(&form.csrf)?;
    analyst.require(Role::Review)?;
    let result = state
        .store
        .claim_case(&id, &analyst.caller.key_id, (state.clock)())
        .await
        .map(|_| Flash::ok("Case claimed: it is yours now."));
    finish(&state, &analyst, &case_page(&id), result).await
}

#[derive(Deserialize)]
pub(crate) struct ResolveForm {
    csrf: String,
    #[serde(default)]
    outcome: String,
    #[serde(default)]
    reason: String,
}

pub(crate) async fn resolve(
    State(state): State<AppState>,
    analyst: Analyst,
    Path(id): Path<String>,
    Form(form): Form<ResolveForm>,
) -> Result<Response, UiError> {
    analyst.check_csrf(&form.csrf)?;
    analyst.require(Role::Review)?;
    let back = case_page(&id);
    let Some(outcome) = Outcome::parse(form.outcome.trim()) else {
        let flash =
            Flash::error("Not done: choose an outcome (approve, decline, freeze or unfreeze).");
        return finish(&state, &analyst, &back, Ok(flash)).await;
    };
    let reason = match reason(&form.reason) {
        Ok(r) => r,
        Err(flash) => return finish(&state, &analyst, &back, Ok(flash)).await,
    };
    let result = state
        .store
        .resolve_case(ResolveCase {
            case_id: id.clone(),
            actor: analyst.caller.key_id.clone(),
            person: analyst.caller.person(&state).await?,
            outcome,
            reason,
            now: (state.clock)(),
            four_eyes: state.config.review.four_eyes,
        })
        .await
        .map(|o| done(&o, &format!("Case resolved: {}.", words::outcome(outcome))));
    finish(&state, &analyst, &back, result).await
}

#[derive(Deserialize)]
pub(crate) struct ReasonForm {
    csrf: String,
    #[serde(default)]
    reason: String,
    /// The page to come back to (a case page, when acting from one).
    #[serde(default)]
    back: String,
}

pub(crate) async fn freeze(
    state: State<AppState>,
    analyst: Analyst,
    id: Path<String>,
    form: Form<ReasonForm>,
) -> Result<Response, UiError> {
    act(state, analyst, id, form, ActionKind::Freeze).await
}

pub(crate) async fn unfreeze(
    state: State<AppState>,
    analyst: Analyst,
    id: Path<String>,
    form: Form<ReasonForm>,
) -> Result<Response, UiError> {
    act(state, analyst, id, form, ActionKind::Unfreeze).await
}

async fn act(
    State(state): State<AppState>,
    analyst: Analyst,
    Path(id): Path<String>,
    Form(form): Form<ReasonForm>,
    kind: ActionKind,
) -> Result<Response, UiError> {
    analyst.check_csrf(&form.csrf)?;
    analyst.require(Role::Review)?;
    let back = if form.back.starts_with("/ui/cases/") && !form.back.contains("//") {
        form.back.clone()
    } else {
        user_page(&id)
    };
    let reason = match reason(&form.reason) {
        Ok(r) => r,
        Err(flash) => return finish(&state, &analyst, &back, Ok(flash)).await,
    };
    let applied = match kind {
        ActionKind::Freeze => "User frozen.",
        _ => "Freeze lifted.",
    };
    let result = state
        .store
        .act_on_user(UserAction {
            user_id: id,
            kind,
            actor: analyst.caller.key_id.clone(),
            person: analyst.caller.person(&state).await?,
            reason,
            now: (state.clock)(),
            four_eyes: state.config.review.four_eyes,
        })
        .await
        .map(|o| done(&o, applied));
    finish(&state, &analyst, &back, result).await
}

#[derive(Deserialize)]
pub(crate) struct DecideForm {
    csrf: String,
    #[serde(default)]
    reason: String,
}

pub(crate) async fn approve(
    state: State<AppState>,
    analyst: Analyst,
    id: Path<String>,
    form: Form<DecideForm>,
) -> Result<Response, UiError> {
    decide(state, analyst, id, form, true).await
}

pub(crate) async fn reject(
    state: State<AppState>,
    analyst: Analyst,
    id: Path<String>,
    form: Form<DecideForm>,
) -> Result<Response, UiError> {
    decide(state, analyst, id, form, false).await
}

async fn decide(
    State(state): State<AppState>,
    analyst: Analyst,
    Path(id): Path<String>,
    Form(form): Form<DecideForm>,
    approve: bool,
) -> Result<Response, UiError> {
    analyst.check_csrf(&form.csrf)?;
    analyst.require(Role::Review)?;
    let back = "/ui/approvals";
    // The second person's reason is optional; when given it obeys the same rules.
    let reason = if form.reason.trim().is_empty() {
        None
    } else {
        match reason(&form.reason) {
            Ok(r) => Some(r),
            Err(flash) => return finish(&state, &analyst, back, Ok(flash)).await,
        }
    };
    let result = state
        .store
        .decide_action(DecideAction {
            action_id: id,
            actor: analyst.caller.key_id.clone(),
            person: analyst.caller.person(&state).await?,
            approve,
            reason,
            now: (state.clock)(),
        })
        .await
        .map(|o| {
            if approve {
                Flash::ok(format!(
                    "Action approved and applied. The user {} is now {}.",
                    o.user.user_id,
                    words::user_status(o.user.status)
                ))
            } else {
                Flash::ok(format!(
                    "Action rejected: nothing was applied. The user {} stays {}.",
                    o.user.user_id,
                    words::user_status(o.user.status)
                ))
            }
        });
    finish(&state, &analyst, back, result).await
}

pub(crate) async fn retry_delivery(
    State(state): State<AppState>,
    analyst: Analyst,
    Path(id): Path<String>,
    Form(form): Form<CsrfForm>,
) -> Result<Response, UiError> {
    analyst.check_csrf(&form.csrf)?;
    analyst.require(Role::Admin)?;
    let now_ms = (state.clock)().saturating_mul(1000);
    let result = state
        .store
        .retry_delivery(&id, &analyst.caller.key_id, now_ms)
        .await
        .map(|d| {
            Flash::ok(format!(
                "Delivery {} queued again: it will be sent within seconds.",
                d.id
            ))
        });
    finish(&state, &analyst, "/ui/deliveries", result).await
}
