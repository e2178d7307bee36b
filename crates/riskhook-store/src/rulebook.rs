//! The review and account rules every backend applies, as pure functions: given the facts a
//! command found in its transaction, what to write, what to audit and whom to recompute, or
//! why the command is refused.
//!
//! Each backend runs a command in three steps: load the facts (PostgreSQL under the user's
//! lock), call the plan function here, apply the [`Plan`] in order in the same transaction.
//! The messages people see, the audit actions and their before/after values, the four-eyes
//! gates and the order of effects are decided here once; the backends only know how to turn a
//! [`Write`] into SQL. The conformance suite proves they apply plans alike; the rules are
//! tested here, as tables.

use riskhook_core::assessment::{Decision, UserStatus};
use riskhook_core::review::{
    ActionKind, ActionStatus, CaseStatus, Outcome, Person, account_status, needs_second_person,
    second_person_refusal,
};
use serde_json::json;

use crate::{
    CommandError, DecideAction, NewAuditEntry, ResolveCase, UserAction, UserState, requester_json,
    requester_person, user_updated,
};

/// A case as a command finds it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CaseFacts {
    /// The case id.
    pub id: String,
    /// The user it is about (a case never changes user).
    pub user_id: String,
    /// Its state.
    pub status: CaseStatus,
    /// The key that claimed it, if one did.
    pub assignee: Option<String>,
    /// How many assessments are its evidence.
    pub evidence: i64,
}

/// An action as it is stored, read by [`plan_decision`] (the text columns unparsed: a corrupt
/// value is an error only where the rule reads it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ActionFacts {
    /// The action id.
    pub id: String,
    /// `resolve_case`, `freeze` or `unfreeze`.
    pub kind: String,
    /// The user it acts on.
    pub user_id: String,
    /// The case a resolution is about.
    pub case_id: Option<String>,
    /// The requested outcome of a resolution.
    pub outcome: Option<String>,
    /// How many assessments the case had when the resolution was requested.
    pub case_evidence: Option<i64>,
    /// The requester's reason.
    pub reason: String,
    /// The key that asked.
    pub requested_by: String,
    /// When, Unix seconds.
    pub requested_at: i64,
    /// The requesting person, as [`requester_json`] stored them (none for old actions).
    pub requester: Option<String>,
    /// `pending`, `applied` or `rejected`.
    pub status: String,
}

/// A new row of `actions`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewAction {
    /// Its id (`act_…`).
    pub id: String,
    /// What it does.
    pub kind: ActionKind,
    /// The user it acts on.
    pub user_id: String,
    /// The case, for a resolution.
    pub case_id: Option<String>,
    /// The outcome, for a resolution.
    pub outcome: Option<Outcome>,
    /// The case's evidence count when asked, for a resolution: approving it later checks
    /// nothing new arrived meanwhile.
    pub case_evidence: Option<i64>,
    /// Why.
    pub reason: String,
    /// The key that asked.
    pub requested_by: String,
    /// The person behind it, as JSON ([`requester_json`]).
    pub requester: String,
    /// `pending` (awaiting a second person) or `applied` (decided by the requester alone).
    pub status: ActionStatus,
}

/// One change a plan makes, applied by the backend in the plan's order. Every write happens at
/// the plan's `now`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Write {
    /// An open case is claimed by `assignee`.
    ClaimCase {
        /// The case.
        case_id: String,
        /// The claiming key.
        assignee: String,
    },
    /// A case's resolution awaits a second person; the requester becomes its assignee if it
    /// had none.
    AwaitApproval {
        /// The case.
        case_id: String,
        /// The requesting key.
        requested_by: String,
    },
    /// A rejected resolution hands the case back to its assignee.
    ReturnCase {
        /// The case.
        case_id: String,
    },
    /// A case is resolved; the resolver becomes its assignee if it had none.
    ResolveCase {
        /// The case.
        case_id: String,
        /// The outcome.
        outcome: Outcome,
        /// Why.
        reason: String,
        /// The key whose resolution it is.
        resolved_by: String,
    },
    /// A new action.
    InsertAction(NewAction),
    /// A pending action is decided.
    DecideAction {
        /// The action.
        action_id: String,
        /// `applied` or `rejected`.
        status: ActionStatus,
        /// The deciding key.
        decided_by: String,
        /// Why, if given.
        reason: Option<String>,
    },
    /// A person's verdict on a user: the baseline of their status from now on.
    SetVerdict {
        /// The user.
        user_id: String,
        /// The status the person set.
        verdict: UserStatus,
        /// The key whose verdict it is.
        by: String,
    },
    /// An entry appended to the audit chain.
    Audit(NewAuditEntry),
}

/// A user to recompute after a plan's writes ([`plan_refresh`]), and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refresh {
    /// The user.
    pub user_id: String,
    /// What caused it: `case.resolved`, `user.frozen`, `user.unfrozen`.
    pub what: &'static str,
    /// The key it is attributed to.
    pub actor: String,
}

/// What a review command touched: the user, and the case and action when there are.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Touched {
    /// The user.
    pub user_id: String,
    /// The case, if the command was about one.
    pub case_id: Option<String>,
    /// The action, if the command made or decided one.
    pub action_id: Option<String>,
}

/// What a command does: its writes in order, then the user to recompute, if any.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    /// When, Unix seconds: the time of every write.
    pub now: i64,
    /// The changes, in order.
    pub writes: Vec<Write>,
    /// The user to recompute last, from the facts as the writes left them.
    pub refresh: Option<Refresh>,
    /// What the command touched.
    pub touched: Touched,
}

impl Plan {
    fn new(now: i64, user_id: &str) -> Self {
        Plan {
            now,
            writes: Vec::new(),
            refresh: None,
            touched: Touched {
                user_id: user_id.to_owned(),
                case_id: None,
                action_id: None,
            },
        }
    }

    fn case(mut self, case_id: &str) -> Self {
        self.touched.case_id = Some(case_id.to_owned());
        self
    }

    fn action(mut self, action_id: &str) -> Self {
        self.touched.action_id = Some(action_id.to_owned());
        self
    }

    // The JSON values are built at each call site only to be written here.
    #[allow(clippy::too_many_arguments, clippy::needless_pass_by_value)]
    fn audit(
        &mut self,
        actor: &str,
        action: &str,
        subject: String,
        reason: Option<&str>,
        before: Option<serde_json::Value>,
        after: serde_json::Value,
    ) {
        self.writes.push(Write::Audit(NewAuditEntry::by(
            self.now,
            actor,
            action,
            subject,
            reason,
            before.as_ref(),
            &after,
        )));
    }
}

fn conflict(message: String) -> CommandError {
    CommandError::Conflict(message)
}

fn require_reason(reason: &str) -> Result<(), CommandError> {
    if reason.trim().is_empty() {
        return Err(conflict("a reason is required".to_owned()));
    }
    Ok(())
}

/// The user's status, or `user … not found`.
fn known(user_id: &str, status: Option<UserStatus>) -> Result<UserStatus, CommandError> {
    status.ok_or_else(|| CommandError::not_found("user", user_id))
}

/// Refuses a command on a case that can no longer change by hand.
fn refuse_settled(case: &CaseFacts) -> Result<(), CommandError> {
    match case.status {
        CaseStatus::Resolved => Err(conflict(format!("case {} is already resolved", case.id))),
        CaseStatus::PendingApproval => Err(conflict(format!(
            "case {} awaits a second person's approval of its resolution",
            case.id
        ))),
        CaseStatus::Open | CaseStatus::Claimed => Ok(()),
    }
}

/// `actor` claims `case`. Claiming a case one already holds changes nothing.
pub fn plan_claim(case: &CaseFacts, actor: &str, now: i64) -> Result<Plan, CommandError> {
    refuse_settled(case)?;
    let mut plan = Plan::new(now, &case.user_id).case(&case.id);
    match (case.status, case.assignee.as_deref()) {
        (CaseStatus::Claimed, Some(assignee)) if assignee == actor => {}
        (CaseStatus::Claimed, assignee) => {
            return Err(conflict(format!(
                "case {} is claimed by {}",
                case.id,
                assignee.unwrap_or("another key")
            )));
        }
        _ => {
            plan.writes.push(Write::ClaimCase {
                case_id: case.id.clone(),
                assignee: actor.to_owned(),
            });
            plan.audit(
                actor,
                "case.claimed",
                format!("case:{}", case.id),
                None,
                Some(json!({ "status": "open", "assignee": null })),
                json!({ "status": "claimed", "assignee": actor }),
            );
        }
    }
    Ok(plan)
}

/// Resolves case `c.case_id` (`case`: its facts, if it exists) for a user now in
/// `user_status`. With four eyes on, lifting a freeze becomes a pending action (`action_id`)
/// for a second person instead.
pub fn plan_resolution(
    case: Option<&CaseFacts>,
    user_status: Option<UserStatus>,
    c: &ResolveCase,
    action_id: &str,
) -> Result<Plan, CommandError> {
    require_reason(&c.reason)?;
    let case = case.ok_or_else(|| CommandError::not_found("case", &c.case_id))?;
    refuse_settled(case)?;
    if let (CaseStatus::Claimed, Some(assignee)) = (case.status, case.assignee.as_deref())
        && assignee != c.actor
    {
        return Err(conflict(format!(
            "case {} is claimed by {assignee}; only its assignee can resolve it",
            case.id
        )));
    }
    let current = known(&case.user_id, user_status)?;
    let mut plan = Plan::new(c.now, &case.user_id).case(&case.id);
    if needs_second_person(c.four_eyes, current, c.outcome.status()) {
        plan.writes.push(Write::InsertAction(NewAction {
            id: action_id.to_owned(),
            kind: ActionKind::ResolveCase,
            user_id: case.user_id.clone(),
            case_id: Some(case.id.clone()),
            outcome: Some(c.outcome),
            case_evidence: Some(case.evidence),
            reason: c.reason.clone(),
            requested_by: c.actor.clone(),
            requester: requester_json(&c.person),
            status: ActionStatus::Pending,
        }));
        plan.writes.push(Write::AwaitApproval {
            case_id: case.id.clone(),
            requested_by: c.actor.clone(),
        });
        plan.audit(
            &c.actor,
            "action.requested",
            format!("action:{action_id}"),
            Some(&c.reason),
            None,
            json!({ "kind": "resolve_case", "case_id": case.id, "outcome": c.outcome.as_str(),
                    "user_id": case.user_id, "status": "pending" }),
        );
        return Ok(plan.action(action_id));
    }
    resolve(&mut plan, case, c.outcome, &c.reason, &c.actor);
    Ok(plan)
}

/// The resolution itself: the case closes, the outcome becomes the user's verdict, the user
/// is recomputed.
fn resolve(plan: &mut Plan, case: &CaseFacts, outcome: Outcome, reason: &str, by: &str) {
    plan.writes.push(Write::ResolveCase {
        case_id: case.id.clone(),
        outcome,
        reason: reason.to_owned(),
        resolved_by: by.to_owned(),
    });
    plan.audit(
        by,
        "case.resolved",
        format!("case:{}", case.id),
        Some(reason),
        Some(json!({ "status": case.status.as_str() })),
        json!({ "status": "resolved", "outcome": outcome.as_str(), "user_id": case.user_id }),
    );
    set_verdict(plan, &case.user_id, outcome.status(), by, "case.resolved");
}

fn set_verdict(plan: &mut Plan, user_id: &str, verdict: UserStatus, by: &str, what: &'static str) {
    plan.writes.push(Write::SetVerdict {
        user_id: user_id.to_owned(),
        verdict,
        by: by.to_owned(),
    });
    plan.refresh = Some(Refresh {
        user_id: user_id.to_owned(),
        what,
        actor: by.to_owned(),
    });
}

/// The status a manual freeze or unfreeze sets.
fn target_of(kind: ActionKind) -> Result<UserStatus, CommandError> {
    match kind {
        ActionKind::Freeze => Ok(UserStatus::Frozen),
        ActionKind::Unfreeze => Ok(UserStatus::Active),
        ActionKind::ResolveCase => Err(conflict(
            "a case is resolved through its case, not as a user action".to_owned(),
        )),
    }
}

/// Freezes or unfreezes `c.user_id`, now in `user_status`, whose unresolved case (id and
/// strictest decision) is `open_case`. With four eyes on, lifting a freeze waits for a second
/// person; either way the request is recorded as action `action_id`.
pub fn plan_user_action(
    user_status: Option<UserStatus>,
    open_case: Option<(&str, Decision)>,
    c: &UserAction,
    action_id: &str,
) -> Result<Plan, CommandError> {
    require_reason(&c.reason)?;
    let current = known(&c.user_id, user_status)?;
    let target = target_of(c.kind)?;
    if c.kind == ActionKind::Unfreeze {
        if current != UserStatus::Frozen {
            return Err(conflict(format!(
                "user {} is {}, not frozen",
                c.user_id,
                current.as_str()
            )));
        }
        if let Some((case_id, decision)) = open_case
            && account_status(Some(UserStatus::Active), Some(decision)) == UserStatus::Frozen
        {
            return Err(conflict(format!(
                "user {} is frozen by the evidence of open case {case_id}; resolve that case instead",
                c.user_id
            )));
        }
    }
    let pending = needs_second_person(c.four_eyes, current, target);
    let mut plan = Plan::new(c.now, &c.user_id).action(action_id);
    plan.writes.push(Write::InsertAction(NewAction {
        id: action_id.to_owned(),
        kind: c.kind,
        user_id: c.user_id.clone(),
        case_id: None,
        outcome: None,
        case_evidence: None,
        reason: c.reason.clone(),
        requested_by: c.actor.clone(),
        requester: requester_json(&c.person),
        status: if pending {
            ActionStatus::Pending
        } else {
            ActionStatus::Applied
        },
    }));
    if pending {
        plan.audit(
            &c.actor,
            "action.requested",
            format!("action:{action_id}"),
            Some(&c.reason),
            None,
            json!({ "kind": c.kind.as_str(), "user_id": c.user_id, "status": "pending" }),
        );
    } else {
        apply_user_action(&mut plan, &c.user_id, c.kind, current, &c.reason, &c.actor);
    }
    Ok(plan)
}

fn apply_user_action(
    plan: &mut Plan,
    user_id: &str,
    kind: ActionKind,
    current: UserStatus,
    reason: &str,
    by: &str,
) {
    let (action, target) = match kind {
        ActionKind::Freeze => ("user.frozen", UserStatus::Frozen),
        _ => ("user.unfrozen", UserStatus::Active),
    };
    plan.audit(
        by,
        action,
        format!("user:{user_id}"),
        Some(reason),
        Some(json!({ "status": current.as_str() })),
        json!({ "verdict": target.as_str() }),
    );
    set_verdict(plan, user_id, target, by, action);
}

/// A second person decides pending action `action`. `case` is the case of a resolution (its
/// facts now), `user_status` the status of the action's user now.
pub fn plan_decision(
    action: &ActionFacts,
    case: Option<&CaseFacts>,
    user_status: Option<UserStatus>,
    c: &DecideAction,
) -> Result<Plan, CommandError> {
    let kind = ActionKind::parse(&action.kind)
        .ok_or_else(|| CommandError::corrupt("action kind", &action.kind))?;
    if ActionStatus::parse(&action.status) != Some(ActionStatus::Pending) {
        return Err(conflict(format!(
            "action {} is already {}",
            action.id, action.status
        )));
    }
    let requester: Person = requester_person(action.requester.as_deref(), &action.requested_by)?;
    if let Some(why) = second_person_refusal(&requester, action.requested_at, &c.person) {
        return Err(CommandError::SamePerson(format!(
            "action {}: {why}",
            action.id
        )));
    }
    let decided = if c.approve {
        ActionStatus::Applied
    } else {
        ActionStatus::Rejected
    };
    let mut plan = Plan::new(c.now, &action.user_id).action(&action.id);
    plan.writes.push(Write::DecideAction {
        action_id: action.id.clone(),
        status: decided,
        decided_by: c.actor.clone(),
        reason: c.reason.clone(),
    });
    plan.audit(
        &c.actor,
        if c.approve {
            "action.approved"
        } else {
            "action.rejected"
        },
        format!("action:{}", action.id),
        c.reason.as_deref(),
        Some(json!({ "status": "pending", "requested_by": action.requested_by })),
        json!({ "status": decided.as_str() }),
    );
    match (kind, action.case_id.as_deref()) {
        (ActionKind::ResolveCase, Some(case_id)) => {
            let case = case
                .filter(|case| case.id == case_id)
                .ok_or_else(|| CommandError::not_found("case", case_id))?;
            plan = plan.case(case_id);
            if !c.approve {
                plan.writes.push(Write::ReturnCase {
                    case_id: case_id.to_owned(),
                });
                return Ok(plan);
            }
            if case.status != CaseStatus::PendingApproval
                || Some(case.evidence) != action.case_evidence
            {
                return Err(conflict(format!(
                    "case {case_id} has changed since the resolution was requested (new evidence); resolve it again"
                )));
            }
            let outcome = action.outcome.as_deref().unwrap_or_default();
            let outcome =
                Outcome::parse(outcome).ok_or_else(|| CommandError::corrupt("outcome", outcome))?;
            // The resolution is the requester's; the approver is recorded on the action.
            resolve(
                &mut plan,
                case,
                outcome,
                &action.reason,
                &action.requested_by,
            );
        }
        (ActionKind::Freeze | ActionKind::Unfreeze, _) if c.approve => {
            let current = known(&action.user_id, user_status)?;
            if kind == ActionKind::Unfreeze && current != UserStatus::Frozen {
                return Err(conflict(format!(
                    "user {} is no longer frozen",
                    action.user_id
                )));
            }
            apply_user_action(
                &mut plan,
                &action.user_id,
                kind,
                current,
                &action.reason,
                &action.requested_by,
            );
        }
        _ => {}
    }
    Ok(plan)
}

/// What caused a user's recomputation, for the notification and the audit entry.
#[derive(Debug, Clone, Copy)]
pub struct Cause<'a> {
    /// `assessment`, `case.resolved`, `user.frozen`, ...
    pub what: &'a str,
    /// Who: `system` or a key id.
    pub actor: &'a str,
    /// Unix seconds.
    pub now: i64,
}

/// A user's row as a recomputation finds it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserRow {
    /// Status, decision, score and explaining assessment.
    pub state: UserState,
    /// The verdict of the last person to act.
    pub verdict: Option<UserStatus>,
    /// How many notified changes the user has had.
    pub version: i64,
}

/// The facts a user's state follows from, none of which depends on the order events arrived
/// in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserFacts {
    /// The user's row, if they have one yet.
    pub row: Option<UserRow>,
    /// Whether any assessment of theirs ever decided freeze.
    pub ever_frozen: bool,
    /// The strictest decision in their unresolved case, if one is open.
    pub open_case: Option<Decision>,
    /// The strictest current assessment of their sessions (by decision, score, time, session):
    /// its id, score and decision.
    pub current: Option<(String, u8, Decision)>,
}

/// A user's row after a recomputation, and what to tell when it moved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserPlan {
    /// The state to store.
    pub after: UserState,
    /// Whether any assessment ever decided freeze.
    pub ever_frozen: bool,
    /// The version to store: one more than before when the state moved.
    pub version: i64,
    /// When the status or the decision moved: the `user.updated` notification's body, for
    /// every configured endpoint, and the audit entry, written after the row.
    pub moved: Option<(String, NewAuditEntry)>,
}

/// Recomputes a user from `facts`: the status is the last verdict tightened by the evidence
/// waiting in an open case; the decision and score are those of the strictest current
/// assessment.
pub fn plan_refresh(user_id: &str, facts: &UserFacts, cause: Cause<'_>) -> UserPlan {
    let (assessment_id, score, decision) = match &facts.current {
        Some((id, score, decision)) => (Some(id.clone()), *score, *decision),
        None => (None, 0, Decision::Approve),
    };
    let before = facts.row.as_ref().map(|row| &row.state);
    let verdict = facts.row.as_ref().and_then(|row| row.verdict);
    let after = UserState {
        status: account_status(verdict, facts.open_case),
        decision,
        score,
        assessment_id,
    };
    let changed = after.differs_from(before);
    let version = facts.row.as_ref().map_or(0, |row| row.version) + i64::from(changed);
    let moved = changed.then(|| {
        (
            user_updated(user_id, before, &after, cause.what, version, cause.now),
            NewAuditEntry::user_updated(
                cause.now,
                cause.actor,
                user_id,
                cause.what,
                before,
                &after,
            ),
        )
    });
    UserPlan {
        after,
        ever_frozen: facts.ever_frozen,
        version,
        moved,
    }
}

/// Where an assessment that needs review goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Evidence {
    /// No case was open: a new one, opened with this decision (and audited).
    Open {
        /// The new case's id.
        case_id: String,
        /// Its decision: the assessment's.
        decision: Decision,
        /// `case.opened`.
        audit: NewAuditEntry,
    },
    /// It joins the open case, whose decision becomes the stricter of the two.
    Join {
        /// The open case.
        case_id: String,
        /// The case's decision from now on.
        decision: Decision,
    },
}

impl Evidence {
    /// The case the assessment belongs to.
    pub fn case_id(&self) -> &str {
        match self {
            Evidence::Open { case_id, .. } | Evidence::Join { case_id, .. } => case_id,
        }
    }

    /// The case's decision once the assessment is in it.
    pub fn decision(&self) -> Decision {
        match self {
            Evidence::Open { decision, .. } | Evidence::Join { decision, .. } => *decision,
        }
    }
}

/// An assessment of `user_id` deciding `decision` is evidence: it opens the user's case
/// (`new_case_id`) or joins the one open (`open_case`: its id and decision). At most one case
/// per user is open.
pub fn plan_evidence(
    user_id: &str,
    open_case: Option<(String, Decision)>,
    decision: Decision,
    new_case_id: String,
    now: i64,
) -> Evidence {
    match open_case {
        Some((case_id, open)) => Evidence::Join {
            case_id,
            decision: open.max(decision),
        },
        None => Evidence::Open {
            audit: NewAuditEntry::case_opened(now, &new_case_id, user_id),
            case_id: new_case_id,
            decision,
        },
    }
}

#[cfg(test)]
mod tests;
